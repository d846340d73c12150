"""The default ConversationStore: one SQLite file in WAL mode, each turn written in one transaction."""

from __future__ import annotations

import copy
import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from ..poe.types import ChatMessage
from . import (
    Breach,
    ConflictError,
    Conversation,
    Day,
    Limit,
    MediaJob,
    SessionSummary,
    SpendHold,
    SpendSummary,
    Spent,
    UsageEvent,
    UsageTotals,
    iso_time,
    preview_of,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


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


def _m004_usage_owner(db: sqlite3.Connection) -> None:
    # Hosted mode: each user's usage is counted apart ('' is the one user of stdio and token mode).
    _run_script(
        db,
        """
        ALTER TABLE usage_events ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        CREATE INDEX usage_by_owner_time ON usage_events(owner, at);
        """,
    )


def _m005_spend(db: sqlite3.Connection) -> None:
    """The spend guard: what each call spent in points and in which conversation (the same row as its
    usage, so counting costs no extra write), and the holds of calls under way, each user's apart."""
    _run_script(
        db,
        """
        ALTER TABLE usage_events ADD COLUMN points REAL;
        ALTER TABLE usage_events ADD COLUMN session_id TEXT;
        CREATE INDEX usage_by_session ON usage_events(session_id) WHERE session_id IS NOT NULL;
        CREATE TABLE spend_holds (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL DEFAULT '',
            at REAL NOT NULL,
            model TEXT NOT NULL,
            session_id TEXT,
            usd REAL NOT NULL,
            points REAL NOT NULL
        );
        CREATE INDEX spend_holds_by_time ON spend_holds(owner, at);
        CREATE INDEX spend_holds_by_session ON spend_holds(session_id) WHERE session_id IS NOT NULL;
        """,
    )


# Append-only: a shipped migration is never edited; PRAGMA user_version counts those applied.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m001_conversations,
    _m002_usage,
    _m003_media_jobs,
    _m004_usage_owner,
    _m005_spend,
]

# Spend is summed in floats: a budget that fits five calls exactly must let the fifth through.
EPSILON = 1e-9


# Decoded histories kept in memory, most recently used first: a turn then costs no decode of its history.
CACHED_SESSIONS = 64

# SQLite's page cache per connection, in KiB. At its default (2,000) it filled as the file grew, and
# RSS with it (+1.8 MB over calls 1,000 to 10,000, bench/rss_calls.py); a turn touches a few pages
# (the sessions row, the ends of the messages and usage indexes), and a history already held is read
# from memory, so a smaller cache costs no extra reads that matter; the rest is the OS's file cache.
CACHE_KIB = 500

# How long a write on a worker thread waits for another process's write lock before it fails.
BUSY_TIMEOUT_MS = 30_000
# Rows written between checkpoints of the WAL into the database file. SQLite's own automatic
# checkpoint would run inside whichever commit crosses its threshold, and with it two fsyncs: on the
# event loop, that would stall every call in flight. So it is off, and the store checkpoints on a
# worker thread instead, about as often (a turn is ~5 rows and ~9 pages; SQLite checkpoints at 1,000 pages).
CHECKPOINT_ROWS = 500


@dataclass
class _Wal:
    checkpointed_at: int = 0  # the connection's total_changes at the last checkpoint


class _Busy(Exception):
    """Another connection holds SQLite's write lock: the write is retried on a thread that waits."""


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    return code == 5 if code is not None else str(error).startswith("database is locked")


@dataclass
class _CachedSession:
    created_at: float
    model: str | None
    tools: list[dict[str, Any]] | None
    messages: list[ChatMessage]
    data_version: int  # PRAGMA data_version when last read: another connection's commit changes it


class SQLiteStore:
    """SQLite behind a lock, driven from worker threads so the event loop never waits on disk."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Conversations are private: the file is made 0600 before SQLite opens it, and SQLite gives its
        # -wal and -shm files the database file's own permissions.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(
            path,
            check_same_thread=False,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        self._lock = threading.Lock()
        self._started = time.time()
        self._cache: OrderedDict[str, _CachedSession] = OrderedDict()
        # A user's view (scoped()) stores their sessions and jobs under `<owner>/<id>`.
        self._owner = ""
        self._ns = ""
        self._owns_connection = True
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL still makes every transaction atomic (no half turn after a crash); it only
        # skips the fsync per commit, which costs milliseconds on every call.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # see CHECKPOINT_ROWS
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._wal = _Wal()
        self._migrate()

    def scoped(self, owner: str) -> SQLiteStore:
        """The same file, seen as one user's: their sessions, jobs and usage only."""
        view = copy.copy(self)  # shares the connection, its lock, its WAL and the history cache
        view._owner, view._ns, view._owns_connection = owner, f"{owner}/", False
        return view

    def _range(self) -> tuple[str, str]:
        """Every internal id of this view lies in [low, high)."""
        return self._ns, (self._ns[:-1] + chr(ord(self._ns[-1]) + 1)) if self._ns else "\U0010ffff"

    @contextmanager
    def _transaction(self, wait: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any failure: each write is all there or not at all.
        With `wait` false, _Busy at once, before anything is written, when another connection holds
        the write lock."""
        if wait:
            self._db.execute("BEGIN IMMEDIATE")
        else:
            self._begin_at_once()
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        # The version is read inside the write lock: several processes opening one new file at once
        # then migrate it once, in turn, instead of racing to create the same tables.
        with self._lock, self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for migration in MIGRATIONS[version:]:
                migration(db)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _begin_at_once(self) -> None:
        self._db.execute("PRAGMA busy_timeout = 0")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if _is_busy(error):
                raise _Busy from error
            raise
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                try:
                    return fn(*args)
                finally:
                    self._checkpoint_if_due()

        return await anyio.to_thread.run_sync(locked)

    def _write_now(self, fn: Callable[[bool], T]) -> tuple[T, bool] | None:
        """`fn(False)` on the event loop, if neither a worker nor another process holds the lock: its
        result and whether a checkpoint is due; None, with nothing written, if one does."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return fn(False), self._checkpoint_due()
        except _Busy:
            return None
        finally:
            self._lock.release()

    async def _write(self, fn: Callable[[bool], T]) -> T:
        """Run `fn(wait)`, a write that opens its transaction with `_transaction(wait)`. In WAL mode with
        synchronous=NORMAL a commit is a write into the OS's cache, tens of microseconds, less than the
        hop to a worker thread; so when nothing holds the lock the write runs on the event loop, and
        only when a worker or another process does, on a thread that waits for it."""
        done = self._write_now(fn)
        if done is None:
            return await self._run(fn, True)
        result, checkpoint_due = done
        if checkpoint_due:
            await self._run(lambda: None)  # _run checkpoints, on a worker thread
        return result

    def _checkpoint_due(self) -> bool:
        return self._db.total_changes - self._wal.checkpointed_at >= CHECKPOINT_ROWS

    def _checkpoint_if_due(self) -> None:
        """On a worker thread, with the lock held: copy the WAL into the database file (PASSIVE: it
        waits for no reader or writer, so what it cannot copy now is left for the next one)."""
        if self._checkpoint_due() and not self._db.in_transaction:
            self._wal.checkpointed_at = self._db.total_changes
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:  # the data is safe in the WAL; a later checkpoint copies it
                log.warning("Checkpointing the conversation store's WAL failed", exc_info=True)

    async def load(self, session_id: str) -> Conversation:
        conversation = await self._load_internal(self._ns + session_id)
        conversation.id = session_id
        return conversation

    async def _load_internal(self, session_id: str) -> Conversation:
        # A history this process already holds, unchanged by any other connection, is answered on the
        # event loop without a thread hop (one PRAGMA, which in WAL mode never waits for a writer). If a
        # worker holds the lock, or the history must be read, the read goes to a thread.
        if self._lock.acquire(blocking=False):
            try:
                cached = self._current(session_id)
            finally:
                self._lock.release()
            if cached is not None:
                return cached
        return await self._run(self._load, session_id)

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _current(self, session_id: str) -> Conversation | None:
        cached = self._cache.get(session_id)
        if cached is None or cached.data_version != self._data_version():
            return None
        self._cache.move_to_end(session_id)
        return Conversation(session_id, cached.model, list(cached.messages), cached.tools)

    def _load(self, session_id: str) -> Conversation:
        """The stored history, reading only the messages this process has not decoded yet."""
        version = self._data_version()
        row = self._db.execute(
            "SELECT model, tools, created_at FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if row is None:
            self._cache.pop(session_id, None)
            return Conversation(session_id)
        model, tools_json, created_at = row
        cached = self._cache.get(session_id)
        if (
            cached is None or cached.created_at != created_at
        ):  # new to us, or cleared and begun again
            cached = _CachedSession(created_at, model, None, [], version)
        rows = self._db.execute(
            "SELECT message FROM messages WHERE session_id = ? AND seq >= ? ORDER BY seq",
            (session_id, len(cached.messages)),
        ).fetchall()
        cached.messages.extend(json.loads(r[0]) for r in rows)
        cached.model, cached.data_version = model, version
        cached.tools = json.loads(tools_json) if tools_json else None
        self._remember(session_id, cached)
        return Conversation(session_id, model, list(cached.messages), cached.tools)

    def _remember(self, session_id: str, cached: _CachedSession) -> None:
        self._cache[session_id] = cached
        self._cache.move_to_end(session_id)
        while len(self._cache) > CACHED_SESSIONS:
            self._cache.popitem(last=False)

    async def append(
        self,
        session_id: str,
        model: str,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
        *,
        built_on: int | None = None,
        usage: UsageEvent | None = None,
    ) -> None:
        encoded = [json.dumps(m) for m in messages]
        shown, session_id = session_id, self._ns + session_id

        def append(wait: bool) -> None:
            now = time.time()
            # one turn, one transaction: all of it or none of it
            with self._transaction(wait) as db:
                start = db.execute(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM messages WHERE session_id = ?",
                    (session_id,),
                ).fetchone()[0]
                if built_on is not None and start != built_on:
                    raise ConflictError(
                        f"Session {shown!r} changed while this turn was answered "
                        f"({start} stored messages, the turn was built on {built_on})"
                    )
                db.execute(
                    "INSERT INTO sessions (id, model, preview, created_at, last_used) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO NOTHING",
                    (session_id, model, preview_of(messages), now, now),
                )
                db.executemany(
                    "INSERT INTO messages (session_id, seq, message) VALUES (?, ?, ?)",
                    [(session_id, start + i, m) for i, m in enumerate(encoded)],
                )
                turns = sum(1 for m in messages if m.get("role") == "assistant")
                db.execute(
                    "UPDATE sessions SET model = ?, last_used = ?, turns = turns + ?, tools = COALESCE(?, tools), "
                    "preview = CASE WHEN preview = '' THEN ? ELSE preview END WHERE id = ?",
                    (
                        model,
                        now,
                        turns,
                        json.dumps(tools) if tools else None,
                        preview_of(messages),
                        session_id,
                    ),
                )
                if usage is not None:
                    self._insert_usage(db, usage)
            self._extend_cache(session_id, start, model, tools, encoded)

        await self._write(append)

    def _extend_cache(
        self,
        session_id: str,
        start: int,
        model: str,
        tools: list[dict[str, Any]] | None,
        encoded: list[str],
    ) -> None:
        """Keep a held history current after our own write (which leaves data_version as it was)."""
        cached = self._cache.get(session_id)
        if cached is None:
            return
        if len(cached.messages) != start:  # it had missed another process's turn: read it afresh
            del self._cache[session_id]
            return
        cached.messages.extend(json.loads(m) for m in encoded)  # our own copy, not the caller's
        cached.model = model
        cached.tools = tools or cached.tools

    async def clear(self, session_id: str) -> bool:
        session_id = self._ns + session_id

        def clear() -> bool:
            self._cache.pop(session_id, None)
            with self._transaction() as db:
                db.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
                return db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

        return await self._run(clear)

    async def list(self, limit: int) -> list[SessionSummary]:
        def list_() -> list[SessionSummary]:
            rows = self._db.execute(
                "SELECT id, model, turns, last_used, preview FROM sessions WHERE id >= ? AND id < ? "
                "ORDER BY last_used DESC LIMIT ?",
                (*self._range(), limit),
            ).fetchall()
            cut = len(self._ns)
            return [SessionSummary(r[0][cut:], r[1], r[2], iso_time(r[3]), r[4]) for r in rows]

        return await self._run(list_)

    async def record_usage(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float | None,
        **spend: Any,
    ) -> None:
        event = UsageEvent(model, prompt_tokens, completion_tokens, cost_usd, **spend)

        def record() -> None:
            if event.hold is None:  # one statement: SQLite makes it a transaction of its own
                self._insert_usage(self._db, event)
                return
            with self._transaction() as db:
                self._insert_usage(db, event)

        await self._run(record)

    def _insert_usage(self, db: sqlite3.Connection, usage: UsageEvent) -> None:
        db.execute(
            "INSERT INTO usage_events "
            "(owner, at, model, prompt_tokens, completion_tokens, cost_usd, points, session_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._owner,
                time.time(),
                usage.model,
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cost_usd,
                usage.points,
                usage.session_id,
            ),
        )
        if usage.hold is not None:  # settled in the write that counts the real cost
            db.execute("DELETE FROM spend_holds WHERE id = ?", (usage.hold.id,))

    # -- the spend guard ---------------------------------------------------------------------

    async def reserve_spend(self, hold: SpendHold, limits: Sequence[Limit]) -> Breach | None:
        def reserve() -> Breach | None:
            # BEGIN IMMEDIATE takes the file's write lock: every process checks and holds in turn.
            with self._transaction() as db:
                for limit in limits:
                    spent = self._spent(db, limit.scope, hold.day, hold.session_id)
                    used = spent.usd if limit.unit == "usd" else spent.points
                    amount = hold.usd if limit.unit == "usd" else hold.points
                    if used >= limit.amount - EPSILON or used + amount > limit.amount + EPSILON:
                        return Breach(limit, used)
                db.execute(
                    "INSERT INTO spend_holds (id, owner, at, model, session_id, usd, points) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        hold.id,
                        self._owner,
                        hold.at,
                        hold.model,
                        hold.session_id,
                        hold.usd,
                        hold.points,
                    ),
                )
            return None

        return await self._run(reserve)

    async def release_spend(self, hold: SpendHold) -> None:
        await self._run(self._db.execute, "DELETE FROM spend_holds WHERE id = ?", (hold.id,))

    def _spent(self, db: sqlite3.Connection, scope: str, day: Day, session_id: str | None) -> Spent:
        """Real spend plus the holds of calls under way, for one day or one conversation, of this
        view's user (hosted mode counts each person's budget apart)."""
        where, args = (
            ("owner = ? AND at >= ? AND at < ?", (self._owner, day.start, day.end))
            if scope == "day"
            else ("owner = ? AND session_id = ?", (self._owner, session_id))
        )
        usd, points = db.execute(
            f"SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(points), 0) FROM usage_events WHERE {where}",
            args,
        ).fetchone()
        held_usd, held_points = db.execute(
            f"SELECT COALESCE(SUM(usd), 0), COALESCE(SUM(points), 0) FROM spend_holds WHERE {where}",
            args,
        ).fetchone()
        return Spent(usd + held_usd, points + held_points)

    async def spend_summary(
        self, today: Day, session_id: str | None = None, days: Sequence[Day] = ()
    ) -> SpendSummary:
        def summary() -> SpendSummary:
            db = self._db
            result = SpendSummary(today=self._spent(db, "day", today, None))
            if session_id is not None:
                result.session = self._spent(db, "session", today, session_id)
            for day in days:
                usd, points = db.execute(
                    "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(points), 0) FROM usage_events "
                    "WHERE owner = ? AND at >= ? AND at < ?",
                    (self._owner, day.start, day.end),
                ).fetchone()
                result.by_day[day.label] = Spent(usd, points)
            if days:
                rows = db.execute(
                    "SELECT model, COALESCE(SUM(cost_usd), 0), COALESCE(SUM(points), 0) FROM usage_events "
                    "WHERE owner = ? AND at >= ? AND at < ? GROUP BY model ORDER BY model",
                    (self._owner, days[0].start, days[-1].end),
                ).fetchall()
                result.by_model = {model: Spent(usd, points) for model, usd, points in rows}
            return result

        return await self._run(summary)

    async def usage_totals(self) -> UsageTotals:
        def totals() -> UsageTotals:
            rows = self._db.execute(
                "SELECT model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(COALESCE(cost_usd, 0)) "
                "FROM usage_events WHERE owner = ? AND at >= ? GROUP BY model ORDER BY model",
                (self._owner, self._started),
            ).fetchall()
            result = UsageTotals()
            for model, calls, prompt, completion, cost in rows:
                result.add(model, calls, prompt, completion, cost)
            return result

        return await self._run(totals)

    async def save_job(self, job: MediaJob) -> None:
        await self._run(
            self._db.execute,
            "INSERT INTO media_jobs (id, created_at, job) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET job = excluded.job",
            (self._ns + job.id, job.created_at, json.dumps(asdict(job))),
        )

    async def load_job(self, job_id: str) -> MediaJob | None:
        def load() -> MediaJob | None:
            row = self._db.execute(
                "SELECT job FROM media_jobs WHERE id = ?", (self._ns + job_id,)
            ).fetchone()
            return MediaJob(**json.loads(row[0])) if row else None

        return await self._run(load)

    async def list_jobs(self, limit: int) -> Sequence[MediaJob]:
        def list_() -> list[MediaJob]:
            rows = self._db.execute(
                "SELECT job FROM media_jobs WHERE id >= ? AND id < ? ORDER BY created_at DESC LIMIT ?",
                (*self._range(), limit),
            ).fetchall()
            return [MediaJob(**json.loads(r[0])) for r in rows]

        return await self._run(list_)

    async def aclose(self) -> None:
        if self._owns_connection:

            def close() -> None:
                with self._lock:  # closing the last connection checkpoints the WAL
                    self._db.close()

            await anyio.to_thread.run_sync(close)
