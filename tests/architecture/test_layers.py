"""Dependencies point down only: every import in ``src/self_learning_memory`` goes to its own
package or to a package in a lower layer, and no two packages import each other (directly or
through others).

Every import is read with :mod:`ast`, including those inside functions and ``TYPE_CHECKING``
blocks, and mapped to its package: the first name under ``self_learning_memory``
(``storage/postgres/connection.py`` belongs to ``storage``; ``config.py`` is the package
``config``; names taken from ``self_learning_memory`` itself, such as ``__version__``, belong to
the root ``__init__``). ``LAYERS`` is the table of docs/architecture.md; a package that is not in
it fails the test until it is given a layer.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "self_learning_memory"
TOP = "self_learning_memory"
INIT = "__init__"  # the root package's own module: the public API

# Layer of each package, 1 at the top. A module may import its own package, a package of a
# lower layer (larger number), or another package of the same layer as long as that creates no
# cycle between packages.
LAYERS: dict[str, int] = {
    # 1. faces: command line, MCP server, demo, and the presenter they share
    "cli": 1,
    "mcp": 1,
    "demo": 1,
    "dashboard": 1,
    "presenters": 1,
    # 2. the public API re-exports
    INIT: 2,
    # 3. the memory facade and what composes or serves it
    "core": 3,
    "backup": 3,
    "settings": 3,
    # 4. services composed around the memory or a store
    "analysis": 4,
    "sandbox": 4,
    "resilience": 4,
    # 5. what learning and retrieval compute
    "learning": 5,
    "retrieval": 5,
    # 6. storage protocols and backends; embedding providers
    "storage": 6,
    "embeddings": 6,
    # 7. the one config model
    "config": 7,
    # 8. the data types
    "model": 8,
    # 9. leaves
    "errors": 9,
    "paths": 9,
    "log_files": 9,
    "version": 9,
}

# Imports that break the table today, each removed by a change in progress (issue 15). The test
# fails on any violation not listed here, and on an entry that no longer occurs, so the set only
# shrinks. Entries are (file under src/self_learning_memory, imported package).
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Import:
    """One import of a package module by a module of another package."""

    file: str  # path under src/self_learning_memory
    line: int
    source: str  # package of the importing module
    target: str  # package of the imported module


def _package_of(module: str) -> str | None:
    """The package of a dotted module name, ``None`` outside self_learning_memory."""
    parts = module.split(".")
    if parts[0] != TOP:
        return None
    return parts[1] if len(parts) > 1 else INIT


def _is_module(dotted: str) -> bool:
    """Whether ``dotted`` (under self_learning_memory) names a module or package on disk."""
    path = PACKAGE.joinpath(*dotted.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imported_modules(node: ast.Import | ast.ImportFrom, package: list[str]) -> list[str]:
    """Absolute dotted names ``node`` imports; ``package`` is the importing module's package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = package[: len(package) - node.level + 1]
        module = ".".join([*base, node.module] if node.module else base)
    else:
        module = node.module or ""
    if module == TOP or node.module is None:
        # ``from self_learning_memory import errors`` imports a module; ``from .. import
        # __version__`` imports a name of the package itself.
        names = [f"{module}.{alias.name}" for alias in node.names]
        return [name if _is_module(name) else module for name in names]
    return [module]


def package_imports() -> list[Import]:
    """Every import from one package of self_learning_memory into another."""
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        parts = [TOP, *relative.with_suffix("").parts]
        package = parts[:-1]  # a module's package; an __init__ is its own package
        source = INIT if relative == Path(f"{INIT}.py") else relative.parts[0].removesuffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for module in _imported_modules(node, package):
                target = _package_of(module)
                if target is not None and target != source:
                    found.append(Import(relative.as_posix(), node.lineno, source, target))
    return found


def _allowed(source: str, target: str) -> bool:
    return LAYERS[source] <= LAYERS[target]


def _cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


IMPORTS = package_imports()


def test_the_scan_sees_the_package() -> None:
    # A scan that found nothing would pass every check below.
    edges = {(imp.source, imp.target) for imp in IMPORTS}
    assert ("core", "storage") in edges
    assert ("cli", "core") in edges
    assert any(imp.file == "core/memory.py" and imp.target == "resilience" for imp in IMPORTS), (
        "a function-level import (the resilience wrapper, imported when used) is counted"
    )
    assert any(imp.file == "presenters/health.py" and imp.target == "core" for imp in IMPORTS), (
        "a TYPE_CHECKING import is counted"
    )


def test_every_package_has_a_layer() -> None:
    packages = {imp.source for imp in IMPORTS} | {imp.target for imp in IMPORTS}
    on_disk = {
        path.name.removesuffix(".py")
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").is_file())
    }
    missing = sorted((packages | on_disk) - set(LAYERS))
    assert not missing, (
        f"give these packages a layer in LAYERS (and docs/architecture.md): {missing}"
    )


def test_model_imports_only_errors() -> None:
    wrong = [
        f"{imp.file}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if imp.source == "model" and imp.target != "errors"
    ]
    assert not wrong, "model/ may import only errors:\n" + "\n".join(wrong)


def test_dependencies_point_down_only() -> None:
    new = [
        f"{imp.file}:{imp.line}: {imp.source} (layer {LAYERS[imp.source]}) imports "
        f"{imp.target} (layer {LAYERS[imp.target]})"
        for imp in IMPORTS
        if not _allowed(imp.source, imp.target) and (imp.file, imp.target) not in KNOWN_VIOLATIONS
    ]
    assert not new, "imports that point up the layer table:\n" + "\n".join(new)


def test_known_violations_still_occur() -> None:
    # When a known violation is removed its entry goes too, so it cannot come back unnoticed.
    seen = {(imp.file, imp.target) for imp in IMPORTS if not _allowed(imp.source, imp.target)}
    gone = sorted(KNOWN_VIOLATIONS - seen)
    assert not gone, f"remove these from KNOWN_VIOLATIONS, they no longer occur: {gone}"


def test_no_import_cycles_between_packages() -> None:
    edges = {
        (imp.source, imp.target)
        for imp in IMPORTS
        if (imp.file, imp.target) not in KNOWN_VIOLATIONS
    }
    cycles = _cycles(edges)
    detail = [
        f"{imp.file}:{imp.line}: {imp.source} imports {imp.target}"
        for imp in IMPORTS
        if any(imp.source in cycle and imp.target in cycle for cycle in cycles)
        and (imp.file, imp.target) not in KNOWN_VIOLATIONS
    ]
    assert not cycles, f"packages that import each other: {cycles}\n" + "\n".join(detail)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({("a", "b"), ("b", "c")}, []),
        ({("a", "b"), ("b", "a")}, [["a", "b"]]),
        ({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}, [["a", "b", "c"]]),
    ],
)
def test_cycle_finder(edges: set[tuple[str, str]], expected: list[list[str]]) -> None:
    assert _cycles(edges) == expected


def test_docs_architecture_shows_this_table() -> None:
    # docs/architecture.md says "dependencies point down" with a layer table: it must be this one.
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    documented: dict[str, int] = {}
    for layer, cell in re.findall(r"^\| (\d) \| ([^|]+) \|", section, re.M):
        for name in re.findall(r"`([^`]+)`", cell):
            documented[name.removesuffix("/").removesuffix(".py")] = int(layer)
    assert documented, "no layer table found under '## Layers' in docs/architecture.md"
    wrong = {name: (layer, LAYERS.get(name)) for name, layer in documented.items()}
    wrong = {name: pair for name, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, f"docs layer != LAYERS (docs, test): {wrong}"
    on_disk = {
        path.name.removesuffix(".py")
        for path in PACKAGE.iterdir()
        if path.suffix == ".py" or (path / "__init__.py").is_file()
    }
    missing = sorted(on_disk - set(documented))
    assert not missing, f"add these packages to the layer table of docs/architecture.md: {missing}"
