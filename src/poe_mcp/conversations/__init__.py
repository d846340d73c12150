"""Stored conversations: the ConversationStore protocol and how to open the configured one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ..poe.errors import PoeError
from ..poe.types import ChatMessage


class ConflictError(PoeError):
    """Another turn of the session was stored while this one was being answered."""

    type = "conflict_error"
    advice = "Load the session again (or start a new one) and send the turn once more."


@dataclass
class Conversation:
    id: str
    model: str | None = None
    messages: list[ChatMessage] = field(default_factory=list)
    tools: list[dict[str, Any]] | None = None


@dataclass
class SessionSummary:
    id: str
    model: str | None
    turns: int
    last_used: str
    preview: str


@dataclass(frozen=True)
class Day:
    """One calendar day in the budget's time zone (POE_MCP_BUDGET_TZ), as Unix times."""

    label: str  # 2026-12-03
    start: float  # its midnight
    end: float  # the next midnight


@dataclass(frozen=True)
class SpendHold:
    """What a call was estimated to cost, counted against its budgets from before it is sent until its
    real cost is recorded (the settle is the same write as its usage)."""

    id: str
    model: str
    usd: float
    points: float
    day: Day
    session_id: str | None = None
    at: float = 0.0


@dataclass(frozen=True)
class Limit:
    """A session or day budget, in USD or points."""

    scope: str  # "session" or "day"
    unit: str  # "usd" or "points"
    amount: float


@dataclass(frozen=True)
class Breach:
    """The budget a hold would cross, and what was already spent (or held) under it."""

    limit: Limit
    spent: float


@dataclass
class Spent:
    usd: float = 0.0
    points: float = 0.0


@dataclass
class SpendSummary:
    """What the budgets see: the day and the session (real spend plus calls under way), and the real
    spend by day and by model over the days asked for."""

    today: Spent = field(default_factory=Spent)
    session: Spent | None = None
    by_day: dict[str, Spent] = field(default_factory=dict)
    by_model: dict[str, Spent] = field(default_factory=dict)


@dataclass(frozen=True)
class UsageEvent:
    """One call's usage, as the server totals count it, and what it spent."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    points: float | None = (
        None  # Poe's own count (a video job's usage), else USD x POE_MCP_POINTS_PER_USD
    )
    session_id: str | None = None
    day: Day | None = None  # the budget day it counts in; None: the UTC day
    hold: SpendHold | None = None  # the reservation this call settles


@dataclass
class UsageTotals:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, model: str, calls: int, prompt: int, completion: int, cost: float) -> None:
        """Count `calls` more calls of `model` (both stores aggregate through this)."""
        row = self.by_model.setdefault(
            model,
            {
                "calls": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "total_tokens": 0,
                "cost_usd": 0.0,
            },
        )
        row["calls"] += calls
        row["prompt_tokens"] += prompt
        row["completion_tokens"] += completion
        row["total_tokens"] += prompt + completion
        row["cost_usd"] = round(row["cost_usd"] + cost, 8)
        self.calls += calls
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.total_tokens += prompt + completion
        self.cost_usd = round(self.cost_usd + cost, 8)


@dataclass
class MediaJob:
    """A generation job Poe runs on its side (a video): enough to resume it from any replica, any time."""

    id: str
    model: str
    prompt: str
    status: str
    progress: float = 0.0
    expires_at: float | None = None
    points: float | None = None
    files: list[dict[str, Any]] = field(default_factory=list)  # the saved files once completed
    created_at: float = 0.0
    hold: dict[str, Any] | None = None  # the spend held for it, settled when it completes or fails


class ConversationStore(Protocol):
    """Where conversations and usage totals live; every write of a turn is all-or-nothing."""

    async def load(self, session_id: str) -> Conversation: ...

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
        """Store one turn, and its call's `usage` in the same write. `built_on` is the number of stored
        messages the turn was built from: when another turn landed since, ConflictError and nothing is
        stored (a history must stay valid)."""
        ...

    async def clear(self, session_id: str) -> bool: ...

    async def list(self, limit: int) -> list[SessionSummary]: ...

    async def record_usage(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float | None,
        **spend: Any,
    ) -> None:
        """One call's usage; `spend` holds UsageEvent's other fields (points, session_id, day, hold)."""
        ...

    async def usage_totals(self) -> UsageTotals: ...

    async def reserve_spend(self, hold: SpendHold, limits: Sequence[Limit]) -> Breach | None:
        """Count `hold` against its day and session, atomically with checking `limits`: when one would
        be crossed, nothing is counted and the breach is returned (two callers can never both slip
        under a budget, whichever process or replica they run in)."""
        ...

    async def release_spend(self, hold: SpendHold) -> None:
        """Stop counting a hold whose call spent nothing (refused by Poe, or never sent)."""
        ...

    async def spend_summary(
        self, today: Day, session_id: str | None = None, days: Sequence[Day] = ()
    ) -> SpendSummary: ...

    async def save_job(self, job: MediaJob) -> None: ...

    async def load_job(self, job_id: str) -> MediaJob | None: ...

    async def list_jobs(self, limit: int) -> Sequence[MediaJob]: ...

    async def aclose(self) -> None: ...


def budget_day(tz: str, at: float | None = None) -> Day:
    """The calendar day `at` (default now) falls in, in time zone `tz`."""
    import time
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(time.time() if at is None else at, zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    following = midnight + timedelta(days=1)  # wall-clock arithmetic: a DST day is 23 or 25 h
    return Day(midnight.date().isoformat(), midnight.timestamp(), following.timestamp())


def recent_days(tz: str, count: int, at: float | None = None) -> list[Day]:
    """The last `count` days up to today, oldest first."""
    days = [budget_day(tz, at)]
    while len(days) < count:
        days.insert(0, budget_day(tz, days[0].start - 3600))
    return days


def preview_of(messages: list[ChatMessage]) -> str:
    """The first user text of a turn, as `list_sessions` shows it."""
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


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def open_store(location: str) -> ConversationStore:
    """The store named by POE_MCP_STORE: a redis:// URL (the redis extra), else a SQLite file path."""
    if location.startswith(("redis://", "rediss://")):
        from .redis import RedisStore

        return RedisStore(location)
    from .sqlite import SQLiteStore

    return SQLiteStore(location)
