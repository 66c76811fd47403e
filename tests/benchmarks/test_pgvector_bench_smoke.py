"""Smoke test of ``benchmarks.pgvector_bench`` at a tiny size on the test PostgreSQL 18 with
pgvector: the bulk loader gives the three stores the same rows, the pgvector store scores a
store below ``--exact-below`` in process and answers from the server (no in-process vectors)
above it, and the records are complete. Numbers are not asserted
against targets (that is the benchmark's job, on a quiet machine)."""

from __future__ import annotations

import json

import pytest

from benchmarks import pgvector_bench

pytestmark = [pytest.mark.postgres, pytest.mark.pgvector, pytest.mark.integration]


def test_two_sizes_three_stores(
    pgvector_server_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGVECTOR_BENCH_EXACT_BELOW", "")  # restored after main() sets it
    small = ["--sizes", "200,400", "--template", "200", "--queries", "8", "--rounds", "1"]
    pgvector_bench.main(
        [*small, "--ef-search", "40,200", "--dsn", pgvector_server_dsn, "--exact-below", "300"]
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name: dict[str, list[dict[str, object]]] = {}
    for record in records:
        by_name.setdefault(str(record["name"]), []).append(record)

    loads = {(r["store"], r["n"]): r for r in by_name["pgvector_load"]}
    assert set(loads) == {(s, 400) for s in ("pgvector", "bytea", "sqlite")}
    counts = {(r["episodes"], r["steps"], r["embeddings"]) for r in loads.values()}
    assert len(counts) == 1  # the same rows in every store
    assert next(iter(counts))[0] == next(iter(counts))[2] == 400

    retrieval = {(r["store"], r["n"]): r for r in by_name["pgvector_retrieval"]}
    assert set(retrieval) == {(s, n) for s in ("pgvector", "bytea", "sqlite") for n in (200, 400)}
    for (store, _), record in retrieval.items():
        assert record["samples"] == 8
        assert 0 < record["median_ms"] <= record["p95_ms"]  # type: ignore[operator]
        assert record["rss_mb"] > 0  # type: ignore[operator]
        expected = {"pgvector": "pgvector", "bytea": "bytea", "sqlite": "sqlite"}[store]
        assert record["vector_backend"] == expected
    # 200 vectors (below 300): exact, in process; 400: the server's search, nothing in process
    assert retrieval[("pgvector", 200)]["in_process_vectors"] == 200
    assert retrieval[("pgvector", 200)]["vector_search"] == "in_process_exact"
    assert retrieval[("pgvector", 400)]["in_process_vectors"] == 0
    assert retrieval[("pgvector", 400)]["vector_search"] == "server_hnsw"
    for n in (200, 400):
        assert retrieval[("bytea", n)]["in_process_vectors"] == n
        # index use is counted (a table this small may well be scanned exactly instead)
        assert retrieval[("pgvector", n)]["hnsw_scans"] >= 0  # type: ignore[operator]

    recall = {(r["n"], r["ef_search"]): r for r in by_name["pgvector_recall"]}
    assert set(recall) == {(n, ef) for n in (200, 400) for ef in (40, 200)}
    assert all(r["recall_at_10"] >= 0.9 for r in recall.values())  # type: ignore[operator]
    assert [r["n"] for r in by_name["pgvector_hnsw_build"]] == [200, 400]
    assert [r["ratio"] for r in by_name["pgvector_vs_bytea"]] != []
