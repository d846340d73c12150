"""Running a command in a pseudo-terminal, as a person at a terminal does."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path


def read_until(fd: int, wanted: str, timeout: float = 30) -> str:
    """What the terminal shows, up to and including `wanted` (or all of it by the timeout)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def in_a_terminal(
    command: list[str], env: dict[str, str], cwd: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """The command with a pseudo-terminal on stdin, stdout and stderr, as a person runs it."""
    main, child = pty.openpty()
    process = subprocess.Popen(command, stdin=child, stdout=child, stderr=child, env=env, cwd=cwd)
    os.close(child)
    return process, main
