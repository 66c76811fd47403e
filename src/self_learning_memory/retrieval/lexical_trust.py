"""How much to trust exact words for one query: the per-query lexical weight of hybrid ranking.

Agents do not only describe a task in their own words; they paste the error they just hit or
name a command, a file or an identifier. For a paraphrase the vector signal finds the right kind
of task and exact words add little; for ``psycopg.errors.DuplicateColumn: column already
exists`` or ``kubectl logs --previous crash loop`` the exact tokens are the best evidence there
is, and embeddings blur them. :func:`lexical_weight` moves the lexical share of the hybrid
fusion between a floor (``1 - vector_weight``, what a plain-language query gets) and a ceiling
(``lexical_weight_max``) by how much of the query looks like code, from the query's own text and
the tools the candidate episodes recorded; no per-backend statistics, so it works the same on
every store:

- **error line** (trust 1): an exception class name (``ValueError``, ``...Exception``), or a
  ``name: message`` line whose name says error, exception, fatal, panic, warning, failed,
  timeout or violation (``ERROR: deadlock detected``) or is itself code-shaped
  (``psycopg.errors.DuplicateColumn:``);
- **code-like tokens**: camelCase or CamelCase, snake_case, dotted names, paths and routes,
  ``--flags``, calls, sizes and durations with their unit (``512MB``, ``9s``), versions,
  multi-part hyphenated names (``webpack-bundle-analyzer``, ``HMAC-SHA256``), operators and
  brackets, quoted names (``'total'``), runs of upper-case words (``CREATE INDEX``);
- **tool names**: a query word equal to a tool that some candidates used and at most half of
  them did (a tool every episode uses, like ``git``, says nothing).

Trust is ``min(1, lexical_trust_scale x (code tokens + tool names) / query words)``: one
identifier among three words (``sqlalchemy events lines``) is a code query; the same identifier
appended to a fifteen-word description moves the weight a little. The weight is
``floor + (ceiling - floor) x trust``. Ceiling 0.6 and scale 3 were chosen on the tuning half of
``benchmarks.retrieval_quality`` and checked on the held-out half (docs/performance.md).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence

from ..config import RetrievalConfig
from ..model.records import EpisodeCandidate

__all__ = [
    "code_tokens",
    "is_error_line",
    "lexical_trust",
    "lexical_weight",
    "query_words",
    "tool_mentions",
    "tool_tokens",
]

_CODE_SHAPES = (
    re.compile(r"[a-z][A-Z]|[A-Z]{2,}[a-z]{2,}"),  # camelCase, CamelCase, OOMKilled
    re.compile(r"[A-Za-z0-9]_[A-Za-z0-9]"),  # snake_case
    re.compile(r"[A-Za-z]\.[A-Za-z_]"),  # dotted.name
    re.compile(r"/\w"),  # path, route
    re.compile(r"^--?[A-Za-z]"),  # --flag, -m
    re.compile(r"\w\(|\(\)"),  # call(
    re.compile(r"^\d+(\.\d+)?(ms|s|m|h|kb|mb|gb|k|x|%)$", re.IGNORECASE),  # 30s, 512MB
    re.compile(r"\w-\w+-\w|[A-Za-z]-[A-Za-z]*\d|\d-[A-Za-z]"),  # a-b-c, HMAC-SHA256
    re.compile(r"::|=|->|\[|\]|\{|\}|<|>|\\"),  # operators, brackets
    re.compile(r"^v?\d+\.\d+"),  # versions
)
_CAPS_RUN = re.compile(r"\b[A-Z]{3,}(?:\s+[A-Z]{2,})+\b")  # CREATE INDEX, SELECT FOR UPDATE
_QUOTED = re.compile(r"(?<!\w)['\"`][^'\"`\s]+['\"`]")  # 'total', `make`
_EXCEPTION = re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b")
_NAMED_LINE = re.compile(r"(\S+):\s+\S")  # "name: message"
_ERROR_WORD = re.compile(
    r"error|exception|fatal|panic|warning|failed|failure|timeout|violation", re.IGNORECASE
)
_STRIP = ",;.!?()"


def _core(word: str) -> str:
    return word.strip(_STRIP).rstrip(":")


def _code_shaped(word: str) -> bool:
    return any(shape.search(word) for shape in _CODE_SHAPES)


def code_tokens(text: str) -> list[str]:
    """The code-like tokens of a query (see the module docstring), in order."""
    found = [m.group() for m in _CAPS_RUN.finditer(text)]
    found += [m.group() for m in _QUOTED.finditer(text)]
    for raw in text.split():
        word = _core(raw)
        if len(word) >= 2 and _code_shaped(word):
            found.append(word)
    return found


def is_error_line(text: str) -> bool:
    """Whether the query contains a pasted error line."""
    if _EXCEPTION.search(text):
        return True
    for match in _NAMED_LINE.finditer(text):
        name = match.group(1).strip(_STRIP)
        if _ERROR_WORD.search(name) or _code_shaped(name):
            return True
    return False


@functools.lru_cache(maxsize=16_384)
def tool_tokens(tools: tuple[str, ...]) -> frozenset[str]:
    """An episode's tools, lower-cased (cached: the same tool lists recur across queries)."""
    return frozenset(t.lower() for t in tools)


def tool_mentions(text: str, candidates: Sequence[EpisodeCandidate]) -> list[str]:
    """Query words that name a tool some candidates used, and at most half of them did."""
    if not candidates:
        return []
    words, known = query_words(text)
    # count only the query's words among the candidates' tools (a query has a few words,
    # the candidates hundreds of tools; most candidates' tools hold none of them)
    used: Counter[str] = Counter()
    for c in candidates:
        if c.tools and not known.isdisjoint(mine := tool_tokens(c.tools)):
            used.update(mine & known)
    most = len(candidates) / 2
    return [w for w in words if 0 < used.get(w, 0) <= most]


@functools.lru_cache(maxsize=1024)
def query_words(text: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The query's distinct lower-cased words, in order and as a set."""
    words = dict.fromkeys(w.strip(_STRIP + "'\"`").lower() for w in text.split())
    words.pop("", None)
    return tuple(words), frozenset(words)


@functools.lru_cache(maxsize=1024)
def _text_signals(text: str) -> tuple[bool, int, int]:
    """What the query's own text says (a retrieval asks up to three times, with different
    candidates): whether it holds an error line, its word count, its code-like tokens."""
    if is_error_line(text):
        return True, 0, 0
    return False, len(text.split()), len(code_tokens(text))


def lexical_trust(text: str, candidates: Sequence[EpisodeCandidate], scale: float) -> float:
    """0 for plain language, up to 1 for an error line or a query made of identifiers."""
    error_line, words, code = _text_signals(text)
    if error_line:
        return 1.0
    if words == 0:
        return 0.0
    signals = code + len(tool_mentions(text, candidates))
    return min(1.0, scale * signals / words)


def lexical_weight(
    text: str, candidates: Sequence[EpisodeCandidate], config: RetrievalConfig
) -> float:
    """The lexical share of the hybrid fusion for this query, between ``1 - vector_weight``
    and ``lexical_weight_max``."""
    floor = 1.0 - config.vector_weight
    ceiling = max(floor, config.lexical_weight_max)
    return floor + (ceiling - floor) * lexical_trust(text, candidates, config.lexical_trust_scale)
