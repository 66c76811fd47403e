"""The retrieval-quality and learning-curve benchmarks still run (tiny sizes, hashing vectors).

Their numbers are not asserted against the targets here (that needs the local model and the
full sizes); only that the records are complete and in range, and that the corpus keeps its
promises (sizes, paraphrased queries).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from benchmarks.learning_curve import run as learning
from benchmarks.learning_curve.world import FAMILIES as WORLD
from benchmarks.learning_curve.world import Task, all_plans, execute
from benchmarks.retrieval_quality import run as quality
from benchmarks.retrieval_quality.corpus import build_corpus, split_families


def test_full_corpus_meets_its_specification() -> None:
    corpus = build_corpus(7)
    stats = corpus.stats()
    assert stats["families"] >= 40
    assert stats["episodes"] >= 200
    assert stats["queries_by_class"]["paraphrase"] >= 100  # type: ignore[index]
    assert stats["domains"] >= 5
    assert stats["languages"] >= 5
    assert set(stats["outcomes"]) == {"success", "partial_success", "failure"}  # type: ignore[arg-type]
    descriptions = {e.description.lower() for e in corpus.episodes}
    assert not any(q.text.lower() in descriptions for q in corpus.queries)
    assert stats["query_overlap_max"] < 0.5  # type: ignore[operator]  # paraphrases, not copies
    assert build_corpus(7).queries == corpus.queries  # seeded


def test_workload_classes_leave_the_paraphrases_as_they_were() -> None:
    paraphrases = build_corpus(7, classes=("paraphrase",)).queries
    assert build_corpus(7).queries[: len(paraphrases)] == paraphrases
    assert {q.kind for q in paraphrases} == {"paraphrase"}
    assert all(q.key is None for q in paraphrases)


def test_quality_benchmark_runs_every_mode(capsys: pytest.CaptureFixture[str]) -> None:
    records = asyncio.run(
        quality.run(provider="hashing", families=4, repeat=1, classes=("paraphrase",))
    )
    names = [(r["name"], r.get("mode")) for r in records]
    assert names == [
        ("retrieval_corpus", None),
        ("query_embed", None),
        *[("retrieval_quality", m) for m in quality.ALL_MODES],
        ("retrieval_quality_summary", None),
    ]
    for r in records[2:6]:
        assert r["n"] == 12
        assert r["class"] == "paraphrase"
        assert r["episodes"] == 20
        for key in ("hit_at_1", "mrr", "recall_at_10", "ndcg_at_10", "ndcg_at_10_graded"):
            assert 0.0 <= r[key] <= 1.0, (key, r[key])
        assert r["median_ms"] > 0
    assert records[-1]["best_single"] in {"legacy", "lexical", "vector"}
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == records


def test_quality_benchmark_reports_each_class_and_all() -> None:
    records = asyncio.run(
        quality.run(provider="hashing", families=4, repeat=1, modes=("lexical", "hybrid"))
    )
    corpus = records[0]
    assert corpus["queries_by_class"] == {"paraphrase": 12, "error": 8, "identifier": 6, "mixed": 6}
    quality_records = [r for r in records if r["name"] == "retrieval_quality"]
    by = {(r["mode"], r["class"]): r for r in quality_records}
    assert len(by) == len(quality_records) == 2 * 5
    for mode in ("lexical", "hybrid"):
        per_class = [by[mode, c] for c in ("paraphrase", "error", "identifier", "mixed")]
        pooled = by[mode, "all"]
        assert pooled["n"] == sum(r["n"] for r in per_class) == 32
        # the pooled mean is the n-weighted mean of the classes
        weighted = sum(r["hit_at_1"] * r["n"] for r in per_class) / pooled["n"]
        assert pooled["hit_at_1"] == pytest.approx(weighted, abs=0.002)
        assert pooled["samples"] == sum(r["samples"] for r in per_class)
    summaries = {r["class"]: r for r in records if r["name"] == "retrieval_quality_summary"}
    assert set(summaries) == {"paraphrase", "error", "identifier", "mixed", "all"}
    assert all(isinstance(r["hybrid_beats_best_single"], bool) for r in summaries.values())


def test_world_traps_are_what_the_docstring_says() -> None:
    for family in WORLD:
        for framework in family.traps:
            task = Task(family, "any description", framework)
            wins = [
                plan for plan in all_plans(family) if all(e is None for _, e in execute(task, plan))
            ]
            assert len(wins) == 2  # two working tools x the one right order, of six plans


def test_learning_benchmark_runs_and_records_every_window() -> None:
    records = asyncio.run(learning.run(episodes=20, seeds=(1,), provider="hashing", window=10))
    curve = [r for r in records if r["name"] == "learning_curve"]
    assert [r["window"] for r in curve] == ["1-10", "11-20"]
    for r in curve:
        assert 0.0 <= r["with_memory"] <= 1.0
        assert 0.0 <= r["without_memory"] <= 1.0
    assert records[-1]["name"] == "learning_curve_summary"


def test_family_split_is_seeded_disjoint_and_covers_every_domain() -> None:
    corpus = build_corpus(7)
    split = split_families(corpus.families, seed=1)
    assert split["tune"].isdisjoint(split["heldout"])
    assert split["tune"] | split["heldout"] == split["all"] == {f.key for f in corpus.families}
    assert abs(len(split["tune"]) - len(split["heldout"])) <= 1
    domains = {f.domain for f in corpus.families}
    for half in ("tune", "heldout"):
        assert {f.domain for f in corpus.families if f.key in split[half]} == domains
    assert split_families(corpus.families, seed=1) == split
    assert split_families(corpus.families, seed=2) != split


def test_quality_benchmark_reports_each_split(capsys: pytest.CaptureFixture[str]) -> None:
    records = asyncio.run(
        quality.run(
            provider="hashing",
            families=4,
            repeat=1,
            modes=("lexical", "hybrid"),
            splits=("tune", "heldout", "all"),
            classes=("paraphrase",),
        )
    )
    hybrid = {r["split"]: r for r in records if r.get("mode") == "hybrid"}
    assert hybrid["tune"]["n"] + hybrid["heldout"]["n"] == hybrid["all"]["n"] == 12
    summaries = [r["split"] for r in records if r["name"] == "retrieval_quality_summary"]
    assert summaries == ["tune", "heldout", "all"]
    with pytest.raises(ValueError, match="unknown split"):
        asyncio.run(quality.run(provider="none", families=2, repeat=1, splits=("dev",)))
