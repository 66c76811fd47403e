"""Run every benchmark, save the JSON lines, print a summary table (``make bench``).

    python -m benchmarks.run_all [--quick] [--sizes 1000,10000] [--embedding-sizes 10000]
                                 [--skip-embeddings] [--skip-model] [--mcp] [--cli] [--scaleout] [--out PATH]

Each benchmark runs in its own process (``python -m benchmarks.<name>``); every JSON line it
prints is tagged with ``bench`` and written to ``benchmarks/results/latest.jsonl`` after a
``run`` record describing the machine (cores, load average before and after, Python, commit).
The defaults finish in a few minutes on a 2-core machine; pass bigger sizes for more.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "latest.jsonl"
ROOT = Path(__file__).resolve().parent.parent


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_bench(module: str, args: list[str], records: list[dict[str, Any]]) -> int:
    """Run one benchmark module, echo and collect its JSON lines; returns its exit code."""
    cmd = [sys.executable, "-m", f"benchmarks.{module}", *args]
    print(f"$ {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            try:
                record = json.loads(line)
            except ValueError:
                print(line, file=sys.stderr)
                continue
            if isinstance(record, dict):
                record = {"bench": module, **record}
                records.append(record)
                print(json.dumps(record), file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    print(f"  {module} finished in {elapsed:.0f} s (exit {proc.returncode})", file=sys.stderr)
    return proc.returncode


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary(records: list[dict[str, Any]]) -> str:
    """A plain-text table: one row per result."""
    header = ("benchmark", "variant", "n", "p50 ms", "p95 ms", "baseline p50", "ratio", "target")
    rows = [header]
    for r in records:
        if r.get("name") == "run":
            continue
        variant = r.get("mode") or r.get("backend") or r.get("store") or ""
        if r.get("name") == "retrieval_quality":
            variant = (
                f"{variant} {r.get('class', '')}: hit@1 {r['hit_at_1']}, nDCG@10 {r['ndcg_at_10']}"
            )
        if r.get("name") == "learning_curve":
            variant = (
                f"{r['window']}: {r['with_memory']} with memory, {r['without_memory']} without"
            )
        if "baseline" in r:
            variant = f"{variant} vs {r['baseline'].split(',')[0][:48]}".strip()
        if r.get("name") == "complete_episode":
            variant = f"store of {r.get('store_episodes', 0)} episodes"
        p50 = r.get("median_ms")
        if p50 is None and "seconds" in r:
            p50 = f"{r['seconds']} s"
        if p50 is None and "texts_per_s" in r:
            p50 = f"{r['texts_per_s']} texts/s"
        target = r.get("target_ms")
        met = r.get("target_met")
        rows.append(
            (
                str(r.get("name")),
                variant,
                _fmt(r.get("n")),
                _fmt(p50),
                _fmt(r.get("p95_ms")),
                _fmt(r.get("baseline_median_ms")),
                _fmt(r.get("ratio"), 2),
                "-" if target is None else f"<= {target} ms: {_fmt(met)}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--sizes", default=None, help="foundation retrieval store sizes")
    parser.add_argument("--episodes", type=int, default=None, help="log/complete episodes")
    parser.add_argument("--queries", type=int, default=None, help="timed queries per size")
    parser.add_argument("--embedding-sizes", default=None, help="hybrid retrieval store sizes")
    parser.add_argument("--skip-embeddings", action="store_true")
    parser.add_argument("--skip-model", action="store_true", help="skip the local model benches")
    parser.add_argument("--mcp", action="store_true", help="also run benchmarks.mcp_bench")
    parser.add_argument(
        "--quality", action="store_true", help="also run benchmarks.retrieval_quality"
    )
    parser.add_argument(
        "--learning", action="store_true", help="also run benchmarks.learning_curve"
    )
    parser.add_argument("--cli", action="store_true", help="also run benchmarks.cli_bench")
    parser.add_argument(
        "--scaleout", action="store_true", help="also run benchmarks.scaleout_bench"
    )
    parser.add_argument(
        "--dashboard", action="store_true", help="also run benchmarks.dashboard_bench"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    foundation: list[str] = ["--quick"] if args.quick else []
    if args.sizes:
        foundation += ["--sizes", args.sizes]
    if args.episodes:
        foundation += ["--episodes", str(args.episodes)]
    if args.queries:
        foundation += ["--queries", str(args.queries)]
    embeddings: list[str] = ["--quick"] if args.quick else []
    if args.embedding_sizes:
        embeddings += ["--sizes", args.embedding_sizes]
    if args.skip_model:
        embeddings.append("--skip-model")

    run: dict[str, Any] = {
        "name": "run",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": _loadavg(),
        "argv": argv if argv is not None else sys.argv[1:],
    }
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    codes = [run_bench("foundation_bench", foundation, records)]
    if not args.skip_embeddings:
        codes.append(run_bench("embeddings_bench", embeddings, records))
    if args.mcp:
        codes.append(run_bench("mcp_bench", [], records))
    model = ["--provider", "hashing"] if args.skip_model else []
    if args.quality:
        codes.append(
            run_bench("retrieval_quality", [*model, *(["--quick"] if args.quick else [])], records)
        )
    if args.learning:
        codes.append(
            run_bench(
                "learning_curve", [*model, *(["--seeds", "1,2"] if args.quick else [])], records
            )
        )
    if args.cli:
        codes.append(run_bench("cli_bench", ["--runs", "5"] if args.quick else [], records))
    if args.scaleout:
        codes.append(run_bench("scaleout_bench", ["--quick"] if args.quick else [], records))
    if args.dashboard:
        quick = ["--sizes", "1000,10000", "--runs", "5"] if args.quick else []
        codes.append(run_bench("dashboard_bench", quick, records))
    run.update(loadavg_end=_loadavg(), elapsed_s=round(time.perf_counter() - started, 1))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for record in [run, *records]:
            fh.write(json.dumps(record) + "\n")
    print(summary(records))
    print(
        f"\n{len(records)} results in {args.out} ({run['elapsed_s']} s; "
        f"load average {run['loadavg_start']} -> {run['loadavg_end']} on {run['cpus']} cores)"
    )
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
