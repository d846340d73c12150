"""ConversationStore on Redis, for several server processes behind one load balancer.

Every turn is appended in one MULTI/EXEC transaction (RPUSH of all its messages plus the session's
metadata), so concurrent appends from several replicas interleave whole turns and lose nothing.
The request budget lives here too: Poe's 500 RPM is per key, so replicas must share one window.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..poe.retry import BUDGET_WINDOW
from ..poe.types import ChatMessage
from . import Conversation, MediaJob, SessionSummary, UsageTotals
from .sqlite import _iso, _preview

PREFIX = "poe-mcp:"

# A sliding 60 s window in a sorted set, timed by Redis's own clock so replicas' clocks don't matter.
# Returns 0 when a request may go now, else the seconds to wait.
BUDGET_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class RedisBudget:
    """RequestBudget's contract (`acquire`), with the window shared by every replica."""

    def __init__(self, redis: Any, rpm: int, window: float = BUDGET_WINDOW) -> None:
        self.rpm = rpm
        self.window = window
        self._script = redis.register_script(BUDGET_SCRIPT)

    async def acquire(self) -> None:
        while True:
            wait = float(
                await self._script(
                    keys=[PREFIX + "budget"], args=[self.window, self.rpm, uuid.uuid4().hex]
                )
            )
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, self.window) + 0.01)


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
        self._started = time.time()

    def request_budget(self, rpm: int) -> RedisBudget:
        return RedisBudget(self.redis, rpm)

    @staticmethod
    def _keys(session_id: str) -> tuple[str, str]:
        return f"{PREFIX}messages:{session_id}", f"{PREFIX}session:{session_id}"

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
    ) -> None:
        messages_key, meta_key = self._keys(session_id)
        now = time.time()
        meta = {"model": model, "last_used": now, **({"tools": json.dumps(tools)} if tools else {})}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(messages_key, *(json.dumps(m) for m in messages))
            pipe.hsetnx(meta_key, "created_at", str(now))
            preview = _preview(messages)
            if preview:
                pipe.hsetnx(meta_key, "preview", preview)
            pipe.hset(meta_key, mapping=meta)
            pipe.hincrby(
                meta_key, "turns", sum(1 for m in messages if m.get("role") == "assistant")
            )
            pipe.zadd(PREFIX + "sessions", {session_id: now})
            await pipe.execute()

    async def clear(self, session_id: str) -> bool:
        messages_key, meta_key = self._keys(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            _, _, removed = (
                await pipe.delete(messages_key)
                .delete(meta_key)
                .zrem(PREFIX + "sessions", session_id)
                .execute()
            )
        return bool(removed)

    async def list(self, limit: int) -> list[SessionSummary]:
        ids = await self.redis.zrevrange(PREFIX + "sessions", 0, limit - 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.hmget(self._keys(session_id)[1], "model", "turns", "last_used", "preview")
            rows = await pipe.execute()
        return [
            SessionSummary(
                session_id, model, int(turns or 0), _iso(float(last_used or 0)), preview or ""
            )
            for session_id, (model, turns, last_used, preview) in zip(ids, rows, strict=True)
        ]

    async def record_usage(
        self, model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float | None
    ) -> None:
        event = json.dumps(
            {
                "id": uuid.uuid4().hex,
                "model": model,
                "prompt": prompt_tokens,
                "completion": completion_tokens,
                "cost": cost_usd or 0,
            }
        )
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(PREFIX + "usage", {event: now})
            pipe.zremrangebyscore(
                PREFIX + "usage", "-inf", now - 31 * 86400
            )  # keep a month, like Poe's own history
            await pipe.execute()

    async def usage_totals(self) -> UsageTotals:
        """Totals of every replica's calls since this process started."""
        totals = UsageTotals()
        for raw in await self.redis.zrangebyscore(PREFIX + "usage", self._started, "+inf"):
            event = json.loads(raw)
            row = totals.by_model.setdefault(
                event["model"],
                {
                    "calls": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "total_tokens": 0,
                    "cost_usd": 0.0,
                },
            )
            row["calls"] += 1
            row["prompt_tokens"] += event["prompt"]
            row["completion_tokens"] += event["completion"]
            row["total_tokens"] += event["prompt"] + event["completion"]
            row["cost_usd"] = round(row["cost_usd"] + event["cost"], 8)
        for row in totals.by_model.values():
            totals.calls += row["calls"]
            totals.prompt_tokens += row["prompt_tokens"]
            totals.completion_tokens += row["completion_tokens"]
            totals.cost_usd = round(totals.cost_usd + row["cost_usd"], 8)
        totals.total_tokens = totals.prompt_tokens + totals.completion_tokens
        return totals

    async def save_job(self, job: MediaJob) -> None:
        # Kept a month, like the usage events: long after Poe's own link to the video has expired.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{PREFIX}job:{job.id}", json.dumps(asdict(job)), ex=31 * 86400)
            pipe.zadd(PREFIX + "jobs", {job.id: job.created_at})
            pipe.zremrangebyscore(PREFIX + "jobs", "-inf", time.time() - 31 * 86400)
            await pipe.execute()

    async def load_job(self, job_id: str) -> MediaJob | None:
        raw = await self.redis.get(f"{PREFIX}job:{job_id}")
        return MediaJob(**json.loads(raw)) if raw else None

    async def list_jobs(self, limit: int) -> Sequence[MediaJob]:
        ids = await self.redis.zrevrange(PREFIX + "jobs", 0, limit - 1)
        raws = await self.redis.mget([f"{PREFIX}job:{i}" for i in ids]) if ids else []
        return [MediaJob(**json.loads(raw)) for raw in raws if raw]

    async def aclose(self) -> None:
        await self.redis.aclose()
