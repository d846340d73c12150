"""Starting hosted mode: what it needs checked before serving, and the gate in front of /mcp."""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from ..config import Settings, SettingsError
from .gate import UserGate
from .keys import KeyBox
from .users import TokensFile, User

OPEN_PATHS = ("/healthz",)


def tokens_file(settings: Settings, *, need_box: bool = False) -> TokensFile:
    box = KeyBox(settings.secret_key) if settings.secret_key or need_box else None
    return TokensFile(settings.tokens_file, box)


def check_hosted(settings: Settings) -> None:
    """Refuse at start what would refuse every user later: a missing secret key, a tokens file that is
    missing, readable by others, holding a key in clear or sealed under another secret key."""
    KeyBox(settings.secret_key)  # required in hosted mode: users' keys are stored under it
    if settings.auth == "tokens":
        tokens_file(settings).load()
    if settings.auth == "oauth":
        if not settings.public_url:
            raise SettingsError(
                "POE_MCP_AUTH=oauth needs POE_MCP_PUBLIC_URL, the https:// origin clients reach this "
                "server at (the issuer, the resource and Poe's redirect URI are made from it)"
            )
        host = settings.public_url.partition("://")[2].split("/")[0].rsplit(":", 1)[0]
        if not settings.public_url.startswith("https://") and host not in (
            "localhost",
            "127.0.0.1",
            "[::1]",
        ):
            raise SettingsError(
                f"POE_MCP_PUBLIC_URL must be https:// (got {settings.public_url}): OAuth clients refuse an "
                "authorization server over plain http; put TLS in front (see deploy/nginx.conf)"
            )
        if "/" in settings.public_url.partition("://")[2]:
            raise SettingsError(
                f"POE_MCP_PUBLIC_URL is an origin, without a path (got {settings.public_url}); "
                "the MCP endpoint is <origin>/mcp"
            )
        if not settings.oauth_client_id:
            raise SettingsError(
                "POE_MCP_AUTH=oauth needs POE_OAUTH_CLIENT_ID: register this server as a client at "
                f"poe.com/api/clients with the redirect URI {settings.public_url}/oauth/poe/callback"
            )


def tokens_gate(app: Any, settings: Settings) -> UserGate:
    users = tokens_file(settings)

    async def resolve(token: str) -> User | None:
        return await anyio.to_thread.run_sync(users.resolve, token)

    return UserGate(
        app,
        resolve,
        OPEN_PATHS,
        "Send Authorization: Bearer <your token> (an administrator makes one with `poe-mcp users add NAME`).",
    )
