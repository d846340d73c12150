"""The Poe key never appears in a result, a log line, or a stored file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET_KEY, connect
from fakepoe import PNG, FakePoe, Reply

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
