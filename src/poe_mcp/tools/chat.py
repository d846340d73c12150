"""Chat tools: ask_poe, ask_poe_with_tools, ask_with_attachment, chat_completion, and session management."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from ..poe.errors import InvalidRequestError
from ..poe.types import ChatRequest, Completion
from ..redaction import StreamRedactor
from ..result_shapes import AskResult, ToolsResult, completion_handles
from ..services.conversations import Answer, Ask, SessionUse
from ..tool_results import error_result, structured_result
from .approval import mcp_approver
from .inputs import (
    Api,
    Attachments,
    Bot,
    Confirm,
    Limit,
    Logprobs,
    MaxCompletionTokens,
    MaxCostUsd,
    MaxTokens,
    Metadata,
    NewSession,
    ParallelToolCalls,
    Parameters,
    Prompt,
    ReasoningEffort,
    ResponseFormat,
    Seed,
    SessionId,
    Stop,
    Stream,
    System,
    Temperature,
    Thinking,
    TopLogprobs,
    TopP,
    User,
    WebSearch,
    sampling_from,
)
from .media import file_blocks
from .registry import ToolTable, state_of

if TYPE_CHECKING:
    from ..server import PoeMCPServer

CHAT = ToolAnnotations(read_only_hint=True, open_world_hint=True)
PROGRESS_INTERVAL = 0.25


class ChatCompletionOut(BaseModel):
    """The chat.completion object as Poe returned it, or assembled from a stream."""

    model_config = ConfigDict(extra="allow")
    id: str | None = None
    object: str | None = None
    model: str | None = None
    choices: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None


class SessionOut(BaseModel):
    id: str
    model: str | None
    turns: int
    last_used: str
    preview: str


class SessionsResult(BaseModel):
    sessions: list[SessionOut]


class ClearResult(BaseModel):
    session_id: str
    cleared: bool


class ProgressRelay:
    """Relays streamed text as MCP progress, at most every 250 ms, each notification carrying the new text."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._pending: list[str] = []
        self._chars = 0
        self._last = 0.0
        self._redactor = StreamRedactor(state_of(ctx).secrets)  # an echoed key never shows

    async def __call__(self, piece: str) -> None:
        self._pending.append(self._redactor.feed(piece))
        if time.monotonic() - self._last >= PROGRESS_INTERVAL:
            await self.flush()

    async def finish(self) -> None:
        """Send what is left, the text held back by the redactor included."""
        self._pending.append(self._redactor.finish())
        await self.flush()

    async def flush(self) -> None:
        message = "".join(self._pending)
        if message:  # empty while the redactor holds back the start of the text
            self._pending = []
            self._chars += len(message)  # progress counts the characters shown
            self._last = time.monotonic()
            await self._ctx.report_progress(self._chars, None, message)


def answer_result(
    completion: Completion,
    structured: dict[str, Any],
    texts: list[str],
    ctx: Context,
    media: list[ContentBlock] | None = None,
) -> CallToolResult:
    """The answer text first, then the handles line, then the answer's media (one small preview at
    most, a resource_link per file); a broken stream, or an answer not in the shape asked, leads with
    its error and keeps them all."""
    blocks: list[ContentBlock] = [TextContent(type="text", text=text) for text in texts if text]
    blocks += media or []
    error = completion.error
    if error is None:
        return CallToolResult(content=blocks, structured_content=structured)
    failure = error_result(error, state_of(ctx).secrets)
    if not completion.complete:
        blocks.append(TextContent(type="text", text="This turn was not stored in the session."))
    failure.content += blocks
    failure.structured_content = structured
    return failure


def check_stream_options(stream: bool, options: dict[str, Any] | None) -> list[str]:
    """OpenAI's stream_options, checked before sending; without stream there is nothing to apply them to."""
    if options is None:
        return []
    include = options.get("include_usage", True)
    if set(options) - {"include_usage", "include_obfuscation"} or not isinstance(include, bool):
        raise InvalidRequestError(
            "stream_options must be {include_usage?: bool, include_obfuscation?: bool}",
            advice="Fix it and call again; nothing was sent to Poe.",
        )
    return [] if stream else ["stream_options applies to streamed calls only, so it was not sent"]


def _session_use(new_session: bool | None) -> SessionUse:
    return "start" if new_session else "continue"


async def ask_with_progress(ctx: Context, ask: Ask) -> Answer:
    state = state_of(ctx)
    relay = ProgressRelay(ctx)
    answer = await state.chat.ask(ask, relay if ask.stream else None)
    await relay.finish()
    return answer


tool = ToolTable()


@tool(title="Ask a Poe model", annotations=CHAT)
async def ask_poe(
    prompt: Prompt,
    ctx: Context,
    bot: Bot = None,
    session_id: SessionId = None,
    new_session: NewSession = None,
    system: System = None,
    attachments: Attachments = None,
    temperature: Temperature = None,
    max_tokens: MaxTokens = None,
    top_p: TopP = None,
    stop: Stop = None,
    response_format: ResponseFormat = None,
    reasoning_effort: ReasoningEffort = None,
    parameters: Parameters = None,
    thinking: Thinking = None,
    web_search: WebSearch = None,
    api: Api = None,
    stream: Stream = True,
    max_cost_usd: MaxCostUsd = None,
    confirm: Confirm = None,
) -> Annotated[CallToolResult, AskResult]:
    """Ask any Poe model (Claude, GPT, Gemini, Grok...). To continue, pass the session_id a result gave."""
    sampling = sampling_from(locals())
    answer = await ask_with_progress(
        ctx,
        Ask(
            bot=bot or "",
            prompt=prompt,
            session_id=session_id,
            system=system,
            attachments=attachments or [],
            sampling=sampling,
            parameters=parameters or {},
            thinking=thinking,
            stream=stream,
            session_use=_session_use(new_session),
            api=api,
            web_search=bool(web_search),
            max_cost_usd=max_cost_usd,
            approver=mcp_approver(ctx, confirm),
        ),
    )
    result = AskResult.of(answer)
    structured, texts = result.model_dump(), [answer.completion.text, result.handles()]
    used = len(json.dumps(structured)) + sum(len(json.dumps(t)) for t in texts)
    return answer_result(
        answer.completion, structured, texts, ctx, await file_blocks(answer.media, used)
    )


@tool(title="Ask a Poe model about a file", annotations=CHAT)
async def ask_with_attachment(
    prompt: Prompt,
    attachment_path: Annotated[str, Field(description="Path or URL")],
    ctx: Context,
    bot: Bot = None,
    session_id: SessionId = None,
    thinking: Thinking = None,
) -> Annotated[CallToolResult, AskResult]:
    """ask_poe with one attachment (for older clients)."""
    return await ask_poe(
        prompt=prompt,
        ctx=ctx,
        bot=bot,
        session_id=session_id,
        attachments=[attachment_path],
        thinking=thinking,
    )


@tool(title="Function calling with a Poe model", annotations=CHAT)
async def ask_poe_with_tools(
    ctx: Context,
    tools: Annotated[
        list[dict[str, Any]] | None,
        Field(description="OpenAI tools; first call"),
    ] = None,
    prompt: Annotated[str | None, Field(description="Optional with tool_results")] = None,
    bot: Bot = None,
    session_id: SessionId = None,
    new_session: NewSession = None,
    tool_results: Annotated[
        list[dict[str, Any]] | None,
        Field(description="[{tool_call_id, content}] per call"),
    ] = None,
    tool_choice: Annotated[
        str | dict[str, Any] | None,
        Field(description="auto/none/required/name"),
    ] = None,
    parallel_tool_calls: ParallelToolCalls = None,
    system: System = None,
    temperature: Temperature = None,
    max_tokens: MaxTokens = None,
    top_p: TopP = None,
    stop: Stop = None,
    reasoning_effort: ReasoningEffort = None,
    parameters: Parameters = None,
    api: Api = None,
    stream: Stream = True,
    max_cost_usd: MaxCostUsd = None,
    confirm: Confirm = None,
) -> Annotated[CallToolResult, ToolsResult]:
    """Function calling: returns tool_calls to run; answer with tool_results and the same session_id."""
    sampling = sampling_from(locals())
    if (session_id is None or new_session) and not tools:
        raise InvalidRequestError(
            "tools is required to start a function-calling conversation",
            advice="Pass tools (OpenAI function definitions).",
        )
    answer = await ask_with_progress(
        ctx,
        Ask(
            bot=bot or "",
            prompt=prompt,
            session_id=session_id,
            system=system,
            sampling=sampling,
            parameters=parameters or {},
            stream=stream,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            tool_results=tool_results,
            session_use=_session_use(new_session),
            api=api,
            max_cost_usd=max_cost_usd,
            approver=mcp_approver(ctx, confirm),
        ),
    )
    result = ToolsResult.of(answer)
    return answer_result(
        answer.completion, result.model_dump(), [result.text, result.handles()], ctx
    )


@tool(title="Raw chat completion", annotations=CHAT)
async def chat_completion(
    model: Annotated[str, Field(description="Poe model")],
    messages: Annotated[
        list[dict[str, Any]], Field(min_length=1, description="OpenAI chat messages")
    ],
    ctx: Context,
    temperature: Temperature = None,
    max_tokens: MaxTokens = None,
    max_completion_tokens: MaxCompletionTokens = None,
    top_p: TopP = None,
    stop: Stop = None,
    response_format: ResponseFormat = None,
    seed: Seed = None,
    logprobs: Logprobs = None,
    top_logprobs: TopLogprobs = None,
    reasoning_effort: ReasoningEffort = None,
    metadata: Metadata = None,
    user: User = None,
    tools: Annotated[list[dict[str, Any]] | None, Field(description="OpenAI tools")] = None,
    tool_choice: Annotated[
        str | dict[str, Any] | None, Field(description="OpenAI tool_choice")
    ] = None,
    parallel_tool_calls: ParallelToolCalls = None,
    stream: Annotated[bool, Field(description="Report progress")] = False,
    stream_options: Annotated[
        dict[str, Any] | None, Field(description="OpenAI stream_options")
    ] = None,
    parameters: Parameters = None,
    max_cost_usd: MaxCostUsd = None,
    confirm: Confirm = None,
) -> Annotated[CallToolResult, ChatCompletionOut]:
    """Raw OpenAI-compatible chat completion, for clients that keep their own history."""
    notes = check_stream_options(stream, stream_options)
    request = ChatRequest(
        model=model,
        messages=messages,
        sampling=sampling_from(locals()),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel_tool_calls,
        parameters=parameters or {},
        stream=stream,
        stream_options=stream_options if stream else None,
    )
    relay = ProgressRelay(ctx)
    completion = await state_of(ctx).chat.complete(
        request,
        relay if stream else None,
        max_cost_usd=max_cost_usd,
        approver=mcp_approver(ctx, confirm),
    )
    await relay.finish()
    completion.notes[:0] = notes
    # The object Poe sent whole, or the one assembled from a stream (or a Responses API answer).
    structured = dict(completion.chat_object())
    if completion.notes:
        structured["notes"] = completion.notes
    if completion.parsed is not None:
        structured["parsed"] = completion.parsed
    return answer_result(
        completion, structured, [completion.text, completion_handles(completion)], ctx
    )


@tool(
    title="List stored conversations",
    annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
)
async def list_sessions(
    ctx: Context, limit: Annotated[Limit, Field(le=200)] = 20
) -> Annotated[CallToolResult, SessionsResult]:
    """Stored conversations, newest first."""
    sessions = [SessionOut(**vars(s)) for s in await state_of(ctx).store.list(limit)]
    lines = [
        f"{s.id}  {s.model or '?'}  {s.turns} turns  {s.last_used}  {s.preview!r}" for s in sessions
    ]
    return structured_result(
        "\n".join(lines) or "No stored conversations.",
        SessionsResult(sessions=sessions).model_dump(),
    )


@tool(
    title="Delete a stored conversation",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
    ),
)
async def clear_session(
    session_id: Annotated[
        str, Field(min_length=1, max_length=200, description="Session to delete")
    ],
    ctx: Context,
) -> Annotated[CallToolResult, ClearResult]:
    """Delete a stored conversation."""
    cleared = await state_of(ctx).store.clear(session_id)
    text = (
        f"Session {session_id} cleared."
        if cleared
        else f"No stored session {session_id}; nothing to clear."
    )
    return structured_result(text, ClearResult(session_id=session_id, cleared=cleared).model_dump())


def register(mcp: PoeMCPServer) -> None:
    tool.register(mcp)
