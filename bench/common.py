"""Shared pieces of the benchmarks: the fake Poe, spawning servers, timing statistics, tables and JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import SECRET_KEY, env_for  # noqa: E402
from fakepoe import FakePoe  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# The floor several benchmarks compare against: a one-tool MCPServer on the same SDK (bare_server.py).
BARE = StdioServerParameters(
    command=sys.executable, args=[str(Path(__file__).with_name("bare_server.py"))]
)


def start_fake() -> FakePoe:
    return FakePoe(api_key=SECRET_KEY).start()


def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="poe-mcp-bench-"))
    (path / "work").mkdir()
    return path


# Per-call benchmarks make more calls a minute than Poe's 500 for one key; the budget that keeps a real
# server under it would pace them (rss_calls' 10,000 calls took 20 min), so it is off unless a benchmark
# sets POE_MCP_RPM (rate_budget.py measures it).
UNLIMITED_RPM = "1000000"


def server_params(fake: FakePoe, tmp: Path, **env: str) -> StdioServerParameters:
    env.setdefault("POE_MCP_RPM", UNLIMITED_RPM)
    variables = env_for(fake, tmp, POE_MCP_LOG_LEVEL="WARNING", **env)
    return StdioServerParameters(
        command=sys.executable, args=["-m", "poe_mcp"], env=variables, cwd=str(tmp)
    )


@asynccontextmanager
async def stdio_client(fake: FakePoe, tmp: Path, **env: str) -> AsyncIterator[Client]:
    async with Client(server_params(fake, tmp, **env)) as client:
        yield client


def child_pids() -> list[int]:
    """Processes this benchmark spawned (the stdio servers), from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                pids.append(int(entry.name))
    return pids


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))],
        "min": ordered[0],
        "max": ordered[-1],
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def report(
    name: str,
    title: str,
    rows: list[tuple[str, ...]],
    header: tuple[str, ...],
    data: dict[str, Any],
) -> None:
    """Print a table and write the full numbers to bench/results/<name>.json."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": name,
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": machine(),
                **data,
            },
            indent=2,
        )
    )
    print(f"(written to {out.relative_to(ROOT)})")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"
