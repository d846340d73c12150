"""Hosted mode (POE_MCP_AUTH=tokens): one server, many users, each with their own Poe key and data."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from conftest import env_for
from fakepoe import PNG, FakePoe, Reply
from servers import POE_MCP, http_replica, redis_server
from test_http import HEADERS, INIT, connect_http

pytestmark = pytest.mark.anyio

KEY_A = "poe-key-of-ALICE-0a1b2c3d4e"
KEY_B = "poe-key-of-BOB-9f8e7d6c5b4a"
FERNET = "hYz0m2bT0mWqS3f0i3c1cE9m3bXy7k1qZlH0mPq8s2Q="


def hosted_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "POE_MCP_AUTH": "tokens",
        "POE_MCP_TOKENS_FILE": str(tmp_path / "tokens.json"),
        "POE_MCP_SECRET_KEY": FERNET,
        **extra,
    }


def users(
    fake: FakePoe, tmp_path: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [POE_MCP, "users", *args],
        env=env_for(fake, tmp_path, **hosted_env(tmp_path)),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )


def add_user(fake: FakePoe, tmp_path: Path, name: str, key: str) -> str:
    fake.accounts[key] = 100 if name == "alice" else 200
    done = users(fake, tmp_path, "add", name, "--poe-api-key-stdin", stdin=key + "\n")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert len(token) >= 32 and key not in done.stdout + done.stderr
    return token


@pytest.fixture
def tokens(fake: FakePoe, tmp_path: Path) -> dict[str, str]:
    return {
        "alice": add_user(fake, tmp_path, "alice", KEY_A),
        "bob": add_user(fake, tmp_path, "bob", KEY_B),
    }


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        if url is None:
            pytest.skip("redis-server is not installed; replica tests need a real Redis")
        yield url


def ask(prompt: str, **extra: object) -> dict[str, object]:
    return {"bot": "gpt-4-turbo", "prompt": prompt, **extra}


async def check_isolation(fake: FakePoe, url_a: str, url_b: str, tokens: dict[str, str]) -> None:
    """Alice works on replica A, Bob on replica B (which may be the same server)."""
    fake.enqueue(Reply(text="Echo: hi"), Reply(text=fake.cdn_url("alice.png", PNG, "image/png")))
    async with connect_http(url_a, tokens["alice"]) as alice:
        first = await alice.call_tool("ask_poe", ask("alice's secret plan"))
        image = await alice.call_tool("generate_image", {"prompt": "alice's picture"})
        uri = image.structured_content["files"][0]["uri"]
        mine = await alice.read_resource(uri)
        fake.video_steps = 1000
        video = await alice.call_tool("generate_video", {"prompt": "a comet", "max_wait": 0})
        alice_usage = await alice.call_tool("get_usage", {})
    session = first.structured_content["session_id"]
    job = video.structured_content["job_id"]
    assert base64.b64decode(mine.contents[0].blob) == PNG
    async with connect_http(url_b, tokens["bob"]) as bob:
        listed = await bob.call_tool("list_sessions", {})
        cont = await bob.call_tool("ask_poe", ask("and now?", session_id=session))
        cleared = await bob.call_tool("clear_session", {"session_id": session})
        fake.video_steps = 0
        stolen_job = await bob.call_tool("generate_video", {"job_id": job})
        with pytest.raises(Exception) as read:
            await bob.read_resource(uri)
        await bob.call_tool("ask_poe", ask("bob's own question"))
        bob_usage = await bob.call_tool("get_usage", {})
        generations = await bob.read_resource("poe-mcp://generations")
    assert listed.structured_content["sessions"] == []
    assert cont.is_error and "not_found_error" in cont.content[0].text
    assert cleared.is_error or not cleared.structured_content.get("cleared", False)
    if cleared.is_error:
        assert "not_found_error" in cleared.content[0].text
    assert stolen_job.is_error and "not_found_error" in stolen_job.content[0].text
    assert "no media file" in str(read.value).lower() and getattr(read.value, "code", 0) == -32602
    assert job not in generations.contents[0].text
    a, b = alice_usage.structured_content, bob_usage.structured_content
    assert a["current_point_balance"] == 100 and b["current_point_balance"] == 200
    assert a["server_totals"]["calls"] == 2, "her question and her image"
    assert b["server_totals"]["calls"] == 1, "only his own question"
    assert "alice" not in json.dumps(b)
    async with connect_http(url_a, tokens["alice"]) as alice:
        still = await alice.call_tool("list_sessions", {})
    assert [s["id"] for s in still.structured_content["sessions"]] == [session], (
        "Bob cleared nothing"
    )
    # Each user's calls went to Poe with their own key: the fake answers each as its own account.
    chat_keys = fake.keys_used()
    assert chat_keys[0] == KEY_A and chat_keys[-1] == KEY_B
    assert fake.keys_used("/usage/current_balance") == [KEY_A, KEY_B]


async def test_tokens_mode_two_users_are_isolated(
    fake: FakePoe, tmp_path: Path, tokens: dict[str, str]
) -> None:
    with http_replica(fake, tmp_path, **hosted_env(tmp_path)) as url:
        await check_isolation(fake, url, url, tokens)


async def test_tokens_mode_isolated_across_two_replicas_on_redis(
    fake: FakePoe, tmp_path: Path, tokens: dict[str, str], redis_url: str
) -> None:
    env = hosted_env(tmp_path, POE_MCP_STORE=redis_url)
    with (
        http_replica(fake, tmp_path, "a", **env) as a,
        http_replica(fake, tmp_path, "b", **env) as b,
    ):
        await check_isolation(fake, a, b, tokens)
        # And Alice's own session follows her from A to B.
        async with connect_http(a, tokens["alice"]) as alice:
            listed = await alice.call_tool("list_sessions", {})
        async with connect_http(b, tokens["alice"]) as alice:
            again = await alice.call_tool(
                "ask_poe", ask("more", session_id=listed.structured_content["sessions"][0]["id"])
            )
    assert not again.is_error
    assert fake.chat_requests()[-1]["json"]["messages"][0]["content"] == "alice's secret plan"


async def test_one_users_request_budget_does_not_slow_another(
    fake: FakePoe, tmp_path: Path, tokens: dict[str, str], redis_url: str
) -> None:
    env = hosted_env(tmp_path, POE_MCP_STORE=redis_url, POE_MCP_RPM="2")
    with (
        http_replica(fake, tmp_path, "a", **env) as a,
        http_replica(fake, tmp_path, "b", **env) as b,
    ):
        async with connect_http(a, tokens["alice"]) as alice, connect_http(b, tokens["bob"]) as bob:
            await alice.call_tool("ask_poe", ask("1"))
            await alice.call_tool("ask_poe", ask("2"))
            started = time.monotonic()
            await bob.call_tool("ask_poe", ask("bob"))
            bob_waited = time.monotonic() - started
            started = time.monotonic()
            with anyio.move_on_after(3):
                await alice.call_tool("ask_poe", ask("3"))
            alice_waited = time.monotonic() - started
    assert bob_waited < 2, "Alice's key used its window; Bob's key has its own"
    assert alice_waited >= 2.9, "Alice's third call waits for her key's window, on either replica"


async def test_tokens_are_checked_and_revocation_works_on_a_running_server(
    fake: FakePoe, tmp_path: Path, tokens: dict[str, str]
) -> None:
    with http_replica(fake, tmp_path, **hosted_env(tmp_path)) as url:
        missing = httpx2.post(url, json=INIT, headers=HEADERS)
        wrong = httpx2.post(url, json=INIT, headers={**HEADERS, "authorization": "Bearer nope"})
        right = httpx2.post(
            url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {tokens['bob']}"}
        )
        revoked = users(fake, tmp_path, "revoke", "bob")
        after = httpx2.post(
            url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {tokens['bob']}"}
        )
        alice = httpx2.post(
            url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {tokens['alice']}"}
        )
        listing = users(fake, tmp_path, "list", "--json")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert right.status_code == 200
    assert revoked.returncode == 0 and after.status_code == 401 and alice.status_code == 200
    assert json.loads(listing.stdout) == [{"name": "alice", "own_poe_key": True}]
    stored = (tmp_path / "tokens.json").read_text()
    assert KEY_B not in stored and KEY_A not in stored and tokens["alice"] not in stored


def serve_fails(fake: FakePoe, tmp_path: Path, **env: str) -> str:
    done = subprocess.run(
        [POE_MCP, "serve", "--transport", "http", "--port", "1"],
        env=env_for(fake, tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    return done.stderr


async def test_hosted_mode_refuses_to_start_when_unsafe(
    fake: FakePoe, tmp_path: Path, tokens: dict[str, str]
) -> None:
    no_secret = serve_fails(fake, tmp_path, **hosted_env(tmp_path, POE_MCP_SECRET_KEY=""))
    assert "POE_MCP_SECRET_KEY" in no_secret and "poe-mcp users secret-key" in no_secret
    other = "n0t-the-same-KEY-x7Qm2bT0mWqS3f0i3c1cE9m3bX="
    wrong_secret = serve_fails(fake, tmp_path, **hosted_env(tmp_path, POE_MCP_SECRET_KEY=other))
    assert "POE_MCP_SECRET_KEY" in wrong_secret
    missing = serve_fails(
        fake, tmp_path, **hosted_env(tmp_path, POE_MCP_TOKENS_FILE=str(tmp_path / "none.json"))
    )
    assert "poe-mcp users add" in missing
    os.chmod(tmp_path / "tokens.json", 0o644)
    readable = serve_fails(fake, tmp_path, **hosted_env(tmp_path))
    assert "chmod 600" in readable
    for text in (no_secret, wrong_secret, missing, readable):
        assert KEY_A not in text and FERNET not in text and "Traceback" not in text


def redis_rows(url: str) -> str:
    """Every key and value in the Redis, as text."""
    import redis

    db = redis.Redis.from_url(url, decode_responses=True)
    out = []
    for key in db.scan_iter("*"):
        kind = db.type(key)
        value = (
            db.get(key)
            if kind == "string"
            else db.hgetall(key)
            if kind == "hash"
            else db.lrange(key, 0, -1)
            if kind == "list"
            else db.zrange(key, 0, -1)
            if kind == "zset"
            else db.smembers(key)
        )
        out.append(f"{key} {value}")
    db.close()
    return "\n".join(out)


def every_file(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


async def test_no_poe_key_or_token_appears_in_clear_anywhere(
    fake: FakePoe, tmp_path: Path, tokens: dict[str, str], redis_url: str
) -> None:
    # Alice pastes her own key into a prompt; the echoing model sends it straight back.
    seen: list[str] = []
    for store in (str(tmp_path / "store.db"), redis_url):
        env = hosted_env(tmp_path, POE_MCP_STORE=store, POE_MCP_LOG_LEVEL="DEBUG")
        with http_replica(fake, tmp_path, "a" if store == redis_url else "s", **env) as url:
            async with connect_http(url, tokens["alice"]) as alice:
                echoed = await alice.call_tool("ask_poe", ask(f"my key is {KEY_A}"))
                info = await alice.call_tool("get_server_info", {})
                usage = await alice.call_tool("get_usage", {})
                listed = await alice.call_tool("list_sessions", {})
            async with connect_http(url, tokens["bob"]) as bob:
                failed = await bob.call_tool("ask_poe", ask("x", session_id="nope"))
            seen += [
                json.dumps(r.model_dump(mode="json")) for r in (echoed, info, usage, listed, failed)
            ]
    assert "[redacted]" in seen[0]
    secrets = [KEY_A, KEY_B, tokens["alice"], tokens["bob"], FERNET]
    files = every_file(tmp_path)  # stores, their -wal files, the tokens file, both logs, media
    assert "Echo: my key is" in files or "Echo: my key is" in redis_rows(redis_url)
    for secret in secrets:
        assert secret not in files, "a file holds a key or token in clear"
        assert secret not in redis_rows(redis_url)
        assert not any(secret in text for text in seen)
    assert fake.keys_used()[0] == KEY_A, "her key was still what Poe got"


async def test_hosted_files_are_private(
    fake: FakePoe, tmp_path: Path, tokens: dict[str, str]
) -> None:
    with http_replica(fake, tmp_path, **hosted_env(tmp_path)) as url:
        async with connect_http(url, tokens["alice"]) as alice:
            await alice.call_tool("ask_poe", ask("hi"))
    for name in ("tokens.json", "store.db"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, f"{name} is readable by others"


async def test_poe_clients_of_users_gone_quiet_are_closed(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public deployment serves many people: only the most recent users' views are kept, and the
    Poe client of one no longer kept is closed once no call of theirs can still be running."""
    from dataclasses import replace

    from poe_mcp.hosted import tenancy
    from poe_mcp.hosted.users import User
    from poe_mcp.services.shared import open_services

    monkeypatch.setattr(tenancy, "KEPT_VIEWS", 1)
    hosted = replace(settings, auth="tokens", secret_key=FERNET)
    async with open_services(hosted, "http") as services:
        assert services.tenants is not None
        a = services.tenants.view(User("t.a", "a", KEY_A))
        client_a = a.poe
        assert not client_a.http.is_closed  # its pool made, as a call would
        services.tenants.view(User("t.b", "b", KEY_B))  # a is no longer kept: retiring
        assert services.tenants._retiring and not client_a.http.is_closed
        later = time.monotonic() + hosted.timeout + 61
        monkeypatch.setattr(tenancy, "time", types.SimpleNamespace(monotonic=lambda: later))
        again = services.tenants.view(User("t.a", "a", KEY_A))
        await anyio.sleep(0.05)
        retiring = [c for _, c in services.tenants._retiring]  # now b's, whose view just went
        assert client_a not in retiring and client_a.http.is_closed, "closed after the grace"
        assert again.poe is not client_a, "a returning user gets a fresh client"


async def test_a_users_task_runs_on_their_key_and_nobody_else_finds_it(
    fake: FakePoe, tmp_path: Path, tokens: dict[str, str]
) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError
    from test_tasks import CreateTask, PollingTasks, get_task

    class Recording(PollingTasks):
        created: list[str] = []

        async def resolve(self, created: CreateTask, ctx: Any) -> Any:
            self.created.append(created.task_id)
            return await super().resolve(created, ctx)

    def client(url: str, token: str, *extensions: Any) -> Client:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return Client(streamable_http_client(url, http_client=http), extensions=list(extensions))

    fake.video_steps = 1
    tasks = Recording()
    with http_replica(fake, tmp_path, **hosted_env(tmp_path)) as url:
        async with client(url, tokens["alice"], tasks) as alice:
            done = await alice.call_tool("generate_video", {"prompt": "a wave"})
        async with client(url, tokens["bob"], PollingTasks()) as bob:
            with pytest.raises(MCPError) as unknown:
                await get_task(bob.session, tasks.created[0])
    assert done.structured_content["status"] == "completed"
    assert fake.keys_used("/v1/videos") == [KEY_A], "the background task ran as Alice"
    assert "Unknown task" in str(unknown.value)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_each_persons_day_budget_is_their_own(
    fake: FakePoe,
    tmp_path: Path,
    tokens: dict[str, str],
    store: str,
    request: pytest.FixtureRequest,
) -> None:
    """POE_MCP_MAX_COST_PER_DAY in hosted mode: Alice spending hers leaves Bob's untouched."""
    extra = {"POE_MCP_STORE": request.getfixturevalue("redis_url")} if store == "redis" else {}
    env = hosted_env(tmp_path, POE_MCP_MAX_COST_PER_DAY="0.002", **extra)
    flat = {"bot": "test-flat-fee", "prompt": "hi"}  # $0.002 a request: one call a day each
    with (
        http_replica(fake, tmp_path, "a", **env) as a,
        http_replica(fake, tmp_path, "b", **env) as b,
    ):
        async with connect_http(a, tokens["alice"]) as alice, connect_http(b, tokens["bob"]) as bob:
            first = await alice.call_tool("ask_poe", flat)
            second = await alice.call_tool("ask_poe", flat)
            bobs = await bob.call_tool("ask_poe", flat)
    assert not first.is_error and not bobs.is_error
    assert second.is_error and "budget_exceeded_error" in second.content[0].text
    assert len(fake.chat_requests()) == 2
