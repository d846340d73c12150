"""The MCP server: its state, its lifespan, and how failures become tool results."""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp.server.mcpserver.server as sdk_server
from mcp.server import MCPServer
from mcp.server.caching import CacheableMethod, CacheHint, apply_cache_hint
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ReadResourceResult, ToolAnnotations
from pydantic import ValidationError

from . import __version__, apps, tasks
from .config import Settings
from .icons import SERVER_ICONS, tool_icons
from .poe.errors import InternalError, InvalidRequestError, PoeError, poe_error_in
from .redaction import redact_result
from .services.shared import Services, open_services
from .tool_results import error_result, input_needed_in

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "poe-mcp reaches every model on Poe. Use ask_poe for a question to any model (keep session_id to continue "
    "a conversation), ask_poe_with_tools for function calling, list_models to find a model, get_usage for the balance."
)


def _describe_validation(error: ValidationError) -> str:
    problems = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


def _noise(key: str, value: Any) -> bool:
    """Schema keywords that say nothing a client needs: generated titles, JSON Schema's own defaults."""
    return (
        (key == "title" and isinstance(value, str))
        or (key == "default" and value is None)
        or (key == "additionalProperties" and value is True)
    )


def compact_input_schema(schema: Any) -> Any:
    """Drop noise; an optional `anyOf: [X, null]` is just X (omitting the argument is the null)."""
    if isinstance(schema, list):
        return [compact_input_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: compact_input_schema(v) for k, v in schema.items() if not _noise(k, v)}
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == 1:
            out.pop("anyOf")
            out.update(rest[0])
        else:  # kept as anyOf branches of one type each: a `type` array is less portable (Gemini)
            out["anyOf"] = rest
    return out


# The MCP spec's values for a hint a tool leaves out: sending them again says nothing, at 20 bytes each.
DEFAULT_HINTS = {
    "read_only_hint": False,
    "destructive_hint": True,
    "idempotent_hint": False,
    "open_world_hint": True,
}


def without_default_hints(annotations: ToolAnnotations | None) -> ToolAnnotations | None:
    if annotations is None:
        return None
    return annotations.model_copy(
        update={k: None for k, v in DEFAULT_HINTS.items() if getattr(annotations, k) == v}
    )


def bare_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`{"type": "object"}`: every result's structuredContent is an object, and its fields are in the text
    and the README. Listing them cost 2.6 KB of every client's context (a model reads structuredContent
    itself, never its schema), and their nullable types were the Inspector's 28 portability warnings."""
    return {"type": "object"} if schema.get("type") == "object" else schema


# tools/list, resources/list and the rest never change while a process runs; none depends on who asks.
STATIC = CacheHint(ttl_ms=3_600_000, scope="public")
CACHE_HINTS: dict[CacheableMethod, CacheHint] = {
    "tools/list": STATIC,
    "resources/list": STATIC,
    "resources/templates/list": STATIC,
    "prompts/list": STATIC,
    "server/discover": STATIC,
}
MEDIA_TTL_MS = 86_400_000  # a saved file never changes under its name


def resource_cache_hint(uri: str, catalog_fresh_for: float) -> CacheHint:
    """The catalog is public and fresh for as long as this process keeps its copy; a saved media file never
    changes, but it is one user's, so it is cached privately."""
    if uri.startswith("poe://models"):
        return CacheHint(ttl_ms=int(catalog_fresh_for * 1000), scope="public")
    return CacheHint(ttl_ms=MEDIA_TTL_MS, scope="private")


class PoeMCPServer(MCPServer[Services]):
    """MCPServer whose failures read like Poe's own errors: `type (status): message. advice`."""

    # Set by the lifespan; resources (which get no Context) reach the shared state through it.
    _state: Services

    @property
    def state(self) -> Services:
        """This request's view of the services: in hosted mode, the signed-in user's own."""
        return self._state.current()

    @state.setter
    def state(self, services: Services) -> None:
        self._state = services

    @property
    def base_state(self) -> Services:
        """The process's own services, whoever asks (health, not anyone's data)."""
        return self._state

    # The tasks extension: which tools a declaring client gets as tasks (tests add their fixtures).
    tasks: tasks.TasksExtension
    # Inputs accepted but not listed: `confirm` counts only under POE_MCP_ALLOW_CONFIRM_ARGUMENT=1, so
    # otherwise its 440 bytes (six tools) would tell every client's model of an input that does nothing.
    unlisted_inputs: frozenset[str] = frozenset()
    # POE_MCP_TOOL_ICONS=1: each tool's icon in tools/list (icons.py says why it is off by default).
    with_tool_icons: bool = False

    async def run_stdio_async(self) -> None:
        from .stdio import stdio_transport

        async with stdio_transport() as (read_stream, write_stream):
            lowlevel = self._lowlevel_server
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    async def list_tools(self) -> list[Any]:
        # Clients pay for every byte of tools/list in context, so send the schemas without pydantic's noise.
        tools = await super().list_tools()
        for tool in tools:
            tool.input_schema = compact_input_schema(tool.input_schema)
            for name in self.unlisted_inputs:
                tool.input_schema.get("properties", {}).pop(name, None)
            if tool.output_schema is not None:
                tool.output_schema = bare_output_schema(tool.output_schema)
            tool.annotations = without_default_hints(tool.annotations)
            if self.with_tool_icons:
                tool.icons = tool_icons(tool.name)
        return tools

    async def _handle_read_resource(self, ctx: Any, params: Any) -> Any:
        result = await super()._handle_read_resource(ctx, params)
        if isinstance(result, ReadResourceResult):
            hint = resource_cache_hint(str(params.uri), self.state.poe.catalog.fresh_for())
            result = apply_cache_hint(result, hint)
        return result

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        contents = await super().read_resource(uri, context)
        from .tools.media import media_mime

        mime = media_mime(str(uri))  # one template serves every saved file: give each its own type
        if mime is not None and isinstance(contents, list):
            contents = [dataclasses.replace(c, mime_type=mime) for c in contents]
        return contents

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """The one error boundary of every tool: a PoeError, bare, chained or inside an ExceptionGroup, becomes
        the `isError` result `type (status): message. advice`; any other exception is a bug of ours, which
        becomes a one-line `internal_error` (its traceback goes to the log, never to the client)."""
        try:
            # Success results too: an echoing model sends back a key the caller pasted into a prompt.
            return redact_result(
                await super().call_tool(name, arguments, context), self.state.secrets
            )
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                error: PoeError = InvalidRequestError(
                    f"Invalid arguments for {name}: {_describe_validation(exc.__cause__)}",
                    advice="Fix the arguments (see the tool's input schema) and call again; nothing was sent to Poe.",
                )
            elif exc.__cause__ is None:
                raise  # the SDK's own refusal (an unknown tool): its text already says what is wrong
            elif (needed := input_needed_in(exc.__cause__)) is not None:
                return needed.result  # the person is asked first (MRTR); nothing was sent
            else:
                error = poe_error_in(exc.__cause__) or self._internal_error(name, exc.__cause__)
            log.info("%s failed: %s", name, error.type)
            return error_result(error, self.state.secrets)

    @staticmethod
    def _internal_error(name: str, cause: BaseException) -> InternalError:
        log.error("%s failed unexpectedly", name, exc_info=cause)
        return InternalError(f"{name} failed unexpectedly ({type(cause).__name__})")


WARM_UP_DELAY = 0.3  # let the client's initialize and tools/list go first


async def _warm_up(services: Services) -> None:
    await anyio.sleep(WARM_UP_DELAY)
    try:
        await services.poe.warm_up()
        # What is alive now (modules, the SDK's schemas, the parsed catalog) lives as long as the
        # process: freezing it keeps the collector's full passes from rescanning it. Without this a
        # full pass over it cost ~100 ms, which was list_models' p95.
        gc.freeze()
    except (
        Exception
    ) as error:  # a warm-up is an optimisation: the first call does the same work and reports
        log.debug("Warm-up skipped: %s", error)


def build_server(settings: Settings) -> PoeMCPServer:
    """The whole MCP server for these settings, with every tool and resource registered."""
    # The SDK sets up logging of its own in MCPServer(), importing rich when it is installed (50 ms of
    # cold start, and a second handler); poe-mcp configures stderr logging itself (cli.setup_logging).
    sdk_server.configure_logging = lambda level="INFO": None

    long_calls = tasks.extension()

    @asynccontextmanager
    async def lifespan(_: MCPServer[Services]) -> AsyncIterator[Services]:
        async with (
            open_services(settings, settings.transport) as services,
            long_calls.running(),  # a task's call outlives the request that started it
            anyio.create_task_group() as background,
        ):
            background.start_soon(_warm_up, services)
            server.state = services
            yield services
            background.cancel_scope.cancel()

    auth: dict[str, Any] = {}
    if settings.auth == "oauth" and settings.transport == "http":  # hosted: see hosted/oauth.py
        from .hosted.oauth import oauth_server_options

        auth = oauth_server_options(settings)
    server = PoeMCPServer(
        "poe-mcp",
        title="Poe",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://poe.com",
        icons=SERVER_ICONS,
        cache_hints=CACHE_HINTS,
        lifespan=lifespan,
        log_level=settings.log_level,  # type: ignore[arg-type]
        extensions=[apps.extension(), long_calls],
        middleware=[apps.link_tools_for_app_hosts],
        **auth,
    )
    server.tasks = long_calls
    if not settings.allow_confirm_argument:
        server.unlisted_inputs = frozenset({"confirm"})
    server.with_tool_icons = settings.tool_icons
    from .tools import account, chat, media, models

    for family in (chat, media, models, account):
        family.register(server)
    if settings.compat != "none":
        from . import compat

        compat.register(server)
    return server


__all__ = ["PoeMCPServer", "build_server"]
