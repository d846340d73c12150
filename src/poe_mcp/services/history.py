"""A stored history as it goes on the wire, kept per session so that a turn handles only the messages
added since the last one: at 2,000 turns, walking the whole history in Python on every call cost more
than the request itself."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..poe.types import ChatMessage

ATTACHMENT_PART = (
    "poe_mcp_attachment"  # a user's file, stored by reference and read again on resend
)


def holds_attachments(message: ChatMessage) -> bool:
    """Only the caller's own (user) turns may hold references: nothing from Poe may name a file."""
    content = message.get("content")
    return (
        message.get("role") == "user"
        and isinstance(content, list)
        and any(isinstance(p, dict) and p.get("type") == ATTACHMENT_PART for p in content)
    )


@dataclass
class WireHistory:
    """A history without its system messages, the newest of them, and which messages hold references."""

    messages: list[ChatMessage] = field(default_factory=list)
    system: str | None = None
    with_attachments: list[int] = field(default_factory=list)  # indices into `messages`

    def extended(self, added: list[ChatMessage]) -> WireHistory:
        if not added:
            return self  # never changed in place: callers build their own lists from it
        messages, system, refs = list(self.messages), self.system, list(self.with_attachments)
        for message in added:
            if message.get("role") == "system":
                content: Any = message.get("content")
                system = content
                continue
            if holds_attachments(message):
                refs.append(len(messages))
            messages.append(message)
        return WireHistory(messages, system, refs)


@dataclass
class _Seen:
    length: int
    first: ChatMessage
    last: ChatMessage
    wire: WireHistory


class WireHistories:
    """The last few sessions' wire histories. A store that answers a known session with the same message
    objects plus new ones (the SQLite store's in-memory history does) costs O(new messages); any other
    history (another store, a cleared and restarted session) is walked whole, as before."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, _Seen] = OrderedDict()

    def of(self, session_id: str, history: list[ChatMessage]) -> WireHistory:
        seen = self._seen.get(session_id)
        if (
            seen is not None
            and len(history) >= seen.length
            and history[0] is seen.first
            and history[seen.length - 1] is seen.last
        ):
            wire = seen.wire.extended(history[seen.length :])
        else:
            wire = WireHistory().extended(history)
        if history:
            self._seen[session_id] = _Seen(len(history), history[0], history[-1], wire)
            self._seen.move_to_end(session_id)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        return wire
