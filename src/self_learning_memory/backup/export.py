"""Logical exports of the embedded store (json, jsonl, sql) and loading them back.

An export holds every row of the store as it is in SQLite: each episode with its steps (and,
when asked, its embedding), its learning-queue job and its full-text row, then the patterns
with their usage counts, the episode/pattern links, the heuristics, the store's meta
values, the code sandbox's audit trail (``sandbox_runs``, absent from exports of a store
older than schema 4) and the retrieval feedback (``retrieval_uses`` and ``episode_usage``,
absent before schema 5) and the agent executions (``agent_executions`` and their running
totals ``agent_totals``, absent before schema 6). Column values are kept exactly (JSON columns stay the text SQLite holds, blobs are
base64, rowids are kept because the full-text index is joined on them), so loading an export
into an empty schema gives back the same store, not an approximation of it.

- ``json``: one document, ``{"header": ..., "episodes": [...], "patterns": [...], ...}``.
- ``jsonl``: a header line, then one ``{"kind": ..., "data": ...}`` line per record (streams).
- ``sql``: ``INSERT`` statements for the library's schema, one per row; reading parses each one
  into a row (:mod:`.sql_statements` accepts only the exact form written here, anything else is
  refused naming its line), and rows are inserted with bound parameters, never executed as text.

Everything here is blocking and runs on a worker thread (see :mod:`.create` and :mod:`.restore`).
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import apsw

from ..errors import DataIntegrityError
from .sql_statements import parse_insert

__all__ = [
    "EXPORT_FILES",
    "KINDS",
    "check_schema_version",
    "count_records",
    "import_records",
    "read_records",
    "scan",
    "write",
]

EXPORT_FILES = {"json": "memory.json", "jsonl": "memory.jsonl", "sql": "memory.sql"}
HEADER_FORMAT = "self-learning-memory-export"

# kind -> table, in an order that satisfies the foreign keys. Episode children are nested.
KINDS: dict[str, str] = {
    "episode": "episodes",
    "pattern": "patterns",
    "episode_pattern": "episode_patterns",
    "heuristic": "heuristics",
    "meta": "meta",
    "sandbox_run": "sandbox_runs",
    "retrieval_use": "retrieval_uses",
    "episode_usage": "episode_usage",
    "agent_execution": "agent_executions",
    "agent_total": "agent_totals",
}
PLURAL = {
    "episode": "episodes",
    "pattern": "patterns",
    "episode_pattern": "episode_patterns",
    "heuristic": "heuristics",
    "meta": "meta",
    "sandbox_run": "sandbox_runs",
    "retrieval_use": "retrieval_uses",
    "episode_usage": "episode_usage",
    "agent_execution": "agent_executions",
    "agent_total": "agent_totals",
}
# nested key of an episode record -> (table, kept as a list)
CHILDREN: dict[str, tuple[str, bool]] = {
    "steps": ("steps", True),
    "embedding": ("embeddings", False),
    "learning_job": ("learning_jobs", False),
    "fts": ("episodes_fts", False),
}
TABLES = frozenset(KINDS.values()) | {table for table, _many in CHILDREN.values()}
ROWID_TABLES = {"episodes", "patterns", "heuristics", "meta", "embeddings", "learning_jobs"}
FTS_COLUMNS = ("task_description", "steps_text", "outcome_text", "reflection_text")

Progress = Callable[[int], None]
Record = tuple[str, dict[str, Any]]


# -- reading the snapshot ------------------------------------------------------------------
def _columns(conn: apsw.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")]


def _has_table(conn: apsw.Connection, table: str) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE name = ?"
    return conn.execute(sql, (table,)).fetchone() is not None


def _rows(conn: apsw.Connection, table: str, where: str = "", args: tuple[Any, ...] = ()) -> Any:
    cols = _columns(conn, table)
    select = ["rowid", *cols] if table in ROWID_TABLES else cols
    order = "rowid" if table in ROWID_TABLES else ", ".join(cols[:2])
    sql = f"SELECT {', '.join(select)} FROM {table} {where} ORDER BY {order}"
    for row in conn.execute(sql, args):
        yield dict(zip(select, row, strict=True))


def iter_records(conn: apsw.Connection, *, embeddings: bool) -> Iterator[Record]:
    """Every record of the store behind ``conn`` (which holds one read snapshot)."""
    has_embeddings = embeddings and _has_table(conn, "embeddings")
    for episode in _rows(conn, "episodes"):
        eid = episode["episode_id"]
        episode["steps"] = list(_rows(conn, "steps", "WHERE episode_id = ?", (eid,)))
        episode["embedding"] = None
        if has_embeddings:
            found = list(_rows(conn, "embeddings", "WHERE episode_id = ?", (eid,)))
            episode["embedding"] = found[0] if found else None
        jobs = list(_rows(conn, "learning_jobs", "WHERE episode_id = ?", (eid,)))
        episode["learning_job"] = jobs[0] if jobs else None
        fts = conn.execute(
            f"SELECT rowid, {', '.join(FTS_COLUMNS)} FROM episodes_fts WHERE rowid = ?",
            (episode["rowid"],),
        ).fetchone()
        episode["fts"] = (
            None if fts is None else dict(zip(("rowid", *FTS_COLUMNS), fts, strict=True))
        )
        yield "episode", episode
    for kind, table in list(KINDS.items())[1:]:
        if not _has_table(conn, table):  # a store older than schema 4 (5, 6)
            continue
        for row in _rows(conn, table):
            yield kind, row


# -- value encodings -----------------------------------------------------------------------
def _to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$base64"}:
        return base64.b64decode(value["$base64"], validate=True)
    return value


def sql_literal(value: Any) -> str:
    """A SQL literal that reads back as exactly ``value``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "NULL"
        if math.isinf(value):
            return "9e999" if value > 0 else "-9e999"
        return repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    text = str(value)
    if "\x00" in text:
        return f"CAST(X'{text.encode('utf-8').hex()}' AS TEXT)"
    return "'" + text.replace("'", "''") + "'"


def _insert_sql(table: str, row: dict[str, Any]) -> str:
    cols = ", ".join(row)
    values = ", ".join(sql_literal(v) for v in row.values())
    return f"INSERT INTO {table} ({cols}) VALUES ({values});\n"


def _flat(kind: str, data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) pairs of one record, parents first."""
    if kind != "episode":
        yield KINDS[kind], data
        return
    yield "episodes", {k: v for k, v in data.items() if k not in CHILDREN}
    for key, (table, many) in CHILDREN.items():
        value = data.get(key)
        if value is None:
            continue
        for row in value if many else [value]:
            yield table, row


# -- writing -------------------------------------------------------------------------------
def _open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8", newline=""))
    return path.open(mode, encoding="utf-8", newline="")


def write(
    conn: apsw.Connection,
    path: Path,
    fmt: str,
    *,
    header: dict[str, Any],
    embeddings: bool,
    progress: Progress | None = None,
) -> None:
    """Write the store behind ``conn`` to ``path`` in ``fmt`` (json, jsonl or sql)."""
    records = iter_records(conn, embeddings=embeddings)
    head = {"format": HEADER_FORMAT, **header}
    with _open_text(path, "w") as out:
        if fmt == "jsonl":
            out.write(json.dumps({"kind": "header", "data": head}) + "\n")
            for n, (kind, data) in enumerate(records, 1):
                out.write(json.dumps({"kind": kind, "data": _to_json(data)}, ensure_ascii=False))
                out.write("\n")
                _tick(progress, n)
        elif fmt == "json":
            out.write('{"header": ' + json.dumps(head))
            current = None
            for n, (kind, data) in enumerate(records, 1):
                if kind != current:
                    out.write("]" if current else "")
                    out.write(f',\n"{PLURAL[kind]}": [\n')
                    current = kind
                else:
                    out.write(",\n")
                out.write(json.dumps(_to_json(data), ensure_ascii=False))
                _tick(progress, n)
            out.write("]}\n" if current else "}\n")
        elif fmt == "sql":
            out.write(f"-- {HEADER_FORMAT}: {json.dumps(head)}\n")
            out.write("-- INSERT statements for the self-learning-memory schema version ")
            out.write(f"{header['schema_version']}; load with `memory-cli backup restore`.\n")
            for n, (kind, data) in enumerate(records, 1):
                for table, row in _flat(kind, data):
                    out.write(_insert_sql(table, row))
                _tick(progress, n)
        else:
            raise ValueError(f"unknown export format {fmt!r}")


def _tick(progress: Progress | None, n: int) -> None:
    if progress is not None and n % 200 == 0:
        progress(n)


# -- reading -------------------------------------------------------------------------------
def read_records(path: Path, fmt: str) -> Iterator[tuple[str, Any]]:
    """The records of an export: ``("header", dict)``, then ``(kind, dict)`` for json and
    jsonl, or ``("sql", (table, row))`` for sql. Malformed input raises DataIntegrityError."""
    try:
        with _open_text(path, "r") as src:
            if fmt == "jsonl":
                yield from _read_jsonl(src, path)
            elif fmt == "json":
                doc = json.load(src)
                if not isinstance(doc, dict) or not isinstance(doc.get("header"), dict):
                    raise DataIntegrityError(f"{path.name} is not an export: it has no header.")
                yield "header", doc["header"]
                for kind, plural in PLURAL.items():
                    for data in doc.get(plural, []):
                        yield kind, _from_json_record(data, path, kind)
            elif fmt == "sql":
                yield from _read_sql(src, path)
            else:
                raise ValueError(f"unknown export format {fmt!r}")
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataIntegrityError(f"{path.name} cannot be read: {exc}.") from exc


def _from_json_record(data: Any, path: Path, kind: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise DataIntegrityError(f"{path.name} holds a record that is not an object.")
    out = {k: _from_json(v) for k, v in data.items()}
    if kind != "episode":  # only an episode nests its children
        return out
    for key, (_table, many) in CHILDREN.items():
        value = out.get(key)
        if value is None:
            continue
        items = value if many else [value]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise DataIntegrityError(f"{path.name} holds a malformed '{key}' of an episode.")
        decoded = [{k: _from_json(v) for k, v in i.items()} for i in items]
        out[key] = decoded if many else decoded[0]
    return out


def _read_jsonl(src: IO[str], path: Path) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(src, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataIntegrityError(f"{path.name} line {number} is not JSON: {exc}.") from exc
        kind = item.get("kind") if isinstance(item, dict) else None
        if number == 1 and kind != "header":
            raise DataIntegrityError(f"{path.name} does not start with an export header.")
        if kind == "header":
            yield "header", item["data"]
        elif kind in KINDS:
            yield kind, _from_json_record(item.get("data"), path, kind)
        else:
            raise DataIntegrityError(f"{path.name} line {number} has an unknown kind {kind!r}.")


def _read_sql(src: IO[str], path: Path) -> Iterator[tuple[str, Any]]:
    first = src.readline()
    prefix = f"-- {HEADER_FORMAT}: "
    if not first.startswith(prefix):
        raise DataIntegrityError(f"{path.name} does not start with an export header.")
    yield "header", json.loads(first[len(prefix) :])
    pending = ""
    start = 0
    for number, line in enumerate(src, start=2):
        if not pending and (line.startswith("--") or not line.strip()):
            continue
        if not pending:
            start = number
        pending += line
        if apsw.complete(pending):
            yield "sql", parse_insert(pending.strip(), path, start)
            pending = ""
    if pending.strip():
        raise DataIntegrityError(f"{path.name} ends inside a statement (truncated?).")


RowCheck = Callable[[str, dict[str, Any]], None]


def scan(
    path: Path, fmt: str, check: RowCheck | None = None
) -> tuple[dict[str, Any], dict[str, int]]:
    """The header and the counts per table of an export, calling ``check(table, row)`` on
    every row (reads the whole export: a deep check)."""
    header: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for kind, data in read_records(path, fmt):
        if kind == "header":
            header = data if isinstance(data, dict) else {}
            continue
        for table, row in [data] if kind == "sql" else _flat(kind, data):
            counts[table] = counts.get(table, 0) + 1
            if check is not None:
                check(table, row)
    return header, counts


def count_records(path: Path, fmt: str) -> dict[str, int]:
    """Counts per table of an export (reads the whole export: a deep check)."""
    return scan(path, fmt)[1]


def check_schema_version(path: Path, header: Any, expected: int) -> None:
    """The export's header records the schema version it was taken from: it must be the
    manifest's (the schema the restore builds to load it)."""
    found = header.get("schema_version") if isinstance(header, dict) else None
    if found != expected:
        raise DataIntegrityError(
            f"{path.name} was exported from schema version {found!r}, the manifest says {expected}."
        )


# -- loading into a new database -----------------------------------------------------------
def import_records(
    conn: apsw.Connection,
    path: Path,
    fmt: str,
    *,
    schema_version: int | None = None,
    progress: Progress | None = None,
) -> None:
    """Insert an export's rows into ``conn`` (an empty schema, inside the caller's
    transaction). Unknown tables or columns are refused, and so is an export whose header
    records another ``schema_version`` than the one given."""
    columns: dict[str, set[str]] = {}

    def known(table: str, row: dict[str, Any]) -> None:
        if table not in TABLES:
            raise DataIntegrityError(
                f"{path.name} holds rows for table {table!r}, which an export never has "
                f"(it has {', '.join(sorted(TABLES))})."
            )
        if table not in columns:
            cols = set(_columns(conn, table)) if _has_table(conn, table) else set()
            columns[table] = cols | (
                {"rowid"} if table in ROWID_TABLES or "fts" in table else set()
            )
        unknown = set(row) - columns[table]
        if not columns[table] or unknown:
            raise DataIntegrityError(
                f"{path.name} holds rows the schema does not have: table {table!r}, "
                f"columns {sorted(unknown) or 'all'}."
            )

    for n, (kind, data) in enumerate(read_records(path, fmt), 1):
        if kind == "header":
            if schema_version is not None:
                check_schema_version(path, data, schema_version)
            continue
        rows = [data] if kind == "sql" else _flat(kind, data)
        for table, row in rows:
            known(table, row)
            marks = ", ".join("?" * len(row))
            conn.execute(
                f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", tuple(row.values())
            )
        _tick(progress, n)
