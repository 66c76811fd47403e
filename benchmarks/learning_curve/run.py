"""Run the learning-payoff benchmark: the same task stream with and without a memory.

    python -m benchmarks.learning_curve [--episodes 100] [--seeds 1,2,3,4,5]
                                        [--provider local|hashing|none] [--window 10]
                                        [--feedback]

For each seed, one stream of tasks (8 families x 3 frameworks, hidden traps: see world.py) is
played twice: by the agent with a fresh memory (it consults the memory before acting and records
every episode: start_episode, log_step, complete_episode) and by the same agent acting blindly.
Prints one ``learning_curve`` JSON line per window of ``--window`` episodes (success rates
averaged over seeds, and per seed), then ``learning_curve_summary``: the gap at episode 50 and
whether the curve with memory is still rising after it.

With ``--feedback`` each stream is also played by the agent with memory that reports which
retrieved episodes it followed (``record_retrieval_feedback`` before ``complete_episode``, so
they are counted with the outcome: the ranking's ``usefulness`` component), from the same seed:
each window line gains ``with_feedback`` (and ``feedback_gain`` over ``with_memory``), and the
summary the feedback agent's numbers at and after episode 50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from self_learning_memory import (
    EmbeddingsConfig,
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
)

from .agent import blind_plan, context_of, memory_plan, used_episodes
from .world import Task, execute, task_stream

__all__ = ["main", "play_blind", "play_with_memory", "run"]

TARGET_GAP = 0.30


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def record(
    memory: SelfLearningMemory,
    task: Task,
    steps: list[tuple[str, str | None]],
    used: list[uuid.UUID] | None = None,
) -> None:
    eid = await memory.start_episode(task.description, context_of(task), "other")
    if used:  # retrieval feedback: counted with the outcome when the episode completes
        await memory.record_retrieval_feedback(eid, used_episode_ids=list(used))
    for number, (tool, error) in enumerate(steps, start=1):
        result = SuccessResult(output="ok") if error is None else ErrorResult(message=error)
        await memory.log_step(
            eid,
            ExecutionStep(step_number=number, tool=tool, action=f"run {tool}", result=result),
        )
    failed = next(((t, e) for t, e in steps if e is not None), None)
    if failed is None:
        outcome: SuccessOutcome | FailureOutcome = SuccessOutcome(verdict="done, verified")
    else:
        outcome = FailureOutcome(reason=f"{failed[0]} failed", error_details=failed[1])
    await memory.complete_episode(eid, outcome)
    # the next task's retrieval sees this episode's vector (the background worker's timing
    # would otherwise make the curve depend on the machine's load)
    await memory.wait_for_embeddings(600)


async def play_with_memory(
    tasks: list[Task],
    seed: int,
    provider: str,
    *,
    feedback: bool = False,
    weight_usefulness: float | None = None,
) -> list[bool]:
    """The agent with a fresh memory; with ``feedback`` it also reports which retrieved
    episodes it followed. The same seed gives both agents the same tie-breaking stream."""
    rng = random.Random(seed * 1000 + 1)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp:
        config = MemoryConfig(embeddings=EmbeddingsConfig(provider=provider))  # type: ignore[arg-type]
        if weight_usefulness is not None:
            config.retrieval.weight_usefulness = weight_usefulness
        async with SelfLearningMemory.open(Path(tmp), config=config) as memory:
            for task in tasks:
                plan, _, consulted = await memory_plan(memory, task, rng)
                steps = execute(task, plan)
                used = used_episodes(task, plan, consulted) if feedback else None
                await record(memory, task, steps, used)
                outcomes.append(all(error is None for _, error in steps))
    return outcomes


def play_blind(tasks: list[Task], seed: int) -> list[bool]:
    rng = random.Random(seed * 1000 + 2)
    return [all(e is None for _, e in execute(t, blind_plan(t, rng))) for t in tasks]


def _windows(outcomes: list[bool], size: int) -> list[float]:
    return [
        sum(outcomes[i : i + size]) / len(outcomes[i : i + size])
        for i in range(0, len(outcomes), size)
    ]


async def run(
    *, episodes: int = 100, seeds: tuple[int, ...] = (1, 2, 3, 4, 5), provider: str = "local",
    window: int = 10, feedback: bool = False, weight_usefulness: float | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    records: list[dict[str, Any]] = []
    with_mem: list[list[float]] = []
    with_fb: list[list[float]] = []
    without: list[list[float]] = []
    started = time.perf_counter()
    for seed in seeds:
        tasks = task_stream(seed, episodes)
        with_mem.append(_windows(await play_with_memory(tasks, seed, provider), window))
        if feedback:
            played = await play_with_memory(
                tasks, seed, provider, feedback=True, weight_usefulness=weight_usefulness
            )
            with_fb.append(_windows(played, window))
        without.append(_windows(play_blind(tasks, seed), window))
    elapsed = time.perf_counter() - started
    for w in range(len(with_mem[0])):
        mem = [s[w] for s in with_mem]
        blind = [s[w] for s in without]
        rec = {
            "name": "learning_curve",
            "provider": provider,
            "window": f"{w * window + 1}-{min((w + 1) * window, episodes)}",
            "with_memory": round(statistics.mean(mem), 3),
            "without_memory": round(statistics.mean(blind), 3),
            "gap": round(statistics.mean(mem) - statistics.mean(blind), 3),
            "with_memory_per_seed": mem,
            "without_memory_per_seed": blind,
            "seeds": len(seeds),
        }
        if feedback:
            fb = [s[w] for s in with_fb]
            rec["with_feedback"] = round(statistics.mean(fb), 3)
            rec["feedback_gain"] = round(statistics.mean(fb) - statistics.mean(mem), 3)
            rec["with_feedback_per_seed"] = fb
        records.append(rec)
        emit(rec)
    at = min(50 // window, len(records)) - 1  # the window ending at episode 50
    gap = records[at]["gap"] if at >= 0 else None
    after = [r["with_memory"] for r in records[at + 1 :]]
    summary = {
        "name": "learning_curve_summary",
        "provider": provider,
        "episodes": episodes,
        "seeds": len(seeds),
        "gap_at_50": gap,
        "with_memory_at_50": records[at]["with_memory"] if at >= 0 else None,
        "with_memory_after_50": round(statistics.mean(after), 3) if after else None,
        "still_rising": bool(after) and statistics.mean(after) > records[at]["with_memory"],
        "target_gap": TARGET_GAP,
        "target_met": gap is not None and gap >= TARGET_GAP,
        **(_feedback_summary(records, at, episodes, window) if feedback else {}),
        **({"weight_usefulness": weight_usefulness} if weight_usefulness is not None else {}),
        "elapsed_s": round(elapsed, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    records.append(summary)
    emit(summary)
    return records


def _feedback_summary(
    records: list[dict[str, Any]], at: int, episodes: int, window: int
) -> dict[str, Any]:
    """The feedback agent against the agent with memory alone, at and after episode 50 and
    over the whole run (window means, same seeds)."""
    fb_after = [r["with_feedback"] for r in records[at + 1 :]]
    mem_after = [r["with_memory"] for r in records[at + 1 :]]
    return {
        "with_feedback_at_50": records[at]["with_feedback"] if at >= 0 else None,
        "with_feedback_after_50": round(statistics.mean(fb_after), 3) if fb_after else None,
        "feedback_gain_after_50": (
            round(statistics.mean(fb_after) - statistics.mean(mem_after), 3) if fb_after else None
        ),
        "with_memory_overall": round(statistics.mean(r["with_memory"] for r in records), 3),
        "with_feedback_overall": round(statistics.mean(r["with_feedback"] for r in records), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--provider", default="local", choices=["local", "hashing", "none"])
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument(
        "--feedback",
        action="store_true",
        help="also play each stream with the agent that records retrieval feedback",
    )
    parser.add_argument(
        "--weight-usefulness",
        type=float,
        default=None,
        help="retrieval.weight_usefulness of the feedback agent's memory (default: the library's)",
    )
    args = parser.parse_args(argv)
    asyncio.run(
        run(
            episodes=args.episodes,
            seeds=tuple(int(s) for s in args.seeds.split(",") if s),
            provider=args.provider,
            window=args.window,
            feedback=args.feedback,
            weight_usefulness=args.weight_usefulness,
        )
    )
