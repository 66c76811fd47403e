"""The in-process vector index: a float32 matrix of every stored episode vector of one
embedding identity, scanned exactly with one matrix-vector product.

Measured against sqlite-vec in ``benchmarks/embeddings_bench.py``: the numpy scan is faster at
every size we hold (10K to 100K episodes), so it is the index. It refreshes incrementally from
the durable store (rows written since the last refresh, by any process); the memory rebuilds it
when the store holds fewer vectors than it does (deletes: ``VectorSearch.covers_store``). An
index belongs to one embedding identity: another model or dimension is another index.

From ``QUANTIZED_MIN`` vectors (with onnxruntime) the index also keeps an int8 copy of the
matrix, a quarter of its bytes, scanned first; the rows that its error bound cannot rule out are
re-scored in float32, so searches return what the float32 scan returns (``quantized.py``).

Appending a row (a refresh after a write) does not copy the matrix: both arrays keep room to
grow (``quantized.with_room``), so an append costs the new rows (``benchmarks/index_append_bench``:
0.1-0.3 ms against 1.1 / 17-20 ms for the whole-array copies at 10K / 100K).
"""

from __future__ import annotations

import logging
import math
import threading
import uuid

import numpy as np
import numpy.typing as npt

from ..model.records import id_int
from . import quantized
from .quantized import QuantizedRows, with_room

__all__ = ["VectorIndex", "rocchio"]

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]
_SHORTLIST = 4096  # rows re-scored for the expanded query (indexes of 16K vectors and more)
_MARGIN = 1e-4  # float32 rounding of cosines and norms, with room to spare
QUANTIZED_MIN = 8192  # indexes of this many vectors and more keep an int8 copy (quantized.py)
_RESCORE_SHARE = 8  # the int8 pass gives way to a float32 scan past n / 8 rows to re-score
_GROWTH = 1.5  # the matrix's room to grow (rows not yet written take no memory)


class VectorIndex:
    def __init__(self, identity: str, dimensions: int, quantize: bool | None = None) -> None:
        self.identity = identity
        # an int8 copy for the first pass of large indexes (None: when onnxruntime is there)
        self._quantize = quantized.available() if quantize is None else quantize
        self._codes: QuantizedRows | None = None
        self.dimensions = dimensions
        self.watermark = 0  # highest store row number (``seq``) loaded
        # bumped by ``reset``: rows read from the store before it were read from the old
        # watermark and are not added after it (``add``)
        self.generation = 0
        self._ids: list[uuid.UUID] = []
        self._rows: dict[int, int] = {}  # row of each episode, by its id's ``int``
        # the vectors, row i episode ``_ids[i]``: the first rows of ``_store``, whose other
        # rows are room for later ones (appending does not copy the matrix each time)
        self._store: F32 = np.zeros((0, dimensions), dtype=np.float32)
        self._matrix: F32 = self._store
        self._lock = threading.Lock()
        self._max_norm = 0.0  # the shortlist bound needs vectors of norm <= 1 (providers normalise)
        self.truncated: set[uuid.UUID] = set()  # episodes whose text was cut to the model limit

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> list[uuid.UUID]:
        """The indexed episodes, in row order (a copy)."""
        with self._lock:
            return list(self._ids)

    def settled(self, timeout: float | None = None) -> bool:
        """Wait for the int8 copy's packed session being built on a thread, if one is
        (``quantized.py``; benchmarks and tests: searches meanwhile scan it unpacked, with the
        same results); whether none is left."""
        codes = self._codes
        return codes is None or codes.wait(timeout)

    def reset(self) -> None:
        with self._lock:
            self.generation += 1
            self.watermark = 0
            self._ids, self._rows = [], {}
            self._store = np.zeros((0, self.dimensions), dtype=np.float32)
            self._matrix = self._store
            self._max_norm = 0.0
            self._codes = None

    def add(
        self, rows: list[tuple[int, uuid.UUID, bytes, bool]], generation: int | None = None
    ) -> bool:
        """Add (store row number, episode id, float32 bytes, truncated) rows; a known id is
        replaced. With ``generation`` (the index's when the rows were asked for from its
        watermark): False, and nothing added, when the index was reset since. Rows read from
        the old watermark would leave the rows below them unread: the next refresh reads from
        the watermark, which those rows would have moved past."""
        with self._lock:
            if generation is not None and generation != self.generation:
                return False
            self._add(rows)
            return True

    def _add(self, rows: list[tuple[int, uuid.UUID, bytes, bool]]) -> None:
        """``add`` under the lock."""
        if not rows:
            return
        fresh: list[F32] = []
        for rowid, episode_id, blob, truncated in rows:
            vector = np.frombuffer(blob, dtype=np.float32)
            if truncated:
                self.truncated.add(episode_id)
            if vector.shape[0] != self.dimensions:
                continue
            self.watermark = max(self.watermark, rowid)
            row = self._rows.get(episode_id.int)
            if row is not None:
                self._matrix[row] = vector
                if self._codes is not None:
                    self._codes.replace(row, vector)
                self._max_norm = max(self._max_norm, float(np.linalg.norm(vector)))
                continue
            self._rows[episode_id.int] = len(self._ids)
            self._ids.append(episode_id)
            fresh.append(vector)
        if fresh:
            block = np.stack(fresh)
            self._max_norm = max(self._max_norm, float(np.linalg.norm(block, axis=1).max()))
            start = self._matrix.shape[0]
            end = start + block.shape[0]
            self._store = with_room(self._store, start, end, _GROWTH)
            self._store[start:end] = block
            self._matrix = self._store[:end]
            if self._codes is not None:
                self._codes.append(block)
        if self._codes is None and self._quantize and len(self._ids) >= QUANTIZED_MIN:
            self._codes = QuantizedRows(self.dimensions)
            self._codes.append(self._matrix)

    def search(self, query: F32, k: int) -> list[tuple[uuid.UUID, float]]:
        """The ``k`` most similar episodes by cosine (vectors are normalised), best first."""
        with self._lock:
            if not self._ids or k <= 0:
                return []
            top = self._top(query, min(k, len(self._ids)))
            scores = self._matrix[top] @ query
            return [(self._ids[i], float(s)) for i, s in zip(top, scores, strict=True)]

    def _top(self, query: F32, k: int, floor: float | None = None) -> npt.NDArray[np.intp]:
        """The rows of the ``k`` (1 <= k <= len) highest scores, highest first: the int8
        first pass with exact re-scoring when the index keeps a copy, else a float32 scan.
        ``floor``: a score the k-th highest likely reaches (the expanded query's k-th best
        over the shortlist, ``search_with_feedback``): when k scores reach it (less the
        int8 error), the k-th is found among those instead of all (a hint: the result is the
        same either way)."""
        if self._codes is not None and k < len(self._ids) // _RESCORE_SHARE:
            approx = self._approximate(query)
            if approx is not None:
                scores, error = approx
                cap = len(self._ids) // _RESCORE_SHARE
                kth = None if floor is None else _kth_above(scores, k, floor - error - _MARGIN)
                top = self._codes.select(scores, error, self._matrix, query, k, cap, kth)
                if top is not None:
                    return top
        exact = self._matrix @ query
        if floor is not None:
            rows = np.flatnonzero(exact >= floor - _MARGIN)
            if rows.shape[0] >= k:  # the k best are among them, in row order: ties alike
                return rows[_best(exact[rows], k)]
        return _best(exact, k)

    def _approximate(self, query: F32) -> tuple[F32, float] | None:
        """The int8 pass's scores and error bound; None (and float32 from then on) when ONNX
        Runtime fails."""
        assert self._codes is not None
        try:
            return self._codes.approximate(query)
        except Exception as exc:  # an onnxruntime build that cannot run the product
            log.warning("int8 vector scan failed, scanning float32 from now on: %s", exc)
            self._codes, self._quantize = None, False
            return None

    def search_with_feedback(
        self, query: F32, k: int, feedback: int, weight: float
    ) -> tuple[list[uuid.UUID], F32 | None, list[uuid.UUID]]:
        """``search(query, k)``, ``expand`` by its first ``feedback`` hits and
        ``search(expanded, k)`` in one call: (hits, expanded vector or None, its hits).

        The same nearest episodes as the three calls, with one full scan instead of two when a
        bound allows (large indexes). For a unit vector x with cosine a = x.q with the query,
        x.e <= a (e.q) + sqrt(1 - a^2) sqrt(1 - (e.q)^2): e's part along q plus the most its
        orthogonal part can add, growing with a while a < e.q. So the expanded query's
        nearest are among the rows nearest the query: the exact expanded scores of the
        ``_SHORTLIST`` rows with the highest query cosines give the k-th best score t, and
        when the bound at the lowest of those cosines is below t (less a float32 margin), no
        other row can enter. Otherwise the matrix is scanned again."""
        with self._lock:
            n = len(self._ids)
            if not n or k <= 0:
                return [], None, []
            k = min(k, n)
            unit = self._max_norm <= 1 + _MARGIN and abs(float(query @ query) - 1) <= _MARGIN
            listed = feedback > 0 and weight > 0 and n >= 4 * _SHORTLIST and k < _SHORTLIST
            top, scores, error, chosen = self._first_pass(
                query, k, _SHORTLIST if listed and unit else 0
            )
            ids = self._ids  # (rows as Python ints: indexing with numpy's is slower)
            hits = [ids[i] for i in top.tolist()]
            rows = top[:feedback]
            if feedback <= 0 or weight <= 0 or not len(rows):
                return hits, None, []
            expanded = rocchio(query, self._matrix[rows], weight)
            if expanded is None:
                return hits, None, []
            if chosen is not None:
                exact = self._matrix[chosen] @ expanded
                last = chosen.shape[0] - k
                kth = float(np.partition(exact, last)[last])
                # with the int8 pass's scores its error bound is added to the shortlist's
                # lowest cosine: no row left out has a cosine above it
                if _shortlist_bound(float(scores[chosen].min()) + error, expanded, query) < kth:
                    return hits, expanded, [ids[i] for i in chosen[_best(exact, k)].tolist()]
                return hits, expanded, [ids[i] for i in self._top(expanded, k, kth).tolist()]
            return hits, expanded, [ids[i] for i in self._top(expanded, k).tolist()]

    def _first_pass(
        self, query: F32, k: int, shortlist: int = 0
    ) -> tuple[npt.NDArray[np.intp], F32, float, npt.NDArray[np.intp] | None]:
        """The query's ``k`` (1 <= k <= len) best rows, highest first, with the scores they
        were chosen from and those scores' error bound: the int8 pass's (exact re-scoring of
        the top) when the index keeps a copy, else the float32 scan's (error 0). With a
        ``shortlist`` size (> k), also the rows of the ``shortlist`` highest of those scores
        (``_shortlist``; None without)."""
        if self._codes is not None:
            first = self._approximate(query)
            if first is not None:
                approx, error = first
                chosen, kth = _shortlist(approx, k, shortlist)
                cap = len(self._ids) // _RESCORE_SHARE
                top = (
                    self._codes.select(approx, error, self._matrix, query, k, cap, kth)
                    if k < cap
                    else None
                )
                top = _best(self._matrix @ query, k) if top is None else top
                return top, approx, error, chosen
        scores = self._matrix @ query
        chosen, _ = _shortlist(scores, k, shortlist)
        # the k best are among the shortlist's rows, which are in row order: the same rows,
        # ties broken alike
        top = _best(scores, k) if chosen is None else chosen[_best(scores[chosen], k)]
        return top, scores, 0.0, chosen

    def vectors(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, F32]:
        """The stored vectors of these episodes (those that have one), as read-only copies."""
        with self._lock:
            rows = [(i, r) for i in ids if (r := self._rows.get(i.int)) is not None]
            if not rows:
                return {}
            block = self._matrix[[r for _, r in rows]]
            return {i: block[n] for n, (i, _) in enumerate(rows)}

    def expand(self, query: F32, feedback: list[uuid.UUID], weight: float) -> F32 | None:
        """Pseudo-relevance feedback (Rocchio): the query plus ``weight`` x the mean vector of
        the ``feedback`` episodes, re-normalised; None when none of them has a vector."""
        with self._lock:
            rows = [r for i in feedback if (r := self._rows.get(i.int)) is not None]
            if not rows or weight <= 0:
                return None
            block = self._matrix[rows]
        return rocchio(query, block, weight)

    def lookup(
        self, ids: list[uuid.UUID], queries: list[F32]
    ) -> tuple[list[int], list[list[float]], F32]:
        """For the ``ids`` that have a vector: their positions in ``ids``, their cosine with each
        query (one list per query, aligned with the positions) and their vectors (one row each),
        from one pass over the ids and one gather of their rows."""
        with self._lock:
            found = list(map(self._rows.get, map(id_int, ids)))
            positions: list[int]
            rows: list[int]
            if None in found:
                positions = [n for n, row in enumerate(found) if row is not None]
                rows = [row for row in found if row is not None]
            else:  # (the usual case: every candidate has a vector)
                positions, rows = list(range(len(found))), found  # type: ignore[assignment]
            if not rows:
                return [], [[] for _ in queries], np.zeros((0, self.dimensions), dtype=np.float32)
            block = self._matrix[rows]
            return positions, [(block @ query).tolist() for query in queries], block

    def scores(self, query: F32, ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
        with self._lock:
            rows = [(i, r) for i in ids if (r := self._rows.get(i.int)) is not None]
            if not rows:
                return {}
            values = self._matrix[[r for _, r in rows]] @ query
            return {i: float(v) for (i, _), v in zip(rows, values, strict=True)}


def _shortlist(scores: F32, k: int, size: int) -> tuple[npt.NDArray[np.intp] | None, float | None]:
    """The rows of the ``size`` highest ``scores`` in row order (more where the lowest of them
    ties), and the k-th highest score (k < size), from one partition of the scores and one of
    the shortlist's; (None, None) for size 0. (Found apart, the k-th score and the shortlist
    took a partition and an argpartition of every score: 1.7 against 0.6 ms at 100K.)"""
    if not size:
        return None, None
    n = scores.shape[0]
    chosen = np.flatnonzero(scores >= np.partition(scores, n - size)[n - size])
    listed = scores[chosen]
    last = listed.shape[0] - k
    return chosen, float(np.partition(listed, last)[last])


def _kth_above(scores: F32, k: int, floor: float) -> float | None:
    """The k-th highest of ``scores`` when at least k of them reach ``floor`` (it is then
    among those: one partition of a few rows instead of all), else None."""
    above = scores[scores >= floor]
    last = above.shape[0] - k
    return None if last < 0 else float(np.partition(above, last)[last])


def _shortlist_bound(a: float, expanded: F32, query: F32) -> float:
    """The highest cosine with ``expanded`` a unit row whose cosine with the unit ``query`` is
    at most ``a`` can have (``search_with_feedback``), plus a float32 margin."""
    c = min(1.0, float(expanded @ query))
    bound = 1.0 if a >= c else a * c + math.sqrt(max(0.0, 1 - a * a) * (1 - c * c))
    return bound + _MARGIN


_best = quantized.best  # highest first, ties in row order


def rocchio(query: F32, rows: F32, weight: float) -> F32 | None:
    """The query plus ``weight`` x the mean of ``rows``, re-normalised; None if that is 0."""
    moved = query + weight * rows.mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return None if norm == 0 else (moved / norm).astype(np.float32)
