"""`memory-cli logs`: analyze, search, export, stats over episode steps (known seeded steps, exact
numbers), --since parsing and windows, tail of the JSON-lines log files, and in real processes:
--format json stdout parses and log lines never reach stdout."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Invoke, run_process
from .step_log_seed import STEPS_A, STEPS_B, seed_steps

pytestmark = pytest.mark.integration

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@pytest.fixture
def data_dir(cli_env: dict[str, str]) -> Path:
    return Path(cli_env["MEMORY_DATA_DIR"])


def test_analyze_exact_numbers(data_dir: Path, invoke_json: Callable[..., Any]) -> None:
    seed_steps(data_dir, old_episode=True)
    report = invoke_json("logs", "analyze")
    assert report["time_range"]["window"] == "24h"
    assert report["total_episodes"] == 2  # the 3-day-old one is outside the window
    assert report["total_steps"] == 8
    assert report["average_steps_per_episode"] == 4.0
    assert report["success_rate"] == 0.375  # 3 of 8
    tools = {t["tool"]: t for t in report["top_tools"]}
    assert report["top_tools"][0]["tool"] == "pytest"
    assert tools["pytest"] == {
        "tool": "pytest",
        "usage_count": 3,
        "success_rate": round(1 / 3, 4),
        "average_latency_ms": 200.0,
    }
    assert tools["editor"]["usage_count"] == 2
    assert tools["editor"]["success_rate"] == 1.0
    errors = {e["error_type"]: e for e in report["error_patterns"]}
    assert errors["connection"]["occurrences"] == 2
    assert errors["connection"]["affected_episodes"] == 1
    assert errors["connection"]["common_messages"] == ["Connection refused by db:5432"]
    assert errors["timeout"]["occurrences"] == 1  # a timeout result, no message
    assert errors["permission"]["occurrences"] == 1
    assert errors["other"]["occurrences"] == 1
    assert errors["other"]["common_messages"] == ["segfault in worker 100%_done"]
    assert sum(h["steps"] for h in report["performance_trends"]) == 8
    assert report["truncated"] is False


def test_since_window_includes_older_episodes(
    data_dir: Path, invoke_json: Callable[..., Any]
) -> None:
    seed_steps(data_dir, old_episode=True)
    assert invoke_json("logs", "stats", "--since", "4d")["total_steps"] == 9
    assert invoke_json("log", "stats", "-s", "72h")["total_steps"] == 8  # just outside
    assert invoke_json("logs", "stats", "--since", "30m")["total_steps"] == 8
    assert invoke_json("logs", "stats", "--since", "0m")["total_steps"] == 0


def test_stats(data_dir: Path, invoke_json: Callable[..., Any]) -> None:
    seed_steps(data_dir)
    stats = invoke_json("logs", "stats")
    assert stats["total_episodes"] == 2
    assert stats["unique_tools"] == 4  # pytest, editor, curl, shell
    latencies = [s[4] for s in STEPS_A + STEPS_B]
    assert stats["average_latency_ms"] == sum(latencies) / len(latencies)
    assert stats["error_count"] == 5
    assert sum(stats["episodes_by_hour"].values()) == 2


@pytest.mark.parametrize("since", ["24x", "h", "-1h", "", "1.5h", "99999999999d", "24h\x00"])
def test_bad_since_exit_3(data_dir: Path, invoke: Invoke, since: str) -> None:
    for command in (["analyze"], ["search", "x"], ["stats"], ["export", "-p", "out.json"]):
        result = invoke("logs", *command, "--since", since)
        assert result.exit_code == 3, (command, since, result.stdout, result.stderr)
        assert "--since" in result.stderr
        assert result.stdout == ""
    assert not Path("out.json").exists()


def test_search_tool_action_observation(data_dir: Path, invoke_json: Callable[..., Any]) -> None:
    seed_steps(data_dir)
    by_tool = invoke_json("logs", "search", "PYTEST")
    assert by_tool["count"] == 3
    assert {r["tool"] for r in by_tool["results"]} == {"pytest"}
    by_action = invoke_json("logs", "search", "chmod")
    assert [r["action"] for r in by_action["results"]] == ["chmod the socket"]
    assert by_action["results"][0]["error_type"] == "permission"
    by_observation = invoke_json("logs", "search", "refused")
    assert by_observation["count"] == 2
    # LIKE wildcards are literal text
    literal = invoke_json("logs", "search", "100%_")
    assert [r["message"] for r in literal["results"]] == ["segfault in worker 100%_done"]
    assert invoke_json("logs", "search", "%")["count"] == 1
    limited = invoke_json("logs", "search", "e", "--limit", "2")
    assert limited["count"] == 2
    stamps = [r["timestamp"] for r in invoke_json("logs", "search", "e")["results"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first


def test_search_bounds(data_dir: Path, invoke: Invoke) -> None:
    assert invoke("logs", "search", "x", "--limit", "0").exit_code == 2
    assert invoke("logs", "search", "x", "--limit", "1001").exit_code == 2
    assert invoke("logs", "search", "x" * 1001).exit_code == 3
    assert invoke("logs", "search", "a\x00b").exit_code == 3
    assert invoke("logs", "search", "   ").exit_code == 3


def test_export_json_csv_txt(
    data_dir: Path, invoke_json: Callable[..., Any], tmp_path: Path
) -> None:
    seed_steps(data_dir)
    out = tmp_path / "steps.json"
    result = invoke_json("logs", "export", "-p", str(out), "-f", "json")
    assert result["format"] == "json"
    assert result["path"] == str(out)
    assert result["records_exported"] == 8
    assert result["file_size_bytes"] == out.stat().st_size
    assert result["duration_ms"] >= 0
    records = json.loads(out.read_text())
    assert len(records) == 8
    assert [r["tool"] for r in records[:4]] == [s[0] for s in STEPS_A]  # oldest first
    assert records[0]["message"] == "Connection refused by db:5432"
    assert records[0]["error_type"] == "connection"
    assert records[4]["result"] == "timeout"
    assert records[4]["latency_ms"] == 5000

    out_csv = tmp_path / "steps.csv"
    assert invoke_json("logs", "export", "-p", str(out_csv), "-f", "csv")["records_exported"] == 8
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert len(rows) == 8
    assert rows[1]["action"] == "rerun with retries"
    assert rows[1]["latency_ms"] == "300"
    assert rows[2]["error_type"] == ""
    assert rows[2]["message"] == "patched conftest.py"

    out_txt = tmp_path / "steps.txt"
    assert invoke_json("logs", "export", "-p", str(out_txt), "-f", "txt")["records_exported"] == 8
    lines = out_txt.read_text().splitlines()
    assert len(lines) == 8
    assert "[error:permission]" in lines[5]
    assert "shell: chmod the socket" in lines[5]
    assert lines[4].endswith("(5000 ms)")

    empty = tmp_path / "empty.json"
    assert invoke_json("logs", "export", "-p", str(empty), "-s", "0m")["records_exported"] == 0
    assert json.loads(empty.read_text()) == []
    limited = tmp_path / "two.json"
    assert (
        invoke_json("logs", "export", "-p", str(limited), "--limit", "2")["records_exported"] == 2
    )


def test_export_refuses_overwrite_and_honours_dry_run(
    data_dir: Path, invoke: Invoke, invoke_json: Callable[..., Any], tmp_path: Path
) -> None:
    seed_steps(data_dir)
    out = tmp_path / "steps.csv"
    out.write_text("keep me")
    refused = invoke("logs", "export", "-p", str(out), "-f", "csv")
    assert refused.exit_code == 3
    assert "exists" in refused.stderr
    assert "--force" in refused.stderr
    assert out.read_text() == "keep me"
    replaced = invoke_json("logs", "export", "-p", str(out), "-f", "csv", "--force")
    assert replaced["records_exported"] == 8
    assert out.read_text().startswith("timestamp,")

    planned = tmp_path / "planned.json"
    dry = invoke_json("--dry-run", "logs", "export", "-p", str(planned))
    assert dry == {
        "dry_run": True,
        "would": "export steps",
        "format": "json",
        "path": str(planned),
        "records": 8,
    }
    assert not planned.exists()
    assert invoke("logs", "export", "-p", str(tmp_path / "no" / "x.json")).exit_code == 3
    assert invoke("logs", "export", "-p", str(tmp_path)).exit_code == 3
    assert invoke("logs", "export", "-p", str(out), "-f", "xml").exit_code == 2
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_every_command_in_every_format(data_dir: Path, invoke: Invoke, tmp_path: Path) -> None:
    seed_steps(data_dir)
    commands = [
        ["analyze"],
        ["search", "pytest"],
        ["stats"],
        ["tail", "-n", "5"],
    ]
    for command in commands:
        for fmt in ("human", "json", "yaml"):
            result = invoke("--format", fmt, "logs", *command)
            assert result.exit_code == 0, (command, fmt, result.stderr)
            if fmt == "json":
                assert isinstance(json.loads(result.stdout), dict)
            elif fmt == "yaml":
                assert isinstance(yaml.safe_load(result.stdout), dict)
            else:
                assert result.stdout.strip()
    human = invoke("logs", "analyze").stdout
    assert "pytest" in human
    assert "connection" in human
    assert "per hour" in human
    for i, fmt in enumerate(("human", "json", "yaml")):
        out = tmp_path / f"e{i}.json"
        assert invoke("--format", fmt, "logs", "export", "-p", str(out)).exit_code == 0


def test_empty_store(data_dir: Path, invoke_json: Callable[..., Any]) -> None:
    report = invoke_json("logs", "analyze")
    assert report["total_steps"] == 0
    assert report["success_rate"] == 0.0
    assert report["top_tools"] == []
    assert report["error_patterns"] == []
    assert invoke_json("logs", "search", "x")["results"] == []


# -- tail ------------------------------------------------------------------------------------
def test_tail_reads_the_cli_log(
    data_dir: Path, invoke: Invoke, invoke_json: Callable[..., Any]
) -> None:
    assert invoke("logs", "stats").exit_code == 0
    assert invoke("episode", "view", "not-a-uuid").exit_code == 3
    tail = invoke_json("logs", "tail", "--source", "cli", "-n", "50")
    assert tail["files"] == {"cli": str(data_dir / "logs" / "memory-cli.log")}
    # in process the command is named by its group; real processes add the subcommand
    finished = [r for r in tail["records"] if r["message"].startswith("command finished: logs")]
    assert finished
    assert finished[0]["command"].startswith("logs")
    assert finished[0]["duration_ms"] > 0
    assert finished[0]["source"] == "cli"
    assert isinstance(finished[0]["pid"], int)
    failed = [r for r in tail["records"] if r["message"].startswith("command failed")]
    assert failed
    assert failed[-1]["exit_code"] == 3
    assert failed[-1]["level"] == "INFO"
    assert invoke_json("logs", "tail", "--source", "cli", "-n", "2")["count"] == 2


def test_tail_mcp_and_all_merged(data_dir: Path, invoke_json: Callable[..., Any]) -> None:
    logs = data_dir / "logs"
    logs.mkdir(parents=True)
    (logs / "memory-mcp.log").write_text(
        "2020-01-01 10:00:00,000 INFO self_learning_memory.mcp: plain text line\n"
        + json.dumps(
            {
                "ts": "2020-01-01T10:00:01.000+00:00",
                "level": "WARNING",
                "logger": "self_learning_memory.mcp",
                "message": "json line",
                "source": "mcp",
            }
        )
        + "\nnot a log line at all\n"
    )
    (logs / "memory-cli.log").write_text(
        json.dumps({"ts": "2020-01-01T10:00:00.500+00:00", "level": "INFO", "message": "cli one"})
        + "\n"
    )
    mcp = invoke_json("logs", "tail", "--source", "mcp")
    assert [r["message"] for r in mcp["records"]] == [
        "plain text line",
        "json line",
        "not a log line at all",
    ]
    assert mcp["records"][0]["level"] == "INFO"
    assert mcp["records"][1]["level"] == "WARNING"
    merged = invoke_json("logs", "tail", "--source", "all", "-n", "20")
    messages = [r["message"] for r in merged["records"]]
    assert messages[:4] == ["plain text line", "cli one", "json line", "not a log line at all"]
    assert messages.index("cli one") == messages.index("plain text line") + 1
    assert {r["source"] for r in merged["records"]} == {"cli", "mcp"}


def test_tail_bounds_and_missing_files(data_dir: Path, invoke: Invoke) -> None:
    assert invoke("logs", "tail", "-n", "0").exit_code == 2
    assert invoke("logs", "tail", "-n", "10001").exit_code == 2
    assert invoke("logs", "tail", "--source", "nope").exit_code == 2
    result = invoke("--format", "json", "logs", "tail", "--source", "mcp")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["records"] == []


def test_tail_follow_prints_json_lines(data_dir: Path, invoke: Invoke) -> None:
    assert invoke("logs", "stats").exit_code == 0
    result = invoke(
        "--format", "json", "logs", "tail", "--source", "cli", "-n", "3", "-F", "--duration", "0.3"
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["source"] == "cli" for line in lines)


# -- real processes --------------------------------------------------------------------------
def test_process_json_stdout_is_pure_and_logs_go_to_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed_steps(data)
    env = {"MEMORY_DATA_DIR": str(data), "NO_COLOR": "1"}
    for args in (
        ["--format", "json", "logs", "analyze"],
        ["--format", "json", "-v", "logs", "stats", "--since", "2d"],
        ["--format", "json", "logs", "search", "shell"],
        ["--format", "json", "-v", "logs", "tail", "-n", "5"],
    ):
        proc = run_process(*args, env=env)
        assert proc.returncode == 0, (args, proc.stderr)
        payload = json.loads(proc.stdout)  # nothing but the result on stdout
        assert isinstance(payload, dict)
        assert not [line for line in proc.stdout.splitlines() if line.startswith(LEVELS)]
    verbose = run_process("--format", "json", "-v", "logs", "stats", env=env)
    assert "DEBUG" in verbose.stderr or "INFO" in verbose.stderr  # logs exist, on stderr
    assert "command started: logs stats" in verbose.stderr
    assert not [line for line in verbose.stdout.splitlines() if line.startswith(LEVELS)]
    log_file = data / "logs" / "memory-cli.log"
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any(r["message"] == "command finished: logs analyze" for r in records)
    assert all({"ts", "level", "logger", "message", "source", "pid"} <= r.keys() for r in records)
    bad = run_process("--format", "json", "logs", "analyze", "--since", "soon", env=env)
    assert bad.returncode == 3
    assert bad.stdout == ""
    assert "--since" in bad.stderr
