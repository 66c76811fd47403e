"""Moving a memory from one durable store to another (embedded SQLite <-> PostgreSQL, Turso).

:func:`migrate` copies episodes with their steps, patterns with their usage and episode links,
heuristics and embeddings, in batches, row by row as they are (``storage/transfer.py``), so a
re-run updates instead of duplicating. At the end it counts both sides and checks that every
source episode is in the target. ``dry_run`` only counts. ``memory-cli storage migrate`` is the
command; :func:`open_url` opens a store from the same URLs as ``database.url``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..model.records import EpisodeFilters, PatternFilters
from .database_url import DB_FILENAME, mask_url, parse_database_url
from .transfer import COUNTED, PatternRow, transfer_adapter

if TYPE_CHECKING:
    from ..model.pattern import Heuristic
    from .backend import StorageBackend

__all__ = ["MigrationReport", "migrate", "open_url"]

Progress = Callable[[str, int, int], None]


@dataclass
class MigrationReport:
    source: str
    target: str
    dry_run: bool
    source_counts: dict[str, int]
    target_before: dict[str, int]
    target_after: dict[str, int] = field(default_factory=dict)
    copied: dict[str, int] = field(default_factory=dict)  # rows written (inserted or updated)
    missing_episodes: int = 0  # source episodes not found in the target afterwards
    verified: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def open_url(url: str) -> StorageBackend:
    """A (not yet opened) durable store for a ``database.url``: a SQLite file or data
    directory (or ``sqlite:`` URL), ``postgresql://...`` or ``libsql://...``."""
    target = parse_database_url(url)
    if target.kind == "sqlite" and target.path is not None:
        from .sqlite import SQLiteStorage

        path = target.path
        if path.suffix.lower() not in (".db", ".sqlite", ".sqlite3"):
            path = path / DB_FILENAME
        return SQLiteStorage(Path(path))
    if target.kind == "postgresql":
        from .postgres import PostgresStorage

        return PostgresStorage(url, listen=False)
    if target.kind == "libsql":
        from .turso import TursoStorage

        return TursoStorage.from_url(url)
    raise ConfigurationError(
        f"Cannot move a memory to or from {mask_url(url)!r}: use a SQLite file or data "
        "directory, a postgresql:// DSN or a libsql:// URL."
    )


async def migrate(
    source: StorageBackend,
    target: StorageBackend,
    *,
    batch_size: int = 200,
    dry_run: bool = False,
    progress: Progress | None = None,
    source_name: str = "",
    target_name: str = "",
) -> MigrationReport:
    """Copy everything in ``source`` into ``target`` (both open). Idempotent."""
    started = time.perf_counter()
    src, dst = transfer_adapter(source), transfer_adapter(target)
    report = MigrationReport(
        source=source_name or source.name,
        target=target_name or target.name,
        dry_run=dry_run,
        source_counts=await src.counts(),
        target_before=await dst.counts(),
    )
    if dry_run:
        report.seconds = time.perf_counter() - started
        return report
    tick = progress or (lambda stage, done, total: None)
    copied = dict.fromkeys(
        ("episodes", "steps", "patterns", "heuristics", "embeddings", "agent_executions"), 0
    )

    total = report.source_counts["episodes"]
    offset = 0
    while True:
        page = await source.list_episodes(EpisodeFilters(), batch_size, offset)
        if not page:
            break
        await dst.import_episodes(page)
        found = await target.get_episodes([e.episode_id for e in page])
        report.missing_episodes += len(page) - len(found)
        offset += len(page)
        copied["episodes"] += len(page)
        copied["steps"] += sum(len(e.steps) for e in page)
        tick("episodes", offset, total)

    total = report.source_counts["patterns"]
    offset = 0
    per_pattern = max(1, report.source_counts["episodes"])
    while True:
        patterns = await source.list_patterns(PatternFilters(min_occurrences=0), batch_size, offset)
        if not patterns:
            break
        links = await source.pattern_episodes([p.id for p, _ in patterns], per_pattern)
        rows: list[PatternRow] = [(p, u, links.get(p.id, [])) for p, u in patterns]
        await dst.import_patterns(rows)
        offset += len(patterns)
        copied["patterns"] += len(patterns)
        tick("patterns", offset, total)

    total = report.source_counts["heuristics"]
    offset = 0
    while True:
        heuristics: list[Heuristic] = await source.list_heuristics(batch_size, offset)
        if not heuristics:
            break
        await dst.import_heuristics(heuristics)
        offset += len(heuristics)
        copied["heuristics"] += len(heuristics)
        tick("heuristics", offset, total)

    total = report.source_counts["embeddings"]
    after = ""
    while True:
        vectors = await src.export_embeddings(after, batch_size)
        if not vectors:
            break
        await target.store_embeddings(vectors)
        after = str(vectors[-1][0])
        copied["embeddings"] += len(vectors)
        tick("embeddings", copied["embeddings"], total)

    total = report.source_counts["agent_executions"]
    mark = 0
    while True:
        executions = await source.agent_executions_after(mark, batch_size)
        if not executions:
            break
        for _seq, execution in executions:
            await target.record_agent_execution(execution)
        mark = executions[-1][0]
        copied["agent_executions"] += len(executions)
        tick("agent_executions", copied["agent_executions"], total)

    report.copied = copied
    report.target_after = await dst.counts()
    _verify(report)
    report.seconds = time.perf_counter() - started
    return report


def _verify(report: MigrationReport) -> None:
    was_empty = not any(report.target_before.values())
    for kind in COUNTED:
        have, want = report.target_after[kind], report.source_counts[kind]
        if have < want or (was_empty and have != want):
            report.problems.append(f"{kind}: the source has {want}, the target {have}")
    if report.missing_episodes:
        report.problems.append(f"{report.missing_episodes} episodes not found in the target")
    report.verified = not report.problems
