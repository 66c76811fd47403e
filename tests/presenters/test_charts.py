"""The SVG charts are well-formed XML with one element per data point, escape their text, and
the PNG rendering draws the same data (matplotlib, the plot extra)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from self_learning_memory.errors import ValidationError
from self_learning_memory.model.agents import AgentMetrics, AgentSummary, AgentWindowPoint
from self_learning_memory.model.timeline import OutcomeWindow
from self_learning_memory.presenters.charts import (
    Chart,
    ChartPoint,
    agent_success_chart,
    learning_curve_chart,
    plot_bytes,
    render_png,
    render_svg,
)

SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _windows(rates: list[tuple[int, int]]) -> list[OutcomeWindow]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        OutcomeWindow(start + timedelta(days=i), start + timedelta(days=i + 1), n, ok, 0, n - ok)
        for i, (ok, n) in enumerate(rates)
    ]


@pytest.mark.parametrize("n", [0, 1, 5, 40])
def test_line_chart_has_one_circle_per_point(n: int) -> None:
    chart = learning_curve_chart(_windows([(i % 3, 3) for i in range(n)]), "day")
    root = ET.fromstring(render_svg(chart))
    assert root.tag == f"{SVG}svg"
    assert root.get("data-points") == str(n)
    circles = root.findall(f".//{SVG}circle")
    assert len(circles) == n
    assert all(c.get("class") == "point" for c in circles)
    assert len(root.findall(f".//{SVG}polyline")) == (1 if n else 0)
    if n == 0:
        assert "no data yet" in render_svg(chart)


def test_points_follow_the_values() -> None:
    chart = learning_curve_chart(_windows([(0, 2), (1, 2), (2, 2)]), "day")
    root = ET.fromstring(render_svg(chart))
    ys = [float(c.get("cy", "nan")) for c in root.findall(f".//{SVG}circle")]
    assert ys[0] > ys[1] > ys[2]  # higher success rate, higher on the chart
    tips = [c.findtext(f"{SVG}title") for c in root.findall(f".//{SVG}circle")]
    assert tips[1] == "2026-03-02: 50% (1 of 2 succeeded)"


def test_bar_chart_classes_and_escaping() -> None:
    chart = Chart(
        kind="bar",
        title="<script>alert(1)</script> & co",
        y_label="ms",
        points=[ChartPoint("a<b", 10, ok=True), ChartPoint("c", 30, ok=False), ChartPoint("d", 0)],
    )
    text = render_svg(chart)
    assert "<script>" not in text
    root = ET.fromstring(text)
    bars = root.findall(f".//{SVG}rect")
    assert [b.get("class") for b in bars] == ["bar ok", "bar failed", "bar neutral"]
    assert root.findtext(f"{SVG}title") == "<script>alert(1)</script> & co"
    assert "style=" not in text  # presentation attributes only (the dashboard's CSP)


def test_png_draws_the_same_data() -> None:
    data = render_png(learning_curve_chart(_windows([(1, 2), (2, 2)]), "day"))
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 1000


def test_plot_bytes_by_suffix() -> None:
    chart = learning_curve_chart(_windows([(1, 2)]), "day")
    assert plot_bytes(chart, Path("a.SVG")).startswith(b"<svg")
    assert plot_bytes(chart, Path("a.png")).startswith(PNG_MAGIC)
    with pytest.raises(ValidationError, match=r"--plot.*'\.jpg'.*\.svg or \.png"):
        plot_bytes(chart, Path("a.jpg"))


def _agents(series: dict[str, list[tuple[int, int, int]]], window: str = "day") -> AgentMetrics:
    """Metrics with each agent's (day offset, executions, successes) points."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return AgentMetrics(
        generated_at=start,
        since=None,
        window=window,  # type: ignore[arg-type]
        total_agents=len(series),
        total_executions=0,
        successful_executions=0,
        success_rate=0.0,
        total_duration_ms=0.0,
        avg_duration_ms=0.0,
        agents=[
            AgentSummary(
                agent=name,
                agent_type="other",
                executions=0,
                successes=0,
                failures=0,
                success_rate=0.0,
                avg_duration_ms=0.0,
                min_duration_ms=0.0,
                max_duration_ms=0.0,
                total_duration_ms=0.0,
                steps=0,
                errors=0,
                last_execution=None,
                current_streak=0,
                longest_streak=0,
                series=[
                    AgentWindowPoint(
                        window_start=start + timedelta(days=d),
                        executions=n,
                        successes=ok,
                        success_rate=ok / n,
                    )
                    for d, n, ok in points
                ],
            )
            for name, points in series.items()
        ],
    )


def test_several_series_share_the_x_axis_with_one_circle_per_point() -> None:
    metrics = _agents({"a&b": [(0, 2, 2), (2, 2, 1)], "c": [(1, 4, 1), (2, 1, 0), (3, 2, 0)]})
    chart = agent_success_chart(metrics)
    assert chart.labels == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    text = render_svg(chart)
    root = ET.fromstring(text)
    assert root.get("data-points") == "5"
    groups = root.findall(f"{SVG}g[@class='series']")
    assert [g.get("data-series") for g in groups] == ["a&b", "c"]
    assert 'data-series="a&amp;b"' in text  # escaped in the markup
    for group, n in zip(groups, [2, 3], strict=True):
        circles = group.findall(f"{SVG}circle")
        assert len(circles) == n
        assert all(c.get("class") == "point" for c in circles)
        assert {c.get("data-series") for c in circles} == {group.get("data-series")}
        assert len(group.findall(f"{SVG}polyline")) == 1
    # the same window, the same x; a point's y follows its rate
    a = groups[0].findall(f"{SVG}circle")
    c = groups[1].findall(f"{SVG}circle")
    assert a[1].get("cx") == c[1].get("cx")  # both on 2026-03-03
    assert float(a[0].get("cx", "0")) < float(c[0].get("cx", "0"))
    assert float(a[0].get("cy", "0")) < float(a[1].get("cy", "0"))  # 100% above 50%
    assert a[1].findtext(f"{SVG}title") == "a&b · 2026-03-03: 50% (1 of 2 succeeded)"
    legend = root.findall(f"{SVG}g[@class='legend']/{SVG}text")
    assert [t.text for t in legend] == ["a&b", "c"]
    assert "style=" not in text
    assert render_png(chart).startswith(PNG_MAGIC)


def test_a_long_legend_wraps_into_rows_below_the_chart() -> None:
    many = {f"agent-number-{i:02d}": [(0, 1, 1)] for i in range(12)}
    root = ET.fromstring(render_svg(agent_success_chart(_agents(many)), width=640, height=240))
    texts = root.findall(f"{SVG}g[@class='legend']/{SVG}text")
    assert len(texts) == 12
    assert all(float(t.get("x", "0")) < 640 for t in texts)
    rows = {t.get("y") for t in texts}
    assert len(rows) > 1
    assert int(root.get("height", "0")) > 240  # the legend's rows are added below


def test_agents_without_series_draw_no_data() -> None:
    chart = agent_success_chart(_agents({"idle": []}, window="hour"))
    text = render_svg(chart)
    assert "no data yet" in text
    assert ET.fromstring(text).findall(f".//{SVG}circle") == []
