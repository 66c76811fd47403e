"""`memory-cli pattern analyze-trends` as a real process over a seeded SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.memory_seed import improving_debugging_history, seed_history
from cli.conftest import run_process

pytestmark = pytest.mark.integration


def test_analyze_trends_answers_is_debugging_getting_better(
    cli_env: dict[str, str],
) -> None:
    seed_history(Path(cli_env["MEMORY_DATA_DIR"]), improving_debugging_history())
    human = run_process("pattern", "analyze-trends", "--task-type", "debugging", "-m", "reward",
                        "-m", "duration")  # fmt: skip
    assert human.returncode == 0, human.stderr
    assert "120 episodes (task_type debugging) in 30 buckets of 1 day(s)" in human.stdout
    assert "reward (higher is better): improving" in " ".join(human.stdout.split())
    assert "duration (lower is better): improving" in " ".join(human.stdout.split())

    flat = run_process("pattern", "analyze-trends", "--task-type", "testing", "--metric",
                       "reward", "--json")  # fmt: skip
    assert flat.returncode == 0, flat.stderr
    data = json.loads(flat.stdout)
    assert list(data["metrics"]) == ["reward"]
    assert data["metrics"]["reward"]["direction"] == "no significant trend"

    per_n = run_process("pattern", "analyze-trends", "--domain", "web-api", "--bucket",
                        "episodes", "--bucket-size", "30", "-m", "success_rate", "--json")  # fmt: skip
    assert per_n.returncode == 0, per_n.stderr
    rate = json.loads(per_n.stdout)["metrics"]["success_rate"]
    assert [p["episodes"] for p in rate["series"]] == [30, 30, 30, 30]

    few = run_process("pattern", "analyze-trends", "--since", "2026-01-29", "--until",
                      "2026-01-31", "-m", "reward")  # fmt: skip
    assert few.returncode == 0, few.stderr
    assert "not enough data: 2 buckets, need 3" in few.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--bucket-size", "0"), "'--bucket-size': 0 is outside 1..365"),
        (("--bucket", "episodes", "--bucket-size", "20000"), "1..10000"),
        (("--since", "yesterday"), "'--since'"),
        (("--since", "2026-02-01", "--until", "2026-01-01"), "'--until'"),
        (("--max-episodes", "0"), "'--max-episodes'"),
    ],
)
def test_analyze_trends_rejects_bad_flags(
    cli_env: dict[str, str], args: tuple[str, ...], needle: str
) -> None:
    result = run_process("pattern", "analyze-trends", *args)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert needle in " ".join(result.stderr.split())
