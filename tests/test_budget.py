"""The spend guard: budgets refuse the call that would cross them before anything is sent, hold the
estimate while a call runs, and settle at what it really cost; the person is asked above a threshold.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import connect
from fakepoe import PNG, FakePoe, Reply
from servers import http_replica, redis_server
from test_http import connect_http

from poe_mcp.config import Settings
from poe_mcp.conversations.sqlite import SQLiteStore
from poe_mcp.poe.types import ChatRequest
from poe_mcp.services.spend import (
    DEFAULT_OUTPUT_TOKENS,
    IMAGE_TOKENS,
    SpendGuard,
    estimate_chat,
    prompt_tokens,
)

pytestmark = pytest.mark.anyio

FLAT = "test-flat-fee"  # $0.002 per request, nothing per token: the estimate is the real cost


def error_type(result: Any) -> str | None:
    return (
        (result.structured_content or {}).get("error", {}).get("type") if result.is_error else None
    )


def spend_rows(settings: Settings) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(settings.store)
    try:
        return db.execute("SELECT model, cost_usd, points, session_id FROM usage_events").fetchall()
    finally:
        db.close()


# -- the estimate --------------------------------------------------------------------------


def test_the_prompt_estimate_is_bytes_over_three_plus_a_per_message_overhead() -> None:
    messages = [{"role": "user", "content": "x" * 300}]
    assert prompt_tokens(messages, None) == -(-len(json.dumps(messages[0]).encode()) // 3) + 8
    picture = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 40_000}}
    with_image = [{"role": "user", "content": [{"type": "text", "text": "look"}, picture]}]
    assert IMAGE_TOKENS <= prompt_tokens(with_image, None) < IMAGE_TOKENS + 30, (
        "an image counts as a fixed number of tokens, not as its base64"
    )


def test_the_chat_estimate_prices_the_prompt_and_the_whole_answer(fake: FakePoe) -> None:
    from poe_mcp.poe.catalog import Catalog

    catalog = Catalog(fake.models, 0)
    turbo = catalog.get("gpt-4-turbo")  # $9 / $27 per million, 4,096 output tokens at most
    request = ChatRequest(model="gpt-4-turbo", messages=[{"role": "user", "content": "hi"}])
    prompt = prompt_tokens(request.messages, None)
    assert estimate_chat(request, turbo).usd == pytest.approx(prompt * 9e-6 + 4096 * 27e-6)
    capped = ChatRequest(
        model="gpt-4-turbo",
        messages=request.messages,
        sampling=type(request.sampling)(max_tokens=100),
    )
    assert estimate_chat(capped, turbo).usd == pytest.approx(prompt * 9e-6 + 100 * 27e-6)
    unknown_cap = catalog.get("claude-sonnet-4.5")
    assert unknown_cap.max_output_tokens == 32768
    assert estimate_chat(request, catalog.get(FLAT)).usd == pytest.approx(0.002)
    assert estimate_chat(request, None).usd is None, "no catalog entry: unpriced"
    assert DEFAULT_OUTPUT_TOKENS == 16_384


# -- the no-budget path --------------------------------------------------------------------


async def test_without_budgets_the_guard_sends_nothing_and_writes_nothing(
    settings: Settings, fake: FakePoe, monkeypatch: pytest.MonkeyPatch
) -> None:
    def untouched(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the spend guard touched the store without a budget")

    for name in ("reserve_spend", "release_spend", "spend_summary"):
        monkeypatch.setattr(SQLiteStore, name, untouched)
    fake.enqueue(Reply(), Reply(text=fake.cdn_url("a.png", PNG, "image/png")))
    async with connect(settings) as client:
        asked = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
        made = await client.call_tool("generate_image", {"prompt": "a cat", "model": "Nano-Banana"})
    assert not asked.is_error and not made.is_error
    assert [r["path"] for r in fake.requests] == [
        "/v1/models",
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/cdn/a.png",
    ], "the same requests as before the guard existed: no extra catalog read, nothing else"


async def test_a_budget_adds_no_request_at_the_fake(settings: Settings, fake: FakePoe) -> None:
    async with connect(settings, max_cost_per_day=10.0, confirm_above_usd=5.0) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "max_tokens": 10}
        )
    assert not result.is_error
    assert [r["path"] for r in fake.requests] == ["/v1/models", "/v1/chat/completions"]


# -- each budget refuses the call that would cross it, and lets the one that fits through ---


async def test_the_per_call_budget_refuses_before_sending(
    settings: Settings, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode, max_cost_per_call=0.05) as client:
        whole = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
        assert fake.chat_requests() == [], "refused with zero requests sent"
        fits = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "max_tokens": 100}
        )
        lowered = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "hi", "max_tokens": 100, "max_cost_usd": 0.001},
        )
        raised = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "max_cost_usd": 100}
        )
    assert error_type(whole) == "budget_exceeded_error"
    text = whole.content[0].text
    assert text.startswith("budget_exceeded_error: gpt-4-turbo is estimated at about $0.11")
    assert "4,096 output tokens" in text and "above POE_MCP_MAX_COST_PER_CALL ($0.05)" in text
    assert "Nothing was sent to Poe" in text and "raise POE_MCP_MAX_COST_PER_CALL" in text
    assert not fits.is_error
    assert error_type(lowered) == "budget_exceeded_error"
    assert "above this call's max_cost_usd ($0.001)" in lowered.content[0].text
    assert error_type(raised) == "budget_exceeded_error", "max_cost_usd can only lower the budget"
    assert len(fake.chat_requests()) == 1


async def test_the_per_session_budget_counts_one_conversation(
    settings: Settings, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode, max_cost_per_session=0.005) as client:
        first = await client.call_tool("ask_poe", {"bot": FLAT, "prompt": "one"})
        session = first.structured_content["session_id"]
        second = await client.call_tool(
            "ask_poe", {"bot": FLAT, "prompt": "two", "session_id": session}
        )
        third = await client.call_tool(
            "ask_poe", {"bot": FLAT, "prompt": "three", "session_id": session}
        )
        other = await client.call_tool("ask_poe", {"bot": FLAT, "prompt": "elsewhere"})
    assert not first.is_error and not second.is_error and not other.is_error
    assert error_type(third) == "budget_exceeded_error"
    text = third.content[0].text
    assert f"with $0.004 already spent in conversation {session}" in text
    assert "POE_MCP_MAX_COST_PER_SESSION ($0.005)" in text and "start a new conversation" in text
    assert [r["json"]["messages"][-1]["content"] for r in fake.chat_requests()] == [
        "one",
        "two",
        "elsewhere",
    ]


async def test_the_per_day_budget_counts_every_tool(
    settings: Settings, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode, max_cost_per_day=0.005) as client:
        asked = await client.call_tool("ask_poe", {"bot": FLAT, "prompt": "one"})
        raw = await client.call_tool(
            "chat_completion", {"model": FLAT, "messages": [{"role": "user", "content": "two"}]}
        )
        refused = await client.call_tool("ask_poe", {"bot": FLAT, "prompt": "three"})
        usage = await client.call_tool("get_usage", {"limit": 1})
    assert not asked.is_error and not raw.is_error
    assert error_type(refused) == "budget_exceeded_error"
    assert "with $0.004 already spent today (" in refused.content[0].text
    assert "UTC), it would cross POE_MCP_MAX_COST_PER_DAY ($0.005)" in refused.content[0].text
    assert len(fake.chat_requests()) == 2
    day = next(b for b in usage.structured_content["budgets"] if b["scope"] == "day")
    assert day["spent"] == pytest.approx(0.004) and day["remaining"] == pytest.approx(0.001)


async def test_twenty_parallel_calls_against_a_budget_that_fits_five(
    settings: Settings, fake: FakePoe
) -> None:
    fake.latency = 0.3  # every call is held while the others reserve
    results: list[Any] = []
    async with connect(settings, max_cost_per_day=0.01) as client:

        async def one(i: int) -> None:
            results.append(await client.call_tool("ask_poe", {"bot": FLAT, "prompt": f"m{i}"}))

        async with anyio.create_task_group() as group:
            for i in range(20):
                group.start_soon(one, i)
    assert sum(not r.is_error for r in results) == 5
    assert [error_type(r) for r in results].count("budget_exceeded_error") == 15
    assert len(fake.chat_requests()) == 5


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        if url is None:
            pytest.skip("redis-server is not installed (.ci/run installs it with apt-get)")
        yield url


async def test_twenty_parallel_calls_on_two_replicas_sharing_redis(
    fake: FakePoe, tmp_path: Path, redis_url: str
) -> None:
    fake.latency = 0.3
    env = {"POE_MCP_STORE": redis_url, "POE_MCP_MAX_COST_PER_DAY": "0.01"}
    results: list[Any] = []
    with (
        http_replica(fake, tmp_path, "a", **env) as a,
        http_replica(fake, tmp_path, "b", **env) as b,
    ):
        async with connect_http(a) as client_a, connect_http(b) as client_b:

            async def one(i: int) -> None:
                client = client_a if i % 2 else client_b
                results.append(await client.call_tool("ask_poe", {"bot": FLAT, "prompt": f"m{i}"}))

            async with anyio.create_task_group() as group:
                for i in range(20):
                    group.start_soon(one, i)
            usage = await client_a.call_tool("get_usage", {"limit": 1})
    assert sum(not r.is_error for r in results) == 5
    assert len(fake.chat_requests()) == 5
    day = next(b for b in usage.structured_content["budgets"] if b["scope"] == "day")
    assert day["spent"] == pytest.approx(0.01) and day["remaining"] == pytest.approx(0)


async def test_twenty_parallel_calls_on_two_replicas_sharing_a_sqlite_file(
    fake: FakePoe, tmp_path: Path
) -> None:
    fake.latency = 0.3
    env = {"POE_MCP_MAX_COST_PER_DAY": "0.01"}
    results: list[Any] = []
    with (
        http_replica(fake, tmp_path, "a", **env) as a,
        http_replica(fake, tmp_path, "b", **env) as b,
    ):
        async with connect_http(a) as client_a, connect_http(b) as client_b:

            async def one(i: int) -> None:
                client = client_a if i % 2 else client_b
                results.append(await client.call_tool("ask_poe", {"bot": FLAT, "prompt": f"m{i}"}))

            async with anyio.create_task_group() as group:
                for i in range(20):
                    group.start_soon(one, i)
    assert sum(not r.is_error for r in results) == 5
    assert len(fake.chat_requests()) == 5


# -- what was really spent ------------------------------------------------------------------


async def test_the_real_cost_is_recorded_and_get_usage_shows_what_is_left(
    settings: Settings, fake: FakePoe, mode: str
) -> None:
    fake.enqueue(Reply(text="short", usage={"prompt_tokens": 10, "completion_tokens": 5}))
    async with connect(settings, mode, max_cost_per_day=1.0, max_cost_per_session=0.5) as client:
        asked = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "max_tokens": 1000}
        )
        session = asked.structured_content["session_id"]
        usage = await client.call_tool("get_usage", {"limit": 1, "session_id": session})
    real = 10 * 9e-6 + 5 * 27e-6
    assert asked.structured_content["cost_usd"] == pytest.approx(real)
    assert spend_rows(settings) == [("gpt-4-turbo", pytest.approx(real), None, session)]
    budgets = {b["scope"]: b for b in usage.structured_content["budgets"]}
    assert budgets["day"]["spent"] == pytest.approx(real), "the real cost, not the estimate"
    assert budgets["day"]["remaining"] == pytest.approx(1.0 - real)
    assert budgets["session"]["spent"] == pytest.approx(real)
    spend = usage.structured_content["spend"]
    assert spend["by_model"] == [{"model": "gpt-4-turbo", "usd": pytest.approx(real), "points": 0}]
    assert spend["by_day"][-1]["usd"] == pytest.approx(real) and len(spend["by_day"]) == 14
    text = usage.content[0].text
    assert "Budget per day (POE_MCP_MAX_COST_PER_DAY): $0.0002 spent of $1.00, $0.9998 left" in text


async def test_a_call_poe_refuses_releases_its_hold(settings: Settings, fake: FakePoe) -> None:
    fake.error(400, "invalid_request_error", "bad request")
    async with connect(settings, max_cost_per_day=0.002) as client:
        refused = await client.call_tool("ask_poe", {"bot": FLAT, "prompt": "one"})
        after = await client.call_tool("ask_poe", {"bot": FLAT, "prompt": "two"})
    assert error_type(refused) == "invalid_request_error"
    assert not after.is_error, "the refused call's hold was released, not spent"


async def test_an_unpriced_model_is_refused_under_a_budget_unless_allowed(
    settings: Settings, fake: FakePoe, mode: str
) -> None:
    fake.enqueue(Reply(text=fake.cdn_url("a.png", PNG, "image/png")))
    async with connect(settings, mode, max_cost_per_day=1.0) as client:
        refused = await client.call_tool("generate_image", {"prompt": "a cat"})
    assert error_type(refused) == "budget_exceeded_error"
    text = refused.content[0].text
    assert "gpt-image-1 has no price in Poe's catalog" in text
    assert "POE_MCP_MAX_COST_PER_DAY" in text and "POE_MCP_ALLOW_UNPRICED=1" in text
    assert [r["path"] for r in fake.requests if r["path"] != "/v1/models"] == []
    async with connect(settings, mode, max_cost_per_day=1.0, allow_unpriced=True) as client:
        allowed = await client.call_tool("generate_image", {"prompt": "a cat"})
    assert not allowed.is_error


async def test_video_points_are_counted_once_the_job_completes(
    settings: Settings, fake: FakePoe
) -> None:
    fake.video_steps = 1
    budgets = {
        "max_points_per_day": 5000.0,
        "points_per_usd": 33_000.0,
        "allow_unpriced": True,
        "video_poll_interval": 0.01,
    }
    async with connect(settings, **budgets) as client:
        first = await client.call_tool("generate_video", {"prompt": "a comet"})
        second = await client.call_tool("generate_video", {"prompt": "a comet"})
        third = await client.call_tool("generate_video", {"prompt": "a comet"})
    assert not first.is_error and not second.is_error, "4,200 points spent is under 5,000"
    assert error_type(third) == "budget_exceeded_error"
    assert "8,400 points already spent today" in third.content[0].text
    assert len([r for r in fake.requests if r["path"] == "/v1/videos"]) == 2
    points = [row[2] for row in spend_rows(settings)]
    assert points == [4200, 4200]


# -- asking the person above POE_MCP_CONFIRM_ABOVE_USD ----------------------------------------


def answering(action: str, asked: list[str]) -> Any:
    """An elicitation callback that gives `action`, keeping the messages it was shown."""
    from mcp.types import ElicitResult

    async def callback(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        content = {"proceed": True} if action == "accept" else None
        return ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    return callback


@asynccontextmanager
async def asking(settings: Settings, mode: str, callback: Any, **changes: Any) -> Any:
    from mcp import Client

    from poe_mcp.server import build_server

    server = build_server(replace(settings, **changes))
    async with Client(server, mode=mode, elicitation_callback=callback) as client:  # type: ignore[arg-type]
        yield client


EXPENSIVE = {"bot": "gpt-4-turbo", "prompt": "hi", "max_tokens": 1000}  # about $0.027


async def test_a_person_who_accepts_lets_the_call_through(
    settings: Settings, fake: FakePoe, mode: str
) -> None:
    asked: list[str] = []
    async with asking(
        settings, mode, answering("accept", asked), confirm_above_usd=0.01, max_cost_per_day=1.0
    ) as client:
        result = await client.call_tool("ask_poe", EXPENSIVE)
        cheap = await client.call_tool("ask_poe", {**EXPENSIVE, "max_tokens": 10})
    assert not result.is_error and result.content[0].text == "Echo: hi"
    assert not cheap.is_error and len(asked) == 1, "only the call above the threshold is asked"
    message = asked[0]
    assert message.startswith("gpt-4-turbo is estimated at about $0.027")
    assert "above POE_MCP_CONFIRM_ABOVE_USD ($0.01)" in message
    assert "Budget left: $1.00 today (of POE_MCP_MAX_COST_PER_DAY)" in message
    assert len(fake.chat_requests()) == 2


@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_a_person_who_declines_sends_nothing(
    settings: Settings, fake: FakePoe, mode: str, action: str
) -> None:
    fake.enqueue(Reply(text=fake.cdn_url("a.png", PNG, "image/png")))
    asked: list[str] = []
    async with asking(
        settings, mode, answering(action, asked), confirm_above_usd=0.01, allow_unpriced=True
    ) as client:
        chat = await client.call_tool("ask_poe", EXPENSIVE)
        image = await client.call_tool("generate_image", {"prompt": "a cat"})
    for result in (chat, image):
        assert error_type(result) == "confirmation_declined"
    assert chat.content[0].text.startswith(
        "confirmation_declined: The person declined: gpt-4-turbo (about $0.0272) was not sent."
    )
    assert "nothing was spent" in chat.content[0].text
    assert "gpt-image-1 has no price in Poe's catalog: its cost is unknown" in asked[1]
    assert [r["path"] for r in fake.requests if r["path"] != "/v1/models"] == []


async def test_a_client_without_elicitation_is_told_how_to_proceed(
    settings: Settings, fake: FakePoe, mode: str
) -> None:
    async with connect(settings, mode, confirm_above_usd=0.01) as client:
        refused = await client.call_tool("ask_poe", EXPENSIVE)
        claimed = await client.call_tool("ask_poe", {**EXPENSIVE, "confirm": True})
    for result in (refused, claimed):
        assert error_type(result) == "confirmation_required_error"
    text = refused.content[0].text
    assert text.startswith("confirmation_required_error: gpt-4-turbo is estimated at about $0.027")
    assert "this client cannot ask the person (it declares no elicitation)" in text
    assert "raise POE_MCP_CONFIRM_ABOVE_USD" in text
    assert "POE_MCP_ALLOW_CONFIRM_ARGUMENT=1" in text
    assert "(confirm: true is not allowed here)" in claimed.content[0].text
    assert fake.chat_requests() == []
    async with connect(
        settings, mode, confirm_above_usd=0.01, allow_confirm_argument=True
    ) as client:
        told = await client.call_tool("ask_poe", EXPENSIVE)
        confirmed = await client.call_tool("ask_poe", {**EXPENSIVE, "confirm": True})
    assert "call again with confirm: true" in told.content[0].text
    assert not confirmed.is_error and len(fake.chat_requests()) == 1


async def test_the_2026_era_asks_through_input_required_and_sends_once(
    settings: Settings, fake: FakePoe
) -> None:
    """MRTR: the first round returns the question with nothing sent; the retry carries the answer."""
    from mcp import Client
    from mcp.shared.exceptions import MCPError
    from mcp.types import ElicitResult, InputRequiredResult

    from poe_mcp.server import build_server

    server = build_server(replace(settings, confirm_above_usd=0.01))
    async with Client(server, mode="auto", elicitation_callback=answering("accept", [])) as client:
        first = await client.session.call_tool("ask_poe", EXPENSIVE, allow_input_required=True)
        assert isinstance(first, InputRequiredResult)
        assert fake.chat_requests() == [], "nothing is sent while the person is asked"
        (key,) = first.input_requests
        accept = ElicitResult(action="accept", content={"proceed": True})
        with pytest.raises(MCPError, match="requestState"):  # the SDK binds it to the arguments
            await client.session.call_tool(
                "ask_poe",
                {**EXPENSIVE, "max_tokens": 4000},  # another, dearer call with the old answer
                input_responses={key: accept},
                request_state=first.request_state,
                allow_input_required=True,
            )
        unasked = await client.session.call_tool(  # an answer nobody asked for is not taken
            "ask_poe", EXPENSIVE, input_responses={key: accept}, allow_input_required=True
        )
        assert isinstance(unasked, InputRequiredResult)
        done = await client.session.call_tool(
            "ask_poe",
            EXPENSIVE,
            input_responses={key: accept},
            request_state=first.request_state,
            allow_input_required=True,
        )
    assert not isinstance(done, InputRequiredResult) and not done.is_error
    assert len(fake.chat_requests()) == 1


# -- the stores' ledger, opened directly -----------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    from poe_mcp.conversations import open_store

    location = (
        request.getfixturevalue("redis_url") if request.param == "redis" else str(tmp_path / "s.db")
    )
    store = open_store(location)
    yield store
    await store.aclose()


async def test_holds_count_until_settled_once_or_released(ledger: Any) -> None:
    from poe_mcp.conversations import Limit, SpendHold, budget_day

    today = budget_day("UTC")
    day = [Limit("day", "usd", 0.03)]

    def hold(name: str, session: str | None = None) -> SpendHold:
        return SpendHold(name, "m", 0.01, 10.0, today, session, today.start + 60)

    for name in ("a", "b", "c"):
        assert await ledger.reserve_spend(hold(name), day) is None
    breach = await ledger.reserve_spend(hold("d"), day)
    assert breach is not None and breach.limit == day[0]
    assert breach.spent == pytest.approx(0.03)
    await ledger.release_spend(hold("a"))
    await ledger.release_spend(hold("a"))  # twice: still released once
    settled = {"points": 5.0, "day": today, "hold": hold("b")}
    await ledger.record_usage("m", 1, 1, 0.002, **settled)
    await ledger.record_usage("m", 1, 1, 0.0, **{**settled, "points": 0.0})  # a second settle
    summary = await ledger.spend_summary(today, None, [today])
    assert summary.today.usd == pytest.approx(0.01 + 0.002), "c still held, b at its real cost"
    assert summary.by_day[today.label].usd == pytest.approx(0.002), "by day: real spend only"
    assert summary.by_model["m"].points == pytest.approx(5.0)
    session = [Limit("session", "points", 15.0)]
    assert await ledger.reserve_spend(hold("e", "s1"), session) is None
    crossed = await ledger.reserve_spend(hold("f", "s1"), session)
    assert crossed is not None and crossed.spent == pytest.approx(10.0)
    assert await ledger.reserve_spend(hold("g", "s2"), session) is None


def test_finding_a_question_in_an_exception_group_that_leads_back_to_itself_ends() -> None:
    from poe_mcp.tool_results import InputNeeded, input_needed_in

    inner = RuntimeError("the body failed")
    group = BaseExceptionGroup("task group", [inner])
    inner.__context__ = group  # what `raise group.exceptions[0]` inside `except` leaves
    assert input_needed_in(group) is None
    asked = InputNeeded(object())
    assert input_needed_in(BaseExceptionGroup("g", [inner, asked])) is asked


async def test_confirm_is_listed_only_where_it_counts(settings: Settings, mode: str) -> None:
    """`confirm` stands for the person's yes only under POE_MCP_ALLOW_CONFIRM_ARGUMENT=1; elsewhere it
    is accepted (and named as not allowed) but not listed: tools/list stays under 12 KB."""
    spending = {
        "ask_poe",
        "ask_poe_with_tools",
        "chat_completion",
        "generate_image",
        "generate_audio",
        "generate_video",
    }
    for allowed in (False, True):
        async with connect(settings, mode, allow_confirm_argument=allowed) as client:
            tools = (await client.list_tools()).tools
        listed = {t.name for t in tools if "confirm" in t.input_schema.get("properties", {})}
        assert listed == (spending if allowed else set())
        assert {t.name for t in tools if "max_cost_usd" in t.input_schema["properties"]} == spending


async def test_the_guard_holds_on_the_responses_path_and_a_streamed_chat_completion(
    settings: Settings, fake: FakePoe, mode: str
) -> None:
    """The paths main added after the guard: each is estimated before sending and settled after."""
    responses_only = "test-responses-only"  # served only on /v1/responses
    messages = [{"role": "user", "content": "hi"}]
    async with connect(settings, mode, max_cost_per_call=0.05) as client:
        whole = await client.call_tool("ask_poe", {"bot": responses_only, "prompt": "hi"})
        streamed_whole = await client.call_tool(
            "chat_completion", {"model": "gpt-4-turbo", "messages": messages, "stream": True}
        )
        assert fake.model_calls() == [], "both refused with zero requests sent"
        fake.enqueue(Reply(text="short", usage={"prompt_tokens": 10, "completion_tokens": 5}))
        answered = await client.call_tool(
            "ask_poe", {"bot": responses_only, "prompt": "hi", "max_tokens": 100}
        )
        fake.enqueue(Reply(text="streamed", usage={"prompt_tokens": 10, "completion_tokens": 5}))
        streamed = await client.call_tool(
            "chat_completion",
            {"model": "gpt-4-turbo", "messages": messages, "stream": True, "max_tokens": 100},
        )
    for refused in (whole, streamed_whole):
        assert error_type(refused) == "budget_exceeded_error"
        assert "Nothing was sent to Poe" in refused.content[0].text
    assert not answered.is_error and not streamed.is_error
    assert [r["path"] for r in fake.model_calls()] == ["/v1/responses", "/v1/chat/completions"]
    rows = spend_rows(settings)
    assert [row[0] for row in rows] == [responses_only, "gpt-4-turbo"]
    assert rows[0][1] == pytest.approx(10 * 2e-6 + 5 * 8e-6), "settled at the real cost"
    assert rows[1][1] == pytest.approx(10 * 9e-6 + 5 * 27e-6)
    assert rows[0][3] == answered.structured_content["session_id"] and rows[1][3] is None


def test_the_budget_day_moves_on_at_midnight_in_its_time_zone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from poe_mcp.services import spend

    clock = [1_796_342_399.0]  # 2026-12-03 23:59:59 UTC, already the 4th in Tokyo
    monkeypatch.setattr(spend, "time", types.SimpleNamespace(time=lambda: clock[0]))
    guard = SpendGuard(replace(settings, budget_tz="Asia/Tokyo"), store=None)  # type: ignore[arg-type]
    first = guard.today()
    assert first.label == "2026-12-04"
    assert guard.today() is first, "worked out once, not on every call"
    clock[0] = first.end - 1
    assert guard.today().label == first.label
    clock[0] = first.end
    assert guard.today().label > first.label and guard.today().start == first.end
