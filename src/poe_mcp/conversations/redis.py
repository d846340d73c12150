"""ConversationStore on Redis, for several server processes behind one load balancer.

Every turn is appended in one MULTI/EXEC transaction (RPUSH of all its messages plus the session's
metadata), so concurrent appends from several replicas interleave whole turns and lose nothing.
The request budget's shared window (poe/budget.py's RedisBudget) runs on this store's connection.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..poe.budget import REDIS_KEY, RedisBudget
from ..poe.types import ChatMessage
from . import (
    ConflictError,
    Conversation,
    MediaJob,
    SessionSummary,
    UsageEvent,
    UsageTotals,
    iso_time,
    preview_of,
)

PREFIX = "poe-mcp:"


class RedisStore:
    def __init__(self, url: str) -> None:
        try:
            import redis.asyncio as redis
        except ImportError:
            raise RuntimeError(
                "POE_MCP_STORE=redis:// needs the redis extra: pip install 'poe-mcp[redis]'"
            ) from None
        # redis-py types each command as sync-or-async; on this client every one is awaitable.
        self.redis: Any = redis.from_url(url, decode_responses=True)
        self._watch_error = redis.WatchError
        self._started = time.time()
        self.prefix = PREFIX
        self._owns_connection = True

    def request_budget(self, rpm: int, key_id: str | None = None) -> RedisBudget:
        """The window of one Poe key (`key_id` names it in hosted mode), shared by every replica."""
        return RedisBudget(self.redis, rpm, key=f"{REDIS_KEY}:{key_id}" if key_id else REDIS_KEY)

    def scoped(self, owner: str) -> RedisStore:
        """The same Redis, seen as one user's: every key of theirs is under their own prefix."""
        view = copy.copy(self)
        view.prefix = f"{PREFIX}user:{owner}:"
        view._owns_connection = False
        return view

    def _keys(self, session_id: str) -> tuple[str, str]:
        return f"{self.prefix}messages:{session_id}", f"{self.prefix}session:{session_id}"

    async def load(self, session_id: str) -> Conversation:
        messages_key, meta_key = self._keys(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            messages, (model, tools) = (
                await pipe.lrange(messages_key, 0, -1).hmget(meta_key, "model", "tools").execute()
            )
        return Conversation(
            session_id,
            model,
            [json.loads(m) for m in messages],
            json.loads(tools) if tools else None,
        )

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
        messages_key, meta_key = self._keys(session_id)
        now = time.time()
        meta = {"model": model, "last_used": now, **({"tools": json.dumps(tools)} if tools else {})}
        async with self.redis.pipeline(transaction=True) as pipe:
            if built_on is not None:
                # WATCH makes EXEC fail if another replica appends between this check and the write.
                await pipe.watch(messages_key)
                stored = await pipe.llen(messages_key)
                if stored != built_on:
                    raise self._conflict(session_id, stored, built_on)
                pipe.multi()
            pipe.rpush(messages_key, *(json.dumps(m) for m in messages))
            pipe.hsetnx(meta_key, "created_at", str(now))
            preview = preview_of(messages)
            if preview:
                pipe.hsetnx(meta_key, "preview", preview)
            pipe.hset(meta_key, mapping=meta)
            pipe.hincrby(
                meta_key, "turns", sum(1 for m in messages if m.get("role") == "assistant")
            )
            pipe.zadd(self.prefix + "sessions", {session_id: now})
            if usage is not None:
                self._queue_usage(pipe, usage)
            try:
                await pipe.execute()
            except self._watch_error as exc:
                raise self._conflict(session_id, None, built_on) from exc

    @staticmethod
    def _conflict(session_id: str, stored: int | None, built_on: int | None) -> ConflictError:
        return ConflictError(
            f"Session {session_id!r} changed while this turn was answered"
            + (
                f" ({stored} stored messages, the turn was built on {built_on})"
                if stored is not None
                else ""
            )
        )

    async def clear(self, session_id: str) -> bool:
        messages_key, meta_key = self._keys(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            _, _, removed = (
                await pipe.delete(messages_key)
                .delete(meta_key)
                .zrem(self.prefix + "sessions", session_id)
                .execute()
            )
        return bool(removed)

    async def list(self, limit: int) -> list[SessionSummary]:
        ids = await self.redis.zrevrange(self.prefix + "sessions", 0, limit - 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.hmget(self._keys(session_id)[1], "model", "turns", "last_used", "preview")
            rows = await pipe.execute()
        return [
            SessionSummary(
                session_id, model, int(turns or 0), iso_time(float(last_used or 0)), preview or ""
            )
            for session_id, (model, turns, last_used, preview) in zip(ids, rows, strict=True)
        ]

    async def record_usage(
        self, model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float | None
    ) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self._queue_usage(pipe, UsageEvent(model, prompt_tokens, completion_tokens, cost_usd))
            await pipe.execute()

    def _queue_usage(self, pipe: Any, usage: UsageEvent) -> None:
        now = time.time()
        event = {
            "id": uuid.uuid4().hex,
            "model": usage.model,
            "prompt": usage.prompt_tokens,
            "completion": usage.completion_tokens,
            "cost": usage.cost_usd or 0,
        }
        pipe.zadd(self.prefix + "usage", {json.dumps(event): now})
        # keep a month, like Poe's own history
        pipe.zremrangebyscore(self.prefix + "usage", "-inf", now - 31 * 86400)

    async def usage_totals(self) -> UsageTotals:
        """Totals of every replica's calls since this process started."""
        totals = UsageTotals()
        for raw in await self.redis.zrangebyscore(self.prefix + "usage", self._started, "+inf"):
            event = json.loads(raw)
            totals.add(event["model"], 1, event["prompt"], event["completion"], event["cost"])
        return totals

    async def save_job(self, job: MediaJob) -> None:
        # Kept a month, like the usage events: long after Poe's own link to the video has expired.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{self.prefix}job:{job.id}", json.dumps(asdict(job)), ex=31 * 86400)
            pipe.zadd(self.prefix + "jobs", {job.id: job.created_at})
            pipe.zremrangebyscore(self.prefix + "jobs", "-inf", time.time() - 31 * 86400)
            await pipe.execute()

    async def load_job(self, job_id: str) -> MediaJob | None:
        raw = await self.redis.get(f"{self.prefix}job:{job_id}")
        return MediaJob(**json.loads(raw)) if raw else None

    async def list_jobs(self, limit: int) -> Sequence[MediaJob]:
        ids = await self.redis.zrevrange(self.prefix + "jobs", 0, limit - 1)
        raws = await self.redis.mget([f"{self.prefix}job:{i}" for i in ids]) if ids else []
        return [MediaJob(**json.loads(raw)) for raw in raws if raw]

    async def aclose(self) -> None:
        if self._owns_connection:
            await self.redis.aclose()
