"""oauth mode, Client ID Metadata Documents: a client names itself by the https:// URL of a JSON document
about it instead of registering. The document is served here over real TLS (a throwaway CA the spawned
server trusts through SSL_CERT_FILE); the server fetches it, checks it, and refuses what it must."""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fakepoe import FakePoe
from servers import free_port
from test_oauth import REDIRECT, authorize_url, oauth_server, sdk_client

from poe_mcp.hosted.cimd import MAX_BYTES, is_client_id_url, ttl_of

pytestmark = pytest.mark.anyio


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA (what the server is told to trust) and a leaf it signed for localhost and 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: Any, issuer: x509.Name | None, signer: Any, ca: bool
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = certificate("poe-mcp test CA", ca_key, None, ca_key, True)
    leaf = certificate("localhost", leaf_key, ca.subject, ca_key, False)
    paths = folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class Site:
    """An HTTPS server of client metadata documents: path -> (status, headers, body); it notes each GET."""

    port: int
    ca: Path
    pages: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def serve(
        self, path: str, document: Any, status: int = 200, host: str = "localhost", **headers: str
    ) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.pages[path] = (status, {"content-type": "application/json", **headers}, body)
        return self.url(path, host)

    def fetches(self, path: str) -> int:
        return self.requests.count(path)


def document(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "client_id": url,
        "client_name": "poe-mcp tests (CIMD)",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **fields,
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cimd")


@pytest.fixture(scope="module")
def site(workspace: Path) -> Iterator[Site]:
    ca, leaf, key = make_certificates(workspace)
    found = Site(port=free_port(), ca=ca)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found.requests.append(self.path)
            status, headers, body = found.pages.get(self.path, (404, {}, b"not here"))
            self.send_response(status)
            for name, value in {"content-length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", found.port), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield found
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def poe() -> Iterator[FakePoe]:
    server = FakePoe(api_key="poe-cimd-server-key-unused").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served(poe: FakePoe, site: Site, workspace: Path) -> Iterator[str]:
    """One server for the module: it trusts the test CA, and allows the host name `localhost`."""
    with oauth_server(
        poe,
        workspace,
        "cimd",
        POE_MCP_CIMD_ALLOW_HOSTS="localhost",
        SSL_CERT_FILE=str(site.ca),
    ) as url:
        yield url


def log_says(workspace: Path, text: str, name: str = "cimd") -> str:
    """The server's log once it holds `text` (a line is written just after the response is sent)."""
    deadline = time.monotonic() + 5
    while True:
        log = (workspace / f"replica-{name}.log").read_text()
        if text in log or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def records(workspace: Path, kind: str) -> int:
    with sqlite3.connect(workspace / "store.oauth.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM oauth_records WHERE kind = ?", (kind,)
        ).fetchone()
    return int(count)


def authorize(base: str, client_id: str, **extra: str) -> httpx2.Response:
    return httpx2.get(authorize_url(base, client_id, secrets.token_urlsafe(48), **extra))


async def test_the_sdk_client_signs_in_by_its_metadata_document_without_registering(
    poe: FakePoe, site: Site, served: str, workspace: Path
) -> None:
    base = served.removesuffix("/mcp")
    path = "/clients/sdk.json"
    url = site.serve(path, document(site.url(path)))
    metadata = httpx2.get(f"{base}/.well-known/oauth-authorization-server").json()
    seen: list[str] = []
    client, storage = sdk_client(poe, served, client_metadata_url=url, seen=seen)
    async with client:
        answer = await client.call_tool("ask_poe", {"bot": "gpt-4-turbo", "prompt": "hello"})

    assert metadata["client_id_metadata_document_supported"] is True
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert storage.client is not None and storage.client.client_id == url
    assert "/token" in seen and "/register" not in seen, "named by its document: no registration"
    assert records(workspace, "client") == 0 and records(workspace, "cimd") >= 1
    assert site.fetches(path) == 1, "/authorize and /token shared one fetch"
    assert not answer.is_error and answer.content[0].text == "Echo: hello"
    assert poe.keys_used()[-1] == poe.oauth_keys["alice"], "the person's own Poe key"
    assert "known from its metadata document" in log_says(workspace, "known from its metadata")


BIG = {"logo_uri": "https://example.com/" + "x" * MAX_BYTES}


@pytest.mark.parametrize(
    ("name", "serve", "reason"),
    [
        (
            "another-id",
            lambda url: {"document": document(url.replace("another-id", "someone-else"))},
            "is not the URL it was fetched from",
        ),
        ("oversized", lambda url: {"document": document(url, **BIG)}, "byte cap"),
        (
            "redirect",
            lambda url: {"document": b"", "status": 302, "location": url + "?moved"},
            "redirects are not followed",
        ),
        (
            "html",
            lambda url: {"document": document(url), "content-type": "text/html"},
            "not JSON",
        ),
        (
            "secret",
            lambda url: {
                "document": document(url, token_endpoint_auth_method="client_secret_basic")
            },
            "a shared secret",
        ),
        (
            "no-redirects",
            lambda url: {"document": {**document(url), "redirect_uris": []}},
            "no redirect_uris",
        ),
        ("missing", lambda url: {"document": b"gone", "status": 404}, "HTTP 404"),
    ],
)
async def test_a_document_that_breaks_a_rule_leaves_the_client_unknown(
    site: Site, served: str, workspace: Path, name: str, serve: Any, reason: str
) -> None:
    base = served.removesuffix("/mcp")
    path = f"/clients/{name}.json"
    options = serve(site.url(path))
    site.serve(path, **options)
    refused = authorize(base, site.url(path))
    log = log_says(workspace, reason)
    assert refused.status_code == 400 and "not found" in refused.text, refused.text
    assert "location" not in refused.headers, "never redirected anywhere"
    assert site.fetches(path) == 1
    assert f"Unknown client {site.url(path)}: its metadata document was refused" in log
    assert reason in log and "Traceback" not in log


async def test_a_redirect_uri_the_document_does_not_list_is_refused(
    site: Site, served: str
) -> None:
    base = served.removesuffix("/mcp")
    path = "/clients/listed.json"
    url = site.serve(path, document(site.url(path)))
    elsewhere = authorize(base, url, redirect_uri="http://evil.example/cb")
    listed = authorize(base, url)
    assert elsewhere.status_code == 400 and "redirect" in elsewhere.text.lower()
    assert "location" not in elsewhere.headers
    assert listed.status_code == 302 and "/oauth/authorize" in listed.headers["location"]


async def test_a_document_on_a_private_address_is_never_fetched_unless_allowed(
    site: Site, served: str, workspace: Path
) -> None:
    """`localhost` is allowed on this server, 127.0.0.1 is not: the same site under that name is refused
    before any connection, though its document (and the certificate, which names 127.0.0.1) is good."""
    base = served.removesuffix("/mcp")
    path = "/clients/private.json"
    url = site.serve(path, document(site.url(path, host="127.0.0.1")), host="127.0.0.1")
    refused = authorize(base, url)
    log = log_says(workspace, "127.0.0.1 resolves to a non-public address")
    assert refused.status_code == 400 and "not found" in refused.text
    assert site.fetches(path) == 0, "no request reached the private address"
    assert "127.0.0.1 resolves to a non-public address (127.0.0.1)" in log
    assert "POE_MCP_CIMD_ALLOW_HOSTS=127.0.0.1 would allow it" in log


async def test_a_host_that_does_not_answer_leaves_the_client_unknown(
    served: str, workspace: Path
) -> None:
    url = f"https://localhost:{free_port()}/clients/nobody.json"  # nothing listens there
    refused = authorize(served.removesuffix("/mcp"), url)
    log = log_says(workspace, "could not connect to localhost")
    assert refused.status_code == 400 and "not found" in refused.text
    assert f"Unknown client {url}: its metadata document was refused: could not connect" in log


async def test_replicas_on_one_redis_share_a_fetched_document(
    poe: FakePoe, site: Site, tmp_path: Path
) -> None:
    from servers import redis_server

    path = "/clients/shared.json"
    url = site.serve(path, document(site.url(path)))
    with redis_server(tmp_path) as redis_url:
        if redis_url is None:
            pytest.skip("redis-server is not installed; replica tests need a real Redis")
        env = {
            "POE_MCP_STORE": redis_url,
            "POE_MCP_CIMD_ALLOW_HOSTS": "localhost",
            "SSL_CERT_FILE": str(site.ca),
        }
        with (
            oauth_server(poe, tmp_path, "r1", **env) as one,
            oauth_server(poe, tmp_path, "r2", **env) as two,
        ):
            first = authorize(one.removesuffix("/mcp"), url)
            second = authorize(two.removesuffix("/mcp"), url)
    assert first.status_code == second.status_code == 302
    assert site.fetches(path) == 1, "the second replica found the first one's copy in Redis"


async def test_with_cimd_off_a_url_client_id_is_unknown_and_not_fetched(
    poe: FakePoe, site: Site, tmp_path: Path
) -> None:
    path = "/clients/off.json"
    url = site.serve(path, document(site.url(path)))
    env = {
        "POE_MCP_CIMD": "0",
        "POE_MCP_CIMD_ALLOW_HOSTS": "localhost",
        "SSL_CERT_FILE": str(site.ca),
    }
    with oauth_server(poe, tmp_path, "off", **env) as served:
        base = served.removesuffix("/mcp")
        metadata = httpx2.get(f"{base}/.well-known/oauth-authorization-server").json()
        refused = authorize(base, url)
    assert metadata["client_id_metadata_document_supported"] is False
    assert refused.status_code == 400 and site.fetches(path) == 0


@pytest.mark.parametrize(
    ("client_id", "is_url"),
    [
        ("https://app.example/client.json", True),
        ("https://app.example:8443/c?v=1", True),
        ("https://app.example", False),  # no path
        ("https://app.example/", False),
        ("http://app.example/client.json", False),  # not https
        ("https://app.example/client.json#x", False),  # a fragment
        ("https://me:pw@app.example/client.json", False),  # credentials
        ("https://app.example/a/../client.json", False),  # a dot segment
        ("9b2e1f0c-5d7a-4c1e-8f3b-2a6d9e0c1b4f", False),  # what registration hands out
    ],
)
def test_which_client_ids_name_a_metadata_document(client_id: str, is_url: bool) -> None:
    assert is_client_id_url(client_id) is is_url


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        ("", 3600),
        ("public, max-age=600", 600),
        ("max-age=5", 60),  # at least a minute: one sign-in's /authorize and /token share a fetch
        ("max-age=31536000", 86400),  # at most a day: a withdrawn document is seen within one
        ("no-store", 60),
    ],
)
def test_how_long_a_document_is_kept(cache_control: str, seconds: float) -> None:
    assert ttl_of(cache_control) == seconds
