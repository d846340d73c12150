"""Does the server's memory stay flat over many calls? RSS of the stdio server after 1,000 and after
10,000 `ask_poe` calls (each a new stored conversation, as an agent's one-off questions are), with a
continued conversation every tenth call. Reads /proc (Linux).
Usage: python bench/rss_calls.py [--calls N]
"""

from __future__ import annotations

import argparse
import gc

import anyio
from common import report, start_fake, stdio_client, workdir
from memory import server_memory

MODEL = "gpt-4-turbo"


async def measure(calls: int) -> dict[str, float]:
    fake, tmp = start_fake(), workdir()
    first = min(1000, calls // 10 or 1)
    marks = sorted({first, *(first + (calls - first) * k // 4 for k in range(1, 5))})
    rss: dict[str, float] = {}
    try:
        async with stdio_client(fake, tmp) as client:
            for done in range(1, calls + 1):
                arguments = {"bot": MODEL, "prompt": f"question {done}", "stream": False}
                if done % 10 == 0:
                    arguments["session_id"] = "kept"
                    arguments["new_session"] = done == 10
                result = await client.call_tool("ask_poe", arguments)
                if result.is_error:
                    raise SystemExit(f"call {done} failed: {result.content}")
                if done in marks:
                    gc.collect()
                    await anyio.sleep(0.2)
                    rss[f"after_{done}_calls_mb"] = server_memory()["VmRSS"] / 1024
    finally:
        fake.stop()
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    rss = anyio.run(measure, args.calls)
    first, last = list(rss.values())[0], list(rss.values())[-1]
    rows = [
        (name.replace("_", " ").removesuffix(" mb"), f"{mb:.1f} MB") for name, mb in rss.items()
    ]
    rows.append(("growth", f"{last - first:+.1f} MB"))
    report(
        "rss_calls",
        f"Server RSS over {args.calls} calls (stdio)",
        rows,
        ("point", "RSS"),
        {"calls": args.calls, "rss_mb": rss, "growth_mb": last - first},
    )


if __name__ == "__main__":
    main()
