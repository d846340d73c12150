"""What a release publishes agrees with itself: one version everywhere, the registry's marker, and
a bundle manifest the official MCPB tool accepts."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

import poe_mcp

ROOT = Path(__file__).parent.parent
MCPB = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "mcpb"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_one_version_everywhere() -> None:
    server = json.loads((ROOT / "server.json").read_text())
    manifest = json.loads((ROOT / "bundle" / "manifest.json").read_text())
    assert poe_mcp.__version__ == VERSION
    assert server["version"] == VERSION and server["packages"][0]["version"] == VERSION
    assert manifest["version"] == VERSION


def test_the_registry_entry_names_the_pypi_package_and_the_readme_marker() -> None:
    server = json.loads((ROOT / "server.json").read_text())
    package = server["packages"][0]
    assert package["registryType"] == "pypi" and package["identifier"] == "poe-mcp"
    assert len(server["description"]) <= 100, "the registry refuses longer descriptions"
    key = next(v for v in package["environmentVariables"] if v["name"] == "POE_API_KEY")
    assert key["isSecret"] is True and key["isRequired"] is True
    marker = re.search(r"mcp-name: (\S+)", (ROOT / "README.md").read_text())
    assert marker is not None and marker.group(1) == server["name"]


def test_the_bundle_asks_for_the_key_as_a_secret() -> None:
    manifest = json.loads((ROOT / "bundle" / "manifest.json").read_text())
    assert manifest["user_config"]["poe_api_key"]["sensitive"] is True
    env = manifest["server"]["mcp_config"]["env"]
    assert env["POE_API_KEY"] == "${user_config.poe_api_key}"


@pytest.mark.skipif(
    not MCPB.exists(), reason="mcpb is not installed (.ci/run installs it with npm)"
)
def test_the_bundle_manifest_validates_with_the_official_tool() -> None:
    done = subprocess.run(
        [str(MCPB), "validate", str(ROOT / "bundle" / "manifest.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_systemd_unit_gives_the_service_a_folder_of_its_own_and_private_files() -> None:
    """Started by systemd with no working folder the service would run in `/`; its attachments folder
    is named, not inherited, and what it writes is readable by it alone."""
    unit: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / "poe-mcp.service").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            unit.setdefault(key.strip(), []).append(value.strip())
    (folder,) = unit["WorkingDirectory"]
    assert folder not in ("/", "~") and not folder.startswith(("/etc", "/root", "/home"))
    environment = " ".join(unit["Environment"])
    allowed = re.search(r"POE_MCP_ALLOWED_DIRS=(\S+)", environment)
    assert allowed and allowed.group(1) not in ("/", folder), "an explicit folder for attachments"
    assert unit["UMask"] == ["0077"]
