"""The one retry policy (SPEC §4) and the client-side request budget shared by all calls."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .errors import PoeError, plain_seconds

log = logging.getLogger(__name__)
T = TypeVar("T")

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


@dataclass
class RetryPolicy:
    """Exponential backoff from 250 ms, doubling with jitter, capped at 8 s; `Retry-After` wins."""

    max_retries: int = 4
    base: float = 0.25
    cap: float = 8.0

    def delay(self, attempt: int, error: PoeError) -> float:
        if error.retry_after is not None:
            return error.retry_after
        backoff = min(self.cap, self.base * 2**attempt)
        return backoff * random.uniform(0.75, 1.0)

    async def run(
        self,
        attempt_once: Callable[[], Awaitable[T]],
        budget: Budget | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """Call `attempt_once` until it succeeds, fails for good, or the retries run out."""
        waited = 0.0
        for attempt in range(self.max_retries + 1):
            if budget is not None:
                await budget.acquire()
            try:
                return await attempt_once()
            except PoeError as error:
                wait = self.delay(attempt, error)
                if not error.retryable or attempt == self.max_retries or wait > MAX_RETRY_AFTER:
                    if wait > MAX_RETRY_AFTER and error.retryable:
                        error.advice = f"Poe asked to wait {wait:.0f} s, longer than this server waits in one call: try again then."
                    error.retries, error.waited = attempt, waited
                    raise
                log.info(
                    "%s; retry %d of %d in %.2f s", error.type, attempt + 1, self.max_retries, wait
                )
                await sleep(wait)
                waited += wait
        raise AssertionError("unreachable")
