"""The dashboard in a real headless Chromium, served by real processes on a seeded memory:
every page loads with no console error and no failed request, search ranks the known episode
first, the learning curve has one point per day, the agents page lists each agent's known
counts with one line of one point per day it ran, the token is required (header, one-time link
then cookie), and the dashboard is read-only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx2 as httpx
import pytest

from .conftest import TOKEN, Server
from .seed import AGENTS, CURVE, KNOWN_TASK, TASKS, Seeded

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.integration


@pytest.fixture(params=["cli", "mcp"])
def server(request: pytest.FixtureRequest) -> Server:
    """The dashboard as ``memory-cli dashboard`` serves it and as mounted in ``memory-mcp``."""
    name = "cli_server" if request.param == "cli" else "mcp_server"
    found: Server = request.getfixturevalue(name)
    return found


@pytest.fixture
def context(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    """A fresh browser profile signed in through the one-time ``?token=`` link."""
    ctx = browser.new_context()
    page = ctx.new_page()
    response = page.goto(f"{server.base}?token={TOKEN}")
    assert response is not None
    assert response.status == 200
    assert "token=" not in page.url  # the redirect dropped it from the address bar
    page.close()
    try:
        yield ctx
    finally:
        ctx.close()


class Watched:
    """A page whose console errors and failed requests are collected."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        page.on(
            "response",
            lambda r: self.errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
        )

    def open(self, url: str) -> Page:
        response = self.page.goto(url)
        assert response is not None, url
        assert response.status == 200, url
        self.page.wait_for_load_state("load")
        return self.page


def test_every_page_loads_without_errors(
    context: BrowserContext, server: Server, seeded: Seeded
) -> None:
    watched = Watched(context.new_page())
    known = seeded.episode_ids[KNOWN_TASK]
    for path, heading in [
        ("", "Overview"),
        ("?window=week", "Overview"),
        ("episodes", "Episodes"),
        ("episodes?q=readiness+probe", "Episodes"),
        (f"episodes/{known}", "Episode"),
        ("patterns", "Patterns and heuristics"),
        ("agents", "Agents"),
        ("agents?window=week", "Agents"),
        ("agents?window=hour", "Agents"),
    ]:
        page = watched.open(server.base + path)
        assert page.locator("h1").inner_text() == heading, path
        # the packaged stylesheet applied (no external origin, CSP allows only 'self')
        assert page.evaluate("getComputedStyle(document.body).margin") == "0px"
    assert watched.errors == []
    listed = watched.open(server.base + "episodes").locator("table.episodes tbody tr")
    assert listed.count() == len(TASKS)
    timeline = watched.open(f"{server.base}episodes/{known}")
    assert timeline.locator("#step-timeline rect.bar").count() == 3
    assert timeline.locator("#step-timeline rect.bar.ok").count() == 3
    assert watched.open(server.base + "agents").locator("table.agents tbody tr").count() == 2
    assert watched.errors == []


def test_agents_page_lists_each_agent_and_its_line(context: BrowserContext, server: Server) -> None:
    watched = Watched(context.new_page())
    page = watched.open(server.base + "agents")
    rows = page.locator("table.agents tbody tr")
    assert rows.count() == len(AGENTS)
    found = {}
    for i in range(rows.count()):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        found[cells[0]] = cells
    assert set(found) == set(AGENTS)
    for agent, ((runs, ok, current, longest, kind), days) in AGENTS.items():
        cells = found[agent]
        assert cells[1] == kind, cells
        assert (int(cells[2]), int(cells[3])) == (runs, ok), cells
        assert cells[4] == f"{ok / runs:.0%}", cells
        assert int(cells[8]) == 3 * runs  # three steps per episode
        assert int(cells[9]) == runs - ok  # the failed ones failed their last step
        assert (int(cells[10]), int(cells[11])) == (current, longest), cells
        points = page.locator(f'#agent-success svg circle.point[data-series="{agent}"]')
        assert points.count() == len(days), agent
        tips = [points.nth(i).locator("title").text_content() or "" for i in range(len(days))]
        assert [t.split(": ", 1)[1] for t in tips] == [
            f"{s / n:.0%} ({s} of {n} succeeded)" for n, s in days
        ], agent
    total = sum(len(days) for _totals, days in AGENTS.values())
    assert page.locator("#agent-success svg circle.point").count() == total
    assert page.locator("#agent-success svg g.legend text").all_text_contents() == list(AGENTS)
    weekly = watched.open(server.base + "agents?window=week")
    assert weekly.locator("a.active", has_text="week").count() == 1
    assert 1 <= weekly.locator("#agent-success svg circle.point").count() <= total
    assert watched.errors == []


def test_search_returns_the_known_episode_first(
    context: BrowserContext, server: Server, seeded: Seeded
) -> None:
    page = Watched(context.new_page()).open(server.base + "episodes")
    page.fill("input[name=q]", "rotate TLS certificates staging")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    rows = page.locator("table.results tbody tr")
    assert rows.count() >= 1
    first = rows.nth(0)
    assert first.locator("a").inner_text() == KNOWN_TASK
    assert first.locator("a").get_attribute("href", timeout=1000) == (
        f"/dashboard/episodes/{seeded.episode_ids[KNOWN_TASK]}"
    )
    components = first.locator(".components").inner_text()
    assert "relevance" in components
    assert "recency" in components
    assert first.locator("td").nth(5).inner_text().strip() != ""  # provenance


def test_learning_curve_has_one_point_per_day(context: BrowserContext, server: Server) -> None:
    page = Watched(context.new_page()).open(server.base)
    points = page.locator("#learning-curve svg circle.point")
    assert points.count() == len(CURVE)
    # the y of each point follows the day's success rate (SVG y grows downwards)
    ys = [float(points.nth(i).get_attribute("cy") or "nan") for i in range(len(CURVE))]
    for i in range(len(CURVE)):
        for j in range(len(CURVE)):
            if CURVE[i] > CURVE[j]:
                assert ys[i] < ys[j], (i, j, ys)
            elif CURVE[i] == CURVE[j]:
                assert ys[i] == ys[j], (i, j, ys)
    titles = [points.nth(i).locator("title").text_content() for i in range(len(CURVE))]
    assert [t.split(": ", 1)[1].split(" ")[0] for t in titles if t] == [
        f"{rate:.0%}" for rate in CURVE
    ]


def test_the_token_is_required(server: Server) -> None:
    with httpx.Client(timeout=30) as http:
        assert http.get(server.base).status_code == 401
        wrong = http.get(server.base, headers={"Authorization": "Bearer not-the-token-at-all"})
        assert wrong.status_code == 401
        assert http.get(server.base + "?token=not-the-token-at-all").status_code == 401
        bad_cookie = http.get(server.base, headers={"Cookie": "memory_dashboard=forged"})
        assert bad_cookie.status_code == 401
        good = http.get(server.base, headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200
        assert "Learning curve" in good.text
        assert "default-src 'none'" in good.headers["content-security-policy"]


def test_the_one_time_link_sets_a_strict_cookie(server: Server) -> None:
    with httpx.Client(timeout=30) as http:
        first = http.get(f"{server.base}episodes?token={TOKEN}&page=1")
        assert first.status_code == 303
        assert first.headers["location"] == "/dashboard/episodes?page=1"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert TOKEN not in cookie  # derived from the token, not the token
        relinked = http.get(f"{server.base}?token={TOKEN}")  # the link again: still dropped
        assert relinked.status_code == 303
        assert relinked.headers["location"] == "/dashboard/"
        again = http.get(server.base + "episodes?page=1")  # the client kept the cookie
        assert again.status_code == 200
        assert "Episodes" in again.text


def test_the_dashboard_is_read_only(server: Server) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(timeout=30) as http:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            response = http.request(method, server.base + "episodes", headers=auth)
            assert response.status_code == 405, method
            assert response.headers["allow"] == "GET, HEAD"
        assert http.post(server.base).status_code == 401  # no token: refused before anything
        head = http.head(server.base, headers=auth)
        assert head.status_code == 200
        assert head.content == b""
        assert http.get(server.base + "nowhere", headers=auth).status_code == 404
        assert http.get(server.base + "?window=month", headers=auth).status_code == 400
        bad = http.get(server.base + "agents?window=<b>month</b>", headers=auth)
        assert bad.status_code == 400
        assert "<b>month" not in bad.text  # the value is echoed escaped
        assert "window" in bad.text
