"""The real `poe-mcp` process over stdio, as a user's MCP client starts it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import SECRET_KEY, env_for
from fakepoe import FakePoe
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio


def server_params(fake: FakePoe, tmp_path: Path, **extra: str) -> StdioServerParameters:
    (tmp_path / "work").mkdir(exist_ok=True)
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "poe_mcp"],
        env=env_for(fake, tmp_path, **extra),
        cwd=str(tmp_path),
    )


def rpc(method: str, params: dict[str, Any], ident: int | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if ident is not None:
        message["id"] = ident
    return (json.dumps(message) + "\n").encode()


HANDSHAKE = rpc(
    "initialize",
    {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
    1,
) + rpc("notifications/initialized", {})


def spawn(params: StdioServerParameters, *args: str, stdout: Any = subprocess.PIPE) -> Any:
    return subprocess.Popen(
        [params.command, *(args or params.args)],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=params.env,
        cwd=params.cwd,
    )


def answers(lines: list[bytes]) -> dict[Any, Any]:
    """Every line of stdout parsed (each must be a JSON-RPC message), by id."""
    messages = [json.loads(line) for line in lines]
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    return {m.get("id"): m for m in messages}


def test_stray_output_while_serving_goes_to_stderr_not_the_wire(
    fake: FakePoe, tmp_path: Path
) -> None:
    """A library that prints, or writes to fd 1 itself, while the server runs (fastapi_poe prints):
    the bytes land on stderr and stdout stays MCP only."""
    launcher = (
        "import os, signal\n"
        "def stray(*_):\n"
        "    print('stray print', flush=True)\n"
        "    os.write(1, b'stray write\\n')\n"
        "signal.signal(signal.SIGUSR1, stray)\n"
        "from poe_mcp.cli import main\n"
        "main()\n"
    )
    proc = spawn(server_params(fake, tmp_path), "-c", launcher)
    try:
        proc.stdin.write(HANDSHAKE)
        proc.stdin.flush()
        lines = [proc.stdout.readline()]  # initialize answered: the server is serving
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        proc.stdin.write(rpc("tools/list", {}, 2))
        proc.stdin.flush()
        lines.append(proc.stdout.readline())
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    lines += proc.stdout.readlines()
    assert set(answers(lines)) == {1, 2}
    stderr = proc.stderr.read()
    assert b"stray print" in stderr and b"stray write" in stderr


def test_a_megabyte_each_way_to_a_client_that_reads_late(fake: FakePoe, tmp_path: Path) -> None:
    """Messages far longer than a pipe's buffer, and a client that reads nothing until it has sent
    everything: each answer arrives whole, in full, none lost."""
    proc = spawn(server_params(fake, tmp_path))
    prompts = {10 + i: f"{i}" + "x" * 400_000 for i in range(3)}  # 1.2 MB in, 1.2 MB out
    try:
        proc.stdin.write(HANDSHAKE)
        for ident, prompt in prompts.items():
            proc.stdin.write(
                rpc(
                    "tools/call",
                    {"name": "ask_poe", "arguments": {"bot": "gpt-4-turbo", "prompt": prompt}},
                    ident,
                )
            )
        proc.stdin.flush()
        time.sleep(1.5)  # the server's answers fill the pipe meanwhile
        lines = [proc.stdout.readline() for _ in range(1 + len(prompts))]
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    by_id = answers(lines)
    for ident, prompt in prompts.items():
        assert by_id[ident]["result"]["content"][0]["text"] == f"Echo: {prompt}"


def test_served_to_a_file_it_still_answers(fake: FakePoe, tmp_path: Path) -> None:
    """stdout redirected to a file, not a pipe: served by the SDK's own transport, the same messages."""
    out = tmp_path / "out.jsonl"
    with out.open("wb") as stdout:
        proc = spawn(server_params(fake, tmp_path), stdout=stdout)
    try:
        proc.stdin.write(HANDSHAKE + rpc("tools/list", {}, 2))
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while out.read_bytes().count(b"\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    by_id = answers(out.read_bytes().splitlines())
    assert len(by_id[2]["result"]["tools"]) >= 6


def test_stdout_carries_only_mcp_messages(fake: FakePoe, tmp_path: Path) -> None:
    """Drive the process by hand and check every byte of stdout is a JSON-RPC message."""
    params = server_params(fake, tmp_path)
    fake.error(500, "provider_error", times=3)  # failures and retries must not print either
    stderr_file = tmp_path / "stderr.log"
    with stderr_file.open("wb") as stderr:
        proc = subprocess.Popen(
            [params.command, *params.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=params.env,
            cwd=params.cwd,
        )
    assert proc.stdin and proc.stdout
    lines: list[bytes] = []

    def exchange(*requests: bytes, until: set[int]) -> None:
        assert proc.stdin and proc.stdout
        proc.stdin.write(b"".join(requests))
        proc.stdin.flush()
        while line := proc.stdout.readline():
            lines.append(line)
            until.discard(json.loads(line).get("id"))
            if not until:
                return
        raise AssertionError("the server closed stdout early")

    try:
        exchange(
            rpc(
                "initialize",
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
                1,
            ),
            rpc("notifications/initialized", {}),
            rpc("tools/list", {}, 2),
            rpc(
                "tools/call",
                {"name": "ask_poe", "arguments": {"bot": "gpt-4-turbo", "prompt": "hello"}},
                3,
            ),
            until={1, 2, 3},
        )
        exchange(
            rpc(
                "tools/call",
                {"name": "ask_poe", "arguments": {"bot": "gpt-4-turbo", "prompt": "again"}},
                4,
            ),
            rpc("tools/call", {"name": "list_models", "arguments": {"limit": 2}}, 5),
            until={4, 5},
        )
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    lines += proc.stdout.readlines()
    messages = [json.loads(line) for line in lines]  # every line parses: nothing else is on stdout
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    by_id = {m.get("id"): m for m in messages}
    assert {1, 2, 3, 4, 5} <= set(by_id)
    assert by_id[3]["result"]["isError"] is True and by_id[3]["result"]["content"][0][
        "text"
    ].startswith("provider_error (500)")
    assert by_id[4]["result"]["content"][0]["text"] == "Echo: again"
    log = stderr_file.read_bytes()
    assert SECRET_KEY.encode() not in log and SECRET_KEY.encode() not in b"".join(lines)
    assert b"provider_error" in log, "logs go to stderr"


async def test_fifty_calls_in_flight_finish_together(fake: FakePoe, tmp_path: Path) -> None:
    fake.latency = 1.0
    async with Client(server_params(fake, tmp_path)) as client:
        await client.call_tool("list_models", {"limit": 1})  # warm the catalog and imports
        results: list[Any] = []

        async def one(i: int) -> None:
            results.append(
                await client.call_tool(
                    "ask_poe", {"bot": "gpt-4-turbo", "prompt": f"n{i}", "stream": i % 2 == 0}
                )
            )

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for i in range(50):
                group.start_soon(one, i)
        elapsed = time.monotonic() - started
    assert len(results) == 50 and not any(r.is_error for r in results)
    assert sorted(r.content[0].text for r in results) == sorted(f"Echo: n{i}" for i in range(50))
    assert elapsed < 10, f"50 concurrent calls took {elapsed:.1f} s"


async def test_sessions_survive_a_restart_of_the_process(fake: FakePoe, tmp_path: Path) -> None:
    async with Client(server_params(fake, tmp_path)) as client:
        first = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "remember 42"})
    session_id = first.structured_content["session_id"]
    async with Client(server_params(fake, tmp_path)) as client:
        await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "what number?", "session_id": session_id}
        )
    sent = fake.chat_requests()[-1]["json"]["messages"]
    assert sent == [
        {"role": "user", "content": "remember 42"},
        {"role": "assistant", "content": "Echo: remember 42"},
        {"role": "user", "content": "what number?"},
    ]


def test_tools_list_does_not_import_openai(fake: FakePoe, tmp_path: Path) -> None:
    """Cold start: the first tools/list must not pay for `import openai` (about half a second)."""
    code = (
        "import sys, anyio\n"
        "from mcp import Client\n"
        "from poe_mcp.config import load_settings\n"
        "from poe_mcp.server import build_server\n"
        "async def main():\n"
        "    async with Client(build_server(load_settings())) as c:\n"
        "        assert len((await c.list_tools()).tools) >= 6\n"
        "anyio.run(main)\n"
        "print('openai' in sys.modules)\n"
    )
    env = env_for(fake, tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


async def test_a_dotenv_in_the_working_folder_cannot_steer_the_server(
    fake: FakePoe, tmp_path: Path
) -> None:
    """A cloned repository's `.env` must not send the key elsewhere: serving ignores it unless opted in."""
    attacker = FakePoe(api_key="not-the-users").start()
    try:
        (tmp_path / ".env").write_text(
            f"POE_BASE_URL={attacker.base_url}\nPOE_MCP_ALLOWED_DIRS=/\n"
        )
        user_dotenv = tmp_path / ".config" / "poe-mcp" / ".env"  # HOME is tmp_path
        user_dotenv.parent.mkdir(parents=True)
        user_dotenv.write_text(  # the user's own settings: their Poe (the fake), their model
            f"POE_BASE_URL={fake.base_url}\nPOE_MCP_DEFAULT_MODEL=from-user-config\n"
        )
        hostname = "/etc/hostname" if Path("/etc/hostname").is_file() else "/etc/passwd"

        def started(**extra: str) -> StdioServerParameters:
            params = server_params(fake, tmp_path, **extra)
            del params.env["POE_BASE_URL"], params.env["POE_MCP_ALLOWED_DIRS"]
            return params

        async with Client(started()) as client:
            info = (await client.call_tool("get_server_info", {})).structured_content
            answer = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
            attached = await client.call_tool(
                "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "attachments": [hostname]}
            )
        assert info["base_url"] == fake.base_url and info["default_model"] == "from-user-config"
        assert not answer.is_error and answer.content[0].text == "Echo: hi"
        assert attached.is_error and "POE_MCP_ALLOWED_DIRS" in attached.content[0].text
        assert attacker.requests == [], "no request reached the port the working folder named"

        opted_in = started(POE_MCP_DOTENV="1")
        async with Client(opted_in) as client:
            info = (await client.call_tool("get_server_info", {})).structured_content
            await client.call_tool(
                "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "attachments": [hostname]}
            )
        assert info["base_url"] == attacker.base_url
        assert attacker.chat_requests(), "opted in, the working folder's .env is honoured"
        sent = attacker.chat_requests()[-1]["json"]["messages"][-1]["content"]
        assert len(sent) == 2, "the attachment from / was read, as the opted-in .env allows"
        run = subprocess.run(
            [opted_in.command, *opted_in.args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=opted_in.env,
            cwd=opted_in.cwd,
            timeout=60,
        )
        log = run.stderr
        assert f"POE_BASE_URL was read from {tmp_path / '.env'}" in log
        assert f"POE_MCP_ALLOWED_DIRS was read from {tmp_path / '.env'}" in log
        assert "POE_BASE_URL points at 127.0.0.1" in log and "not api.poe.com" in log
    finally:
        attacker.stop()


async def test_started_in_root_local_attachments_are_off_and_say_how_to_turn_them_on(
    fake: FakePoe, tmp_path: Path
) -> None:
    """Claude Desktop starts servers in `/`: with no POE_MCP_ALLOWED_DIRS nothing local is attached."""
    params = server_params(fake, tmp_path)
    del params.env["POE_MCP_ALLOWED_DIRS"]
    params.cwd = "/"
    inside = tmp_path / "work" / "notes.txt"
    inside.write_text("hello")
    async with Client(params) as client:
        results = [
            await client.call_tool(
                "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "attachments": [path]}
            )
            for path in (str(inside), "/etc/hostname", "/proc/self/environ")
        ]
        plain = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
    for result in results:
        text = result.content[0].text
        assert result.is_error and text.startswith("invalid_request_error (400):"), text
    first = results[0].content[0].text
    assert "Local attachments are off" in first and "Set POE_MCP_ALLOWED_DIRS" in first, first
    assert not plain.is_error, "the rest of the server works"
    assert [len(r["json"]["messages"]) for r in fake.chat_requests()] == [1]
