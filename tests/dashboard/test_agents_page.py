"""The agents page rendered from a real store without a browser: the empty state, the window
check (HTTP 400 through the app), and the agents beyond the cap folded into one ``other`` row
and line."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.dashboard.agents import TOP_AGENTS, agents_page
from self_learning_memory.errors import ValidationError

SVG = "{http://www.w3.org/2000/svg}"


def test_empty_store_shows_the_empty_state(tmp_path: Path) -> None:
    async def go() -> str:
        async with SelfLearningMemory.open(tmp_path / "data") as memory:
            await memory.start_episode("a task with no agent")
            return await agents_page(memory, "/dashboard", {})

    html = asyncio.run(go())
    assert 'id="agents-empty"' in html
    assert "No agent has recorded an execution yet" in html
    assert "<table" not in html
    assert "<svg" not in html


def test_a_bad_window_is_refused(tmp_path: Path) -> None:
    async def go(window: str) -> str:
        async with SelfLearningMemory.open(tmp_path / "data") as memory:
            return await agents_page(memory, "/dashboard", {"window": window})

    with pytest.raises(ValidationError, match="window") as caught:
        asyncio.run(go("month"))
    assert caught.value.field == "window"
    assert "hour" in str(caught.value.limit)


def test_agents_beyond_the_cap_fold_into_other(tmp_path: Path) -> None:
    extra = 3

    async def go() -> str:
        async with SelfLearningMemory.open(tmp_path / "data") as memory:
            for i in range(TOP_AGENTS + extra):
                for k in range(TOP_AGENTS + extra - i):  # agent-00 the busiest
                    await memory.record_agent_execution(f"agent-{i:02d}", k % 2 == 0, 10.0 * k)
            return await agents_page(memory, "/dashboard", {"window": "hour"})

    html = asyncio.run(go())
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr>") == TOP_AGENTS + 1  # the busiest one by one, then "other"
    assert f"other ({extra} agents)" in body
    svg = html[html.index("<svg") : html.index("</svg>") + len("</svg>")]
    root = ET.fromstring(svg)
    names = [g.get("data-series") for g in root.findall(f"{SVG}g[@class='series']")]
    assert names == [f"agent-{i:02d}" for i in range(TOP_AGENTS)] + ["other"]
    # all in this hour (or the last, if it turned): one or two points per line
    assert TOP_AGENTS + 1 <= len(root.findall(f".//{SVG}circle")) <= 2 * (TOP_AGENTS + 1)
