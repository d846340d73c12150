"""Turning core results and PoeErrors into MCP tool results."""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, ContentBlock, TextContent

from .poe.errors import PoeError


def redact(text: str, secrets: tuple[str | None, ...]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


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
