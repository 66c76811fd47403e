"""The embedded store's vector side: embedding rows, the reads vector indexes refresh from,
and the bookkeeping that tells which episodes still need a vector."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import apsw

from ..model.episode import Episode
from ..model.records import EmbeddingRecord, EmbeddingStatus
from .codec import EPISODE_COLUMNS
from .sqlite_connection import SQLiteConnection, scalar
from .sqlite_learning import store_embedding

__all__ = ["SQLiteVectors"]


class SQLiteVectors:
    _db: SQLiteConnection

    @staticmethod
    def _load(conn: apsw.Connection, rows: Any) -> list[Episode]:
        raise NotImplementedError  # provided by SQLiteStorage

    async def store_embeddings(self, rows: list[tuple[uuid.UUID, EmbeddingRecord]]) -> None:
        """Write a batch of vectors in one transaction (all of them or none)."""
        now = int(time.time() * 1_000_000)

        def run(conn: apsw.Connection) -> None:
            for episode_id, record in rows:
                store_embedding(conn, str(episode_id), record, now)

        if rows:
            await self._db.write(run)

    async def embeddings_since(
        self, identity: str, after: int, limit: int
    ) -> list[tuple[int, uuid.UUID, bytes, bool]]:
        sql = (
            "SELECT rowid, episode_id, vector, truncated FROM embeddings WHERE identity = ? "
            "AND rowid > ? ORDER BY rowid LIMIT ?"
        )

        def run(conn: apsw.Connection) -> list[tuple[int, uuid.UUID, bytes, bool]]:
            return [
                (int(r[0]), uuid.UUID(r[1]), bytes(r[2]), bool(r[3]))
                for r in conn.execute(sql, (identity, after, limit))
            ]

        return await self._db.read(run)

    async def vector_by_hash(self, identity: str, content_hash: str) -> bytes | None:
        sql = "SELECT vector FROM embeddings WHERE identity = ? AND content_hash = ? LIMIT 1"
        rows = await self._db.read(lambda c: c.execute(sql, (identity, content_hash)).fetchall())
        return bytes(cast(bytes, rows[0][0])) if rows else None

    async def embedding_status(self, identity: str) -> EmbeddingStatus:
        def run(conn: apsw.Connection) -> EmbeddingStatus:
            embedded = int(
                scalar(conn, "SELECT count(*) FROM embeddings WHERE identity = ?", (identity,))
            )
            other = int(
                scalar(conn, "SELECT count(*) FROM embeddings WHERE identity != ?", (identity,))
            )
            completed = int(
                scalar(conn, "SELECT count(*) FROM episodes WHERE end_time IS NOT NULL")
            )
            return EmbeddingStatus(identity, embedded, max(0, completed - embedded), other)

        return await self._db.read_snapshot(run)

    async def episodes_missing_embedding(self, identity: str, limit: int) -> list[Episode]:
        sql = (
            f"SELECT {EPISODE_COLUMNS} FROM episodes e WHERE e.end_time IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM embeddings m WHERE m.episode_id = e.episode_id AND m.identity = ?) "
            "ORDER BY e.end_time LIMIT ?"
        )

        def run(conn: apsw.Connection) -> list[Episode]:
            return self._load(conn, conn.execute(sql, (identity, limit)).fetchall())

        return await self._db.read_snapshot(run)

    async def data_version(self) -> int:
        """Changes whenever any process commits to the store (for query-cache identity)."""
        return await self._db.call(self._db.version)
