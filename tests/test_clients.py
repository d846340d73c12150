"""What real MCP clients see: Claude Desktop shows the model only `content`, never `structuredContent`,
so everything a model must carry forward (session ids, tool-call ids, the follow-up call) is in the text."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from xml.etree import ElementTree

import pytest
from conftest import connect
from fakepoe import FakePoe, Reply

pytestmark = pytest.mark.anyio

WEATHER_TOOL = {
    "name": "getWeather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


class ContentOnlyClient:
    """An MCP client as Claude Desktop is one: the model reads the text blocks and nothing else."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        result = await self._client.call_tool(tool, arguments)
        return "\n".join(block.text for block in result.content if block.type == "text")


def session_in(text: str) -> str:
    found = re.search(r"session_id=(\S+)", text)
    assert found, f"no session_id in the text: {text!r}"
    return found.group(1)


def follow_up_in(text: str) -> dict[str, Any]:
    """The exact call the text tells the model to make next."""
    found = re.search(r"call ask_poe_with_tools (\{.*\})", text)
    assert found, f"no follow-up call in the text: {text!r}"
    return json.loads(found.group(1))


async def test_a_three_turn_conversation_from_the_text_alone(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode) as client:
        model = ContentOnlyClient(client)
        first = await model.call("ask_poe", {"bot": "gpt-4-turbo", "prompt": "I am Ada."})
        second = await model.call(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "I like tea.", "session_id": session_in(first)},
        )
        third = await model.call(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "Who am I?", "session_id": session_in(second)},
        )
    assert first.startswith("Echo: I am Ada.\n") and "gpt-4-turbo" in first
    assert session_in(first) == session_in(second) == session_in(third)
    assert [m["content"] for m in fake.last_messages()] == [
        "I am Ada.",
        "Echo: I am Ada.",
        "I like tea.",
        "Echo: I like tea.",
        "Who am I?",
    ]


async def test_the_text_carries_tokens_cost_and_notes(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(
        Reply(
            text="Short.",
            finish_reason="length",
            usage={"prompt_tokens": 700, "completion_tokens": 112, "total_tokens": 812},
        )
    )
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "Claude-Sonnet-4.5", "prompt": "Write a saga."}
        )
    answer, handles = (block.text for block in result.content)
    data = result.structured_content
    assert answer == "Short."
    assert handles.startswith(
        f"session_id={data['session_id']} · {data['bot']} · 812 tokens · $0.00"
    )
    assert data["cost_usd"] and f"${data['cost_usd']:.6f}".rstrip("0") in handles
    assert "finish_reason=length" in handles


async def test_two_rounds_of_tool_calls_from_the_text_alone(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    fake.enqueue(
        Reply(
            tool_calls=[
                {"id": "call_a", "name": "getWeather", "arguments": '{"city": "Paris"}'},
                {"id": "call_b", "name": "getWeather", "arguments": '{"city": "Rome"}'},
            ]
        ),
        Reply(tool_calls=[{"id": "call_c", "name": "getWeather", "arguments": '{"city": "Oslo"}'}]),
        Reply(text="Paris sunny, Rome rainy, Oslo snowy."),
    )
    async with connect(settings, mode) as client:
        model = ContentOnlyClient(client)
        text = await model.call(
            "ask_poe_with_tools",
            {"bot": "Grok-4", "prompt": "Weather?", "tools": [WEATHER_TOOL]},
        )
        assert 'getWeather({"city": "Paris"})' in text and "id=call_b" in text
        for weather in (["sunny", "rainy"], ["snowy"]):
            call = follow_up_in(text)
            for result, said in zip(call["tool_results"], weather, strict=True):
                result["content"] = said
            text = await model.call("ask_poe_with_tools", call)
    assert text.startswith("Paris sunny, Rome rainy, Oslo snowy.")
    tool_messages = [m for m in fake.last_messages() if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == [
        ("call_a", "sunny"),
        ("call_b", "rainy"),
        ("call_c", "snowy"),
    ]


def described_inputs_missing(tool: Any) -> list[str]:
    properties = tool.input_schema.get("properties", {})
    return [f"{tool.name}.{name}" for name, p in properties.items() if not p.get("description")]


async def test_every_input_is_described_and_tools_list_stays_small(
    settings: Any, mode: str
) -> None:
    async with connect(settings, mode) as client:
        tools = (await client.list_tools()).tools
    assert [missing for tool in tools for missing in described_inputs_missing(tool)] == []
    size = len(
        json.dumps(
            [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools],
            separators=(",", ":"),
        )
    )
    assert size <= 12_000, f"tools/list is {size} bytes"  # clients pay for every byte in context


async def test_icons_travel_inside_the_messages(settings: Any, mode: str) -> None:
    async with connect(settings, mode) as client:
        tools = (await client.list_tools()).tools
        server_icons = client.server_info.icons if client.server_info else None
        info = await client.call_tool("get_model_info", {"model": "Assistant"})
    assert server_icons and svg_in(server_icons[0].src).startswith("<svg ")
    assert not any(t.icons for t in tools), "tool icons are opt-in (icons.py says why)"
    icon = info.structured_content["icon_url"]
    assert icon.startswith("https://") and icon.endswith(".jpeg") and icon in info.content[0].text


def svg_in(src: str) -> str:
    """The SVG inside a `data:` URI, which must be base64 (the form the MCP spec names for icons)."""
    prefix = "data:image/svg+xml;base64,"
    assert src.startswith(prefix), src[:40]
    svg = base64.b64decode(src.removeprefix(prefix), validate=True).decode()
    assert ElementTree.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
    return svg


async def test_with_tool_icons_on_every_tool_shows_its_kind(settings: Any, mode: str) -> None:
    async with connect(settings, mode, tool_icons=True, compat="poe-proxy-mcp") as client:
        tools = (await client.list_tools()).tools
    assert [t.name for t in tools if not t.icons] == [], "every tool has an icon"
    glyph_of = {t.name: svg_in(t.icons[0].src) for t in tools if t.icons}
    assert glyph_of["ask_poe"] == glyph_of["ask_poe_v2"] != glyph_of["generate_image"]
    assert len(set(glyph_of.values())) == 7, "chat, image, video, audio, catalog, account, about"


async def test_lists_and_reads_say_how_long_they_stay_fresh(settings: Any, fake: FakePoe) -> None:
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    (settings.output_dir / "cat.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    async with connect(settings, "auto") as client:
        tools = await client.list_tools()
        templates = await client.list_resource_templates()
        catalog = await client.read_resource("poe://models")
        media = await client.read_resource("poe-mcp://media/cat.png")
    for static in (tools, templates):
        assert (static.ttl_ms, static.cache_scope) == (3_600_000, "public")
    assert 3_500_000 < catalog.ttl_ms <= 3_600_000 and catalog.cache_scope == "public"
    assert media.ttl_ms > 0 and media.cache_scope == "private"  # one user's file
