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
    budget_day,
    iso_time,
    preview_of,
)

PREFIX = "poe-mcp:"

# The spend guard. Each day and each conversation is a hash of what was really spent (`usd`, `points`,
# added in the same MULTI as the call's usage) and what calls under way hold (`held_usd`,
# `held_points`). A hold is checked against every limit and counted in one script, so replicas
# reserving at once are serialised by Redis itself: two can never both slip under one budget.
# KEYS: the hold's marker, the day's hash, [the session's hash]
# ARGV: usd, points, day ttl, session ttl, hold ttl, limit count, then (key index, unit, amount)s
RESERVE_SCRIPT = """
local usd, points = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 0, tonumber(ARGV[6]) - 1 do
  local key = KEYS[tonumber(ARGV[7 + i * 3])]
  local unit, limit = ARGV[8 + i * 3], tonumber(ARGV[9 + i * 3])
  local spent = tonumber(redis.call('HGET', key, unit) or '0')
    + tonumber(redis.call('HGET', key, 'held_' .. unit) or '0')
  local amount = usd
  if unit == 'points' then amount = points end
  if spent >= limit - 1e-9 or spent + amount > limit + 1e-9 then
    return {i + 1, tostring(spent)}
  end
end
for k = 2, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[k], 'held_usd', usd)
  redis.call('HINCRBYFLOAT', KEYS[k], 'held_points', points)
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
if #KEYS > 2 then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[5])
return {0, '0'}
"""
# Settles (or releases) a hold once: only the call that deletes its marker takes it off the counts.
# KEYS: the hold's marker, the day's hash, [the session's hash]; ARGV: usd, points
SETTLE_SCRIPT = """
if redis.call('DEL', KEYS[1]) == 1 then
  for k = 2, #KEYS do
    redis.call('HINCRBYFLOAT', KEYS[k], 'held_usd', -tonumber(ARGV[1]))
    redis.call('HINCRBYFLOAT', KEYS[k], 'held_points', -tonumber(ARGV[2]))
  end
end
return 0
"""
DAY_TTL = 40 * 86400  # the per-day chart looks back 14 days; a month is kept, like the usage events
SESSION_TTL = 90 * 86400
HOLD_TTL = 7 * 86400  # a hold never settled (a crash mid-call) stays counted until then


def _spent(values: list[Any]) -> Spent:
    usd, points, held_usd, held_points = (float(v or 0) for v in values)
    return Spent(usd + held_usd, points + held_points)


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
        self._reserve = self.redis.register_script(RESERVE_SCRIPT)
        self._settle = self.redis.register_script(SETTLE_SCRIPT)

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
                await self._queue_usage(pipe, usage)
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
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float | None,
        **spend: Any,
    ) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            await self._queue_usage(
                pipe, UsageEvent(model, prompt_tokens, completion_tokens, cost_usd, **spend)
            )
            await pipe.execute()

    async def _queue_usage(self, pipe: Any, usage: UsageEvent) -> None:
        """The call's usage event and its spend, in the caller's MULTI: no write of its own."""
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
        day = (usage.day or budget_day("UTC", now)).label
        usd, points = usage.cost_usd or 0.0, usage.points or 0.0
        counted = [(self._day_key(day), DAY_TTL)]
        if usage.session_id is not None:
            counted.append((self._session_key(usage.session_id), SESSION_TTL))
        for key, ttl in counted:
            pipe.hincrbyfloat(key, "usd", usd)
            pipe.hincrbyfloat(key, "points", points)
            pipe.expire(key, ttl)
        models = f"{self.prefix}spend:models:{day}"
        pipe.hincrbyfloat(models, f"usd:{usage.model}", usd)
        pipe.hincrbyfloat(models, f"points:{usage.model}", points)
        pipe.expire(models, DAY_TTL)
        if usage.hold is not None:
            await self._settle(  # queued: on a pipeline the script waits for its EXEC
                keys=self._hold_keys(usage.hold),
                args=[usage.hold.usd, usage.hold.points],
                client=pipe,
            )

    # -- the spend guard: under the view's prefix, so hosted mode counts each person apart ----------

    def _day_key(self, label: str) -> str:
        return f"{self.prefix}spend:day:{label}"

    def _session_key(self, session_id: str) -> str:
        return f"{self.prefix}spend:session:{session_id}"

    def _hold_keys(self, hold: SpendHold) -> tuple[str, ...]:
        keys: tuple[str, ...] = (
            f"{self.prefix}spend:hold:{hold.id}",
            self._day_key(hold.day.label),
        )
        if hold.session_id is not None:
            keys += (self._session_key(hold.session_id),)
        return keys

    async def reserve_spend(self, hold: SpendHold, limits: Sequence[Limit]) -> Breach | None:
        keys = self._hold_keys(hold)
        args: list[Any] = [hold.usd, hold.points, DAY_TTL, SESSION_TTL, HOLD_TTL, len(limits)]
        for limit in limits:
            if limit.scope == "session" and hold.session_id is None:
                raise ValueError("a session budget needs the hold's session_id")
            args += [2 if limit.scope == "day" else 3, limit.unit, limit.amount]
        crossed, spent = await self._reserve(keys=keys, args=args)
        return Breach(limits[int(crossed) - 1], float(spent)) if int(crossed) else None

    async def release_spend(self, hold: SpendHold) -> None:
        await self._settle(keys=self._hold_keys(hold), args=[hold.usd, hold.points])

    async def spend_summary(
        self, today: Day, session_id: str | None = None, days: Sequence[Day] = ()
    ) -> SpendSummary:
        fields = ("usd", "points", "held_usd", "held_points")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._day_key(today.label), *fields)
            if session_id is not None:
                pipe.hmget(self._session_key(session_id), *fields)
            for day in days:
                pipe.hmget(self._day_key(day.label), "usd", "points")
                pipe.hgetall(f"{self.prefix}spend:models:{day.label}")
            replies = await pipe.execute()
        result = SpendSummary(today=_spent(replies.pop(0)))
        if session_id is not None:
            result.session = _spent(replies.pop(0))
        for day in days:
            usd, points = (float(v or 0) for v in replies.pop(0))
            result.by_day[day.label] = Spent(usd, points)
            for name, value in replies.pop(0).items():
                unit, _, model = name.partition(":")
                row = result.by_model.setdefault(model, Spent())
                setattr(row, unit, getattr(row, unit) + float(value))
        result.by_model = dict(sorted(result.by_model.items()))
        return result

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
