"""What a server start tells the person who ran it, and how it stops: the start-up line, the
greeting when a person (not a client) started it, a store checked before serving, an HTTP token
made when none is set, and a quiet exit on Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

from . import __version__
from .config import Settings

log = logging.getLogger("poe_mcp")

GREETING = """\
poe-mcp {version}: an MCP server for Poe, now waiting for an MCP client on this terminal's
stdin and stdout. It is meant to be started by a client (Claude Desktop, Cursor, VS Code, ...),
not typed to:
  poe-mcp config claude-desktop     set a client up (or claude-code, cursor, vscode, windsurf, zed, gemini, codex)
  poe-mcp ask "What is MCP?"        ask a model from this terminal
  poe-mcp --help                    everything else
Press Ctrl-C to stop.
"""


def shown_store(location: str) -> str:
    """The store as it may be logged: a redis:// URL loses its password."""
    if not location.startswith(("redis://", "rediss://")):
        return location
    parts = urlsplit(location)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.password else ""
    return urlunsplit(parts._replace(netloc=user + host))


def start_line(settings: Settings) -> str:
    """One line saying what this process is and where its settings came from."""
    files = sorted({file for _, file in settings.from_files})
    key_file = dict(settings.from_files).get("POE_API_KEY")
    key = (
        f"key set (from {key_file})"
        if key_file
        else "key set"
        if settings.api_key
        else "no key (POE_API_KEY): calls will fail until one is set"
    )
    origin = "settings from the environment" + (f" and {', '.join(files)}" if files else "")
    return (
        f"poe-mcp {__version__}: backend {settings.backend}, transport {settings.transport}, "
        f"store {shown_store(settings.store)}, {key}; {origin}"
    )


def greet_if_a_person_started_it(settings: Settings) -> None:
    """A terminal on stdin means a person, not a client, started the stdio server: say what it is."""
    if settings.transport == "stdio" and sys.stdin is not None and sys.stdin.isatty():
        sys.stderr.write(GREETING.format(version=__version__))
        sys.stderr.flush()


def check_store(settings: Settings) -> str | None:
    """Open the store and read from it once, so that a store that cannot work stops the start
    (in one line) instead of the first call. Returns what went wrong, or None."""
    probe = _probe_redis if settings.store.startswith(("redis://", "rediss://")) else _probe_sqlite
    try:
        probe(settings.store)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return (
            f"POE_MCP_STORE={shown_store(settings.store)} cannot be opened ({reason}); "
            "fix it, or point POE_MCP_STORE at a writable SQLite path"
        )
    return None


def _probe_sqlite(path: str) -> None:
    """Plain sqlite3, no event loop: this runs on every start, before the server's own imports."""
    import sqlite3
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30)
    try:
        db.execute("PRAGMA user_version").fetchone()  # reads the header: not a database fails here
    finally:
        db.close()


def _probe_redis(url: str) -> None:
    import anyio

    from .conversations import open_store

    async def probe() -> None:
        with anyio.fail_after(10):  # a Redis behind a dropped route would hang forever
            store = open_store(url)
            try:
                await store.list(1)
            finally:
                await store.aclose()

    anyio.run(probe)


def with_http_token(settings: Settings) -> Settings:
    """HTTP on loopback without a token gets a new one for this run, shown once on stderr with how
    to use it. Off loopback a token must be set (http.check_exposure refuses the start): a server
    others reach should not change its token at every restart."""
    from .http import is_loopback

    url = f"http://{settings.host}:{settings.port}/mcp"
    if not settings.auth_token and not is_loopback(settings.host):
        return settings
    if settings.auth_token:
        sys.stderr.write(f"poe-mcp: serving MCP at {url} (clients send POE_MCP_AUTH_TOKEN)\n")
        return settings
    token = secrets.token_urlsafe(32)
    sys.stderr.write(
        f"poe-mcp: serving MCP at {url}\n"
        "No POE_MCP_AUTH_TOKEN was set, so this run made one (shown only now; set\n"
        "POE_MCP_AUTH_TOKEN to keep one across restarts):\n"
        f"  {token}\n"
        "Clients send it as a header, e.g.:\n"
        f'  claude mcp add --scope user --transport http poe {url} --header "Authorization: Bearer {token}"\n'
    )
    sys.stderr.flush()
    return replace(settings, auth_token=token)


def empty_token_given(flag: str | None) -> bool:
    """POE_MCP_AUTH_TOKEN (or --auth-token) set to nothing: a mistake that must not mean no auth."""
    given = flag if flag is not None else os.environ.get("POE_MCP_AUTH_TOKEN")
    return given is not None and not given.strip()


GRACE_SECONDS = 2.0  # for the server to unwind after Ctrl-C or SIGTERM, then the process ends


def serve_until_stopped(serve: Callable[[], None]) -> int:
    """Run the server; Ctrl-C exits with 130 and SIGTERM with 0, both without a traceback.

    Either signal raises KeyboardInterrupt, so the event loop cancels its tasks and the lifespan
    closes the store and Poe's connections. A stdio server may still wait on the thread that
    reads stdin, which only new input would free (a terminal's stdin never ends): after a grace
    period the process ends regardless."""
    code = [130]

    def on_signal(signum: int, frame: object) -> None:
        code[0] = 0 if signum == signal.SIGTERM else 130
        timer = threading.Timer(GRACE_SECONDS, exit_now, (code[0],))
        timer.daemon = True
        timer.start()
        signal.signal(
            signal.SIGINT, signal.SIG_IGN
        )  # a second Ctrl-C must not interrupt the unwinding
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        serve()
    except KeyboardInterrupt:
        exit_now(code[0])
    except (OSError, BaseExceptionGroup) as error:
        if not _client_gone(error):
            raise
        # A stdio client that exits (or is killed) while an answer is being written: nothing left to
        # serve, and nothing the person can do about it.
        logging.getLogger("poe_mcp").info("the client closed the connection; stopping")
        exit_now(0)
    return 0


def _client_gone(error: BaseException) -> bool:
    """A closed pipe or reset connection, bare or as every leaf of an ExceptionGroup."""
    if isinstance(error, BaseExceptionGroup):
        return all(_client_gone(inner) for inner in error.exceptions)
    return isinstance(error, BrokenPipeError | ConnectionResetError)


def exit_now(code: int) -> None:
    """Exit once the server has unwound. Not through sys.exit: the thread reading stdin is still
    blocked in a read that only new input would end, and the interpreter would wait for it."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
