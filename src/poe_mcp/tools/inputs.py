"""Input types shared by several tools, so each is described (and bounded) in one place.

Descriptions are short on purpose: a client pays for every byte of tools/list in its context. The
bounds come from the Sampling value object, which checks them again for every caller.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ..poe.sampling import BOUNDS, MAX_STOP_SEQUENCES, SAMPLING_FIELDS, Sampling


def _bounded(name: str, **extra: Any) -> Any:
    """A pydantic Field carrying the Sampling bounds of `name` into the input schema."""
    low, high = BOUNDS[name]
    return Field(ge=low, le=high, **extra)


Bot = Annotated[str | None, Field(description="Model (default: session's)")]
Prompt = Annotated[str, Field(min_length=1, description="Prompt")]
SessionId = Annotated[str | None, Field(max_length=200, description="Session to continue")]
NewSession = Annotated[bool | None, Field(description="Start session_id anew")]
System = Annotated[str | None, Field(description="System message")]
Attachments = Annotated[list[str] | None, Field(description="Paths or https:/data: URLs")]
Temperature = Annotated[float | None, _bounded("temperature", description="Randomness")]
MaxTokens = Annotated[int | None, _bounded("max_tokens", description="Answer length cap")]
TopP = Annotated[float | None, _bounded("top_p", description="Nucleus sampling")]
Stop = Annotated[
    list[str] | None, Field(max_length=MAX_STOP_SEQUENCES, description="Stop sequences")
]
Parameters = Annotated[dict[str, Any] | None, Field(description="Model parameters")]
Thinking = Annotated[bool | dict[str, Any] | None, Field(description="Reason first")]
ParallelToolCalls = Annotated[bool | None, Field(description="Several calls a turn")]
Limit = Annotated[int, Field(ge=1, description="Most to list")]
Stream = Annotated[bool, Field(description="Report progress")]
Api = Annotated[Literal["chat", "responses"] | None, Field(description="Poe API")]
WebSearch = Annotated[bool | None, Field(description="Web search")]
# The standard OpenAI request fields; their shapes are checked by Sampling (one message for every caller).
ResponseFormat = Annotated[
    dict[str, Any] | None, Field(description="text, json_object, json_schema")
]
Seed = Annotated[int | None, Field(description="Sampling seed")]
Logprobs = Annotated[bool | None, Field(description="Return logprobs")]
TopLogprobs = Annotated[int | None, _bounded("top_logprobs", description="Logprobs per token")]
MaxCompletionTokens = Annotated[
    int | None, _bounded("max_completion_tokens", description="Cap, reasoning included")
]
# low, medium, high...: named by OpenAI, listed in the refusal
ReasoningEffort = Annotated[str | None, Field(description="Reasoning effort")]
# The spend guard (README "Budgets"): a per-call cap that can only lower POE_MCP_MAX_COST_PER_CALL,
# and the person's yes given in advance, honoured only with POE_MCP_ALLOW_CONFIRM_ARGUMENT=1.
MaxCostUsd = Annotated[float | None, Field(gt=0, description="USD cap")]
Confirm = Annotated[bool | None, Field(description="Confirmed cost")]
Metadata = Annotated[dict[str, Any] | None, Field(description="Request metadata")]
User = Annotated[str | None, Field(description="End-user id")]


def sampling_from(arguments: dict[str, Any]) -> Sampling:
    """The Sampling of a tool call whose inputs are named like its fields (pass the tool's `locals()`)."""
    return Sampling(
        **{name: arguments[name] for name in SAMPLING_FIELDS if arguments.get(name) is not None}
    )
