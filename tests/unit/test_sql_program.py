"""The SQL layer's programs run statement by statement on a real (in-memory) SQLite connection,
and the PostgreSQL spelling of their placeholders."""

from __future__ import annotations

import apsw
import pytest

from self_learning_memory.storage.sql.program import (
    Program,
    changes,
    execute,
    many,
    one,
    psycopg_sql,
    rows,
    run_blocking,
)


def _program() -> Program[tuple[int, list[tuple[int, str]], object, int]]:
    yield execute("CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT)")
    yield many("INSERT INTO t (n, s) VALUES (?, ?)", [(1, "a"), (2, "b"), (3, "c")])
    missing = yield one("SELECT s FROM t WHERE n = ?", (9,))
    counted = yield one("SELECT count(*) FROM t")
    deleted = yield changes("DELETE FROM t WHERE n >= ?", (2,))
    left = yield rows("SELECT n, s FROM t ORDER BY n")
    return int(counted[0]), [tuple(r) for r in left], missing, int(deleted)


def test_a_program_gets_each_statements_answer() -> None:
    conn = apsw.Connection(":memory:")
    assert run_blocking(conn, _program()) == (3, [(1, "a")], None, 2)


def test_an_error_raised_by_a_program_reaches_the_caller() -> None:
    def failing() -> Program[None]:
        row = yield one("SELECT 1")
        raise ValueError(f"refused {row[0]}")

    with pytest.raises(ValueError, match="refused 1"):
        run_blocking(apsw.Connection(":memory:"), failing())


def test_placeholders_are_written_for_psycopg() -> None:
    sql = "SELECT ? WHERE name LIKE 'a%' AND x = ?::jsonb"
    assert psycopg_sql(sql) == "SELECT %s WHERE name LIKE 'a%%' AND x = %s::jsonb"
