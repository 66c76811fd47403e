"""Store logic written once for a blocking and an async connection.

A *program* is a generator that yields the statements it wants run (:class:`Op`) and receives
each one's result: ``row = yield one("SELECT ...", (eid,))``. It does no I/O itself, so the same
program runs on the SQLite store's connection thread (:func:`run_blocking`, apsw or libsql) and
on a PostgreSQL connection from the pool (:func:`run_async`, psycopg). Statements use ``?``
placeholders; :func:`run_async` writes them as psycopg's ``%s``. A connection layer that reruns
a transaction (lock waits, serialization failures) builds a fresh program for each attempt.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

__all__ = [
    "Op",
    "Program",
    "ProgramFactory",
    "changes",
    "execute",
    "many",
    "one",
    "recordset",
    "rows",
    "run_async",
    "run_blocking",
]

T = TypeVar("T")
Kind = Literal["one", "all", "exec", "changes", "many"]


@dataclass(frozen=True, slots=True)
class Op:
    """One statement: ``one`` answers its first row (or None), ``all`` its rows, ``exec``
    nothing, ``changes`` the number of rows it changed, ``many`` runs it once per args row.

    The statement lists a dialect, a full-text index or a store hands to a program (locks,
    announcements, index entries) hold ``execute`` ops only: a program passes them on with
    ``yield from`` and they answer nothing."""

    kind: Kind
    sql: str
    args: Sequence[Any]


Program = Generator[Op, Any, T]
ProgramFactory = Callable[[], Program[T]]


def one(sql: str, args: Sequence[Any] = ()) -> Op:
    return Op("one", sql, args)


def rows(sql: str, args: Sequence[Any] = ()) -> Op:
    return Op("all", sql, args)


def execute(sql: str, args: Sequence[Any] = ()) -> Op:
    return Op("exec", sql, args)


def changes(sql: str, args: Sequence[Any] = ()) -> Op:
    return Op("changes", sql, args)


def many(sql: str, arg_rows: Sequence[Sequence[Any]]) -> Op:
    return Op("many", sql, arg_rows)


def run_blocking(conn: Any, program: Program[T]) -> T:
    """Run ``program`` on an apsw connection (or one that looks like it: Turso's libsql)."""
    try:
        op = next(program)
        while True:
            result: Any = None
            if op.kind == "one":
                result = conn.execute(op.sql, op.args).fetchone()
            elif op.kind == "all":
                result = conn.execute(op.sql, op.args).fetchall()
            elif op.kind == "many":
                if op.args:
                    conn.executemany(op.sql, op.args)
            else:
                conn.execute(op.sql, op.args)
                if op.kind == "changes":
                    result = conn.changes()
            op = program.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=512)
def psycopg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _values_parts(sql: str) -> tuple[str, str, str] | None:
    """``INSERT INTO t (...) VALUES (row) [ON CONFLICT ... DO NOTHING]`` split into its head
    (up to ``VALUES``), its row and its tail; None for any other statement (a ``RETURNING``
    or a ``DO UPDATE``, which one statement cannot apply to the same row twice, included)."""
    at = sql.find(" VALUES (")
    if not sql.startswith("INSERT INTO ") or at < 0:
        return None
    start = at + len(" VALUES ")
    depth = 0
    for i in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        if depth == 0:
            break
    else:
        return None
    tail = sql[i + 1 :]
    if tail and not (tail.startswith(" ON CONFLICT") and tail.endswith(" DO NOTHING")):
        return None
    return sql[:start], sql[start : i + 1], tail


@functools.lru_cache(maxsize=256)
def _recordset_sql(sql: str) -> tuple[str, tuple[str, ...], tuple[bool, ...]] | None:
    """The statement that inserts ``sql``'s rows from one JSON array of objects (the table's
    own row type gives each column's type), its column names and which of its slots take
    JSON text (``?::jsonb``); None if a slot is anything but a plain parameter or that."""
    parts = _values_parts(sql)
    if parts is None:
        return None
    head, row, tail = parts
    table, _, columns = head[len("INSERT INTO ") :].partition(" (")
    names = tuple(c.strip().strip('"') for c in columns.rsplit(")", 1)[0].split(","))
    slots = [slot.strip() for slot in row[1:-1].split(",")]
    if len(slots) != len(names) or any(slot not in ("?", "?::jsonb") for slot in slots):
        return None
    quoted = ", ".join(f'"{name}"' for name in names)
    statement = (
        f"INSERT INTO {table} ({quoted}) SELECT {quoted} "
        f"FROM json_populate_recordset(NULL::{table}, %s::json){tail}"
    )
    return statement, names, tuple(slot == "?::jsonb" for slot in slots)


_JSON_SCALARS = (str, int, float, bool, type(None))


def recordset(sql: str, arg_rows: Sequence[Sequence[Any]]) -> tuple[str, str] | None:
    """A ``many`` INSERT as one statement with one parameter, its rows as a JSON array
    (:func:`_recordset_sql`); None when a value has no exact JSON form here (only strings,
    numbers, booleans, NULLs, times and JSON text are sent so)."""
    found = _recordset_sql(sql)
    if found is None:
        return None
    statement, names, json_slots = found
    objects: list[dict[str, Any]] = []
    for row in arg_rows:
        values: dict[str, Any] = {}
        for name, is_json, value in zip(names, json_slots, row, strict=True):
            if is_json:
                if not isinstance(value, str):
                    return None
                value = json.loads(value)
            elif isinstance(value, datetime):
                if value.tzinfo is None:
                    return None
                value = value.isoformat()
            elif not isinstance(value, _JSON_SCALARS):
                return None
            values[name] = value
        objects.append(values)
    try:
        return statement, json.dumps(objects, allow_nan=False, ensure_ascii=False)
    except ValueError:  # NaN or infinity: not JSON
        return None


async def run_async(conn: Any, program: Program[T], pipeline: Any = None) -> T:
    """Run ``program`` on a psycopg async connection. With ``pipeline`` (the connection's
    pipeline mode, entered by the caller), a statement whose result the program does not read
    is sent without waiting for its answer; a row count waits for the answers so far. A
    ``many`` INSERT of several rows goes as one statement (:func:`recordset`) unless a value
    has no exact JSON form (then: one execution per row)."""
    try:
        op = next(program)
        while True:
            result: Any = None
            sql = psycopg_sql(op.sql)
            if op.kind == "many":
                bulk = recordset(op.sql, op.args) if len(op.args) > 1 else None
                if bulk is not None:
                    await conn.execute(bulk[0], (bulk[1],))
                elif op.args:
                    async with conn.cursor() as cur:
                        await cur.executemany(sql, op.args)
            else:
                cur = await conn.execute(sql, tuple(op.args))
                if op.kind == "one":
                    result = await cur.fetchone()
                elif op.kind == "all":
                    result = await cur.fetchall()
                elif op.kind == "changes":
                    if pipeline is not None:
                        await pipeline.sync()
                    result = cur.rowcount
            op = program.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
