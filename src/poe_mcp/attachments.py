"""Attachments: local paths (sandboxed), public https URLs and data URLs, turned into message parts.

Defense in depth: a path is resolved (symlinks, `..`) before the allowed-folder check, a URL host is
resolved and every address it maps to must be public, and nothing larger than the cap is read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import mimetypes
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
import httpx2

from .poe.errors import InvalidRequestError, RequestTooLargeError
from .poe.media import sniff_mime

URL_TIMEOUT = 30.0


class AttachmentError(InvalidRequestError):
    """An attachment was refused; the message says why and what would allow it."""


@dataclass(frozen=True)
class AttachmentRules:
    allowed_dirs: tuple[Path, ...]
    max_bytes: int


def _too_large(name: str, size: int, rules: AttachmentRules) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"Attachment {name} is {size / 1e6:.1f} MB, over the {rules.max_bytes / 1e6:.0f} MB cap",
        advice="Attach a smaller file, or raise POE_MCP_MAX_ATTACHMENT_MB.",
    )


def to_part(data: bytes, mime: str, name: str) -> dict[str, Any]:
    """Images become `image_url` parts, anything else a `file` part, both inline as data URLs."""
    data_url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": data_url}}
    return {"type": "file", "file": {"filename": name, "file_data": data_url}}


# Never attached, whatever folder is allowed: they hold secrets or are not files at all.
_NEVER_UNDER = (Path("/proc"), Path("/sys"), Path("/dev"))


def check_local_path(ref: str, rules: AttachmentRules) -> Path:
    """The real path of a local file inside an allowed folder, or a refusal saying why."""
    if not rules.allowed_dirs:
        raise AttachmentError(
            "Local attachments are off: the server runs in / , the home folder or a system folder, which is no safe default",
            advice="Set POE_MCP_ALLOWED_DIRS to the folders attachments may come from.",
        )
    try:
        path = Path(ref).expanduser().resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise AttachmentError(
            f"No file at {ref}", advice="Give the path of an existing file."
        ) from None
    if path.name.startswith(".env") or any(path.is_relative_to(d) for d in _NEVER_UNDER):
        raise AttachmentError(
            f"{ref} is never attached: it may hold secrets", advice="Attach a copy without secrets."
        )
    if not any(path.is_relative_to(folder) for folder in rules.allowed_dirs):
        folders = ", ".join(str(f) for f in rules.allowed_dirs)
        raise AttachmentError(
            f"{ref} is outside the folders attachments may come from ({folders})",
            advice="Move the file into one of them, or add its folder to POE_MCP_ALLOWED_DIRS.",
        )
    if not path.is_file():
        raise AttachmentError(
            f"{ref} is not a regular file", advice="Attach a file, not a folder or device."
        )
    return path


async def _read_local(ref: str, rules: AttachmentRules) -> dict[str, Any]:
    path = check_local_path(ref, rules)
    data = await anyio.to_thread.run_sync(
        _read_at_most, path, rules.max_bytes + 1
    )  # stat() sizes can lie
    if len(data) > rules.max_bytes:
        raise _too_large(path.name, path.stat().st_size, rules)
    return to_part(data, sniff_mime(data, path.name), path.name)


def _read_at_most(path: Path, limit: int) -> bytes:
    with path.open("rb") as file:
        return file.read(limit)


def _read_data_url(ref: str, rules: AttachmentRules) -> dict[str, Any]:
    header, sep, payload = ref.partition(",")
    if not sep or not header.endswith(";base64"):
        raise AttachmentError("A data: URL attachment must be base64 (data:<mime>;base64,...)")
    if len(payload) * 3 // 4 > rules.max_bytes:
        raise _too_large("data: URL", len(payload) * 3 // 4, rules)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise AttachmentError("The data: URL attachment is not valid base64") from None
    mime = header[len("data:") : -len(";base64")] or sniff_mime(data)
    return to_part(data, mime, "attachment" + (mimetypes.guess_extension(mime) or ""))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


async def check_public_host(host: str) -> None:
    """Refuse hosts that are, or resolve to, loopback, private, link-local or other non-public addresses."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError:
        raise AttachmentError(
            f"Cannot resolve the host {host!r}", advice="Check the URL."
        ) from None
    addresses = {info[4][0] for info in infos}
    private = sorted(a for a in addresses if not _is_public(a))
    if private or not addresses:
        raise AttachmentError(
            f"{host} resolves to a non-public address ({', '.join(private)})",
            advice="Only public https:// URLs may be attached; download the file into an allowed folder instead.",
        )


async def _fetch_url(ref: str, rules: AttachmentRules, http: httpx2.AsyncClient) -> dict[str, Any]:
    host = urlsplit(ref).hostname or ""
    await check_public_host(host)
    name = Path(urlsplit(ref).path).name or "attachment"
    chunks: list[bytes] = []
    size = 0
    try:
        async with http.stream("GET", ref, timeout=URL_TIMEOUT, follow_redirects=False) as response:
            if response.status_code != 200:
                raise AttachmentError(
                    f"Fetching {ref} gave HTTP {response.status_code}", advice="Check the URL."
                )
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > rules.max_bytes:
                    raise _too_large(name, size, rules)
                chunks.append(chunk)
            declared = response.headers.get("content-type", "").split(";")[0].strip()
    except httpx2.HTTPError as exc:
        raise AttachmentError(
            f"Could not fetch {ref} ({type(exc).__name__})",
            advice="Check the URL, or attach a local copy.",
        ) from None
    data = b"".join(chunks)
    mime = (
        declared if declared and declared != "application/octet-stream" else sniff_mime(data, name)
    )
    return to_part(data, mime, name)


async def load_attachment(
    ref: str, rules: AttachmentRules, http: httpx2.AsyncClient
) -> dict[str, Any]:
    """One attachment reference (path, https:// URL or data: URL) as an OpenAI content part."""
    if not isinstance(ref, str) or not ref.strip() or "\x00" in ref:
        raise AttachmentError("An attachment must be a non-empty path or URL")
    ref = ref.strip()
    scheme = urlsplit(ref).scheme.lower()
    if scheme == "data":
        return _read_data_url(ref, rules)
    if scheme == "https":
        return await _fetch_url(ref, rules, http)
    if len(scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise AttachmentError(
            f"{scheme}:// attachments are not allowed",
            advice="Use a local path inside POE_MCP_ALLOWED_DIRS, a public https:// URL, or a data: URL.",
        )
    return await _read_local(ref, rules)
