"""Poe's failures become isError results an agent can act on; retries follow the policy; bad input costs nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from conftest import connect
from fakepoe import FakePoe, Reply

pytestmark = pytest.mark.anyio

NOT_RETRIED = [
    (400, "invalid_request_error"),
    (401, "authentication_error"),
    (402, "insufficient_credits"),
    (403, "moderation_error"),
    (404, "not_found_error"),
    (413, "request_too_large"),
]
RETRIED = [
    (408, "timeout_error"),
    (429, "rate_limit_error"),
    (500, "provider_error"),
    (502, "upstream_error"),
    (503, "upstream_error"),
    (529, "overloaded_error"),
]


@pytest.mark.parametrize(("status", "kind"), NOT_RETRIED)
async def test_permanent_errors_are_reported_at_once(
    settings: Any, fake: FakePoe, mode: str, status: int, kind: str
) -> None:
    fake.error(status, kind, "scripted failure")
    async with connect(settings, mode) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
        after = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "still there?"})
    assert result.is_error
    assert result.content[0].text.startswith(f"{kind} ({status}): scripted failure.")
    assert len(fake.chat_requests()) == 2, "not retried; and the server serves the next call"
    assert not after.is_error


@pytest.mark.parametrize(("status", "kind"), RETRIED)
async def test_transient_errors_are_retried_then_succeed(
    settings: Any, fake: FakePoe, status: int, kind: str
) -> None:
    fake.error(status, kind)
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "stream": False}
        )
    assert not result.is_error and result.content[0].text == "Echo: hi"
    assert len(fake.chat_requests()) == 2


async def test_retry_after_is_honoured(settings: Any, fake: FakePoe) -> None:
    fake.error(429, "rate_limit_error", **{"retry-after": "1"})
    async with connect(settings) as client:
        started = time.monotonic()
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
        elapsed = time.monotonic() - started
    assert not result.is_error
    assert len(fake.chat_requests()) == 2
    assert elapsed >= 1.0, "waited as Poe told"


async def test_rate_limit_forever_gives_up_after_the_configured_retries(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    fake.error(429, "rate_limit_error", "slow down", times=10)
    async with connect(settings, mode, max_retries=3) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
    assert result.is_error
    text = result.content[0].text
    assert text.startswith("rate_limit_error (429): slow down. Retried 3 times over ")
    assert len(fake.chat_requests()) == 4


async def test_an_absurd_retry_after_is_not_waited_out(settings: Any, fake: FakePoe) -> None:
    fake.error(429, "rate_limit_error", **{"retry-after": "86400"})
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
    assert result.is_error and "wait 86400 s" in result.content[0].text
    assert len(fake.chat_requests()) == 1


async def test_no_key_fails_without_sending_anything(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode, api_key=None) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
        models = await client.call_tool("list_models", {"limit": 1})
    assert result.is_error and result.content[0].text.startswith(
        "authentication_error (401): No Poe API key is configured"
    )
    assert "POE_API_KEY" in result.content[0].text
    assert fake.chat_requests() == []
    assert not models.is_error, "the catalog is public and works without a key"


async def test_unknown_bot_gets_suggestions_from_poe_404(settings: Any, fake: FakePoe) -> None:
    fake.error(404, "not_found_error", "Model `gpt-4-turbbo` not found")
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbbo", "prompt": "hi"})
    assert (
        result.is_error
        and result.content[0].text.startswith("not_found_error (404)")
        and "gpt-4-turbo" in result.content[0].text
    )


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        ({"prompt": "hi", "temperature": 3}, "temperature"),
        ({"prompt": "hi", "top_p": -1}, "top_p"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt is empty"),
        (
            {"prompt": "hi", "bot": "gemini-2.5-pro", "parameters": {"aspect": "16:9"}},
            "thinking_budget, web_search",
        ),
        (
            {"prompt": "hi", "bot": "gemini-2.5-pro", "parameters": {"thinking_budget": "lots"}},
            "thinking_budget",
        ),
        (
            {"prompt": "hi", "bot": "gemini-2.5-pro", "parameters": {"thinking_budget": 10**9}},
            "maximum",
        ),
        ({"prompt": "hi", "bot": "test-flat-fee", "parameters": {"mood": "angry"}}, "mood"),
    ],
)
async def test_bad_inputs_are_refused_before_any_request(
    settings: Any, fake: FakePoe, mode: str, arguments: dict[str, Any], needle: str
) -> None:
    async with connect(settings, mode) as client:
        result = await client.call_tool("ask_poe", arguments)
    assert result.is_error
    assert result.content[0].text.startswith("invalid_request_error (400):")
    assert needle in result.content[0].text
    assert fake.chat_requests() == []


async def test_poe_down_is_a_connection_error(settings: Any, fake: FakePoe) -> None:
    async with connect(settings, base_url="http://127.0.0.1:9/v1", max_retries=1) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
    assert result.is_error and result.content[0].text.startswith(
        "connection_error: Could not reach Poe"
    )


async def test_an_html_error_page_and_empty_choices(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(
        Reply(status=502, body="<html><h1>502 Bad Gateway</h1></html>"),
        Reply(body={"id": "x", "choices": []}),
    )
    async with connect(settings, max_retries=0) as client:
        html = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "stream": False}
        )
        empty = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "stream": False}
        )
    assert html.is_error and html.content[0].text.startswith(
        "upstream_error (502): Poe answered HTTP 502"
    )
    assert empty.is_error and empty.content[0].text.startswith("upstream_error")


async def test_the_catalog_outlives_an_outage(settings: Any, fake: FakePoe) -> None:
    async with connect(settings) as client:
        assert not (await client.call_tool("list_models", {"limit": 1})).is_error
    cache = settings.cache_dir / "models.json"
    saved = json.loads(cache.read_text())
    cache.write_text(
        json.dumps({**saved, "fetched_at": 0})
    )  # long expired: a refresh will be tried
    fake.stop()  # ... and Poe is gone, so the last good copy must serve
    async with connect(settings, max_retries=0) as client:
        result = await client.call_tool("get_model_info", {"model": "grok-4"})
    assert not result.is_error and result.structured_content["id"] == "grok-4"


# Every tool that spends, with arguments that reach Poe's chat endpoint.
PAID_CALLS = [
    ("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"}),
    (
        "ask_poe_with_tools",
        {
            "bot": "gpt-4-turbo",
            "prompt": "hi",
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
            ],
        },
    ),
    ("chat_completion", {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}),
    ("generate_image", {"prompt": "a cat"}),
    ("generate_audio", {"prompt": "hello"}),
]


async def test_a_bug_in_a_tool_is_one_line_of_internal_error_and_the_next_call_works(
    settings: Any, fake: FakePoe, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from conftest import SECRET_KEY

    from poe_mcp.services.conversations import ChatService

    real_ask = ChatService.ask
    calls = 0

    async def ask_with_a_bug(self: ChatService, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # a fault of ours, whose message happens to hold the key
            raise KeyError(f"bad state near {SECRET_KEY}")
        return await real_ask(self, *args, **kwargs)

    monkeypatch.setattr(ChatService, "ask", ask_with_a_bug)
    async with connect(settings) as client:
        broken = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
        after = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
    text = broken.content[0].text
    assert broken.is_error and text.startswith(
        "internal_error: ask_poe failed unexpectedly (KeyError)."
    )
    assert "Traceback" not in text and SECRET_KEY not in text and "\n" not in text
    assert not after.is_error and after.content[0].text == "Echo: hi"
    assert any("KeyError" in (r.exc_text or "") for r in caplog.records), "the traceback is logged"


# Poe's whole status table, as each tool reports it once the (disabled) retries are spent.
STATUS_TABLE = [*NOT_RETRIED, *RETRIED]
EVERY_TOOL_THAT_CALLS_POE = [
    *PAID_CALLS,
    (
        "ask_with_attachment",
        {"bot": "gpt-4-turbo", "prompt": "hi", "attachment_path": "data:text/plain;base64,aGk="},
    ),
    ("generate_video", {"prompt": "a wave", "model": "veo-3.1-lite"}),  # the /v1/videos path
    ("generate_video", {"prompt": "a wave", "model": "kling-v3"}),  # the chat path
    ("get_usage", {}),
    ("list_models", {}),
]


@pytest.mark.parametrize(
    ("tool", "arguments"),
    EVERY_TOOL_THAT_CALLS_POE,
    ids=[f"{name}-{arguments.get('model', '')}" for name, arguments in EVERY_TOOL_THAT_CALLS_POE],
)
async def test_every_tool_reports_the_whole_status_table(
    settings: Any, fake: FakePoe, tool: str, arguments: dict[str, Any]
) -> None:
    from dataclasses import replace

    async with connect(replace(settings, max_retries=0), video_poll_interval=0.05) as client:
        for status, kind in STATUS_TABLE:
            fake.outage = (status, kind)
            result = await client.call_tool(tool, arguments)
            assert result.is_error, (status, result.content)
            assert result.content[0].text.startswith(f"{kind} ({status}): "), (
                status,
                result.content[0].text,
            )
        fake.outage = None
        after = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "still there?"})
        assert not after.is_error, "and the server serves on"


@pytest.mark.parametrize(
    ("tool", "arguments"),
    EVERY_TOOL_THAT_CALLS_POE,
    ids=[f"{name}-{arguments.get('model', '')}" for name, arguments in EVERY_TOOL_THAT_CALLS_POE],
)
async def test_every_tool_reports_a_refused_connection_and_a_timeout(
    settings: Any, fake: FakePoe, tool: str, arguments: dict[str, Any]
) -> None:
    from dataclasses import replace

    closed = replace(settings, max_retries=0, base_url="http://127.0.0.1:9/v1")
    async with connect(closed) as client:
        refused = await client.call_tool(tool, arguments)
    assert refused.is_error and refused.content[0].text.startswith("connection_error: ")
    fake.stall = 1  # longer than the timeout; short, since the fake's teardown waits it out
    async with connect(replace(settings, max_retries=0, timeout=0.3)) as client:
        late = await client.call_tool(tool, arguments)
    assert late.is_error and late.content[0].text.startswith("timeout_error"), late.content[0].text
