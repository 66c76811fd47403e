"""The SVG charts are well-formed XML with one element per data point, escape their text, and
the PNG rendering draws the same data (matplotlib, the plot extra)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from self_learning_memory.errors import ValidationError
from self_learning_memory.model.timeline import OutcomeWindow
from self_learning_memory.presenters.charts import (
    Chart,
    ChartPoint,
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
