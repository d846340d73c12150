"""The small typed objects the services pass around; each backend translates them at its edge."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidResponseError, PoeError, UnparseableResponseError
from .sampling import Sampling

# OpenAI-format chat messages are Poe's lingua franca on /v1; the bot-protocol backend maps them.
ChatMessage = dict[str, Any]
# Called with each new piece of streamed text (and with None as a heartbeat when nothing new came).
TextListener = Callable[[str], Awaitable[None]]


@dataclass
class ChatRequest:
    model: str
    messages: list[ChatMessage]
    sampling: Sampling = field(default_factory=Sampling)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    # Streamed chat completions: the caller's own options (default: ask for usage).
    stream_options: dict[str, Any] | None = None
    # Which Poe API answers: "chat" (/v1/chat/completions), "responses" (/v1/responses), or None to let
    # the model's catalog entry decide (a model that lists only /v1/responses always uses it).
    api: str | None = None
    # Search the web: the Responses API's built-in tool, or the model's own `web_search` parameter.
    web_search: bool = False


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0  # of the prompt tokens, read from the provider's cache (priced lower)
    reasoning_tokens: int = 0  # of the completion tokens, spent on reasoning

    @classmethod
    def from_wire(cls, data: Any) -> Usage | None:
        """Poe's `usage` object; absent or null is None, any other shape (a list, a negative or
        fractional or textual count) is Poe's answer in a shape we cannot read: upstream_error."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise UnparseableResponseError(
                f"Poe sent a usage that is not an object ({type(data).__name__})"
            )
        prompt, completion = _count(data, "prompt_tokens"), _count(data, "completion_tokens")
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=_count(data, "total_tokens") or prompt + completion,
            cached_tokens=_count(data.get("prompt_tokens_details"), "cached_tokens"),
            reasoning_tokens=_count(data.get("completion_tokens_details"), "reasoning_tokens"),
        )


def _count(data: Any, name: str) -> int:
    """A token count from Poe's usage, where details may be missing or null; an odd count is refused."""
    if data is not None and not isinstance(data, dict):
        raise UnparseableResponseError(f"Poe sent usage details that are not an object ({name})")
    value = data.get(name) if isinstance(data, dict) else None
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UnparseableResponseError(
            f"Poe sent a usage count {name} that is not a whole number of tokens: {str(value)[:40]!r}"
        )
    return value


@dataclass
class ToolCall:
    id: str
    name: str
    arguments_raw: str

    @property
    def arguments(self) -> dict[str, Any] | None:
        """The parsed arguments, or None when the model's JSON is malformed."""
        try:
            value = json.loads(self.arguments_raw or "{}")
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_raw},
        }


@dataclass
class Completion:
    """One answer from Poe; `error` is set when a stream broke after text had arrived, or when the answer
    does not have the shape its response_format asked for."""

    text: str
    model: str
    finish_reason: str | None
    usage: Usage | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | None = None
    raw: dict[str, Any] | None = None
    error: PoeError | None = None
    cost_usd: float | None = None
    media_urls: list[str] = field(
        default_factory=list
    )  # files the bot attached (bot protocol `file` events)
    notes: list[str] = field(
        default_factory=list
    )  # inputs the backend could not honour, said rather than dropped

    # The JSON value of a response_format answer that parsed (and matched its schema).
    parsed: Any = None
    id: str | None = None  # Poe's id of the answer (a streamed one's chunks carry it)

    @property
    def complete(self) -> bool:
        """The whole answer arrived: no error, or only one about its shape (it was paid for and is kept)."""
        return self.error is None or isinstance(self.error, InvalidResponseError)

    def assistant_message(self) -> ChatMessage:
        """The assistant turn as OpenAI's format stores it in a history."""
        message: ChatMessage = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [call.to_wire() for call in self.tool_calls]
        return message

    def chat_object(self) -> dict[str, Any]:
        """The answer as a chat.completion object: Poe's own when it sent one whole, else assembled
        (a stream's chunks, or a Responses API answer) in the same shape."""
        if self.raw is not None and self.raw.get("object") == "chat.completion":
            return self.raw
        message = self.assistant_message()
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        usage = self.usage
        return {
            "id": self.id or "chatcmpl-poe-mcp",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": None
            if usage is None
            else {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
                "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            },
        }
