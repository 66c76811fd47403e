"""The unit tests need no postgres extra: with psycopg hidden (a ``sitecustomize`` that refuses to
import it), the root conftest imports and ``tests/unit`` collects and its tests run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

HIDE_PSYCOPG = '''
import sys


class HidePsycopg:
    """Makes ``import psycopg`` (and psycopg_pool) fail as if the extra were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg_pool", "psycopg_binary"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, HidePsycopg())
'''

pytestmark = pytest.mark.integration


def run_without_psycopg(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sitecustomize.py").write_text(HIDE_PSYCOPG, encoding="utf-8")
    path = [str(tmp_path), str(ROOT / "src"), str(ROOT / "tests")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_psycopg_is_really_hidden(tmp_path: Path) -> None:
    done = run_without_psycopg(tmp_path, "-c", "import psycopg")
    assert done.returncode != 0
    assert "No module named 'psycopg'" in done.stderr


def test_root_conftest_imports_without_psycopg(tmp_path: Path) -> None:
    done = run_without_psycopg(tmp_path, "-c", "import conftest, backends.support")
    assert done.returncode == 0, done.stderr


def test_unit_tests_collect_without_psycopg(tmp_path: Path) -> None:
    done = run_without_psycopg(
        tmp_path, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/unit"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert len(collected) > 50, done.stdout[-3000:]
