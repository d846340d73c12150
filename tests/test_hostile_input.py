"""Hostile input: whatever a client sends, every tool answers with a result (an error when it must),
never a crash, a hang or a stack trace; the server then serves the next call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import connect
from fakepoe import FakePoe
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
TOOLS = [
    "ask_poe",
    "ask_with_attachment",
    "ask_poe_with_tools",
    "chat_completion",
    "list_sessions",
    "clear_session",
    "generate_image",
    "generate_audio",
    "list_models",
    "list_available_models",
    "get_model_info",
    "get_usage",
    "get_server_info",
]
TRACEBACK_MARKERS = ("Traceback", 'File "/', "Error executing tool")


def assert_clean(result: Any) -> None:
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert not any(marker in text for marker in TRACEBACK_MARKERS), text[:500]
    if result.is_error:
        assert text.split(" ", 1)[0].rstrip(":") in {
            "invalid_request_error",
            "not_found_error",
            "request_too_large",
            "authentication_error",
            "upstream_error",
            "connection_error",
            "no_media_error",  # a media tool whose (echoing) bot answered without media
        }, text[:300]


def run_calls(settings: Any, calls: list[tuple[str, dict[str, Any]]]) -> None:
    async def go() -> None:
        async with connect(settings) as client:
            for name, arguments in calls:
                with anyio.fail_after(30):
                    assert_clean(await client.call_tool(name, arguments))
            assert not (await client.call_tool("list_models", {"limit": 1})).is_error

    anyio.run(go)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tool=st.sampled_from(TOOLS),
    arguments=st.dictionaries(
        st.sampled_from(
            [
                "bot",
                "prompt",
                "model",
                "messages",
                "tools",
                "parameters",
                "session_id",
                "attachments",
                "limit",
                "temperature",
                "tool_results",
                "stop",
                "attachment_path",
                "query",
            ]
        ),
        JSON,
        max_size=5,
    ),
)
def test_random_arguments_never_crash_a_tool(
    settings: Any, fake: FakePoe, tool: str, arguments: dict[str, Any]
) -> None:
    run_calls(settings, [(tool, arguments)])


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": [value]}  # two levels each; the SDK client itself refuses past ~200
    return value


@pytest.mark.parametrize(
    "call",
    [
        ("ask_poe", {"prompt": "x" * 10_000_000, "bot": "gpt-4-turbo"}),
        ("ask_poe", {"prompt": "nul\x00byte", "bot": "gpt-4-turbo", "session_id": "nul\x00id"}),
        ("ask_poe", {"prompt": "x", "bot": "gemini-2.5-pro", "parameters": deep(60)}),
        (
            "ask_poe_with_tools",
            {"prompt": "x", "bot": "grok-4", "tools": [{"name": "f", "parameters": deep(60)}]},
        ),
        (
            "ask_poe_with_tools",
            {"prompt": "x", "bot": "grok-4", "tools": [{"type": "function"}, 7, "tool"]},
        ),
        (
            "ask_poe",
            {
                "prompt": "x",
                "attachments": [
                    "\x00/etc/passwd",
                    "~/../../etc/shadow",
                    "file:///etc/passwd",
                    "//server/share",
                    "",
                ],
            },
        ),
        ("get_model_info", {"model": "../../" + "a" * 5000}),
        ("clear_session", {"session_id": "'; DROP TABLE sessions; --"}),
        ("list_sessions", {"limit": 10**12}),
        ("generate_image", {"prompt": "x", "model": "\u202egnp.exe"}),
    ],
    ids=[
        "10 MB prompt",
        "NUL bytes",
        "deep parameters",
        "deep tool schema",
        "junk tools",
        "path tricks",
        "long name",
        "SQL",
        "huge limit",
        "bidi model",
    ],
)
def test_extreme_inputs(settings: Any, fake: FakePoe, call: tuple[str, dict[str, Any]]) -> None:
    run_calls(settings, [call])


def test_invalid_utf8_files_are_sent_as_files(settings: Any, fake: FakePoe, workdir: Path) -> None:
    (workdir / "bad.txt").write_bytes(b"\xff\xfe\x00broken \xc3\x28 utf-8")
    run_calls(
        settings,
        [
            (
                "ask_poe",
                {"prompt": "read", "bot": "gpt-4-turbo", "attachments": [str(workdir / "bad.txt")]},
            )
        ],
    )
    part = fake.chat_requests()[0]["json"]["messages"][-1]["content"][1]
    assert part["type"] == "file" and part["file"]["filename"] == "bad.txt"


@pytest.mark.parametrize(
    "name",
    ["../secret.txt", "..%2Fsecret.txt", "%2e%2e/secret", "/etc/passwd", "a/../../b", ".", "\x00"],
)
def test_resource_uri_tricks_are_refused(settings: Any, fake: FakePoe, name: str) -> None:
    from mcp.shared.exceptions import MCPError

    settings.output_dir.mkdir(parents=True, exist_ok=True)
    (settings.output_dir.parent / "secret.txt").write_text("TOP-SECRET-CONTENT")

    async def go() -> None:
        async with connect(settings) as client:
            with pytest.raises(MCPError) as refused:
                await client.read_resource(f"poe-mcp://media/{name}")
            assert "TOP-SECRET-CONTENT" not in json.dumps(str(refused.value))

    anyio.run(go)


URL_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(
    list("[]:@%/\t\n \\?#.") + ["\udcff", "\x00"]
)
ATTACHMENT_STRINGS = st.one_of(
    st.text(URL_CHARS, max_size=40),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(["https://", "https://[", "data:", "data:image/png;base64,", "/", "~/"]),
        st.text(URL_CHARS, max_size=40),
    ),
)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ref=ATTACHMENT_STRINGS)
def test_any_attachment_string_is_read_or_refused_with_a_clear_error(
    workdir: Path, ref: str
) -> None:
    """Whatever the string, loading it gives a part or a PoeError (so a clean isError), nothing else."""
    import httpx2

    from poe_mcp.attachments import AttachmentRules, load_attachment
    from poe_mcp.poe.errors import PoeError

    rules = AttachmentRules((workdir,), 1_000_000)

    async def go() -> None:
        async with httpx2.AsyncClient() as http:
            try:
                with anyio.fail_after(10):
                    await load_attachment(ref, rules, http)
            except PoeError as error:
                assert error.type in {"invalid_request_error", "request_too_large"}, error

    anyio.run(go)
