"""The command line, through the real `poe-mcp` console script against the fake Poe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET_KEY, env_for
from fakepoe import PNG, FakePoe, Reply
from terminals import in_a_terminal, read_until

POE_MCP = str(Path(sys.executable).parent / "poe-mcp")


@pytest.fixture
def run(fake: FakePoe, tmp_path: Path) -> Any:
    (tmp_path / "work").mkdir(exist_ok=True)

    def run(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        env.setdefault(
            "POE_MCP_LOG_LEVEL", "INFO"
        )  # what a person has: the CLI then logs warnings only
        return subprocess.run(
            [POE_MCP, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env_for(fake, tmp_path, **env),
            cwd=tmp_path,
            timeout=60,
            stdin=subprocess.DEVNULL if stdin is None else None,
        )

    return run


def test_ask_streams_the_answer(run: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(chunks=["Hello ", "from ", "Poe"]))
    result = run("ask", "gpt-4-turbo", "hi")
    assert (result.returncode, result.stdout) == (0, "Hello from Poe\n")
    assert "session " in result.stderr and fake.chat_requests()[-1]["json"]["stream"] is True


def test_ask_reads_a_piped_prompt_and_continues_conversations(run: Any, fake: FakePoe) -> None:
    first = run("ask", "gpt-4-turbo", stdin="What is 2+2?\n")
    assert first.stdout == "Echo: What is 2+2?\n"
    run("ask", "gpt-4-turbo", "-c", "And 3+3?")
    assert [m["content"] for m in fake.chat_requests()[-1]["json"]["messages"]] == [
        "What is 2+2?",
        "Echo: What is 2+2?",
        "And 3+3?",
    ]
    run("ask", "gpt-4-turbo", "--session", "named", "--system", "Terse.", "x")
    assert fake.chat_requests()[-1]["json"]["messages"][0] == {
        "role": "system",
        "content": "Terse.",
    }


def test_ask_json_options_and_attachments(run: Any, fake: FakePoe, tmp_path: Path) -> None:
    (tmp_path / "work" / "pic.png").write_bytes(PNG)
    result = run(
        "ask",
        "gemini-2.5-pro",
        "look",
        "-o",
        "thinking_budget=512",
        "-o",
        "web_search=true",
        "-a",
        str(tmp_path / "work" / "pic.png"),
        "--json",
    )
    data = json.loads(result.stdout)
    assert (
        result.returncode == 0
        and data["text"].startswith("Echo: look")
        and data["bot"] == "gemini-2.5-pro"
        and data["session_id"]
    )
    sent = fake.chat_requests()[-1]["json"]
    assert sent["thinking_budget"] == 512 and sent["web_search"] is True
    assert sent["messages"][-1]["content"][1]["type"] == "image_url"


def test_a_missing_key_is_one_line_naming_the_variable(run: Any, fake: FakePoe) -> None:
    result = run("ask", "gpt-4-turbo", "hi", POE_API_KEY="")
    assert result.returncode == 1 and result.stdout == ""
    assert (
        result.stderr.count("\n") == 1
        and result.stderr.startswith("poe-mcp: authentication_error (401)")
        and "POE_API_KEY" in result.stderr
    )
    assert fake.chat_requests() == []


def test_exit_codes_for_poe_errors_and_usage_errors(run: Any, fake: FakePoe) -> None:
    fake.error(402, "insufficient_credits", "out of points")
    poe_error = run("ask", "gpt-4-turbo", "hi")
    assert poe_error.returncode == 1 and poe_error.stderr.startswith(
        "poe-mcp: insufficient_credits (402): out of points."
    )
    assert run("ask", "gpt-4-turbo").returncode == 2, "no prompt"
    assert run("ask", "gpt-4-turbo", "x", "-o", "novalue").returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("--version").stdout.startswith("poe-mcp ")
    assert SECRET_KEY not in poe_error.stderr


def test_models_table_and_json(run: Any) -> None:
    table = run("models", "sonnet", "--owner", "Anthropic", "--tools")
    assert (
        table.returncode == 0
        and "claude-sonnet-4.5" in table.stdout
        and "Anthropic" in table.stdout
    )
    data = json.loads(run("models", "--output-modality", "video", "--json").stdout)
    assert data["total"] == len(data["models"]) > 10 and all(
        "video" in m["output_modalities"] for m in data["models"]
    )


def test_usage_json(run: Any) -> None:
    data = json.loads(run("usage", "--limit", "5", "--json").stdout)
    assert data["current_point_balance"] == 1500 and len(data["history"]["data"]) == 5
    assert "Balance: 1500 points" in run("usage").stdout


def test_generate_saves_and_prints_paths(run: Any, fake: FakePoe, tmp_path: Path) -> None:
    fake.enqueue(Reply(text=f"![img]({fake.cdn_url('p.png', PNG, 'image/png')})"))
    result = run("generate", "image", "a cat", "-o", "aspect=1:1", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.parent == tmp_path / "out" and path.read_bytes() == PNG


def test_sessions_list_show_clear(run: Any, fake: FakePoe) -> None:
    run("ask", "gpt-4-turbo", "--session", "s1", "remember me")
    listed = json.loads(run("sessions", "--json").stdout)
    assert [s["id"] for s in listed] == ["s1"]
    assert "remember me" in run("sessions", "show", "s1").stdout
    assert run("sessions", "clear", "s1").returncode == 0
    assert run("sessions", "show", "s1").returncode == 2


def test_config_write_merges_into_the_clients_file(run: Any, tmp_path: Path) -> None:
    file = tmp_path / "claude_desktop_config.json"
    file.write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}, "theme": "dark"}))
    result = run("config", "claude-desktop", "--write", "--file", str(file))
    assert result.returncode == 0
    written = json.loads(file.read_text())
    assert written["theme"] == "dark" and written["mcpServers"]["other"] == {"command": "x"}
    assert (
        written["mcpServers"]["poe"]["command"].endswith("poe-mcp")
        and Path(written["mcpServers"]["poe"]["command"]).is_absolute()
    )
    assert SECRET_KEY not in file.read_text(), "the key is never written for the user"
    printed = json.loads(run("config", "cursor").stdout)
    assert printed["mcpServers"]["poe"]["env"]["POE_API_KEY"] == "YOUR_POE_API_KEY"


CLI_CALLS = {
    "ask": ("ask", "gpt-4-turbo", "hi"),
    "generate": ("generate", "image", "a cat"),
    "usage": ("usage",),
    "models": ("models",),
}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "authentication_error"),
        (402, "insufficient_credits"),
        (429, "rate_limit_error"),
        (503, "upstream_error"),
    ],
)
def test_every_command_reports_poes_error_in_one_line(
    run: Any, fake: FakePoe, status: int, kind: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    fake.outage = (status, kind)
    with ThreadPoolExecutor(len(CLI_CALLS)) as pool:
        results = dict(
            zip(
                CLI_CALLS,
                pool.map(lambda argv: run(*argv, POE_MCP_MAX_RETRIES="0"), CLI_CALLS.values()),
                strict=True,
            )
        )
    for command, result in results.items():
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr.startswith(f"poe-mcp: {kind} ({status}): "), (command, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stdout == "", (command, result.stderr)


def test_a_local_refusal_exits_2_and_sends_nothing(run: Any, fake: FakePoe) -> None:
    result = run("ask", "gpt-4-turbo", "hi", "--attach", "/etc/hostname")
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.startswith("poe-mcp: invalid_request_error")
        and result.stderr.count("\n") == 1
    )
    assert fake.model_calls() == []


def test_generate_without_media_exits_1(run: Any, fake: FakePoe, tmp_path: Path) -> None:
    fake.enqueue(Reply(text="I can only describe a cat: it is fluffy."))
    result = run("generate", "image", "a cat", "-m", "Nano-Banana", "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("poe-mcp: no_media_error: nano-banana returned no media")
    assert "it is fluffy" in result.stderr


# Text a model or a person can produce that a terminal must not interpret: rich markup (a stray
# closing tag crashes rich), a bracketed word rich would swallow, a colour and a title-setting
# escape sequence.
HOSTILE = "[/b] [red]red[/red] [fake-text] \x1b[31mESC\x1b[0m \x1b]0;pwned\x07end"
LITERAL = "[/b] [red]red[/red] [fake-text] ESC end"


def assert_literal(result: subprocess.CompletedProcess[str], where: str = "stdout") -> None:
    shown = getattr(result, where)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "\x1b" not in result.stdout + result.stderr
    assert LITERAL in shown


def test_stored_and_model_text_is_shown_literally(run: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(chunks=[HOSTILE[:34], HOSTILE[34:]]))  # an escape split between chunks
    assert_literal(run("ask", "gpt-4-turbo", "--session", "h1", HOSTILE))
    assert_literal(run("sessions"))
    shown = run("sessions", "show", "h1")
    assert_literal(shown)
    assert shown.stdout.count(LITERAL) == 2, "the prompt and the answer"


def test_catalog_text_is_shown_literally(run: Any, fake: FakePoe) -> None:
    fake.models.append(
        {
            "id": "hostile-bot",
            "object": "model",
            "owned_by": "[/b]Mallory",
            "description": HOSTILE,
            "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
            "pricing": None,
        }
    )
    result = run("models", "hostile")
    assert result.returncode == 0 and "\x1b" not in result.stdout, result.stderr
    assert "hostile-bot" in result.stdout and "[/b]Mallory" in result.stdout
    assert "[/b] [red]red[/red]" in result.stdout


def test_generate_shows_the_bots_text_literally(run: Any, fake: FakePoe, tmp_path: Path) -> None:
    image = fake.cdn_url("p.png", PNG, "image/png")
    fake.enqueue(Reply(text=f"{HOSTILE}\n![img]({image}) ![x](https://elsewhere.example/[/b].png)"))
    # a chat image bot: its answer is text with links (GPT-Image-1 goes to /v1/images, which has none)
    result = run("generate", "image", "a cat", "-m", "Nano-Banana", "--out", str(tmp_path / "out"))
    assert_literal(result, "stderr")
    assert "https://elsewhere.example/[/b].png" in result.stderr


def test_bot_protocol_ask_prints_exactly_the_final_text(run: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(chunks=["Thinking...", "The final ", "message."], replace_at=1))
    result = run("ask", "gpt-4-turbo", "hi", POE_MCP_BACKEND="fastapi_poe")
    assert (result.returncode, result.stdout) == (0, "The final message.\n"), result.stderr


def test_ask_without_a_model_asks_the_default_model(run: Any, fake: FakePoe) -> None:
    result = run("ask", "What is MCP?")
    assert (result.returncode, result.stdout) == (0, "Echo: What is MCP?\n"), result.stderr
    assert fake.chat_requests()[-1]["json"]["model"].lower() == "claude-sonnet-4.5"


def test_piped_models_table_keeps_whole_ids_on_one_line(run: Any, fake: FakePoe) -> None:
    result = run("models")
    lines = result.stdout.splitlines()
    assert len(lines) == len(fake.models) + 1, "a header, then one line per model: no wrapping"
    assert all(line == line.rstrip() for line in lines), "no trailing spaces"
    ids = {line.split()[0] for line in lines[1:]}
    assert {m["id"] for m in fake.models} == ids, "every id whole"
    flat_fee = next(line for line in lines if line.startswith("test-flat-fee "))
    assert "0.002" in flat_fee, "the per-request price"
    per_token = next(line for line in lines if line.startswith("claude-sonnet-4.5 "))
    columns = re.split(r"\s{2,}", per_token)
    assert all(float(price) > 0 for price in columns[4:6]), "the per-token prices, in and out"


def test_a_serve_flag_before_the_command_says_where_it_goes(run: Any) -> None:
    result = run("--rpm", "100")
    assert result.returncode == 2 and "poe-mcp serve --rpm VALUE" in result.stderr
    assert "POE_MCP_RPM" in result.stderr and "invalid choice" not in result.stderr


def test_in_a_terminal_a_spinner_waits_and_video_shows_poes_progress(
    fake: FakePoe, tmp_path: Path
) -> None:
    (tmp_path / "work").mkdir(exist_ok=True)
    env = env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="WARNING", COLUMNS="100", TERM="xterm")
    fake.enqueue(Reply(text="Hello there", stall=1.5))
    process, terminal = in_a_terminal([POE_MCP, "ask", "gpt-4-turbo", "hi"], env, tmp_path)
    shown = read_until(terminal, "session ")
    assert process.wait(timeout=30) == 0 and "waiting for gpt-4-turbo" in shown
    assert "Hello there" in shown
    os.close(terminal)
    fake.video_steps = 3
    video = [POE_MCP, "generate", "video", "a wave", "--out", str(tmp_path / "out")]
    process, terminal = in_a_terminal(video, env, tmp_path)
    shown = read_until(terminal, "file(s) in", timeout=60)
    assert process.wait(timeout=60) == 0, shown
    os.close(terminal)
    assert "%" in shown and "Traceback" not in shown, shown


def test_piped_there_is_no_spinner(run: Any, fake: FakePoe) -> None:
    result = run("ask", "gpt-4-turbo", "hi")
    assert "waiting for" not in result.stderr


# -- the spend guard on the command line ---------------------------------------------------------


def test_usage_prints_the_budgets_a_spend_chart_and_per_model_totals(
    run: Any, fake: FakePoe
) -> None:
    budget = {"POE_MCP_MAX_COST_PER_DAY": "0.01", "POE_MCP_MAX_COST_PER_CALL": "0.5"}
    for prompt in ("one", "two"):
        assert run("ask", "test-flat-fee", prompt, **budget).returncode == 0
    fake.enqueue(Reply(text="x", usage={"prompt_tokens": 1000, "completion_tokens": 100}))
    assert run("ask", "gpt-4-turbo", "three", "--max-tokens", "100", **budget).returncode == 0
    shown = run("usage", "--limit", "1", **budget).stdout
    lines = shown.splitlines()
    assert "Budget per call (POE_MCP_MAX_COST_PER_CALL): $0.5." in lines
    day = next(line for line in lines if line.startswith("Budget per day"))
    assert day.startswith(
        "Budget per day (POE_MCP_MAX_COST_PER_DAY): $0.0157 spent of $0.01, $0 left ("
    )
    assert "Spend per day, last 14 days (UTC):" in lines
    chart = lines[lines.index("Spend per day, last 14 days (UTC):") + 1 :][:14]
    assert [line[:10] for line in chart] == sorted(line[:10] for line in chart)
    assert chart[-1].startswith(time.strftime("%Y-%m-%d", time.gmtime()))
    assert chart[-1].endswith("$0.0157") and "█" * 30 in chart[-1], "today is the longest bar"
    assert all(line.endswith(" $0") and "█" not in line for line in chart[:-1])
    totals = lines[lines.index("Spend per model, same days:") + 1 :]
    assert totals[0].split() == ["model", "usd", "points"]
    assert totals[1].split() == ["gpt-4-turbo", "$0.0117", "0"]
    assert totals[2].split() == ["test-flat-fee", "$0.004", "0"]
    assert not any(line != line.rstrip() for line in lines), "piped: no trailing spaces"


def test_a_budget_refusal_exits_2_with_one_line(run: Any, fake: FakePoe) -> None:
    result = run("ask", "gpt-4-turbo", "hi", POE_MCP_MAX_COST_PER_CALL="0.01")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("poe-mcp: budget_exceeded_error: gpt-4-turbo is estimated")
    assert result.stderr.count("\n") == 1 and fake.chat_requests() == []
    lowered = run("ask", "gpt-4-turbo", "hi", "--max-tokens", "10", "--max-cost", "0.0001")
    assert lowered.returncode == 2 and "this call's max_cost_usd ($0.0001)" in lowered.stderr


def test_above_the_threshold_a_terminal_asks_first(fake: FakePoe, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir(exist_ok=True)
    env = env_for(
        fake, tmp_path, POE_MCP_LOG_LEVEL="WARNING", POE_MCP_CONFIRM_ABOVE_USD="0.01", TERM="xterm"
    )
    ask = [POE_MCP, "ask", "gpt-4-turbo", "hi", "--max-tokens", "1000"]
    process, terminal = in_a_terminal(ask, env, tmp_path)
    shown = read_until(terminal, "[y/N]")
    assert "gpt-4-turbo is estimated at about $0.0272" in shown
    assert "This will cost about $0.0272, continue? [y/N]" in shown
    assert fake.chat_requests() == [], "nothing is sent while the person decides"
    os.write(terminal, b"n\n")
    shown = read_until(terminal, "declined")
    assert process.wait(timeout=30) == 2 and "confirmation_declined" in shown
    os.close(terminal)
    assert fake.chat_requests() == []
    process, terminal = in_a_terminal(ask, env, tmp_path)
    read_until(terminal, "[y/N]")
    os.write(terminal, b"y\n")
    shown = read_until(terminal, "session ")
    assert process.wait(timeout=30) == 0 and "Echo: hi" in shown
    os.close(terminal)
    fake.enqueue(Reply(text=fake.cdn_url("a.png", PNG, "image/png")))
    generate = [POE_MCP, "generate", "image", "a cat", "--out", str(tmp_path / "out")]
    process, terminal = in_a_terminal(generate, env, tmp_path)
    shown = read_until(terminal, "[y/N]")
    assert "gpt-image-1 has no price in Poe's catalog." in shown
    assert "This will cost about an unknown amount, continue? [y/N]" in shown
    os.write(terminal, b"y\n")
    shown = read_until(terminal, "file(s) in")
    assert process.wait(timeout=30) == 0, shown
    os.close(terminal)
    assert len(fake.chat_requests()) == 1
    assert [r["path"] for r in fake.requests].count("/v1/images") == 1


def test_above_the_threshold_with_no_terminal_the_cli_says_to_pass_yes(
    run: Any, fake: FakePoe
) -> None:
    env = {"POE_MCP_CONFIRM_ABOVE_USD": "0.01"}
    refused = run("ask", "gpt-4-turbo", "hi", "--max-tokens", "1000", **env)
    assert refused.returncode == 2 and "confirmation_required_error" in refused.stderr
    assert "there is no terminal to ask on" in refused.stderr and "--yes" in refused.stderr
    agreed = run("ask", "gpt-4-turbo", "hi", "--max-tokens", "1000", "--yes", **env)
    assert agreed.returncode == 0 and agreed.stdout == "Echo: hi\n"
    assert len(fake.chat_requests()) == 1
