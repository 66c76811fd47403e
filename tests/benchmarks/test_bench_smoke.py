"""The benchmarks still run: every foundation benchmark at a tiny size, output checked.

Numbers are not asserted against targets here (that is the benchmarks' job, on a quiet
machine); only that each result has the documented keys and real, positive timings.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from benchmarks import foundation_bench, run_all

TIMING_KEYS = {
    "name",
    "n",
    "samples",
    "median_ms",
    "p95_ms",
    "baseline",
    "baseline_median_ms",
    "baseline_p95_ms",
    "ratio",
    "target_ms",
    "target_met",
}


def check(record: dict[str, object]) -> None:
    assert record.keys() >= TIMING_KEYS, TIMING_KEYS - record.keys()
    for key in ("median_ms", "p95_ms", "baseline_median_ms", "baseline_p95_ms", "ratio"):
        value = record[key]
        assert isinstance(value, float | int), (key, value)
        assert value > 0, (key, value)
    assert record["p95_ms"] >= record["median_ms"]  # type: ignore[operator]
    assert isinstance(record["target_met"], bool)
    json.dumps(record)  # one JSON line each


async def run_tiny() -> list[dict[str, object]]:
    records = await foundation_bench.bench_log_step(count=3)
    records += await foundation_bench.bench_complete(count=4)
    records += await foundation_bench.bench_retrieve(40, queries=5, complete_at_size=3)
    return records


def test_foundation_bench_produces_complete_records(capsys: pytest.CaptureFixture[str]) -> None:
    records = asyncio.run(run_tiny())
    names = [(r["name"], r.get("mode"), r.get("store_episodes")) for r in records]
    assert names == [
        ("log_step", "buffered", None),
        ("log_step", "unbuffered", None),
        ("complete_episode", None, 0),
        ("retrieve", "lexical", None),
        ("retrieve", "lexical", None),
        ("complete_episode", None, 40),
    ]
    for record in records:
        check(record)
    retrieve = [r for r in records if r["name"] == "retrieve"]
    assert {r["n"] for r in retrieve} == {40}
    assert retrieve[1]["fullscan_load_s"] >= 0  # type: ignore[operator]
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == records


def test_summary_table_has_a_row_per_result() -> None:
    record = {
        "name": "log_step",
        "mode": "buffered",
        "n": 8,
        "median_ms": 0.01,
        "p95_ms": 0.02,
        "baseline": "stdlib sqlite3 INSERT+COMMIT, WAL",
        "baseline_median_ms": 0.02,
        "ratio": 0.5,
        "target_ms": 0.2,
        "target_met": True,
    }
    table = run_all.summary([{"name": "run"}, record, {"name": "model_load", "seconds": 0.1}])
    lines = table.splitlines()
    assert len(lines) == 4  # header, rule, two results (the run record is not a result)
    assert "log_step" in lines[2]
    assert "<= 0.2 ms: yes" in lines[2]
    assert "0.1 s" in lines[3]
