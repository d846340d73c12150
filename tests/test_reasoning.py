"""Reasoning switches from the catalog: `thinking` and `reasoning_effort` become what each model declares.

The models are the recorded catalog's own (tests/fixtures/poe/models.json): Claude 4.6 declares
output_effort, Gemini 3.x thinking_level, GPT-5 Pro only the `reasoning` object.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import connect
from fakepoe import FakePoe, Reply

pytestmark = pytest.mark.anyio

SWITCHES = (
    "reasoning_effort",
    "output_effort",
    "thinking_level",
    "thinking_budget",
    "enable_thinking",
)


async def ask(settings: Any, fake: FakePoe, **arguments: Any) -> tuple[Any, dict[str, Any]]:
    async with connect(settings) as client:
        result = await client.call_tool("ask_poe", {"prompt": "think", **arguments})
    assert not result.is_error, result.content[0].text
    body = fake.chat_requests()[-1]["json"]
    return result, {name: body[name] for name in SWITCHES if name in body}


@pytest.mark.parametrize(
    ("bot", "effort", "sent"),
    [
        ("claude-opus-4.6", None, {"output_effort": "high"}),
        ("claude-opus-4.6", "xhigh", {"output_effort": "max"}),
        ("gemini-3.1-pro", None, {"thinking_level": "high"}),
        ("gemini-3.1-pro", "low", {"thinking_level": "low"}),
        ("gemini-3.1-pro", "medium", {"thinking_level": "high"}),
        ("gpt-5-pro", None, {"reasoning_effort": "high"}),  # only the catalog's `reasoning` object
        ("gpt-5.4", "low", {"reasoning_effort": "low"}),
        ("claude-sonnet-4.5", None, {"thinking_budget": 8192}),
        ("claude-sonnet-4.5", "low", {"thinking_budget": 2048}),
        ("glm-5", None, {"enable_thinking": True}),
    ],
)
async def test_thinking_sends_the_switch_the_model_declares(
    settings: Any, fake: FakePoe, bot: str, effort: str | None, sent: dict[str, Any]
) -> None:
    extra = {"reasoning_effort": effort} if effort else {}
    result, switches = await ask(settings, fake, bot=bot, thinking=True, **extra)
    assert switches == sent
    assert not any("reasoning" in note for note in result.structured_content["notes"])


async def test_reasoning_effort_alone_is_mapped_too(settings: Any, fake: FakePoe) -> None:
    _, switches = await ask(settings, fake, bot="claude-sonnet-4.6", reasoning_effort="low")
    assert switches == {"output_effort": "low"}


@pytest.mark.parametrize(
    ("bot", "says"),
    [
        ("gpt-4-turbo", "gpt-4-turbo declares no reasoning switch"),
        ("o3-mini-high", "o3-mini-high always reasons"),
    ],
)
async def test_a_model_without_a_switch_gets_nothing_and_a_note(
    settings: Any, fake: FakePoe, bot: str, says: str
) -> None:
    result, switches = await ask(settings, fake, bot=bot, thinking=True, reasoning_effort="high")
    assert switches == {}
    assert any(says in note for note in result.structured_content["notes"])


async def test_the_legacy_thinking_object_is_accepted(settings: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text="42", reasoning="step by step"), Reply(text="43", reasoning="again"))
    legacy = {"enabled": True, "template": "<think>{x}</think>", "include_in_response": False}
    hidden, switches = await ask(settings, fake, bot="gemini-2.5-pro", thinking=legacy)
    assert switches == {"thinking_budget": 8192}
    assert hidden.structured_content["reasoning"] is None
    assert any("thinking.template" in note for note in hidden.structured_content["notes"])
    shown, _ = await ask(settings, fake, bot="gemini-2.5-pro", thinking={"enabled": True})
    assert shown.structured_content["reasoning"] == "again"  # from Poe's reasoning_content


async def test_a_malformed_thinking_object_is_refused_before_sending(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"prompt": "x", "bot": "gemini-2.5-pro", "thinking": {"on": True}}
        )
    assert result.is_error and "thinking must be true/false or {enabled" in result.content[0].text
    assert fake.model_calls() == []
