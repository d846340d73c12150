"""Configuration snippets for MCP clients, and merging them into a client's config file."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode")
KEY_PLACEHOLDER = "YOUR_POE_API_KEY"  # the real key is never written by us: paste it in yourself


def command_path() -> str:
    """The installed `poe-mcp` command, as an absolute path (clients start it without our PATH)."""
    found = shutil.which("poe-mcp")
    return (
        str(Path(found).resolve())
        if found
        else str(Path(sys.executable).resolve().parent / "poe-mcp")
    )


def config_file(client: str) -> Path:
    home = Path.home()
    if client == "claude-desktop":
        if platform.system() == "Darwin":
            return (
                home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
            )
        if platform.system() == "Windows":
            return Path(os.environ.get("APPDATA", home)) / "Claude" / "claude_desktop_config.json"
        return home / ".config" / "Claude" / "claude_desktop_config.json"
    if client == "claude-code":
        return Path.cwd() / ".mcp.json"
    if client == "cursor":
        return home / ".cursor" / "mcp.json"
    return Path.cwd() / ".vscode" / "mcp.json"


def snippet(client: str, command: str) -> dict[str, Any]:
    """The part of the client's config file that adds poe-mcp."""
    if client == "vscode":  # VS Code asks for the key once and keeps it in its secret storage
        return {
            "inputs": [
                {
                    "type": "promptString",
                    "id": "poe-key",
                    "description": "Poe API key",
                    "password": True,
                }
            ],
            "servers": {
                "poe": {
                    "type": "stdio",
                    "command": command,
                    "args": [],
                    "env": {"POE_API_KEY": "${input:poe-key}"},
                }
            },
        }
    server: dict[str, Any] = {
        "command": command,
        "args": [],
        "env": {"POE_API_KEY": KEY_PLACEHOLDER},
    }
    if client == "claude-code":
        server["type"] = "stdio"
    return {"mcpServers": {"poe": server}}


def claude_code_command(command: str) -> str:
    return f"claude mcp add poe -e POE_API_KEY={KEY_PLACEHOLDER} -- {command}"


def merge(existing: dict[str, Any], addition: dict[str, Any]) -> dict[str, Any]:
    """The existing config with poe-mcp's entries added or replaced; everything else kept."""
    merged = dict(existing)
    for key, value in addition.items():
        if key == "inputs":
            others = [i for i in merged.get("inputs", []) if i.get("id") != "poe-key"]
            merged["inputs"] = others + value
        else:
            merged[key] = {**merged.get(key, {}), **value}
    return merged


def write_config(path: Path, addition: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge into the file (created if missing), writing a temp file then renaming; returns (before, after)."""
    before: dict[str, Any] = (
        json.loads(path.read_text(encoding="utf-8"))
        if path.is_file() and path.read_text(encoding="utf-8").strip()
        else {}
    )
    if not isinstance(before, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    after = merge(before, addition)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(after, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)
    return before, after
