"""`memory-cli sandbox` as real processes: `run` on success, a syntax error, a timeout and a
violation (exit code per variant, each run recorded with caller cli), refusals before running
(code over 100 KB, a bad context: exit 3, not recorded), retention from the config, the missing
extra, and `audit` in every format. Backups carry the audit trail. docs/cli.md covers every group
and every sandbox command."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from self_learning_memory import SandboxRun, SelfLearningMemory
from self_learning_memory.cli.app import GROUPS, build_app

from .conftest import Invoke, run_process

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def sha(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def sandbox_run(
    code: str, *args: str, env: dict[str, str] | None = None, pre: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`memory-cli [PRE] sandbox run - [ARGS]` with ``code`` on stdin (a real process)."""
    return subprocess.run(
        [sys.executable, "-m", "self_learning_memory.cli", *pre, "sandbox", "run", "-", *args],
        input=code,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def audit(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    listed = run_process("sandbox", "audit", "--json", *args, env=env)
    assert listed.returncode == 0, listed.stderr
    data: dict[str, Any] = json.loads(listed.stdout)
    return data


def test_run_prints_the_variant_exits_with_its_code_and_records_it(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    fast = {"MEMORY_SANDBOX_MAX_EXECUTION_TIME_MS": "300"}
    ok_code = "console.log(context.task); return context.input.a * 2"
    done = sandbox_run(ok_code, "--json", "--context", '{"task": "double", "input": {"a": 21}}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) | {"execution_time_ms": 0} == {
        "variant": "success",
        "backend": "wasm",
        "execution_time_ms": 0,
        "output": 42,
        "stdout": "double\n",
        "audited": True,
    }

    syntax = sandbox_run("return (", env=fast)  # human output
    assert syntax.returncode == 11, syntax.stderr
    assert syntax.stdout.startswith("error (syntax)")
    assert "SyntaxError" in syntax.stdout

    looping = sandbox_run("console.log('before'); for (;;) {}", "--json", env=fast)
    assert looping.returncode == 12, looping.stderr
    timed_out = json.loads(looping.stdout)
    assert timed_out["variant"] == "timeout"
    assert timed_out["partial_output"] == "before\n"

    # a file as the source; 100,000 bytes of code is the limit, over it is refused unrun
    script = tmp_path / "limit.js"
    script.write_text("//" + "x" * 99_989 + "\nreturn 1")
    assert script.stat().st_size == 100_000
    at_limit = run_process("-f", "json", "sandbox", "run", str(script))
    assert at_limit.returncode == 0, at_limit.stderr
    too_big = sandbox_run("x" * 100_001)
    assert too_big.returncode == 3
    assert "'CODE'" in too_big.stderr
    assert "100000 bytes" in too_big.stderr
    bad_context = sandbox_run("return 1", "--context", '{"task": "t", "env": {}}')
    assert bad_context.returncode == 3
    assert "unknown keys ['env']" in bad_context.stderr
    missing = run_process("sandbox", "run", str(tmp_path / "nope.js"))
    assert missing.returncode == 7
    assert "nope.js" in missing.stderr

    data = audit()
    runs = data["runs"]
    assert [(r["outcome"], r["error_type"]) for r in runs] == [
        ("success", None),
        ("timeout", None),
        ("error", "syntax"),
        ("success", None),
    ]
    assert {r["caller"] for r in runs} == {"cli"}
    assert runs[-1]["code_sha256"] == sha(ok_code)
    assert runs[-1]["code_bytes"] == len(ok_code)
    assert runs[-1]["task"] == "double"
    assert runs[0]["code_bytes"] == script.stat().st_size
    assert runs[1]["limits"]["time_ms"] == 300
    assert runs[-1]["limits"]["time_ms"] == 3000
    assert data["counts"]["by_outcome"] == {
        "success": 2,
        "error": 1,
        "timeout": 1,
        "security_violation": 0,
    }
    assert [r["outcome"] for r in audit("--outcome", "timeout")["runs"]] == ["timeout"]
    assert len(audit("--limit", "1")["runs"]) == 1
    assert audit("--caller", "mcp")["runs"] == []
    assert audit("--backend", "node")["counts"]["total"] == 0
    assert audit("--since", "1h")["counts"]["total"] == 4

    human = run_process("sandbox", "audit")
    assert human.returncode == 0
    assert "4 of 4 recorded runs" in human.stdout
    assert "success: 2, error: 1, timeout: 1, security_violation: 0" in human.stdout
    bad = run_process("sandbox", "audit", "--since", "yesterday")
    assert bad.returncode == 3
    assert "--since" in bad.stderr


def test_retention_from_the_config_keeps_the_newest_runs(cli_env: dict[str, str]) -> None:
    keep = {"MEMORY_SANDBOX_AUDIT_KEEP": "2"}
    codes = ["return 1", "return 2", "return 3"]
    for code in codes:
        assert sandbox_run(code, env=keep).returncode == 0
    dry = sandbox_run("return 4", env=keep, pre=("--dry-run", "-f", "json"))
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {
        "dry_run": True,
        "would": "run the code in the sandbox and record the run",
        "code_bytes": 8,
        "code_sha256": sha("return 4"),
    }
    data = audit(env=keep)
    assert [r["code_sha256"] for r in data["runs"]] == [sha("return 3"), sha("return 2")]
    assert data["keep"] == 2
    assert data["counts"]["total"] == 2
    invalid = run_process("sandbox", "audit", env={"MEMORY_SANDBOX_AUDIT_KEEP": "0"})
    assert invalid.returncode == 6
    assert "sandbox_audit.keep" in invalid.stderr


def test_run_without_the_sandbox_extra_names_the_install_command(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # a quickjs_rs that cannot be imported, as when the extra is not installed
    shadow = tmp_path / "shadow" / "quickjs_rs"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'quickjs_rs'\", name='quickjs_rs')\n"
    )
    path = os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])
    result = sandbox_run("return 1", env={"PYTHONPATH": path})
    assert result.returncode == 10
    assert "quickjs_rs is missing" in result.stderr
    assert "pip install 'self-learning-memory[sandbox]'" in result.stderr
    # the audit trail does not need the extra
    listed = run_process("sandbox", "audit", "--json", env={"PYTHONPATH": path})
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["runs"] == []


async def _record(data_dir: Path, n: int) -> list[str]:
    async with SelfLearningMemory.open(data_dir) as memory:
        for i in range(n):
            run = SandboxRun(
                code_sha256=sha(f"return {i}"),
                code_bytes=8,
                backend="wasm",
                limits={"time_ms": 3000},
                duration_ms=2.5,
                outcome="error" if i else "success",
                error_type="runtime" if i else None,
                caller="cli",
                task=f"task {i}",
            )
            await memory.record_sandbox_run(run)
        return [str(r.run_id) for r in await memory.list_sandbox_runs()]


@pytest.mark.parametrize("fmt", ["sqlite", "json", "jsonl", "sql"])
def test_backups_carry_the_audit_trail(
    cli_env: dict[str, str], tmp_path: Path, invoke: Invoke, fmt: str
) -> None:
    ids = asyncio.run(_record(Path(cli_env["MEMORY_DATA_DIR"]), 3))
    backups = tmp_path / "backups"
    created = invoke("-f", "json", "backup", "create", "-p", str(backups), "--format", fmt)
    assert created.exit_code == 0, created.stderr
    target = tmp_path / "restored"
    path = json.loads(created.stdout)["path"]
    restored = invoke("-f", "json", "backup", "restore", path, "-t", str(target), "-y")
    assert restored.exit_code == 0, restored.stderr
    original = invoke("-f", "json", "sandbox", "audit")
    copy = invoke("-f", "json", "--data-dir", str(target), "sandbox", "audit")
    assert copy.exit_code == 0, copy.stderr
    assert [r["run_id"] for r in json.loads(copy.stdout)["runs"]] == ids
    assert json.loads(copy.stdout) == json.loads(original.stdout)


def test_docs_cover_every_group_and_every_sandbox_command() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for name, alias in GROUPS.items():
        assert f"## {name} (alias `{alias}`)" in text, name
    section = text.split("## sandbox (alias `sb`)", 1)[1].split("\n## ", 1)[0]
    group = build_app("sandbox").registered_groups[0].typer_instance
    assert group is not None
    commands = [c.name for c in group.registered_commands]
    assert sorted(commands) == ["audit", "run"]  # type: ignore[type-var]
    for command in commands:
        assert f"| `{command}" in section, command
    for code in ("11", "12", "13"):
        assert f"| {code} |" in text, code


def test_sandbox_choices_and_code_limit_are_the_librarys(invoke: Invoke) -> None:
    """The sandbox group takes its choices and code limit from the model's pydantic-free
    ``names`` and ``limits`` (what the sandbox and the audit record use too)."""
    from self_learning_memory.cli.commands import sandbox as commands
    from self_learning_memory.model.names import SANDBOX_CALLERS, SANDBOX_OUTCOMES
    from self_learning_memory.sandbox import MAX_CODE_BYTES

    for flag, values in (("--outcome", SANDBOX_OUTCOMES), ("--caller", SANDBOX_CALLERS)):
        refused = invoke("sandbox", "audit", flag, "bogus")
        assert refused.exit_code == 2
        message = " ".join(refused.stderr.split())
        assert all(f"'{value}'" in message for value in values), message
    assert SANDBOX_OUTCOMES == ("success", "error", "timeout", "security_violation")
    assert commands.MAX_CODE_BYTES is MAX_CODE_BYTES
