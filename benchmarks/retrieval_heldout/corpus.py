"""The held-out corpus: episodes and graded queries from ``families.py``.

``build_heldout(seed)`` records, per family, one episode per subject (4 or 5), phrased with the
family's task titles in turn. Outcomes are drawn with a seeded RNG (about 45 % clean success,
15 % success after a failed step and a retry, 15 % partial, 25 % failure), with at least one
clean success and one partial or failure per family; a failing episode meets one of the
family's errors (seeded) and stops there (failure) or goes on (partial).

Queries are the families' own (four each, in other words than the tasks) plus ``CROSS``
(several families each). Context is what the asking agent knew: ``full`` gives domain and
language, ``lang`` the language only, ``domain`` the domain only, ``none`` no context at all.

Graded relevance (``QuerySpec.relevance``: episode index -> gain):

- intent ``any``: every episode of the family; 2 if it succeeded, 1 otherwise (partial or
  failure: still the same task). ``CROSS`` grades cap the family's gains (a grade-1 family
  gives every episode 1).
- intent ``fail`` ("what went wrong last time"): the episodes that met an error (failed,
  partial, or succeeded after a retry) gain 2; a clean success gains 0: it cannot say what
  went wrong. These queries are where a failure must rank first.

Binary metrics (hit@1, MRR, recall, nDCG@10) count every gain > 0 as relevant; the graded
nDCG@10 uses the gains. Everything is deterministic for a given seed; the default seed is
11 and nothing in the ranking was chosen by looking at this set's per-query results.
"""

from __future__ import annotations

import random

from self_learning_memory import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    PartialSuccessOutcome,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskOutcome,
)

from ..retrieval_quality.corpus import Corpus, EpisodeSpec, QuerySpec
from .families import CROSS, FAMILIES, Family

__all__ = ["CONTEXT_KINDS", "INTENTS", "build_heldout", "query_context"]

CONTEXT_KINDS = ("full", "lang", "domain", "none")
INTENTS = ("any", "fail")
_KINDS = (("success", 0.45), ("recovered", 0.6), ("partial", 0.75), ("failure", 1.0))


def _draw_kinds(rng: random.Random, n: int) -> list[str]:
    kinds: list[str] = []
    for _ in range(n):
        r = rng.random()
        kinds.append(next(k for k, top in _KINDS if r < top))
    if "success" not in kinds:
        kinds[rng.randrange(n)] = "success"
    if not any(k in ("partial", "failure") for k in kinds):
        choices = [i for i, k in enumerate(kinds) if k != "success"] or [
            i for i, k in enumerate(kinds) if i != kinds.index("success")
        ]
        kinds[rng.choice(choices)] = rng.choice(("partial", "failure"))
    return kinds


def _episode(
    family: Family, subject: str, title: str, kind: str, rng: random.Random
) -> tuple[list[ExecutionStep], TaskOutcome]:
    fail_at, message = rng.choice(family.errors)
    message = message.replace("{s}", subject)
    steps: list[ExecutionStep] = []

    def add(tool: str, action: str, error: str | None = None) -> None:
        result = SuccessResult(output="ok") if error is None else ErrorResult(message=error)
        steps.append(
            ExecutionStep(
                step_number=len(steps) + 1,
                tool=tool,
                action=action.replace("{s}", subject),
                result=result,
                latency_ms=rng.randint(50, 9000),
            )
        )

    for index, (tool, action) in enumerate(family.steps):
        if index == fail_at and kind != "success":
            add(tool, action, message)
            if kind == "failure":
                break
            if kind == "recovered":
                add(tool, f"{action} (after fixing: {message.split(':')[0]})")
            continue
        add(tool, action)
    failed_action = family.steps[fail_at][1].replace("{s}", subject)
    outcome: TaskOutcome
    if kind in ("success", "recovered"):
        outcome = SuccessOutcome(verdict=f"{title}: works", artifacts=[])
    elif kind == "partial":
        done = [a.replace("{s}", subject) for i, (_, a) in enumerate(family.steps) if i != fail_at]
        outcome = PartialSuccessOutcome(verdict="half done", completed=done, failed=[failed_action])
    else:
        outcome = FailureOutcome(reason=f"stuck at: {failed_action}", error_details=message)
    return steps, outcome


def query_context(family: Family, kind: str) -> TaskContext | None:
    if kind == "full":
        return TaskContext(domain=family.domain, language=family.language)
    if kind == "lang":
        return TaskContext(language=family.language)
    if kind == "domain":
        return TaskContext(domain=family.domain)
    if kind == "none":
        return None
    raise ValueError(f"unknown context kind {kind!r}: choose from {CONTEXT_KINDS}")


def _gains(
    episodes: list[EpisodeSpec], met_error: list[bool], family: str, intent: str, cap: int
) -> dict[int, float]:
    out: dict[int, float] = {}
    for i, e in enumerate(episodes):
        if e.family != family:
            continue
        if intent == "fail":
            gain = 2 if met_error[i] else 0
        else:
            gain = 2 if e.outcome.type == "success" else 1
        gain = min(gain, cap)
        if gain > 0:
            out[i] = float(gain)
    return out


def build_heldout(seed: int = 11) -> Corpus:
    rng = random.Random(f"heldout-{seed}")
    episodes: list[EpisodeSpec] = []
    met_error: list[bool] = []
    for family in FAMILIES:
        kinds = _draw_kinds(rng, len(family.subjects))
        for i, (subject, kind) in enumerate(zip(family.subjects, kinds, strict=True)):
            title = family.tasks[i % len(family.tasks)]
            title = title.replace("{s}", subject).replace("{n}", str(rng.randint(100, 4999)))
            steps, outcome = _episode(family, subject, title, kind, rng)
            episodes.append(
                EpisodeSpec(
                    family=family.key,
                    description=title,
                    context=TaskContext(
                        domain=family.domain, language=family.language, framework=family.framework
                    ),
                    task_type=family.task_type,
                    steps=steps,
                    outcome=outcome,
                )
            )
            met_error.append(kind != "success")
    by_key = {f.key: f for f in FAMILIES}
    queries: list[QuerySpec] = []
    for family in FAMILIES:
        for text, context_kind, intent in family.queries:
            queries.append(
                QuerySpec(
                    family=family.key,
                    text=text,
                    context=query_context(family, context_kind),
                    kind=intent,
                    variation=context_kind,
                    relevance=_gains(episodes, met_error, family.key, intent, 2),
                )
            )
    for text, context_kind, intent, grades in CROSS:
        first = next(iter(grades))
        relevance: dict[int, float] = {}
        for key, cap in grades.items():
            if key not in by_key:
                raise ValueError(f"CROSS query {text!r} names unknown family {key!r}")
            relevance.update(_gains(episodes, met_error, key, intent, cap))
        queries.append(
            QuerySpec(
                family=first,
                text=text,
                context=query_context(by_key[first], context_kind),
                kind=intent,
                variation=context_kind,
                relevance=relevance,
            )
        )
    return Corpus(episodes=episodes, queries=queries, families=list(FAMILIES))
