"""The dashboard's pages, rendered on the server from the library's own reads: the overview
(counts and the learning curve), episodes (a page of the newest, or ranked search results with
their score components and provenance), one episode with its step timeline, and the learned
patterns and heuristics with their success rates and evidence. The agents page is in
``agents.py``. Each page is one ``async`` function of the memory, the URL prefix and the query;
bad query values raise :class:`~self_learning_memory.errors.ValidationError` (HTTP 400)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..errors import ValidationError
from ..learning.analysis import describe
from ..model.records import EpisodeFilters
from ..model.timeline import WINDOWS
from ..presenters.charts import learning_curve_chart, render_svg, step_timeline_chart
from .html import Html, esc, layout, link, table, url

if TYPE_CHECKING:
    from ..core.memory import SelfLearningMemory
    from ..model.episode import Episode

__all__ = ["CURVE_WINDOWS", "PAGE_SIZE", "episode_page", "episodes_page", "overview_page",
           "patterns_page"]  # fmt: skip

PAGE_SIZE = 25
SEARCH_LIMIT = 20
CURVE_WINDOWS = 90  # the learning curve shows the last 90 windows
MAX_QUERY = 1000  # characters of a search


def _page(query: Mapping[str, str]) -> int:
    text = query.get("page", "1")
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise ValidationError("page", f"'{text[:20]}' is not a page number", "1..1000000")
    return int(text)


def _window(query: Mapping[str, str]) -> str:
    window = query.get("window", "day")
    if window not in WINDOWS:
        raise ValidationError("window", f"'{window[:20]}' is not a window", ", ".join(WINDOWS))
    return window


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _outcome(episode: Episode) -> Html:
    if episode.outcome is None:
        return Html('<span class="muted">in progress</span>')
    kind = episode.outcome.type
    cls = "ok" if kind == "success" else ("failed" if kind == "failure" else "")
    return Html(f'<span class="{cls}">{esc(kind)}</span>')


def _card(value: object, label: str) -> str:
    return f'<div class="card"><div class="n">{esc(value)}</div><div class="k">{esc(label)}</div></div>'


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _pager(
    prefix: str, path: str, page: int, more: bool, total: int | None, **query: object
) -> str:
    parts = []
    if page > 1:
        parts.append(link(url(prefix, path, page=page - 1, **query), "← newer", "prev"))
    shown = f"page {page}" + (f" of {max(1, -(-total // PAGE_SIZE))}" if total is not None else "")
    parts.append(Html(f"<span>{esc(shown)}</span>"))
    if more:
        parts.append(link(url(prefix, path, page=page + 1, **query), "older →", "next"))
    return f'<div class="pager">{"".join(parts)}</div>'


# -- overview ----------------------------------------------------------------------------------
async def overview_page(memory: SelfLearningMemory, prefix: str, query: Mapping[str, str]) -> str:
    window = _window(query)
    seconds, _offset = WINDOWS[window]
    since = datetime.fromtimestamp(
        datetime.now(UTC).timestamp() - seconds * (CURVE_WINDOWS - 1), UTC
    )
    since = since.replace(minute=0, second=0, microsecond=0)
    if window != "hour":
        since = since.replace(hour=0)
    # counts from the episode index alone (memory.stats() also counts every step: too slow
    # for a page at 100K episodes); a completed episode has exactly one outcome
    total = await memory.count_episodes()
    outcomes = {
        kind: await memory.count_episodes(EpisodeFilters(outcome=kind))
        for kind in ("success", "partial_success", "failure")
    }
    windows = await memory.outcome_timeline(window, since=since)
    completed = sum(outcomes.values())
    cards = "".join(
        [
            _card(total, "episodes"),
            _card(completed, "completed"),
            _card(total - completed, "in progress"),
            _card(_pct(outcomes["success"] / completed if completed else None), "success rate"),
            _card(outcomes["partial_success"], "partial successes"),
            _card(outcomes["failure"], "failures"),
        ]
    )
    choices = " ".join(
        str(link(url(prefix, "", window=w), w, "active" if w == window else "")) for w in WINDOWS
    )
    body = Html(
        f'<div class="cards">{cards}</div>'
        f"<h2>Learning curve</h2>"
        f'<p class="radios">per {choices}'
        f' <span class="muted">(success rate of the episodes completed in each of the last '
        f"{CURVE_WINDOWS} {esc(window)}s that had any)</span></p>"
        f'<div class="chart-box" id="learning-curve">'
        f"{render_svg(learning_curve_chart(windows, window), width=1040)}</div>"
        f'<p class="muted">Learned patterns and heuristics: '
        f"{link(url(prefix, 'patterns'), 'Patterns')}.</p>"
    )
    return layout(prefix, "", "Overview", body)


# -- episodes ----------------------------------------------------------------------------------
def _episode_link(prefix: str, episode: Episode) -> Html:
    return link(url(prefix, f"episodes/{episode.episode_id}"), episode.task_description[:160])


async def episodes_page(memory: SelfLearningMemory, prefix: str, query: Mapping[str, str]) -> str:
    text = query.get("q", "").strip()
    if len(text) > MAX_QUERY:
        raise ValidationError("q", f"has {len(text)} characters", f"at most {MAX_QUERY}")
    form = (
        f'<form class="search" method="get" action="{esc(url(prefix, "episodes"))}" role="search">'
        f'<input type="search" name="q" value="{esc(text)}" '
        'placeholder="search past episodes by task (ranked retrieval)" aria-label="search">'
        '<button type="submit">Search</button></form>'
    )
    if text:
        results = await memory.retrieve_relevant_context(text, limit=SEARCH_LIMIT)
        rows = []
        for rank, r in enumerate(results, start=1):
            c = r.components
            parts = [f"relevance {c.relevance:.2f}", f"lexical {c.lexical:.2f}",
                     f"coverage {c.term_coverage:.2f}", f"context {c.context:.2f}",
                     f"outcome {c.outcome:.2f}", f"recency {c.recency:.2f}",
                     f"usefulness {c.usefulness:.2f}"]  # fmt: skip
            if c.vector is not None:
                parts.insert(2, f"vector {c.vector:.2f}")
            if c.diversity_penalty:
                parts.append(f"diversity −{c.diversity_penalty:.2f}")
            rows.append(
                [
                    rank,
                    _episode_link(prefix, r.episode),
                    _outcome(r.episode),
                    f"{r.score:.3f}",
                    Html(f'<span class="components">{esc(c.mode)}: {esc(", ".join(parts))}</span>'),
                    ", ".join(r.provenance),
                ]
            )
        body = Html(
            form
            + f'<p class="muted">{len(results)} results for “{esc(text)}”, best first.</p>'
            + table(
                ["#", "task", "outcome", "score", "score components", "provenance"],
                rows,
                cls="data results",
            )
        )
        return layout(prefix, "episodes", "Episodes", body)
    page = _page(query)
    total = await memory.count_episodes()
    listed = await memory.list_episodes(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    rows = [
        [
            _episode_link(prefix, e),
            e.task_type.value,
            e.context.domain,
            _outcome(e),
            "-" if e.reward is None else f"{e.reward.total:.3f}",
            len(e.steps),
            _when(e.start_time),
        ]
        for e in listed
    ]
    body = Html(
        form
        + table(
            ["task", "type", "domain", "outcome", "reward", "steps", "started (UTC)"],
            rows,
            cls="data episodes",
        )
        + _pager(prefix, "episodes", page, page * PAGE_SIZE < total, total)
    )
    return layout(prefix, "episodes", "Episodes", body)


async def episode_page(memory: SelfLearningMemory, prefix: str, episode_id: str) -> str:
    try:
        eid = uuid.UUID(episode_id)
    except ValueError:
        raise ValidationError("episode_id", f"'{episode_id[:40]}' is not a UUID") from None
    e = await memory.get_episode(eid)  # NotFoundError: 404
    duration = e.duration()
    facts = [
        ("id", str(e.episode_id)),
        ("task type", e.task_type.value),
        ("domain", e.context.domain),
        ("language", e.context.language or "-"),
        ("outcome", _outcome(e)),
        ("reward", "-" if e.reward is None else f"{e.reward.total:.3f}"),
        ("started (UTC)", _when(e.start_time)),
        ("completed (UTC)", _when(e.end_time)),
        ("duration", "-" if duration is None else f"{duration.total_seconds():.1f} s"),
        ("steps", f"{len(e.steps)} ({e.successful_steps_count()} succeeded)"),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    steps = table(
        ["#", "tool", "action", "result", "latency (ms)", "tokens", "time (UTC)"],
        [
            [
                s.step_number,
                s.tool,
                s.action[:200],
                Html('<span class="ok">success</span>')
                if s.is_success()
                else Html(
                    f'<span class="failed">{esc(s.result.type if s.result else "none")}</span>'
                ),
                s.latency_ms,
                "-" if s.tokens_used is None else s.tokens_used,
                _when(s.timestamp),
            ]
            for s in e.steps
        ],
        cls="data steps",
    )
    reflection = ""
    if e.reflection is not None:
        items = [("worked", e.reflection.successes), ("went wrong", e.reflection.improvements),
                 ("insights", e.reflection.insights)]  # fmt: skip
        reflection = "<h2>Reflection</h2>" + "".join(
            f"<h3>{esc(name)}</h3><ul>{''.join(f'<li>{esc(x)}</li>' for x in values)}</ul>"
            for name, values in items
            if values
        )
    body = Html(
        f'<p>{esc(e.task_description)}</p><dl class="facts">{dl}</dl>'
        f'<h2>Step timeline</h2><div class="chart-box" id="step-timeline">'
        f"{render_svg(step_timeline_chart(e), width=1040)}</div>{steps}{reflection}"
    )
    return layout(prefix, "episodes", "Episode", body)


# -- patterns and heuristics ---------------------------------------------------------------
async def patterns_page(memory: SelfLearningMemory, prefix: str, query: Mapping[str, str]) -> str:
    page = _page(query)
    offset = (page - 1) * PAGE_SIZE
    pairs = await memory.list_patterns(limit=PAGE_SIZE + 1, offset=offset)
    more = len(pairs) > PAGE_SIZE
    pairs = pairs[:PAGE_SIZE]
    evidence = await memory.pattern_evidence([p.id for p, _ in pairs], 3) if pairs else {}
    rows = []
    for pattern, usage in pairs:
        links = Html(
            " ".join(
                str(link(url(prefix, f"episodes/{i}"), str(i)[:8]))
                for i in evidence.get(pattern.id, [])
            )
            or '<span class="muted">-</span>'
        )
        rows.append(
            [
                pattern.type,
                describe(pattern)[:200],
                _pct(pattern.rate()),
                pattern.sample_size(),
                pattern.occurrence_count,
                f"{usage.effectiveness_score:.2f}",
                f"{usage.success_count}/{usage.application_count}",
                links,
            ]
        )
    heuristics = await memory.list_heuristics(limit=PAGE_SIZE) if page == 1 else []
    h_rows = [
        [
            h.condition[:200],
            h.action[:200],
            f"{h.confidence:.2f}",
            _pct(h.evidence.success_rate),
            h.evidence.sample_size,
            Html(
                " ".join(
                    str(link(url(prefix, f"episodes/{i}"), str(i)[:8]))
                    for i in h.evidence.episode_ids[:3]
                )
                or '<span class="muted">-</span>'
            ),
        ]
        for h in heuristics
    ]
    body = Html(
        table(
            [
                "type",
                "pattern",
                "success rate",
                "sample",
                "occurrences",
                "effectiveness",
                "applied ok",
                "evidence (episodes)",
            ],
            rows,
            cls="data patterns",
        )
        + _pager(prefix, "patterns", page, more, None)
        + (
            "<h2>Heuristics</h2>"
            + table(
                ["when", "then", "confidence", "success rate", "sample", "evidence (episodes)"],
                h_rows,
                cls="data heuristics",
            )
            if page == 1
            else ""
        )
    )
    return layout(prefix, "patterns", "Patterns and heuristics", body)
