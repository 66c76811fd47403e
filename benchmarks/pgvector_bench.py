"""Scale-out retrieval with pgvector: 10K, 100K and 1M episodes, next to the embedded store and
the PostgreSQL bytea path, same rows, same queries, same run.

    python -m benchmarks.pgvector_bench [--sizes 10000,100000,1000000] [--template 10000]
        [--queries 200] [--stores sqlite,bytea,pgvector] [--big-stores pgvector]
        [--big-from 1000000] [--rounds 3] [--mix 0.0] [--blas-threads N]
        [--provider hashing|local] [--ef-search 40,100,200,400] [--dsn URL]
        [--hnsw M,EF_CONSTRUCTION] [--retrieval-ef-search 100,250] [--feedback-ef-search N]
        [--keep-schema]

Smoke use: ``--sizes 2000 --template 2000 --rounds 1`` (under a minute).

One PostgreSQL 18 + pgvector 0.8 server (``tests/support/pgvector_server.py``, with memory for
an HNSW build: ``--pg-setting`` adds more) holds two schemas: ``bytea`` (``pgvector="off"``,
vectors scored in process, today's path) and ``pgvector`` (``pgvector="auto"``: vectors in the
``embedding`` column, HNSW index, nearest neighbours from the server). ``--dsn`` uses an
existing server instead (it must have the ``vector`` extension available).

Corpus: ``--template`` synthetic episodes (``benchmarks/synthetic.py``, about 8 steps each) are
written through the public API into an embedded SQLite store with the ``hashing`` embedding
provider (384 dimensions: the MiniLM size; the provider is fast, so the template takes seconds,
not the ~10 ms per episode of MiniLM, and the cost measured here is storing and searching
vectors, not making them). The library's migration (``storage/migrate.py``) copies it into
both PostgreSQL schemas. A bulk loader then replicates it in SQL up to each size, never
through the per-episode API: copy ``k`` of template episode ``t`` gets a new id (``md5(t:k)``
as a UUID), the same description, steps, outcome, tsvector / FTS5 entry and pattern links
(``INSERT ... SELECT`` server-side, one staging table filled with binary ``COPY``), and the
template's vector plus Gaussian noise (norm ``--jitter``, 0.3: cosine ~0.96 to its template)
and ``--mix`` times another random template's vector (0 by default; 0.5 makes the copies
less of a cluster of near-copies, on which HNSW graphs lose navigability at 1M: see
docs/performance.md), re-normalised, so every vector is distinct. The three stores hold the
same rows at every size (``pgvector_load`` counts them). ``--provider local`` uses MiniLM.

Per size and store, a fresh process (so its RSS is its own) opens the memory (default
configuration for its URL, hashing provider, LMDB cache; the cache synchroniser off), runs
each of ``--queries`` queries once (warms the query-vector cache and, on the bytea and embedded
paths, loads the in-process matrix: ``first_pass_s``), then times hybrid
``retrieve_relevant_context`` (limit 5, the in-process result cache cleared before each; its
CPU time per retrieval: ``client_cpu_ms``) and reads ``VmRSS``; below ``--big-from`` each store is measured ``--rounds`` times, interleaved,
and the round with the lowest median is reported with all rounds' medians (the machine's other
load hits them unevenly); ``--blas-threads`` sets OPENBLAS_NUM_THREADS for these processes.
On pgvector the benchmark also counts the HNSW index scans the measuring process made and
captures ``EXPLAIN (ANALYZE, BUFFERS)`` of the store's own nearest-episodes query
(``nearest_plan``). On pgvector the HNSW index is dropped before a bulk load and rebuilt after
with ``vector_index.ensure_index`` (timed: ``hnsw_build``), and ``recall`` compares the
server's 10 nearest (the store's query shape: partial-index predicate, ``ORDER BY embedding::
vector(N) <=> q``, ``hnsw.iterative_scan = relaxed_order``) with an exact numpy scan over the
loaded vectors for each ``--ef-search``, with the plan checked to use the index.

On pgvector, ``--retrieval-ef-search`` times one measuring process per value (its
``retrieval.hnsw_ef_search``; at sizes measured in one round), ``--feedback-ef-search`` sets
``retrieval.hnsw_feedback_ef_search`` of the measuring processes, ``--feedback-pool``
``retrieval.hnsw_feedback_pool``, and ``--keep-schema`` (with
``--dsn``) leaves the loaded schemas in the server and prints their URLs, so more measuring
processes can be timed on a 1M store without loading it again:
``--worker pgvector --worker-dir NEW_DIR --dsn SCHEMA_URL [--retrieval-ef-search N]``.
At 1M, time those after a restart of the server and one discarded warm-up process: right after
the load and the index build the same retrievals cost ~40 % more server CPU (run Q in
docs/performance.md). A measuring process reports the server's ``shared_buffers`` and huge
pages (``server_memory``); the server takes huge pages when the machine has them reserved
(``vm.nr_hugepages``; PostgreSQL's default ``huge_pages = try``).

Prints one JSON line per result.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from benchmarks import synthetic
from benchmarks.scaleout_pg_bench import _drop_schema, schema_url
from self_learning_memory import MemoryConfig, SelfLearningMemory
from self_learning_memory.config import EmbeddingsConfig, StorageConfig
from self_learning_memory.embeddings import EmbeddingProvider, provider_from_config, query_text
from self_learning_memory.storage.factory import DB_FILENAME, open_store

ROOT = Path(__file__).resolve().parent.parent
DIMS = 384  # the hashing provider is given MiniLM's size; the local provider is MiniLM
EMBEDDINGS: dict[str, Any] = {"provider": "hashing", "dimensions": DIMS}  # --provider
TEMPLATE_SEED = 3
QUERY_SEED = 99
NOISE_SEED = 20_261_205
RECALL_K = 10
STAGE_ROWS = 100_000  # rows per staging round
PG_SETTINGS = (
    "shared_buffers=3GB",
    "maintenance_work_mem=4GB",  # the HNSW graph at 1M x 384 fits: built in memory
    "max_parallel_maintenance_workers=2",
    "work_mem=64MB",
    "effective_cache_size=12GB",
    "max_wal_size=16GB",
    "checkpoint_timeout=30min",
)
STORES = ("sqlite", "bytea", "pgvector")


@functools.cache
def provider() -> EmbeddingProvider:
    return provider_from_config(EmbeddingsConfig.model_validate(EMBEDDINGS))


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _config(store: str, url: str | None, sync: bool = False) -> MemoryConfig:
    storage: dict[str, Any] = {"url": url}
    if "pgvector" in StorageConfig.model_fields and store != "sqlite":
        storage["pgvector"] = "off" if store == "bytea" else "auto"
    hnsw = os.environ.get("PGVECTOR_BENCH_HNSW")  # "m,ef_construction" (--hnsw)
    if hnsw and store == "pgvector":
        m, ef_construction = (int(v) for v in hnsw.split(","))
        storage["hnsw_m"], storage["hnsw_ef_construction"] = m, ef_construction
    hnsw_type = os.environ.get("PGVECTOR_BENCH_HNSW_TYPE")  # --hnsw-type
    if hnsw_type and store == "pgvector":
        storage["hnsw_type"] = hnsw_type
    exact_below = os.environ.get("PGVECTOR_BENCH_EXACT_BELOW")  # --exact-below
    if exact_below and store == "pgvector":
        storage["pgvector_exact_below"] = int(exact_below)
    data: dict[str, Any] = {
        "storage": storage,
        "embeddings": EMBEDDINGS,
    }
    ef_search = os.environ.get("PGVECTOR_BENCH_RETRIEVAL_EF")  # --retrieval-ef-search
    if ef_search and store == "pgvector":
        data["retrieval"] = {"hnsw_ef_search": int(ef_search)}
    feedback_ef = os.environ.get("PGVECTOR_BENCH_FEEDBACK_EF")  # --feedback-ef-search
    if feedback_ef and store == "pgvector":
        data.setdefault("retrieval", {})["hnsw_feedback_ef_search"] = int(feedback_ef)
    feedback_pool = os.environ.get("PGVECTOR_BENCH_FEEDBACK_POOL")  # --feedback-pool
    if feedback_pool and store == "pgvector":
        data.setdefault("retrieval", {})["hnsw_feedback_pool"] = int(feedback_pool)
    if not sync:
        data["sync"] = {"enabled": False}
    return MemoryConfig.model_validate(data)


# -- the corpus ------------------------------------------------------------------------------------
def copy_id(template_id: str, k: int) -> str:
    """The id of copy ``k`` of a template episode (copy 0 is the template itself)."""
    if k == 0:
        return template_id
    return str(uuid.UUID(hashlib.md5(f"{template_id}:{k}".encode()).hexdigest()))


@dataclass
class Corpus:
    """The template's episode ids and vectors (in the order of the ``embeddings`` rows), and the
    vectors of every copy loaded so far (for the exact scan)."""

    ids: list[str]
    vectors: np.ndarray
    jitter: float
    mix: float = 0.0
    loaded: list[np.ndarray] = field(default_factory=list)
    loaded_ids: list[str] = field(default_factory=list)

    def copy_vectors(self, k: int) -> np.ndarray:
        if k == 0:
            return self.vectors
        rng = np.random.default_rng([NOISE_SEED, k])
        noise = rng.standard_normal(self.vectors.shape, dtype=np.float32)
        noise *= self.jitter / np.sqrt(DIMS)
        out = self.vectors + noise
        if self.mix:  # a share of another template's vector: a new episode between two
            out += self.mix * self.vectors[rng.permutation(len(self.vectors))]
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)

    def remember(self, k: int, vectors: np.ndarray) -> None:
        self.loaded.append(vectors)
        self.loaded_ids.extend(copy_id(t, k) for t in self.ids)

    def matrix(self) -> np.ndarray:
        if len(self.loaded) > 1:
            self.loaded = [np.concatenate(self.loaded)]
        return self.loaded[0]


async def build_template(directory: Path, count: int) -> float:
    started = time.perf_counter()
    async with SelfLearningMemory.open(directory, config=_config("sqlite", None)) as memory:
        for ep in synthetic.episodes(count, seed=TEMPLATE_SEED):
            eid = await memory.start_episode(ep.description, ep.context, ep.task_type)
            for step in ep.steps:
                await memory.log_step(eid, step)
            await memory.complete_episode(eid, ep.outcome)
    return time.perf_counter() - started


def read_template(db: Path, jitter: float, mix: float = 0.0) -> Corpus:
    with closing_sqlite(db) as conn:
        rows = conn.execute(
            "SELECT episode_id, vector FROM embeddings WHERE identity = ? ORDER BY rowid",
            (provider().identity,),
        ).fetchall()
    ids = [r[0] for r in rows]
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    return Corpus(ids, vectors, jitter, mix)


async def copy_to_postgres(sqlite_dir: Path, url: str, store: str) -> float:
    """The template into a PostgreSQL schema with the library's migration."""
    from self_learning_memory.storage.migrate import migrate, open_url

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        target, _ = open_store(url, Path(tmp), _config(store, url))
        source = open_url(str(sqlite_dir))
        async with source, target:
            report = await migrate(source, target, batch_size=500)
    if report.problems or report.missing_episodes:
        raise RuntimeError(f"migration into {store} did not verify: {report.problems}")
    with psycopg.connect(url, autocommit=True) as conn:  # as after any bulk load
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


# -- bulk loading ----------------------------------------------------------------------------------
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


def _binary_rows(rows: Iterator[tuple[bytes, ...]]) -> Iterator[bytes]:
    """PostgreSQL binary COPY rows (each field already in its binary send format)."""
    for row in rows:
        parts = [struct.pack(">h", len(row))]
        for value in row:
            parts.append(struct.pack(">i", len(value)))
            parts.append(value)
        yield b"".join(parts)


def _pgvector_binary(vec: np.ndarray) -> bytes:
    return struct.pack(">hh", len(vec), 0) + vec.astype(">f4").tobytes()


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _copy_sql(table: str, cols: list[str], extra: dict[str, str]) -> str:
    """Copies of the staged template rows of ``table``: new episode id, ``extra`` column
    values (SQL expressions), every other column as it is."""
    target = ", ".join(f'"{c}"' for c in ["episode_id", *extra, *cols])
    chosen = ", ".join(["s.episode_id", *extra.values(), *(f't."{c}"' for c in cols)])
    return (
        f"INSERT INTO {table} ({target}) SELECT {chosen} "
        f"FROM bench_stage s JOIN {table} t ON t.episode_id = s.template_id"
    )


def _pg_copy_rows(
    conn: psycopg.Connection[Any], table: str, skip: Sequence[str], extra: dict[str, str]
) -> None:
    """``INSERT INTO table SELECT`` the template rows of every staged copy, new ids."""
    cols = [
        c for c in _columns(conn, table) if c != "episode_id" and c not in skip and c not in extra
    ]
    conn.execute(_copy_sql(table, cols, extra))


def pg_vector_column(url: str) -> str:
    """``embedding`` (pgvector) or ``vector`` (bytea) — where this schema keeps vectors."""
    with psycopg.connect(url) as conn:
        return "embedding" if "embedding" in _columns(conn, "embeddings") else "vector"


def pg_hnsw_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = 'embeddings' AND indexdef ILIKE '%% USING hnsw %%'"
    ).fetchall()
    return [str(r[0]) for r in rows]


def pg_grow(url: str, corpus: Corpus, copies: range) -> dict[str, Any]:
    """Add template copies ``copies`` to a PostgreSQL schema in SQL. Drops HNSW indexes first
    (rebuilt after the load, timed)."""
    started = time.perf_counter()
    column = pg_vector_column(url)
    per_round = max(1, STAGE_ROWS // len(corpus.ids))
    with psycopg.connect(url, autocommit=True) as conn:
        dropped = pg_hnsw_indexes(conn)
        for name in dropped:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        vec_type = "public.vector" if column == "embedding" else "bytea"
        conn.execute("DROP TABLE IF EXISTS bench_stage")
        conn.execute(
            f"CREATE UNLOGGED TABLE bench_stage (episode_id text, template_id text, vec {vec_type})"
        )
        for first in range(copies.start, copies.stop, per_round):
            group = range(first, min(copies.stop, first + per_round))
            with conn.transaction():
                conn.execute("TRUNCATE bench_stage")
                with conn.cursor().copy(
                    "COPY bench_stage (episode_id, template_id, vec) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.write(_COPY_HEADER)
                    for k in group:
                        vectors = corpus.copy_vectors(k)
                        encode = (
                            _pgvector_binary
                            if column == "embedding"
                            else (lambda v: v.astype("<f4").tobytes())
                        )
                        rows = (
                            (copy_id(t, k).encode(), t.encode(), encode(vectors[i]))
                            for i, t in enumerate(corpus.ids)
                        )
                        buffer = bytearray()
                        for chunk in _binary_rows(rows):
                            buffer += chunk
                            if len(buffer) > 1 << 22:
                                copy.write(bytes(buffer))
                                buffer.clear()
                        copy.write(bytes(buffer))
                    copy.write(_COPY_TRAILER)
                conn.execute("ANALYZE bench_stage")
                _pg_copy_rows(conn, "episodes", (), {})
                _pg_copy_rows(conn, "steps", (), {})
                _pg_copy_rows(conn, "episode_patterns", (), {})
                vectors_to = {"vector": "NULL", "embedding": "NULL", column: "s.vec"}
                if "embedding" not in _columns(conn, "embeddings"):
                    vectors_to.pop("embedding")
                _pg_copy_rows(
                    conn,
                    "embeddings",
                    (),
                    {"seq": "nextval('embeddings_seq')", **vectors_to},
                )
            # the store's version counter: other processes' caches see a change
        conn.execute("UPDATE data_version SET version = version + 1 WHERE shard = 0")
        conn.execute("DROP TABLE bench_stage")
        loaded = time.perf_counter() - started
        vacuum = time.perf_counter()
        conn.execute("VACUUM ANALYZE episodes, steps, episode_patterns, embeddings")
        vacuum_s = time.perf_counter() - vacuum
        counts = _counts(lambda q: conn.execute(q).fetchone())
    return {
        "load_s": round(loaded, 1),
        "vacuum_s": round(vacuum_s, 1),
        "dropped_indexes": dropped,
        **counts,
    }


def _counts(one: Callable[[str], Any]) -> dict[str, int]:
    """Rows per table after a load: the three stores must agree."""
    out = {}
    for table in ("episodes", "steps", "embeddings"):
        out[table] = int(one(f"SELECT count(*) FROM {table}")[0])
    return out


@contextmanager
def closing_sqlite(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        yield conn
    finally:
        conn.close()


def sqlite_grow(db: Path, corpus: Corpus, copies: range) -> dict[str, Any]:
    """Add template copies to the embedded store's file in SQL (episodes, steps, pattern links,
    FTS5 rows for the new rowids, embeddings)."""
    started = time.perf_counter()
    per_round = max(1, STAGE_ROWS // len(corpus.ids))
    with closing_sqlite(db) as conn:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bench_stage "
            "(episode_id TEXT PRIMARY KEY, template_id TEXT, vec BLOB)"
        )

        def cols(table: str) -> list[str]:
            return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]

        def copy_rows(table: str, extra: dict[str, str], skip: Sequence[str] = ()) -> None:
            names = [c for c in cols(table) if c not in ("episode_id", *skip) and c not in extra]
            conn.execute(_copy_sql(table, names, extra))

        for first in range(copies.start, copies.stop, per_round):
            group = range(first, min(copies.stop, first + per_round))
            conn.execute("BEGIN")
            conn.execute("DELETE FROM bench_stage")
            for k in group:
                vectors = corpus.copy_vectors(k)
                conn.executemany(
                    "INSERT INTO bench_stage VALUES (?, ?, ?)",
                    (
                        (copy_id(t, k), t, vectors[i].astype("<f4").tobytes())
                        for i, t in enumerate(corpus.ids)
                    ),
                )
            copy_rows("episodes", {})
            conn.execute(
                "INSERT INTO episodes_fts (rowid, task_description, steps_text, outcome_text, "
                "reflection_text) SELECT n.rowid, f.task_description, f.steps_text, "
                "f.outcome_text, f.reflection_text FROM bench_stage s "
                "JOIN episodes n ON n.episode_id = s.episode_id "
                "JOIN episodes t ON t.episode_id = s.template_id "
                "JOIN episodes_fts f ON f.rowid = t.rowid"
            )
            copy_rows("steps", {})
            copy_rows("episode_patterns", {})
            copy_rows("embeddings", {"vector": "s.vec"}, skip=("seq",))  # numbered anew
            conn.execute("COMMIT")
        conn.execute("ANALYZE")
        counts = _counts(lambda q: conn.execute(q).fetchone())
    return {"load_s": round(time.perf_counter() - started, 1), **counts}


# -- pgvector: index and recall --------------------------------------------------------------------
async def ensure_index(url: str) -> dict[str, Any]:
    """Build the HNSW index with the store's own ``ensure_index`` (timed)."""
    config = _config("pgvector", url)
    with tempfile.TemporaryDirectory() as tmp:
        storage, _ = open_store(url, Path(tmp), config)
        async with storage:
            health = await storage.health_check()
            backend = health.details.get("vector_backend")
            index = storage.capabilities.vector_index  # type: ignore[attr-defined]
            started = time.perf_counter()
            await index.ensure_index(provider().identity, DIMS)
            seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        names = pg_hnsw_indexes(conn)
        size = conn.execute(
            "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relname = ANY(%s) AND c.relnamespace = current_schema()::regnamespace",
            (names,),
        ).fetchone()
    return {
        "vector_backend": backend,
        "hnsw_build_s": round(seconds, 1),
        "indexes": names,
        "index_mb": round(int(size[0]) / 2**20, 1) if size else None,
    }


def _vector_text(vec: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vec) + "]"


async def query_vectors(count: int) -> np.ndarray:
    texts = [query_text(q, ctx) for q, ctx in synthetic.queries(count, seed=QUERY_SEED)]
    return (await provider().embed(texts)).vectors.astype(np.float32)


def recall(
    url: str, corpus: Corpus, queries: np.ndarray, ef_search: Sequence[int]
) -> list[dict[str, Any]]:
    """The server's HNSW top-10 against the exact top-10 (numpy), per ef_search.

    ``recall_at_10``: the share of the exact 10 ids returned. ``recall_at_10_dist``: the share
    of returned rows at most as far as the exact 10th (times 1 + 1e-3; ann-benchmarks' recall),
    which does not count a tie broken the other way (copies of one template differ by noise
    only, so many rows can sit at nearly the 10th distance) as a miss."""
    matrix = corpus.matrix()
    ids = corpus.loaded_ids
    exact: list[tuple[set[str], float]] = []
    for q in queries:
        scores = matrix @ q
        top = np.argpartition(-scores, RECALL_K)[:RECALL_K]
        exact.append(({ids[i] for i in top}, float(1.0 - scores[top].min())))
    identity = provider().identity
    kind = sql.SQL(os.environ.get("PGVECTOR_BENCH_HNSW_TYPE") or "vector")  # the index's type
    distance = sql.SQL(
        "embedding::public.{}({}) OPERATOR(public.<=>) %s::public.vector::public.{}({})"
    ).format(kind, sql.Literal(DIMS), kind, sql.Literal(DIMS))
    knn = sql.SQL(
        "SELECT episode_id, {} FROM embeddings WHERE identity = {} ORDER BY {} LIMIT {}"
    ).format(distance, sql.Literal(identity), distance, sql.Literal(RECALL_K))
    out = []
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        text = _vector_text(queries[0])
        plan = "\n".join(
            str(r[0]).replace(text, "$q")
            for r in conn.execute(sql.SQL("EXPLAIN ") + knn, (text, text)).fetchall()
        )
        for ef in ef_search:
            conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(ef)))
            hits, near, samples = [], [], []
            for q, (truth, kth) in zip(queries, exact, strict=True):
                text = _vector_text(q)
                started = time.perf_counter_ns()
                rows = conn.execute(knn, (text, text)).fetchall()
                samples.append((time.perf_counter_ns() - started) / 1e6)
                hits.append(len({str(r[0]) for r in rows} & truth) / RECALL_K)
                near.append(sum(float(r[1]) <= kth * (1 + 1e-3) + 1e-6 for r in rows) / RECALL_K)
            p50, p95 = _summary(samples)
            out.append(
                {
                    "ef_search": ef,
                    "queries": len(queries),
                    "recall_at_10": round(float(np.mean(hits)), 4),
                    "recall_at_10_dist": round(float(np.mean(near)), 4),
                    "min_recall": round(float(np.min(hits)), 2),
                    "knn_sql_median_ms": round(p50, 3),
                    "knn_sql_p95_ms": round(p95, 3),
                    "index_scan": "Index Scan using" in plan and "Seq Scan" not in plan,
                    "plan": plan if ef == ef_search[0] else None,
                }
            )
    return out


# -- the measuring process -------------------------------------------------------------------------
def _rss_mb() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def _server_cpu_s(postmaster: int | None) -> float | None:
    """CPU seconds (user + system) of a local server: the postmaster's own and its reaped
    children's, and those of its live children (``/proc``; None when not readable)."""
    if postmaster is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # from the state (field 3)
            pid, ppid = int(entry.name), int(fields[1])
            if pid == postmaster:
                total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
            elif ppid == postmaster:
                total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / ticks


def _postmaster(url: str) -> int | None:
    """The pid of the server's postmaster when it runs on this machine, else None."""
    with psycopg.connect(url) as conn:  # the parent of a live backend
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        return None if row is None else _parent(int(row[0]))


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[1])
    except (OSError, ValueError):
        return None


async def worker(store: str, url: str | None, directory: Path, queries: int) -> dict[str, Any]:
    """Open the memory, warm the query vectors, time hybrid retrieval, read RSS."""
    base = _rss_mb()
    asked = synthetic.queries(queries, seed=QUERY_SEED)
    async with SelfLearningMemory.open(directory, config=_config(store, url)) as memory:
        health = await memory.storage.health_check()
        began = time.perf_counter()
        for text, context in asked:  # query vectors cached; the in-process index loaded
            await memory.retrieve_relevant_context(text, context, limit=5, mode="hybrid")
        first_pass = time.perf_counter() - began
        samples, skipped = [], 0
        postmaster = _postmaster(url) if url is not None and store != "sqlite" else None
        server_cpu = _server_cpu_s(postmaster)
        cpu = time.process_time()
        for text, context in asked:
            memory._query_cache.clear()  # measure the store, not the in-process result cache
            started = time.perf_counter_ns()
            found = await memory.retrieve_relevant_context(text, context, limit=5, mode="hybrid")
            samples.append((time.perf_counter_ns() - started) / 1e6)
            if found and "lexical:skipped" in found[0].provenance:
                skipped += 1
        cpu = time.process_time() - cpu  # the measuring process's own CPU, all threads
        server_after = _server_cpu_s(postmaster)
        rss = _rss_mb()
        indexed = len(memory.vectors.index) if memory.vectors is not None else None
        regime = getattr(memory.vectors, "regime", None)  # in_process_exact / server_hnsw
        plan = await _explain_nearest(memory, *asked[0]) if store == "pgvector" else None
    p50, p95 = _summary(samples)
    return {
        "median_ms": round(p50, 3),
        "p95_ms": round(p95, 3),
        "client_cpu_ms": round(cpu * 1000 / len(samples), 3),
        # the whole server's CPU per timed retrieval (a server of its own: only this process)
        "server_cpu_ms": None
        if server_cpu is None or server_after is None
        else round((server_after - server_cpu) * 1000 / len(samples), 3),
        "load_1m": _load(),
        "samples": len(samples),
        "full_text_skipped": skipped,
        "first_pass_s": round(first_pass, 2),
        "rss_mb": rss.get("VmRSS"),
        "peak_rss_mb": rss.get("VmHWM"),
        "rss_before_open_mb": base.get("VmRSS"),
        "in_process_vectors": indexed,
        "vector_search": regime,
        "vector_backend": health.details.get("vector_backend", "sqlite"),
        # shared_buffers and huge pages as the server runs (health's pgvector details)
        "server_memory": health.details.get("pgvector", {}).get("server_memory"),
        "nearest_plan": plan,
    }


class _NoRows:
    async def fetchall(self) -> list[Any]:
        return []


async def _explain_nearest(memory: SelfLearningMemory, text: str, context: Any) -> str | None:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the store's own nearest-episodes query for one
    retrieval (the statement is caught on its way to the server; that retrieval gets no
    vector hits and is not timed)."""
    index: Any = memory.storage.capabilities.vector_index
    if index is None:
        return None
    db, plans = index.db, []
    original = db.read

    class Explaining:
        def __init__(self, conn: Any) -> None:
            self._conn = conn

        async def execute(self, query: str, params: Any = None, **kw: Any) -> Any:
            if "ORDER BY d LIMIT" not in query:
                return await self._conn.execute(query, params, **kw)
            cur = await self._conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params)
            lines = [str(r[0]) for r in await cur.fetchall()]
            plans.append(
                "\n".join(line if len(line) < 300 else line[:300] + "..." for line in lines)
            )
            return _NoRows()

    async def read(fn: Any) -> Any:
        return await original(lambda conn: fn(Explaining(conn)))

    db.read = read
    try:
        memory._query_cache.clear()
        await memory.retrieve_relevant_context(text, context, limit=5, mode="hybrid")
    finally:
        del db.read
    return plans[0] if plans else None


def index_use(url: str) -> dict[str, int]:
    """Scans of the HNSW indexes and sequential scans of ``embeddings`` so far (statistics)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE i.schemaname = current_schema() AND a.amname = 'hnsw'), "
            "(SELECT coalesce(seq_scan, 0) FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = 'embeddings')"
        ).fetchone()
    assert row is not None
    return {"hnsw_scans": int(row[0]), "embeddings_seq_scans": int(row[1])}


def measure(
    store: str,
    url: str | None,
    directory: Path,
    queries: int,
    blas_threads: int | None = None,
    ef_search: int | None = None,
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    if ef_search is not None:  # retrieval.hnsw_ef_search of the measuring process
        env["PGVECTOR_BENCH_RETRIEVAL_EF"] = str(ef_search)
    if blas_threads is not None:  # OpenBLAS threads stall on busy cores (see the docs)
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(blas_threads)
    args = [sys.executable, "-m", "benchmarks.pgvector_bench", "--worker", store]
    args += ["--worker-dir", str(directory), "--queries", str(queries)]
    args += ["--provider", str(EMBEDDINGS["provider"])]
    if url is not None:
        args += ["--dsn", url]
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{store} worker failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if store == "pgvector":
        result["hnsw_ef_search"] = ef_search  # None: the library's default
    return result


# -- the run ---------------------------------------------------------------------------------------
@contextmanager
def server(dsn: str | None, settings: Sequence[str]) -> Iterator[str]:
    if dsn is not None:
        yield dsn
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from support.pgvector_server import pgvector_server

    with pgvector_server(settings=(*PG_SETTINGS, *settings)) as running:
        yield running.dsn


def _create_schema(dsn: str, name: str) -> str:
    schema = f"slm_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema


async def run(args: argparse.Namespace) -> None:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    template = min(args.template, sizes[0])
    if any(size % template for size in sizes):
        raise SystemExit(f"every size must be a multiple of the template ({template})")
    stores = [s for s in args.stores.split(",") if s]
    ef_search = [int(e) for e in args.ef_search.split(",")]
    retrieval_ef: list[int | None] = (
        [int(e) for e in args.retrieval_ef_search.split(",")]
        if args.retrieval_ef_search
        else [None]
    )
    big_stores = [s for s in args.big_stores.split(",") if s]
    with ExitStack() as stack:
        dsn = stack.enter_context(server(args.dsn, args.pg_setting))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pgv-bench-")))
        sqlite_dir = tmp / "sqlite"
        build_s = await build_template(sqlite_dir, template)
        corpus = read_template(sqlite_dir / DB_FILENAME, args.jitter, args.mix)
        corpus.remember(0, corpus.vectors)
        emit(
            {
                "name": "pgvector_template",
                "episodes": template,
                "build_s": round(build_s, 1),
                "episodes_per_s": round(template / build_s, 1),
                "provider": provider().identity,
                "jitter": args.jitter,
                "mix": args.mix,
            }
        )
        urls: dict[str, str] = {}
        for store in ("bytea", "pgvector"):
            if store in stores:
                schema = _create_schema(dsn, store)
                if args.dsn is not None and not args.keep_schema:  # ours goes with the server
                    stack.callback(_drop_schema, dsn, schema)
                if args.keep_schema:
                    emit(
                        {"name": "pgvector_schema", "store": store, "url": schema_url(dsn, schema)}
                    )
                urls[store] = schema_url(dsn, schema)
                seconds = await copy_to_postgres(sqlite_dir, urls[store], store)
                emit(
                    {
                        "name": "pgvector_template_copy",
                        "store": store,
                        "migrate_s": round(seconds, 1),
                    }
                )
        if "pgvector" in urls and pg_vector_column(urls["pgvector"]) != "embedding":
            emit({"name": "pgvector_missing", "note": "no embedding column: pgvector path absent"})
            stores.remove("pgvector")
        query_matrix = await query_vectors(args.queries)
        have = dict.fromkeys(stores, template)  # episodes in each store
        remembered = template
        order = [s for s in ("pgvector", "bytea", "sqlite") if s in stores]
        for size in sizes:
            if remembered < size:  # the vectors of the copies, for the exact scan
                for k in range(remembered // template, size // template):
                    corpus.remember(k, corpus.copy_vectors(k))
                remembered = size
            active = [s for s in order if size < args.big_from or s in big_stores]
            rounds = args.rounds if size < args.big_from else 1
            rounds_of: dict[str, list[dict[str, Any]]] = {s: [] for s in active}
            results: dict[str, dict[str, Any]] = {}

            def finish(
                store: str,
                size: int = size,
                rounds_of: dict[str, list[dict[str, Any]]] = rounds_of,
                results: dict[str, dict[str, Any]] = results,
            ) -> None:
                # the round with the lowest median: the least disturbed by other processes
                done = rounds_of[store]
                best = min(done, key=lambda r: r["median_ms"])
                results[store] = best
                emit(
                    {
                        "name": "pgvector_retrieval",
                        "store": store,
                        "n": size,
                        "mode": "hybrid",
                        **best,
                        "rounds": len(done),
                        "round_medians_ms": [r["median_ms"] for r in done],
                        "round_p95s_ms": [r["p95_ms"] for r in done],
                        "load_1m": _load(),
                    }
                )

            def measured(
                store: str, size: int = size, ef: int | None = retrieval_ef[0]
            ) -> dict[str, Any]:
                directory = sqlite_dir if store == "sqlite" else tmp / f"cache-{store}-{size}"
                before = index_use(urls[store]) if store == "pgvector" else {}
                result = measure(
                    store, urls.get(store), directory, args.queries, args.blas_threads, ef
                )
                if before:
                    after = index_use(urls[store])
                    result.update({k: after[k] - before[k] for k in after})
                return result

            for store in active:  # pgvector first: at 1M the others may not fit the time
                copies = range(have[store] // template, size // template)
                if copies:
                    if store == "sqlite":
                        loaded = sqlite_grow(sqlite_dir / DB_FILENAME, corpus, copies)
                    else:
                        loaded = pg_grow(urls[store], corpus, copies)
                    have[store] = size
                    emit({"name": "pgvector_load", "store": store, "n": size, **loaded})
                if store == "pgvector":
                    built = await ensure_index(urls[store])
                    emit({"name": "pgvector_hnsw_build", "n": size, **built, "load_1m": _load()})
                    for row in recall(urls[store], corpus, query_matrix, ef_search):
                        emit({"name": "pgvector_recall", "n": size, **row})
                if rounds == 1:
                    rounds_of[store].append(measured(store))
                    finish(store)
                    if store == "pgvector":  # the other --retrieval-ef-search values
                        for ef in retrieval_ef[1:]:
                            rounds_of[store] = [measured(store, ef=ef)]
                            finish(store)
            if rounds > 1:  # stores interleaved, so a busy spell hits all of them alike
                for _ in range(rounds):
                    for store in active:
                        rounds_of[store].append(measured(store))
                for store in active:
                    finish(store)
            if "pgvector" in results and "bytea" in results:
                pgv, base = results["pgvector"], results["bytea"]
                emit(
                    {
                        "name": "pgvector_vs_bytea",
                        "n": size,
                        "median_ms": pgv["median_ms"],
                        "p95_ms": pgv["p95_ms"],
                        "baseline": "bytea path (same run, same rows)",
                        "baseline_median_ms": base["median_ms"],
                        "baseline_p95_ms": base["p95_ms"],
                        "ratio": round(pgv["median_ms"] / base["median_ms"], 2),
                        "rss_mb": pgv["rss_mb"],
                        "baseline_rss_mb": base["rss_mb"],
                    }
                )
            skipped = [s for s in stores if s not in active]
            if skipped:
                emit({"name": "pgvector_skipped", "n": size, "stores": skipped})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--template", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--big-stores", default="pgvector", help="stores measured at --big-from")
    parser.add_argument("--big-from", type=int, default=1_000_000)
    parser.add_argument("--ef-search", default="40,100,200,400", help="for the recall")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measuring processes per store below --big-from"
    )
    parser.add_argument(
        "--mix", type=float, default=0.0, help="share of another template's vector in a copy"
    )
    parser.add_argument(
        "--blas-threads", type=int, default=None, help="OPENBLAS_NUM_THREADS of the measuring"
    )
    parser.add_argument("--jitter", type=float, default=0.3)
    parser.add_argument("--dsn", default=None, help="an existing server (default: start one)")
    parser.add_argument("--pg-setting", action="append", default=[], help="name=value")
    parser.add_argument("--provider", choices=("hashing", "local"), default="hashing")
    parser.add_argument(
        "--hnsw", default=None, help="m,ef_construction of the pgvector index (default 16,64)"
    )
    parser.add_argument(
        "--hnsw-type",
        choices=("vector", "halfvec"),
        default=None,
        help="storage.hnsw_type of the pgvector store: the index's element type (default: the "
        "library's)",
    )
    parser.add_argument(
        "--exact-below",
        default=None,
        help="storage.pgvector_exact_below of the pgvector store (default: the library's; "
        "0: the server's search at every size)",
    )
    parser.add_argument(
        "--retrieval-ef-search",
        default=None,
        help="retrieval.hnsw_ef_search of the pgvector measuring processes, comma-separated: "
        "one timed process per value at sizes measured in one round (default: the library's)",
    )
    parser.add_argument(
        "--feedback-ef-search",
        type=int,
        default=None,
        help="retrieval.hnsw_feedback_ef_search of the pgvector measuring processes "
        "(default: the library's)",
    )
    parser.add_argument(
        "--feedback-pool",
        type=int,
        default=None,
        help="retrieval.hnsw_feedback_pool of the pgvector measuring processes "
        "(default: the library's; 0: a second HNSW search)",
    )
    parser.add_argument(
        "--keep-schema",
        action="store_true",
        help="with --dsn: leave the schemas in the server (their URLs are printed), to measure "
        "again with --worker",
    )
    parser.add_argument("--worker", choices=STORES, help=argparse.SUPPRESS)
    parser.add_argument("--worker-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hnsw:  # read by _config, in this process and in the measuring workers
        os.environ["PGVECTOR_BENCH_HNSW"] = args.hnsw
    if args.hnsw_type:  # read by _config and recall, here and in the measuring workers
        os.environ["PGVECTOR_BENCH_HNSW_TYPE"] = args.hnsw_type
    if args.exact_below is not None:
        os.environ["PGVECTOR_BENCH_EXACT_BELOW"] = str(int(args.exact_below))
    if args.feedback_ef_search is not None:  # read by _config in the measuring workers
        os.environ["PGVECTOR_BENCH_FEEDBACK_EF"] = str(args.feedback_ef_search)
    if args.feedback_pool is not None:  # read by _config in the measuring workers
        os.environ["PGVECTOR_BENCH_FEEDBACK_POOL"] = str(args.feedback_pool)
    if args.worker and args.retrieval_ef_search:  # a worker started by hand on a kept schema
        os.environ["PGVECTOR_BENCH_RETRIEVAL_EF"] = str(int(args.retrieval_ef_search))
    if args.provider == "local":  # MiniLM: semantic vectors, ~10 ms per episode to make
        EMBEDDINGS.clear()
        EMBEDDINGS["provider"] = "local"
    if args.worker:
        result = asyncio.run(worker(args.worker, args.dsn, args.worker_dir, args.queries))
        print(json.dumps(result), flush=True)
        return 0
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
