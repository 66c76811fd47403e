"""Embedding and vector-search benchmarks (issue: hybrid retrieval).

    python -m benchmarks.embeddings_bench [--quick] [--sizes 10000,100000]

Prints one JSON line per result, each with a baseline measured in the same run:
- ``embed_throughput``: texts per second of the ONNX Runtime MiniLM (int8, the default) and the
  torch-free numpy MiniLM, against the sentence-transformers backend (the reference
  implementation) on the same texts; ``model_load``: time to the first vector for each.
- ``query_embed``: one query of 8, 16 and 32 tokens, numpy (the baseline) and ONNX Runtime int8
  and fp32 timed in the same run, interleaved, on an idle neighbour core and with a busy
  process beside them (``busy_neighbour``); ``query_embed_agreement``: cosine of the ONNX
  vectors to the numpy vectors over the retrieval-quality corpus (queries, queries with their
  context, episode texts; >= 500 texts), min and mean.
- ``vector_index``: exact top-10 search over N x 384 normalised vectors with the numpy matrix
  scan (our index) against sqlite-vec's exact KNN (``vec0``) in SQLite, same vectors and queries.
- ``retrieve_hybrid`` / ``retrieve_hybrid_code``: retrieve_relevant_context in hybrid mode at N
  episodes with vectors precomputed, for plain-language queries (ranked by the vector signal
  alone; the full-text search is skipped, ``full_text_skipped`` counts it) and for code-like
  queries (an exception name and a file name: both searches, fused), each against lexical mode
  on the same store and queries; query vectors are cached per query text, so the query
  embedding cost is reported separately (``query_embed``); ``--phases`` adds the hybrid
  searches' timeline (``search_phases.py``: the store's calls, the vector scan, the ranking and
  the results' reads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import search_phases
from self_learning_memory import (
    ExecutionStep,
    FailureOutcome,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.embeddings.local import LocalEmbedding
from self_learning_memory.storage.factory import open_embedded


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def stats_ms(samples_ns: list[int]) -> tuple[float, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))]


def timed(fn: Callable[[], object], repeat: int) -> list[int]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - start)
    return out


TEXTS = [
    f"{verb} the {thing} {where}"
    for verb in ("Add", "Fix", "Refactor", "Speed up", "Document", "Test")
    for thing in ("orders endpoint", "payment retry", "csv import", "login form", "report query")
    for where in ("in the billing service", "for mobile clients", "without downtime")
]


def bench_embedding(quick: bool) -> None:
    texts = TEXTS[:32] if quick else TEXTS
    for backend in ("onnx", "numpy", "sentence-transformers"):
        start = time.perf_counter()
        model = LocalEmbedding(backend=backend)  # type: ignore[arg-type]
        model.encode_sync(["warm up"])
        load_s = time.perf_counter() - start
        samples = timed(lambda m=model: m.encode_sync(texts), 3)
        median = statistics.median(samples) / 1e9
        emit({"name": "model_load", "backend": backend, "seconds": round(load_s, 3)})
        emit(
            {
                "name": "embed_throughput",
                "backend": backend,
                "n": len(texts),
                "texts_per_s": round(len(texts) / median, 1),
                "median_ms_per_batch": round(median * 1000, 2),
            }
        )


QUERY_WORDS = [
    "fix",
    "the",
    "flaky",
    "login",
    "form",
    "timeout",
    "in",
    "the",
    "billing",
    "service",
    "for",
    "mobile",
    "clients",
    "then",
    "add",
    "pagination",
    "to",
    "the",
    "orders",
    "endpoint",
    "using",
    "redis",
    "with",
    "retries",
    "and",
    "document",
    "the",
    "csv",
    "import",
    "for",
    "large",
    "files",
    "without",
    "downtime",
]


def query_of(tokens: int) -> str:
    """A query whose tokenisation (with [CLS] and [SEP]) has exactly ``tokens`` tokens."""
    from tokenizers import Tokenizer

    from self_learning_memory.embeddings.local import model_directory

    tokenizer = Tokenizer.from_file(str(model_directory() / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads to 128: every text would count as long enough
    for n in range(1, len(QUERY_WORDS) + 1):
        text = " ".join(QUERY_WORDS[:n])
        if len(tokenizer.encode(text).ids) >= tokens:
            return text
    raise ValueError(f"no query of {tokens} tokens")


def busy_neighbour(seconds: float) -> subprocess.Popen[bytes]:
    """A process that keeps one core busy for at most ``seconds`` (it stops by itself)."""
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    return subprocess.Popen([sys.executable, "-c", code])


def bench_query_embed(quick: bool) -> None:
    models = {
        "numpy": LocalEmbedding(backend="numpy"),
        "onnx_int8": LocalEmbedding(backend="onnx", precision="int8"),
        "onnx_fp32": LocalEmbedding(backend="onnx", precision="fp32"),
    }
    for model in models.values():
        model.encode_sync(["warm up"])
    repeat = 30 if quick else 100
    for busy in (False, True):
        neighbour = busy_neighbour(600) if busy else None
        try:
            for tokens in (8, 16, 32):
                text = query_of(tokens)
                samples: dict[str, list[int]] = {name: [] for name in models}
                for _ in range(repeat):  # interleaved: each round times every backend once
                    for name, model in models.items():
                        samples[name] += timed(lambda m=model, t=text: m.encode_sync([t]), 1)
                result: dict[str, Any] = {
                    "name": "query_embed",
                    "tokens": tokens,
                    "busy_neighbour": busy,
                    "n": repeat,
                    "baseline": "numpy",
                }
                for name in models:
                    p50, p95 = stats_ms(samples[name])
                    result[f"{name}_median_ms"] = round(p50, 3)
                    result[f"{name}_p95_ms"] = round(p95, 3)
                base = result["numpy_median_ms"]
                result["ratio_int8"] = round(base / result["onnx_int8_median_ms"], 1)
                result["ratio_fp32"] = round(base / result["onnx_fp32_median_ms"], 1)
                result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
                emit(result)
        finally:
            if neighbour is not None:
                neighbour.terminate()
                neighbour.wait()
    texts = agreement_texts()
    reference = models["numpy"].encode_sync(texts).vectors
    for name in ("onnx_int8", "onnx_fp32"):
        cosines = (models[name].encode_sync(texts).vectors * reference).sum(axis=1)
        emit(
            {
                "name": "query_embed_agreement",
                "backend": name,
                "variant": getattr(models[name]._impl, "variant", None),  # int8: s8 or u8
                "baseline": "numpy",
                "n": len(texts),
                "cosine_min": round(float(cosines.min()), 5),
                "cosine_mean": round(float(cosines.mean()), 5),
                "cosine_p01": round(float(np.quantile(cosines, 0.01)), 5),
            }
        )


def agreement_texts() -> list[str]:
    """The retrieval-quality corpus: queries bare and with their context, and episode texts."""
    from benchmarks.retrieval_quality.corpus import build_corpus, episode_text
    from self_learning_memory.embeddings.provider import query_text

    corpus = build_corpus()
    texts = [q.text for q in corpus.queries]
    texts += [query_text(q.text, q.context) for q in corpus.queries]
    texts += [episode_text(e) for e in corpus.episodes]
    return list(dict.fromkeys(texts))


def bench_index(size: int, queries: int = 50) -> None:
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((size, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    qs = matrix[rng.integers(0, size, queries)] + 0.01 * rng.standard_normal((queries, 384)).astype(
        np.float32
    )

    def numpy_search(q: np.ndarray) -> list[int]:
        scores = matrix @ q
        top = np.argpartition(-scores, 9)[:10]
        return [int(i) for i in top[np.argsort(-scores[top])]]

    np_samples = [timed(lambda q=q: numpy_search(q), 1)[0] for q in qs]

    import apsw
    import sqlite_vec

    conn = apsw.Connection(":memory:")
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute("CREATE VIRTUAL TABLE v USING vec0(embedding float[384] distance_metric=cosine)")
    with conn:
        conn.executemany(
            "INSERT INTO v(rowid, embedding) VALUES (?, ?)",
            ((i + 1, matrix[i].tobytes()) for i in range(size)),
        )
    sql = "SELECT rowid FROM v WHERE embedding MATCH ? AND k = 10 ORDER BY distance"
    vec_samples = [
        timed(lambda q=q: conn.execute(sql, (q.tobytes(),)).fetchall(), 1)[0] for q in qs
    ]
    agree = np.mean(
        [
            len(
                {r[0] - 1 for r in conn.execute(sql, (q.tobytes(),)).fetchall()}
                & set(numpy_search(q))
            )
            / 10
            for q in qs[:10]
        ]
    )
    p50, p95 = stats_ms(np_samples)
    b50, b95 = stats_ms(vec_samples)
    emit(
        {
            "name": "vector_index",
            "n": size,
            "dims": 384,
            "median_ms": round(p50, 3),
            "p95_ms": round(p95, 3),
            "baseline": "sqlite-vec vec0 exact KNN",
            "baseline_median_ms": round(b50, 3),
            "baseline_p95_ms": round(b95, 3),
            "ratio": round(b50 / p50, 1),
            "top10_agreement": round(float(agree), 3),
        }
    )


VERBS = ["add", "fix", "refactor", "optimize", "document", "test", "debug", "migrate"]
OBJECTS = [
    "endpoint",
    "parser",
    "cache",
    "login form",
    "payment retry",
    "csv import",
    "index",
    "scheduler",
]
QUALS = [
    "for the orders service",
    "in the billing module",
    "with pagination",
    "using redis",
    "for large files",
]
DOMAINS = ["web-api", "database", "web-frontend", "testing", "devops"]


async def build_store(path: Path, size: int) -> None:
    rng = random.Random(11)
    config = MemoryConfig()
    storage, cache = open_embedded(path, config)
    embedder = HashingEmbedding(384)
    async with SelfLearningMemory(storage, config=config, cache=cache, embedder=embedder) as memory:
        for n in range(size):
            ctx = TaskContext(
                domain=rng.choice(DOMAINS), language=rng.choice(["python", "go", "sql"])
            )
            desc = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(QUALS)} #{n}"
            eid = await memory.start_episode(desc, ctx, "code_generation")
            for i in range(1, 4):
                step = ExecutionStep(
                    step_number=i,
                    tool=rng.choice(["editor", "pytest", "git"]),
                    action="work",
                    result=SuccessResult(),
                )
                await memory.log_step(eid, step)
            outcome = (
                SuccessOutcome(verdict="ok")
                if rng.random() < 0.7
                else FailureOutcome(reason="tests failed")
            )
            await memory.complete_episode(eid, outcome)
        # every vector written before the timed queries (background embedding is the default)
        if not await memory.wait_for_embeddings(3600):
            raise RuntimeError("the background embedding did not finish")


def bench_queries(count: int) -> dict[str, list[str]]:
    """The retrieval benchmark's queries (seeded): ``plain`` (plain language: hybrid ranks them
    by the vector signal alone) and ``code`` (an exception name and a file: both searches)."""
    rng = random.Random(5)
    return {
        "plain": [
            f"{rng.choice(VERBS)} the {rng.choice(OBJECTS)} {rng.choice(QUALS)} ({i})"
            for i in range(count)
        ],
        "code": [
            f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}: TimeoutError in handler_{i}.py"
            for i in range(count)
        ],
    }


async def bench_retrieval(
    size: int, queries: int, store_dir: Path | None = None, phases: bool = False
) -> None:
    """Plain-language queries (hybrid ranks them by the vector signal alone and skips the
    full-text search) and code-like queries (an exception name and a file: both searches,
    fused), each against lexical mode on the same store, interleaved. With ``store_dir`` the
    store is built in ``<store_dir>/<size>`` once and reused by later runs (``build_s`` 0).
    ``phases``: each line also has the hybrid searches' timeline (``search_phases.py``)."""
    with tempfile.TemporaryDirectory(prefix="bench-emb-") as tmp:
        path = Path(tmp) if store_dir is None else store_dir / str(size)
        done = path / "built"  # written after the last vector: a partial build is redone
        build_s = 0.0
        if not done.exists():
            if store_dir is not None and path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            await build_store(path, size)
            build_s = time.perf_counter() - start
            done.write_text(f"{size} episodes, built in {build_s:.0f} s\n")
        config = MemoryConfig()
        storage, cache = open_embedded(path, config)
        embedder = HashingEmbedding(384)
        classes = bench_queries(queries)
        async with SelfLearningMemory(
            storage, config=config, cache=cache, embedder=embedder
        ) as memory:
            ctx = TaskContext(domain="web-api", language="python")
            assert memory.vectors is not None
            for texts in classes.values():  # precompute query vectors (reported separately)
                for text in texts:
                    await memory.vectors.query_vector(text, ctx)
            await memory.vectors.refresh()
            # the int8 copy's packed session is built on a thread at the first scan of the
            # loaded index (``quantized.py``), and the candidate rows are read in the
            # background after the first search (``hybrid.py``): what a process's searches
            # find ~0.1 s later
            await memory.retrieve_relevant_context(classes["plain"][0], ctx, 10)
            if not await memory.retrieval_settled():
                raise RuntimeError("the retrieval's background work did not finish in 120 s")
            for kind, texts in classes.items():
                results: dict[str, list[int]] = {"hybrid": [], "lexical": []}
                skipped = 0
                with search_phases.optional(memory, phases) as recorder:
                    for text in texts:
                        for mode in ("hybrid", "lexical"):
                            memory._query_cache.clear()  # measure retrieval, not the result cache
                            timed = recorder if mode == "hybrid" else None
                            started = time.perf_counter_ns()
                            with search_phases.search(timed):
                                found = await memory.retrieve_relevant_context(
                                    text, ctx, 10, mode=mode
                                )
                            results[mode].append(time.perf_counter_ns() - started)
                            hybrid = mode == "hybrid"
                            if hybrid and found and "lexical:skipped" in found[0].provenance:
                                skipped += 1
                p50, p95 = stats_ms(results["hybrid"])
                b50, b95 = stats_ms(results["lexical"])
                emit(
                    {
                        "name": "retrieve_hybrid" if kind == "plain" else "retrieve_hybrid_code",
                        "n": size,
                        "queries": queries,
                        "query_kind": kind,
                        "full_text_skipped": skipped,
                        "median_ms": round(p50, 3),
                        "p95_ms": round(p95, 3),
                        "baseline": "lexical mode, same store and queries",
                        "baseline_median_ms": round(b50, 3),
                        "baseline_p95_ms": round(b95, 3),
                        "ratio": round(p50 / b50, 2),
                        "build_s": round(build_s, 1),
                        "loadavg": [round(x, 2) for x in os.getloadavg()],
                        "note": "vectors precomputed (hashing, 384 dims); query embedding "
                        "measured in query_embed",
                        **({"phases": recorder.summary()} if recorder else {}),
                    }
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default=None, help="comma-separated store sizes for retrieval")
    parser.add_argument(
        "--store-dir",
        type=Path,
        default=None,
        help="keep the retrieval stores in DIR/<size> and reuse them in later runs",
    )
    parser.add_argument("--skip-model", action="store_true", help="skip the local model benchmarks")
    parser.add_argument(
        "--phases",
        action="store_true",
        help="add the hybrid searches' timeline to each retrieval line (benchmarks/search_phases.py)",
    )
    parser.add_argument(
        "--only-query-embed", action="store_true", help="only query_embed(_agreement)"
    )
    args = parser.parse_args(argv)
    parser_only = args.only_query_embed
    if not args.skip_model:
        bench_query_embed(args.quick)
        if parser_only:
            return
        bench_embedding(args.quick)
    for size in (10_000,) if args.quick else (10_000, 100_000):
        bench_index(size)
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([1000] if args.quick else [10_000])
    )
    for size in sizes:
        asyncio.run(bench_retrieval(size, 30 if args.quick else 100, args.store_dir, args.phases))


if __name__ == "__main__":
    main()
