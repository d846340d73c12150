"""Structured outputs a caller can trust: a response_format answer parsed, and checked against its schema here.

Poe forwards `response_format` best-effort (documented as ignored, honoured by some providers), so the
answer is checked locally, with no extra request either way. The schema was checked before sending
(valid JSON Schema, no remote `$ref`), so checking the answer never fetches anything.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidResponseError
from .sampling import ResponseFormat
from .types import Completion

# Some models wrap JSON in a Markdown code fence even when asked for bare JSON; the fence is not the answer.
FENCED = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def check_structured(completion: Completion, response_format: ResponseFormat | None) -> None:
    """Set `completion.parsed`, or `completion.error` quoting why the answer is not what was asked."""
    if response_format is None or response_format.type == "text" or not completion.complete:
        return
    if completion.tool_calls and not completion.text.strip():
        return  # a function-calling turn: the JSON answer comes after the tool results
    try:
        value = _parse(completion.text)
        if response_format.schema is not None:
            _validate(value, response_format)
    except InvalidResponseError as error:
        completion.error = error
        return
    completion.parsed = value


def _parse(text: str) -> Any:
    stripped = text.strip()
    fenced = FENCED.match(stripped)
    try:
        return json.loads(fenced.group(1) if fenced else stripped)
    except json.JSONDecodeError as error:
        raise InvalidResponseError(
            f"The answer is not JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None


def _validate(value: Any, response_format: ResponseFormat) -> None:
    import jsonschema

    schema = dict(response_format.schema or {})
    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
        failure = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except Exception as error:  # e.g. a local $ref that points nowhere
        raise InvalidResponseError(
            f"The answer could not be checked against the {response_format.name} schema ({error})"
        ) from None
    if failure is not None:
        where = "".join(f"[{p!r}]" for p in failure.absolute_path) or "the top level"
        raise InvalidResponseError(
            f"The answer does not match the {response_format.name} schema: {failure.message} (at {where})"
        )
