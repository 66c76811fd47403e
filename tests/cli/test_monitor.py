"""`memory-cli monitor`: real store numbers (seeded steps and episodes), retrieval probes, the
Prometheus text accepted by prometheus_client's parser, the Influx line, the live view with
--count, bounds and bad windows, and --format json purity in a real process."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Invoke, run_process
from .step_log_seed import add_failed_episode, seed_steps

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(cli_env: dict[str, str]) -> Path:
    return Path(cli_env["MEMORY_DATA_DIR"])


def test_status_real_numbers(data_dir: Path, invoke_json: Callable[..., Any]) -> None:
    seed_steps(data_dir, old_episode=True)
    status = invoke_json("monitor", "status", "--probes", "4")
    assert status["episodes"] == 3
    assert status["in_progress"] == status["in_progress_episodes"] == 1
    assert status["steps"] == 9
    assert status["patterns"] >= 1  # learned from the completed episodes
    assert status["heuristics"] >= 0
    assert status["storage_bytes"] > 0
    assert status["uptime_source"] == "first_episode"
    assert 3 * 86_400 - 60 < status["uptime_seconds"] < 3 * 86_400 + 600  # the 3-day-old one
    assert status["retrieval_samples"] == 4
    assert 0 < status["retrieval_p50_ms"] <= status["retrieval_p95_ms"]
    assert status["error_rate"] == 0.625  # 5 failed of the 8 steps of the last 24h
    assert status["error_window"] == "24h"
    assert status["learning_queue_depth"] == 0
    assert status["circuit_breaker"] == "not configured"
    wider = invoke_json("mon", "status", "--probes", "0", "--window", "4d")
    assert wider["error_rate"] == round(5 / 9, 4)
    assert wider["retrieval_samples"] == 0


def test_empty_store_uptime_from_the_database_file(
    data_dir: Path, invoke_json: Callable[..., Any]
) -> None:
    status = invoke_json("monitor", "status")
    assert status["episodes"] == 0
    assert status["error_rate"] == 0.0
    assert status["uptime_source"] == "database_file"
    assert 0 <= status["uptime_seconds"] < 600


def test_metrics_details(data_dir: Path, invoke_json: Callable[..., Any]) -> None:
    seed_steps(data_dir)
    add_failed_episode(data_dir)
    m = invoke_json("monitor", "metrics", "--probes", "6")
    lat = m["retrieval_latency"]
    assert lat["samples"] == 6
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert lat["sum_ms"] >= lat["max_ms"]
    assert m["outcomes"] == {"success": 1, "failure": 1}
    assert m["completed_episodes"] == 2
    assert m["window_steps"] == 9
    assert m["failed_steps"] == 6
    cache = m["cache"]
    assert cache["enabled"] is True
    # the probes load the episodes they rank: the first load misses, the later ones hit
    assert cache["hits"] + cache["misses"] > 0
    assert cache["hits"] >= 1
    assert cache["hit_rate"] == round(cache["hits"] / (cache["hits"] + cache["misses"]), 4)
    assert cache["entries"] >= 1


def test_export_prometheus_parses(data_dir: Path, invoke: Invoke) -> None:
    seed_steps(data_dir)
    result = invoke("monitor", "export", "--probes", "3")  # default: prometheus, plain text
    assert result.exit_code == 0, result.stderr
    families = {f.name: f for f in text_string_to_metric_families(result.stdout)}
    value = {name: f.samples[0].value for name, f in families.items() if f.type == "gauge"}
    assert value["memory_episodes_total"] == 2
    assert value["memory_episodes_in_progress"] == 1
    assert value["memory_steps_total"] == 8
    assert value["memory_patterns_total"] >= 1
    assert 0 <= value["memory_cache_hit_rate"] <= 1
    assert value["memory_uptime_seconds"] >= 0
    assert value["memory_error_rate"] == 0.625
    assert value["memory_circuit_breaker_configured"] == 0
    summary = families["memory_retrieval_latency_ms"]
    assert summary.type == "summary"
    quantiles = {s.labels["quantile"]: s.value for s in summary.samples if "quantile" in s.labels}
    assert set(quantiles) == {"0.5", "0.95", "0.99"}
    assert quantiles["0.5"] <= quantiles["0.95"]
    count = next(s.value for s in summary.samples if s.name.endswith("_count"))
    assert count == 3
    outcomes = {
        s.labels["outcome"]: s.value for s in families["memory_episodes_by_outcome"].samples
    }
    assert outcomes == {"success": 1, "partial_success": 0, "failure": 0}


def test_export_json_influx_and_wrapped(data_dir: Path, invoke: Invoke) -> None:
    seed_steps(data_dir)
    as_json = invoke("monitor", "export", "-f", "json", "--probes", "1")
    assert json.loads(as_json.stdout)["episodes"] == 2
    influx = invoke("monitor", "export", "-f", "influx", "--probes", "1").stdout.strip()
    match = re.fullmatch(
        r"memory_stats,store=sqlite,circuit_breaker=not_configured (\S+) (\d+)", influx
    )
    assert match, influx
    fields = dict(pair.split("=") for pair in match.group(1).split(","))
    assert fields["episodes"] == "2i"
    assert fields["steps"] == "8i"
    assert float(fields["error_rate"]) == 0.625
    assert len(match.group(2)) == 19  # nanoseconds
    # with --format json the text is wrapped, so stdout still parses as JSON
    wrapped = invoke("--format", "json", "monitor", "export", "--probes", "1")
    payload = json.loads(wrapped.stdout)
    assert payload["format"] == "prometheus"
    assert list(text_string_to_metric_families(payload["content"]))
    as_yaml = yaml.safe_load(invoke("--format", "yaml", "mon", "export", "-f", "influx").stdout)
    assert as_yaml["content"].startswith("memory_stats,")


def test_export_to_file_and_dry_run(
    data_dir: Path, invoke: Invoke, invoke_json: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "memory.prom"
    dry = invoke_json("--dry-run", "monitor", "export", "-o", str(out), "--probes", "0")
    assert dry["dry_run"] is True
    assert not out.exists()
    wrote = invoke_json("monitor", "export", "-o", str(out), "--probes", "0")
    assert wrote["path"] == str(out)
    assert wrote["bytes"] == out.stat().st_size
    assert list(text_string_to_metric_families(out.read_text()))
    assert out.stat().st_mode & 0o044  # readable by a scraper, not mkstemp's 0600
    assert invoke("monitor", "export", "-o", str(tmp_path / "no" / "x")).exit_code == 3
    assert invoke("monitor", "export", "-o", str(tmp_path)).exit_code == 3


def test_live_with_count(data_dir: Path, invoke: Invoke) -> None:
    seed_steps(data_dir)
    result = invoke("--format", "json", "monitor", "live", "-n", "3", "-i", "0.1", "--probes", "1")
    assert result.exit_code == 0, result.stderr
    views = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(views) == 3
    assert all(v["episodes"] == 2 for v in views)
    assert views[0]["timestamp"] < views[2]["timestamp"]
    human = invoke("monitor", "live", "--count", "2", "--interval", "0.1")
    assert human.exit_code == 0
    assert human.stdout.count("retrieval latency") == 2
    docs = list(
        yaml.safe_load_all(invoke("-f", "yaml", "mon", "live", "-n", "2", "-i", "0.1").stdout)
    )
    assert len(docs) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["monitor", "live", "-n", "1", "--interval", "0"],
        ["monitor", "live", "-n", "-1"],
        ["monitor", "status", "--probes", "51"],
        ["monitor", "metrics", "--probes", "-1"],
        ["monitor", "export", "-f", "xml"],
    ],
)
def test_bounds_are_usage_errors(data_dir: Path, invoke: Invoke, args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stdout == ""


@pytest.mark.parametrize("window", ["24x", "", "h", "-2h", "1e3h"])
def test_bad_window_exit_3(data_dir: Path, invoke: Invoke, window: str) -> None:
    for command in ("status", "metrics", "export", "live"):
        result = invoke("monitor", command, "--window", window)
        assert result.exit_code == 3, (command, result.stderr)
        assert "--window" in result.stderr
        assert result.stdout == ""


def test_every_command_in_every_format(data_dir: Path, invoke: Invoke) -> None:
    seed_steps(data_dir)
    for command in (["status"], ["metrics"], ["export", "-f", "json"], ["live", "-n", "1"]):
        for fmt in ("human", "json", "yaml"):
            result = invoke("--format", fmt, "monitor", *command, "--probes", "1")
            assert result.exit_code == 0, (command, fmt, result.stderr)
            if fmt == "json":
                assert isinstance(json.loads(result.stdout), dict)
            elif fmt == "yaml":
                assert isinstance(yaml.safe_load(result.stdout), dict)
            else:
                assert result.stdout.strip()
    assert "circuit breaker" in invoke("monitor", "status").stdout


def test_process_json_purity(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed_steps(data)
    env = {"MEMORY_DATA_DIR": str(data), "NO_COLOR": "1"}
    for args in (
        ["--format", "json", "monitor", "status"],
        ["--format", "json", "-v", "monitor", "metrics", "--probes", "2"],
        ["--format", "json", "-v", "monitor", "export"],
    ):
        proc = run_process(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        assert isinstance(json.loads(proc.stdout), dict)
    proc = run_process("-v", "--format", "human", "monitor", "export", env=env)  # Prometheus text
    assert list(text_string_to_metric_families(proc.stdout))
    assert "DEBUG" in proc.stderr or "INFO" in proc.stderr
    log = (data / "logs" / "memory-cli.log").read_text().splitlines()
    commands = {json.loads(line).get("command") for line in log}
    assert {"monitor status", "monitor metrics", "monitor export"} <= commands
