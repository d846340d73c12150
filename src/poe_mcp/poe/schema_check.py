"""Checking a value against a catalog parameter schema without letting the schema do harm.

A schema comes from Poe's catalog, so it is treated as untrusted input: it may not fetch or read
anything (`$ref` resolution is limited to the schema itself), and no regex in it may run unless it is
plainly linear (nested or stacked quantifiers, back-references and over-long patterns are not run;
Python's `re` holds the GIL, so a thread would not keep the event loop alive). What cannot be checked
safely here is left to Poe, which checks every parameter itself.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

MAX_PATTERN_CHARS = 500
# Values longer than this skip pattern checks: even a linear-looking regex may be quadratic.
MAX_MATCHED_CHARS = 2000
# Quantifiers allowing more than this many repeats count as "long"; two may stack, three may not.
LONG_REPEAT = 10
MAX_LONG_REPEATS = 2

try:  # Python 3.11+
    import re._constants as sre_constants
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants
    import sre_parse

_REPEATS = {
    getattr(sre_constants, name)
    for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
    if hasattr(sre_constants, name)
}
_BACKREFS = {
    getattr(sre_constants, name)
    for name in ("GROUPREF", "GROUPREF_EXISTS", "GROUPREF_IGNORE", "GROUPREF_LOC_IGNORE")
    if hasattr(sre_constants, name)
}


class UnsafeSchema(Exception):
    """The schema cannot be checked here without risk; the message says why."""


def _long_repeats(items: Any, inside_repeat: bool) -> int:
    """How many long quantifiers the parsed pattern holds; raises on a shape that can backtrack badly."""
    count = 0
    for op, arg in items:
        if op in _REPEATS:
            low, high, body = arg
            repeats = high > 1
            if inside_repeat and repeats:
                raise UnsafeSchema("a nested quantifier")
            count += high > LONG_REPEAT
            count += _long_repeats(body, inside_repeat or repeats)
        elif op in _BACKREFS:
            raise UnsafeSchema("a back-reference")
        elif op is sre_constants.BRANCH:
            if inside_repeat:
                raise UnsafeSchema("an alternation under a quantifier")
            count += max((_long_repeats(b, inside_repeat) for b in arg[1]), default=0)
        elif op is sre_constants.SUBPATTERN:
            count += _long_repeats(arg[-1], inside_repeat)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            count += _long_repeats(arg[1], inside_repeat)
        elif op is getattr(sre_constants, "ATOMIC_GROUP", None):
            count += _long_repeats(arg, inside_repeat)
    return count


@functools.lru_cache(maxsize=256)
def safe_regex(pattern: str) -> re.Pattern[str]:
    """The compiled pattern, once per pattern, if it is plainly linear; UnsafeSchema otherwise."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsafeSchema(f"a pattern over {MAX_PATTERN_CHARS} characters")
    try:
        parsed = sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        raise UnsafeSchema("a pattern Python cannot compile") from None
    if _long_repeats(parsed, False) > MAX_LONG_REPEATS:
        raise UnsafeSchema("too many stacked quantifiers")
    return compiled


def _regexes(schema: Any) -> list[str]:
    """Every regex a schema holds: `pattern` values and `patternProperties` keys, at any depth."""
    found: list[str] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                found.append(value)
            elif key == "patternProperties" and isinstance(value, dict):
                found += [k for k in value if isinstance(k, str)]
            found += _regexes(value)
    elif isinstance(schema, list):
        for item in schema:
            found += _regexes(item)
    return found


def _longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return max([_longest_string(v) for v in value.values()] + [len(k) for k in value] + [0])
    if isinstance(value, list):
        return max([_longest_string(v) for v in value] + [0])
    return 0


def _refuse_retrieval(uri: str) -> Any:
    raise UnsafeSchema(f"a $ref to {uri[:100]}, which is never fetched")


def _registry() -> Any:
    from referencing import Registry

    return Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


def validation_errors(value: Any, schema: dict[str, Any]) -> Any:
    """The first jsonschema ValidationError of `value`, or None; UnsafeSchema when it cannot be checked."""
    import jsonschema
    import referencing.exceptions

    regexes = _regexes(schema)
    for pattern in regexes:
        safe_regex(pattern)
    if regexes and _longest_string(value) > MAX_MATCHED_CHARS:
        raise UnsafeSchema(f"a value over {MAX_MATCHED_CHARS} characters matched by a pattern")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, registry=_registry())
    try:
        return jsonschema.exceptions.best_match(validator.iter_errors(value))
    except referencing.exceptions.Unresolvable as error:
        raise UnsafeSchema(f"a $ref that is not inside the schema ({error})") from None
    except RecursionError:
        raise UnsafeSchema("a schema nested too deeply") from None


def describe(schema: dict[str, Any]) -> str:
    return json.dumps(schema)[:200]
