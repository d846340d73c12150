"""What the OAuth flow keeps between requests (clients, pending sign-ins, codes, tokens, users), shared by
every replica: in Redis when POE_MCP_STORE is a redis:// URL, else in a table of the SQLite file.

Records are keyed by a SHA-256 of the token or code, never the value itself, and expire on their own."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread

PREFIX = "poe-mcp:oauth:"


def hashed(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class OAuthStore(Protocol):
    async def put(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None: ...

    async def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        """Get and delete at once: a code or a refresh token is good for one use, on any replica."""
        ...

    async def delete(self, kind: str, key: str) -> None: ...

    async def delete_hash(self, kind: str, digest: str) -> None:
        """Delete the record whose key hashes to `digest` (a paired token, known only by its hash)."""
        ...

    async def values(self, kind: str) -> list[dict[str, Any]]:
        """Every live record of one kind (the admin's `poe-mcp users list`)."""
        ...

    async def aclose(self) -> None: ...


class RedisOAuthStore:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.redis: Any = redis.from_url(url, decode_responses=True)

    @staticmethod
    def _key(kind: str, key: str) -> str:
        return f"{PREFIX}{kind}:{hashed(key)}"

    async def delete_hash(self, kind: str, digest: str) -> None:
        await self.redis.delete(f"{PREFIX}{kind}:{digest}")

    async def values(self, kind: str) -> list[dict[str, Any]]:
        keys = [k async for k in self.redis.scan_iter(f"{PREFIX}{kind}:*")]
        raws = await self.redis.mget(keys) if keys else []
        return [json.loads(r) for r in raws if r]

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def put(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        await self.redis.set(self._key(kind, key), json.dumps(value), px=max(1, int(ttl * 1000)))

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self._key(kind, key))
        return json.loads(raw) if raw else None

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            raw, _ = await pipe.get(self._key(kind, key)).delete(self._key(kind, key)).execute()
        return json.loads(raw) if raw else None

    async def delete(self, kind: str, key: str) -> None:
        await self.redis.delete(self._key(kind, key))


def oauth_file(store: str) -> Path:
    """The OAuth records' own file beside the conversation store's. Not the same file: a second
    connection to it from this process could be broken by the store's own open-and-close of the path
    (closing any descriptor of a file drops every POSIX lock the process holds on it)."""
    path = Path(store)
    return path.with_name(path.stem + ".oauth.db")


class SQLiteOAuthStore:
    """Its own SQLite file (oauth_file), shared by the replicas on one host; written only by sign-ins."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # private before SQLite opens it
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS oauth_records (kind TEXT NOT NULL, key TEXT NOT NULL, "
                "value TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (kind, key))"
            )

    async def _run(self, fn: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return fn(*args)

        return await anyio.to_thread.run_sync(locked)

    async def put(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        def put() -> None:
            self._db.execute("DELETE FROM oauth_records WHERE expires_at < ?", (time.time(),))
            self._db.execute(
                "INSERT OR REPLACE INTO oauth_records VALUES (?, ?, ?, ?)",
                (kind, hashed(key), json.dumps(value), time.time() + ttl),
            )

        await self._run(put)

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT value FROM oauth_records WHERE kind = ? AND key = ? AND expires_at >= ?",
            (kind, hashed(key), time.time()),
        ).fetchone()
        return json.loads(row[0]) if row else None

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._run(self._get, kind, key)
        return result

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        def take() -> dict[str, Any] | None:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                found = self._get(kind, key)
                self._db.execute(
                    "DELETE FROM oauth_records WHERE kind = ? AND key = ?", (kind, hashed(key))
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return found

        result: dict[str, Any] | None = await self._run(take)
        return result

    async def delete(self, kind: str, key: str) -> None:
        await self.delete_hash(kind, hashed(key))

    async def delete_hash(self, kind: str, digest: str) -> None:
        await self._run(
            self._db.execute, "DELETE FROM oauth_records WHERE kind = ? AND key = ?", (kind, digest)
        )

    async def values(self, kind: str) -> list[dict[str, Any]]:
        def values() -> list[dict[str, Any]]:
            rows = self._db.execute(
                "SELECT value FROM oauth_records WHERE kind = ? AND expires_at >= ?",
                (kind, time.time()),
            ).fetchall()
            return [json.loads(r[0]) for r in rows]

        result: list[dict[str, Any]] = await self._run(values)
        return result

    async def aclose(self) -> None:
        await self._run(self._db.close)


def open_oauth_store(location: str) -> OAuthStore:
    if location.startswith(("redis://", "rediss://")):
        return RedisOAuthStore(location)
    return SQLiteOAuthStore(str(oauth_file(location)))
