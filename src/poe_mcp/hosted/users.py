"""Who a request is from: the User, the contextvar that carries them, and the tokens file of `tokens` mode.

The tokens file is `{"<name>": {"token_sha256": "<hex>", "poe_api_key": "fernet:..."}}`: only a hash of
each token, and each Poe key encrypted (keys.py). It is read again whenever it changes, so `poe-mcp users
add` and `revoke` take effect on a running server without a restart."""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import SettingsError
from .keys import KeyBox, new_token, same_hash, token_hash

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class User:
    """One person. `id` names their data in the store and on disk; their key lives only in memory."""

    id: str
    name: str
    poe_api_key: str | None = field(default=None, repr=False)  # None: the server's own key


# Set per HTTP request by the auth middleware; read by state_of(ctx) and the resources.
current_user: ContextVar[User | None] = ContextVar("poe_mcp_user", default=None)


def request_user() -> User | None:
    """Who this request is from: the tokens gate sets current_user; in oauth mode the SDK's bearer
    middleware holds the access token, which carries its user (oauth.UserAccessToken)."""
    user = current_user.get()
    if user is None:
        from mcp.server.auth.middleware.auth_context import get_access_token

        found = getattr(get_access_token(), "poe_user", None)
        user = found if isinstance(found, User) else None
    return user


def check_private(path: Path) -> None:
    """Refuse a tokens file others may read or write: it says who may spend whose Poe points."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"{path} is readable or writable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`"
        )


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Replace the file at once (a reader never sees half of it), mode 0600 from the first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tokens-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TokensFile:
    """The users of `tokens` mode, with their token hashes and sealed keys."""

    def __init__(self, path: Path, box: KeyBox | None) -> None:
        self.path = path
        self.box = box
        self._lock = threading.Lock()
        self._seen: tuple[float, int] | None = None
        self._users: dict[str, tuple[str, User]] = {}  # name -> (token hash, user)

    # -- reading ---------------------------------------------------------------------------------

    def raw(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        check_private(self.path)
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as error:
            raise SettingsError(
                f"{self.path} is not a readable JSON tokens file: {error}"
            ) from None
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("token_sha256"), str) for v in data.values()
        ):
            raise SettingsError(
                f'{self.path} must map each user name to {{"token_sha256": "<hex>", "poe_api_key": ...}}'
            )
        return data

    def load(self) -> None:
        """Read (or re-read) the file; refuses a file others can read, or a key in clear."""
        if not self.path.exists():
            raise SettingsError(
                f"POE_MCP_AUTH=tokens but {self.path} does not exist; add a user with "
                "`poe-mcp users add NAME` (it prints their token once)"
            )
        users: dict[str, tuple[str, User]] = {}
        for name, entry in self.raw().items():
            sealed = entry.get("poe_api_key")
            key = None
            if sealed:
                if self.box is None:
                    raise SettingsError("POE_MCP_SECRET_KEY is needed to read users' Poe keys")
                key = self.box.open(sealed, name)
            users[name] = (entry["token_sha256"], User(f"t.{name}", name, key))
        self._users = users

    def resolve(self, token: str) -> User | None:
        """The user this bearer token belongs to, or None; the file is read again when it changed."""
        with self._lock:
            try:
                st = self.path.stat()
                seen = (st.st_mtime, st.st_size)
            except OSError:
                seen = None
            if seen != self._seen:
                try:
                    self.load()
                except SettingsError:
                    self._users = {}  # an unreadable file lets nobody in, until it is fixed
                self._seen = seen
            users = self._users
        given = token_hash(token)
        for expected, user in users.values():
            if same_hash(given, expected):
                return user
        return None

    # -- the admin commands ------------------------------------------------------------------------

    def add(self, name: str, poe_api_key: str | None, replace: bool = False) -> str:
        """Create `name` and return their token (shown once; only its hash is kept)."""
        if not NAME.match(name):
            raise SettingsError(
                f"user name {name!r}: use letters, digits and . _ @ - (up to 64, not starting with a sign)"
            )
        data = self.raw()
        if name in data and not replace:
            raise SettingsError(
                f"user {name!r} exists; `poe-mcp users revoke {name}` first, or add --replace"
            )
        entry: dict[str, Any] = {"token_sha256": ""}
        if poe_api_key:
            if self.box is None:
                raise SettingsError("POE_MCP_SECRET_KEY is needed to store a user's Poe key")
            entry["poe_api_key"] = self.box.seal(poe_api_key)
        token = new_token()
        entry["token_sha256"] = token_hash(token)
        data[name] = entry
        write_private(self.path, data)
        return token

    def revoke(self, name: str) -> bool:
        """Remove `name`: their token stops working and their sealed Poe key is deleted."""
        data = self.raw()
        if data.pop(name, None) is None:
            return False
        write_private(self.path, data)
        return True

    def listing(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "own_poe_key": bool(entry.get("poe_api_key"))}
            for name, entry in sorted(self.raw().items())
        ]
