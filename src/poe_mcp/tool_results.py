"""Turning service results and PoeErrors into MCP tool results."""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, ContentBlock, TextContent

from .poe.errors import PoeError
from .redaction import redact

__all__ = ["InputNeeded", "error_result", "input_needed_in", "redact", "structured_result"]


def error_result(error: PoeError, secrets: tuple[str | None, ...] = ()) -> CallToolResult:
    """`isError: true`, the text starting with Poe's error type and status, then what to do; the same
    facts (with Poe's code, param and metadata) as structured content."""
    details = json.loads(redact(json.dumps(error.details()), secrets))
    return CallToolResult(
        content=[TextContent(type="text", text=redact(str(error), secrets))],
        structured_content={"error": details},
        is_error=True,
    )


def structured_result(
    text: str, structured: dict[str, Any], *, extra: list[ContentBlock] | None = None
) -> CallToolResult:
    """A result a model reads first as `text`, with the same facts as `structuredContent`."""
    content: list[ContentBlock] = [TextContent(type="text", text=text), *(extra or [])]
    return CallToolResult(content=content, structured_content=structured)


class InputNeeded(Exception):
    """Raised from deep in a call that must ask the client first (MCP 2026-07-28's `input_required`):
    the server returns `result` instead of the tool's own, and nothing was sent to Poe."""

    def __init__(self, result: Any) -> None:
        super().__init__("the client must answer a question first")
        self.result = result


def input_needed_in(exc: BaseException | None, seen: set[int] | None = None) -> InputNeeded | None:
    """The InputNeeded behind `exc`: itself, its cause or context, or one inside an ExceptionGroup
    (whose members' context may lead back to the group: `seen` is shared, so the walk ends)."""
    seen = set() if seen is None else seen
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, InputNeeded):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            return next((f for e in exc.exceptions if (f := input_needed_in(e, seen))), None)
        exc = exc.__cause__ or exc.__context__
    return None
