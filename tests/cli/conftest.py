"""Fixtures for memory-cli tests: typer's runner on a temporary data dir, and real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from self_learning_memory.cli.app import app

Invoke = Callable[..., Result]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean environment: a temporary data dir, no CI (so the default format is human)."""
    data = tmp_path / "data"
    env = {"MEMORY_DATA_DIR": str(data), "NO_COLOR": "1", "COLUMNS": "200"}
    for name in (
        "CI",
        "GITHUB_ACTIONS",
        "MEMORY_FORMAT",
        "MEMORY_CLI_CONFIG",
        "DEV",
        "DEVELOPMENT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture
def invoke(cli_env: dict[str, str]) -> Invoke:
    """Run memory-cli in process with typer's runner: ``invoke("episode", "list")``."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def invoke_json(invoke: Invoke) -> Callable[..., Any]:
    """Run with ``--format json``, assert exit 0, return the parsed stdout."""

    def run(*args: str) -> Any:
        result = invoke("--format", "json", *args)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    return run


def run_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """memory-cli as a real process (``python -m self_learning_memory.cli``)."""
    return subprocess.run(
        [sys.executable, "-m", "self_learning_memory.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
