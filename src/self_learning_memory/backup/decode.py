"""Every row of a backup read back by the library's own codec.

A backup whose checksums match can still hold rows the library cannot read (anyone who can
write the file can re-sign it, and a store's own rows can be damaged before the backup is
taken): a context that is not valid JSON, a step result of an unknown type, a vector whose size
does not match its dimensions. Verify and restore decode each row of ``episodes``, ``steps``,
``patterns``, ``heuristics`` and ``embeddings`` with :mod:`..storage.codec` (the code that
reads them in normal use) and name the first one that fails: its table, its id and the field.
The other tables hold plain columns that SQLite's types and constraints already check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apsw

from ..errors import DataIntegrityError
from ..model.pattern import Evidence
from ..storage.codec import (
    EPISODE_COLUMNS,
    STEP_COLUMNS,
    episode_from_row,
    failure_reason,
    pattern_from_json,
    step_from_row,
)
from ..storage.sql.rows import (
    HEURISTIC_COLUMNS,
    USAGE_COLUMNS,
    heuristic_from_row,
    usage_from_row,
)

__all__ = ["DECODED_TABLES", "check_row", "check_store"]


def _names(columns: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in columns.split(","))


_EPISODE = _names(EPISODE_COLUMNS)
_STEP = _names(STEP_COLUMNS)
_PATTERN = ("pattern_id", "pattern_data", *_names(USAGE_COLUMNS))
_HEURISTIC = _names(HEURISTIC_COLUMNS)
_EMBEDDING = ("episode_id", "dimensions", "vector")
_COLUMNS = {
    "episodes": _EPISODE,
    "steps": _STEP,
    "patterns": _PATTERN,
    "heuristics": _HEURISTIC,
    "embeddings": _EMBEDDING,
}
DECODED_TABLES = frozenset(_COLUMNS)
_VECTOR_BYTES = 4  # float32


def _row_id(table: str, row: dict[str, Any]) -> str:
    if table == "steps":
        return f"{row.get('episode_id')} step {row.get('step_number')}"
    key = {"patterns": "pattern_id", "heuristics": "heuristic_id"}.get(table, "episode_id")
    return str(row.get(key))


# columns a store of an older schema has no value for (episodes.agent: schema 6)
_OPTIONAL = {"episodes": {"agent"}}


def _values(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    optional = _OPTIONAL.get(table, set())
    missing = [c for c in _COLUMNS[table] if c not in row and c not in optional]
    if missing:
        raise DataIntegrityError(f"field {missing[0]!r} is missing")
    return tuple(row.get(c) for c in _COLUMNS[table])


def _decode_pattern(values: tuple[Any, ...]) -> None:
    try:
        pattern_from_json(values[1])
    except (DataIntegrityError, TypeError, ValueError) as exc:
        raise DataIntegrityError(f"field 'pattern_data': {failure_reason(exc)}") from exc
    try:
        usage_from_row(values[2:])
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataIntegrityError(f"the usage counts: {failure_reason(exc)}") from exc


def _decode_heuristic(values: tuple[Any, ...]) -> None:
    try:
        Evidence.model_validate_json(values[5])
    except (TypeError, ValueError) as exc:
        raise DataIntegrityError(f"field 'evidence': {failure_reason(exc)}") from exc
    try:
        heuristic_from_row(values)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataIntegrityError(failure_reason(exc)) from exc


def _decode_embedding(values: tuple[Any, ...]) -> None:
    dimensions, vector = values[1], values[2]
    if not isinstance(vector, bytes) or not isinstance(dimensions, int):
        raise DataIntegrityError("field 'vector': not a blob with integer dimensions")
    if len(vector) != dimensions * _VECTOR_BYTES:
        raise DataIntegrityError(
            f"field 'vector': {len(vector)} bytes, {dimensions} dimensions need "
            f"{dimensions * _VECTOR_BYTES}"
        )


def check_row(table: str, row: dict[str, Any]) -> None:
    """Decode one row (column name -> value) as the library reads it; a row it cannot read
    raises :class:`DataIntegrityError` naming the table, the row and the field."""
    if table not in _COLUMNS:
        return
    try:
        values = _values(table, row)
        if table == "episodes":
            episode_from_row(values, [])
        elif table == "steps":
            step_from_row(values)
        elif table == "patterns":
            _decode_pattern(values)
        elif table == "heuristics":
            _decode_heuristic(values)
        else:
            _decode_embedding(values)
    except DataIntegrityError as exc:
        detail = exc.message.rstrip(".")
        if (at := detail.find(": field ")) >= 0:  # the codec's "... is invalid: field 'x': ..."
            detail = detail[at + 2 :]
        raise DataIntegrityError(
            f"table {table}, row {_row_id(table, row)}: {detail}; the library cannot read it"
        ) from exc


def _rows(conn: apsw.Connection, table: str) -> Iterator[dict[str, Any]]:
    present = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
    columns = tuple(c for c in _COLUMNS[table] if c in present)
    for values in conn.execute(f"SELECT {', '.join(columns)} FROM {table}"):
        yield dict(zip(columns, values, strict=True))


def check_store(conn: apsw.Connection) -> None:
    """Decode every row of the tables the library decodes (see :func:`check_row`)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table in _COLUMNS:
        if table in tables:
            for row in _rows(conn, table):
                check_row(table, row)
