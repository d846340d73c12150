"""Poe's OpenAI-compatible API through the `openai` SDK (imported only when the first call needs it)."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from ..errors import UnparseableResponseError, UpstreamError, translate
from ..streaming import StreamAssembler, plain_text
from ..types import ChatMessage, ChatRequest, Completion, ToolCall, Usage


def request_body(request: ChatRequest, stream: bool, include_usage: bool = True) -> dict[str, Any]:
    """The chat-completions body for a request; custom parameters go top-level (what `extra_body` does)."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": poe_roles(request.messages),
        **request.parameters,
        **request.sampling.wire(),
    }
    for name in ("tools", "tool_choice", "parallel_tool_calls"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    body["stream"] = stream
    if stream and include_usage:
        body["stream_options"] = request.stream_options or {"include_usage": True}
    return body


def poe_roles(messages: list[ChatMessage]) -> list[ChatMessage]:
    """OpenAI's `developer` role as `system`: Poe has refused it ("Input should be 'system', 'user' or 'bot'")."""
    if not any(m.get("role") == "developer" for m in messages):
        return messages
    return [{**m, "role": "system"} if m.get("role") == "developer" else m for m in messages]


class OpenAIBackend:
    """One `AsyncOpenAI` over the process's shared HTTP client; our retry policy replaces the SDK's.

    Requests go through the client's low-level `post` with plain dicts: the SDK's typed request
    transform costs about a millisecond per call and adds nothing to a body that is already JSON.
    """

    def __init__(
        self, api_key: str, base_url: str, http: httpx2.AsyncClient, timeout: float
    ) -> None:
        import openai

        self._openai = openai
        self._timeout = timeout
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, http_client=http, max_retries=0, timeout=timeout
        )
        # Models that answered 400 `Unknown parameter: stream_options` (Poe does for some): asked without it since.
        self._refuse_stream_options: set[str] = set()

    async def complete(self, request: ChatRequest) -> Completion:
        """One non-streamed answer; any failure is left to the client's request policy to translate."""
        # The raw body, not the SDK's model: callers get exactly what Poe sent, extra fields included.
        response = await self._client.post(
            "/chat/completions",
            body=request_body(request, stream=False),
            cast_to=httpx2.Response,
        )
        raw = response.json()
        if not isinstance(raw, dict):
            raise UnparseableResponseError(
                "Poe sent a response that is not a chat-completion object"
            )
        return completion_from_wire(raw, request.model)

    async def stream(self, request: ChatRequest, assembler: StreamAssembler) -> Completion:
        stream = None
        try:
            stream = await self._open_stream(request)
            async for chunk in stream:
                if isinstance(chunk, dict):
                    await self._absorb(assembler, chunk)
        except Exception as exc:
            return assembler.broken(translate(exc, self._timeout))
        finally:
            if stream is not None:  # also on cancellation: close the upstream response at once
                await stream.close()
        completion = assembler.completion()
        if completion.usage is None:
            completion.notes.append(
                "Poe sent no token usage for this stream, so no cost was estimated"
            )
        return completion

    async def _open_stream(self, request: ChatRequest) -> Any:
        """Start the stream, asking for usage unless this model refuses `stream_options`; if it does, once more without."""
        include_usage = request.model.lower() not in self._refuse_stream_options
        try:
            return await self._post_stream(
                request_body(request, stream=True, include_usage=include_usage)
            )
        except self._openai.BadRequestError as exc:
            if not include_usage or "stream_options" not in str(exc):
                raise
            self._refuse_stream_options.add(request.model.lower())
            return await self._post_stream(request_body(request, stream=True, include_usage=False))

    async def _post_stream(self, body: dict[str, Any]) -> Any:
        return await self._client.post(
            "/chat/completions",
            body=body,
            cast_to=object,
            stream=True,
            stream_cls=self._openai.AsyncStream[object],
        )

    @staticmethod
    async def _absorb(assembler: StreamAssembler, chunk: dict[str, Any]) -> None:
        if assembler.id is None and isinstance(chunk.get("id"), str):
            assembler.id = chunk["id"]
        if chunk.get("usage"):
            assembler.usage = Usage.from_wire(chunk["usage"])
        choices = chunk.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise UnparseableResponseError("Poe sent a stream chunk whose choices are not objects")
        for choice in choices:
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise UnparseableResponseError(
                    "Poe sent a stream chunk whose delta is not an object"
                )
            assembler.add_reasoning(delta.get("reasoning_content"))
            assembler.add_tool_calls_of(delta)
            await assembler.add_text(delta.get("content"))
            assembler.finish(choice.get("finish_reason"))


def completion_from_wire(raw: dict[str, Any], model: str) -> Completion:
    """A chat.completion object as Poe sends it (see the recorded traffic) into a Completion."""
    choices = raw.get("choices") or []
    if not choices:
        raise UpstreamError(
            "Poe answered with no choices", advice="Try again, or use another model."
        )
    first = choices[0] if isinstance(choices, list) else None
    message = first.get("message") or {} if isinstance(first, dict) else None
    if not isinstance(first, dict) or not isinstance(message, dict):
        raise UnparseableResponseError("Poe sent a chat completion whose choice is not an object")
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list) or not all(isinstance(c, dict) for c in tool_calls):
        raise UnparseableResponseError("Poe sent tool calls that are not objects")
    calls = [
        ToolCall(
            str(c.get("id") or f"call_{i}"),
            str((c.get("function") or {}).get("name") or ""),
            _arguments(c),
        )
        for i, c in enumerate(tool_calls)
    ]
    return Completion(
        text=plain_text(message.get("content")),
        model=str(raw.get("model") or model),
        finish_reason=choices[0].get("finish_reason"),
        usage=Usage.from_wire(raw.get("usage")),
        tool_calls=calls,
        reasoning=plain_text(message.get("reasoning_content")) or None,
        raw=raw,
        id=raw["id"] if isinstance(raw.get("id"), str) else None,
    )


def _arguments(call: dict[str, Any]) -> str:
    arguments = (call.get("function") or {}).get("arguments")
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {})
