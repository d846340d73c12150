"""Each user's view of the process's Services: their Poe key, their conversations, media, usage and jobs.

The view is made on a user's first request and kept: a PoeClient per Poe key (Poe's request limit is per
key, so users who share the server's key share its budget, and across replicas through Redis), the store
scoped to the user (scoped() of SQLiteStore and RedisStore), and a media folder of their own."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from ..attachments import AttachmentRules
from ..conversations import ConversationStore
from ..poe.client import PoeClient
from ..redaction import RedactingStore, mask_in_logs
from .keys import key_id
from .users import User

if TYPE_CHECKING:
    from ..services.shared import Services

KEPT_VIEWS = (
    512  # users whose view stays built; an older one is rebuilt (cheaply) on its next request
)


def folder_name(user: User) -> str:
    """A folder name for the user's media that no name can turn into a path elsewhere."""
    readable = re.sub(r"[^A-Za-z0-9_.@-]", "_", user.id)[:40]
    return f"{readable}-{hashlib.sha256(user.id.encode()).hexdigest()[:12]}"


class Tenants:
    """The per-user views of one process, and the Poe clients (one per key) behind them."""

    def __init__(self, base: Services, raw_store: Any) -> None:
        self.base = base
        self._raw_store = raw_store  # the unredacted store, whose scoped() views are per user
        self._views: OrderedDict[str, Services] = OrderedDict()
        self._clients: dict[str, PoeClient] = {}
        # Clients of users no kept view holds: closed once no call of theirs can still be running.
        self._retiring: list[tuple[float, PoeClient]] = []
        self._closing: set[asyncio.Task[None]] = set()

    def _client(self, poe_api_key: str | None) -> PoeClient:
        settings = self.base.settings
        key = poe_api_key or settings.api_key
        ident = key_id(key)
        client = self._clients.get(ident)
        if client is None:
            if key == settings.api_key:
                client = self.base.poe  # the server's key: its one client and budget
            else:
                shared = getattr(self._raw_store, "request_budget", None)
                client = PoeClient(
                    replace(settings, api_key=key),
                    budget=shared(settings.rpm, ident) if shared else None,
                )
                client.catalog = self.base.poe.catalog  # public, and the same for everyone
            self._clients[ident] = client
        return client

    def view(self, user: User) -> Services:
        from ..services.shared import Services

        found = self._views.get(user.id)
        if found is not None and found.poe.settings.api_key == (
            user.poe_api_key or self.base.settings.api_key
        ):
            self._views.move_to_end(user.id)
            return found
        base = self.base
        poe = self._client(user.poe_api_key)
        mask_in_logs(user.poe_api_key)
        output_dir = base.settings.output_dir / "users" / folder_name(user)
        # A user's settings: their key, their media folder, and no local files to attach (the server's
        # disk is not theirs to read).
        settings = replace(poe.settings, output_dir=output_dir, allowed_dirs=())
        secrets = (settings.api_key, base.settings.api_key, base.settings.auth_token)
        store = cast(ConversationStore, RedactingStore(self._raw_store.scoped(user.id), secrets))
        rules = replace(AttachmentRules.of(base.settings), allowed_dirs=())
        # their own spend guard too: budgets are per person, counted in their view of the store
        services = Services.wired(settings, poe, store, rules, base.transport)
        services.extra_secrets = (base.settings.api_key,)
        self._views[user.id] = services
        while len(self._views) > KEPT_VIEWS:
            self._retire(self._views.popitem(last=False)[1].poe)
        self._close_retired()
        return services

    def _retire(self, client: PoeClient) -> None:
        if client is self.base.poe or any(v.poe is client for v in self._views.values()):
            return
        self._clients.pop(key_id(client.settings.api_key), None)
        self._retiring.append((time.monotonic(), client))

    def _close_retired(self) -> None:
        # A call may use its client for POE_MCP_TIMEOUT per request; a minute more covers the rest.
        grace = self.base.settings.timeout + 60
        while self._retiring and time.monotonic() - self._retiring[0][0] > grace:
            task = asyncio.get_running_loop().create_task(self._retiring.pop(0)[1].aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for client in [*self._clients.values(), *(c for _, c in self._retiring)]:
            if client is not self.base.poe:
                await client.aclose()
