"""Poe's Responses API (`POST /v1/responses`): the third path, chosen per model, and its wire translation.

Conversations stay stored as OpenAI chat messages whichever path answered them: this module turns them
into Responses `input` items on the way out, and the answer (JSON, or typed SSE events) into the same
Completion the chat path returns, so a session can move between the paths at any turn.

Shapes follow Poe's documentation (docs/external-applications/responses-api, api-reference/
createResponse): `reasoning: {effort, summary}`, the built-in `web_search_preview` tool, `text.format`
for JSON output, function tools flat (`{type, name, parameters}`), `function_call` output items answered
by `function_call_output` input items, and usage as `input_tokens` / `output_tokens`. `instructions` is
reported ignored by Poe, so system messages travel as `system` input items; `previous_response_id` fails
on Poe, so the whole history is sent each turn, as on the chat path.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

from ..catalog import ModelInfo
from ..errors import (
    InvalidRequestError,
    PoeError,
    UnparseableResponseError,
    classify,
    translate,
)
from ..sampling import Sampling
from ..streaming import StreamAssembler, plain_text
from ..types import ChatMessage, ChatRequest, Completion, ToolCall, Usage
from .openai import OpenAIBackend

CHAT_ENDPOINT, RESPONSES_ENDPOINT = "/v1/chat/completions", "/v1/responses"
APIS = ("chat", "responses")
WEB_SEARCH_TOOL = {"type": "web_search_preview"}
# Responses API `incomplete_details.reason` as chat's finish_reason.
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
# Sampling fields the Responses API has no place for: said in a note, not sent.
NOT_CARRIED = ("stop", "seed")


def responses_only(model: ModelInfo | None) -> bool:
    """A model whose catalog entry lists /v1/responses and not /v1/chat/completions."""
    endpoints = model.supported_endpoints if model is not None else ()
    return RESPONSES_ENDPOINT in endpoints and CHAT_ENDPOINT not in endpoints


def has_builtin_web_search(model: ModelInfo | None) -> bool:
    """The Responses built-in web search: models whose entry has the `web_search` feature (an unknown
    model is given the benefit of the doubt: Poe documents the Responses API for all models)."""
    if model is None:
        return True
    return "web_search" in model.supported_features and (
        not model.supported_endpoints or RESPONSES_ENDPOINT in model.supported_endpoints
    )


def choose_api(request: ChatRequest, model: ModelInfo | None, catalog: list[ModelInfo]) -> str:
    """Which API answers `request` ("chat" or "responses"); settles `web_search` on the way.

    A responses-only model always uses the Responses API; `api` chooses for the others. `web_search`
    takes the built-in tool where the model has it (on the Responses path), else the model's own
    `web_search` parameter, else it is refused naming models that can search.
    """
    if request.api is not None and request.api not in APIS:
        raise InvalidRequestError(
            f"api must be chat or responses, not {request.api!r}",
            advice="Fix it and call again; nothing was sent to Poe.",
        )
    name = model.id if model is not None else request.model
    if request.api == "chat" and responses_only(model):
        raise InvalidRequestError(
            f"{name} answers only over the Responses API",
            advice='Omit api, or pass api: "responses".',
        )
    api = "responses" if request.api == "responses" or responses_only(model) else "chat"
    if not request.web_search:
        return api
    if request.api != "chat" and has_builtin_web_search(model):
        return "responses"
    if model is not None and model.parameter("web_search") is not None:
        request.parameters.setdefault("web_search", True)
        return api
    able = [
        m.id
        for m in catalog
        if "text" in m.output_modalities
        and (has_builtin_web_search(m) or m.parameter("web_search") is not None)
    ]
    raise InvalidRequestError(
        f"{name} cannot search the web"
        + (" over chat completions" if request.api == "chat" and model is not None else ""),
        advice=f"Use a model that can, e.g. {', '.join(able[:6]) or 'one with web_search in list_models'}"
        + (", or omit api" if request.api == "chat" else "")
        + ".",
    )


# -- the request ------------------------------------------------------------------------------


def request_body(request: ChatRequest, stream: bool) -> tuple[dict[str, Any], list[str]]:
    """The /v1/responses body for a request, and notes on what the Responses API cannot carry."""
    body: dict[str, Any] = {
        "model": request.model,
        "input": input_items(request.messages),
        **request.parameters,
    }
    notes = _sampling(body, request.sampling)
    tools = [_function_tool(t) for t in request.tools or ()]
    if request.web_search and "web_search" not in request.parameters:
        tools.append(dict(WEB_SEARCH_TOOL))
    if tools:
        body["tools"] = tools
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if stream:
        body["stream"] = True
    return body, notes


def _sampling(body: dict[str, Any], sampling: Sampling) -> list[str]:
    for name in ("temperature", "top_p", "user"):
        value = getattr(sampling, name)
        if value is not None:
            body[name] = value
    if sampling.metadata is not None:
        body["metadata"] = dict(sampling.metadata)
    limit = sampling.max_completion_tokens or sampling.max_tokens
    if limit is not None:
        body["max_output_tokens"] = limit
    if sampling.logprobs:
        body["include"] = ["message.output_text.logprobs"]
        if sampling.top_logprobs is not None:
            body["top_logprobs"] = sampling.top_logprobs
    if sampling.reasoning_effort is not None:
        body["reasoning"] = {"effort": sampling.reasoning_effort, "summary": "auto"}
    response_format = sampling.response_format
    if response_format is not None:
        wire = response_format.to_wire()
        body["text"] = {
            "format": {"type": "json_schema", **wire["json_schema"]}
            if "json_schema" in wire
            else wire
        }
    dropped = [name for name in NOT_CARRIED if getattr(sampling, name) is not None]
    return (
        [f"The Responses API has no {' or '.join(dropped)}, so it was not sent"] if dropped else []
    )


def _function_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """Chat's `{type: function, function: {name, description, parameters}}` as the Responses API's flat form."""
    function = tool.get("function") or {}
    return {
        "type": "function",
        **{k: function[k] for k in ("name", "description", "parameters") if k in function},
    }


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, dict):
        function = choice.get("function", choice)
        return {"type": "function", "name": function.get("name")}
    return choice


def input_items(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """OpenAI chat messages (as sessions store them) as Responses `input` items."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id"),
                    "output": content if isinstance(content, str) else json.dumps(content),
                }
            )
            continue
        if role == "assistant":
            text = plain_text(content)
            if text:
                items.append(
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": text}],
                    }
                )
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.get("id"),
                        "name": function.get("name"),
                        "arguments": function.get("arguments") or "{}",
                    }
                )
            continue
        # developer as system: Poe has refused the developer role on its other API
        role = "system" if role in ("system", "developer") else "user"
        items.append({"type": "message", "role": role, "content": _input_content(content)})
    return items


def _input_content(content: Any) -> str | list[dict[str, Any]]:
    if not isinstance(content, list):
        return plain_text(content)
    parts: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text"):
            parts.append({"type": "input_text", "text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url") if isinstance(image, dict) else image
            item: dict[str, Any] = {"type": "input_image", "image_url": url}
            if isinstance(image, dict) and image.get("detail"):
                item["detail"] = image["detail"]
            parts.append(item)
        elif kind == "file":
            file = part.get("file") or {}
            parts.append(
                {
                    "type": "input_file",
                    "filename": file.get("filename"),
                    "file_data": file.get("file_data"),
                }
            )
    return parts


# -- the answer -------------------------------------------------------------------------------


def usage_from_wire(data: Any) -> Usage | None:
    """The Responses API's `usage` (`input_tokens`, `output_tokens`, their details) as chat's Usage."""
    if not isinstance(data, dict):
        return None
    return Usage.from_wire(
        {
            "prompt_tokens": data.get("input_tokens"),
            "completion_tokens": data.get("output_tokens"),
            "total_tokens": data.get("total_tokens"),
            "prompt_tokens_details": data.get("input_tokens_details"),
            "completion_tokens_details": data.get("output_tokens_details"),
        }
    )


def finish_reason(response: dict[str, Any], has_calls: bool) -> str | None:
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details") or {}
        return INCOMPLETE_REASONS.get(str(details.get("reason")), "length")
    if status in ("completed", None):
        return "tool_calls" if has_calls else "stop"
    return None


def response_error(response: dict[str, Any]) -> PoeError | None:
    """A `failed` response's error (or an `error` event), as the PoeError Poe's chat errors become."""
    error = response.get("error")
    if response.get("status") != "failed" and not error:
        return None
    error = error if isinstance(error, dict) else {"message": "The model failed to answer"}
    status = 429 if error.get("code") == "rate_limit_exceeded" else 502
    return classify(status, {"error": error})


def _summaries(item: dict[str, Any]) -> str:
    return "".join(
        part.get("text") or ""
        for part in item.get("summary") or ()
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def completion_from_wire(raw: dict[str, Any], model: str) -> Completion:
    """A `response` object as Poe sends it into a Completion (text, function calls, reasoning summaries)."""
    error = response_error(raw)
    if error is not None:
        raise error
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for item in raw.get("output") or ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            texts.append(plain_text(item.get("content")))
        elif kind == "reasoning":
            reasoning.append(_summaries(item))
        elif kind == "function_call":
            calls.append(_tool_call(item, len(calls)))
    text = "".join(texts)
    if not text and isinstance(raw.get("output_text"), str):
        text = raw["output_text"]
    return Completion(
        text=text,
        model=str(raw.get("model") or model),
        finish_reason=finish_reason(raw, bool(calls)),
        usage=usage_from_wire(raw.get("usage")),
        tool_calls=calls,
        reasoning="".join(reasoning) or None,
        raw=raw,
        id=raw["id"] if isinstance(raw.get("id"), str) else None,
    )


def _tool_call(item: dict[str, Any], index: int) -> ToolCall:
    arguments = item.get("arguments")
    return ToolCall(
        str(item.get("call_id") or item.get("id") or f"call_{index}"),
        str(item.get("name") or ""),
        arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
    )


class ResponsesBackend(OpenAIBackend):
    """/v1/responses through the same SDK client, pool and error translation as chat completions."""

    async def complete(self, request: ChatRequest) -> Completion:
        """One answer; any failure is left to the client's request policy to translate."""
        body, notes = request_body(request, stream=False)
        response = await self._client.post("/responses", body=body, cast_to=httpx2.Response)
        raw = response.json()
        if not isinstance(raw, dict):
            raise UnparseableResponseError("Poe sent a response that is not a Responses API object")
        completion = completion_from_wire(raw, request.model)
        completion.notes[:0] = notes
        return completion

    async def stream(self, request: ChatRequest, assembler: StreamAssembler) -> Completion:
        body, notes = request_body(request, stream=True)
        events = EventReader(assembler)
        stream = None
        try:
            stream = await self._client.post(
                "/responses",
                body=body,
                cast_to=object,
                stream=True,
                stream_cls=self._openai.AsyncStream[object],
            )
            async for event in stream:
                if isinstance(event, dict):
                    await events.read(event)
        except Exception as exc:
            return events.assembler.broken(translate(exc, self._timeout))
        finally:
            if stream is not None:  # also on cancellation: close the upstream response at once
                await stream.close()
        completion = events.assembler.completion()
        completion.notes[:0] = notes
        if completion.usage is None:
            completion.notes.append(
                "Poe sent no token usage for this stream, so no cost was estimated"
            )
        return completion


class EventReader:
    """The Responses API's typed SSE events into a StreamAssembler: text and reasoning-summary deltas
    relayed as they come, function calls joined by output index, the final `response` for usage."""

    def __init__(self, assembler: StreamAssembler) -> None:
        self.assembler = assembler

    async def read(self, event: dict[str, Any]) -> None:
        a = self.assembler
        kind = event.get("type")
        if kind == "response.output_text.delta":
            await a.add_text(event.get("delta"))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            a.add_reasoning(event.get("delta"))
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                index = int(event.get("output_index") or 0)
                whole = kind.endswith(".done") and not a.has_arguments(index)
                arguments = item.get("arguments") if whole else None
                a.add_tool_call_delta(
                    index,
                    item.get("call_id"),
                    item.get("name"),
                    arguments if isinstance(arguments, str) else None,
                )
        elif kind == "response.function_call_arguments.delta":
            a.add_tool_call_delta(
                int(event.get("output_index") or 0), None, None, event.get("delta")
            )
        elif kind in ("response.created", "response.in_progress"):
            response = event.get("response") or {}
            if a.id is None and isinstance(response.get("id"), str):
                a.id = response["id"]
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            await self._end(event.get("response") or {})
        elif kind == "error":
            raise classify(502, {"error": event})

    async def _end(self, response: dict[str, Any]) -> None:
        a = self.assembler
        error = response_error(response)
        if error is not None:
            raise error
        a.usage = usage_from_wire(response.get("usage"))
        final = completion_from_wire(response, a.model) if response.get("output") else None
        if final is not None:  # what the deltas left out (Poe's output_text is sometimes missing)
            if not a.has_text and final.text:
                await a.add_text(final.text)
            if not a.has_tool_calls:
                for index, call in enumerate(final.tool_calls):
                    a.add_tool_call_delta(index, call.id, call.name, call.arguments_raw)
        a.finish(finish_reason(response, a.has_tool_calls))
