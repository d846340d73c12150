"""The earlier Poe MCP server's clients (Anansitrading/poe-proxy-mcp): with POE_MCP_COMPAT=poe-proxy-mcp
its calls, taken from its README and source, succeed with their old argument names and result shapes;
without it, tools/list is unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import connect
from fakepoe import FakePoe

pytestmark = pytest.mark.anyio

COMPAT = {"compat": "poe-proxy-mcp"}
DEFAULT_TOOLS = {
    "ask_poe",
    "ask_with_attachment",
    "ask_poe_with_tools",
    "chat_completion",
    "list_sessions",
    "clear_session",
    "generate_image",
    "generate_audio",
    "generate_video",
    "list_generations",
    "list_models",
    "list_available_models",
    "get_model_info",
    "get_usage",
    "get_server_info",
}
V2_TOOLS = {"ask_poe_v2", "list_available_models_v2", "get_server_info_v2"}


async def test_without_the_profile_the_tools_are_the_same(settings: Any, mode: str) -> None:
    async with connect(settings, mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert DEFAULT_TOOLS <= names and not names & V2_TOOLS


async def test_ask_poe_v2_with_its_old_arguments_and_shape(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode, **COMPAT) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        first = await client.call_tool(
            "ask_poe_v2",
            {
                "bot": "GPT-4-Turbo",
                "prompt": "Hello",
                "use_openai_client": True,
                "max_tokens": 100,
                "temperature": 0.7,
                "top_p": 0.9,
                "stop": ["END"],
                "stream": False,
            },
        )
        second = await client.call_tool(
            "ask_poe_v2",
            {
                "bot": "GPT-4-Turbo",
                "prompt": "Again",
                "session_id": first.structured_content["session_id"],
            },
        )
    assert DEFAULT_TOOLS | V2_TOOLS <= names
    data = first.structured_content
    assert {"text", "session_id", "model", "usage", "finish_reason"} <= set(data)
    assert data["text"] == "Echo: Hello" and data["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] > 0
    assert fake.chat_requests()[0]["json"]["max_tokens"] == 100
    assert f"session_id={data['session_id']}" in first.content[1].text
    assert [m["content"] for m in fake.last_messages()] == ["Hello", "Echo: Hello", "Again"]
    assert second.structured_content["session_id"] == data["session_id"]


async def test_an_unknown_session_starts_afresh_as_before_and_says_so(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings, **COMPAT) as client:
        result = await client.call_tool(
            "ask_poe_v2",
            {"bot": "gpt-4-turbo", "prompt": "Hi", "session_id": "old-id", "thinking": {}},
        )
    assert not result.is_error and result.structured_content["session_id"] == "old-id"
    assert "No stored session 'old-id'" in result.structured_content["notes"][0]
    assert "No stored session 'old-id'" in result.content[1].text


async def test_a_thinking_object_turns_reasoning_on(settings: Any, fake: FakePoe) -> None:
    async with connect(settings, **COMPAT) as client:
        result = await client.call_tool(
            "ask_poe_v2",
            {"bot": "Claude-Sonnet-4.5", "prompt": "Think", "thinking": {"budget_tokens": 1024}},
        )
    assert not result.is_error
    sent = fake.chat_requests()[-1]["json"]
    assert sent.get("thinking_budget") or sent.get("reasoning_effort") or sent.get("extra_body"), (
        sent
    )


async def test_the_old_model_lists(settings: Any, mode: str) -> None:
    async with connect(settings, mode, **COMPAT) as client:
        old = await client.call_tool("list_available_models", {})
        v2 = await client.call_tool("list_available_models_v2", {})
        info = await client.call_tool("get_server_info_v2", {})
    models = old.structured_content["models"]
    assert models and all(
        set(m) == {"name", "description", "context_length", "supports_images", "is_claude"}
        for m in models
    )
    assert any(m["is_claude"] for m in models) and any(m["supports_images"] for m in models)
    data = v2.structured_content
    assert {"text_models", "image_models", "video_models", "features"} <= set(data)
    assert {"name": "GPT-Image-1", "type": "image_generation"} in data["image_models"]
    assert all(set(m) == {"name", "supports_tools", "max_tokens"} for m in data["text_models"])
    assert "GPT-Image-1" in v2.content[0].text and "{" not in v2.content[0].text
    shape = info.structured_content
    assert set(shape) == {
        "version",
        "features",
        "configuration",
        "api_endpoints",
        "registered_tools",
    }
    assert shape["registered_tools"] == [] and shape["features"]["openai_client"] is True
