"""The code sandbox's audit trail in the embedded store (table ``sandbox_runs``, migration 4),
and the SQL both stores share.

A record is inserted and the trail pruned to the newest ``keep`` rows in the same transaction,
so the table never holds more than ``keep`` rows after a write. Rows are ordered by ``seq``
(insertion order); ``time`` is the run's UTC time, filtered through its index.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import apsw

from ..model.sandbox_run import SandboxRun, SandboxRunFilters
from .codec import dump_json, from_us, to_us
from .sqlite_connection import SQLiteConnection

__all__ = [
    "COLUMNS",
    "INSERT",
    "ON_CONFLICT",
    "SQLiteSandboxRuns",
    "group_counts",
    "run_from_row",
    "run_values",
    "where",
]

COLUMNS = (
    "run_id, time, code_sha256, code_bytes, backend, limits, duration_ms, outcome, error_type, "
    "caller, task"
)

# a retried write whose first attempt committed must not fail on its own row
INSERT = f"INSERT INTO sandbox_runs ({COLUMNS}) VALUES "
ON_CONFLICT = " ON CONFLICT (run_id) DO NOTHING"


def where(
    filters: SandboxRunFilters, mark: str, when: Callable[[Any], Any]
) -> tuple[str, list[Any]]:
    """``WHERE ...`` (or "") and its arguments; ``mark`` is the driver's placeholder."""
    clauses: list[str] = []
    args: list[Any] = []
    if filters.since is not None:
        clauses.append(f"time >= {mark}")
        args.append(when(filters.since))
    for column in ("outcome", "backend", "caller"):
        value = getattr(filters, column)
        if value is not None:
            clauses.append(f"{column} = {mark}")
            args.append(value)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def run_values(run: SandboxRun, when: Callable[[Any], Any]) -> tuple[Any, ...]:
    return (
        str(run.run_id),
        when(run.time),
        run.code_sha256,
        run.code_bytes,
        run.backend,
        dump_json(run.limits),
        run.duration_ms,
        run.outcome,
        run.error_type,
        run.caller,
        run.task,
    )


def run_from_row(row: tuple[Any, ...], when: Callable[[Any], Any]) -> SandboxRun:
    limits = row[5] if isinstance(row[5], dict) else json.loads(row[5])
    # built from columns this store wrote itself
    return SandboxRun.model_construct(
        run_id=uuid.UUID(row[0]),
        time=when(row[1]),
        code_sha256=row[2],
        code_bytes=int(row[3]),
        backend=row[4],
        limits=limits,
        duration_ms=float(row[6]),
        outcome=row[7],
        error_type=row[8],
        caller=row[9],
        task=row[10],
    )


def group_counts(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, int]]:
    """``backend -> outcome -> runs`` from ``(backend, outcome, count)`` rows."""
    grouped: dict[str, dict[str, int]] = {}
    for backend, outcome, n in rows:
        grouped.setdefault(str(backend), {})[str(outcome)] = int(n)
    return grouped


class SQLiteSandboxRuns:
    _db: SQLiteConnection

    async def record_sandbox_run(self, run: SandboxRun, keep: int) -> int:
        values = run_values(run, to_us)

        def write(conn: apsw.Connection) -> int:
            conn.execute(INSERT + "(?,?,?,?,?,?,?,?,?,?,?)" + ON_CONFLICT, values)
            cutoff = conn.execute(
                "SELECT seq FROM sandbox_runs ORDER BY seq DESC LIMIT 1 OFFSET ?", (keep,)
            ).fetchone()
            if cutoff is None:
                return 0
            conn.execute("DELETE FROM sandbox_runs WHERE seq <= ?", (cutoff[0],))
            return int(conn.changes())

        return await self._db.write(write)

    async def list_sandbox_runs(self, filters: SandboxRunFilters, limit: int) -> list[SandboxRun]:
        clause, args = where(filters, "?", to_us)
        sql = f"SELECT {COLUMNS} FROM sandbox_runs {clause} ORDER BY seq DESC LIMIT ?"

        def read(conn: apsw.Connection) -> list[SandboxRun]:
            return [run_from_row(r, from_us) for r in conn.execute(sql, (*args, limit))]

        return await self._db.read(read)

    async def count_sandbox_runs(self, filters: SandboxRunFilters) -> dict[str, dict[str, int]]:
        clause, args = where(filters, "?", to_us)
        sql = f"SELECT backend, outcome, count(*) FROM sandbox_runs {clause} GROUP BY 1, 2"

        def read(conn: apsw.Connection) -> dict[str, dict[str, int]]:
            return group_counts([tuple(r) for r in conn.execute(sql, args)])

        return await self._db.read(read)
