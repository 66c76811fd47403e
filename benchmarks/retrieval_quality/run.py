"""Run the retrieval-quality benchmark: record the corpus, ask every query in every mode.

    python -m benchmarks.retrieval_quality [--provider local|hashing|none] [--modes ...]
                                           [--corpus quality|heldout]
                                           [--families N] [--seed 7] [--repeat 3]
                                           [--set mmr_lambda=1.0 ...]
                                           [--split tune|heldout|all[,...]] [--split-seed 1]
                                           [--classes paraphrase,error,identifier,mixed]

Prints JSON lines: ``retrieval_corpus`` (what was recorded), ``query_embed`` (the query
embedding time, measured apart: query vectors are computed once before the timed passes),
one ``retrieval_quality`` per mode (hit@1, MRR, recall@10, nDCG@10, outcome-graded nDCG@10,
latency p50/p95 of retrieve_relevant_context with the query cache cleared before every call),
and ``retrieval_quality_summary`` (hybrid against the best single signal, the targets).

Modes (``ALL_MODES``, in this order):

- ``legacy``: the reference system's word-overlap filter and score (``core/retrieval.py``).
- ``bm25``: pure lexical relevance: ``lexical`` mode with every other signal off
  (``PURE_SETTINGS``: context, outcome and recency weights 0, MMR lambda 1, duplicate
  threshold 1, no feedback), so the order is the store's BM25 (normalised to the best
  candidate) blended 0.6 / 0.4 with the share of query terms an episode contains, as
  ``lexical`` mode scores relevance. Only exact duplicates (similarity 1) are still dropped.
- ``cosine``: pure vector relevance: ``vector`` mode with ``PURE_SETTINGS``, so the order is
  the cosine of the query embedding with each episode's (no pseudo-relevance feedback).
- ``model_cosine``: the plain model baseline, outside the memory: the cosine of the bare query
  text's embedding with each episode's task text and step actions (``model_text``; no
  context, tools, errors or outcome), same provider. ``cosine`` embeds what the memory stores
  (``embeddings.episode_text``) and the query with its context.
- ``lexical``, ``vector``, ``hybrid``: ``retrieve_relevant_context(mode=...)`` as shipped: the
  relevance signal (bm25, cosine with feedback, or their per-query fusion) re-ranked with
  context match, outcome, recency, MMR and near-duplicate removal.

``--set`` overrides change the retrieval config of ``lexical``, ``vector`` and ``hybrid``
only; ``bm25`` and ``cosine`` always run the default config plus ``PURE_SETTINGS``.

The summary compares hybrid with the best single mode (every other mode, by nDCG@10 then
hit@1) and with the best pure one (``bm25`` or ``cosine``): the mean differences, a seeded
paired bootstrap 95 % interval of the hit@1 and nDCG@10 differences over the queries, and
per-query wins / ties / losses. ``clear_margin`` means statistically clear against the best
single mode: the nDCG@10 interval lies above 0 and the hit@1 interval does not lie below 0.

Queries come in classes (``corpus.py``, ``workload.py``): ``paraphrase`` (the task in other
words), ``error`` (a pasted error message), ``identifier`` (a command or identifier plus a few
task words) and ``mixed`` (a paraphrase plus one identifier). Every quality and summary record
names its ``class``; ``class: "all"`` pools every query asked. The targets are the issue's, set
for the paraphrase queries; the summary says for every class whether hybrid beats the best single
signal.

``--corpus heldout`` runs the independently written set of ``benchmarks/retrieval_heldout``
(never tuned on) instead: its classes are ``any`` and ``fail`` (queries asking what went wrong
before), its splits the query's context (``all``, ``full``, ``lang``, ``domain``, ``none``),
its labels the graded ``QuerySpec.relevance``. Every summary has ``vs``: hybrid against each
plain-model baseline that ran (``cosine``, ``model_cosine``), with bootstrap intervals.

``--split`` chooses whose queries are asked: the families are halved (seeded, stratified by
domain) into ``tune`` and ``heldout``; ranking changes are tuned on ``tune`` and kept only if
they help on ``heldout`` too. Several splits (``--split tune,heldout,all``) are measured from
the same store and timed passes; every quality and summary record names its split.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from self_learning_memory import (
    EmbeddingsConfig,
    MemoryConfig,
    RetrievalConfig,
    SelfLearningMemory,
)
from self_learning_memory.config import StorageConfig
from self_learning_memory.embeddings import embed_documents

from ..retrieval_heldout.corpus import INTENTS as HELDOUT_CLASSES
from ..retrieval_heldout.corpus import build_heldout
from .corpus import SPLITS, Corpus, EpisodeSpec, QuerySpec, build_corpus, split_families
from .metrics import mean_metrics, paired_bootstrap_ci, query_metrics, wins_ties_losses
from .workload import QUERY_CLASSES

__all__ = ["main", "run"]

ALL_MODES = ("legacy", "bm25", "cosine", "model_cosine", "lexical", "vector", "hybrid")
# a pure single signal: the memory mode it runs, with PURE_SETTINGS
PURE_MODES = {"bm25": "lexical", "cosine": "vector"}
PURE_SETTINGS: dict[str, float] = {
    "weight_context": 0.0,
    "weight_outcome": 0.0,
    "weight_recency": 0.0,
    "mmr_lambda": 1.0,  # no MMR penalty
    "duplicate_threshold": 1.0,  # the highest allowed: only exact duplicates are dropped
    "feedback_weight": 0.0,  # no pseudo-relevance feedback
}
VECTOR_MODES = ("cosine", "model_cosine", "vector", "hybrid")  # need an embedding provider
# the plain-model baselines every ranking change must not lose to (the summary's ``vs``)
BASELINES = ("cosine", "model_cosine")
CORPORA = ("quality", "heldout")
HELDOUT_SPLITS = ("all", "full", "lang", "domain", "none")  # by the query's context
STAT_METRICS = ("hit_at_1", "ndcg_at_10")  # bootstrapped and counted per query
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
TARGET_HIT_AT_1 = 0.80
TARGET_NDCG_AT_10 = 0.70
K = 10
Run = tuple[list[int], dict[int, float], dict[int, float]]
ModelIndex = tuple[Any, Any]  # (provider, episode matrix) of the model_cosine baseline
PerQuery = dict[str, list[float]]  # metric -> one value per query, in the order asked
ALL = "all"  # the class of a record over every query asked


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


@contextlib.contextmanager
def retrieval_config(memory: SelfLearningMemory, config: RetrievalConfig) -> Iterator[None]:
    """Use ``config`` for retrieval inside the block; the previous one is back afterwards,
    also when the block raises."""
    original = memory.config.retrieval
    memory.config.retrieval = config
    try:
        yield
    finally:
        memory.config.retrieval = original


async def record_corpus(memory: SelfLearningMemory, corpus: Corpus) -> dict[uuid.UUID, int]:
    """Record every episode as an agent would; returns episode id -> index in the corpus."""
    ids: dict[uuid.UUID, int] = {}
    for index, spec in enumerate(corpus.episodes):
        eid = await memory.start_episode(spec.description, spec.context, spec.task_type)
        for step in spec.steps:
            await memory.log_step(eid, step)
        await memory.complete_episode(eid, spec.outcome)
        ids[eid] = index
    # background embedding: every vector is written before the queries (as when embedded inline)
    if not await memory.wait_for_embeddings(600):
        raise RuntimeError("the background embedding did not finish in 600 s")
    return ids


def model_text(spec: EpisodeSpec) -> str:
    """What ``model_cosine`` embeds: the task text and its step actions, nothing else (no
    context, tools, errors or outcome): the plain model cosine the issue compares with."""
    actions = list(dict.fromkeys(s.action.strip() for s in spec.steps if s.action.strip()))
    return f"{spec.description.rstrip('.')}. {'; '.join(actions)}"


async def model_index(memory: SelfLearningMemory, corpus: Corpus) -> ModelIndex | None:
    if memory.vectors is None:
        return None
    provider = memory.vectors.provider
    # the episodes as the memory embeds what it stores (the local model: its document graph)
    batch = await embed_documents(provider, [model_text(e) for e in corpus.episodes])
    return provider, batch.vectors


async def model_cosine(index: ModelIndex, query: str, k: int) -> list[int]:
    """Episode indices by the cosine of the bare query text with ``model_text`` (rows are
    L2-normalised, so the dot product is the cosine)."""
    provider, matrix = index
    vector = (await provider.embed([query])).vectors[0]
    scores = matrix @ vector
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def load_corpus(
    name: str, seed: int, families: int | None, classes: tuple[str, ...]
) -> tuple[Corpus, dict[str, frozenset[str]] | None]:
    """The corpus and, for ``quality``, its family split (None: split by query context)."""
    if name == "heldout":
        return build_heldout(), None
    if name != "quality":
        raise ValueError(f"unknown corpus {name!r}: choose from {', '.join(CORPORA)}")
    corpus = build_corpus(seed, families=families, classes=classes)
    return corpus, None


def in_split(q: QuerySpec, name: str, members: dict[str, frozenset[str]] | None) -> bool:
    if members is None:  # held-out set: ``all`` or the query's context kind
        return name == "all" or q.variation == name
    return q.family in members[name]


async def run(
    *,
    provider: str = "local",
    modes: tuple[str, ...] = ALL_MODES,
    seed: int = 7,
    families: int | None = None,
    repeat: int = 3,
    data_dir: Path | None = None,
    overrides: dict[str, float | str] | None = None,
    splits: tuple[str, ...] = ("all",),
    split_seed: int = 1,
    classes: tuple[str, ...] = QUERY_CLASSES,
    corpus_name: str = "quality",
    postgres: str | None = None,
) -> list[dict[str, Any]]:
    """Build the corpus in a fresh store and measure every mode; returns the records.

    ``postgres``: a PostgreSQL server's URL; the store is then a new schema on it (dropped
    at the end) with the server's vector search at every size (pgvector when the server has
    it: ``storage.pgvector_exact_below = 0``) instead of the embedded SQLite store."""
    if postgres is not None:
        from benchmarks.scaleout_pg_bench import _create_schema, _drop_schema, schema_url

        schema = _create_schema(postgres)
        try:
            return await run(
                provider=provider,
                modes=modes,
                seed=seed,
                families=families,
                repeat=repeat,
                data_dir=data_dir,
                overrides={
                    **(overrides or {}),
                    "storage.url": schema_url(postgres, schema),
                    "storage.pgvector_exact_below": 0,
                },
                splits=splits,
                split_seed=split_seed,
                classes=classes,
                corpus_name=corpus_name,
            )
        finally:
            _drop_schema(postgres, schema)
    records: list[dict[str, Any]] = []

    def out(record: dict[str, Any]) -> None:
        records.append(record)
        emit(record)

    corpus, _ = load_corpus(corpus_name, seed, families, classes)
    members = None if corpus_name == "heldout" else split_families(corpus.families, split_seed)
    allowed = HELDOUT_SPLITS if members is None else SPLITS
    for name in splits:
        if name not in allowed:
            raise ValueError(f"unknown split {name!r}: choose from {', '.join(allowed)}")
    if corpus_name == "heldout":
        classes = HELDOUT_CLASSES
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        directory = data_dir or Path(tmp)
        settings = dict(overrides or {})
        storage = {
            k[len("storage.") :]: settings.pop(k)
            for k in list(settings)
            if k.startswith("storage.")
        }
        config = MemoryConfig(
            embeddings=EmbeddingsConfig(provider=provider),
            storage=StorageConfig.model_validate(storage),
        )
        pure_config = config.retrieval.model_copy(update=PURE_SETTINGS)
        config.retrieval = config.retrieval.model_copy(update=settings)
        async with SelfLearningMemory.open(directory, config=config) as memory:
            started = time.perf_counter()
            ids = await record_corpus(memory, corpus)
            out(
                {
                    "name": "retrieval_corpus",
                    "corpus": corpus_name,
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
            modes = tuple(m for m in modes if memory.vectors is not None or m not in VECTOR_MODES)
            plain = await model_index(memory, corpus) if "model_cosine" in modes else None
            kinds = [c for c in classes if any(q.kind == c for q in corpus.queries)]
            groups = [*kinds, ALL] if len(kinds) > 1 else kinds
            by_group: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
            per_query: dict[tuple[str, str], dict[str, PerQuery]] = {}
            queries = [q for q in corpus.queries if any(in_split(q, n, members) for n in splits)]
            for mode in modes:
                pure = mode in PURE_MODES
                runs: list[tuple[QuerySpec, Run]] = []
                latencies: dict[str, list[float]] = {c: [] for c in kinds}
                for attempt in range(repeat):
                    for q in queries:
                        memory._query_cache.clear()  # measure retrieval, not the result cache
                        t0 = time.perf_counter()
                        if mode == "model_cosine":
                            assert plain is not None
                            ranked = await model_cosine(plain, q.text, K)
                        elif pure:
                            with retrieval_config(memory, pure_config):
                                results = await memory.retrieve_relevant_context(
                                    q.text, q.context, K, mode=PURE_MODES[mode]
                                )
                        else:
                            results = await memory.retrieve_relevant_context(
                                q.text, q.context, K, mode=mode
                            )
                        latencies[q.kind].append((time.perf_counter() - t0) * 1000)
                        if attempt:
                            continue
                        if mode != "model_cosine":
                            ranked = [ids[r.episode.episode_id] for r in results]
                        graded = q.gains(corpus.episodes)
                        binary = {i: 1.0 for i, gain in graded.items() if gain > 0}
                        runs.append((q, (ranked, binary, graded)))
                latencies[ALL] = [ms for c in kinds for ms in latencies[c]]
                for name in splits:
                    for group in groups:
                        chosen = [
                            r
                            for q, r in runs
                            if in_split(q, name, members) and group in (q.kind, ALL)
                        ]
                        if not chosen:
                            continue
                        metrics = {k: round(v, 3) for k, v in mean_metrics(chosen, K).items()}
                        values = [query_metrics(*r, K) for r in chosen]
                        per_query.setdefault((name, group), {})[mode] = {
                            metric: [v[metric] for v in values] for metric in STAT_METRICS
                        }
                        p50, p95 = _ms(latencies[group])
                        record = {
                            "name": "retrieval_quality",
                            "corpus": corpus_name,
                            "mode": mode,
                            "split": name,
                            "class": group,
                            "provider": provider if mode in VECTOR_MODES else "none",
                            "n": len(chosen),
                            "episodes": len(corpus.episodes),
                            **metrics,
                            "median_ms": round(p50, 3),  # over every query of the class asked
                            "p95_ms": round(p95, 3),
                            "samples": len(latencies[group]),
                            **(
                                {"pure_settings": PURE_SETTINGS}
                                if pure
                                else {"overrides": overrides}
                                if overrides and mode != "model_cosine"
                                else {}
                            ),
                        }
                        by_group.setdefault((name, group), {})[mode] = record
                        out(record)
    for (name, group), by_mode in by_group.items():
        if "hybrid" in by_mode and len(by_mode) > 1:
            out(
                {
                    **summary(by_mode, per_query[name, group], name, group),
                    "corpus": corpus_name,
                }
            )
    return records


def compare(
    hybrid: dict[str, Any], other: dict[str, Any], hybrid_q: PerQuery, other_q: PerQuery
) -> dict[str, Any]:
    """Hybrid minus one other mode: mean differences (``*_margin``, from the rounded means),
    paired bootstrap intervals of the hit@1 and nDCG@10 differences, per-query wins / ties /
    losses, and ``clear_margin`` (nDCG@10 interval above 0, hit@1 interval not below 0)."""
    result: dict[str, Any] = {
        f"{metric}_margin": round(hybrid[metric] - other[metric], 3)
        for metric in ("hit_at_1", "mrr", "ndcg_at_10")
    }
    lows: dict[str, float] = {}
    for metric in STAT_METRICS:
        low, high = paired_bootstrap_ci(
            hybrid_q[metric],
            other_q[metric],
            resamples=BOOTSTRAP_RESAMPLES,
            seed=BOOTSTRAP_SEED,
            confidence=CONFIDENCE,
        )
        lows[metric] = low
        result[f"{metric}_diff_ci95"] = [round(low, 4), round(high, 4)]
    result["wins_ties_losses"] = {
        metric: wins_ties_losses(hybrid_q[metric], other_q[metric])._asdict()
        for metric in STAT_METRICS
    }
    result["clear_margin"] = lows["ndcg_at_10"] > 0 and lows["hit_at_1"] >= 0
    return result


def _best(records: dict[str, dict[str, Any]]) -> str:
    return max(records, key=lambda m: (records[m]["ndcg_at_10"], records[m]["hit_at_1"]))


def summary(
    by_mode: dict[str, dict[str, Any]],
    per_query: dict[str, PerQuery],
    split: str = "all",
    group: str = ALL,
) -> dict[str, Any]:
    """Hybrid against the best single signal (by nDCG@10, then hit@1) of one split and class.

    ``best_single`` is the best of every other mode, ``best_pure_single`` the best of ``bm25``
    and ``cosine`` (None when neither ran). ``hybrid_beats_best_single`` compares the means
    (higher nDCG@10, no lower hit@1); ``clear_margin`` asks the same of the bootstrap
    intervals against ``best_single`` (``compare``). The top-level margins, intervals and
    counts are against ``best_single``; ``vs_best_pure_single`` holds the same against
    ``best_pure_single``. ``per_query`` holds each mode's per-query hit@1 and nDCG@10, aligned
    across modes."""
    hybrid = by_mode["hybrid"]
    singles = {m: r for m, r in by_mode.items() if m != "hybrid"}
    best = _best(singles)
    pures = {m: r for m, r in singles.items() if m in PURE_MODES}
    best_pure = _best(pures) if pures else None
    against_best = compare(hybrid, singles[best], per_query["hybrid"], per_query[best])
    return {
        "name": "retrieval_quality_summary",
        "split": split,
        "class": group,
        "n": hybrid["n"],
        "best_single": best,
        "best_pure_single": best_pure,
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
        **against_best,
        "vs_best_pure_single": None
        if best_pure is None
        else {
            "mode": best_pure,
            **compare(hybrid, pures[best_pure], per_query["hybrid"], per_query[best_pure]),
        },
        # hybrid against each plain-model baseline that ran (the "must not lose")
        "vs": {
            mode: compare(hybrid, by_mode[mode], per_query["hybrid"], per_query[mode])
            for mode in BASELINES
            if mode in by_mode
        },
        "bootstrap": {
            "resamples": BOOTSTRAP_RESAMPLES,
            "seed": BOOTSTRAP_SEED,
            "confidence": CONFIDENCE,
            "unit": "query",
        },
        "target_hit_at_1": TARGET_HIT_AT_1,
        "target_ndcg_at_10": TARGET_NDCG_AT_10,
        "target_met": hybrid["hit_at_1"] >= TARGET_HIT_AT_1
        and hybrid["ndcg_at_10"] >= TARGET_NDCG_AT_10,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def _setting(value: str) -> float | str:
    """A ``--set`` value: a number, or a word (``--set failure_intent=off``)."""
    try:
        return float(value)
    except ValueError:
        return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--provider", default="local", choices=["local", "hashing", "none"])
    parser.add_argument(
        "--corpus",
        default="quality",
        choices=CORPORA,
        help="quality: the tuning corpus (families split tune/heldout); heldout: the"
        " independently written set (benchmarks/retrieval_heldout, never tuned on), split by"
        " query context: all, full, lang, domain, none",
    )
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
        help="override a RetrievalConfig weight of lexical, vector and hybrid (not of the pure"
        " bm25 and cosine), e.g. --set mmr_lambda=1.0",
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
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="a PostgreSQL server: the store is a new schema on it (pgvector's search at every "
        "size when the server has the extension), dropped at the end",
    )
    args = parser.parse_args(argv)
    overrides = {k: _setting(v) for k, v in (item.split("=", 1) for item in args.set)}
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
            corpus_name=args.corpus,
            postgres=args.postgres,
        )
    )
