"""The PostgreSQL schema's migrations: the full-text column stays in the episode row.

Ranking reads ``episodes.search`` for every matching episode; with the default EXTENDED
storage the value was moved to the TOAST table (episode rows are wide), which made the
candidate query read 4-5x more buffers. Migration 2 sets ``STORAGE MAIN`` and rewrites the
rows a version-1 schema already holds."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from self_learning_memory import ExecutionStep, MemoryConfig, SelfLearningMemory, SuccessOutcome
from self_learning_memory.model.records import EpisodeFilters
from self_learning_memory.storage.postgres import PostgresStorage, connection, schema

pytestmark = pytest.mark.integration


def storage_of_search(url: str) -> tuple[str, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT a.attstorage, (SELECT max(version) FROM schema_migrations) "
            "FROM pg_attribute a WHERE a.attrelid = 'episodes'::regclass "
            "AND a.attname = 'search'"
        ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


async def test_search_is_stored_in_the_row_after_migrating(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = [m for m in schema.POSTGRES_MIGRATIONS if m[0] == 1]
    monkeypatch.setattr(connection, "POSTGRES_MIGRATIONS", first)
    config = MemoryConfig.model_validate({"storage": {"url": pg_url}})
    # today's completion also counts retrieval feedback (migration 4) and writes the episode's
    # agent (migration 5): their tables and column are created for the write and dropped after
    # it, so the store is otherwise at version 1
    feedback = dict(schema.POSTGRES_MIGRATIONS)[4]
    agents = dict(schema.POSTGRES_MIGRATIONS)[5]
    async with SelfLearningMemory.open(tmp_path, config=config) as memory:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(feedback.encode())
            conn.execute(agents.encode())
        eid = await memory.start_episode("index the audit log by tenant")
        await memory.log_step(eid, ExecutionStep(step_number=1, tool="psql", action="create index"))
        await memory.complete_episode(eid, SuccessOutcome(verdict="indexed"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE retrieval_uses, episode_usage, agent_executions, agent_totals")
        conn.execute("ALTER TABLE episodes DROP COLUMN agent")
    assert storage_of_search(pg_url) == ("x", 1)

    monkeypatch.setattr(connection, "POSTGRES_MIGRATIONS", schema.POSTGRES_MIGRATIONS)
    async with PostgresStorage(pg_url, listen=False) as store:
        found = await store.lexical_candidates(["audit", "tenant"], EpisodeFilters(), 5)
    latest = max(version for version, _ in schema.POSTGRES_MIGRATIONS)
    assert storage_of_search(pg_url) == ("m", latest)
    assert [c.episode_id for c in found] == [eid]  # the rewritten rows are still searchable
