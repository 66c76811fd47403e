"""The PostgreSQL store's vector side: embedding rows (float32 ``bytea``), the reads vector
indexes refresh from (by sequence number), and the bookkeeping of episodes still missing one.

Vectors are scored in process by the embeddings index, as with the embedded store.
"""

from __future__ import annotations

import uuid
from typing import Any

from ...model.episode import Episode, utc_now
from ...model.records import EmbeddingRecord, EmbeddingStatus
from .connection import Conn, PostgresConnection
from .learning import store_embedding

__all__ = ["PostgresVectors"]


class PostgresVectors:
    _db: PostgresConnection

    async def _load(self, conn: Conn, rows: list[tuple[Any, ...]]) -> list[Episode]:
        raise NotImplementedError  # provided by PostgresStorage

    async def store_embeddings(self, rows: list[tuple[uuid.UUID, EmbeddingRecord]]) -> None:
        """Write a batch of vectors in one transaction (all of them or none)."""
        now = utc_now()

        async def run(conn: Conn) -> None:
            for episode_id, record in rows:
                await store_embedding(conn, str(episode_id), record, now)

        if rows:
            await self._db.write(run)

    async def embeddings_since(
        self, identity: str, after: int, limit: int
    ) -> list[tuple[int, uuid.UUID, bytes, bool]]:
        sql = (
            "SELECT seq, episode_id, vector, truncated FROM embeddings WHERE identity = %s "
            "AND seq > %s ORDER BY seq LIMIT %s"
        )

        async def run(conn: Conn) -> list[tuple[int, uuid.UUID, bytes, bool]]:
            cur = await conn.execute(sql, (identity, after, limit))
            return [
                (int(r[0]), uuid.UUID(r[1]), bytes(r[2]), bool(r[3])) for r in await cur.fetchall()
            ]

        return await self._db.read(run)

    async def vector_by_hash(self, identity: str, content_hash: str) -> bytes | None:
        sql = "SELECT vector FROM embeddings WHERE identity = %s AND content_hash = %s LIMIT 1"

        async def run(conn: Conn) -> bytes | None:
            row = await (await conn.execute(sql, (identity, content_hash))).fetchone()
            return None if row is None else bytes(row[0])

        return await self._db.read(run)

    async def embedding_status(self, identity: str) -> EmbeddingStatus:
        async def run(conn: Conn) -> EmbeddingStatus:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM embeddings WHERE identity = %s), "
                "(SELECT count(*) FROM embeddings WHERE identity <> %s), "
                "(SELECT count(*) FROM episodes WHERE end_time IS NOT NULL)",
                (identity, identity),
            )
            row = await cur.fetchone()
            assert row is not None
            embedded, other, completed = (int(v) for v in row)
            return EmbeddingStatus(identity, embedded, max(0, completed - embedded), other)

        return await self._db.read(run)

    async def episodes_missing_embedding(self, identity: str, limit: int) -> list[Episode]:
        from .storage import EPISODE_SELECT

        sql = (
            f"SELECT {EPISODE_SELECT} FROM episodes e WHERE e.end_time IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM embeddings m WHERE m.episode_id = e.episode_id AND m.identity = %s) "
            "ORDER BY e.end_time LIMIT %s"
        )

        async def run(conn: Conn) -> list[Episode]:
            cur = await conn.execute(sql, (identity, limit))
            return await self._load(conn, await cur.fetchall())

        return await self._db.read_snapshot(run)
