"""The Poe model catalog: parsed entries, lookup, suggestions, pricing, and custom-parameter checks."""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import InvalidRequestError, NotFoundError, PoeError
from .types import Usage

log = logging.getLogger("poe_mcp.catalog")

CATALOG_TTL = 3600.0
# The reasoning switches a catalog entry may declare, in the order `thinking` prefers them.
REASONING_PARAMETERS = ("enable_thinking", "thinking_budget", "reasoning_effort")


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class Pricing:
    """USD per token (prompt, completion), per image and per request, as Poe publishes them."""

    prompt: Decimal | None = None
    completion: Decimal | None = None
    image: Decimal | None = None
    request: Decimal | None = None

    @classmethod
    def from_wire(cls, data: Any) -> Pricing | None:
        if not isinstance(data, dict):
            return None
        pricing = cls(
            *(_decimal(data.get(k)) for k in ("prompt", "completion", "image", "request"))
        )
        return (
            pricing
            if any(
                v is not None
                for v in (pricing.prompt, pricing.completion, pricing.image, pricing.request)
            )
            else None
        )

    def cost(self, usage: Usage | None, images: int = 0) -> float | None:
        """Estimated USD for one call; None when nothing here prices what was used."""
        total, priced = Decimal(0), False
        if usage is not None and (self.prompt is not None or self.completion is not None):
            total += (self.prompt or 0) * usage.prompt_tokens + (
                self.completion or 0
            ) * usage.completion_tokens
            priced = True
        if self.request is not None:
            total += self.request
            priced = True
        if images and self.image is not None:
            total += self.image * images
            priced = True
        return float(round(total, 8)) if priced else None

    def per_million(self) -> dict[str, float | None]:
        def scale(v: Decimal | None, by: int) -> float | None:
            return None if v is None else float(round(v * by, 6))

        return {
            "input_per_million": scale(self.prompt, 1_000_000),
            "output_per_million": scale(self.completion, 1_000_000),
            "per_image": scale(self.image, 1),
            "per_request": scale(self.request, 1),
        }


@dataclass(frozen=True)
class ModelParameter:
    name: str
    schema: dict[str, Any]
    default: Any = None
    description: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    id: str
    display_name: str
    owned_by: str
    description: str
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    context_length: int | None
    max_output_tokens: int | None
    supports_tools: bool
    supported_endpoints: tuple[str, ...]
    pricing: Pricing | None
    parameters: tuple[ModelParameter, ...]
    icon_url: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ModelInfo:
        arch = data.get("architecture") or {}
        window = data.get("context_window") or {}
        meta = data.get("metadata") or {}
        return cls(
            id=str(data["id"]),
            display_name=str(meta.get("display_name") or data["id"]),
            owned_by=str(data.get("owned_by") or ""),
            description=str(data.get("description") or ""),
            input_modalities=tuple(arch.get("input_modalities") or ("text",)),
            output_modalities=tuple(arch.get("output_modalities") or ("text",)),
            context_length=window.get("context_length") or data.get("context_length"),
            max_output_tokens=window.get("max_output_tokens"),
            supports_tools="tools" in (data.get("supported_features") or ()),
            supported_endpoints=tuple(data.get("supported_endpoints") or ()),
            pricing=Pricing.from_wire(data.get("pricing")),
            parameters=tuple(
                ModelParameter(
                    p["name"], p.get("schema") or {}, p.get("default_value"), p.get("description")
                )
                for p in data.get("parameters") or ()
                if isinstance(p, dict) and p.get("name")
            ),
            icon_url=_icon_url(meta),
        )

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def parameter(self, name: str) -> ModelParameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def check_parameters(self, values: dict[str, Any]) -> None:
        """Refuse names this model does not declare and values its schema rejects, before a request is spent."""
        for name, value in values.items():
            declared = self.parameter(name)
            if declared is None:
                names = ", ".join(self.parameter_names) or "none"
                raise InvalidRequestError(
                    f"{self.id} has no custom parameter {name!r}; its parameters are: {names}",
                    advice="Remove it or use one of the listed names (see get_model_info).",
                )
            _check_schema(self.id, name, value, declared.schema)

    def reasoning_switch(self) -> dict[str, Any] | None:
        """The custom parameter (and value) that turns this model's reasoning on, if it declares one."""
        for name in REASONING_PARAMETERS:
            parameter = self.parameter(name)
            if parameter is None:
                continue
            schema = parameter.schema
            if name == "enable_thinking":
                return {name: True}
            if name == "thinking_budget":
                maximum = schema.get("maximum")
                return {name: min(int(maximum), 8192) if maximum else 4096}
            options = schema.get("enum") or []
            return {name: "high" if "high" in options else (options[-1] if options else "high")}
        return None


def _icon_url(metadata: dict[str, Any]) -> str | None:
    """The model's picture on Poe's CDN (`metadata.image.url`), when the catalog has one."""
    image = metadata.get("image")
    url = image.get("url") if isinstance(image, dict) else None
    return url if isinstance(url, str) and url.startswith("https://") else None


def _check_schema(model: str, name: str, value: Any, schema: dict[str, Any]) -> None:
    import jsonschema  # deferred: only calls that carry custom parameters pay for it

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as err:
        raise InvalidRequestError(
            f"{model} parameter {name!r} is invalid: {err.message}",
            advice=f"Send a value matching {json.dumps(schema)[:200]}.",
        ) from None
    except jsonschema.SchemaError:
        log.debug("Catalog schema of %s.%s is not valid JSON Schema; not checking it", model, name)


class Catalog:
    """An immutable snapshot of `/v1/models` with case-insensitive lookup by id or display name."""

    def __init__(self, entries: list[dict[str, Any]], fetched_at: float) -> None:
        self.models = [
            ModelInfo.from_wire(e) for e in entries if isinstance(e, dict) and e.get("id")
        ]
        self.fetched_at = fetched_at
        self._by_name: dict[str, ModelInfo] = {}
        for model in self.models:
            self._by_name.setdefault(model.display_name.lower(), model)
        for model in self.models:  # an exact id wins over another model's display name
            self._by_name[model.id.lower()] = model

    def find(self, name: str) -> ModelInfo | None:
        return self._by_name.get(name.strip().lower())

    def suggest(self, name: str, n: int = 3) -> list[str]:
        names = {m.id.lower(): m.id for m in self.models} | {
            m.display_name.lower(): m.id for m in self.models
        }
        matches = difflib.get_close_matches(name.lower(), list(names), n=n * 2, cutoff=0.5)
        if not matches:
            matches = [k for k in names if name.lower() in k]
        return list(dict.fromkeys(names[m] for m in matches))[:n]

    def get(self, name: str) -> ModelInfo:
        model = self.find(name)
        if model is None:
            raise self.not_found(name)
        return model

    def filter(
        self,
        query: str | None = None,
        owned_by: str | None = None,
        input_modality: str | None = None,
        output_modality: str | None = None,
        supports_tools: bool | None = None,
    ) -> list[ModelInfo]:
        """The entries matching every given filter, case-insensitively."""
        q = (query or "").lower()

        def matches(m: ModelInfo) -> bool:
            return (
                (
                    not q
                    or any(
                        q in text.lower()
                        for text in (m.id, m.display_name, m.owned_by, m.description)
                    )
                )
                and (not owned_by or m.owned_by.lower() == owned_by.lower())
                and (not input_modality or input_modality.lower() in m.input_modalities)
                and (not output_modality or output_modality.lower() in m.output_modalities)
                and (supports_tools is None or m.supports_tools == supports_tools)
            )

        return [m for m in self.models if matches(m)]

    def not_found(self, name: str) -> NotFoundError:
        suggestions = self.suggest(name)
        hint = (
            f"Did you mean: {', '.join(suggestions)}?"
            if suggestions
            else "See list_models for the available ids."
        )
        return NotFoundError(f"Model {name!r} is not in Poe's catalog", advice=hint)


Fetch = Callable[[], Awaitable[list[dict[str, Any]]]]


class CatalogCache:
    """The catalog kept in memory and on disk for about an hour; the last good copy outlives an outage."""

    def __init__(self, fetch: Fetch, cache_file: Path | None, ttl: float = CATALOG_TTL) -> None:
        self._fetch = fetch
        self._file = cache_file
        self._ttl = ttl
        self._catalog: Catalog | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Catalog:
        if self._catalog is not None and time.time() - self._catalog.fetched_at < self._ttl:
            return self._catalog
        async with self._lock:  # one fetch at a time, however many calls ask
            if self._catalog is None:
                self._catalog = self._read_disk()
            if self._catalog is not None and time.time() - self._catalog.fetched_at < self._ttl:
                return self._catalog
            try:
                entries = await self._fetch()
            except PoeError as error:
                if self._catalog is None:
                    raise
                log.warning(
                    "Serving the cached model catalog: refreshing it failed (%s)", error.type
                )
                return self._catalog
            self._catalog = Catalog(entries, time.time())
            self._write_disk(entries)
            return self._catalog

    def fresh_for(self) -> float:
        """Seconds until the copy in memory is due for a refresh (0 when there is none, or it is due)."""
        if self._catalog is None:
            return 0.0
        return max(0.0, self._ttl - (time.time() - self._catalog.fetched_at))

    async def preload(self) -> None:
        """Read the disk copy ahead of the first lookup (parsing 360 models takes tens of milliseconds)."""
        import anyio.to_thread

        if self._catalog is None:
            self._catalog = await anyio.to_thread.run_sync(self._read_disk)

    def _read_disk(self) -> Catalog | None:
        if self._file is None or not self._file.is_file():
            return None
        try:
            saved = json.loads(self._file.read_text(encoding="utf-8"))
            return Catalog(saved["data"], float(saved["fetched_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("Ignoring an unreadable catalog cache at %s", self._file)
            return None

    def _write_disk(self, entries: list[dict[str, Any]]) -> None:
        if self._file is None:
            return
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a reader never sees half a file.
            fd, tmp = tempfile.mkstemp(dir=self._file.parent, prefix=".models-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"fetched_at": time.time(), "data": entries}, out)
            os.replace(tmp, self._file)
        except OSError as err:
            log.warning("Could not cache the model catalog at %s: %s", self._file, err)
