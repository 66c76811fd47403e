"""The demo (the README's first command) records the sample and shows learning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from self_learning_memory.demo.__main__ import load_sample, main

pytestmark = pytest.mark.integration


def test_sample_has_successes_failures_and_errors() -> None:
    episodes = load_sample()["episodes"]
    outcomes = {e["outcome"]["type"] for e in episodes}
    assert {"success", "failure", "partial_success"} <= outcomes
    assert any(s["result"]["type"] == "error" for e in episodes for s in e["steps"])


def test_demo_shows_learning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    retrieved = out.split("== Retrieved past episodes")[1].split("==")[1]
    # the first result is one of the three similar FastAPI endpoint episodes, with its reasons
    first = retrieved.strip().splitlines()[0]
    assert re.search(r"/(health|metrics|version) endpoint", first)
    assert "relevance" in retrieved
    assert "why: fts5" in retrieved
    counts = [int(n) for n in re.findall(r"seen (\d+)x", out)]
    assert max(counts) >= 3  # aggregated across episodes
    assert "=> Recover with pip: install httpx" in out  # a heuristic learned from 3 episodes
    assert re.search(r"reward \d\.\d{3} = base", out)
    assert "Store: 11 episodes" in out
