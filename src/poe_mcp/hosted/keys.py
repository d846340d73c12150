"""Users' Poe keys at rest: encrypted with Fernet under POE_MCP_SECRET_KEY; tokens kept only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ..config import SettingsError

PREFIX = (
    "fernet:"  # how an encrypted value is told from a clear one in a file someone edited by hand
)


def new_secret_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def key_id(poe_api_key: str | None) -> str:
    """A short, stable name for a Poe key (its request budget is shared under it); never the key."""
    return hashlib.sha256((poe_api_key or "").encode()).hexdigest()[:24]


class KeyBox:
    """Encrypts and decrypts Poe keys with the server's secret key."""

    def __init__(self, secret_key: str | None) -> None:
        from cryptography.fernet import Fernet

        if not secret_key:
            raise SettingsError(
                "POE_MCP_SECRET_KEY is not set: hosted modes keep each user's Poe key encrypted with it. "
                "Make one with `poe-mcp users secret-key` and set it on every replica (keep it secret; "
                "losing it means users must add their keys again)"
            )
        try:
            self._fernet = Fernet(secret_key.encode())
        except (ValueError, TypeError):
            raise SettingsError(
                "POE_MCP_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes); "
                "make one with `poe-mcp users secret-key`"
            ) from None

    def seal(self, poe_api_key: str) -> str:
        return PREFIX + self._fernet.encrypt(poe_api_key.encode()).decode()

    def open(self, sealed: str, whose: str) -> str:
        from cryptography.fernet import InvalidToken

        if not sealed.startswith(PREFIX):
            raise SettingsError(
                f"the Poe key of {whose} is stored in clear; add it again with "
                f"`poe-mcp users add {whose} --replace --poe-api-key-stdin` so it is kept encrypted"
            )
        try:
            return self._fernet.decrypt(sealed[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SettingsError(
                f"the Poe key of {whose} cannot be decrypted with this POE_MCP_SECRET_KEY "
                "(it was sealed with another one); set the key it was made with, or add the user again"
            ) from None
