"""The stdio transport on the event loop's own pipes.

The SDK's `stdio_server` reads and writes stdin and stdout through anyio's file wrapper: every line
read, written and flushed is a hop to a worker thread and back (12 for one tool call and its
progress). When stdin and stdout are pipes or sockets, as they are under every MCP client, the loop
can watch them itself: here they are read and written without a thread. Anything else (a terminal,
a file, Windows) is served by the SDK's own transport.

Either way the standard descriptors are taken off the wire while serving, as the SDK does: fd 0
reads the null device and fd 1 writes to stderr, so a library's or a child's stray print cannot
corrupt the protocol (fastapi_poe prints to stdout).
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from mcp.server.stdio import stdio_server

READ_CHUNK = 1 << 16


def _is_pipe_or_socket(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class PipeLines:
    """stdin as an async iterator of lines, for the SDK's reader; a line may be any length."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._pending = bytearray()
        self._searched = 0  # how much of _pending is known to hold no newline

    def __aiter__(self) -> PipeLines:
        return self

    async def __anext__(self) -> str:
        while True:
            end = self._pending.find(b"\n", self._searched)
            if end >= 0:
                line = bytes(self._pending[: end + 1])
                del self._pending[: end + 1]
                self._searched = 0
                return line.decode("utf-8", errors="replace")
            self._searched = len(self._pending)
            chunk = await self._reader.read(READ_CHUNK)
            if not chunk:
                if self._pending:  # a last message without its newline still counts
                    line, self._pending = bytes(self._pending), bytearray()
                    return line.decode("utf-8", errors="replace")
                raise StopAsyncIteration
            self._pending += chunk


class PipeWriter:
    """stdout as the SDK's writer expects it: `write` queues a message, `flush` waits until the pipe
    has taken it, so a client that reads slowly holds the server back instead of filling memory."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


def _take_off_the_wire(fd: int, replacement: int) -> int:
    """A private duplicate of `fd` for the transport; `fd` itself now points at `replacement`."""
    import fcntl

    private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.dup2(replacement, fd)
    return private


@asynccontextmanager
async def _pipe_streams() -> AsyncIterator[tuple[PipeLines, PipeWriter]]:
    loop = asyncio.get_running_loop()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        wire_in = _take_off_the_wire(0, null)
    finally:
        os.close(null)
    wire_out = _take_off_the_wire(1, 2)
    reader = asyncio.StreamReader()
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(wire_in), "rb", buffering=0)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(os.dup(wire_out), "wb", buffering=0)
    )
    try:
        yield (
            PipeLines(reader),
            PipeWriter(asyncio.StreamWriter(write_transport, protocol, None, loop)),
        )
    finally:
        read_transport.close()  # each closes its own copy of the wire (a lost pipe already has)
        write_transport.close()
        for fd, wire in ((0, wire_in), (1, wire_out)):
            os.dup2(wire, fd)  # the wire back where it was, for whatever runs after the server
            os.close(wire)


@asynccontextmanager
async def stdio_transport() -> AsyncIterator[tuple[Any, Any]]:
    """The (read, write) streams of an MCP session on this process's stdin and stdout."""
    if sys.platform == "win32" or not (_is_pipe_or_socket(0) and _is_pipe_or_socket(1)):
        async with stdio_server() as streams:
            yield streams
        return
    async with (
        _pipe_streams() as (lines, writer),
        stdio_server(stdin=cast(Any, lines), stdout=cast(Any, writer)) as streams,
    ):
        yield streams
