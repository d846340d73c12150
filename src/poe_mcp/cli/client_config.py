"""MCP clients' configuration for poe-mcp: the command that starts this installation, each client's
snippet, and merging it into the client's file (JSON with comments, or Codex's TOML) with a backup."""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from . import jsonc

KEY_PLACEHOLDER = "YOUR_POE_API_KEY"  # the real key is never written by us: paste it in yourself
KEY_FROM_ENVIRONMENT = (
    "${POE_API_KEY}"  # for clients that expand variables: the key stays in your shell
)
TOKEN_PLACEHOLDER = "YOUR_POE_MCP_AUTH_TOKEN"


class ConfigError(Exception):
    """A client configuration that cannot be made or written: exit code 2, the file left as it was."""


@dataclass(frozen=True)
class Launch:
    """How a client starts poe-mcp: a command and its arguments."""

    command: str
    args: list[str] = field(default_factory=list)

    def shell(self) -> str:
        return shlex.join([self.command, *self.args])


# ---- the command of this installation ---------------------------------------------------------


def installed_launch() -> Launch:
    """The command that starts the installation now running, checked to exist.

    sys.executable is not resolved: a venv's `python` is a symlink to the base interpreter, whose
    folder has no `poe-mcp`. Under uvx the interpreter lives in uv's cache, whose paths change, so
    the client is given `uvx` itself, from the same source."""
    interpreter = Path(os.path.abspath(sys.executable))
    if _in_uv_cache(interpreter) and (uvx := shutil.which("uvx")):
        source = _installed_from()
        return Launch(uvx, ["--from", source, "poe-mcp"] if source else ["poe-mcp"])
    script = interpreter.parent / ("poe-mcp.exe" if platform.system() == "Windows" else "poe-mcp")
    if script.is_file() and os.access(script, os.X_OK):
        return Launch(str(script))
    return Launch(str(interpreter), ["-m", "poe_mcp"])


def _in_uv_cache(interpreter: Path) -> bool:
    return "uv" in interpreter.parts and any(
        part.startswith(("archive-v", "builds-v", "environments-v")) for part in interpreter.parts
    )


def _installed_from() -> str | None:
    """The local folder or URL this package was installed from (PEP 610), if not from an index."""
    try:
        direct = metadata.distribution("poe-mcp").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    url = json.loads(direct).get("url") if direct else None
    if not isinstance(url, str):
        return None
    return unquote(urlparse(url).path) if url.startswith("file://") else url


def check_launch(launch: Launch) -> None:
    """Run `<command> --version` before a client is told to run it: a config that cannot start is worse than none."""
    try:
        done = subprocess.run(
            [launch.command, *launch.args, "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError(f"{launch.shell()} does not run ({error}); reinstall poe-mcp") from None
    if done.returncode != 0 or not done.stdout.startswith("poe-mcp"):
        raise ConfigError(
            f"{launch.shell()} --version did not answer (exit {done.returncode}); reinstall poe-mcp"
        )


# ---- the clients ------------------------------------------------------------------------------


def _stdio_entry(launch: Launch, key: str) -> dict[str, Any]:
    return {"command": launch.command, "args": launch.args, "env": {"POE_API_KEY": key}}


def _remote_entry(url_field: str, **extra: str) -> Callable[[str], dict[str, Any]]:
    def entry(url: str) -> dict[str, Any]:
        return {
            **extra,
            url_field: url,
            "headers": {"Authorization": f"Bearer {TOKEN_PLACEHOLDER}"},
        }

    return entry


@dataclass(frozen=True)
class Client:
    name: str
    file: Callable[[], Path]
    section: str  # the top-level object that holds the servers
    key: str = KEY_PLACEHOLDER
    stdio: Callable[[Launch, str], dict[str, Any]] = _stdio_entry
    remote: Callable[[str], dict[str, Any]] | None = None
    committed: bool = False  # a project file meant for version control: never a key in it
    extra: dict[str, Any] = field(default_factory=dict)  # top-level additions (VS Code's inputs)


def _home() -> Path:
    return Path.home()


def _app_data(*parts: str) -> Path:
    return Path(os.environ.get("APPDATA", _home())).joinpath(*parts)


def _claude_desktop_file() -> Path:
    if platform.system() == "Darwin":
        return _home() / "Library/Application Support/Claude/claude_desktop_config.json"
    if platform.system() == "Windows":
        return _app_data("Claude", "claude_desktop_config.json")
    return _home() / ".config/Claude/claude_desktop_config.json"


def _zed_file() -> Path:
    if platform.system() == "Windows":
        return _app_data("Zed", "settings.json")
    return _home() / ".config/zed/settings.json"


def _typed_stdio(launch: Launch, key: str) -> dict[str, Any]:
    return {"type": "stdio", **_stdio_entry(launch, key)}


# VS Code asks for the key once and keeps it in its secret storage.
VSCODE_KEY_INPUT = {
    "type": "promptString",
    "id": "poe-key",
    "description": "Poe API key",
    "password": True,
}

CLIENTS: dict[str, Client] = {
    c.name: c
    for c in (
        Client("claude-desktop", _claude_desktop_file, "mcpServers"),
        # claude-code prints `claude mcp add --scope user`; --write makes a project .mcp.json, which
        # Claude Code expands ${POE_API_KEY} in, so the committed file never holds the key
        Client(
            "claude-code",
            lambda: Path.cwd() / ".mcp.json",
            "mcpServers",
            key=KEY_FROM_ENVIRONMENT,
            stdio=_typed_stdio,
            remote=_remote_entry("url", type="http"),
            committed=True,
        ),
        Client(
            "cursor",
            lambda: _home() / ".cursor/mcp.json",
            "mcpServers",
            remote=_remote_entry("url"),
        ),
        Client(
            "vscode",
            lambda: Path.cwd() / ".vscode/mcp.json",
            "servers",
            key="${input:poe-key}",
            stdio=_typed_stdio,
            remote=_remote_entry("url", type="http"),
            extra={"inputs": [VSCODE_KEY_INPUT]},
        ),
        Client(
            "windsurf",
            lambda: _home() / ".codeium/windsurf/mcp_config.json",
            "mcpServers",
            remote=_remote_entry("serverUrl"),
        ),
        Client("zed", _zed_file, "context_servers", remote=_remote_entry("url")),
        # Gemini CLI expands $VAR and ${VAR} in its settings: the key stays in your shell
        Client(
            "gemini",
            lambda: _home() / ".gemini/settings.json",
            "mcpServers",
            key=KEY_FROM_ENVIRONMENT,
            remote=_remote_entry("httpUrl"),
        ),
        Client(
            "codex",
            lambda: Path(os.environ.get("CODEX_HOME", _home() / ".codex")) / "config.toml",
            "mcp_servers",
        ),
    )
}


def entry(client: Client, launch: Launch | None, url: str | None) -> dict[str, Any]:
    """The `poe` server entry: stdio with this installation's command, or remote at `url`."""
    if url is None:
        assert launch is not None
        return client.stdio(launch, client.key)
    if client.name == "codex":  # Codex reads the token from the variable it names
        return {"url": url, "bearer_token_env_var": "POE_MCP_AUTH_TOKEN"}
    if client.remote is None:
        raise ConfigError(
            f"{client.name} takes remote servers in its own settings, not in its config file "
            "(Claude Desktop: Settings > Connectors); use a stdio client or another client here"
        )
    return client.remote(url)


def snippet(client: Client, server: dict[str, Any]) -> dict[str, Any]:
    """The part of the client's config file that adds poe-mcp."""
    addition: dict[str, Any] = dict(client.extra) if "command" in server else {}
    addition[client.section] = {"poe": server}
    return addition


def claude_code_command(launch: Launch | None, url: str | None) -> str:
    """`claude mcp add` into the user's own settings: the shell fills in the key from its environment."""
    if url is not None:
        return (
            f"claude mcp add --scope user --transport http poe {shlex.quote(url)} "
            '--header "Authorization: Bearer $POE_MCP_AUTH_TOKEN"'
        )
    assert launch is not None
    return f'claude mcp add --scope user poe -e POE_API_KEY="$POE_API_KEY" -- {launch.shell()}'


def codex_command(launch: Launch) -> str:
    return f'codex mcp add poe --env POE_API_KEY="$POE_API_KEY" -- {launch.shell()}'


# ---- reading and writing the files ------------------------------------------------------------


def read_json_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if not text.strip():
        return {}
    try:
        data = jsonc.loads(text)
    except ValueError as error:
        raise ConfigError(
            f"{path} is not valid JSON ({error}); fix it or pass another file with --file"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object; pass another file with --file")
    return data


@dataclass
class Written:
    """What --write did, for the person to read."""

    path: Path
    server: dict[str, Any]
    replaced: bool
    backup: Path | None = None
    comments_dropped: bool = False
    key_removed: bool = False


def merge_server(client: Client, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The new entry over the old one, keeping what the person set: other fields and env values
    (their pasted key above all), except a key in a file meant to be committed."""
    if not old:
        return new
    env = {**new.get("env", {}), **old.get("env", {})} if "env" in new else None
    if env is not None and client.committed:
        env["POE_API_KEY"] = new["env"]["POE_API_KEY"]
    merged = {**old, **new}
    if env is not None:
        merged["env"] = env
    return merged


def write_json_config(client: Client, path: Path, server: dict[str, Any]) -> Written:
    before = read_json_file(path)
    servers = before.get(client.section)
    if servers is not None and not isinstance(servers, dict):
        raise ConfigError(f'{path}: "{client.section}" is not an object; fix it by hand')
    old = (servers or {}).get("poe")
    merged = merge_server(client, old if isinstance(old, dict) else None, server)
    after = dict(before)
    after[client.section] = {**(servers or {}), "poe": merged}
    for name, items in snippet(client, server).items():
        if name != client.section:  # VS Code's inputs: ours replaced, the person's kept
            ids = {i["id"] for i in items}
            kept = [i for i in before.get(name, []) if i.get("id") not in ids]
            after[name] = kept + items
    original = path.read_text(encoding="utf-8") if path.is_file() else ""
    written = Written(path, merged, replaced=old is not None)
    written.key_removed = bool(
        client.committed and old and old.get("env", {}).get("POE_API_KEY") not in (None, client.key)
    )
    text = json.dumps(after, indent=2, ensure_ascii=False) + "\n"
    if jsonc.comment_count(original):
        text = _keeping_comments(original, before, after) or text
        written.comments_dropped = jsonc.comment_count(text) < jsonc.comment_count(original)
    _replace_file(path, text, written)
    return written


def _keeping_comments(original: str, before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The file with only the changed members rewritten, so comments elsewhere stay; None if that
    edit would not read back as `after` (then the whole file is rewritten, the backup keeping it)."""
    changed = {name: value for name, value in after.items() if before.get(name) != value}
    try:
        text = jsonc.with_members(original, changed)
        return text if jsonc.loads(text) == after else None
    except ValueError:
        return None


def write_codex_config(client: Client, path: Path, server: dict[str, Any]) -> Written:
    """Codex's TOML: the [mcp_servers.poe] table is appended; one already there is left to the person."""
    import tomllib  # Python 3.11+; only Codex's file needs it

    original = path.read_text(encoding="utf-8") if path.is_file() else ""
    try:
        existing = tomllib.loads(original)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML ({error}); fix it first") from None
    if "poe" in existing.get(client.section, {}):
        raise ConfigError(
            f"{path} already has [mcp_servers.poe]; edit it by hand, or remove it and run this again"
        )
    separator = "\n" if original and not original.endswith("\n\n") else ""
    text = original + ("\n" if original and not original.endswith("\n") else "") + separator
    written = Written(path, server, replaced=False)
    _replace_file(path, text + toml_table(server), written)
    return written


def toml_table(server: dict[str, Any]) -> str:
    """[mcp_servers.poe] in TOML; JSON's string and array syntax is valid TOML for these values."""
    lines = ["[mcp_servers.poe]"]
    for name, value in server.items():
        if isinstance(value, dict):
            pairs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{name} = {{ {pairs} }}")
        else:
            lines.append(f"{name} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def _replace_file(path: Path, text: str, written: Written) -> None:
    """Back the old file up beside it, then write the new one through a temp file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        written.backup = _free_backup_name(path)
        shutil.copy2(path, written.backup)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    if path.is_file():
        shutil.copymode(path, tmp)  # a settings file stays as private as it was
    os.replace(tmp, path)


def _free_backup_name(path: Path) -> Path:
    """`<name>.<time>.bak`, numbered when one from the same second exists: no backup overwrites another."""
    stem = f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, number = path.with_name(f"{stem}.bak"), 1
    while candidate.exists():
        candidate, number = path.with_name(f"{stem}-{number}.bak"), number + 1
    return candidate


def write_config(client: Client, path: Path, server: dict[str, Any]) -> Written:
    if client.name == "codex":
        return write_codex_config(client, path, server)
    return write_json_config(client, path, server)
