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


# IPv6 spellings of a private IPv4 address: each must be refused as the IPv4 inside would be.
PRIVATE_IN_IPV6 = {
    "IPv4-mapped loopback": "::ffff:127.0.0.1",
    "IPv4-mapped private": "::ffff:10.0.0.8",
    "IPv4-compatible loopback": "::127.0.0.1",
    "IPv4-compatible metadata": "::169.254.169.254",
    "6to4 loopback": "2002:7f00:1::1",
    "6to4 private": "2002:c0a8:101::1",  # 192.168.1.1
    "6to4 metadata": "2002:a9fe:a9fe::",
    "NAT64 loopback": "64:ff9b::127.0.0.1",
    "NAT64 private": "64:ff9b::10.0.0.8",
    "NAT64 metadata": "64:ff9b::a9fe:a9fe",
    "local-use NAT64": "64:ff9b:1::808:808",  # RFC 8215: the operator's own network, whatever inside
    "site-local": "fec0::1",
    "site-local, top of the range": "feff::1",
}


@pytest.mark.parametrize("address", PRIVATE_IN_IPV6.values(), ids=PRIVATE_IN_IPV6.keys())
async def test_ipv6_forms_of_a_private_address_are_refused(
    settings: Any, fake: FakePoe, address: str
) -> None:
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe",
            {"bot": "gpt-4-turbo", "prompt": "read", "attachments": [f"https://[{address}]/x.png"]},
        )
    text = result.content[0].text
    assert result.is_error and text.startswith("invalid_request_error (400):"), text
    assert "non-public address" in text
    assert [r for r in fake.requests if r["path"] != "/v1/models"] == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("::ffff:8.8.8.8", True),  # the same host as 8.8.8.8
        ("2002:808:808::1", True),  # 6to4 to a public host
        ("64:ff9b::8.8.8.8", True),  # how a DNS64 network reaches a public IPv4 host
        ("2606:4700:4700::1111", True),  # plain public IPv6
        ("8.8.8.8", True),
        ("::8.8.8.8", False),  # IPv4-compatible: deprecated, never in a real DNS answer
        ("64:ff9b:1::8.8.8.8", False),
        ("fec0::8.8.8.8", False),
    ],
)
async def test_an_embedded_public_ipv4_decides_where_the_form_is_in_use(
    address: str, public: bool
) -> None:
    from poe_mcp.attachments import AttachmentError, check_public_host

    if public:
        await check_public_host(address)
    else:
        with pytest.raises(AttachmentError, match="non-public address"):
            await check_public_host(address)


async def test_a_name_resolving_to_a_nat64_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a DNS answer maps to is checked the same way as a literal in the URL."""
    import asyncio
    import socket

    from poe_mcp.attachments import AttachmentError, check_public_host

    async def answer(self: Any, host: str, port: int, **kw: Any) -> list[Any]:
        v6 = (socket.AF_INET6, socket.SOCK_STREAM, 6, "")
        return [
            (*v6, ("2606:4700:4700::1111", port, 0, 0)),
            (*v6, ("64:ff9b::a9fe:a9fe", port, 0, 0)),  # 169.254.169.254 through NAT64
        ]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", answer)
    with pytest.raises(AttachmentError, match=r"non-public address \(64:ff9b::a9fe:a9fe\)"):
        await check_public_host("cdn.example")


async def test_a_url_attachment_that_drips_stops_at_one_deadline_for_the_whole_fetch(
    fake: FakePoe, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CDN sending a block every 0.1 s never trips a per-read timeout; the fetch as a whole must end."""
    import httpx2

    from poe_mcp import attachments

    async def public(host: str) -> None:  # the fake CDN is on loopback, which is otherwise refused
        return None

    monkeypatch.setattr(attachments, "check_public_host", public)
    monkeypatch.setattr(attachments, "URL_TIMEOUT", 1.0)
    fake.block_delay = 0.1
    url = fake.cdn_url("drip.bin", 100 * 65536, "application/octet-stream")  # 10 s of drip
    rules = attachments.AttachmentRules((workdir,), 50_000_000)
    start = time.monotonic()
    async with httpx2.AsyncClient() as http:
        with pytest.raises(attachments.AttachmentError) as refused:
            await attachments._fetch_url(url, rules, http)
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 3, elapsed
    assert refused.value.type == "invalid_request_error"
    assert "took longer than 1 s" in str(refused.value), str(refused.value)
    assert [r["path"] for r in fake.requests] == ["/cdn/drip.bin"]
