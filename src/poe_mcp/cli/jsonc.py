"""JSON with comments and trailing commas (VS Code's and Zed's settings files): reading it, and
changing members of its top-level object in place, so the person's comments elsewhere stay."""

from __future__ import annotations

import json
import re
from typing import Any

# A JSON string, else a // or /* */ comment; then, in a second pass, a comma before a closing
# bracket. Strings are matched first so that `//` inside a URL is left alone.
_STRING = r'("(?:[^"\\]|\\.)*")'
_COMMENT = re.compile(_STRING + r"|//[^\n]*|/\*.*?\*/", re.DOTALL)
_TRAILING_COMMA = re.compile(_STRING + r"|,(?=\s*[}\]])")
# What the scanner steps over whole: strings, comments and runs of anything else that is not a bracket,
# a comma or a colon.
_TOKEN = re.compile(_STRING + r'|//[^\n]*|/\*.*?\*/|[{}\[\],:]|[^"{}\[\],:/]+|/', re.DOTALL)


def _keep_strings(match: re.Match[str]) -> str:
    return match.group(1) or ""


def loads(text: str) -> Any:
    return json.loads(_TRAILING_COMMA.sub(_keep_strings, _COMMENT.sub(_keep_strings, text)))


def comment_count(text: str) -> int:
    return sum(m.group(1) is None for m in _COMMENT.finditer(text))


def _member_spans(text: str) -> tuple[dict[str, tuple[int, int]], int]:
    """Where each member's value of the top-level object lies, and where that object's `{` is."""
    spans: dict[str, tuple[int, int]] = {}
    depth, opening, key, start, end = 0, -1, None, -1, -1
    for token in _TOKEN.finditer(text):
        piece = token.group(0)
        if piece.isspace() or piece.startswith(("//", "/*")):
            continue
        if depth == 1 and piece in ",}" and key is not None:  # the member's value ends here
            spans[key], key = (start, end), None
        elif depth == 1 and key is None and token.group(1) is not None:  # a member's name
            key, start = json.loads(piece), -1
        elif key is not None and not (depth == 1 and piece == ":" and start < 0):
            lead = len(piece) - len(piece.lstrip())
            start = token.start() + lead if start < 0 else start
            end = token.start() + len(piece.rstrip())
        if piece in "{[":
            depth += 1
            opening = token.start() if depth == 1 else opening
        elif piece in "}]":
            depth -= 1
    return spans, opening


def with_members(text: str, values: dict[str, Any]) -> str:
    """`text` with these top-level members set: each value rewritten where it stands (comments inside
    it go), a new member added first; every other byte, comments included, kept."""
    spans, opening = _member_spans(text)
    if opening < 0:
        raise ValueError("not a JSON object")
    edits = []
    for name, value in values.items():
        shown = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        if name in spans:
            edits.append((*spans[name], shown))
        else:
            edits.append((opening + 1, opening + 1, f"\n  {json.dumps(name)}: {shown},"))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text
