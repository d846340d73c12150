"""Attachments: local paths (sandboxed), public https URLs and data URLs, turned into message parts.

Defense in depth: a path is resolved (symlinks, `..`) before the allowed-folder check, a URL host is
resolved and every address it maps to must be public (the IPv4 inside an IPv6 form too), a URL is
fetched within one deadline, and nothing larger than the cap is read.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import mimetypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx2

from .config import Settings
from .poe.errors import InvalidRequestError, RequestTooLargeError
from .poe.media import sniff_mime
from .publicnet import HostRefused, HostUnresolvable, public_addresses

URL_TIMEOUT = 30.0  # seconds for the whole fetch of one URL attachment, not per read


class AttachmentError(InvalidRequestError):
    """An attachment was refused; the message says why and what would allow it."""


@dataclass(frozen=True)
class AttachmentRules:
    allowed_dirs: tuple[Path, ...]
    max_bytes: int
    # The files settings were read from (real paths): they may hold the key, whatever their name.
    refused_files: frozenset[Path] = frozenset()

    @classmethod
    def of(cls, settings: Settings) -> AttachmentRules:
        return cls(
            settings.allowed_dirs,
            int(settings.max_attachment_mb * 1_000_000),
            frozenset(Path(file).resolve() for _, file in settings.from_files),
        )


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
# Opened without following a final symlink, without blocking on a FIFO, and not inherited by children.
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC
)


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
    _refuse_outside(path, ref, rules)
    if not path.is_file():
        raise _not_regular(ref)
    return path


def _refuse_outside(path: Path, ref: str, rules: AttachmentRules) -> None:
    """Refuse a real path that may hold secrets or lies outside every allowed folder."""
    if (
        path.name.startswith(".env")
        or path in rules.refused_files
        or any(path.is_relative_to(d) for d in _NEVER_UNDER)
    ):
        raise AttachmentError(
            f"{ref} is never attached: it may hold secrets", advice="Attach a copy without secrets."
        )
    if not any(path.is_relative_to(folder) for folder in rules.allowed_dirs):
        folders = ", ".join(str(f) for f in rules.allowed_dirs)
        raise AttachmentError(
            f"{ref} is outside the folders attachments may come from ({folders})",
            advice="Move the file into one of them, or add its folder to POE_MCP_ALLOWED_DIRS.",
        )


def _not_regular(ref: str) -> AttachmentError:
    return AttachmentError(
        f"{ref} is not a regular file", advice="Attach a file, not a folder, pipe or device."
    )


async def _read_local(ref: str, rules: AttachmentRules) -> dict[str, Any]:
    path = check_local_path(ref, rules)
    data = await anyio.to_thread.run_sync(_read_checked, path, ref, rules)
    if len(data) > rules.max_bytes:  # stat() sizes can lie (procfs), so the bytes read decide
        with contextlib.suppress(OSError):  # the size to report, when stat() knows it
            raise _too_large(path.name, max(len(data), path.stat().st_size), rules)
        raise _too_large(path.name, len(data), rules)
    return to_part(data, sniff_mime(data, path.name), path.name)


def _read_checked(path: Path, ref: str, rules: AttachmentRules) -> bytes:
    """At most `max + 1` bytes of `path`, checked again on the opened descriptor itself.

    A folder on the way may have been swapped for a symlink since `check_local_path`: the descriptor's
    real path is what was opened, so it is the one that must be inside the sandbox.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        raise AttachmentError(
            f"Could not open {ref}: it changed while being read",
            advice="Attach a file that is not being moved or replaced.",
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_regular(ref)
        _refuse_outside(_opened_path(fd, path), ref, rules)
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read(rules.max_bytes + 1)
    finally:
        os.close(fd)


def _opened_path(fd: int, opened: Path) -> Path:
    """The real path of an open descriptor: /proc on Linux, F_GETPATH on macOS."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        pass
    import fcntl

    if hasattr(fcntl, "F_GETPATH"):
        raw = fcntl.fcntl(fd, fcntl.F_GETPATH, b"\0" * 1024)
        return Path(os.fsdecode(raw.rstrip(b"\0")))
    return opened  # no way to ask: the checks before opening stand alone


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


async def check_public_host(host: str) -> None:
    """Refuse hosts that are, or resolve to, loopback, private, link-local or other non-public addresses."""
    try:
        await public_addresses(host)
    except HostUnresolvable as error:
        raise AttachmentError(str(error), advice="Check the URL.") from None
    except HostRefused as error:
        raise AttachmentError(
            str(error),
            advice="Only public https:// URLs may be attached; download the file into an allowed folder instead.",
        ) from None


async def _fetch_url(ref: str, rules: AttachmentRules, http: httpx2.AsyncClient) -> dict[str, Any]:
    # Parsed by the client that fetches it, so the host checked is the host connected to.
    url = httpx2.URL(ref)
    await check_public_host(url.host)
    name = Path(url.path).name or "attachment"
    try:
        # One deadline for the whole fetch: httpx's timeout is per read, which a server sending a
        # byte a second never trips.
        with anyio.fail_after(URL_TIMEOUT):
            data, declared = await _download(url, ref, name, rules, http)
    except TimeoutError:
        raise AttachmentError(
            f"Fetching {ref} took longer than {URL_TIMEOUT:g} s",
            advice="Attach a local copy, or a URL that answers faster.",
        ) from None
    mime = (
        declared if declared and declared != "application/octet-stream" else sniff_mime(data, name)
    )
    return to_part(data, mime, name)


async def _download(
    url: httpx2.URL, ref: str, name: str, rules: AttachmentRules, http: httpx2.AsyncClient
) -> tuple[bytes, str]:
    """The body (at most the cap) and its declared type."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with http.stream("GET", url, timeout=URL_TIMEOUT, follow_redirects=False) as response:
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
    return b"".join(chunks), declared


async def load_attachment(
    ref: str, rules: AttachmentRules, http: httpx2.AsyncClient
) -> dict[str, Any]:
    """One attachment reference (path, https:// URL or data: URL) as an OpenAI content part."""
    if not isinstance(ref, str) or not ref.strip() or "\x00" in ref:
        raise AttachmentError("An attachment must be a non-empty path or URL")
    try:
        return await _load(ref.strip(), rules, http)
    except (ValueError, OSError, httpx2.InvalidURL) as error:  # UnicodeError is a ValueError
        raise AttachmentError(
            f"The attachment {ref[:200]!r} is not a usable path or URL ({type(error).__name__})",
            advice="Give an existing file's path, a public https:// URL or a data: URL.",
        ) from None


async def _load(ref: str, rules: AttachmentRules, http: httpx2.AsyncClient) -> dict[str, Any]:
    if any(c.isspace() or not c.isprintable() for c in ref) and "://" in ref:
        raise AttachmentError(
            f"The URL {ref[:200]!r} holds whitespace or control characters",
            advice="Percent-encode them, or check the URL.",
        )
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
