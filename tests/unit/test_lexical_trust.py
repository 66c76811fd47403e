"""The per-query lexical weight of hybrid ranking (core/lexical_trust.py)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from self_learning_memory import RetrievalConfig, TaskContext, TaskType
from self_learning_memory.model.records import EpisodeCandidate
from self_learning_memory.retrieval.lexical_trust import (
    code_tokens,
    is_error_line,
    lexical_trust,
    lexical_weight,
    tool_mentions,
)

CFG = RetrievalConfig()
FLOOR = 1 - CFG.vector_weight


def cand(n: int, tools: tuple[str, ...]) -> EpisodeCandidate:
    return EpisodeCandidate(
        episode_id=uuid.UUID(int=n),
        task_description=f"task {n}",
        task_type=TaskType.CODE_GENERATION,
        context=TaskContext(domain="web-api"),
        outcome_type="success",
        reward_total=1.0,
        end_time=None,
        tools=tools,
    )


# git in every episode, alembic in one of four
POOL = [cand(1, ("git", "alembic")), cand(2, ("git",)), cand(3, ("git",)), cand(4, ("git",))]


@pytest.mark.parametrize(
    "text",
    [
        "ValueError: Input contains NaN",
        "why do I get psycopg.errors.DuplicateColumn: column already exists",
        "ERROR: canceling statement due to statement timeout",
        "fails with ReadTimeout: webhook receiver did not answer within 9s",
        "how to fix WARNING: DATA RACE",
        "java.lang.NullPointerException in MainActivity.onCreate",
    ],
)
def test_error_lines_are_recognised(text: str) -> None:
    assert is_error_line(text)
    assert lexical_weight(text, POOL, CFG) == pytest.approx(CFG.lexical_weight_max)


@pytest.mark.parametrize(
    "text",
    [
        "Task: add pagination to the orders endpoint",
        "TODO: the settings page shows stale values after saving",
        "Need help: notify subscribers over HTTP when an invoice changes",
        "Next up: database CPU spikes whenever we list customers",
        "Banking should keep working offline for 30 days",
    ],
)
def test_plain_language_gets_the_default_weight(text: str) -> None:
    assert not is_error_line(text)
    assert code_tokens(text) == []
    assert lexical_weight(text, POOL, CFG) == pytest.approx(FLOOR)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kubectl logs --previous", ["--previous"]),
        ("df.drop_duplicates on created_at", ["df.drop_duplicates", "created_at"]),
        ("GET /orders is slow", ["/orders"]),
        ("useEffect runs twice", ["useEffect"]),
        ("limit 512MB, timeout 30s", ["512MB", "30s"]),
        ("CREATE INDEX CONCURRENTLY on big tables", ["CREATE INDEX CONCURRENTLY"]),
        ("reading 'total' of undefined", ["'total'"]),
        ("webpack-bundle-analyzer and HMAC-SHA256", ["webpack-bundle-analyzer", "HMAC-SHA256"]),
        ("a multi-stage build, 99 percent of the API", []),
    ],
)
def test_code_tokens_by_shape(text: str, expected: list[str]) -> None:
    assert code_tokens(text) == expected


def test_tool_names_count_only_when_they_distinguish_episodes() -> None:
    assert tool_mentions("alembic revision keeps failing", POOL) == ["alembic"]
    assert tool_mentions("git history has a leaked key", POOL) == []  # every episode uses git
    assert tool_mentions("anything", []) == []
    # one tool among three words: an identifier query
    assert lexical_trust("alembic migration rollback", POOL, CFG.lexical_trust_scale) == 1.0


TOOLS = ["git", "Alembic", "pytest", "docker", "kubectl", "npm", "make"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(TOOLS), max_size=4), max_size=12),
    st.lists(st.sampled_from([*TOOLS, "alembic", "fix", "the", "build"]), max_size=6),
)
def test_tool_mentions_count_each_query_word_over_every_candidates_tools(
    tool_lists: list[list[str]], words: list[str]
) -> None:
    """The count skips candidates whose tools hold none of the query's words: the same words
    as counting over every candidate (the definition, written plainly here)."""
    pool = [cand(n, tuple(tools)) for n, tools in enumerate(tool_lists)]
    text = " ".join(words)
    query = list(dict.fromkeys(w.lower() for w in words))
    used = {w: sum(w in {t.lower() for t in c.tools} for c in pool) for w in query}
    expected = [w for w in query if 0 < used[w] <= len(pool) / 2]
    assert tool_mentions(text, pool) == expected


def test_the_weight_is_graded_by_the_share_of_code_in_the_query() -> None:
    short = lexical_weight("drop_duplicates keep newest", POOL, CFG)
    long = lexical_weight(
        "the nightly import loads every customer twice so totals are wrong; drop_duplicates",
        POOL,
        CFG,
    )
    assert short == pytest.approx(CFG.lexical_weight_max)
    assert FLOOR < long < short


def test_a_ceiling_at_or_below_the_floor_fixes_the_weight() -> None:
    fixed = CFG.model_copy(update={"lexical_weight_max": 0.0})
    assert lexical_weight("ValueError: boom", POOL, fixed) == pytest.approx(FLOOR)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_weight_stays_between_floor_and_ceiling(text: str) -> None:
    weight = lexical_weight(text, POOL, CFG)
    assert FLOOR - 1e-9 <= weight <= CFG.lexical_weight_max + 1e-9
