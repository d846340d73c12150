"""oauth mode: the SDK's own client-side OAuth signs in through poe-mcp and Sign in with Poe (the fake),
then calls tools with that person's own Poe key; and the refusals the MCP authorization spec asks for."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2
import pytest
from fakepoe import FakePoe
from mcp import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from servers import free_port, http_replica
from test_hosted import FERNET, every_file
from test_http import HEADERS, INIT

pytestmark = pytest.mark.anyio

POE_CLIENT = "poe-mcp-test-client"
REDIRECT = (
    "http://localhost:3030/callback"  # the MCP client's own; never reached (the test reads it)
)


@contextmanager
def oauth_server(
    fake: FakePoe, tmp_path: Path, name: str = "a", port: int | None = None, **extra: str
) -> Iterator[str]:
    port = port or free_port()
    public = extra.get("POE_MCP_PUBLIC_URL", f"http://127.0.0.1:{port}")
    fake.oauth_clients.setdefault(POE_CLIENT, []).append(f"{public}/oauth/poe/callback")
    extra.pop("POE_MCP_PUBLIC_URL", None)
    origin = fake.base_url.removesuffix("/v1")
    env = {
        "POE_MCP_AUTH": "oauth",
        "POE_MCP_SECRET_KEY": FERNET,
        "POE_MCP_PUBLIC_URL": public,
        "POE_OAUTH_CLIENT_ID": POE_CLIENT,
        "POE_OAUTH_AUTHORIZE_URL": f"{origin}/oauth/authorize",
        "POE_OAUTH_TOKEN_URL": f"{origin}/token",
        "POE_API_KEY": "",  # no server key: every call is some signed-in person's
        **extra,
    }
    with http_replica(fake, tmp_path, name, port=port, **env) as url:
        yield url


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def browse(
    fake: FakePoe, url: str, decision: str = "allow", poe_fails: bool = False
) -> dict[str, str]:
    """The person's browser: our /authorize → Poe's consent page → Allow → our callback → the client's
    redirect URI, whose query is returned (code and state, or error)."""
    async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
        to_poe = await browser.get(url)
        assert to_poe.status_code == 302, to_poe.text
        consent = await browser.get(to_poe.headers["location"])
        assert consent.status_code == 200, consent.text
        form = {
            html.unescape(k): html.unescape(v)
            for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', consent.text)
        }
        back = await browser.post(
            fake.base_url.removesuffix("/v1") + "/oauth/authorize",
            data={**form, "decision": decision},
        )
        assert back.status_code == 302
        if poe_fails:  # Poe goes down between its consent page and our token exchange
            fake.outage = (503, "server_error")
        to_client = await browser.get(back.headers["location"])  # our callback
        fake.outage = None
        assert to_client.status_code == 302, to_client.text
        location = to_client.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def sdk_client(
    fake: FakePoe,
    url: str,
    storage: Memory | None = None,
    client_metadata_url: str | None = None,
    seen: list[str] | None = None,
) -> tuple[Client, Memory]:
    """The SDK's client with its OAuth; `client_metadata_url` names it by a metadata document (CIMD)
    where the server supports that, and `seen` collects the path of every request the client sends."""
    storage = storage or Memory()
    answer: dict[str, str] = {}

    async def redirect_handler(authorization_url: str) -> None:
        answer.update(await browse(fake, authorization_url))

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(
            code=answer["code"], state=answer.get("state"), iss=answer.get("iss")
        )

    auth = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[REDIRECT],  # type: ignore[list-item]
            client_name="poe-mcp tests",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=client_metadata_url,
    )

    async def note(request: httpx2.Request) -> None:
        if seen is not None:
            seen.append(request.url.path)

    http = httpx2.AsyncClient(auth=auth, timeout=30, event_hooks={"request": [note]})
    client = Client(streamable_http_client(url, http_client=http))
    return client, storage


async def test_the_sdk_client_signs_in_with_poe_and_asks_with_its_own_key(
    fake: FakePoe, tmp_path: Path
) -> None:
    with oauth_server(fake, tmp_path) as url:
        unauthenticated = httpx2.post(url, json=INIT, headers=HEADERS)
        client, storage = sdk_client(fake, url)
        async with client:
            answer = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hello"})
            usage = await client.call_tool("get_usage", {})
        fake.signed_in = "bob"
        bob, _ = sdk_client(fake, url)
        async with bob:
            listed = await bob.call_tool("list_sessions", {})
            await bob.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "bob here"})
        # A second connection of Alice's reuses her tokens: no new sign-in.
        again, _ = sdk_client(fake, url, storage)
        async with again:
            mine = await again.call_tool("list_sessions", {})
    challenge = unauthenticated.headers["www-authenticate"]
    assert unauthenticated.status_code == 401
    assert (
        'resource_metadata="' + url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
        in challenge
    )
    assert not answer.is_error and answer.content[0].text == "Echo: hello"
    alice_key, bob_key = fake.oauth_keys["alice"], fake.oauth_keys["bob"]
    assert fake.keys_used() == [alice_key, bob_key], "each person's calls used their own Poe key"
    assert usage.structured_content["current_point_balance"] == fake.accounts[alice_key]
    assert listed.structured_content["sessions"] == [], "Bob sees none of Alice's sessions"
    assert [s["preview"] for s in mine.structured_content["sessions"]] == ["hello"]
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert len([r for r in fake.requests if r["path"] == "/token"]) == 2, "one sign-in each"
    files = every_file(tmp_path)
    for secret in (alice_key, bob_key, storage.tokens.access_token, storage.tokens.refresh_token):
        assert secret not in files, "no key or token in clear in the store, the logs or anywhere"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def register(base: str) -> str:
    done = httpx2.post(
        f"{base}/register",
        json={
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        },
    )
    assert done.status_code == 201, done.text
    return str(done.json()["client_id"])


def authorize_url(base: str, client_id: str, verifier: str, **extra: str) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "state": "st4te",
        "resource": f"{base}/mcp",
        **extra,
    }
    return f"{base}/authorize?{urlencode(query)}"


def token_request(base: str, client_id: str, code: str, verifier: str) -> httpx2.Response:
    return httpx2.post(
        f"{base}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": f"{base}/mcp",
        },
    )


def mcp_post(url: str, token: str) -> httpx2.Response:
    return httpx2.post(url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {token}"})


async def test_what_the_authorization_spec_refuses(fake: FakePoe, tmp_path: Path) -> None:
    with oauth_server(fake, tmp_path, "x") as url, oauth_server(fake, tmp_path, "y") as other:
        base = url.removesuffix("/mcp")
        metadata = httpx2.get(f"{base}/.well-known/oauth-authorization-server").json()
        resource = httpx2.get(f"{base}/.well-known/oauth-protected-resource/mcp").json()
        client_id = register(base)
        verifier = secrets.token_urlsafe(48)

        unregistered = httpx2.get(
            authorize_url(base, client_id, verifier, redirect_uri="http://evil.example/cb")
        )
        elsewhere = httpx2.get(
            authorize_url(base, client_id, verifier, resource="https://other.example/mcp")
        )
        grant = await browse(fake, authorize_url(base, client_id, verifier))
        wrong_verifier = token_request(base, client_id, grant["code"], "not-" + verifier)
        tokens = token_request(base, client_id, grant["code"], verifier)
        reused = token_request(base, client_id, grant["code"], verifier)
        access = tokens.json()["access_token"]
        works = mcp_post(url, access)
        on_other_server = mcp_post(other, access)

        refreshed = httpx2.post(
            f"{base}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens.json()["refresh_token"],
                "client_id": client_id,
            },
        )
        old_after_rotation = mcp_post(url, access)
        refresh_again = httpx2.post(
            f"{base}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens.json()["refresh_token"],
                "client_id": client_id,
            },
        )
        new = refreshed.json()["access_token"]
        before_revoke = mcp_post(url, new)
        # A public client revokes with no client_secret (RFC 7009).
        revoke = httpx2.post(f"{base}/revoke", data={"token": new, "client_id": client_id})
        revoked = mcp_post(url, new)

        # Expiry: a second sign-in, whose access token's hour is then over (the stored record says so).
        verifier2 = secrets.token_urlsafe(48)
        grant2 = await browse(fake, authorize_url(base, client_id, verifier2))
        second = token_request(base, client_id, grant2["code"], verifier2).json()["access_token"]
        db = sqlite3.connect(tmp_path / "store.oauth.db")
        key = hashlib.sha256(second.encode()).hexdigest()
        (value,) = db.execute("SELECT value FROM oauth_records WHERE key = ?", (key,)).fetchone()
        db.execute(
            "UPDATE oauth_records SET value = ? WHERE key = ?",
            (json.dumps({**json.loads(value), "expires_at": int(time.time()) - 1}), key),
        )
        db.commit()
        db.close()
        expired = mcp_post(url, second)

    assert metadata["issuer"] == base and "S256" in metadata["code_challenge_methods_supported"]
    assert metadata["registration_endpoint"] == f"{base}/register"
    assert metadata["revocation_endpoint"] == f"{base}/revoke"
    assert resource["resource"] == url and resource["authorization_servers"] == [base]

    assert unregistered.status_code == 400 and "redirect" in unregistered.text.lower()
    assert "location" not in unregistered.headers, "never redirected to an unregistered URI"
    assert elsewhere.status_code == 302
    assert parse_qs(urlparse(elsewhere.headers["location"]).query)["error"] == ["invalid_target"]

    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    assert tokens.status_code == 200 and tokens.json()["token_type"] == "Bearer"
    assert tokens.json()["expires_in"] <= 3600
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    assert works.status_code == 200
    for what, refused in {
        "another resource": on_other_server,
        "rotated out": old_after_rotation,
        "revoked": revoked,
        "expired": expired,
    }.items():
        assert refused.status_code == 401, what
        challenge = refused.headers["www-authenticate"]
        assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge
        assert "resource_metadata=" in challenge
    assert (
        refreshed.status_code == 200
        and refreshed.json()["refresh_token"] != tokens.json()["refresh_token"]
    )
    assert refresh_again.status_code == 400 and refresh_again.json()["error"] == "invalid_grant"
    assert before_revoke.status_code == 200 and revoke.status_code == 200


async def test_oauth_mode_refuses_to_start_without_what_it_needs(
    fake: FakePoe, tmp_path: Path
) -> None:
    from test_hosted import serve_fails

    base = {
        "POE_MCP_AUTH": "oauth",
        "POE_MCP_SECRET_KEY": FERNET,
        "POE_OAUTH_CLIENT_ID": POE_CLIENT,
    }
    no_url = serve_fails(fake, tmp_path, **base)
    no_client = serve_fails(
        fake,
        tmp_path,
        **{**base, "POE_OAUTH_CLIENT_ID": "", "POE_MCP_PUBLIC_URL": "https://mcp.example.com"},
    )
    no_secret = serve_fails(
        fake,
        tmp_path,
        **{**base, "POE_MCP_SECRET_KEY": "", "POE_MCP_PUBLIC_URL": "https://mcp.example.com"},
    )
    plain = serve_fails(fake, tmp_path, **{**base, "POE_MCP_PUBLIC_URL": "http://mcp.example.com"})
    with_path = serve_fails(
        fake, tmp_path, **{**base, "POE_MCP_PUBLIC_URL": "https://mcp.example.com/poe"}
    )
    assert "must be https://" in plain and "Traceback" not in plain
    assert "without a path" in with_path
    assert "POE_MCP_PUBLIC_URL" in no_url
    assert (
        "POE_OAUTH_CLIENT_ID" in no_client
        and "https://mcp.example.com/oauth/poe/callback" in no_client
    )
    assert "POE_MCP_SECRET_KEY" in no_secret


async def test_signed_in_on_one_replica_served_by_another_on_redis(
    fake: FakePoe, tmp_path: Path
) -> None:
    from servers import redis_server
    from test_http import connect_http

    with redis_server(tmp_path) as redis_url:
        if redis_url is None:
            pytest.skip("redis-server is not installed; replica tests need a real Redis")
        port = free_port()
        public = f"http://127.0.0.1:{port}"  # the load balancer's address: the same for both
        env = {"POE_MCP_STORE": redis_url, "POE_MCP_PUBLIC_URL": public}
        with (
            oauth_server(fake, tmp_path, "a", port=port, **env) as a,
            oauth_server(fake, tmp_path, "b", **env) as b,
        ):
            client, storage = sdk_client(fake, a)
            async with client:
                first = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "on A"})
            assert storage.tokens is not None
            async with connect_http(b, storage.tokens.access_token) as on_b:
                listed = await on_b.call_tool("list_sessions", {})
                more = await on_b.call_tool(
                    "ask_poe",
                    {
                        "bot": "gpt-4-turbo",
                        "prompt": "on B",
                        "session_id": first.structured_content["session_id"],
                    },
                )
    assert [s["preview"] for s in listed.structured_content["sessions"]] == ["on A"]
    assert not more.is_error
    assert fake.keys_used() == [fake.oauth_keys["alice"]] * 2


async def test_a_person_who_denies_consent_is_sent_back_with_access_denied(
    fake: FakePoe, tmp_path: Path
) -> None:
    with oauth_server(fake, tmp_path) as url:
        base = url.removesuffix("/mcp")
        client_id = register(base)
        answer = await browse(
            fake, authorize_url(base, client_id, secrets.token_urlsafe(48)), decision="deny"
        )
    assert answer["error"] == "access_denied" and answer["state"] == "st4te"
    assert "code" not in answer and not fake.oauth_keys


async def test_an_administrator_lists_and_signs_out_people(fake: FakePoe, tmp_path: Path) -> None:
    import subprocess

    from conftest import env_for
    from servers import POE_MCP

    def users(*args: str) -> subprocess.CompletedProcess[str]:
        env = env_for(fake, tmp_path, POE_MCP_AUTH="oauth", POE_MCP_SECRET_KEY=FERNET)
        return subprocess.run(
            [POE_MCP, "users", *args], env=env, capture_output=True, text=True, timeout=30
        )

    with oauth_server(fake, tmp_path) as url:
        client, storage = sdk_client(fake, url)
        async with client:
            await client.call_tool("list_sessions", {})
        listed = users("list", "--json")
        people = json.loads(listed.stdout)
        assert storage.tokens is not None
        before = mcp_post(url, storage.tokens.access_token)
        out = users("revoke", people[0]["name"])
        after = mcp_post(url, storage.tokens.access_token)
        again = users("revoke", people[0]["name"])
    assert len(people) == 1 and people[0]["name"].startswith("p.")
    assert fake.oauth_keys["alice"] not in listed.stdout + out.stdout
    assert before.status_code == 200 and out.returncode == 0
    assert after.status_code == 401, "signed out at once, without a restart"
    assert again.returncode == 2 and "users list" in again.stderr


async def test_poe_failing_the_exchange_sends_the_client_back_with_a_clear_error(
    fake: FakePoe, tmp_path: Path
) -> None:
    with oauth_server(fake, tmp_path) as url:
        base = url.removesuffix("/mcp")
        client_id = register(base)
        answer = await browse(
            fake, authorize_url(base, client_id, secrets.token_urlsafe(48)), poe_fails=True
        )
        log = (tmp_path / "replica-a.log").read_text()
    assert answer["error"] == "server_error" and answer["state"] == "st4te"
    assert "Poe refused the sign-in (503" in answer["error_description"]
    assert "connect again" in answer["error_description"]
    assert "Sign in with Poe failed" in log and "Traceback" not in log
