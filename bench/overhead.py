"""Per-call overhead: ask_poe over stdio vs the same request made directly with openai.AsyncOpenAI.

`bare_mcp_call` is a one-tool MCPServer answering at once over stdio: the SDK's own round trip,
which any MCP server pays before doing anything. Both talk to the same fake Poe in the same run, at 0 and 200 ms upstream latency; calls alternate so
machine noise hits both sides alike. Usage: python bench/overhead.py [--calls N]
"""

from __future__ import annotations

import argparse
import time

import anyio
import httpx2
import openai
from common import (
    BARE,
    SECRET_KEY,
    ms,
    report,
    start_fake,
    stats,
    stdio_client,
    workdir,
)
from mcp import Client


async def measure(calls: int, latency: float) -> dict[str, dict[str, float]]:
    fake = start_fake()
    fake.latency = latency
    tmp = workdir()
    direct = openai.AsyncOpenAI(api_key=SECRET_KEY, base_url=fake.base_url, max_retries=0)
    body = {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}
    times: dict[str, list[float]] = {
        "direct": [],
        "direct_post": [],
        "bare_mcp_call": [],
        "ask_poe": [],
        "ask_poe_stream": [],
    }
    try:
        async with stdio_client(fake, tmp) as client, Client(BARE) as bare:
            for _ in range(5):  # warm: imports, catalog, connections
                await client.call_tool(
                    "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "stream": False}
                )
                await direct.chat.completions.create(**body)
            for _ in range(calls):
                started = time.perf_counter()
                await direct.chat.completions.create(**body)
                times["direct"].append(time.perf_counter() - started)
                started = time.perf_counter()
                # the low-level post poe-mcp itself makes: the floor its own work is measured from
                await direct.post("/chat/completions", body=body, cast_to=httpx2.Response)
                times["direct_post"].append(time.perf_counter() - started)
                started = time.perf_counter()
                await bare.call_tool("echo", {"text": "hi"})
                times["bare_mcp_call"].append(time.perf_counter() - started)
                started = time.perf_counter()
                await client.call_tool(
                    "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "stream": False}
                )
                times["ask_poe"].append(time.perf_counter() - started)
                started = time.perf_counter()
                await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
                times["ask_poe_stream"].append(time.perf_counter() - started)
    finally:
        await direct.close()
        fake.stop()
    return {name: stats(samples) for name, samples in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    results, rows = {}, []
    for latency in (0.0, 0.2):
        measured = anyio.run(measure, args.calls, latency)
        results[f"latency_{int(latency * 1000)}ms"] = measured
        base = measured["direct"]["median"]
        for name, s in measured.items():
            added = s["median"] - base
            if name == "bare_mcp_call":
                rows.append(
                    (
                        f"{int(latency * 1000)} ms",
                        name,
                        ms(s["median"]),
                        ms(s["p99"]),
                        "",
                        "(MCP floor)" if name == "bare_mcp_call" else "(HTTP floor)",
                    )
                )
                continue
            rows.append(
                (
                    f"{int(latency * 1000)} ms",
                    name,
                    ms(s["median"]),
                    ms(s["p99"]),
                    "" if name == "direct" else ms(added),
                    f"{s['median'] / base:.2f}x",
                )
            )
    for latency_name, measured in results.items():
        own = (
            measured["ask_poe"]["median"]
            - measured["bare_mcp_call"]["median"]
            - measured["direct_post"]["median"]
        )
        measured["own_work_ms"] = {"median": own * 1000}
        rows.append(
            (
                latency_name.removeprefix("latency_"),
                "own work",
                ms(own),
                "",
                "",
                "ask_poe − bare − post",
            )
        )
    report(
        "overhead",
        f"Per-call overhead ({args.calls} calls each, stdio)",
        rows,
        ("upstream", "path", "median", "p99", "added", "ratio"),
        {"calls": args.calls, "results": results},
    )


if __name__ == "__main__":
    main()
