"""The default ConversationStore: one SQLite file in WAL mode, each turn written in one transaction."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from ..poe.types import ChatMessage
from . import Conversation, MediaJob, SessionSummary, UsageTotals

T = TypeVar("T")


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # Statement by statement: executescript() would COMMIT the migration's transaction halfway.
    for statement in filter(str.strip, script.split(";")):
        db.execute(statement)


def _m001_conversations(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            model TEXT,
            tools TEXT,
            preview TEXT NOT NULL DEFAULT '',
            turns INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            last_used REAL NOT NULL
        );
        CREATE TABLE messages (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (session_id, seq)
        );
        CREATE INDEX sessions_by_last_used ON sessions(last_used DESC);
        """,
    )


def _m002_usage(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE usage_events (
            at REAL NOT NULL,
            model TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            cost_usd REAL
        );
        CREATE INDEX usage_by_time ON usage_events(at);
        """,
    )


def _m003_media_jobs(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE media_jobs (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            job TEXT NOT NULL
        );
        CREATE INDEX media_jobs_by_time ON media_jobs(created_at DESC);
        """,
    )


# Append-only: a shipped migration is never edited; PRAGMA user_version counts those applied.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m001_conversations,
    _m002_usage,
    _m003_media_jobs,
]


def _preview(messages: list[ChatMessage]) -> str:
    for message in messages:
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                )
            return str(content or "")[:80]
    return ""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class SQLiteStore:
    """SQLite behind a lock, driven from worker threads so the event loop never waits on disk."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        self._started = time.time()
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL still makes every transaction atomic (no half turn after a crash); it only
        # skips the fsync per commit, which costs milliseconds on every call.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    migration(self._db)
                    self._db.execute(f"PRAGMA user_version = {number}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                return fn(*args)

        return await anyio.to_thread.run_sync(locked)

    async def load(self, session_id: str) -> Conversation:
        def load() -> Conversation:
            row = self._db.execute(
                "SELECT model, tools FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            rows = self._db.execute(
                "SELECT message FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
            model, tools = row if row else (None, None)
            return Conversation(
                session_id,
                model,
                [json.loads(r[0]) for r in rows],
                json.loads(tools) if tools else None,
            )

        return await self._run(load)

    async def append(
        self,
        session_id: str,
        model: str,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
    ) -> None:
        def append() -> None:
            now = time.time()
            self._db.execute(
                "BEGIN IMMEDIATE"
            )  # one turn, one transaction: all of it or none of it
            try:
                self._db.execute(
                    "INSERT INTO sessions (id, model, preview, created_at, last_used) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO NOTHING",
                    (session_id, model, _preview(messages), now, now),
                )
                start = self._db.execute(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM messages WHERE session_id = ?",
                    (session_id,),
                ).fetchone()[0]
                self._db.executemany(
                    "INSERT INTO messages (session_id, seq, message) VALUES (?, ?, ?)",
                    [(session_id, start + i, json.dumps(m)) for i, m in enumerate(messages)],
                )
                turns = sum(1 for m in messages if m.get("role") == "assistant")
                self._db.execute(
                    "UPDATE sessions SET model = ?, last_used = ?, turns = turns + ?, tools = COALESCE(?, tools), "
                    "preview = CASE WHEN preview = '' THEN ? ELSE preview END WHERE id = ?",
                    (
                        model,
                        now,
                        turns,
                        json.dumps(tools) if tools else None,
                        _preview(messages),
                        session_id,
                    ),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

        await self._run(append)

    async def clear(self, session_id: str) -> bool:
        def clear() -> bool:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            found = (
                self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0
            )
            self._db.execute("COMMIT")
            return found

        return await self._run(clear)

    async def list(self, limit: int) -> list[SessionSummary]:
        def list_() -> list[SessionSummary]:
            rows = self._db.execute(
                "SELECT id, model, turns, last_used, preview FROM sessions ORDER BY last_used DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [SessionSummary(r[0], r[1], r[2], _iso(r[3]), r[4]) for r in rows]

        return await self._run(list_)

    async def record_usage(
        self, model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float | None
    ) -> None:
        def record() -> None:
            self._db.execute(
                "INSERT INTO usage_events (at, model, prompt_tokens, completion_tokens, cost_usd) VALUES (?, ?, ?, ?, ?)",
                (time.time(), model, prompt_tokens, completion_tokens, cost_usd),
            )

        await self._run(record)

    async def usage_totals(self) -> UsageTotals:
        def totals() -> UsageTotals:
            rows = self._db.execute(
                "SELECT model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(COALESCE(cost_usd, 0)) "
                "FROM usage_events WHERE at >= ? GROUP BY model ORDER BY model",
                (self._started,),
            ).fetchall()
            result = UsageTotals()
            for model, calls, prompt, completion, cost in rows:
                result.by_model[model] = {
                    "calls": calls,
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                    "cost_usd": round(cost, 8),
                }
                result.calls += calls
                result.prompt_tokens += prompt
                result.completion_tokens += completion
                result.cost_usd = round(result.cost_usd + cost, 8)
            result.total_tokens = result.prompt_tokens + result.completion_tokens
            return result

        return await self._run(totals)

    async def save_job(self, job: MediaJob) -> None:
        await self._run(
            self._db.execute,
            "INSERT INTO media_jobs (id, created_at, job) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET job = excluded.job",
            (job.id, job.created_at, json.dumps(asdict(job))),
        )

    async def load_job(self, job_id: str) -> MediaJob | None:
        def load() -> MediaJob | None:
            row = self._db.execute("SELECT job FROM media_jobs WHERE id = ?", (job_id,)).fetchone()
            return MediaJob(**json.loads(row[0])) if row else None

        return await self._run(load)

    async def list_jobs(self, limit: int) -> Sequence[MediaJob]:
        def list_() -> list[MediaJob]:
            rows = self._db.execute(
                "SELECT job FROM media_jobs ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
            return [MediaJob(**json.loads(r[0])) for r in rows]

        return await self._run(list_)

    async def aclose(self) -> None:
        await self._run(self._db.close)
