"""Asking Poe inside a stored conversation: the logic both the MCP tools and the CLI call."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from .attachments import AttachmentError, AttachmentRules, load_attachment
from .conversations import ConversationStore
from .poe.client import PoeClient
from .poe.errors import InvalidRequestError, NotFoundError
from .poe.types import ChatMessage, ChatRequest, Completion, TextListener

# Stored user messages keep attachments by reference, not their bytes; they are loaded again on resend.
ATTACHMENT_PART = "poe_mcp_attachment"

# What a given session_id must be: a stored conversation (MCP tools, so a mistyped id is caught), a new
# one to start under that id (`new_session: true`), or either (the CLI's `--session`).
SessionUse = Literal["continue", "start", "either"]


@dataclass
class Ask:
    """One call of ask_poe / ask_poe_with_tools, as the caller gave it."""

    bot: str
    prompt: str | None = None
    session_id: str | None = None
    system: str | None = None
    attachments: list[str] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    thinking: bool | None = None
    stream: bool = True
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | None = None
    parallel_tool_calls: bool | None = None
    tool_results: list[dict[str, Any]] | None = None
    session_use: SessionUse = "continue"


@dataclass
class Answer:
    completion: Completion
    session_id: str
    bot: str


def normalise_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI function-tool definitions; the bare `{name, description, parameters}` form is wrapped."""
    result = []
    for tool in tools:
        if not isinstance(tool, dict):
            raise InvalidRequestError("Each tool must be an object")
        function = tool.get("function") if tool.get("type") == "function" else tool
        if (
            not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not function["name"]
        ):
            raise InvalidRequestError(
                "Each tool needs a function name",
                advice='Use {"type": "function", "function": {"name", "description", "parameters"}}.',
            )
        function = {
            "name": function["name"],
            **{k: function[k] for k in ("description", "parameters") if k in function},
        }
        function.setdefault("parameters", {"type": "object", "properties": {}})
        result.append({"type": "function", "function": function})
    return result


def tool_choice_wire(choice: str | None) -> str | dict[str, Any] | None:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def pending_tool_calls(messages: list[ChatMessage]) -> list[str]:
    """Ids of the tool calls the stored conversation is waiting to hear results for."""
    if messages and messages[-1].get("role") == "assistant":
        return [c["id"] for c in messages[-1].get("tool_calls") or ()]
    return []


def tool_messages(pending: list[str], results: list[dict[str, Any]]) -> list[ChatMessage]:
    """One `tool` message per result, in the order the model asked, or a refusal naming the expected ids."""
    expected = ", ".join(pending) or "none"
    by_id: dict[str, Any] = {}
    for result in results:
        call_id = result.get("tool_call_id") if isinstance(result, dict) else None
        if call_id not in pending or call_id in by_id:
            raise InvalidRequestError(
                f"tool_results has an unexpected tool_call_id {call_id!r}; expected ids: {expected}",
                advice="Answer each call of the previous turn once, by its id.",
            )
        content = result.get("content")
        by_id[call_id] = content if isinstance(content, str) else json.dumps(content)
    missing = [i for i in pending if i not in by_id]
    if missing:
        raise InvalidRequestError(
            f"tool_results is missing results for {', '.join(missing)}; expected ids: {expected}",
            advice="Send one result for every tool call of the previous turn.",
        )
    return [{"role": "tool", "tool_call_id": i, "content": by_id[i]} for i in pending]


def check_session_use(session_id: str, use: SessionUse, stored: bool) -> None:
    """Refuse, before anything is sent, a session_id that is not what the caller meant it to be."""
    if use == "continue" and not stored:
        raise NotFoundError(
            f"No stored session {session_id!r}",
            advice="Omit session_id to start a new conversation (its id comes back with the answer), "
            "pass new_session=true to start one under this id, or find the id with list_sessions.",
        )
    if use == "start" and stored:
        raise InvalidRequestError(
            f"Session {session_id!r} already exists",
            advice="Omit new_session to continue it, or clear_session first to start it over.",
        )


class ChatService:
    """Builds each request from the stored history, sends it, and stores the turn only once Poe answered."""

    def __init__(self, poe: PoeClient, store: ConversationStore, rules: AttachmentRules) -> None:
        self.poe = poe
        self.store = store
        self.rules = rules

    async def ask(self, ask: Ask, listener: TextListener | None = None) -> Answer:
        session_id = ask.session_id or uuid.uuid4().hex
        conversation = await self.store.load(session_id)
        if ask.session_id is not None:
            check_session_use(ask.session_id, ask.session_use, bool(conversation.messages))
        history = conversation.messages
        tools = (
            ask.tools if ask.tools is not None else conversation.tools
        )  # later rounds need not resend them
        new = self._new_messages(ask, history)
        # Load (and so check) this turn's attachments before anything is spent; older turns' load on resend.
        loaded = {
            ref: await load_attachment(ref, self.rules, self.poe.http) for ref in ask.attachments
        }
        parameters = dict(ask.parameters)
        if ask.thinking:
            await self._add_reasoning(ask.bot, parameters)
        request = ChatRequest(
            model=ask.bot,
            messages=await self._expand(self._with_system(history, ask.system) + new, loaded),
            temperature=ask.temperature,
            max_tokens=ask.max_tokens,
            top_p=ask.top_p,
            stop=ask.stop,
            tools=normalise_tools(tools) if tools else None,
            tool_choice=tool_choice_wire(ask.tool_choice),
            parallel_tool_calls=ask.parallel_tool_calls,
            parameters=parameters,
            stream=ask.stream,
        )
        completion = await self.complete(request, listener)
        if (
            completion.complete
        ):  # a failed or broken call leaves the stored conversation exactly as it was
            system_change = (
                []
                if ask.system is None or _system_of(history) == ask.system
                else [{"role": "system", "content": ask.system}]
            )
            await self.store.append(
                session_id,
                request.model,
                system_change + new + [completion.assistant_message()],
                request.tools,
            )
        return Answer(completion, session_id, request.model)

    async def complete(
        self, request: ChatRequest, listener: TextListener | None = None
    ) -> Completion:
        """One call to Poe, counted in this server's usage totals."""
        completion = await self.poe.chat(request, listener)
        usage = completion.usage
        await self.store.record_usage(
            request.model,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            completion.cost_usd,
        )
        return completion

    def _new_messages(self, ask: Ask, history: list[ChatMessage]) -> list[ChatMessage]:
        pending = pending_tool_calls(history)
        messages: list[ChatMessage] = []
        if ask.tool_results is not None or pending:
            if pending and ask.tool_results is None:
                raise InvalidRequestError(
                    f"This session is waiting for the results of tool calls {', '.join(pending)}",
                    advice="Call again with tool_results for those ids (or clear_session to start over).",
                )
            messages += tool_messages(pending, ask.tool_results or [])
        prompt = (ask.prompt or "").strip()
        if prompt or ask.attachments:
            if not prompt:
                raise InvalidRequestError(
                    "The prompt is empty", advice="Say what to do with the attachments."
                )
            parts: list[dict[str, Any]] = [
                {"type": ATTACHMENT_PART, "ref": ref} for ref in ask.attachments
            ]
            messages.append(
                {
                    "role": "user",
                    "content": [{"type": "text", "text": ask.prompt}, *parts]
                    if parts
                    else ask.prompt,
                }
            )
        if not messages:
            raise InvalidRequestError(
                "The prompt is empty",
                advice="Give a prompt (or tool_results answering the previous turn).",
            )
        return messages

    @staticmethod
    def _with_system(history: list[ChatMessage], system: str | None) -> list[ChatMessage]:
        """The history to send, led by the newest system message (the given one, else the stored one)."""
        system = system if system is not None else _system_of(history)
        rest = [m for m in history if m.get("role") != "system"]
        return ([{"role": "system", "content": system}] if system else []) + rest

    async def _expand(
        self, messages: list[ChatMessage], loaded: dict[str, dict[str, Any]]
    ) -> list[ChatMessage]:
        """Attachment references as real content parts for the wire (`loaded` holds those already read)."""
        expanded = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, list) and any(p.get("type") == ATTACHMENT_PART for p in content):
                parts = []
                for part in content:
                    if part.get("type") != ATTACHMENT_PART:
                        parts.append(part)
                        continue
                    try:
                        parts.append(
                            loaded.get(part["ref"])
                            or await load_attachment(part["ref"], self.rules, self.poe.http)
                        )
                    except AttachmentError as error:  # an old turn's file may have moved since
                        parts.append(
                            {
                                "type": "text",
                                "text": f"[attachment {part['ref']} is no longer available: {error.message}]",
                            }
                        )
                message = {**message, "content": parts}
            expanded.append(message)
        return expanded

    async def _add_reasoning(self, bot: str, parameters: dict[str, Any]) -> None:
        model = await self.poe.resolve_model(bot)
        switch = model.reasoning_switch() if model else None
        if switch:
            for name, value in switch.items():
                parameters.setdefault(name, value)


def _system_of(history: list[ChatMessage]) -> str | None:
    return next((m.get("content") for m in reversed(history) if m.get("role") == "system"), None)
