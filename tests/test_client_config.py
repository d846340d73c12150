"""`poe-mcp config <client>`: the written command starts a server, and the person's file is respected."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET_KEY, env_for
from fakepoe import FakePoe
from mcp import Client, StdioServerParameters

from poe_mcp import cli
from poe_mcp.cli import client_config as clients
from poe_mcp.cli import jsonc

POE_MCP = str(Path(sys.executable).parent / "poe-mcp")
# The two ways the README runs it, neither with the venv activated: its bin is not on PATH.
INVOCATIONS = {"script": [POE_MCP], "module": [sys.executable, "-m", "poe_mcp"]}
BARE_PATH = "/usr/bin:/bin"


def config(tmp_path: Path, *args: str, how: str = "script") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INVOCATIONS[how], "config", *args],
        capture_output=True,
        text=True,
        env={"PATH": BARE_PATH, "HOME": str(tmp_path)},
        cwd=tmp_path,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def server_entry(client: str, file: Path) -> dict[str, Any]:
    section = clients.CLIENTS[client].section
    if client == "codex":
        return tomllib.loads(file.read_text())[section]["poe"]
    return jsonc.loads(file.read_text())[section]["poe"]


def test_the_command_line_offers_every_client() -> None:
    choices = next(
        a.choices
        for a in cli.parser()._subparsers._group_actions[0].choices["config"]._actions  # type: ignore[union-attr]
        if a.dest == "client"
    )
    assert set(choices) == set(clients.CLIENTS)


@pytest.mark.anyio
@pytest.mark.parametrize("client", clients.CLIENTS)
async def test_the_written_command_starts_a_server(
    client: str, fake: FakePoe, tmp_path: Path
) -> None:
    entries = {}
    for how in INVOCATIONS:
        file = tmp_path / f"client-config-{how}"
        result = config(tmp_path, client, "--write", "--file", str(file), how=how)
        assert result.returncode == 0, result.stderr
        entries[how] = server_entry(client, file)
    assert entries["module"] == entries["script"], "both ways of running config write the same"
    entry = entries["script"]
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).exists()
    (tmp_path / "work").mkdir()
    params = StdioServerParameters(
        command=entry["command"],
        args=entry["args"],
        env=env_for(fake, tmp_path, PATH=BARE_PATH),
        cwd=str(tmp_path),
    )
    async with Client(params) as session:
        tools = await session.list_tools()
    assert "ask_poe" in {tool.name for tool in tools.tools}


def test_write_keeps_a_pasted_key_and_backs_the_file_up(tmp_path: Path) -> None:
    file = tmp_path / "claude_desktop_config.json"
    original = {
        "mcpServers": {
            "other": {"command": "x"},
            "poe": {"command": "/old/poe-mcp", "env": {"POE_API_KEY": SECRET_KEY, "EXTRA": "1"}},
        },
        "theme": "dark",
    }
    file.write_text(json.dumps(original))
    result = config(tmp_path, "claude-desktop", "--write", "--file", str(file))
    assert result.returncode == 0, result.stderr
    written = json.loads(file.read_text())
    poe = written["mcpServers"]["poe"]
    assert poe["env"] == {"POE_API_KEY": SECRET_KEY, "EXTRA": "1"}, "the person's key is kept"
    assert poe["command"] == POE_MCP, "the command is this installation's"
    assert written["theme"] == "dark" and written["mcpServers"]["other"] == {"command": "x"}
    backups = list(tmp_path.glob("claude_desktop_config.json.*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == original
    assert "Your key was kept" in result.stderr and str(backups[0]) in result.stderr
    assert SECRET_KEY not in result.stdout + result.stderr, "the kept key is never shown"


def test_a_vscode_file_with_comments_is_read(tmp_path: Path) -> None:
    file = tmp_path / "mcp.json"
    file.write_text(
        "{\n  // my servers\n"
        '  "servers": {"web": {"type": "http", "url": "https://example.com/mcp"},},\n'
        "  /* inputs */\n"
        '  "inputs": [{"type": "promptString", "id": "other", "description": "x"}],\n}\n'
    )
    result = config(tmp_path, "vscode", "--write", "--file", str(file))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    text = file.read_text()
    written = jsonc.loads(text)
    assert written["servers"]["web"]["url"] == "https://example.com/mcp"
    assert written["servers"]["poe"]["env"] == {"POE_API_KEY": "${input:poe-key}"}
    assert [i["id"] for i in written["inputs"]] == ["other", "poe-key"]
    assert "// my servers" in text and "/* inputs */" in text, "comments outside our entry stay"
    assert "old file is saved as" in result.stderr and "comments" not in result.stderr


def test_a_comment_inside_the_changed_entry_is_in_the_backup(tmp_path: Path) -> None:
    file = tmp_path / "settings.json"
    file.write_text(
        '{\n  "theme": "dark", // keep me\n  "context_servers": {\n    // old ones\n  }\n}\n'
    )
    result = config(tmp_path, "zed", "--write", "--file", str(file))
    assert result.returncode == 0, result.stderr
    text = file.read_text()
    assert "// keep me" in text and "// old ones" not in text
    assert jsonc.loads(text)["theme"] == "dark" and "poe" in jsonc.loads(text)["context_servers"]
    assert "Some comments" in result.stderr and "backup" in result.stderr
    (backup,) = tmp_path.glob("settings.json.*.bak")
    assert "// old ones" in backup.read_text()


def test_a_broken_file_is_one_line_and_left_alone(tmp_path: Path) -> None:
    file = tmp_path / "mcp.json"
    file.write_text('{"mcpServers": ')
    result = config(tmp_path, "cursor", "--write", "--file", str(file))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "is not valid JSON" in result.stderr and file.read_text() == '{"mcpServers": '


def test_claude_code_never_puts_a_key_in_the_project_file(tmp_path: Path) -> None:
    printed = config(tmp_path, "claude-code")
    assert printed.stdout.startswith("claude mcp add --scope user poe")
    assert 'POE_API_KEY="$POE_API_KEY"' in printed.stdout and POE_MCP in printed.stdout
    file = tmp_path / ".mcp.json"
    file.write_text(
        json.dumps({"mcpServers": {"poe": {"command": "x", "env": {"POE_API_KEY": SECRET_KEY}}}})
    )
    result = config(tmp_path, "claude-code", "--write")
    assert result.returncode == 0, result.stderr
    assert SECRET_KEY not in file.read_text()
    assert server_entry("claude-code", file)["env"]["POE_API_KEY"] == "${POE_API_KEY}"
    assert "taken out" in result.stderr and SECRET_KEY not in result.stdout + result.stderr


def test_codex_gets_a_toml_table_once(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('model = "o4"\n')
    assert config(tmp_path, "codex", "--write", "--file", str(file)).returncode == 0
    settings = tomllib.loads(file.read_text())
    assert settings["model"] == "o4" and settings["mcp_servers"]["poe"]["command"] == POE_MCP
    again = config(tmp_path, "codex", "--write", "--file", str(file))
    assert again.returncode == 2 and "already has [mcp_servers.poe]" in again.stderr


def test_remote_snippets_for_a_server_over_http(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8000/mcp"
    cursor = json.loads(config(tmp_path, "cursor", "--url", url).stdout)["mcpServers"]["poe"]
    assert cursor == {"url": url, "headers": {"Authorization": "Bearer YOUR_POE_MCP_AUTH_TOKEN"}}
    windsurf = json.loads(config(tmp_path, "windsurf", "--url", url).stdout)
    assert windsurf["mcpServers"]["poe"]["serverUrl"] == url
    claude = config(tmp_path, "claude-code", "--url", url).stdout
    assert claude.startswith(f"claude mcp add --scope user --transport http poe {url}")
    desktop = config(tmp_path, "claude-desktop", "--url", url)
    assert desktop.returncode == 2 and "Connectors" in desktop.stderr


@pytest.mark.anyio
async def test_without_a_console_script_the_interpreter_runs_the_module(
    fake: FakePoe, tmp_path: Path
) -> None:
    """An installation with no `poe-mcp` beside its python (a bare venv that sees the package
    through a .pth file): config writes `python -m poe_mcp`, and that serves."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    ours = [p for p in sys.path if p.endswith("site-packages")] + [
        str(Path(__file__).parents[1] / "src")
    ]
    (site / "poe-mcp-test.pth").write_text("\n".join(ours) + "\n")
    python = str(venv / "bin" / "python")
    file = tmp_path / "mcp.json"
    done = subprocess.run(
        [python, "-m", "poe_mcp", "config", "cursor", "--write", "--file", str(file)],
        capture_output=True,
        text=True,
        env={"PATH": BARE_PATH, "HOME": str(tmp_path)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    entry = server_entry("cursor", file)
    assert (entry["command"], entry["args"]) == (python, ["-m", "poe_mcp"])
    (tmp_path / "work").mkdir()
    params = StdioServerParameters(
        command=entry["command"], args=entry["args"], env=env_for(fake, tmp_path), cwd=str(tmp_path)
    )
    async with Client(params) as session:
        assert (await session.list_tools()).tools
