"""The retrieval-quality and learning-curve benchmarks still run (tiny sizes, hashing vectors).

Their numbers are not asserted against the targets here (that needs the local model and the
full sizes); only that the records are complete and in range, and that the corpus keeps its
promises (sizes, paraphrased queries).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from benchmarks.learning_curve import run as learning
from benchmarks.learning_curve.agent import memory_plan, used_episodes
from benchmarks.learning_curve.world import FAMILIES as WORLD
from benchmarks.learning_curve.world import Task, all_plans, execute, task_stream
from benchmarks.retrieval_quality import run as quality
from benchmarks.retrieval_quality.corpus import build_corpus, split_families

from self_learning_memory import (
    EmbeddingsConfig,
    MemoryConfig,
    RetrievalConfig,
    SelfLearningMemory,
)


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


def test_quality_benchmark_runs_every_mode(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, RetrievalConfig]] = []
    retrieve = SelfLearningMemory.retrieve_relevant_context

    async def spy(self: SelfLearningMemory, *args: Any, **kwargs: Any) -> Any:
        seen.append((str(kwargs["mode"]), self.config.retrieval))
        return await retrieve(self, *args, **kwargs)

    monkeypatch.setattr(SelfLearningMemory, "retrieve_relevant_context", spy)
    overrides = {"vector_weight": 0.5}
    records = asyncio.run(
        quality.run(
            provider="hashing",
            families=4,
            repeat=1,
            classes=("paraphrase",),
            overrides=overrides,
        )
    )
    names = [(r["name"], r.get("mode")) for r in records]
    assert quality.ALL_MODES == (
        "legacy",
        "bm25",
        "cosine",
        "model_cosine",
        "lexical",
        "vector",
        "hybrid",
    )
    assert names == [
        ("retrieval_corpus", None),
        ("query_embed", None),
        *[("retrieval_quality", m) for m in quality.ALL_MODES],
        ("retrieval_quality_summary", None),
    ]
    by_mode = {r["mode"]: r for r in records[2:9]}
    for r in by_mode.values():
        assert r["n"] == 12
        assert r["class"] == "paraphrase"
        assert r["episodes"] == 20
        for key in ("hit_at_1", "mrr", "recall_at_10", "ndcg_at_10", "ndcg_at_10_graded"):
            assert 0.0 <= r[key] <= 1.0, (key, r[key])
        assert r["median_ms"] > 0
    for mode in ("bm25", "cosine"):
        assert by_mode[mode]["pure_settings"] == quality.PURE_SETTINGS
        assert "overrides" not in by_mode[mode]
    for mode in ("legacy", "lexical", "vector", "hybrid"):
        assert by_mode[mode]["overrides"] == overrides
    assert "overrides" not in by_mode["model_cosine"]  # no memory config: the bare model
    assert by_mode["cosine"]["provider"] == "hashing"
    assert by_mode["model_cosine"]["provider"] == "hashing"
    assert by_mode["bm25"]["provider"] == "none"
    # the pure modes ask lexical / vector with only relevance counting and without the
    # --set overrides; the others ask their own mode with the overrides
    default = RetrievalConfig()
    pure = default.model_copy(update=quality.PURE_SETTINGS)
    asked = {(mode, config.model_dump_json()) for mode, config in seen}
    with_overrides = default.model_copy(update=overrides).model_dump_json()
    assert asked == {
        ("lexical", pure.model_dump_json()),
        ("vector", pure.model_dump_json()),
        *((mode, with_overrides) for mode in ("legacy", "lexical", "vector", "hybrid")),
    }
    assert len(seen) == 12 * 6
    summary = records[-1]
    assert summary["best_single"] in set(quality.ALL_MODES) - {"hybrid"}
    assert summary["best_pure_single"] in {"bm25", "cosine"}
    for against in (summary, summary["vs_best_pure_single"]):
        for metric in ("hit_at_1", "ndcg_at_10"):
            low, high = against[f"{metric}_diff_ci95"]
            assert -1.0 <= low <= high <= 1.0
            assert sum(against["wins_ties_losses"][metric].values()) == 12
        assert isinstance(against["clear_margin"], bool)
    assert summary["vs_best_pure_single"]["mode"] == summary["best_pure_single"]
    assert set(summary["vs"]) == {"cosine", "model_cosine"}
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == records


def test_quality_benchmark_runs_on_the_heldout_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    records = asyncio.run(
        quality.run(
            provider="hashing",
            modes=("cosine", "model_cosine", "hybrid"),
            repeat=1,
            splits=("all", "none"),
            corpus_name="heldout",
        )
    )
    corpus = records[0]
    assert corpus["corpus"] == "heldout"
    assert corpus["episodes"] == 164
    assert corpus["queries"] == 156
    rows = [r for r in records if r["name"] == "retrieval_quality"]
    assert {(r["split"], r["class"]) for r in rows} == {
        (split, group) for split in ("all", "none") for group in ("any", "fail", "all")
    }
    assert next(r for r in rows if r["split"] == "all" and r["class"] == "all")["n"] == 156
    summaries = [r for r in records if r["name"] == "retrieval_quality_summary"]
    assert all(set(s["vs"]) == {"cosine", "model_cosine"} for s in summaries)
    capsys.readouterr()


def test_pure_settings_are_valid_and_restored_even_on_error() -> None:
    pure = RetrievalConfig.model_validate(quality.PURE_SETTINGS)  # within every field's bounds
    assert pure.mmr_lambda == 1.0
    assert pure.feedback_weight == 0.0
    original = RetrievalConfig()
    memory = cast(SelfLearningMemory, SimpleNamespace(config=SimpleNamespace(retrieval=original)))
    inside: list[RetrievalConfig] = []

    def fail() -> None:
        with quality.retrieval_config(memory, pure):
            inside.append(memory.config.retrieval)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert inside == [pure]
    assert memory.config.retrieval is original


def _record(hit: list[float], ndcg: list[float]) -> dict[str, Any]:
    n = len(hit)
    return {
        "n": n,
        "hit_at_1": sum(hit) / n,
        "ndcg_at_10": sum(ndcg) / n,
        "mrr": 0.5,
        "recall_at_10": 0.5,
    }


def test_summary_is_clear_only_when_the_intervals_say_so() -> None:
    level = {"hit_at_1": [1.0, 0.0, 1.0, 1.0], "ndcg_at_10": [0.8, 0.2, 0.9, 0.7]}
    better = {"hit_at_1": [1.0, 1.0, 1.0, 1.0], "ndcg_at_10": [0.9, 0.3, 1.0, 0.8]}
    worse = {"hit_at_1": [0.0, 0.0, 1.0, 0.0], "ndcg_at_10": [0.5, 0.1, 0.6, 0.4]}
    per_query = {"bm25": worse, "cosine": level, "vector": level, "hybrid": better}
    by_mode = {m: _record(q["hit_at_1"], q["ndcg_at_10"]) for m, q in per_query.items()}
    by_mode["vector"]["hit_at_1"] += 0.001  # vector ahead of cosine on the tie-break
    result = quality.summary(by_mode, per_query, "tune", "paraphrase")
    assert (result["split"], result["class"], result["n"]) == ("tune", "paraphrase", 4)
    assert result["best_single"] == "vector"
    assert result["best_pure_single"] == "cosine"
    # differences 0, 1, 0, 0: a resample has k ones with P(k) binomial(4, 1/4), P(k <= 2) =
    # 0.949 < 0.975, so the upper end is 3/4
    assert result["hit_at_1_diff_ci95"] == [0.0, 0.75]
    assert result["ndcg_at_10_diff_ci95"] == [pytest.approx(0.1)] * 2
    assert result["wins_ties_losses"] == {
        "hit_at_1": {"wins": 1, "ties": 3, "losses": 0},
        "ndcg_at_10": {"wins": 4, "ties": 0, "losses": 0},
    }
    assert result["clear_margin"] is True
    assert result["vs_best_pure_single"]["mode"] == "cosine"
    assert result["vs_best_pure_single"]["clear_margin"] is True
    # hybrid no better than vector: not clear, though still ahead of the pure cosine
    per_query["hybrid"] = level
    by_mode["hybrid"] = _record(level["hit_at_1"], level["ndcg_at_10"])
    per_query["cosine"] = worse
    by_mode["cosine"] = _record(worse["hit_at_1"], worse["ndcg_at_10"])
    result = quality.summary(by_mode, per_query)
    assert result["best_single"] == "vector"
    assert result["ndcg_at_10_diff_ci95"] == [0.0, 0.0]
    assert result["clear_margin"] is False
    assert result["vs_best_pure_single"]["clear_margin"] is True
    # without a pure mode there is nothing to compare with
    del by_mode["bm25"], by_mode["cosine"]
    assert quality.summary(by_mode, per_query)["vs_best_pure_single"] is None


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


def test_learning_benchmark_feedback_mode_reports_both_agents_from_the_same_seed() -> None:
    records = asyncio.run(
        learning.run(episodes=20, seeds=(1,), provider="hashing", window=10, feedback=True)
    )
    curve = [r for r in records if r["name"] == "learning_curve"]
    for r in curve:
        assert 0.0 <= r["with_feedback"] <= 1.0
        assert r["feedback_gain"] == pytest.approx(r["with_feedback"] - r["with_memory"], abs=1e-3)
    summary = records[-1]
    assert summary["with_feedback_overall"] == pytest.approx(
        sum(r["with_feedback"] for r in curve) / len(curve), abs=1e-3
    )


async def test_the_feedback_agent_reports_what_it_followed(tmp_path: Path) -> None:
    """The agent's report reaches the store: episodes it followed gain uses."""
    tasks = task_stream(1, 12)
    config = MemoryConfig(embeddings=EmbeddingsConfig(provider="hashing"))
    rng = random.Random(3)
    reported: set[uuid.UUID] = set()
    async with SelfLearningMemory.open(tmp_path, config=config) as memory:
        for task in tasks:
            plan, _, consulted = await memory_plan(memory, task, rng)
            used = used_episodes(task, plan, consulted)
            reported.update(used)
            await learning.record(memory, task, execute(task, plan), used)
        assert reported, "twelve tasks of eight families: some plan followed an episode"
        for eid in reported:
            assert (await memory.episode_usage(eid)).evidence >= 1


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
