"""Bounded upstream work (issue 17, item 6) and the one request policy (issue 13, item 2): every request
ends by POE_MCP_TIMEOUT overall, however slowly Poe drips; a streamed answer is cut at
POE_MCP_MAX_RESPONSE_MB and nothing of it stored; Poe's messages are clipped; odd shapes are
`upstream_error`; a local timeout and an unreadable 200 are not retried; the cause chain is logged."""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import connect
from fakepoe import FakePoe, Reply

from poe_mcp.conversations import open_store
from poe_mcp.poe.errors import (
    LocalTimeoutError,
    PoeConnectionError,
    PoeTimeoutError,
    UnparseableResponseError,
    UpstreamError,
)
from poe_mcp.poe.retry import should_retry

pytestmark = pytest.mark.anyio
ASK = {"bot": "gpt-4-turbo", "prompt": "hi"}


def rss_bytes() -> int:
    """This process's resident memory, from /proc (no psutil)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_a_one_byte_per_second_answer_ends_at_the_deadline(
    settings: Any, fake: FakePoe, stream: bool
) -> None:
    async with connect(settings, timeout=2.0) as client:
        await client.call_tool("ask_poe", {**ASK, "stream": stream})  # the SDK imported, warm
        fake.enqueue(Reply(text="a long answer that arrives very slowly", drip=1.0))
        started = time.monotonic()
        result = await client.call_tool("ask_poe", {**ASK, "stream": stream})
        elapsed = time.monotonic() - started
    assert result.is_error, result.content[0].text
    assert "POE_MCP_TIMEOUT (2 s)" in result.content[0].text
    assert elapsed < 4.5, f"the drip outlived the deadline: {elapsed:.1f} s"
    assert len(fake.chat_requests()) == 2, "a local timeout is not retried"


async def test_an_endless_stream_is_cut_at_the_cap_with_memory_bounded_and_nothing_stored(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings, max_response_mb=1.0) as client:
        first = await client.call_tool("ask_poe", ASK)
        sid = first.structured_content["session_id"]
        fake.enqueue(Reply(text="and then ", endless=True))
        before = rss_bytes()
        started = time.monotonic()
        result = await client.call_tool("ask_poe", {**ASK, "prompt": "more", "session_id": sid})
        elapsed = time.monotonic() - started
        grown = rss_bytes() - before
    text = result.content[0].text
    assert result.is_error and text.startswith("response_too_large"), text
    assert "POE_MCP_MAX_RESPONSE_MB (1 MB)" in text and len(text) < 1000
    assert fake.endless_bytes < 20_000_000, "the client hung up soon after the cap"
    assert grown < 60_000_000, f"RSS grew {grown / 1e6:.0f} MB"
    assert elapsed < 20 and len(fake.chat_requests()) == 2, "cut once, not retried"
    store = open_store(settings.store)
    try:
        stored = (await store.load(sid)).messages
    finally:
        await store.aclose()
    assert [m["content"] for m in stored] == ["hi", "Echo: hi"], "nothing of the cut turn stored"


async def test_a_json_answer_past_the_cap_is_cut_too(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text="y" * 2_000_000))
    async with connect(settings, max_response_mb=1.0) as client:
        result = await client.call_tool("ask_poe", {**ASK, "stream": False})
        sessions = await client.call_tool("list_sessions", {})
    assert result.is_error and result.content[0].text.startswith("response_too_large")
    assert len(fake.chat_requests()) == 1
    assert "yyyy" not in str(sessions.structured_content)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_a_5_mb_error_message_arrives_truncated(
    settings: Any, fake: FakePoe, stream: bool
) -> None:
    fake.error(400, "invalid_request_error", "A" * 5_000_000)
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {**ASK, "stream": stream})
    text = result.content[0].text
    assert result.is_error and text.startswith("invalid_request_error (400): AAAA")
    assert len(text) < 700 and "more characters not shown" in text
    assert len(result.structured_content["error"]["message"]) < 400


ODD_USAGE: list[Any] = [
    {"prompt_tokens": -5, "completion_tokens": 2, "total_tokens": 2},
    {"prompt_tokens": "12", "completion_tokens": 2},
    {"prompt_tokens": 1.5, "completion_tokens": 2},
    {"prompt_tokens": 1, "completion_tokens": True},
    {"prompt_tokens": 1, "prompt_tokens_details": ["cached", 3]},
    [1, 2, 3],
    "lots",
]


@pytest.mark.parametrize("usage", ODD_USAGE, ids=lambda u: repr(u)[:30])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_odd_usage_shapes_are_an_upstream_error(
    settings: Any, fake: FakePoe, usage: Any, stream: bool
) -> None:
    fake.enqueue(Reply(text="counted oddly", usage=usage))
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {**ASK, "stream": stream})
        after = await client.call_tool("ask_poe", {**ASK, "prompt": "next", "stream": False})
    assert result.is_error and result.content[0].text.startswith("upstream_error"), result
    assert "usage" in result.content[0].text
    assert not after.is_error, "the server serves the next call"
    assert len(fake.chat_requests()) == 2, "Poe's answer in an odd shape is not retried"


@pytest.mark.parametrize(
    "body",
    [[1, 2, 3], "plain text", 42, {"choices": ["not an object"]}, {"choices": [{"message": 7}]}],
    ids=["list", "text", "number", "choice not an object", "message not an object"],
)
async def test_a_body_that_is_not_a_completion_object_is_an_upstream_error(
    settings: Any, fake: FakePoe, body: Any
) -> None:
    fake.enqueue(Reply(body=body) if not isinstance(body, str) else Reply(body=body))
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {**ASK, "stream": False})
    assert result.is_error and result.content[0].text.startswith("upstream_error"), result
    assert len(fake.chat_requests()) == 1, "an unreadable 200 is not retried"


async def test_a_local_timeout_is_not_retried(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(*[Reply(text="too late", hang=30)] * 3)
    async with connect(settings, timeout=1.0) as client:
        result = await client.call_tool("ask_poe", {**ASK, "stream": False})
    assert result.is_error and result.content[0].text.startswith("timeout_error:")
    assert len(fake.chat_requests()) == 1


async def test_an_unparseable_200_is_not_retried_on_any_verb(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(*[Reply(body="{not json", headers={"content-type": "application/json"})] * 3)
    async with connect(settings) as client:
        chat = await client.call_tool("ask_poe", {**ASK, "stream": False})
    assert chat.is_error and chat.content[0].text.startswith("upstream_error (502)")
    assert len(fake.chat_requests()) == 1


def test_should_retry_is_one_table() -> None:
    assert should_retry(PoeTimeoutError("408 from Poe"))
    assert not should_retry(LocalTimeoutError("ours"))
    assert should_retry(UpstreamError("502"))
    assert not should_retry(UnparseableResponseError("a 200 we could not read"))
    assert should_retry(PoeConnectionError("refused"))
    with pytest.raises(AttributeError):
        UpstreamError("no per-instance override").retryable = False  # type: ignore[misc]


async def test_a_debug_log_shows_the_chained_cause(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a port nothing listens on: the connection is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = replace(settings, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    caplog.set_level(logging.DEBUG, logger="poe_mcp")
    async with connect(closed) as client:
        result = await client.call_tool("ask_poe", {**ASK, "stream": False})
    assert result.is_error and result.content[0].text.startswith("connection_error")
    logged = caplog.text
    assert "ConnectError" in logged, logged[-2000:]
    assert "direct cause of the following exception" in logged
    assert "PoeConnectionError" in logged
