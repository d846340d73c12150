"""MCP tasks (io.modelcontextprotocol/tasks, SEP-2663) for generate_video, through the SDK's own client:
a client that declares the extension gets a task it polls with tasks/get (or cancels); others get
the max_wait / job_id behaviour."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from conftest import connect
from fakepoe import MP4, FakePoe
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult, TextContent
from mcp_types import CallToolResult, RequestParams, Result
from mcp_types import Request as McpRequest
from pydantic import ConfigDict, Field

from poe_mcp.server import build_server
from poe_mcp.tasks import TASKS

pytestmark = pytest.mark.anyio


class CreateTask(Result):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str
    ttl_ms: int | None = Field(alias="ttlMs")
    poll_interval_ms: int | None = Field(default=None, alias="pollIntervalMs")
    created_at: str = Field(alias="createdAt")


class TaskIdParams(RequestParams):
    model_config = ConfigDict(populate_by_name=True)
    task_id: str = Field(alias="taskId")


class DetailedTask(Result):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: str = Field(alias="taskId")
    status: str
    status_message: str | None = Field(default=None, alias="statusMessage")
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class GetTask(McpRequest[TaskIdParams, Literal["tasks/get"]]):
    name_param = "taskId"


class CancelTask(McpRequest[TaskIdParams, Literal["tasks/cancel"]]):
    name_param = "taskId"


class Ack(Result):
    model_config = ConfigDict(extra="allow")


async def get_task(session: Any, task_id: str) -> DetailedTask:
    request = GetTask(method="tasks/get", params=TaskIdParams(task_id=task_id))
    return await session.send_request(request, DetailedTask)


class PollingTasks(ClientExtension):
    """The tasks extension as a client implements it: poll tasks/get until the task ends."""

    identifier = TASKS

    def __init__(self) -> None:
        self.seen: list[str] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTask, resolve=self.resolve)]

    async def resolve(self, created: CreateTask, ctx: ClaimContext) -> CallToolResult:
        self.seen.append(created.status)
        while True:
            task = await get_task(ctx.session, created.task_id)
            self.seen.append(task.status)
            if task.status in ("completed", "failed", "cancelled"):
                break
            await anyio.sleep(0.05)
        assert task.result is not None, task
        return CallToolResult.model_validate(task.result)


async def test_a_declaring_client_gets_a_task_and_polls_it_to_the_saved_mp4(
    settings: Any, fake: FakePoe
) -> None:
    fake.video_steps = 4
    tasks = PollingTasks()
    server = build_server(replace(settings, video_poll_interval=0.05))
    async with Client(server, mode="auto", extensions=[tasks]) as client:  # type: ignore[arg-type]
        result = await client.call_tool("generate_video", {"prompt": "a wave", "max_wait": 30})
    assert not result.is_error, result.content[0].text
    assert tasks.seen[0] == "working" and tasks.seen[-1] == "completed"
    [saved] = result.structured_content["files"]
    assert saved["mime_type"] == "video/mp4" and result.structured_content["status"] == "completed"
    assert Path(saved["path"]).read_bytes() == MP4


async def test_a_task_waits_past_max_wait_for_the_whole_job(settings: Any, fake: FakePoe) -> None:
    fake.video_steps = 6  # 6 polls at 0.05 s: longer than a max_wait of 0 would allow
    tasks = PollingTasks()
    server = build_server(replace(settings, video_poll_interval=0.05))
    async with Client(server, mode="auto", extensions=[tasks]) as client:  # type: ignore[arg-type]
        result = await client.call_tool("generate_video", {"prompt": "a wave"})
    assert result.structured_content["status"] == "completed", result.content[0].text
    assert "working" in tasks.seen[1:-1], "the client polled while the job ran"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_without_the_extension_gets_max_wait_and_a_job_id(
    settings: Any, fake: FakePoe, mode: str
) -> None:
    fake.video_steps = 1000
    async with connect(settings, mode, video_poll_interval=0.05) as client:
        result = await client.call_tool("generate_video", {"prompt": "slow", "max_wait": 0.2})
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    assert data["status"] == "in_progress" and data["job_id"].startswith("video_")
    assert data["next_call"] == f'generate_video(job_id="{data["job_id"]}")'


async def test_cancelling_a_task_says_the_job_runs_on_and_how_to_fetch_it(
    settings: Any, fake: FakePoe
) -> None:
    fake.video_steps = 10_000
    server = build_server(replace(settings, video_poll_interval=0.05))
    async with Client(server, mode="auto", extensions=[PollingTasks()]) as client:  # type: ignore[arg-type]
        created = await client.session.call_tool(
            "generate_video", {"prompt": "long"}, allow_claimed=True
        )
        assert isinstance(created, CreateTask) and created.status == "working"
        assert created.ttl_ms and created.poll_interval_ms
        with anyio.fail_after(5):
            while "job" not in (
                (await get_task(client.session, created.task_id)).status_message or ""
            ):
                await anyio.sleep(0.05)
        ack = await client.session.send_request(
            CancelTask(method="tasks/cancel", params=TaskIdParams(task_id=created.task_id)), Ack
        )
        task = await get_task(client.session, created.task_id)
        polls = len(fake.requests)
        await anyio.sleep(0.3)
    acked = ack.model_dump(exclude_none=True)
    assert acked.pop("resultType") == "complete" and set(acked) <= {"meta"}, "an empty ack"
    assert task.status == "cancelled" and task.result is None
    [job] = list(fake.videos)
    assert f'generate_video(job_id="{job}")' in (task.status_message or "")
    assert not [r for r in fake.requests if r["method"] == "DELETE"], "Poe has no cancel"
    assert len(fake.requests) == polls, "cancelling stopped the polling"


async def test_tasks_methods_need_the_extension_and_a_known_task(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        with pytest.raises(MCPError) as undeclared:
            await get_task(client.session, "task-x")
    server = build_server(settings)
    async with Client(server, mode="auto", extensions=[PollingTasks()]) as client:  # type: ignore[arg-type]
        with pytest.raises(MCPError) as unknown:
            await get_task(client.session, "task-x")
        caps = (await client.session.discover()).capabilities
    assert undeclared.value.code == -32021 and unknown.value.code == -32602
    assert caps.extensions is not None and TASKS in caps.extensions


class GetTaskWithoutName(McpRequest[TaskIdParams, Literal["tasks/get"]]):
    """tasks/get as a client that forgets SEP-2663's routing header sends it."""


async def test_tasks_over_http_poll_to_completion_and_need_their_mcp_name(
    fake: FakePoe, tmp_path: Path
) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client
    from servers import TOKEN, http_replica

    fake.video_steps = 1  # done at the first poll, 5 s in (the served poll interval)
    tasks = PollingTasks()
    with http_replica(fake, tmp_path) as url:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        async with Client(
            streamable_http_client(url, http_client=http), extensions=[tasks]
        ) as client:
            result = await client.call_tool("generate_video", {"prompt": "a wave"})
            task_id = next(iter(fake.videos))  # any id: the header check comes before the lookup
            with pytest.raises(MCPError) as nameless:
                await client.session.send_request(
                    GetTaskWithoutName(method="tasks/get", params=TaskIdParams(task_id=task_id)),
                    DetailedTask,
                )
    assert result.structured_content["status"] == "completed", result.content[0].text
    assert tasks.seen[0] == "working" and tasks.seen[-1] == "completed"
    assert nameless.value.code == -32020


class UpdateParams(TaskIdParams):
    input_responses: dict[str, Any] = Field(alias="inputResponses")


class UpdateTask(McpRequest[UpdateParams, Literal["tasks/update"]]):
    name_param = "taskId"


async def test_a_task_that_asks_waits_for_tasks_update_key_by_key(settings: Any) -> None:
    """A tool that answers input_required inside a task parks it; each tasks/update removes what it
    answers, and the call resumes with every answer once none is pending."""
    server = build_server(settings)
    schema = {"type": "object", "properties": {"v": {"type": "string"}}}

    @server.tool(description="Asks two things")
    def two_questions(ctx: Context) -> Any:
        got = ctx.input_responses or {}
        if not {"a", "b"} <= set(got):
            ask = ElicitRequestFormParams(message="?", requested_schema=schema)
            return InputRequiredResult(
                input_requests={k: ElicitRequest(params=ask) for k in ("a", "b")}
            )
        values = [got[k].model_dump(mode="json")["content"]["v"] for k in ("a", "b")]
        return CallToolResult(content=[TextContent(type="text", text="+".join(values))])

    server.tasks.task_tools["two_questions"] = "optional"

    async def update(client: Client, task_id: str, key: str, value: str) -> None:
        answer = {key: {"action": "accept", "content": {"v": value}}}
        params = UpdateParams(task_id=task_id, input_responses=answer)
        await client.session.send_request(UpdateTask(method="tasks/update", params=params), Ack)

    async with Client(server, mode="auto", extensions=[PollingTasks()]) as client:  # type: ignore[arg-type]
        created = await client.session.call_tool("two_questions", {}, allow_claimed=True)
        assert isinstance(created, CreateTask)
        with anyio.fail_after(5):
            while (
                asked := await get_task(client.session, created.task_id)
            ).status != "input_required":
                await anyio.sleep(0.02)
        await update(client, created.task_id, "a", "one")
        half = await get_task(client.session, created.task_id)
        await update(client, created.task_id, "b", "two")
        with anyio.fail_after(5):
            while (
                done := await get_task(client.session, created.task_id)
            ).status == "input_required":
                await anyio.sleep(0.02)
            while done.status == "working":
                done = await get_task(client.session, created.task_id)
    assert set((asked.model_extra or {})["inputRequests"]) == {"a", "b"}
    assert half.status == "input_required" and set((half.model_extra or {})["inputRequests"]) == {
        "b"
    }
    assert done.status == "completed" and done.result is not None
    assert done.result["content"][0]["text"] == "one+two"
