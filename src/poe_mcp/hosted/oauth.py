"""`oauth` mode: poe-mcp is the MCP authorization server, and Sign in with Poe is the identity behind it.

The SDK (mcp.server.auth) serves the metadata (RFC 8414, RFC 9728), registration, /authorize (PKCE S256,
`resource`), /token and /revoke; this provider fills in what is ours:

1. /authorize: remember the client's request under a fresh `state`, and send the browser to Poe's consent
   page with our own PKCE pair.
2. /oauth/poe/callback: Poe sends the browser back with a code; we exchange it (with our verifier) for the
   user's Poe API key, keep that encrypted, and send the browser to the client's redirect URI with our code.
3. /token: our code (once) gives a short-lived access token bound to this server's /mcp and a refresh token,
   which rotates on every use. /revoke ends both and deletes the user's Poe key.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx2
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import ConfigDict, Field
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from ..config import Settings
from .cimd import ClientDocuments, is_client_id_url
from .keys import KeyBox, key_id
from .oauthstore import OAuthStore, hashed, open_oauth_store
from .users import User

log = logging.getLogger(__name__)

CALLBACK_PATH = "/oauth/poe/callback"
ACCESS_TTL = 3600  # seconds: short-lived, and refreshed by the client
REFRESH_TTL = 30 * 86400
CODE_TTL = 300
PENDING_TTL = 600  # the time a person has on Poe's consent page
CLIENT_TTL = 365 * 86400
USER_TTL = 365 * 86400
POE_SCOPE = "apikey:create"


class UserAccessToken(AccessToken):
    """An access token and the user it stands for (their key decrypted, in memory only)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    poe_user: User | None = Field(default=None, exclude=True, repr=False)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def auth_settings(settings: Settings) -> AuthSettings:
    public = settings.public_url or ""
    return AuthSettings(
        issuer_url=public,  # type: ignore[arg-type]
        resource_server_url=f"{public}/mcp",  # type: ignore[arg-type]
        validate_token_resource=True,  # a token minted for another server is refused here
        client_registration_options=ClientRegistrationOptions(enabled=True),
        revocation_options=RevocationOptions(enabled=True),
    )


class PoeOAuthProvider:
    """The SDK's OAuthAuthorizationServerProvider, with Poe as the identity provider."""

    def __init__(self, settings: Settings, store: OAuthStore | None = None) -> None:
        self.settings = settings
        self.public = settings.public_url or ""
        self.resource = f"{self.public}/mcp"
        self.box = KeyBox(settings.secret_key)
        self.store = store or open_oauth_store(settings.store)
        self.documents = ClientDocuments(self.store, settings.cimd_allow_hosts)

    # -- clients (dynamic registration, or a client id metadata document) -------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if self.settings.cimd and is_client_id_url(client_id):  # registered ids are never URLs
            return await self.documents.client(client_id)
        found = await self.store.get("client", client_id)
        return OAuthClientInformationFull.model_validate(found) if found else None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        await self.store.put(
            "client", client_info.client_id or "", client_info.model_dump(mode="json"), CLIENT_TTL
        )

    # -- /authorize → Poe → our callback ------------------------------------------------------------

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        if params.resource is not None and params.resource.rstrip("/") != self.resource:
            raise AuthorizeError(
                "invalid_target",
                f"this server issues tokens only for {self.resource}, not {params.resource}",
            )
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        await self.store.put(
            "pending",
            state,
            {
                "client_id": client.client_id,
                "params": params.model_dump(mode="json"),
                "verifier": verifier,
            },
            PENDING_TTL,
        )
        query = {
            "response_type": "code",
            "client_id": self.settings.oauth_client_id,
            "redirect_uri": self.public + CALLBACK_PATH,
            "state": state,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
            "scope": POE_SCOPE,
        }
        return f"{self.settings.oauth_authorize_url}?{urlencode(query)}"

    async def callback(self, request: Request) -> Response:
        """Poe's redirect back: exchange Poe's code for the user's key, then hand the client our code."""
        state = request.query_params.get("state", "")
        pending = await self.store.take("pending", state) if state else None
        if pending is None:
            return PlainTextResponse(
                "This sign-in link has expired or was already used. Go back to your MCP client and "
                "connect again.",
                status_code=400,
            )
        params = AuthorizationParams.model_validate(pending["params"])
        back = str(params.redirect_uri)
        refused = request.query_params.get("error")
        code = request.query_params.get("code")
        if refused or not code:
            return RedirectResponse(
                construct_redirect_uri(
                    back,
                    error="access_denied" if refused == "access_denied" else "server_error",
                    error_description=f"Poe did not give a key ({refused or 'no code'})",
                    state=params.state,
                ),
                status_code=302,
            )
        try:
            key, lifetime = await self._poe_key(code, pending["verifier"])
        except RuntimeError as error:
            log.warning("Sign in with Poe failed: %s", error)
            return RedirectResponse(
                construct_redirect_uri(
                    back, error="server_error", error_description=str(error), state=params.state
                ),
                status_code=302,
            )
        user_id = "p." + key_id(key)
        await self.store.put(
            "user",
            user_id,
            {
                "user_id": user_id,
                "sealed_key": self.box.seal(key),
                "signed_in_at": int(time.time()),
            },
            min(lifetime, USER_TTL),
        )
        ours = secrets.token_urlsafe(32)
        await self.store.put(
            "code",
            ours,
            {
                "client_id": pending["client_id"],
                "scopes": params.scopes or [],
                "code_challenge": params.code_challenge,
                "redirect_uri": back,
                "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
                "resource": params.resource or self.resource,
                "subject": user_id,
                "expires_at": time.time() + CODE_TTL,
            },
            CODE_TTL,
        )
        log.info("A user signed in with Poe (%s)", user_id)
        return RedirectResponse(
            construct_redirect_uri(back, code=ours, state=params.state, iss=self.public),
            status_code=302,
        )

    async def _poe_key(self, code: str, verifier: str) -> tuple[str, float]:
        """Poe's token exchange: our code and PKCE verifier for the user's API key."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.public + CALLBACK_PATH,
            "client_id": self.settings.oauth_client_id or "",
            "code_verifier": verifier,
        }
        try:
            async with httpx2.AsyncClient(timeout=30) as http:
                response = await http.post(self.settings.oauth_token_url, data=form)
        except httpx2.HTTPError as error:
            raise RuntimeError(
                f"Poe's token endpoint could not be reached ({type(error).__name__}); try again"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        key = body.get("api_key") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(key, str) or not key:
            reason = body.get("error") if isinstance(body, dict) else None
            raise RuntimeError(
                f"Poe refused the sign-in ({response.status_code} {reason or 'no api_key'}); connect again"
            )
        lifetime = body.get("api_key_expires_in")
        return key, float(lifetime) if isinstance(
            lifetime, (int, float)
        ) and lifetime > 0 else USER_TTL

    # -- /token ---------------------------------------------------------------------------------

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        found = await self.store.get("code", authorization_code)
        if found is None or found["client_id"] != client.client_id:
            return None
        return AuthorizationCode(code=authorization_code, **found)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        # take(): of two replicas handed the same code at once, one wins; the other is refused.
        if await self.store.take("code", authorization_code.code) is None:
            raise TokenError("invalid_grant", "authorization code was already used")
        return await self._issue(
            client.client_id or "",
            authorization_code.scopes,
            authorization_code.resource,
            authorization_code.subject,
        )

    async def _issue(
        self, client_id: str, scopes: list[str], resource: str | None, subject: str | None
    ) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        now = time.time()
        record = {
            "client_id": client_id,
            "scopes": scopes,
            "resource": resource or self.resource,
            "subject": subject,
        }
        await self.store.put(
            "access",
            access,
            {**record, "expires_at": int(now + ACCESS_TTL), "refresh": hashed(refresh)},
            ACCESS_TTL,
        )
        await self.store.put(
            "refresh",
            refresh,
            {**record, "expires_at": int(now + REFRESH_TTL), "access": hashed(access)},
            REFRESH_TTL,
        )
        return OAuthToken(
            access_token=access,
            expires_in=ACCESS_TTL,
            scope=" ".join(scopes) or None,
            refresh_token=refresh,
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        found = await self.store.get("refresh", refresh_token)
        if found is None or found["client_id"] != client.client_id:
            return None
        fields = {k: found[k] for k in ("client_id", "scopes", "expires_at", "resource", "subject")}
        return RefreshToken(token=refresh_token, **fields)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        found = await self.store.take("refresh", refresh_token.token)  # rotation: used once
        if found is None:
            raise TokenError("invalid_grant", "refresh token was already used or revoked")
        await self.store.delete_hash("access", found["access"])
        return await self._issue(
            found["client_id"], scopes or found["scopes"], found["resource"], found["subject"]
        )

    # -- /mcp -------------------------------------------------------------------------------------

    async def load_access_token(self, token: str) -> UserAccessToken | None:
        found = await self.store.get("access", token)
        if found is None or found["expires_at"] < time.time():
            return None
        user = await self._user(found["subject"])
        if user is None:  # signed out (revoked) meanwhile: the key is gone
            return None
        return UserAccessToken(
            token=token,
            client_id=found["client_id"],
            scopes=found["scopes"],
            expires_at=found["expires_at"],
            resource=found["resource"],
            subject=found["subject"],
            poe_user=user,
        )

    async def _user(self, user_id: str | None) -> User | None:
        if not user_id:
            return None
        found = await self.store.get("user", user_id)
        if found is None:
            return None
        return User(user_id, user_id, self.box.open(found["sealed_key"], user_id))

    # -- /revoke ----------------------------------------------------------------------------------

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        """Ends the access and refresh token together, and deletes the user's Poe key."""
        kind, other = (
            ("access", "refresh") if isinstance(token, AccessToken) else ("refresh", "access")
        )
        found = await self.store.take(kind, token.token)
        if found is not None:
            await self.store.delete_hash(other, found[other])
        if token.subject:
            await self.store.delete("user", token.subject)


async def signed_in_users(settings: Settings) -> list[dict[str, Any]]:
    """The people signed in with Poe (ids only, never a key), for `poe-mcp users list`."""
    store = open_oauth_store(settings.store)
    try:
        return sorted(
            (
                {"name": u["user_id"], "signed_in_at": u.get("signed_in_at")}
                for u in await store.values("user")
            ),
            key=lambda u: str(u["name"]),
        )
    finally:
        await store.aclose()


async def sign_out(settings: Settings, user_id: str) -> bool:
    """Delete a person's Poe key: every token of theirs stops working at once, on every replica."""
    store = open_oauth_store(settings.store)
    try:
        found = await store.take("user", user_id)
        return found is not None
    finally:
        await store.aclose()


def oauth_server_options(settings: Settings) -> dict[str, Any]:
    """What MCPServer() takes to serve oauth mode, and the provider (for the callback route)."""
    provider = PoeOAuthProvider(settings)
    return {"auth": auth_settings(settings), "auth_server_provider": provider}


def serve_metadata(app: Any, settings: Settings) -> None:
    """The SDK's RFC 8414 document says nothing of two things this server does: accept a client named by
    its metadata document's URL (CIMD), and let a public client ("none", PKCE only) use /token and
    /revoke. It has no option for either, so its route is swapped for one serving the document the SDK's
    own build_metadata makes, with those said."""
    from mcp.server.auth.handlers.metadata import MetadataHandler
    from mcp.server.auth.routes import build_metadata, cors_middleware
    from starlette.routing import Route

    options = auth_settings(settings)
    metadata = build_metadata(
        options.issuer_url,
        options.service_documentation_url,
        options.client_registration_options or ClientRegistrationOptions(),
        options.revocation_options or RevocationOptions(),
    )
    metadata.client_id_metadata_document_supported = settings.cimd
    for methods in (
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ):
        setattr(metadata, methods, [*(getattr(metadata, methods) or []), "none"])
    path = "/.well-known/oauth-authorization-server"
    for index, route in enumerate(app.routes):
        if isinstance(route, Route) and route.path == path:
            app.routes[index] = Route(
                path,
                endpoint=cors_middleware(MetadataHandler(metadata).handle, ["GET", "OPTIONS"]),
                methods=["GET", "OPTIONS"],
            )
            return
    raise RuntimeError(f"the MCP SDK no longer serves {path}; see hosted/oauth.py serve_metadata")


def add_callback_route(server: Any) -> None:
    provider = getattr(server, "_auth_server_provider", None)
    if isinstance(provider, PoeOAuthProvider):
        server.custom_route(CALLBACK_PATH, methods=["GET"])(provider.callback)


class PublicClientRevoke:
    """The SDK's /revoke reads `client_secret` as a required field, so a public client that revokes as
    RFC 7009 says (no secret) gets a 400; an absent one is passed on as empty, which it accepts."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/revoke" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body") or len(body) > 65536:
                break
        if b"client_secret=" not in body:
            body += b"&client_secret=" if body else b"client_secret="
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)
