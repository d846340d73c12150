"""The chat settings as one validated value (Sampling): from the CLI, the MCP tools and both backends to the body.

Also the standard OpenAI request fields (response_format, seed, logprobs, ...) as first-class inputs, and
structured outputs checked locally against the caller's JSON Schema.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, env_for
from fakepoe import FakePoe, Reply

POE_MCP = str(Path(sys.executable).parent / "poe-mcp")


def run_cli(
    fake: FakePoe, tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "work").mkdir(exist_ok=True)
    return subprocess.run(
        [POE_MCP, *args],
        capture_output=True,
        text=True,
        env=env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="INFO", **env),
        cwd=tmp_path,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("backend", ["openai", "fastapi_poe"])
def test_cli_sampling_flags_reach_the_request_body(
    fake: FakePoe, tmp_path: Path, backend: str
) -> None:
    result = run_cli(
        fake,
        tmp_path,
        "ask",
        "gpt-4-turbo",
        "hi",
        "--temperature",
        "0.3",
        "--max-tokens",
        "50",
        "--top-p",
        "0.9",
        "--stop",
        "END",
        "--system",
        "Terse.",
        POE_MCP_BACKEND=backend,
    )
    assert result.returncode == 0, result.stderr
    if backend == "openai":
        body = fake.chat_requests()[-1]["json"]
        assert (body["temperature"], body["max_tokens"], body["top_p"], body["stop"]) == (
            0.3,
            50,
            0.9,
            ["END"],
        )
        assert body["messages"][0] == {"role": "system", "content": "Terse."}
    else:
        query = fake.bot_queries[-1]
        assert (query["temperature"], query["stop_sequences"]) == (0.3, ["END"])
        assert query["query"][0]["role"] == "system"


def test_cli_refuses_a_temperature_out_of_bounds_before_sending(
    fake: FakePoe, tmp_path: Path
) -> None:
    result = run_cli(fake, tmp_path, "ask", "gpt-4-turbo", "hi", "--temperature", "3")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "temperature must be between 0 and 2" in result.stderr
    assert fake.model_calls() == []


pytestmark = pytest.mark.anyio

JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
            "required": ["name", "population"],
        },
    },
}
STANDARD_FIELDS = {
    "response_format": JSON_SCHEMA,
    "seed": 7,
    "logprobs": True,
    "top_logprobs": 3,
    "max_completion_tokens": 64,
    "reasoning_effort": "low",
    "metadata": {"team": "docs"},
    "user": "user-42",
}


async def test_chat_completion_sends_every_standard_field_top_level(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "chat_completion",
            {
                "model": "gpt-4-turbo",
                "messages": [{"role": "user", "content": "hi"}],
                **STANDARD_FIELDS,
            },
        )
    assert not result.is_error, result.content[0].text
    body = fake.chat_requests()[-1]["json"]
    assert {name: body[name] for name in STANDARD_FIELDS} == STANDARD_FIELDS


async def test_ask_poe_sends_response_format_and_reasoning_effort(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        await client.call_tool(
            "ask_poe",
            {
                "bot": "gpt-5.4",
                "prompt": "hi",
                "response_format": {"type": "json_object"},
                "reasoning_effort": "high",
            },
        )
        await client.call_tool(
            "ask_poe_with_tools",
            {
                "bot": "gpt-5.4",
                "prompt": "hi",
                "tools": [{"name": "f"}],
                "reasoning_effort": "low",
            },
        )
    first, second = (r["json"] for r in fake.chat_requests()[-2:])
    assert (
        first["response_format"] == {"type": "json_object"} and first["reasoning_effort"] == "high"
    )
    assert "parameters" not in first and second["reasoning_effort"] == "low"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"response_format": {"type": "xml"}},
            "response_format must be an object whose type is one of",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x y", "schema": {}},
                }
            },
            "name must be 1-64 letters",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": 5}},
                }
            },
            "is not valid JSON Schema",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"$ref": "https://example.com/s.json"}},
                }
            },
            "remote $ref is never fetched",
        ),
        ({"top_logprobs": 3}, "top_logprobs needs logprobs: true"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"reasoning_effort": "max"}, "reasoning_effort must be one of"),
        ({"metadata": {"n": 1}}, "metadata values must be strings"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "at most 16"),
        ({"user": "u" * 257}, "user must be a string of 1 to 256"),
        ({"temperature": 2.5}, "temperature"),
        ({"stop": ["  "]}, "stop sequences must be strings that are not empty"),
        ({"parameters": {"seed": 1}}, "parameters.seed is a standard request field"),
        ({"parameters": {"model": "gpt-4o"}}, "parameters.model is set by poe-mcp itself"),
        ({"parameters": {"messages": []}}, "parameters.messages is set by poe-mcp itself"),
    ],
)
async def test_a_wrong_field_is_refused_before_anything_is_sent(
    settings: Any, fake: FakePoe, fields: dict[str, Any], says: str
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "chat_completion",
            {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}], **fields},
        )
    assert result.is_error and "invalid_request_error" in result.content[0].text
    assert says in result.content[0].text
    assert fake.model_calls() == []


async def test_a_custom_parameter_named_model_is_refused_on_ask_poe(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "test-flat-fee", "prompt": "hi", "parameters": {"model": "x"}}
        )
    assert result.is_error and "parameters.model" in result.content[0].text
    assert fake.model_calls() == []


async def test_the_bot_protocol_notes_the_fields_it_cannot_carry(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(replace(settings, backend="fastapi_poe")) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": "gemini-2.5-pro",
                "prompt": "hi",
                "response_format": {"type": "json_object"},
                "reasoning_effort": "high",
            },
        )
    notes = result.structured_content["notes"]
    assert any("response_format is not supported by the bot protocol" in n for n in notes)
    # so the echo is not JSON, and says so rather than passing for a structured answer
    assert result.is_error and "invalid_response_error" in result.content[0].text
    # reasoning_effort became the bot's own switch, carried as a parameter
    assert fake.bot_queries[-1]["query"][-1]["parameters"] == {"thinking_budget": 8192}


# -- structured outputs ------------------------------------------------------------------------------


async def test_a_conforming_json_schema_answer_comes_back_parsed(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": "gpt-4-turbo",
                "prompt": "A city?",
                "response_format": JSON_SCHEMA,
                "session_id": "s",
                "new_session": True,
            },
        )
    assert not result.is_error, result.content[0].text
    assert result.structured_content["parsed"] == {"name": "Echo", "population": 1}
    assert len(fake.model_calls()) == 1


async def test_a_non_conforming_answer_is_an_invalid_response_error_with_the_raw_text(
    settings: Any, fake: FakePoe
) -> None:
    from fakepoe import SLOPPY_JSON

    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": "test-sloppy-json",
                "prompt": "A city?",
                "response_format": JSON_SCHEMA,
                "session_id": "s",
                "new_session": True,
            },
        )
        assert len(fake.model_calls()) == 1  # no second, paid, attempt
        await client.call_tool(
            "ask_poe", {"bot": "test-sloppy-json", "prompt": "Again", "session_id": "s"}
        )
    text = result.content[0].text
    assert result.is_error and text.startswith(
        "invalid_response_error: The answer does not match the city schema"
    )
    assert "'about two million' is not of type 'integer'" in text and "['population']" in text
    assert result.content[1].text == SLOPPY_JSON  # the raw answer is kept, before the handles
    assert result.structured_content["parsed"] is None
    assert result.structured_content["text"] == SLOPPY_JSON
    assert result.structured_content["cost_usd"] is not None  # it was paid for...
    assert fake.last_messages()[1] == {"role": "assistant", "content": SLOPPY_JSON}  # ...and stored


async def test_an_answer_that_is_not_json_says_where_parsing_failed(
    settings: Any, fake: FakePoe
) -> None:
    fake.enqueue(Reply(text="Sure! Paris, about two million people."))
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": "gpt-4-turbo",
                "prompt": "A city?",
                "response_format": JSON_SCHEMA,
                "stream": False,
            },
        )
    assert (
        result.is_error
        and "invalid_response_error: The answer is not JSON (Expecting value at line 1"
        in result.content[0].text
    )
    assert result.content[1].text == "Sure! Paris, about two million people."


async def test_json_in_a_code_fence_is_still_parsed(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text='```json\n{"name": "Oslo", "population": 709000}\n```'))
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "A city?", "response_format": JSON_SCHEMA}
        )
    assert result.structured_content["parsed"] == {"name": "Oslo", "population": 709000}


async def test_chat_completion_carries_parsed_or_the_validation_failure(
    settings: Any, fake: FakePoe
) -> None:
    messages = [{"role": "user", "content": "A city?"}]
    async with connect(settings) as client:
        good = await client.call_tool(
            "chat_completion",
            {"model": "gpt-4-turbo", "messages": messages, "response_format": JSON_SCHEMA},
        )
        bad = await client.call_tool(
            "chat_completion",
            {"model": "test-sloppy-json", "messages": messages, "response_format": JSON_SCHEMA},
        )
        loose = await client.call_tool(
            "chat_completion",
            {
                "model": "gpt-4-turbo",
                "messages": messages,
                "response_format": {"type": "json_object"},
            },
        )
    assert good.structured_content["parsed"] == {"name": "Echo", "population": 1}
    assert (
        good.structured_content["choices"][0]["message"]["content"]
        == '{"name": "Echo", "population": 1}'
    )
    assert bad.is_error and "invalid_response_error" in bad.content[0].text
    assert bad.structured_content["choices"][0]["message"]["content"] == bad.content[1].text
    assert loose.structured_content["parsed"] == {"echo": "A city?"}
    assert len(fake.model_calls()) == 3


# -- wire details ----------------------------------------------------------------------------------

CACHED_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 100,
    "total_tokens": 1100,
    "prompt_tokens_details": {"cached_tokens": 800, "audio_tokens": None},
    "completion_tokens_details": {"reasoning_tokens": 40},
}


@pytest.mark.parametrize("stream", [True, False])
async def test_cached_tokens_are_returned_and_priced_at_the_cache_read_price(
    settings: Any, fake: FakePoe, stream: bool
) -> None:
    fake.enqueue(Reply(text="Hi", usage=CACHED_USAGE))
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "claude-opus-4.6", "prompt": "hi", "stream": stream}
        )
    usage = result.structured_content["usage"]
    assert (usage["cached_tokens"], usage["reasoning_tokens"]) == (800, 40)
    # 200 fresh prompt tokens at 0.0000043, 800 cached at 0.00000043, 100 out at 0.000021
    assert result.structured_content["cost_usd"] == pytest.approx(0.003304)


WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "function", "function": {"name": "get_weather"}},
        {"type": "function", "name": "get_weather"},  # the Responses API's flat form
        "get_weather",
    ],
)
async def test_tool_choice_in_object_form_is_accepted(
    settings: Any, fake: FakePoe, choice: Any
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe_with_tools",
            {"bot": "grok-4", "prompt": "weather?", "tools": [WEATHER], "tool_choice": choice},
        )
    assert not result.is_error, result.content[0].text
    assert fake.chat_requests()[-1]["json"]["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


@pytest.mark.parametrize(
    ("choice", "says"),
    [
        (
            {"type": "function", "function": {"name": "get_time"}},
            "names 'get_time', which the tools do not define",
        ),
        ({"type": "tool", "name": "get_weather"}, "tool_choice must be auto, none, required"),
    ],
)
async def test_a_tool_choice_that_cannot_work_is_refused_before_sending(
    settings: Any, fake: FakePoe, choice: Any, says: str
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe_with_tools",
            {"bot": "grok-4", "prompt": "weather?", "tools": [WEATHER], "tool_choice": choice},
        )
    assert result.is_error and says in result.content[0].text
    assert fake.model_calls() == []


async def test_the_developer_role_is_sent_as_system(any_settings: Any, fake: FakePoe) -> None:
    messages = [
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": "hi"},
    ]
    async with connect(any_settings) as client:
        result = await client.call_tool(
            "chat_completion", {"model": "gpt-4-turbo", "messages": messages}
        )
    assert not result.is_error, result.content[0].text
    assert [m["role"] for m in fake.last_messages()] == ["system", "user"]


async def test_poe_error_code_param_and_metadata_are_in_the_structured_error(
    settings: Any, fake: FakePoe
) -> None:
    poe_error = {
        "code": "model_not_found",  # Poe's errors page: an unknown model is 400 model_not_found
        "type": "invalid_request_error",
        "message": "Model 'gpt-9' does not exist",
        "param": "model",
        "metadata": {"provider": "poe"},
    }
    fake.enqueue(Reply(status=400, body={"error": poe_error}))
    async with connect(settings) as client:
        result = await client.call_tool(
            "chat_completion",
            {"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert result.is_error
    assert result.content[0].text.startswith(
        "invalid_request_error (400): Model 'gpt-9' does not exist"
    )
    error = result.structured_content["error"]
    assert (error["code"], error["param"], error["metadata"]) == (
        "model_not_found",
        "model",
        {"provider": "poe"},
    )
    assert (error["type"], error["status"]) == ("invalid_request_error", 400)


# -- Poe's rate-limit headers ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
async def test_no_requests_left_means_the_next_call_waits_for_the_reset_not_a_429(
    settings: Any, fake: FakePoe, stream: bool
) -> None:
    fake.rate_limit, fake.rate_window = 1, 2.0  # one request per 2 s: the first leaves none
    async with connect(settings) as client:
        for prompt in ("one", "two"):
            result = await client.call_tool(
                "ask_poe", {"bot": "gpt-4-turbo", "prompt": prompt, "stream": stream}
            )
            assert not result.is_error, result.content[0].text
    first, second = fake.chat_requests()
    assert fake.rejected == 0  # no 429 was provoked
    assert 1.7 < second["at"] - first["at"] < 3.5


async def test_room_left_means_no_wait(settings: Any, fake: FakePoe) -> None:
    fake.rate_limit, fake.rate_window = 10, 30.0
    async with connect(settings) as client:
        for prompt in ("one", "two", "three"):
            await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": prompt})
    calls = fake.chat_requests()
    assert calls[-1]["at"] - calls[0]["at"] < 1.0 and fake.rejected == 0
