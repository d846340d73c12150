"""Media generation: real files saved from the CDN, MCP content blocks, resources, videos with progress."""

from __future__ import annotations

import base64
import io
import json
import time
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
    [sent] = [r["json"] for r in fake.requests if r["path"] == "/v1/images"]
    assert sent == {"model": "gpt-image-1", "prompt": "a cat", "aspect": "1:1"}, (
        "the catalog routes gpt-image-1 to /v1/images only"
    )
    assert fake.chat_requests() == []
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


async def test_a_reply_without_media_is_a_no_media_error(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(body=recorded("Nano-Banana")["body"]))
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "hi", "model": "Nano-Banana"})
    text = result.content[0].text
    assert result.is_error and text.startswith("no_media_error: nano-banana returned no media")
    assert '"Hello there!"' in text, "the bot's own words are quoted"


async def test_links_outside_poe_are_not_downloaded(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text="![x](https://evil.example.com/x.png) and http://127.0.0.2:1/y.png"))
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "x"})
    text = result.content[0].text
    assert result.is_error and text.startswith("no_media_error")
    assert "not saved: https://evil.example.com/x.png (evil.example.com is not Poe's CDN" in text
    assert "not saved: http://127.0.0.2:1/y.png (only https://" in text
    assert fake.requests[-1]["path"] == "/v1/images", "nothing fetched from them"


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


def created_videos(fake: FakePoe) -> list[dict[str, Any]]:
    return [r["json"] for r in fake.requests if r["path"] == "/v1/videos"]


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
    data = result.structured_content
    [saved] = data["files"]
    assert (
        Path(saved["path"]).read_bytes() == MP4
        and saved["mime_type"] == "video/mp4"
        and saved["path"].endswith(".mp4")
    )
    assert [b.type for b in result.content] == ["text", "resource_link"]
    assert len(events) >= 3 and all(total == 100.0 for _, total, _ in events)
    values = [p for p, _, _ in events]
    assert values == sorted(values) and values[-1] == 100.0
    [job_id] = fake.videos
    assert job_id in (events[0][2] or ""), "the job id goes out with the first notification"
    assert (
        data["job_id"] == job_id
        and data["status"] == "completed"
        and job_id in result.content[0].text
    )
    assert data["job"]["points"] == 4200 and "used 4200 points" in result.content[0].text
    assert created_videos(fake) == [{"model": "veo-3", "prompt": "a wave", "size": "1280x720"}], (
        "aspect_ratio 16:9 is sent as a landscape size"
    )


async def test_seconds_and_size_are_sent_as_poe_documents_them(
    settings: Any, fake: FakePoe
) -> None:
    fake.video_steps = 1
    async with connect(settings, video_poll_interval=0.05) as client:
        result = await client.call_tool(
            "generate_video", {"prompt": "a wave", "seconds": 8, "size": "1280x720"}
        )
        portrait = await client.call_tool(
            "generate_video",
            {"prompt": "a tower", "parameters": {"aspect_ratio": "9:16", "duration": "4"}},
        )
    assert not result.is_error and not portrait.is_error, result.content[0].text
    assert created_videos(fake) == [
        {"model": "veo-3", "prompt": "a wave", "seconds": "8", "size": "1280x720"},
        {"model": "veo-3", "prompt": "a tower", "seconds": "4", "size": "720x1280"},
    ]


async def test_a_size_the_model_does_not_allow_is_refused_before_any_request(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        bad_form = await client.call_tool("generate_video", {"prompt": "x", "size": "wide"})
        not_listed = await client.call_tool(
            "generate_video", {"prompt": "x", "model": "Sora-2", "size": "1920x1080"}
        )
        bad_seconds = await client.call_tool("generate_video", {"prompt": "x", "seconds": 5})
    assert bad_form.is_error and "cannot make a video of size 'wide'" in bad_form.content[0].text
    assert not_listed.is_error and "1280x720, 720x1280" in not_listed.content[0].text
    assert bad_seconds.is_error and "Give seconds as a whole number: 4, 6, 8" in (
        bad_seconds.content[0].text
    )
    assert created_videos(fake) == []


async def test_sora_sizes_come_from_the_catalog(settings: Any, fake: FakePoe) -> None:
    fake.video_steps = 1
    async with connect(settings, video_poll_interval=0.05) as client:
        result = await client.call_tool(
            "generate_video",
            {"prompt": "x", "model": "Sora-2-Pro", "parameters": {"aspect_ratio": "16:9"}},
        )
    assert not result.is_error, result.content[0].text
    assert created_videos(fake)[0]["size"] == "1280x720"


async def test_the_first_image_attachment_becomes_input_image(
    settings: Any, fake: FakePoe, workdir: Path
) -> None:
    fake.video_steps = 1
    (workdir / "frame.png").write_bytes(PNG)
    async with connect(settings, video_poll_interval=0.05) as client:
        result = await client.call_tool(
            "generate_video", {"prompt": "animate", "attachments": [str(workdir / "frame.png")]}
        )
    assert not result.is_error, result.content[0].text
    assert base64.b64decode(created_videos(fake)[0]["input_image"]) == PNG


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


async def test_cancelling_a_video_stops_polling_and_the_job_stays_fetchable(
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
        [(job_id, job)] = fake.videos.items()
        polls = job["polls"]
        await anyio.sleep(0.3)
        assert job["polls"] == polls, "polling stopped"
        fake.video_steps = polls + 1  # the job finishes upstream meanwhile
        fetched = await client.call_tool("generate_video", {"job_id": job_id})
    assert not fetched.is_error, fetched.content[0].text
    assert Path(fetched.structured_content["files"][0]["path"]).read_bytes() == MP4
    assert all(r["method"] in ("GET", "POST") for r in fake.requests), "Poe has no DELETE"


async def test_a_long_job_answers_in_progress_and_is_fetched_later(
    settings: Any, fake: FakePoe
) -> None:
    fake.video_steps = 1000
    async with connect(settings, video_poll_interval=0.05) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("generate_video", {"prompt": "slow", "max_wait": 0.3})
        data = result.structured_content
        [job_id] = fake.videos
        assert not result.is_error and data["status"] == "in_progress"
        assert data["job_id"] == job_id and data["files"] == [] and data["job"]["progress"] == 0
        assert data["next_call"] == f'generate_video(job_id="{job_id}")'
        assert data["next_call"] in result.content[0].text
        assert data["job"]["expires_at"], "Poe's expiry of the job is passed on"
        still = await client.call_tool("generate_video", {"job_id": job_id, "max_wait": 0})
        assert still.structured_content["status"] == "in_progress"
        fake.video_steps = 0
        done = await client.call_tool("generate_video", {"job_id": job_id})
        again = await client.call_tool("generate_video", {"job_id": job_id})
    assert (
        done.structured_content["status"] == "completed"
        and done.structured_content["next_call"] is None
    )
    [saved] = done.structured_content["files"]
    assert Path(saved["path"]).read_bytes() == MP4 and saved["path"].endswith(".mp4")
    assert again.structured_content["files"] == [saved], "a finished job is served from the store"
    assert len([r for r in fake.requests if r["path"].endswith("/content")]) == 1


async def test_a_job_id_survives_a_server_restart(settings: Any, fake: FakePoe) -> None:
    fake.video_steps = 1000
    async with connect(settings, video_poll_interval=0.05) as client:
        result = await client.call_tool("generate_video", {"prompt": "a comet", "max_wait": 0})
    job_id = result.structured_content["job_id"]
    fake.video_steps = 0
    async with connect(settings, video_poll_interval=0.05) as client:  # a new process, same store
        done = await client.call_tool("generate_video", {"job_id": job_id})
    assert done.structured_content["status"] == "completed"
    assert done.structured_content["model"] == "veo-3"


async def test_an_unknown_job_id_says_what_to_do(settings: Any, fake: FakePoe) -> None:
    async with connect(settings) as client:
        result = await client.call_tool("generate_video", {"job_id": "video_nope"})
    assert result.is_error and "Poe has no video job 'video_nope'" in result.content[0].text


async def test_odd_job_statuses_and_progress_are_tolerated(settings: Any, fake: FakePoe) -> None:
    fake.video_steps = 1000
    async with connect(settings, video_poll_interval=0.05) as client:
        async with anyio.create_task_group() as group:

            async def oddify() -> None:
                while not fake.videos:
                    await anyio.sleep(0.01)
                job = next(iter(fake.videos.values()))
                while True:
                    job.update(status="rendering", progress="about half")
                    await anyio.sleep(0.005)

            group.start_soon(oddify)
            result = await client.call_tool("generate_video", {"prompt": "x", "max_wait": 0.4})
            group.cancel_scope.cancel()
    assert not result.is_error, result.content[0].text
    assert result.structured_content["status"] == "in_progress"
    assert result.structured_content["job_id"] in result.content[0].text


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


async def test_media_generations_count_in_the_server_totals(settings: Any, fake: FakePoe) -> None:
    fake.video_steps = 1
    fake.enqueue(Reply(text=fake.cdn_url("banana.png", PNG, "image/png")))
    async with connect(settings, video_poll_interval=0.05) as client:
        await client.call_tool("generate_image", {"prompt": "a banana", "model": "Nano-Banana"})
        await client.call_tool("generate_video", {"prompt": "a wave"})
        usage = await client.call_tool("get_usage", {})
    totals = usage.structured_content["server_totals"]
    assert totals["calls"] == 2
    assert totals["by_model"]["nano-banana"]["calls"] == 1
    assert totals["by_model"]["nano-banana"]["cost_usd"] > 0, "priced per image in the catalog"
    assert totals["by_model"]["veo-3"]["calls"] == 1


async def test_a_1_mb_hostile_reply_is_scanned_in_well_under_a_second(
    settings: Any, fake: FakePoe
) -> None:
    url = fake.cdn_url("after.png", PNG, "image/png")
    hostile = "![" * 100_000 + "![a](x" * 80_000 + "https://" * 40_000 + "![" + "]" * 100_000
    assert len(hostile) > 1_000_000
    started = time.perf_counter()
    found = find_media_urls(hostile + f" ![img]({url})")
    scanned = time.perf_counter() - started
    assert url in found and scanned < 0.25, f"{scanned:.3f} s for {len(hostile)} chars"
    fake.enqueue(Reply(text=hostile + f" ![img]({url})"))
    async with connect(settings) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("generate_image", {"prompt": "x"})
    assert not result.is_error and len(result.structured_content["files"]) == 1


def saved_files(settings: Any) -> list[Path]:
    folder = settings.output_dir
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_a_download_over_the_size_cap_leaves_no_file_and_says_so(
    settings: Any, fake: FakePoe
) -> None:
    fake.video_steps, fake.video_bytes = 1, 3_000_000
    fake.enqueue(Reply(text=fake.cdn_url("huge.png", 3_000_000, "image/png")))
    async with connect(settings, max_media_mb=2.0, video_poll_interval=0.05) as client:
        image = await client.call_tool("generate_image", {"prompt": "huge"})
        video = await client.call_tool("generate_video", {"prompt": "huge"})
    assert image.is_error and "larger than POE_MCP_MAX_MEDIA_MB (2 MB); not saved" in (
        image.content[0].text
    )
    assert video.is_error and video.content[0].text.startswith("request_too_large (413)")
    assert "Raise POE_MCP_MAX_MEDIA_MB" in video.content[0].text
    assert saved_files(settings) == []


async def test_a_trickling_download_stops_at_the_overall_deadline(
    settings: Any, fake: FakePoe
) -> None:
    fake.block_delay = 0.1  # each read is quick; the whole file would take 3 s
    fake.enqueue(Reply(text=fake.cdn_url("slow.png", 30 * 65536, "image/png")))
    async with connect(settings, timeout=1.0) as client:
        started = time.monotonic()
        result = await client.call_tool("generate_image", {"prompt": "slow"})
    assert time.monotonic() - started < 2.5
    assert result.is_error and "POE_MCP_TIMEOUT (1 s)" in result.content[0].text
    assert saved_files(settings) == []


def noise_png(edge: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise((edge, edge), 80).convert("RGB").save(out, "PNG")
    return out.getvalue()


def encoded_size(result: Any) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


async def test_thirty_images_fit_one_result_under_1_mib(settings: Any, fake: FakePoe) -> None:
    picture = noise_png(200)  # ~120 KB each: 30 of them inline would be ~4.8 MB of base64
    links = [fake.cdn_url(f"p{i}.png", picture, "image/png") for i in range(30)]
    fake.enqueue(Reply(text="\n".join(f"![p{i}]({url})" for i, url in enumerate(links))))
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "thirty"})
    assert not result.is_error, result.content[0].text
    assert len(result.structured_content["files"]) == 30 and len(saved_files(settings)) == 30
    kinds = [block.type for block in result.content]
    assert kinds == ["text", "image"] + ["resource_link"] * 30, "one preview, a link for each"
    assert encoded_size(result) < 1024 * 1024, f"{encoded_size(result)} bytes"


async def test_an_image_whose_base64_would_not_fit_travels_as_a_preview(
    settings: Any, fake: FakePoe
) -> None:
    picture = noise_png(580)
    assert 760_000 < len(picture) < 1_000_000, len(picture)  # inlined whole before: 1.3 MB encoded
    fake.enqueue(Reply(text=fake.cdn_url("big.png", picture, "image/png")))
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "big"})
    assert result.content[1].type == "image" and result.content[1].mime_type == "image/jpeg"
    assert encoded_size(result) < 1024 * 1024


async def test_a_picture_too_large_to_decode_is_saved_without_a_preview(
    settings: Any, fake: FakePoe
) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    # A valid PNG header claiming 20000 x 20000 pixels (1.2 GB decoded) in a 2 MB file.
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
    bomb = PNG[:8] + header + chunk(b"IDAT", b"\x00" * 2_000_000) + chunk(b"IEND", b"")
    fake.enqueue(Reply(text=fake.cdn_url("bomb.png", bomb, "image/png")))
    async with connect(settings) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("generate_image", {"prompt": "bomb"})
    assert not result.is_error and [b.type for b in result.content] == ["text", "resource_link"]
    assert result.structured_content["files"][0]["bytes"] == len(bomb)


async def test_recent_jobs_and_their_files_are_a_resource(settings: Any, fake: FakePoe) -> None:
    fake.video_steps = 1000
    async with connect(settings, video_poll_interval=0.05) as client:
        running = await client.call_tool(
            "generate_video", {"prompt": "a slow comet", "max_wait": 0}
        )
        fake.video_steps = 1
        finished = await client.call_tool("generate_video", {"prompt": "a quick wave"})
        listed = await client.read_resource("poe-mcp://generations")
    newest, oldest = json.loads(listed.contents[0].text)
    assert newest["job_id"] == finished.structured_content["job_id"]
    assert newest["status"] == "completed" and newest["points"] == 4200
    assert newest["files"][0]["uri"] == finished.structured_content["files"][0]["uri"]
    assert oldest["job_id"] == running.structured_content["job_id"]
    assert oldest["prompt"] == "a slow comet" and oldest["files"] == []


async def test_list_generations_lists_recent_jobs_and_their_files(
    settings: Any, fake: FakePoe
) -> None:
    fake.video_steps = 1000
    async with connect(settings, video_poll_interval=0.05) as client:
        running = await client.call_tool(
            "generate_video", {"prompt": "a slow comet", "max_wait": 0}
        )
        fake.video_steps = 1
        finished = await client.call_tool("generate_video", {"prompt": "a quick wave"})
        listed = await client.call_tool("list_generations", {"limit": 5})
    newest, oldest = listed.structured_content["jobs"]
    assert newest["job_id"] == finished.structured_content["job_id"] and newest["points"] == 4200
    assert newest["files"][0]["uri"] == finished.structured_content["files"][0]["uri"]
    assert oldest["job_id"] == running.structured_content["job_id"] and oldest["files"] == []
    first, second = listed.content[0].text.splitlines()
    assert newest["files"][0]["path"] in first and "4200 points" in first
    assert f'generate_video(job_id="{oldest["job_id"]}")' in second


async def test_inline_base64_from_the_images_endpoint_is_saved(
    settings: Any, fake: FakePoe
) -> None:
    fake.enqueue(Reply(body={"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode()}]}))
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "a cat", "model": "DALL-E-3"})
    assert not result.is_error, result.content[0].text
    [saved] = result.structured_content["files"]
    assert Path(saved["path"]).read_bytes() == PNG and saved["mime_type"] == "image/png"
    assert result.structured_content["cost_usd"] == 0.045, "dall-e-3 is priced per request"


async def test_images_fall_back_to_chat_when_the_endpoint_is_missing(
    settings: Any, fake: FakePoe
) -> None:
    fake.images_missing = True
    fake.enqueue(Reply(text=fake.cdn_url("cat.png", PNG, "image/png")))
    async with connect(settings) as client:
        result = await client.call_tool("generate_image", {"prompt": "a cat"})
    assert not result.is_error, result.content[0].text
    assert [r["path"] for r in fake.requests if r["path"].startswith("/v1/")][-2:] == [
        "/v1/images",
        "/v1/chat/completions",
    ]
    assert len(result.structured_content["files"]) == 1


async def test_an_audio_only_endpoint_model_falls_back_to_chat_on_404(
    settings: Any, fake: FakePoe
) -> None:
    mp3 = b"ID3\x04" + b"\x00" * 500
    fake.enqueue(Reply(text=fake.cdn_url("v3.mp3", mp3, "audio/mpeg")))
    async with connect(settings) as client:
        result = await client.call_tool(
            "generate_audio", {"prompt": "Say hi", "model": "ElevenLabs-v3"}
        )
    assert not result.is_error, result.content[0].text
    audio_posts = [r for r in fake.requests if r["path"] == "/v1/audio"]
    assert len(audio_posts) == 1, "the catalog routes elevenlabs-v3 to /v1/audio: tried first"
    assert fake.chat_requests()[-1]["json"]["model"] == "elevenlabs-v3"
    assert result.structured_content["files"][0]["mime_type"] == "audio/mpeg"


async def test_a_job_id_that_is_not_one_is_refused_before_any_request(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool("generate_video", {"job_id": "../../models"})
        no_prompt = await client.call_tool("generate_video", {})
    assert result.is_error and "'../../models' is not a video job id" in result.content[0].text
    assert no_prompt.is_error and "or pass the job_id" in no_prompt.content[0].text
    assert not [r for r in fake.requests if r["path"].startswith("/v1/videos")]


async def test_seconds_and_size_become_a_chat_video_bots_own_parameters(
    settings: Any, fake: FakePoe
) -> None:
    fake.enqueue(Reply(text=fake.cdn_url("k.mp4", MP4, "video/mp4")))
    async with connect(settings) as client:
        result = await client.call_tool(
            "generate_video",
            {"prompt": "x", "model": "Kling-2.5-Turbo-Pro", "seconds": 10, "size": "720x1280"},
        )
        refused = await client.call_tool(
            "generate_video", {"prompt": "x", "model": "Wan-2.2", "seconds": 5}
        )
    assert not result.is_error, result.content[0].text
    sent = fake.chat_requests()[-1]["json"]
    assert sent["duration"] == "10" and sent["aspect"] == "9:16"
    assert refused.is_error and "wan-2.2 cannot be asked for a length" in refused.content[0].text
    assert len(fake.chat_requests()) == 1


# -- media in chat answers ------------------------------------------------------------------------


async def test_ask_poe_saves_an_image_answer_and_fills_media(
    any_settings: Any, fake: FakePoe
) -> None:
    """A chat image bot's answer: a Markdown link to the CDN over /v1, a `file` event over the bot protocol."""
    url = fake.cdn_url("answer.png", PNG, "image/png")
    if any_settings.backend == "fastapi_poe":
        fake.enqueue(Reply(text="Here is your cat.", files=[(url, "image/png", "answer.png")]))
    else:
        fake.enqueue(Reply(text=f"Here is your cat. ![cat]({url})"))
    async with connect(any_settings) as client:
        result = await client.call_tool("ask_poe", {"bot": "Nano-Banana", "prompt": "a cat"})
        assert not result.is_error, result.content[0].text
        [saved] = result.structured_content["media"]
        resource = await client.read_resource(saved["uri"])
    assert Path(saved["path"]).read_bytes() == PNG and saved["url"] == url
    assert saved["mime_type"] == "image/png" and saved["bytes"] == len(PNG)
    assert base64.b64decode(resource.contents[0].blob) == PNG
    kinds = [block.type for block in result.content]
    assert kinds == ["text", "text", "image", "resource_link"], "a small image inline, and its link"
    assert result.content[3].uri == saved["uri"]
    assert f"Saved {saved['path']}" in result.content[1].text, "the handles name the saved file"
    assert result.structured_content["text"].startswith("Here is your cat.")


async def test_ask_poe_leaves_links_in_prose_alone(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text="See https://docs.python.org/3/ and ![x](https://example.com/a.png)."))
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "links?"})
    assert not result.is_error and result.structured_content["media"] == []
    assert [block.type for block in result.content] == ["text", "text"]
    assert result.structured_content["notes"] == [], "a link off Poe's CDN is prose, not a skip"
    assert not [r for r in fake.requests if r["path"].startswith("/cdn/")]


async def test_ask_poe_reports_an_answer_file_it_could_not_save(
    settings: Any, fake: FakePoe
) -> None:
    gone = f"http://127.0.0.1:{fake.port}/cdn/expired.png"  # on the CDN's origin, but not there
    fake.enqueue(Reply(text=f"![x]({gone})"))
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {"bot": "Nano-Banana", "prompt": "a cat"})
    assert not result.is_error and result.structured_content["media"] == []
    [note] = result.structured_content["notes"]
    assert note.startswith(f"not saved: {gone}") and "404" in note
    assert "not saved" in result.content[1].text


# -- input_reference ------------------------------------------------------------------------------


async def test_a_reference_image_goes_as_multipart_input_reference(
    settings: Any, fake: FakePoe, workdir: Path
) -> None:
    fake.video_steps = 1
    (workdir / "start.png").write_bytes(PNG)
    async with connect(settings, video_poll_interval=0.05) as client:
        result = await client.call_tool(
            "generate_video",
            {
                "prompt": "animate",
                "model": "Sora-2",
                "seconds": 8,
                "size": "1280x720",
                "reference": str(workdir / "start.png"),
            },
        )
    assert not result.is_error, result.content[0].text
    assert created_videos(fake) == [
        {
            "model": "sora-2",
            "prompt": "animate",
            "seconds": "8",
            "size": "1280x720",
            "input_reference": {"filename": "start.png", "content_type": "image/png", "bytes": PNG},
        }
    ]
    assert result.structured_content["files"][0]["mime_type"] == "video/mp4"


@pytest.mark.parametrize(
    ("model", "where", "expected"),
    [
        ("Sora-2", "outside", "outside the folders"),  # sandboxed like attachments
        ("Sora-2", "text", "must be an image"),
        ("Veo-3", "inside", "takes no image"),  # text->video only
    ],
)
async def test_a_reference_is_refused_before_any_request(
    settings: Any,
    fake: FakePoe,
    workdir: Path,
    tmp_path: Path,
    model: str,
    where: str,
    expected: str,
) -> None:
    (tmp_path / "secret.png").write_bytes(PNG)
    (workdir / "notes.txt").write_text("not an image")
    (workdir / "ok.png").write_bytes(PNG)
    path = {
        "outside": tmp_path / "secret.png",
        "text": workdir / "notes.txt",
        "inside": workdir / "ok.png",
    }
    async with connect(settings) as client:
        result = await client.call_tool(
            "generate_video", {"prompt": "x", "model": model, "reference": str(path[where])}
        )
    assert result.is_error and expected in result.content[0].text, result.content[0].text
    assert created_videos(fake) == []
