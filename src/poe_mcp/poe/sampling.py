"""The chat settings of one request as one validated value: sampling, output shape and reasoning effort.

Every entry point (the MCP tools, the CLI, Python callers) builds a `Sampling`, so a bound is checked the
same way whoever sends it, before any point is spent. The MCP input schemas take their bounds from
`BOUNDS`. Each backend reads the fields it can carry and says which it cannot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import InvalidRequestError

# Inclusive (low, high) limits of the numeric settings, as OpenAI and Poe define them; None = unbounded.
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "max_tokens": (1, None),
    "max_completion_tokens": (1, None),
    "top_logprobs": (0, 20),
    "seed": (-(2**63), 2**63 - 1),
}
MAX_STOP_SEQUENCES = 4
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")
SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# OpenAI's limits on `metadata`: at most 16 pairs, keys up to 64 and values up to 512 characters.
METADATA_PAIRS, METADATA_KEY, METADATA_VALUE = 16, 64, 512
MAX_USER_CHARS = 256


def _refuse(name: str, problem: str, advice: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(
        f"{name} {problem}", advice=advice or "Fix it and call again; nothing was sent to Poe."
    )


def _check_number(name: str, value: Any, integer: bool) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise _refuse(name, f"must be {'an integer' if integer else 'a number'}, not {value!r}")
    low, high = BOUNDS[name]
    if (low is not None and value < low) or (high is not None and value > high):
        limits = f"at least {low}" if high is None else f"between {low} and {high}"
        raise _refuse(name, f"must be {limits}, not {value!r}")


@dataclass(frozen=True)
class ResponseFormat:
    """OpenAI's `response_format`: plain text, any JSON object, or JSON matching a schema."""

    type: str
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool | None = None

    @classmethod
    def of(cls, value: Any) -> ResponseFormat:
        """Read the OpenAI shape (`{"type": "json_schema", "json_schema": {name, schema, strict}}`); the
        Responses API's flat `{"type": "json_schema", name, schema, strict}` is accepted too."""
        if isinstance(value, ResponseFormat):
            return value
        if not isinstance(value, Mapping) or value.get("type") not in RESPONSE_FORMAT_TYPES:
            raise _refuse(
                "response_format",
                f"must be an object whose type is one of {', '.join(RESPONSE_FORMAT_TYPES)}",
                'Send e.g. {"type": "json_schema", "json_schema": {"name": "answer", "schema": {...}}}.',
            )
        if value["type"] != "json_schema":
            return cls(value["type"])
        spec = value.get("json_schema", value)
        if not isinstance(spec, Mapping):
            raise _refuse("response_format.json_schema", "must be an object")
        name, schema, strict = spec.get("name"), spec.get("schema"), spec.get("strict")
        if not isinstance(name, str) or not SCHEMA_NAME.match(name):
            raise _refuse(
                "response_format.json_schema.name", "must be 1-64 letters, digits, _ or -"
            )
        if strict is not None and not isinstance(strict, bool):
            raise _refuse("response_format.json_schema.strict", "must be true or false")
        _check_json_schema(schema)
        return cls("json_schema", name, schema, strict)

    def to_wire(self) -> dict[str, Any]:
        if self.type != "json_schema":
            return {"type": self.type}
        spec: dict[str, Any] = {"name": self.name, "schema": self.schema}
        if self.strict is not None:
            spec["strict"] = self.strict
        return {"type": "json_schema", "json_schema": spec}


def _check_json_schema(schema: Any) -> None:
    """A schema we can check answers against locally: valid JSON Schema, with only local `$ref`s."""
    import jsonschema  # deferred: only structured-output calls pay for it

    if not isinstance(schema, Mapping):
        raise _refuse("response_format.json_schema.schema", "must be a JSON Schema object")
    remote = _remote_refs(schema)
    if remote:
        raise _refuse(
            "response_format.json_schema.schema",
            f"refers outside itself ({remote[0]}); remote $ref is never fetched",
            "Inline the referenced schema under $defs and refer to it as #/$defs/....",
        )
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        raise _refuse(
            "response_format.json_schema.schema", f"is not valid JSON Schema: {error.message}"
        ) from None


def _remote_refs(schema: Any) -> list[str]:
    if isinstance(schema, Mapping):
        found = [
            ref for key, ref in schema.items() if key == "$ref" and not str(ref).startswith("#")
        ]
        return found + [r for value in schema.values() for r in _remote_refs(value)]
    if isinstance(schema, list):
        return [r for item in schema for r in _remote_refs(item)]
    return []


def _check_stop(stop: Any) -> None:
    if not isinstance(stop, (list, tuple)) or len(stop) > MAX_STOP_SEQUENCES:
        raise _refuse("stop", f"must be a list of at most {MAX_STOP_SEQUENCES} strings")
    if any(not isinstance(s, str) or not s.strip() for s in stop):
        raise _refuse("stop", "sequences must be strings that are not empty or only whitespace")


def _check_metadata(metadata: Any) -> None:
    if not isinstance(metadata, Mapping) or len(metadata) > METADATA_PAIRS:
        raise _refuse("metadata", f"must be an object of at most {METADATA_PAIRS} string pairs")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise _refuse("metadata", f"values must be strings; {key!r} is {json.dumps(value)}")
        if len(key) > METADATA_KEY or len(value) > METADATA_VALUE:
            raise _refuse(
                "metadata",
                f"keys may have {METADATA_KEY} and values {METADATA_VALUE} characters at most",
            )


@dataclass(frozen=True, kw_only=True)
class Sampling:
    """How the model should answer: every field optional, every value checked on construction."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    reasoning_effort: str | None = None
    response_format: ResponseFormat | None = None
    metadata: Mapping[str, str] | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        for name, integer in (
            ("temperature", False),
            ("top_p", False),
            ("max_tokens", True),
            ("max_completion_tokens", True),
            ("seed", True),
            ("top_logprobs", True),
        ):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), integer)
        if self.stop is not None:
            _check_stop(self.stop)
            object.__setattr__(self, "stop", tuple(self.stop))
        if self.logprobs is not None and not isinstance(self.logprobs, bool):
            raise _refuse("logprobs", "must be true or false")
        if self.top_logprobs is not None and not self.logprobs:
            raise _refuse("top_logprobs", "needs logprobs: true", "Add logprobs: true.")
        if self.reasoning_effort is not None and self.reasoning_effort not in REASONING_EFFORTS:
            raise _refuse("reasoning_effort", f"must be one of {', '.join(REASONING_EFFORTS)}")
        if self.response_format is not None:
            object.__setattr__(self, "response_format", ResponseFormat.of(self.response_format))
        if self.metadata is not None:
            _check_metadata(self.metadata)
        if self.user is not None and (
            not isinstance(self.user, str) or not 0 < len(self.user) <= MAX_USER_CHARS
        ):
            raise _refuse("user", f"must be a string of 1 to {MAX_USER_CHARS} characters")

    def wire(self) -> dict[str, Any]:
        """The fields that are set, as OpenAI chat-completions body fields."""
        body: dict[str, Any] = {}
        for name in SAMPLING_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, ResponseFormat):
                value = value.to_wire()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            body[name] = value
        return body

    @property
    def schema(self) -> Mapping[str, Any] | None:
        """The JSON Schema the answer must match, when a json_schema response format was asked for."""
        response_format = self.response_format
        return response_format.schema if response_format is not None else None


SAMPLING_FIELDS = tuple(f.name for f in fields(Sampling))
# Body fields poe-mcp sets itself: a custom parameter by one of these names would silently override them.
STANDARD_FIELDS = frozenset(
    SAMPLING_FIELDS
    + (
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "stream",
        "stream_options",
        "n",
    )
)


def refuse_standard_names(parameters: Mapping[str, Any]) -> None:
    """Custom `parameters` are the model's own; a standard field sent through them is refused by name."""
    for name in parameters:
        if name in SAMPLING_FIELDS:
            raise _refuse(
                f"parameters.{name}",
                "is a standard request field, not a custom parameter",
                f"Pass it as the {name} input instead of inside parameters.",
            )
        if name in STANDARD_FIELDS:
            raise _refuse(
                f"parameters.{name}",
                "is set by poe-mcp itself and cannot be a custom parameter",
                f"Remove {name} from parameters.",
            )
