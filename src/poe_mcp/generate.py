"""Generating images, audio and video: the logic both the MCP tools and the CLI call."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from .attachments import AttachmentRules, load_attachment
from .poe.catalog import ModelInfo
from .poe.client import PoeClient
from .poe.errors import InvalidRequestError
from .poe.media import MediaFile, SkippedUrl, download_media, find_media_urls, save_all
from .poe.types import ChatRequest, Usage
from .poe.videos import VideosEndpointMissing

DEFAULT_MODELS = {"image": "GPT-Image-1", "audio": "ElevenLabs-v2.5-Turbo", "video": "Veo-3"}
HEARTBEAT_SECONDS = 5.0  # well inside the 10 s a client may wait between progress notifications

# (progress, total, message): progress rises; total is None when the length of the work is unknown.
ProgressListener = Callable[[float, float | None, str], Awaitable[None]]


@dataclass
class Generation:
    model: str
    text: str
    files: list[MediaFile] = field(default_factory=list)
    skipped: list[SkippedUrl] = field(default_factory=list)
    usage: Usage | None = None
    cost_usd: float | None = None


def strip_links(text: str, urls: list[str]) -> str:
    """The bot's own words, without the media links it answered with."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    for url in urls:
        text = text.replace(url, "")
    return text.strip()


class MediaService:
    def __init__(
        self,
        poe: PoeClient,
        output_dir: Path,
        rules: AttachmentRules,
        video_poll_interval: float = 5.0,
    ) -> None:
        self.poe = poe
        self.output_dir = output_dir
        self.rules = rules
        self.video_poll_interval = video_poll_interval

    async def generate(
        self,
        kind: str,
        prompt: str,
        model: str | None,
        parameters: dict[str, Any],
        attachments: list[str],
        progress: ProgressListener,
    ) -> Generation:
        if not prompt.strip():
            raise InvalidRequestError("The prompt is empty", advice="Describe what to generate.")
        model = model or DEFAULT_MODELS[kind]
        info = await self.poe.resolve_model(model)
        if info is not None and kind not in info.output_modalities:
            raise await self._wrong_kind(info, kind)
        parts = [await load_attachment(ref, self.rules, self.poe.http) for ref in attachments]
        if kind == "video" and info is not None and "/v1/videos" in info.supported_endpoints:
            try:
                return await self._video_job(info, prompt, parameters, parts, progress)
            except VideosEndpointMissing:
                pass  # this Poe has no /v1/videos: chat completions serve the same bots
        return await self._via_chat(info, model, prompt, parameters, parts, progress)

    async def _wrong_kind(self, info: ModelInfo, kind: str) -> InvalidRequestError:
        examples = [
            m.id for m in (await self.poe.models()).models if m.output_modalities == (kind,)
        ][:5]
        return InvalidRequestError(
            f"{info.id} makes {'+'.join(info.output_modalities)}, not {kind}",
            advice=f"Use a {kind} model, e.g. {', '.join(examples)} (list_models with output_modality={kind}).",
        )

    async def _via_chat(
        self,
        info: ModelInfo | None,
        model: str,
        prompt: str,
        parameters: dict[str, Any],
        parts: list[dict[str, Any]],
        progress: ProgressListener,
    ) -> Generation:
        content: Any = [{"type": "text", "text": prompt}, *parts] if parts else prompt
        request = ChatRequest(
            model=model,
            messages=[{"role": "user", "content": content}],
            parameters=dict(parameters),
            stream=False,
        )
        started = time.monotonic()

        async def heartbeat() -> None:
            while True:  # media bots say nothing for minutes: keep the client's timeout from firing
                elapsed = time.monotonic() - started
                await progress(elapsed, None, f"{model} is generating ({elapsed:.0f} s)")
                await anyio.sleep(HEARTBEAT_SECONDS)

        async with anyio.create_task_group() as group:
            group.start_soon(heartbeat)
            completion = await self.poe.chat(request)
            group.cancel_scope.cancel()
        urls = list(dict.fromkeys(completion.media_urls + find_media_urls(completion.text)))
        files, skipped = await save_all(
            self.poe.http,
            urls,
            self.poe.settings.origin,
            self.output_dir,
            self.poe.settings.timeout,
        )
        images = sum(f.kind == "image" for f in files)
        return Generation(
            request.model,
            strip_links(completion.text, urls),
            files,
            skipped,
            completion.usage,
            _cost(info, completion.usage, images),
        )

    async def _video_job(
        self,
        info: ModelInfo,
        prompt: str,
        parameters: dict[str, Any],
        parts: list[dict[str, Any]],
        progress: ProgressListener,
    ) -> Generation:
        info.check_parameters(parameters)
        body = dict(parameters)
        image = next((p["image_url"]["url"] for p in parts if p["type"] == "image_url"), None)
        if image:
            body["input_image"] = image.split(",", 1)[1]  # the API takes bare base64
        jobs = self.poe.videos(self.video_poll_interval)
        job = await self.poe.retry.run(lambda: jobs.create(info.id, prompt, body), self.poe.budget)

        async def report(percent: float, status: str) -> None:
            await progress(percent, 100.0, f"{info.id}: {status} ({percent:.0f}%)")

        job = await jobs.wait(job, report)
        file = await download_media(
            self.poe.http,
            jobs.content_url(job),
            self.output_dir,
            timeout=self.poe.settings.timeout,
            headers=self.poe.auth_headers(),
        )
        return Generation(info.id, "", [file], cost_usd=_cost(info, None, 0))


def _cost(info: ModelInfo | None, usage: Usage | None, images: int) -> float | None:
    """Estimated USD from the catalog's pricing (per token, per request, per image); None when unpriced."""
    return (
        info.pricing.cost(usage, images=images)
        if info is not None and info.pricing is not None
        else None
    )
