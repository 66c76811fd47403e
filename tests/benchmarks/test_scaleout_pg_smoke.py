"""Smoke test of ``benchmarks.scaleout_pg_bench`` at a small size on the test PostgreSQL:
the records are complete and the replay check holds (every write in PostgreSQL exactly once)."""

from __future__ import annotations

import os

import psycopg
import pytest

from benchmarks import scaleout_pg_bench

pytestmark = pytest.mark.integration
DSN = os.environ.get("MEMORY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _postgres() -> None:
    try:
        with psycopg.connect(DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL at {DSN} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {DSN} is unreachable: {exc}")


async def test_retrieval_records_both_stores() -> None:
    records = await scaleout_pg_bench.retrieval(60, 10, DSN)
    assert [r["name"] for r in records] == [
        "retrieval_latency_sqlite",
        "retrieval_latency_postgresql",
    ]
    for record in records:
        assert record["samples"] == 10
        assert 0 < record["median_ms"] <= record["p95_ms"]
    assert records[1]["copied"]["episodes"] == 60


async def test_replay_puts_every_queued_write_in_postgres_once() -> None:
    record = await scaleout_pg_bench.replay(40, DSN)
    assert record["writes"] == 40  # 10 episodes: create, two step batches, complete
    assert record["stored"]["episodes"] == 10
    assert record["stored"]["steps"] == 80
    assert record["exactly_once"] is True
