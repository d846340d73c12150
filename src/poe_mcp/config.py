"""Settings, read once from command-line flags, the environment and `.env` (in that order of precedence)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "poe-mcp"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
BACKENDS = ("openai", "fastapi_poe")
TRANSPORTS = ("stdio", "http")
AUTH_MODES = ("token", "tokens", "oauth")  # POE_MCP_AUTH: one shared token, a tokens file, or OAuth


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def user_config_dotenv() -> Path:
    """The `.env` a user keeps beside their other settings; read in every mode."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / ".env"


def dotenv_files(serving: bool, environ: Mapping[str, str]) -> list[Path]:
    """The `.env` files settings come from, lowest precedence first.

    An MCP client starts servers in whatever folder a user has open, often a cloned repository: a `.env`
    there could send the key to another host. So serving reads the working folder's `.env` only when the
    user opted in with POE_MCP_DOTENV=1 in the environment; the command line for people reads it always.
    """
    files = [user_config_dotenv()]
    if not serving or environ.get("POE_MCP_DOTENV") == "1":
        files.append(Path.cwd() / ".env")
    return files


# Folders that hold the system or every secret of a user: never the default attachment folder.
_SYSTEM_DIRS = tuple(
    Path(p)
    for p in (
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/sys",
        "/usr",
        "/var",
    )
)


def default_allowed_dirs() -> tuple[Path, ...]:
    """The working folder, unless it is `/`, the home folder itself or a system folder (then none)."""
    cwd = Path.cwd().resolve()
    if (
        cwd == Path("/")
        or cwd == Path.home().resolve()
        or any(cwd == d or cwd.is_relative_to(d) for d in _SYSTEM_DIRS)
    ):
        return ()
    return (cwd,)


def _user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def _number(
    convert: Callable[[str], Any], lowest: float, *, above: bool, what: str
) -> Callable[[str, str], Any]:
    """A parser for a number at least (or, with `above`, greater than) `lowest`; NaN is refused too."""

    def parse(name: str, raw: str) -> Any:
        try:
            value = convert(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
        if not (value > lowest if above else value >= lowest):
            raise SettingsError(
                f"{name} must be {'greater than' if above else 'at least'} {lowest:g}, got {raw!r}"
            )
        return value

    return parse


_positive_int = _number(int, 0, above=True, what="a whole number")
_non_negative_int = _number(int, 0, above=False, what="a whole number")
_positive_float = _number(float, 0, above=True, what="a number (seconds or MB)")


def _money(name: str, raw: str) -> float:
    """A budget: a positive amount (USD or Poe points)."""
    return float(_number(float, 0, above=True, what="an amount (USD or points)")(name, raw))


def _threshold(name: str, raw: str) -> float:
    return float(_number(float, 0, above=False, what="an amount in USD")(name, raw))


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def _time_zone(name: str, raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = raw.strip() or "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{name} must be an IANA time zone such as UTC or Europe/Paris, got {raw!r}"
        ) from None
    return value


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip()
        if value not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}; got {raw!r}")
        return value

    return parse


# POE_MCP_COMPAT: the earlier servers whose clients can be served too (their tools and result shapes).
COMPAT_PROFILES = ("none", "poe-proxy-mcp")


def _compat(name: str, raw: str) -> str:
    return _choice(COMPAT_PROFILES)(name, raw.strip() or "none")


def _port(name: str, raw: str) -> int:
    value = _positive_int(name, raw)
    if value > 65535:
        raise SettingsError(f"{name} must be a TCP port (1-65535), got {raw!r}")
    return value


def _list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _base_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return value


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _optional_text(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


def _paths(name: str, raw: str) -> tuple[Path, ...]:
    parts = [p for p in raw.split(os.pathsep) if p.strip()]
    if not parts:
        raise SettingsError(f"{name} must name at least one folder")
    return tuple(Path(p).expanduser().resolve() for p in parts)


def _store(name: str, raw: str) -> str:
    value = raw.strip()
    if value.startswith(("redis://", "rediss://")):
        return value
    if value.startswith("sqlite:///"):
        value = value[len("sqlite:///") :]
    elif "://" in value:
        raise SettingsError(
            f"{name} must be a file path, a sqlite:/// URL or a redis:// URL, got {raw!r}"
        )
    if not value:
        raise SettingsError(f"{name} must not be empty")
    return str(Path(value).expanduser())


@dataclass(frozen=True)
class Option:
    """One setting: its environment variable, its flag, and how to read it."""

    env: str
    parse: Callable[[str, str], Any]
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.env.removeprefix("POE_MCP_").removeprefix("POE_").lower().replace(
            "_", "-"
        )


# One table drives the environment, `.env` and the `serve` flags, so none of them can drift.
OPTIONS: dict[str, Option] = {
    "api_key": Option("POE_API_KEY", _optional_text, "the Poe API key"),
    "base_url": Option("POE_BASE_URL", _base_url, "Poe's OpenAI-compatible API"),
    "backend": Option("POE_MCP_BACKEND", _choice(BACKENDS), "openai or fastapi_poe"),
    "default_model": Option(
        "POE_MCP_DEFAULT_MODEL", _text, "model used when a tool's bot is omitted"
    ),
    "output_dir": Option("POE_MCP_OUTPUT_DIR", _path, "where generated media is saved"),
    "allowed_dirs": Option(
        "POE_MCP_ALLOWED_DIRS", _paths, "folders local attachments may come from"
    ),
    "store": Option(
        "POE_MCP_STORE", _store, "conversation store: path, sqlite:/// or redis:// URL"
    ),
    "cache_dir": Option("POE_MCP_CACHE_DIR", _path, "where the model catalog is cached"),
    "max_attachment_mb": Option(
        "POE_MCP_MAX_ATTACHMENT_MB", _positive_float, "largest attachment accepted, in MB"
    ),
    "max_media_mb": Option(
        "POE_MCP_MAX_MEDIA_MB", _positive_float, "largest generated file downloaded, in MB"
    ),
    "max_response_mb": Option(
        "POE_MCP_MAX_RESPONSE_MB",
        _positive_float,
        "largest answer read from Poe, in MB; a longer one is cut and not stored",
    ),
    "rpm": Option("POE_MCP_RPM", _positive_int, "request budget per minute"),
    "max_retries": Option(
        "POE_MCP_MAX_RETRIES", _non_negative_int, "retries of a retryable failure"
    ),
    "timeout": Option("POE_MCP_TIMEOUT", _positive_float, "seconds one upstream request may take"),
    "transport": Option("POE_MCP_TRANSPORT", _choice(TRANSPORTS), "stdio or http"),
    "host": Option("POE_MCP_HOST", _text, "HTTP host to bind"),
    "port": Option("POE_MCP_PORT", _port, "HTTP port"),
    "auth_token": Option(
        "POE_MCP_AUTH_TOKEN", _optional_text, "bearer token HTTP clients must send"
    ),
    "auth": Option(
        "POE_MCP_AUTH",
        _choice(AUTH_MODES),
        "HTTP users: token (one shared), tokens (a file), oauth",
    ),
    "tokens_file": Option(
        "POE_MCP_TOKENS_FILE", _path, "tokens mode: the JSON file of users and their token hashes"
    ),
    "secret_key": Option(
        "POE_MCP_SECRET_KEY",
        _optional_text,
        "Fernet key that encrypts users' Poe keys at rest (tokens and oauth modes)",
    ),
    "public_url": Option(
        "POE_MCP_PUBLIC_URL", _base_url, "oauth mode: this server's public origin (https://...)"
    ),
    "oauth_authorize_url": Option(
        "POE_OAUTH_AUTHORIZE_URL", _base_url, "oauth mode: Poe's authorization page"
    ),
    "oauth_token_url": Option("POE_OAUTH_TOKEN_URL", _base_url, "oauth mode: Poe's token exchange"),
    "oauth_client_id": Option(
        "POE_OAUTH_CLIENT_ID", _optional_text, "oauth mode: this server's client id at Poe"
    ),
    "cimd": Option(
        "POE_MCP_CIMD",
        _flag,
        "oauth mode: 1 (default) accepts a client whose id is the https:// URL of its metadata document",
    ),
    "cimd_allow_hosts": Option(
        "POE_MCP_CIMD_ALLOW_HOSTS",
        _list,
        "oauth mode: comma-separated host names whose client metadata documents may be fetched even "
        "from private addresses (an intranet)",
    ),
    "allowed_hosts": Option(
        "POE_MCP_ALLOWED_HOSTS",
        _list,
        "comma-separated Host values HTTP accepts (host:port, host:*)",
    ),
    "allowed_origins": Option(
        "POE_MCP_ALLOWED_ORIGINS", _list, "comma-separated browser Origins HTTP accepts"
    ),
    "header_timeout": Option(
        "POE_MCP_HEADER_TIMEOUT",
        _positive_float,
        "HTTP: seconds a client has to send a request's headers before it is dropped",
    ),
    "max_connections": Option(
        "POE_MCP_MAX_CONNECTIONS",
        _positive_int,
        "HTTP: connections served at once; past that, requests get 503",
    ),
    "log_level": Option("POE_MCP_LOG_LEVEL", _choice(LOG_LEVELS, upper=True), "stderr log level"),
    "compat": Option(
        "POE_MCP_COMPAT", _compat, "poe-proxy-mcp: also serve that earlier server's tools"
    ),
    "tool_icons": Option(
        "POE_MCP_TOOL_ICONS", _flag, "1: an icon on each tool too (~4.8 KB more in tools/list)"
    ),
    # The spend guard (README "Budgets"): each budget is off unless set.
    "max_cost_per_call": Option(
        "POE_MCP_MAX_COST_PER_CALL", _money, "most one call may cost, USD (estimated first)"
    ),
    "max_cost_per_session": Option(
        "POE_MCP_MAX_COST_PER_SESSION", _money, "most one conversation may cost, USD"
    ),
    "max_cost_per_day": Option(
        "POE_MCP_MAX_COST_PER_DAY", _money, "most all calls may cost a day, USD"
    ),
    "max_points_per_call": Option(
        "POE_MCP_MAX_COST_PER_CALL_POINTS", _money, "most one call may cost, Poe points"
    ),
    "max_points_per_session": Option(
        "POE_MCP_MAX_COST_PER_SESSION_POINTS", _money, "most one conversation may cost, points"
    ),
    "max_points_per_day": Option(
        "POE_MCP_MAX_COST_PER_DAY_POINTS", _money, "most all calls may cost a day, points"
    ),
    "points_per_usd": Option(
        "POE_MCP_POINTS_PER_USD", _money, "Poe points one USD buys (for the points budgets)"
    ),
    "budget_tz": Option("POE_MCP_BUDGET_TZ", _time_zone, "time zone whose midnight resets the day"),
    "allow_unpriced": Option(
        "POE_MCP_ALLOW_UNPRICED", _flag, "1: let models the catalog does not price pass budgets"
    ),
    "confirm_above_usd": Option(
        "POE_MCP_CONFIRM_ABOVE_USD", _threshold, "ask the person before a call estimated above this"
    ),
    "allow_confirm_argument": Option(
        "POE_MCP_ALLOW_CONFIRM_ARGUMENT",
        _flag,
        "1: a tool's confirm: true stands for the person's yes",
    ),
}

# The budgets in points are estimated from the USD prices at POE_MCP_POINTS_PER_USD.
POINT_BUDGETS = ("max_points_per_call", "max_points_per_session", "max_points_per_day")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, validated; built once per process."""

    api_key: str | None = None
    base_url: str = "https://api.poe.com/v1"
    backend: str = "openai"
    default_model: str = "Claude-Sonnet-4.5"
    output_dir: Path = field(default_factory=lambda: _user_data_dir() / "media")
    allowed_dirs: tuple[Path, ...] = field(default_factory=default_allowed_dirs)
    store: str = field(default_factory=lambda: str(_user_data_dir() / "poe-mcp.db"))
    cache_dir: Path = field(
        default_factory=lambda: Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    )
    max_attachment_mb: float = 50.0
    max_media_mb: float = 500.0
    max_response_mb: float = 32.0
    rpm: int = 500
    max_retries: int = 4
    timeout: float = 600.0
    transport: str = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    auth_token: str | None = field(default=None, repr=False)
    auth: str = "token"
    tokens_file: Path = field(default_factory=lambda: _user_data_dir() / "tokens.json")
    secret_key: str | None = field(default=None, repr=False)
    public_url: str | None = None
    oauth_authorize_url: str = "https://poe.com/oauth/authorize"
    oauth_token_url: str = "https://api.poe.com/token"
    oauth_client_id: str | None = None
    cimd: bool = True
    cimd_allow_hosts: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    header_timeout: float = 10.0
    max_connections: int = 100
    log_level: str = "INFO"
    compat: str = "none"
    tool_icons: bool = False
    max_cost_per_call: float | None = None
    max_cost_per_session: float | None = None
    max_cost_per_day: float | None = None
    max_points_per_call: float | None = None
    max_points_per_session: float | None = None
    max_points_per_day: float | None = None
    points_per_usd: float | None = None
    budget_tz: str = "UTC"
    allow_unpriced: bool = False
    confirm_above_usd: float | None = None
    allow_confirm_argument: bool = False
    # Not a variable: Poe asks for about 5 s between video polls; tests shorten it.
    video_poll_interval: float = 5.0
    # (variable, file) for each setting read from a `.env`: logged at start so nothing steers unseen.
    from_files: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # never show the key, even in a debugger or a crash dump
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name not in ("api_key", "auth_token", "secret_key")
        )
        return f"Settings({shown}, api_key={'set' if self.api_key else 'unset'})"

    @property
    def origin(self) -> str:
        """Scheme and host of the API: the bot protocol and account API live there too."""
        scheme, _, rest = self.base_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(
    flags: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    dotenv: Path | list[Path] | None = None,
    *,
    serving: bool = True,
) -> Settings:
    """Build Settings: a flag wins over the environment, which wins over the `.env` files (see dotenv_files)."""
    environ = os.environ if environ is None else environ
    files = (
        dotenv
        if isinstance(dotenv, list)
        else [dotenv]
        if dotenv is not None
        else dotenv_files(serving, environ)
    )
    names = {o.env for o in OPTIONS.values()}
    sources: dict[str, str] = {}
    origin: dict[str, str] = {}
    for file in files:
        for name, value in read_dotenv(file).items():
            sources[name], origin[name] = value, str(file)
    for name, value in environ.items():
        if name in names:
            sources[name] = value
            origin.pop(name, None)
    values: dict[str, Any] = {}
    from_files: list[tuple[str, str]] = []
    for name, option in OPTIONS.items():
        raw = (flags or {}).get(name)
        if raw is None:
            raw = sources.get(option.env)
            if option.env in origin:
                from_files.append((option.env, origin[option.env]))
        if raw is not None:
            values[name] = option.parse(option.env, raw)
    points = [OPTIONS[n].env for n in POINT_BUDGETS if values.get(n) is not None]
    if points and values.get("points_per_usd") is None:
        raise SettingsError(
            f"{points[0]} needs POE_MCP_POINTS_PER_USD: how many Poe points one US dollar buys on "
            "your plan (the catalog prices models in USD; a call is estimated in USD, then in points)"
        )
    return Settings(**values, from_files=tuple(from_files))
