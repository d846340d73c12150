"""Both conversation stores opened directly, and what a user notices when a store fails or races."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import connect
from fakepoe import FakePoe, Reply
from servers import redis_server
from test_function_calling import TOOLS, call

from poe_mcp.conversations import ConflictError, ConversationStore, open_store
from poe_mcp.conversations.sqlite import MIGRATIONS

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        if url is None:
            pytest.skip("redis-server is not installed (.ci/run installs it with apt-get)")
        yield url


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConversationStore]:
    if request.param == "redis":
        location = request.getfixturevalue("redis_url")
    else:
        location = str(tmp_path / "store.db")
    opened = open_store(location)
    yield opened
    await opened.aclose()


def turn(prompt: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": f"Echo: {prompt}"},
    ]


async def test_append_load_list_and_clear(store: ConversationStore) -> None:
    await store.append("s1", "gpt-4o", turn("first"), built_on=0)
    await store.append("s1", "claude", turn("second"), built_on=2)
    await store.append("s2", "gpt-4o", turn("other"))
    loaded = await store.load("s1")
    assert [m["content"] for m in loaded.messages] == [
        "first",
        "Echo: first",
        "second",
        "Echo: second",
    ]
    assert loaded.model == "claude"
    listed = {s.id: s for s in await store.list(10)}
    assert listed["s1"].turns == 2 and listed["s1"].preview == "first"
    assert await store.clear("s1") and not await store.clear("s1")
    assert (await store.load("s1")).messages == [] and [s.id for s in await store.list(10)] == [
        "s2"
    ]


async def test_a_turn_built_on_an_old_history_is_refused_and_nothing_stored(
    store: ConversationStore,
) -> None:
    await store.append("s", "gpt-4o", turn("one"), built_on=0)
    with pytest.raises(ConflictError):
        await store.append("s", "gpt-4o", turn("stale"), built_on=0)
    assert [m["content"] for m in (await store.load("s")).messages] == ["one", "Echo: one"]


async def test_concurrent_appends_interleave_whole_turns(store: ConversationStore) -> None:
    async with anyio.create_task_group() as group:
        for i in range(30):
            group.start_soon(store.append, "s", "gpt-4o", turn(f"m{i}"))
    messages = (await store.load("s")).messages
    assert len(messages) == 60
    for user, assistant in zip(messages[::2], messages[1::2], strict=True):
        assert assistant["content"] == f"Echo: {user['content']}"


def test_a_first_version_store_is_migrated_and_keeps_its_conversations(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](db)  # the schema as the first release left it
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO sessions (id, model, created_at, last_used) VALUES ('old', 'gpt-4o', 1, 1)"
    )
    db.execute("""INSERT INTO messages VALUES ('old', 0, '{"role": "user", "content": "kept"}')""")
    db.close()

    async def reopen() -> list[Any]:
        store = open_store(str(path))
        await store.record_usage("gpt-4o", 1, 2, None)  # a table the first version did not have
        messages = (await store.load("old")).messages
        await store.aclose()
        return messages

    assert anyio.run(reopen) == [{"role": "user", "content": "kept"}]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_ten_processes_opening_one_new_file_all_start(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "store.db"
    opener = (
        "import sys, anyio\n"
        "from poe_mcp.conversations import open_store\n"
        "async def main():\n"
        "    store = open_store(sys.argv[1])\n"
        "    await store.append(sys.argv[2], 'm', [{'role': 'user', 'content': 'hi'}])\n"
        "    await store.aclose()\n"
        "anyio.run(main)\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", opener, str(path), f"s{i}"], stderr=subprocess.PIPE)
        for i in range(10)
    ]
    failures = [p.stderr.read().decode() for p in processes if p.wait(timeout=60) != 0]  # type: ignore[union-attr]
    assert failures == []
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 10


def test_the_store_is_private_to_its_user(tmp_path: Path) -> None:
    path = tmp_path / "private" / "store.db"

    async def write() -> None:
        store = open_store(str(path))
        await store.append("s", "m", turn("secret"))
        await store.aclose()

    anyio.run(write)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for file in path.parent.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_two_concurrent_tool_result_rounds_store_one(
    settings: Any, fake: FakePoe, kind: str, request: pytest.FixtureRequest
) -> None:
    from dataclasses import replace

    if kind == "redis":
        settings = replace(settings, store=request.getfixturevalue("redis_url"))
    fake.enqueue(Reply(tool_calls=[call("call_1", "getWeather", {"location": "Paris"})]))
    async with connect(settings) as client:
        first = await client.call_tool(
            "ask_poe_with_tools", {"bot": "Grok-4", "prompt": "Weather?", "tools": TOOLS}
        )
        session_id = first.structured_content["session_id"]
        fake.latency = 0.3  # both rounds are answered while the other is in flight
        rounds: list[Any] = []

        async def answer(content: str) -> None:
            rounds.append(
                await client.call_tool(
                    "ask_poe_with_tools",
                    {
                        "session_id": session_id,
                        "tool_results": [{"tool_call_id": "call_1", "content": content}],
                    },
                )
            )

        async with anyio.create_task_group() as group:
            group.start_soon(answer, "sunny")
            group.start_soon(answer, "rainy")
        fake.latency = 0
        await client.call_tool(
            "ask_poe", {"bot": "Grok-4", "prompt": "next", "session_id": session_id}
        )
    assert all(not r.is_error for r in rounds), "both answers are paid for and returned"
    refused = [r for r in rounds if any("not stored" in n for n in r.structured_content["notes"])]
    assert len(refused) == 1
    (note,) = [n for n in refused[0].structured_content["notes"] if "not stored" in n]
    assert "conflict_error" in note and "changed while this turn was answered" in note, note
    history = fake.chat_requests()[-1]["json"]["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant", "user"]


async def test_redis_gone_after_poe_answered_still_returns_the_answer(
    settings: Any, fake: FakePoe, tmp_path: Path
) -> None:
    from dataclasses import replace

    with redis_server(tmp_path) as url:
        if url is None:
            pytest.skip("redis-server is not installed (.ci/run installs it with apt-get)")
        async with connect(replace(settings, store=url)) as client:
            await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "warm"})
            sent = len(fake.chat_requests())
            fake.latency = 1.0
            async with anyio.create_task_group() as group:
                results: list[Any] = []

                async def ask() -> None:
                    results.append(
                        await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "paid"})
                    )

                group.start_soon(ask)
                while len(fake.chat_requests()) == sent:  # Poe is answering: now the store dies
                    await anyio.sleep(0.02)
                subprocess.run(["redis-cli", "-u", url, "shutdown", "nosave"], capture_output=True)
    (result,) = results
    assert not result.is_error and result.content[0].text == "Echo: paid"
    assert any("not stored" in note for note in result.structured_content["notes"])


async def test_a_held_history_sees_what_another_process_wrote(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    here, there = open_store(path), open_store(path)  # two connections, as two server processes
    try:
        await here.append("s", "m", turn("one"))
        assert len((await here.load("s")).messages) == 2  # now held in memory
        await there.append("s", "m", turn("two"), built_on=2)
        assert [m["content"] for m in (await here.load("s")).messages][-1] == "Echo: two"
        await there.clear("s")
        assert (await here.load("s")).messages == []
        await there.append("s", "m", turn("again"))
        assert [m["content"] for m in (await here.load("s")).messages] == ["again", "Echo: again"]
        await here.append("s", "m", turn("mine"), built_on=2)
        assert len((await there.load("s")).messages) == 4
    finally:
        await here.aclose()
        await there.aclose()


async def test_a_loaded_history_is_the_callers_own_copy(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    await store.append("s", "m", turn("one"))
    (await store.load("s")).messages.append({"role": "user", "content": "not stored"})
    assert len((await store.load("s")).messages) == 2
    await store.aclose()


async def test_a_turn_waits_on_a_thread_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    store = open_store(str(path))
    await store.append("s", "m", turn("one"))
    other = sqlite3.connect(path, isolation_level=None)  # another server process, mid-turn
    other.execute("BEGIN IMMEDIATE")
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: store.append("s", "m", turn("two"), built_on=2))
            await anyio.sleep(0.2)  # the event loop runs on: the turn waits on a worker thread
            assert other.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2
            other.execute("COMMIT")
        assert [m["content"] for m in (await store.load("s")).messages][-1] == "Echo: two"
    finally:
        other.close()
        await store.aclose()


def test_two_processes_writing_one_file_at_once_lose_and_interleave_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    writer = (
        "import sys, anyio\n"
        "from poe_mcp.conversations import open_store\n"
        "async def main():\n"
        "    store = open_store(sys.argv[1])\n"
        "    for i in range(150):\n"  # past CHECKPOINT_ROWS: each process checkpoints too
        "        prompt = f'{sys.argv[2]}-{i}'\n"
        "        await store.append('shared', 'm', [{'role': 'user', 'content': prompt},\n"
        "                           {'role': 'assistant', 'content': 'Echo: ' + prompt}])\n"
        "        await store.append(prompt, 'm', [{'role': 'user', 'content': prompt}])\n"
        "    await store.aclose()\n"
        "anyio.run(main)\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", writer, str(path), name], stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    failures = [p.stderr.read().decode() for p in processes if p.wait(timeout=120) != 0]  # type: ignore[union-attr]
    assert failures == []

    async def read() -> list[Any]:
        store = open_store(str(path))
        try:
            return (await store.load("shared")).messages
        finally:
            await store.aclose()

    messages = anyio.run(read)
    assert len(messages) == 600
    for user, assistant in zip(messages[::2], messages[1::2], strict=True):
        assert assistant["content"] == f"Echo: {user['content']}", "whole turns, never interleaved"
    for name in ("a", "b"):
        own = [m["content"] for m in messages[::2] if m["content"].startswith(f"{name}-")]
        assert own == [f"{name}-{i}" for i in range(150)], "each process's turns, in its order"
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 301


async def test_the_wal_is_checkpointed_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = open_store(str(path))
    opened = path.stat().st_size
    for i in range(200):
        await store.append(f"s{i}", "m", turn(f"q{i}"))
    # SQLite's own checkpoint is off (it would fsync on the event loop); the store's ran on a thread
    assert path.stat().st_size > opened
    await store.aclose()
