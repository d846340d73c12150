"""list_models over the full catalog (360+ models, limit 500) over stdio: median and p95, next to the bare
server's round trip in the same run. The p95 tail was the collector's full passes (see server._warm_up).
Usage: python bench/list_models.py [--calls N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio
from common import BARE, ms, report, start_fake, stdio_client, workdir
from mcp import Client


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def measure(calls: int) -> dict[str, dict[str, float]]:
    fake, tmp = start_fake(), workdir()
    times: dict[str, list[float]] = {"bare_mcp_call": [], "list_models": []}
    try:
        async with stdio_client(fake, tmp) as client, Client(BARE) as bare:
            await client.call_tool("list_models", {"limit": 500})  # the catalog, fetched and cached
            await anyio.sleep(1)  # past the warm-up
            for _ in range(calls):
                started = time.perf_counter()
                await bare.call_tool("echo", {"text": "hi"})
                times["bare_mcp_call"].append(time.perf_counter() - started)
                started = time.perf_counter()
                await client.call_tool("list_models", {"limit": 500})
                times["list_models"].append(time.perf_counter() - started)
    finally:
        fake.stop()
    return {
        name: {"median": statistics.median(s), "p95": p95(s), "max": max(s), "n": len(s)}
        for name, s in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    measured = anyio.run(measure, args.calls)
    rows = [
        (name, ms(s["median"]), ms(s["p95"]), ms(s["max"]), f"{s['p95'] / s['median']:.2f}x")
        for name, s in measured.items()
    ]
    report(
        "list_models",
        f"list_models, full catalog, {args.calls} calls",
        rows,
        ("call", "median", "p95", "max", "p95/median"),
        measured,
    )


if __name__ == "__main__":
    main()
