"""Streaming: live progress, broken streams, tool-call deltas, cancellation, usage and cost."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import connect, env_for
from fakepoe import FakePoe, Reply
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio

SLOW = Reply(chunks=["The ", "quick ", "brown ", "fox ", "jumps ", "over."])


class Progress:
    def __init__(self) -> None:
        self.events: list[tuple[float, str | None, float]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, message, time.monotonic()))


async def test_a_slow_stream_reports_progress_with_text(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    fake.enqueue(SLOW)
    fake.chunk_delay = 0.3
    progress = Progress()
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "go"}, progress_callback=progress
        )
    assert result.content[0].text == "The quick brown fox jumps over."
    assert len(progress.events) >= 3
    assert all(message for _, message, _ in progress.events)
    values = [p for p, _, _ in progress.events]
    assert values == sorted(values) and len(set(values)) == len(values), "progress rises"
    assert "".join(m for _, m, _ in progress.events) == result.content[0].text
    first_shown_at = progress.events[0][2]
    assert progress.events[0][1] == "The ", "the first words show as they come"
    assert fake.first_token_at and first_shown_at - fake.first_token_at < 0.25, "before the next"
    assert fake.chat_requests()[-1]["json"]["stream_options"] == {"include_usage": True}


async def test_progress_over_stdio(fake: FakePoe, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    fake.enqueue(SLOW)
    fake.chunk_delay = 0.3
    progress = Progress()
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "poe_mcp"],
        env=env_for(fake, tmp_path),
        cwd=str(tmp_path),
    )
    async with Client(params) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "go"}, progress_callback=progress
        )
    assert result.content[0].text == "The quick brown fox jumps over." and len(progress.events) >= 3


async def test_a_cut_stream_keeps_its_text_and_is_not_retried(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    fake.enqueue(Reply(chunks=["Half ", "an ", "answer ", "never ends"], cut_after=3))
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "go", "session_id": "s", "new_session": True},
        )
        after = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "next", "session_id": "s", "new_session": True},
        )
    assert result.is_error
    assert result.content[0].text.startswith("connection_error: ")
    assert "incomplete" in result.content[0].text
    assert result.content[1].text == "Half an answer "
    assert (
        result.structured_content["text"] == "Half an answer "
        and result.structured_content["finish_reason"] == "error"
    )
    assert len(fake.chat_requests()) == 2, "no retry after text went out"
    assert fake.chat_requests()[-1]["json"]["messages"] == [{"role": "user", "content": "next"}], (
        "the broken turn was not stored"
    )
    assert not after.is_error


async def test_a_stream_that_ends_cleanly_without_finish_reason_is_the_answer(
    settings: Any, fake: FakePoe
) -> None:
    fake.enqueue(Reply(text="all of it", no_finish=True))  # as Poe ends some providers' streams
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "go"})
    assert not result.is_error and result.content[0].text == "all of it"
    assert result.structured_content["finish_reason"] == "stop"
    assert any("without a finish_reason" in note for note in result.structured_content["notes"])
    assert len(fake.chat_requests()) == 1, "a paid answer is not sent again"


async def test_streamed_tool_calls_without_finish_reason_are_kept_and_not_resent(
    settings: Any, fake: FakePoe
) -> None:
    call = {
        "id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Paris", "unit": "celsius"}',
    }
    fake.enqueue(Reply(tool_calls=[call], no_finish=True))  # Grok-4, Gemini, Qwen... on Poe
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe_with_tools", {"bot": "gpt-4-turbo", "prompt": "weather?", "tools": tools}
        )
    assert not result.is_error, result.content[0].text
    calls = result.structured_content["tool_calls"]
    assert [(c["id"], c["name"], c["arguments"]) for c in calls] == [
        ("call_1", "get_weather", {"city": "Paris", "unit": "celsius"})
    ]
    assert result.structured_content["finish_reason"] == "tool_calls"
    assert len(fake.chat_requests()) == 1, "paid for once"


async def test_a_stream_broken_after_a_tool_call_delta_is_not_resent(
    settings: Any, fake: FakePoe
) -> None:
    fake.enqueue(
        Reply(tool_calls=[{"id": "call_1", "name": "f", "arguments": "{}"}], cut_in_tool_call=True)
    )
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe_with_tools", {"bot": "gpt-4-turbo", "prompt": "go", "tools": tools}
        )
    assert result.is_error and result.content[0].text.startswith("connection_error")
    assert len(fake.chat_requests()) == 1, "output had arrived: the paid request is not sent again"


async def test_a_stream_cut_before_any_text_is_retried(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(chunks=["never"], cut_after=0))
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "go"})
    assert not result.is_error and result.content[0].text == "Echo: go"
    assert len(fake.chat_requests()) == 2


async def test_a_missing_usage_chunk_is_tolerated(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text="no usage here", no_usage=True))
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "go"})
    assert not result.is_error
    assert (
        result.structured_content["usage"] is None and result.structured_content["cost_usd"] is None
    )
    assert "no token usage" in result.structured_content["notes"][0], "and it says so"


async def test_streamed_tool_call_deltas_match_the_json_path(settings: Any, fake: FakePoe) -> None:
    calls = [
        {"id": "c1", "name": "lookup", "arguments": '{"query": "a long argument string", "n": 3}'},
        {"id": "c2", "name": "other", "arguments": "{}"},
    ]
    tools = [
        {"name": "lookup", "parameters": {"type": "object"}},
        {"name": "other", "parameters": {"type": "object"}},
    ]
    fake.enqueue(Reply(tool_calls=calls), Reply(tool_calls=calls))
    async with connect(settings) as client:
        streamed = await client.call_tool(
            "ask_poe_with_tools", {"bot": "grok-4", "prompt": "go", "tools": tools, "stream": True}
        )
        plain = await client.call_tool(
            "ask_poe_with_tools", {"bot": "grok-4", "prompt": "go", "tools": tools, "stream": False}
        )
    assert streamed.structured_content["tool_calls"] == plain.structured_content["tool_calls"]
    assert streamed.structured_content["tool_calls"][0]["arguments"] == {
        "query": "a long argument string",
        "n": 3,
    }


async def test_cancelling_a_call_closes_the_upstream_stream(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(chunks=[f"word{i} " for i in range(50)]))
    fake.chunk_delay = 0.1
    async with connect(settings) as client:
        with anyio.move_on_after(1.0):
            await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "go"})
        with anyio.fail_after(3):
            while fake.streams_aborted == 0:
                await anyio.sleep(0.05)
        # the server is still serving
        fake.chunk_delay = 0
        assert not (
            await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "next"})
        ).is_error


@pytest.mark.parametrize(
    ("bot", "reply", "expected"),
    [
        (
            "gpt-4-turbo",
            Reply(
                text="x",
                usage={"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
            ),
            None,
        ),
        ("test-flat-fee", Reply(text="x"), 0.002),
        ("assistant", Reply(text="x"), None),
    ],
)
async def test_cost_comes_from_the_catalog_pricing(
    settings: Any, fake: FakePoe, bot: str, reply: Reply, expected: float | None
) -> None:
    fake.enqueue(reply)
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {"bot": bot, "prompt": "go", "stream": False})
        info = await client.call_tool("get_model_info", {"model": bot})
    cost = result.structured_content["cost_usd"]
    pricing = info.structured_content["pricing"]
    if bot == "gpt-4-turbo":
        assert cost == pytest.approx(
            1000 * pricing["input_per_million"] / 1e6 + 500 * pricing["output_per_million"] / 1e6
        )
    else:
        assert cost == expected


async def test_get_usage_pages_through_history(settings: Any, fake: FakePoe, mode: str) -> None:
    async with connect(settings, mode) as client:
        await client.call_tool("ask_poe", {"bot": "test-flat-fee", "prompt": "count me"})
        first = await client.call_tool("get_usage", {"limit": 20})
        cursor = first.structured_content["history"]["next_starting_after"]
        second = await client.call_tool("get_usage", {"limit": 20, "starting_after": cursor})
        last = await client.call_tool(
            "get_usage",
            {
                "limit": 100,
                "starting_after": second.structured_content["history"]["next_starting_after"],
            },
        )
    data = first.structured_content
    assert data["current_point_balance"] == 1500
    assert data["history"]["has_more"] and cursor == "q19" and len(data["history"]["data"]) == 20
    assert data["history"]["data"][0]["time"] == "2026-03-27T02:15:26+00:00"
    assert second.structured_content["history"]["data"][0]["query_id"] == "q20"
    assert (
        not last.structured_content["history"]["has_more"]
        and len(last.structured_content["history"]["data"]) == 5
    )
    totals = data["server_totals"]
    assert (
        totals["calls"] == 1
        and totals["cost_usd"] == 0.002
        and totals["by_model"]["test-flat-fee"]["calls"] == 1
    )
    history_requests = [r for r in fake.requests if r["path"] == "/usage/points_history"]
    assert history_requests[1]["query"] == {"limit": "20", "starting_after": "q19"}


async def test_a_401_from_usage_is_an_authentication_error(settings: Any, fake: FakePoe) -> None:
    async with connect(settings, api_key="wrong-key-1234") as client:
        result = await client.call_tool("get_usage", {})
    assert result.is_error and result.content[0].text.startswith("authentication_error (401)")


async def test_a_model_that_refuses_stream_options_is_asked_again_without_them(
    settings: Any, fake: FakePoe
) -> None:
    fake.refuses_stream_options.add("gpt-4-turbo")
    async with connect(settings) as client:
        first = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "one"})
        second = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "two"})
    assert not first.is_error and first.content[0].text == "Echo: one"
    assert not second.is_error and second.content[0].text == "Echo: two"
    assert ["stream_options" in r["json"] for r in fake.chat_requests()] == [True, False, False], (
        "remembered after the first refusal"
    )
    assert any("no token usage" in note for note in first.structured_content["notes"])
