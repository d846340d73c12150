"""A conversation as it grows: `ask_poe` continuing a stored session of 10 / 100 / 500 / 2,000 turns
against the floor of a client that keeps the history itself and resends it whole (a direct
low-level `AsyncOpenAI.post`, as poe-mcp itself makes, with the same messages) plus the bare MCP round trip. Both sides send the same
history to the same fake Poe in the same run, and both grow by one turn a call.
Usage: python bench/growth.py [--calls N] [--sizes 10,100,500,2000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
import httpx2
import openai
from common import BARE, SECRET_KEY, ms, report, start_fake, stats, stdio_client, workdir
from mcp import Client

from poe_mcp.conversations import open_store
from poe_mcp.poe.types import ChatMessage

MODEL = "gpt-4-turbo"
# A turn of ordinary length: a question of a sentence or two and an answer of a paragraph.
QUESTION = "Could you say a little more about how that works in practice? " * 2
ANSWER = "Here is how it works, step by step, with the details that matter most. " * 6


def history(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for _ in range(turns):
        messages += [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": ANSWER},
        ]
    return messages


async def prefill(path: str, sizes: list[int]) -> None:
    store = open_store(path)
    try:
        for turns in sizes:
            messages = [ChatMessage(**m) for m in history(turns)]
            await store.append(f"s{turns}", MODEL, messages)
    finally:
        await store.aclose()


async def measure(calls: int, sizes: list[int]) -> dict[str, Any]:
    fake, tmp = start_fake(), workdir()
    await prefill(str(tmp / "store.db"), sizes)
    direct = openai.AsyncOpenAI(api_key=SECRET_KEY, base_url=fake.base_url, max_retries=0)
    results: dict[str, Any] = {}
    try:
        async with stdio_client(fake, tmp) as client, Client(BARE) as bare:
            for _ in range(5):  # warm: imports, catalog, connections
                await client.call_tool("ask_poe", {"bot": MODEL, "prompt": "hi", "stream": False})
                await bare.call_tool("echo", {"text": "hi"})
            for turns in sizes:
                resent = history(turns)
                times: dict[str, list[float]] = {"ask_poe": [], "resend": [], "bare": []}
                for _ in range(calls):  # alternate, so machine noise hits every side alike
                    started = time.perf_counter()
                    result = await client.call_tool(
                        "ask_poe",
                        {
                            "bot": MODEL,
                            "prompt": QUESTION,
                            "session_id": f"s{turns}",
                            "stream": False,
                        },
                    )
                    if result.is_error:
                        raise SystemExit(f"ask_poe failed at {turns} turns: {result.content}")
                    times["ask_poe"].append(time.perf_counter() - started)
                    resent.append({"role": "user", "content": QUESTION})
                    started = time.perf_counter()
                    # the same low-level post poe-mcp makes (no typed request transform), so the floor is fair
                    answer = await direct.post(
                        "/chat/completions",
                        body={"model": MODEL, "messages": resent},
                        cast_to=httpx2.Response,
                    )
                    times["resend"].append(time.perf_counter() - started)
                    reply = answer.json()["choices"][0]["message"]["content"]
                    resent.append({"role": "assistant", "content": reply})
                    started = time.perf_counter()
                    await bare.call_tool("echo", {"text": "hi"})
                    times["bare"].append(time.perf_counter() - started)
                results[str(turns)] = {name: stats(samples) for name, samples in times.items()}
    finally:
        await direct.close()
        fake.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--sizes", default="10,100,500,2000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results = anyio.run(measure, args.calls, sizes)
    rows = []
    for turns in sizes:
        measured = results[str(turns)]
        mine, resend, bare = (measured[k]["median"] for k in ("ask_poe", "resend", "bare"))
        floor = resend + bare
        rows.append(
            (str(turns), ms(mine), ms(resend), ms(bare), ms(mine - floor), f"{mine / floor:.2f}x")
        )
    first, last = results[str(sizes[0])], results[str(sizes[-1])]
    growth = {
        side: last[side]["median"] - first[side]["median"] for side in ("ask_poe", "resend", "bare")
    }
    report(
        "growth",
        f"A growing conversation ({args.calls} calls at each size, stdio, 0 ms upstream)",
        rows,
        ("turns", "ask_poe", "client resends", "bare round trip", "over the floor", "ratio"),
        {"calls": args.calls, "results": results, "growth_first_to_last": growth},
    )
    print(
        f"growth {sizes[0]} → {sizes[-1]} turns: ask_poe +{ms(growth['ask_poe'])}, "
        f"floor +{ms(growth['resend'] + growth['bare'])}"
    )


if __name__ == "__main__":
    main()
