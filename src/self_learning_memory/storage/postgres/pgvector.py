"""Vectors inside PostgreSQL: a pgvector column, an HNSW index per embedding identity, and the
nearest-episode search run by the server.

When the server offers the ``vector`` extension (and ``storage.pgvector`` is ``auto``),
:func:`activate` creates it (in schema ``public`` unless it is already installed elsewhere), adds
the column ``embeddings.embedding`` (type ``vector`` without a dimension, so one table holds the
vectors of any embedding identity), and moves existing ``bytea`` vectors into it in batches,
clearing the bytea copy. From then on the store writes and reads vectors through that column
(:class:`PgvectorDialect`) and offers :class:`PgvectorIndex` as its ``vector_index`` capability:

- one HNSW index per identity, a partial expression index
  ``((embedding::vector(N)) vector_cosine_ops) WHERE identity = '<identity>'`` (``halfvec`` for
  2,001 to 4,000 dimensions, where ``vector`` indexes stop, and up to 2,000 with
  ``storage.hnsw_type = halfvec``: its own index, named ``..._half``; no index above 4,000),
  built ``CONCURRENTLY`` the first time the identity is searched, rebuilt if a crash left it
  invalid;
- nearest episodes by cosine, ``ORDER BY embedding::vector(N) <=> $q LIMIT k`` (``halfvec(N)``
  on both sides with a halfvec index: the query is bound as a ``vector`` and cast), with
  ``hnsw.ef_search`` from ``retrieval.hnsw_ef_search`` and ``hnsw.iterative_scan =
  relaxed_order`` so that SQL filters (domain, task type, outcome, time...) applied to the
  joined episode row still yield ``k`` rows; each row comes with its candidate columns and its
  vector, so the process fetches only candidate rows and never holds the whole matrix.

Without the extension (or with ``storage.pgvector = off``) nothing here runs: vectors stay
``bytea`` and the process scores them (``retrieval/index.py``). If the extension was dropped
after the move (``DROP EXTENSION vector CASCADE`` drops the column), the vectors are gone: the
store says so in health and ``memory-cli storage reindex`` embeds the episodes again.

Names of the extension's objects are schema-qualified (``"public".vector``,
``OPERATOR("public".<=>)``) so that a connection whose ``search_path`` does not include the
extension's schema still finds them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import struct
import time
import uuid
import weakref
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

from ...errors import ConfigurationError
from ...model.records import (
    EmbeddingRecord,
    EpisodeCandidate,
    EpisodeFilters,
    NearestRow,
    ServerHits,
)
from ..sql import rows as decode
from ..sql.dialect import PostgresDialect
from ..sql.program import Op, execute
from ..sql.queries import completed
from .connection import Conn, PostgresConnection, first_value

__all__ = [
    "HALFVEC_MAX_DIMENSIONS",
    "MOVE_BATCH",
    "VECTOR_MAX_DIMENSIONS",
    "Float32Vector",
    "PgvectorDialect",
    "PgvectorIndex",
    "PgvectorState",
    "activate",
    "float32_from_send",
    "missing_vector_object",
]

log = logging.getLogger(__name__)

VECTOR_MAX_DIMENSIONS = 2000  # HNSW on vector
HALFVEC_MAX_DIMENSIONS = 4000  # HNSW on halfvec
MOVE_BATCH = 2000  # bytea vectors moved per transaction
# the candidate columns with ``tags`` (jsonb) as text: psycopg would parse every row's JSON, and
# most rows of a search are candidates the caller already decoded (``_candidate`` parses the rest)
_COLUMNS = decode.CANDIDATE_COLUMNS.replace("e.tags", "e.tags::text")
_WIDTH = decode.CANDIDATE_COLUMNS.count(",") + 1
# the candidate columns' output names (``e.tags::text`` is ``tags``), to read them from a CTE
_NAMES = [c.strip().split(".", 1)[1].split("::")[0] for c in _COLUMNS.split(",")]
# the store's data version (``storage.data_version``), read in the search's own snapshot
_VERSION_SQL = "(SELECT sum(version) FROM data_version)::text"
_BUILD_LOCK = 0x5E1F_1EA3  # advisory lock class of index builds (key: schema and index name)


class Float32Vector:
    """Little-endian float32 bytes bound as a pgvector ``vector`` parameter, in pgvector's
    binary format (:class:`_VectorDumper`): no text or ``float8[]`` conversion of every value,
    and the stored vector equals the bytes exactly. The parameter's type is left to the server
    (oid 0): write it as ``%s::<schema>.vector`` so the server reads it with ``vector_recv``."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _VectorDumper(Dumper):
    format = Format.BINARY
    oid = 0  # the vector type's oid differs per database: the cast in the SQL names it

    def dump(self, obj: Any) -> bytes:
        values = array("f", obj.data)
        values.byteswap()
        return struct.pack(">HH", len(values), 0) + values.tobytes()


psycopg.adapters.register_dumper(Float32Vector, _VectorDumper)


def float32_from_send(raw: bytes) -> bytes:
    """``vector_send`` output (int16 dimensions, int16 unused, big-endian float4s) as the
    little-endian float32 bytes the rest of the library uses."""
    values = array("f", bytes(raw)[4:])
    values.byteswap()
    return values.tobytes()


def float32_rows(raws: Sequence[bytes]) -> list[bytes]:
    """:func:`float32_from_send` of each of ``raws``, converted together when they have one
    length (one search's rows: one identity): one byte swap over all of them instead of one
    per row (the 4-byte header is one float4 slot, dropped as the first column)."""
    if not raws:
        return []
    width = len(raws[0])
    if width < 4 or width % 4 or any(len(r) != width for r in raws):
        return [float32_from_send(r) for r in raws]
    block = np.frombuffer(b"".join(raws), dtype=">f4").reshape(len(raws), width // 4)
    return [row.tobytes() for row in block[:, 1:].astype("<f4")]


# text episode ids parsed once per process (bounded): a search's rows name them as text
_UUIDS: dict[str, uuid.UUID] = {}
_UUIDS_KEPT = 20_000


def _uuid(text: str) -> uuid.UUID:
    parsed = _UUIDS.get(text)
    if parsed is None:
        if len(_UUIDS) >= _UUIDS_KEPT:
            _UUIDS.clear()
        parsed = _UUIDS[text] = uuid.UUID(text)
    return parsed


# an index this large is worth the huge pages hint below (a few hundred thousand vectors)
HINT_INDEX_BYTES = 256 * 2**20


def memory_hints(index_bytes: int, shared_buffers: int, huge_pages_status: str | None) -> list[str]:
    """What health suggests about the server's memory for HNSW indexes of ``index_bytes``: an
    HNSW scan reads a few thousand index pages at random, so the indexes should fit in
    ``shared_buffers`` (pages outside it are copied in from the OS cache at each read: at
    ef_search 300 on 1M vectors the search's server CPU doubled), and at this size huge pages
    spare the scan address translation misses (at 1M, alternated restarts: the search's server
    CPU median 7.7 -> 6.6 ms). docs/operations.md, "Server memory"."""
    hints: list[str] = []
    mb = 2**20
    if index_bytes > shared_buffers:
        hints.append(
            f"the HNSW indexes ({index_bytes // mb} MB) do not fit in shared_buffers "
            f"({shared_buffers // mb} MB): raise shared_buffers above their size"
        )
    if index_bytes >= HINT_INDEX_BYTES and huge_pages_status == "off":
        hints.append(
            "the server runs without huge pages: reserve vm.nr_hugepages for shared_buffers "
            "(huge_pages = try then uses them): ~15 % less server CPU per search at 1M vectors"
        )
    return hints


_MISSING = ("UndefinedColumn", "UndefinedObject", "UndefinedFunction")


def missing_vector_object(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is PostgreSQL saying the pgvector
    column, type or function does not exist, or that a statement prepared before the
    extension was dropped and created again names a type that is gone."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if type(seen).__name__ in _MISSING and ("embedding" in text or "vector" in text):
            return True
        if "cache lookup failed for type" in text:
            return True
        seen = seen.__cause__
    return False


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class PgvectorDialect(PostgresDialect):
    """The PostgreSQL spelling with vectors in the pgvector column ``embedding``."""

    def __init__(self, schema: str) -> None:
        self.ext = _ident(schema)
        self.vector_read = f"{self.ext}.vector_send(embedding)"
        self.vector_present = "embedding IS NOT NULL"

    def vector_bytes(self, raw: Any) -> bytes:
        return float32_from_send(raw)

    def store_embedding(self, eid: str, emb: EmbeddingRecord, now: datetime) -> list[Op]:
        return [
            *self.exclusive("embeddings"),
            execute(
                "INSERT INTO embeddings (episode_id, seq, identity, content_hash, dimensions, "
                "vector, truncated, created_at, embedding) "
                f"VALUES (?, nextval('embeddings_seq'), ?, ?, ?, NULL, ?, ?, ?::"
                f"{self.ext}.vector) "
                "ON CONFLICT (episode_id) DO UPDATE SET seq = excluded.seq, "
                "identity = excluded.identity, content_hash = excluded.content_hash, "
                "dimensions = excluded.dimensions, vector = NULL, "
                "truncated = excluded.truncated, created_at = excluded.created_at, "
                "embedding = excluded.embedding",
                (
                    eid,
                    emb.identity,
                    emb.content_hash,
                    emb.dimensions,
                    emb.truncated,
                    now,
                    Float32Vector(emb.vector),
                ),
            ),
        ]


@dataclass
class PgvectorState:
    """What :func:`activate` found and did (health shows it)."""

    active: bool
    reason: str
    schema: str | None = None
    version: str | None = None
    moved: int = 0
    move_s: float = 0.0
    lost: int = 0  # vectors whose bytea was moved out and whose pgvector column is gone

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"active": self.active, "reason": self.reason}
        if self.version is not None:
            out["extension_version"] = self.version
            out["extension_schema"] = self.schema
        if self.moved:
            out["moved_from_bytea"] = self.moved
            out["move_s"] = round(self.move_s, 2)
        if self.lost:
            out["vectors_lost"] = self.lost
            out["fix"] = "memory-cli storage reindex (embeds the episodes again)"
        return out


async def _extension(conn: Conn) -> tuple[str, str] | None:
    row = await (
        await conn.execute(
            "SELECT e.extversion, n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'"
        )
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


async def _has_column(conn: Conn) -> bool:
    return bool(
        await first_value(
            conn,
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = 'embeddings' AND column_name = 'embedding'",
        )
    )


async def _bytea_nullable(conn: Conn) -> bool:
    """Whether the bytea column was made nullable: vectors were moved to pgvector once."""
    nullable = await first_value(
        conn,
        "SELECT is_nullable FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = 'embeddings' AND column_name = 'vector'",
    )
    return str(nullable) == "YES"


async def activate(db: PostgresConnection, mode: str) -> PgvectorState:
    """Bring the store's vectors into pgvector when the server allows it (see the module).
    Idempotent; the schema changes run under the store's migration lock, the move in batches
    of :data:`MOVE_BATCH` (each its own transaction, so an interrupted move resumes)."""
    state = await db.transaction(lambda conn: _prepare(conn, mode), bump=False)
    if not state.active:
        return state
    started = time.perf_counter()
    ext = _ident(state.schema or "public")
    while True:
        moved = await db.transaction(lambda conn: _move_batch(conn, ext), bump=False)
        state.moved += moved
        if moved < MOVE_BATCH:
            break
        log.info("pgvector: moved %d bytea vectors into the vector column", state.moved)
    state.move_s = time.perf_counter() - started
    if state.moved:
        await db.read(lambda conn: conn.execute("ANALYZE embeddings"))
        log.info("pgvector: moved %d vectors in %.1f s", state.moved, state.move_s)
    return state


async def _prepare(conn: Conn, mode: str) -> PgvectorState:
    await conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (0x5E1F_1EA2,)
    )
    found = await _extension(conn)
    column = await _has_column(conn)
    lost = 0
    if not column and await _bytea_nullable(conn):
        # vectors moved out of bytea earlier whose pgvector column is gone (extension dropped);
        # a store never moved keeps the bytea column NOT NULL and is not scanned
        lost = int(await first_value(conn, "SELECT count(*) FROM embeddings WHERE vector IS NULL"))
    if mode == "off":
        if column:
            raise ConfigurationError(
                "storage.pgvector = off, but this store's vectors live in its pgvector column "
                "(embeddings.embedding): set storage.pgvector = auto (the bytea path cannot "
                "read them)."
            )
        return PgvectorState(False, "off (storage.pgvector)", lost=lost)
    if found is None:
        available = await first_value(
            conn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
        )
        if not available:
            return PgvectorState(
                False, "the server has no vector extension (pgvector): bytea", lost=lost
            )
        try:
            async with conn.transaction():  # a savepoint: a refusal leaves the rest intact
                await conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        except Exception as exc:  # no privilege, or another failure: stay on bytea
            return PgvectorState(
                False,
                f"CREATE EXTENSION vector failed ({type(exc).__name__}: {exc}); "
                "an administrator can run it once: bytea until then",
                lost=lost,
            )
        found = await _extension(conn)
        if found is None:  # pragma: no cover - created above
            return PgvectorState(False, "the vector extension did not appear", lost=lost)
    version, schema = found
    if not column:
        await conn.execute(f"ALTER TABLE embeddings ADD COLUMN embedding {_ident(schema)}.vector")
        await conn.execute("ALTER TABLE embeddings ALTER COLUMN vector DROP NOT NULL")
    return PgvectorState(True, "pgvector", schema=schema, version=version, lost=lost)


async def _move_batch(conn: Conn, ext: str) -> int:
    cur = await conn.execute(
        "SELECT episode_id, vector FROM embeddings WHERE embedding IS NULL AND vector IS NOT "
        "NULL ORDER BY episode_id LIMIT %s FOR UPDATE",
        (MOVE_BATCH,),
    )
    found = await cur.fetchall()
    if found:
        async with conn.cursor() as c:
            await c.executemany(
                f"UPDATE embeddings SET embedding = %s::{ext}.vector, vector = NULL "
                "WHERE episode_id = %s",
                [(Float32Vector(bytes(v)), eid) for eid, v in found],
            )
    return len(found)


def _candidate(
    dialect: PgvectorDialect,
    row: Sequence[Any],
    reuse: Mapping[uuid.UUID, EpisodeCandidate],
) -> EpisodeCandidate:
    """The candidate of ``row`` (``_COLUMNS``): the caller's when it knows the episode, else
    decoded (its ``tags`` text parsed here)."""
    known = reuse.get(_uuid(row[0])) if reuse else None
    if known is not None:
        return known
    columns = (*row[: _WIDTH - 1], json.loads(row[_WIDTH - 1]))
    return decode.candidate(dialect, columns, None, "vector")


@dataclass
class _Identity:
    dimensions: int
    kind: str | None  # vector, halfvec, or None (too many dimensions: exact scan)
    index: str | None
    ready: bool = False


@dataclass
class PgvectorIndex:
    """The store's ``vector_index`` capability (see the module)."""

    db: PostgresConnection
    schema: str
    ef_search: int
    # the store's check that the extension vanished (it then chooses its vector path again)
    gone: Callable[[BaseException], Awaitable[bool]] | None = None
    m: int = 16  # HNSW graph degree (storage.hnsw_m), used when an index is built
    ef_construction: int = 64  # candidates per insert while building (storage.hnsw_ef_construction)
    # the index's element type up to VECTOR_MAX_DIMENSIONS (storage.hnsw_type): vector or halfvec
    hnsw_type: str = "vector"
    # below this many vectors of an identity a process scores them in its own matrix
    # (storage.pgvector_exact_below; 0: never); ``vector_search`` is the regime the process's
    # retrieval chose (``retrieval/vectors.py`` sets it), shown in health
    exact_below: int = 0
    vector_search: str = ""
    # hnsw.ef_search of the feedback-expanded query's search (retrieval.hnsw_feedback_ef_search;
    # 0: ef_search)
    feedback_ef_search: int = 0
    # retrieval.hnsw_feedback_pool: > 0, the first search keeps its nearest this many (at
    # most ``ef_search``, at least ``k``) and the feedback-expanded query is ranked exactly
    # over them in the same statement: one HNSW scan per search instead of two
    # (``feedback_ef_search`` unused); 0, the expanded query has its own HNSW scan
    feedback_pool: int = 200
    _identities: dict[str, _Identity] = field(default_factory=dict)
    _configured: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)

    def __post_init__(self) -> None:
        if not self.vector_search:
            self.vector_search = "in_process_exact" if self.exact_below > 0 else "server_hnsw"

    @property
    def ext(self) -> str:
        return _ident(self.schema)

    async def count_vectors(self, identity: str, limit: int) -> int:
        """How many vectors ``identity`` has, counted up to ``limit`` (the scan stops there, so
        the answer costs at most ``limit`` rows whatever the store's size)."""

        async def run(conn: Conn) -> list[Any]:
            cur = await conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM embeddings WHERE identity = %s "
                "AND embedding IS NOT NULL LIMIT %s) s",
                (identity, max(0, int(limit))),
            )
            return list(await cur.fetchall())

        return int((await self._read(run))[0][0])

    def _plan(self, identity: str, dimensions: int) -> _Identity:
        known = self._identities.get(identity)
        if known is not None and known.dimensions == dimensions:
            return known
        digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
        chosen = dimensions <= VECTOR_MAX_DIMENSIONS and self.hnsw_type == "halfvec"
        kind = (
            "halfvec"
            if chosen
            else "vector"
            if dimensions <= VECTOR_MAX_DIMENSIONS
            else "halfvec"
            if dimensions <= HALFVEC_MAX_DIMENSIONS
            else None
        )
        # a chosen halfvec index has its own name: switching storage.hnsw_type builds the other
        # index instead of taking one of the other type for its own (each search's cast matches
        # the index of its process's type, so the two never mix)
        name = f"embeddings_hnsw_{digest}" + ("_half" if chosen else "")
        plan = _Identity(dimensions, kind, None if kind is None else name)
        self._identities[identity] = plan
        return plan

    def _cast(self, plan: _Identity) -> str:
        kind = plan.kind or "vector"
        return f"{self.ext}.{kind}({plan.dimensions})"

    def _query(self, plan: _Identity) -> str:
        """The query parameter in SQL: bound as a ``vector`` (its bytes are float32s, which
        ``halfvec``'s binary input would misread), cast to the index's type."""
        cast = self._cast(plan)
        return f"?::{cast}" if plan.kind in (None, "vector") else f"?::{self.ext}.vector::{cast}"

    async def ensure_index(self, identity: str, dimensions: int) -> str | None:
        """Build the identity's HNSW index if it is missing (``CREATE INDEX CONCURRENTLY``:
        writers go on meanwhile; a large table takes minutes) or invalid (a build that was
        interrupted). Returns the index name, None when the dimensions allow no index."""
        plan = self._plan(identity, dimensions)
        if plan.index is None or plan.ready:
            return plan.index
        name, cast = plan.index, self._cast(plan)
        ops = f"{self.ext}.{plan.kind}_cosine_ops"

        async def build(conn: Conn) -> None:
            valid = await first_value(
                conn,
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = %s AND n.nspname = current_schema()",
                (name,),
            )
            if valid is False:
                log.warning(
                    "pgvector: index %s is invalid (an interrupted build): rebuilding", name
                )
                await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_ident(name)}")
            if valid is not True:
                started = time.perf_counter()
                await conn.execute(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_ident(name)} ON embeddings "
                    f"USING hnsw ((embedding::{cast}) {ops}) "
                    f"WITH (m = {int(self.m)}, ef_construction = {int(self.ef_construction)}) "
                    f"WHERE identity = {_literal(identity)}"
                )
                # the planner's row estimates for the identity filter must see the table as it
                # is (after a bulk import or the move from bytea it may still think it empty and
                # prefer an exact scan with a sort over the index)
                await conn.execute("ANALYZE embeddings")
                log.info("pgvector: built index %s in %.1f s", name, time.perf_counter() - started)

        lock = "(%s, hashtext(current_schema() || '.' || %s))"

        async def run(conn: Conn) -> bool:
            # One builder per index across processes: a second one would find the first's
            # index not valid yet (a build in progress looks like an interrupted one) and drop
            # it, or deadlock with it. The others try again later rather than wait in SQL: a
            # session waiting in a statement holds a snapshot, which the build waits out.
            if not await first_value(
                conn, f"SELECT pg_try_advisory_lock{lock}", (_BUILD_LOCK, name)
            ):
                return False
            try:
                await build(conn)
            finally:
                await conn.execute(f"SELECT pg_advisory_unlock{lock}", (_BUILD_LOCK, name))
            return True

        delay = 0.05
        # autocommit: CONCURRENTLY cannot run in a transaction
        while not await self.db.read(run):
            if delay == 0.05:
                log.info("pgvector: index %s is being built by another session: waiting", name)
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)
        plan.ready = True
        return name

    async def _configure(self, conn: Conn) -> None:
        if conn in self._configured:
            return
        await conn.execute(
            f"SET hnsw.ef_search = {int(self.ef_search)}; SET hnsw.iterative_scan = relaxed_order"
        )
        self._configured.add(conn)

    async def nearest(
        self,
        identity: str,
        dimensions: int,
        query: bytes,
        k: int,
        filters: EpisodeFilters,
        known: Mapping[uuid.UUID, EpisodeCandidate] | None = None,
    ) -> list[NearestRow]:
        """The ``k`` completed episodes (passing ``filters``) whose vectors of ``identity`` are
        nearest the query by cosine, nearest first. A row whose episode is in ``known`` (the
        caller's candidates of the same store version) is not decoded again."""
        if k <= 0:
            return []
        plan = self._plan(identity, dimensions)
        cast = self._cast(plan)
        condition, args = completed(self.dialect, filters)
        sql = (
            f"SELECT {_COLUMNS}, m.embedding::{cast} OPERATOR({self.ext}.<=>) "
            f"{self._query(plan)} AS d, {self.ext}.vector_send(m.embedding), m.truncated "
            "FROM embeddings m JOIN episodes e ON e.episode_id = m.episode_id "
            f"WHERE m.identity = {_literal(identity)} AND m.embedding IS NOT NULL AND {condition} "
            f"ORDER BY d LIMIT {int(k)}"
        ).replace("?", "%s")
        params = (Float32Vector(query), *args)

        async def run(conn: Conn) -> list[Any]:
            await self._configure(conn)
            return list(await (await conn.execute(sql, params, binary=True)).fetchall())

        found = await self._read(run)
        reuse = known or {}
        vectors = float32_rows([r[_WIDTH + 1] for r in found])
        out = [
            NearestRow(
                _candidate(self.dialect, r, reuse),
                1.0 - float(r[_WIDTH]),
                vector,
                bool(r[_WIDTH + 2]),
            )
            for r, vector in zip(found, vectors, strict=True)
        ]
        out.sort(key=lambda n: -n.similarity)  # relaxed order: nearly, not exactly, sorted
        return out

    async def search_with_feedback(
        self,
        identity: str,
        dimensions: int,
        query: bytes,
        k: int,
        filters: EpisodeFilters,
        feedback: int,
        weight: float,
        known: Callable[[int | None], Mapping[uuid.UUID, EpisodeCandidate]],
        *,
        read_version: bool = False,
    ) -> ServerHits:
        """:meth:`nearest`, the query moved toward the first ``feedback`` of those rows by
        ``weight`` (Rocchio: ``q + weight x mean``, re-normalised, as ``retrieval/index.py``'s
        ``rocchio``) and that expanded query's ``k`` nearest, in ONE statement: the server
        computes the expanded query (pgvector's ``avg``, ``+``, ``*`` and ``l2_normalize``)
        and runs the second search itself, so a retrieval makes one round trip. A row of the
        second search already in the first comes back without its columns or vector (the
        first's are reused).

        With ``feedback_pool`` > 0 there is one HNSW scan: the query's nearest ``feedback_pool``
        rows (the pool; at most ``ef_search``, at least ``k``), the first ``k`` of them the
        query's answer, and the expanded query's ``k`` nearest AMONG THE POOL, ranked exactly
        (the expanded query stays near the query: its nearest are mostly the query's own).

        ``read_version``: the same statement reads the store's data version (one round trip
        fewer for a caller that needs it; same snapshot as the rows). ``known`` is called with
        that version (None when not read) and gives the caller's candidates decoded at it: a
        row of a known episode is not decoded again. The LIMITs are literals, so a prepared
        statement can keep PostgreSQL's generic plan instead of planning every execution."""
        if k <= 0:
            return ServerHits([], None, [])
        if feedback <= 0 or weight <= 0:
            hits = await self.nearest(identity, dimensions, query, k, filters, known(None))
            return ServerHits(hits, None, [])
        plan = self._plan(identity, dimensions)
        cast = self._cast(plan)
        op = f"OPERATOR({self.ext}.<=>)"
        condition, args = completed(self.dialect, filters)
        source = (
            "FROM embeddings m JOIN episodes e ON e.episode_id = m.episode_id "
            f"WHERE m.identity = {_literal(identity)} AND m.embedding IS NOT NULL AND {condition}"
        )
        # The second search's own hnsw.ef_search: pgvector reads the setting when an HNSW scan
        # fetches its first row, and the second scan orders by ``moved``'s value, so ``moved``
        # (computed after the first scan ended: it averages that scan's rows) sets it for the
        # rest of the statement; ``is_local``: undone when the statement's transaction ends
        # (reads are autocommit), the session keeps ``ef_search``.
        pooled = self.feedback_pool > 0
        second_ef = self.feedback_ef_search
        local_ef = (
            f", set_config('hnsw.ef_search', '{int(second_ef)}', true) AS ef"
            if second_ef > 0 and second_ef != self.ef_search and not pooled
            else ""
        )
        nulls = ", ".join(["NULL"] * _WIDTH)
        first_search = (
            f"SELECT m.episode_id, m.embedding::{cast} {op} {self._query(plan)} AS d, "
            "m.embedding AS v, "
            f"m.truncated {source} ORDER BY d LIMIT "
        )
        if pooled:
            # the pool: the query's nearest ``feedback_pool`` (at most ``ef_search``: the rows
            # the scan finds without iterating again, and at least ``k``); its first ``k`` are
            # the answer, and the expanded query ranks the pool exactly (no index: it reads
            # the materialised rows). ``d + 0``: a real sort (the iterative scan's order is
            # relaxed, and PostgreSQL 17+ takes a CTE's ORDER BY as its rows' order)
            size = max(k, min(int(self.feedback_pool), int(self.ef_search)))
            with_near = (
                f"WITH pool AS MATERIALIZED ({first_search}{int(size)}), "
                f"near AS MATERIALIZED (SELECT * FROM pool ORDER BY d + 0 LIMIT {int(k)}), "
            )
            second_search = (
                f"far AS MATERIALIZED (SELECT p.episode_id, p.v::{cast} {op} "
                f"(SELECT x FROM moved)::{cast} AS d, p.v, p.truncated FROM pool p "
                f"WHERE (SELECT x FROM moved) IS NOT NULL ORDER BY d LIMIT {int(k)}) "
            )
            second_args: tuple[Any, ...] = ()
        else:
            # the query's nearest (materialised: read by the feedback and the answer)
            with_near = f"WITH near AS MATERIALIZED ({first_search}{int(k)}), "
            # its nearest: the scalar subquery is an init plan, a parameter the HNSW scan
            # orders by
            second_search = (
                f"far AS MATERIALIZED (SELECT m.episode_id, m.embedding::{cast} {op} "
                f"(SELECT x FROM moved)::{cast} AS d, m.embedding AS v, m.truncated {source} "
                f"AND (SELECT x FROM moved) IS NOT NULL ORDER BY d LIMIT {int(k)}) "
            )
            second_args = tuple(args)
        version_row = (
            f" UNION ALL SELECT 3, {_VERSION_SQL}, NULL, NULL, NULL, {nulls}"
            if read_version
            else ""
        )
        rest = (
            # the query moved toward its nearest ``feedback`` rows (``_moved``)
            f"{self._moved(feedback, local_ef)}{second_search}"
            f"SELECT 0, n.episode_id, n.d, {self.ext}.vector_send(n.v), n.truncated, "
            f"{_COLUMNS} FROM near n JOIN episodes e ON e.episode_id = n.episode_id "
            f"UNION ALL SELECT 1, f.episode_id, f.d, CASE WHEN n.episode_id IS NULL THEN "
            f"{self.ext}.vector_send(f.v) END, f.truncated, {_COLUMNS} FROM far f "
            "LEFT JOIN near n ON n.episode_id = f.episode_id "
            "LEFT JOIN episodes e ON e.episode_id = f.episode_id AND n.episode_id IS NULL "
            f"UNION ALL SELECT 2, NULL, NULL, {self.ext}.vector_send(x), NULL, {nulls} "
            f"FROM moved WHERE x IS NOT NULL{version_row}"
        )
        sql = (with_near + rest).replace("?", "%s")
        weights = Float32Vector(array("f", [weight]).tobytes() * dimensions)
        params = (Float32Vector(query), *args, Float32Vector(query), weights, *second_args)
        statements = [(sql, params)]
        if pooled and not args and condition == completed(self.dialect, EpisodeFilters())[0]:
            # no filter but completion: the pool's rows are joined to ``episodes`` lazily
            # (``_lazy_pool``), and the statement above is the fallback when fewer than ``k``
            # of the scanned rows were of completed episodes
            lazy = self._lazy_pool(
                cast, self._query(plan), identity, size, k, feedback, condition, version_row
            )
            lazy_params = (Float32Vector(query), Float32Vector(query), weights)
            statements.insert(0, (lazy.replace("?", "%s"), lazy_params))

        found: list[Any] = []
        for text, values in statements:

            async def run(conn: Conn, text: str = text, values: Any = values) -> list[Any]:
                await self._configure(conn)
                return list(await (await conn.execute(text, values, binary=True)).fetchall())

            found = await self._read(run)
            if sum(1 for r in found if r[0] == 0) >= k:
                break
        found.sort(key=lambda r: int(r[0]))  # the first search's rows, the second's, the rest
        version: int | None = None
        if read_version and found and found[-1][0] == 3:
            version = int(found.pop()[1])
        reuse = known(version)
        first: list[NearestRow] = []
        second: list[NearestRow] = []
        expanded: bytes | None = None
        mine: dict[str, NearestRow] = {}
        # every vector of the statement (the rows', the expanded query's) converted at once
        sent = [r[3] for r in found if r[3] is not None]
        converted = iter(float32_rows(sent))
        for r in found:
            if r[0] == 2:
                expanded = next(converted)
                continue
            row = mine.get(r[1]) if r[0] == 1 and r[3] is None else None
            if row is None:
                candidate = _candidate(self.dialect, r[5:], reuse)
                if r[3] is None:  # (a far row comes without its vector only if near has it)
                    raise ValueError(f"the search's row of episode {r[1]} has no vector")
                vector_bytes = next(converted)
                truncated = bool(r[4])
            else:
                candidate, vector_bytes, truncated = row.candidate, row.vector, row.truncated
            nearest = NearestRow(candidate, 1.0 - float(r[2]), vector_bytes, truncated)
            if r[0] == 0:
                mine[r[1]] = nearest
                first.append(nearest)
            else:
                second.append(nearest)
        first.sort(key=lambda n: -n.similarity)  # relaxed order: nearly, not exactly, sorted
        second.sort(key=lambda n: -n.similarity)
        return ServerHits(first, expanded, second, version)

    def _moved(self, feedback: int, local_ef: str = "") -> str:
        """The ``moved`` CTE of the feedback searches: the query (the first ``?``) plus the
        weights (the second ``?``) times the mean of ``near``'s first ``feedback`` rows,
        normalised (NULL if that is the origin; ``d + 0`` sorts ``near`` for real: its
        relaxed-order rows are not); ``local_ef``: a column that sets the second search's
        ``hnsw.ef_search`` (``search_with_feedback``)."""
        vector = f"{self.ext}.vector"
        return (
            f"moved AS MATERIALIZED (SELECT CASE WHEN {self.ext}.vector_norm(x) > 0 THEN "
            f"{self.ext}.l2_normalize(x) END AS x{local_ef} FROM (SELECT ?::{vector} "
            f"OPERATOR({self.ext}.+) ({self.ext}.avg(f.v::{vector}) "
            f"OPERATOR({self.ext}.*) ?::{vector}) AS x FROM "
            f"(SELECT v FROM near ORDER BY d + 0 LIMIT {int(feedback)}) f) s), "
        )

    def _lazy_pool(
        self,
        cast: str,
        query: str,
        identity: str,
        size: int,
        k: int,
        feedback: int,
        condition: str,
        version_row: str,
    ) -> str:
        """The pooled search of :meth:`search_with_feedback` when the only filter is the
        episode's completion, with ``episodes`` joined only where a row is used: the HNSW scan
        keeps its first ``size`` rows without a join (``scan``); the answer is the first ``k``
        of them, nearest first, whose episodes are completed, looked up in that order and no
        further (``near``: a nested loop under a LIMIT, ~``k`` lookups instead of ``size``);
        the expanded query ranks the scanned rows and looks up the same way (``far``). Equal
        to the joined pool when every scanned row is of a completed episode (embeddings are
        made at completion); the caller falls back to the joined pool when fewer than ``k``
        were. ``query``: the query parameter as the scan compares it (``_query``).
        Parameters: the query, the query again, the feedback weights."""
        op = f"OPERATOR({self.ext}.<=>)"
        near_columns = ", ".join(f"n.{c}" for c in _NAMES)
        # a far row of an episode in ``near`` comes back without its columns and vector
        far_columns = ", ".join(f"CASE WHEN n.id IS NULL THEN f.{c} END" for c in _NAMES)
        nulls = ", ".join(["NULL"] * _WIDTH)
        return (
            # ``o``: a real sort of the relaxed-order rows (a materialised CTE's ORDER BY is
            # taken as its rows' order), and the order the nested loops keep
            f"WITH scan AS MATERIALIZED (SELECT m.episode_id, m.embedding::{cast} {op} "
            f"{query} AS d, m.embedding AS v, m.truncated FROM embeddings m "
            f"WHERE m.identity = {_literal(identity)} AND m.embedding IS NOT NULL "
            f"ORDER BY d LIMIT {int(size)}), "
            f"near AS MATERIALIZED (SELECT s.episode_id AS id, s.d, s.v, s.truncated, {_COLUMNS} "
            f"FROM (SELECT *, d + 0 AS o FROM scan ORDER BY o) s "
            f"JOIN episodes e ON e.episode_id = s.episode_id WHERE {condition} "
            f"ORDER BY s.o LIMIT {int(k)}), "
            f"{self._moved(feedback)}far AS MATERIALIZED (SELECT s.episode_id AS id, s.fd AS d, s.v, s.truncated, "
            f"{_COLUMNS} FROM (SELECT p.*, p.v::{cast} {op} (SELECT x FROM moved)::{cast} AS fd "
            f"FROM scan p WHERE (SELECT x FROM moved) IS NOT NULL ORDER BY fd) s "
            f"JOIN episodes e ON e.episode_id = s.episode_id WHERE {condition} "
            f"ORDER BY s.fd LIMIT {int(k)}) "
            f"SELECT 0, n.id, n.d, {self.ext}.vector_send(n.v), n.truncated, {near_columns} "
            f"FROM near n UNION ALL SELECT 1, f.id, f.d, CASE WHEN n.id IS NULL THEN "
            f"{self.ext}.vector_send(f.v) END, f.truncated, {far_columns} FROM far f "
            "LEFT JOIN near n ON n.id = f.id "
            f"UNION ALL SELECT 2, NULL, NULL, {self.ext}.vector_send(x), NULL, {nulls} "
            f"FROM moved WHERE x IS NOT NULL{version_row}"
        )

    async def vectors(
        self, identity: str, episode_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[bytes, bool]]:
        """The stored vectors (and truncated flags) of these episodes for ``identity``."""
        if not episode_ids:
            return {}

        async def run(conn: Conn) -> list[Any]:
            cur = await conn.execute(
                f"SELECT episode_id, {self.ext}.vector_send(embedding), truncated "
                "FROM embeddings WHERE identity = %s AND episode_id = ANY(%s) "
                "AND embedding IS NOT NULL",
                (identity, [str(i) for i in episode_ids]),
                binary=True,
            )
            return list(await cur.fetchall())

        return {
            uuid.UUID(r[0]): (float32_from_send(r[1]), bool(r[2])) for r in await self._read(run)
        }

    async def _read(self, run: Callable[[Conn], Awaitable[list[Any]]]) -> list[Any]:
        """``run`` on a connection; a failure that says pgvector vanished is reported to the
        store (which chooses its path again) and raised: the caller ranks lexically."""
        try:
            return await self.db.read(run)
        except Exception as exc:
            if self.gone is not None:
                await self.gone(exc)
            raise

    @cached_property
    def dialect(self) -> PgvectorDialect:
        """The store's dialect for this extension schema (made once: every search uses it)."""
        return PgvectorDialect(self.schema)

    async def status(self) -> dict[str, Any]:
        """The HNSW indexes on the embeddings table (name, valid, size, element type), for
        health."""

        async def run(conn: Conn) -> list[Any]:
            cur = await conn.execute(
                "SELECT c.relname, i.indisvalid, pg_relation_size(c.oid), "
                "(SELECT o.opcname FROM pg_opclass o WHERE o.oid = i.indclass[0]) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am a ON a.oid = c.relam "
                "WHERE t.relname = 'embeddings' AND n.nspname = current_schema() "
                "AND a.amname = 'hnsw' ORDER BY c.relname"
            )
            rows = list(await cur.fetchall())
            memory = await conn.execute(
                "SELECT pg_size_bytes(current_setting('shared_buffers')), "
                "current_setting('huge_pages'), current_setting('huge_pages_status', true)"
            )
            return [rows, await memory.fetchone()]

        indexes, (shared_buffers, huge_pages, huge_pages_status) = await self.db.read(run)
        index_bytes = sum(int(r[2]) for r in indexes)
        return {
            "ef_search": self.ef_search,
            "feedback_ef_search": self.feedback_ef_search or self.ef_search,
            "feedback_pool": self.feedback_pool,
            "vector_search": self.vector_search,
            "exact_below": self.exact_below,
            "hnsw_type": self.hnsw_type,
            "indexes": [
                {
                    "name": r[0],
                    "valid": bool(r[1]),
                    "bytes": int(r[2]),
                    "type": str(r[3] or "").removesuffix("_cosine_ops"),
                }
                for r in indexes
            ],
            "server_memory": {
                "shared_buffers_bytes": int(shared_buffers),
                "huge_pages": huge_pages,
                "huge_pages_status": huge_pages_status,  # None before PostgreSQL 17
            },
            "hints": memory_hints(index_bytes, int(shared_buffers), huge_pages_status),
        }
