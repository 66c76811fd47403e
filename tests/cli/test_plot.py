"""`--plot FILE` on `memory-cli monitor learning`, `monitor agents` and `pattern analyze`: SVG (the
dashboard's chart) or PNG (matplotlib), written atomically; other suffixes refused before any
work."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import Invoke
from .seeding import seed, with_memory

pytestmark = pytest.mark.integration

SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def data_dir(cli_env: dict[str, str]) -> Path:
    path = Path(cli_env["MEMORY_DATA_DIR"])
    seed(path, successes=3, failures=1, domain="web-api")
    return path


def test_monitor_learning_plots_svg_and_png(
    invoke_json: Callable[..., Any], data_dir: Path, tmp_path: Path
) -> None:
    svg = tmp_path / "curve.svg"
    data = invoke_json("monitor", "learning", "--plot", str(svg))
    assert data["window"] == "day"
    assert [(w["episodes"], w["successes"]) for w in data["windows"]] == [(4, 3)]
    assert data["windows"][0]["success_rate"] == pytest.approx(0.75)
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert len(root.findall(f".//{SVG}circle")) == 1
    assert data["plot"] == {"path": str(svg), "bytes": svg.stat().st_size}
    png = tmp_path / "curve.png"
    hourly = invoke_json("monitor", "learning", "--window", "hour", "--plot", str(png))
    assert sum(w["episodes"] for w in hourly["windows"]) == 4
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary files were renamed


def test_pattern_analyze_plots(
    invoke: Invoke, invoke_json: Callable[..., Any], data_dir: Path, tmp_path: Path
) -> None:
    listing = invoke_json("pattern", "list", "-p", "context-pattern", "--domain", "web-api")
    pid = listing["patterns"][0]["pattern_id"]
    svg = tmp_path / "pattern.svg"
    analysis = invoke_json("pattern", "analyze", pid, "--plot", str(svg))
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert len(root.findall(f".//{SVG}circle")) == len(analysis["over_time"]) == 1
    png = tmp_path / "pattern.png"
    human = invoke("pattern", "analyze", pid, "--plot", str(png))
    assert human.exit_code == 0, human.stdout
    assert f"wrote the chart to {png}" in human.stdout
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_monitor_agents_plots_one_line_per_agent(
    invoke: Invoke, invoke_json: Callable[..., Any], data_dir: Path, tmp_path: Path
) -> None:
    import apsw

    from self_learning_memory.core.memory import SelfLearningMemory
    from self_learning_memory.storage.codec import to_us
    from self_learning_memory.storage.factory import DB_FILENAME

    async def record(memory: SelfLearningMemory) -> list[str]:
        runs = [("reviewer", True), ("reviewer", False), ("reviewer", True), ("reviewer", True),
                ("debugger-1", False)]  # fmt: skip
        done = [await memory.record_agent_execution(a, ok, 100.0) for a, ok in runs]
        return [str(e.execution_id) for e in done[2:4]]

    moved = with_memory(data_dir, record)
    # two of the reviewer's successes ended a day earlier: its line has two points
    conn = apsw.Connection(str(data_dir / DB_FILENAME))
    try:
        for eid in moved:
            conn.execute(
                "UPDATE agent_executions SET ended_at = ended_at - ? WHERE execution_id = ?",
                (to_us(datetime(1970, 1, 2, tzinfo=UTC)), eid),
            )
    finally:
        conn.close()
    svg = tmp_path / "agents.svg"
    data = invoke_json("monitor", "agents", "--plot", str(svg))
    series = {a["agent"]: [(p["executions"], p["successes"]) for p in a["series"]]
              for a in data["agents"]}  # fmt: skip
    assert series == {"reviewer": [(2, 2), (2, 1)], "debugger-1": [(1, 0)]}
    assert data["plot"] == {"path": str(svg), "bytes": svg.stat().st_size}
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    circles = root.findall(f".//{SVG}circle")
    assert [c.get("data-series") for c in circles] == ["reviewer", "reviewer", "debugger-1"]
    assert [t.text for t in root.findall(f".//{SVG}g[@class='legend']/{SVG}text")] == [
        "reviewer",
        "debugger-1",
    ]
    png = tmp_path / "agents.png"
    human = invoke("monitor", "agents", "--window", "week", "--plot", str(png))
    assert human.exit_code == 0, human.stdout
    assert f"wrote {png.stat().st_size} bytes to {png}" in human.stdout.replace("\n", "")
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "command", [("monitor", "learning"), ("monitor", "agents"), ("pattern", "analyze", "x")]
)
def test_bad_plot_suffix_is_refused(
    invoke: Invoke, data_dir: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    target = tmp_path / "chart.jpg"
    result = invoke(*command, "--plot", str(target))
    assert result.exit_code == 3
    assert "--plot" in result.stderr
    assert ".svg or .png" in result.stderr
    assert not target.exists()
    missing_dir = invoke(*command, "--plot", str(tmp_path / "nowhere" / "c.svg"))
    assert missing_dir.exit_code == 3
    assert "does not exist" in missing_dir.stderr
