"""Poe's asynchronous video API: create a job, poll it, fetch the mp4. Poe has no way to cancel or
delete a job, so a caller that stops waiting only stops polling: the job runs on and stays fetchable."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .errors import (
    InvalidRequestError,
    PoeError,
    UnparseableResponseError,
    UpstreamError,
    clip,
)

if TYPE_CHECKING:
    from pathlib import Path

    from .catalog import ModelInfo
    from .client import PoeClient
    from .media import MediaFile

# Called with (percent done, status) after each poll.
JobListener = Callable[[float, str], Awaitable[None]]

DONE, FAILED = "completed", "failed"
_SIZE = re.compile(r"^([1-9][0-9]{1,4})x([1-9][0-9]{1,4})$")
# Poe's default is portrait 720x1280; these are the sizes an aspect ratio means when the model lists none.
_ORIENTATION_SIZES = {"landscape": "1280x720", "portrait": "720x1280", "square": "1024x1024"}
_ASPECTS = {"16:9": "landscape", "9:16": "portrait", "1:1": "square"}


class VideosEndpointMissing(Exception):
    """`/v1/videos` answered 404: the caller falls back to chat completions."""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _points(usage: Any) -> float | None:
    """Points from a job's `usage`: a bare number, or the first numeric field of an object."""
    if isinstance(usage, dict):
        return next((n for v in usage.values() if (n := _number(v)) is not None), None)
    return _number(usage)


@dataclass
class VideoJob:
    id: str
    model: str
    status: str
    progress: float
    error: str | None
    expires_at: float | None
    points: float | None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> VideoJob:
        error = data.get("error")
        if isinstance(error, dict):
            error = error.get("message") or str(error)
        progress = _number(data.get("progress"))  # Poe's progress may be absent, null or text
        return cls(
            str(data.get("id")),
            str(data.get("model") or "unknown"),
            str(data.get("status") or "queued"),
            min(max(progress or 0.0, 0.0), 100.0),
            str(error) if error else None,
            _number(data.get("expires_at")),
            _points(data.get("usage")),
        )

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)


def _orientation(size: str) -> str:
    width, height = (int(n) for n in size.split("x"))
    return "landscape" if width > height else "portrait" if height > width else "square"


def _allowed(info: ModelInfo, name: str) -> list[str]:
    declared = info.parameter(name)
    return [str(v) for v in (declared.schema.get("enum") or [])] if declared else []


def size_for_aspect(info: ModelInfo, aspect: str) -> str:
    """A "WxH" for an aspect ratio: the model's first listed size of that orientation, else Poe's usual one."""
    orientation = _ASPECTS.get(aspect, aspect)
    if orientation not in _ORIENTATION_SIZES:
        raise InvalidRequestError(
            f"aspect_ratio {aspect!r} is not one /v1/videos can express",
            advice="Use 16:9 (landscape), 9:16 (portrait) or 1:1, or give size as WIDTHxHEIGHT.",
        )
    listed = [
        s for s in _allowed(info, "size") if _SIZE.match(s) and _orientation(s) == orientation
    ]
    return listed[0] if listed else _ORIENTATION_SIZES[orientation]


def check_size(info: ModelInfo, size: str) -> str:
    allowed = _allowed(info, "size")
    if not _SIZE.match(size) or (allowed and size not in allowed):
        choices = ", ".join(allowed) or "e.g. 1280x720 (landscape) or 720x1280 (portrait)"
        raise InvalidRequestError(
            f"{info.id} cannot make a video of size {size!r}",
            advice=f"Give size as WIDTHxHEIGHT: {choices}.",
        )
    return size


def check_seconds(info: ModelInfo, seconds: Any) -> str:
    """Seconds as the whole-number string the API takes, within the durations the model lists."""
    number = _number(seconds)
    declared = info.parameter("duration")
    schema = declared.schema if declared else {}
    allowed = [re.sub(r"s$", "", str(v)) for v in schema.get("enum") or []]
    low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
    valid = (
        number is not None
        and number.is_integer()
        and number > 0
        and (not allowed or str(int(number)) in allowed)
        and (low is None or number >= low)
        and (high is None or number <= high)
    )
    if not valid:
        choices = (
            ", ".join(allowed)
            if allowed
            else f"{low or 1:g} to {high:g}"
            if high
            else "e.g. 4 or 8"
        )
        raise InvalidRequestError(
            f"{info.id} cannot make a video of {seconds!r} seconds",
            advice=f"Give seconds as a whole number: {choices}.",
        )
    return str(int(number))  # type: ignore[arg-type]


def video_fields(
    info: ModelInfo, parameters: dict[str, Any], seconds: Any = None, size: str | None = None
) -> dict[str, Any]:
    """The createVideo body besides model and prompt: `seconds` and `size` (also from the friendly
    `duration` and `aspect_ratio`/`aspect`), then the model's other declared parameters, all checked."""
    rest = dict(parameters)
    seconds = seconds if seconds is not None else rest.pop("duration", None)
    rest.pop("duration", None)
    aspect = rest.pop("aspect_ratio", None) or rest.pop("aspect", None)
    size = size or rest.pop("size", None)
    rest.pop("size", None)
    info.check_parameters(rest)
    fields: dict[str, Any] = {}
    if seconds is not None:
        fields["seconds"] = check_seconds(info, seconds)
    if size is not None:
        fields["size"] = check_size(info, str(size))
    elif aspect is not None:
        fields["size"] = size_for_aspect(info, str(aspect))
    return {**fields, **rest}


_RATIOS = {"landscape": "16:9", "portrait": "9:16", "square": "1:1"}


def chat_video_parameters(
    info: ModelInfo, parameters: dict[str, Any], seconds: Any = None, size: str | None = None
) -> dict[str, Any]:
    """`seconds` and `size` as the custom parameters a video bot without /v1/videos declares
    (`duration`, and `size`/`resolution` or `aspect_ratio`/`aspect`); refused where it has none."""
    out = dict(parameters)
    if seconds is not None:
        out["duration"] = _duration_value(info, check_seconds(info, seconds))
    if size is not None:
        name, value = _size_parameter(info, size)
        out[name] = value
    return out


def _cannot(info: ModelInfo, what: str) -> InvalidRequestError:
    names = ", ".join(info.parameter_names) or "none"
    return InvalidRequestError(
        f"{info.id} cannot be asked for a {what}",
        advice=f"Leave it out, or use its custom parameters ({names}) in parameters.",
    )


def _duration_value(info: ModelInfo, seconds: str) -> Any:
    declared = info.parameter("duration")
    if declared is None:
        raise _cannot(info, "length")
    listed = declared.schema.get("enum") or []
    exact = next((v for v in listed if re.sub(r"s$", "", str(v)) == seconds), None)
    return exact if exact is not None else int(seconds)  # "8s"-style enums keep their own form


def _size_parameter(info: ModelInfo, size: str) -> tuple[str, str]:
    check_size(info, size)  # the WxH form, and the model's own list where it has one
    for name in ("size", "resolution", "dimension"):
        if size in _allowed(info, name):
            return name, size
    ratio = _RATIOS[_orientation(size)]
    for name in ("aspect_ratio", "aspect"):
        if ratio in _allowed(info, name):
            return name, ratio
    raise _cannot(info, f"size of {size}")


def _form_value(value: Any) -> str:
    """A createVideo field as a multipart form value: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


class VideoJobs:
    """Poe's /v1/videos, through the client's verbs (each under its request policy)."""

    def __init__(self, client: PoeClient, poll_interval: float = 5.0) -> None:
        self.client = client
        self.base = f"{client.settings.base_url}/videos"
        self.poll_interval = poll_interval

    async def create(
        self,
        model: str,
        prompt: str,
        fields: dict[str, Any],
        reference: tuple[str, bytes, str] | None = None,
    ) -> VideoJob:
        """POST the job: JSON, or multipart/form-data when an `input_reference` file (name, bytes, MIME
        type) goes with it, as Poe's createVideo documents."""
        body = {"model": model, "prompt": prompt, **fields}
        sent: dict[str, Any] = (
            {
                "data": {k: _form_value(v) for k, v in body.items()},
                "files": {"input_reference": reference},
            }
            if reference is not None
            else {"json": body}
        )
        try:
            created = await self.client.post_json(self.base, **sent)
        except PoeError as error:
            if error.status == 404:
                raise VideosEndpointMissing() from error
            raise
        return VideoJob.from_wire(_job_object(created))

    async def get(self, job_id: str) -> VideoJob:
        return VideoJob.from_wire(_job_object(await self.client.get_json(f"{self.base}/{job_id}")))

    async def wait(self, job: VideoJob, listener: JobListener, max_wait: float) -> VideoJob:
        """Poll until the job ends or `max_wait` seconds pass; returns the job as last seen. Any status
        Poe reports is tolerated while waiting; cancelling only stops the polling (Poe cannot cancel)."""
        deadline = time.monotonic() + max_wait
        await listener(job.progress, job.status)
        while not job.finished and time.monotonic() + self.poll_interval <= deadline:
            await anyio.sleep(self.poll_interval)
            job = await self.get(job.id)
            await listener(job.progress, job.status)
        if job.status == FAILED:
            raise UpstreamError(
                f"Poe's video job {job.id} failed: {clip(job.error or 'no reason given')}",
                advice="Change the prompt or parameters and try again.",
            )
        return job

    def content_url(self, job_id: str) -> str:
        return f"{self.base}/{job_id}/content"

    async def download(self, job_id: str, output_dir: Path, max_bytes: int) -> MediaFile:
        """The finished job's mp4, saved (with the key: the content lives on Poe's API)."""
        return await self.client.download(
            self.content_url(job_id), output_dir, max_bytes=max_bytes, auth=True
        )


def _job_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise UnparseableResponseError("Poe answered /v1/videos with something that is not a job")
    return body
