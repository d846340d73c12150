"""poe-mcp's icons, bundled as base64 `data:` URIs (the form the MCP spec names) so no client fetches anything.

Each is a rounded purple square with a white glyph: the server's is a speech bubble; a tool's shows its
kind (chat, image, video, audio, the catalog, the account, the server itself). The server always sends
its own icon. Tools send theirs only under POE_MCP_TOOL_ICONS=1: an icon costs ~320 bytes in
tools/list, once per tool (4.8 KB over 15 tools), which the 12 KB that tools/list may take in every
client cannot spare, and most clients show the server's icon beside its tools anyway.
"""

from __future__ import annotations

from base64 import b64encode

from mcp.types import Icon


def _on_square(glyph: str) -> str:
    return (
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>"
        f"<rect width='32' height='32' rx='8' fill='#5d5cde'/>{glyph}</svg>"
    )


_WHITE = "fill='#fff'"
_LINE = "fill='none' stroke='#fff' stroke-width='2'"
GLYPHS = {
    "chat": f"<path d='M8 8h16q2 0 2 2v9q0 2-2 2h-8l-5 4v-4H8q-2 0-2-2v-9q0-2 2-2z' {_WHITE}/>",
    "image": f"<path d='M7 8h18v16H7z' {_LINE}/><path d='M9 22l5-7 4 4 3-3 3 6z' {_WHITE}/>"
    f"<circle cx='20' cy='12' r='2' {_WHITE}/>",
    "video": f"<path d='M12 9v14l11-7z' {_WHITE}/>",
    "audio": f"<path d='M6 13h4l6-5v16l-6-5H6z' {_WHITE}/><path d='M20 12a5 5 0 0 1 0 8M23 9a9 9 0 0 1 0 14' {_LINE}/>",
    "catalog": f"<path d='M8 8h7v7H8zM17 8h7v7h-7zM8 17h7v7H8zM17 17h7v7h-7z' {_WHITE}/>",
    "account": f"<circle cx='16' cy='16' r='8' {_LINE}/><path d='M16 11v10' {_LINE}/>",
    "about": f"<circle cx='16' cy='10' r='2' {_WHITE}/><path d='M14 14h4v10h-4z' {_WHITE}/>",
}
SERVER_SVG = _on_square(GLYPHS["chat"])

# Each tool's kind; a tool missing here fails tests/test_clients.py, so a new tool cannot go without one.
TOOL_KINDS = {
    **dict.fromkeys(
        (
            "ask_poe",
            "ask_with_attachment",
            "ask_poe_with_tools",
            "chat_completion",
            "list_sessions",
            "clear_session",
            "ask_poe_v2",  # POE_MCP_COMPAT=poe-proxy-mcp's tools (compat.py) too
        ),
        "chat",
    ),
    "generate_image": "image",
    **dict.fromkeys(("generate_video", "list_generations"), "video"),
    "generate_audio": "audio",
    **dict.fromkeys(
        ("list_models", "list_available_models", "get_model_info", "list_available_models_v2"),
        "catalog",
    ),
    "get_usage": "account",
    **dict.fromkeys(("get_server_info", "get_server_info_v2"), "about"),
}


def data_uri(svg: str) -> str:
    """Base64 rather than percent-encoded, though longer: the MCP spec's `Icon.src` names that form."""
    return "data:image/svg+xml;base64," + b64encode(svg.encode()).decode()


def _icons(svg: str) -> list[Icon]:
    # No mimeType (the data: URI names it) nor sizes (absent means any size): in the 2026-07-28 era the
    # server's icon rides on every response, in its serverInfo.
    return [Icon(src=data_uri(svg))]


TOOL_ICONS = {kind: _icons(_on_square(glyph)) for kind, glyph in GLYPHS.items()}
SERVER_ICONS = TOOL_ICONS["chat"]


def tool_icons(tool: str) -> list[Icon] | None:
    kind = TOOL_KINDS.get(tool)
    return TOOL_ICONS[kind] if kind else None
