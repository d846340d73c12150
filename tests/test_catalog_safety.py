"""A catalog that cannot hurt: malformed entries skipped, an unusable list replaced by the last good copy,
and parameter schemas that can neither fetch, read nor stall the server."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import connect
from fakepoe import FakePoe

pytestmark = pytest.mark.anyio


def model(ident: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "model",
        "owned_by": "Test",
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "parameters": [{"name": "tag", "schema": schema}],
    }


MALFORMED: list[Any] = [
    {"id": "broken-architecture", "architecture": "not-an-object"},
    {"id": "broken-window", "context_window": ["no"], "supported_features": 7},
    {"id": "broken-parameters", "parameters": [{"name": "x", "schema": "not-a-schema"}]},
    {"id": {"nested": "id"}},
    "just a string",
    None,
]


async def test_malformed_entries_are_skipped_logged_once_and_the_rest_served(
    settings: Any, fake: FakePoe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    well_formed = len(fake.models)
    fake.models = fake.models + MALFORMED
    async with connect(settings) as client:
        models = await client.call_tool("list_models", {"query": "broken", "limit": 10})
        everything = await client.call_tool("list_models", {"limit": 500})
        answer = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
    assert not models.is_error and not everything.is_error and not answer.is_error
    assert everything.structured_content["total"] == well_formed
    skipped = [r for r in caplog.records if "broken-architecture" in r.getMessage()]
    assert len(skipped) == 1, "one line for the whole catalog, not one per call"
    assert "broken-window" in skipped[0].getMessage()


async def test_an_unusable_list_serves_the_last_good_copy_with_a_note(
    settings: Any, fake: FakePoe
) -> None:
    async with connect(settings) as client:
        assert not (await client.call_tool("list_models", {"limit": 1})).is_error
    cache = settings.cache_dir / "models.json"
    cache.write_text(json.dumps({**json.loads(cache.read_text()), "fetched_at": 0}))
    fake.models = MALFORMED
    async with connect(settings) as client:
        listed = await client.call_tool("list_models", {"query": "grok-4", "limit": 3})
        info = await client.call_tool("get_model_info", {"model": "grok-4"})
        answer = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
    assert not listed.is_error and "last good copy" in listed.content[0].text
    assert not info.is_error and info.structured_content["id"] == "grok-4"
    assert not answer.is_error


@pytest.mark.parametrize("target", ["http", "file"])
async def test_a_ref_in_a_parameter_schema_fetches_and_reads_nothing(
    settings: Any, fake: FakePoe, tmp_path: Path, target: str
) -> None:
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps({"type": "integer"}))
    url = (
        fake.cdn_url("schema.json", json.dumps({"type": "integer"}).encode(), "application/json")
        if target == "http"
        else schema_file.as_uri()
    )
    fake.models = fake.models + [model("test-ref", {"$ref": url})]
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "test-ref", "prompt": "hi", "parameters": {"tag": "not a number"}}
        )
    assert not result.is_error, result.content[0].text  # unchecked here: Poe checks it itself
    assert not [r for r in fake.requests if r["path"].startswith("/cdn/")]
    assert fake.chat_requests()[-1]["json"]["tag"] == "not a number"


async def test_a_catastrophic_regex_does_not_stall_the_server(settings: Any, fake: FakePoe) -> None:
    fake.models = fake.models + [model("test-regex", {"type": "string", "pattern": "^(a+)+$"})]
    finished: dict[str, float] = {}
    async with connect(settings) as client:
        assert not (await client.call_tool("list_models", {"limit": 1})).is_error
        start = time.monotonic()

        async def call(name: str, tool: str, arguments: dict[str, Any]) -> None:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, result.content[0].text
            finished[name] = time.monotonic() - start

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(
                    call,
                    "regex",
                    "ask_poe",
                    {"bot": "test-regex", "prompt": "hi", "parameters": {"tag": "a" * 40 + "!"}},
                )
                group.start_soon(call, "parallel", "list_models", {"query": "grok", "limit": 2})
    assert finished["parallel"] < 2 and finished["regex"] < 5, finished


async def test_a_safe_pattern_is_still_checked(settings: Any, fake: FakePoe) -> None:
    fake.models = fake.models + [model("test-safe", {"type": "string", "pattern": "^[a-z]+$"})]
    async with connect(settings) as client:
        result = await client.call_tool(
            "ask_poe", {"bot": "test-safe", "prompt": "hi", "parameters": {"tag": "NOT-LOWER"}}
        )
    assert result.is_error and "does not match" in result.content[0].text
    assert fake.chat_requests() == []


async def test_one_catalog_holding_every_trap_still_serves_and_stays_responsive(
    settings: Any, fake: FakePoe
) -> None:
    """A malformed entry, a `$ref` to a local URL and a catastrophic regex in the same `/v1/models`:
    chat and list_models work, the local URL sees no request, and a parallel call answers at once."""
    local = fake.cdn_url(
        "schema.json", json.dumps({"type": "integer"}).encode(), "application/json"
    )
    well_formed = len(fake.models)
    fake.models = fake.models + [
        MALFORMED[0],
        model("test-ref", {"$ref": local}),
        model("test-regex", {"type": "string", "pattern": "^(a+)+$"}),
    ]
    finished: dict[str, float] = {}
    async with connect(settings) as client:
        listed = await client.call_tool("list_models", {"limit": 500})
        referred = await client.call_tool(
            "ask_poe", {"bot": "test-ref", "prompt": "hi", "parameters": {"tag": 3}}
        )
        start = time.monotonic()

        async def call(name: str, tool: str, arguments: dict[str, Any]) -> None:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, result.content[0].text
            finished[name] = time.monotonic() - start

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(
                    call,
                    "regex",
                    "ask_poe",
                    {"bot": "test-regex", "prompt": "hi", "parameters": {"tag": "a" * 40 + "!"}},
                )
                group.start_soon(call, "parallel", "list_models", {"query": "grok", "limit": 2})
                group.start_soon(call, "chat", "ask_poe", {"bot": "gpt-4-turbo", "prompt": "hi"})
    assert not listed.is_error and listed.structured_content["total"] == well_formed + 2
    assert not referred.is_error, referred.content[0].text
    assert not [r for r in fake.requests if r["path"].startswith("/cdn/")], "the $ref fetched"
    assert finished["parallel"] < 2 and finished["chat"] < 2 and finished["regex"] < 5, finished
