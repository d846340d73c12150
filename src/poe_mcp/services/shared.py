"""The services one process shares (Poe client, store, conversations and media), for server and CLI alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..attachments import AttachmentRules
from ..config import Settings
from ..conversations import ConversationStore, SpendSummary, open_store, recent_days
from ..poe.client import PoeClient
from ..poe.errors import UpstreamError
from ..redaction import RedactingStore
from ..result_shapes import (
    BudgetOut,
    DaySpend,
    History,
    HistoryEntry,
    ModelSpend,
    ServerTotals,
    SpendOut,
    UsageReport,
)
from .conversations import ChatService
from .media import MediaService
from .spend import SpendGuard

if TYPE_CHECKING:
    from ..hosted.tenancy import Tenants


@dataclass
class Services:
    settings: Settings
    poe: PoeClient
    store: ConversationStore
    chat: ChatService
    media: MediaService
    transport: str = "stdio"
    guard: SpendGuard | None = None
    # Hosted mode (POE_MCP_AUTH=tokens or oauth): each user's own view of these services.
    tenants: Tenants | None = None
    extra_secrets: tuple[str | None, ...] = ()

    @classmethod
    def wired(
        cls,
        settings: Settings,
        poe: PoeClient,
        store: ConversationStore,
        rules: AttachmentRules,
        transport: str,
    ) -> Services:
        """The conversation, media and spend services over one Poe client and one store, sharing one
        spend guard (so a hold made for a call is the one settled after it)."""
        guard = SpendGuard(settings, store)
        media = MediaService(
            poe, settings.output_dir, rules, settings.video_poll_interval, store, guard
        )
        chat = ChatService(poe, store, rules, media=media, guard=guard)
        return cls(settings, poe, store, chat, media, transport, guard)

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self.settings.api_key, self.settings.auth_token, *self.extra_secrets)

    def current(self) -> Services:
        """The services as the caller of this request sees them: in hosted mode their own view."""
        if self.tenants is None:
            return self
        from ..hosted.users import request_user

        user = request_user()
        if user is None:  # the auth middleware lets no request through without one
            raise RuntimeError("hosted mode: a request reached the tools without a signed-in user")
        return self.tenants.view(user)

    async def usage_report(
        self, limit: int = 20, starting_after: str | None = None, session_id: str | None = None
    ) -> UsageReport:
        """The balance, one page of the points history, this server's own totals, and the spend
        guard's view: each budget with what is spent and left, spend by day and by model."""
        balance = await self.poe.account("/usage/current_balance")
        params: dict[str, Any] = {"limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = await self.poe.account("/usage/points_history", params)
        if not isinstance(balance, dict) or not isinstance(page, dict):
            raise UpstreamError("Poe's usage API answered in an unexpected shape")
        entries = [HistoryEntry.of(e) for e in page.get("data") or () if isinstance(e, dict)]
        has_more = bool(page.get("has_more"))
        return UsageReport(
            current_point_balance=balance.get("current_point_balance"),
            history=History(
                data=entries,
                has_more=has_more,
                limit=limit,
                starting_after=starting_after,
                next_starting_after=entries[-1].query_id if has_more and entries else None,
            ),
            server_totals=ServerTotals.of(await self.store.usage_totals()),
            **await self.spend_report(session_id),
        )

    async def spend_report(self, session_id: str | None = None) -> dict[str, Any]:
        """`budgets` and `spend` for UsageReport (14 days, in POE_MCP_BUDGET_TZ)."""
        tz = self.settings.budget_tz
        days = recent_days(tz, 14)
        summary = await self.store.spend_summary(days[-1], session_id, days)
        return {
            "budgets": budgets_of(self.settings, summary, session_id),
            "spend": SpendOut(
                time_zone=tz,
                today=days[-1].label,
                by_day=[
                    DaySpend(day=day, usd=s.usd, points=s.points)
                    for day, s in summary.by_day.items()
                ],
                by_model=[
                    ModelSpend(model=model, usd=s.usd, points=s.points)
                    for model, s in summary.by_model.items()
                ],
            ),
        }


def budgets_of(
    settings: Settings, summary: SpendSummary, session_id: str | None
) -> list[BudgetOut]:
    """Every budget that is set, with what its day or session has spent (calls under way included)."""
    from .spend import BUDGET_SETTINGS

    budgets = []
    for (scope, unit), setting in BUDGET_SETTINGS.items():
        name = f"max_{'cost' if unit == 'usd' else 'points'}_per_{scope}"
        amount = getattr(settings, name)
        if amount is None:
            continue
        spent = summary.today if scope == "day" else summary.session if scope == "session" else None
        used = None if spent is None else spent.usd if unit == "usd" else spent.points
        budgets.append(
            BudgetOut(
                setting=setting,
                scope=scope,
                unit=unit,
                limit=amount,
                spent=used,
                remaining=None if used is None else max(0.0, amount - used),
            )
        )
    return budgets


@asynccontextmanager
async def open_services(settings: Settings, transport: str = "stdio") -> AsyncIterator[Services]:
    """Everything a process needs to serve calls; closed (connections, store) on exit."""
    raw_store = open_store(settings.store)
    store = cast(
        ConversationStore, RedactingStore(raw_store, (settings.api_key, settings.auth_token))
    )
    # With a shared store the request budget is shared too: Poe's limit is per key, not per process.
    shared_budget = getattr(store, "request_budget", None)
    poe = PoeClient(settings, budget=shared_budget(settings.rpm) if shared_budget else None)
    rules = AttachmentRules.of(settings)
    services = Services.wired(settings, poe, store, rules, transport)
    if settings.auth != "token" and transport == "http":
        from ..hosted.tenancy import Tenants

        services.tenants = Tenants(services, raw_store)
    try:
        yield services
    finally:
        if services.tenants is not None:
            await services.tenants.aclose()
        await store.aclose()
        await poe.aclose()
