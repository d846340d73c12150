"""Replicas: 1 and 2 `poe-mcp serve --transport http` processes sharing one Redis behind nginx (the
round-robin of deploy/nginx.conf), under many concurrent clients calling `ask_poe` over Streamable
HTTP, with the fake Poe answering after 50 ms in a process of its own. Calls per second and p95,
against the same load sent straight to the fake. Needs redis-server and nginx (says so and stops
without them). Usage: python bench/replicas.py [--clients N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx2
from common import ROOT, SECRET_KEY, UNLIMITED_RPM, ms, report, stats, workdir
from servers import TOKEN, free_port, http_replica, redis_server, wait_until_up

CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "ask_poe",
        "arguments": {"bot": "gpt-4-turbo", "prompt": "hi", "stream": False},
    },
}
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-11-25",
    "authorization": f"Bearer {TOKEN}",
}
NGINX = """
daemon off; worker_processes 1; pid {prefix}/nginx.pid; error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream poe_mcp {{ {servers} keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://poe_mcp; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $http_host; proxy_buffering off;
    }}
  }}
}}
"""


@contextmanager
def fake_process(latency: float) -> Iterator[SimpleNamespace]:
    """The fake Poe in a process of its own, so the load generator does not share its interpreter."""
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from fakepoe import FakePoe; "
        f"f = FakePoe(api_key={SECRET_KEY!r}).start(); f.latency = {latency}; "
        "print(f.base_url, flush=True); time.sleep(10**6)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(ROOT / "tests")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield SimpleNamespace(base_url=process.stdout.readline().strip())
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def nginx_in_front(replicas: list[str], tmp: Path) -> Iterator[str]:
    port = free_port()
    servers = " ".join(f"server {url.split('/')[2]};" for url in replicas)
    prefix = tmp / f"nginx-{port}"
    prefix.mkdir()
    (prefix / "nginx.conf").write_text(NGINX.format(prefix=prefix, servers=servers, port=port))
    process = subprocess.Popen(
        ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process, prefix / "error.log")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


def answered(response: httpx2.Response) -> bool:
    """A tools/call answered without error, whether as JSON or as one server-sent event."""
    text = response.text
    if response.status_code != 200:
        return False
    if "text/event-stream" in response.headers.get("content-type", ""):
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:"))
    message: dict[str, Any] = json.loads(text)
    return not message.get("result", {}).get("isError", True)


async def load(
    url: str, body: dict[str, Any], headers: dict[str, str], clients: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    reasons: Counter[str] = Counter()  # what the failed calls answered
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as http:
        stop_at = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal failures
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = await http.post(url, json=body, headers=headers)
                if url.endswith("/mcp") and not answered(response):
                    failures += 1
                    reasons[f"{response.status_code} {response.text[:80]}"] += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(clients):
                group.start_soon(client)
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "calls_per_second": len(latencies) / elapsed,
        "p95": ordered[int(0.95 * (len(ordered) - 1))],
        "latency": stats(latencies),
        "failures": failures,
        "reasons": dict(reasons),
    }


def measure(clients: int, seconds: float, latency: float) -> dict[str, Any]:
    tmp = workdir()
    results: dict[str, Any] = {}
    with fake_process(latency) as fake, redis_server(tmp) as redis:
        direct = {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}
        results["direct"] = anyio.run(
            load,
            f"{fake.base_url}/chat/completions",
            direct,
            {"authorization": f"Bearer {SECRET_KEY}"},
            clients,
            seconds,
        )
        for count in (1, 2):
            with ExitStack() as stack:
                env = {
                    "POE_MCP_STORE": str(redis),
                    "POE_MCP_RPM": UNLIMITED_RPM,
                    # room for every client (and nginx's reconnects): the default limit, 100, answers 503 past it
                    "POE_MCP_MAX_CONNECTIONS": str(clients * 4),
                    "POE_MCP_LOG_LEVEL": "WARNING",
                }
                replicas = [
                    stack.enter_context(http_replica(fake, tmp, f"r{count}{i}", **env))  # type: ignore[arg-type]
                    for i in range(count)
                ]
                url = stack.enter_context(nginx_in_front(replicas, tmp))
                results[f"{count}_replicas"] = anyio.run(load, url, CALL, HEADERS, clients, seconds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    missing = [tool for tool in ("redis-server", "nginx") if shutil.which(tool) is None]
    if missing:
        print(
            f"replicas benchmark skipped: {', '.join(missing)} not installed (apt-get install redis-server nginx)"
        )
        return
    results = measure(args.clients, args.seconds, args.latency)
    rows = [
        (
            name.replace("_", " "),
            f"{r['calls_per_second']:.0f}",
            ms(r["latency"]["median"]),
            ms(r["p95"]),
            str(r["failures"]),
        )
        for name, r in results.items()
    ]
    report(
        "replicas",
        f"{args.clients} concurrent clients for {args.seconds:.0f} s, {args.latency * 1000:.0f} ms upstream, HTTP behind nginx",
        rows,
        ("path", "calls/s", "median", "p95", "failed"),
        {
            "clients": args.clients,
            "seconds": args.seconds,
            "latency": args.latency,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
