"""A fake Poe: a real HTTP server on a free loopback port, shaped on ../shared/fixtures/poe.

Serves `/v1/models` (the recorded catalog plus test models), `/v1/chat/completions` (JSON and SSE),
`/v1/responses` (JSON and typed SSE events, shaped on Poe's Responses API documentation), `/usage/*`, and any error of SPEC §4 on demand. Tests script replies with `enqueue`, read what was
sent in `requests`, and tune `latency` and stream pacing. Runs uvicorn in a thread so both in-process
tests and spawned `poe-mcp` processes reach it over a socket.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route

# A copy of shared/fixtures/poe (real recorded traffic), kept in the repo so a clone tests on its own.
FIXTURES = Path(__file__).parent / "fixtures" / "poe"
RECORDED = FIXTURES / "recorded"

# A model priced per request and one with a small custom-parameter schema, for tests the catalog lacks.
TEST_MODELS: list[dict[str, Any]] = [
    {
        "id": "test-flat-fee",
        "object": "model",
        "owned_by": "Poe",
        "description": "Test bot priced per request.",
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "supported_features": [],
        "pricing": {"prompt": None, "completion": None, "image": None, "request": "0.002"},
        "metadata": {"display_name": "Test-Flat-Fee"},
        "parameters": [
            {"name": "mood", "schema": {"type": "string", "enum": ["calm", "cheerful"]}}
        ],
    },
    {  # answers JSON whatever response_format asks for, as a provider that ignores the schema does
        "id": "test-sloppy-json",
        "object": "model",
        "owned_by": "Poe",
        "description": "Test bot that ignores response_format schemas.",
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "supported_features": [],
        "pricing": {"prompt": "0.000001", "completion": "0.000002"},
        "metadata": {"display_name": "Test-Sloppy-JSON"},
    },
]
# Like the catalog's gpt-5.3-codex-spark (listed only on /v1/responses), with tools, the built-in web
# search and cache-read pricing, so one model exercises the whole Responses path.
TEST_MODELS.append(
    {
        "id": "test-responses-only",
        "object": "model",
        "owned_by": "OpenAI",
        "description": "Test model served only over the Responses API.",
        "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
        "supported_features": ["tools", "web_search"],
        "supported_endpoints": ["/v1/responses"],
        "pricing": {
            "prompt": "0.000002",
            "completion": "0.000008",
            "input_cache_read": "0.0000005",
        },
        "metadata": {"display_name": "Test-Responses-Only"},
        "reasoning": {"budget": None, "required": False, "supports_reasoning_effort": True},
        "parameters": [],
    }
)
SLOPPY_JSON = '{"name": "Paris", "population": "about two million"}'


def instance_of(schema: dict[str, Any]) -> Any:
    """A small value matching a JSON Schema, as a model honouring `response_format` answers (grok-4 did)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        names = schema.get("required") or list(properties)
        return {name: instance_of(properties.get(name) or {}) for name in names}
    return {"string": "Echo", "integer": 1, "number": 1.5, "boolean": True, "array": []}.get(
        str(kind)
    )


# A real, playable mp4 (3.5 KB: two seconds of a 160x90 H.264 test pattern, made as
# tests/fixtures/media/README.md says), so a browser shown the fake's video can play it.
MP4 = (FIXTURES.parent / "media" / "test-pattern.mp4").read_bytes()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def recorded(name: str) -> dict[str, Any]:
    """The response body of one recorded exchange, by the bot name in its file name."""
    path = next(RECORDED.glob(f"v1-chat-completions-{name}-*.json"))
    return json.loads(path.read_text())["response"]


@dataclass
class Reply:
    """A scripted answer: text, tool calls, reasoning; `status` >= 400 makes it an error."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None  # as Poe sends it, details (cached_tokens, ...) included
    status: int = 200
    error_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # sent as-is instead of a built body (recorded bodies, HTML pages...)
    chunks: list[str] | None = None  # how the text is split when streamed
    cut_after: int | None = None  # drop the connection after this many content chunks
    no_finish: bool = False  # end the stream without a finish_reason (and without [DONE]), as Poe does for some providers
    cut_in_tool_call: bool = False  # drop the connection after the first tool-call delta
    no_usage: bool = False
    stall: float = 0.0  # stream: send the first chunk, then say nothing for this long
    hang: float = 0.0  # accept the request, then answer nothing for this long
    drip: float = 0.0  # send the body (JSON or SSE) one byte at a time, this many seconds apart
    endless: bool = False  # stream: after the text, content chunks without end (memory flat here)
    files: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # bot protocol: (url, content type, name) `file` events
    replace_at: int | None = (
        None  # bot protocol: this chunk is a `replace_response` event (it replaces the text so far)
    )


def _words(text: str) -> list[str]:
    """Text split into word-sized stream chunks that join back to the same text."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]] if text else []


def _chat_messages(items: Any) -> list[dict[str, Any]]:
    """Responses `input` items in OpenAI's chat shape, so tests read one conversation shape on every path."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}
            )
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            if messages and messages[-1]["role"] == "assistant":
                messages[-1].setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        else:
            content = item.get("content")
            if isinstance(content, list) and item.get("role") == "assistant":
                content = "".join(p.get("text", "") for p in content)
            messages.append({"role": item["role"], "content": content})
    return messages


class FakePoe:
    def __init__(self, api_key: str = "test-key") -> None:
        self.api_key = api_key
        # Further accounts, as Sign in with Poe gives each person: key -> that account's point balance.
        self.accounts: dict[str, int] = {}
        # Sign in with Poe: the client ids registered at poe.com/api/clients -> their redirect URIs,
        # the person signed in to poe.com in the browser, the codes given out, the people who consented.
        self.oauth_clients: dict[str, list[str]] = {}
        self.signed_in = "alice"
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.oauth_keys: dict[str, str] = {}  # person -> the API key Poe made for them
        self.oauth_refusals: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.latency = 0.0
        self.chunk_delay = 0.0
        self.balance = 1500
        self.streams_aborted = 0  # streams the client closed before their end
        self.endless_bytes = 0  # what the last endless stream sent before the client hung up
        self.cdn: dict[
            str, tuple[bytes | int, str]
        ] = {}  # name -> (bytes, or a size to generate; content type)
        self.videos: dict[str, dict[str, Any]] = {}
        self.video_steps = 3  # polls before a job completes
        self.video_bytes = (
            0  # when set, /content serves this many bytes instead of the test-pattern MP4
        )
        self.block_delay = 0.0  # seconds between 64 KB blocks of a generated download
        self.video_points = 4200  # the job's `usage` once completed
        self.images_missing = False  # answer 404 on /v1/images
        self.videos_missing = False  # answer 404 on /v1/videos, like a Poe without the endpoint
        self.bot_queries: list[
            dict[str, Any]
        ] = []  # bot-protocol QueryRequests, as the bots received them
        self.uploads: list[dict[str, Any]] = []
        self.rate_limit: int | None = (
            None  # enforce this many chat requests per 60 s, like Poe's 500 RPM
        )
        self.rate_window = 60.0  # seconds Poe's request count covers
        self._window: list[float] = []
        self.rejected = 0
        self.refuses_stream_options: set[str] = (
            set()
        )  # models that answer 400 to `stream_options`, as some do on Poe
        self.first_token_at: float | None = (
            None  # monotonic time the last stream's first content chunk left
        )
        self.history = [
            {
                "creation_time": 1774577726_000_000 - i * 60_000_000,
                "bot_name": "GPT-4o",
                "query_id": f"q{i}",
                "usage_type": "API",
                "cost_points": 10 + i,
            }
            for i in range(45)
        ]
        self._queue: list[Reply] = []
        self.model_failures: list[Reply] = []  # replies for /v1/models, apart from the chat queue
        # Poe failing as a whole: every API request (not the CDN) answers (status, type) until cleared
        self.outage: tuple[int, str] | None = None
        self.stall = 0.0  # seconds every API request waits before any answer, like a Poe that hangs
        self._lock = threading.Lock()
        catalog = json.loads((FIXTURES / "models.json").read_text())
        self.models = catalog["data"] + TEST_MODELS
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def error(
        self,
        status: int,
        error_type: str,
        message: str = "scripted failure",
        times: int = 1,
        **headers: str,
    ) -> None:
        self.enqueue(
            *[
                Reply(status=status, error_type=error_type, text=message, headers=headers)
                for _ in range(times)
            ]
        )

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/v1/chat/completions"]

    def responses_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/v1/responses"]

    def model_calls(self) -> list[dict[str, Any]]:
        """Every request that reached a model, on any protocol."""
        return [
            r
            for r in self.requests
            if r["path"] in ("/v1/chat/completions", "/v1/responses")
            or r["path"].startswith("/bot/")
        ]

    def last_messages(self) -> list[dict[str, Any]]:
        """The conversation the last model call carried, in OpenAI's shape whichever protocol sent it."""
        last = self.model_calls()[-1]
        if last["path"] == "/v1/chat/completions":
            return last["json"]["messages"]
        if last["path"] == "/v1/responses":
            return _chat_messages(last["json"]["input"])
        query = last["json"]
        roles = {"bot": "assistant"}
        messages = [
            {"role": roles.get(m["role"], m["role"]), "content": m["content"]}
            for m in query["query"]
        ]
        if query.get("tool_calls"):
            messages.append({"role": "assistant", "content": "", "tool_calls": query["tool_calls"]})
            messages += [
                {"role": "tool", "tool_call_id": r["tool_call_id"], "content": r["content"]}
                for r in query["tool_results"]
            ]
        return messages

    def _next(self) -> Reply | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None

    # -- HTTP ----------------------------------------------------------------------------------

    def _record(self, request: Request, body: Any) -> None:
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "json": body,
                "query": dict(request.query_params),
                "at": time.time(),
            }
        )

    def _authorised(self, request: Request) -> bool:
        return self.key_of(request) is not None

    def key_of(self, request: Request) -> str | None:
        """The account a request is from: the main key or one of `accounts`, else None."""
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        return given if given == self.api_key or given in self.accounts else None

    def keys_used(self, path: str = "/v1/chat/completions") -> list[str]:
        """The API key each request to `path` carried, in order."""
        return [
            r["headers"].get("authorization", "").removeprefix("Bearer ")
            for r in self.requests
            if r["path"] == path and "headers" in r
        ]

    @staticmethod
    def _error(
        status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return JSONResponse(
            {"error": {"code": status, "type": error_type, "message": message}},
            status_code=status,
            headers=headers,
        )

    async def models_endpoint(self, request: Request) -> Response:
        self._record(request, None)
        reply = self.model_failures.pop(0) if self.model_failures else None
        if reply is not None:
            return self._error(
                reply.status, reply.error_type or "upstream_error", reply.text, reply.headers
            )
        return JSONResponse({"object": "list", "data": self.models})

    async def chat_endpoint(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self._record(request, body)
        if not self._authorised(request):
            return self._error(401, "authentication_error", "Invalid API key")
        if not isinstance(body, dict) or not body.get("messages"):
            return self._error(400, "invalid_request_error", "messages is required")
        if "stream_options" in body and body.get("model") in self.refuses_stream_options:
            return self._error(400, "invalid_request_error", "Unknown parameter: stream_options")
        limit_headers: dict[str, str] = {}
        if self.rate_limit is not None:
            now = time.monotonic()
            self._window = [t for t in self._window if now - t < self.rate_window]
            if len(self._window) >= self.rate_limit:
                self.rejected += 1
                wait = self.rate_window - (now - self._window[0])
                return self._error(
                    429,
                    "rate_limit_error",
                    "Rate limit exceeded",
                    {"retry-after": str(max(1, round(wait))), **self._limit_headers(now)},
                )
            self._window.append(now)
            limit_headers = self._limit_headers(now)
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = self._next() or self._echo(body)
        if reply.hang:
            await asyncio.sleep(reply.hang)
        if reply.cut_after is not None and not body.get(
            "stream"
        ):  # half a JSON body, then the connection drops
            whole = json.dumps(self._completion(body, reply)).encode()

            async def half():  # type: ignore[no-untyped-def]
                yield whole[: len(whole) // 2]
                raise ConnectionResetError("scripted cut")

            return StreamingResponse(
                half(), media_type="application/json", headers={"content-length": str(len(whole))}
            )
        if reply.body is not None:
            return (
                JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
                if not isinstance(reply.body, str)
                else Response(
                    reply.body,
                    status_code=reply.status,
                    headers=reply.headers,
                    media_type="text/html",
                )
            )
        headers = {**limit_headers, **reply.headers}
        if reply.drip and reply.status < 400:
            source = (
                self._sse(body, reply)
                if body.get("stream")
                else self._once(json.dumps(self._completion(body, reply)).encode())
            )
            return StreamingResponse(
                self._dripping(source, reply.drip),
                media_type="text/event-stream" if body.get("stream") else "application/json",
                headers=headers,
            )
        if reply.status >= 400:
            return self._error(
                reply.status, reply.error_type or "invalid_request_error", reply.text, headers
            )
        if body.get("stream"):
            return StreamingResponse(
                self._sse(body, reply), media_type="text/event-stream", headers=headers
            )
        return JSONResponse(
            self._completion(body, reply), headers={"openai-version": "2020-10-01", **headers}
        )

    @staticmethod
    async def _once(data: bytes):  # type: ignore[no-untyped-def]
        yield data

    @staticmethod
    async def _dripping(source: Any, delay: float):  # type: ignore[no-untyped-def]
        """Every byte of `source` on its own, `delay` seconds apart: a reader's per-read timeout never fires."""
        async for block in source:
            for i in range(len(block)):
                yield block[i : i + 1]
                await asyncio.sleep(delay)

    def _limit_headers(self, now: float) -> dict[str, str]:
        """Poe's documented x-ratelimit-* headers (api-reference/rate-limits): the reset in seconds."""
        assert self.rate_limit is not None
        reset = self.rate_window - (now - self._window[0]) if self._window else 0.0
        return {
            "x-ratelimit-limit-requests": str(self.rate_limit),
            "x-ratelimit-remaining-requests": str(max(0, self.rate_limit - len(self._window))),
            "x-ratelimit-reset-requests": f"{reset:.3f}",
        }

    @staticmethod
    def _echo(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]
        content = last.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", f"[{p.get('type')}]") for p in content)
        response_format = body.get("response_format") or {}
        if body.get("model") == "test-sloppy-json" and response_format:
            return Reply(text=SLOPPY_JSON)
        if response_format.get("type") == "json_schema":
            return Reply(text=json.dumps(instance_of(response_format["json_schema"]["schema"])))
        if response_format.get("type") == "json_object":
            return Reply(text=json.dumps({"echo": content}))
        return Reply(text=f"Echo: {content}")

    @staticmethod
    def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
        if reply.usage is not None:
            return reply.usage
        prompt = sum(len(json.dumps(m).split()) for m in body["messages"])
        completion = len(reply.text.split())
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in reply.tool_calls
            ]
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        return {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": reply.finish_reason
                    or ("tool_calls" if reply.tool_calls else "stop"),
                }
            ],
            "usage": self._usage(body, reply),
        }

    async def _sse(self, body: dict[str, Any], reply: Reply):  # type: ignore[no-untyped-def]
        finished = False
        try:
            async for event in self._events(body, reply):
                yield event
            finished = True
        finally:
            if not finished and reply.cut_after is None and not reply.cut_in_tool_call:
                self.streams_aborted += 1

    async def _events(self, body: dict[str, Any], reply: Reply):  # type: ignore[no-untyped-def]
        ident, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())

        def chunk(
            delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None
        ) -> bytes:
            data = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        if reply.reasoning:
            yield chunk({"reasoning_content": reply.reasoning})
        pieces = reply.chunks if reply.chunks is not None else _words(reply.text)
        for i, piece in enumerate(pieces):
            if reply.cut_after is not None and i >= reply.cut_after:
                raise ConnectionResetError("scripted cut")  # uvicorn drops the connection mid-body
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            if i == 0:
                self.first_token_at = time.monotonic()
            yield chunk({"content": piece})
            if i == 0 and reply.stall:
                await asyncio.sleep(reply.stall)
        for index, call in enumerate(reply.tool_calls):
            arguments = call["arguments"]
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["name"], "arguments": ""},
                        }
                    ]
                }
            )
            if reply.cut_in_tool_call:
                raise ConnectionResetError("scripted cut")
            for start in range(
                0, len(arguments), 5
            ):  # arguments in small pieces, as providers send them
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "function": {"arguments": arguments[start : start + 5]},
                            }
                        ]
                    }
                )
        if reply.endless:
            self.endless_bytes = 0
            filler = chunk({"content": "x" * 4000})
            while True:  # until the client hangs up
                self.endless_bytes += len(filler)
                yield filler
                await asyncio.sleep(0)
        if reply.no_finish:
            return
        yield chunk({}, reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop"))
        if not reply.no_usage and body.get("stream_options", {}).get("include_usage"):
            yield chunk({}, usage=self._usage(body, reply))
        yield b"data: [DONE]\n\n"

    async def balance_endpoint(self, request: Request) -> Response:
        self._record(request, None)
        if not self._authorised(request):
            return self._error(401, "authentication_error", "Invalid API key")
        key = self.key_of(request)
        balance = self.accounts[key] if key in self.accounts else self.balance
        return JSONResponse({"current_point_balance": balance})

    async def history_endpoint(self, request: Request) -> Response:
        self._record(request, None)
        if not self._authorised(request):
            return self._error(401, "authentication_error", "Invalid API key")
        limit = int(request.query_params.get("limit", 20))
        after = request.query_params.get("starting_after")
        start = (
            next((i + 1 for i, e in enumerate(self.history) if e["query_id"] == after), 0)
            if after
            else 0
        )
        page = self.history[start : start + limit]
        return JSONResponse(
            {"has_more": start + limit < len(self.history), "length": len(page), "data": page}
        )

    # -- Sign in with Poe (docs/external-applications/sign-in-with-poe) -------------------------------

    async def oauth_authorize(self, request: Request) -> Response:
        """The consent page: GET shows it for the person signed in; POST is their answer."""
        q = dict(request.query_params) if request.method == "GET" else dict(await request.form())
        redirect = q.get("redirect_uri", "")
        if (
            q.get("client_id") not in self.oauth_clients
            or redirect not in self.oauth_clients[q.get("client_id", "")]
        ):
            self.oauth_refusals.append("client or redirect_uri not registered")
            return HTMLResponse("Unknown client or redirect URI", status_code=400)
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
            self.oauth_refusals.append("PKCE S256 required")
            return HTMLResponse("PKCE with S256 is required", status_code=400)
        if request.method == "GET":
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in q.items()
            )
            return HTMLResponse(
                f'<form method="post" action="/oauth/authorize">{hidden}'
                f"<p>{html.escape(self.signed_in)}: allow this app to make an API key?</p>"
                '<button name="decision" value="allow">Allow</button>'
                '<button name="decision" value="deny">Deny</button></form>'
            )
        sep = "&" if "?" in redirect else "?"
        if q.get("decision") != "allow":
            return RedirectResponse(
                f"{redirect}{sep}{urlencode({'error': 'access_denied', 'state': q.get('state', '')})}",
                status_code=302,
            )
        code = secrets.token_urlsafe(16)
        self.oauth_codes[code] = {
            "client_id": q["client_id"],
            "redirect_uri": redirect,
            "challenge": q.get("code_challenge", ""),
            "person": self.signed_in,
        }
        return RedirectResponse(
            f"{redirect}{sep}{urlencode({'code': code, 'state': q.get('state', '')})}",
            status_code=302,
        )

    async def oauth_token(self, request: Request) -> Response:
        """The exchange: a code (once), with the verifier of its challenge, for the person's API key."""
        form = dict(await request.form())
        self.requests.append({"method": "POST", "path": "/token", "json": None, "headers": {}})
        grant = self.oauth_codes.pop(str(form.get("code", "")), None)
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        if (
            grant is None
            or grant["client_id"] != form.get("client_id")
            or grant["redirect_uri"] != form.get("redirect_uri")
            or digest.decode() != grant["challenge"]
        ):
            self.oauth_refusals.append("invalid_grant")
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        person = grant["person"]
        key = self.oauth_keys.setdefault(person, f"poe-oauth-key-{person}-{secrets.token_hex(8)}")
        self.accounts.setdefault(key, 1000 + len(self.accounts))
        return JSONResponse({"api_key": key, "api_key_expires_in": 86400 * 90})

    # -- /v1/responses (docs/external-applications/responses-api, api-reference/createResponse) ----------

    async def responses_endpoint(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self._record(request, body)
        if not self._authorised(request):
            return self._error(401, "authentication_error", "Invalid API key")
        if not isinstance(body, dict) or not body.get("input"):
            return self._error(400, "invalid_request_error", "input is required")
        for name in ("messages", "stream_options", "response_format", "max_tokens"):
            if name in body:  # chat-completions fields: the Responses API has other names
                return self._error(400, "invalid_request_error", f"Unknown parameter: {name}")
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = self._next() or self._responses_echo(body)
        if reply.body is not None:
            return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
        if reply.status >= 400:
            return self._error(
                reply.status, reply.error_type or "invalid_request_error", reply.text, reply.headers
            )
        if body.get("stream"):
            return StreamingResponse(
                self._response_events(body, reply),
                media_type="text/event-stream",
                headers=reply.headers,
            )
        return JSONResponse(self._response(body, reply, "completed"), headers=reply.headers)

    @staticmethod
    def _responses_echo(body: dict[str, Any]) -> Reply:
        items = body["input"]
        last = items if isinstance(items, str) else items[-1]
        if isinstance(last, str):
            content: Any = last
        elif last.get("type") == "function_call_output":
            content = last.get("output")
        else:
            content = last.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", f"[{p.get('type')}]") for p in content)
        text_format = (body.get("text") or {}).get("format") or {}
        if body.get("model") == "test-sloppy-json" and text_format:
            return Reply(text=SLOPPY_JSON)
        if text_format.get("type") == "json_schema":
            return Reply(text=json.dumps(instance_of(text_format["schema"])))
        if text_format.get("type") == "json_object":
            return Reply(text=json.dumps({"echo": content}))
        return Reply(text=f"Echo: {content}")

    @staticmethod
    def _searches(body: dict[str, Any]) -> bool:
        return any(t.get("type", "").startswith("web_search") for t in body.get("tools") or ())

    def _output(self, body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
        """The output items: reasoning (a summary), a web search, the message, function calls."""
        output: list[dict[str, Any]] = []
        if reply.reasoning:
            output.append(
                {
                    "type": "reasoning",
                    "id": "rs_" + secrets.token_hex(8),
                    "summary": [{"type": "summary_text", "text": reply.reasoning}],
                }
            )
        if self._searches(body):
            output.append(
                {
                    "type": "web_search_call",
                    "id": "ws_" + secrets.token_hex(8),
                    "status": "completed",
                    "action": {"type": "search", "query": "scripted"},
                }
            )
        if reply.text or not reply.tool_calls:
            output.append(
                {
                    "type": "message",
                    "id": "msg_" + secrets.token_hex(8),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
                }
            )
        for call in reply.tool_calls:
            output.append(
                {
                    "type": "function_call",
                    "id": "fc_" + secrets.token_hex(8),
                    "call_id": call["id"],
                    "name": call["name"],
                    "arguments": call["arguments"],
                    "status": "completed",
                }
            )
        return output

    def _response(self, body: dict[str, Any], reply: Reply, status: str) -> dict[str, Any]:
        usage = reply.usage or self._usage(
            {"messages": body["input"] if isinstance(body["input"], list) else [body["input"]]},
            reply,
        )
        return {
            "id": "resp_" + secrets.token_hex(12),
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": body["model"],
            "output": self._output(body, reply),
            "usage": {
                "input_tokens": usage.get("prompt_tokens", 0),
                "input_tokens_details": usage.get("prompt_tokens_details") or {"cached_tokens": 0},
                "output_tokens": usage.get("completion_tokens", 0),
                "output_tokens_details": usage.get("completion_tokens_details")
                or {"reasoning_tokens": 0},
                "total_tokens": usage.get("total_tokens", 0),
            },
            "incomplete_details": None,
            "error": None,
        }

    async def _response_events(self, body: dict[str, Any], reply: Reply):  # type: ignore[no-untyped-def]
        """Typed SSE events as the Responses API streams them: `event: <type>` and a JSON `data` with the same type."""
        final = self._response(body, reply, "completed")
        sequence = iter(range(10_000))

        def event(kind: str, **data: Any) -> bytes:
            payload = {"type": kind, "sequence_number": next(sequence), **data}
            return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

        started = {**final, "status": "in_progress", "output": [], "usage": None}
        yield event("response.created", response=started)
        yield event("response.in_progress", response=started)
        for index, item in enumerate(final["output"]):
            kind = item["type"]
            if kind == "function_call":
                yield event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "arguments": "", "status": "in_progress"},
                )
                if reply.cut_in_tool_call:
                    raise ConnectionResetError("scripted cut")
                arguments = item["arguments"]
                for start in range(0, len(arguments), 5):
                    yield event(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=arguments[start : start + 5],
                    )
                yield event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=arguments,
                )
            elif kind == "message":
                yield event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "content": [], "status": "in_progress"},
                )
                pieces = reply.chunks if reply.chunks is not None else _words(reply.text)
                for i, piece in enumerate(pieces):
                    if reply.cut_after is not None and i >= reply.cut_after:
                        raise ConnectionResetError("scripted cut")
                    if self.chunk_delay:
                        await asyncio.sleep(self.chunk_delay)
                    yield event(
                        "response.output_text.delta",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        delta=piece,
                    )
                yield event(
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    text=reply.text,
                )
            elif kind == "reasoning":
                yield event(
                    "response.output_item.added", output_index=index, item={**item, "summary": []}
                )
                yield event(
                    "response.reasoning_summary_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    delta=item["summary"][0]["text"],
                )
            else:
                yield event("response.output_item.added", output_index=index, item=item)
            yield event("response.output_item.done", output_index=index, item=item)
        if reply.no_finish:
            return
        if reply.no_usage:
            final["usage"] = None
        yield event("response.completed", response=final)

    # -- the CDN and /v1/videos -----------------------------------------------------------------

    def cdn_url(self, name: str, data: bytes | int, content_type: str) -> str:
        """Serve `data` (or `data` generated bytes) at a URL on the fake's origin, like Poe's CDN."""
        self.cdn[name] = (data, content_type)
        return f"http://127.0.0.1:{self.port}/cdn/{name}"

    async def cdn_endpoint(self, request: Request) -> Response:
        self._record(request, None)
        name = request.path_params["name"]
        if name not in self.cdn:
            return Response(status_code=404)
        data, content_type = self.cdn[name]
        return self._bytes_response(data, content_type)

    def _bytes_response(self, data: bytes | int, content_type: str) -> Response:
        """`data` itself, or that many zero bytes generated in 64 KB blocks (memory stays flat on both ends),
        `block_delay` seconds apart (a slow CDN)."""
        if isinstance(data, bytes):
            return Response(data, media_type=content_type)
        delay = self.block_delay

        async def generate():  # type: ignore[no-untyped-def]
            block = b"\x00" * 65536
            for start in range(0, data, len(block)):
                yield block[: min(len(block), data - start)]
                await asyncio.sleep(delay)

        return StreamingResponse(
            generate(), media_type=content_type, headers={"content-length": str(data)}
        )

    async def images_create(self, request: Request) -> Response:
        """`/v1/images`, the route the catalog gives gpt-image-1 and dall-e-3. Its shape is not in Poe's
        public reference; other Poe clients POST {model, prompt} and read OpenAI's {data: [{url}|{b64_json}]}.
        The next scripted reply's links become `data` (or its `body` is sent as-is)."""
        body = await request.json()
        self._record(request, body)
        if not self._authorised(request):
            return self._error(401, "authentication_error", "Invalid API key")
        if self.images_missing:
            return self._error(404, "not_found_error", "Not found")
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = self._next() or Reply()
        if reply.status >= 400:
            return self._error(
                reply.status, reply.error_type or "invalid_request_error", reply.text
            )
        if reply.body is not None:
            return JSONResponse(reply.body)
        links = list(dict.fromkeys(re.findall(r"https?://[^\s)\]]+", reply.text)))
        return JSONResponse({"created": int(time.time()), "data": [{"url": u} for u in links]})

    async def audio_missing(self, request: Request) -> Response:
        # `/v1/audio` exists (the catalog routes elevenlabs-v3 there) but its shape is not public:
        # the fake plays a Poe without it, which is what the fallback to chat completions handles.
        self._record(request, None)
        return self._error(404, "not_found_error", "Not found")

    async def videos_create(self, request: Request) -> Response:
        """createVideo: JSON, or multipart/form-data with an `input_reference` file (recorded as its name,
        content type and bytes), as Poe documents."""
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            body: dict[str, Any] = {}
            for name, value in form.multi_items():
                if isinstance(value, str):
                    body[name] = value
                else:
                    body[name] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "bytes": await value.read(),
                    }
        else:
            body = await request.json()
        self._record(request, body)
        if not self._authorised(request):
            return self._error(401, "authentication_error", "Invalid API key")
        if self.videos_missing:
            return self._error(404, "not_found_error", "Not found")
        refusal = self._video_field_refusal(body)
        if refusal:
            return self._error(400, "invalid_request_error", refusal)
        reply = self._next()
        if reply is not None and reply.status >= 400:
            return self._error(
                reply.status, reply.error_type or "invalid_request_error", reply.text
            )
        ident = "video_" + secrets.token_hex(6)
        self.videos[ident] = {
            "id": ident,
            "object": "video",
            "status": "queued",
            "progress": 0,
            "model": body["model"],
            "seconds": str(body.get("seconds") or 4),
            "size": body.get("size") or "720x1280",
            "created_at": int(time.time()),
            "expires_at": int(time.time()) + 3600,
            "usage": None,  # points, filled when the job completes
            "polls": 0,
            "fail": reply.text if reply is not None and reply.error_type == "failed" else None,
            "owner": self.key_of(request),  # a job is its account's: another key is told 404
        }
        return JSONResponse(self._video_view(ident))

    @staticmethod
    def _video_field_refusal(body: dict[str, Any]) -> str | None:
        """Poe's createVideo: `seconds` a whole number of seconds, `size` as "WxH" (default 720x1280)."""
        seconds = body.get("seconds")
        if seconds is not None and not str(seconds).isdigit():
            return f"seconds must be a whole number of seconds, not {seconds!r}"
        size = body.get("size")
        if size is not None and not re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", str(size)):
            return f"size must be WIDTHxHEIGHT such as 1280x720, not {size!r}"
        return None

    def _video_view(self, ident: str) -> dict[str, Any]:
        job = self.videos[ident]
        return {k: v for k, v in job.items() if k not in ("polls", "fail", "owner")}

    async def videos_get(self, request: Request) -> Response:
        self._record(request, None)
        job = self.videos.get(request.path_params["id"])
        if job is None or job["owner"] != self.key_of(request):
            return self._error(404, "not_found_error", "No such video")
        job["polls"] += 1
        if job["fail"] and job["polls"] >= 2:
            job.update(status="failed", error={"message": job["fail"]})
        elif job["polls"] >= self.video_steps:
            job.update(status="completed", progress=100, usage={"points": self.video_points})
        else:
            job.update(status="in_progress", progress=int(100 * job["polls"] / self.video_steps))
        return JSONResponse(self._video_view(job["id"]))

    async def videos_content(self, request: Request) -> Response:
        self._record(request, None)
        if not self._authorised(request):
            return self._error(401, "authentication_error", "Invalid API key")
        job = self.videos.get(request.path_params["id"])
        if job is None or job["owner"] != self.key_of(request) or job["status"] != "completed":
            return self._error(404, "not_found_error", "Not ready")
        if self.video_bytes:  # a large video, generated in chunks as it is sent
            return self._bytes_response(self.video_bytes, "video/mp4")
        return Response(MP4, media_type="video/mp4")

    # -- the bot protocol (served by fastapi_poe's own server side) ---------------------------------

    def bot_app(self) -> Any:
        from bots import make_bot_app

        return make_bot_app(self)

    async def upload_endpoint(self, request: Request) -> Response:
        body = await request.body()
        self._record(request, None)
        self.uploads.append(
            {"authorization": request.headers.get("authorization"), "bytes": len(body)}
        )
        name = f"upload-{len(self.uploads)}"
        return JSONResponse(
            {
                "attachment_url": self.cdn_url(name, body, "application/octet-stream"),
                "mime_type": "image/png",
            }
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def app(self) -> Any:
        return self._with_outages(self._routes())

    def _with_outages(self, app: Starlette) -> Any:
        async def gate(scope: Any, receive: Any, send: Any) -> None:
            if self.stall and scope["type"] == "http" and not scope["path"].startswith("/cdn/"):
                await asyncio.sleep(self.stall)
            if self.outage and scope["type"] == "http" and not scope["path"].startswith("/cdn/"):
                status, kind = self.outage
                self.requests.append(
                    {"method": scope["method"], "path": scope["path"], "json": None}
                )
                await self._error(status, kind, "scripted outage")(scope, receive, send)
                return
            await app(scope, receive, send)

        return gate

    def _routes(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models", self.models_endpoint),
                Route("/v1/chat/completions", self.chat_endpoint, methods=["POST"]),
                Route("/v1/responses", self.responses_endpoint, methods=["POST"]),
                Route("/usage/current_balance", self.balance_endpoint),
                Route("/oauth/authorize", self.oauth_authorize, methods=["GET", "POST"]),
                Route("/token", self.oauth_token, methods=["POST"]),
                Route("/usage/points_history", self.history_endpoint),
                Route("/cdn/{name}", self.cdn_endpoint),
                Route("/v1/images", self.images_create, methods=["POST"]),
                Route("/v1/audio", self.audio_missing, methods=["POST"]),
                Route("/v1/videos", self.videos_create, methods=["POST"]),
                Route("/v1/videos/{id}", self.videos_get),  # Poe has no cancel or delete
                Route("/v1/videos/{id}/content", self.videos_content),
                Route(
                    "/poe_api/file_upload_3RD_PARTY_POST", self.upload_endpoint, methods=["POST"]
                ),
                Mount(
                    "/", app=self.bot_app()
                ),  # /bot/<name>: the real protocol, from fastapi_poe's server side
            ]
        )

    def start(self) -> FakePoe:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(), log_level="critical", lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Poe did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
