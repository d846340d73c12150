"""The `poe-mcp` command: with no arguments the stdio MCP server; `serve` picks a transport and settings."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from . import __version__
from .config import OPTIONS, SettingsError, load_settings

EXIT_OK, EXIT_POE_ERROR, EXIT_USAGE = 0, 1, 2


class RedactingFilter(logging.Filter):
    """Belt and braces: no log line may carry a secret, whoever wrote it."""

    def __init__(self, secrets: Sequence[str | None]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            for secret in self._secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True


def setup_logging(level: str, secrets: Sequence[str | None]) -> None:
    """Logs go to stderr only: in stdio mode stdout belongs to the protocol."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="poe-mcp", description="The whole of Poe for every MCP client. No command: serve MCP over stdio.")
    top.add_argument("--version", action="version", version=f"poe-mcp {__version__}")
    commands = top.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve MCP over stdio (default) or Streamable HTTP")
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP host to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    for name, option in OPTIONS.items():
        serve.add_argument(option.flag, dest=name, default=None, help=f"{option.help} (env {option.env})")
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    flags = {name: getattr(args, name, None) for name in OPTIONS}
    try:
        settings = load_settings(flags)
    except SettingsError as error:
        print(f"poe-mcp: configuration error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    setup_logging(settings.log_level, (settings.api_key, settings.auth_token))
    transport = getattr(args, "transport", "stdio")
    if transport == "http":
        print("poe-mcp: the HTTP transport is not available in this version; use stdio", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    from .server import build_server

    build_server(settings, transport).run()
