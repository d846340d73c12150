"""Streamable HTTP through the real `poe-mcp serve --transport http`, with the SDK's HTTP client."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import SECRET_KEY, env_for
from fakepoe import FakePoe, Reply
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from servers import POE_MCP, TOKEN, http_replica

pytestmark = pytest.mark.anyio

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def connect_http(url: str, token: str | None = TOKEN, mode: str = "auto") -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(
        streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=30)),
        mode=mode,
    )


async def test_tokens_are_required_and_checked(fake: FakePoe, tmp_path: Path) -> None:
    with http_replica(fake, tmp_path) as url:
        missing = httpx2.post(url, json=INIT, headers=HEADERS)
        wrong = httpx2.post(url, json=INIT, headers={**HEADERS, "authorization": "Bearer nope"})
        right = httpx2.post(url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {TOKEN}"})
        health = httpx2.get(url.replace("/mcp", "/healthz"))
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert (
        health.status_code == 200
        and health.json()["status"] == "ok"
        and SECRET_KEY not in health.text
    )


async def test_tools_work_and_progress_arrives_over_sse(
    fake: FakePoe, tmp_path: Path, mode: str
) -> None:
    # pieces longer than the redactor's hold-back (a secret's length), so progress shows text early
    chunks = ["one, counting slowly and clearly, ", "two, and still counting on, ", "three"]
    fake.enqueue(Reply(chunks=chunks))
    fake.chunk_delay = 0.3
    events: list[Any] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append(message)

    with http_replica(fake, tmp_path) as url:
        async with connect_http(url, mode=mode) as client:
            tools = (await client.list_tools()).tools
            result = await client.call_tool(
                "ask_poe", {"bot": "gpt-4-turbo", "prompt": "count"}, progress_callback=on_progress
            )
            info = await client.call_tool("get_server_info", {})
        health = httpx2.get(url.replace("/mcp", "/healthz")).json()
    assert len(tools) >= 14 and result.content[0].text == "".join(chunks)
    assert len(events) >= 2 and all(events)
    assert info.structured_content["transport"] == "http"
    assert health["poe"] == "ok"


async def test_a_foreign_origin_is_refused(fake: FakePoe, tmp_path: Path) -> None:
    with http_replica(fake, tmp_path) as url:
        evil = httpx2.post(
            url,
            json=INIT,
            headers={
                **HEADERS,
                "authorization": f"Bearer {TOKEN}",
                "origin": "http://evil.example",
            },
        )
        local = httpx2.post(
            url,
            json=INIT,
            headers={
                **HEADERS,
                "authorization": f"Bearer {TOKEN}",
                "origin": "http://localhost:3000",
            },
        )
    assert evil.status_code == 403 and local.status_code == 200


def test_an_exposed_host_without_a_token_is_refused(fake: FakePoe, tmp_path: Path) -> None:
    run = subprocess.run(
        [POE_MCP, "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        env=env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="INFO"),
        timeout=60,
    )
    assert run.returncode == 2 and "POE_MCP_AUTH_TOKEN" in run.stderr and "0.0.0.0" in run.stderr


HEADER_TIMEOUT = 0.5  # POE_MCP_HEADER_TIMEOUT for these tests (10 s by default)


def seconds_until_dropped(port: int, sent: bytes, drip: bool = False) -> tuple[float, bytes]:
    """Open a raw connection, send `sent` (then, with `drip`, one more header byte every 0.1 s), and
    return how long the server took to close it, with what it wrote before closing."""
    start = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(0.1)
        sock.sendall(sent)
        while time.monotonic() - start < 10:
            try:
                if drip:
                    sock.send(b"a")
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                break
            if not data:
                break
            received += data
        else:
            raise AssertionError(f"still open after 10 s, having sent {sent!r}")
    return time.monotonic() - start, received


async def test_a_client_that_stops_half_way_through_its_headers_is_dropped(
    fake: FakePoe, tmp_path: Path
) -> None:
    chunks = ["one, counting slowly and clearly, ", "two, and still counting on, ", "three"]
    fake.enqueue(Reply(chunks=chunks))
    fake.chunk_delay = 0.4  # the answer streams for longer than the header timeout
    with http_replica(fake, tmp_path, POE_MCP_HEADER_TIMEOUT=str(HEADER_TIMEOUT)) as url:
        port = int(url.split(":")[-1].split("/")[0])
        half_line = seconds_until_dropped(port, b"POST /mc")
        half_headers = seconds_until_dropped(
            port, b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl"
        )
        nothing = seconds_until_dropped(port, b"")
        dripping = seconds_until_dropped(port, b"GET /healthz HTTP/1.1\r\nX-Slow: ", drip=True)
        async with connect_http(url) as client:  # a whole request, answered past the timeout
            result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "count"})
            again = await client.call_tool("get_server_info", {})  # the same kept-alive connection
    for elapsed, written in (half_line, half_headers, dripping):
        assert HEADER_TIMEOUT * 0.8 < elapsed < HEADER_TIMEOUT + 2, elapsed
        assert written.startswith(b"HTTP/1.1 408 Request Timeout"), written
    assert nothing[1] == b"" and nothing[0] < HEADER_TIMEOUT + 2, nothing
    assert dripping[0] < HEADER_TIMEOUT + 2, "one deadline for the headers, not one per byte"
    assert not result.is_error and result.content[0].text == "".join(chunks)
    assert not again.is_error


async def test_connections_past_the_limit_get_503(fake: FakePoe, tmp_path: Path) -> None:
    with http_replica(fake, tmp_path, POE_MCP_MAX_CONNECTIONS="2") as url:
        port = int(url.split(":")[-1].split("/")[0])
        health = url.replace("/mcp", "/healthz")
        with socket.create_connection(("127.0.0.1", port)):
            time.sleep(0.2)  # accepted: one of the two
            second = httpx2.get(health)
            with socket.create_connection(("127.0.0.1", port)):
                time.sleep(0.2)
                third = httpx2.get(health)
        time.sleep(0.2)
        after = httpx2.get(health)
    assert second.status_code == 200
    assert third.status_code == 503
    assert after.status_code == 200, "served again once connections close"
