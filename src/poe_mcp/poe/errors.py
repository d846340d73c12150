"""Poe's error types, one class each, and the one place that classifies a failed response.

    PoeError
     ├── InvalidRequestError      400  (also inputs refused before sending)
     ├── AuthenticationError      401  (also: no key configured)
     ├── InsufficientCreditsError 402
     ├── ModerationError          403
     ├── NotFoundError            404
     ├── PoeTimeoutError          408  retried
     │    └── LocalTimeoutError   -    our own POE_MCP_TIMEOUT fired (never retried)
     ├── RequestTooLargeError     413
     ├── InvalidResponseError     -    an answer not in the shape asked (never retried)
     ├── RateLimitError           429  retried
     ├── ProviderError            500  retried
     │    └── FinalProviderError  a bot error Poe marked allow_retry: false (never retried)
     ├── UpstreamError            502, 503 retried
     │    ├── UnparseableResponseError  Poe answered, we could not read it (never retried)
     │    ├── ResponseTooLargeError     past POE_MCP_MAX_RESPONSE_MB, cut (never retried)
     │    └── MediaUnavailableError     a media link answered 4xx (never retried)
     ├── OverloadedError          529  retried
     ├── NoMediaError             a generation answered without media
     ├── BudgetExceededError      -    refused here, before any request: a budget would be crossed
     ├── ConfirmationRequiredError -   refused here: above POE_MCP_CONFIRM_ABOVE_USD, nobody to ask
     ├── ConfirmationDeclinedError -   the person said no: nothing was sent
     └── PoeConnectionError       network failure, broken stream; retried unless output went out

Poe's `error.code` may be a number, a string or missing, so classification keys on the HTTP
status first and the body's `type` second. Whether an error is retried is decided by class, in one
table: `retry.should_retry`. Every exception of a transport, of the `openai` SDK or of `fastapi_poe`
becomes one of these in one place, `translate`, chained to its cause.
"""

from __future__ import annotations

import email.utils
import sys
import time
from collections.abc import Mapping
from typing import Any

# Longest upstream error message kept: a proxy's 5 MB page must not travel into a result or a log.
MAX_MESSAGE = 300


class PoeError(Exception):
    """A failed Poe call, with Poe's error type and what the caller can do about it."""

    type = "poe_error"
    status: int | None = None
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

    @property
    def retryable(self) -> bool:
        """Whether the retry policy tries again: read from the one table, `retry.should_retry`."""
        from .retry import should_retry

        return should_retry(self)

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
    type = "timeout_error"
    status: int | None = 408
    advice = "The model did not answer in time: try again later or use a faster model."


class LocalTimeoutError(PoeTimeoutError):
    """Our own deadline fired (POE_MCP_TIMEOUT over the whole request): no HTTP status, Poe never
    finished answering; not retried, since it already waited the whole time."""

    status = None
    advice = "Try again, or raise POE_MCP_TIMEOUT."


def local_timeout(seconds: float) -> LocalTimeoutError:
    return LocalTimeoutError(f"Poe did not answer within POE_MCP_TIMEOUT ({seconds:g} s)")


class RequestTooLargeError(PoeError):
    type, status = "request_too_large", 413
    advice = "Shorten the prompt or the conversation, or use a model with a larger context window."


class InvalidResponseError(PoeError):
    """Poe answered, and the answer was paid for, but it is not in the shape asked (JSON failing the schema)."""

    type = "invalid_response_error"
    advice = "The model's raw text is kept in the result: ask again, or use a model that follows response_format."


class RateLimitError(PoeError):
    type, status = "rate_limit_error", 429
    advice = "Poe's rate limit was hit: try again in a minute, or lower POE_MCP_RPM."


class ProviderError(PoeError):
    type, status = "provider_error", 500
    advice = "The model's provider failed: try again in a minute or use another model."


class FinalProviderError(ProviderError):
    """A bot's error event that Poe marked `allow_retry: false`: asking again would fail the same way."""


class UpstreamError(PoeError):
    type = "upstream_error"
    status: int | None = 502
    advice = "Poe's backend is having trouble: try again in a minute or use another model."


class UnparseableResponseError(UpstreamError):
    """Poe answered, but not in a shape we can read (not JSON, a non-object body, odd usage counts).
    Not retried: the request may have been paid for, and the same question gets the same answer."""

    advice = "Poe answered in an unexpected shape: try again later, or use another model."


class ResponseTooLargeError(UpstreamError):
    """An answer longer than POE_MCP_MAX_RESPONSE_MB: cut there, never stored, not retried."""

    type, status = "response_too_large", None
    advice = "Ask for a shorter answer (max_tokens), or raise POE_MCP_MAX_RESPONSE_MB."


def response_too_large(max_bytes: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"Poe's answer passed POE_MCP_MAX_RESPONSE_MB ({max_bytes / 1_000_000:g} MB): it was cut "
        "there and nothing of it was stored"
    )


class MediaUnavailableError(UpstreamError):
    """A generated file's link answered 4xx (expired, gone): asking again gets the same answer."""


class OverloadedError(PoeError):
    type, status = "overloaded_error", 529
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
    type = "connection_error"
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
    """The PoeError behind `exc`: itself, its cause or context, or one inside an (anyio) ExceptionGroup.

    Depth first, in order (a group's members, each with its own chain), with one seen-set for the
    whole walk: a member whose context leads back to its group (what `raise group.exceptions[0]`
    inside `except` leaves) ends the walk instead of recursing without end."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, PoeError):
            return current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(reversed(current.exceptions))
        else:
            stack.append(current.__cause__ or current.__context__)
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
        return None, body.strip()
    return None, None


def clip(message: str, limit: int = MAX_MESSAGE) -> str:
    """An upstream message cut to `limit` characters, saying that it was."""
    message = message.strip()
    if len(message) <= limit:
        return message
    return f"{message[:limit].rstrip()}… ({len(message) - limit} more characters not shown)"


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
        clip(message) if message else f"Poe answered HTTP {status}",
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


def translate(exc: BaseException, timeout: float) -> PoeError:
    """The one place where a transport's, the `openai` SDK's or `fastapi_poe`'s exception becomes a
    PoeError, its `__cause__` set to what it came from (so a debug log shows the chain). A PoeError
    anywhere in the chain (raised below a library that wrapped it) is returned as it is; then the most
    specific failure in the chain wins (an HTTP status, a timeout) over a library's wrapper. Libraries
    are looked up only when already imported: an exception of theirs means they are."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__
    for link in chain:
        if isinstance(link, PoeError):
            return link
    for way in (_specific, _generic):
        for link in chain:
            error = way(link, timeout)
            if error is not None:
                error.__cause__ = exc
                return error
    raise exc


def _specific(exc: BaseException, timeout: float) -> PoeError | None:
    openai = sys.modules.get("openai")
    if openai is not None:
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if exc.body is not None else exc.response.text
            if isinstance(body, dict) and "error" not in body:
                body = {"error": body}  # the SDK hands over the inner `error` object
            return classify(exc.status_code, body, exc.response.headers)
        if isinstance(exc, openai.APITimeoutError):
            return local_timeout(timeout)
        if isinstance(exc, openai.APIResponseValidationError):
            return UnparseableResponseError(
                "Poe sent a response that is not valid chat-completion JSON"
            )
        if isinstance(exc, openai.APIError) and getattr(exc, "body", None) is not None:
            return classify(502, {"error": exc.body})  # an error event inside a stream
    for name in ("httpx2", "httpx"):
        http = sys.modules.get(name)
        if http is None:
            continue
        if isinstance(exc, http.TimeoutException):
            return local_timeout(timeout)
        if isinstance(exc, http.RequestError):  # transport failures, undecodable bodies, redirects
            return PoeConnectionError(f"Could not reach Poe ({type(exc).__name__})")
    fp = sys.modules.get("fastapi_poe")
    if fp is not None and isinstance(exc, fp.client.AttachmentUploadError):
        return InvalidRequestError(f"Poe refused the attachment upload: {clip(str(exc))}")
    return None


def _generic(exc: BaseException, timeout: float) -> PoeError | None:
    openai = sys.modules.get("openai")
    if openai is not None and isinstance(exc, openai.APIConnectionError):
        return PoeConnectionError(f"Could not reach Poe ({type(exc.__cause__ or exc).__name__})")
    fp = sys.modules.get("fastapi_poe")
    if fp is not None and isinstance(exc, (fp.BotError, fp.BotErrorNoRetry)):
        return bot_error(str(exc), retryable=not isinstance(exc, fp.BotErrorNoRetry))
    if isinstance(exc, ValueError):  # a body or an event that is not JSON
        return UnparseableResponseError(
            "Poe sent a response that is not valid chat-completion JSON"
        )
    return None


# The bot protocol's `error_type`s, as Poe's error types.
BOT_ERROR_TYPES: dict[str, type[PoeError]] = {
    "insufficient_fund": InsufficientCreditsError,
    "user_message_too_long": RequestTooLargeError,
    "user_caused_error": InvalidRequestError,
    "privacy_authorization_error": ModerationError,
}


def bot_error(raw: str, retryable: bool) -> PoeError:
    """A bot-protocol `error` event's JSON (`text`, `error_type`, `allow_retry`) as the matching Poe error."""
    import json

    try:
        data = json.loads(raw)
    except ValueError:
        data = {"text": raw}
    if not isinstance(data, dict):
        data = {"text": raw}
    text = clip(str(data.get("text") or data.get("raw_response") or "the bot reported an error"))
    fallback: type[PoeError] = UpstreamError if retryable else FinalProviderError
    cls = BOT_ERROR_TYPES.get(str(data.get("error_type")), fallback)
    return cls(f"The bot failed: {text}")
