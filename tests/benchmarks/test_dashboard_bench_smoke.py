"""benchmarks/dashboard_bench.py still runs: tiny sizes, one record per page and size with the
documented keys, every page answered 200 (the benchmark asserts it), the curve and the agents'
lines drawn."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

PAGES = {"overview_day", "overview_week", "overview_hour", "episodes_page1",
         "episodes_last_page", "search", "episode_detail", "patterns", "agents"}  # fmt: skip


def test_dashboard_bench_runs() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path if p)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.dashboard_bench", "--template", "40",
         "--sizes", "40,400", "--runs", "2"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    timings = [r for r in records if r["name"] != "run"]
    assert {(r["name"].removeprefix("dashboard_"), r["n"]) for r in timings} == {
        (page, n) for page in PAGES for n in (40, 400)
    }
    for r in timings:
        assert r["median_ms"] > 0
        assert r["p95_ms"] >= r["median_ms"]
        assert isinstance(r["target_met"], bool)
    grown = next(r for r in timings if r["name"] == "dashboard_overview_day" and r["n"] == 400)
    # copies spread over 10 days (400 / 40); 11 if the recording crossed midnight UTC
    assert grown["curve_points"] in (10, 11)
    agents = next(r for r in timings if r["name"] == "dashboard_agents" and r["n"] == 400)
    # 8 agents, each ran every one of those days (the series covers the last 30)
    assert 8 * 10 <= agents["agent_points"] <= 8 * 11
    assert [r["n"] for r in records if r["name"] == "run"] == [40, 400]
