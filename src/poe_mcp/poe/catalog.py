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

from .errors import InvalidRequestError, NotFoundError, PoeError, UpstreamError
from .types import Usage

log = logging.getLogger(__name__)

CATALOG_TTL = 3600.0
# The reasoning switches a catalog entry may declare as custom parameters, in the order `thinking`
# prefers them: the newest flagships declare only output_effort (Claude 4.6+) or thinking_level (Gemini 3).
REASONING_PARAMETERS = (
    "reasoning_effort",
    "output_effort",
    "thinking_level",
    "thinking_budget",
    "enable_thinking",
)
DEFAULT_EFFORT = "high"  # what `thinking: true` asks for when no effort is given
# An OpenAI effort as the nearest value of a switch with other names (output_effort says max, not xhigh).
EFFORT_ALIASES = {
    "xhigh": ("max", "high"),
    "minimal": ("low",),
    "medium": ("high",),
    "max": ("xhigh",),
}
# Thinking budgets (tokens) for an effort, capped by what the model allows.
BUDGETS = {
    "none": 0,
    "minimal": 1024,
    "low": 2048,
    "medium": 4096,
    "high": 8192,
    "xhigh": 16384,
    "max": 32768,
}


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class Pricing:
    """USD per token (prompt, completion, cached prompt), per image and per request, as Poe publishes them."""

    prompt: Decimal | None = None
    completion: Decimal | None = None
    image: Decimal | None = None
    request: Decimal | None = None
    input_cache_read: Decimal | None = None

    @classmethod
    def from_wire(cls, data: Any) -> Pricing | None:
        if not isinstance(data, dict):
            return None
        pricing = cls(
            *(
                _decimal(data.get(k))
                for k in ("prompt", "completion", "image", "request", "input_cache_read")
            )
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
            # Cached prompt tokens are billed at the cache-read price where the model has one.
            cached = min(usage.cached_tokens, usage.prompt_tokens) if self.input_cache_read else 0
            total += (
                (self.prompt or 0) * (usage.prompt_tokens - cached)
                + (self.input_cache_read or 0) * cached
                + (self.completion or 0) * usage.completion_tokens
            )
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


class MalformedEntry(ValueError):
    """A catalog entry with a field of the wrong type: skipped, never trusted half-way."""


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEntry(f"{key} is not an object")
    return value


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedEntry(f"{key} is not a list")
    return value


def _strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    values = _list(data, key)
    if not all(isinstance(v, str) for v in values):
        raise MalformedEntry(f"{key} holds something other than strings")
    return tuple(values)


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEntry(f"{value!r} is not a whole number")
    return value


def _named(parameter: Any) -> bool:
    return isinstance(parameter, dict) and isinstance(parameter.get("name"), str)


def _parameter(data: dict[str, Any]) -> ModelParameter:
    schema = data.get("schema") or {}
    if not isinstance(schema, dict):
        raise MalformedEntry(f"parameter {data['name']!r} has a schema that is not an object")
    description = data.get("description")
    return ModelParameter(
        data["name"],
        schema,
        data.get("default_value"),
        description if isinstance(description, str) else None,
    )


@dataclass(frozen=True)
class ModelParameter:
    name: str
    schema: dict[str, Any]
    default: Any = None
    description: str | None = None


@dataclass(frozen=True)
class Reasoning:
    """The catalog's `reasoning` object: thinking-budget limits, whether reasoning is always on, and
    whether the standard top-level `reasoning_effort` is honoured."""

    budget_max: int | None = None
    budget_min: int | None = None
    required: bool = False
    supports_reasoning_effort: bool = False

    @classmethod
    def from_wire(cls, data: Any) -> Reasoning | None:
        if not isinstance(data, dict):
            return None
        budget = data.get("budget")
        if not isinstance(budget, dict):
            budget = {}
        return cls(
            budget_max=_integer(budget.get("max_tokens")),
            budget_min=_integer(budget.get("min_tokens")),
            required=data.get("required") is True,
            supports_reasoning_effort=data.get("supports_reasoning_effort") is True,
        )


def _integer(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class ReasoningSwitch:
    """What turns a model's reasoning on: custom parameters, the standard reasoning_effort, or nothing (a note)."""

    parameters: dict[str, Any]
    effort: str | None = None
    note: str | None = None


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
    reasoning: Reasoning | None = None
    icon_url: str | None = None
    supported_features: tuple[str, ...] = ()  # `tools`, `web_search`

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ModelInfo:
        """One `/v1/models` entry; a field of the wrong type raises MalformedEntry (the entry is skipped)."""
        if not isinstance(data.get("id"), str) or not data["id"]:
            raise MalformedEntry("no string id")
        arch = _object(data, "architecture")
        window = _object(data, "context_window")
        meta = _object(data, "metadata")
        return cls(
            id=data["id"],
            display_name=str(meta.get("display_name") or data["id"]),
            owned_by=str(data.get("owned_by") or ""),
            description=str(data.get("description") or ""),
            input_modalities=_strings(arch, "input_modalities") or ("text",),
            output_modalities=_strings(arch, "output_modalities") or ("text",),
            context_length=_count(window.get("context_length") or data.get("context_length")),
            max_output_tokens=_count(window.get("max_output_tokens")),
            supports_tools="tools" in _strings(data, "supported_features"),
            supported_endpoints=_strings(data, "supported_endpoints"),
            pricing=Pricing.from_wire(data.get("pricing")),
            parameters=tuple(_parameter(p) for p in _list(data, "parameters") if _named(p)),
            reasoning=Reasoning.from_wire(data.get("reasoning")),
            icon_url=_icon_url(meta),
            supported_features=_strings(data, "supported_features"),
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

    def reasoning_switch(self, effort: str | None = None) -> ReasoningSwitch:
        """How to turn this model's reasoning on at `effort` (default high), by what its entry declares."""
        for name in REASONING_PARAMETERS:
            parameter = self.parameter(name)
            if parameter is not None:
                value = self._switch_value(name, parameter.schema, effort or DEFAULT_EFFORT)
                if name == "reasoning_effort":
                    return ReasoningSwitch({}, effort=value)
                return ReasoningSwitch({name: value})
        reasoning = self.reasoning
        if reasoning is not None and reasoning.supports_reasoning_effort:
            return ReasoningSwitch({}, effort=effort or DEFAULT_EFFORT)
        if reasoning is not None and reasoning.required:
            return ReasoningSwitch(
                {}, note=f"{self.id} always reasons; it has no switch, so none was sent"
            )
        return ReasoningSwitch(
            {},
            note=f"{self.id} declares no reasoning switch, so thinking/reasoning_effort was not sent",
        )

    def _switch_value(self, name: str, schema: dict[str, Any], effort: str) -> Any:
        if name == "enable_thinking":
            return effort != "none"
        if name == "thinking_budget":
            budget = BUDGETS.get(effort, BUDGETS[DEFAULT_EFFORT])
            highest = [self.reasoning.budget_max if self.reasoning else None, schema.get("maximum")]
            lowest = [self.reasoning.budget_min if self.reasoning else None, schema.get("minimum")]
            budget = min([budget] + [int(m) for m in highest if isinstance(m, (int, float))])
            return max([budget] + [int(m) for m in lowest if isinstance(m, (int, float))])
        options = [o for o in schema.get("enum") or () if isinstance(o, str)]
        for wanted in (effort, *EFFORT_ALIASES.get(effort, ()), DEFAULT_EFFORT):
            if not options or wanted in options:
                return wanted
        return options[-1]


# Schemas reported as not checked here: logged once each, not on every call.
_unchecked: set[str] = set()


def _icon_url(metadata: dict[str, Any]) -> str | None:
    """The model's picture on Poe's CDN (`metadata.image.url`), when the catalog has one."""
    image = metadata.get("image")
    url = image.get("url") if isinstance(image, dict) else None
    return url if isinstance(url, str) and url.startswith("https://") else None


def _check_schema(model: str, name: str, value: Any, schema: dict[str, Any]) -> None:
    import jsonschema  # deferred: only calls that carry custom parameters pay for it

    from .schema_check import UnsafeSchema, describe, validation_errors

    try:
        error = validation_errors(value, schema)
    except (UnsafeSchema, jsonschema.SchemaError) as reason:
        if f"{model}.{name}" not in _unchecked:
            _unchecked.add(f"{model}.{name}")
            log.info("Not checking %s.%s here (Poe checks it): %s", model, name, reason)
        return
    if error is not None:
        raise InvalidRequestError(
            f"{model} parameter {name!r} is invalid: {error.message}",
            advice=f"Send a value matching {describe(schema)}.",
        )


class Catalog:
    """An immutable snapshot of `/v1/models` with case-insensitive lookup by id or display name."""

    def __init__(self, entries: list[Any], fetched_at: float) -> None:
        self.models = _usable_models(entries)
        self.fetched_at = fetched_at
        # Set when this copy is served because a newer one could not be had: callers are told.
        self.note: str | None = None
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


# Entries already reported as skipped: the catalog is parsed on every refresh, the log says it once.
_reported: set[str] = set()


def _usable_models(entries: list[Any]) -> list[ModelInfo]:
    """The entries that parse; the others are skipped and named in one log line."""
    models, skipped = [], []
    for entry in entries:
        try:
            if not isinstance(entry, dict):
                raise MalformedEntry("not an object")
            models.append(ModelInfo.from_wire(entry))
        except (MalformedEntry, TypeError, ValueError, ArithmeticError) as error:
            name = entry.get("id") if isinstance(entry, dict) else None
            skipped.append(f"{name if isinstance(name, str) else repr(entry)[:60]} ({error})")
    fresh = [s for s in skipped if s not in _reported]
    if fresh:
        _reported.update(fresh)
        log.warning(
            "Skipped %d malformed model catalog entries: %s", len(fresh), "; ".join(fresh)[:2000]
        )
    return models


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
                fresh = Catalog(entries, time.time())
                if not fresh.models:
                    raise UpstreamError("Poe's model list holds no usable entry")
            except PoeError as error:
                if self._catalog is None:
                    raise
                return self._last_good(error)
            self._catalog = fresh
            self._write_disk(entries)
            return self._catalog

    def _last_good(self, error: PoeError) -> Catalog:
        assert self._catalog is not None
        log.warning("Serving the cached model catalog: refreshing it failed (%s)", error.message)
        fetched = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self._catalog.fetched_at))
        self._catalog.note = (
            f"Poe's model list could not be refreshed ({error.message}); "
            f"this is the last good copy, from {fetched}"
        )
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
