"""The shapes of results, shared by the MCP tools (as output schemas) and the CLI's `--json`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from .conversations import UsageTotals
from .poe.catalog import ModelInfo
from .poe.media import MediaFile
from .poe.types import Completion, Usage
from .services.conversations import Answer
from .services.media import Generation

HANDLE_SEPARATOR = " · "


def money(cost: float | None) -> str | None:
    """A cost in dollars with its significant digits, however small: `$0.0031`, `$0.000012`."""
    if cost is None:
        return None
    return "$" + (f"{cost:.6f}".rstrip("0").rstrip(".") if cost else "0")


def handle_line(*facts: str | None) -> str:
    """The facts that are known, on one line a model and a person both read."""
    return HANDLE_SEPARATOR.join(f for f in facts if f)


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def of(cls, usage: Usage | None) -> UsageOut | None:
        return cls(**vars(usage)) if usage else None

    @staticmethod
    def tokens(usage: UsageOut | None) -> str | None:
        return f"{usage.total_tokens} tokens" if usage else None


def chat_facts(
    session_id: str,
    bot: str,
    finish_reason: str | None,
    usage: UsageOut | None,
    cost_usd: float | None,
    notes: list[str],
) -> str:
    """`session_id=… · bot · N tokens · $cost`, then what is unusual: a finish other than stop, notes."""
    finish = (
        None if finish_reason in (None, "stop", "tool_calls") else f"finish_reason={finish_reason}"
    )
    return handle_line(
        f"session_id={session_id}",
        bot,
        UsageOut.tokens(usage),
        money(cost_usd),
        finish,
        "notes: " + "; ".join(notes) if notes else None,
    )


class ChatResult(BaseModel):
    """A chat tool's structured result, which can also say its handles as one short text block."""

    def handles(self) -> str:
        raise NotImplementedError


class AskResult(ChatResult):
    text: str
    bot: str
    session_id: str
    finish_reason: str | None
    usage: UsageOut | None
    cost_usd: float | None
    reasoning: str | None = None
    media: list[dict[str, Any]] = []
    error: str | None = None
    notes: list[str] = []
    # The JSON value, when response_format asked for JSON and the answer conforms.
    parsed: Any = None

    @classmethod
    def of(cls, answer: Answer) -> AskResult:
        c = answer.completion
        return cls(
            text=c.text,
            bot=answer.bot,
            session_id=answer.session_id,
            finish_reason=c.finish_reason,
            usage=UsageOut.of(c.usage),
            cost_usd=c.cost_usd,
            reasoning=c.reasoning,
            parsed=c.parsed,
            media=[FileOut.of(f).model_dump() for f in answer.media],
            error=_error(c),
            notes=c.notes,
        )

    def handles(self) -> str:
        """What a client that shows the model only `content` must still carry: the session, cost, notes,
        and the files the answer's media were saved to."""
        facts = chat_facts(
            self.session_id, self.bot, self.finish_reason, self.usage, self.cost_usd, self.notes
        )
        saved = "".join(
            f"\nSaved {f['path']} ({f['mime_type']}, {f['bytes']} bytes)" for f in self.media
        )
        return facts + saved + (f"\nreasoning:\n{self.reasoning}" if self.reasoning else "")


class ToolCallOut(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] | None
    arguments_raw: str | None = None

    def line(self) -> str:
        shown = json.dumps(self.arguments) if self.arguments is not None else self.arguments_raw
        return f"- id={self.id} {self.name}({shown})"


class ToolsResult(ChatResult):
    text: str
    tool_calls: list[ToolCallOut]
    finish_reason: str | None
    session_id: str
    bot: str
    usage: UsageOut | None
    cost_usd: float | None
    error: str | None = None
    notes: list[str] = []

    @classmethod
    def of(cls, answer: Answer) -> ToolsResult:
        c = answer.completion
        calls = [
            ToolCallOut(
                id=t.id,
                name=t.name,
                arguments=t.arguments,
                arguments_raw=None if t.arguments is not None else t.arguments_raw,
            )
            for t in c.tool_calls
        ]
        return cls(
            text=c.text,
            tool_calls=calls,
            finish_reason=c.finish_reason,
            session_id=answer.session_id,
            bot=answer.bot,
            usage=UsageOut.of(c.usage),
            cost_usd=c.cost_usd,
            error=_error(c),
            notes=c.notes,
        )

    def handles(self) -> str:
        """The session line, then each call the model asks for and the exact call that answers them."""
        facts = chat_facts(
            self.session_id, self.bot, self.finish_reason, self.usage, self.cost_usd, self.notes
        )
        if not self.tool_calls:
            return facts
        follow_up = {
            "session_id": self.session_id,
            "tool_results": [
                {"tool_call_id": t.id, "content": f"<result of {t.name}>"} for t in self.tool_calls
            ],
        }
        return "\n".join(
            [
                facts,
                "The model asks for these tool calls:",
                *(t.line() for t in self.tool_calls),
                f"Run them, then call ask_poe_with_tools {json.dumps(follow_up)}",
            ]
        )


def completion_handles(completion: Completion) -> str:
    """chat_completion's second text block: model, finish, tokens, cost, and any tool calls asked for."""
    facts = handle_line(
        completion.model,
        f"finish_reason={completion.finish_reason}" if completion.finish_reason else None,
        UsageOut.tokens(UsageOut.of(completion.usage)),
        money(completion.cost_usd),
    )
    calls = [f"- id={t.id} {t.name}({t.arguments_raw})" for t in completion.tool_calls]
    return "\n".join([facts, *calls])


def _error(completion: Completion) -> str | None:
    return str(completion.error) if completion.error else None


class FileOut(BaseModel):
    path: str
    url: str
    mime_type: str
    bytes: int
    uri: str

    @classmethod
    def of(cls, file: MediaFile) -> FileOut:
        return cls(
            path=str(file.path),
            url=file.url,
            mime_type=file.mime_type,
            bytes=file.bytes,
            uri=MEDIA_URI + file.name,
        )


class SkippedOut(BaseModel):
    url: str
    reason: str


MEDIA_URI = "poe-mcp://media/"


class MediaResult(BaseModel):
    files: list[FileOut]
    model: str
    text: str
    usage: UsageOut | None
    cost_usd: float | None
    skipped_urls: list[SkippedOut]

    @classmethod
    def of(cls, generation: Generation) -> MediaResult:
        return cls(
            files=[FileOut.of(f) for f in generation.files],
            model=generation.model,
            text=generation.text,
            usage=UsageOut.of(generation.usage),
            cost_usd=generation.cost_usd,
            skipped_urls=[SkippedOut(url=s.url, reason=s.reason) for s in generation.skipped],
        )


class JobOut(BaseModel):
    progress: float | None
    points: float | None  # what Poe charged for the job, once it completed
    expires_at: str | None


class VideoResult(MediaResult):
    """A video, or the job making it: only video tools carry these fields (tools/list stays small)."""

    status: str = "completed"  # or "in_progress": make `next_call` to pick the job up
    job_id: str | None = None
    next_call: str | None = None
    job: JobOut | None = None

    @classmethod
    def of(cls, generation: Generation) -> VideoResult:
        job = JobOut(
            progress=generation.progress,
            points=generation.points,
            expires_at=_iso(generation.expires_at),
        )
        return cls(
            **MediaResult.of(generation).model_dump(),
            status=generation.status,
            job_id=generation.job_id,
            next_call=generation.next_call,
            job=job if generation.job_id else None,
        )


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp is not None else None


class ModelEntry(BaseModel):
    id: str
    display_name: str
    owned_by: str
    input_modalities: list[str]
    output_modalities: list[str]
    context_length: int | None
    supports_tools: bool
    pricing: dict[str, float | None] | None
    parameters: list[str]

    @classmethod
    def of(cls, model: ModelInfo) -> ModelEntry:
        return cls(
            id=model.id,
            display_name=model.display_name,
            owned_by=model.owned_by,
            input_modalities=list(model.input_modalities),
            output_modalities=list(model.output_modalities),
            context_length=model.context_length,
            supports_tools=model.supports_tools,
            pricing=model.pricing.per_million() if model.pricing else None,
            parameters=model.parameter_names,
        )


class ModelsResult(BaseModel):
    models: list[ModelEntry]
    total: int


class ModelDetail(ModelEntry):
    description: str
    max_output_tokens: int | None
    supported_endpoints: list[str]
    parameter_schemas: list[dict[str, Any]]
    icon_url: str | None

    @classmethod
    def of(cls, model: ModelInfo) -> ModelDetail:
        return cls(
            **ModelEntry.of(model).model_dump(),
            description=model.description,
            max_output_tokens=model.max_output_tokens,
            supported_endpoints=list(model.supported_endpoints),
            parameter_schemas=[
                {
                    "name": p.name,
                    "schema": p.schema,
                    "default": p.default,
                    "description": p.description,
                }
                for p in model.parameters
            ],
            icon_url=model.icon_url,
        )


class HistoryEntry(BaseModel):
    time: str | None
    bot_name: str | None
    query_id: str | None
    usage_type: str | None
    cost_points: int | None
    cost_usd: str | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> HistoryEntry:
        """One `/usage/points_history` row, its microsecond time as ISO 8601."""
        when, cost = raw.get("creation_time"), raw.get("cost_points")
        return cls(
            time=datetime.fromtimestamp(when / 1_000_000, UTC).isoformat(timespec="seconds")
            if isinstance(when, (int, float))
            else None,
            bot_name=raw.get("bot_name"),
            query_id=raw.get("query_id"),
            usage_type=raw.get("usage_type"),
            cost_points=int(cost) if isinstance(cost, (int, float)) else None,
            cost_usd=str(raw["cost_usd"]) if raw.get("cost_usd") is not None else None,
        )


class History(BaseModel):
    data: list[HistoryEntry]
    has_more: bool
    limit: int
    starting_after: str | None
    next_starting_after: str | None


class ServerTotals(BaseModel):
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    by_model: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, totals: UsageTotals) -> ServerTotals:
        return cls(**vars(totals))


class BudgetOut(BaseModel):
    """One budget of the spend guard; `spent` and `remaining` are None for the per-call budgets (and
    for the session ones when get_usage names no session)."""

    setting: str
    scope: str  # call, session or day
    unit: str  # usd or points
    limit: float
    spent: float | None
    remaining: float | None

    def line(self, day: str) -> str:
        from .services.spend import amount_text

        head = f"Budget per {self.scope} ({self.setting})"
        limit = amount_text(self.limit, self.unit)
        if self.spent is None or self.remaining is None:
            said = " (pass session_id to see one's spend)" if self.scope == "session" else ""
            return f"{head}: {limit}{said}."
        where = f" ({day})" if self.scope == "day" else ""
        return (
            f"{head}: {amount_text(self.spent, self.unit)} spent of {limit}, "
            f"{amount_text(self.remaining, self.unit)} left{where}."
        )


class DaySpend(BaseModel):
    day: str
    usd: float
    points: float


class ModelSpend(BaseModel):
    model: str
    usd: float
    points: float


class SpendOut(BaseModel):
    """What was really spent, by day (the last 14 in POE_MCP_BUDGET_TZ, oldest first) and by model."""

    time_zone: str
    today: str
    by_day: list[DaySpend]
    by_model: list[ModelSpend]


class UsageReport(BaseModel):
    current_point_balance: int | None
    history: History
    server_totals: ServerTotals
    budgets: list[BudgetOut] = []
    spend: SpendOut | None = None
