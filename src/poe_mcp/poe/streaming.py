"""Assembling a streamed answer, shared by both backends: text, reasoning, tool-call deltas, usage;
and the size cap every body read from Poe is held to (`cap_body`)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from .errors import PoeConnectionError, PoeError, ResponseTooLargeError, response_too_large
from .types import Completion, TextListener, ToolCall, Usage

# A request that reads its body under its own limit (a media download) says so in this extension.
OWN_LIMIT = "poe_mcp.own_limit"


@functools.cache
def _capped_stream_class(library: str) -> type:
    """A byte stream of `library` (httpx or httpx2) that raises once more than `limit` bytes passed."""
    base = importlib.import_module(library).AsyncByteStream

    class CappedStream(base):  # type: ignore[misc, valid-type]
        def __init__(self, inner: Any, limit: int) -> None:
            self.inner, self.limit = inner, limit

        async def __aiter__(self) -> AsyncIterator[bytes]:
            seen = 0
            async for chunk in self.inner:
                seen += len(chunk)
                if seen > self.limit:
                    raise response_too_large(self.limit)
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    return CappedStream


def cap_body(response: Any, limit: int) -> None:
    """Hold a response's body to `limit` bytes as it is read, streamed or not (an httpx or httpx2
    response, from a `response` event hook, before its body is read): past it, reading raises
    ResponseTooLargeError and memory stays bounded. Requests marked OWN_LIMIT keep their own cap."""
    if response.request.extensions.get(OWN_LIMIT):
        return
    library = type(response).__module__.split(".", 1)[0]
    response.stream = _capped_stream_class(library)(response.stream, limit)


def plain_text(content: Any) -> str:
    """What Poe sent as message or delta `content`, as plain text: a string, or the text of OpenAI's
    text parts. Anything else a reply holds (an image part, a part shaped like poe-mcp's own attachment
    reference, a number) is dropped: a reply is data, and must never become an internal part type."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") in ("text", "output_text")
            and isinstance(part.get("text"), str)
        )
    return ""


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamAssembler:
    """Collects deltas as they arrive and relays text to the listener at once."""

    def __init__(self, model: str, listener: TextListener | None) -> None:
        self.model = model
        self._listener = listener
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _PartialCall] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.id: str | None = None  # the answer's id, as its chunks (or events) carry it
        # Once anything arrived (text, reasoning, a tool-call delta) the call is paid: it is never re-sent.
        self.received = False

    async def add_text(self, content: Any) -> None:
        piece = plain_text(content)
        if not piece:
            return
        self._text.append(piece)
        self.received = True
        if self._listener is not None:
            await self._listener(piece)

    async def replace_text(self, text: str) -> None:
        """The bot protocol's replace_response: the text so far is dropped. A listener that has an
        async `replace(text)` is told, so that what it showed can be redrawn; others only ever see
        additions, so they are given none of the replacement."""
        self._text = [text]
        self.received = True
        replace = getattr(self._listener, "replace", None)
        if replace is not None:
            await replace(text)

    def add_reasoning(self, content: Any) -> None:
        piece = plain_text(content)
        if piece:
            self._reasoning.append(piece)
            self.received = True

    def add_tool_calls_of(self, delta: dict[str, Any]) -> None:
        """Every tool-call piece in one OpenAI-style chunk `delta`."""
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            self.add_tool_call_delta(
                call.get("index", 0),
                call.get("id"),
                function.get("name"),
                function.get("arguments"),
            )

    def add_tool_call_delta(
        self, index: int, id: str | None, name: str | None, arguments: str | None
    ) -> None:
        """Join OpenAI-style tool-call deltas by `index`: id and name come once, arguments in pieces."""
        call = self._calls.setdefault(index, _PartialCall())
        self.received = True
        if id:
            call.id = id
        if name and not call.name:
            call.name = name
        if arguments:
            call.arguments.append(arguments)

    def has_arguments(self, index: int) -> bool:
        """Whether some arguments of the call at `index` arrived already (a last whole copy is then not added)."""
        call = self._calls.get(index)
        return call is not None and bool(call.arguments)

    @property
    def has_text(self) -> bool:
        return bool(self._text)

    @property
    def has_tool_calls(self) -> bool:
        return bool(self._calls)

    def finish(self, reason: str | None) -> None:
        if reason:
            self.finish_reason = reason

    def _build(self) -> Completion:
        return Completion(
            text="".join(self._text),
            model=self.model,
            finish_reason=self.finish_reason,
            usage=self.usage,
            tool_calls=[
                ToolCall(call.id or f"call_{index}", call.name, "".join(call.arguments))
                for index, call in sorted(self._calls.items())
            ],
            reasoning="".join(self._reasoning) or None,
            id=self.id,
        )

    def completion(self) -> Completion:
        """The whole answer of a stream that ended cleanly.

        On Poe, streamed answers of several providers (Grok, Gemini, Qwen, GLM, Kimi, MiniMax) end without
        a `finish_reason`, most often after complete tool calls: what arrived is the answer, and the finish
        reason is inferred. Only a stream that brought nothing at all is an error (and may be retried).
        """
        if self.finish_reason is not None:
            return self._build()
        if not self.received:
            raise PoeConnectionError("The stream ended before the model sent anything")
        self.finish_reason = "tool_calls" if self._calls else "stop"
        completion = self._build()
        completion.notes.append(
            f"Poe's stream ended without a finish_reason; the answer was taken as complete ({self.finish_reason})"
        )
        return completion

    def broken(self, error: PoeError) -> Completion:
        """What arrived before the stream broke, marked as an error; raises instead if nothing arrived
        yet, or if the answer was cut at the size cap (what came is not kept, nor returned)."""
        if not self.received:
            raise error  # nothing was paid for: the call may be retried whole
        if isinstance(error, ResponseTooLargeError):
            self._text, self._reasoning, self._calls = [], [], {}
            raise error
        completion = self._build()
        completion.finish_reason = "error"
        completion.error = error
        error.advice = (
            "The answer is incomplete: the text received so far is included. " + error.advice
        )
        return completion
