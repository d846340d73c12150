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
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "a", "system": "One.", "session_id": "s1"}
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
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "Plan a trip", "session_id": "my-trip"}
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
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "secret plan", "session_id": "s"}
        )
        cleared = await client.call_tool("clear_session", {"session_id": "s"})
        again = await client.call_tool("clear_session", {"session_id": "s"})
        await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "fresh", "session_id": "s"}
        )
    assert (
        cleared.structured_content["cleared"] is True
        and again.structured_content["cleared"] is False
    )
    assert fake.last_messages() == [{"role": "user", "content": "fresh"}]


async def test_a_failed_call_leaves_the_session_as_it_was(any_settings: Any, fake: FakePoe) -> None:
    async with connect(any_settings, max_retries=1) as client:
        await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "one", "session_id": "s"}
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
