"""What only the bot-protocol backend (POE_MCP_BACKEND=fastapi_poe) does: its fields, uploads, file events, errors.

The shared behaviour (sessions, tool rounds) runs on both backends in test_sessions and test_function_calling.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET_KEY, connect, env_for
from fakepoe import PNG, FakePoe, Reply

pytestmark = pytest.mark.anyio


@pytest.fixture
def bot_settings(settings: Any) -> Any:
    return replace(settings, backend="fastapi_poe")


async def test_fields_parameters_and_what_cannot_be_honoured(
    bot_settings: Any, fake: FakePoe, mode: str
) -> None:
    # long enough pieces that progress shows text before the end: the redactor holds back a key's length
    chunks = ["Hello over the protocol, ", "which streams its answer ", "in several pieces."]
    fake.enqueue(Reply(chunks=chunks))
    fake.chunk_delay = 0.3
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with connect(bot_settings, mode) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": "Gemini-2.5-Pro",
                "prompt": "hi",
                "system": "Be nice.",
                "temperature": 0.3,
                "stop": ["END"],
                "max_tokens": 9,
                "top_p": 0.5,
                "parameters": {"web_search": True},
            },
            progress_callback=on_progress,
        )
    assert result.content[0].text == "".join(chunks) and len(progress) >= 2
    query = fake.bot_queries[-1]
    assert [m["role"] for m in query["query"]] == ["system", "user"]
    assert query["temperature"] == 0.3 and query["stop_sequences"] == ["END"]
    assert query["query"][-1]["parameters"] == {"web_search": True}
    assert fake.model_calls()[-1]["path"] == "/bot/gemini-2.5-pro"
    notes = result.structured_content["notes"]
    assert any("max_tokens" in n for n in notes) and any("top_p" in n for n in notes)


async def test_history_uses_the_bot_role(bot_settings: Any, fake: FakePoe) -> None:
    async with connect(bot_settings) as client:
        await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "one", "session_id": "s", "new_session": True},
        )
        await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "two", "session_id": "s"}
        )
    assert [(m["role"], m["content"]) for m in fake.bot_queries[-1]["query"]] == [
        ("user", "one"),
        ("bot", "Echo: one"),
        ("user", "two"),
    ]


async def test_attachments_go_through_the_upload_api(
    bot_settings: Any, fake: FakePoe, workdir: Path
) -> None:
    (workdir / "cat.png").write_bytes(PNG)
    async with connect(bot_settings) as client:
        result = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "see", "attachments": [str(workdir / "cat.png")]},
        )
    assert not result.is_error, result.content[0].text
    [upload] = fake.uploads
    assert upload["authorization"] == SECRET_KEY, (
        "the upload API takes the bare key, without Bearer"
    )
    [attachment] = fake.bot_queries[-1]["query"][-1]["attachments"]
    assert attachment["url"].startswith(f"http://127.0.0.1:{fake.port}/cdn/upload-1")


async def test_media_from_file_events(bot_settings: Any, fake: FakePoe) -> None:
    url = fake.cdn_url("made.png", PNG, "image/png")
    fake.enqueue(Reply(text="Here you go", files=[(url, "image/png", "made.png")]))
    async with connect(bot_settings) as client:
        result = await client.call_tool(  # a chat image bot: gpt-image-1 goes to /v1/images
            "generate_image",
            {"prompt": "a cat", "model": "Nano-Banana", "parameters": {"aspect_ratio": "1:1"}},
        )
    [saved] = result.structured_content["files"]
    assert Path(saved["path"]).read_bytes() == PNG and saved["url"] == url
    assert base64.b64decode(result.content[1].data) == PNG
    assert result.structured_content["text"] == "Here you go"
    assert fake.bot_queries[-1]["query"][-1]["parameters"] == {"aspect_ratio": "1:1"}


@pytest.mark.parametrize(
    ("reply", "expected", "attempts"),
    [
        (Reply(status=402, text="no points"), "insufficient_credits", 1),
        (Reply(status=400, text="bad input"), "provider_error", 1),
        (Reply(status=503, text="busy"), "upstream_error", 3),
    ],
)
async def test_error_events_become_poe_errors(
    bot_settings: Any, fake: FakePoe, reply: Reply, expected: str, attempts: int
) -> None:
    fake.enqueue(*[reply] * 3)
    async with connect(bot_settings) as client:
        result = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "x"})
    assert (
        result.is_error
        and result.content[0].text.startswith(expected)
        and reply.text in result.content[0].text
    )
    assert len(fake.bot_queries) == attempts, "retried only when the bot allowed it"


def test_an_erroring_bot_over_stdio_keeps_stdout_pure(fake: FakePoe, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    lines = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "ask_poe", "arguments": {"bot": "failing-bot", "prompt": "x"}},
        },
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "poe_mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env_for(fake, tmp_path, POE_MCP_BACKEND="fastapi_poe"),
        cwd=tmp_path,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in lines).encode())
    proc.stdin.flush()
    received = []
    while line := proc.stdout.readline():
        received.append(json.loads(line))  # anything fastapi_poe printed would fail here
        if received[-1].get("id") == 2:
            break
    proc.stdin.close()
    proc.wait(timeout=30)
    result = received[-1]["result"]
    assert (
        result["isError"] is True
        and result["content"][0]["text"].startswith("provider_error")
        and "always fails" not in json.dumps(received[:-1])
    )


def test_without_the_legacy_extra_calls_say_what_to_install(fake: FakePoe, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "fastapi_poe"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ImportError('not installed')\n"
    )  # as if the extra were missing
    (tmp_path / "work").mkdir()
    code = (
        "import anyio\n"
        "from mcp import Client\n"
        "from poe_mcp.config import load_settings\n"
        "from poe_mcp.server import build_server\n"
        "async def main():\n"
        "    async with Client(build_server(load_settings())) as c:\n"
        "        r = await c.call_tool('ask_poe', {'bot': 'gpt-4-turbo', 'prompt': 'x'})\n"
        "        print(r.is_error, r.content[0].text)\n"
        "anyio.run(main)\n"
    )
    env = env_for(
        fake, tmp_path, POE_MCP_BACKEND="fastapi_poe", PYTHONPATH=str(tmp_path / "shadow")
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.stdout.startswith(
        "True invalid_request_error (400): POE_MCP_BACKEND=fastapi_poe needs the fastapi_poe package"
    ), run.stderr[-1000:]
    assert "poe-mcp[legacy]" in run.stdout
