"""One URL chooses the durable store (storage.factory.open_store)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from self_learning_memory import MemoryConfig
from self_learning_memory.errors import CapabilityUnavailableError, ConfigurationError
from self_learning_memory.storage.factory import open_store
from self_learning_memory.storage.sqlite import SQLiteStorage


def test_paths_and_sqlite_urls_are_embedded(tmp_path: Path) -> None:
    config = MemoryConfig()
    for url, where in (
        (None, tmp_path / "data"),
        (str(tmp_path / "other"), tmp_path / "other"),
        (f"sqlite:///{tmp_path}/third/memory.db", tmp_path / "third"),
    ):
        storage, cache = open_store(url, tmp_path / "data", config)
        assert isinstance(storage, SQLiteStorage)
        assert storage.path == where / "memory.db"
        assert cache is not None


def test_postgresql_url_gives_postgres_with_a_local_cache(tmp_path: Path) -> None:
    from self_learning_memory.storage.postgres import PostgresStorage

    config = MemoryConfig.model_validate({"storage": {"pool_size": 4}})
    storage, cache = open_store("postgresql+psycopg://u@h/db", tmp_path, config)
    assert isinstance(storage, PostgresStorage)
    assert storage.dsn == "postgresql://u@h/db"
    assert storage._db.max_size == 4
    assert cache is not None
    assert cache.path == tmp_path / "cache"


def test_missing_driver_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name.startswith("self_learning_memory.storage.postgres"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(CapabilityUnavailableError) as raised:
        open_store("postgresql://u@h/db", tmp_path, MemoryConfig())
    assert "pip install 'self-learning-memory[postgres]'" in str(raised.value)


def test_unknown_and_in_memory_urls_are_refused(tmp_path: Path) -> None:
    for url in ("mysql://u@h/db", ":memory:"):
        with pytest.raises(ConfigurationError):
            open_store(url, tmp_path, MemoryConfig())


def test_libsql_url_gives_turso_with_its_replica_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from self_learning_memory.storage.turso import TursoStorage

    monkeypatch.setenv("TURSO_AUTH_TOKEN", "from-env")
    storage, cache = open_store("libsql://db.example.turso.io", tmp_path, MemoryConfig())
    assert isinstance(storage, TursoStorage)
    assert storage.replica_path == tmp_path / "turso-replica.db"
    assert storage.sync_url == "libsql://db.example.turso.io"
    assert storage.auth_token == "from-env"
    assert cache is not None
    config = MemoryConfig.model_validate({"storage": {"auth_token": "from-config"}})
    storage, _ = open_store("libsql://db.example.turso.io", tmp_path, config)
    assert storage.auth_token == "from-config"  # type: ignore[attr-defined]


async def test_memory_on_an_unreachable_turso_starts_degraded_and_works(tmp_path: Path) -> None:
    from self_learning_memory import SelfLearningMemory, SuccessOutcome

    config = MemoryConfig.model_validate({"storage": {"url": "libsql://127.0.0.1:9"}})
    async with SelfLearningMemory.open(tmp_path, config=config) as memory:
        from self_learning_memory.resilience.resilient import ResilientStorage
        from self_learning_memory.storage.turso import TursoStorage

        wrapper = memory.storage  # a remote primary is wrapped by default
        assert isinstance(wrapper, ResilientStorage)
        assert isinstance(wrapper.primary, TursoStorage)
        assert wrapper.primary.degraded is True
        eid = await memory.start_episode("Write to the local replica while Turso is away")
        done = await memory.complete_episode(eid, SuccessOutcome(verdict="ok"))
        assert done.reward is not None
        found = await memory.retrieve_relevant_context("local replica Turso away")
        assert [r.episode.episode_id for r in found] == [eid]
        health = await memory.health()
        assert health["primary_storage"].details.get("degraded") is True
