"""The request budget, one protocol and both of its homes: in this process, or shared through Redis by
every replica (Poe's 500 requests per minute count per key, not per process). Both are paced also by
Poe's own count of what is left (`PoePacedBudget`)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from .errors import plain_seconds

log = logging.getLogger(__name__)

# Longer than this, and waiting inside one tool call is worse than telling the caller when to come back.
MAX_RETRY_AFTER = 60.0
# Poe counts its 500 per minute on its own clock, after our request crossed the network; a second of
# margin keeps that skew from provoking 429s at the edge of the window.
BUDGET_WINDOW = 61.0


class Budget(Protocol):
    """Waits until one more request fits in the per-minute budget (in process, or shared through Redis)."""

    async def acquire(self) -> None: ...


class RequestBudget:
    """At most `rpm` requests in any 60 s window, shared by every call in flight (Poe counts per key)."""

    def __init__(self, rpm: int, window: float = BUDGET_WINDOW) -> None:
        self.rpm = rpm
        self.window = window
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # one waiter at a time keeps the order fair
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.rpm:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self.window - (now - self._sent[0]))


REDIS_KEY = "poe-mcp:budget"

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
    """RequestBudget's contract (`acquire`), with the window shared by every replica through Redis."""

    def __init__(self, redis: Any, rpm: int, window: float = BUDGET_WINDOW) -> None:
        self.rpm = rpm
        self.window = window
        self._script = redis.register_script(BUDGET_SCRIPT)

    async def acquire(self) -> None:
        while True:
            wait = float(
                await self._script(keys=[REDIS_KEY], args=[self.window, self.rpm, uuid.uuid4().hex])
            )
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, self.window) + 0.01)


DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None) -> float | None:
    """Seconds until Poe's request window resets: documented as seconds, read as OpenAI's `1m30s` too."""
    if not value:
        return None
    value = value.strip()
    seconds = plain_seconds(value)
    if seconds is not None:
        return seconds
    parts = DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(number) * UNIT_SECONDS[unit] for number, unit in parts)


class PoePacedBudget:
    """Our own budget, paced also by Poe's count of what is left (`x-ratelimit-*` on every response):
    when Poe says no request remains, the next one waits for the reset Poe announced instead of
    spending a round trip on a 429. While Poe says there is room, it adds no wait."""

    def __init__(self, inner: Budget) -> None:
        self.inner = inner
        self._paused_until = 0.0

    def observe(self, headers: Mapping[str, str]) -> None:
        remaining = headers.get("x-ratelimit-remaining-requests")
        if remaining is None:
            return  # Poe's older pages call the headers optional; recordings lack them
        try:
            room = int(float(remaining)) > 0
        except ValueError:
            return
        if room:
            self._paused_until = 0.0
            return
        reset = parse_reset(headers.get("x-ratelimit-reset-requests"))
        if reset is not None:
            self._paused_until = max(
                self._paused_until, time.monotonic() + min(reset, MAX_RETRY_AFTER)
            )

    async def acquire(self) -> None:
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            log.info(
                "Poe reports no requests left in its window; waiting %.1f s for its reset", pause
            )
            await asyncio.sleep(pause)
        await self.inner.acquire()
