"""Where the tools' functions meet the server: each tools module declares its tools at module level
in a ToolTable, which the server's build adds; and what a call reaches through its Context."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from mcp.server.mcpserver import Context

if TYPE_CHECKING:
    from ..server import PoeMCPServer
    from ..services.shared import Services


class ToolTable:
    """A module's tools, in the order declared; `@table(title=…, annotations=…)` takes mcp.tool's options."""

    def __init__(self) -> None:
        self._tools: list[tuple[Callable[..., Any], dict[str, Any]]] = []

    def __call__(self, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def declare(function: Callable[..., Any]) -> Callable[..., Any]:
            self._tools.append((function, options))
            return function

        return declare

    def register(self, mcp: PoeMCPServer) -> None:
        for function, options in self._tools:
            mcp.tool(**options)(function)


def state_of(ctx: Context) -> Services:
    """The services as this request's caller sees them (in hosted mode, that user's own view)."""
    return cast("Services", ctx.request_context.lifespan_context).current()
