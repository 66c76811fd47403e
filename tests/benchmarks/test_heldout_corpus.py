"""The held-out retrieval set loads, is deterministic, and its labels are consistent."""

from __future__ import annotations

from benchmarks.retrieval_heldout.corpus import CONTEXT_KINDS, INTENTS, build_heldout
from benchmarks.retrieval_heldout.families import CROSS, FAMILIES


def test_heldout_corpus_shape_and_labels() -> None:
    corpus = build_heldout()
    assert len(FAMILIES) >= 30
    assert len({f.key for f in FAMILIES}) == len(FAMILIES)
    assert len(corpus.queries) >= 120
    assert len(corpus.queries) == sum(len(f.queries) for f in FAMILIES) + len(CROSS)
    n = len(corpus.episodes)
    for q in corpus.queries:
        assert q.relevance, q.text
        assert all(0 <= i < n and gain > 0 for i, gain in q.relevance.items()), q.text
        assert q.kind in INTENTS
        assert q.variation in CONTEXT_KINDS
        if q.kind == "fail":  # the answer is an attempt that met an error
            for i in q.relevance:
                steps = corpus.episodes[i].steps
                assert any(s.result is not None and s.result.type == "error" for s in steps)
    for family in FAMILIES:
        outcomes = {e.outcome.type for e in corpus.episodes if e.family == family.key}
        assert "success" in outcomes, family.key
        assert outcomes & {"failure", "partial_success"}, family.key
    assert {q.variation for q in corpus.queries} == set(CONTEXT_KINDS)
    assert sum(len(q.relevance) > 1 for q in corpus.queries) >= len(corpus.queries) // 2


def test_heldout_corpus_is_deterministic() -> None:
    a, b = build_heldout(), build_heldout()
    assert [e.description for e in a.episodes] == [e.description for e in b.episodes]
    assert [q.relevance for q in a.queries] == [q.relevance for q in b.queries]
