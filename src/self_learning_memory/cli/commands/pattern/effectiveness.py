"""`memory-cli pattern effectiveness`, `decay`: effectiveness recomputed from the store's usage
counters (``learning/analysis.py``) over every pattern; `decay --force` really removes the
patterns below the threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...output import emit, table
from ...state import get_state, run_with_memory

if TYPE_CHECKING:
    from rich.console import Console

    from ....core.memory import SelfLearningMemory
    from ....model.pattern import AnyPattern
    from ....model.usage import PatternUsage

__all__ = ["decay", "effectiveness"]

MAX_SCAN = 100_000  # patterns read by effectiveness and decay
_PAGE = 1000


async def _all_patterns(memory: SelfLearningMemory) -> list[tuple[AnyPattern, PatternUsage]]:
    out: list[tuple[AnyPattern, PatternUsage]] = []
    while len(out) < MAX_SCAN:
        page = await memory.list_patterns(None, _PAGE, len(out))
        out += page
        if len(page) < _PAGE:
            break
    return out


def effectiveness(
    ctx: typer.Context,
    top: Annotated[int, typer.Option("--top", "-t", min=1, max=1000, help="1..1000.")] = 10,
    min_uses: Annotated[
        int,
        typer.Option("--min-uses", min=0, max=1_000_000, help="Minimum applications (0 = all)."),
    ] = 1,
) -> None:
    """The most effective patterns, from the store's usage counters (0.4 success + 0.3
    application + 0.2 recency + 0.1 volume)."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....learning.analysis import effectiveness_rows, is_active

        pairs = await _all_patterns(memory)
        rows = effectiveness_rows(pairs)
        considered = [r for r in rows if r.applications >= min_uses]
        scores = [r.effectiveness for r in rows]
        return {
            "patterns": considered[:top],
            "total_patterns": len(rows),
            "considered": len(considered),
            "active_last_30_days": sum(1 for _, u in pairs if is_active(u)),
            "mean_effectiveness": round(sum(scores) / len(scores), 6) if scores else None,
            "below_threshold": sum(1 for r in rows if r.below_threshold),
            "min_uses": min_uses,
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        rows = [
            [
                str(r.pattern_id)[:8],
                r.pattern_type,
                f"{r.effectiveness:.3f}",
                f"{r.success_rate:.2f}",
                f"{r.application_rate:.2f}",
                f"{r.applications}/{r.retrievals}",
                f"{r.days_since_last_use:.1f}",
                r.description[:60],
            ]
            for r in d["patterns"]
        ]
        table(
            console,
            f"top {len(rows)} of {d['considered']} patterns with >= {d['min_uses']} uses "
            f"({d['total_patterns']} in all, {d['active_last_30_days']} active)",
            ["id", "type", "eff", "success", "app rate", "applied/retrieved", "days", "pattern"],
            rows,
        )

    emit(state, run_with_memory(state, act), human)


def decay(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Really remove them (otherwise only list).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report (same as the global --dry-run).")
    ] = False,
) -> None:
    """Patterns whose effectiveness fell below 0.3; removed with --force."""
    state = get_state(ctx)
    apply = force and not (dry_run or state.dry_run)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....learning.analysis import effectiveness_rows
        from ....model.usage import MIN_EFFECTIVENESS

        rows = effectiveness_rows(await _all_patterns(memory))
        below = [r for r in rows if r.below_threshold]
        result = await memory.decay_patterns(force=True) if apply else None
        return {
            "threshold": MIN_EFFECTIVENESS,
            "evaluated": len(rows),
            "candidates": below,
            "applied": apply,
            "dry_run": not apply,
            "removed": None if result is None else result["removed"],
            "result": result,
        }

    def human(console: Console, d: dict[str, Any]) -> None:
        rows = [
            [str(r.pattern_id)[:8], r.pattern_type, f"{r.effectiveness:.3f}", r.description[:60]]
            for r in d["candidates"]
        ]
        if not rows:
            console.print(f"none of {d['evaluated']} patterns is below {d['threshold']}")
        else:
            table(
                console,
                f"{len(rows)} of {d['evaluated']} patterns below {d['threshold']}",
                ["id", "type", "eff", "pattern"],
                rows,
            )
        if d["applied"]:
            console.print(f"removed {d['removed']} patterns")
        elif force:
            console.print("dry run: nothing removed")
        elif rows:
            console.print("nothing removed; run with --force to remove them")

    emit(state, run_with_memory(state, act), human)
