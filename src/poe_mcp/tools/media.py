"""Media tools: generate_image, generate_audio, generate_video, and the poe-mcp://media/{name} resource."""

from __future__ import annotations

import base64
import io
import json
import logging
import mimetypes
import re
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import (
    AudioContent,
    CallToolResult,
    ContentBlock,
    ImageContent,
    ResourceLink,
    ToolAnnotations,
)
from pydantic import BaseModel, Field

from ..conversations import MediaJob
from ..poe.media import MediaFile
from ..redaction import redact
from ..result_shapes import MEDIA_URI, MediaResult, VideoResult
from ..services.media import DEFAULT_MAX_WAIT, Generation
from ..tool_results import structured_result
from .approval import mcp_approver
from .inputs import Attachments, Confirm, MaxCostUsd, Parameters, Prompt
from .registry import ToolTable, state_of

if TYPE_CHECKING:
    from ..server import PoeMCPServer

log = logging.getLogger(__name__)

# Only what differs from MCP's defaults (not read-only, not idempotent, open world): tools/list is paid
# for in every client's context.
GENERATOR = ToolAnnotations(destructive_hint=False)
# Claude Desktop refuses a tool result over 1 MiB once encoded: the text, the structured copy and at
# most one inline preview share that budget; every file also travels as a resource_link.
RESULT_BUDGET = 1024 * 1024
RESULT_MARGIN = 16 * 1024  # JSON-RPC envelope, field names, escaping
PREVIEW_EDGE = 768
PREVIEW_MAX_PIXELS = (
    64_000_000  # a larger picture is not decoded for a preview (decompression bombs)
)
GENERATIONS_URI = "poe-mcp://generations"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


Model = Annotated[str | None, Field(description="Poe media model")]
MaxWait = Annotated[float | None, Field(description="Seconds to wait (default 50)")]


class RisingProgress:
    """MCP progress must rise with every notification, whatever the source reports; its message (a
    model name the caller gave, a job status Poe sent) never carries the key or the token."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._last = -1.0
        self._secrets = state_of(ctx).secrets

    async def __call__(self, progress: float, total: float | None, message: str) -> None:
        self._last = max(progress, self._last + 0.01)
        await self._ctx.report_progress(self._last, total, redact(message, self._secrets))


def base64_size(raw: int) -> int:
    return 4 * ((raw + 2) // 3)


def preview(path: Path) -> tuple[bytes, str] | None:
    """A JPEG at most 768 px on its longest edge, decoded from the file on disk (JPEG draft mode reads a
    reduced image), or None when the image cannot be read or is too large to decode."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(path) as image:
            if image.width * image.height > PREVIEW_MAX_PIXELS:
                return None
            image.draft("RGB", (PREVIEW_EDGE, PREVIEW_EDGE))
            image.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
            return out.getvalue(), "image/jpeg"
    except Exception as exc:  # a corrupt or exotic image loses its preview, never the file
        log.info("No preview for an image: %s", exc)
        return None


async def inline_block(file: MediaFile, room: int) -> ContentBlock | None:
    """The file itself inline when its base64 fits in `room` bytes, else (images) a preview that fits."""
    if file.kind not in ("image", "audio"):
        return None
    if base64_size(file.bytes) <= room:
        data, mime = await anyio.to_thread.run_sync(file.path.read_bytes), file.mime_type
    elif file.kind == "image" and (made := await anyio.to_thread.run_sync(preview, file.path)):
        data, mime = made
        if base64_size(len(data)) > room:
            return None
    else:
        return None
    encoded = base64.b64encode(data).decode()
    if file.kind == "image":
        return ImageContent(type="image", data=encoded, mime_type=mime)
    return AudioContent(type="audio", data=encoded, mime_type=mime)


def job_entry(job: MediaJob) -> dict[str, Any]:
    """One line of poe-mcp://generations: the job as stored, each saved file with its media URI."""
    files = [{**f, "uri": MEDIA_URI + Path(f["path"]).name} for f in job.files]
    return {**asdict(job), "job_id": job.id, "files": files}


class GenerationsResult(BaseModel):
    jobs: list[dict[str, Any]]


def generation_line(job: dict[str, Any]) -> str:
    """One job as list_generations shows it: what a model needs to fetch it or find its file."""
    files = ", ".join(f["path"] for f in job["files"])
    points = f", {job['points']:g} points" if job.get("points") is not None else ""
    running = job["status"] not in ("completed", "failed")
    where = f": {files}" if files else ""
    where += f' (generate_video(job_id="{job["job_id"]}") fetches it)' if running else ""
    prompt = f" {job['prompt'][:60]!r}" if job.get("prompt") else ""
    return f"{job['job_id']}  {job['model']}  {job['status']}{points}{prompt}{where}"


def link_for(file: MediaFile) -> ResourceLink:
    return ResourceLink(
        type="resource_link",
        uri=MEDIA_URI + file.name,
        name=file.name,
        mime_type=file.mime_type,
        size=file.bytes,
    )


def summary(generation: Generation) -> str:
    lines = [f"Saved {f.path} ({f.mime_type}, {f.bytes} bytes)" for f in generation.files]
    if generation.next_call:
        lines.append(
            f"{generation.model} job {generation.job_id} is still running at Poe "
            f"({generation.progress or 0:.0f}%). Nothing is lost: call {generation.next_call} "
            "to get its file."
        )
    elif generation.job_id:
        lines.append(f"Job {generation.job_id}" + _points(generation.points))
    lines += [f"Not downloaded: {s.url} ({s.reason})" for s in generation.skipped]
    if generation.text:
        lines.append(generation.text)
    return "\n".join(lines)


def _points(points: float | None) -> str:
    return f" used {points:g} points." if points is not None else "."


async def media_result(
    generation: Generation, shape: type[MediaResult] = MediaResult
) -> CallToolResult:
    """Text, structured copy, one inline preview at most (sized to fit the 1 MiB budget), then links."""
    text = summary(generation)
    structured = shape.of(generation).model_dump()
    blocks = await file_blocks(
        generation.files, len(json.dumps(structured)) + len(json.dumps(text))
    )
    return structured_result(text, structured, extra=blocks)


async def file_blocks(files: list[MediaFile], used: int) -> list[ContentBlock]:
    """One inline preview at most, sized so the result stays under 1 MiB with the `used` bytes of text
    and structured copy, then a resource_link for every file."""
    links: list[ContentBlock] = [link_for(f) for f in files]
    used += RESULT_MARGIN + sum(len(link.model_dump_json()) for link in links)
    # Only the first image or audio is shown inline; the others, like it, travel as links.
    first = next((f for f in files if f.kind in ("image", "audio")), None)
    preview_block = await inline_block(first, RESULT_BUDGET - used) if first is not None else None
    return ([preview_block] if preview_block else []) + links


def media_path(output_dir: Path, name: str) -> Path:
    """The saved file called `name`; names that try to leave the output folder are refused."""
    path = (output_dir / name).resolve()
    if not _SAFE_NAME.match(name) or path.parent != output_dir.resolve() or not path.is_file():
        raise ResourceNotFoundError(f"No media file named {name!r}")
    return path


tool = ToolTable()


async def generate(
    ctx: Context,
    kind: str,
    prompt: str,
    model: str | None,
    parameters: dict[str, Any] | None,
    attachments: list[str] | None,
    max_cost_usd: float | None,
    confirm: bool | None,
) -> CallToolResult:
    state = state_of(ctx)
    generation = await state.media.generate(
        kind,
        prompt,
        model,
        parameters or {},
        attachments or [],
        RisingProgress(ctx),
        max_cost_usd=max_cost_usd,
        approver=mcp_approver(ctx, confirm),
    )
    return await media_result(generation)


@tool(title="Generate an image", annotations=GENERATOR)
async def generate_image(
    prompt: Prompt,
    ctx: Context,
    model: Model = None,
    parameters: Parameters = None,
    attachments: Attachments = None,
    max_cost_usd: MaxCostUsd = None,
    confirm: Confirm = None,
) -> Annotated[CallToolResult, MediaResult]:
    """Make an image with a Poe image model (default GPT-Image-1); returns it and a saved file."""
    return await generate(
        ctx, "image", prompt, model, parameters, attachments, max_cost_usd, confirm
    )


@tool(title="Generate audio", annotations=GENERATOR)
async def generate_audio(
    prompt: Prompt,
    ctx: Context,
    model: Model = None,
    parameters: Parameters = None,
    max_cost_usd: MaxCostUsd = None,
    confirm: Confirm = None,
) -> Annotated[CallToolResult, MediaResult]:
    """Speech or sound with a Poe audio model (default ElevenLabs-v2.5-Turbo); saved to a file."""
    return await generate(ctx, "audio", prompt, model, parameters, None, max_cost_usd, confirm)


@tool(title="Generate a video", annotations=GENERATOR)
async def generate_video(
    ctx: Context,
    prompt: Annotated[str | None, Field(description="Required unless job_id")] = None,
    model: Model = None,
    seconds: Annotated[int | None, Field(description="Length, s")] = None,
    size: Annotated[str | None, Field(description="WxH, e.g. 1280x720")] = None,
    max_wait: MaxWait = None,
    job_id: Annotated[str | None, Field(description="Resume this job")] = None,
    parameters: Parameters = None,
    attachments: Attachments = None,
    reference: Annotated[str | None, Field(description="Reference image")] = None,
    max_cost_usd: MaxCostUsd = None,
    confirm: Confirm = None,
) -> Annotated[CallToolResult, VideoResult]:
    """Make a video (default Veo-3), saved to a file; past max_wait, a job_id to call again with."""
    media = state_of(ctx).media
    wait = DEFAULT_MAX_WAIT if max_wait is None else max(max_wait, 0.0)
    if job_id is not None:
        generation = await media.fetch_job(job_id, RisingProgress(ctx), wait)
    else:
        generation = await media.generate(
            "video",
            prompt or "",
            model,
            parameters or {},
            attachments or [],
            RisingProgress(ctx),
            seconds=seconds,
            size=size,
            max_wait=wait,
            reference=reference,
            max_cost_usd=max_cost_usd,
            approver=mcp_approver(ctx, confirm),
        )
    return await media_result(generation, VideoResult)


@tool(
    title="List recent video jobs",
    annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
)
async def list_generations(
    ctx: Context, limit: Annotated[int, Field(ge=1, le=200, description="Max jobs")] = 20
) -> Annotated[CallToolResult, GenerationsResult]:
    """Recent video jobs, newest first: job_id, status, points, saved files."""
    jobs = [job_entry(job) for job in await state_of(ctx).media.list_jobs(limit)]
    lines = [generation_line(job) for job in jobs]
    return structured_result(
        "\n".join(lines) or "No video jobs yet.", GenerationsResult(jobs=jobs).model_dump()
    )


def register(mcp: PoeMCPServer) -> None:
    tool.register(mcp)

    @mcp.resource(
        GENERATIONS_URI,
        name="generations",
        title="Recent video jobs",
        mime_type="application/json",
    )
    async def generations_resource() -> str:
        """Recent video jobs, newest first: job_id, model, prompt, status, points, saved files."""
        jobs = await mcp.state.media.list_jobs(50)
        return json.dumps([job_entry(job) for job in jobs])

    @mcp.resource(
        MEDIA_URI + "{name}",
        name="media",
        title="Generated media",
        mime_type="application/octet-stream",
    )
    async def media_resource(name: str) -> bytes:
        path = media_path(mcp.state.settings.output_dir, name)
        return await anyio.to_thread.run_sync(path.read_bytes)


def media_mime(uri: str) -> str | None:
    """The MIME type of a saved media file, from the extension it was saved with."""
    if not uri.startswith(MEDIA_URI):
        return None
    return mimetypes.guess_type(uri[len(MEDIA_URI) :])[0] or "application/octet-stream"
