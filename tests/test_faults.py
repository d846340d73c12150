"""Faults: every failure Poe or the network can produce gives the right error, in bounded time, and the
server serves the next call."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest
from conftest import connect
from fakepoe import FakePoe, Reply
from test_failures import RETRIED

pytestmark = pytest.mark.anyio
HI = {"bot": "gpt-4-turbo", "prompt": "hi"}


async def call_then_recover(
    settings: Any, fake: FakePoe, arguments: dict[str, Any], **changes: Any
) -> tuple[Any, float]:
    """The faulty call, its duration, and proof that the next call still works."""
    async with connect(settings, **changes) as client:
        started = time.monotonic()
        result = await client.call_tool("ask_poe", arguments)
        elapsed = time.monotonic() - started
        after = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "next", "stream": False}
        )
    assert not after.is_error and after.content[0].text == "Echo: next", "the server still serves"
    return result, elapsed


@pytest.mark.parametrize(("status", "kind"), RETRIED)
async def test_permanent_retryable_errors_fail_after_the_retries(
    settings: Any, fake: FakePoe, status: int, kind: str
) -> None:
    fake.error(status, kind, "still down", times=3)
    result, _ = await call_then_recover(settings, fake, HI)
    assert result.is_error and result.content[0].text.startswith(
        f"{kind} ({status}): still down. Retried 2 times"
    )
    assert len(fake.chat_requests()) == 4  # 3 tries + the next call


async def test_retry_after_as_an_http_date(settings: Any, fake: FakePoe) -> None:
    retry_at = int(time.time()) + 3  # HTTP dates have whole seconds
    fake.error(
        429, "rate_limit_error", **{"retry-after": email.utils.formatdate(retry_at, usegmt=True)}
    )
    result, _ = await call_then_recover(settings, fake, HI)
    _, second = fake.chat_requests()[:2]
    assert not result.is_error
    assert second["at"] >= retry_at - 0.05, "the retry waited until the date Poe gave"


@pytest.mark.parametrize("stream", [True, False])
async def test_a_connection_reset_mid_body(settings: Any, fake: FakePoe, stream: bool) -> None:
    fake.enqueue(*[Reply(text="a partial answer here", cut_after=0 if stream else 1)] * 3)
    result, _ = await call_then_recover(settings, fake, {**HI, "stream": stream})
    assert result.is_error and result.content[0].text.startswith("connection_error")


async def test_a_server_that_never_answers_times_out(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text="too late", hang=30))
    result, elapsed = await call_then_recover(settings, fake, {**HI, "stream": False}, timeout=1.0)
    assert result.is_error and result.content[0].text.startswith(
        "timeout_error: Poe did not answer within POE_MCP_TIMEOUT (1 s)"
    )
    assert elapsed < 5, "not retried: it already waited the whole timeout"


async def test_a_stream_stalled_after_its_first_chunk(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(chunks=["started ", "never finished"], stall=30))
    result, elapsed = await call_then_recover(settings, fake, HI, timeout=1.0)
    assert result.is_error and result.content[0].text.startswith("timeout_error")
    assert result.structured_content["text"] == "started " and elapsed < 5


@pytest.mark.parametrize(
    ("reply", "tries"),
    [  # a 200 we could not parse is not retried (it may be paid for); a 502 page is
        (Reply(body="{not json", headers={"content-type": "application/json"}), 1),
        (Reply(body={"id": "x", "object": "chat.completion", "choices": []}), 3),
        (Reply(status=502, body="<html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"), 3),
    ],
    ids=["malformed JSON", "empty choices", "HTML error page"],
)
async def test_garbage_from_upstream(
    settings: Any, fake: FakePoe, reply: Reply, tries: int
) -> None:
    fake.enqueue(*[reply] * tries)
    result, _ = await call_then_recover(settings, fake, {**HI, "stream": False})
    assert result.is_error and result.content[0].text.startswith("upstream_error")
    assert len(fake.chat_requests()) == tries + 1  # the tries, then the next call
    assert "<html>" not in result.content[0].text
