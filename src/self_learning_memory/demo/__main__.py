"""The demo: record sample agent episodes, then show what the memory learned.

    memory-demo [--data-dir DIR]

It records the episodes in ``sample_episodes.json`` (successes and failures, with tool steps
and errors) into an embedded store, completes them, and for a new task prints the retrieved
past episodes with their score breakdown, the learned patterns and heuristics, and the reward
and reflection of one episode. Without ``--data-dir`` it uses a fresh temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from .. import (
    Episode,
    ExecutionStep,
    SelfLearningMemory,
    TaskContext,
)
from ..model.episode import TaskOutcome
from ..model.pattern import ContextPattern, DecisionPoint, ErrorRecovery, ToolSequence
from ..model.validation import parse_model

__all__ = ["main", "run_demo"]

_OUTCOME_FIELD = "outcome"


def load_sample() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("sample_episodes.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _describe(pattern: ToolSequence | DecisionPoint | ErrorRecovery | ContextPattern) -> str:
    if isinstance(pattern, ToolSequence):
        return f"tool sequence   {' -> '.join(pattern.tools)}  [{pattern.context.domain}]"
    if isinstance(pattern, DecisionPoint):
        return f"decision point  when '{pattern.condition}' use {pattern.action}"
    if isinstance(pattern, ErrorRecovery):
        return f"error recovery  '{pattern.error_type}' -> {'; '.join(pattern.recovery_steps)}"
    return (
        f"context         {', '.join(pattern.context_features)} -> {pattern.recommended_approach}"
    )


async def record(memory: SelfLearningMemory, sample: dict[str, Any]) -> list[Episode]:
    from pydantic import TypeAdapter

    outcome_adapter: TypeAdapter[Any] = TypeAdapter(TaskOutcome)
    episodes = []
    for item in sample["episodes"]:
        context = parse_model(TaskContext, item["context"], "context")
        episode_id = await memory.start_episode(item["task"], context, item["task_type"])
        for number, raw in enumerate(item["steps"], start=1):
            step = parse_model(ExecutionStep, {"step_number": number, **raw}, "step")
            await memory.log_step(episode_id, step)
        outcome = outcome_adapter.validate_python(item[_OUTCOME_FIELD])
        episodes.append(await memory.complete_episode(episode_id, outcome))
    return episodes


def _line(text: str = "") -> None:
    print(text)


def _retrieval_line(memory: SelfLearningMemory) -> str:
    """Which retrieval the demo shows, and how to get semantic retrieval when it is lexical."""
    from ..embeddings import lexical_hint

    if memory.vectors is not None:
        return f"Retrieval: hybrid (semantic: {memory.vectors.provider.model} + lexical)"
    hint = lexical_hint(memory.config.embeddings)
    return f"Retrieval: lexical (bm25). Hint: {hint}" if hint else "Retrieval: lexical (bm25)"


async def run_demo(data_dir: Path) -> None:
    sample = load_sample()
    async with SelfLearningMemory.open(data_dir) as memory:
        episodes = await record(memory, sample)
        ok = sum(1 for e in episodes if e.outcome is not None and e.outcome.type == "success")
        _line(f"Recorded {len(episodes)} episodes ({ok} successes) in {data_dir}")
        _line(_retrieval_line(memory))

        task = sample["new_task"]
        context = parse_model(TaskContext, task["context"], "context")
        _line(f"\nNew task: {task['task']}")
        _line(f"Context:  {context.domain} / {context.language} / {context.framework}")

        _line("\n== Retrieved past episodes (score = relevance + context + outcome + recency) ==")
        results = await memory.retrieve_relevant_context(
            task["task"], context, limit=4, task_type=task["task_type"]
        )
        for rank, r in enumerate(results, 1):
            c = r.components
            outcome = r.episode.outcome.type if r.episode.outcome else "?"
            _line(f"{rank}. {r.score:.3f}  {r.episode.task_description}  [{outcome}]")
            _line(
                f"     relevance {c.relevance:.2f} (bm25 {c.lexical:.2f}, terms {c.term_coverage:.2f})"
                f" | context {c.context:.2f} | outcome {c.outcome:.2f} | recency {c.recency:.2f}"
                f" | diversity -{c.diversity_penalty:.2f}"
            )
            _line(f"     why: {', '.join(r.provenance)}")

        _line("\n== Learned patterns for this context (aggregated across episodes) ==")
        for m in await memory.retrieve_relevant_patterns(context, limit=6):
            p = m.pattern
            _line(
                f"- seen {p.occurrence_count}x, success {m.success_rate:.0%}, "
                f"score {m.score:.0f}: {_describe(p)}"
            )

        _line("\n== Learned heuristics ==")
        heuristics = await memory.retrieve_heuristics(context, limit=5)
        if not heuristics:
            _line("(none yet: a heuristic needs at least two supporting episodes)")
        for h in heuristics:
            ev = h.heuristic.evidence
            _line(
                f"- {h.heuristic.condition}\n    => {h.heuristic.action}"
                f"   (n={ev.sample_size}, success {ev.success_rate:.0%}, "
                f"confidence {h.heuristic.confidence:.2f})"
            )

        first = episodes[0]
        assert first.reward is not None
        assert first.reflection is not None
        rw = first.reward
        _line(f"\n== Reward and reflection of: {first.task_description} ==")
        _line(
            f"reward {rw.total:.3f} = base {rw.base:.2f} x efficiency {rw.efficiency:.3f}"
            f" x complexity {rw.complexity_bonus:.2f} x quality {rw.quality_multiplier:.2f}"
            f" + learning bonus {rw.learning_bonus:.2f}"
        )
        for title, items in (
            ("successes", first.reflection.successes),
            ("improvements", first.reflection.improvements),
            ("insights", first.reflection.insights),
        ):
            _line(f"{title}:")
            for item in items:
                _line(f"  - {item}")

        stats = await memory.stats()
        _line(
            f"\nStore: {stats.episodes} episodes, {stats.steps} steps, {stats.patterns} patterns,"
            f" {stats.heuristics} heuristics"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memory-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, help="where to store the memory (default: a fresh temp dir)"
    )
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        asyncio.run(run_demo(args.data_dir))
        return
    with tempfile.TemporaryDirectory(prefix="memory-demo-") as tmp:
        asyncio.run(run_demo(Path(tmp)))


if __name__ == "__main__":
    main()
