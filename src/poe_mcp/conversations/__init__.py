"""Stored conversations: the ConversationStore protocol and how to open the configured one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..poe.types import ChatMessage


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


@dataclass
class UsageTotals:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)


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


class ConversationStore(Protocol):
    """Where conversations and usage totals live; every write of a turn is all-or-nothing."""

    async def load(self, session_id: str) -> Conversation: ...

    async def append(
        self,
        session_id: str,
        model: str,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
    ) -> None: ...

    async def clear(self, session_id: str) -> bool: ...

    async def list(self, limit: int) -> list[SessionSummary]: ...

    async def record_usage(
        self, model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float | None
    ) -> None: ...

    async def usage_totals(self) -> UsageTotals: ...

    async def save_job(self, job: MediaJob) -> None: ...

    async def load_job(self, job_id: str) -> MediaJob | None: ...

    async def list_jobs(self, limit: int) -> Sequence[MediaJob]: ...

    async def aclose(self) -> None: ...


def open_store(location: str) -> ConversationStore:
    """The store named by POE_MCP_STORE: a redis:// URL (the redis extra), else a SQLite file path."""
    if location.startswith(("redis://", "rediss://")):
        from .redis import RedisStore

        return RedisStore(location)
    from .sqlite import SQLiteStore

    return SQLiteStore(location)
