"""One MCP `tools/list` over stdio against the command given, with the standard library only.

Used by .ci/package to prove an installed wheel serves: `python stdio_tools_list.py CMD [ARGS...]`.
Prints the number of tools and exits 0, or says what went wrong and exits 1.
"""

from __future__ import annotations

import json
import subprocess
import sys


def message(method: str, params: dict, ident: int | None = None) -> bytes:
    body: dict = {"jsonrpc": "2.0", "method": method, "params": params}
    if ident is not None:
        body["id"] = ident
    return (json.dumps(body) + "\n").encode()


def main(command: list[str]) -> int:
    hello = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "ci", "version": "1"},
    }
    requests = (
        message("initialize", hello, 1)
        + message("notifications/initialized", {})
        + message("tools/list", {}, 2)
    )
    server = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert server.stdin and server.stdout
    server.stdin.write(requests)
    server.stdin.flush()
    try:
        # stdin stays open until the answer is read: a server may stop at end of input
        for line in server.stdout:
            reply = json.loads(line)
            if reply.get("id") == 2:
                tools = reply.get("result", {}).get("tools", [])
                print(f"tools/list answered {len(tools)} tools")
                return 0 if tools else 1
    finally:
        _, stderr = server.communicate(timeout=30)  # closes stdin: the server ends
    print(f"no tools/list answer; stderr:\n{stderr.decode(errors='replace')[-2000:]}")
    return 1

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
