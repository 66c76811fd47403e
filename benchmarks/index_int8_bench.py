"""Same-run A/B of the vector index's int8 first pass against its float32 scan, of the int8
copy's two layouts, or of its rows packed and unpacked.

    python -m benchmarks.index_int8_bench [--sizes 10000,100000] [--rounds 3]
    python -m benchmarks.index_int8_bench --store-dir DIR --sizes 10000   # the whole retrieval
    python -m benchmarks.index_int8_bench --layouts [--store-dir DIR]   # rows left or right
    python -m benchmarks.index_int8_bench --packing [--store-dir DIR]   # rows packed or not

Prints one JSON line per query class (the ``embeddings_bench`` retrieval queries: plain-language
and code-like), with wall and CPU (``time.process_time``) p50 of each path, interleaved query by
query (the order alternating), and how many searches returned the same episodes.

- Default: ``VectorIndex.search_with_feedback`` (what hybrid retrieval calls, k 40, the default
  feedback settings) over N hashing vectors of the bench store's episode texts (the same texts
  ``embeddings_bench.build_store`` writes, embedded directly: no store to build). ``float32`` is
  the path without the int8 copy (main's: one scan plus the shortlist, or two scans).
- ``--store-dir``: ``retrieve_relevant_context`` in hybrid mode on the store that
  ``embeddings_bench --store-dir`` built in ``DIR/<size>``, the same memory and index, with the
  int8 copy switched off and on per query.
- ``--layouts``: the int8 copy with the rows as the product's left operand (``rows_left``, the
  layout of CPUs whose int8 product saturates) against the rows as its right operand
  (``rows_right``, the default where it does not: ``quantized.QuantizedRows``), in either mode
  above; the same integers, so the same results.
- ``--packing``: the transposed int8 copy scanned unpacked (``unpacked``: the right operand
  given at every product) against its rows packed in a session of their own (``packed``, the
  default where the rows are the right operand: ``quantized.py``), in either mode above; the
  same integers, so the same results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.embeddings_bench import DOMAINS, OBJECTS, QUALS, VERBS, bench_queries
from self_learning_memory import MemoryConfig, SelfLearningMemory, TaskContext
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.embeddings.provider import _context_text, query_text
from self_learning_memory.retrieval.index import VectorIndex
from self_learning_memory.retrieval.quantized import QuantizedRows
from self_learning_memory.storage.factory import open_embedded

CONTEXT = TaskContext(domain="web-api", language="python")


def episode_texts(size: int) -> list[str]:
    """The embedded text of each episode ``build_store`` writes (same random sequence)."""
    rng = random.Random(11)
    texts = []
    for n in range(size):
        ctx = TaskContext(domain=rng.choice(DOMAINS), language=rng.choice(["python", "go", "sql"]))
        desc = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(QUALS)} #{n}"
        tools = [rng.choice(["editor", "pytest", "git"]) for _ in range(3)]
        rng.random()  # the outcome
        used = ", ".join(dict.fromkeys(tools))
        texts.append(f"{desc}. {_context_text(ctx)}. tools used: {used}. steps: work.")
    return texts


PATHS = ("float32", "int8")
LAYOUTS = ("rows_left", "rows_right")
PACKING = ("unpacked", "packed")
NAMES = {PATHS: "index_int8_ab", LAYOUTS: "index_int8_layouts", PACKING: "index_int8_packing"}


def with_layout(index: VectorIndex, transposed: bool) -> QuantizedRows:
    """An int8 copy of the index's matrix in one layout (``QuantizedRows``), unpacked
    (``--packing`` compares packing)."""
    codes = QuantizedRows(index.dimensions, transposed=transposed, pack=False)
    codes.append(index._matrix)
    return codes


def with_packing(index: VectorIndex, packed: bool) -> QuantizedRows:
    """The transposed int8 copy of the index's matrix, its rows packed (the session built and
    in place) or not."""
    codes = QuantizedRows(index.dimensions, transposed=True, pack=packed)
    codes.append(index._matrix)
    if packed:
        codes.approximate(index._matrix[0])  # a scan starts the build
        if not codes.wait(120) or not codes.packed:
            raise SystemExit("the int8 rows could not be packed")
    return codes


async def interleaved(
    kind: str,
    size: int,
    rounds: int,
    count: int,
    run: Callable[[str, int], Awaitable[Any]],
    paths: tuple[str, str] = PATHS,
) -> None:
    wall: dict[str, list[int]] = {path: [] for path in paths}
    cpu: dict[str, list[int]] = {path: [] for path in paths}
    same = 0
    for r in range(rounds):
        for n in range(count):
            got = {}
            for path in paths if (n + r) % 2 == 0 else paths[::-1]:
                started, started_cpu = time.perf_counter_ns(), time.process_time_ns()
                got[path] = await run(path, n)
                wall[path].append(time.perf_counter_ns() - started)
                cpu[path].append(time.process_time_ns() - started_cpu)
            same += got[paths[0]] == got[paths[1]]
    result: dict[str, Any] = {"name": NAMES[paths], "query_kind": kind, "n": size}
    for path in wall:
        result[f"{path}_wall_p50_ms"] = round(statistics.median(wall[path]) / 1e6, 3)
        result[f"{path}_cpu_p50_ms"] = round(statistics.median(cpu[path]) / 1e6, 3)
    result["same_results"] = f"{same}/{rounds * count}"
    result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result), flush=True)


async def bench_index(size: int, rounds: int, layouts: bool = False, packing: bool = False) -> None:
    embedder = HashingEmbedding(384)
    vectors = (await embedder.embed(episode_texts(size))).vectors
    config = MemoryConfig().retrieval
    quantized = VectorIndex(embedder.identity, 384, quantize=True)
    for start in range(0, size, 5000):  # pages, as the memory refreshes
        rows = range(start, min(size, start + 5000))
        quantized.add([(r + 1, uuid.UUID(int=r + 1), vectors[r].tobytes(), False) for r in rows])
    quantized.search(vectors[0], 10)  # its int8 rows packed, as after a process's first scan
    quantized.settled(120)
    # float32 only (the other modes give it an int8 copy below)
    exact = VectorIndex(embedder.identity, 384, quantize=False)
    exact.add([(r + 1, uuid.UUID(int=r + 1), vectors[r].tobytes(), False) for r in range(size)])
    indexes = {"float32": exact, "int8": quantized}
    paths = LAYOUTS if layouts else PACKING if packing else PATHS
    if packing:  # the same vectors twice, the int8 copy packed in one
        exact._codes = with_packing(exact, False)
        quantized._codes = with_packing(quantized, True)
        indexes = dict(zip(PACKING, (exact, quantized), strict=True))
    if layouts:  # the same vectors twice, the int8 copy in each layout
        if quantized._codes is None:
            raise SystemExit("no int8 copy: onnxruntime missing, or the size is too small")
        exact._codes = with_layout(exact, False)
        quantized._codes = with_layout(quantized, True)
        indexes = dict(zip(LAYOUTS, (exact, quantized), strict=True))
    for kind, texts in bench_queries(100).items():
        embedded = (await embedder.embed([query_text(t, CONTEXT) for t in texts])).vectors

        async def run(path: str, n: int, q: Any = embedded) -> Any:
            hits, _, again = indexes[path].search_with_feedback(
                q[n], 40, config.feedback_episodes, config.feedback_weight
            )
            return hits, set(again)

        await interleaved(kind, size, rounds, len(texts), run, paths)


async def bench_store(
    size: int, rounds: int, store_dir: Path, layouts: bool = False, packing: bool = False
) -> None:
    path = store_dir / str(size)
    if not (path / "built").exists():
        raise SystemExit(f"no built store in {path}: run embeddings_bench --store-dir first")
    config = MemoryConfig()
    storage, cache = open_embedded(path, config)
    embedder = HashingEmbedding(384)
    async with SelfLearningMemory(storage, config=config, cache=cache, embedder=embedder) as memory:
        assert memory.vectors is not None
        classes = bench_queries(100)
        for texts in classes.values():
            for text in texts:
                await memory.vectors.query_vector(text, CONTEXT)
        await memory.vectors.refresh()
        index = memory.vectors.index
        if len(index):  # its int8 rows packed, as a process's searches find them after ~0.1 s
            index.search(index._matrix[0], 10)
            index.settled(120)
        codes = index._codes
        if codes is None:
            raise SystemExit("the index keeps no int8 copy (onnxruntime missing, or too small)")
        paths = LAYOUTS if layouts else PACKING if packing else PATHS
        copies = {"float32": None, "int8": codes}
        if layouts:
            copies = {path: with_layout(index, path == "rows_right") for path in LAYOUTS}
        if packing:
            copies = {path: with_packing(index, path == "packed") for path in PACKING}
        for kind, texts in classes.items():

            async def run(path: str, n: int, texts: list[str] = texts) -> Any:
                index._codes = copies[path]
                memory._query_cache.clear()  # measure retrieval, not the result cache
                found = await memory.retrieve_relevant_context(texts[n], CONTEXT, 10, mode="hybrid")
                return [r.episode.episode_id for r in found]

            await interleaved(kind, size, rounds, len(texts), run, paths)
        index._codes = codes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store-dir", type=Path, default=None)
    parser.add_argument(
        "--layouts",
        action="store_true",
        help="compare the int8 copy's two layouts (rows as the left or the right operand) "
        "instead of float32 against int8",
    )
    parser.add_argument(
        "--packing",
        action="store_true",
        help="compare the int8 copy's rows unpacked and packed in a session of their own "
        "instead of float32 against int8",
    )
    args = parser.parse_args(argv)
    from self_learning_memory.retrieval.threads import limit_blas_threads

    limit_blas_threads(1)  # as the memory does (retrieval.blas_threads)
    for size in (int(s) for s in args.sizes.split(",")):
        if args.store_dir is None:
            asyncio.run(bench_index(size, args.rounds, args.layouts, args.packing))
        else:
            asyncio.run(bench_store(size, args.rounds, args.store_dir, args.layouts, args.packing))


if __name__ == "__main__":
    main()
