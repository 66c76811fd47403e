"""The library's input limits: sizes of texts, lists, steps and episodes, the integer ranges the
stores hold, the page size of a read and the size of sandboxed code.

Standard library only, so the CLI's ``--help`` and the MCP server's handshake can use them
without loading pydantic or the models. ``validation.py`` enforces them; the episode size
tracking, the reads, the sandbox and the front ends import them from here.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "COMPLETION_RESERVE",
    "MAX_ACTION_LEN",
    "MAX_ARTIFACT_SIZE",
    "MAX_CODE_BYTES",
    "MAX_DESCRIPTION_LEN",
    "MAX_EPISODE_SIZE",
    "MAX_FEEDBACK_ITEMS",
    "MAX_LATENCY_MS",
    "MAX_LIMIT",
    "MAX_LIST_ITEMS",
    "MAX_METADATA_KEYS",
    "MAX_METADATA_VALUE_LEN",
    "MAX_NAME_LEN",
    "MAX_OBSERVATION_LEN",
    "MAX_OPEN_EPISODE_SIZE",
    "MAX_OUTCOME_SIZE",
    "MAX_SANDBOX_POOL",
    "MAX_STEP_COUNT",
    "MAX_STEP_NUMBER",
    "MAX_TAGS",
    "MAX_TASK_CHARS",
    "MAX_TOKENS_USED",
    "MAX_TOOL_LEN",
    "MAX_VERDICT_LEN",
]

MAX_DESCRIPTION_LEN: Final = 10_000  # bytes, UTF-8
MAX_STEP_COUNT: Final = 1_000
MAX_OBSERVATION_LEN: Final = 10_000  # bytes: a step result's output or message
# bytes: artifact-like parameter values and the whole parameters JSON
MAX_ARTIFACT_SIZE: Final = 1_000_000
MAX_EPISODE_SIZE: Final = 10_000_000  # bytes of the episode's JSON
# An episode whose steps were all accepted can always complete: log_step keeps the open
# episode's JSON within MAX_OPEN_EPISODE_SIZE, and completion adds at most the outcome's JSON
# (MAX_OUTCOME_SIZE, checked by check_outcome) plus the end time (under 30 bytes; 100 kept).
MAX_OUTCOME_SIZE: Final = 1_000_000  # bytes of the outcome's JSON
COMPLETION_RESERVE: Final = MAX_OUTCOME_SIZE + 100
MAX_OPEN_EPISODE_SIZE: Final = MAX_EPISODE_SIZE - COMPLETION_RESERVE  # 8,999,900 bytes
MAX_TOOL_LEN: Final = 256
MAX_ACTION_LEN: Final = 10_000
MAX_NAME_LEN: Final = 200  # domain, language, framework, a tag
MAX_TAGS: Final = 50
MAX_METADATA_KEYS: Final = 100
MAX_METADATA_VALUE_LEN: Final = 10_000
MAX_LIST_ITEMS: Final = 1_000  # artifacts, completed, failed
MAX_VERDICT_LEN: Final = 10_000  # a verdict, a reason, one artifact / completed / failed entry
# What the stores' integer columns hold: steps.step_number is PostgreSQL ``integer`` (int4);
# latency_ms and tokens_used are ``bigint`` there and SQLite INTEGER (signed 64-bit) everywhere.
MAX_STEP_NUMBER: Final = 2**31 - 1
MAX_LATENCY_MS: Final = 2**63 - 1
MAX_TOKENS_USED: Final = 2**63 - 1

MAX_LIMIT: Final = 1000  # episodes or patterns one read returns
MAX_FEEDBACK_ITEMS: Final = 100  # episode (and pattern) ids one retrieval feedback names

MAX_CODE_BYTES: Final = 100_000  # UTF-8 bytes of code the sandbox runs
MAX_SANDBOX_POOL: Final = 20  # warm sandbox runtimes (threads), the ceiling of sandbox.pool_size
MAX_TASK_CHARS: Final = 200  # characters of a sandboxed run's task its audit record keeps
