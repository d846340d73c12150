"""Settings come from flags, the environment and .env; a bad value stops the start naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from poe_mcp.config import SettingsError, load_settings


def test_defaults_match_the_spec(tmp_path: Path) -> None:
    s = load_settings({}, {}, dotenv=tmp_path / "missing.env")
    assert (s.base_url, s.backend, s.default_model, s.rpm, s.max_retries, s.timeout) == (
        "https://api.poe.com/v1",
        "openai",
        "Claude-Sonnet-4.5",
        500,
        4,
        600.0,
    )
    assert s.api_key is None and s.log_level == "INFO"
    assert s.store.endswith("poe-mcp.db") and s.output_dir.name == "media"


def test_flag_beats_environment_beats_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("POE_MCP_RPM=10\nPOE_MCP_MAX_RETRIES=1\nPOE_MCP_DEFAULT_MODEL=from-dotenv\n")
    s = load_settings(
        {"rpm": "30"}, {"POE_MCP_RPM": "20", "POE_MCP_MAX_RETRIES": "3"}, dotenv=dotenv
    )
    assert (s.rpm, s.max_retries, s.default_model) == (30, 3, "from-dotenv")


def test_store_accepts_sqlite_urls_and_redis(tmp_path: Path) -> None:
    assert (
        load_settings({}, {"POE_MCP_STORE": "sqlite:////data/p.db"}, dotenv=tmp_path / "x").store
        == "/data/p.db"
    )
    assert load_settings(
        {}, {"POE_MCP_STORE": "redis://localhost:6379/0"}, dotenv=tmp_path / "x"
    ).store.startswith("redis://")


def test_origin_is_where_the_account_api_lives(tmp_path: Path) -> None:
    s = load_settings({}, {"POE_BASE_URL": "http://127.0.0.1:9999/v1/"}, dotenv=tmp_path / "x")
    assert s.base_url == "http://127.0.0.1:9999/v1" and s.origin == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POE_MCP_RPM", "abc"),
        ("POE_MCP_RPM", "0"),
        ("POE_MCP_BACKEND", "foo"),
        ("POE_MCP_MAX_RETRIES", "-1"),
        ("POE_MCP_TIMEOUT", "soon"),
        ("POE_BASE_URL", "api.poe.com"),
        ("POE_MCP_LOG_LEVEL", "LOUD"),
        ("POE_MCP_STORE", "postgres://db"),
        ("POE_MCP_MAX_COST_PER_DAY", "0"),
        ("POE_MCP_MAX_COST_PER_CALL", "-1"),
        ("POE_MCP_MAX_COST_PER_SESSION", "nan"),
        ("POE_MCP_MAX_COST_PER_DAY", "ten dollars"),
        ("POE_MCP_CONFIRM_ABOVE_USD", "-0.5"),
        ("POE_MCP_BUDGET_TZ", "Mars/Olympus"),
        ("POE_MCP_ALLOW_UNPRICED", "maybe"),
        ("POE_MCP_MAX_COST_PER_DAY_POINTS", "1000"),  # needs POE_MCP_POINTS_PER_USD
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({}, {variable: value}, dotenv=tmp_path / "x")


def test_repr_never_shows_the_key(tmp_path: Path) -> None:
    s = load_settings({}, {"POE_API_KEY": "poe-SECRET-123456"}, dotenv=tmp_path / "x")
    assert "poe-SECRET-123456" not in repr(s)


def test_the_command_refuses_to_start_on_a_bad_value(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "poe_mcp", "serve", "--rpm", "abc"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode == 2
    assert "POE_MCP_RPM" in run.stderr and run.stdout == ""


def test_budgets_are_off_unless_set_and_read_when_set(tmp_path: Path) -> None:
    off = load_settings({}, {}, dotenv=tmp_path / "x")
    assert (off.max_cost_per_call, off.max_cost_per_session, off.max_cost_per_day) == (None,) * 3
    assert (off.confirm_above_usd, off.allow_unpriced, off.budget_tz) == (None, False, "UTC")
    on = load_settings(
        {},
        {
            "POE_MCP_MAX_COST_PER_CALL": "0.5",
            "POE_MCP_MAX_COST_PER_SESSION": "2",
            "POE_MCP_MAX_COST_PER_DAY": "10",
            "POE_MCP_MAX_COST_PER_DAY_POINTS": "300000",
            "POE_MCP_POINTS_PER_USD": "33333",
            "POE_MCP_BUDGET_TZ": "Europe/Paris",
            "POE_MCP_ALLOW_UNPRICED": "1",
            "POE_MCP_CONFIRM_ABOVE_USD": "0.25",
            "POE_MCP_ALLOW_CONFIRM_ARGUMENT": "true",
        },
        dotenv=tmp_path / "x",
    )
    assert (on.max_cost_per_call, on.max_cost_per_session, on.max_cost_per_day) == (0.5, 2, 10)
    assert (on.max_points_per_day, on.points_per_usd, on.budget_tz) == (
        300000,
        33333,
        "Europe/Paris",
    )
    assert (on.allow_unpriced, on.confirm_above_usd, on.allow_confirm_argument) == (
        True,
        0.25,
        True,
    )
