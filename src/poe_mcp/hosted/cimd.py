"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, which the MCP authorization
spec of 2025-11-25 asks for): a client that never registered here names itself by the https:// URL of a
JSON document describing it, and that document, fetched from that URL, stands for its registration.

Anyone who can reach /authorize picks the URL, so the fetch is guarded as every outside URL is: only
public addresses (publicnet) unless the operator allows the host, the checked address is the one
connected to (a second DNS answer could differ), no redirects, one short deadline, a size cap. A document
that breaks a rule leaves the client unknown, and the log says why. An accepted one is kept in the OAuth
store for a bounded time, so that replicas on one Redis share a fetch."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from ..publicnet import HostNotPublic, HostRefused, public_addresses, resolve
from .oauthstore import OAuthStore

log = logging.getLogger(__name__)

KIND = "cimd"  # the store's records of fetched documents; never mixed with registered clients
FETCH_TIMEOUT = 5.0  # seconds for the whole fetch: a person is waiting on the /authorize page
MAX_BYTES = 64 * 1024  # a client's metadata is a few hundred bytes; this leaves room for a logo URI
DEFAULT_TTL = 3600.0  # kept this long when the document's response says nothing of caching
MIN_TTL = (
    60.0  # even `no-store` is kept this long: /authorize and /token of one sign-in share a fetch
)
MAX_TTL = 86400.0  # a changed (or withdrawn) document is seen within a day whatever max-age says
_SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")


class DocumentRefused(Exception):
    """The client's metadata document cannot stand for it; the message says why (no secret in it)."""


def is_client_id_url(client_id: str) -> bool:
    """The form the draft (section 3) gives a client id URL: https, a host, a path other than `/`, no
    fragment, no user name or password, no `.` or `..` segments."""
    try:
        parts = urlsplit(client_id)
        port = parts.port  # ValueError when it is not a number
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and parts.path not in ("", "/")
        and "#" not in client_id
        and "@" not in parts.netloc
        and (port is None or port > 0)
        and not any(segment in (".", "..") for segment in parts.path.split("/"))
        and not any(c.isspace() or not c.isprintable() for c in client_id)
    )


def shown(url: str) -> str:
    """The URL as logged: a client id is public (the draft has it shown to people), but may be long."""
    return url[:300]


def ttl_of(cache_control: str) -> float:
    """How long to keep a document: its max-age, the least for no-store/no-cache, within MIN..MAX_TTL."""
    directives = cache_control.lower()
    if "no-store" in directives or "no-cache" in directives:
        return MIN_TTL
    found = re.search(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", directives)
    seconds = float(found.group(1)) if found else DEFAULT_TTL
    return min(MAX_TTL, max(MIN_TTL, seconds))


async def fetch_document(url: str, allow_hosts: frozenset[str]) -> tuple[Any, float]:
    """The parsed JSON at `url` and how long it may be kept; DocumentRefused when any rule is broken."""
    try:
        target = httpx2.URL(url)
    except httpx2.InvalidURL:  # e.g. a host name IDNA cannot encode
        raise DocumentRefused("it is not a URL this server can fetch") from None
    host = target.raw_host.decode("ascii").lower()
    port = target.port or 443
    failure = ""
    try:
        # One deadline for it all, the name's lookup too: httpx's timeout is per read, which a server
        # dripping bytes never trips.
        with anyio.fail_after(FETCH_TIMEOUT):
            try:
                addresses = await (resolve if host in allow_hosts else public_addresses)(host, port)
            except HostNotPublic as refused:
                raise DocumentRefused(
                    f"{refused}; POE_MCP_CIMD_ALLOW_HOSTS={host} would allow it"
                ) from None
            except HostRefused as refused:
                raise DocumentRefused(str(refused)) from None
            for address in addresses:
                try:
                    return await _get(target, address)
                except httpx2.ConnectError as error:  # also a TLS certificate the host's name fails
                    failure = f"{address}: {str(error)[:200] or type(error).__name__}"
    except TimeoutError:
        raise DocumentRefused(f"{host} did not answer within {FETCH_TIMEOUT:g} s") from None
    raise DocumentRefused(f"could not connect to {host} ({failure})")


async def _get(target: httpx2.URL, address: str) -> tuple[Any, float]:
    """GET `target` from `address`, the TLS name and certificate still checked against the URL's host."""
    pinned = target.copy_with(host=address)
    headers = {"Host": target.netloc.decode("ascii"), "Accept": "application/json"}
    sni = {"sni_hostname": target.raw_host.decode("ascii")}
    try:
        async with (
            httpx2.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http,
            http.stream("GET", pinned, headers=headers, extensions=sni) as response,
        ):
            if response.status_code != 200:
                raise DocumentRefused(
                    f"it answered HTTP {response.status_code}"
                    + (
                        " (redirects are not followed: a client id is its document's own URL)"
                        if response.is_redirect
                        else ""
                    )
                )
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json" and not kind.endswith("+json"):
                raise DocumentRefused(f"its content type is {kind or 'missing'!r}, not JSON")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BYTES:
                raise DocumentRefused(f"it is {declared} bytes, over the {MAX_BYTES} byte cap")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise DocumentRefused(f"it is over the {MAX_BYTES} byte cap")
            ttl = ttl_of(response.headers.get("cache-control", ""))
    except httpx2.ConnectError:
        raise  # fetch_document tries the host's next address
    except httpx2.HTTPError as error:  # TLS failure, reset, malformed response
        raise DocumentRefused(f"fetching it failed ({type(error).__name__})") from None
    try:
        return json.loads(body), ttl
    except ValueError:  # UnicodeDecodeError too
        raise DocumentRefused("it is not valid JSON") from None


def client_from_document(url: str, document: Any) -> OAuthClientInformationFull:
    """The client a fetched document describes, if it may: a public client, named by exactly this URL."""
    if not isinstance(document, dict):
        raise DocumentRefused("it is not a JSON object")
    named = document.get("client_id")
    if named != url:  # a simple string comparison (draft section 4.1): no normalisation
        raise DocumentRefused(
            f"its client_id {str(named)[:300]!r} is not the URL it was fetched from"
        )
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise DocumentRefused(
            "it holds a client secret; a metadata document describes a public client"
        )
    method = document.get("token_endpoint_auth_method") or "none"
    if method != "none":
        reason = "a shared secret" if method in _SECRET_METHODS else "a method this server lacks"
        raise DocumentRefused(
            f"its token_endpoint_auth_method {str(method)[:100]!r} is {reason}; only public clients "
            "('none', with PKCE) are accepted"
        )
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise DocumentRefused("it lists no redirect_uris")
    try:
        # "none" said outright: the SDK's /token would otherwise look for a secret the client lacks.
        return OAuthClientInformationFull.model_validate(
            {**document, "token_endpoint_auth_method": "none"}
        )
    except ValidationError as error:
        first = error.errors()[0]  # its location and message only: the input could be anything
        where = ".".join(str(part) for part in first["loc"])
        raise DocumentRefused(f"{where} is not valid client metadata ({first['msg']})") from None


class ClientDocuments:
    """The clients known by their metadata document's URL, fetched once and kept in the OAuth store."""

    def __init__(self, store: OAuthStore, allow_hosts: tuple[str, ...]) -> None:
        self.store = store
        self.allow_hosts = frozenset(h.strip().lower().strip("[]") for h in allow_hosts)

    async def client(self, url: str) -> OAuthClientInformationFull | None:
        cached = await self.store.get(KIND, url)
        if cached is not None:
            return OAuthClientInformationFull.model_validate(cached)
        try:
            document, ttl = await fetch_document(url, self.allow_hosts)
            client = client_from_document(url, document)
        except DocumentRefused as refused:
            log.warning(
                "Unknown client %s: its metadata document was refused: %s", shown(url), refused
            )
            return None
        await self.store.put(KIND, url, client.model_dump(mode="json"), ttl)
        log.info("Client %s known from its metadata document (kept %g s)", shown(url), ttl)
        return client
