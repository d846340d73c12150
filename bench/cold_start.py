"""Cold start: spawn to answered tools/list, poe-mcp vs a bare one-tool MCPServer (the floor), and the
first ask_poe after start. Usage: python bench/cold_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import time

import anyio
from common import BARE, ms, report, server_params, start_fake, stats, workdir
from mcp import Client, StdioServerParameters


async def spawn_to_tools_list(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        return time.perf_counter() - started


async def first_call(params: StdioServerParameters, pause: float) -> tuple[float, float]:
    """Spawn to the first ask_poe answer, and that call alone, made `pause` seconds after tools/list."""
    started = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        await anyio.sleep(pause)
        call = time.perf_counter()
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
        assert not result.is_error, result.content[0].text
        done = time.perf_counter()
    return done - started, done - call


async def measure(runs: int) -> dict[str, dict[str, float]]:
    fake = start_fake()
    samples: dict[str, list[float]] = {
        "bare_tools_list": [],
        "poe_mcp_tools_list": [],
        "poe_mcp_first_ask_at_once": [],
        "poe_mcp_first_ask_after_1s": [],
        "poe_mcp_spawn_to_first_answer": [],
    }
    cache = str(
        workdir() / "cache"
    )  # the catalog's disk cache outlives restarts, as it does for a user

    def params():  # type: ignore[no-untyped-def]
        return server_params(fake, workdir(), POE_MCP_CACHE_DIR=cache)

    try:
        await spawn_to_tools_list(BARE)  # warm the OS file cache and .pyc files
        await first_call(params(), 0)
        for _ in range(runs):
            samples["bare_tools_list"].append(await spawn_to_tools_list(BARE))
            samples["poe_mcp_tools_list"].append(await spawn_to_tools_list(params()))
            total, first = await first_call(params(), 0)
            samples["poe_mcp_spawn_to_first_answer"].append(total)
            samples["poe_mcp_first_ask_at_once"].append(first)
            samples["poe_mcp_first_ask_after_1s"].append((await first_call(params(), 1.0))[1])
    finally:
        fake.stop()
    return {name: stats(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    results = anyio.run(measure, args.runs)
    floor = results["bare_tools_list"]["median"]
    rows = [
        (
            name,
            ms(s["median"]),
            ms(s["p99"]),
            f"{s['median'] / floor:.2f}x" if name.endswith("tools_list") else "",
        )
        for name, s in results.items()
    ]
    report(
        "cold_start",
        f"Cold start over stdio ({args.runs} runs)",
        rows,
        ("measure", "median", "p99", "vs floor"),
        {"runs": args.runs, "results": results},
    )


if __name__ == "__main__":
    main()
