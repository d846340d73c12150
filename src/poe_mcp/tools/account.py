"""Account and server tools: get_usage and get_server_info."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from .. import __version__
from ..redaction import shown_url
from ..result_shapes import UsageReport, handle_line
from ..services.shared import Services
from ..services.spend import usd
from ..tool_results import structured_result
from .registry import ToolTable, state_of

if TYPE_CHECKING:
    from ..server import PoeMCPServer


class ServerInfo(BaseModel):
    name: str
    version: str
    backend: str
    transport: str
    base_url: str
    default_model: str
    api_key_configured: bool
    features: dict[str, bool | str]

    def summary(self) -> str:
        features = ", ".join(f"{k}={v}" for k, v in self.features.items())
        return handle_line(
            f"{self.name} {self.version}",
            f"backend={self.backend}",
            f"transport={self.transport}",
            f"base_url={self.base_url}",
            f"default_model={self.default_model}",
            f"api_key_configured={self.api_key_configured}",
            features,
        )


tool = ToolTable()


@tool(
    title="Poe points balance and usage",
    annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
)
async def get_usage(
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=100, description="History entries")] = 20,
    starting_after: Annotated[str | None, Field(description="query_id cursor")] = None,
    session_id: Annotated[str | None, Field(description="Its budget too")] = None,
) -> Annotated[CallToolResult, UsageReport]:
    """Points balance and history (pageable), this server's totals, budgets and spend."""
    report = await state_of(ctx).usage_report(limit, starting_after, session_id)
    totals = report.server_totals
    lines = [f"Balance: {report.current_point_balance} points."]
    lines += [
        f"{e.time}  {e.bot_name}  {e.cost_points} points  ({e.usage_type})"
        for e in report.history.data
    ]
    if report.history.next_starting_after:
        lines.append(
            f"More: call again with starting_after={report.history.next_starting_after!r}."
        )
    lines.append(
        f"This server since start: {totals.calls} calls, {totals.total_tokens} tokens, ~${totals.cost_usd:.4f}."
    )
    lines += spend_lines(report)
    return structured_result("\n".join(lines), report.model_dump())


@tool(
    title="About this poe-mcp server",
    annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
)
async def get_server_info(ctx: Context) -> Annotated[CallToolResult, ServerInfo]:
    """This server's version, backend, transport, base URL, default model and features."""
    info = server_info(state_of(ctx))
    return structured_result(info.summary(), info.model_dump())


def register(mcp: PoeMCPServer) -> None:
    tool.register(mcp)


def spend_lines(report: UsageReport) -> list[str]:
    """Each budget with what is spent and left, then the real spend by day and by model."""
    spend = report.spend
    if spend is None:
        return []
    lines = [b.line(f"{spend.today}, {spend.time_zone}") for b in report.budgets]
    days = [f"{d.day} {usd(d.usd)}" for d in spend.by_day if d.usd or d.points]
    if days:
        lines.append(f"Spent by day (last 14, {spend.time_zone}): " + "; ".join(days) + ".")
    if spend.by_model:
        lines.append(
            "Spent by model: " + "; ".join(f"{m.model} {usd(m.usd)}" for m in spend.by_model) + "."
        )
    return lines


def server_info(state: Services) -> ServerInfo:
    """What get_server_info reports; never the key, only whether one is set."""
    s = state.settings
    store = "redis" if s.store.startswith(("redis://", "rediss://")) else "sqlite"
    return ServerInfo(
        name="poe-mcp",
        version=__version__,
        backend=s.backend,
        transport=state.transport,
        base_url=shown_url(s.base_url),
        default_model=s.default_model,
        api_key_configured=bool(s.api_key),
        features={
            "conversation_store": store,
            "streaming": True,
            "attachments": True,
            "http_auth": bool(s.auth_token) or s.auth != "token",
        },
    )
