"""MCP Apps (`io.modelcontextprotocol/ui`): a media viewer, a model browser and a usage chart.

Each app is one self-contained HTML document (script and styles inlined, no external origin) served
as a `ui://poe-mcp/…` resource. The tools are linked to their app through `_meta.ui.resourceUri`,
and the `ui://` resources are listed, only in the `tools/list` and `resources/list` answered to a
client that declared the extension: every other client keeps the same lists as before, byte for
byte (a `resources/read` of a `ui://` URI works for anyone; it is only not advertised).
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, Apps, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from ..icons import SERVER_SVG

MEDIA_VIEWER = "ui://poe-mcp/media-viewer.html"
MODEL_BROWSER = "ui://poe-mcp/model-browser.html"
USAGE = "ui://poe-mcp/usage.html"

# uri -> (source file, title)
APPS: dict[str, tuple[str, str]] = {
    MEDIA_VIEWER: ("media.html", "Poe media viewer"),
    MODEL_BROWSER: ("models.html", "Poe model browser"),
    USAGE: ("usage.html", "Poe usage"),
}

# Which tool shows which app. A name missing from the server (get_generation on an older build)
# is simply never matched.
TOOL_APPS: dict[str, str] = {
    "generate_image": MEDIA_VIEWER,
    "generate_audio": MEDIA_VIEWER,
    "generate_video": MEDIA_VIEWER,
    "get_generation": MEDIA_VIEWER,
    "list_models": MODEL_BROWSER,
    "list_available_models": MODEL_BROWSER,
    "get_model_info": MODEL_BROWSER,
    "get_usage": USAGE,
}

_INLINE = re.compile(r"<!-- inline (?P<name>[\w.-]+) -->")
# The server's own icon (icons.py) in each app's header: one icon set for the server and its apps.
ICON = SERVER_SVG.replace("<svg ", "<svg class='icon' aria-hidden='true' ", 1)


def _source(name: str) -> str:
    if name == "icon.svg":
        return ICON
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def app_html(name: str) -> str:
    """One app's HTML with the shared sources it names (`<!-- inline bridge.js -->`) put in place,
    so the host gets a single document that needs nothing from any origin."""
    return _INLINE.sub(lambda found: _source(found["name"]), _source(name))


def extension() -> Apps:
    """The Apps extension with the three `ui://` resources; it advertises the capability."""
    apps = Apps()
    for uri, (source, title) in APPS.items():
        apps.add_html_resource(
            uri, app_html(source), name=source.removesuffix(".html"), title=title
        )
    return apps


def _link_tools(listed: dict[str, Any]) -> dict[str, Any]:
    """The `tools/list` result (its wire form) with `_meta.ui.resourceUri` on each tool that has an app."""
    tools = []
    for tool in listed.get("tools", []):
        uri = TOOL_APPS.get(tool.get("name"))
        if uri is not None:
            tool = {**tool, "_meta": {**tool.get("_meta", {}), "ui": {"resourceUri": uri}}}
        tools.append(tool)
    return {**listed, "tools": tools}


def _without_apps(listed: dict[str, Any]) -> dict[str, Any]:
    """The `resources/list` result (its wire form) without the `ui://` resources."""
    resources = [r for r in listed.get("resources", []) if r.get("uri") not in APPS]
    return {**listed, "resources": resources}


async def link_tools_for_app_hosts(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """Middleware: a client that declared MCP Apps sees each tool's app in `tools/list` and the apps
    in `resources/list`; any other client gets both as they were before the apps."""
    result = await call_next(ctx)
    if ctx.method not in ("tools/list", "resources/list") or not isinstance(result, dict):
        return result
    if ctx.method == "tools/list":
        return _link_tools(result) if client_supports_apps(ctx) else result
    return result if client_supports_apps(ctx) else _without_apps(result)


__all__ = [
    "APPS",
    "APP_MIME_TYPE",
    "EXTENSION_ID",
    "TOOL_APPS",
    "app_html",
    "extension",
    "link_tools_for_app_hosts",
]
