"""The README's promises: its two commands come first, CI runs the second, its snippet runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["make demo", "make test"]
    assert README.index("make demo") < README.index("## 30-second tour")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [
        line.strip() for line in script.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert lines[-1] == "make test"


def test_makefile_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo:", "test:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target


@pytest.mark.integration
def test_readme_python_snippet_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snippet = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "Add a /health endpoint" in out
    assert "error_recovery" in out
    assert (tmp_path / "my-memory" / "memory.db").exists()
