"""MCP tasks (the `io.modelcontextprotocol/tasks` extension of 2026-07-28, SEP-2663) for long tool calls.

Built on the SDK's extension API (`mcp.server.extension`): `intercept_tool_call` answers a
`tools/call` of a task tool with a `CreateTaskResult` (`resultType: "task"`) and runs the call in the
background; `tasks/get`, `tasks/update` and `tasks/cancel` are `MethodBinding`s. Only a client that
declares the extension (in the request's `_meta` client capabilities, 2026-07-28 only) gets a task;
every other client gets the call as it always ran (generate_video's `max_wait` and `job_id`).

Tasks live in this process's memory for `ttlMs` after their last update: `tasks/get` on another
replica answers "unknown task". A video job is never lost with it: its job_id is in the shared store,
and `generate_video(job_id=…)` fetches it from any replica.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

import anyio
from anyio.abc import TaskGroup
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.server import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import decode_header_value
from mcp_types import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallToolRequestParams,
    InputRequiredResult,
    RequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

TASKS = "io.modelcontextprotocol/tasks"
TERMINAL = ("completed", "failed", "cancelled")
TTL_MS = 3_600_000  # a finished task stays readable for an hour after its last update
POLL_MS = 1000
# A video job inside a task may take as long as Poe takes; the task, not max_wait, bounds the wait.
TASK_MAX_WAIT = 3600.0
_JOB = re.compile(r"\bjob (\S+):")

# "optional": a task for clients that declare the extension, a plain call for the others;
# "required": clients that do not declare it are refused with -32021.
Support = Literal["optional", "required"]


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Task:
    id: str
    tool: str
    status: str = "working"
    message: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    # While input_required: the requests still unanswered (wire form), and the answers so far.
    asking: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    answered: anyio.Event = field(default_factory=anyio.Event)

    def update(self, status: str | None = None, message: str | None = None) -> None:
        self.status = status or self.status
        self.message = message if message is not None else self.message
        self.updated_at = time.time()

    def wire(self, detailed: bool = False) -> dict[str, Any]:
        """The Task fields; `detailed` (tasks/get) adds the inlined result or error once terminal."""
        out: dict[str, Any] = {
            "taskId": self.id,
            "status": self.status,
            "createdAt": _iso(self.created_at),
            "lastUpdatedAt": _iso(self.updated_at),
            "ttlMs": TTL_MS,
            "pollIntervalMs": POLL_MS,
        }
        if self.message:
            out["statusMessage"] = self.message
        if detailed and self.status == "input_required":
            out["inputRequests"] = dict(self.asking)
        if detailed and self.result is not None:
            out["result"] = self.result
        if detailed and self.error is not None:
            out["error"] = self.error
        return out


class TaskParams(RequestParams):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: str = Field(alias="taskId")


class UpdateParams(TaskParams):
    input_responses: dict[str, Any] | None = Field(default=None, alias="inputResponses")


class _ProgressToTask:
    """The request session as a background call sees it: progress becomes the task's status message
    (the request that would carry progress notifications has already been answered)."""

    def __init__(self, session: Any, task: Task) -> None:
        self._session = session
        self._task = task

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        self._task.update(message=message)


class TasksExtension(Extension):
    identifier = TASKS

    def __init__(
        self,
        tools: dict[str, Support] | None = None,
        arguments: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.task_tools: dict[str, Support] = dict(tools or {})
        # Tools that gather input by multi-round trips first: a call without inputResponses runs as
        # an ordinary call, the final round (with them) becomes the task (SEP-2663's composition).
        self.ask_first: set[str] = set()
        # Adjusts a task call's arguments before it runs (generate_video waits for the whole job).
        self.arguments = arguments
        self._tasks: dict[str, Task] = {}
        self._group: TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The process-long task group background calls run in; entered by the server's lifespan."""
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield
            finally:
                self._group = None
                group.cancel_scope.cancel()

    def methods(self) -> list[MethodBinding]:
        versions = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding("tasks/get", TaskParams, self._get, versions),
            MethodBinding("tasks/update", UpdateParams, self._update, versions),
            MethodBinding("tasks/cancel", TaskParams, self._cancel, versions),
        ]

    async def intercept_tool_call(
        self,
        params: CallToolRequestParams,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> HandlerResult:
        support = self.task_tools.get(params.name)
        if support is None:
            return await call_next(ctx)
        declared = _declares(ctx)
        if support == "required" and not declared:
            require_client_extension(ctx, TASKS)  # raises -32021 naming the extension
        if not declared or self._group is None:
            return await call_next(ctx)
        if params.name in self.ask_first and not params.input_responses:
            return await call_next(ctx)
        self._expire()
        task = Task("task-" + secrets.token_urlsafe(12), params.name)
        self._tasks[task.id] = task  # stored before the answer: an immediate tasks/get finds it
        if self.arguments is not None:
            params.arguments = dict(params.arguments or {})
            self.arguments(params.name, params.arguments)
        background = dataclasses.replace(ctx, session=cast(Any, _ProgressToTask(ctx.session, task)))
        self._group.start_soon(self._run, task, call_next, background, params)
        return {"resultType": "task", **task.wire()}

    async def _run(
        self,
        task: Task,
        call_next: Callable[[Any], Awaitable[HandlerResult]],
        ctx: ServerRequestContext[Any, Any],
        params: CallToolRequestParams,
    ) -> None:
        with task.scope:
            try:
                result = await call_next(ctx)
                while isinstance(result, InputRequiredResult):  # the call asks: the task waits
                    await self._ask(task, result)
                    answered = {"name": params.name, "inputResponses": task.answers}
                    params.input_responses = CallToolRequestParams.model_validate(
                        answered
                    ).input_responses
                    params.request_state = result.request_state
                    task.update("working")
                    result = await call_next(ctx)  # the same call again, now with its answers
            except MCPError as error:
                task.error = error.error.model_dump(by_alias=True, mode="json", exclude_none=True)
                task.update("failed")
                return
            except Exception as error:  # a bug: the task fails, the process serves on
                log.error("Task %s (%s) failed", task.id, task.tool, exc_info=error)
                task.error = {"code": INTERNAL_ERROR, "message": f"{type(error).__name__}"}
                task.update("failed")
                return
            task.result = _dump(result)
            task.update("completed")
        if task.scope.cancelled_caught and task.status not in TERMINAL:
            task.update("cancelled", _cancelled_message(task))

    @staticmethod
    async def _ask(task: Task, asked: InputRequiredResult) -> None:
        """Park the task in input_required until tasks/update has answered every request."""
        dumped = asked.model_dump(by_alias=True, mode="json", exclude_none=True)
        task.asking = dict(dumped.get("inputRequests") or {})
        task.answers, task.answered = {}, anyio.Event()
        task.update("input_required")
        await task.answered.wait()

    def _find(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> Task:
        require_client_extension(ctx, TASKS)
        self._expire()
        task = self._tasks.get(task_id)
        if task is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown task {task_id!r}")
        return task

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> HandlerResult:
        return self._find(ctx, params.task_id).wire(detailed=True)

    async def _update(
        self, ctx: ServerRequestContext[Any, Any], params: UpdateParams
    ) -> HandlerResult:
        task = self._find(ctx, params.task_id)
        for key, answer in (params.input_responses or {}).items():
            if key in task.asking:  # answers to what was not asked are ignored
                del task.asking[key]
                task.answers[key] = answer
        if task.status == "input_required" and not task.asking:
            task.answered.set()
        task.update()
        return {}

    async def _cancel(
        self, ctx: ServerRequestContext[Any, Any], params: TaskParams
    ) -> HandlerResult:
        task = self._find(ctx, params.task_id)
        if task.status not in TERMINAL:
            task.update("cancelled", _cancelled_message(task))
            task.scope.cancel()
        return {}

    def _expire(self) -> None:
        now = time.time()
        for task_id in [
            t.id
            for t in self._tasks.values()
            if t.status in TERMINAL and now - t.updated_at > TTL_MS / 1000
        ]:
            del self._tasks[task_id]


def _declares(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's client declared the tasks extension (a 2026-07-28 request's envelope)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False  # a claimed result cannot travel on a 2025 wire
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and TASKS in capabilities.extensions)


def _dump(result: HandlerResult) -> dict[str, Any] | None:
    if isinstance(result, BaseModel):
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    else:
        dumped = dict(result or {})
    dumped.pop("resultType", None)
    return dumped


def _cancelled_message(task: Task) -> str:
    """What cancelling leaves behind: a video job Poe cannot cancel runs on, and stays fetchable."""
    found = _JOB.search(task.message or "")
    if task.tool == "generate_video" and found:
        job = found.group(1)
        return (
            f"Cancelled. Poe cannot cancel video job {job}: it runs on (and is paid for); "
            f'generate_video(job_id="{job}") fetches it.'
        )
    return "Cancelled."


def video_task_arguments(tool: str, arguments: dict[str, Any]) -> None:
    """generate_video inside a task waits for the whole job unless the caller set max_wait."""
    if tool == "generate_video" and arguments.get("max_wait") is None:
        arguments["max_wait"] = TASK_MAX_WAIT


def extension() -> TasksExtension:
    """poe-mcp's tasks: generate_video, for clients that declare the extension."""
    return TasksExtension({"generate_video": "optional"}, video_task_arguments)


class TaskNameHeader:
    """ASGI: a 2026 `tasks/*` request must carry `Mcp-Name: <taskId>` (SEP-2663's routing header), as
    the SDK checks it for tools/call; a missing or different one is HTTP 400 with -32020. Only requests
    whose `Mcp-Method` names a tasks method are read here (the SDK holds that header to the body)."""

    METHODS = (b"tasks/get", b"tasks/update", b"tasks/cancel")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or ()) if scope["type"] == "http" else {}
        if headers.get(b"mcp-method") not in self.METHODS:
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        refusal = _name_refusal(body, headers.get(b"mcp-name"))
        if refusal is not None:
            await _reject(send, *refusal)
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _name_refusal(body: bytes, header: bytes | None) -> tuple[Any, str] | None:
    try:
        message = json.loads(body)
        task_id = message["params"]["taskId"]
    except (ValueError, KeyError, TypeError):
        return None  # not a well-formed tasks request: the SDK's own checks answer it
    given = decode_header_value(header.decode("latin-1")) if header is not None else None
    if given == task_id:
        return None
    return message.get("id"), "Mcp-Name header does not match the request body's 'taskId' parameter"


async def _reject(send: Any, request_id: Any, text: str) -> None:
    payload = {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": HEADER_MISMATCH, "message": text},
    }
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
