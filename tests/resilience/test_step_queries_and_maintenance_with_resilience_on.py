"""Regression: with ``ResilienceConfig(enabled=True)`` on the embedded SQLite store (what
docs/operations.md recommends for a data directory on a network mount), step queries
(``memory-cli logs ...``) and maintenance (``storage vacuum``, ``verify``, ``connections``,
``status``) raised "need the embedded SQLite store ... not 'sqlite'": they checked the store's
concrete class, and the memory's store was the resilience wrapper. They now reach the store's
``capabilities``, which the wrapper passes through from its primary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.step_log_seed import seed_steps
from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.config import ResilienceConfig
from self_learning_memory.model.episode import utc_now
from self_learning_memory.resilience.resilient import ResilientStorage
from self_learning_memory.storage.maintenance import (
    check_integrity,
    connections,
    embedded_parts,
    store_info,
    vacuum,
)
from self_learning_memory.storage.step_queries import StepQueries

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"


async def _record(memory: SelfLearningMemory, tools: list[str]) -> None:
    eid = await memory.start_episode("rotate the TLS certificates", TaskContext(domain="ops"))
    for n, tool in enumerate(tools, start=1):
        step = ExecutionStep(
            step_number=n, tool=tool, action=f"{tool} step {n}", result=SuccessResult(output="ok")
        )
        await memory.log_step(eid, step)
    await memory.complete_episode(eid, SuccessOutcome(verdict="rotated"))


async def test_step_queries_work_behind_the_resilience_wrapper(tmp_path: Path) -> None:
    config = MemoryConfig(resilience=ResilienceConfig(enabled=True))
    async with SelfLearningMemory.open(tmp_path, config=config) as memory:
        assert isinstance(memory.storage, ResilientStorage)  # the case that failed
        await _record(memory, ["openssl", "kubectl", "openssl"])
        queries = StepQueries.of(memory.storage)
        since = utc_now() - timedelta(hours=1)
        activity = await queries.activity(since)
        assert activity.total_steps == 3
        tools = {t.tool: t.usage_count for t in await queries.top_tools(since)}
        assert tools == {"openssl": 2, "kubectl": 1}
        found = await queries.search("kubectl", since)
        assert [r.tool for r in found] == ["kubectl"]


async def test_maintenance_works_behind_the_resilience_wrapper(tmp_path: Path) -> None:
    config = MemoryConfig(resilience=ResilienceConfig(enabled=True))
    async with SelfLearningMemory.open(tmp_path, config=config) as memory:
        assert isinstance(memory.storage, ResilientStorage)
        await _record(memory, ["make", "pytest"])
        store, cache = embedded_parts(memory)
        assert store.path == tmp_path / "memory.db"
        assert cache is memory.cache
        info = await store_info(store)
        assert info.journal_mode.lower() == "wal"
        report = await vacuum(store, cache)
        assert report.checkpoint is not None
        assert report.checkpoint["busy"] == 0
        assert report.after is not None
        integrity = await check_integrity(store)
        assert integrity.ok, integrity.problems
        opened = await connections(store, cache)
        assert opened["store"]["path"] == str(tmp_path / "memory.db")  # type: ignore[index]
        assert (await memory.stats()).steps == 2  # the wrapped store still answers after it


def _cli(data_dir: Path, *args: str) -> Any:
    """memory-cli as a real process with resilience on from the environment, as a user turns it
    on (``MEMORY_RESILIENCE_ENABLED``); asserts exit 0, returns the JSON."""
    env = {
        **os.environ,
        "MEMORY_DATA_DIR": str(data_dir),
        "MEMORY_RESILIENCE_ENABLED": "true",
        "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]),
        "NO_COLOR": "1",
    }
    env.pop("MEMORY_CLI_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "self_learning_memory.cli", "--format", "json", *args],
        env=env,
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout)


@pytest.mark.integration
def test_memory_cli_logs_and_storage_with_resilience_on(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    seed_steps(data_dir)
    health = _cli(data_dir, "health", "check")
    primary = next(c for c in health["components"] if c["name"] == "primary_storage")
    assert "resilience" in primary["details"]  # the child really runs behind the wrapper
    assert _cli(data_dir, "logs", "analyze")["total_steps"] == 8
    found = _cli(data_dir, "logs", "search", "Permission")
    assert [r["tool"] for r in found["results"]] == ["shell"]
    vacuumed = _cli(data_dir, "storage", "vacuum")
    assert vacuumed["dry_run"] is False
    assert vacuumed["checkpoint"]["busy"] == 0
    opened = _cli(data_dir, "storage", "connections")
    assert opened["store"]["path"] == str(data_dir / "memory.db")
    verified = _cli(data_dir, "storage", "verify")
    assert verified["ok"] is True, verified["problems"]
    status = _cli(data_dir, "storage", "status")
    assert status["counts"]["steps"] == 8
