"""Turning service results and PoeErrors into MCP tool results."""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, ContentBlock, TextContent

from .poe.errors import PoeError
from .redaction import redact

__all__ = ["error_result", "redact", "structured_result"]


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
