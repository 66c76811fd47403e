"""Bounds and choices of the arguments both front ends take (standard library only, so the CLI's
``--help`` and the MCP server's handshake load neither pydantic nor the models).

The bounds on text, names, tags and tools are the model's own limits
(``core/validation.py``); the others bound what a front end accepts for a store that holds more
(one day of latency per step where the store holds 2**63 - 1 ms). The choices are the wire
values of the model's enums (``core/types.py``, ``config.py``) and of the trend request
(``analysis/memory_request.py``); ``tests/mcp_server/test_in_process.py`` checks they are
equal.
"""

from __future__ import annotations

from typing import Final, Literal

# the model's limits (core/validation.py: MAX_DESCRIPTION_LEN, MAX_ACTION_LEN, MAX_NAME_LEN,
# MAX_TAGS, MAX_TOOL_LEN, MAX_LIST_ITEMS, MAX_ARTIFACT_SIZE); a front end counts characters,
# the library counts the UTF-8 bytes of a description again
MAX_TEXT: Final = 10_000  # a task description, a query, an action, a verdict, an output
MAX_NAME: Final = 200  # domain, language, framework, a tag
MAX_TAGS: Final = 50
MAX_TOOL_NAME: Final = 256
MAX_LIST_ITEMS: Final = 1000  # artifacts, completed, failed
MAX_PARAMETERS_BYTES: Final = 1_000_000  # a step's parameters as JSON

# what a front end accepts
MAX_LIMIT: Final = 1000  # episodes or patterns per answer
MAX_OFFSET: Final = 10_000_000
MAX_KNOWN_FAILURES: Final = 100
DEFAULT_KNOWN_FAILURES: Final = 5
MAX_STEP_NUMBER: Final = 1_000_000
MAX_LATENCY_MS: Final = 86_400_000  # one day
MAX_TOKENS: Final = 100_000_000

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
