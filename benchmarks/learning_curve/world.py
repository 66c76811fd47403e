"""The simulated world: recurring task families with hidden traps, and how a plan plays out.

Each family has a visible part (what an agent is told: the task, its context, the stages to do
and the tools it may use for each) and a hidden part (the traps):

- a **tool that fails in a given context**: the ``choice`` stage offers three tools and, per
  framework, one of them fails with a realistic error;
- a **step order that matters**: the two ``pair`` stages may be done in either order as far as
  the agent knows, but the second one fails unless the first one ran before it.

A plan is one tool for the choice stage and an order for the pair; the last stage always
verifies. Blind, an agent succeeds with probability 2/3 x 1/2 = 1/3.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["FAMILIES", "Plan", "Task", "TaskFamily", "execute", "task_stream"]


@dataclass(frozen=True)
class TaskFamily:
    key: str
    domain: str
    language: str
    descriptions: tuple[str, ...]
    subjects: tuple[str, ...]
    choice: tuple[str, ...]  # tools for the first stage; one fails per framework
    traps: dict[str, tuple[str, str]]  # framework -> (failing tool, its error)
    pair: tuple[str, str]  # hidden rule: pair[0] must run before pair[1]
    order_error: str
    verify: str


@dataclass(frozen=True)
class Task:
    family: TaskFamily
    description: str
    framework: str


Plan = tuple[str, ...]  # the tools in the order they run


FAMILIES: tuple[TaskFamily, ...] = (
    TaskFamily(
        "deploy_service", "web-api", "python",
        ("Deploy the {e} service to production",
         "Ship a new release of {e} to the cluster",
         "Roll out the latest {e} build to prod"),
        ("orders", "billing", "search"),
        ("docker_build", "buildpack", "nixpacks"),
        {"django": ("buildpack", "buildpack: no Procfile detected"),
         "fastapi": ("nixpacks", "nixpacks: could not determine the start command"),
         "flask": ("docker_build", "docker: COPY failed: file not found: requirements.lock")},
        ("alembic_upgrade", "helm_upgrade"),
        "helm: release failed, readiness probe 500: pending migrations, schema is behind",
        "smoke_test",
    ),
    TaskFamily(
        "schema_backfill", "database", "sql",
        ("Add a unique index on {e} after cleaning the data",
         "Enforce uniqueness of {e} keys in the database",
         "Backfill and constrain the {e} table"),
        ("orders", "customers", "events"),
        ("psql", "flyway", "liquibase"),
        {"postgresql": ("liquibase", "liquibase: changelog lock held by another process"),
         "mysql": ("psql", "psql: server speaks the MySQL protocol"),
         "sqlite": ("flyway", "flyway: unsupported database SQLite 3.45")},
        ("backfill_job", "create_index"),
        "index build failed: duplicate key values, rows not backfilled",
        "pytest",
    ),
    TaskFamily(
        "train_model", "ml", "python",
        ("Train the {e} model on last month's data",
         "Retrain the {e} predictor with fresh examples",
         "Refresh the {e} classifier weights"),
        ("churn", "fraud", "pricing"),
        ("cuda_trainer", "tpu_trainer", "cpu_trainer"),
        {"pytorch": ("tpu_trainer", "RuntimeError: XLA device not found"),
         "tensorflow": ("cuda_trainer", "Could not load dynamic library libcudnn.so.8"),
         "xgboost": ("tpu_trainer", "xgboost: TPU is not a supported device")},
        ("normalize_features", "fit_model"),
        "ValueError: features are not scaled, the pipeline expects normalised inputs",
        "evaluate",
    ),
    TaskFamily(
        "frontend_release", "web-frontend", "typescript",
        ("Build and publish the {e} web app",
         "Release a new version of the {e} front end",
         "Bundle the {e} UI and push it to the CDN"),
        ("checkout", "admin", "profile"),
        ("webpack", "vite", "parcel"),
        {"react": ("parcel", "parcel: @parcel/transformer-js failed on JSX runtime"),
         "vue": ("webpack", "webpack: vue-loader was used without the plugin"),
         "svelte": ("vite", "vite: svelte plugin version mismatch")},
        ("npm_ci", "vitest"),
        "vitest: Cannot find module 'react' imported from src/main.tsx",
        "cdn_upload",
    ),
    TaskFamily(
        "mobile_release", "mobile", "kotlin",
        ("Publish the {e} app update to the store",
         "Release version 2 of the {e} mobile app",
         "Upload a new {e} build to the app store"),
        ("banking", "fitness", "travel"),
        ("gradle_sign", "fastlane_match", "manual_keystore"),
        {"android": ("fastlane_match", "fastlane match: no iOS certificates for an Android app"),
         "flutter": ("manual_keystore", "keytool: keystore was tampered with"),
         "react-native": ("gradle_sign", "gradle: signingConfig release is not defined")},
        ("bump_version", "store_upload"),
        "Play Console: version code 41 has already been used",
        "store_review",
    ),
    TaskFamily(
        "data_backfill", "data-pipeline", "python",
        ("Reprocess the {e} history with the new logic",
         "Backfill two years of {e} records",
         "Recompute all {e} aggregates from scratch"),
        ("sales", "clickstream", "inventory"),
        ("spark_submit", "dask_run", "pandas_script"),
        {"spark": ("pandas_script", "MemoryError: unable to allocate 48 GiB"),
         "pandas": ("spark_submit", "spark-submit: no cluster manager configured"),
         "dask": ("spark_submit", "spark-submit: JAVA_HOME is not set")},
        ("warehouse_snapshot", "dbt_full_refresh"),
        "dbt: refusing a full refresh of a table without a snapshot",
        "row_count_check",
    ),
    TaskFamily(
        "key_rotation", "security", "bash",
        ("Rotate the {e} API credentials",
         "Replace the leaked {e} secret key",
         "Cycle the {e} access tokens"),
        ("payments", "storage", "email"),
        ("aws_secrets", "gcloud_secrets", "vault_cli"),
        {"aws": ("gcloud_secrets", "gcloud: project not found"),
         "gcp": ("aws_secrets", "aws: Unable to locate credentials"),
         "on-prem": ("aws_secrets", "aws: could not connect to the endpoint URL")},
        ("deploy_new_key", "revoke_old_key"),
        "401 Unauthorized: services still use the revoked key",
        "health_probe",
    ),
    TaskFamily(
        "docs_site", "documentation", "markdown",
        ("Publish the {e} documentation site",
         "Rebuild and deploy the {e} docs",
         "Refresh the {e} developer guide online"),
        ("api", "sdk", "cli"),
        ("mkdocs_build", "sphinx_build", "docusaurus_build"),
        {"mkdocs": ("sphinx_build", "sphinx: conf.py not found"),
         "sphinx": ("mkdocs_build", "mkdocs: config file 'mkdocs.yml' does not exist"),
         "docusaurus": ("sphinx_build", "sphinx: no module named conf")},
        ("generate_api_docs", "link_check"),
        "link_check: 14 broken links into api/",
        "pages_deploy",
    ),
)  # fmt: skip


def task_stream(seed: int, count: int) -> list[Task]:
    """``count`` tasks drawn uniformly from the families and their frameworks."""
    rng = random.Random(seed)
    tasks = []
    for _ in range(count):
        family = rng.choice(FAMILIES)
        framework = rng.choice(sorted(family.traps))
        template = rng.choice(family.descriptions)
        tasks.append(Task(family, template.format(e=rng.choice(family.subjects)), framework))
    return tasks


def all_plans(family: TaskFamily) -> list[Plan]:
    a, b = family.pair
    return [(tool, *order, family.verify) for tool in family.choice for order in ((a, b), (b, a))]


def execute(task: Task, plan: Plan) -> list[tuple[str, str | None]]:
    """Run a plan: (tool, error or None) per step, stopping at the first error."""
    family = task.family
    failing_tool, tool_error = family.traps[task.framework]
    before, after = family.pair
    done: set[str] = set()
    out: list[tuple[str, str | None]] = []
    for tool in plan:
        error = None
        if tool == failing_tool:
            error = tool_error
        elif tool == after and before not in done:
            error = family.order_error
        out.append((tool, error))
        if error is not None:
            break
        done.add(tool)
    return out
