"""Media generation: real files saved from the CDN, MCP content blocks, resources, videos with progress."""

from __future__ import annotations

import base64
import io
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import connect
from fakepoe import MP4, PNG, FakePoe, Reply, recorded

from poe_mcp.poe.media import download_media, find_media_urls

pytestmark = pytest.mark.anyio


def image_reply(url: str) -> Reply:
    """The recorded GPT-Image-1 reply (Markdown image plus the same bare URL), pointing at the fake CDN."""
    real = recorded("GPT-Image-1")["body"]["choices"][0]["message"]["content"]
    cdn = find_media_urls(real)[0]
    return Reply(text=real.replace(cdn, url))


async def test_an_image_round_trip(settings: Any, fake: FakePoe, mode: str) -> None:
    url = fake.cdn_url("cat.png", PNG, "image/png")
    fake.enqueue(image_reply(url))
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "a cat", "parameters": {"aspect": "1:1"}}
        )
        assert not result.is_error, result.content[0].text
        data = result.structured_content
        [saved] = data["files"]
        resource = await client.read_resource(saved["uri"])
    assert (
        Path(saved["path"]).read_bytes() == PNG
        and saved["bytes"] == len(PNG)
        and saved["mime_type"] == "image/png"
    )
    assert saved["url"] == url and data["model"] == "gpt-image-1" and data["skipped_urls"] == []
    kinds = [block.type for block in result.content]
    assert kinds == ["text", "image", "resource_link"]
    assert (
        base64.b64decode(result.content[1].data) == PNG
        and result.content[1].mime_type == "image/png"
    )
    assert result.content[2].uri == saved["uri"]
    assert (
        base64.b64decode(resource.contents[0].blob) == PNG
        and resource.contents[0].mime_type == "image/png"
    )
    sent = fake.chat_requests()[-1]["json"]
    assert sent["stream"] is False and sent["aspect"] == "1:1" and sent["model"] == "gpt-image-1"
    assert len([r for r in fake.requests if r["path"] == "/cdn/cat.png"]) == 1, (
        "the duplicated link is fetched once"
    )


async def test_audio_comes_back_as_an_audio_block(settings: Any, fake: FakePoe) -> None:
    mp3 = b"ID3\x04" + b"\x00" * 500
    fake.enqueue(
        Reply(text=fake.cdn_url("hello", mp3, "audio/mpeg"))
    )  # like the recorded ElevenLabs reply: a bare URL
    async with connect(settings) as client:
        result = await client.call_tool("generate_audio", {"prompt": "Say hello"})
    assert [b.type for b in result.content] == ["text", "audio", "resource_link"]
    assert (
        base64.b64decode(result.content[1].data) == mp3
        and result.content[1].mime_type == "audio/mpeg"
    )
    assert result.structured_content["files"][0]["path"].endswith(".mp3")


async def test_a_text_only_reply_is_an_honest_result(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(body=recorded("Nano-Banana")["body"]))
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "hi", "model": "Nano-Banana"})
    assert not result.is_error
    assert (
        result.structured_content["files"] == []
        and result.structured_content["text"] == "Hello there!"
    )


async def test_links_outside_poe_are_not_downloaded(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text="![x](https://evil.example.com/x.png) and http://127.0.0.2:1/y.png"))
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "x"})
    skipped = result.structured_content["skipped_urls"]
    assert [s["url"] for s in skipped] == [
        "https://evil.example.com/x.png",
        "http://127.0.0.2:1/y.png",
    ]
    assert (
        "not Poe's CDN" in skipped[0]["reason"]
        and "Not downloaded: https://evil.example.com/x.png" in result.content[0].text
    )
    assert result.structured_content["files"] == []


async def test_a_large_image_gets_a_preview(settings: Any, fake: FakePoe) -> None:
    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise((1400, 1400), 80).convert("RGB").save(out, "PNG")
    big = out.getvalue()
    assert len(big) > 1_000_000
    fake.enqueue(Reply(text=fake.cdn_url("big.png", big, "image/png")))
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "noise"})
    preview = result.content[1]
    assert preview.type == "image" and preview.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(base64.b64decode(preview.data))) as image:
        assert max(image.size) == 768
    assert result.structured_content["files"][0]["bytes"] == len(big)


async def test_a_slow_media_bot_gets_heartbeats(settings: Any, fake: FakePoe) -> None:
    fake.latency = 6.5  # an image bot thinking for a while, saying nothing
    fake.enqueue(Reply(text=fake.cdn_url("slow.png", PNG, "image/png")))
    events: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append(message)

    async with connect(settings) as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "slow"}, progress_callback=on_progress
        )
    assert not result.is_error and len(events) >= 2, (
        "a notification at least every 5 s while the bot works"
    )
    assert all("gpt-image-1 is generating" in (m or "").lower() for m in events)


async def test_a_text_model_is_refused_with_examples(settings: Any, fake: FakePoe) -> None:
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "x", "model": "gpt-4-turbo"})
    text = result.content[0].text
    assert (
        result.is_error
        and text.startswith("invalid_request_error (400): gpt-4-turbo makes text, not image")
        and "output_modality=image" in text
    )
    assert fake.chat_requests() == []


async def test_a_video_job_reports_progress_and_saves_an_mp4(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    fake.video_steps = 4
    events: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append((progress, total, message))

    async with connect(settings, mode, video_poll_interval=0.05) as client:
        result = await client.call_tool(
            "generate_video",
            {"prompt": "a wave", "parameters": {"aspect_ratio": "16:9"}},
            progress_callback=on_progress,
        )
    assert not result.is_error, result.content[0].text
    [saved] = result.structured_content["files"]
    assert (
        Path(saved["path"]).read_bytes() == MP4
        and saved["mime_type"] == "video/mp4"
        and saved["path"].endswith(".mp4")
    )
    assert [b.type for b in result.content] == ["text", "resource_link"]
    assert len(events) >= 3 and all(total == 100.0 for _, total, _ in events)
    values = [p for p, _, _ in events]
    assert values == sorted(values) and values[-1] == 100.0
    created = next(r for r in fake.requests if r["path"] == "/v1/videos")
    assert created["json"] == {"model": "veo-3", "prompt": "a wave", "aspect_ratio": "16:9"}


async def test_a_failed_video_job_reports_poes_error(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(error_type="failed", text="content policy"))
    async with connect(settings, video_poll_interval=0.05) as client:
        result = await client.call_tool("generate_video", {"prompt": "x"})
    assert result.is_error and "failed: content policy" in result.content[0].text


async def test_videos_fall_back_to_chat_when_the_endpoint_is_missing(
    settings: Any, fake: FakePoe
) -> None:
    fake.videos_missing = True
    fake.enqueue(Reply(text=fake.cdn_url("clip", MP4, "application/octet-stream")))
    async with connect(settings) as client:
        result = await client.call_tool("generate_video", {"prompt": "x"})
    assert result.structured_content["files"][0]["mime_type"] == "video/mp4", (
        "sniffed from the bytes"
    )
    assert fake.chat_requests()[-1]["json"]["model"] == "veo-3"


async def test_cancelling_a_video_stops_polling_and_cancels_the_job(
    settings: Any, fake: FakePoe
) -> None:
    fake.video_steps = 1000
    async with connect(settings, video_poll_interval=0.05) as client:
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "generate_video", {"prompt": "endless"})
            with anyio.fail_after(10):
                while not fake.videos or next(iter(fake.videos.values()))["polls"] < 2:
                    await anyio.sleep(0.02)
            group.cancel_scope.cancel()  # the client gives up while the job is being polled
        [job] = fake.videos.values()
        with anyio.fail_after(5):
            while not job["deleted"]:
                await anyio.sleep(0.05)
        polls = job["polls"]
        await anyio.sleep(0.3)
    assert job["polls"] == polls, "polling stopped"


async def test_media_resources_refuse_names_that_leave_the_folder(
    settings: Any, fake: FakePoe
) -> None:
    from mcp.shared.exceptions import MCPError

    settings.output_dir.mkdir(parents=True, exist_ok=True)
    (settings.output_dir.parent / "secret.txt").write_text("no")
    async with connect(settings) as client:
        for name in ("..%2Fsecret.txt", "../secret.txt", ".hidden", "nope.png"):
            with pytest.raises(MCPError):
                await client.read_resource(f"poe-mcp://media/{name}")


async def test_a_20_mb_download_keeps_memory_flat(fake: FakePoe, tmp_path: Path) -> None:
    import httpx2

    url = fake.cdn_url("big.mp4", 20_000_000, "video/mp4")
    async with httpx2.AsyncClient() as http:
        tracemalloc.start()
        saved = await download_media(http, url, tmp_path, timeout=60)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert saved.bytes == 20_000_000 and saved.path.stat().st_size == 20_000_000
    assert peak < 4_000_000, f"peak Python allocation {peak / 1e6:.1f} MB"
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*"))


async def test_a_broken_download_leaves_no_partial_file(fake: FakePoe, tmp_path: Path) -> None:
    import httpx2

    from poe_mcp.poe.errors import PoeError

    async with httpx2.AsyncClient() as http:
        with pytest.raises(PoeError):
            await download_media(
                http, fake.cdn_url("x", PNG, "image/png"), tmp_path, timeout=10, max_bytes=100
            )
    assert list(tmp_path.iterdir()) == []


def test_links_are_found_and_deduplicated() -> None:
    content = recorded("GPT-Image-1")["body"]["choices"][0]["message"]["content"]
    [url] = find_media_urls(content)
    assert url.startswith("https://pfst.cf2.poecdn.net/base/image/") and url.endswith(
        "?w=1024&h=1024"
    )
    assert find_media_urls(
        recorded("ElevenLabs-v2.5-Turbo")["body"]["choices"][0]["message"]["content"]
    )[0].startswith("https://pfst.cf2.poecdn.net/base/audio/")
    assert find_media_urls("See https://x.poecdn.net/a.png.") == ["https://x.poecdn.net/a.png"]
