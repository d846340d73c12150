"""Memory of the server process: idle RSS vs a bare one-tool MCPServer, peak RSS during 100 concurrent
calls, and peak RSS growth while a 100 MB video downloads. Reads /proc (Linux).
Usage: python bench/memory.py [--video-mb N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio
from common import (
    BARE,
    child_pids,
    memory_kb,
    report,
    start_fake,
    stdio_client,
    workdir,
)
from mcp import Client


def server_memory() -> dict[str, int]:
    [pid] = [
        p
        for p in child_pids()
        if "poe_mcp" in Path(f"/proc/{p}/cmdline").read_text()
        or "bare_server" in Path(f"/proc/{p}/cmdline").read_text()
    ]
    return memory_kb(pid)


async def measure(video_mb: int) -> dict[str, float]:
    results: dict[str, float] = {}
    async with Client(BARE) as bare:
        await bare.call_tool("echo", {"text": "hi"})
        await anyio.sleep(0.5)
        results["bare_idle_rss_mb"] = server_memory()["VmRSS"] / 1024
    fake, tmp = start_fake(), workdir()
    try:
        async with stdio_client(fake, tmp) as client:
            await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "warm"})
            await anyio.sleep(1.0)  # the background warm-up has finished
            idle = server_memory()
            results["poe_mcp_idle_rss_mb"] = idle["VmRSS"] / 1024
            fake.latency = 1.0
            async with anyio.create_task_group() as group:
                for i in range(100):
                    group.start_soon(
                        client.call_tool, "ask_poe", {"bot": "gpt-4-turbo", "prompt": f"n{i}"}
                    )
            loaded = server_memory()
            results["peak_rss_100_concurrent_mb"] = loaded["VmHWM"] / 1024
            fake.latency = 0
            fake.video_bytes = video_mb * 1_000_000
            fake.video_steps = 1
            before = server_memory()["VmHWM"]
            result = await client.call_tool("generate_video", {"prompt": "big"})
            assert (
                not result.is_error
                and result.structured_content["files"][0]["bytes"] == video_mb * 1_000_000
            ), result.content[0].text
            results["video_download_peak_growth_mb"] = (server_memory()["VmHWM"] - before) / 1024
    finally:
        fake.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video-mb", type=int, default=100)
    args = parser.parse_args()
    results = anyio.run(measure, args.video_mb)
    ratio = results["poe_mcp_idle_rss_mb"] / results["bare_idle_rss_mb"]
    rows = [(name, f"{value:.1f} MB") for name, value in results.items()] + [
        ("idle ratio vs bare", f"{ratio:.2f}x")
    ]
    report(
        "memory",
        "Server memory (RSS)",
        rows,
        ("measure", "value"),
        {"video_mb": args.video_mb, "results": results, "idle_ratio": ratio},
    )


if __name__ == "__main__":
    main()
