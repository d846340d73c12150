"""ask_poe_with_tools: rounds of tool calls with the exact message sequence OpenAI's format requires."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import connect
from fakepoe import FakePoe, Reply, recorded

pytestmark = pytest.mark.anyio

WEATHER = recorded(
    "Grok-4"
)  # a real tool-call reply: content "", tool_calls, finish_reason tool_calls
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "getWeather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    }
]


def call(ident: str, name: str, arguments: dict[str, Any] | str) -> dict[str, str]:
    return {
        "id": ident,
        "name": name,
        "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
    }


@pytest.mark.parametrize("stream", [True, False])
async def test_three_rounds_send_the_exact_message_sequence(
    any_settings: Any, fake: FakePoe, mode: str, stream: bool
) -> None:
    fake.enqueue(
        Reply(tool_calls=[call("call_1", "getWeather", {"location": "Paris"})]),
        Reply(tool_calls=[call("call_2", "getWeather", {"location": "Rome, Italy"})]),
        Reply(text="Paris is sunny, Rome is rainy."),
    )
    async with connect(any_settings, mode) as client:
        first = await client.call_tool(
            "ask_poe_with_tools",
            {
                "bot": "Grok-4",
                "prompt": "Weather in Paris and Rome?",
                "tools": TOOLS,
                "tool_choice": "auto",
                "stream": stream,
            },
        )
        session_id = first.structured_content["session_id"]
        second = await client.call_tool(
            "ask_poe_with_tools",
            {
                "session_id": session_id,
                "tool_results": [{"tool_call_id": "call_1", "content": "sunny"}],
                "stream": stream,
            },
        )
        third = await client.call_tool(
            "ask_poe_with_tools",
            {
                "session_id": session_id,
                "tool_results": [{"tool_call_id": "call_2", "content": {"sky": "rain"}}],
                "stream": stream,
            },
        )
    assert first.structured_content["tool_calls"] == [
        {
            "id": "call_1",
            "name": "getWeather",
            "arguments": {"location": "Paris"},
            "arguments_raw": None,
        }
    ]
    assert first.structured_content["finish_reason"] == "tool_calls"
    assert second.structured_content["tool_calls"][0]["arguments"] == {"location": "Rome, Italy"}
    assert (
        third.content[0].text == "Paris is sunny, Rome is rainy."
        and third.structured_content["tool_calls"] == []
    )
    last = fake.model_calls()[-1]["json"]
    assert [t["function"]["name"] for t in last["tools"]] == ["getWeather"], (
        "tool definitions are kept with the session"
    )
    if (
        any_settings.backend == "fastapi_poe"
    ):  # the protocol carries only the last round's calls and results apart
        assert fake.last_messages()[-2:] == [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {
                            "name": "getWeather",
                            "arguments": '{"location": "Rome, Italy"}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": '{"sky": "rain"}'},
        ]
        return
    assert last["tools"] == TOOLS
    assert last["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "getWeather", "arguments": '{"location": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "getWeather", "arguments": '{"location": "Rome, Italy"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_2", "content": '{"sky": "rain"}'},
    ]


async def test_parallel_calls_are_answered_in_the_models_order(
    any_settings: Any, fake: FakePoe
) -> None:
    fake.enqueue(
        Reply(
            tool_calls=[
                call("a", "getWeather", {"location": "Oslo"}),
                call("b", "getWeather", {"location": "Lima"}),
            ]
        ),
        Reply(text="done"),
    )
    async with connect(any_settings) as client:
        first = await client.call_tool(
            "ask_poe_with_tools",
            {"bot": "grok-4", "prompt": "both", "tools": TOOLS, "parallel_tool_calls": True},
        )
        sid = first.structured_content["session_id"]
        await client.call_tool(
            "ask_poe_with_tools",
            {
                "session_id": sid,
                "tool_results": [
                    {"tool_call_id": "b", "content": "warm"},
                    {"tool_call_id": "a", "content": "cold"},
                ],
            },
        )
    assert [c["id"] for c in first.structured_content["tool_calls"]] == ["a", "b"]
    messages = fake.last_messages()
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in messages[2:]] == [
        ("a", "cold"),
        ("b", "warm"),
    ]


@pytest.mark.parametrize(
    ("results", "needle"),
    [
        (
            [{"tool_call_id": "zzz", "content": "x"}],
            "unexpected tool_call_id 'zzz'; expected ids: a, b",
        ),
        ([{"tool_call_id": "a", "content": "x"}], "missing results for b; expected ids: a, b"),
    ],
)
async def test_wrong_results_are_refused_listing_the_expected_ids(
    any_settings: Any, fake: FakePoe, results: list[Any], needle: str
) -> None:
    fake.enqueue(Reply(tool_calls=[call("a", "getWeather", {}), call("b", "getWeather", {})]))
    async with connect(any_settings) as client:
        first = await client.call_tool(
            "ask_poe_with_tools", {"bot": "grok-4", "prompt": "go", "tools": TOOLS}
        )
        refused = await client.call_tool(
            "ask_poe_with_tools",
            {"session_id": first.structured_content["session_id"], "tool_results": results},
        )
    assert (
        refused.is_error
        and refused.content[0].text.startswith("invalid_request_error (400)")
        and needle in refused.content[0].text
    )
    assert len(fake.model_calls()) == 1


async def test_malformed_arguments_come_back_raw(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(tool_calls=[call("x", "getWeather", '{"location": "Par')]))
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe_with_tools", {"bot": "grok-4", "prompt": "go", "tools": TOOLS, "stream": False}
        )
    assert result.structured_content["tool_calls"] == [
        {"id": "x", "name": "getWeather", "arguments": None, "arguments_raw": '{"location": "Par'}
    ]


async def test_bare_tool_definitions_are_accepted(settings: Any, fake: FakePoe) -> None:
    bare = [{"name": "getWeather", "description": "Weather", "parameters": {"type": "object"}}]
    async with connect(settings) as client:
        await client.call_tool(
            "ask_poe_with_tools",
            {"bot": "grok-4", "prompt": "go", "tools": bare, "tool_choice": "getWeather"},
        )
    sent = fake.chat_requests()[-1]["json"]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "getWeather",
                "description": "Weather",
                "parameters": {"type": "object"},
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "getWeather"}}


async def test_a_model_without_tools_is_refused_before_a_request(
    any_settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(any_settings, mode) as client:
        result = await client.call_tool(
            "ask_poe_with_tools", {"bot": "kimi-k2.5-fw", "prompt": "go", "tools": TOOLS}
        )
    assert result.is_error and result.content[0].text.startswith(
        "invalid_request_error (400): kimi-k2.5-fw does not support tool calling"
    )
    assert fake.model_calls() == []


async def test_the_recorded_grok_reply_parses(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(body=WEATHER["body"]))
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe_with_tools",
            {"bot": "grok-4", "prompt": "weather?", "tools": TOOLS, "stream": False},
        )
    assert result.structured_content["tool_calls"] == [
        {
            "id": "call_31618866",
            "name": "getWeather",
            "arguments": {"location": "San Francisco"},
            "arguments_raw": None,
        }
    ]
    assert result.structured_content["usage"]["completion_tokens"] == 0
