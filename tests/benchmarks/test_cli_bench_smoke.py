"""The CLI start-up benchmark still runs: one run of each command, records well formed."""

from __future__ import annotations

import json

import pytest

from benchmarks import cli_bench


def check(record: dict[str, object]) -> None:
    for key in ("median_ms", "p95_ms", "baseline_median_ms", "baseline_p95_ms", "ratio"):
        value = record[key]
        assert isinstance(value, float | int), (key, value)
        assert value > 0, (key, value)
    assert record["p95_ms"] >= record["median_ms"]  # type: ignore[operator]
    assert isinstance(record["target_met"], bool)
    assert record["n"] == record["samples"] == 1


def test_cli_bench_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_bench.main(["--runs", "1", "--episodes", "2", "--importtime"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    starts = [r for r in records if r["name"] == "cli_start"]
    assert {r["mode"] for r in starts} == {
        "--help",
        "episode list",
        "episode log-step",
        "monitor status --probes 0",
        "logs stats",
    }
    for record in starts:
        check(record)
        assert record["baseline"] == "python -c pass"
    imports = next(r for r in records if r["name"] == "cli_imports")
    modules = [m["module"] for m in imports["slowest_cumulative_us"]]
    assert modules
    assert "numpy" not in modules  # no model, no numpy at start-up
