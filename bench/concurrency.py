"""Concurrency: 100 ask_poe calls in flight against a fake that answers after 1 s, over stdio and HTTP.

The ideal is 1 s of wall time; the baseline row sends the same burst straight from openai.AsyncOpenAI
to the same fake, which shows what the fake itself (one Python process) costs. Usage: python bench/concurrency.py [--calls N] [--runs R]
"""

from __future__ import annotations

import argparse
import time

import anyio
import httpx2
import openai
from common import SECRET_KEY, report, start_fake, stats, stdio_client, workdir
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from servers import TOKEN, http_replica

UNLIMITED = "1000000"  # this measures concurrency; the request budget has its own benchmark (rate_budget.py)


async def burst(client: Client, calls: int) -> float:
    async def one(i: int) -> None:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": f"n{i}"})
        assert not result.is_error, result.content[0].text

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(calls):
            group.start_soon(one, i)
    return time.perf_counter() - started


async def direct(calls: int, runs: int) -> list[float]:
    """The baseline: the same calls straight from openai.AsyncOpenAI to the same fake."""
    fake = start_fake()
    client = openai.AsyncOpenAI(api_key=SECRET_KEY, base_url=fake.base_url, max_retries=0)
    body = {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}
    try:
        await client.chat.completions.create(**body)
        fake.latency = 1.0
        walls = []
        for _ in range(runs):
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for _ in range(calls):
                    group.start_soon(lambda: client.chat.completions.create(**body))
            walls.append(time.perf_counter() - started)
        return walls
    finally:
        await client.close()
        fake.stop()


async def over_stdio(calls: int, runs: int) -> list[float]:
    fake, tmp = start_fake(), workdir()
    try:
        async with stdio_client(fake, tmp, POE_MCP_RPM=UNLIMITED) as client:
            await client.call_tool("list_models", {"limit": 1})
            fake.latency = 1.0
            return [await burst(client, calls) for _ in range(runs)]
    finally:
        fake.stop()


async def over_http(calls: int, runs: int) -> list[float]:
    fake, tmp = start_fake(), workdir()
    try:
        # room for every call under the connection limit (default 100: a 503 past it)
        with http_replica(
            fake,
            tmp,
            POE_MCP_LOG_LEVEL="WARNING",
            POE_MCP_RPM=UNLIMITED,
            POE_MCP_MAX_CONNECTIONS=str(2 * calls),
        ) as url:
            http = httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
                limits=httpx2.Limits(max_connections=200),
            )
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
    results = {
        "direct openai (baseline)": stats(anyio.run(direct, args.calls, args.runs)),
        "stdio": stats(anyio.run(over_stdio, args.calls, args.runs)),
        "http": stats(anyio.run(over_http, args.calls, args.runs)),
    }
    rows = [
        (name, f"{s['median']:.3f} s", f"{s['max']:.3f} s", f"{s['median'] / 1.0:.2f}x")
        for name, s in results.items()
    ]
    report(
        "concurrency",
        f"{args.calls} calls in flight, upstream latency 1 s ({args.runs} runs)",
        rows,
        ("transport", "median wall", "worst", "vs ideal 1 s"),
        {"calls": args.calls, "results": results},
    )


if __name__ == "__main__":
    main()
