"""Each store's optional capabilities (``storage/capabilities.py``): what the embedded SQLite
store, Turso, PostgreSQL and the resilience wrapper around them offer, reached one way."""

from __future__ import annotations

from pathlib import Path

import pytest

from self_learning_memory.resilience.outbox import Outbox
from self_learning_memory.resilience.resilient import ResilientStorage
from self_learning_memory.storage.postgres import PostgresStorage
from self_learning_memory.storage.sqlite import SQLiteStorage
from self_learning_memory.storage.step_queries import StepQueries
from self_learning_memory.storage.transfer import (
    PostgresTransfer,
    SQLiteTransfer,
    transfer_adapter,
)

from .support import postgres_schema


async def test_sqlite_offers_its_file_step_queries_maintenance_and_transfer(
    tmp_path: Path,
) -> None:
    async with SQLiteStorage(tmp_path / "memory.db") as store:
        caps = store.capabilities
        assert caps.local_file == tmp_path / "memory.db"
        assert isinstance(caps.step_queries, StepQueries)
        assert caps.maintenance is store
        assert isinstance(caps.transfer, SQLiteTransfer)
        assert caps.batch_writer is store  # the outbox replay's batches
        assert caps.change_feed is None  # one process owns the file: no other writer to hear
        assert caps.resilience is None
        assert await caps.step_queries.first_episode_time() is None  # answers on the store


async def test_the_handles_are_kept_until_the_store_switches_its_connection(
    tmp_path: Path,
) -> None:
    """A search asks for the handles several times: the same ones come back, until the
    connection changes (as a Turso replica's does when it goes back online: ``reconnect``
    puts the online store's connection in place), and then they are on the new one."""
    async with (
        SQLiteStorage(tmp_path / "memory.db") as store,
        SQLiteStorage(tmp_path / "other.db") as other,
    ):
        caps = store.capabilities
        assert store.capabilities is caps
        assert caps.candidate_log is not None
        assert caps.candidate_log.owner is store._db
        old = store._db
        store._db = other._db  # what ``TursoStorage.reconnect`` does
        try:
            switched = store.capabilities
            assert switched is not caps
            assert switched.candidate_log is not None
            assert switched.candidate_log.owner is other._db
            assert store.capabilities is switched
        finally:
            store._db = old


async def test_a_turso_replica_offers_what_the_sqlite_store_does(tmp_path: Path) -> None:
    pytest.importorskip("libsql")
    from self_learning_memory.storage.turso import TursoStorage

    async with TursoStorage(tmp_path / "replica.db") as store:
        caps = store.capabilities
        assert caps.local_file == tmp_path / "replica.db"
        assert caps.maintenance is store
        assert caps.step_queries is not None
        assert await caps.step_queries.first_episode_time() is None
        assert isinstance(caps.transfer, SQLiteTransfer)
        assert caps.change_feed is None
        assert caps.resilience is None


async def test_the_wrapper_passes_the_primarys_handles_and_adds_its_own(tmp_path: Path) -> None:
    primary = SQLiteStorage(tmp_path / "memory.db")
    async with ResilientStorage(primary, outbox=Outbox(tmp_path / "outbox.db")) as wrapped:
        caps = wrapped.capabilities
        assert caps.local_file == primary.path
        assert caps.maintenance is primary
        assert caps.step_queries is not None
        assert caps.transfer is not None
        assert caps.batch_writer is primary  # the replayer writes batches to the primary itself
        assert caps.resilience is wrapped
        assert wrapped.capabilities is caps  # kept while the primary's are the same
        status = await caps.resilience.resilience_status()
        assert status["primary"] == "sqlite"
        assert status["outbox"]["enabled"] is True


@pytest.mark.integration
async def test_postgres_offers_its_change_feed_transfer_and_batches_only() -> None:
    with postgres_schema() as dsn:
        store = PostgresStorage(dsn, listen=False)
        caps = store.capabilities
        assert caps.change_feed is store
        assert isinstance(caps.transfer, PostgresTransfer)
        assert caps.batch_writer is store
        assert isinstance(transfer_adapter(store), PostgresTransfer)
        assert caps.local_file is None
        assert caps.step_queries is None
        assert caps.maintenance is None
        assert caps.resilience is None
        assert store.capabilities is caps  # kept until the vector search or dialect changes
        store.vector_index = object()  # type: ignore[assignment]  # (as initialize sets it)
        assert store.capabilities is not caps
        assert store.capabilities.vector_index is store.vector_index
