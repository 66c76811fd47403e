"""The code sandbox's audit trail (table ``sandbox_runs``: SQLite migration 4, PostgreSQL
migration 3).

A record is inserted and the trail pruned to the newest ``keep`` rows in the same transaction,
so the table never holds more than ``keep`` rows after a write (on PostgreSQL concurrent
writers may each prune: deleting a row another transaction already deleted is a no-op). Rows
are ordered by ``seq`` (insertion order); ``time`` is the run's UTC time, filtered through its
index. A retried write whose first attempt committed does not fail on its own row.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from typing import Any

from ...model.sandbox_run import SandboxRun, SandboxRunFilters
from ..codec import dump_json
from .dialect import Dialect
from .program import Program, changes, execute, rows

__all__ = ["count_sandbox_runs", "list_sandbox_runs", "record_sandbox_run"]

COLUMNS = (
    "run_id, time, code_sha256, code_bytes, backend, limits, duration_ms, outcome, error_type, "
    "caller, task"
)


def _where(d: Dialect, filters: SandboxRunFilters) -> tuple[str, list[Any]]:
    """``WHERE ...`` (or "") and its arguments."""
    clauses: list[str] = []
    args: list[Any] = []
    if filters.since is not None:
        clauses.append("time >= ?")
        args.append(d.to_time(filters.since))
    for column in ("outcome", "backend", "caller"):
        value = getattr(filters, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def _from_row(d: Dialect, row: tuple[Any, ...]) -> SandboxRun:
    limits = row[5] if isinstance(row[5], dict) else json.loads(row[5])
    # built from columns this store wrote itself
    return SandboxRun.model_construct(
        run_id=uuid.UUID(row[0]),
        time=d.from_time(row[1]).astimezone(UTC),
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


def record_sandbox_run(d: Dialect, run: SandboxRun, keep: int) -> Program[int]:
    """Insert ``run``, prune to the newest ``keep`` rows; how many rows were pruned."""
    yield execute(
        f"INSERT INTO sandbox_runs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (run_id) DO NOTHING",
        (
            str(run.run_id),
            d.to_time(run.time),
            run.code_sha256,
            run.code_bytes,
            run.backend,
            dump_json(run.limits),
            run.duration_ms,
            run.outcome,
            run.error_type,
            run.caller,
            run.task,
        ),
    )
    pruned = yield changes(
        "DELETE FROM sandbox_runs WHERE seq <= (SELECT seq FROM sandbox_runs "
        "ORDER BY seq DESC LIMIT 1 OFFSET ?)",
        (keep,),
    )
    return max(0, int(pruned))


def list_sandbox_runs(
    d: Dialect, filters: SandboxRunFilters, limit: int
) -> Program[list[SandboxRun]]:
    clause, args = _where(d, filters)
    found = yield rows(
        f"SELECT {COLUMNS} FROM sandbox_runs {clause} ORDER BY seq DESC LIMIT ?", (*args, limit)
    )
    return [_from_row(d, tuple(r)) for r in found]


def count_sandbox_runs(
    d: Dialect, filters: SandboxRunFilters
) -> Program[dict[str, dict[str, int]]]:
    """``backend -> outcome -> runs``."""
    clause, args = _where(d, filters)
    found = yield rows(
        f"SELECT backend, outcome, count(*) FROM sandbox_runs {clause} GROUP BY 1, 2", args
    )
    grouped: dict[str, dict[str, int]] = {}
    for backend, outcome, n in found:
        grouped.setdefault(str(backend), {})[str(outcome)] = int(n)
    return grouped
