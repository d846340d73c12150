"""Keeping the key and the bearer token out of everything that leaves the process or lands on disk.

A caller may paste the key into a prompt, and an echoing model sends it straight back: so results,
progress messages, stored turns and log lines are redacted whatever wrote them, not only errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "[redacted]"
Secrets = Sequence[str | None]


def _usable(secrets: Secrets) -> list[str]:
    # Shorter values would mask ordinary words; no real key or token is that short.
    return [s for s in secrets if s and len(s) >= 4]


def redact(text: str, secrets: Secrets) -> str:
    for secret in _usable(secrets):
        text = text.replace(secret, MASK)
    return text


def redact_value(value: Any, secrets: Secrets) -> Any:
    """Every string inside a JSON-like value, redacted (keys too); other values unchanged."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [redact_value(item, secrets) for item in value]
    if isinstance(value, dict):
        return {redact(str(k), secrets): redact_value(v, secrets) for k, v in value.items()}
    return value


def redact_result(result: Any, secrets: Secrets) -> Any:
    """A tool result with every text block and its structured content redacted, in place."""
    from mcp.types import TextContent  # here, so the command line's logging need not import MCP

    if not _usable(secrets):
        return result
    for block in getattr(result, "content", None) or ():
        if isinstance(block, TextContent):
            block.text = redact(block.text, secrets)
    structured = getattr(result, "structured_content", None)
    if structured is not None and _mentions(structured, secrets):
        result.structured_content = redact_value(structured, secrets)
    return result


def _mentions(value: Any, secrets: Secrets) -> bool:
    dumped = json.dumps(value, default=str, ensure_ascii=False)
    return any(secret in dumped for secret in _usable(secrets))


class StreamRedactor:
    """Redacts text that arrives in pieces: a secret may be split across two of them, so a tail that
    could begin one is held back until the next piece (or the end) shows whether it does. Only such a
    tail: holding back a key's length of every stream (40-odd characters) would hold back its first
    words, which a person watching the progress would wait ~10 tokens for."""

    def __init__(self, secrets: Secrets) -> None:
        self._secrets = _usable(secrets)
        self._tail = ""

    def feed(self, piece: str) -> str:
        """The part of the text so far that can be shown safely."""
        if not self._secrets:
            return piece
        text = redact(self._tail + piece, self._secrets)
        cut = len(text) - max(_secret_begun_at_end(text, s) for s in self._secrets)
        shown, self._tail = text[:cut], text[cut:]
        return shown

    def finish(self) -> str:
        """What was held back, once no more text will come."""
        rest, self._tail = redact(self._tail, self._secrets), ""
        return rest


def _secret_begun_at_end(text: str, secret: str) -> int:
    """The length of the longest end of `text` that is the start of `secret` (0 if none is)."""
    start = text.find(secret[0], max(0, len(text) - len(secret) + 1))
    while start != -1:
        if secret.startswith(text[start:]):
            return len(text) - start
        start = text.find(secret[0], start + 1)
    return 0


def shown_url(url: str) -> str:
    """A URL fit to show: scheme, host, port and path, never userinfo (credentials), query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record: message, arguments, traceback and stack alike."""

    def __init__(self, fmt: str, secrets: Secrets) -> None:
        super().__init__(fmt)
        self._secrets = _usable(secrets)

    def add_secret(self, secret: str | None) -> None:
        """One more value to mask from now on (hosted mode: a user's Poe key, once it is in use)."""
        if secret and secret not in self._secrets and _usable([secret]):
            self._secrets.append(secret)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


def mask_in_logs(secret: str | None) -> None:
    """Have every redacting log handler mask `secret` too."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, RedactingFormatter):
            handler.formatter.add_secret(secret)


class RedactingStore:
    """A ConversationStore whose stored turns never hold a secret (a prompt may carry the key)."""

    def __init__(self, store: Any, secrets: Secrets) -> None:
        self._store = store
        self._secrets = tuple(secrets)

    async def append(
        self, session_id: str, model: str, messages: Any, *args: Any, **kw: Any
    ) -> Any:
        return await self._store.append(
            session_id, model, redact_value(messages, self._secrets), *args, **kw
        )

    def __getattr__(self, name: str) -> Any:  # everything else is the store's own
        return getattr(self._store, name)
