"""The chat settings as one validated value (Sampling): from the CLI, the MCP tools and both backends to the body.

Also the standard OpenAI request fields (response_format, seed, logprobs, ...) as first-class inputs, and
structured outputs checked locally against the caller's JSON Schema.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import env_for
from fakepoe import FakePoe

POE_MCP = str(Path(sys.executable).parent / "poe-mcp")


def run_cli(
    fake: FakePoe, tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "work").mkdir(exist_ok=True)
    return subprocess.run(
        [POE_MCP, *args],
        capture_output=True,
        text=True,
        env=env_for(fake, tmp_path, POE_MCP_LOG_LEVEL="INFO", **env),
        cwd=tmp_path,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("backend", ["openai", "fastapi_poe"])
def test_cli_sampling_flags_reach_the_request_body(
    fake: FakePoe, tmp_path: Path, backend: str
) -> None:
    result = run_cli(
        fake,
        tmp_path,
        "ask",
        "gpt-4-turbo",
        "hi",
        "--temperature",
        "0.3",
        "--max-tokens",
        "50",
        "--top-p",
        "0.9",
        "--stop",
        "END",
        "--system",
        "Terse.",
        POE_MCP_BACKEND=backend,
    )
    assert result.returncode == 0, result.stderr
    if backend == "openai":
        body = fake.chat_requests()[-1]["json"]
        assert (body["temperature"], body["max_tokens"], body["top_p"], body["stop"]) == (
            0.3,
            50,
            0.9,
            ["END"],
        )
        assert body["messages"][0] == {"role": "system", "content": "Terse."}
    else:
        query = fake.bot_queries[-1]
        assert (query["temperature"], query["stop_sequences"]) == (0.3, ["END"])
        assert query["query"][0]["role"] == "system"


def test_cli_refuses_a_temperature_out_of_bounds_before_sending(
    fake: FakePoe, tmp_path: Path
) -> None:
    result = run_cli(fake, tmp_path, "ask", "gpt-4-turbo", "hi", "--temperature", "3")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "temperature must be between 0 and 2" in result.stderr
    assert fake.model_calls() == []
