"""The sandbox's audit trail in the durable store, on SQLite and PostgreSQL: real runs of the
real sandbox recorded with their hash, size, outcome and error or violation type; filters and
counts in SQL; retention pruned in the same write; never the code or its output in a row; a
record that cannot be written is logged and counted, not raised."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apsw
import pytest

from backends.support import Backend
from self_learning_memory import SandboxRun, SandboxRunFilters, ValidationError
from self_learning_memory.sandbox import CodeSandbox, ExecutionContext, SandboxLimits
from self_learning_memory.sandbox.audit import audit_record

SECRET = "s3cr3t-marker-7f1d"  # in the code and in its output: must never reach a row


@pytest.fixture(scope="module")
def sandbox() -> Iterator[CodeSandbox]:
    box = CodeSandbox.from_limits(SandboxLimits(time_ms=200, memory_mb=32), pool_size=1)
    yield box
    box.close()


def sha(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def test_real_runs_are_recorded_with_hash_size_outcome_and_type(
    backend: Backend, sandbox: CodeSandbox
) -> None:
    codes = {
        "success": f"console.log('{SECRET}'); return '{SECRET}'",
        "error": "return (",
        "timeout": "for (;;) {}",
        "security_violation": "// é\n" + "x" * 100_000,  # over 100,000 bytes
    }
    async with backend.open(sandbox_audit={"keep": 100}) as memory:
        for expected, code in codes.items():
            result = await sandbox.execute_code(code, ExecutionContext(task="audit me"))
            assert result.variant == expected
            run = audit_record(code, result, sandbox.limits, caller="library", task="audit me")
            assert await memory.record_sandbox_run(run) == 0
        runs = await memory.list_sandbox_runs()
        counts = await memory.sandbox_run_counts()

    assert [r.outcome for r in runs] == list(reversed(codes))  # newest first
    by_outcome = {r.outcome: r for r in runs}
    for outcome, code in codes.items():
        run = by_outcome[outcome]
        assert run.code_sha256 == sha(code)
        assert run.code_bytes == len(code.encode())
        assert run.backend == "wasm"
        assert run.task == "audit me"
        assert run.time.tzinfo is not None
        assert abs(run.time - datetime.now(UTC)) < timedelta(minutes=5)
        assert run.limits["time_ms"] == 200
        assert run.limits["memory_mb"] == 32
    assert by_outcome["error"].error_type == "syntax"
    assert by_outcome["security_violation"].error_type == "code_too_large"
    assert by_outcome["timeout"].error_type is None
    assert by_outcome["timeout"].duration_ms >= 150
    assert counts.total == 4
    assert counts.by_outcome == dict.fromkeys(codes, 1)
    assert counts.by_backend == {"wasm": dict.fromkeys(codes, 1)}

    # the code and the output are not stored, in any column
    rows = backend.rows("SELECT * FROM sandbox_runs")
    assert len(rows) == 4
    assert not any(SECRET in str(value) for row in rows for value in row)


def _run(outcome: str, **extra: object) -> SandboxRun:
    fields: dict[str, object] = {
        "code_sha256": "a" * 64,
        "code_bytes": 10,
        "backend": "wasm",
        "duration_ms": 1.5,
        "outcome": outcome,
    }
    fields.update(extra)
    return SandboxRun.model_validate(fields)


async def test_filters_counts_and_retention(backend: Backend) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    async with backend.open(sandbox_audit={"keep": 5}) as memory:
        first = _run("success", time=old, caller="mcp")
        assert await memory.record_sandbox_run(first) == 0
        for i in range(4):
            outcome = "timeout" if i % 2 else "error"
            await memory.record_sandbox_run(_run(outcome, error_type="runtime", caller="cli"))
        assert len(await memory.list_sandbox_runs(limit=100)) == 5
        # the same record again (a retry whose first attempt committed): no error, no copy
        assert await memory.record_sandbox_run(first) == 0
        assert len(await memory.list_sandbox_runs(limit=100)) == 5
        # the sixth record prunes the oldest in the same write
        newest = _run("success", backend="node", caller="cli")
        assert await memory.record_sandbox_run(newest) == 1
        runs = await memory.list_sandbox_runs(limit=100)
        assert len(runs) == 5
        assert first.run_id not in {r.run_id for r in runs}
        assert runs[0].run_id == newest.run_id

        timeouts = await memory.list_sandbox_runs(SandboxRunFilters(outcome="timeout"))
        assert [r.outcome for r in timeouts] == ["timeout", "timeout"]
        assert [
            r.run_id for r in await memory.list_sandbox_runs(SandboxRunFilters(backend="node"))
        ] == [newest.run_id]
        assert len(await memory.list_sandbox_runs(SandboxRunFilters(caller="mcp"))) == 0
        recent = SandboxRunFilters(since=datetime.now(UTC) - timedelta(hours=1))
        assert len(await memory.list_sandbox_runs(recent, limit=2)) == 2
        counts = await memory.sandbox_run_counts()
        assert counts.total == 5
        assert counts.by_outcome == {
            "success": 1,
            "error": 2,
            "timeout": 2,
            "security_violation": 0,
        }
        assert counts.by_backend == {"wasm": {"error": 2, "timeout": 2}, "node": {"success": 1}}
        assert (await memory.sandbox_run_counts(SandboxRunFilters(backend="node"))).total == 1

        with pytest.raises(ValidationError, match="limit"):
            await memory.list_sandbox_runs(limit=0)
    assert len(backend.rows("SELECT run_id FROM sandbox_runs")) == 5


async def test_a_record_that_cannot_be_written_is_counted_not_raised(backend: Backend) -> None:
    # a short retry budget: PostgreSQL goes through the resilient wrapper's retries
    async with backend.open(resilience={"retry_budget_ms": 300, "max_attempts": 2}) as memory:
        # the durable store goes away under the memory (and under the wrapper, if any)
        await getattr(memory.storage, "primary", memory.storage).close()
        assert await memory.try_record_sandbox_run(_run("success")) is False
        assert memory.sandbox_audit_failures == 1


def test_a_record_refuses_values_outside_its_schema() -> None:
    with pytest.raises(ValueError, match="code_sha256"):
        _run("success", code_sha256="not-a-hash")
    with pytest.raises(ValueError, match="outcome"):
        _run("crashed")
    with pytest.raises(ValueError, match="task"):
        _run("success", task="x" * 201)
    run = _run("success", run_id=uuid.uuid4())
    assert run.caller == "library"


async def test_a_store_of_schema_3_gains_the_audit_table(tmp_path: Path) -> None:
    from self_learning_memory import SelfLearningMemory
    from self_learning_memory.storage.migrations import SQLITE_MIGRATIONS
    from self_learning_memory.storage.sqlite import SQLiteStorage
    from self_learning_memory.storage.sqlite_connection import SQLiteConnection

    data = tmp_path / "data"
    data.mkdir()
    old = SQLiteConnection(data / "memory.db", migrations=SQLITE_MIGRATIONS[:3])
    await old.open()
    await old.close()
    db = apsw.Connection(str(data / "memory.db"))
    assert db.execute("PRAGMA user_version").fetchone() == (3,)
    db.close()

    async with SelfLearningMemory.open(data) as memory:
        assert isinstance(memory.storage, SQLiteStorage)
        await memory.record_sandbox_run(_run("timeout"))
        assert [r.outcome for r in await memory.list_sandbox_runs()] == ["timeout"]
    db = apsw.Connection(str(data / "memory.db"))
    assert db.execute("PRAGMA user_version").fetchone() == (len(SQLITE_MIGRATIONS),)
    db.close()
