"""`memory-cli backup`: create, list, verify, restore through typer's runner, every output
format, --dry-run, damaged backups, and the `storage backup` alias hook."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from self_learning_memory import (
    ExecutionStep,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.cli.commands import backup as backup_cli
from self_learning_memory.cli.state import CliState

from .conftest import Invoke, run_process

CTX = TaskContext(domain="web-api", language="python")


async def _populate(data_dir: Path) -> None:
    async with SelfLearningMemory.open(data_dir) as memory:
        for i in range(3):
            eid = await memory.start_episode(f"Add endpoint {i}", CTX, "code_generation")
            for n, tool in enumerate(["read_file", "edit_file", "run_tests"], 1):
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=n, tool=tool, action=f"{tool} step", result=SuccessResult()
                    ),
                )
            await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
        await memory.wait_for_learning()


@pytest.fixture
def data_dir(cli_env: dict[str, str]) -> Path:
    path = Path(cli_env["MEMORY_DATA_DIR"])
    asyncio.run(_populate(path))
    return path


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def _create(invoke_json: Callable[..., Any], backups: Path, *extra: str) -> dict[str, Any]:
    data = invoke_json("backup", "create", "-p", str(backups), *extra)
    assert isinstance(data, dict)
    return data


def _episode_ids(invoke_json: Callable[..., Any], *extra: str) -> list[str]:
    listed = invoke_json(*extra, "episode", "list", "--limit", "100")
    return sorted(e["episode_id"] for e in listed["episodes"])


@pytest.mark.parametrize("fmt", ["sqlite", "json", "jsonl", "sql"])
def test_create_verify_restore_round_trip(
    data_dir: Path,
    backups: Path,
    tmp_path: Path,
    invoke: Invoke,
    invoke_json: Callable[..., Any],
    fmt: str,
) -> None:
    created = _create(invoke_json, backups, "--format", fmt, "--compress")
    assert created["format"] == fmt
    assert created["compressed"] is True
    assert created["counts"]["episodes"] == 3
    assert created["counts"]["steps"] == 9
    assert created["counts"]["patterns"] > 0
    assert Path(created["path"]).is_dir()

    verified = invoke_json("backup", "verify", created["path"])
    assert verified["ok"] is True
    assert verified["problems"] == []

    target = tmp_path / "restored"
    restored = invoke_json(
        "backup", "restore", "-b", created["backup_id"], "-p", str(backups), "-t", str(target), "-y"
    )
    assert restored["replaced_existing"] is False
    assert restored["counts"] == created["counts"]
    assert _episode_ids(invoke_json, "--data-dir", str(target)) == _episode_ids(invoke_json)
    original = invoke_json("pattern", "list") if _has_pattern_list(invoke) else None
    if original is not None:
        assert invoke_json("--data-dir", str(target), "pattern", "list") == original


def _has_pattern_list(invoke: Invoke) -> bool:
    return invoke("pattern", "list", "--help").exit_code == 0


def test_create_human_and_yaml_output(data_dir: Path, backups: Path, invoke: Invoke) -> None:
    human = invoke("backup", "create", "-p", str(backups))
    assert human.exit_code == 0, human.stderr
    assert "written to" in human.stdout
    assert "3 episodes" in human.stdout
    as_yaml = invoke("--format", "yaml", "backup", "create", "-p", str(backups), "-f", "json")
    assert as_yaml.exit_code == 0, as_yaml.stderr
    data = yaml.safe_load(as_yaml.stdout)
    assert data["format"] == "json"
    assert data["counts"]["episodes"] == 3


def test_list_in_every_format(
    data_dir: Path, backups: Path, invoke: Invoke, invoke_json: Callable[..., Any]
) -> None:
    first = _create(invoke_json, backups)
    second = _create(invoke_json, backups, "-f", "sql")
    listed = invoke_json("backup", "list", "-p", str(backups))
    assert listed["total_count"] == 2
    assert [b["backup_id"] for b in listed["backups"]] == [
        second["backup_id"],
        first["backup_id"],
    ]
    human = invoke("backup", "list", "-p", str(backups))
    assert human.exit_code == 0
    assert first["backup_id"] in human.stdout
    assert "2 backups" in human.stdout
    as_yaml = yaml.safe_load(invoke("--format", "yaml", "bak", "list", "-p", str(backups)).stdout)
    assert as_yaml["total_count"] == 2
    missing = invoke("backup", "list", "-p", str(backups / "nope"))
    assert missing.exit_code == 4
    assert "nope" in missing.stderr


@pytest.mark.parametrize(
    "damage",
    ["flip", "truncate", "delete", "manifest"],
)
def test_verify_and_restore_refuse_a_damaged_backup(
    data_dir: Path,
    backups: Path,
    tmp_path: Path,
    invoke: Invoke,
    invoke_json: Callable[..., Any],
    damage: str,
) -> None:
    created = _create(invoke_json, backups, "-f", "jsonl")
    path = Path(created["path"])
    data_file = path / "memory.jsonl"
    if damage == "flip":
        raw = bytearray(data_file.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        data_file.write_bytes(bytes(raw))
    elif damage == "truncate":
        data_file.write_bytes(data_file.read_bytes()[:-10])
    elif damage == "delete":
        data_file.unlink()
    else:
        (path / "manifest.json").write_text('{"backup_id": 1}')
    named = "manifest.json" if damage == "manifest" else "memory.jsonl"

    result = invoke("backup", "verify", str(path))
    assert result.exit_code == 7
    assert named in result.stderr
    assert "damaged" in result.stdout
    as_json = invoke("--format", "json", "backup", "verify", str(path))
    assert as_json.exit_code == 7
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert any(named in p for p in report["problems"])

    before = sorted((p.name, p.stat().st_size) for p in data_dir.iterdir())
    refused = invoke("backup", "restore", str(path), "-t", str(data_dir), "--force", "-y")
    assert refused.exit_code == 7
    assert "nothing was restored" in refused.stderr
    assert sorted((p.name, p.stat().st_size) for p in data_dir.iterdir()) == before
    fresh = tmp_path / "fresh"
    assert invoke("backup", "restore", str(path), "-t", str(fresh), "-y").exit_code == 7
    assert not fresh.exists()


def test_restore_over_a_store_needs_force(
    data_dir: Path, backups: Path, invoke: Invoke, invoke_json: Callable[..., Any]
) -> None:
    created = _create(invoke_json, backups)
    ids = _episode_ids(invoke_json)
    refused = invoke("backup", "restore", created["path"], "-y")
    assert refused.exit_code == 5
    assert "--force" in refused.stderr
    replaced = invoke_json("backup", "restore", created["path"], "--force", "-y")
    assert replaced["replaced_existing"] is True
    assert _episode_ids(invoke_json) == ids


def test_restore_asks_for_confirmation(
    data_dir: Path, backups: Path, tmp_path: Path, invoke: Invoke, invoke_json: Callable[..., Any]
) -> None:
    created = _create(invoke_json, backups)
    target = tmp_path / "target"
    declined = invoke("backup", "restore", created["path"], "-t", str(target), input="n\n")
    assert declined.exit_code == 130
    assert "nothing was changed" in declined.stderr
    assert not target.exists()
    accepted = invoke("backup", "restore", created["path"], "-t", str(target), input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert "restored into" in accepted.stdout
    assert (target / "memory.db").is_file()


def test_dry_run_writes_nothing(
    data_dir: Path, backups: Path, tmp_path: Path, invoke_json: Callable[..., Any]
) -> None:
    would = invoke_json("--dry-run", "backup", "create", "-p", str(backups), "-f", "sql")
    assert would["dry_run"] is True
    assert would["format"] == "sql"
    assert not backups.exists()

    created = _create(invoke_json, backups)
    target = tmp_path / "target"
    would = invoke_json("--dry-run", "backup", "restore", created["path"], "-t", str(target))
    assert would["dry_run"] is True
    assert would["replaces_existing_store"] is False
    assert not target.exists()
    over = invoke_json("--dry-run", "backup", "restore", created["path"])
    assert over["replaces_existing_store"] is True
    assert over["refused_without_force"] is True


def test_bad_arguments(data_dir: Path, backups: Path, invoke: Invoke) -> None:
    assert invoke("backup", "create").exit_code == 2  # --path is required
    assert invoke("backup", "create", "-p", str(backups), "-f", "xml").exit_code == 2
    no_ref = invoke("backup", "verify")
    assert no_ref.exit_code == 3
    assert "BACKUP" in no_ref.stderr
    id_without_dir = invoke("backup", "restore", "-b", "backup_x", "-y")
    assert id_without_dir.exit_code == 3
    assert "--path" in id_without_dir.stderr
    unknown = invoke("backup", "verify", "-b", "backup_nope", "-p", str(backups))
    assert unknown.exit_code == 4
    empty_store = invoke(
        "--data-dir", str(backups / "none"), "backup", "create", "-p", str(backups)
    )
    assert empty_store.exit_code == 4


def test_add_create_command_registers_the_same_command(
    data_dir: Path, backups: Path, cli_env: dict[str, str]
) -> None:
    """What the storage group calls for `storage backup`."""
    group = typer.Typer()

    @group.callback()
    def main() -> None:
        pass

    backup_cli.add_create_command(group)
    result = CliRunner().invoke(group, ["backup", "-p", str(backups), "-f", "jsonl"])
    assert result.exit_code == 0, result.output
    (made,) = backups.iterdir()
    assert (made / "memory.jsonl").is_file()


@pytest.mark.integration
def test_json_output_is_pure_in_a_real_process(data_dir: Path, backups: Path) -> None:
    env = {**os.environ, "MEMORY_DATA_DIR": str(data_dir)}
    done = run_process("--format", "json", "backup", "create", "-p", str(backups), env=env)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    checked = run_process("--format", "json", "backup", "verify", created["path"], env=env)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["ok"] is True


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("output_format", "ci", "shown"),
    [("human", "", True), ("json", "", False), ("yaml", "", False), ("human", "1", False)],
)
def test_progress_bar_only_for_people_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, output_format: str, ci: str, shown: bool
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(backup_cli.sys, "stderr", terminal)
    monkeypatch.setenv("CI", ci)
    with backup_cli._progress(CliState(format=output_format, no_color=True)) as progress:
        assert (progress is not None) is shown
        if progress is not None:
            progress("snapshot", 1, 4)
            progress("snapshot", 4, 4)
            progress("compress", 10, 10)
