"""Streamable HTTP at /mcp: stateless (any replica answers any request), SSE on, bearer auth, /healthz."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from . import __version__
from .config import Settings, SettingsError
from .server import PoeMCPServer, build_server
from .tasks import TaskNameHeader

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
OPEN_PATHS = ("/healthz",)  # load balancers probe without a token; it tells nothing secret


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """Requires `Authorization: Bearer <token>` on every request but /healthz; compares in constant time."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                body = json.dumps(
                    {
                        "error": "unauthorized",
                        "message": "Send Authorization: Bearer <POE_MCP_AUTH_TOKEN>.",
                    }
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="poe-mcp"'),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def transport_security(settings: Settings) -> Any:
    """DNS-rebinding protection always on: loopback names by default, plus what the operator allows."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = list(LOOPBACK_HOSTS) + list(settings.allowed_hosts)
    if settings.public_url:  # hosted mode: the name clients reach this server by
        hosts.append(settings.public_url.partition("://")[2].split("/")[0])
    if not is_loopback(settings.host) and settings.host not in ("0.0.0.0", "::"):
        hosts.append(f"{settings.host}:*")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=list(LOOPBACK_ORIGINS) + list(settings.allowed_origins),
    )


def build_http_app(settings: Settings, server: PoeMCPServer | None = None) -> Any:
    """The ASGI app: the SDK's Streamable HTTP at /mcp, /healthz, and bearer auth when a token is set.
    A test may pass a server it added fixtures to, so that they are served exactly as the product is."""
    server = server or build_server(settings)

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> JSONResponse:
        state = getattr(server, "base_state", None)
        poe = state.poe.health() if state is not None else "unknown"
        return JSONResponse({"status": "ok", "version": __version__, "poe": poe})

    if settings.auth == "oauth":  # Poe's redirect back after its consent page
        from .hosted.oauth import add_callback_route

        add_callback_route(server)

    # json_response stays False: with it, progress notifications would be silently dropped.
    app = server.streamable_http_app(
        stateless_http=True,
        json_response=False,
        transport_security=transport_security(settings),
        host=settings.host,
    )
    routed = TaskNameHeader(app)  # tasks/* carry Mcp-Name as tools/call does (SEP-2663)
    if settings.auth == "tokens":  # hosted mode: each request is one user's (see hosted/)
        from .hosted.setup import tokens_gate

        return tokens_gate(routed, settings)
    if settings.auth == "oauth":  # the SDK's bearer middleware, with our provider, guards /mcp
        from .hosted.oauth import PublicClientRevoke, serve_metadata

        serve_metadata(app, settings)
        return PublicClientRevoke(routed)
    return BearerAuth(routed, settings.auth_token) if settings.auth_token else routed


def check_exposure(settings: Settings) -> None:
    if settings.auth != "token":
        from .hosted.setup import check_hosted

        check_hosted(settings)
        return
    if not is_loopback(settings.host) and not settings.auth_token:
        raise SettingsError(
            f"refusing to serve HTTP on {settings.host} without a token: anyone who reaches it could spend your Poe points. "
            "Set POE_MCP_AUTH_TOKEN (e.g. to the output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )


# Sent to a client that began a request but did not finish its headers in time (RFC 9110, 15.5.9).
_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def header_timeout_protocol(seconds: float) -> type[Any]:
    """uvicorn's h11 protocol with one deadline for a request's headers, which uvicorn lacks: a client
    that connects and sends nothing, or stops half-way through its headers, or sends them a byte at a
    time, is dropped `seconds` after its connection opened (or its previous response ended and its next
    request began). The deadline is not renewed by each byte that arrives, and it stops once the headers
    are in: a long streamed answer is never cut by it."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE:  # a request begun but its headers not all in
                self._await_headers()
            else:
                self._headers_in()

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_in()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _headers_in(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.conn.trailing_data[0]:  # part of a request arrived: say why it is dropped
                self.transport.write(_REQUEST_TIMEOUT)
            log.debug("Dropped a connection that sent no complete headers in %g s", seconds)
            self.transport.close()

    return HeaderTimeoutProtocol


def serve_http(settings: Settings) -> None:
    import uvicorn

    check_exposure(settings)
    log.info("Serving MCP over Streamable HTTP at http://%s:%d/mcp", settings.host, settings.port)
    uvicorn.run(
        build_http_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        http=header_timeout_protocol(settings.header_timeout),
        # uvicorn answers 503 once the open connections, this one included, reach its limit: one more
        # than ours, so that exactly POE_MCP_MAX_CONNECTIONS are served at once.
        limit_concurrency=settings.max_connections + 1,
    )
