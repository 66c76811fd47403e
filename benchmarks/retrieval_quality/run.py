"""Run the retrieval-quality benchmark: record the corpus, ask every query in every mode.

    python -m benchmarks.retrieval_quality [--provider local|hashing|none] [--modes ...]
                                           [--families N] [--seed 7] [--repeat 3]
                                           [--set mmr_lambda=1.0 ...]
                                           [--split tune|heldout|all[,...]] [--split-seed 1]
                                           [--classes paraphrase,error,identifier,mixed]

Prints JSON lines: ``retrieval_corpus`` (what was recorded), ``query_embed`` (the query
embedding time, measured apart: query vectors are computed once before the timed passes),
one ``retrieval_quality`` per mode (hit@1, MRR, recall@10, nDCG@10, outcome-graded nDCG@10,
latency p50/p95 of retrieve_relevant_context with the query cache cleared before every call),
and ``retrieval_quality_summary`` (hybrid against the best single signal, the targets).

Queries come in classes (``corpus.py``, ``workload.py``): ``paraphrase`` (the task in other
words), ``error`` (a pasted error message), ``identifier`` (a command or identifier plus a few
task words) and ``mixed`` (a paraphrase plus one identifier). Every quality and summary record
names its ``class``; ``class: "all"`` pools every query asked. The targets are the issue's, set
for the paraphrase queries; the summary says for every class whether hybrid beats the best single
signal.

``--split`` chooses whose queries are asked: the families are halved (seeded, stratified by
domain) into ``tune`` and ``heldout``; ranking changes are tuned on ``tune`` and kept only if
they help on ``heldout`` too. Several splits (``--split tune,heldout,all``) are measured from
the same store and timed passes; every quality and summary record names its split.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from self_learning_memory import EmbeddingsConfig, MemoryConfig, SelfLearningMemory

from .corpus import SPLITS, Corpus, build_corpus, split_families
from .metrics import mean_metrics
from .workload import QUERY_CLASSES

__all__ = ["main", "run"]

ALL_MODES = ("legacy", "lexical", "vector", "hybrid")
TARGET_HIT_AT_1 = 0.80
TARGET_NDCG_AT_10 = 0.70
K = 10
Run = tuple[list[int], dict[int, float], dict[int, float]]
ALL = "all"  # the class of a record over every query asked


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def record_corpus(memory: SelfLearningMemory, corpus: Corpus) -> dict[uuid.UUID, int]:
    """Record every episode as an agent would; returns episode id -> index in the corpus."""
    ids: dict[uuid.UUID, int] = {}
    for index, spec in enumerate(corpus.episodes):
        eid = await memory.start_episode(spec.description, spec.context, spec.task_type)
        for step in spec.steps:
            await memory.log_step(eid, step)
        await memory.complete_episode(eid, spec.outcome)
        ids[eid] = index
    return ids


async def run(
    *,
    provider: str = "local",
    modes: tuple[str, ...] = ALL_MODES,
    seed: int = 7,
    families: int | None = None,
    repeat: int = 3,
    data_dir: Path | None = None,
    overrides: dict[str, float] | None = None,
    splits: tuple[str, ...] = ("all",),
    split_seed: int = 1,
    classes: tuple[str, ...] = QUERY_CLASSES,
) -> list[dict[str, Any]]:
    """Build the corpus in a fresh store and measure every mode; returns the records."""
    records: list[dict[str, Any]] = []

    def out(record: dict[str, Any]) -> None:
        records.append(record)
        emit(record)

    corpus = build_corpus(seed, families=families, classes=classes)
    members = split_families(corpus.families, split_seed)
    for name in splits:
        if name not in members:
            raise ValueError(f"unknown split {name!r}: choose from {', '.join(SPLITS)}")
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        directory = data_dir or Path(tmp)
        config = MemoryConfig(embeddings=EmbeddingsConfig(provider=provider))  # type: ignore[arg-type]
        config.retrieval = config.retrieval.model_copy(update=overrides or {})
        async with SelfLearningMemory.open(directory, config=config) as memory:
            started = time.perf_counter()
            ids = await record_corpus(memory, corpus)
            out(
                {
                    "name": "retrieval_corpus",
                    "seed": seed,
                    "provider": provider,
                    "record_s": round(time.perf_counter() - started, 2),
                    **corpus.stats(),
                }
            )
            if memory.vectors is not None:
                embed_ms = []
                for q in corpus.queries:
                    t0 = time.perf_counter()
                    await memory.vectors.query_vector(q.text, q.context)
                    embed_ms.append((time.perf_counter() - t0) * 1000)
                p50, p95 = _ms(embed_ms)
                out(
                    {
                        "name": "query_embed",
                        "provider": provider,
                        "n": len(embed_ms),
                        "median_ms": round(p50, 3),
                        "p95_ms": round(p95, 3),
                    }
                )
            modes = tuple(
                m for m in modes if memory.vectors is not None or m in ("legacy", "lexical")
            )
            kinds = [c for c in classes if any(q.kind == c for q in corpus.queries)]
            groups = [*kinds, ALL] if len(kinds) > 1 else kinds
            by_group: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
            wanted = frozenset().union(*(members[name] for name in splits))
            queries = [q for q in corpus.queries if q.family in wanted]
            for mode in modes:
                runs: list[tuple[str, str, Run]] = []
                latencies: dict[str, list[float]] = {c: [] for c in kinds}
                for attempt in range(repeat):
                    for q in queries:
                        memory._query_cache.clear()  # measure retrieval, not the result cache
                        t0 = time.perf_counter()
                        results = await memory.retrieve_relevant_context(
                            q.text, q.context, K, mode=mode
                        )
                        latencies[q.kind].append((time.perf_counter() - t0) * 1000)
                        if attempt:
                            continue
                        ranked = [ids[r.episode.episode_id] for r in results]
                        binary = {
                            i: 1.0 for i, e in enumerate(corpus.episodes) if e.family == q.family
                        }
                        graded = {
                            i: float(e.grade)
                            for i, e in enumerate(corpus.episodes)
                            if e.family == q.family
                        }
                        runs.append((q.family, q.kind, (ranked, binary, graded)))
                latencies[ALL] = [ms for c in kinds for ms in latencies[c]]
                for name in splits:
                    for group in groups:
                        chosen = [
                            r
                            for family, kind, r in runs
                            if family in members[name] and group in (kind, ALL)
                        ]
                        if not chosen:
                            continue
                        metrics = {k: round(v, 3) for k, v in mean_metrics(chosen, K).items()}
                        p50, p95 = _ms(latencies[group])
                        record = {
                            "name": "retrieval_quality",
                            "mode": mode,
                            "split": name,
                            "class": group,
                            "provider": provider if mode in ("vector", "hybrid") else "none",
                            "n": len(chosen),
                            "episodes": len(corpus.episodes),
                            **metrics,
                            "median_ms": round(p50, 3),  # over every query of the class asked
                            "p95_ms": round(p95, 3),
                            "samples": len(latencies[group]),
                            **({"overrides": overrides} if overrides else {}),
                        }
                        by_group.setdefault((name, group), {})[mode] = record
                        out(record)
    for (name, group), by_mode in by_group.items():
        if "hybrid" in by_mode and len(by_mode) > 1:
            out(summary(by_mode, name, group))
    return records


def summary(
    by_mode: dict[str, dict[str, Any]], split: str = "all", group: str = ALL
) -> dict[str, Any]:
    """Hybrid against the best single signal (by nDCG@10, then hit@1) of one split and class;
    ``hybrid_beats_best_single`` needs a higher nDCG@10 and no lower hit@1 than that mode."""
    hybrid = by_mode["hybrid"]
    singles = {m: r for m, r in by_mode.items() if m != "hybrid"}
    best = max(singles, key=lambda m: (singles[m]["ndcg_at_10"], singles[m]["hit_at_1"]))
    return {
        "name": "retrieval_quality_summary",
        "split": split,
        "class": group,
        "n": hybrid["n"],
        "best_single": best,
        "hybrid_beats_best_single": hybrid["ndcg_at_10"] > singles[best]["ndcg_at_10"]
        and hybrid["hit_at_1"] >= singles[best]["hit_at_1"],
        # the strictest reading: hybrid against the best single mode of each metric on its own
        "per_metric": {
            metric: {
                "best_single": (top := max(singles, key=lambda m: singles[m][metric])),
                "margin": round(hybrid[metric] - singles[top][metric], 3),
            }
            for metric in ("hit_at_1", "mrr", "recall_at_10", "ndcg_at_10")
        },
        "hit_at_1_margin": round(hybrid["hit_at_1"] - singles[best]["hit_at_1"], 3),
        "mrr_margin": round(hybrid["mrr"] - singles[best]["mrr"], 3),
        "ndcg_at_10_margin": round(hybrid["ndcg_at_10"] - singles[best]["ndcg_at_10"], 3),
        "target_hit_at_1": TARGET_HIT_AT_1,
        "target_ndcg_at_10": TARGET_NDCG_AT_10,
        "target_met": hybrid["hit_at_1"] >= TARGET_HIT_AT_1
        and hybrid["ndcg_at_10"] >= TARGET_NDCG_AT_10,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--provider", default="local", choices=["local", "hashing", "none"])
    parser.add_argument("--modes", default=",".join(ALL_MODES))
    parser.add_argument("--families", type=int, default=None, help="use the first N families")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per mode")
    parser.add_argument("--quick", action="store_true", help="one timed pass")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a RetrievalConfig weight, e.g. --set mmr_lambda=1.0",
    )
    parser.add_argument(
        "--split",
        default="all",
        help="whose queries to ask: tune, heldout, all, or several comma-separated",
    )
    parser.add_argument("--split-seed", type=int, default=1, help="seed of the family split")
    parser.add_argument(
        "--classes",
        default=",".join(QUERY_CLASSES),
        help="query classes to ask, comma-separated: " + ", ".join(QUERY_CLASSES),
    )
    args = parser.parse_args(argv)
    overrides = {k: float(v) for k, v in (item.split("=", 1) for item in args.set)}
    asyncio.run(
        run(
            provider=args.provider,
            modes=tuple(m for m in args.modes.split(",") if m),
            seed=args.seed,
            families=args.families,
            repeat=1 if args.quick else args.repeat,
            overrides=overrides,
            splits=tuple(name for name in args.split.split(",") if name),
            split_seed=args.split_seed,
            classes=tuple(c for c in args.classes.split(",") if c),
        )
    )
