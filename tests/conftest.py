"""Shared fixtures: a fake Poe per test, settings pointing at it, and MCP clients in both protocol eras."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

sys.path.insert(0, str(Path(__file__).parent))

from fakepoe import FakePoe

from poe_mcp.config import Settings, load_settings
from poe_mcp.server import build_server

# A key distinctive enough that finding it anywhere in output proves a leak.
SECRET_KEY = "poe-test-SECRET-4f9c2a7e1b"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> Any:
    server = FakePoe(api_key=SECRET_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def env_for(fake: FakePoe, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Everything a spawned poe-mcp needs: a stdio child inherits almost nothing from us."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "POE_API_KEY": SECRET_KEY,
        "POE_BASE_URL": fake.base_url,
        "POE_MCP_STORE": str(tmp_path / "store.db"),
        "POE_MCP_CACHE_DIR": str(tmp_path / "cache"),
        "POE_MCP_OUTPUT_DIR": str(tmp_path / "media"),
        "POE_MCP_ALLOWED_DIRS": str(tmp_path / "work"),
        "POE_MCP_MAX_RETRIES": "2",
        "POE_MCP_LOG_LEVEL": "DEBUG",
    }
    env.update(extra)
    return env


@pytest.fixture
def settings(fake: FakePoe, tmp_path: Path, workdir: Path) -> Settings:
    return load_settings({}, env_for(fake, tmp_path), dotenv=tmp_path / "none.env")


@pytest.fixture(params=["openai", "fastapi_poe"])
def any_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The settings on each backend: Poe's OpenAI-compatible API, and its bot protocol via fastapi_poe."""
    return replace(settings, backend=request.param)


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol eras: 2026-07-28 (auto) and 2025-11-25 (legacy)."""
    return request.param


@asynccontextmanager
async def connect(settings: Settings, mode: str = "auto", **changes: Any) -> AsyncIterator[Client]:
    async with Client(build_server(replace(settings, **changes)), mode=mode) as client:  # type: ignore[arg-type]
        yield client
