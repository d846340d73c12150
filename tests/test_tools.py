"""Every tool through the SDK's in-memory client, in both protocol eras, against the fake Poe."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import connect
from fakepoe import FakePoe, Reply

pytestmark = pytest.mark.anyio


async def test_tools_are_described_and_annotated(settings: Any, mode: str) -> None:
    async with connect(settings, mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {
        "ask_poe",
        "chat_completion",
        "list_models",
        "get_model_info",
        "list_available_models",
        "get_server_info",
    } <= set(tools)
    for tool in tools.values():
        assert tool.title and tool.description and tool.output_schema and tool.annotations
    chat = tools["ask_poe"].annotations
    assert (
        chat.read_only_hint and chat.open_world_hint is not False
    )  # left out: the spec's default, true
    assert "temperature" in tools["ask_poe"].input_schema["properties"]


async def test_ask_poe_answers_with_the_text_first(settings: Any, fake: FakePoe, mode: str) -> None:
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": "GPT-4-Turbo",
                "prompt": "Say hello",
                "temperature": 0.5,
                "max_tokens": 50,
                "top_p": 0.9,
                "stop": ["END"],
            },
        )
    assert not result.is_error
    assert result.content[0].text == "Echo: Say hello"
    data = result.structured_content
    assert data["bot"] == "gpt-4-turbo" and data["finish_reason"] == "stop" and data["session_id"]
    assert (
        data["usage"]["total_tokens"]
        == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    )
    assert data["cost_usd"] is not None and data["cost_usd"] > 0
    sent = fake.chat_requests()[-1]["json"]
    assert (
        sent["model"],
        sent["temperature"],
        sent["max_tokens"],
        sent["top_p"],
        sent["stop"],
    ) == ("gpt-4-turbo", 0.5, 50, 0.9, ["END"])


async def test_ask_poe_uses_the_default_model_and_a_system_message(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode) as client:
        await client.call_tool("ask_poe", {"prompt": "hi", "system": "Be brief.", "stream": False})
    sent = fake.chat_requests()[-1]["json"]
    assert sent["model"] == "claude-sonnet-4.5"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_custom_parameters_go_top_level_and_reasoning_comes_back(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    fake.enqueue(Reply(text="42", reasoning="thinking hard"))
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": "Gemini-2.5-Pro",
                "prompt": "6*7?",
                "parameters": {"thinking_budget": 1024, "web_search": True},
                "stream": False,
            },
        )
    assert result.structured_content["reasoning"] == "thinking hard"
    sent = fake.chat_requests()[-1]["json"]
    assert (
        sent["thinking_budget"] == 1024
        and sent["web_search"] is True
        and sent["model"] == "gemini-2.5-pro"
    )


async def test_thinking_turns_on_the_declared_reasoning_parameter(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        await client.call_tool(
            "ask_poe", {"bot": "gemini-2.5-pro", "prompt": "think", "thinking": True}
        )
    assert fake.chat_requests()[-1]["json"]["thinking_budget"] > 0


async def test_chat_completion_returns_the_completion_object(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    messages = [
        {"role": "system", "content": "x"},
        {"role": "user", "content": [{"type": "text", "text": "hi there"}]},
    ]
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "chat_completion",
            {"model": "gpt-4-turbo", "messages": messages, "max_completion_tokens": 20},
        )
    data = result.structured_content
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-")
    assert data["choices"][0]["message"]["content"] == "Echo: hi there" == result.content[0].text
    assert fake.chat_requests()[-1]["json"]["messages"] == messages


async def test_list_models_filters_the_live_catalog(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "list_models", {"owned_by": "anthropic", "supports_tools": True, "limit": 5}
        )
        sonnet = await client.call_tool("list_models", {"query": "claude-sonnet-4.5", "limit": 1})
        images = await client.call_tool("list_models", {"output_modality": "image", "limit": 500})
    data = result.structured_content
    assert data["total"] >= len(data["models"]) > 0
    assert all(m["owned_by"] == "Anthropic" and m["supports_tools"] for m in data["models"])
    assert any(m["id"] == "gpt-image-1" for m in images.structured_content["models"])
    # the catalog's "0.0000026" USD per token, as USD per million
    assert sonnet.structured_content["models"][0]["pricing"]["input_per_million"] == 2.6
    catalog_fetches = [r for r in fake.requests if r["path"] == "/v1/models"]
    assert len(catalog_fetches) == 1, "the catalog is cached"
    assert "authorization" not in catalog_fetches[0]["headers"], (
        "/v1/models is public: no auth header"
    )


async def test_list_available_models_is_the_same_catalog(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode) as client:
        result = await client.call_tool("list_available_models", {})
    assert result.structured_content["total"] == len(fake.models)  # 362 recorded + the test models


async def test_get_model_info_has_full_parameter_schemas(settings: Any, mode: str) -> None:
    async with connect(settings, mode) as client:
        result = await client.call_tool("get_model_info", {"model": "VEO-3"})
    data = result.structured_content
    assert data["id"] == "veo-3" and data["output_modalities"] == ["video"]
    assert "/v1/videos" in data["supported_endpoints"]
    assert {p["name"] for p in data["parameter_schemas"]} >= {"aspect_ratio", "duration"}


async def test_unknown_model_suggests_close_ids(settings: Any, mode: str) -> None:
    async with connect(settings, mode) as client:
        result = await client.call_tool("get_model_info", {"model": "claude-sonet-4.5"})
    assert result.is_error
    text = result.content[0].text
    assert text.startswith("not_found_error (404):") and "claude-sonnet-4.5" in text


async def test_get_server_info_never_shows_the_key(settings: Any, mode: str) -> None:
    async with connect(settings, mode) as client:
        result = await client.call_tool("get_server_info", {})
    data = result.structured_content
    assert (
        data["backend"] == "openai"
        and data["transport"] == "stdio"
        and data["api_key_configured"] is True
    )
    assert data["base_url"] == settings.base_url and data["default_model"] == "Claude-Sonnet-4.5"
    assert settings.api_key not in json.dumps(data)


async def test_model_resources(settings: Any, fake: FakePoe, mode: str) -> None:
    async with connect(settings, mode) as client:
        catalog = await client.read_resource("poe://models")
        one = await client.read_resource("poe://models/grok-4")
    assert len(json.loads(catalog.contents[0].text)) == len(fake.models)
    assert json.loads(one.contents[0].text)["supports_tools"] is True


async def test_model_ids_complete_for_the_model_resource(settings: Any, mode: str) -> None:
    from mcp.types import ResourceTemplateReference

    async with connect(settings, mode) as client:
        result = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="poe://models/{model_id}"),
            {"name": "model_id", "value": "claude-op"},
        )
    assert result.completion.values and all(
        v.startswith("claude-op") for v in result.completion.values
    )
    assert "claude-opus-4.6" in result.completion.values
