"""The size of tools/list, in bytes on the wire and approximate tokens (bytes / 4): clients pay it in context.
Usage: python bench/tools_size.py
"""

from __future__ import annotations

import anyio
from common import report, start_fake, stdio_client, workdir


async def measure() -> dict[str, object]:
    fake, tmp = start_fake(), workdir()
    try:
        async with stdio_client(fake, tmp) as client:
            listed = await client.list_tools()
    finally:
        fake.stop()
    per_tool = {
        t.name: len(t.model_dump_json(by_alias=True, exclude_none=True)) for t in listed.tools
    }
    total = len(listed.model_dump_json(by_alias=True, exclude_none=True))
    return {
        "tools": len(per_tool),
        "bytes": total,
        "approx_tokens": total // 4,
        "per_tool": per_tool,
    }


def main() -> None:
    results = anyio.run(measure)
    rows = [(name, str(size)) for name, size in results["per_tool"].items()] + [
        (
            "total (tools/list result)",
            f"{results['bytes']} bytes, ~{results['approx_tokens']} tokens",
        )
    ]  # type: ignore[union-attr]
    report("tools_size", "tools/list size", rows, ("tool", "bytes"), {"results": results})


if __name__ == "__main__":
    main()
