"""Several HTTP replicas sharing one Redis: conversations, appends, media and the request budget."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fakepoe import MP4, PNG, FakePoe, Reply
from servers import http_replica, redis_server
from test_http import connect_http

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        if url is None:
            pytest.skip(
                "redis-server is not installed (.ci/run installs it with apt-get); replica tests need a real Redis"
            )
        yield url


async def test_turn_two_on_another_replica_sends_the_whole_history(
    fake: FakePoe, tmp_path: Path, redis_url: str
) -> None:
    with (
        http_replica(fake, tmp_path, "a", POE_MCP_STORE=redis_url) as a,
        http_replica(fake, tmp_path, "b", POE_MCP_STORE=redis_url) as b,
    ):
        async with connect_http(a) as client:
            first = await client.call_tool(
                "ask_poe", {"bot": "gpt-4-turbo", "prompt": "I am on A", "system": "Short."}
            )
        async with connect_http(b, mode="legacy") as client:
            await client.call_tool(
                "ask_poe",
                {
                    "bot": "gpt-4-turbo",
                    "prompt": "now B",
                    "session_id": first.structured_content["session_id"],
                },
            )
            listed = await client.call_tool("list_sessions", {})
    assert fake.chat_requests()[-1]["json"]["messages"] == [
        {"role": "system", "content": "Short."},
        {"role": "user", "content": "I am on A"},
        {"role": "assistant", "content": "Echo: I am on A"},
        {"role": "user", "content": "now B"},
    ]
    assert listed.structured_content["sessions"][0]["turns"] == 2


async def test_concurrent_turns_from_two_replicas_keep_one_valid_history(
    fake: FakePoe, tmp_path: Path, redis_url: str
) -> None:
    fake.latency = 0.2
    with (
        http_replica(fake, tmp_path, "a", POE_MCP_STORE=redis_url) as a,
        http_replica(fake, tmp_path, "b", POE_MCP_STORE=redis_url) as b,
    ):
        async with connect_http(a) as client_a, connect_http(b) as client_b:
            answers: dict[str, dict] = {}

            async def one(i: int) -> None:
                client = client_a if i % 2 else client_b
                result = await client.call_tool(
                    "ask_poe", {"bot": "gpt-4-turbo", "prompt": f"msg {i}", "session_id": "shared"}
                )
                assert not result.is_error and result.content[0].text == f"Echo: msg {i}"
                answers[f"msg {i}"] = result.structured_content

            await client_a.call_tool(
                "ask_poe",
                {
                    "bot": "gpt-4-turbo",
                    "prompt": "msg 0",
                    "session_id": "shared",
                    "new_session": True,
                },
            )
            async with anyio.create_task_group() as group:
                for i in range(1, 20):
                    group.start_soon(one, i)
            fake.latency = 0
            await client_a.call_tool(
                "ask_poe", {"bot": "gpt-4-turbo", "prompt": "final", "session_id": "shared"}
            )
            listed = await client_b.call_tool("list_sessions", {})
    stored = [p for p, a in answers.items() if not any("not stored" in n for n in a["notes"])]
    assert 1 <= len(stored) < 19, "turns built on the same history: one lands, the others are told"
    history = fake.chat_requests()[-1]["json"]["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["msg 0", *stored, "final"]
    assert [m["role"] for m in history] == ["user", "assistant"] * (len(stored) + 1) + ["user"], (
        "whole turns, never interleaved"
    )
    assert listed.structured_content["sessions"][0]["turns"] == len(stored) + 2


async def test_media_saved_by_one_replica_is_readable_from_another(
    fake: FakePoe, tmp_path: Path, redis_url: str
) -> None:
    fake.enqueue(Reply(text=fake.cdn_url("shared.png", PNG, "image/png")))
    with (
        http_replica(fake, tmp_path, "a", POE_MCP_STORE=redis_url) as a,
        http_replica(fake, tmp_path, "b", POE_MCP_STORE=redis_url) as b,
    ):
        async with connect_http(a) as client:
            result = await client.call_tool("generate_image", {"prompt": "x"})
        async with connect_http(b) as client:
            read = await client.read_resource(result.structured_content["files"][0]["uri"])
    assert base64.b64decode(read.contents[0].blob) == PNG


async def test_the_request_budget_is_shared_across_replicas(
    fake: FakePoe, tmp_path: Path, redis_url: str
) -> None:
    # RPM 2 across both: A's call and B's call use it up (the public catalog fetch is not counted).
    env = {"POE_MCP_STORE": redis_url, "POE_MCP_RPM": "2"}
    with (
        http_replica(fake, tmp_path, "a", **env) as a,
        http_replica(fake, tmp_path, "b", **env) as b,
    ):
        async with connect_http(a) as client_a, connect_http(b) as client_b:
            await client_a.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "1"})
            await client_b.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "2"})
            started = time.monotonic()
            with anyio.move_on_after(3):
                await client_b.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "3"})
            waited = time.monotonic() - started
    assert waited >= 2.9, (
        "B's second call waited for the window, though B itself had sent only one request"
    )
    assert [r["json"]["messages"][-1]["content"] for r in fake.chat_requests()] == ["1", "2"]


async def test_a_video_job_started_on_one_replica_is_fetched_from_another(
    fake: FakePoe, tmp_path: Path, redis_url: str
) -> None:
    fake.video_steps = 1000
    with (
        http_replica(fake, tmp_path, "a", POE_MCP_STORE=redis_url) as a,
        http_replica(fake, tmp_path, "b", POE_MCP_STORE=redis_url) as b,
    ):
        async with connect_http(a) as client:
            started = await client.call_tool("generate_video", {"prompt": "a comet", "max_wait": 0})
        fake.video_steps = 0
        async with connect_http(b) as client:
            done = await client.call_tool(
                "generate_video", {"job_id": started.structured_content["job_id"]}
            )
        async with connect_http(a) as client:
            again = await client.call_tool(
                "generate_video", {"job_id": started.structured_content["job_id"]}
            )
    assert started.structured_content["status"] == "in_progress"
    data = done.structured_content
    assert data["status"] == "completed" and data["model"] == "veo-3"
    assert again.structured_content["files"] == data["files"], "A found B's file through Redis"
    assert len([r for r in fake.requests if r["path"].endswith("/content")]) == 1
    assert Path(data["files"][0]["path"]).read_bytes() == MP4
