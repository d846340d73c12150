"""poe-mcp's icons, bundled as data: URIs so that no client ever fetches anything to show them.

The server's icon is a rounded purple square with a speech bubble (SVG). Each tool carries the smallest
mark there is, one purple pixel as a PNG (114 bytes as a data: URI, against 137 for the smallest SVG),
because every byte of tools/list is paid for in the client's context, once per tool.
"""

from __future__ import annotations

from urllib.parse import quote

from mcp.types import Icon

SERVER_SVG = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>"
    "<rect width='32' height='32' rx='8' fill='#5d5cde'/>"
    "<path d='M8 9h16a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-8l-5 4v-4H8a2 2 0 0 1-2-2v-8a2 2 0 0 1 2-2z' "
    "fill='#fff'/></svg>"
)
TOOL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mOIjbkHAAKxAZiL22BFAAAAAElFTkSuQmCC"  # 1x1, #5d5cde


def data_uri(svg: str) -> str:
    """An SVG as a `data:` URI, percent-encoded only where a URI needs it (smaller than base64)."""
    return "data:image/svg+xml," + quote(svg, safe="/:=.'-,")


SERVER_ICONS = [Icon(src=data_uri(SERVER_SVG), mime_type="image/svg+xml", sizes=["any"])]
TOOL_ICONS = [Icon(src="data:image/png;base64," + TOOL_PNG)]
