"""The commands people run in a terminal: ask, models, usage, generate, sessions, config.

Each takes the shared Services (or none) and parsed arguments and returns an exit code; output goes to
stdout, progress and errors to stderr, colour only on a terminal (rich honours NO_COLOR).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
from rich.bar import Bar
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..config import Settings
from ..poe.sampling import Sampling
from ..result_shapes import AskResult, MediaResult, ModelEntry, UsageReport
from ..services.conversations import Ask
from ..services.shared import Services
from ..services.spend import Quote, confirmation_required, usd
from . import client_config
from .display import AnswerWriter, plain, show_table, terminal_safe

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


ProgressListener = Callable[[float, float | None, str], Awaitable[None]]


class UsageError(Exception):
    """The command line was wrong: exit code 2, nothing was sent to Poe."""


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """`-o key=value` custom parameters; values that read as JSON (numbers, true, lists) are sent typed."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"-o expects key=value, got {pair!r}")
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_prompt(prompt: str | None) -> str:
    """The prompt argument, with piped stdin appended (or standing alone when no argument is given)."""
    piped = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    parts = [p for p in (prompt if prompt != "-" else None, piped.strip()) if p]
    if not parts:
        raise UsageError(
            'no prompt given: pass it as an argument or pipe it in (echo "hi" | poe-mcp ask BOT)'
        )
    return "\n\n".join(parts)


def bot_and_prompt(args: argparse.Namespace, default_model: str) -> tuple[str, str | None]:
    """`ask BOT PROMPT`, or `ask PROMPT` for the default model: one argument is the prompt when it
    has a space in it or nothing is piped in (a model id has no spaces)."""
    bot, prompt = args.bot, args.prompt
    if prompt is None and bot is not None:
        piped = sys.stdin is not None and not sys.stdin.isatty()
        if any(ch.isspace() for ch in bot) or not piped:
            bot, prompt = None, bot
    return bot or default_model, prompt


class TerminalApprover:
    """Asks "this will cost about $X, continue? [y/N]" on the terminal above POE_MCP_CONFIRM_ABOVE_USD;
    `--yes` agrees in advance; with no terminal to ask on, the call is refused."""

    def __init__(self, settings: Settings, assume_yes: bool) -> None:
        self.settings = settings
        self.assume_yes = assume_yes
        self.live: Any = None  # a spinner or bar on stderr, paused while the question is asked

    async def __call__(self, quote: Quote) -> bool:
        if self.assume_yes:
            return True
        if sys.stdin is None or not sys.stdin.isatty() or not err.is_terminal:
            raise confirmation_required(
                quote,
                self.settings,
                "there is no terminal to ask on",
                agree="pass --yes once you agree to the cost",
            )
        if self.live is not None:
            self.live.stop()
        estimate = quote.estimate
        if estimate.usd is not None:
            err.print(plain(f"{estimate.text}."))
        else:
            err.print(plain(f"{estimate.model} has no price in Poe's catalog."))
        if quote.left:
            err.print(plain(f"Budget left: {quote.left}."))
        err.print(plain(f"This will cost about {quote.cost}, continue? [y/N] "), end="")
        answer = await anyio.to_thread.run_sync(sys.stdin.readline)
        agreed = answer.strip().lower() in ("y", "yes")
        if agreed and self.live is not None:
            self.live.start()
        return agreed


async def ask(services: Services, args: argparse.Namespace) -> int:
    session_id = args.session
    if args.continue_:
        recent = await services.store.list(1)
        if not recent:
            raise UsageError("there is no earlier conversation to continue; drop -c to start one")
        session_id = recent[0].id
    bot, prompt = bot_and_prompt(args, services.settings.default_model)
    request = Ask(
        bot=bot,
        prompt=read_prompt(prompt),
        session_id=session_id,
        system=args.system,
        attachments=args.attach or [],
        sampling=Sampling(
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            top_p=args.top_p,
            stop=args.stop,
        ),
        parameters=parse_options(args.option or []),
        stream=not args.json,
        session_use="either",  # `--session ID` continues that conversation or starts it
        max_cost_usd=args.max_cost,
        approver=(approver := TerminalApprover(services.settings, args.yes)),
        api=args.api,
        web_search=args.web_search,
    )
    # a spinner on a terminal until the first text comes
    waiting = err.status(plain(f"waiting for {bot}")) if err.is_terminal and not args.json else None
    approver.live = waiting
    # only the bot protocol replaces text it sent (replace_response)
    writer = AnswerWriter(
        sys.stdout,
        hold=services.settings.backend == "fastapi_poe",
        before_first=waiting.stop if waiting else None,
    )
    if waiting is not None:
        waiting.start()
    try:
        answer = await services.chat.ask(request, None if args.json else writer)
    finally:
        if waiting is not None:
            waiting.stop()
    if args.json:
        print_json(AskResult.of(answer).model_dump())
    else:
        writer.finish(answer.completion.text)
        for file in answer.media:  # an image bot's answer: saved before its link expires
            err.print(plain(f"saved {file.path} ({file.mime_type}, {file.bytes} bytes)", "dim"))
        err.print(plain(f"session {answer.session_id}", "dim"))
    if answer.completion.error:
        raise answer.completion.error
    return 0


async def models(services: Services, args: argparse.Namespace) -> int:
    catalog = await services.poe.models()
    found = catalog.filter(
        args.query,
        args.owner,
        args.input_modality,
        args.output_modality,
        True if args.tools else None,
    )
    if args.json:
        entries = [ModelEntry.of(m).model_dump() for m in found]
        print_json({"models": entries, "total": len(entries)})
        return 0
    headers = ("id", "owner", "modalities", "context", "$/1M in", "$/1M out", "$/request")
    rows = []
    for model in found:
        price = model.pricing.per_million() if model.pricing else {}
        rows.append(
            [
                model.id,
                model.owned_by,
                f"{'+'.join(model.input_modalities)} -> {'+'.join(model.output_modalities)}",
                str(model.context_length or ""),
                _money(price.get("input_per_million")),
                _money(price.get("output_per_million")),
                _money(price.get("per_request")),
                model.description,
            ]
        )
    show_table(out, (*headers, "description"), rows)  # the description is what gets cut short
    err.print(f"[dim]{len(rows)} models[/dim]")
    return 0


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


async def usage(services: Services, args: argparse.Namespace) -> int:
    report = await services.usage_report(args.limit, session_id=args.session)
    if args.json:
        print_json(report.model_dump())
        return 0
    out.print(f"Balance: [bold]{report.current_point_balance}[/bold] points")
    rows = [
        [e.time or "", e.bot_name or "", str(e.cost_points), e.usage_type or ""]
        for e in report.history.data
    ]
    show_table(out, ("time", "bot", "points", "type"), rows)
    show_spend(report)
    return 0


CHART_WIDTH = 30


def show_spend(report: UsageReport) -> None:
    """Each budget with what is spent and left, a bar per day for the last 14 days, per-model totals."""
    spend = report.spend
    if spend is None:
        return
    out.print()
    for budget in report.budgets:
        out.print(plain(budget.line(f"{spend.today}, {spend.time_zone}")))
    points = any(d.points for d in spend.by_day)
    out.print(plain(f"Spend per day, last {len(spend.by_day)} days ({spend.time_zone}):", "bold"))
    most = max((d.usd for d in spend.by_day), default=0.0) or 1.0
    chart = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    chart.add_column("day", no_wrap=True)
    chart.add_column("bar", width=CHART_WIDTH, no_wrap=True)
    chart.add_column("usd", justify="right", no_wrap=True)
    if points:
        chart.add_column("points", justify="right", no_wrap=True)
    for day in spend.by_day:
        amounts = [usd(day.usd)] + ([f"{day.points:,.0f} points"] if points else [])
        chart.add_row(day.day, Bar(most, 0, day.usd, width=CHART_WIDTH), *amounts)
    out.print(chart)
    models = [m for m in spend.by_model if m.usd or m.points]
    if models:
        out.print(plain("Spend per model, same days:", "bold"))
        show_table(
            out,
            ("model", "usd", "points"),
            [[m.model, usd(m.usd), f"{m.points:,.0f}"] for m in models],
            shrink=0,
        )


@contextmanager
def generation_progress(kind: str) -> Iterator[tuple[ProgressListener, Progress | None]]:
    """On a terminal, a bar that follows Poe's own progress where it gives one (video jobs give a
    percentage; others pulse, with the time so far); elsewhere nothing."""
    if not err.is_terminal:

        async def ignore(value: float, total: float | None, message: str) -> None:
            return None

        yield ignore, None
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # Poe's status text is data
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task(f"Generating {kind}", total=None)

    async def show(value: float, total: float | None, message: str) -> None:
        described = terminal_safe(message)
        if total:
            bar.update(task, completed=value, total=total, description=described)
        else:
            bar.update(task, description=described)

    with bar:
        yield show, bar


async def generate(services: Services, args: argparse.Namespace) -> int:
    if args.out:
        services.media.output_dir = args.out
    started = time.monotonic()
    prompt = read_prompt(args.prompt)
    approver = TerminalApprover(services.settings, args.yes)
    with generation_progress(args.kind) as (progress, bar):
        approver.live = bar
        generation = await services.media.generate(
            args.kind,
            prompt,
            args.model,
            parse_options(args.option or []),
            args.attach or [],
            progress,
            max_wait=math.inf,  # a person at a terminal waits for the video; no client timeout applies
            max_cost_usd=args.max_cost,
            approver=approver,
        )
    if args.json:
        print_json(MediaResult.of(generation).model_dump())
        return 0
    for file in generation.files:
        sys.stdout.write(f"{terminal_safe(str(file.path))}\n")
    for skipped in generation.skipped:
        err.print(plain(f"not downloaded: {skipped.url} ({skipped.reason})"))
    if generation.text:
        err.print(plain(generation.text))
    err.print(f"[dim]{len(generation.files)} file(s) in {time.monotonic() - started:.0f} s[/dim]")
    return 0


async def sessions(services: Services, args: argparse.Namespace) -> int:
    action = args.action or "list"
    if action == "list":
        found = await services.store.list(args.limit)
        if args.json:
            print_json([vars(s) for s in found])
            return 0
        rows = [[s.id, s.model or "", str(s.turns), s.last_used, s.preview] for s in found]
        show_table(out, ("id", "model", "turns", "last used", "first prompt"), rows)
        return 0
    if not args.id:
        raise UsageError(f"sessions {action} needs a session id")
    if action == "clear":
        cleared = await services.store.clear(args.id)
        err.print(plain(f"cleared {args.id}" if cleared else f"no session {args.id}"))
        return 0 if cleared else 1
    conversation = await services.store.load(args.id)
    if not conversation.messages:
        raise UsageError(f"no stored session {args.id}; see poe-mcp sessions list")
    if args.json:
        print_json(conversation.messages)
        return 0
    for message in conversation.messages:
        out.print(plain(f"{message['role']}:", "bold"), plain(_content_text(message)))
    return 0


def _content_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(
            p.get("text") or f"[{p.get('ref') or p.get('type')}]"
            for p in content
            if isinstance(p, dict)
        )
    calls = ", ".join(c["function"]["name"] for c in message.get("tool_calls") or ())
    return f"{content or ''}{' [calls ' + calls + ']' if calls else ''}"


def config(args: argparse.Namespace) -> int:
    client = client_config.CLIENTS[args.client]
    launch = None if args.url else client_config.installed_launch()
    if launch is not None:
        client_config.check_launch(launch)
    server = client_config.entry(client, launch, args.url)
    path = args.file or client.file()
    if args.write:
        _report_written(client, client_config.write_config(client, path, server))
    else:
        _show_config(client, launch, args.url, server, path)
    return 0


def _show_config(
    client: client_config.Client,
    launch: client_config.Launch | None,
    url: str | None,
    server: dict[str, Any],
    path: Any,
) -> None:
    if client.name == "claude-code":
        sys.stdout.write(client_config.claude_code_command(launch, url) + "\n")
        err.print(
            f"or with --write, into {path} (a project file: the key comes from $POE_API_KEY)",
            markup=False,
        )
    elif client.name == "codex":
        sys.stdout.write(client_config.toml_table(server))
        also = f", or run: {client_config.codex_command(launch)}" if launch else ""
        err.print(f"add this to {path} (or run with --write){also}", markup=False)
    else:
        print_json(client_config.snippet(client, server))
        err.print(f"merge this into {path} (or run with --write)", markup=False)


def _report_written(client: client_config.Client, written: client_config.Written) -> None:
    verb = "updated" if written.replaced else "added"
    backup = f" (the old file is saved as {written.backup})" if written.backup else ""
    err.print(f"{verb} the 'poe' server in {written.path}{backup}:", markup=False)
    shown = _without_secrets(written.server)
    if client.name == "codex":
        sys.stdout.write(client_config.toml_table(shown))
    else:
        print_json(shown)
    for line in _config_advice(client, written):
        err.print(line, markup=False)


def _without_secrets(server: dict[str, Any]) -> dict[str, Any]:
    """The entry as shown: a key the person pasted stays in the file, never on the screen."""
    ours = (client_config.KEY_PLACEHOLDER, client_config.KEY_FROM_ENVIRONMENT, "${input:poe-key}")
    env = {
        name: value if value in ours else "(kept, not shown)"
        for name, value in server.get("env", {}).items()
    }
    headers = {name: "(kept, not shown)" for name in server.get("headers", {})}
    shown = dict(server)
    if env:
        shown["env"] = env
    if headers and client_config.TOKEN_PLACEHOLDER not in json.dumps(server["headers"]):
        shown["headers"] = headers
    return shown


def _config_advice(client: client_config.Client, written: client_config.Written) -> list[str]:
    advice = []
    if written.comments_dropped:
        advice.append(f"Some comments in {written.path} could not be kept; the backup has them.")
    if written.key_removed:
        advice.append(
            f"The key that was in {written.path} was taken out: the file is meant to be committed. "
            f"Delete {written.backup}, which still has it."
        )
    key = written.server.get("env", {}).get("POE_API_KEY")
    if key == client_config.KEY_PLACEHOLDER:
        advice.append(
            f"Now put your key in place of {client_config.KEY_PLACEHOLDER} (from https://poe.com/api_key)."
        )
    elif key == client_config.KEY_FROM_ENVIRONMENT:
        advice.append(
            f"{client.name} fills in the key from POE_API_KEY: export it where {client.name} starts."
        )
    elif key is not None and key != "${input:poe-key}":
        advice.append("Your key was kept.")
    if client_config.TOKEN_PLACEHOLDER in json.dumps(written.server):
        advice.append(f"Now put the server's token in place of {client_config.TOKEN_PLACEHOLDER}.")
    return advice
