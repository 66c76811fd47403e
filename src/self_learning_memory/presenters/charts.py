"""Charts as plain SVG (the dashboard, ``--plot FILE.svg``) or PNG (``--plot FILE.png``,
matplotlib from the ``plot`` extra): one :class:`Chart` holds the data, both renderings draw it.

The SVG has a stable structure that tests count: a line chart draws each data point as one
``<circle class="point">`` (with a ``<title>`` tooltip) joined by one ``<polyline
class="line">``; a chart of several series (:class:`ChartSeries`, one line per agent) draws
each series as one ``<g class="series" data-series="NAME">`` holding its polyline and its
circles (each circle also carries ``data-series``), under a ``<g class="legend">``; a bar chart draws each bar as one ``<rect class="bar ok|failed|neutral">``.
Colours are presentation attributes, never ``style`` (the dashboard's Content-Security-Policy
allows no inline styles). Text is XML-escaped, so the SVG is well-formed XML on its own.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import CapabilityUnavailableError, ValidationError

if TYPE_CHECKING:
    from datetime import datetime

    from ..learning.analysis import PatternAnalysis
    from ..model.agents import AgentMetrics
    from ..model.episode import Episode
    from ..model.timeline import OutcomeWindow

__all__ = [
    "PLOT_SUFFIXES",
    "Chart",
    "ChartPoint",
    "ChartSeries",
    "agent_success_chart",
    "learning_curve_chart",
    "pattern_chart",
    "plot_bytes",
    "render_png",
    "render_svg",
    "step_timeline_chart",
]

PLOT_SUFFIXES = (".svg", ".png")
COLORS = {"ok": "#2e7d32", "failed": "#c62828", "neutral": "#1565c0"}
# the lines of a chart of several series, in turn (then again from the first)
PALETTE = ("#1565c0", "#e65100", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037",
           "#ad1457", "#827717", "#37474f")  # fmt: skip
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 48, 16, 28, 40


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One point or bar: its x label, its value and (bars) whether it went well."""

    label: str
    value: float
    note: str = ""  # shown in the tooltip after the value
    ok: bool | None = None  # bars: True green, False red, None blue


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """One line of a chart of several: its name (the legend, ``data-series``) and its points,
    each drawn at the x slot of its label in :attr:`Chart.labels`."""

    name: str
    points: Sequence[ChartPoint]


@dataclass(frozen=True)
class Chart:
    kind: Literal["line", "bar"]
    title: str
    y_label: str
    points: Sequence[ChartPoint] = field(default_factory=list)
    y_max: float | None = None  # fixed top of the y axis (1.0 for rates); else the data's max
    percent: bool = False  # y values are fractions shown as percentages
    # several lines (kind "line"; then ``points`` is unused): the x axis is ``labels`` in order
    series: Sequence[ChartSeries] = ()
    labels: Sequence[str] = ()

    def lines(self) -> list[tuple[str, list[tuple[int, ChartPoint]]]]:
        """Each line's name and its (x slot, point) pairs: the one unnamed line of
        :attr:`points`, or the series (a point whose label is not in :attr:`labels` is left
        out)."""
        if not self.series:
            return [("", list(enumerate(self.points)))]
        slot = {label: i for i, label in enumerate(self.labels)}
        return [
            (s.name, [(slot[p.label], p) for p in s.points if p.label in slot]) for s in self.series
        ]

    def x_labels(self) -> list[str]:
        return list(self.labels) if self.series else [p.label for p in self.points]

    def values(self) -> list[float]:
        return [p.value for _name, pairs in self.lines() for _i, p in pairs]


def _fmt(chart: Chart, value: float) -> str:
    return f"{value:.0%}" if chart.percent else f"{value:.4g}"


def _top(chart: Chart) -> float:
    if chart.y_max is not None:
        return chart.y_max
    highest = max(chart.values(), default=0.0)
    return highest if highest > 0 else 1.0


def render_svg(chart: Chart, width: int = 640, height: int = 240) -> str:
    """The chart as a standalone SVG document (also valid inline in HTML)."""
    inner_w = width - _PAD_LEFT - _PAD_RIGHT
    inner_h = height - _PAD_TOP - _PAD_BOTTOM
    top = _top(chart)
    x_labels = chart.x_labels()
    n = len(x_labels)
    lines = chart.lines()
    count = sum(len(pairs) for _name, pairs in lines)
    legend, below = _legend(chart, width, height) if chart.series and count else ("", 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{chart.kind}" '
        f'width="{width}" height="{height + below}" viewBox="0 0 {width} {height + below}" '
        'role="img" '
        f'aria-label="{escape(chart.title)}" data-points="{count}">',
        f"<title>{escape(chart.title)}</title>",
        f'<text class="chart-title" x="{_PAD_LEFT}" y="18" font-size="13" '
        f'font-family="sans-serif" fill="#222">{escape(chart.title)}</text>',
    ]
    x0, y0 = _PAD_LEFT, _PAD_TOP + inner_h
    # axes and three grid lines with their values
    for i in range(3):
        value = top * i / 2
        y = y0 - inner_h * i / 2
        out.append(
            f'<line class="grid" x1="{x0}" y1="{y:.1f}" x2="{x0 + inner_w}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="10" font-family="sans-serif" '
            f'text-anchor="end" fill="#555">{escape(_fmt(chart, value))}</text>'
        )
    out.append(
        f'<text x="12" y="{_PAD_TOP + inner_h / 2:.1f}" font-size="10" font-family="sans-serif" '
        f'fill="#555" transform="rotate(-90 12 {_PAD_TOP + inner_h / 2:.1f})" '
        f'text-anchor="middle">{escape(chart.y_label)}</text>'
    )
    if n == 0 or count == 0:
        out.append(
            f'<text class="empty" x="{x0 + inner_w / 2:.1f}" y="{_PAD_TOP + inner_h / 2:.1f}" '
            'font-size="12" font-family="sans-serif" text-anchor="middle" fill="#777">'
            "no data yet</text></svg>"
        )
        return "".join(out)
    slot = inner_w / n

    def y_of(value: float) -> float:
        return y0 - inner_h * min(max(value, 0.0), top) / top

    labels = {0, n - 1, n // 2} if n > 12 else set(range(n))
    for i in sorted(labels):
        cx = x0 + slot * (i + 0.5)
        out.append(
            f'<text class="x-label" x="{cx:.1f}" y="{y0 + 16}" font-size="10" '
            f'font-family="sans-serif" text-anchor="middle" fill="#555">'
            f"{escape(x_labels[i])}</text>"
        )
    if chart.kind == "line" and chart.series:
        out.append(legend)
        for k, (name, pairs) in enumerate(lines):
            color = PALETTE[k % len(PALETTE)]
            tag = escape(name, quote=True)
            out.append(f'<g class="series" data-series="{tag}">')
            coords = [(x0 + slot * (i + 0.5), y_of(p.value)) for i, p in pairs]
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            out.append(
                f'<polyline class="line" points="{path}" fill="none" stroke="{color}" '
                'stroke-width="2"/>'
            )
            for (x, y), (_i, p) in zip(coords, pairs, strict=True):
                out.append(
                    f'<circle class="point" data-series="{tag}" cx="{x:.1f}" cy="{y:.1f}" '
                    f'r="3.5" fill="{color}"><title>{escape(name)} · '
                    f"{escape(_tip(chart, p))}</title></circle>"
                )
            out.append("</g>")
    elif chart.kind == "line":
        coords = [(x0 + slot * (i + 0.5), y_of(p.value)) for i, p in enumerate(chart.points)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{COLORS["neutral"]}" '
            'stroke-width="2"/>'
        )
        for (x, y), p in zip(coords, chart.points, strict=True):
            out.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                f'fill="{COLORS["neutral"]}"><title>{escape(_tip(chart, p))}</title></circle>'
            )
    else:
        bar_w = max(1.0, slot * 0.8)
        for i, p in enumerate(chart.points):
            kind = "neutral" if p.ok is None else ("ok" if p.ok else "failed")
            y = y_of(p.value)
            out.append(
                f'<rect class="bar {kind}" x="{x0 + slot * i + (slot - bar_w) / 2:.1f}" '
                f'y="{y:.1f}" width="{bar_w:.1f}" height="{max(y0 - y, 1.0):.1f}" '
                f'fill="{COLORS[kind]}"><title>{escape(_tip(chart, p))}</title></rect>'
            )
    out.append("</svg>")
    return "".join(out)


_LEGEND_ROW = 16


def _legend(chart: Chart, width: int, top: int) -> tuple[str, int]:
    """One swatch and name per series, in rows below the chart (from y ``top``), wrapped at
    ``width``; the markup and the height it takes."""
    out = ['<g class="legend">']
    x, row = float(_PAD_LEFT), 0
    for k, s in enumerate(chart.series):
        span = 14 + 6.5 * len(s.name) + 16
        if x + span > width and x > _PAD_LEFT:
            x, row = float(_PAD_LEFT), row + 1
        y = top + _LEGEND_ROW * row
        color = PALETTE[k % len(PALETTE)]
        out.append(
            f'<rect x="{x:.1f}" y="{y + 2}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14:.1f}" y="{y + 11}" font-size="11" font-family="sans-serif" '
            f'fill="#222">{escape(s.name)}</text>'
        )
        x += span
    out.append("</g>")
    return "".join(out), _LEGEND_ROW * (row + 1) + 4


def _tip(chart: Chart, p: ChartPoint) -> str:
    text = f"{p.label}: {_fmt(chart, p.value)}"
    return f"{text} ({p.note})" if p.note else text


def render_png(chart: Chart, width: int = 640, height: int = 240) -> bytes:
    """The same data drawn by matplotlib (Agg), as PNG bytes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise CapabilityUnavailableError(
            "Writing PNG charts needs matplotlib: pip install 'self-learning-memory[plot]' "
            "(or write an .svg file, which needs nothing)."
        ) from exc
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_subplot()
    labels = chart.x_labels()
    xs = list(range(len(labels)))
    ys = [p.value for p in chart.points]
    if chart.kind == "line" and chart.series:
        for k, (name, pairs) in enumerate(chart.lines()):
            ax.plot(
                [i for i, _p in pairs],
                [p.value for _i, p in pairs],
                marker="o",
                color=PALETTE[k % len(PALETTE)],
                label=name,
            )
        ax.legend(fontsize=7, loc="best")
    elif chart.kind == "line":
        ax.plot(xs, ys, marker="o", color=COLORS["neutral"])
    else:
        colors = [
            COLORS["neutral" if p.ok is None else ("ok" if p.ok else "failed")]
            for p in chart.points
        ]
        ax.bar(xs, ys, color=colors)
    ax.set_title(chart.title, fontsize=10)
    ax.set_ylabel(chart.y_label, fontsize=9)
    ax.set_ylim(0, _top(chart) * 1.05)
    step = max(1, len(xs) // 8)
    ax.set_xticks(xs[::step], labels[::step], fontsize=7)
    if chart.percent:
        ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_bytes(chart: Chart, path: Path, field_name: str = "--plot") -> bytes:
    """The file ``path`` should hold: SVG for ``.svg``, PNG for ``.png``; any other suffix is
    refused (ValidationError naming ``field_name``)."""
    suffix = path.suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise ValidationError(
            field_name,
            f"'{path.name}' has suffix '{path.suffix or '(none)'}'",
            " or ".join(PLOT_SUFFIXES),
        )
    if suffix == ".svg":
        return render_svg(chart).encode()
    return render_png(chart)


# -- the charts the front ends draw ------------------------------------------------------------
def _window_label(w: OutcomeWindow) -> str:
    hours = w.length.total_seconds() / 3600
    return f"{w.start:%Y-%m-%d %H:00}" if hours < 24 else f"{w.start:%Y-%m-%d}"


def learning_curve_chart(windows: Sequence[OutcomeWindow], window: str) -> Chart:
    """Success rate per window of completed episodes (one point per window)."""
    return Chart(
        kind="line",
        title=f"Learning curve: success rate per {window}",
        y_label="success rate",
        y_max=1.0,
        percent=True,
        points=[
            ChartPoint(_window_label(w), w.success_rate, f"{w.successes} of {w.episodes} succeeded")
            for w in windows
        ],
    )


def step_timeline_chart(episode: Episode) -> Chart:
    """One bar per step: its latency, green if it succeeded, red if not (a step without a
    result counts as failed, as everywhere)."""
    points = []
    for step in episode.steps:
        points.append(
            ChartPoint(f"#{step.step_number}", float(step.latency_ms), step.tool, step.is_success())
        )
    return Chart(kind="bar", title="Steps by latency", y_label="latency (ms)", points=points)


def pattern_chart(analysis: PatternAnalysis) -> Chart:
    """The pattern's source episodes: success rate per day."""
    return Chart(
        kind="line",
        title=f"{analysis.pattern_type} {str(analysis.pattern_id)[:8]}: success rate by day",
        y_label="success rate",
        y_max=1.0,
        percent=True,
        points=[
            ChartPoint(p.day, p.success_rate or 0.0, f"{p.successes} of {p.episodes} succeeded")
            for p in analysis.over_time
            if p.success_rate is not None  # a day without completed episodes has no rate
        ],
    )


def _agent_label(start: datetime, window: str) -> str:
    return f"{start:%Y-%m-%d %H:00}" if window == "hour" else f"{start:%Y-%m-%d}"


def agent_success_chart(metrics: AgentMetrics) -> Chart:
    """Each agent's success rate per window (one line per agent, one point per window in which
    it ran), over the windows of ``metrics`` (``agent_metrics``' series)."""
    starts = sorted({p.window_start for a in metrics.agents for p in a.series})
    return Chart(
        kind="line",
        title=f"Success rate per agent per {metrics.window}",
        y_label="success rate",
        y_max=1.0,
        percent=True,
        labels=[_agent_label(s, metrics.window) for s in starts],
        series=[
            ChartSeries(
                a.agent,
                [
                    ChartPoint(
                        _agent_label(p.window_start, metrics.window),
                        p.success_rate,
                        f"{p.successes} of {p.executions} succeeded",
                    )
                    for p in a.series
                ],
            )
            for a in metrics.agents
            if a.series
        ],
    )
