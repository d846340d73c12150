"""The spend guard: every call's cost estimated before it is sent, checked against the budgets, held in
the store while it runs, and settled at what it really cost; above a threshold, the person is asked.

With no budget and no confirmation threshold set (and no `max_cost_usd` on the call) the guard does
nothing at all: no catalog lookup, no store read or write, no request.

The estimate (README "Budgets") is meant to be on the high side, never below what Poe charges:

- prompt tokens: the UTF-8 bytes of each message as JSON (text, tool calls, tool results) divided by 3,
  plus 8 tokens per message; 2,000 tokens per image; a file's size in bytes divided by 3; the
  tools' definitions as JSON bytes divided by 3. (English runs about 4 bytes a token, code 3.5,
  CJK text 3 bytes a character and about a token each.)
- output tokens: `max_completion_tokens` or `max_tokens`, capped at the model's max output; else the
  model's max output from the catalog; else 16,384.
- USD: prompt tokens x the catalog's input price + output tokens x its output price + its
  per-request price; for media the per-request price (and per-image price for images), plus the
  token prices on the prompt where the model has them.
- points: the USD estimate x POE_MCP_POINTS_PER_USD.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from ..config import Settings
from ..conversations import (
    Breach,
    ConversationStore,
    Day,
    Limit,
    SpendHold,
    budget_day,
)
from ..poe.catalog import ModelInfo, Pricing
from ..poe.errors import (
    BudgetExceededError,
    ConfirmationDeclinedError,
    ConfirmationRequiredError,
    PoeError,
    refused_locally,
)
from ..poe.types import ChatMessage, ChatRequest

log = logging.getLogger(__name__)

BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD = 8  # role, separators and the provider's framing of one message
IMAGE_TOKENS = 2_000  # providers bill an image at about 250-1,600 tokens, whatever its size
DEFAULT_OUTPUT_TOKENS = 16_384  # neither the call nor the catalog caps the answer
EPSILON = 1e-9

# The setting behind each budget, for messages.
BUDGET_SETTINGS = {
    ("call", "usd"): "POE_MCP_MAX_COST_PER_CALL",
    ("session", "usd"): "POE_MCP_MAX_COST_PER_SESSION",
    ("day", "usd"): "POE_MCP_MAX_COST_PER_DAY",
    ("call", "points"): "POE_MCP_MAX_COST_PER_CALL_POINTS",
    ("session", "points"): "POE_MCP_MAX_COST_PER_SESSION_POINTS",
    ("day", "points"): "POE_MCP_MAX_COST_PER_DAY_POINTS",
}


def usd(amount: float) -> str:
    """Dollars with enough digits to tell small calls apart: `$0.0123`, `$1.50`."""
    if amount >= 1:
        return f"${amount:,.2f}"
    return "$" + (f"{amount:.4f}" if amount >= 0.0001 else f"{amount:.6f}").rstrip("0").rstrip(".")


def amount_text(amount: float, unit: str) -> str:
    return usd(amount) if unit == "usd" else f"{amount:,.0f} points"


@dataclass(frozen=True)
class Estimate:
    """What a call is expected to cost at most, before it is sent."""

    model: str
    usd: float | None  # None: the catalog does not price this model
    basis: str  # how it was reached, for messages: "1,234 prompt + 4,096 output tokens"

    @property
    def text(self) -> str:
        if self.usd is None:
            return f"{self.model} has no price in Poe's catalog"
        return f"{self.model} is estimated at about {usd(self.usd)} ({self.basis})"


# -- estimating ----------------------------------------------------------------------------


def _tokens(size: int) -> int:
    return math.ceil(size / BYTES_PER_TOKEN)


def _data_url_bytes(url: str) -> int:
    """The decoded size of a base64 data URL (its text length for anything else)."""
    head, _, data = url.partition(",")
    return len(data) * 3 // 4 if head.endswith(";base64") else len(url.encode())


def prompt_tokens(messages: Sequence[ChatMessage], tools: Sequence[dict[str, Any]] | None) -> int:
    """The documented conservative estimate of a request's prompt tokens (see the module docstring)."""
    total = _tokens(len(json.dumps(tools).encode())) if tools else 0
    for message in messages:
        content = message.get("content")
        media = 0
        if isinstance(content, list):
            kept = []
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "image_url":
                    media += IMAGE_TOKENS
                elif kind == "file":
                    file = part.get("file") or {}
                    media += _tokens(_data_url_bytes(str(file.get("file_data") or "")))
                else:
                    kept.append(part)
            message = {**message, "content": kept}
        total += _tokens(len(json.dumps(message, ensure_ascii=False).encode()))
        total += media + MESSAGE_OVERHEAD
    return total


def output_tokens(request: ChatRequest, info: ModelInfo | None) -> int:
    sampling = request.sampling
    asked = sampling.max_completion_tokens or sampling.max_tokens
    most = info.max_output_tokens if info is not None else None
    if asked is not None:
        return min(asked, most) if most else asked
    return most or DEFAULT_OUTPUT_TOKENS


def _token_price(pricing: Pricing) -> bool:
    return pricing.prompt is not None or pricing.completion is not None


def estimate_chat(request: ChatRequest, info: ModelInfo | None) -> Estimate:
    model = info.id if info is not None else request.model
    pricing = info.pricing if info is not None else None
    prompt = prompt_tokens(request.messages, request.tools)
    answer = output_tokens(request, info)
    if pricing is None or not (_token_price(pricing) or pricing.request is not None):
        return Estimate(model, None, "")
    total = (
        (pricing.prompt or 0) * prompt
        + (pricing.completion or 0) * answer
        + (pricing.request or Decimal(0))
    )
    basis = [f"{prompt:,} prompt + {answer:,} output tokens"] if _token_price(pricing) else []
    if pricing.request is not None:
        basis.append(f"{usd(float(pricing.request))} per request")
    return Estimate(model, float(total), ", ".join(basis))


def estimate_media(
    info: ModelInfo | None, model: str, kind: str, prompt: str, parameters: dict[str, Any]
) -> Estimate:
    """A generation: the catalog's per-request price (per image too, for images), plus token prices on
    the prompt where the model has them; video models are not priced in Poe's catalog."""
    pricing = info.pricing if info is not None else None
    model = info.id if info is not None else model
    if pricing is None:
        return Estimate(model, None, "")
    total, basis = Decimal(0), []
    if pricing.request is not None:
        total += pricing.request
        basis.append(f"{usd(float(pricing.request))} per request")
    if kind == "image" and pricing.image is not None:
        total += pricing.image
        basis.append(f"{usd(float(pricing.image))} per image")
    if _token_price(pricing):
        request = ChatRequest(model=model, messages=[{"role": "user", "content": prompt}])
        tokens = prompt_tokens(request.messages, None) + _tokens(len(json.dumps(parameters)))
        answer = output_tokens(request, info)
        total += (pricing.prompt or 0) * tokens + (pricing.completion or 0) * answer
        basis.append(f"{tokens:,} prompt + {answer:,} output tokens")
    if not basis:
        return Estimate(model, None, "")
    return Estimate(model, float(total), ", ".join(basis))


# -- asking the person ---------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """What the person is asked to agree to: the model, the estimate, what the budgets leave."""

    estimate: Estimate
    threshold: float
    left: str | None = None  # "$0.88 left today of POE_MCP_MAX_COST_PER_DAY"

    @property
    def cost(self) -> str:
        return usd(self.estimate.usd) if self.estimate.usd is not None else "an unknown amount"

    def message(self) -> str:
        lines = [
            f"{self.estimate.text}."
            if self.estimate.usd is not None
            else f"{self.estimate.model} has no price in Poe's catalog: its cost is unknown.",
            f"This is above POE_MCP_CONFIRM_ABOVE_USD ({usd(self.threshold)}).",
        ]
        if self.left:
            lines.append(f"Budget left: {self.left}.")
        lines.append("Send it to Poe?")
        return " ".join(lines)

    def digest(self) -> str:
        """Pins an answer to this very question: a call that changed since it was asked is asked again."""
        asked = json.dumps([self.estimate.model, self.estimate.usd, self.estimate.basis])
        return hashlib.sha256(asked.encode()).hexdigest()[:32]


# Returns True to send, False when the person declines; raises ConfirmationRequiredError when nobody
# can be asked (or, in MCP 2026-07-28, an InputNeeded that returns the question to the client).
Approver = Callable[[Quote], Awaitable[bool]]


def confirmation_required(
    quote: Quote, settings: Settings, how: str, agree: str | None = None
) -> ConfirmationRequiredError:
    """The refusal for a call above the threshold when the person cannot be asked (`how` says why;
    `agree` says how to give their yes in advance, by default the tools' confirm: true)."""
    ways = "raise POE_MCP_CONFIRM_ABOVE_USD (or unset it) to allow such calls"
    if agree is not None:
        ways += f", or {agree}"
    elif settings.allow_confirm_argument:
        ways += ", or, once the person has agreed to the cost, call again with confirm: true"
    else:
        ways += (
            ", or have the operator set POE_MCP_ALLOW_CONFIRM_ARGUMENT=1 so that confirm: true "
            "stands for the person's yes"
        )
    estimate = quote.estimate
    what = (
        estimate.text
        if estimate.usd is not None
        else f"{estimate.model} costs an unknown amount (it has no price in Poe's catalog)"
    )
    return ConfirmationRequiredError(
        f"{what}, above POE_MCP_CONFIRM_ABOVE_USD ({usd(quote.threshold)}), and {how}",
        advice=f"Nothing was sent to Poe. Ask the person; then {ways}.",
    )


# -- the guard -----------------------------------------------------------------------------


def hold_from(data: dict[str, Any] | None) -> SpendHold | None:
    """A hold kept in a media job record, as asdict() left it."""
    if not data:
        return None
    return SpendHold(**{**data, "day": Day(**data["day"])})


def hold_record(hold: SpendHold | None) -> dict[str, Any] | None:
    return asdict(hold) if hold is not None else None


class SpendGuard:
    def __init__(self, settings: Settings, store: ConversationStore) -> None:
        self.settings = settings
        self.store = store
        self._today: Day | None = None

    @property
    def active(self) -> bool:
        """Whether any budget or the confirmation threshold is set."""
        s = self.settings
        return s.confirm_above_usd is not None or any(
            v is not None for v in (s.max_cost_per_call, s.max_points_per_call, *self._amounts())
        )

    def applies(self, max_cost_usd: float | None) -> bool:
        """Whether a call must be estimated at all: without this, the guard costs nothing."""
        return max_cost_usd is not None or self.active

    def _amounts(self) -> tuple[float | None, ...]:
        s = self.settings
        return (
            s.max_cost_per_session,
            s.max_cost_per_day,
            s.max_points_per_session,
            s.max_points_per_day,
        )

    def limits(self, session_id: str | None) -> list[Limit]:
        """The session and day budgets that apply to a call (the session ones only in a conversation)."""
        s = self.settings
        found = [
            ("session", "usd", s.max_cost_per_session),
            ("session", "points", s.max_points_per_session),
            ("day", "usd", s.max_cost_per_day),
            ("day", "points", s.max_points_per_day),
        ]
        return [
            Limit(scope, unit, amount)
            for scope, unit, amount in found
            if amount is not None and (scope == "day" or session_id is not None)
        ]

    def today(self) -> Day:
        """The budget day now; worked out once a day, not on every call (each call's usage names it)."""
        now = time.time()
        day = self._today
        if day is None or not day.start <= now < day.end:
            day = self._today = budget_day(self.settings.budget_tz, now)
        return day

    def points_of(self, usd_amount: float | None) -> float | None:
        rate = self.settings.points_per_usd
        return usd_amount * rate if usd_amount is not None and rate else None

    async def admit(
        self,
        estimate: Estimate,
        *,
        session_id: str | None,
        max_cost_usd: float | None,
        approver: Approver | None,
    ) -> SpendHold | None:
        """Refuse the call (BudgetExceededError), ask the person above the threshold, then hold its
        estimate against the session and day budgets; returns the hold to settle, or None when no
        session or day budget applies (nothing was written)."""
        s = self.settings
        limits = self.limits(session_id)
        per_call = [v for v in (s.max_cost_per_call, max_cost_usd) if v is not None]
        budgeted = bool(per_call or limits or s.max_points_per_call is not None)
        if estimate.usd is None and budgeted and not s.allow_unpriced:
            names = [BUDGET_SETTINGS[("call", "usd")]] if s.max_cost_per_call is not None else []
            names += ["max_cost_usd"] if max_cost_usd is not None else []
            names += [BUDGET_SETTINGS[(limit.scope, limit.unit)] for limit in limits]
            if s.max_points_per_call is not None:
                names.append(BUDGET_SETTINGS[("call", "points")])
            raise BudgetExceededError(
                f"{estimate.model} has no price in Poe's catalog, so its cost cannot be checked "
                f"against {', '.join(names)}",
                advice="Nothing was sent to Poe. Use a priced model (list_models shows pricing), or "
                "set POE_MCP_ALLOW_UNPRICED=1 to let unpriced models through (each is counted at "
                "$0 until its real cost is known: video jobs report their points).",
            )
        cost = estimate.usd or 0.0
        points = self.points_of(cost) or 0.0
        if per_call and cost > min(per_call) + EPSILON:
            lowest = min(per_call)
            name = (
                "this call's max_cost_usd"
                if max_cost_usd is not None and max_cost_usd == lowest
                else "POE_MCP_MAX_COST_PER_CALL"
            )
            raise BudgetExceededError(
                f"{estimate.text}, above {name} ({usd(lowest)})",
                advice="Nothing was sent to Poe. Pass a smaller max_tokens (the estimate counts the "
                "whole answer the model may give), use a cheaper model (list_models shows prices), "
                "or raise POE_MCP_MAX_COST_PER_CALL (max_cost_usd can only lower it).",
            )
        if s.max_points_per_call is not None and points > s.max_points_per_call + EPSILON:
            raise BudgetExceededError(
                f"{estimate.text}, {points:,.0f} points at POE_MCP_POINTS_PER_USD="
                f"{s.points_per_usd:g}, above POE_MCP_MAX_COST_PER_CALL_POINTS "
                f"({s.max_points_per_call:,.0f} points)",
                advice="Nothing was sent to Poe. Pass a smaller max_tokens, use a cheaper model, or "
                "raise POE_MCP_MAX_COST_PER_CALL_POINTS.",
            )
        hold = SpendHold(
            uuid.uuid4().hex, estimate.model, cost, points, self.today(), session_id, time.time()
        )
        threshold = s.confirm_above_usd
        if threshold is not None and (estimate.usd is None or cost > threshold + EPSILON):
            left = await self._precheck(hold, limits, estimate) if limits else None
            quote = Quote(estimate, threshold, left)
            if approver is None:
                raise confirmation_required(quote, s, "there is no way to ask the person here")
            if not await approver(quote):
                raise ConfirmationDeclinedError(
                    f"The person declined: {estimate.model} (about {quote.cost}) was not sent"
                )
        if not limits:
            return None
        breach = await self.store.reserve_spend(hold, limits)
        if breach is not None:
            raise self.exceeded(breach, estimate, hold)
        return hold

    async def _precheck(self, hold: SpendHold, limits: list[Limit], estimate: Estimate) -> str:
        """Before asking the person: refuse a call the budgets would refuse anyway; else say what is left."""
        summary = await self.store.spend_summary(hold.day, hold.session_id)
        parts = []
        for limit in limits:
            spent = summary.today if limit.scope == "day" else summary.session
            used = (spent.usd if limit.unit == "usd" else spent.points) if spent else 0.0
            amount = hold.usd if limit.unit == "usd" else hold.points
            if used >= limit.amount - EPSILON or used + amount > limit.amount + EPSILON:
                raise self.exceeded(Breach(limit, used), estimate, hold)
            where = "today" if limit.scope == "day" else "in this conversation"
            parts.append(
                f"{amount_text(limit.amount - used, limit.unit)} {where} "
                f"(of {BUDGET_SETTINGS[(limit.scope, limit.unit)]})"
            )
        return "; ".join(parts)

    def exceeded(self, breach: Breach, estimate: Estimate, hold: SpendHold) -> BudgetExceededError:
        limit = breach.limit
        name = BUDGET_SETTINGS[(limit.scope, limit.unit)]
        amount = hold.usd if limit.unit == "usd" else hold.points
        cost = (
            estimate.text
            if limit.unit == "usd"
            else f"{estimate.text}, {amount:,.0f} points at POE_MCP_POINTS_PER_USD"
        )
        if limit.scope == "day":
            where = f"today ({hold.day.label}, {self.settings.budget_tz})"
            wait = f"wait for midnight ({self.settings.budget_tz})"
        else:
            where = f"in conversation {hold.session_id}"
            wait = "start a new conversation"
        return BudgetExceededError(
            f"{cost}; with {amount_text(breach.spent, limit.unit)} already spent {where}, it would "
            f"cross {name} ({amount_text(limit.amount, limit.unit)})",
            advice=f"Nothing was sent to Poe. Raise {name}, {wait}, pass a smaller max_tokens, "
            "or use a cheaper model (list_models shows prices).",
        )

    def spend(
        self,
        hold: SpendHold | None,
        cost_usd: float | None,
        points: float | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """The spend fields of a call's usage event: its real cost (a held call whose cost is unknown
        stays counted at its estimate), its points, its conversation, and the hold it settles."""
        if cost_usd is None and points is not None and self.settings.points_per_usd:
            cost_usd = points / self.settings.points_per_usd
        if cost_usd is None and hold is not None and hold.usd:
            cost_usd = hold.usd
        if points is None:
            points = self.points_of(cost_usd)
        return {
            "cost_usd": cost_usd,
            "points": points,
            "session_id": session_id,
            "day": self.today(),
            "hold": hold,
        }

    async def failed(self, hold: SpendHold | None, error: BaseException) -> None:
        """A held call that raised: released when Poe (or poe-mcp) refused it, so nothing was spent;
        kept at its estimate when it may have run (a dropped connection, a timeout, a cancel)."""
        if hold is None:
            return
        poe_error = error if isinstance(error, PoeError) else None
        if poe_error is not None and (poe_error.from_poe or refused_locally(poe_error)):
            try:
                await self.store.release_spend(hold)
            except Exception:  # the hold stays counted: too much, never too little
                log.exception("Releasing the spend held for a refused call failed")
