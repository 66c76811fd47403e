"""The index benchmarks still run (tiny sizes), with their documented keys and real timings:
``index_append_bench``, ``write_then_retrieve_bench`` and ``index_int8_bench --layouts``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from benchmarks import embeddings_bench, index_append_bench, index_int8_bench
from benchmarks import write_then_retrieve_bench as wtr
from self_learning_memory.retrieval import quantized
from self_learning_memory.retrieval.index import QUANTIZED_MIN


def test_index_append_bench_times_appends_against_whole_copies() -> None:
    record = index_append_bench.bench(QUANTIZED_MIN + 100, appends=5, dims=16)
    assert record["name"] == "index_append"
    assert record["int8_copy"] is quantized.available()
    for key in ("append_p50_ms", "baseline_append_p50_ms", "ratio", "search_p50_ms"):
        assert record[key] > 0, key
    json.dumps(record)


def test_write_then_retrieve_bench_times_the_three_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "40"
    store.mkdir()
    asyncio.run(embeddings_bench.build_store(store, 40))
    (store / "built").write_text("40 episodes\n")
    wtr.main(["--store-dir", str(tmp_path), "--sizes", "40", "--rounds", "2"])
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["n"] == 40
    for way in wtr.WAYS:
        assert 0 < record[f"{way}_p50_ms"] <= record[f"{way}_p90_ms"], way
    assert (store / "built").exists()  # the source store is copied, not written


@pytest.mark.skipif(not quantized.available(), reason="the int8 copy needs onnxruntime")
def test_index_int8_bench_compares_the_two_layouts(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(index_int8_bench.bench_index(QUANTIZED_MIN + 100, rounds=1, layouts=True))
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["query_kind"] for r in lines] == ["plain", "code"]
    for record in lines:
        assert record["name"] == "index_int8_layouts"
        assert record["rows_left_wall_p50_ms"] > 0
        assert record["rows_right_wall_p50_ms"] > 0
        assert record["same_results"] == "100/100"
