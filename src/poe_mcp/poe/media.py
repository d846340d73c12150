"""Media in Poe's replies: finding the links, deciding which hosts may be fetched, downloading to disk."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx2

from .errors import (
    MediaUnavailableError,
    PoeError,
    RequestTooLargeError,
    UpstreamError,
    local_timeout,
    translate,
)
from .streaming import OWN_LIMIT

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
DEFAULT_MAX_BYTES = 500 * 1_000_000  # POE_MCP_MAX_MEDIA_MB's default
CDN_SUFFIX = ".poecdn.net"
GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")

# Markdown images first, then any bare URL; a trailing bracket or full stop belongs to the prose.
# Linear on any reply: the alt text holds no bracket and the link no space or parenthesis, so a failed
# match never rescans text a later match start will scan again ("![![![..." once froze the server).
MARKDOWN_IMAGE = re.compile(r"!\[[^\[\]]*\]\(([^\s()]+)\)")
_BARE = re.compile(r"https?://[^\s<>\"')\]]+")

# Extensions for the MIME types Poe's media bots produce; mimetypes knows the rest.
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "audio/mpeg": ".mp3",
    "video/mp4": ".mp4",
    "image/webp": ".webp",
    "audio/wav": ".wav",
}


@dataclass
class MediaFile:
    path: Path
    url: str
    mime_type: str
    bytes: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kind(self) -> str:
        return self.mime_type.split("/", 1)[0]


@dataclass
class SkippedUrl:
    url: str
    reason: str


def sniff_mime(data: bytes, name: str = "") -> str:
    """The MIME type from magic bytes, else from the name, else octet-stream."""
    signatures = {
        b"\x89PNG\r\n\x1a\n": "image/png",
        b"\xff\xd8\xff": "image/jpeg",
        b"GIF8": "image/gif",
        b"%PDF": "application/pdf",
        b"ID3": "audio/mpeg",
        b"OggS": "audio/ogg",
        b"fLaC": "audio/flac",
    }
    for magic, mime in signatures.items():
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if data[8:12] == b"WEBP" else "audio/wav"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def find_media_urls(text: str) -> list[str]:
    """Every media link in a reply, Markdown images and bare URLs, once each, in order."""
    found = [m.group(1) for m in MARKDOWN_IMAGE.finditer(text)] + [
        m.group(0).rstrip(".,;:!?") for m in _BARE.finditer(text)
    ]
    return list(dict.fromkeys(found))


def fetch_refusal(url: str, api_origin: str) -> str | None:
    """Why a URL may not be downloaded, or None: only the API's own origin and Poe's CDN are trusted."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if f"{parts.scheme}://{parts.netloc}" == api_origin:
        return None
    if parts.scheme != "https":
        return "only https:// links from Poe's CDN are downloaded"
    if host.endswith(CDN_SUFFIX):
        return None
    return f"{host or 'this host'} is not Poe's CDN (*{CDN_SUFFIX}); not downloaded"


def extension_for(mime: str) -> str:
    return _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ".bin"


def unique_name(url: str, mime: str) -> str:
    """A file name that never collides: time, a hash of the URL, and an extension from the MIME type."""
    digest = hashlib.sha256(f"{url}{time.time_ns()}{os.getpid()}".encode()).hexdigest()[:12]
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{digest}{extension_for(mime)}"


async def download_media(
    http: httpx2.AsyncClient,
    url: str,
    output_dir: Path,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> MediaFile:
    """Stream one file to disk in chunks (memory stays flat whatever its size), within `timeout` seconds
    overall and `max_bytes`; a partial, oversized or broken download never leaves a file."""
    await anyio.to_thread.run_sync(lambda: output_dir.mkdir(parents=True, exist_ok=True))
    partial = output_dir / f".{hashlib.sha256(url.encode()).hexdigest()[:16]}-{time.time_ns()}.part"
    try:
        with anyio.fail_after(
            timeout
        ):  # the whole download, not each read: a trickle cannot hang a call
            mime, size = await _stream_to(http, url, partial, headers, timeout, max_bytes)
        final = output_dir / unique_name(url, mime)
        await anyio.to_thread.run_sync(os.replace, partial, final)
        return MediaFile(final, url, mime, size)
    except TimeoutError as exc:
        raise local_timeout(timeout) from exc
    except httpx2.HTTPError as exc:
        error = translate(exc, timeout)
        error.message = f"Downloading {url} failed ({type(exc).__name__})"
        raise error from exc
    finally:
        with anyio.CancelScope(shield=True):  # also when a deadline cancelled the download
            if partial.exists():
                await anyio.to_thread.run_sync(lambda: partial.unlink(missing_ok=True))


def too_large(url: str, max_bytes: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"{url} is larger than POE_MCP_MAX_MEDIA_MB ({max_bytes / 1_000_000:g} MB); not saved",
        advice="Raise POE_MCP_MAX_MEDIA_MB to save larger files.",
    )


async def _stream_to(
    http: httpx2.AsyncClient,
    url: str,
    partial: Path,
    headers: dict[str, str] | None,
    timeout: float,
    max_bytes: int,
) -> tuple[str, int]:
    """Write the body to `partial`; the MIME type (declared, else sniffed) and the size written."""
    size = 0
    head = b""
    async with http.stream(
        "GET",
        url,
        headers=headers,
        timeout=timeout,
        follow_redirects=False,
        extensions={OWN_LIMIT: True},  # held to max_bytes here, not to POE_MCP_MAX_RESPONSE_MB
    ) as response:
        if response.status_code != 200:
            status = response.status_code
            # A server in trouble may answer next time (retried); a link that is gone will not.
            cls = UpstreamError if status >= 500 or status in (408, 429) else MediaUnavailableError
            raise cls(
                f"Downloading {url} gave HTTP {status}",
                advice="The link may have expired: generate again.",
            )
        declared_size = response.headers.get("content-length", "")
        if declared_size.isdigit() and int(declared_size) > max_bytes:
            raise too_large(url, max_bytes)  # refused before a byte is written
        declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
        async with await anyio.open_file(partial, "wb") as out:
            async for chunk in response.aiter_bytes(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(url, max_bytes)
                if len(head) < 16:
                    head += chunk[:16]
                await out.write(chunk)
    mime = declared if declared not in GENERIC_TYPES else sniff_mime(head, urlsplit(url).path)
    return mime, size


async def save_bytes(data: bytes, output_dir: Path, source: str) -> MediaFile:
    """Media that came inline (base64 in a JSON answer), written like a download: whole or not at all."""

    def write() -> MediaFile:
        output_dir.mkdir(parents=True, exist_ok=True)
        mime = sniff_mime(data[:16])
        final = output_dir / unique_name(source, mime)
        partial = final.with_name(f".{final.name}.part")
        try:
            partial.write_bytes(data)
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        return MediaFile(final, source, mime, len(data))

    return await anyio.to_thread.run_sync(write)


# How save_all downloads one link: PoeClient.download, under the request policy.
Downloader = Callable[..., Awaitable[MediaFile]]


async def save_all(
    download: Downloader,
    urls: list[str],
    api_origin: str,
    output_dir: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[list[MediaFile], list[SkippedUrl]]:
    """Download every allowed link; list the others (and failed downloads) with the reason."""
    files: list[MediaFile] = []
    skipped: list[SkippedUrl] = []
    for url in urls:
        refusal = fetch_refusal(url, api_origin)
        if refusal:
            skipped.append(SkippedUrl(url, refusal))
            continue
        try:
            files.append(await download(url, output_dir, max_bytes=max_bytes))
        except PoeError as error:
            log.warning("Could not save %s: %s", url, error.type)
            skipped.append(SkippedUrl(url, str(error)))
    return files, skipped
