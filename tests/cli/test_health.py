"""`memory-cli health`: check, status and monitor on a real store, the verdict rules (latency
thresholds, optional components), an unopenable store is unhealthy with exit 8, and --format
json purity (JSON lines for monitor) in real processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from self_learning_memory.core.health_status import summarise_health
from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.model.records import HealthReport

from .conftest import Invoke, run_process

pytestmark = pytest.mark.integration


@pytest.fixture
def broken(cli_env: dict[str, str]) -> Path:
    """A data directory whose database file is not a database."""
    data = Path(cli_env["MEMORY_DATA_DIR"])
    data.mkdir(parents=True)
    (data / "memory.db").write_bytes(b"this is not SQLite" * 500)
    return data


def _status(**reports: HealthReport) -> tuple[str, dict[str, str]]:
    summary = summarise_health(reports)
    return summary.status, {c.name: c.status for c in summary.components}


def test_verdict_rules() -> None:
    store = HealthReport("sqlite", True, 5.0)
    cache = HealthReport("lmdb", True, 0.5)
    assert _status(primary_storage=store, cache_storage=cache)[0] == "healthy"
    slow_store = HealthReport("sqlite", True, 100.0)
    assert _status(primary_storage=slow_store, cache_storage=cache) == (
        "degraded",
        {"primary_storage": "degraded", "cache_storage": "healthy"},
    )
    slow_cache = HealthReport("lmdb", True, 10.5)
    assert _status(primary_storage=store, cache_storage=slow_cache)[0] == "degraded"
    failed = HealthReport("sqlite", False, 1.0, {"error": "disk I/O error"})
    assert _status(primary_storage=failed, cache_storage=slow_cache)[0] == "unhealthy"
    no_embeddings = HealthReport("embeddings", False, 1.0, {"error": "model missing"})
    assert _status(primary_storage=store, cache_storage=cache, embeddings=no_embeddings) == (
        "degraded",
        {"primary_storage": "healthy", "cache_storage": "healthy", "embeddings": "degraded"},
    )
    summary = summarise_health({"primary_storage": failed})
    assert summary.components[0].reason == "check failed: disk I/O error"


def test_check_every_format(invoke: Invoke, invoke_json: Callable[..., Any]) -> None:
    report = invoke_json("health", "check")
    assert report["overall"] == report["status"] == "healthy"  # the MCP name and the CLI's
    assert report["timestamp"] == report["checked_at"]
    components = {c["name"]: c for c in report["components"]}
    assert set(components) == {"primary_storage", "cache_storage"}
    assert components["primary_storage"]["threshold_ms"] == 100.0
    assert components["cache_storage"]["threshold_ms"] == 10.0
    assert components["primary_storage"]["details"]["quick_check"] == "ok"
    assert all(c["latency_ms"] >= 0 for c in components.values())
    human = invoke("hp", "check")
    assert human.exit_code == 0
    assert "overall: healthy" in human.stdout
    assert "primary_storage" in human.stdout
    as_yaml = yaml.safe_load(invoke("-f", "yaml", "health", "check").stdout)
    assert as_yaml["status"] == "healthy"


def test_slow_store_is_degraded_not_failed(
    invoke_json: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(self: SelfLearningMemory) -> dict[str, HealthReport]:
        return {
            "primary_storage": HealthReport("sqlite", True, 250.0),
            "cache_storage": HealthReport("lmdb", True, 0.2),
        }

    monkeypatch.setattr(SelfLearningMemory, "health", slow)
    report = invoke_json("health", "check")  # exit 0: degraded still works
    assert report["status"] == "degraded"
    assert "250.0 ms (threshold 100 ms)" in report["components"][0]["reason"]


def test_unopenable_store_is_unhealthy(invoke: Invoke, broken: Path) -> None:
    result = invoke("--format", "json", "health", "check")
    assert result.exit_code == 8
    report = json.loads(result.stdout)
    assert report["status"] == "unhealthy"
    assert "not a database" in report["components"][0]["reason"]
    short = invoke("health", "status")
    assert short.exit_code == 8
    assert short.stdout.startswith("unhealthy")
    assert invoke("storage", "health").exit_code == 8
    # other commands: a storage error in one line (was an internal error: raw apsw.NotADBError)
    status = invoke("storage", "status")
    assert status.exit_code == 7
    assert status.stderr.startswith("error: The database file")
    assert "Traceback" not in status.stderr


def test_status_is_one_line(invoke: Invoke, invoke_json: Callable[..., Any]) -> None:
    short = invoke("health", "status")
    assert short.exit_code == 0
    assert short.stdout.strip().splitlines() == [
        "healthy  primary_storage=healthy cache_storage=healthy"
    ]
    data = invoke_json("health", "status")
    assert data["components"] == {"primary_storage": "healthy", "cache_storage": "healthy"}


def test_monitor_repeats_checks(invoke: Invoke) -> None:
    # a check takes a few ms, far longer on a loaded machine: 0.5 s holds two at least
    result = invoke("--format", "json", "health", "monitor", "-i", "0.01", "-d", "0.5")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # JSON lines
    assert len(lines) >= 2
    assert [line["check"] for line in lines] == list(range(1, len(lines) + 1))
    assert all(line["overall"] == line["status"] == "healthy" for line in lines)
    times = [line["timestamp"] for line in lines]
    assert times == sorted(times) == [line["checked_at"] for line in lines]

    once = invoke("health", "monitor", "-i", "5", "-d", "1")  # the next check is past the end
    assert once.exit_code == 0
    assert len(once.stdout.strip().splitlines()) == 1
    assert "#1 healthy" in once.stdout
    docs = list(
        yaml.safe_load_all(invoke("-f", "yaml", "hp", "monitor", "-i", "0.05", "-d", "0.6").stdout)
    )
    assert len(docs) >= 2
    assert docs[0]["check"] == 1


def test_monitor_unhealthy_exits_8(invoke: Invoke, broken: Path) -> None:
    result = invoke("--format", "json", "health", "monitor", "-i", "0.05", "-d", "0.1")
    assert result.exit_code == 8
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines
    assert {line["status"] for line in lines} == {"unhealthy"}


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("health", "monitor", "-i", "0"), "--interval"),
        (("health", "monitor", "-i", "100000"), "--interval"),
        (("health", "monitor", "-d", "-1"), "--duration"),
        (("health", "monitor", "-i", "soon"), "--interval"),
        (("health", "nope"), "No such command"),
    ],
)
def test_bad_input(invoke: Invoke, args: tuple[str, ...], text: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert text in result.stderr
    assert result.stdout == ""


def test_json_stdout_is_pure_in_real_processes(cli_env: dict[str, str]) -> None:
    for args in (("health", "check"), ("hp", "status")):
        proc = run_process("--format", "json", "-v", *args, env=cli_env)
        assert proc.returncode == 0, proc.stderr
        json.loads(proc.stdout)
    proc = run_process(
        # the window counts from before the store is opened: 1 s holds two checks under load
        "--format",
        "json",
        "-v",
        "health",
        "monitor",
        "-i",
        "0.01",
        "-d",
        "1",
        env=cli_env,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) >= 2
    for line in lines:
        json.loads(line)
