"""Concurrency: 100 ask_poe calls in flight against a fake that answers after 1 s, over stdio and HTTP.

The ideal is 1 s of wall time. Two floors against the same fake: the raw-socket row sends each request
as bytes over its own socket and reads the answer back (what the fake itself, one Python process,
costs), and the baseline row sends the same burst straight from openai.AsyncOpenAI. Usage: python bench/concurrency.py [--calls N] [--runs R]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import openai
from common import SECRET_KEY, UNLIMITED_RPM, report, start_fake, stats, stdio_client, workdir
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from servers import TOKEN, http_replica


def ask_poe(client: Client) -> Callable[[], Awaitable[None]]:
    """One ask_poe call through `client` a time it is awaited, each with a prompt of its own."""
    numbers = itertools.count()

    async def one() -> None:
        prompt = f"n{next(numbers)}"
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": prompt})
        assert not result.is_error, result.content[0].text

    return one


async def bursts(send: Callable[[], Awaitable[Any]], calls: int, runs: int) -> list[float]:
    """The wall time of each of `runs` bursts of `calls` concurrent `send()`s."""
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(calls):
                group.start_soon(send)
        walls.append(time.perf_counter() - started)
    return walls


async def raw_socket(calls: int, runs: int) -> list[float]:
    """The floor: each call one HTTP/1.1 request written to its own socket, its answer read to the end."""
    fake = start_fake()
    url = urlsplit(fake.base_url)
    body = json.dumps(
        {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    request = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {SECRET_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body

    async def one() -> None:
        async with await anyio.connect_tcp(url.hostname or "127.0.0.1", url.port or 80) as sock:
            await sock.send(request)
            answer = b""
            try:
                while True:
                    answer += await sock.receive()
            except anyio.EndOfStream:
                pass
        assert answer.startswith(b"HTTP/1.1 200"), answer[:100]

    try:
        await one()
        fake.latency = 1.0
        return await bursts(one, calls, runs)
    finally:
        fake.stop()


async def direct(calls: int, runs: int) -> list[float]:
    """The baseline: the same calls straight from openai.AsyncOpenAI to the same fake."""
    fake = start_fake()
    client = openai.AsyncOpenAI(api_key=SECRET_KEY, base_url=fake.base_url, max_retries=0)
    body = {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}
    try:
        await client.chat.completions.create(**body)
        fake.latency = 1.0
        return await bursts(lambda: client.chat.completions.create(**body), calls, runs)
    finally:
        await client.close()
        fake.stop()


async def over_stdio(calls: int, runs: int) -> list[float]:
    fake, tmp = start_fake(), workdir()
    try:
        async with stdio_client(fake, tmp) as client:
            await client.call_tool("list_models", {"limit": 1})
            fake.latency = 1.0
            return await bursts(ask_poe(client), calls, runs)
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
            POE_MCP_RPM=UNLIMITED_RPM,
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
                return await bursts(ask_poe(client), calls, runs)
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = {
        "raw socket (floor)": stats(anyio.run(raw_socket, args.calls, args.runs)),
        "direct openai (baseline)": stats(anyio.run(direct, args.calls, args.runs)),
        "stdio": stats(anyio.run(over_stdio, args.calls, args.runs)),
        "http": stats(anyio.run(over_http, args.calls, args.runs)),
    }
    floor = results["raw socket (floor)"]["median"]
    rows = [
        (
            name,
            f"{s['median']:.3f} s",
            f"{s['max']:.3f} s",
            f"{s['median'] / 1.0:.2f}x",
            f"{s['median'] / floor:.2f}x",
        )
        for name, s in results.items()
    ]
    report(
        "concurrency",
        f"{args.calls} calls in flight, upstream latency 1 s ({args.runs} runs)",
        rows,
        ("transport", "median wall", "worst", "vs ideal 1 s", "vs raw socket"),
        {"calls": args.calls, "results": results},
    )


if __name__ == "__main__":
    main()
