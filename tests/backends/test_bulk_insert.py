"""A program's ``many`` INSERT of several rows runs on PostgreSQL as one statement (its rows as
one JSON parameter, ``program.recordset``) and stores exactly what one execution per row
stores: every column type the stores use, NULLs, exact floats, times in any offset, JSON
columns, a column named like a type, and ``ON CONFLICT DO NOTHING``. Values JSON cannot carry
exactly (NaN, naive times) fall back to one execution per row. Real server."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from self_learning_memory.storage.sql.program import Program, many, recordset, rows, run_async

pytestmark = [pytest.mark.postgres, pytest.mark.integration]

_TABLE = """CREATE TABLE {name} (
    id text PRIMARY KEY,
    n integer,
    big bigint NOT NULL DEFAULT 0,
    x double precision,
    "timestamp" timestamptz,
    tags jsonb NOT NULL DEFAULT '[]',
    note text
)"""
_INSERT = (
    'INSERT INTO {name} (id, n, big, x, "timestamp", tags, note) '
    "VALUES (?, ?, ?, ?, ?, ?::jsonb, ?)"
)
T0 = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _rows(name: str) -> list[tuple[Any, ...]]:
    return [
        (f"{name}-a", 1, 2**40, 0.1 + 0.2, T0, '["x", "y"]', "plain"),
        (f"{name}-b", None, 0, 1e-300, T0.astimezone(timezone(timedelta(hours=-7))), "[]", None),
        (f"{name}-c", -5, -1, 123456789.123456789, None, '{"k": [1, 2.5]}', 'quote " \\ é \n'),
    ]


class _Counting:
    """A psycopg connection whose ``execute`` calls are counted (one per statement sent)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.statements = 0

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        self.statements += 1
        return await self.conn.execute(sql, args)

    def cursor(self) -> Any:
        self.statements += 1  # an executemany: one execution per row
        return self.conn.cursor()


def _insert_and_read(name: str, arg_rows: list[tuple[Any, ...]]) -> Program[list[Any]]:
    yield many(_INSERT.format(name=name), arg_rows)
    return (yield rows(f'SELECT id, n, big, x, "timestamp", tags, note FROM {name} ORDER BY id'))


async def _run(url: str, name: str, arg_rows: list[tuple[Any, ...]]) -> tuple[list[Any], int]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(_TABLE.format(name=name))
        counting = _Counting(conn)
        stored = await run_async(counting, _insert_and_read(name, arg_rows))
        return [tuple(r) for r in stored], counting.statements - 1  # less the SELECT


async def _one_per_row(url: str, name: str, arg_rows: list[tuple[Any, ...]]) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(_TABLE.format(name=name))
        sql = _INSERT.format(name=name).replace("?", "%s")
        for row in arg_rows:
            await conn.execute(sql, row)
        cur = await conn.execute(
            f'SELECT id, n, big, x, "timestamp", tags, note FROM {name} ORDER BY id'
        )
        return [tuple(r) for r in await cur.fetchall()]


async def test_several_rows_are_one_statement_and_store_what_one_per_row_stores(
    pg_url: str,
) -> None:
    stored, statements = await _run(pg_url, "bulk", _rows("r"))
    assert statements == 1
    assert stored == await _one_per_row(pg_url, "single", _rows("r"))
    assert stored[0][3] == 0.1 + 0.2  # the double's every bit
    assert stored[1][4] == T0  # the same instant, whatever the offset it was given in
    assert stored[2][5] == {"k": [1, 2.5]}  # a JSON column gets the value, not a string


async def test_conflicting_rows_are_skipped_as_one_per_row_skips_them(pg_url: str) -> None:
    sql = "INSERT INTO links (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING"
    found = recordset(sql, [("e", "p"), ("e", "p"), ("e", "q")])
    assert found is not None

    def program() -> Program[list[Any]]:
        yield many(sql, [("e", "p"), ("e", "p"), ("e", "q")])
        yield many(sql, [("e", "q"), ("f", "q")])
        return (yield rows("SELECT a, b FROM links ORDER BY a, b"))

    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE links (a text, b text, PRIMARY KEY (a, b))")
        stored = await run_async(conn, program())
    assert [tuple(r) for r in stored] == [("e", "p"), ("e", "q"), ("f", "q")]


async def test_values_json_cannot_carry_go_one_row_at_a_time(pg_url: str) -> None:
    naive = [("n-a", 1, 0, 1.0, datetime(2025, 1, 1), "[]", None), *_rows("n")[1:]]
    nan = [("x-a", 1, 0, math.nan, T0, "[]", None), *_rows("x")[1:]]
    sql = _INSERT.format(name="t")
    assert recordset(sql, naive) is None
    assert recordset(sql, nan) is None
    stored, statements = await _run(pg_url, "fallback", nan)
    assert statements == 1  # one executemany
    assert len(stored) == 3
    assert math.isnan(stored[0][3])


def test_only_plain_value_lists_are_sent_as_one_statement() -> None:
    assert recordset("INSERT INTO t (a, b) VALUES (?, lower(?))", [("a", "b"), ("c", "d")]) is None
    assert recordset("INSERT INTO t (a) VALUES (?) RETURNING a", [("a",), ("c",)]) is None
    assert (
        recordset(
            "INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO UPDATE SET a = excluded.a",
            [("a",), ("c",)],
        )
        is None
    )
    sent = recordset("INSERT INTO t (a, b) VALUES (?, ?)", [("a", 1), ("c", None)])
    assert sent == (
        'INSERT INTO t ("a", "b") SELECT "a", "b" FROM json_populate_recordset(NULL::t, %s::json)',
        '[{"a": "a", "b": 1}, {"a": "c", "b": null}]',
    )
