"""Real server processes for tests: `poe-mcp serve --transport http` replicas and a redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
from conftest import env_for
from fakepoe import FakePoe

POE_MCP = str(Path(sys.executable).parent / "poe-mcp")
TOKEN = "test-token-7d1e0c"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


@contextmanager
def http_replica(
    fake: FakePoe,
    tmp_path: Path,
    name: str = "a",
    command: list[str] | None = None,
    port: int | None = None,
    **env: str,
) -> Iterator[str]:
    """One `poe-mcp serve --transport http` process (or `command`, given `--port`); yields its /mcp URL."""
    port = port or free_port()
    (tmp_path / "work").mkdir(exist_ok=True)
    log = tmp_path / f"replica-{name}.log"
    variables = env_for(
        fake, tmp_path, **{"POE_MCP_AUTH_TOKEN": TOKEN, "POE_MCP_LOG_LEVEL": "INFO", **env}
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*(command or [POE_MCP, "serve", "--transport", "http"]), "--port", str(port)],
            env=variables,
            stdout=out,
            stderr=out,
            cwd=tmp_path,
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process, log)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextmanager
def redis_server(tmp_path: Path) -> Iterator[str | None]:
    """A throwaway redis-server on a free port; yields its URL, or None when Redis is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
