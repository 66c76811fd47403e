"""Realistic, varied, seeded synthetic agent episodes and queries for the benchmarks.

Episodes vary task type, domain, language and framework, tags, tool chains (about 8 steps),
error messages (one or two failing steps in most episodes, recovered or not), outcomes and
wording; queries are new combinations of the same vocabulary, not copies of stored tasks.
"""

from __future__ import annotations

import random
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
    TaskType,
    TimeoutResult,
)

__all__ = ["SyntheticEpisode", "episodes", "queries"]

STACKS: dict[str, list[tuple[str, str | None]]] = {
    "web-api": [
        ("python", "fastapi"),
        ("python", "django"),
        ("go", "gin"),
        ("typescript", "express"),
        ("rust", "axum"),
    ],
    "database": [("sql", None), ("python", "sqlalchemy"), ("go", None), ("rust", "sqlx")],
    "web-frontend": [("typescript", "react"), ("typescript", "vue"), ("javascript", "svelte")],
    "data-pipeline": [("python", "pandas"), ("python", "airflow"), ("scala", "spark")],
    "devops": [("yaml", "kubernetes"), ("hcl", "terraform"), ("bash", None), ("python", None)],
    "cli": [("rust", "clap"), ("python", "typer"), ("go", "cobra")],
    "machine-learning": [("python", "pytorch"), ("python", "scikit-learn")],
    "security": [("python", None), ("go", None), ("rust", None)],
    "mobile": [("kotlin", "android"), ("swift", "swiftui"), ("dart", "flutter")],
    "embedded": [("c", None), ("rust", "embassy")],
}
VERBS = {
    TaskType.CODE_GENERATION: ["add", "implement", "create", "build", "write", "introduce"],
    TaskType.DEBUGGING: ["fix", "debug", "investigate", "repair", "track down", "resolve"],
    TaskType.REFACTORING: ["refactor", "split", "simplify", "extract", "rename", "restructure"],
    TaskType.TESTING: ["test", "cover", "add tests for", "write property tests for", "fuzz"],
    TaskType.ANALYSIS: ["analyse", "profile", "measure", "audit", "review", "benchmark"],
    TaskType.DOCUMENTATION: ["document", "explain", "write a guide for", "describe"],
    TaskType.OTHER: ["upgrade", "migrate", "configure", "clean up", "port", "tune"],
}
OBJECTS = {
    "web-api": ["orders endpoint", "auth middleware", "rate limiter", "pagination", "webhook"],
    "database": ["migration", "slow join", "connection pool", "index", "deadlock", "schema"],
    "web-frontend": ["login form", "dark mode", "infinite scroll", "date picker", "router"],
    "data-pipeline": ["csv import", "dedup step", "backfill job", "parquet export", "schema drift"],
    "devops": ["helm chart", "ci pipeline", "docker image", "autoscaler", "secret rotation"],
    "cli": ["argument parser", "progress bar", "config loader", "shell completion"],
    "machine-learning": ["training loop", "data loader", "tokenizer", "eval harness"],
    "security": ["jwt validation", "csrf token", "password hashing", "tls config", "sql injection"],
    "mobile": ["push notifications", "offline sync", "image cache", "deep links"],
    "embedded": ["uart driver", "interrupt handler", "flash writer", "power manager"],
}
QUALIFIERS = [
    "for the billing service",
    "in the payments module",
    "without downtime",
    "behind a feature flag",
    "for large inputs",
    "on the staging cluster",
    "after the dependency upgrade",
    "with retries and backoff",
    "for multi-tenant customers",
    "in the legacy monolith",
    "that keeps timing out",
    "under concurrent load",
    "for the mobile clients",
    "using the new cache layer",
    "with structured logging",
    "",
]
TAGS = ["urgent", "customer", "flaky", "perf", "security", "tech-debt", "oncall", "release"]
TOOLS = {
    "python": ("pytest", "pip", "mypy"),
    "rust": ("cargo test", "cargo", "clippy"),
    "go": ("go test", "go", "golangci-lint"),
    "typescript": ("jest", "npm", "tsc"),
    "javascript": ("vitest", "npm", "eslint"),
    "sql": ("psql", "pg_dump", "explain"),
    "scala": ("sbt test", "sbt", "scalafmt"),
    "yaml": ("kubectl", "helm", "kubeval"),
    "hcl": ("terraform plan", "terraform", "tflint"),
    "bash": ("bats", "shellcheck", "shellcheck"),
    "kotlin": ("gradle test", "gradle", "ktlint"),
    "swift": ("xcodebuild test", "swift", "swiftlint"),
    "dart": ("flutter test", "flutter", "dart analyze"),
    "c": ("ctest", "make", "clang-tidy"),
}
ERRORS = [
    "ModuleNotFoundError: No module named '{mod}'",
    "connection refused on port {port}",
    "assertion failed: expected 200, got 500",
    "timeout after {sec}s waiting for {mod}",
    "permission denied: /var/run/{mod}.sock",
    "type error: argument of type 'NoneType' is not iterable",
    "borrow of moved value: `{mod}`",
    "deadlock detected while waiting for ShareLock on transaction {port}",
    "undefined reference to `{mod}_init`",
    "Cannot find module '{mod}' or its corresponding type declarations",
    "OOMKilled: container exceeded memory limit",
    'relation "{mod}" does not exist',
    "lint: line too long (131 > 100 characters)",
    "merge conflict in src/{mod}.py",
]
MODULES = ["orders", "auth", "cache", "billing", "users", "events", "reports", "queue", "config"]


@dataclass
class SyntheticEpisode:
    description: str
    context: TaskContext
    task_type: TaskType
    steps: list[ExecutionStep] = field(default_factory=list)
    outcome: TaskOutcome = field(default_factory=lambda: SuccessOutcome(verdict="done"))


def _error(rng: random.Random) -> str:
    return rng.choice(ERRORS).format(
        mod=rng.choice(MODULES), port=rng.randint(1024, 65000), sec=rng.choice([5, 30, 60])
    )


def _task(rng: random.Random) -> tuple[str, TaskContext, TaskType]:
    domain = rng.choice(list(STACKS))
    language, framework = rng.choice(STACKS[domain])
    task_type = rng.choice(list(TaskType))
    words = [rng.choice(VERBS[task_type]), "the", rng.choice(OBJECTS[domain])]
    qualifier = rng.choice(QUALIFIERS)
    if qualifier:
        words.append(qualifier)
    if framework and rng.random() < 0.5:
        words.append(f"({framework})")
    if rng.random() < 0.3:
        words.append(f"ticket {rng.choice('ABCDEFG')}{rng.randint(100, 9999)}")
    tags = rng.sample(TAGS, rng.choice([0, 0, 1, 2]))
    context = TaskContext(
        domain=domain,
        language=language,
        framework=framework,
        complexity=rng.choice(["simple", "moderate", "moderate", "complex"]),
        tags=tags,
    )
    return " ".join(words), context, task_type


def _steps(rng: random.Random, language: str, n: int) -> tuple[list[ExecutionStep], int]:
    test, build, lint = TOOLS.get(language, ("make test", "make", "lint"))
    chain: list[tuple[str, str, dict[str, Any]]] = [
        ("grep", "search for the code that handles it", {"pattern": rng.choice(MODULES)}),
        ("read_file", "read the module and its tests", {"path": f"src/{rng.choice(MODULES)}"}),
        ("editor", "implement the change", {"lines_changed": rng.randint(3, 200)}),
        (test, "check whether the tests pass", {"args": "-q"}),
        ("editor", "fix the failing case", {"lines_changed": rng.randint(1, 40)}),
        (test, "verify the fix with the full suite", {"args": "-q"}),
        (lint, "validate style and types", {}),
        (build, "build the release artifact", {}),
        ("git", "commit the change", {"message": "wip"}),
        ("shell", "ensure the service starts", {"cmd": "make run"}),
    ]
    start = rng.randint(0, 2)
    chosen = chain[start : start + n]
    failing = set(rng.sample(range(len(chosen)), rng.choice([0, 1, 1, 2])))
    steps = []
    for i, (tool, action, params) in enumerate(chosen, start=1):
        result: SuccessResult | ErrorResult | TimeoutResult | None
        if i - 1 in failing:
            result = TimeoutResult() if rng.random() < 0.1 else ErrorResult(message=_error(rng))
        else:
            result = SuccessResult(output=f"ok ({rng.randint(1, 400)} lines)")
        steps.append(
            ExecutionStep(
                step_number=i,
                tool=tool,
                action=action,
                parameters=params,
                result=result,
                latency_ms=rng.randint(20, 5000),
                tokens_used=rng.randint(100, 4000),
            )
        )
    return steps, len(failing)


def episodes(count: int, seed: int = 7, steps: int = 8) -> list[SyntheticEpisode]:
    """``count`` episodes of about ``steps`` steps, with errors, deterministic for a seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        description, context, task_type = _task(rng)
        chain, failures = _steps(rng, context.language or "", max(2, steps + rng.randint(-1, 1)))
        roll = rng.random()
        outcome: TaskOutcome
        if (failures == 0 and roll < 0.9) or (failures == 1 and roll < 0.65):
            outcome = SuccessOutcome(verdict="tests pass and the change is merged")
        elif roll < 0.8:
            outcome = PartialSuccessOutcome(
                verdict="works but a follow-up is needed",
                completed=["implementation"],
                failed=["performance check"],
            )
        else:
            outcome = FailureOutcome(reason="gave up after repeated errors", error_details=None)
        out.append(SyntheticEpisode(description, context, task_type, chain, outcome))
    return out


def queries(count: int, seed: int = 99) -> list[tuple[str, TaskContext]]:
    """New task descriptions (fresh combinations, never a stored one verbatim) with contexts."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        description, context, _ = _task(rng)
        # reworded: another article and an agent-like preamble
        description = description.replace(" the ", " our ", 1)
        out.append((f"please {description}", context))
    return out
