"""poe-mcp's icons, bundled as data: URIs so that no client ever fetches anything to show them.

The server's icon is a rounded purple square with a speech bubble (SVG). Tools carry none of their own:
an icon per tool is paid for in every client's context, once per tool (14 × 130 bytes at the least,
which tools/list's 12 KB cannot spare), and clients show the server's icon beside its tools.
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


def data_uri(svg: str) -> str:
    """An SVG as a `data:` URI, percent-encoded only where a URI needs it (smaller than base64)."""
    return "data:image/svg+xml," + quote(svg, safe="/:=.'-,")


SERVER_ICONS = [Icon(src=data_uri(SERVER_SVG), mime_type="image/svg+xml", sizes=["any"])]
