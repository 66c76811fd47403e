"""The per-agent page. Agent metrics (success per agent over time) are not available yet: a
separate change adds an ``agent`` field to episodes and ``memory.agent_metrics(...)``; it will
replace :func:`agents_page` (the only function the dashboard calls for this page)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .html import Html, layout

if TYPE_CHECKING:
    from ..core.memory import SelfLearningMemory

__all__ = ["agents_page"]


async def agents_page(memory: SelfLearningMemory, prefix: str, query: Mapping[str, str]) -> str:
    """Per-agent success over time (placeholder until agent metrics exist)."""
    body = Html(
        '<div class="notice" id="agents-unavailable"><p><strong>Agent metrics are not available '
        "yet.</strong> This page will show each agent's success rate over time once episodes "
        "record which agent ran them.</p><p>Until then the learning curve on the overview "
        "covers all agents together.</p></div>"
    )
    return layout(prefix, "agents", "Agents", body)
