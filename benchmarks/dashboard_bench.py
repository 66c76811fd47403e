"""Dashboard page render time (server side) at 1K, 10K and 100K episodes, one JSON line per page
and size (name, n, median, p95, ratio to the same page at the smallest size, measured in the
same run; target 100 ms).

The store: ``TEMPLATE`` episodes recorded through the library (real completions: rewards,
reflections, patterns, heuristics; each run by one of ``AGENTS`` agents, so each completion also
records an agent execution), then copied in SQL (``INSERT ... SELECT`` of episodes, steps,
pattern links, full-text rows and agent executions, new ids, start and end times moved back by
up to 90 days so the learning curve has one point per day) until the store holds N episodes;
the agents' running totals are then recomputed from the executions (their streaks are the
template's). Each page
is requested through the dashboard's ASGI app in this process (the bearer header, no socket),
so the time is the server's: auth, the library's reads, HTML and SVG. The retrieval query cache
is emptied before every search so each search ranks for real.

    python -m benchmarks.dashboard_bench [--sizes 1000,10000,100000] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.dashboard import DashboardApp
from self_learning_memory.model.episode import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
)
from self_learning_memory.storage.factory import DB_FILENAME

TEMPLATE = 500
TARGET_MS = 100.0
TOKEN = "bench-token-0123456789abcdef"
DAY_US = 86_400 * 1_000_000
TOOLS = [("grep", "search"), ("editor", "edit"), ("pytest", "test"), ("git", "commit")]
TASKS = [
    "Fix the flaky {} test in the orders API",
    "Add a readiness probe to the {} service",
    "Rotate TLS certificates on the {} cluster",
    "Tune the slow {} query in the analytics warehouse",
    "Upgrade the {} worker to Python 3.12",
]
NAMES = ["billing", "search", "inventory", "payments", "gateway", "relay", "audit", "catalog"]
AGENTS = ["code-reviewer@ci", "feature-implementer", "test-runner", "debugger-1", "goap-agent",
          "analysis-swarm", "claude-code", "ci/architecture-validator"]  # fmt: skip


async def record_template(data_dir: Path, count: int = TEMPLATE) -> None:
    async with SelfLearningMemory.open(data_dir) as memory:
        for i in range(count):
            task = TASKS[i % len(TASKS)].format(NAMES[i % len(NAMES)])
            ok = i % 3 != 0
            ctx = TaskContext(domain=["web-api", "ops", "data"][i % 3], language="python")
            eid = await memory.start_episode(
                f"{task} #{i}", ctx, TaskType.DEBUGGING, agent=AGENTS[i % len(AGENTS)]
            )
            for n, (tool, action) in enumerate(TOOLS[: 2 + i % 3], start=1):
                good = ok or n < 2
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=n,
                        tool=tool,
                        action=f"{action} {NAMES[i % len(NAMES)]}",
                        result=SuccessResult(output="ok") if good else ErrorResult(message="x"),
                        latency_ms=50 + 37 * n + i % 50,
                    ),
                )
            outcome = SuccessOutcome(verdict="ok") if ok else FailureOutcome(reason="tests fail")
            await memory.complete_episode(eid, outcome)


def grow(db: Path, total: int) -> float:
    """Copy the template episodes (and their steps, pattern links and FTS rows) in SQL until the
    store holds ``total`` episodes; copy k is moved k % 90 days back."""
    started = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        have = int(conn.execute("SELECT count(*) FROM episodes").fetchone()[0])
        template = [r[0] for r in conn.execute("SELECT episode_id FROM episodes ORDER BY rowid")]
        template = template[:TEMPLATE]  # (a store grown before holds copies after these)
        conn.execute(
            "CREATE TEMP TABLE stage (episode_id TEXT PRIMARY KEY, template_id TEXT, shift INTEGER)"
        )

        def cols(table: str) -> list[str]:
            return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]

        def copy(table: str, moved: dict[str, str]) -> None:
            names = [c for c in cols(table) if c != "episode_id"]
            chosen = ", ".join(moved.get(c, f"t.{c}") for c in names)
            conn.execute(
                f"INSERT INTO {table} (episode_id, {', '.join(names)}) "
                f"SELECT s.episode_id, {chosen} FROM stage s "
                f"JOIN {table} t ON t.episode_id = s.template_id"
            )

        k = have // len(template)
        while have < total:
            batch = min(20_000, total - have)
            conn.execute("BEGIN")
            conn.execute("DELETE FROM stage")
            rows = []
            while len(rows) < batch:
                shift = (k % 90) * DAY_US
                rows += [(str(uuid.uuid4()), t, shift) for t in template[: batch - len(rows)]]
                k += 1
            conn.executemany("INSERT INTO stage VALUES (?, ?, ?)", rows)
            copy(
                "episodes",
                {
                    "start_time": "t.start_time - s.shift",
                    "end_time": "t.end_time - s.shift",
                    "updated_at": "t.updated_at - s.shift",
                },
            )
            conn.execute(
                "INSERT INTO episodes_fts (rowid, task_description, steps_text, outcome_text, "
                "reflection_text) SELECT n.rowid, f.task_description, f.steps_text, "
                "f.outcome_text, f.reflection_text FROM stage s "
                "JOIN episodes n ON n.episode_id = s.episode_id "
                "JOIN episodes t ON t.episode_id = s.template_id "
                "JOIN episodes_fts f ON f.rowid = t.rowid"
            )
            copy("steps", {"timestamp": "t.timestamp - s.shift"})
            copy("episode_patterns", {})
            kept = [c for c in cols("agent_executions") if c not in ("seq", "execution_id",
                    "episode_id", "started_at", "ended_at")]  # fmt: skip
            conn.execute(
                f"INSERT INTO agent_executions (execution_id, episode_id, started_at, ended_at, "
                f"{', '.join(kept)}) SELECT s.episode_id, s.episode_id, t.started_at - s.shift, "
                f"t.ended_at - s.shift, {', '.join(f't.{c}' for c in kept)} FROM stage s "
                "JOIN agent_executions t ON t.episode_id = s.template_id"
            )
            conn.execute("COMMIT")
            have += batch
        conn.execute(
            "UPDATE agent_totals SET (executions, successes, total_ms, min_ms, max_ms, "
            "step_count, error_count, last_at) = (SELECT count(*), sum(success), "
            "sum(duration_ms), min(duration_ms), max(duration_ms), sum(step_count), "
            "sum(error_count), max(ended_at) FROM agent_executions e "
            "WHERE e.agent = agent_totals.agent)"
        )
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return time.perf_counter() - started


async def request(app: DashboardApp, path: str, query: str = "") -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {TOKEN}".encode())],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:])


async def time_pages(data_dir: Path, n: int, runs: int) -> dict[str, list[float]]:
    async with SelfLearningMemory.open(data_dir) as memory:

        async def get() -> SelfLearningMemory:
            return memory

        app = DashboardApp(get, TOKEN)
        newest = (await memory.list_episodes(limit=1))[0].episode_id
        last_page = max(1, n // 25)
        pages = {
            "overview_day": ("/dashboard/", ""),
            "overview_week": ("/dashboard/", "window=week"),
            "overview_hour": ("/dashboard/", "window=hour"),
            "episodes_page1": ("/dashboard/episodes", ""),
            "episodes_last_page": ("/dashboard/episodes", f"page={last_page}"),
            "search": ("/dashboard/episodes", "q=readiness+probe+billing+service"),
            "episode_detail": (f"/dashboard/episodes/{newest}", ""),
            "patterns": ("/dashboard/patterns", ""),
            "agents": ("/dashboard/agents", ""),
        }
        times: dict[str, list[float]] = {name: [] for name in pages}
        for name, (path, query) in pages.items():
            status, body = await request(app, path, query)  # warm-up (opens caches)
            assert status == 200, (name, status, body[:300])
            for _ in range(runs):
                memory._query_cache.clear()
                started = time.perf_counter()
                status, _body = await request(app, path, query)
                times[name].append(time.perf_counter() - started)
                assert status == 200
        points = (await request(app, "/dashboard/", ""))[1].count(b'class="point"')
        times["_curve_points"] = [float(points)]
        agent_points = (await request(app, "/dashboard/agents", ""))[1].count(b'class="point"')
        times["_agent_points"] = [float(agent_points)]
    return times


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.95 * len(s)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--template", type=int, default=TEMPLATE, help="episodes recorded")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    os.environ.setdefault("MEMORY_EMBEDDINGS", "none")
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        asyncio.run(record_template(data_dir, args.template))
        recorded = time.perf_counter() - started
        baseline: dict[str, float] = {}
        baseline_p95: dict[str, float] = {}
        for n in sizes:
            grown = grow(data_dir / DB_FILENAME, n)
            times = asyncio.run(time_pages(data_dir, n, args.runs))
            points = int(times.pop("_curve_points")[0])
            agent_points = int(times.pop("_agent_points")[0])
            for page, samples in times.items():
                median = statistics.median(samples)
                baseline.setdefault(page, median)
                baseline_p95.setdefault(page, p95(samples))
                record = {
                    "name": f"dashboard_{page}",
                    "n": n,
                    "samples": len(samples),
                    "median_ms": round(median * 1000, 2),
                    "p95_ms": round(p95(samples) * 1000, 2),
                    "baseline": f"the same page at {sizes[0]} episodes",
                    "baseline_median_ms": round(baseline[page] * 1000, 2),
                    "baseline_p95_ms": round(baseline_p95[page] * 1000, 2),
                    "ratio": round(median / baseline[page], 2) if baseline[page] else None,
                    "target_ms": TARGET_MS,
                    "target_met": median * 1000 < TARGET_MS,
                }
                if page == "overview_day":
                    record["curve_points"] = points
                if page == "agents":
                    record["agent_points"] = agent_points
                print(json.dumps(record), flush=True)
            print(
                json.dumps(
                    {
                        "name": "run",
                        "n": n,
                        "seed_template_s": round(recorded, 1),
                        "grow_s": round(grown, 1),
                        "loadavg": os.getloadavg(),
                        "at": datetime.now(UTC).isoformat(),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
