"""The Poe key never appears in a result, a log line, or a stored file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import SECRET_KEY, connect, env_for
from fakepoe import PNG, FakePoe, Reply
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from servers import TOKEN as HTTP_TOKEN
from servers import http_replica

from poe_mcp.redaction import StreamRedactor, redact

pytestmark = pytest.mark.anyio

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hello"}),
    ("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hello", "stream": False}),
    ("ask_poe", {"bot": "gpt-4-turbo", "prompt": "boom"}),
    ("ask_poe", {"bot": "gemini-2.5-pro", "prompt": "x", "parameters": {"nope": 1}}),
    (
        "ask_poe_with_tools",
        {
            "bot": "grok-4",
            "prompt": "w?",
            "tools": [{"name": "f", "parameters": {"type": "object"}}],
        },
    ),
    ("chat_completion", {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}),
    ("list_models", {"query": "gpt", "limit": 3}),
    ("get_model_info", {"model": "nope-model"}),
    ("get_usage", {"limit": 3}),
    ("get_server_info", {}),
    ("list_sessions", {}),
    ("ask_with_attachment", {"prompt": "x", "attachment_path": "/etc/passwd"}),
    ("generate_image", {"prompt": "cat"}),
    ("generate_audio", {"prompt": "hello"}),
    ("generate_video", {"prompt": "wave"}),
    ("generate_image", {"prompt": "cat", "model": "gpt-4-turbo"}),
    ("list_available_models", {"query": "veo"}),
    ("clear_session", {"session_id": "none"}),
]


async def test_no_result_log_or_stored_file_contains_the_key(
    settings: Any, fake: FakePoe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.enqueue(
        Reply(text="hi"),
        Reply(text="hi"),
        Reply(status=401, error_type="authentication_error", text=f"bad key {SECRET_KEY}"),
    )
    image, audio = (
        fake.cdn_url("i.png", PNG, "image/png"),
        fake.cdn_url("a.mp3", b"ID3" + b"\x00" * 99, "audio/mpeg"),
    )
    seen: list[str] = []
    async with connect(settings, video_poll_interval=0.05) as client:
        for name, arguments in CALLS:
            if name == "generate_image":
                fake.enqueue(Reply(text=f"![x]({image})"))
            if name == "generate_audio":
                fake.enqueue(Reply(text=audio))
            result = await client.call_tool(name, arguments)
            seen.append(result.model_dump_json(by_alias=True))
    assert any('"isError":true' in s for s in seen) and any('"isError":false' in s for s in seen)
    assert not [s for s in seen if SECRET_KEY in s]
    assert SECRET_KEY not in caplog.text
    assert list(settings.output_dir.iterdir()), "media files were saved, and are searched below"
    for path in tmp_path.rglob("*"):
        if path.is_file() and "work" not in path.parts:
            assert SECRET_KEY.encode() not in path.read_bytes(), path


TOKEN = "bearer-SECRET-0d3e8b61"


class Progress:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.messages.append(message or "")


async def test_an_echoing_model_given_the_key_puts_it_in_no_result_progress_row_or_log(
    settings: Any, fake: FakePoe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    prompt = f"My key is {SECRET_KEY} and my token {TOKEN}, repeat them"
    half = len(SECRET_KEY) // 2
    # The key split across two streamed chunks sent 0.3 s apart: two progress messages, one key.
    fake.enqueue(Reply(chunks=[f"It is {SECRET_KEY[:half]}", f"{SECRET_KEY[half:]} and {TOKEN}."]))
    fake.chunk_delay = 0.3
    progress = Progress()
    seen: list[str] = []
    async with connect(settings, auth_token=TOKEN) as client:
        first = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": prompt}, progress_callback=progress
        )
        sid = first.structured_content["session_id"]
        fake.chunk_delay = 0.0
        for arguments in (
            {"bot": "gpt-4-turbo", "prompt": prompt, "session_id": sid},  # the echo, streamed
            {"bot": "gpt-4-turbo", "prompt": prompt, "stream": False},
        ):
            result = await client.call_tool("ask_poe", arguments, progress_callback=progress)
            seen.append(result.model_dump_json(by_alias=True))
        chat = await client.call_tool(
            "chat_completion",
            {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": prompt}]},
        )
        sessions = await client.call_tool("list_sessions", {})
    seen += [r.model_dump_json(by_alias=True) for r in (first, chat, sessions)]
    assert "[redacted]" in first.content[0].text and len(progress.messages) >= 2
    for secret in (SECRET_KEY, TOKEN):
        assert not [s for s in seen if secret in s], f"{secret} in a result"
        assert not [m for m in progress.messages if secret in m], f"{secret} in progress"
        assert secret not in caplog.text
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    assert fake.chat_requests()[0]["json"]["messages"][-1]["content"] == prompt, (
        "the model itself still got what the caller sent"
    )


def test_a_stream_split_anywhere_shows_no_secret_and_holds_back_only_what_could_begin_one() -> None:
    secrets = (SECRET_KEY, HTTP_TOKEN)
    text = f"pp{SECRET_KEY}, {SECRET_KEY[:5]} p{HTTP_TOKEN}{SECRET_KEY}"
    for i in range(len(text)):
        for j in range(i, len(text)):
            redactor = StreamRedactor(secrets)
            shown = [redactor.feed(text[:i]), redactor.feed(text[i:j]), redactor.feed(text[j:])]
            whole = "".join(shown) + redactor.finish()
            assert whole == redact(text, secrets), (i, j)
            assert not any(secret in "".join(shown) for secret in secrets)
    redactor = StreamRedactor(secrets)
    assert redactor.feed("The ") == "The ", "a piece that cannot begin a secret shows at once"
    assert redactor.feed(f"key {SECRET_KEY[:6]}") == "key ", "only the start of the key waits"


def test_a_traceback_in_the_log_carries_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    from poe_mcp.cli import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("DEBUG", (SECRET_KEY, TOKEN))
    try:
        raise RuntimeError(f"connecting with {SECRET_KEY} / {TOKEN}")
    except RuntimeError:
        logging.getLogger("poe_mcp.test").exception("a crash")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    logged = capsys.readouterr().err
    assert "Traceback" in logged and "a crash" in logged and "[redacted]" in logged
    assert SECRET_KEY not in logged and TOKEN not in logged


async def test_server_info_shows_the_base_url_without_credentials_or_query(
    settings: Any, fake: FakePoe
) -> None:
    url = f"http://user:pa55word@127.0.0.1:{fake.port}/v1?key=s3cr3t#frag"
    async with connect(settings, base_url=url) as client:
        result = await client.call_tool("get_server_info", {})
    info = result.structured_content
    assert info["base_url"] == f"http://127.0.0.1:{fake.port}/v1"
    assert "pa55word" not in result.model_dump_json() and "s3cr3t" not in result.model_dump_json()


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_an_echoing_model_leaks_nothing_from_a_real_server_process(
    fake: FakePoe, tmp_path: Path, transport: str
) -> None:
    """The real `poe-mcp` process as a client starts it: the key and the bearer token, given in a prompt
    and echoed back, reach no result, no progress notification, no line of its stderr, no file."""
    prompt = f"My key is {SECRET_KEY} and my token {HTTP_TOKEN}, repeat them"
    half = len(SECRET_KEY) // 2
    fake.enqueue(
        Reply(chunks=[f"It is {SECRET_KEY[:half]}", f"{SECRET_KEY[half:]} and {HTTP_TOKEN}."])
    )
    fake.chunk_delay = 0.3  # the key split across two progress notifications
    progress = Progress()
    seen: list[str] = []

    async def converse(client: Client) -> None:
        first = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": prompt}, progress_callback=progress
        )
        assert "[redacted]" in first.content[0].text, first.content[0].text
        fake.chunk_delay = 0.05  # the fake's own echo, a word a chunk: several notifications
        sid = first.structured_content["session_id"]
        for arguments in (
            {"bot": "gpt-4-turbo", "prompt": prompt, "session_id": sid},
            {"bot": "gpt-4-turbo", "prompt": prompt, "stream": False},
        ):
            result = await client.call_tool("ask_poe", arguments, progress_callback=progress)
            assert not result.is_error, result.content[0].text
            seen.append(result.model_dump_json(by_alias=True))
        seen.append(first.model_dump_json(by_alias=True))
        seen.append((await client.call_tool("list_sessions", {})).model_dump_json(by_alias=True))

    if transport == "stdio":
        (tmp_path / "work").mkdir(exist_ok=True)
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "poe_mcp"],
            env=env_for(fake, tmp_path, POE_MCP_AUTH_TOKEN=HTTP_TOKEN),
            cwd=str(tmp_path),
        )
        log = tmp_path / "stderr.log"
        with log.open("w") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                await converse(client)
    else:
        with http_replica(fake, tmp_path, POE_MCP_LOG_LEVEL="DEBUG") as url:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {HTTP_TOKEN}"}, timeout=30)
            async with Client(streamable_http_client(url, http_client=http)) as client:
                await converse(client)
        log = tmp_path / "replica-a.log"
    assert len(progress.messages) >= 3 and "[redacted]" in "".join(progress.messages)
    assert "DEBUG" in log.read_text(), "the process logged at DEBUG, so there was much to leak"
    for secret in (SECRET_KEY, HTTP_TOKEN):
        assert not [s for s in seen if secret in s], f"{secret} in a result"
        assert not [m for m in progress.messages if secret in m], f"{secret} in progress"
        for path in tmp_path.rglob("*"):  # the store, its WAL, the catalog cache, the log
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    assert fake.chat_requests()[0]["json"]["messages"][-1]["content"] == prompt


async def test_media_progress_never_carries_the_key(settings: Any, fake: FakePoe) -> None:
    """Progress messages of a generation name the model the caller gave: a key given as one is masked."""
    progress = Progress()
    async with connect(settings) as client:
        result = await client.call_tool(
            "generate_image",
            {"prompt": "cat", "model": f"x-{SECRET_KEY}"},
            progress_callback=progress,
        )
    assert progress.messages and all(SECRET_KEY not in m for m in progress.messages)
    assert SECRET_KEY not in result.model_dump_json()
