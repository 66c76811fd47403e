"""The MCP server's statement of the episode size limits matches the library's."""

from __future__ import annotations

from self_learning_memory.mcp import limits as L
from self_learning_memory.model import validation as v


def test_mcp_size_limits_are_the_librarys() -> None:
    assert L.MAX_EPISODE_BYTES == v.MAX_EPISODE_SIZE
    assert L.MAX_OUTCOME_BYTES == v.MAX_OUTCOME_SIZE
    assert L.MAX_STEPS_BYTES == v.MAX_OPEN_EPISODE_SIZE
    # the schema maxima never admit a value the stores cannot hold
    assert L.MAX_STEP_NUMBER <= v.MAX_STEP_NUMBER
    assert L.MAX_LATENCY_MS <= v.MAX_LATENCY_MS
    assert L.MAX_TOKENS <= v.MAX_TOKENS_USED
