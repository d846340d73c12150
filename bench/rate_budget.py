"""Rate budget: a burst of calls against a fake that enforces Poe's 500 requests per minute.

Zero calls may fail; the report shows how many 429s were provoked and the total time against the
theoretical minimum (whole minutes of 500 requests). Usage: python bench/rate_budget.py [--calls N]
"""

from __future__ import annotations

import argparse
import math
import time

import anyio
from common import report, start_fake, stdio_client, workdir

POE_RPM = 500


async def measure(calls: int) -> dict[str, float]:
    fake, tmp = start_fake(), workdir()
    fake.rate_limit = POE_RPM
    failures = 0
    try:
        async with stdio_client(fake, tmp, POE_MCP_RPM=str(POE_RPM)) as client:
            await client.call_tool(
                "list_models", {"limit": 1}
            )  # the catalog fetch takes one slot of our budget

            async def one(i: int) -> None:
                nonlocal failures
                result = await client.call_tool(
                    "ask_poe",
                    {"bot": "gpt-4-turbo", "prompt": f"n{i}", "stream": False},
                    read_timeout_seconds=600,
                )
                failures += result.is_error

            started = time.monotonic()
            async with anyio.create_task_group() as group:
                for i in range(calls):
                    group.start_soon(one, i)
            elapsed = time.monotonic() - started
    finally:
        fake.stop()
    minimum = 60.0 * (math.ceil(calls / POE_RPM) - 1)  # 500 go at once, then 500 more each minute
    return {
        "calls": calls,
        "failed": failures,
        "429s_provoked": fake.rejected,
        "total_s": elapsed,
        "theoretical_minimum_s": minimum,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    results = anyio.run(measure, args.calls)
    rows = [
        (name, f"{value:.1f}" if isinstance(value, float) else str(value))
        for name, value in results.items()
    ]
    report(
        "rate_budget",
        f"Burst of {args.calls} calls under {POE_RPM} requests/min",
        rows,
        ("measure", "value"),
        {"results": results},
    )


if __name__ == "__main__":
    main()
