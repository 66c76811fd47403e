"""The code sandbox's audit trail in the PostgreSQL store (table ``sandbox_runs``, migration 3).

Insert and prune run in one transaction that does not bump ``data_version`` (an audit record
changes nothing retrieval reads). Concurrent writers may each prune: deleting a row another
transaction already deleted is a no-op, so the table still ends at the newest ``keep`` rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ...model.sandbox_run import SandboxRun, SandboxRunFilters
from ..sandbox_runs import (
    COLUMNS,
    INSERT,
    ON_CONFLICT,
    group_counts,
    run_from_row,
    run_values,
    where,
)
from .connection import Conn, PostgresConnection

__all__ = ["PostgresSandboxRuns"]


def _same(value: datetime) -> datetime:
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class PostgresSandboxRuns:
    _db: PostgresConnection

    async def record_sandbox_run(self, run: SandboxRun, keep: int) -> int:
        values = run_values(run, _same)
        marks = ", ".join(["%s"] * len(values))

        async def write(conn: Conn) -> int:
            await conn.execute(f"{INSERT}({marks}){ON_CONFLICT}", values)
            cur = await conn.execute(
                "DELETE FROM sandbox_runs WHERE seq <= (SELECT seq FROM sandbox_runs "
                "ORDER BY seq DESC LIMIT 1 OFFSET %s)",
                (keep,),
            )
            return max(0, cur.rowcount)

        return await self._db.transaction(write, bump=False)

    async def list_sandbox_runs(self, filters: SandboxRunFilters, limit: int) -> list[SandboxRun]:
        clause, args = where(filters, "%s", _same)
        sql = f"SELECT {COLUMNS} FROM sandbox_runs {clause} ORDER BY seq DESC LIMIT %s"

        async def read(conn: Conn) -> list[SandboxRun]:
            cur = await conn.execute(sql, (*args, limit))
            return [run_from_row(tuple(r), _utc) for r in await cur.fetchall()]

        return await self._db.read(read)

    async def count_sandbox_runs(self, filters: SandboxRunFilters) -> dict[str, dict[str, int]]:
        clause, args = where(filters, "%s", _same)
        sql = f"SELECT backend, outcome, count(*) FROM sandbox_runs {clause} GROUP BY 1, 2"

        async def read(conn: Conn) -> dict[str, dict[str, int]]:
            cur = await conn.execute(sql, args)
            return group_counts([tuple(r) for r in await cur.fetchall()])

        return await self._db.read(read)
