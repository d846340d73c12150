"""Media tools: generate_image, generate_audio, generate_video, and the poe-mcp://media/{name} resource."""

from __future__ import annotations

import base64
import io
import logging
import mimetypes
import re
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import (
    AudioContent,
    CallToolResult,
    ContentBlock,
    ImageContent,
    ResourceLink,
    ToolAnnotations,
)
from pydantic import Field

from ..generate import Generation
from ..outputs import MEDIA_URI, MediaResult
from ..poe.media import MediaFile
from ..results import structured_result
from ..server import PoeMCPServer, state_of
from .inputs import Attachments, Parameters, Prompt

log = logging.getLogger("poe_mcp.tools.media")

GENERATOR = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
INLINE_LIMIT = 1_000_000  # larger files travel as a link (images also as a preview)
PREVIEW_EDGE = 768
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


Model = Annotated[str | None, Field(description="Poe media model")]


class RisingProgress:
    """MCP progress must rise with every notification, whatever the source reports."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._last = -1.0

    async def __call__(self, progress: float, total: float | None, message: str) -> None:
        self._last = max(progress, self._last + 0.01)
        await self._ctx.report_progress(self._last, total, message)


def preview(data: bytes) -> tuple[bytes, str] | None:
    """A JPEG at most 768 px on its longest edge, or None when the image cannot be read."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
            return out.getvalue(), "image/jpeg"
    except Exception as exc:  # a corrupt or exotic image loses its preview, never the file
        log.info("No preview for an image: %s", exc)
        return None


async def blocks_for(file: MediaFile) -> list[ContentBlock]:
    """Inline content a client can show (image, or audio under 1 MB), then a link to the whole file."""
    blocks: list[ContentBlock] = []
    if file.kind == "image":
        data = await anyio.to_thread.run_sync(file.path.read_bytes)
        inline = (
            (data, file.mime_type)
            if file.bytes <= INLINE_LIMIT
            else await anyio.to_thread.run_sync(preview, data)
        )
        if inline:
            blocks.append(
                ImageContent(
                    type="image", data=base64.b64encode(inline[0]).decode(), mime_type=inline[1]
                )
            )
    elif file.kind == "audio" and file.bytes <= INLINE_LIMIT:
        data = await anyio.to_thread.run_sync(file.path.read_bytes)
        blocks.append(
            AudioContent(
                type="audio", data=base64.b64encode(data).decode(), mime_type=file.mime_type
            )
        )
    blocks.append(
        ResourceLink(
            type="resource_link",
            uri=MEDIA_URI + file.name,
            name=file.name,
            mime_type=file.mime_type,
            size=file.bytes,
        )
    )
    return blocks


def summary(generation: Generation) -> str:
    lines = [f"Saved {f.path} ({f.mime_type}, {f.bytes} bytes)" for f in generation.files]
    if not generation.files:
        lines.append(f"{generation.model} answered without media.")
    lines += [f"Not downloaded: {s.url} ({s.reason})" for s in generation.skipped]
    if generation.text:
        lines.append(generation.text)
    return "\n".join(lines)


async def media_result(generation: Generation) -> CallToolResult:
    blocks: list[ContentBlock] = []
    for file in generation.files:
        blocks += await blocks_for(file)
    return structured_result(
        summary(generation), MediaResult.of(generation).model_dump(), extra=blocks
    )


def media_path(output_dir: Path, name: str) -> Path:
    """The saved file called `name`; names that try to leave the output folder are refused."""
    path = (output_dir / name).resolve()
    if not _SAFE_NAME.match(name) or path.parent != output_dir.resolve() or not path.is_file():
        raise ResourceError(f"No media file named {name!r}")
    return path


def register(mcp: PoeMCPServer) -> None:
    async def generate(
        ctx: Context,
        kind: str,
        prompt: str,
        model: str | None,
        parameters: dict[str, Any] | None,
        attachments: list[str] | None,
    ) -> CallToolResult:
        state = state_of(ctx)
        generation = await state.media.generate(
            kind, prompt, model, parameters or {}, attachments or [], RisingProgress(ctx)
        )
        return await media_result(generation)

    @mcp.tool(title="Generate an image", annotations=GENERATOR)
    async def generate_image(
        prompt: Prompt,
        ctx: Context,
        model: Model = None,
        parameters: Parameters = None,
        attachments: Attachments = None,
    ) -> Annotated[CallToolResult, MediaResult]:
        """Make an image with a Poe image model (default GPT-Image-1); returns it and a saved file."""
        return await generate(ctx, "image", prompt, model, parameters, attachments)

    @mcp.tool(title="Generate audio", annotations=GENERATOR)
    async def generate_audio(
        prompt: Prompt, ctx: Context, model: Model = None, parameters: Parameters = None
    ) -> Annotated[CallToolResult, MediaResult]:
        """Speech or sound with a Poe audio model (default ElevenLabs-v2.5-Turbo); saved to a file."""
        return await generate(ctx, "audio", prompt, model, parameters, None)

    @mcp.tool(title="Generate a video", annotations=GENERATOR)
    async def generate_video(
        prompt: Prompt,
        ctx: Context,
        model: Model = None,
        parameters: Parameters = None,
        attachments: Attachments = None,
    ) -> Annotated[CallToolResult, MediaResult]:
        """Make a video with a Poe video model (default Veo-3); takes minutes; saved to a file."""
        return await generate(ctx, "video", prompt, model, parameters, attachments)

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
