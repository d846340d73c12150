"""Asking Poe inside a stored conversation: the logic both the MCP tools and the CLI call."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..attachments import AttachmentError, AttachmentRules, load_attachment
from ..conversations import (
    ConflictError,
    Conversation,
    ConversationStore,
    SpendHold,
    UsageEvent,
)
from ..poe.client import PoeClient
from ..poe.errors import InvalidRequestError, NotFoundError
from ..poe.media import MediaFile, SkippedUrl
from ..poe.sampling import Sampling
from ..poe.types import ChatMessage, ChatRequest, Completion, TextListener
from .history import ATTACHMENT_PART, WireHistories, holds_attachments
from .spend import Approver, SpendGuard, estimate_chat

if TYPE_CHECKING:
    from .media import MediaService

log = logging.getLogger(__name__)

# Stored user messages keep attachments by reference, not their bytes; they are loaded again on resend.

# What a given session_id must be: a stored conversation (MCP tools, so a mistyped id is caught), a new
# one to start under that id (`new_session: true`), or either (the CLI's `--session`).
SessionUse = Literal["continue", "start", "either"]


@dataclass(kw_only=True)
class Ask:
    """One call of ask_poe / ask_poe_with_tools, as the caller gave it."""

    bot: str
    prompt: str | None = None
    session_id: str | None = None
    system: str | None = None
    attachments: list[str] = field(default_factory=list)
    sampling: Sampling = field(default_factory=Sampling)
    parameters: dict[str, Any] = field(default_factory=dict)
    # A bool, or the legacy server's {"enabled", "template"?, "include_in_response"?}.
    thinking: bool | dict[str, Any] | None = None
    stream: bool = True
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    tool_results: list[dict[str, Any]] | None = None
    session_use: SessionUse = "continue"
    api: str | None = None  # "chat", "responses", or None: the model's catalog entry decides
    web_search: bool = False
    max_cost_usd: float | None = None  # lowers POE_MCP_MAX_COST_PER_CALL for this call
    approver: Approver | None = None  # asks the person above POE_MCP_CONFIRM_ABOVE_USD


@dataclass(frozen=True)
class ThinkingRequest:
    """`thinking` as a caller gave it: a bool, or the legacy server's object."""

    enabled: bool
    include_in_response: bool = True
    template: str | None = None  # the legacy server's prompt template; Poe's models reason natively

    @classmethod
    def of(cls, value: bool | dict[str, Any] | None) -> ThinkingRequest:
        if value is None or isinstance(value, bool):
            return cls(bool(value))
        unknown = set(value) - {"enabled", "template", "include_in_response"}
        enabled, include = value.get("enabled"), value.get("include_in_response", True)
        if unknown or not isinstance(enabled, bool) or not isinstance(include, bool):
            raise InvalidRequestError(
                "thinking must be true/false or {enabled: bool, template?, include_in_response?: bool}",
                advice='Send "thinking": true, or {"enabled": true}.',
            )
        template = value.get("template")
        return cls(enabled, include, template if isinstance(template, str) else None)


@dataclass
class Answer:
    completion: Completion
    session_id: str
    bot: str
    # The answer's media (attached files, links to Poe's CDN), saved as the generators save theirs.
    media: list[MediaFile] = field(default_factory=list)
    skipped: list[SkippedUrl] = field(default_factory=list)


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


def tool_choice_wire(
    choice: str | dict[str, Any] | None, tools: list[dict[str, Any]] | None
) -> str | dict[str, Any] | None:
    """`auto`, `none`, `required`, a function name, or the object form (chat's, or the Responses API's
    flat one) as chat completions takes it; a function the tools do not define is refused."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    name = choice if isinstance(choice, str) else _chosen_function(choice)
    defined = [t["function"]["name"] for t in tools or ()]
    if tools and name not in defined:
        raise InvalidRequestError(
            f"tool_choice names {name!r}, which the tools do not define ({', '.join(defined)})",
            advice="Name one of the tools, or use auto, none or required.",
        )
    return {"type": "function", "function": {"name": name}}


def _chosen_function(choice: dict[str, Any]) -> str:
    function = choice.get("function", choice)
    name = function.get("name") if isinstance(function, dict) else None
    if choice.get("type") != "function" or not isinstance(name, str) or not name:
        raise InvalidRequestError(
            "tool_choice must be auto, none, required, a function name, or "
            '{"type": "function", "function": {"name": ...}}',
            advice="Fix tool_choice and call again; nothing was sent to Poe.",
        )
    return name


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

    def __init__(
        self,
        poe: PoeClient,
        store: ConversationStore,
        rules: AttachmentRules,
        media: MediaService | None = None,
        guard: SpendGuard | None = None,
    ) -> None:
        self.poe = poe
        self.store = store
        self.rules = rules
        self.media = media  # saves the media of an answer; None leaves its links as they are
        self.histories = WireHistories()
        self.guard = guard or SpendGuard(poe.settings, store)

    async def ask(self, ask: Ask, listener: TextListener | None = None) -> Answer:
        session_id = ask.session_id or uuid.uuid4().hex
        # A session id made just now names nothing stored yet: no read (a thread hop) for it.
        conversation = (
            await self.store.load(session_id) if ask.session_id else Conversation(session_id)
        )
        if ask.session_id is not None:
            check_session_use(ask.session_id, ask.session_use, bool(conversation.messages))
        history = conversation.messages
        # A continued session keeps its model (and so its API path) unless the caller names another.
        ask = dataclasses.replace(
            ask, bot=ask.bot or conversation.model or self.poe.settings.default_model
        )
        tools = (
            ask.tools if ask.tools is not None else conversation.tools
        )  # later rounds need not resend them
        new = self._new_messages(ask, history)
        # Load (and so check) this turn's attachments before anything is spent; older turns' load on resend.
        loaded = {
            ref: await load_attachment(ref, self.rules, self.poe.http) for ref in ask.attachments
        }
        wire_tools = normalise_tools(tools) if tools else None
        thinking = ThinkingRequest.of(ask.thinking)
        parameters, sampling = dict(ask.parameters), ask.sampling
        notes: list[str] = []
        if thinking.enabled or sampling.reasoning_effort is not None:
            sampling = await self._reasoning_switch(ask.bot, parameters, sampling, notes)
        if thinking.template is not None:
            notes.append(
                "thinking.template is not used: Poe's models reason without a prompt template"
            )
        request = ChatRequest(
            model=ask.bot,
            messages=await self._wire_messages(session_id, history, ask.system, new, loaded),
            sampling=sampling,
            tools=wire_tools,
            tool_choice=tool_choice_wire(ask.tool_choice, wire_tools),
            parallel_tool_calls=ask.parallel_tool_calls,
            parameters=parameters,
            stream=ask.stream,
            api=ask.api,
            web_search=ask.web_search,
        )
        hold = await self._admit(request, session_id, ask.max_cost_usd, ask.approver)
        completion = await self._send(request, listener, hold)
        completion.notes[:0] = notes
        if not thinking.include_in_response:
            completion.reasoning = None
        if not completion.complete:  # a broken call leaves the stored conversation as it was
            await self._record_usage(request.model, completion, session_id, hold)
        else:
            system_change = (
                []
                if ask.system is None or self.histories.of(session_id, history).system == ask.system
                else [{"role": "system", "content": ask.system}]
            )
            await self._store_turn(
                completion,
                session_id,
                request.model,
                system_change + new + [completion.assistant_message()],
                request.tools,
                built_on=len(history),
                hold=hold,
            )
        files, skipped = await self._save_media(completion)
        return Answer(completion, session_id, request.model, files, skipped)

    async def _save_media(self, completion: Completion) -> tuple[list[MediaFile], list[SkippedUrl]]:
        """Save the answer's media before its links expire; a failure costs the files, never the answer."""
        if self.media is None:
            return [], []
        try:
            files, skipped = await self.media.save_reply(completion)
        except Exception as error:
            log.warning("Saving the media of an answer failed: %s", type(error).__name__)
            completion.notes.append(
                f"The answer's media could not be saved ({type(error).__name__})"
            )
            return [], []
        completion.notes += [f"not saved: {s.url} ({s.reason})" for s in skipped]
        return files, skipped

    async def _admit(
        self,
        request: ChatRequest,
        session_id: str | None,
        max_cost_usd: float | None,
        approver: Approver | None,
    ) -> SpendHold | None:
        """The spend guard, before anything is sent: nothing at all when no budget applies."""
        if not self.guard.applies(max_cost_usd):
            return None
        info = await self.poe.prepare(request)  # a call Poe would refuse is refused before asking
        await self.poe.backend_for(request, info)  # so is a web_search or api no path can serve
        return await self.guard.admit(
            estimate_chat(request, info),
            session_id=session_id,
            max_cost_usd=max_cost_usd,
            approver=approver,
        )

    async def _send(
        self, request: ChatRequest, listener: TextListener | None, hold: SpendHold | None
    ) -> Completion:
        try:
            return await self.poe.chat(request, listener)
        except BaseException as error:
            await self.guard.failed(hold, error)
            raise

    async def _store_turn(
        self,
        completion: Completion,
        session_id: str,
        model: str,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None,
        *,
        built_on: int,
        hold: SpendHold | None = None,
    ) -> None:
        """Store the answered turn with its usage (and the settle of its hold), in one write; if that
        fails the paid answer is still returned, with a note."""
        usage = self._usage_event(model, completion, session_id, hold)
        try:
            await self.store.append(
                session_id, model, messages, tools, built_on=built_on, usage=usage
            )
            return
        except ConflictError as error:
            completion.notes.append(
                f"This turn was not stored ({error.type}): {error.message}. The answer is returned, but session "
                f"{session_id} does not include it; send the turn again to add it."
            )
        except Exception as error:
            log.exception("Storing a turn of session %s failed", session_id)
            completion.notes.append(
                f"This turn was not stored ({type(error).__name__}: the conversation store failed); "
                f"the answer is returned, but session {session_id} does not include it."
            )
        # the call was paid for even if the turn was not kept
        await self._record_usage(model, completion, session_id, hold)

    async def complete(
        self,
        request: ChatRequest,
        listener: TextListener | None = None,
        *,
        max_cost_usd: float | None = None,
        approver: Approver | None = None,
    ) -> Completion:
        """One call to Poe, counted in this server's usage totals (it belongs to no conversation)."""
        hold = await self._admit(request, None, max_cost_usd, approver)
        completion = await self._send(request, listener, hold)
        await self._record_usage(request.model, completion, None, hold)
        return completion

    def _usage_event(
        self, model: str, completion: Completion, session_id: str | None, hold: SpendHold | None
    ) -> UsageEvent:
        usage = completion.usage
        return UsageEvent(
            model,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            **self.guard.spend(hold, completion.cost_usd, session_id=session_id),
        )

    async def _record_usage(
        self,
        model: str,
        completion: Completion,
        session_id: str | None = None,
        hold: SpendHold | None = None,
    ) -> None:
        usage = self._usage_event(model, completion, session_id, hold)
        try:
            await self.store.record_usage(
                usage.model,
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cost_usd,
                points=usage.points,
                session_id=usage.session_id,
                day=usage.day,
                hold=usage.hold,
            )
        except Exception as error:  # the answer is paid for: losing a usage row must not lose it
            log.exception("Recording usage for %s failed", model)
            completion.notes.append(
                f"This call is missing from get_usage's server totals ({type(error).__name__}: "
                "the store failed)."
            )

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

    async def _wire_messages(
        self,
        session_id: str,
        history: list[ChatMessage],
        system: str | None,
        new: list[ChatMessage],
        loaded: dict[str, dict[str, Any]],
    ) -> list[ChatMessage]:
        """The request's messages: the newest system message first (the given one, else the stored one),
        then the stored history without its system messages, then this turn's; references read."""
        stored = self.histories.of(session_id, history)
        system = system if system is not None else stored.system
        lead: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
        messages = lead + stored.messages + new
        with_attachments = [len(lead) + i for i in stored.with_attachments] + [
            len(lead) + len(stored.messages) + i for i, m in enumerate(new) if holds_attachments(m)
        ]
        for index in with_attachments:
            messages[index] = await self._read_attachments(messages[index], loaded)
        return messages

    async def _read_attachments(
        self, message: ChatMessage, loaded: dict[str, dict[str, Any]]
    ) -> ChatMessage:
        """A user message's attachment references as real content parts (`loaded` holds those already read)."""
        parts = []
        for part in message["content"]:
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
        return {**message, "content": parts}

    async def _reasoning_switch(
        self, bot: str, parameters: dict[str, Any], sampling: Sampling, notes: list[str]
    ) -> Sampling:
        """Turn reasoning on (at the asked effort) the way the model's catalog entry declares: a custom
        parameter, or the standard reasoning_effort; a model with no switch gets nothing, and a note."""
        model = await self.poe.resolve_model(bot)
        if model is None:  # the catalog cannot say: reasoning_effort goes as given
            if sampling.reasoning_effort is None:
                notes.append(f"The catalog does not know {bot}, so thinking was not sent")
            return sampling
        switch = model.reasoning_switch(sampling.reasoning_effort)
        for name, value in switch.parameters.items():
            parameters.setdefault(name, value)
        if switch.note:
            notes.append(switch.note)
        return dataclasses.replace(sampling, reasoning_effort=switch.effort)
