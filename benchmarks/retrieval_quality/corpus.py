"""The labelled corpus: episodes as an agent records them, and paraphrased queries.

``build_corpus(seed)`` turns the hand-written families (``families.py``) into

- episodes: per family, ``episodes_per_family`` tasks on distinct subjects, each with its steps
  (tool, action, result; the family's error on the failing step) and an outcome drawn with a
  seeded RNG (about 60 % success, 20 % partial, 20 % failure, at least one success per family);
  a successful episode sometimes hit the error and recovered, as real ones do;
- queries: per family, one per paraphrase template, on a seeded subject, with seeded surface
  variation (a lead-in, the two clauses of a ``;`` template swapped), and the family's domain and
  language as the query context (what an agent knows about the repository it works in);
- splits: ``split_families`` halves the families into a tuning half and a held-out half, seeded
  and stratified by domain (each domain's families shuffled, then dealt alternately), so that
  ranking changes are tuned on one half's queries and checked on the other's. The store always
  holds every family's episodes: a split chooses which queries are asked, not the distractors;
- workload queries (``workload.py``): besides the paraphrases, the query classes ``error``,
  ``identifier`` and ``mixed``, generated from the episodes with their own seeded RNG after
  everything above, so the paraphrase queries are exactly what they were without them;
- labels: an episode is relevant to a query when it belongs to the same family; ``grade`` is 2
  for a successful episode and 1 otherwise (used by the outcome-graded nDCG only).

Everything is deterministic for a given seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

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

from .families import FAMILIES, SUBJECTS, Family
from .workload import QUERY_CLASSES, WORKLOAD_CLASSES, workload_queries

__all__ = [
    "SPLITS",
    "Corpus",
    "EpisodeSpec",
    "QuerySpec",
    "build_corpus",
    "episode_text",
    "split_families",
    "word_overlap",
]

SPLITS = ("tune", "heldout", "all")
LEAD_INS = ("", "", "", "Task: ", "Next up: ", "Need help: ", "TODO: ")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and the to of in on for with is it be by at as or so our we".split())  # noqa: SIM905


@dataclass
class EpisodeSpec:
    family: str
    description: str
    context: TaskContext
    task_type: str
    steps: list[ExecutionStep]
    outcome: TaskOutcome

    @property
    def grade(self) -> int:
        return 2 if self.outcome.type == "success" else 1


@dataclass
class QuerySpec:
    family: str
    text: str
    context: TaskContext | None
    kind: str = "paraphrase"  # one of workload.QUERY_CLASSES
    key: str | None = None  # the error or identifier quoted in the query, verbatim
    variation: str = ""
    # graded labels (episode index -> gain) when they are not "the query's family"
    relevance: dict[int, float] | None = None

    def gains(self, episodes: list[EpisodeSpec]) -> dict[int, float]:
        """Episode index -> gain: ``relevance`` if set, else the family's episodes graded
        by outcome (``EpisodeSpec.grade``)."""
        if self.relevance is not None:
            return dict(self.relevance)
        return {i: float(e.grade) for i, e in enumerate(episodes) if e.family == self.family}


@dataclass
class Corpus:
    episodes: list[EpisodeSpec]
    queries: list[QuerySpec]
    families: list[Any] = field(default_factory=list)  # Family here, or the held-out set's

    def stats(self) -> dict[str, object]:
        outcomes: dict[str, int] = {}
        for e in self.episodes:
            outcomes[e.outcome.type] = outcomes.get(e.outcome.type, 0) + 1
        by_class: dict[str, list[float]] = {}
        for q in self.queries:
            by_class.setdefault(q.kind, []).append(
                max(
                    word_overlap(q.text, e.description)
                    for e in self.episodes
                    if e.family == q.family
                )
            )
        overlaps = by_class.get("paraphrase", [])
        return {
            "families": len(self.families),
            "domains": len({f.domain for f in self.families}),
            "languages": len({f.language for f in self.families}),
            "episodes": len(self.episodes),
            "steps": sum(len(e.steps) for e in self.episodes),
            "outcomes": outcomes,
            "queries": len(self.queries),
            "queries_by_class": {k: len(v) for k, v in by_class.items()},
            # Jaccard of content words between a paraphrase and its closest relevant episode
            "query_overlap_mean": round(sum(overlaps) / len(overlaps), 3) if overlaps else 0.0,
            "query_overlap_max": round(max(overlaps), 3) if overlaps else 0.0,
            "query_overlap_by_class": {
                k: {"mean": round(sum(v) / len(v), 3), "max": round(max(v), 3)}
                for k, v in by_class.items()
            },
            "exact_key_matches": self.exact_key_matches(),
        }

    def exact_key_matches(self) -> dict[str, dict[str, int]]:
        """Per workload class: in how many episodes the query's key occurs verbatim.

        ``one_episode`` counts the queries that an exact substring search would answer with a
        single episode (the sanity number: a class made of those would test grep, not
        retrieval); ``only_own_family`` those whose every match is of the query's family."""
        texts = [(e.family, episode_text(e).lower()) for e in self.episodes]
        out: dict[str, dict[str, int]] = {}
        for q in self.queries:
            if q.key is None:
                continue
            hits = [family for family, text in texts if q.key.lower() in text]
            row = out.setdefault(
                q.kind,
                {"queries": 0, "none": 0, "one_episode": 0, "several": 0, "only_own_family": 0},
            )
            row["queries"] += 1
            row["none" if not hits else "one_episode" if len(hits) == 1 else "several"] += 1
            row["only_own_family"] += bool(hits) and set(hits) == {q.family}
        return out


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def word_overlap(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa or wb else 0.0


def _steps(family: Family, subject: str, kind: str, rng: random.Random) -> list[ExecutionStep]:
    """The steps of one episode: ``kind`` is success, recovered, partial or failure."""
    fail_at, message = family.error
    out: list[ExecutionStep] = []

    def add(tool: str, action: str, error: str | None = None) -> None:
        result = SuccessResult(output="ok") if error is None else ErrorResult(message=error)
        out.append(
            ExecutionStep(
                step_number=len(out) + 1,
                tool=tool,
                action=action.format(e=subject),
                result=result,
                latency_ms=rng.randint(80, 4000),
            )
        )

    for index, (tool, action) in enumerate(family.steps):
        if index == fail_at and kind != "success":
            add(tool, action, message)
            if kind == "failure":
                break
            if kind == "recovered":
                add(tool, f"retry: {action}")
            continue  # partial: the step stays failed, the rest goes on
        add(tool, action)
    return out


def _outcome(family: Family, kind: str, description: str) -> TaskOutcome:
    fail_at, message = family.error
    failed_step = family.steps[fail_at][1]
    if kind in ("success", "recovered"):
        return SuccessOutcome(verdict=f"{description}: done and verified", artifacts=[])
    if kind == "partial":
        done = [a for i, (_, a) in enumerate(family.steps) if i != fail_at]
        return PartialSuccessOutcome(verdict="partly done", completed=done, failed=[failed_step])
    return FailureOutcome(reason=f"{failed_step} failed", error_details=message)


def episode_text(spec: EpisodeSpec) -> str:
    """The episode's searchable text: description, each step's tool, action and error, outcome."""
    parts = [spec.description]
    for step in spec.steps:
        parts.append(f"{step.tool} {step.action}")
        if isinstance(step.result, ErrorResult):
            parts.append(step.result.message)
    parts.extend(str(v) for k, v in spec.outcome.model_dump().items() if k != "type" and v)
    return "\n".join(parts)


def _vary(
    template: str, subject: str, rng: random.Random, lead_ins: tuple[str, ...] = LEAD_INS
) -> str:
    text = template.format(e=subject)
    clauses = [c.strip() for c in text.split(";")]
    if len(clauses) == 2 and rng.random() < 0.5:
        clauses.reverse()
    text = ". ".join(c[0].upper() + c[1:] for c in clauses)
    lead = rng.choice(lead_ins)
    if lead:
        text = lead + text[0].lower() + text[1:]
    return text


def build_corpus(
    seed: int = 7,
    *,
    families: int | None = None,
    episodes_per_family: int = 5,
    queries_per_family: int = 3,
    classes: tuple[str, ...] = QUERY_CLASSES,
    workload_per_class: int = 2,
) -> Corpus:
    rng = random.Random(seed)
    chosen = list(FAMILIES[:families] if families else FAMILIES)
    episodes: list[EpisodeSpec] = []
    queries: list[QuerySpec] = []
    for family in chosen:
        pool = SUBJECTS[family.domain]
        subjects = rng.sample(pool, min(episodes_per_family, len(pool)))
        while len(subjects) < episodes_per_family:
            subjects.append(rng.choice(pool))
        kinds = []
        for _ in range(episodes_per_family):
            r = rng.random()
            kinds.append(
                "success"
                if r < 0.45
                else "recovered"
                if r < 0.6
                else "partial"
                if r < 0.8
                else "failure"
            )
        if not any(k in ("success", "recovered") for k in kinds):
            kinds[rng.randrange(len(kinds))] = "success"
        context = TaskContext(
            domain=family.domain, language=family.language, framework=family.framework
        )
        for i, (subject, kind) in enumerate(zip(subjects, kinds, strict=True)):
            description = family.tasks[i % len(family.tasks)].format(e=subject)
            episodes.append(
                EpisodeSpec(
                    family=family.key,
                    description=description,
                    context=context,
                    task_type=family.task_type,
                    steps=_steps(family, subject, kind, rng),
                    outcome=_outcome(family, kind, description),
                )
            )
        query_context = TaskContext(domain=family.domain, language=family.language)
        for j in range(queries_per_family):
            template = family.queries[j % len(family.queries)]
            text = _vary(template, rng.choice(pool), rng)
            queries.append(QuerySpec(family=family.key, text=text, context=query_context))
    unknown = set(classes) - set(QUERY_CLASSES)
    if unknown:
        raise ValueError(f"unknown query class {sorted(unknown)}: choose from {QUERY_CLASSES}")
    if "paraphrase" not in classes:
        queries = []
    if set(classes) & set(WORKLOAD_CLASSES):
        queries += _workload(chosen, episodes, seed, classes, workload_per_class)
    return Corpus(episodes=episodes, queries=queries, families=chosen)


def _workload(
    families: list[Family],
    episodes: list[EpisodeSpec],
    seed: int,
    classes: tuple[str, ...],
    per_class: int,
) -> list[QuerySpec]:
    """Error, identifier and mixed queries, from their own RNG (the paraphrases stay as they
    were); a query that would contain or be contained in a stored description is dropped."""
    rng = random.Random(f"workload-{seed}")
    tools = frozenset(step[0] for family in families for step in family.steps)
    descriptions = [e.description.lower() for e in episodes]
    out: list[QuerySpec] = []
    for family in families:
        pool = SUBJECTS[family.domain]
        texts = [episode_text(e) for e in episodes if e.family == family.key]
        context = TaskContext(domain=family.domain, language=family.language)
        generated = workload_queries(
            family,
            texts,
            tools,
            rng,
            lambda template, r, pool=pool: _vary(template, r.choice(pool), r, ("",)),  # type: ignore[misc]
            per_class,
        )
        for kind, text, key, variation in generated:
            low = text.lower()
            if kind not in classes or any(low in d or d in low for d in descriptions):
                continue
            out.append(QuerySpec(family.key, text, context, kind, key, variation))
    return out


def split_families(families: list[Family], seed: int = 1) -> dict[str, frozenset[str]]:
    """Family keys per split (``tune``, ``heldout``, ``all``): seeded, stratified by domain."""
    rng = random.Random(f"split-{seed}")
    by_domain: dict[str, list[str]] = {}
    for family in families:
        by_domain.setdefault(family.domain, []).append(family.key)
    tune: set[str] = set()
    heldout: set[str] = set()
    first_to_tune = True
    for domain in sorted(by_domain):
        keys = sorted(by_domain[domain])
        rng.shuffle(keys)
        for i, key in enumerate(keys):
            # alternate which half gets a domain's odd family out, so the halves stay even
            (tune if (i % 2 == 0) == first_to_tune else heldout).add(key)
        if len(keys) % 2:
            first_to_tune = not first_to_tune
    return {
        "tune": frozenset(tune),
        "heldout": frozenset(heldout),
        "all": frozenset(f.key for f in families),
    }
