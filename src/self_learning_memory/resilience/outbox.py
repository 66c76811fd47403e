"""The outbox: writes acknowledged while the primary store is down, journaled durably in order.

Where: a small SQLite file (``outbox.db`` in the data directory, through apsw), not the LMDB
cache. The cache is opened with ``sync=False`` (it is a cache: SQL is the truth), is bounded
with LRU eviction, and has one writer at a time; the outbox must survive a crash and a power
cut once a write is acknowledged, keep a total order, and be shared safely by every process
using the data directory. SQLite with WAL and ``synchronous=FULL`` gives exactly that: an entry
is fsynced before the caller is told "queued", ``seq`` (AUTOINCREMENT) is the replay order, and
several processes may append while one replays.

An entry is ``(seq, op, episode_id, payload JSON)``. Payload codecs for every journaled
operation live here too, so the journal can be read back in a new process.

While the outbox holds entries, a marker file next to it (``outbox.db.pending``,
``resilience/outbox_marker.py``) says so, so an outbox file truncated, deleted or replaced while
writes were queued is refused at open instead of being taken for a new one.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import apsw
from pydantic import BaseModel, ConfigDict, TypeAdapter

from ..errors import DataIntegrityError, StorageUnavailableError
from ..learning.merge import merge_observation
from ..model.episode import Episode, ExecutionStep
from ..model.pattern import AnyPattern, Heuristic
from ..model.records import CompletionRecord, EmbeddingRecord, SearchDocument
from .outbox_marker import Marker, check_before_open, check_marker, read_marker, write_marker
from .outbox_marker import remove_marker as _remove_marker

__all__ = [
    "Outbox",
    "OutboxEntry",
    "created_from_json",
    "encode_record",
    "record_from_json",
    "steps_from_json",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    episode_id TEXT,
    payload TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    op TEXT NOT NULL,
    episode_id TEXT,
    payload TEXT NOT NULL,
    queued_at REAL NOT NULL,
    failed_at REAL NOT NULL,
    error TEXT NOT NULL
);
"""

_PATTERNS: TypeAdapter[list[AnyPattern]] = TypeAdapter(list[AnyPattern])
_HEURISTICS: TypeAdapter[list[Heuristic]] = TypeAdapter(list[Heuristic])


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    op: str
    episode_id: uuid.UUID | None
    text: str  # the payload as journaled (JSON)
    queued_at: float
    attempts: int

    @functools.cached_property
    def payload(self) -> dict[str, Any]:
        """The payload parsed (on first use: the replay decodes ``text`` itself)."""
        return dict(json.loads(self.text))


# -- payload codecs ----------------------------------------------------------------------------
def encode_embedding(emb: EmbeddingRecord) -> dict[str, Any]:
    return {
        "identity": emb.identity,
        "content_hash": emb.content_hash,
        "dimensions": emb.dimensions,
        "vector": base64.b64encode(emb.vector).decode("ascii"),
        "truncated": emb.truncated,
    }


def decode_embedding(data: dict[str, Any]) -> EmbeddingRecord:
    return EmbeddingRecord(
        identity=data["identity"],
        content_hash=data["content_hash"],
        dimensions=int(data["dimensions"]),
        vector=base64.b64decode(data["vector"]),
        truncated=bool(data["truncated"]),
    )


def encode_steps(steps: list[ExecutionStep]) -> list[Any]:
    return [json.loads(s.model_dump_json()) for s in steps]


def encode_episode(episode: Episode) -> dict[str, Any]:
    return dict(json.loads(episode.model_dump_json()))


def encode_record(record: CompletionRecord) -> dict[str, Any]:
    s = record.search
    return {
        "episode": encode_episode(record.episode),
        "mode": record.mode,
        "search": [s.description, s.steps, s.outcome, s.reflection],
        "patterns": json.loads(_PATTERNS.dump_json(record.patterns)),
        "heuristics": json.loads(_HEURISTICS.dump_json(record.heuristics)),
        "success": record.success,
        "embedding": None if record.embedding is None else encode_embedding(record.embedding),
    }


# decoded straight from the journaled JSON text: one pass (pydantic's), no dict in between
class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _CreatePayload(_Payload):
    episode: Episode


class _StepsPayload(_Payload):
    steps: list[ExecutionStep]


class _Record(_Payload):
    episode: Episode
    mode: Literal["inline", "queued", "learned"]
    search: tuple[str, str, str, str]
    patterns: list[AnyPattern]
    heuristics: list[Heuristic]
    success: bool
    embedding: dict[str, Any] | None = None


class _CompletionPayload(_Payload):
    record: _Record


def created_from_json(text: str) -> Episode:
    """The episode of a journaled ``create_episode`` payload (``{"episode": ...}``)."""
    return _CreatePayload.model_validate_json(text).episode


def steps_from_json(text: str) -> list[ExecutionStep]:
    """The steps of a journaled ``append_steps`` payload (``{"steps": [...]}``)."""
    return _StepsPayload.model_validate_json(text).steps


def record_from_json(text: str) -> CompletionRecord:
    """The record of a journaled ``commit_completion`` payload (``{"record": ...}``, as
    :func:`encode_record` writes it)."""
    r = _CompletionPayload.model_validate_json(text).record
    return CompletionRecord(
        episode=r.episode,
        mode=r.mode,
        search=SearchDocument(*r.search),
        patterns=r.patterns,
        heuristics=r.heuristics,
        success=r.success,
        embedding=None if r.embedding is None else decode_embedding(r.embedding),
        merge=merge_observation,
    )


# -- the journal -------------------------------------------------------------------------------
def _row(conn: apsw.Connection, sql: str) -> tuple[Any, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None  # aggregates always return a row
    return tuple(row)


class Outbox:
    """A durable FIFO journal. Synchronous: call it from a worker thread."""

    def __init__(self, path: str | Path, *, max_entries: int = 100_000) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._conn: apsw.Connection | None = None
        self._replay_fd: int | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        marker = check_before_open(self.path)  # a lost outbox is refused before it is re-created
        conn = apsw.Connection(str(self.path))
        try:
            conn.setbusytimeout(30_000)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
            with conn:
                conn.execute(_SCHEMA)
                row = conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"
                ).fetchone()
                (pending,) = _row(conn, "SELECT count(*) FROM outbox")
                check_marker(self.path, marker, None if row is None else int(row[0]), pending)
        except DataIntegrityError:
            conn.close()
            raise
        except (apsw.NotADBError, apsw.CorruptError) as exc:
            conn.close()
            raise DataIntegrityError(
                f"The outbox {self.path} is damaged ({exc}); it may hold writes queued while the "
                "primary store was down. Keep a copy of it, then move it away (a new, empty "
                "outbox is created) to start again; the writes it held are lost."
            ) from exc
        self._conn = conn

    def close(self) -> None:
        self.release_replay()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _db(self) -> apsw.Connection:
        if self._conn is None:
            raise StorageUnavailableError(f"The outbox {self.path} is not open.")
        return self._conn

    def append(self, op: str, episode_id: uuid.UUID | None, payload: dict[str, Any]) -> int:
        """Journal one write; durable when this returns. Raises when the outbox is full."""
        text = json.dumps(payload, separators=(",", ":"))
        with self._lock:
            conn = self._db()
            with conn:
                (count,) = _row(conn, "SELECT count(*) FROM outbox")
                if count >= self.max_entries:
                    raise StorageUnavailableError(
                        f"The primary store is down and the outbox {self.path} is full "
                        f"({count} writes queued, limit {self.max_entries}); the write was "
                        "not accepted. Restore the primary store or raise "
                        "resilience.outbox_max_entries."
                    )
                now = time.time()
                conn.execute(
                    "INSERT INTO outbox (op, episode_id, payload, queued_at) VALUES (?,?,?,?)",
                    (op, None if episode_id is None else str(episode_id), text, now),
                )
                seq = int(conn.last_insert_rowid())
                self._mark(count, seq, now)  # before the commit: no acknowledged write unmarked
        return seq

    def _mark(self, count_before: int, seq: int, now: float) -> None:
        try:
            marker = None if count_before == 0 else read_marker(self.path)
            if marker is None or marker.first_seq <= 0:
                write_marker(self.path, Marker(seq, seq, now), durable=True)
            else:
                write_marker(self.path, Marker(marker.first_seq, seq, marker.since), durable=False)
        except OSError as exc:
            raise StorageUnavailableError(
                f"Cannot write the outbox marker next to {self.path} ({exc}); the write was not "
                f"accepted. Make {self.path.parent} writable."
            ) from exc

    def _unmark_if_drained(self, conn: apsw.Connection) -> None:
        if conn.execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is None:
            _remove_marker(self.path)

    def peek(self, limit: int = 100, after: int = 0) -> list[OutboxEntry]:
        with self._lock:
            rows = self._db().execute(
                "SELECT seq, op, episode_id, payload, queued_at, attempts FROM outbox "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            return [
                OutboxEntry(
                    int(r[0]),
                    str(r[1]),
                    None if r[2] is None else uuid.UUID(r[2]),
                    str(r[3]),
                    float(r[4]),
                    int(r[5]),
                )
                for r in rows
            ]

    def remove(self, seq: int) -> None:
        with self._lock, self._db() as conn:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            self._unmark_if_drained(conn)

    def remove_many(self, seqs: list[int]) -> None:
        """Delete replayed entries in one transaction (one fsync for the lot)."""
        with self._lock, self._db() as conn:
            conn.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in seqs])
            self._unmark_if_drained(conn)

    def note_failure(self, seq: int, error: str) -> None:
        with self._lock, self._db() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error, seq),
            )

    def dead_letter(self, seq: int, error: str) -> None:
        """Move an entry the primary refused (not a connection failure) aside, keeping it."""
        with self._lock, self._db() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO dead_letters (seq, op, episode_id, payload, queued_at, "
                "failed_at, error) SELECT seq, op, episode_id, payload, queued_at, ?, ? "
                "FROM outbox WHERE seq = ?",
                (time.time(), error, seq),
            )
            conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            self._unmark_if_drained(conn)

    def counts(self) -> dict[str, Any]:
        with self._lock:
            conn = self._db()
            pending, oldest = _row(conn, "SELECT count(*), min(queued_at) FROM outbox")
            (dead,) = _row(conn, "SELECT count(*) FROM dead_letters")
        return {
            "pending": int(pending),
            "oldest_queued_at": oldest,
            "dead_letters": int(dead),
        }

    def pending(self) -> int:
        with self._lock:
            (n,) = _row(self._db(), "SELECT count(*) FROM outbox")
            return int(n)

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db().execute(
                "SELECT seq, op, episode_id, failed_at, error FROM dead_letters ORDER BY seq"
            )
            keys = ("seq", "op", "episode_id", "failed_at", "error")
            return [dict(zip(keys, r, strict=True)) for r in rows]

    # one replayer at a time across processes: an advisory lock on a sibling file
    def try_acquire_replay(self) -> bool:
        if self._replay_fd is not None:
            return True
        fd = os.open(str(self.path) + ".replay.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._replay_fd = fd
        return True

    def release_replay(self) -> None:
        if self._replay_fd is not None:
            fcntl.flock(self._replay_fd, fcntl.LOCK_UN)
            os.close(self._replay_fd)
            self._replay_fd = None
