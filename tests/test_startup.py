"""Starting and stopping `poe-mcp` as a person does: in a terminal, with Ctrl-C, over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from conftest import SECRET_KEY, env_for
from fakepoe import FakePoe
from servers import free_port
from terminals import in_a_terminal, read_until

POE_MCP = str(Path(sys.executable).parent / "poe-mcp")


def test_in_a_terminal_it_greets_and_ctrl_c_exits_quietly(fake: FakePoe, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    env = env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="INFO")
    process, terminal = in_a_terminal([POE_MCP], env, tmp_path)
    try:
        shown = read_until(terminal, "Ctrl-C to stop")
        assert "an MCP server for Poe" in shown and "poe-mcp config" in shown
        assert "poe-mcp ask" in shown and shown.count("Ctrl-C to stop") == 1
        assert "backend openai, transport stdio" in shown and "key set" in shown
        time.sleep(0.5)
        assert process.poll() is None, "it keeps serving"
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert process.wait(timeout=15) in (0, 130)
        rest = read_until(terminal, "\0", timeout=1)
    finally:
        process.kill()
        os.close(terminal)
    assert "Traceback" not in shown + rest and "KeyboardInterrupt" not in rest
    assert SECRET_KEY not in shown + rest


def test_sigterm_exits_0_without_a_traceback(fake: FakePoe, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    process = subprocess.Popen(
        [POE_MCP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="INFO", POE_API_KEY=""),
        cwd=tmp_path,
    )
    assert process.stderr is not None
    start = process.stderr.readline().decode()
    assert "poe-mcp " in start and "no key (POE_API_KEY)" in start, start
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    rest = process.stderr.read().decode()
    assert "Traceback" not in rest and "an MCP server for Poe" not in start + rest, "no greeting"
    process.stdin.close()  # type: ignore[union-attr]


def test_a_client_that_goes_away_mid_answer_ends_the_server_quietly(
    fake: FakePoe, tmp_path: Path
) -> None:
    """A client killed while the server writes to it (a closed pipe): no traceback, exit 0."""
    (tmp_path / "work").mkdir()
    process = subprocess.Popen(
        [POE_MCP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="INFO"),
        cwd=tmp_path,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the client's end of the pipe is gone before the answer is written
    initialize = (
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
        b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n'
    )
    process.stdin.write(initialize)
    process.stdin.close()  # and the client has exited, as a killed one does
    assert process.wait(timeout=20) == 0
    rest = process.stderr.read().decode()
    assert "Traceback" not in rest and "BrokenPipe" not in rest, rest
    assert "the client closed the connection" in rest


def test_a_store_that_cannot_open_stops_the_start_in_one_line(
    fake: FakePoe, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    for store in ("redis://127.0.0.1:1/0", str(tmp_path / "a-file" / "store.db")):
        done = subprocess.run(
            [POE_MCP],
            capture_output=True,
            text=True,
            env=env_for(fake, tmp_path, POE_MCP_STORE=store, POE_MCP_LOG_LEVEL="INFO"),
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "POE_MCP_STORE=" in done.stderr and "Traceback" not in done.stderr


def serve_http(fake: FakePoe, tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (tmp_path / "work").mkdir(exist_ok=True)
    process = subprocess.Popen(
        [POE_MCP, "serve", "--transport", "http", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="WARNING", **env),
        cwd=tmp_path,
    )
    return process, port


def test_http_without_a_token_makes_one_and_shows_it_once(fake: FakePoe, tmp_path: Path) -> None:
    env = env_for(fake, tmp_path)
    env.pop("POE_MCP_AUTH_TOKEN", None)
    process, port = serve_http(fake, tmp_path)
    assert process.stderr is not None
    try:
        while not (first := process.stderr.readline().decode()).startswith("poe-mcp: serving"):
            assert first, "the server ended before saying where it serves"
        lines = [first] + [process.stderr.readline().decode() for _ in range(5)]
        assert lines[0].strip() == f"poe-mcp: serving MCP at http://127.0.0.1:{port}/mcp"
        token = lines[3].strip()
        assert len(token) >= 32 and f"Authorization: Bearer {token}" in lines[5]
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 30
        while True:
            try:
                refused = httpx2.post(url, json={}, timeout=2)
                break
            except httpx2.HTTPError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        assert refused.status_code == 401, "the made token is required"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert process.stderr.read().decode().count(token) == 0, "shown once"


def test_http_refuses_an_empty_token(fake: FakePoe, tmp_path: Path) -> None:
    process, _ = serve_http(fake, tmp_path, POE_MCP_AUTH_TOKEN="  ")
    assert process.wait(timeout=30) == 2
    assert process.stderr is not None
    message = process.stderr.read().decode()
    assert "POE_MCP_AUTH_TOKEN is set but empty" in message and message.count("\n") == 1
