"""What a new episode's vector costs the in-process index: one row added to N, then a search.

    python -m benchmarks.index_append_bench [--sizes 10000,100000] [--appends 200]

A memory that is written between retrievals (an agent completes a task, then starts the next
one) refreshes its index before each search: the new rows are appended first. The index keeps
room to grow (``quantized.with_room``), so an append copies only the new row; the baseline is
what each append cost before, measured in the same run on the same arrays: a copy of the whole
float32 matrix and of its int8 copy with the row added (``np.vstack`` / ``np.hstack``).

Prints one JSON line per size: ``append_p50_ms`` (``VectorIndex.add`` of one row, the int8
copy included from 8,192 vectors), ``baseline_append_p50_ms`` (the two whole-array copies), and
``search_p50_ms`` (``search_with_feedback`` k 40, right after each append), interleaved append
by append.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from typing import Any

import numpy as np

from self_learning_memory.retrieval.index import VectorIndex


def unit_rows(count: int, dims: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(count, dims)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def bench(size: int, appends: int, dims: int = 384) -> dict[str, Any]:
    rows = unit_rows(size + appends, dims, 1)
    index = VectorIndex("bench", dims)
    for start in range(0, size, 5000):  # pages, as the memory refreshes
        page = range(start, min(size, start + 5000))
        index.add([(r + 1, uuid.UUID(int=r + 1), rows[r].tobytes(), False) for r in page])
    appended: list[float] = []
    copied: list[float] = []
    searched: list[float] = []
    for r in range(size, size + appends):
        started = time.perf_counter()
        index.add([(r + 1, uuid.UUID(int=r + 1), rows[r].tobytes(), False)])
        appended.append(time.perf_counter() - started)
        started = time.perf_counter()
        index.search_with_feedback(rows[r - size], 40, 3, 1.0)
        searched.append(time.perf_counter() - started)
        # the baseline: the copies the index made per append before (the same arrays)
        matrix, codes = index._matrix, index._codes
        started = time.perf_counter()
        np.vstack([matrix[:-1], matrix[-1:]])
        if codes is not None:
            ints = codes._codes
            if codes._source is not None:  # packed (``quantized.py``): the rows' two parts
                np.hstack([codes._source, codes._tail[:, : codes._tail_count]])
            elif codes.transposed:
                np.hstack([ints[:, : len(codes) - 1], ints[:, len(codes) - 1 : len(codes)]])
            else:
                np.vstack([ints[: len(codes) - 1], ints[len(codes) - 1 : len(codes)]])
        copied.append(time.perf_counter() - started)
    p50 = statistics.median(appended) * 1000
    base = statistics.median(copied) * 1000
    return {
        "name": "index_append",
        "n": size,
        "appends": appends,
        "int8_copy": index._codes is not None,
        "append_p50_ms": round(p50, 4),
        "append_max_ms": round(max(appended) * 1000, 3),  # the appends that grew the room
        "baseline": "copy of the whole matrix and int8 copy per append (the index before)",
        "baseline_append_p50_ms": round(base, 3),
        "ratio": round(base / p50, 1),
        "search_p50_ms": round(statistics.median(searched) * 1000, 3),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--appends", type=int, default=200)
    args = parser.parse_args(argv)
    from self_learning_memory.retrieval.threads import limit_blas_threads

    limit_blas_threads(1)  # as the memory does (retrieval.blas_threads)
    for size in (int(s) for s in args.sizes.split(",")):
        print(json.dumps(bench(size, args.appends)), flush=True)


if __name__ == "__main__":
    main()
