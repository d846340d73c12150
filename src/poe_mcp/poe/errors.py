"""Poe's error types, one class each, and the one place that classifies a failed response.

    PoeError
     ├── InvalidRequestError      400  (also inputs refused before sending)
     ├── AuthenticationError      401  (also: no key configured)
     ├── InsufficientCreditsError 402
     ├── ModerationError          403
     ├── NotFoundError            404
     ├── PoeTimeoutError          408  retried
     ├── RequestTooLargeError     413
     ├── InvalidResponseError     -    an answer not in the shape asked (never retried)
     ├── RateLimitError           429  retried
     ├── ProviderError            500  retried
     ├── UpstreamError            502, 503 retried
     ├── OverloadedError          529  retried
     ├── NoMediaError             a generation answered without media
     ├── BudgetExceededError      -    refused here, before any request: a budget would be crossed
     ├── ConfirmationRequiredError -   refused here: above POE_MCP_CONFIRM_ABOVE_USD, nobody to ask
     ├── ConfirmationDeclinedError -   the person said no: nothing was sent
     └── PoeConnectionError       network failure, broken stream; retried unless output went out

Poe's `error.code` may be a number, a string or missing, so classification keys on the HTTP
status first and the body's `type` second.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any


class PoeError(Exception):
    """A failed Poe call, with Poe's error type and what the caller can do about it."""

    type = "poe_error"
    status: int | None = None
    retryable = False
    from_poe = (
        False  # Poe's own answer (see classify); otherwise raised here, mostly before sending
    )
    advice = "Try again later."
    # Poe's own `error.code` (an int, a string like `model_not_found`, or absent), `param` and `metadata`.
    code: int | str | None = None
    param: str | None = None
    metadata: Any = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        advice: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message.strip().rstrip(".")
        if status is not None:
            self.status = status
        self.retry_after = retry_after
        self.request_id = request_id
        if advice is not None:
            self.advice = advice
        self.retries = 0
        self.waited = 0.0

    def details(self) -> dict[str, Any]:
        """The error as structured content: Poe's type and status, and Poe's own fields where it sent them."""
        fields = {"code": self.code, "param": self.param, "metadata": self.metadata}
        return {
            "type": self.type,
            "status": self.status,
            "message": self.message,
            "advice": self.advice,
            **{name: value for name, value in fields.items() if value is not None},
        }

    def __str__(self) -> str:
        head = f"{self.type} ({self.status})" if self.status else self.type
        parts = [f"{head}: {self.message}."]
        if self.retries:
            parts.append(f"Retried {self.retries} times over {self.waited:.1f} s.")
        parts.append(self.advice)
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


class InvalidRequestError(PoeError):
    type, status, advice = "invalid_request_error", 400, "Fix the request and try again."


class AuthenticationError(PoeError):
    type, status = "authentication_error", 401
    advice = "Check POE_API_KEY: create or copy a key at https://poe.com/api_key and restart the server with it."


class InsufficientCreditsError(PoeError):
    type, status = "insufficient_credits", 402
    advice = "The Poe account is out of points: add points at https://poe.com or wait for the next grant, or use a cheaper model."


class ModerationError(PoeError):
    type, status = "moderation_error", 403
    advice = "Poe refused this request: rephrase it, or use a model this key may call."


class NotFoundError(PoeError):
    type, status = "not_found_error", 404
    advice = "Check the model name with list_models."


class PoeTimeoutError(PoeError):
    type, retryable = "timeout_error", True
    status: int | None = 408
    advice = "The model did not answer in time: try again later or use a faster model."


def local_timeout(seconds: float) -> PoeTimeoutError:
    """Our own timeout fired: not retried, since it already waited the whole POE_MCP_TIMEOUT."""
    error = PoeTimeoutError(
        f"Poe did not answer within POE_MCP_TIMEOUT ({seconds:g} s)",
        advice="Try again, or raise POE_MCP_TIMEOUT.",
    )
    error.status, error.retryable = None, False  # no HTTP status: Poe never answered
    return error


class RequestTooLargeError(PoeError):
    type, status = "request_too_large", 413
    advice = "Shorten the prompt or the conversation, or use a model with a larger context window."


class InvalidResponseError(PoeError):
    """Poe answered, and the answer was paid for, but it is not in the shape asked (JSON failing the schema)."""

    type = "invalid_response_error"
    advice = "The model's raw text is kept in the result: ask again, or use a model that follows response_format."


class RateLimitError(PoeError):
    type, status, retryable = "rate_limit_error", 429, True
    advice = "Poe's rate limit was hit: try again in a minute, or lower POE_MCP_RPM."


class ProviderError(PoeError):
    type, status, retryable = "provider_error", 500, True
    advice = "The model's provider failed: try again in a minute or use another model."


class UpstreamError(PoeError):
    type, status, retryable = "upstream_error", 502, True
    advice = "Poe's backend is having trouble: try again in a minute or use another model."


class OverloadedError(PoeError):
    type, status, retryable = "overloaded_error", 529, True
    advice = "Poe is overloaded: try again in a minute or use another model."


class NoMediaError(PoeError):
    """A generation whose reply carried no media (or only links that could not be saved)."""

    type = "no_media_error"
    advice = "Rephrase the prompt, or try another model (list_models with output_modality)."


class BudgetExceededError(PoeError):
    """A call whose estimate would cross a budget (or that cannot be priced under one): nothing was sent."""

    type = "budget_exceeded_error"
    advice = "Nothing was sent to Poe."


class ConfirmationRequiredError(PoeError):
    """A call above POE_MCP_CONFIRM_ABOVE_USD, and no way to ask the person: nothing was sent."""

    type = "confirmation_required_error"
    advice = "Nothing was sent to Poe."


class ConfirmationDeclinedError(PoeError):
    """The person declined the cost of a call: nothing was sent, nothing was spent."""

    type = "confirmation_declined"
    advice = "Nothing was sent to Poe and nothing was spent. Ask the person before trying again, or use a cheaper model."


class PoeConnectionError(PoeError):
    type, retryable = "connection_error", True
    advice = "Check the network and POE_BASE_URL, then try again."


class InternalError(PoeError):
    """A bug in poe-mcp, not a failure of Poe: the caller gets one line, the log gets the traceback."""

    type = "internal_error"
    advice = (
        "This is a fault in poe-mcp, not in your request: try again, and if it repeats, report it "
        "with the server's log (stderr)."
    )


BY_STATUS: dict[int, type[PoeError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: ModerationError,
    404: NotFoundError,
    408: PoeTimeoutError,
    413: RequestTooLargeError,
    429: RateLimitError,
    500: ProviderError,
    502: UpstreamError,
    503: UpstreamError,
    529: OverloadedError,
}
BY_TYPE: dict[str, type[PoeError]] = {cls.type: cls for cls in BY_STATUS.values()}


def poe_error_in(exc: BaseException | None) -> PoeError | None:
    """The PoeError behind `exc`: itself, its cause or context, or one inside an (anyio) ExceptionGroup."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, PoeError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                found = poe_error_in(inner)
                if found is not None:
                    return found
            return None
        exc = exc.__cause__ or exc.__context__
    return None


def plain_seconds(value: str) -> float | None:
    """A header value that is a plain number of seconds (never negative), else None."""
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header given in seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    seconds = plain_seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    """Poe's `{"error": {"type", "message", ...}}`, tolerating anything else a proxy might send."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            kind, message = error.get("type"), error.get("message")
            return (
                kind if isinstance(kind, str) else None,
                message if isinstance(message, str) else None,
            )
        if isinstance(error, str):
            return None, error
    if isinstance(body, str) and body.strip() and not body.lstrip().startswith("<"):
        return None, body.strip()[:300]
    return None, None


def classify(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> PoeError:
    """Turn a failed HTTP response into the right PoeError: by status, then by the body's `type`."""
    headers = headers or {}
    kind, message = _error_fields(body)
    cls = BY_STATUS.get(status)
    if (cls is None or status >= 500) and kind in BY_TYPE:
        cls = BY_TYPE[kind]  # for 5xx "the body's type wins when it names one"
    if cls is None:
        cls = UpstreamError if status >= 500 else InvalidRequestError
    error = cls(
        message or f"Poe answered HTTP {status}",
        status=status,
        retry_after=parse_retry_after(headers.get("retry-after")),
        request_id=headers.get("x-request-id"),
    )
    error.from_poe = True
    error.code, error.param, error.metadata = _poe_fields(body)
    return error


def refused_locally(error: PoeError) -> bool:
    """A request poe-mcp itself refused (bad input, a file outside the sandbox, a budget): nothing
    reached Poe."""
    spend_guard = (BudgetExceededError, ConfirmationRequiredError, ConfirmationDeclinedError)
    return isinstance(error, spend_guard) or (
        isinstance(error, InvalidRequestError) and not error.from_poe
    )


def _poe_fields(body: Any) -> tuple[int | str | None, str | None, Any]:
    """Poe's `code`, `param` and `metadata` from an error body, each kept only in a shape that makes sense."""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return None, None, None
    code, param = error.get("code"), error.get("param")
    return (
        code if isinstance(code, (int, str)) and not isinstance(code, bool) else None,
        param if isinstance(param, str) else None,
        error.get("metadata"),
    )
