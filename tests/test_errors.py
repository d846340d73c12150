"""Every Poe failure is classified by HTTP status, then by the body's type; Retry-After is understood."""

from __future__ import annotations

import email.utils
import time

import pytest

from poe_mcp.poe.errors import classify, parse_retry_after


@pytest.mark.parametrize(
    ("status", "expected", "retryable"),
    [
        (400, "invalid_request_error", False),
        (401, "authentication_error", False),
        (402, "insufficient_credits", False),
        (403, "moderation_error", False),
        (404, "not_found_error", False),
        (408, "timeout_error", True),
        (413, "request_too_large", False),
        (429, "rate_limit_error", True),
        (500, "provider_error", True),
        (502, "upstream_error", True),
        (503, "upstream_error", True),
        (529, "overloaded_error", True),
    ],
)
def test_status_decides_the_type(status: int, expected: str, retryable: bool) -> None:
    error = classify(status, {"error": {"message": "boom", "type": "whatever"}})
    assert (error.type, error.status, error.retryable) == (expected, status, retryable)
    assert str(error).startswith(f"{expected} ({status}): boom.")


@pytest.mark.parametrize("code", [402, "insufficient_credits", None])
def test_code_may_be_int_string_or_missing(code: object) -> None:
    body = {"error": {"message": "no points", "type": "insufficient_credits"}}
    if code is not None:
        body["error"]["code"] = code  # type: ignore[index]
    assert classify(402, body).type == "insufficient_credits"


def test_for_5xx_the_body_type_wins() -> None:
    assert (
        classify(500, {"error": {"type": "overloaded_error", "message": "busy"}}).type
        == "overloaded_error"
    )


def test_recorded_400_without_code() -> None:
    body = {"error": {"message": "Unsupported value: 'high'", "type": "invalid_request_error"}}
    assert str(classify(400, body)).startswith(
        "invalid_request_error (400): Unsupported value: 'high'."
    )


def test_an_html_page_from_a_proxy_still_classifies() -> None:
    error = classify(502, "<html><body>Bad gateway</body></html>")
    assert error.type == "upstream_error" and "<html>" not in str(error)


def test_unknown_status_falls_back_by_class() -> None:
    assert classify(418, None).type == "invalid_request_error"
    assert classify(599, None).type == "upstream_error"


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after(future) <= 31  # type: ignore[operator]
    assert parse_retry_after("not a date") is None and parse_retry_after(None) is None
    assert classify(429, {}, {"retry-after": "3"}).retry_after == 3.0


def test_finding_a_poe_error_in_a_group_that_leads_back_to_itself_ends() -> None:
    from poe_mcp.poe.errors import RateLimitError, poe_error_in

    inner = RuntimeError("the body failed")
    group = BaseExceptionGroup("task group", [inner])
    inner.__context__ = group  # what `raise group.exceptions[0]` inside `except` leaves
    assert poe_error_in(group) is None
    assert poe_error_in(inner) is None
    # nested groups that point at each other end too, and a PoeError after the loop is still found
    outer = BaseExceptionGroup("outer", [group])
    group.__context__ = outer
    found = RateLimitError("slow down")
    assert poe_error_in(BaseExceptionGroup("g", [inner, outer, found])) is found
    # order is kept: the first member's chain is searched before the next member
    first, second = RateLimitError("first"), RateLimitError("second")
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = first
    assert poe_error_in(BaseExceptionGroup("g", [wrapped, second])) is first
