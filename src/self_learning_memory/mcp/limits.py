"""Bounds on every MCP tool argument (the HEAD server's constants, where it has them).

They are part of each tool's input schema (``maximum``, ``maxLength``, ``maxItems`` ...), so an
agent can see them in ``tools/list``, and a call that breaks one gets a tool error naming the
argument, the problem and the limit. The library checks its own limits again (for example the
UTF-8 byte length of a description), so nothing unchecked reaches the store.
"""

from __future__ import annotations

from typing import Final, Literal

MAX_LIMIT: Final = 1000  # query_memory, list_episodes, analyze_patterns
DEFAULT_QUERY_LIMIT: Final = 10
DEFAULT_LIST_LIMIT: Final = 20
DEFAULT_ANALYZE_LIMIT: Final = 20
MAX_OFFSET: Final = 10_000_000
MAX_SEARCH_PATTERNS: Final = 100
DEFAULT_SEARCH_PATTERNS: Final = 10
MAX_RECOMMEND: Final = 50
DEFAULT_RECOMMEND: Final = 3
MAX_KNOWN_FAILURES: Final = 100
DEFAULT_KNOWN_FAILURES: Final = 5

MAX_TEXT: Final = 10_000  # a task description, a query, an action, a verdict, an output
MAX_NAME: Final = 200  # domain, language, framework, a tag
MAX_TAGS: Final = 50
MAX_TOOL_NAME: Final = 256
MAX_ID: Final = 64  # an episode id is a 36-character UUID
MAX_LIST_ITEMS: Final = 1000  # artifacts, completed, failed
MAX_ITEM: Final = 10_000  # one artifact / completed / failed entry
MAX_STEP_NUMBER: Final = 1_000_000
MAX_LATENCY_MS: Final = 86_400_000  # one day
MAX_TOKENS: Final = 100_000_000
MAX_PARAMETER_KEYS: Final = 1000
# An episode's JSON size (the library's MAX_EPISODE_SIZE, MAX_OUTCOME_SIZE and
# MAX_OPEN_EPISODE_SIZE): sizes of a whole object, which JSON Schema cannot express, so the
# tool descriptions state them and the library refuses a call that breaks one.
MAX_EPISODE_BYTES: Final = 10_000_000
MAX_OUTCOME_BYTES: Final = 1_000_000
MAX_STEPS_BYTES: Final = 8_999_900

TaskTypeName = Literal[
    "code_generation",
    "debugging",
    "refactoring",
    "testing",
    "analysis",
    "documentation",
    "other",
]
ComplexityName = Literal["simple", "moderate", "complex"]
OutcomeName = Literal["success", "partial_success", "failure"]
ResultName = Literal["success", "error", "timeout"]
PatternTypeName = Literal["tool_sequence", "decision_point", "error_recovery", "context_pattern"]
RetrievalModeName = Literal["hybrid", "lexical", "vector", "legacy"]
MetricType = Literal["all", "performance", "episodes", "system", "sandbox"]

MAX_ECHO: Final = 64  # characters of a client's value an error message repeats
UNKNOWN_TOOL_KEY: Final = "<unknown>"  # the one metrics key for every unknown tool name


def echo(value: object, keep: int = MAX_ECHO) -> str:
    """A client's value as an error message may repeat it: at most ``keep`` characters, then
    its full length, so a 10 MB argument is never sent back."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= keep:
        return text
    return f"{text[:keep]}... ({len(text)} chars)"
