"""Concurrency: 100 ask_poe calls in flight against a fake that answers after 1 s, over stdio and HTTP.

The ideal is 1 s of wall time. Usage: python bench/concurrency.py [--calls N] [--runs R]
"""

from __future__ import annotations

import argparse
import time

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from common import report, start_fake, stats, stdio_client, workdir
from servers import TOKEN, http_replica


async def burst(client: Client, calls: int) -> float:
    async def one(i: int) -> None:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": f"n{i}"})
        assert not result.is_error, result.content[0].text

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(calls):
            group.start_soon(one, i)
    return time.perf_counter() - started


async def over_stdio(calls: int, runs: int) -> list[float]:
    fake, tmp = start_fake(), workdir()
    try:
        async with stdio_client(fake, tmp) as client:
            await client.call_tool("list_models", {"limit": 1})
            fake.latency = 1.0
            return [await burst(client, calls) for _ in range(runs)]
    finally:
        fake.stop()


async def over_http(calls: int, runs: int) -> list[float]:
    fake, tmp = start_fake(), workdir()
    try:
        with http_replica(fake, tmp, POE_MCP_LOG_LEVEL="WARNING") as url:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60, limits=httpx2.Limits(max_connections=200))
            async with Client(streamable_http_client(url, http_client=http)) as client:
                await client.call_tool("list_models", {"limit": 1})
                fake.latency = 1.0
                return [await burst(client, calls) for _ in range(runs)]
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = {"stdio": stats(anyio.run(over_stdio, args.calls, args.runs)), "http": stats(anyio.run(over_http, args.calls, args.runs))}
    rows = [(name, f"{s['median']:.3f} s", f"{s['max']:.3f} s", f"{s['median'] / 1.0:.2f}x") for name, s in results.items()]
    report("concurrency", f"{args.calls} calls in flight, upstream latency 1 s ({args.runs} runs)", rows, ("transport", "median wall", "worst", "vs ideal 1 s"), {"calls": args.calls, "results": results})


if __name__ == "__main__":
    main()
