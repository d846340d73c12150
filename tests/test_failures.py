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


@pytest.mark.parametrize(("tool", "arguments"), PAID_CALLS, ids=[name for name, _ in PAID_CALLS])
@pytest.mark.parametrize(
    ("status", "kind"), [(401, "authentication_error"), (402, "insufficient_credits")]
)
async def test_every_paid_tool_reports_poes_error_type(
    settings: Any, fake: FakePoe, tool: str, arguments: dict[str, Any], status: int, kind: str
) -> None:
    fake.error(status, kind, "scripted failure")
    async with connect(settings) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert result.content[0].text.startswith(f"{kind} ({status}): scripted failure."), (
        result.content[0].text
    )


async def test_a_bug_in_a_tool_is_one_line_of_internal_error_and_the_next_call_works(
    settings: Any, fake: FakePoe, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from conftest import SECRET_KEY

    from poe_mcp.chat import ChatService

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
