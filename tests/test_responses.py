"""Poe's Responses API (/v1/responses) as the third path: chosen per model, by `api`, or for web search.

The fake's endpoint follows Poe's documentation: flat function tools, `function_call` output items,
`function_call_output` input items, typed SSE events, `text.format`, `reasoning: {effort, summary}`.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, env_for
from fakepoe import PNG, SLOPPY_JSON, FakePoe, Reply

pytestmark = pytest.mark.anyio

POE_MCP = str(Path(sys.executable).parent / "poe-mcp")
RESPONSES_ONLY = "test-responses-only"
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
PARIS = {"id": "call_1", "name": "getWeather", "arguments": json.dumps({"location": "Paris"})}
CITY = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
            "required": ["name", "population"],
            "additionalProperties": False,
        },
    },
}


class Progress:
    def __init__(self) -> None:
        self.events: list[tuple[float, str | None, float]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, message, time.monotonic()))


async def test_a_responses_only_model_answers_a_streamed_two_turn_tool_session(
    any_settings: Any, fake: FakePoe, mode: str
) -> None:
    """Whichever backend chat uses (the bot protocol too), a model listed only on /v1/responses uses it."""
    fake.enqueue(
        Reply(text="Let me look that up.", tool_calls=[PARIS]),
        Reply(chunks=["Paris is sunny ", "today, with a ", "light breeze ", "from the west."]),
    )
    fake.chunk_delay = 0.3
    first_progress, second_progress = Progress(), Progress()
    async with connect(any_settings, mode) as client:
        first = await client.call_tool(
            "ask_poe_with_tools",
            {"bot": RESPONSES_ONLY, "prompt": "Weather in Paris?", "tools": TOOLS},
            progress_callback=first_progress,
        )
        session_id = first.structured_content["session_id"]
        second = await client.call_tool(
            "ask_poe_with_tools",
            {
                "session_id": session_id,
                "tool_results": [{"tool_call_id": "call_1", "content": "sunny"}],
            },
            progress_callback=second_progress,
        )
    assert not first.is_error and not second.is_error, second.content[0].text
    assert [r["path"] for r in fake.model_calls()] == ["/v1/responses"] * 2
    sent = [r["json"] for r in fake.responses_requests()]
    assert len(sent) == 2 and all(body["stream"] is True for body in sent)
    assert sent[0]["tools"] == [
        {
            "type": "function",
            "name": "getWeather",
            "description": "Weather for a city",
            "parameters": TOOLS[0]["function"]["parameters"],
        }
    ]
    assert first.structured_content["tool_calls"] == [
        {
            "id": "call_1",
            "name": "getWeather",
            "arguments": {"location": "Paris"},
            "arguments_raw": None,
        }
    ]
    assert first.structured_content["finish_reason"] == "tool_calls"
    # The second turn carries the whole conversation as Responses input items.
    assert sent[1]["input"] == [
        {"type": "message", "role": "user", "content": "Weather in Paris?"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me look that up."}],
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "getWeather",
            "arguments": PARIS["arguments"],
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    assert sent[1]["model"] == RESPONSES_ONLY, "the session keeps its model"
    answer = "Paris is sunny today, with a light breeze from the west."
    assert second.structured_content["text"] == answer
    assert len(second_progress.events) >= 3, "streamed text reaches the client as progress"
    assert "".join(m or "" for _, m, _ in second_progress.events) == answer
    assert "".join(m or "" for _, m, _ in first_progress.events) == "Let me look that up."
    usage = second.structured_content["usage"]
    assert usage["prompt_tokens"] > 0 and second.structured_content["cost_usd"] > 0


async def test_an_unstreamed_tool_round_on_the_responses_path(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(tool_calls=[PARIS]), Reply(text="Sunny."))
    async with connect(settings) as client:
        first = await client.call_tool(
            "ask_poe_with_tools",
            {
                "bot": RESPONSES_ONLY,
                "prompt": "Weather?",
                "tools": TOOLS,
                "tool_choice": "getWeather",
                "stream": False,
            },
        )
        second = await client.call_tool(
            "ask_poe_with_tools",
            {
                "session_id": first.structured_content["session_id"],
                "tool_results": [{"tool_call_id": "call_1", "content": {"sky": "clear"}}],
                "stream": False,
            },
        )
    sent = [r["json"] for r in fake.responses_requests()]
    assert sent[0]["tool_choice"] == {"type": "function", "name": "getWeather"}
    assert "stream" not in sent[0]
    assert first.structured_content["tool_calls"][0]["arguments"] == {"location": "Paris"}
    assert sent[1]["input"][-1] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"sky": "clear"}',
    }
    assert second.structured_content["text"] == "Sunny."


@pytest.mark.parametrize("stream", [True, False])
async def test_web_search_sends_the_builtin_tool(
    settings: Any, fake: FakePoe, stream: bool
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-5.4", "prompt": "Today's news?", "web_search": True, "stream": stream},
        )
    assert not result.is_error, result.content[0].text
    assert fake.chat_requests() == []
    body = fake.responses_requests()[-1]["json"]
    assert body["tools"] == [{"type": "web_search_preview"}]
    assert result.structured_content["text"] == "Echo: Today's news?"


async def test_web_search_falls_back_to_the_models_own_parameter_then_refuses(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        # gemini-3.1-pro has no built-in web search feature, but declares a `web_search` parameter.
        gemini = await client.call_tool(
            "ask_poe", {"bot": "gemini-3.1-pro", "prompt": "news", "web_search": True}
        )
        on_chat = await client.call_tool(
            "ask_poe", {"bot": "gpt-5.4", "prompt": "news", "web_search": True, "api": "chat"}
        )
        sent = len(fake.model_calls())
        refused = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "news", "web_search": True}
        )
    assert not gemini.is_error and not on_chat.is_error
    chat = fake.chat_requests()
    assert chat[0]["json"]["web_search"] is True and "tools" not in chat[0]["json"]
    assert chat[1]["json"]["model"] == "gpt-5.4" and chat[1]["json"]["web_search"] is True
    assert refused.is_error and len(fake.model_calls()) == sent, "refused before sending"
    text = refused.content[0].text
    assert "gpt-4-turbo cannot search the web" in text and "gpt-5.4" in text


async def test_api_responses_on_a_model_with_both_and_the_session_moves_between_paths(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        first = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4o", "prompt": "one", "api": "responses", "system": "Terse."},
        )
        session = {"session_id": first.structured_content["session_id"]}
        second = await client.call_tool("ask_poe", {**session, "prompt": "two", "api": "chat"})
        third = await client.call_tool(
            "ask_poe", {**session, "prompt": "three", "api": "responses"}
        )
    assert not any(r.is_error for r in (first, second, third))
    paths = [r["path"] for r in fake.model_calls()]
    assert paths == ["/v1/responses", "/v1/chat/completions", "/v1/responses"]
    assert fake.chat_requests()[0]["json"]["messages"] == [
        {"role": "system", "content": "Terse."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "Echo: one"},
        {"role": "user", "content": "two"},
    ]
    last = fake.responses_requests()[-1]["json"]["input"]
    assert last[0] == {"type": "message", "role": "system", "content": "Terse."}
    assert [item.get("role") for item in last] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert last[-2]["content"] == [{"type": "output_text", "text": "Echo: two"}]
    assert third.structured_content["text"] == "Echo: three"


async def test_api_chat_on_a_responses_only_model_is_refused_before_sending(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": RESPONSES_ONLY, "prompt": "hi", "api": "chat"}
        )
    assert result.is_error and "answers only over the Responses API" in result.content[0].text
    assert fake.model_calls() == []


@pytest.mark.parametrize("stream", [True, False])
async def test_json_schema_on_the_responses_path(
    settings: Any, fake: FakePoe, stream: bool
) -> None:
    async with connect(settings) as client:
        good = await client.call_tool(
            "ask_poe",
            {"bot": RESPONSES_ONLY, "prompt": "A city", "response_format": CITY, "stream": stream},
        )
        bad = await client.call_tool(
            "ask_poe",
            {
                "bot": "test-sloppy-json",
                "prompt": "A city",
                "response_format": CITY,
                "api": "responses",
                "stream": stream,
            },
        )
    body = fake.responses_requests()[0]["json"]
    assert body["text"] == {
        "format": {
            "type": "json_schema",
            "name": "city",
            "schema": CITY["json_schema"]["schema"],
            "strict": True,
        }
    }
    assert "response_format" not in body
    assert good.structured_content["parsed"] == {"name": "Echo", "population": 1}
    assert bad.is_error and bad.structured_content["error"] is not None
    assert "invalid_response_error" in bad.content[0].text
    assert "population" in bad.content[0].text, "the validation failure is quoted"
    assert any(block.text == SLOPPY_JSON for block in bad.content), "the raw answer is kept"
    assert len(fake.responses_requests()) == 2, "no extra request either way"


@pytest.mark.parametrize("stream", [True, False])
async def test_reasoning_summaries_and_cached_usage_on_the_responses_path(
    settings: Any, fake: FakePoe, stream: bool
) -> None:
    fake.enqueue(
        Reply(
            text="42.",
            reasoning="Counted carefully.",
            usage={
                "prompt_tokens": 1000,
                "completion_tokens": 100,
                "total_tokens": 1100,
                "prompt_tokens_details": {"cached_tokens": 800},
                "completion_tokens_details": {"reasoning_tokens": 60},
            },
        )
    )
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe",
            {"bot": RESPONSES_ONLY, "prompt": "Answer?", "thinking": True, "stream": stream},
        )
    body = fake.responses_requests()[-1]["json"]
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    data = result.structured_content
    assert data["reasoning"] == "Counted carefully." and data["text"] == "42."
    assert (data["usage"]["cached_tokens"], data["usage"]["reasoning_tokens"]) == (800, 60)
    # 200 prompt tokens at 2e-6, 800 cached at 5e-7, 100 completion at 8e-6
    assert data["cost_usd"] == pytest.approx(0.0016)


async def test_attachments_and_sampling_become_responses_fields(
    settings: Any, fake: FakePoe
) -> None:
    image = "data:image/png;base64," + base64.b64encode(PNG).decode()
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": RESPONSES_ONLY,
                "prompt": "What is this?",
                "attachments": [image],
                "max_tokens": 50,
                "temperature": 0.2,
                "stop": ["END"],
            },
        )
    assert not result.is_error, result.content[0].text
    body = fake.responses_requests()[-1]["json"]
    assert body["input"][-1]["content"] == [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": image},
    ]
    assert (body["max_output_tokens"], body["temperature"]) == (50, 0.2)
    assert "stop" not in body and "max_tokens" not in body
    assert any("no stop" in note for note in result.structured_content["notes"])


async def test_errors_and_broken_streams_on_the_responses_path(
    settings: Any, fake: FakePoe
) -> None:
    fake.error(429, "rate_limit_error", "slow down", **{"retry-after": "0"})
    async with connect(settings) as client:
        retried = await client.call_tool("ask_poe", {"bot": RESPONSES_ONLY, "prompt": "hi"})
        sent = len(fake.responses_requests())
        fake.enqueue(Reply(tool_calls=[PARIS], cut_in_tool_call=True))
        broken = await client.call_tool(
            "ask_poe_with_tools", {"bot": RESPONSES_ONLY, "prompt": "weather", "tools": TOOLS}
        )
    assert not retried.is_error and sent == 2, "a 429 is retried on this path too"
    assert broken.is_error and len(fake.responses_requests()) == sent + 1, "never re-sent"
    assert "incomplete" in broken.content[0].text


async def test_chat_completion_streams_with_progress_and_returns_the_assembled_object(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    answer = "The quick brown fox jumps over the lazy dog, twice."
    fake.enqueue(Reply(chunks=["The quick brown ", "fox jumps over ", "the lazy dog, ", "twice."]))
    fake.chunk_delay = 0.3
    progress = Progress()
    messages = [{"role": "user", "content": "go"}]
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "chat_completion",
            {
                "model": "gpt-4-turbo",
                "messages": messages,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            progress_callback=progress,
        )
        unstreamed = await client.call_tool(
            "chat_completion",
            {
                "model": "gpt-4-turbo",
                "messages": messages,
                "stream_options": {"include_usage": True},
            },
        )
    body = fake.chat_requests()[0]["json"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert len(progress.events) >= 3
    assert "".join(m or "" for _, m, _ in progress.events) == answer
    data = result.structured_content
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-")
    assert data["choices"][0]["message"] == {"role": "assistant", "content": answer}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] > 0
    assert "stream_options" not in fake.chat_requests()[1]["json"]
    assert any("stream_options" in n for n in unstreamed.structured_content["notes"])


async def test_chat_completion_on_a_responses_only_model_returns_a_chat_completion(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "chat_completion",
            {"model": RESPONSES_ONLY, "messages": [{"role": "user", "content": "hi"}]},
        )
    assert fake.chat_requests() == [] and len(fake.responses_requests()) == 1
    data = result.structured_content
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["content"] == "Echo: hi"


async def test_a_responses_stream_ending_without_its_completed_event_keeps_the_tool_calls(
    settings: Any, fake: FakePoe
) -> None:
    fake.enqueue(Reply(tool_calls=[PARIS], no_finish=True))
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe_with_tools", {"bot": RESPONSES_ONLY, "prompt": "weather", "tools": TOOLS}
        )
    assert not result.is_error and len(fake.responses_requests()) == 1, "never re-sent"
    data = result.structured_content
    assert data["tool_calls"][0]["arguments"] == {"location": "Paris"}
    assert data["finish_reason"] == "tool_calls"
    assert any("without a finish_reason" in note for note in data["notes"])


def test_cli_api_and_web_search_flags(fake: FakePoe, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir(exist_ok=True)
    result = subprocess.run(
        [POE_MCP, "ask", "gpt-5.4", "hi", "--api", "responses", "--web-search", "--json"],
        capture_output=True,
        text=True,
        env=env_for(fake, tmp_path),
        cwd=tmp_path,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == "Echo: hi"
    body = fake.responses_requests()[-1]["json"]
    assert body["model"] == "gpt-5.4" and body["tools"] == [{"type": "web_search_preview"}]


# -- the wire translation on its own ---------------------------------------------------------------


def test_chat_messages_become_responses_input_items() -> None:
    from poe_mcp.poe.backends.responses import input_items

    messages = [
        {"role": "developer", "content": "Terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Read"},
                {
                    "type": "file",
                    "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,QQ=="},
                },
                {"type": "image_url", "image_url": {"url": "https://x/i.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    assert input_items(messages) == [
        {"type": "message", "role": "system", "content": "Terse."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Read"},
                {
                    "type": "input_file",
                    "filename": "a.pdf",
                    "file_data": "data:application/pdf;base64,QQ==",
                },
                {"type": "input_image", "image_url": "https://x/i.png", "detail": "low"},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]


def test_a_response_object_becomes_a_completion() -> None:
    from poe_mcp.poe.backends.responses import completion_from_wire
    from poe_mcp.poe.errors import PoeError

    incomplete = completion_from_wire(
        {
            "id": "resp_1",
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            # Poe sometimes sends an output_text part without text (ai-sdk-provider-poe#3)
            "output": [{"type": "message", "content": [{"type": "output_text"}]}],
            "output_text": "Partial",
            "usage": {"input_tokens": 5, "output_tokens": 7, "input_tokens_details": None},
        },
        "m",
    )
    assert (incomplete.text, incomplete.finish_reason, incomplete.id) == (
        "Partial",
        "length",
        "resp_1",
    )
    assert (incomplete.usage.prompt_tokens, incomplete.usage.total_tokens) == (5, 12)
    assert incomplete.chat_object()["choices"][0]["message"]["content"] == "Partial"
    with pytest.raises(PoeError) as failed:
        completion_from_wire(
            {"status": "failed", "error": {"code": "server_error", "message": "boom"}}, "m"
        )
    assert failed.value.message == "boom" and failed.value.retryable


async def test_events_with_only_whole_items_still_give_text_and_calls() -> None:
    """A stream that sends items whole (no deltas), or only the final response, loses nothing."""
    from poe_mcp.poe.backends.responses import EventReader
    from poe_mcp.poe.streaming import StreamAssembler

    shown: list[str] = []

    async def listener(piece: str) -> None:
        shown.append(piece)

    reader = EventReader(StreamAssembler("m", listener))
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a": 1}'}
    await reader.read({"type": "response.output_item.done", "output_index": 1, "item": call})
    final = {
        "status": "completed",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}, call],
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    }
    await reader.read({"type": "response.completed", "response": final})
    completion = reader.assembler.completion()
    assert completion.text == "Hi" == "".join(shown)
    assert [(c.id, c.arguments) for c in completion.tool_calls] == [("c1", {"a": 1})]
    assert completion.finish_reason == "tool_calls" and completion.usage.total_tokens == 3
