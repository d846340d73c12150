"""The one retry policy (SPEC §4): which errors are tried again (`should_retry`, one table), and how
long to wait between tries (`RetryPolicy`). The request budget is in budget.py."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .budget import MAX_RETRY_AFTER, Budget
from .errors import (
    FinalProviderError,
    LocalTimeoutError,
    MediaUnavailableError,
    OverloadedError,
    PoeConnectionError,
    PoeError,
    PoeTimeoutError,
    ProviderError,
    RateLimitError,
    ResponseTooLargeError,
    UnparseableResponseError,
    UpstreamError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Whether an error is tried again, by class; the most specific class listed wins (see the MRO walk in
# should_retry), and any class not listed (a 4xx, a local refusal, no media) is not retried.
RETRIED: dict[type[PoeError], bool] = {
    PoeTimeoutError: True,  # 408 from Poe
    LocalTimeoutError: False,  # our own POE_MCP_TIMEOUT: the whole time was already waited
    RateLimitError: True,  # 429
    ProviderError: True,  # 500
    FinalProviderError: False,  # a bot error Poe marked allow_retry: false
    UpstreamError: True,  # 502, 503
    UnparseableResponseError: False,  # Poe answered (maybe paid), we could not read it
    MediaUnavailableError: False,  # a media link answered 4xx: it is gone
    ResponseTooLargeError: False,  # past POE_MCP_MAX_RESPONSE_MB: the same question, the same flood
    OverloadedError: True,  # 529
    PoeConnectionError: True,  # network failure, a stream that broke before anything arrived
}


def should_retry(error: PoeError) -> bool:
    """The one answer to "is this tried again?": the table above, by the error's most specific class."""
    for cls in type(error).__mro__:
        if cls in RETRIED:
            return RETRIED[cls]
    return False


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
                retry = should_retry(error)
                wait = self.delay(attempt, error)
                if not retry or attempt == self.max_retries or wait > MAX_RETRY_AFTER:
                    if wait > MAX_RETRY_AFTER and retry:
                        error.advice = f"Poe asked to wait {wait:.0f} s, longer than this server waits in one call: try again then."
                    error.retries, error.waited = attempt, waited
                    _log_cause(error, attempt + 1)
                    raise
                log.info(
                    "%s; retry %d of %d in %.2f s", error.type, attempt + 1, self.max_retries, wait
                )
                await sleep(wait)
                waited += wait
        raise AssertionError("unreachable")


def _log_cause(error: PoeError, attempts: int) -> None:
    """The failure's cause chain at DEBUG, for whoever debugs it: the classes always; the traceback of
    the cause too, except for an answer Poe sent, whose text (which may echo what was sent, a key
    included) stays out of the log."""
    chain: list[str] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 8:
        chain.append(f"{type(seen).__module__}.{type(seen).__qualname__}")
        seen = seen.__cause__
    log.debug(
        "%s after %d attempt(s), caused by %s",
        error.type,
        attempts,
        " <- ".join(chain[1:]) or "nothing below it",
        exc_info=None if error.from_poe else error,
    )
