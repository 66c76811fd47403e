"""The client-side decoding of pgvector search rows (vectors converted together equal the
row-by-row conversion) and the server memory hints. Pure functions, no server; here rather than
in ``tests/unit`` because the pgvector module needs the postgres extra."""

from __future__ import annotations

import struct
import uuid

import numpy as np
import pytest

from self_learning_memory.retrieval.server_vectors import _vectors
from self_learning_memory.storage.postgres.pgvector import (
    _uuid,
    float32_from_send,
    float32_rows,
    memory_hints,
)


def _send(values: np.ndarray) -> bytes:
    """What ``vector_send`` writes: int16 dimensions, int16 unused, big-endian float4s."""
    return struct.pack(">HH", len(values), 0) + values.astype(">f4").tobytes()


@pytest.mark.parametrize("dims", [1, 3, 384])
def test_rows_converted_together_equal_one_by_one(dims: int) -> None:
    rng = np.random.default_rng(dims)
    raws = [_send(rng.standard_normal(dims).astype(np.float32)) for _ in range(7)]
    together = float32_rows(raws)
    assert together == [float32_from_send(r) for r in raws]
    assert np.array_equal(np.frombuffer(together[2], np.float32), np.frombuffer(raws[2][4:], ">f4"))


def test_rows_of_mixed_lengths_are_converted_one_by_one() -> None:
    raws = [_send(np.arange(3, dtype=np.float32)), _send(np.arange(5, dtype=np.float32))]
    assert float32_rows(raws) == [float32_from_send(r) for r in raws]
    assert float32_rows([]) == []


def test_vectors_read_together_equal_one_by_one() -> None:
    rng = np.random.default_rng(1)
    raws = [rng.standard_normal(8).astype(np.float32).tobytes() for _ in range(4)]
    for got, raw in zip(_vectors(raws), raws, strict=True):
        assert np.array_equal(got, np.frombuffer(raw, np.float32))
    mixed = [raws[0], raws[1][:16]]
    assert [len(v) for v in _vectors(mixed)] == [8, 4]


def test_episode_ids_parse_once_and_stay_equal() -> None:
    text = str(uuid.uuid4())
    assert _uuid(text) == uuid.UUID(text)
    assert _uuid(text) is _uuid(text)


def test_memory_hints_name_what_to_change() -> None:
    mb = 2**20
    assert memory_hints(100 * mb, 3072 * mb, "off") == []  # small: not worth a word
    assert memory_hints(2000 * mb, 3072 * mb, "on") == []
    assert memory_hints(2000 * mb, 3072 * mb, None) == []  # before PostgreSQL 17: unknown
    (huge,) = memory_hints(2000 * mb, 3072 * mb, "off")
    assert "vm.nr_hugepages" in huge
    both = memory_hints(2000 * mb, 128 * mb, "off")
    assert len(both) == 2
    assert "2000 MB" in both[0]
    assert "128 MB" in both[0]
