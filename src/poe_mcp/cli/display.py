"""Showing text from models, bots and stored conversations in a terminal, where it is data, never
instructions: no rich markup is interpreted in it and no control sequence reaches the terminal."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

# ESC sequences: CSI (colours, cursor moves), OSC (window titles, hyperlinks, clipboard), the
# string commands DCS/SOS/PM/APC, and two-byte escapes; then any other C0/C1 control character.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[ -Z\\-~])"
)
# The start of one of those sequences, not yet finished: held back until the next piece comes.
_UNFINISHED_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[PX^_][^\x1b]*\x1b?)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
_LONGEST_HELD_ESCAPE = 256  # an OSC longer than this is not waited for: it is stripped in pieces


def terminal_safe(text: str) -> str:
    """The text with escape sequences and control characters removed; newlines and tabs kept."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text.replace("\r\n", "\n")))


def one_line(text: str) -> str:
    """For a table cell: safe, and all whitespace runs (newlines too) made one space."""
    return " ".join(terminal_safe(text).split())


def split_unfinished_escape(text: str) -> tuple[str, str]:
    """(what can be shown now, an escape sequence cut off at the end, kept for the next piece)."""
    start = text.rfind("\x1b")
    if start < 0 or len(text) - start > _LONGEST_HELD_ESCAPE:
        return text, ""
    if _UNFINISHED_ESCAPE.fullmatch(text, start):
        return text[:start], text[start:]
    return text, ""


class AnswerWriter:
    """Streams an answer to `stream`, safe for a terminal, honouring replace_response.

    On a terminal a replacement erases what was shown and draws the new text. Piped, nothing can
    be taken back, so when the backend can replace (`hold`) the answer is written once it is
    whole; otherwise it streams as it comes."""

    def __init__(
        self, stream: TextIO, hold: bool, before_first: Callable[[], None] | None = None
    ) -> None:
        self.stream = stream
        self._before_first = before_first  # e.g. stop a spinner: it and the text share the screen
        self.live = stream.isatty()
        self.hold = hold and not self.live
        self.shown = ""
        self._unfinished = ""

    async def __call__(self, piece: str) -> None:
        if self.hold:
            return
        text, self._unfinished = split_unfinished_escape(self._unfinished + piece)
        self._write(terminal_safe(text))

    async def replace(self, text: str) -> None:
        if self.hold:
            return
        if self.live and self.shown:
            self._erase()
        self.shown, self._unfinished = "", ""
        await self(text)

    def finish(self, final_text: str) -> None:
        """Write what is still held, and end with a newline."""
        if self.hold:
            self._write(terminal_safe(final_text))
        self._unfinished = ""
        if not self.shown.endswith("\n"):
            self._write("\n")

    def _write(self, text: str) -> None:
        if text:
            if self._before_first is not None:
                self._before_first()
                self._before_first = None
            self.stream.write(text)
            self.stream.flush()
            self.shown += text

    def _erase(self) -> None:
        """Move the cursor back to where the answer began and clear to the end of the screen."""
        width = max(1, shutil.get_terminal_size().columns)
        rows = sum(max(1, -(-cell_len(line) // width)) for line in self.shown.split("\n"))
        self.stream.write("\r" + "\x1b[1A" * (rows - 1) + "\x1b[J")


def show_table(
    console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]], shrink: int = -1
) -> None:
    """Rows of untrusted text as a table. On a terminal: fitted to its width, with only the
    `shrink` column cut short (ids and numbers are what people copy, so they stay whole). Piped:
    plain aligned columns, one line per row, no trailing spaces, so grep and cut work."""
    cells = [[one_line(cell) for cell in row] for row in rows]
    widths = [max([cell_len(h)] + [cell_len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    shrink %= len(headers)
    if not console.is_terminal:
        for row in [list(headers), *cells]:
            padded = [cell + " " * (widths[i] - cell_len(cell)) for i, cell in enumerate(row)]
            sys.stdout.write("  ".join(padded).rstrip() + "\n")
        return
    gaps = 2 * (len(headers) - 1)
    room = console.width - gaps - sum(w for i, w in enumerate(widths) if i != shrink)
    widths[shrink] = max(min(widths[shrink], room), 8)  # explicit widths: rich squeezes no other
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    for header, width in zip(headers, widths, strict=True):
        table.add_column(header, no_wrap=True, overflow="ellipsis", width=width)
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def plain(text: str, style: str = "") -> Text:
    """Untrusted text as a rich Text: printed as it is, never read as markup."""
    return Text(terminal_safe(text), style=style)
