"""Where a retrieval's time goes: a timeline of its phases, for the benchmarks.

``phases(memory)`` wraps, for as long as its ``with`` block lasts, the calls a hybrid
retrieval makes, and records when each starts and ends relative to the retrieval's own start
(``Phases.search``):

- ``embed``: the query embedding (the provider's ``embed``, its thread hop included);
- ``data_version``, ``full_text`` (``lexical_candidates``), ``candidate_rows``
  (``candidates_by_ids``), ``usage`` (``episode_usage``), ``context_candidates``: the store's
  calls, each awaited on the store's thread;
- ``vector_scan``: the in-process index's ``search_with_feedback`` (on the event loop);
- ``rank``: ``rank_with_signals`` (scoring, fusion and MMR, on the event loop);
- ``episode_cache``: the result episodes read and decoded from the LMDB cache (one call, on a
  thread).

``Phases.summary()`` gives, per phase, how many searches had it and the medians over those
searches of its summed duration, its first start and its last end (ms), with the median total.
The wrappers cost a few microseconds per call, so the totals are a little above the uninstrumented
figures; the phases' order and sizes are what this is for. Everything is restored on exit.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from self_learning_memory import SelfLearningMemory
from self_learning_memory.retrieval import hybrid, ranking
from self_learning_memory.retrieval.index import VectorIndex

STORE_CALLS = {
    "data_version": "data_version",
    "lexical_candidates": "full_text",
    "candidates_by_ids": "candidate_rows",
    "episode_usage": "usage",
    "context_candidates": "context_candidates",
}


class Phases:
    """The recorded phases of the retrievals run inside :meth:`search` blocks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the cache reads are recorded from a worker thread
        self._events: list[tuple[str, float, float]] = []
        self._start: float | None = None
        self._searches: list[dict[str, tuple[float, float, float]]] = []
        self._totals: list[float] = []

    def record(self, phase: str, started: float, ended: float) -> None:
        with self._lock:
            if self._start is not None:
                self._events.append((phase, started - self._start, ended - self._start))

    @contextlib.contextmanager
    def search(self) -> Iterator[None]:
        """Time one retrieval: the phases recorded inside the block are its own."""
        with self._lock:
            self._events = []
            self._start = time.perf_counter()
        try:
            yield
        finally:
            ended = time.perf_counter()
            with self._lock:
                start, events, self._start = self._start, self._events, None
            assert start is not None
            merged: dict[str, tuple[float, float, float]] = {}
            for phase, begin, end in events:
                spent, first, last = merged.get(phase, (0.0, begin, end))
                merged[phase] = (spent + end - begin, min(first, begin), max(last, end))
            self._searches.append(merged)
            self._totals.append(ended - start)

    def summary(self) -> dict[str, Any]:
        """Medians (ms) over the searches: the total, and per phase its summed duration, first
        start and last end over the searches that had it (``searches``)."""
        out: dict[str, Any] = {
            "searches": len(self._totals),
            "total_p50_ms": _ms(statistics.median(self._totals)) if self._totals else None,
        }
        names = dict.fromkeys(p for s in self._searches for p in s)
        by_phase: dict[str, Any] = {}
        for phase in names:
            seen = [s[phase] for s in self._searches if phase in s]
            by_phase[phase] = {
                "searches": len(seen),
                "duration_p50_ms": _ms(statistics.median(v[0] for v in seen)),
                "start_p50_ms": _ms(statistics.median(v[1] for v in seen)),
                "end_p50_ms": _ms(statistics.median(v[2] for v in seen)),
            }
        out["phases"] = dict(sorted(by_phase.items(), key=lambda kv: kv[1]["start_p50_ms"]))
        return out


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _timed_async(fn: Callable[..., Any], phase: str, phases: Phases) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            phases.record(phase, started, time.perf_counter())

    return wrapper


def _timed(fn: Callable[..., Any], phase: str, phases: Phases) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases.record(phase, started, time.perf_counter())

    return wrapper


@contextlib.contextmanager
def optional(memory: SelfLearningMemory, on: bool) -> Iterator[Phases | None]:
    """:func:`phases` when ``on`` (a benchmark's ``--phases``), else None: nothing wrapped."""
    if not on:
        yield None
        return
    with phases(memory) as recorder:
        yield recorder


def search(recorder: Phases | None) -> contextlib.AbstractContextManager[None]:
    """``recorder.search()``, or nothing to record without a recorder."""
    return contextlib.nullcontext() if recorder is None else recorder.search()


@contextlib.contextmanager
def phases(memory: SelfLearningMemory) -> Iterator[Phases]:
    """Record the phases of ``memory``'s retrievals (inside ``Phases.search`` blocks) until the
    block exits; the memory's store, embedding provider and cache objects are wrapped on the
    instance, the index and ranking functions on their class and module."""
    recorder = Phases()
    restore: list[Callable[[], None]] = []

    def patch(owner: Any, name: str, wrapped: Callable[..., Any], on_instance: bool) -> None:
        own = vars(owner)
        if on_instance and name not in own:  # shadows the class's method until deleted
            restore.append(lambda: delattr(owner, name))
        else:  # the owner's own attribute (a module's, a class's, an instance's), put back
            original = own[name]
            restore.append(lambda: setattr(owner, name, original))
        setattr(owner, name, wrapped)

    try:
        storage = memory.storage
        for call, phase in STORE_CALLS.items():
            patch(storage, call, _timed_async(getattr(storage, call), phase, recorder), True)
        if memory.vectors is not None:
            provider = memory.vectors.provider
            patch(provider, "embed", _timed_async(provider.embed, "embed", recorder), True)
        if memory.cache is not None:
            cache = memory.cache
            patch(cache, "get_many", _timed(cache.get_many, "episode_cache", recorder), True)
        scan = VectorIndex.search_with_feedback
        patch(VectorIndex, "search_with_feedback", _timed(scan, "vector_scan", recorder), False)
        rank = ranking.rank_with_signals  # what hybrid imported
        patch(hybrid, "rank_with_signals", _timed(rank, "rank", recorder), False)
        yield recorder
    finally:
        for undo in reversed(restore):
            undo()
