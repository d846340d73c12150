"""Streaming: delay from the fake's first token to the client's first progress notification, and the
rate at which streamed tokens pass through ask_poe. Usage: python bench/streaming.py [--runs N]
"""

from __future__ import annotations

import argparse
import time

import anyio
from common import ms, report, start_fake, stats, stdio_client, workdir
from fakepoe import Reply


async def measure(runs: int, tokens: int) -> dict[str, dict[str, float]]:
    fake, tmp = start_fake(), workdir()
    delays, rates = [], []
    try:
        async with stdio_client(fake, tmp) as client:
            await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "warm"})
            for _ in range(runs):
                first: list[float] = []

                async def on_progress(
                    progress: float, total: float | None, message: str | None
                ) -> None:
                    if not first:
                        first.append(time.monotonic())

                fake.chunk_delay = (
                    0.05  # a token now and then: the first one must not wait for the rest
                )
                fake.enqueue(Reply(chunks=["first "] + ["more "] * 10))
                await client.call_tool(
                    "ask_poe", {"bot": "gpt-4-turbo", "prompt": "go"}, progress_callback=on_progress
                )
                assert fake.first_token_at is not None
                delays.append(first[0] - fake.first_token_at)

                fake.chunk_delay = 0  # as fast as the fake can send: what passes through per second
                fake.enqueue(Reply(chunks=["tok "] * tokens))
                started = time.monotonic()
                result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "go"})
                assert len(result.content[0].text) == 4 * tokens
                rates.append(tokens / (time.monotonic() - started))
    finally:
        fake.stop()
    return {"first_token_to_first_progress_s": stats(delays), "tokens_per_second": stats(rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args()
    results = anyio.run(measure, args.runs, args.tokens)
    delay, rate = results["first_token_to_first_progress_s"], results["tokens_per_second"]
    rows = [
        ("first token -> first progress", ms(delay["median"]), ms(delay["p99"])),
        (
            f"tokens/s passed through ({args.tokens} tokens)",
            f"{rate['median']:.0f}",
            f"{rate['min']:.0f} (worst)",
        ),
    ]
    report(
        "streaming",
        f"Streaming over stdio ({args.runs} runs)",
        rows,
        ("measure", "median", "p99"),
        {"runs": args.runs, "tokens": args.tokens, "results": results},
    )


if __name__ == "__main__":
    main()
