"""Bot-protocol bots for the fake Poe, built on fastapi_poe's own server side (PoeBot, make_app).

One ScriptedBot per model name used in tests; each plays the fake's scripted replies (or echoes),
so the same test cases run on both backends: text streams as `text` events, tool calls as `json`
events carrying OpenAI chunks (as Poe's bots send them), media as `file` events, failures as
`error` events.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

import fastapi_poe as fp
from sse_starlette import ServerSentEvent

if TYPE_CHECKING:
    from fakepoe import FakePoe, Reply

BOT_NAMES = (
    "gpt-4-turbo",
    "grok-4",
    "gemini-2.5-pro",
    "claude-sonnet-4.5",
    "gpt-image-1",
    "test-flat-fee",
    "kimi-k2.5-fw",
    "nano-banana",
    "elevenlabs-v2.5-turbo",
)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(
        event="json",
        data=json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
    )


class ScriptedBot(fp.PoeBot):
    def __init__(self, fake: FakePoe, name: str) -> None:
        super().__init__(path=f"/bot/{name}")
        self.fake = fake

    async def get_response(
        self, request: fp.QueryRequest
    ) -> AsyncIterable[fp.PartialResponse | ServerSentEvent]:
        from fakepoe import Reply

        query = request.model_dump(mode="json")
        self.fake.bot_queries.append(query)
        self.fake.requests.append(
            {"method": "POST", "path": self.path, "headers": {}, "json": query, "query": {}}
        )
        last = request.query[-1]
        reply: Reply = self.fake._next() or Reply(
            text=f"Echo: {last.content}"
            if not request.tool_results
            else "Echo: tool results received"
        )
        if reply.status >= 400:
            error_type = {
                402: "insufficient_fund",
                413: "user_message_too_long",
                403: "privacy_authorization_error",
            }.get(reply.status)
            yield fp.ErrorResponse(
                text=reply.text, allow_retry=reply.status >= 500, error_type=error_type
            )
            return
        for url, content_type, name in reply.files:
            yield fp.PartialResponse(
                text="", attachment=fp.Attachment(url=url, content_type=content_type, name=name)
            )
        pieces = reply.chunks if reply.chunks is not None else ([reply.text] if reply.text else [])
        for index, piece in enumerate(pieces):
            if self.fake.chunk_delay:
                await asyncio.sleep(self.fake.chunk_delay)
            yield fp.PartialResponse(text=piece, is_replace_response=index == reply.replace_at)
        for index, call in enumerate(reply.tool_calls):
            yield _chunk(
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
            for start in range(0, len(call["arguments"]), 5):
                yield _chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "function": {"arguments": call["arguments"][start : start + 5]},
                            }
                        ]
                    }
                )
        if reply.tool_calls:
            yield _chunk({}, "tool_calls")


class FailingBot(fp.PoeBot):
    async def get_response(self, request: fp.QueryRequest) -> AsyncIterable[fp.PartialResponse]:
        raise RuntimeError("this bot always fails")
        yield  # pragma: no cover


def make_bot_app(fake: FakePoe) -> Any:
    bots: list[fp.PoeBot] = [ScriptedBot(fake, name) for name in BOT_NAMES]
    bots.append(FailingBot(path="/bot/failing-bot"))
    quiet = logging.getLogger(
        "uvicorn.default"
    )  # make_app warns about settings sync for every keyless bot
    level, quiet.level = quiet.level, logging.ERROR
    try:
        return fp.make_app(bots, allow_without_key=True)
    finally:
        quiet.setLevel(level)
