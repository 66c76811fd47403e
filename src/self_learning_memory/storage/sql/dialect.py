"""How SQLite and PostgreSQL spell what differs between them.

The stores share their tables' names and columns; a :class:`Dialect` covers the rest: time
values (SQLite stores integer microseconds since the epoch, PostgreSQL ``timestamptz``), lists
passed as one parameter (``json_each`` over a JSON text or ``= ANY`` over an array), the tag
filter (``json_each`` or ``jsonb @>``), row locks (SQLite serialises whole write transactions
with ``BEGIN IMMEDIATE``; PostgreSQL locks the rows it aggregates, in key order), the database
size, and the embedding row (both order vectors by ``seq``: SQLite's ``AUTOINCREMENT``, whose
numbers are never given twice, PostgreSQL's sequence, whose numbers writers take under a lock
so that they become visible in order).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ...model.records import EmbeddingRecord
from ..codec import from_us, to_us
from .program import Op, execute

__all__ = ["POSTGRES", "SQLITE", "Dialect", "PostgresDialect"]


class Dialect:
    """The SQLite spelling; :class:`PostgresDialect` overrides what PostgreSQL writes otherwise."""

    name = "sqlite"
    row_locks = False  # True: aggregate rows are read FOR UPDATE and locked in key order
    least, greatest = "min", "max"  # the two-argument scalar functions
    lock = ""  # appended to a SELECT whose rows the transaction then updates
    byte_order = ""  # after ORDER BY column: text in code point order (Python's str order)
    skip_locked = ""  # appended to the learning queue's claim subquery
    json_param = "?"  # a JSON text parameter written into a JSON column (episodes.tags)
    memo_candidates = True  # candidate rows are decoded once per process (see rows.py)
    microsecond_times = True  # time columns hold integer microseconds (what the codec reads)
    size_sql = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
    # the embedding row's vector as stored (``vector_bytes`` turns it into float32 bytes), and
    # the condition that a row has one (a pgvector store reads its own column: pgvector.py)
    vector_read = "vector"
    vector_present = "vector IS NOT NULL"
    # Whether every embedding row has its vector (the column is NOT NULL and never emptied):
    # then the search for episodes without a vector needs no ``vector_present``, and SQLite
    # answers it from indexes without reading the rows (at 100K: 345 -> 87 ms). PostgreSQL may
    # move vectors into pgvector's column (``vector`` NULL then).
    vectors_in_every_row = True
    # Whether the store keeps the coverage's counts in ``row_counts`` (SQLite migration 9:
    # triggers in every writing transaction; at 100K the counts took 15-23 ms, the table is
    # read in microseconds). PostgreSQL counts: one counter row updated by every completion
    # would serialise its concurrent writers.
    counted_rows = True

    def vector_bytes(self, raw: Any) -> bytes:
        return bytes(raw)

    def to_time(self, value: datetime) -> Any:
        return to_us(value)

    def from_time(self, value: Any) -> datetime:
        return from_us(value)

    def time_us(self, value: Any) -> int:
        """A stored time as integer microseconds (the codec's episode and step rows)."""
        return int(value)

    def us_sql(self, column: str) -> str:
        """SQL for a time column's value as integer microseconds since the epoch."""
        return column

    def time_bucket(self, column: str, seconds: int, offset: int) -> str:
        """The index of the ``seconds``-long window holding the time ``column`` (windows start
        ``offset`` seconds before multiples of ``seconds`` since the epoch); integers only."""
        return f"(({column} + {int(offset) * 1_000_000}) / {int(seconds) * 1_000_000})"

    def in_list(self, column: str) -> str:
        """``column`` is one of a list passed as one parameter (see :meth:`list_arg`)."""
        return f"{column} IN (SELECT value FROM json_each(?))"

    def list_arg(self, values: Sequence[str]) -> Any:
        return json.dumps(list(values))

    def has_tag(self, column: str) -> str:
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)"

    def tag_arg(self, tag: str) -> Any:
        return tag

    def tags(self, value: Any) -> list[str]:
        """The stored ``tags`` column as a list."""
        return list(json.loads(value))

    def top(self, columns: str, rest: str) -> str:
        """A member of a UNION: ``columns`` of the first rows of ``SELECT ... {rest}`` (``rest``
        being ``FROM ... ORDER BY ... LIMIT ?``)."""
        return f"SELECT {columns} FROM (SELECT * {rest})"

    def stamp(self, value: datetime) -> str:
        """A time written into the text ``meta`` table."""
        return str(to_us(value))

    def unstamp(self, text: str) -> datetime:
        return from_us(int(text))

    def exclusive(self, name: str) -> list[Op]:
        """Statements that make the rest of the write transaction the only one doing ``name``
        (none: SQLite write transactions already exclude each other)."""
        return []

    def store_embedding(self, eid: str, emb: EmbeddingRecord, now: datetime) -> list[Op]:
        # the old row deleted first (its count goes with it: migration 9), then the new one,
        # numbered after every row before it (AUTOINCREMENT: migration 8)
        return [
            execute("DELETE FROM embeddings WHERE episode_id = ?", (eid,)),
            execute(
                "INSERT INTO embeddings (episode_id, identity, content_hash, "
                "dimensions, vector, truncated, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    eid,
                    emb.identity,
                    emb.content_hash,
                    emb.dimensions,
                    emb.vector,
                    int(emb.truncated),
                    to_us(now),
                ),
            ),
        ]


class PostgresDialect(Dialect):
    name = "postgresql"
    vectors_in_every_row = False
    counted_rows = False
    row_locks = True
    least, greatest = "least", "greatest"
    lock = " FOR UPDATE"
    byte_order = ' COLLATE "C"'
    skip_locked = " FOR UPDATE SKIP LOCKED"
    json_param = "?::jsonb"
    memo_candidates = False
    microsecond_times = False
    size_sql = (
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
    )

    def to_time(self, value: datetime) -> Any:
        return value

    def from_time(self, value: Any) -> datetime:
        return value  # type: ignore[no-any-return]

    def time_us(self, value: Any) -> int:
        return to_us(value)

    def us_sql(self, column: str) -> str:
        return f"(extract(epoch FROM {column}) * 1000000)::bigint"

    def time_bucket(self, column: str, seconds: int, offset: int) -> str:
        return f"floor((extract(epoch FROM {column}) + {int(offset)}) / {int(seconds)})::bigint"

    def in_list(self, column: str) -> str:
        return f"{column} = ANY(?)"

    def list_arg(self, values: Sequence[str]) -> Any:
        return list(values)

    def has_tag(self, column: str) -> str:
        return f"{column} @> ?::jsonb"

    def tag_arg(self, tag: str) -> Any:
        return json.dumps([tag])

    def tags(self, value: Any) -> list[str]:
        return list(value)

    def top(self, columns: str, rest: str) -> str:
        return f"(SELECT {columns} {rest})"

    def stamp(self, value: datetime) -> str:
        return value.isoformat()

    def unstamp(self, text: str) -> datetime:
        return datetime.fromisoformat(text)

    def exclusive(self, name: str) -> list[Op]:
        # a transaction-scoped advisory lock (held to commit), per schema
        return [execute(f"SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.{name}'))")]

    def store_embedding(self, eid: str, emb: EmbeddingRecord, now: datetime) -> list[Op]:
        # The sequence number orders rows for incremental index refresh. Numbers must become
        # visible in order, so writers take them under a transaction-scoped lock (held to commit).
        return [
            *self.exclusive("embeddings"),
            execute(
                "INSERT INTO embeddings (episode_id, seq, identity, content_hash, dimensions, "
                "vector, truncated, created_at) "
                "VALUES (?, nextval('embeddings_seq'), ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (episode_id) DO UPDATE SET seq = excluded.seq, "
                "identity = excluded.identity, content_hash = excluded.content_hash, "
                "dimensions = excluded.dimensions, vector = excluded.vector, "
                "truncated = excluded.truncated, created_at = excluded.created_at",
                (
                    eid,
                    emb.identity,
                    emb.content_hash,
                    emb.dimensions,
                    emb.vector,
                    emb.truncated,
                    now,
                ),
            ),
        ]


SQLITE = Dialect()
POSTGRES = PostgresDialect()
