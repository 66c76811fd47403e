"""The simulated agent: plans from what the memory returns, or blindly without a memory.

Before acting, the agent with memory asks three questions through the public API and scores
every plan it could make (tool for the choice stage x order of the pair) from the answers only:

- ``retrieve_relevant_context``: past episodes like this task. A success votes for its whole
  plan (its tool and its order); twice as much when its context (framework) is the agent's own.
- ``check_known_failures``: similar failed or partial episodes. The step that failed is blamed
  on what the agent chose there: if the failing tool was one of several options, that tool is
  avoided (strongly in the same framework, weakly elsewhere); if it was a stage with no
  alternative, the order that led to it is avoided.
- ``retrieve_relevant_patterns``: learned tool sequences; an applicable one votes for its
  tools and order in proportion to its success rate.

The best-scoring plan is chosen, ties broken at random (seeded); with no evidence at all the agent
is as blind as the agent without memory. It never sees the hidden traps.

:func:`used_episodes` says which retrieved episodes the chosen plan followed: the successes
whose whole plan it repeats and the failures whose blamed tool or order it avoided. The agent
with feedback reports them (``record_retrieval_feedback``), so they are counted with the
task's outcome and the ranking's ``usefulness`` component learns which episodes help.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable

from self_learning_memory import (
    Episode,
    ErrorResult,
    FailureWarning,
    PatternMatch,
    RetrievalResult,
    SelfLearningMemory,
    TaskContext,
    ToolSequence,
)

from .world import Plan, Task, all_plans

__all__ = ["Consulted", "blind_plan", "context_of", "memory_plan", "used_episodes"]

Feature = tuple[str, ...]


def context_of(task: Task) -> TaskContext:
    return TaskContext(
        domain=task.family.domain, language=task.family.language, framework=task.framework
    )


def blind_plan(task: Task, rng: random.Random) -> Plan:
    return rng.choice(all_plans(task.family))


def _features(task: Task, tools: Iterable[str]) -> list[Feature]:
    """What a (possibly partial) tool sequence says about a plan: its tool and its order."""
    family = task.family
    seq = list(tools)
    out: list[Feature] = [("tool", t) for t in seq if t in family.choice]
    a, b = family.pair
    if a in seq and b in seq:
        out.append(("order", a, b) if seq.index(a) < seq.index(b) else ("order", b, a))
    elif b in seq and a not in seq:
        out.append(("order", b, a))  # b ran without a before it
    return out


def _applicable(task: Task, tools: list[str]) -> bool:
    family = task.family
    known = {*family.choice, *family.pair, family.verify}
    return bool(tools) and all(t in known for t in tools)


def _same_context(episode: Episode, task: Task) -> bool:
    return (episode.context.framework or "") == task.framework


def _learn_from_success(
    task: Task, results: list[RetrievalResult], scores: dict[Feature, float]
) -> None:
    for r in results:
        e = r.episode
        tools = [s.tool for s in e.steps]
        if e.outcome is None or e.outcome.type != "success" or not _applicable(task, tools):
            continue
        weight = r.score * (2.0 if _same_context(e, task) else 1.0)
        for feature in _features(task, tools):
            scores[feature] += weight


def _learn_from_failures(task: Task, warning: FailureWarning, scores: dict[Feature, float]) -> None:
    family = task.family
    for failure in warning.failures:
        e = failure.episode
        tools = [s.tool for s in e.steps]
        if not _applicable(task, tools):
            continue
        failed = [s for s in e.steps if isinstance(s.result, ErrorResult)]
        if not failed:
            continue
        tool = failed[-1].tool
        same = _same_context(e, task)
        if tool in family.choice:  # one of several options failed: avoid that option
            scores[("tool", tool)] -= failure.score * (3.0 if same else 0.5)
        else:  # a stage without alternatives failed: blame the order that led there
            for feature in _features(task, tools):
                if feature[0] == "order":
                    scores[feature] -= failure.score * 3.0


def _learn_from_patterns(
    task: Task, patterns: list[PatternMatch], scores: dict[Feature, float]
) -> None:
    for match in patterns:
        p = match.pattern
        if isinstance(p, ToolSequence) and _applicable(task, p.tools):
            framework_ok = (p.context.framework or "") == task.framework
            for feature in _features(task, p.tools):
                scores[feature] += match.success_rate * (0.5 if framework_ok else 0.2)


Consulted = tuple[list[RetrievalResult], FailureWarning]


def used_episodes(task: Task, plan: Plan, consulted: Consulted) -> list[uuid.UUID]:
    """The retrieved episodes the chosen plan followed: a success whose plan it repeats, a
    failure whose failing tool (or, for a stage without options, order) it avoided."""
    results, warning = consulted
    chosen = set(_features(task, plan))
    used: list[uuid.UUID] = []
    for r in results:
        e = r.episode
        tools = [s.tool for s in e.steps]
        if e.outcome is None or e.outcome.type != "success" or not _applicable(task, tools):
            continue
        if set(_features(task, tools)) == chosen:
            used.append(e.episode_id)
    for failure in warning.failures:
        e = failure.episode
        tools = [s.tool for s in e.steps]
        failed = [s for s in e.steps if isinstance(s.result, ErrorResult)]
        if not failed or not _applicable(task, tools):
            continue
        tool = failed[-1].tool
        blamed = (
            {("tool", tool)}
            if tool in task.family.choice
            else {f for f in _features(task, tools) if f[0] == "order"}
        )
        if blamed and not blamed & chosen:
            used.append(e.episode_id)
    return list(dict.fromkeys(used))[:100]


async def memory_plan(
    memory: SelfLearningMemory, task: Task, rng: random.Random
) -> tuple[Plan, dict[str, int], Consulted]:
    """The plan the memory supports best, how much evidence each source gave, and what was
    consulted (for :func:`used_episodes`)."""
    context = context_of(task)
    results = await memory.retrieve_relevant_context(task.description, context, 10)
    warning = await memory.check_known_failures(task.description, context, 10)
    patterns = await memory.retrieve_relevant_patterns(context, 20)
    scores: dict[Feature, float] = defaultdict(float)
    _learn_from_success(task, results, scores)
    _learn_from_failures(task, warning, scores)
    _learn_from_patterns(task, patterns, scores)
    plans = all_plans(task.family)
    rng.shuffle(plans)  # ties are broken at random
    best = max(plans, key=lambda plan: sum(scores.get(f, 0.0) for f in _features(task, plan)))
    evidence = {
        "episodes": len(results),
        "failures": len(warning.failures),
        "patterns": sum(isinstance(m.pattern, ToolSequence) for m in patterns),
    }
    return best, evidence, (results, warning)
