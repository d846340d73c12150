"""Poe's asynchronous video API: create a job, poll it, fetch the mp4; cancelled jobs are deleted upstream."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .errors import PoeError, UpstreamError

if TYPE_CHECKING:
    from .client import PoeClient

log = logging.getLogger("poe_mcp.videos")

# Called with (percent done, status) after each poll.
JobListener = Callable[[float, str], Awaitable[None]]


class VideosEndpointMissing(Exception):
    """`/v1/videos` answered 404: the caller falls back to chat completions."""


@dataclass
class VideoJob:
    id: str
    status: str
    progress: float
    error: str | None
    raw: dict[str, Any]

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> VideoJob:
        error = data.get("error")
        if isinstance(error, dict):
            error = error.get("message") or str(error)
        return cls(
            str(data.get("id")),
            str(data.get("status") or "queued"),
            float(data.get("progress") or 0),
            error,
            data,
        )


class VideoJobs:
    def __init__(self, client: PoeClient, poll_interval: float = 5.0) -> None:
        self._client = client
        self._base = f"{client.settings.base_url}/videos"
        self.poll_interval = poll_interval

    async def create(self, model: str, prompt: str, parameters: dict[str, Any]) -> VideoJob:
        try:
            created = await self._client.request_json(
                "POST", self._base, json={"model": model, "prompt": prompt, **parameters}
            )
        except PoeError as error:
            if error.status == 404:
                raise VideosEndpointMissing() from None
            raise
        return VideoJob.from_wire(created)

    async def wait(self, job: VideoJob, listener: JobListener) -> VideoJob:
        """Poll until the job ends; on cancellation delete the job upstream so it stops costing."""
        try:
            while job.status not in ("completed", "failed"):
                await listener(job.progress, job.status)
                await anyio.sleep(self.poll_interval)
                poll = functools.partial(self._client.request_json, "GET", f"{self._base}/{job.id}")
                polled = await self._client.retry.run(poll, self._client.budget)
                job = VideoJob.from_wire(polled)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self.cancel(job.id)
            raise
        if job.status == "failed":
            raise UpstreamError(
                f"Poe's video job {job.id} failed: {job.error or 'no reason given'}",
                advice="Change the prompt or parameters and try again.",
            )
        await listener(100.0, job.status)
        return job

    def content_url(self, job: VideoJob) -> str:
        return f"{self._base}/{job.id}/content"

    async def cancel(self, job_id: str) -> None:
        try:
            await self._client.request_json("DELETE", f"{self._base}/{job_id}")
        except PoeError as error:
            log.info("Could not cancel video job %s: %s", job_id, error.type)
