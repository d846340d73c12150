"""PoeClient: the one object per process that talks to Poe (chat, streaming, catalog, account)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import httpx2

from ..config import Settings
from .catalog import Catalog, CatalogCache, ModelInfo
from .errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PoeConnectionError,
    PoeError,
    UpstreamError,
    classify,
    local_timeout,
)
from .retry import Budget, PoePacedBudget, RequestBudget, RetryPolicy
from .sampling import refuse_standard_names
from .structured import check_structured
from .types import ChatRequest, Completion, TextListener

if TYPE_CHECKING:
    from .videos import VideoJobs

log = logging.getLogger(__name__)


class Backend(Protocol):
    """How one Poe protocol turns a ChatRequest into a Completion."""

    name: str

    async def complete(self, request: ChatRequest) -> Completion: ...

    async def stream(self, request: ChatRequest, listener: TextListener | None) -> Completion: ...


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
                limits=httpx2.Limits(max_connections=200, max_keepalive_connections=50),
                follow_redirects=False,
                event_hooks={"response": [self._observe_rate_limit]},
            )
        return self._http

    async def _observe_rate_limit(self, response: httpx2.Response) -> None:
        """Every response through the pool (chat, streams, catalog, account, videos) tells the budget what
        Poe has left; a stream's headers count before its body arrives."""
        self.budget.observe(response.headers)

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
        body = await self.retry.run(
            lambda: self.request_json("GET", f"{self.settings.base_url}/models", auth=False)
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise UpstreamError("Poe's model list has no 'data' array")
        return data

    # -- the account API -----------------------------------------------------------------------

    async def account(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET one of Poe's account endpoints (`/usage/...`), which live at the API's origin."""
        self._require_key()
        url = f"{self.settings.origin}{path}"
        return await self.retry.run(
            lambda: self.request_json("GET", url, params=params), self.budget
        )

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._require_key()}"}

    async def request_json(self, method: str, url: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """One HTTP exchange with Poe outside the chat API; failures become PoeErrors."""
        headers = self.auth_headers() if auth else {}
        try:
            response = await self.http.request(method, url, headers=headers, **kwargs)
        except httpx2.TimeoutException:
            raise local_timeout(self.settings.timeout) from None
        except httpx2.TransportError as exc:
            raise PoeConnectionError(f"Could not reach Poe ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise classify(response.status_code, body, response.headers)
        if isinstance(body, str):
            raise UpstreamError(
                f"Poe answered {url.rsplit('/', 1)[-1]} with something that is not JSON"
            )
        return body

    def videos(self, poll_interval: float = 5.0) -> VideoJobs:
        """Poe's /v1/videos jobs, through this client's connection pool and error handling."""
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

                self._backend = BotProtocolBackend(key, self.settings.origin, self.settings.timeout)
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

        async def attempt() -> Completion:
            if request.stream:
                return await backend.stream(request, listener)
            return await backend.complete(request)

        try:
            completion = await self.retry.run(attempt, self.budget)
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
