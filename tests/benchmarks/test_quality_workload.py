"""The workload query classes of the retrieval-quality benchmark (error, identifier, mixed).

Checked on the real corpus (pure Python, no store): sizes, labels, that no query copies a stored
task description, and that the keys are what the classes promise (an error that occurs in the
family's episodes, an identifier shared by several of them).
"""

from __future__ import annotations

import random

import pytest
from benchmarks.retrieval_quality.corpus import build_corpus, episode_text
from benchmarks.retrieval_quality.families import FAMILIES
from benchmarks.retrieval_quality.workload import (
    ERROR_LEAD_INS,
    GENERIC_TOOLS,
    WORKLOAD_CLASSES,
    identifiers,
    vary_error,
)

CORPUS = build_corpus(7)


def _texts(family: str) -> list[str]:
    return [episode_text(e).lower() for e in CORPUS.episodes if e.family == family]


def test_each_new_class_has_at_least_50_queries_over_most_families() -> None:
    families = {f.key for f in CORPUS.families}
    for kind in WORKLOAD_CLASSES:
        queries = [q for q in CORPUS.queries if q.kind == kind]
        assert len(queries) >= 50, kind
        assert {q.family for q in queries} <= families
        assert len({q.family for q in queries}) >= 0.9 * len(families), kind
        assert len({q.text for q in queries}) == len(queries), kind  # no duplicates


def test_labels_are_the_family_the_key_came_from() -> None:
    for q in CORPUS.queries:
        if q.kind == "paraphrase":
            continue
        family = next(f for f in CORPUS.families if f.key == q.family)
        assert q.key is not None
        assert q.key in q.text
        assert q.context.domain == family.domain
        assert q.context.language == family.language
        if q.kind == "error":
            # the message occurs in the family's episodes; a changed one keeps its shape
            assert any(family.error[1].lower() in t for t in _texts(q.family))
            if "changed" not in q.variation:
                assert q.key == family.error[1]
            else:
                assert q.key != family.error[1]
                assert len(q.key.split()) == len(family.error[1].split())
        else:
            assert q.key in identifiers(family, frozenset(t for f in FAMILIES for t, _ in f.steps))
            assert q.key not in GENERIC_TOOLS
            assert sum(q.key.lower() in t for t in _texts(q.family)) >= 2  # never one episode


def test_no_query_copies_a_stored_description() -> None:
    descriptions = [e.description.lower() for e in CORPUS.episodes]
    for q in CORPUS.queries:
        text = q.text.lower()
        assert not any(text in d or d in text for d in descriptions), q.text
    overlap = CORPUS.stats()["query_overlap_by_class"]
    for kind in WORKLOAD_CLASSES:
        assert overlap[kind]["max"] < 0.5, kind  # type: ignore[index]


def test_workload_is_seeded_and_tiny_corpora_work() -> None:
    tiny = build_corpus(3, families=3, episodes_per_family=3, workload_per_class=1)
    assert (
        tiny.queries
        == build_corpus(3, families=3, episodes_per_family=3, workload_per_class=1).queries
    )
    assert build_corpus(4, families=3).queries != build_corpus(3, families=3).queries
    kinds = [q.kind for q in tiny.queries]
    assert kinds.count("paraphrase") == 9
    assert 1 <= kinds.count("identifier") <= 3
    assert kinds.count("mixed") == kinds.count("identifier")
    only = build_corpus(3, families=3, classes=("error",))
    assert {q.kind for q in only.queries} == {"error"}
    with pytest.raises(ValueError, match="unknown query class"):
        build_corpus(3, families=3, classes=("typo",))


def test_exact_key_sanity_counts_add_up() -> None:
    counts = CORPUS.stats()["exact_key_matches"]
    for kind in WORKLOAD_CLASSES:
        row = counts[kind]  # type: ignore[index]
        assert row["none"] + row["one_episode"] + row["several"] == row["queries"]
    assert counts["identifier"]["one_episode"] == 0  # type: ignore[index]


def test_error_variations() -> None:
    rng = random.Random(0)
    seen = {
        vary_error("ConnectionRefusedError: redis at localhost:6379", rng)[2] for _ in range(40)
    }
    assert seen == {"alone", "lead-in", "changed", "lead-in+changed"}
    for _ in range(20):
        text, key, variation = vary_error("ERROR: deadlock detected", rng)
        assert key == "ERROR: deadlock detected"  # nothing to change: a lead-in instead
        assert variation in {"alone", "lead-in"}
        assert text == key or any(text == lead + key for lead in ERROR_LEAD_INS)
    # codes and HTTP statuses are not numbers to vary
    for message in ("error[E0599]: no method", "403 Forbidden: CSRF", "'utf-8' codec 0xe9"):
        for _ in range(10):
            _, key, _ = vary_error(message, rng)
            assert key == message


def test_identifiers_are_extracted_by_shape() -> None:
    tools = frozenset(t for f in FAMILIES for t, _ in f.steps)
    by_key = {f.key: identifiers(f, tools) for f in FAMILIES}
    assert "terraform plan" in by_key["ops_terraform_bucket"]
    assert "aws_s3_bucket" in by_key["ops_terraform_bucket"]
    assert "CREATE INDEX CONCURRENTLY" in by_key["db_slow_query"]
    assert "queryClient.invalidateQueries" in by_key["fe_stale_state"]
    assert "kubectl logs --previous" in by_key["ops_crashloop"]
    for found in by_key.values():
        assert not any("{" in i or i in GENERIC_TOOLS for i in found)
        assert not any(i in {"UTC", "SQL", "CSS"} for i in found)  # acronyms are not identifiers
