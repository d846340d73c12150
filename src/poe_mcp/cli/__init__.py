"""The `poe-mcp` command: with no arguments the stdio MCP server; subcommands for people in a terminal.

Only argparse is imported before a command is chosen, so the server's cold start pays for no CLI code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .. import __version__
from ..config import OPTIONS, Settings, SettingsError, load_settings
from ..redaction import RedactingFormatter

EXIT_OK, EXIT_POE_ERROR, EXIT_USAGE = 0, 1, 2
NO_AUTH = "none"  # POE_MCP_AUTH_TOKEN=none: HTTP on loopback without a token, chosen outright


def setup_logging(level: str, secrets: Sequence[str | None]) -> None:
    """Logs go to stderr only: in stdio mode stdout belongs to the protocol.

    The formatter redacts the whole line, tracebacks included: no log line may carry a secret,
    whoever wrote it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="poe-mcp",
        description="The whole of Poe for every MCP client. With no command: serve MCP over stdio.",
        epilog="Configuration comes from POE_* environment variables and .env; see README.",
    )
    top.add_argument("--version", action="version", version=f"poe-mcp {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="serve MCP over stdio (default) or Streamable HTTP at /mcp"
    )
    for name, option in OPTIONS.items():
        serve.add_argument(
            option.flag, dest=name, default=None, help=f"{option.help} (env {option.env})"
        )

    ask = commands.add_parser(
        "ask",
        help="ask a model; streams the answer",
        description="Ask a Poe model. The answer streams to stdout.",
    )
    ask.add_argument(
        "bot",
        nargs="?",
        help="model or bot name, e.g. Claude-Sonnet-4.5 (default POE_MCP_DEFAULT_MODEL: "
        'with one argument, `ask "What is MCP?"`, that argument is the prompt)',
    )
    ask.add_argument("prompt", nargs="?", help="the prompt (or pipe it on stdin)")
    ask.add_argument(
        "-c",
        "--continue",
        dest="continue_",
        action="store_true",
        help="continue the last conversation",
    )
    ask.add_argument("--session", help="continue (or start) the conversation with this id")
    ask.add_argument(
        "-a", "--attach", action="append", metavar="FILE", help="attach a file or URL (repeatable)"
    )
    ask.add_argument("--system", help="system message")
    ask.add_argument("--temperature", type=float, help="sampling temperature, 0-2")
    ask.add_argument("--max-tokens", type=int, metavar="N", help="longest answer, in tokens")
    ask.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling, 0-1")
    ask.add_argument(
        "--stop", action="append", metavar="TEXT", help="stop sequence (repeatable, up to 4)"
    )
    ask.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="custom bot parameter (repeatable)",
    )
    ask.add_argument(
        "--api",
        choices=("chat", "responses"),
        help="Poe API to use (default: per model; responses-only models always use responses)",
    )
    ask.add_argument("--web-search", action="store_true", help="let the model search the web")
    ask.add_argument("--json", action="store_true", help="print the full result as JSON")
    _spend_flags(ask)

    models = commands.add_parser("models", help="list Poe's models")
    models.add_argument("query", nargs="?", help="substring of id, name, owner or description")
    models.add_argument("--owner", help="provider, e.g. Anthropic")
    models.add_argument("--input-modality", choices=("text", "image", "video", "audio"))
    models.add_argument("--output-modality", choices=("text", "image", "video", "audio"))
    models.add_argument("--tools", action="store_true", help="only models with function calling")
    models.add_argument("--json", action="store_true")

    usage = commands.add_parser(
        "usage", help="points balance, recent usage, budgets and spend by day and by model"
    )
    usage.add_argument("--limit", type=int, default=20, choices=range(1, 101), metavar="1-100")
    usage.add_argument("--session", help="also show this conversation's budget")
    usage.add_argument("--json", action="store_true")

    generate = commands.add_parser("generate", help="generate an image, audio or video")
    generate.add_argument("kind", choices=("image", "audio", "video"))
    generate.add_argument("prompt", nargs="?", help="what to generate (or pipe it on stdin)")
    generate.add_argument(
        "-m", "--model", help="model (defaults: GPT-Image-1, ElevenLabs-v2.5-Turbo, Veo-3)"
    )
    generate.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="custom bot parameter (repeatable)",
    )
    generate.add_argument(
        "-a", "--attach", action="append", metavar="FILE", help="reference image (repeatable)"
    )
    generate.add_argument(
        "--out", type=Path, metavar="DIR", help="where to save (default POE_MCP_OUTPUT_DIR)"
    )
    generate.add_argument("--json", action="store_true")
    _spend_flags(generate)

    sessions = commands.add_parser("sessions", help="list, show or clear stored conversations")
    sessions.add_argument("action", nargs="?", choices=("list", "show", "clear"))
    sessions.add_argument("id", nargs="?")
    sessions.add_argument("--limit", type=int, default=20)
    sessions.add_argument("--json", action="store_true")

    users = commands.add_parser(
        "users",
        help="hosted mode (POE_MCP_AUTH=tokens): add, list or revoke the users of POE_MCP_TOKENS_FILE",
        description="Manage the users of POE_MCP_TOKENS_FILE. `add` prints the new user's token once.",
    )
    users.add_argument("action", choices=("add", "list", "revoke", "secret-key"))
    users.add_argument("name", nargs="?", help="the user (add, revoke)")
    users.add_argument(
        "--poe-api-key-stdin",
        action="store_true",
        help="add: read the user's own Poe API key from stdin (kept encrypted); else they use the "
        "server's POE_API_KEY",
    )
    users.add_argument("--replace", action="store_true", help="add: replace an existing user")
    users.add_argument("--json", action="store_true")

    config = commands.add_parser(
        "config", help="print (or --write) an MCP client's configuration for poe-mcp"
    )
    config.add_argument(
        "client",
        choices=(
            "claude-desktop",
            "claude-code",
            "cursor",
            "vscode",
            "windsurf",
            "zed",
            "gemini",
            "codex",
        ),
    )
    config.add_argument(
        "--write", action="store_true", help="merge it into the client's config file"
    )
    config.add_argument(
        "--file", type=Path, help="config file to write (default: the client's usual one)"
    )
    config.add_argument(
        "--url",
        help="connect to a poe-mcp served over HTTP at this URL (e.g. http://127.0.0.1:8000/mcp) "
        "instead of starting one",
    )
    return top


def _spend_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help="refuse the call if it may cost more (can only lower POE_MCP_MAX_COST_PER_CALL)",
    )
    command.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="agree in advance to a cost above POE_MCP_CONFIRM_ABOVE_USD (else asked on a terminal)",
    )


def serve(settings: Settings) -> None:
    from .. import startup

    if settings.transport == "http":
        from ..http import serve_http

        if settings.auth != "token":  # hosted mode: users come from the tokens file or OAuth
            pass
        elif settings.auth_token == NO_AUTH:  # said outright; refused off loopback all the same
            settings = replace(settings, auth_token=None)
            print("poe-mcp: POE_MCP_AUTH_TOKEN=none: no token is asked for", file=sys.stderr)
        else:
            settings = startup.with_http_token(settings)
        try:
            serve_http(settings)
        except SettingsError as error:
            fail(EXIT_USAGE, f"configuration error: {error}")
        return
    from ..server import build_server

    startup.greet_if_a_person_started_it(settings)
    build_server(settings).run()


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    import anyio

    from ..poe.errors import poe_error_in, refused_locally
    from ..services.shared import open_services
    from ..tool_results import redact
    from . import terminal

    async def run() -> int:
        async with open_services(settings, "cli") as services:
            return await getattr(terminal, args.command)(services, args)

    try:
        return anyio.run(run)
    except terminal.UsageError as error:
        fail(EXIT_USAGE, f"error: {error}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # a PoeError may come bare, chained, or inside a task group's ExceptionGroup
        poe_error = poe_error_in(exc)
        if poe_error is None:
            raise
        code = EXIT_USAGE if refused_locally(poe_error) else EXIT_POE_ERROR
        fail(code, redact(str(poe_error), (settings.api_key,)))
    return EXIT_OK


def fail(code: int, message: str) -> None:
    print(f"poe-mcp: {message}", file=sys.stderr)
    sys.exit(code)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    top = parser()
    words = list(sys.argv[1:] if argv is None else argv)
    # `poe-mcp --rpm 100` would otherwise read as the command `100`
    flags = {option.flag.split("=")[0]: option for option in OPTIONS.values()}
    if words and (option := flags.get(words[0].split("=")[0])) is not None:
        top.error(
            f"{option.flag} is an option of serve: poe-mcp serve {option.flag} VALUE "
            f"(or set {option.env})"
        )
    args, extra = top.parse_known_args(argv)
    # argparse cannot take `ask BOT -c "prompt"` (an option between two positionals): the prompt lands here.
    if extra and getattr(args, "prompt", "") is None and not any(e.startswith("-") for e in extra):
        args.prompt, extra = " ".join(extra), []
    if extra:
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def check_extras(settings: Settings) -> None:
    """Stop at start, not at the first call, when a chosen feature's optional package is missing."""
    import importlib.util

    needs = (
        {"fastapi_poe": ("POE_MCP_BACKEND=fastapi_poe", "legacy")}
        if settings.backend == "fastapi_poe"
        else {}
    )
    if settings.store.startswith(("redis://", "rediss://")):
        needs["redis"] = ("POE_MCP_STORE=redis://", "redis")
    for module, (setting, extra) in needs.items():
        if importlib.util.find_spec(module) is None:
            fail(EXIT_USAGE, f"{setting} needs the {extra} extra: pip install 'poe-mcp[{extra}]'")


def log_where_settings_came_from(settings: Settings) -> None:
    """Say on stderr what a file set, and where the key goes when that is not Poe: nothing steers unseen."""
    log = logging.getLogger("poe_mcp")
    for variable, file in settings.from_files:
        log.info("%s was read from %s", variable, file)
    host = settings.origin.partition("://")[2].rpartition("@")[2]
    if host != "api.poe.com":
        log.warning(
            "POE_BASE_URL points at %s, not api.poe.com: the Poe API key is sent there", host
        )


def start_serving(settings: Settings, token_flag: str | None) -> None:
    """Check what would only fail later, say in one line what starts, then serve."""
    from .. import startup

    if settings.transport == "http" and startup.empty_token_given(token_flag):
        fail(
            EXIT_USAGE,
            "configuration error: POE_MCP_AUTH_TOKEN is set but empty; set a token, unset it to "
            f"have one made for this run, or set it to {NO_AUTH} for no auth on loopback",
        )
    problem = startup.check_store(settings)
    if problem is not None:
        fail(EXIT_USAGE, f"configuration error: {problem}")

    def start() -> None:
        logging.getLogger("poe_mcp").info("%s", startup.start_line(settings))
        log_where_settings_came_from(settings)
        serve(settings)

    sys.exit(startup.serve_until_stopped(start))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    flags = {name: getattr(args, name, None) for name in OPTIONS}
    serving = args.command in (None, "serve")
    try:
        settings = load_settings(flags, serving=serving)
    except SettingsError as error:
        fail(EXIT_USAGE, f"configuration error: {error}")
    check_extras(settings)
    # People at a terminal want the answer, not INFO lines; POE_MCP_LOG_LEVEL=DEBUG still shows everything.
    level = settings.log_level if serving or settings.log_level == "DEBUG" else "WARNING"
    setup_logging(level, (settings.api_key, settings.auth_token))
    if serving:
        start_serving(settings, getattr(args, "auth_token", None))
    elif args.command == "users":
        from .users import users_command

        try:
            sys.exit(users_command(settings, args))
        except SettingsError as error:
            fail(EXIT_USAGE, f"error: {error}")
    elif args.command == "config":
        from . import terminal
        from .client_config import ConfigError

        try:
            sys.exit(terminal.config(args))
        except ConfigError as error:
            fail(EXIT_USAGE, f"error: {error}")
    else:
        from ..startup import check_store

        problem = check_store(settings)
        if problem is not None:
            fail(EXIT_USAGE, f"configuration error: {problem}")
        sys.exit(run_command(settings, args))
