"""The HTTP gate of hosted mode: every request but the open paths resolves to a User, or gets a 401."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from .users import User, current_user

Resolver = Callable[[str], Awaitable[User | None]]


async def refuse(send: Any, status: int, error: str, message: str, challenge: str) -> None:
    body = json.dumps({"error": error, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", challenge.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class UserGate:
    """Requires `Authorization: Bearer <token>` of a known user on /mcp; the user is then current_user
    for everything the request runs (tools, resources, their stores)."""

    def __init__(
        self, app: Any, resolve: Resolver, open_paths: tuple[str, ...], realm_hint: str
    ) -> None:
        self.app = app
        self.resolve = resolve
        self.open_paths = open_paths
        self.hint = realm_hint

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = given.partition(" ")
        user = await self.resolve(token.strip()) if scheme.lower() == "bearer" and token else None
        if user is None:
            await refuse(
                send,
                401,
                "invalid_token" if given else "unauthorized",
                self.hint,
                'Bearer realm="poe-mcp"' + (', error="invalid_token"' if given else ""),
            )
            return
        reset = current_user.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            current_user.reset(reset)
