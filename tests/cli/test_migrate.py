"""`memory-cli storage migrate`: a whole memory copied row for row (episodes with steps, open
ones too, patterns with usage and links, heuristics, embeddings), idempotent on re-run, counts
verified, --dry-run only counts; SQLite -> SQLite and SQLite -> PostgreSQL -> SQLite.

PostgreSQL is the server named by MEMORY_TEST_POSTGRES_DSN (default loopback, database test),
one fresh schema per test; unreachable: the test fails under CI=true and is skipped otherwise.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from self_learning_memory import (
    ExecutionStep,
    FailureOutcome,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.model.records import EmbeddingRecord, EpisodeFilters, PatternFilters
from self_learning_memory.storage.backend import StorageBackend
from self_learning_memory.storage.migrate import open_url

from .conftest import Invoke

pytestmark = pytest.mark.integration

POSTGRES_DSN = os.environ.get(
    "MEMORY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def pg_url() -> Iterator[str]:
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        message = f"PostgreSQL at {POSTGRES_DSN} is unreachable: {exc}"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    schema = f"slm_migrate_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    parts = urlsplit(POSTGRES_DSN)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    try:
        yield urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


CTX = TaskContext(domain="infra", language="go", tags=["k8s"])


async def _seed(data_dir: Path) -> None:
    async with SelfLearningMemory.open(data_dir) as memory:
        ids = []
        for i in range(4):
            eid = await memory.start_episode(f"fix the crash loop {i}", CTX, "debugging")
            for n, (tool, action) in enumerate(
                [("kubectl", "check whether the pod is crash looping"), ("editor", "raise it")],
                start=1,
            ):
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=n,
                        tool=tool,
                        action=action,
                        parameters={"n": n},
                        result=SuccessResult(output="ok"),
                    ),
                )
            outcome = SuccessOutcome(verdict="ok") if i < 3 else FailureOutcome(reason="no")
            await memory.complete_episode(eid, outcome)
            ids.append(eid)
        open_id = await memory.start_episode("still running", CTX, "debugging")
        await memory.log_step(open_id, ExecutionStep(step_number=1, tool="git", action="log"))
        patterns = await memory.storage.list_patterns(PatternFilters(), 10, 0)
        await memory.storage.record_pattern_use([patterns[0][0].id], applied=False, success=False)
        vector = bytes(range(16))
        await memory.storage.store_embeddings(
            [(e, EmbeddingRecord("hash:test:4", f"h{e}", 4, vector)) for e in ids[:2]]
        )


async def _snapshot(storage: StorageBackend) -> dict[str, Any]:
    async with storage:
        episodes = await storage.list_episodes(EpisodeFilters(), 100, 0)
        patterns = await storage.list_patterns(PatternFilters(min_occurrences=0), 100, 0)
        links = await storage.pattern_episodes([p.id for p, _ in patterns], 100)
        return {
            "episodes": sorted(e.model_dump_json() for e in episodes),
            "patterns": sorted(p.model_dump_json() + u.model_dump_json() for p, u in patterns),
            "links": {str(k): sorted(map(str, v)) for k, v in links.items()},
            "heuristics": sorted(
                h.model_dump_json() for h in await storage.list_heuristics(100, 0)
            ),
            "vectors": sorted(
                (str(e), v) for _, e, v, _ in await storage.embeddings_since("hash:test:4", 0, 100)
            ),
        }


def snapshot(url: str) -> dict[str, Any]:
    return asyncio.run(_snapshot(open_url(url)))


@pytest.fixture
def source(cli_env: dict[str, str]) -> Path:
    data_dir = Path(cli_env["MEMORY_DATA_DIR"])
    asyncio.run(_seed(data_dir))
    return data_dir


def test_sqlite_to_sqlite(
    invoke: Invoke, invoke_json: Callable[..., Any], source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    dry = invoke_json("storage", "migrate", "--to", str(target), "--dry-run")
    assert dry["dry_run"] is True
    assert dry["source_counts"]["episodes"] == 5
    assert dry["source_counts"]["steps"] == 9
    assert dry["source_counts"]["embeddings"] == 2
    assert dry["source_counts"]["heuristics"] >= 1
    assert not any(dry["target_before"].values())
    assert snapshot(str(target))["episodes"] == []  # nothing copied

    done = invoke_json("storage", "migrate", "--to", str(target), "--batch-size", "2")
    assert done["verified"] is True
    assert done["target_after"] == done["source_counts"]
    assert snapshot(str(target)) == snapshot(str(source))

    again = invoke_json("storage", "migrate", "--to", str(target))  # idempotent
    assert again["verified"] is True
    assert again["target_after"] == again["source_counts"]
    assert snapshot(str(target)) == snapshot(str(source))

    human = invoke("storage", "migrate", "--to", str(target))
    assert human.exit_code == 0, human.output
    assert "verified" in human.stdout


def test_the_copy_is_a_working_memory(
    invoke_json: Callable[..., Any], source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    assert invoke_json("storage", "migrate", "--to", str(target))["verified"] is True

    async def use() -> None:
        async with SelfLearningMemory.open(target) as memory:
            found = await memory.retrieve_relevant_context("crash loop pod", CTX, limit=3)
            assert found
            open_ones = await memory.list_episodes(EpisodeFilters(completed=False))
            assert len(open_ones) == 1
            eid = open_ones[0].episode_id
            await memory.log_step(eid, ExecutionStep(step_number=2, tool="git", action="diff"))
            done = await memory.complete_episode(eid, SuccessOutcome(verdict="ok"))
            assert [s.step_number for s in done.steps] == [1, 2]

    asyncio.run(use())


def test_bad_target_is_a_configuration_error(invoke: Invoke, source: Path) -> None:
    result = invoke("storage", "migrate", "--to", "mysql://somewhere/db")
    assert result.exit_code == 6
    assert "postgresql://" in result.output


def test_sqlite_to_postgres_and_back(
    invoke_json: Callable[..., Any], source: Path, pg_url: str, tmp_path: Path
) -> None:
    done = invoke_json("storage", "migrate", "--to", pg_url, "--batch-size", "3")
    assert done["verified"] is True
    assert done["target_after"] == done["source_counts"]
    assert "options" in done["target"]
    want = snapshot(str(source))
    assert snapshot(pg_url) == want
    again = invoke_json("storage", "migrate", "--to", pg_url)
    assert again["target_after"] == again["source_counts"]
    back = tmp_path / "back"
    home = invoke_json("storage", "migrate", "--from", pg_url, "--to", str(back))
    assert home["verified"] is True
    assert snapshot(str(back)) == want
