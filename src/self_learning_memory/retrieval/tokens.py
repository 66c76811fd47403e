"""The retrieval tokeniser: the words a query asks for and the words a document holds.

Words are runs of word characters, lower-cased, without stopwords. :func:`query_terms` keeps
a query's distinct words in order (what the store's full-text search is asked for);
:func:`tokens` stems them (a few English suffixes) into the set that the ranking's term
coverage and MMR's word overlap compare, and that degraded reads (``resilience/degraded.py``)
match against.
"""

from __future__ import annotations

import functools
import re

__all__ = ["MAX_QUERY_TERMS", "STOPWORDS", "jaccard", "query_terms", "stem", "tokens"]

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "with",
        "without",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "my",
        "our",
        "your",
        "we",
        "you",
        "me",
        "us",
        "so",
        "if",
        "then",
        "than",
    ]
)
MAX_QUERY_TERMS = 32


def stem(word: str) -> str:
    """The word without one of the suffixes ing, es, ed, s (when at least 4 letters remain)."""
    for suffix in ("ing", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@functools.lru_cache(maxsize=65_536)
def tokens(text: str) -> frozenset[str]:
    """The stemmed, stopword-free words of a text (cached: descriptions recur across queries)."""
    return frozenset(stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS)


def query_terms(text: str) -> list[str]:
    """The distinct searchable words of a query, in order, at most 32."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_TERMS]


def jaccard(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    """The overlap of two word sets: shared words over all words (0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 0.0
