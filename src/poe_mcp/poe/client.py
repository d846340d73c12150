"""PoeClient: the one object per process that talks to Poe (chat, streaming, catalog, account, videos,
media). Every request goes through one of its verbs (`chat`, `get_json`, `post_json`, `download`,
`save_links`), and each verb runs under the one request policy, `_send`: the request budget before
each attempt, an overall deadline (POE_MCP_TIMEOUT) on each, the body capped (POE_MCP_MAX_RESPONSE_MB),
failures translated once (errors.translate) and retried by one table (retry.should_retry)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import httpx2

from ..config import Settings
from .budget import Budget, PoePacedBudget, RequestBudget
from .catalog import Catalog, CatalogCache, ModelInfo
from .errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PoeError,
    UnparseableResponseError,
    classify,
    local_timeout,
    translate,
)
from .media import MediaFile, SkippedUrl, download_media, save_all
from .retry import RetryPolicy
from .sampling import refuse_standard_names
from .streaming import StreamAssembler, cap_body
from .structured import check_structured
from .types import ChatRequest, Completion, TextListener

if TYPE_CHECKING:
    from .videos import VideoJobs

log = logging.getLogger(__name__)
T = TypeVar("T")


class Backend(Protocol):
    """How one Poe protocol turns a ChatRequest into a Completion (one attempt: the client's request
    policy retries it, bounds it in time and caps its body). A stream feeds the assembler it is given,
    so that what arrived before the deadline is the client's to return."""

    async def complete(self, request: ChatRequest) -> Completion: ...

    async def stream(self, request: ChatRequest, assembler: StreamAssembler) -> Completion: ...


class PoeClient:
    """Holds the HTTP pool, the catalog cache, the request budget and the backend; knows nothing of MCP."""

    def __init__(
        self,
        settings: Settings,
        http: httpx2.AsyncClient | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.settings = settings
        self._http = http
        self.budget = PoePacedBudget(budget or RequestBudget(settings.rpm))
        self.retry = RetryPolicy(settings.max_retries)
        self.catalog = CatalogCache(self._fetch_models, settings.cache_dir / "models.json")
        self._backend: Backend | None = None
        self._responses: Backend | None = None
        self.calls = 0
        self.last_error: PoeError | None = None

    @property
    def http(self) -> httpx2.AsyncClient:
        """The one connection pool, made on first use: building its TLS context costs ~70 ms of cold start."""
        if self._http is None:
            self._http = httpx2.AsyncClient(
                timeout=httpx2.Timeout(self.settings.timeout, connect=10.0),
                # Measured, not guessed (BENCHMARKS.md, 2026-12-03): httpcore's pool polls every
                # idle connection on each request and response, so keeping 200 alive instead of 50
                # cost the loop more than reopening them did (25% of its samples in a 100-call burst
                # against 4%), and 500 open made a 500-call burst slower; neither helped the wall.
                limits=httpx2.Limits(max_connections=200, max_keepalive_connections=50),
                follow_redirects=False,
                event_hooks={"response": [self._on_response]},
            )
        return self._http

    @property
    def max_response_bytes(self) -> int:
        return int(self.settings.max_response_mb * 1_000_000)

    async def _on_response(self, response: httpx2.Response) -> None:
        """Every response through the pool (chat, streams, catalog, account, videos) tells the budget what
        Poe has left (a stream's headers count before its body arrives), and has its body capped."""
        self.budget.observe(response.headers)
        cap_body(response, self.max_response_bytes)

    async def aclose(self) -> None:
        if self._backend is not None and hasattr(self._backend, "aclose"):
            await self._backend.aclose()
        if self._responses is not None and hasattr(self._responses, "aclose"):
            await self._responses.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def warm_up(self) -> None:
        """Do the slow first-call work before the first call: import the backend, read the cached catalog."""
        import anyio.to_thread

        if self.settings.api_key:
            await anyio.to_thread.run_sync(lambda: self.backend)
        await self.catalog.preload()

    # -- the catalog ---------------------------------------------------------------------------

    async def models(self) -> Catalog:
        return await self.catalog.get()

    async def model_info(self, name: str) -> ModelInfo:
        return (await self.models()).get(name)

    async def _fetch_models(self) -> list[dict[str, Any]]:
        # /v1/models is public; an empty "Bearer " header would get a 401, so send no auth at all. Without a
        # key it cannot count against the key's 500 per minute, so it takes nothing from the budget.
        body = await self.get_json(f"{self.settings.base_url}/models", auth=False, budget=False)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise UnparseableResponseError("Poe's model list has no 'data' array")
        return data

    # -- the account API -----------------------------------------------------------------------

    async def account(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET one of Poe's account endpoints (`/usage/...`), which live at the API's origin."""
        self._require_key()
        return await self.get_json(f"{self.settings.origin}{path}", params=params)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._require_key()}"}

    # -- the request policy and its verbs ------------------------------------------------------

    async def _send(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        budget: bool = True,
        on_deadline: Callable[[PoeError], T] | None = None,
    ) -> T:
        """The one request policy: the budget before each attempt; each attempt within POE_MCP_TIMEOUT
        overall (a slow drip cannot outlive it; `on_deadline` may keep what arrived); whatever fails
        translated once, chained to its cause; retried as `should_retry` says."""
        timeout = self.settings.timeout

        async def bounded() -> T:
            with anyio.move_on_after(timeout):
                try:
                    return await attempt()
                except PoeError:
                    raise
                except Exception as exc:
                    raise translate(exc, timeout) from exc
            expired = local_timeout(timeout)
            if on_deadline is not None:
                return on_deadline(expired)
            raise expired

        return await self.retry.run(bounded, self.budget if budget else None)

    async def _exchange(self, method: str, url: str, auth: bool, **kwargs: Any) -> Any:
        """One HTTP exchange with Poe outside the chat API: a status error classified, JSON required."""
        headers = self.auth_headers() if auth else {}
        response = await self.http.request(method, url, headers=headers, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise classify(response.status_code, body, response.headers)
        if isinstance(body, str):
            raise UnparseableResponseError(
                f"Poe answered {url.rsplit('/', 1)[-1]} with something that is not JSON"
            )
        return body

    async def get_json(
        self,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        budget: bool = True,
    ) -> Any:
        """GET a JSON answer from Poe (catalog, account, a video job), under the request policy."""
        return await self._send(
            lambda: self._exchange("GET", url, auth, params=params), budget=budget
        )

    async def post_json(
        self,
        url: str,
        json: dict[str, Any] | None = None,
        *,
        data: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
    ) -> Any:
        """POST to Poe (/v1/images, /v1/videos, ...) a JSON body, or a multipart form (`data` and
        `files`), under the request policy; the answer must be JSON."""
        sent: dict[str, Any] = (
            {"json": json} if json is not None else {"data": data, "files": files}
        )
        return await self._send(lambda: self._exchange("POST", url, True, **sent))

    async def download(
        self, url: str, output_dir: Path, *, max_bytes: int, auth: bool = False
    ) -> MediaFile:
        """Save one file from Poe (a video's content, a CDN link) under the request policy; a CDN link
        (`auth=False`) is not Poe's API and takes nothing from the budget."""
        headers = self.auth_headers() if auth else None
        return await self._send(
            lambda: download_media(
                self.http,
                url,
                output_dir,
                timeout=self.settings.timeout,
                headers=headers,
                max_bytes=max_bytes,
            ),
            budget=auth,
        )

    async def save_links(
        self, urls: list[str], output_dir: Path, max_bytes: int
    ) -> tuple[list[MediaFile], list[SkippedUrl]]:
        """Every media link of a reply that may be fetched, saved; the others listed with the reason."""
        return await save_all(self.download, urls, self.settings.origin, output_dir, max_bytes)

    def videos(self, poll_interval: float = 5.0) -> VideoJobs:
        """Poe's /v1/videos jobs, through this client's verbs."""
        from .videos import VideoJobs

        return VideoJobs(self, poll_interval)

    # -- chat ----------------------------------------------------------------------------------

    def _require_key(self) -> str:
        if not self.settings.api_key:
            raise AuthenticationError(
                "No Poe API key is configured",
                status=401,
                advice="Set POE_API_KEY (create a key at https://poe.com/api_key); a running server must be restarted to see it.",
            )
        return self.settings.api_key

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            key = self._require_key()
            if self.settings.backend == "fastapi_poe":
                from .backends.bot_protocol import BotProtocolBackend

                self._backend = BotProtocolBackend(
                    key, self.settings.origin, self.settings.timeout, self.max_response_bytes
                )
            else:
                from .backends.openai import OpenAIBackend

                self._backend = OpenAIBackend(
                    key, self.settings.base_url, self.http, self.settings.timeout
                )
        return self._backend

    @property
    def responses_backend(self) -> Backend:
        """Poe's Responses API (/v1/responses), over the same pool, whichever backend chat uses."""
        if self._responses is None:
            from .backends.responses import ResponsesBackend

            self._responses = ResponsesBackend(
                self._require_key(), self.settings.base_url, self.http, self.settings.timeout
            )
        return self._responses

    async def backend_for(self, request: ChatRequest, model: ModelInfo | None) -> Backend:
        """The chat backend, or the Responses API where the model or the request calls for it."""
        from .backends.responses import choose_api

        catalog = [] if not request.web_search else await self._catalog_models()
        if choose_api(request, model, catalog) == "responses":
            request.api = "responses"
            return self.responses_backend
        return self.backend

    async def _catalog_models(self) -> list[ModelInfo]:
        try:
            return (await self.models()).models
        except PoeError:
            return []

    async def resolve_model(self, name: str) -> ModelInfo | None:
        """The catalog entry for a model name, or None when the catalog cannot say (unknown or unreachable)."""
        try:
            return (await self.models()).find(name)
        except PoeError:
            return None

    async def prepare(self, request: ChatRequest) -> ModelInfo | None:
        """Check a request against the catalog before any point is spent; use the canonical model id."""
        self._require_key()
        refuse_standard_names(request.parameters)
        model = await self.resolve_model(request.model)
        if model is not None:
            request.model = model.id
            model.check_parameters(request.parameters)
            if request.tools and not model.supports_tools:
                raise InvalidRequestError(
                    f"{model.id} does not support tool calling",
                    advice="Use a model whose list_models entry has supports_tools: true.",
                )
        return model

    async def chat(self, request: ChatRequest, listener: TextListener | None = None) -> Completion:
        """Send one chat request, streamed or not, with the retry policy and the request budget."""
        model = await self.prepare(request)
        backend = await self.backend_for(request, model)
        self.calls += 1
        try:
            if request.stream:
                completion = await self._stream(backend, request, listener)
            else:
                completion = await self._send(lambda: backend.complete(request))
        except PoeError as error:
            if isinstance(error, NotFoundError) and model is None:
                error.advice = (await self._suggestions(request.model)) or error.advice
            self.last_error = error
            raise
        self.last_error = completion.error
        if model is not None and model.pricing is not None:
            completion.cost_usd = model.pricing.cost(completion.usage)
        check_structured(completion, request.sampling.response_format)
        return completion

    async def _stream(
        self, backend: Backend, request: ChatRequest, listener: TextListener | None
    ) -> Completion:
        """One streamed answer under the request policy; at the deadline, what arrived is returned,
        marked broken (or, when nothing did, the timeout is raised)."""
        assembler = StreamAssembler(request.model, listener)

        async def attempt() -> Completion:
            nonlocal assembler
            assembler = StreamAssembler(request.model, listener)
            return await backend.stream(request, assembler)

        return await self._send(attempt, on_deadline=lambda error: assembler.broken(error))

    def health(self) -> str:
        """Poe's reachability as the last chat call saw it: unknown, ok, or unreachable."""
        if self.calls == 0:
            return "unknown"
        error = self.last_error
        if error is not None and (error.status is None or error.status >= 500):
            return "unreachable"
        return "ok"

    async def _suggestions(self, name: str) -> str | None:
        try:
            return (await self.models()).not_found(name).advice
        except PoeError:
            return None
