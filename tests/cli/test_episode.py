"""`memory-cli episode`: every command and format through typer's runner, the cross-process flow
with real processes, bad input with its exit code, and stdout purity with --format json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Invoke, run_process

pytestmark = pytest.mark.integration


def _create(
    invoke_json: Callable[..., Any], task: str = "Fix the flaky login test", *extra: str
) -> str:
    created = invoke_json(
        "episode", "create", "-t", task, "-T", "debugging", "--domain", "web-api", *extra
    )
    assert created["status"] == "created"
    assert created["task_type"] == "debugging"
    eid: str = created["episode_id"]
    return eid


def test_lifecycle_every_command(invoke: Invoke, invoke_json: Callable[..., Any]) -> None:
    eid = _create(invoke_json, "Fix the flaky login test", "--language", "python", "--tag", "ci")
    step = invoke_json(
        "episode",
        "log-step",
        eid,
        "-t",
        "pytest",
        "-a",
        "run the suite",
        "--failure",
        "-o",
        "AssertionError: expected 200",
        "--latency-ms",
        "1200",
        "--tokens",
        "33",
        "--params",
        '{"path": "tests/test_login.py"}',
    )
    assert step == {
        "episode_id": eid,
        "step_number": 1,
        "durable": True,
        "result": "error",
        "status": "logged",
    }
    invoke_json("ep", "log-step", eid, "-t", "editor", "-a", "add retry", "-o", "patched")
    invoke_json("ep", "log-step", eid, "-t", "pytest", "-a", "rerun", "-r", "success")

    viewed = invoke_json("episode", "view", eid)
    assert viewed["status"] == "in-progress"
    steps = viewed["steps"]
    assert [s["step_number"] for s in steps] == [1, 2, 3]
    assert steps[0]["latency_ms"] == 1200  # in its field, not in metadata
    assert steps[0]["tokens_used"] == 33
    assert steps[0]["parameters"] == {"path": "tests/test_login.py"}
    assert steps[0]["result"] == {"type": "error", "message": "AssertionError: expected 200"}
    assert viewed["context"]["language"] == "python"
    assert viewed["context"]["tags"] == ["ci"]

    done = invoke_json(
        "episode", "complete", eid, "success", "--verdict", "green 50 times", "--artifact", "pr/12"
    )
    assert done["status"] == "completed"
    assert done["outcome"] == {
        "type": "success",
        "verdict": "green 50 times",
        "artifacts": ["pr/12"],
    }
    assert done["reward"]["total"] > 0
    assert done["patterns_count"] >= 1

    failed = _create(invoke_json, "Deploy the login service to staging")
    invoke_json(
        "ep",
        "log-step",
        failed,
        "-t",
        "kubectl",
        "-a",
        "apply",
        "--failure",
        "-o",
        "connection refused",
    )
    out = invoke_json("episode", "fail", failed, "--reason", "cluster unreachable")
    assert out["outcome"]["type"] == "failure"
    assert out["outcome"]["reason"] == "cluster unreachable"

    listed = invoke_json("episode", "list")
    assert listed["total_count"] == 2
    assert {e["episode_id"] for e in listed["episodes"]} == {eid, failed}
    only = invoke_json("episode", "list", "--outcome", "failure")
    assert [e["episode_id"] for e in only["episodes"]] == [failed]
    assert invoke_json("episode", "list", "--task-type", "testing")["total_count"] == 0
    assert invoke_json("episode", "list", "--status", "in-progress")["total_count"] == 0
    assert invoke_json("episode", "list", "--since", "1h")["total_count"] == 2
    assert len(invoke_json("episode", "list", "--limit", "1")["episodes"]) == 1

    found = invoke_json("episode", "search", "flaky login test", "--domain", "web-api")
    assert found["results"][0]["episode"]["episode_id"] == eid
    assert {"relevance", "context", "outcome", "recency", "total"} <= set(
        found["results"][0]["components"]
    )
    assert found["results"][0]["provenance"]

    warning = invoke_json(
        "episode", "known-failures", "Deploy the login service", "--domain", "web-api"
    )
    assert [f["episode"]["episode_id"] for f in warning["failures"]] == [failed]

    assert invoke_json("episode", "get", eid)["episode_id"] == eid  # the alias
    assert invoke_json("episode", "delete", failed, "--yes") == {
        "episode_id": failed,
        "deleted": True,
        "status": "deleted",
    }
    gone = invoke("episode", "view", failed)
    assert gone.exit_code == 4
    assert "No episode with id" in gone.stderr


def test_human_and_yaml_formats(invoke: Invoke, invoke_json: Callable[..., Any]) -> None:
    eid = _create(invoke_json)
    invoke_json("ep", "log-step", eid, "-t", "pytest", "-a", "run")
    human = invoke("--format", "human", "episode", "complete", eid, "success")
    assert human.exit_code == 0
    assert "reward" in human.stdout
    assert "pytest" in human.stdout
    listed = invoke("--format", "yaml", "episode", "list")
    assert listed.exit_code == 0
    assert yaml.safe_load(listed.stdout)["episodes"][0]["episode_id"] == eid
    table = invoke("episode", "list")
    assert "1 of 1 episodes" in table.stdout


def test_dry_run_writes_nothing(invoke: Invoke, invoke_json: Callable[..., Any]) -> None:
    assert invoke_json("--dry-run", "episode", "create", "-t", "x")["dry_run"] is True
    assert invoke_json("episode", "list")["total_count"] == 0
    eid = _create(invoke_json)
    would = invoke_json("--dry-run", "episode", "log-step", eid, "-t", "pytest", "-a", "run")
    assert would["dry_run"] is True
    assert invoke_json("--dry-run", "episode", "complete", eid, "success")["dry_run"] is True
    assert invoke_json("--dry-run", "episode", "delete", eid)["dry_run"] is True
    viewed = invoke_json("episode", "view", eid)
    assert viewed["steps"] == []
    assert viewed["status"] == "in-progress"


BAD: list[tuple[list[str], int, str]] = [
    (["episode", "view", "not-a-uuid"], 3, "not a valid UUID"),
    (["episode", "view", "6f1c2b8e-0000-4000-8000-000000000000"], 4, "No episode with id"),
    (["episode", "complete", "6f1c2b8e-0000-4000-8000-000000000000", "success"], 4, "No episode"),
    (["episode", "create", "-t", ""], 3, "task_description"),
    (["episode", "create", "-t", "x" * 10_001], 3, "10000"),
    (["episode", "create", "-t", "a\x00b"], 3, "NUL"),
    (["episode", "create", "-t", "x", "-T", "cooking"], 2, "cooking"),
    (["episode", "list", "--limit", "0"], 2, "limit"),
    (["episode", "list", "--limit", "1001"], 2, "limit"),
    (["episode", "list", "--since", "yesterday"], 3, "Nh, Nd or Nm"),
    (["episode", "search", ""], 3, "query"),
    (["episode", "create", "-t", "x", "--context", "/no/such/file.json"], 3, "--context"),
]


@pytest.mark.parametrize(
    ("args", "code", "message"), BAD, ids=[" ".join(a)[:40] for a, _, _ in BAD]
)
def test_bad_input_gives_one_line_and_exit_code(
    invoke: Invoke, args: list[str], code: int, message: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert message in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    if code != 2:
        assert result.stdout == ""
        assert "hint:" in result.stderr


def test_state_errors(invoke: Invoke, invoke_json: Callable[..., Any]) -> None:
    eid = _create(invoke_json)
    invoke_json("ep", "log-step", eid, "-t", "pytest", "-a", "run", "--step-number", "5")
    result = invoke("ep", "log-step", eid, "-t", "pytest", "-a", "run", "--step-number", "5")
    assert result.exit_code == 3
    assert "step_number" in result.stderr
    bad_params = invoke("ep", "log-step", eid, "-t", "x", "-a", "y", "--params", "[1, 2]")
    assert bad_params.exit_code == 3
    assert "JSON object" in bad_params.stderr
    invoke_json("episode", "complete", eid, "failure")
    again = invoke("episode", "complete", eid, "success")
    assert again.exit_code == 5
    assert "already completed" in again.stderr
    late = invoke("ep", "log-step", eid, "-t", "pytest", "-a", "run")
    assert late.exit_code == 5
    assert [s["step_number"] for s in invoke_json("episode", "view", eid)["steps"]] == [5]


def test_context_file_json_and_yaml(invoke_json: Callable[..., Any], tmp_path: Path) -> None:
    as_json = tmp_path / "ctx.json"
    as_json.write_text(json.dumps({"domain": "data", "language": "rust", "complexity": "complex"}))
    as_yaml = tmp_path / "ctx.yaml"
    as_yaml.write_text("domain: data\nframework: polars\ntags: [etl]\n")
    a = invoke_json("episode", "create", "-t", "Load the CSV", "--context", str(as_json))
    b = invoke_json(
        "episode", "create", "-t", "Load the CSV", "--context", str(as_yaml), "--domain", "etl"
    )
    assert a["context"]["language"] == "rust"
    assert a["context"]["complexity"] == "complex"
    assert b["context"]["framework"] == "polars"
    assert b["context"]["domain"] == "etl"  # the flag wins over the file


def test_cross_process_flow_and_json_purity(cli_env: dict[str, str]) -> None:
    """create, log-step, complete and view in four separate processes; stdout is pure JSON."""
    env = {**cli_env, "MEMORY_FORMAT": "json"}

    def cli(*args: str) -> Any:
        done = run_process("--verbose", *args, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # debug logs went to stderr, never stdout

    eid = cli("episode", "create", "-t", "Migrate the orders table", "-T", "refactoring")[
        "episode_id"
    ]
    cli("episode", "log-step", eid, "-t", "alembic", "-a", "generate migration")
    cli("episode", "log-step", eid, "-t", "psql", "-a", "apply", "--failure", "-o", "lock timeout")
    cli("episode", "log-step", eid, "-t", "psql", "-a", "apply with lock_timeout")
    cli(
        "episode",
        "complete",
        eid,
        "partial-success",
        "--completed",
        "schema",
        "--failed",
        "backfill",
    )
    viewed = cli("episode", "view", eid)
    assert [s["tool"] for s in viewed["steps"]] == ["alembic", "psql", "psql"]
    assert viewed["outcome"]["type"] == "partial_success"
    assert viewed["reward"] is not None
    bad = run_process("episode", "view", "6f1c2b8e-0000-4000-8000-000000000000", env=env)
    assert bad.returncode == 4
    assert bad.stdout == ""


def test_completion_script(invoke: Invoke) -> None:
    result = invoke("completion", "bash")
    assert result.exit_code == 0
    assert "_MEMORY_CLI_COMPLETE" in result.stdout
    assert invoke("completion", "tcsh").exit_code == 3


@pytest.mark.parametrize(
    ("argv", "group"),
    [
        (["episode", "list"], "episode"),
        (["-f", "json", "ep", "view", "x"], "episode"),
        (["--config", "a.toml", "-v", "--dry-run", "bak", "create"], "backup"),
        (["--format=json", "mon", "status"], "monitor"),
        (["-d", "episode", "logs", "stats"], "logs"),  # "episode" is -d's value here
        (["--help"], None),
        (["-v", "--help", "episode"], None),
        (["completion", "bash"], None),
        (["nosuch"], None),
        ([], None),
    ],
)
def test_a_process_builds_only_the_group_it_runs(argv: list[str], group: str | None) -> None:
    from self_learning_memory.cli.app import requested_group

    assert requested_group(argv) == group


def test_single_group_process_behaves_like_the_full_app(cli_env: dict[str, str]) -> None:
    created = run_process("-f", "json", "ep", "create", "-t", "Fast start", env=cli_env)
    assert created.returncode == 0, created.stderr
    listed = run_process("-f", "json", "episode", "list", env=cli_env)
    assert json.loads(listed.stdout)["total_count"] == 1
    assert run_process("nosuch", env=cli_env).returncode == 2
    helped = run_process("--help", env=cli_env)
    assert all(name in helped.stdout for name in ("episode", "pattern", "backup", "logs"))


def test_cli_choices_are_the_library_enums(invoke: Invoke) -> None:
    from self_learning_memory.cli.commands import episode
    from self_learning_memory.model.episode import TaskType

    for task_type in TaskType:  # every model value is a choice ...
        made = invoke("--dry-run", "episode", "create", "-t", "x", "-T", task_type.value)
        assert made.exit_code == 0, made.stderr
    bad = invoke("episode", "create", "-t", "x", "-T", "cooking")  # ... and nothing else
    assert bad.exit_code == 2
    assert "code_generation" in bad.stderr
    outcomes = {m.value.replace("-", "_") for m in episode.OutcomeArg}
    assert outcomes == {"success", "partial_success", "failure"}
