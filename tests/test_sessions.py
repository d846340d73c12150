"""Conversations persist: history is resent, a failed call changes nothing, sessions can be listed and cleared."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import connect
from fakepoe import FakePoe

pytestmark = pytest.mark.anyio


async def test_turn_two_sends_turn_one(any_settings: Any, fake: FakePoe, mode: str) -> None:
    async with connect(any_settings, mode) as client:
        first = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "My name is Ada.", "system": "Be kind."}
        )
        session_id = first.structured_content["session_id"]
        second = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "What is my name?", "session_id": session_id},
        )
    assert second.structured_content["session_id"] == session_id
    assert fake.last_messages() == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Echo: My name is Ada."},
        {"role": "user", "content": "What is my name?"},
    ]


async def test_a_new_system_message_replaces_the_old_one(any_settings: Any, fake: FakePoe) -> None:
    async with connect(any_settings) as client:
        await client.call_tool(
            "ask_poe",
            {
                "bot": "gpt-4-turbo",
                "prompt": "a",
                "system": "One.",
                "session_id": "s1",
                "new_session": True,
            },
        )
        await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "b", "system": "Two.", "session_id": "s1"}
        )
        await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "c", "session_id": "s1"})
    messages = fake.last_messages()
    assert messages[0] == {"role": "system", "content": "Two."}
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]


async def test_clients_may_name_their_own_sessions(
    any_settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(any_settings, mode) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": "gpt-4-turbo",
                "prompt": "Plan a trip",
                "session_id": "my-trip",
                "new_session": True,
            },
        )
        await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "to Rome", "session_id": "my-trip"}
        )
        listed = await client.call_tool("list_sessions", {"limit": 5})
    assert result.structured_content["session_id"] == "my-trip"
    [entry] = listed.structured_content["sessions"]
    assert (entry["id"], entry["model"], entry["turns"], entry["preview"]) == (
        "my-trip",
        "gpt-4-turbo",
        2,
        "Plan a trip",
    )
    assert entry["last_used"].endswith("+00:00")


async def test_clear_session_forgets_the_history(
    any_settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(any_settings, mode) as client:
        await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "secret plan", "session_id": "s", "new_session": True},
        )
        cleared = await client.call_tool("clear_session", {"session_id": "s"})
        again = await client.call_tool("clear_session", {"session_id": "s"})
        await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "fresh", "session_id": "s", "new_session": True},
        )
    assert (
        cleared.structured_content["cleared"] is True
        and again.structured_content["cleared"] is False
    )
    assert fake.last_messages() == [{"role": "user", "content": "fresh"}]


async def test_a_failed_call_leaves_the_session_as_it_was(any_settings: Any, fake: FakePoe) -> None:
    async with connect(any_settings, max_retries=1) as client:
        await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "one", "session_id": "s", "new_session": True},
        )
        fake.error(500, "provider_error", times=2)
        failed = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "two", "session_id": "s"}
        )
        await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "three", "session_id": "s"}
        )
        listed = await client.call_tool("list_sessions", {})
    assert failed.is_error
    assert fake.last_messages() == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "Echo: one"},
        {"role": "user", "content": "three"},
    ]
    assert listed.structured_content["sessions"][0]["turns"] == 2


async def test_an_unknown_session_id_is_refused_and_nothing_is_sent(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "Go on.", "session_id": "my-tirp"}
        )
        tools = await client.call_tool(
            "ask_poe_with_tools",
            {"session_id": "my-tirp", "tool_results": [{"tool_call_id": "c1", "content": "x"}]},
        )
        listed = await client.call_tool("list_sessions", {})
    for refused in (result, tools):
        text = refused.content[0].text
        assert refused.is_error and text.startswith(
            "not_found_error (404): No stored session 'my-tirp'."
        )
        assert "Omit session_id" in text and "list_sessions" in text
    assert fake.chat_requests() == [] and listed.structured_content["sessions"] == []


async def test_new_session_starts_a_conversation_under_a_chosen_id(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        started = await client.call_tool(
            "ask_poe",
            {
                "bot": "gpt-4-turbo",
                "prompt": "Plan a trip",
                "session_id": "trip",
                "new_session": True,
            },
        )
        again = await client.call_tool(
            "ask_poe",
            {
                "bot": "gpt-4-turbo",
                "prompt": "Plan another",
                "session_id": "trip",
                "new_session": True,
            },
        )
        continued = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "to Rome", "session_id": "trip"}
        )
    assert started.structured_content["session_id"] == "trip" and not continued.is_error
    assert again.is_error and again.content[0].text.startswith(
        "invalid_request_error (400): Session 'trip' already exists."
    )
    assert [m["content"] for m in fake.last_messages()] == [
        "Plan a trip",
        "Echo: Plan a trip",
        "to Rome",
    ]


async def test_a_session_cleared_and_started_again_under_its_id_sends_only_its_new_history(
    settings: Any, fake: FakePoe
) -> None:
    """The wire history each session keeps in memory never outlives the stored one."""
    async with connect(settings) as client:
        for prompt in ("old one", "old two"):
            await client.call_tool(
                "ask_poe",
                {
                    "bot": "gpt-4-turbo",
                    "prompt": prompt,
                    "session_id": "s",
                    "new_session": prompt == "old one",
                },
            )
        await client.call_tool("clear_session", {"session_id": "s"})
        for prompt in ("new one", "new two"):
            await client.call_tool(
                "ask_poe",
                {
                    "bot": "gpt-4-turbo",
                    "prompt": prompt,
                    "session_id": "s",
                    "new_session": prompt == "new one",
                },
            )
    assert fake.last_messages() == [
        {"role": "user", "content": "new one"},
        {"role": "assistant", "content": "Echo: new one"},
        {"role": "user", "content": "new two"},
    ]
