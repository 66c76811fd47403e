"""Issue 12, item 7: an unusable path says which path and what to do, in one line (exit 7).

Root ignores file modes, so every case is a real trigger that works as root: a regular file
where the data directory (or a parent) should be, a directory where ``memory.db`` should be,
and read-only mounts (``mount -o remount,ro,bind`` in a private mount namespace from
``unshare -m``) of the data directory and of ``memory.db`` alone. A directory that is merely
not writable for a non-root user (the ``os.access`` branch) cannot be triggered here.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cli.conftest import run_process
from cli.seeding import seed
from faults.namespaces import needs_unshare

FIX = "choose another data directory"


def _error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    return " ".join(stderr.split("hint:")[0].split())  # the message, re-joined if wrapped


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_process("-d", str(data), *args, env={"NO_COLOR": "1", "COLUMNS": "400"})


@pytest.mark.parametrize("nested", [False, True])
def test_faults_paths_data_dir_is_a_regular_file(tmp_path: Path, nested: bool) -> None:
    """Was: internal error: FileExistsError (exit 1)."""
    blocker = tmp_path / "data"
    blocker.write_text("a file")
    data = blocker / "sub" if nested else blocker
    done = _cli(data, "episode", "list")
    assert done.returncode == 7, done.stderr
    line = _error_line(done.stderr)
    assert f"{blocker} is a regular file" in line
    assert FIX in line
    assert "internal error" not in done.stderr


def test_faults_paths_memory_db_is_a_directory(tmp_path: Path) -> None:
    """Was: "Cannot open the database ...: unable to open database file" with retry advice."""
    (tmp_path / "data" / "memory.db").mkdir(parents=True)
    done = _cli(tmp_path / "data", "episode", "list")
    assert done.returncode == 7, done.stderr
    line = _error_line(done.stderr)
    assert f"{tmp_path / 'data' / 'memory.db'} is a directory" in line
    assert "retry" not in done.stderr.replace("retrying will not help", "")


def _read_only(target: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cli = shlex.join([sys.executable, "-m", "self_learning_memory.cli", "-d", str(data), *args])
    script = f"mount --bind {target} {target} && mount -o remount,ro,bind {target} && {cli}"
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "400"},
    )


@needs_unshare
def test_faults_paths_read_only_data_dir(tmp_path: Path) -> None:
    """Was: internal error: CantOpenError (exit 1)."""
    data = tmp_path / "data"
    seed(data, successes=1)
    done = _read_only(data, data, "episode", "list")
    assert done.returncode == 7, done.stderr
    line = _error_line(done.stderr)
    assert f"{data / 'memory.db'} is on a read-only file system" in line
    assert FIX in line


@needs_unshare
def test_faults_paths_read_only_memory_db(tmp_path: Path) -> None:
    """Was: "The database could not be written" (exit 8) with "retry" advice."""
    data = tmp_path / "data"
    seed(data, successes=1)
    db = data / "memory.db"
    done = _read_only(db, data, "episode", "create", "-t", "Fix the read-only test")
    assert done.returncode == 7, done.stderr
    line = _error_line(done.stderr)
    assert f"{db} is on a read-only file system" in line
    assert "retrying will not help" in done.stderr
