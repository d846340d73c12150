"""The retry policy and the shared request budget, driven with real awaits."""

from __future__ import annotations

import time

import anyio
import pytest

from poe_mcp.poe.budget import RequestBudget
from poe_mcp.poe.errors import InvalidRequestError, RateLimitError, UpstreamError
from poe_mcp.poe.retry import RetryPolicy

pytestmark = pytest.mark.anyio


async def test_backoff_doubles_from_250_ms_with_jitter_and_caps_at_8_s() -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def always_fails() -> None:
        raise UpstreamError("down")

    with pytest.raises(UpstreamError) as caught:
        await RetryPolicy(max_retries=7).run(always_fails, sleep=record)
    bounds = [0.25, 0.5, 1, 2, 4, 8, 8]
    assert len(waits) == 7
    assert all(0.75 * b <= w <= b for w, b in zip(waits, bounds, strict=True))
    assert caught.value.retries == 7 and caught.value.waited == pytest.approx(sum(waits))


async def test_retry_after_wins_and_permanent_errors_are_not_retried() -> None:
    waits: list[float] = []
    attempts = {"n": 0}

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def limited_once() -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RateLimitError("slow", retry_after=3.0)
        return "ok"

    assert await RetryPolicy().run(limited_once, sleep=record) == "ok"
    assert waits == [3.0]

    async def bad() -> None:
        raise InvalidRequestError("no")

    with pytest.raises(InvalidRequestError):
        await RetryPolicy().run(bad, sleep=record)
    assert waits == [3.0]


async def test_the_budget_is_shared_by_all_calls_in_flight() -> None:
    budget = RequestBudget(rpm=3, window=0.5)
    stamps: list[float] = []

    async def one() -> None:
        await budget.acquire()
        stamps.append(time.monotonic())

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for _ in range(7):
            group.start_soon(one)
    offsets = sorted(s - started for s in stamps)
    assert offsets[2] < 0.25 and offsets[3] >= 0.45 and offsets[6] >= 0.95
    for i in range(len(offsets) - 3):  # never more than 3 in any window
        assert offsets[i + 3] - offsets[i] >= 0.45
