"""Generating images, audio and video: the logic both the MCP tools and the CLI call."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

from ..attachments import AttachmentRules, load_attachment
from ..conversations import ConversationStore, MediaJob, SpendHold
from ..poe.catalog import ModelInfo
from ..poe.client import PoeClient
from ..poe.errors import (
    InvalidRequestError,
    NoMediaError,
    NotFoundError,
    PoeError,
    UnparseableResponseError,
)
from ..poe.media import (
    MARKDOWN_IMAGE,
    MediaFile,
    SkippedUrl,
    fetch_refusal,
    find_media_urls,
    save_bytes,
)
from ..poe.types import ChatRequest, Completion, Usage
from ..poe.videos import (
    DONE,
    FAILED,
    VideoJob,
    VideoJobs,
    VideosEndpointMissing,
    chat_video_parameters,
    video_fields,
)
from .spend import Approver, SpendGuard, estimate_media, hold_from, hold_record

log = logging.getLogger(__name__)

DEFAULT_MODELS = {"image": "GPT-Image-1", "audio": "ElevenLabs-v2.5-Turbo", "video": "Veo-3"}
HEARTBEAT_SECONDS = 5.0  # well inside the 10 s a client may wait between progress notifications
# Common MCP clients give up on a call after 60 s: a video job answers in_progress before that.
DEFAULT_MAX_WAIT = 50.0
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")

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
    job_id: str | None = None
    status: str = (
        DONE  # or "in_progress": the job runs on at Poe, fetch it with generate_video(job_id=…)
    )
    progress: float | None = None
    points: float | None = None
    expires_at: float | None = None

    @property
    def next_call(self) -> str | None:
        """The exact call that picks this job up again, while it is not done."""
        return (
            f'generate_video(job_id="{self.job_id}")'
            if self.job_id and self.status != DONE
            else None
        )


# Poe's dedicated media endpoints, used for models the catalog routes there and not to chat.
DEDICATED_ENDPOINTS = {"image": "/v1/images", "audio": "/v1/audio"}
CHAT_ENDPOINT = "/v1/chat/completions"


def dedicated_endpoint(info: ModelInfo | None, kind: str) -> str | None:
    endpoint = DEDICATED_ENDPOINTS.get(kind)
    if info is None or endpoint is None:
        return None
    served = info.supported_endpoints
    return endpoint if endpoint in served and CHAT_ENDPOINT not in served else None


@asynccontextmanager
async def heartbeats(model: str, progress: ProgressListener) -> AsyncIterator[None]:
    """Progress every few seconds while the body runs: media bots say nothing for minutes, and a client
    whose timeout resets on progress must not give up."""
    started = time.monotonic()

    async def beat() -> None:
        while True:
            elapsed = time.monotonic() - started
            await progress(elapsed, None, f"{model} is generating ({elapsed:.0f} s)")
            await anyio.sleep(HEARTBEAT_SECONDS)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(beat)
            yield
            group.cancel_scope.cancel()
    except (
        BaseExceptionGroup
    ) as failed:  # only the body can fail: re-raise its own error, unwrapped
        raise failed.exceptions[0]  # noqa: B904 - its own cause chain is kept


def strip_links(text: str, urls: list[str]) -> str:
    """The bot's own words, without the media links it answered with."""
    text = MARKDOWN_IMAGE.sub("", text)
    for url in urls:
        text = text.replace(url, "")
    return text.strip()


def no_media(model: str, text: str, skipped: list[SkippedUrl]) -> NoMediaError:
    quoted = f' It answered: "{text[:500]}"' if text else " It answered with nothing."
    links = "".join(f"; not saved: {s.url} ({s.reason})" for s in skipped)
    return NoMediaError(f"{model} returned no media.{quoted}{links}")


def reply_media_urls(completion: Completion) -> list[str]:
    """The media of one reply: the files the bot attached (bot-protocol `file` events), then the links
    in its text, once each."""
    return list(dict.fromkeys(completion.media_urls + find_media_urls(completion.text)))


def _saved(files: list[MediaFile]) -> list[dict[str, Any]]:
    return [
        {"path": str(f.path), "url": f.url, "mime_type": f.mime_type, "bytes": f.bytes}
        for f in files
    ]


def _files_of(job: MediaJob) -> list[MediaFile]:
    return [MediaFile(Path(f["path"]), f["url"], f["mime_type"], f["bytes"]) for f in job.files]


class MediaService:
    def __init__(
        self,
        poe: PoeClient,
        output_dir: Path,
        rules: AttachmentRules,
        video_poll_interval: float = 5.0,
        store: ConversationStore | None = None,
        guard: SpendGuard | None = None,
    ) -> None:
        self.poe = poe
        self.output_dir = output_dir
        self.rules = rules
        self.video_poll_interval = video_poll_interval
        self.store = store
        self.guard = guard

    async def generate(
        self,
        kind: str,
        prompt: str,
        model: str | None,
        parameters: dict[str, Any],
        attachments: list[str],
        progress: ProgressListener,
        *,
        seconds: int | None = None,
        size: str | None = None,
        max_wait: float = DEFAULT_MAX_WAIT,
        reference: str | None = None,
        max_cost_usd: float | None = None,
        approver: Approver | None = None,
    ) -> Generation:
        if not prompt.strip():
            raise InvalidRequestError(
                "The prompt is empty",
                advice="Describe what to generate"
                + (" (or pass the job_id of a video job to fetch it)." if kind == "video" else "."),
            )
        model = model or DEFAULT_MODELS[kind]
        info = await self.poe.resolve_model(model)
        if info is not None and kind not in info.output_modalities:
            raise await self._wrong_kind(info, kind)
        jobs = kind == "video" and info is not None and "/v1/videos" in info.supported_endpoints
        # a job's fields, the attachments and the reference are refused before any request (or any
        # question)
        fields = video_fields(info, parameters, seconds, size) if jobs and info else None
        parts = await self._load(attachments)
        upload = await self._reference(info, reference) if fields is not None and info else None
        if fields is None and reference is not None:  # chat's shape: the image goes as a part
            parts.append(await load_attachment(reference, self.rules, self.poe.http))
        hold = await self._admit(info, model, kind, prompt, parameters, max_cost_usd, approver)
        try:
            generation = await self._generate(
                info,
                model,
                kind,
                prompt,
                parameters,
                parts,
                progress,
                fields,
                hold,
                max_wait,
                (seconds, size),
                (reference, upload),
            )
        except BaseException as error:
            if self.guard is not None:
                await self.guard.failed(hold, error)
            raise
        if generation.job_id is None:  # a video job settles its hold when it completes
            await self._count(generation, hold)
        return generation

    async def _generate(
        self,
        info: ModelInfo | None,
        model: str,
        kind: str,
        prompt: str,
        parameters: dict[str, Any],
        parts: list[dict[str, Any]],
        progress: ProgressListener,
        fields: dict[str, Any] | None,
        hold: SpendHold | None,
        max_wait: float,
        shape: tuple[int | None, str | None],
        references: tuple[str | None, tuple[str, bytes, str] | None],
    ) -> Generation:
        reference, upload = references
        if fields is not None and info is not None:
            try:
                return await self._video_job(
                    info, prompt, fields, parts, progress, max_wait, upload, hold
                )
            except VideosEndpointMissing:
                pass  # this Poe has no /v1/videos: chat completions serve the same bots
            if (
                reference is not None
            ):  # chat's shape has no input_reference: the image goes as a part
                parts.append(await load_attachment(reference, self.rules, self.poe.http))
        if info is not None and kind == "video":
            parameters = chat_video_parameters(info, parameters, *shape)
        generation = await self._dedicated(info, kind, prompt, parameters, parts, progress)
        if generation is None:
            generation = await self._via_chat(info, model, prompt, parameters, parts, progress)
        return generation

    async def _admit(
        self,
        info: ModelInfo | None,
        model: str,
        kind: str,
        prompt: str,
        parameters: dict[str, Any],
        max_cost_usd: float | None,
        approver: Approver | None,
    ) -> SpendHold | None:
        """The spend guard, before anything is sent: nothing at all when no budget applies."""
        if self.guard is None or not self.guard.applies(max_cost_usd):
            return None
        return await self.guard.admit(
            estimate_media(info, model, kind, prompt, parameters),
            session_id=None,
            max_cost_usd=max_cost_usd,
            approver=approver,
        )

    async def _dedicated(
        self,
        info: ModelInfo | None,
        kind: str,
        prompt: str,
        parameters: dict[str, Any],
        parts: list[dict[str, Any]],
        progress: ProgressListener,
    ) -> Generation | None:
        """The generation from the catalog's own endpoint for this model, or None to use chat."""
        endpoint = dedicated_endpoint(info, kind)
        if info is None or endpoint is None or parts:  # attachments: only chat's shape is known
            return None
        try:
            return await self._via_endpoint(info, endpoint, prompt, parameters, progress)
        except NotFoundError:
            return None  # this Poe lacks the endpoint: chat completions serve the same bots

    async def _reference(
        self, info: ModelInfo, reference: str | None
    ) -> tuple[str, bytes, str] | None:
        """The `input_reference` image as (file name, bytes, MIME type): read under the attachment rules
        (allowed folders, public URLs, size cap), and refused before any request unless it is an image
        and the model takes image input."""
        if reference is None:
            return None
        if "image" not in info.input_modalities:
            raise InvalidRequestError(
                f"{info.id} takes no image, so it cannot take an input_reference",
                advice="Leave reference out, or use a model whose input_modalities include image "
                "(e.g. Sora-2, Veo-3.1-Fast).",
            )
        part = await load_attachment(reference, self.rules, self.poe.http)
        url = part["image_url"]["url"] if part["type"] == "image_url" else ""
        header, _, payload = url.partition(",")
        if not header.startswith("data:image/"):
            raise InvalidRequestError(
                "reference must be an image (PNG, JPEG or WebP)",
                advice="Give the path or URL of an image to start the video from.",
            )
        mime = header.removeprefix("data:").split(";")[0]
        name = Path(urlsplit(reference).path).name or "reference"
        return name, base64.b64decode(payload), mime

    async def _load(self, attachments: list[str]) -> list[dict[str, Any]]:
        return [await load_attachment(ref, self.rules, self.poe.http) for ref in attachments]

    async def _wrong_kind(self, info: ModelInfo, kind: str) -> InvalidRequestError:
        examples = [
            m.id for m in (await self.poe.models()).models if m.output_modalities == (kind,)
        ][:5]
        return InvalidRequestError(
            f"{info.id} makes {'+'.join(info.output_modalities)}, not {kind}",
            advice=f"Use a {kind} model, e.g. {', '.join(examples)} (list_models with output_modality={kind}).",
        )

    async def _count(self, generation: Generation, hold: SpendHold | None = None) -> None:
        """Every finished generation counts in get_usage's server totals, with its cost where priced
        (and its points where Poe reports them), settling the spend held for it."""
        if self.store is None:
            return
        usage = generation.usage
        spend: dict[str, Any] = {"cost_usd": generation.cost_usd, "points": generation.points}
        if self.guard is not None:
            spend = self.guard.spend(hold, generation.cost_usd, generation.points)
        cost = spend.pop("cost_usd")
        await self.store.record_usage(
            generation.model,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            cost,
            **spend,
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
        async with heartbeats(model, progress):
            completion = await self.poe.chat(request)
        urls = reply_media_urls(completion)
        files, skipped = await self._save(urls)
        text = strip_links(completion.text, urls)
        if not files:
            raise no_media(request.model, text, skipped)
        images = sum(f.kind == "image" for f in files)
        return Generation(
            request.model,
            text,
            files,
            skipped,
            completion.usage,
            _cost(info, completion.usage, images),
        )

    async def save_reply(self, completion: Completion) -> tuple[list[MediaFile], list[SkippedUrl]]:
        """A chat answer's media, saved as a generation's are: every file the bot attached, and the links
        to Poe's CDN in its text. Other links in the text are prose, not media: neither fetched nor listed."""
        origin = self.poe.settings.origin
        urls = [
            u
            for u in reply_media_urls(completion)
            if u in completion.media_urls or fetch_refusal(u, origin) is None
        ]
        return await self._save(urls) if urls else ([], [])

    async def _save(self, urls: list[str]) -> tuple[list[MediaFile], list[SkippedUrl]]:
        return await self.poe.save_links(urls, self.output_dir, self.max_bytes)

    async def _via_endpoint(
        self,
        info: ModelInfo,
        endpoint: str,
        prompt: str,
        parameters: dict[str, Any],
        progress: ProgressListener,
    ) -> Generation:
        """POST {model, prompt, parameters} to Poe's /v1/images or /v1/audio; the answer's `data` holds
        links (`url`) or inline base64 (`b64_json`), as in the OpenAI shape other Poe clients read."""
        info.check_parameters(parameters)
        url = self.poe.settings.base_url + endpoint.removeprefix("/v1")
        body = {"model": info.id, "prompt": prompt, **parameters}
        async with heartbeats(info.id, progress):
            answer = await self.poe.post_json(url, body)
        if not isinstance(answer, dict):
            raise UnparseableResponseError(f"Poe answered {endpoint} in an unexpected shape")
        items = [d for d in (answer.get("data") or []) if isinstance(d, dict)]
        urls = [str(d["url"]) for d in items if d.get("url")]
        files, skipped = await self._save(urls)
        for item in items:
            if isinstance(item.get("b64_json"), str):
                try:
                    data = base64.b64decode(item["b64_json"])
                except binascii.Error:
                    skipped.append(SkippedUrl(f"{endpoint} b64_json", "not valid base64"))
                    continue
                files.append(await save_bytes(data, self.output_dir, f"{endpoint}:{info.id}"))
        text = str(next((d["revised_prompt"] for d in items if d.get("revised_prompt")), ""))
        if not files:
            raise no_media(info.id, text, skipped)
        images = sum(f.kind == "image" for f in files)
        return Generation(info.id, text, files, skipped, cost_usd=_cost(info, None, images))

    @property
    def max_bytes(self) -> int:
        return int(self.poe.settings.max_media_mb * 1_000_000)

    def _jobs(self) -> VideoJobs:
        return self.poe.videos(self.video_poll_interval)

    async def _video_job(
        self,
        info: ModelInfo,
        prompt: str,
        fields: dict[str, Any],
        parts: list[dict[str, Any]],
        progress: ProgressListener,
        max_wait: float,
        reference: tuple[str, bytes, str] | None = None,
        hold: SpendHold | None = None,
    ) -> Generation:
        body = dict(fields)
        image = next((p["image_url"]["url"] for p in parts if p["type"] == "image_url"), None)
        if image:
            body["input_image"] = image.split(",", 1)[1]  # the API takes bare base64
        jobs = self._jobs()
        job = await jobs.create(info.id, prompt, body, reference)
        record = MediaJob(
            job.id, info.id, prompt, job.status, created_at=time.time(), hold=hold_record(hold)
        )
        await self._remember(record, job)  # before any wait: a client that gives up loses nothing
        return await self._follow(record, job, progress, max_wait)

    async def fetch_job(
        self, job_id: str, progress: ProgressListener, max_wait: float = DEFAULT_MAX_WAIT
    ) -> Generation:
        """A video job by id: its saved files once done, else its status after up to `max_wait` s."""
        if not JOB_ID.match(job_id):  # it becomes part of a URL path: nothing but an id gets there
            raise InvalidRequestError(
                f"{job_id[:80]!r} is not a video job id",
                advice="Pass the job_id that generate_video returned, e.g. video_abc123.",
            )
        record = await self.store.load_job(job_id) if self.store is not None else None
        if record is not None and record.status == DONE and record.files:
            return self._generation(record, _files_of(record))
        try:
            job = await self._jobs().get(job_id)
        except NotFoundError:
            raise NotFoundError(
                f"Poe has no video job {job_id!r}",
                advice="Check the job_id (poe-mcp://generations lists recent ones); Poe keeps a video only until it expires.",
            ) from None
        record = record or MediaJob(job_id, job.model, "", job.status, created_at=time.time())
        return await self._follow(record, job, progress, max_wait)

    async def _follow(
        self, record: MediaJob, job: VideoJob, progress: ProgressListener, max_wait: float
    ) -> Generation:
        async def report(percent: float, status: str) -> None:
            await progress(
                percent, 100.0, f"{record.model} job {job.id}: {status} ({percent:.0f}%)"
            )

        try:
            job = await self._jobs().wait(job, report, max_wait)
        except anyio.get_cancelled_exc_class():
            # Poe cannot cancel a job: it runs on (and is paid for); the stored record finds it later.
            log.info(
                "Stopped waiting for video job %s; generate_video(job_id=%r) fetches it",
                job.id,
                job.id,
            )
            raise
        except PoeError:
            record.status = FAILED
            hold, record.hold = hold_from(record.hold), None
            await self._remember(record, None)
            if hold is not None and self.store is not None:
                await self.store.release_spend(hold)  # a failed job is not charged
            raise
        if not job.finished:
            await self._remember(record, job)
            return self._generation(record, [])
        file = await self._jobs().download(job.id, self.output_dir, self.max_bytes)
        record.files = _saved([file])
        hold, record.hold = hold_from(record.hold), None
        await self._remember(record, job)
        generation = self._generation(record, [file])
        await self._count(generation, hold)
        return generation

    async def _remember(self, record: MediaJob, job: VideoJob | None) -> None:
        if job is not None:
            record.status, record.progress = job.status, job.progress
            record.expires_at = job.expires_at or record.expires_at
            record.points = job.points if job.points is not None else record.points
        if self.store is not None:
            await self.store.save_job(record)

    @staticmethod
    def _generation(record: MediaJob, files: list[MediaFile]) -> Generation:
        return Generation(
            record.model,
            "",
            files,
            job_id=record.id,
            status=record.status if record.status in (DONE, FAILED) else "in_progress",
            progress=record.progress,
            points=record.points,
            expires_at=record.expires_at,
        )

    async def list_jobs(self, limit: int) -> Sequence[MediaJob]:
        return await self.store.list_jobs(limit) if self.store is not None else []


def _cost(info: ModelInfo | None, usage: Usage | None, images: int) -> float | None:
    """Estimated USD from the catalog's pricing (per token, per request, per image); None when unpriced."""
    return (
        info.pricing.cost(usage, images=images)
        if info is not None and info.pricing is not None
        else None
    )
