"""Account and server tools: get_usage and get_server_info."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from .. import __version__
from ..poe.errors import UpstreamError
from ..results import structured_result
from ..server import PoeMCPServer, handles_poe_errors, state_of


class HistoryEntry(BaseModel):
    time: str | None
    bot_name: str | None
    query_id: str | None
    usage_type: str | None
    cost_points: int | None
    cost_usd: str | None = None


class History(BaseModel):
    data: list[HistoryEntry]
    has_more: bool
    limit: int
    starting_after: str | None
    next_starting_after: str | None


class ServerTotals(BaseModel):
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    by_model: dict[str, dict[str, Any]]


class UsageReport(BaseModel):
    current_point_balance: int | None
    history: History
    server_totals: ServerTotals


class ServerInfo(BaseModel):
    name: str
    version: str
    backend: str
    transport: str
    base_url: str
    default_model: str
    api_key_configured: bool
    features: dict[str, bool | str]


def _iso_from_micros(value: Any) -> str | None:
    if not isinstance(value, (int, float)):
        return None
    return datetime.fromtimestamp(value / 1_000_000, timezone.utc).isoformat(timespec="seconds")


def history_entry(raw: dict[str, Any]) -> HistoryEntry:
    """One `/usage/points_history` row, with its microsecond time as ISO 8601."""
    cost = raw.get("cost_points")
    return HistoryEntry(
        time=_iso_from_micros(raw.get("creation_time")),
        bot_name=raw.get("bot_name"),
        query_id=raw.get("query_id"),
        usage_type=raw.get("usage_type"),
        cost_points=int(cost) if isinstance(cost, (int, float)) else None,
        cost_usd=str(raw["cost_usd"]) if raw.get("cost_usd") is not None else None,
    )


def register(mcp: PoeMCPServer) -> None:
    @mcp.tool(title="Poe points balance and usage", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    @handles_poe_errors
    async def get_usage(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        starting_after: Annotated[str | None, Field(description="query_id cursor")] = None,
    ) -> Annotated[CallToolResult, UsageReport]:
        """Points balance, points history (pageable), and this server's call and cost totals."""
        state = state_of(ctx)
        balance = await state.poe.account("/usage/current_balance")
        params: dict[str, Any] = {"limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = await state.poe.account("/usage/points_history", params)
        if not isinstance(balance, dict) or not isinstance(page, dict):
            raise UpstreamError("Poe's usage API answered in an unexpected shape")
        entries = [history_entry(e) for e in page.get("data") or () if isinstance(e, dict)]
        has_more = bool(page.get("has_more"))
        totals = await state.store.usage_totals()
        report = UsageReport(
            current_point_balance=balance.get("current_point_balance"),
            history=History(
                data=entries, has_more=has_more, limit=limit, starting_after=starting_after,
                next_starting_after=entries[-1].query_id if has_more and entries else None,
            ),
            server_totals=ServerTotals(**vars(totals)),
        )
        lines = [f"Balance: {report.current_point_balance} points."]
        lines += [f"{e.time}  {e.bot_name}  {e.cost_points} points  ({e.usage_type})" for e in entries]
        if report.history.next_starting_after:
            lines.append(f"More: call again with starting_after={report.history.next_starting_after!r}.")
        lines.append(f"This server since start: {totals.calls} calls, {totals.total_tokens} tokens, ~${totals.cost_usd:.4f}.")
        return structured_result("\n".join(lines), report.model_dump())

    @mcp.tool(title="About this poe-mcp server", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def get_server_info(ctx: Context) -> ServerInfo:
        """This server's version, backend, transport, base URL, default model and features."""
        state = state_of(ctx)
        s = state.settings
        store = "redis" if s.store.startswith(("redis://", "rediss://")) else "sqlite"
        return ServerInfo(
            name="poe-mcp",
            version=__version__,
            backend=s.backend,
            transport=state.transport,
            base_url=s.base_url,
            default_model=s.default_model,
            api_key_configured=bool(s.api_key),
            features={"conversation_store": store, "streaming": True, "attachments": True, "http_auth": bool(s.auth_token)},
        )
