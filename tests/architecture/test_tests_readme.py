"""tests/README.md maps every module to its tests: each module of the package and each test
directory is in it, and every test file it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "self_learning_memory"
TESTS = ROOT / "tests"
README = (TESTS / "README.md").read_text(encoding="utf-8")


def test_every_module_has_a_row() -> None:
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        if relative == Path("__init__"):
            continue
        name = relative.parent.as_posix() if relative.name == "__init__" else relative.as_posix()
        if f"| `{name}` |" not in README:
            missing.append(name)
    assert not missing, (
        f"add these modules to tests/README.md (python tests/architecture/tests_map.py): {missing}"
    )


def test_every_test_directory_is_described() -> None:
    directories = sorted(
        path.name
        for path in TESTS.iterdir()
        if path.is_dir() and any(path.glob("*.py")) and path.name != "__pycache__"
    )
    missing = [name for name in directories if f"`tests/{name}/`" not in README]
    assert not missing, f"describe these test directories in tests/README.md: {missing}"


def test_every_named_test_file_exists() -> None:
    named = set(re.findall(r"`((?:tests/)?[a-z_]+/[a-z_0-9*]+\.py)`", README))
    assert len(named) > 50
    missing = sorted(name for name in named if not list(TESTS.glob(name.removeprefix("tests/"))))
    assert not missing, f"tests/README.md names files that do not exist: {missing}"
