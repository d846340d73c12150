"""Attachments: allowed folders only (after symlinks and ..), public https only, size capped; refusals say why."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import connect
from fakepoe import FakePoe

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_an_image_and_a_pdf_become_the_right_parts(
    settings: Any, fake: FakePoe, workdir: Path, mode: str
) -> None:
    (workdir / "cat.png").write_bytes(PNG)
    (workdir / "paper.pdf").write_bytes(b"%PDF-1.4 test")
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "ask_poe",
            {
                "bot": "gpt-4-turbo",
                "prompt": "Describe",
                "attachments": [str(workdir / "cat.png"), str(workdir / "paper.pdf")],
            },
        )
    assert not result.is_error, result.content[0].text
    text, image, pdf = fake.chat_requests()[-1]["json"]["messages"][-1]["content"]
    assert text == {"type": "text", "text": "Describe"}
    assert image == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
    }
    assert pdf["type"] == "file" and pdf["file"]["filename"] == "paper.pdf"
    assert pdf["file"]["file_data"].startswith("data:application/pdf;base64,")


async def test_attachments_are_resent_by_reference_in_later_turns(
    settings: Any, fake: FakePoe, workdir: Path
) -> None:
    (workdir / "notes.txt").write_text("remember this")
    async with connect(settings) as client:
        first = await client.call_tool(
            "ask_with_attachment",
            {"bot": "gpt-4-turbo", "prompt": "Read", "attachment_path": str(workdir / "notes.txt")},
        )
        sid = first.structured_content["session_id"]
        await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "And?", "session_id": sid}
        )
    user_turn = fake.chat_requests()[-1]["json"]["messages"][0]
    assert (
        user_turn["content"][1]["file"]["file_data"]
        == "data:text/plain;base64," + base64.b64encode(b"remember this").decode()
    )
    store = Path(settings.store)
    stored = b"".join(
        p.read_bytes() for p in store.parent.glob(store.name + "*")
    )  # the db and its WAL
    assert b"notes.txt" in stored and base64.b64encode(b"remember this") not in stored, (
        "a reference, not the bytes"
    )


async def test_data_urls_are_accepted(settings: Any, fake: FakePoe) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "x", "attachments": [url]}
        )
    assert not result.is_error
    assert fake.chat_requests()[-1]["json"]["messages"][-1]["content"][1]["image_url"]["url"] == url


def _escape_cases(workdir: Path) -> dict[str, str]:
    outside = workdir.parent / "outside.txt"
    outside.write_text("secret")
    link = workdir / "link.txt"
    if not link.exists():
        os.symlink(outside, link)
    return {
        "system file": "/etc/passwd",
        "symlink out": str(link),
        "dot-dot escape": str(workdir / ".." / "outside.txt"),
    }


@pytest.mark.parametrize("case", ["system file", "symlink out", "dot-dot escape"])
async def test_files_outside_the_allowed_folders_are_refused(
    settings: Any, fake: FakePoe, workdir: Path, mode: str, case: str
) -> None:
    path = _escape_cases(workdir)[case]
    async with connect(settings, mode) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "read", "attachments": [path]}
        )
    text = result.content[0].text
    assert result.is_error and text.startswith("invalid_request_error (400):")
    assert (
        "outside the folders attachments may come from" in text and "POE_MCP_ALLOWED_DIRS" in text
    )
    assert fake.chat_requests() == []


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://127.0.0.1/x.png", "http:// attachments are not allowed"),
        ("https://127.0.0.1/x.png", "non-public address"),
        ("https://localhost/x.png", "non-public address"),
        ("https://10.0.0.8/x.png", "non-public address"),
        ("https://169.254.169.254/latest/meta-data", "non-public address"),
        ("file:///etc/passwd", "file:// attachments are not allowed"),
    ],
)
async def test_urls_to_private_hosts_are_refused(
    settings: Any, fake: FakePoe, url: str, needle: str
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "read", "attachments": [url]}
        )
    assert result.is_error and needle in result.content[0].text
    assert [r for r in fake.requests if r["path"] != "/v1/models"] == []


async def test_an_oversize_file_is_refused(settings: Any, fake: FakePoe, workdir: Path) -> None:
    (workdir / "big.bin").write_bytes(b"\x00" * 3_000_000)
    async with connect(settings, max_attachment_mb=1) as client:
        result = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "read", "attachments": [str(workdir / "big.bin")]},
        )
    text = result.content[0].text
    assert result.is_error and text.startswith(
        "request_too_large (413): Attachment big.bin is 3.0 MB, over the 1 MB cap"
    )
    assert "POE_MCP_MAX_ATTACHMENT_MB" in text and fake.chat_requests() == []


async def test_a_missing_file_is_refused(settings: Any, fake: FakePoe, workdir: Path) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_with_attachment", {"prompt": "x", "attachment_path": str(workdir / "nope.txt")}
        )
    assert result.is_error and "No file at" in result.content[0].text


@pytest.mark.parametrize("name", [".env", ".env.local"])
async def test_dotenv_files_are_never_attached(
    settings: Any, fake: FakePoe, workdir: Path, name: str
) -> None:
    secret = workdir / name
    secret.write_text("POE_API_KEY=sk-never-sent\n")
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "attachments": [str(secret)]}
        )
    assert result.is_error and "never attached" in result.content[0].text
    assert fake.chat_requests() == []


async def test_proc_is_never_attached_even_when_root_is_allowed(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings, allowed_dirs=(Path("/"),)) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "attachments": ["/proc/self/environ"]}
        )
    assert result.is_error and "never attached" in result.content[0].text
    assert fake.chat_requests() == []


def test_the_default_attachment_folder_is_never_root_or_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poe_mcp.config import load_settings

    for unsafe in (Path("/"), Path.home(), Path("/etc")):
        monkeypatch.chdir(unsafe)
        assert load_settings({}, {}, dotenv=tmp_path / "none.env").allowed_dirs == ()
    monkeypatch.chdir(tmp_path)
    assert load_settings({}, {}, dotenv=tmp_path / "none.env").allowed_dirs == (tmp_path.resolve(),)


async def test_with_no_safe_folder_local_attachments_say_how_to_turn_them_on(
    settings: Any, fake: FakePoe, workdir: Path
) -> None:
    (workdir / "a.txt").write_text("hello")
    async with connect(settings, allowed_dirs=()) as client:
        result = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "hi", "attachments": [str(workdir / "a.txt")]},
        )
    assert (
        result.is_error
        and "POE_MCP_ALLOWED_DIRS" in result.content[0].text
        and "off" in result.content[0].text
    )


async def test_a_fifo_is_refused_without_blocking(
    settings: Any, fake: FakePoe, workdir: Path
) -> None:
    pipe = workdir / "pipe.txt"
    os.mkfifo(pipe)  # no writer ever opens it: a plain open() for reading would block for good
    async with connect(settings) as client:
        with anyio.fail_after(10):
            result = await client.call_tool(
                "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "attachments": [str(pipe)]}
            )
    assert result.is_error and "not a regular file" in result.content[0].text
    assert fake.chat_requests() == []


async def test_the_file_a_setting_was_read_from_is_never_attached(
    settings: Any, fake: FakePoe, workdir: Path
) -> None:
    settings_file = workdir / "poe.conf"  # any name: what matters is that settings came from it
    settings_file.write_text("POE_API_KEY=sk-never-sent\n")
    changed = replace(settings, from_files=(("POE_API_KEY", str(settings_file)),))
    async with connect(changed) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "attachments": [str(settings_file)]}
        )
    assert result.is_error and "never attached" in result.content[0].text
    assert fake.chat_requests() == []


def _swap_folder_for_symlink(folder: Path, outside: Path, stop: threading.Event) -> None:
    """Flip `folder` between the real folder and a symlink to `outside`, as fast as possible."""
    real = folder.with_name(folder.name + "-real")
    while not stop.is_set():
        os.rename(folder, real)
        os.symlink(outside, folder)
        time.sleep(0.0005)  # as long a symlink as a folder: reads land on both
        os.unlink(folder)
        os.rename(real, folder)
        time.sleep(0.0005)


async def test_a_folder_swapped_for_a_symlink_during_reads_never_lets_an_outside_file_through(
    settings: Any, fake: FakePoe, workdir: Path
) -> None:
    (workdir / "sub").mkdir()
    (workdir / "sub" / "a.txt").write_text("inside")
    outside = workdir.parent / "outside"
    outside.mkdir()
    (outside / "a.txt").write_text("OUTSIDE-SECRET")
    stop = threading.Event()
    swapper = threading.Thread(
        target=_swap_folder_for_symlink, args=(workdir / "sub", outside, stop)
    )
    outcomes: set[str] = set()
    async with connect(settings) as client:
        swapper.start()
        try:
            for _ in range(150):
                result = await client.call_tool(
                    "ask_poe",
                    {
                        "bot": "gpt-4-turbo",
                        "prompt": "hi",
                        "attachments": [str(workdir / "sub" / "a.txt")],
                        "stream": False,
                    },
                )
                outcomes.add("refused" if result.is_error else "read")
        finally:
            stop.set()
            swapper.join()
    leaked = base64.b64encode(b"OUTSIDE-SECRET").decode()
    assert not [r for r in fake.chat_requests() if leaked in json.dumps(r["json"])]
    assert outcomes == {"read", "refused"}, "the race was exercised both ways"


@pytest.mark.parametrize(
    "ref",
    [
        "https://[oops/",
        "https://exa\tmple.com/x.png",
        "https://example.com:99999/x.png",
        "https://example.com:port/x.png",
        "https://" + "a" * 64 + ".com/x.png",
        "https://user@/x.png",
        "x" * 5000,
        "/tmp/\udcff",
    ],
)
async def test_odd_attachment_strings_are_clear_refusals(
    settings: Any, fake: FakePoe, ref: str
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi", "attachments": [ref]}
        )
    text = result.content[0].text
    assert result.is_error and text.startswith("invalid_request_error (400):"), text
    assert fake.chat_requests() == []
