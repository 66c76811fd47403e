"""Regenerate the module tables of tests/README.md from the imports in tests/.

    python tests/architecture/tests_map.py          # rewrite tests/README.md in place
    python tests/architecture/tests_map.py --check  # exit 1 if it would change

For every module of ``src/self_learning_memory`` the table lists the test files that import it
directly (``import self_learning_memory.x`` or ``from self_learning_memory.x import ...``, or
``from self_learning_memory import x`` for a submodule). The line written under each package
heading (where that package is tested through the public API) is kept; a new package gets a
placeholder line to fill in.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "self_learning_memory"
TESTS = ROOT / "tests"
README = TESTS / "README.md"
MODULES_HEADING = "## Modules\n"
PLACEHOLDER = "Where this package is tested through the public API: (to be written)."
MAX_FILES = 6  # more importers than this are listed by directory


def modules() -> list[str]:
    """Dotted names of every module and package under self_learning_memory."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(("self_learning_memory", *parts)))
    return names


def importers(known: set[str]) -> dict[str, set[str]]:
    """Test files (relative to tests/) that import each module directly."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for name in names:
                if name in known:
                    found[name].add(path.relative_to(TESTS).as_posix())
    return found


def _cell(files: set[str]) -> str:
    tests = sorted(f for f in files if f.rsplit("/", 1)[-1].startswith("test_")) or sorted(files)
    if not tests:
        return "—"
    if len(tests) > MAX_FILES:
        return "files in " + ", ".join(f"`{d}/`" for d in sorted({t.split("/")[0] for t in tests}))
    return ", ".join(f"`{t}`" for t in tests)


def _notes(text: str) -> dict[str, str]:
    """The line under each package heading of the current README."""
    section = text.split(MODULES_HEADING, 1)[1] if MODULES_HEADING in text else ""
    return dict(re.findall(r"^### `([\w.]+)`\n\n(.+?)\n\n\|", section, re.M | re.S))


def render(text: str) -> str:
    """``text`` (the README) with its Modules section regenerated."""
    names = modules()
    used = importers(set(names))
    notes = _notes(text)
    by_package: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_package[name.split(".")[1]].append(name)
    blocks = []
    for package, members in by_package.items():
        rows = [
            f"| `{'/'.join(name.split('.')[1:])}` | {_cell(used.get(name, set()))} |"
            for name in members
        ]
        blocks.append(
            f"### `{package}`\n\n{notes.get(package, PLACEHOLDER)}\n\n"
            "| module | test files that import it |\n|---|---|\n" + "\n".join(rows) + "\n"
        )
    head = text.split(MODULES_HEADING, 1)[0]
    return head + MODULES_HEADING + "\n" + "\n".join(blocks)


def main(argv: list[str]) -> int:
    current = README.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in argv:
        return 0 if wanted == current else 1
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
