"""Poe's bot protocol (`/bot/<name>`) through `fastapi_poe`, behind the same Backend interface as openai.

`fastapi_poe` is imported only when this backend is chosen (the `legacy` extra). Its own retries
(two tries, 0.5 s apart) and its default error handler (a `print` to stdout, fatal for stdio MCP)
are both replaced: one try per call, our retry policy around it, errors to the log on stderr.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx

from ..errors import InvalidRequestError, classify, translate
from ..streaming import StreamAssembler, cap_body
from ..types import ChatMessage, ChatRequest, Completion

log = logging.getLogger(__name__)

ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "bot",
    "tool": "tool",
}  # the protocol says "bot", not "assistant"
# The protocol's query carries only these chat settings (reasoning_effort as the bot's parameter of that
# name); anything else a caller set is reported back as not honoured.
CARRIED_SAMPLING = ("temperature", "stop", "reasoning_effort")
UNSUPPORTED_REQUEST_FIELDS = ("tool_choice", "parallel_tool_calls")
DEFAULT_UPLOAD_URL = "https://www.quora.com/poe_api/"


def import_fastapi_poe() -> Any:
    try:
        import fastapi_poe
    except ImportError:
        raise InvalidRequestError(
            "POE_MCP_BACKEND=fastapi_poe needs the fastapi_poe package, which is not installed",
            advice="Install the legacy extra (pip install 'poe-mcp[legacy]'), or set POE_MCP_BACKEND=openai.",
        ) from None
    return fastapi_poe


async def _raise_for_status(response: httpx.Response) -> None:
    """fastapi_poe hides HTTP statuses inside BotError; catch them first, as Poe's error types."""
    if response.status_code >= 400:
        await response.aread()
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        raise classify(response.status_code, body, response.headers)


def unsupported_inputs(request: ChatRequest) -> list[str]:
    uncarried = [name for name in request.sampling.wire() if name not in CARRIED_SAMPLING]
    return uncarried + [
        name for name in UNSUPPORTED_REQUEST_FIELDS if getattr(request, name) not in (None, [], {})
    ]


class BotProtocolBackend:
    def __init__(
        self, api_key: str, origin: str, timeout: float, max_response_bytes: int = 32_000_000
    ) -> None:
        self._fp = import_fastapi_poe()
        self._key = api_key
        self._base_url = f"{origin}/bot/"
        # api.poe.com's uploads go to Poe's upload host; any other origin (a proxy, a test) serves them itself.
        self._upload_url = (
            DEFAULT_UPLOAD_URL if origin == "https://api.poe.com" else f"{origin}/poe_api/"
        )
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._http = httpx.AsyncClient(
            timeout=timeout, event_hooks={"response": [_raise_for_status, self._cap]}
        )

    async def _cap(self, response: httpx.Response) -> None:
        cap_body(response, self._max_response_bytes)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _on_error(self, error: Exception, message: str) -> None:
        log.info("%s: %s", message, type(error).__name__)

    async def complete(self, request: ChatRequest) -> Completion:
        return await self.stream(request, StreamAssembler(request.model, None))

    async def stream(self, request: ChatRequest, assembler: StreamAssembler) -> Completion:
        fp = self._fp
        query, tool_calls, tool_results = await self._query(request)
        media: list[str] = []
        try:
            async for message in fp.client.stream_request_base(
                query,
                request.model,  # catalog ids are Poe's bot handles (poe.com/<id>)
                self._key,
                tools=[fp.ToolDefinition(**t) for t in request.tools] if request.tools else None,
                tool_calls=tool_calls,
                tool_results=tool_results,
                session=self._http,
                on_error=self._on_error,
                num_tries=1,
                base_url=self._base_url,
            ):
                await self._absorb(assembler, message, media)
        except Exception as exc:
            return assembler.broken(translate(exc, self._timeout))
        assembler.finish(
            "tool_calls" if assembler.has_tool_calls else "stop"
        )  # `done` arrived: the answer is whole
        completion = assembler.completion()
        completion.media_urls = media
        completion.notes = [
            f"{name} is not supported by the bot protocol and was not sent"
            for name in unsupported_inputs(request)
        ]
        return completion

    @staticmethod
    async def _absorb(assembler: StreamAssembler, message: Any, media: list[str]) -> None:
        if getattr(message, "attachment", None) is not None:
            media.append(message.attachment.url)
            return
        data = getattr(message, "data", None)
        if isinstance(data, dict) and data.get(
            "choices"
        ):  # OpenAI-style chunks in `json` events: tool calls
            delta = data["choices"][0].get("delta") or {}
            assembler.add_tool_calls_of(delta)
            await assembler.add_text(delta.get("content"))
            return
        if (
            getattr(message, "is_suggested_reply", False)
            or message.__class__.__name__ == "MetaMessage"
        ):
            return
        if message.is_replace_response:
            await assembler.replace_text(message.text)
            return
        await assembler.add_text(message.text)

    async def _query(self, request: ChatRequest) -> tuple[Any, Any, Any]:
        """The QueryRequest, plus the last round's tool calls and results, which the protocol sends apart."""
        fp = self._fp
        messages = list(request.messages)
        tool_calls = tool_results = None
        trailing: list[ChatMessage] = []
        while messages and messages[-1].get("role") == "tool":
            trailing.insert(0, messages.pop())
        if trailing and messages and messages[-1].get("tool_calls"):
            asked = messages.pop()
            tool_calls = [fp.ToolCallDefinition(**call) for call in asked["tool_calls"]]
            names = {c["id"]: c["function"]["name"] for c in asked["tool_calls"]}
            tool_results = [
                fp.ToolResultDefinition(
                    role="tool",
                    tool_call_id=m["tool_call_id"],
                    name=names.get(m["tool_call_id"], ""),
                    content=m["content"],
                )
                for m in trailing
            ]
        else:
            messages += trailing
        query = [await self._message(m) for m in messages]
        parameters = dict(request.parameters)
        if request.sampling.reasoning_effort is not None:
            parameters["reasoning_effort"] = request.sampling.reasoning_effort
        if query and parameters:
            query[-1] = query[-1].model_copy(update={"parameters": parameters})
        sampling = request.sampling
        fields: dict[str, Any] = {
            "temperature": sampling.temperature,
            "stop_sequences": list(sampling.stop) if sampling.stop else None,
        }
        return (
            fp.QueryRequest(
                query=query,
                user_id="",
                conversation_id="",
                message_id="",
                version="1.2",
                type="query",
                **{k: v for k, v in fields.items() if v is not None},
            ),
            tool_calls,
            tool_results,
        )

    async def _message(self, message: ChatMessage) -> Any:
        fp = self._fp
        content = message.get("content")
        attachments = []
        if isinstance(content, list):
            texts = []
            for part in content:
                if part.get("type") == "text":
                    texts.append(part.get("text", ""))
                elif part.get("type") in ("image_url", "file"):
                    attachments.append(await self._upload(part))
            content = "\n".join(texts)
        if message.get("tool_calls"):  # an earlier round's calls, kept readable in the history
            content = (
                (content or "") + "\n" + json.dumps([c["function"] for c in message["tool_calls"]])
            )
        return fp.ProtocolMessage(
            role=ROLES.get(message.get("role", "user"), "user"),
            content=content or "",
            attachments=attachments,
        )

    async def _upload(self, part: dict[str, Any]) -> Any:
        """A data-URL part goes through Poe's upload API (the key in `Authorization`, without Bearer)."""
        if part["type"] == "image_url":
            url, name = part["image_url"]["url"], "image"
        else:
            url, name = part["file"]["file_data"], part["file"].get("filename") or "file"
        header, _, payload = url.partition(",")
        # No shared session here: upload_file closes the client it is given when it is done.
        source: dict[str, Any] = (
            {"file": base64.b64decode(payload), "file_name": name}
            if header.startswith("data:")
            else {"file_url": url}
        )
        return await self._fp.upload_file(
            **source,
            api_key=self._key,
            on_error=self._on_error,
            num_tries=1,
            base_url=self._upload_url,
        )
