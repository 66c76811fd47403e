"""`memory-cli pattern`: list (SQL filters), view, analyze, effectiveness and decay on a real
store seeded through the library; bad input with its exit code; --format json purity in real
processes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.model.usage import effectiveness

from .conftest import Invoke, run_process
from .seeding import add_episode, seed, with_memory

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(cli_env: dict[str, str]) -> Path:
    return Path(cli_env["MEMORY_DATA_DIR"])


@pytest.fixture
def seeded(data_dir: Path) -> dict[str, Any]:
    """web-api: 3 successes then 2 failures (editor -> pytest); ops: 2 successes (grep -> make);
    legacy: one failed episode whose patterns were then applied and failed 3 times."""
    web = seed(data_dir, successes=3, failures=2, domain="web-api")

    async def more(memory: SelfLearningMemory) -> dict[str, Any]:
        ops = [
            await add_episode(memory, f"Deploy service {i}", domain="ops", tools=("grep", "make"))
            for i in range(2)
        ]
        legacy = await add_episode(
            memory, "Port the COBOL job", domain="legacy", tools=("vim", "cc"), success=False
        )
        patterns = {
            (p.type, p.pattern_context().domain if p.pattern_context() else None): p.id
            for p, _ in await memory.list_patterns(None, 100)
        }
        legacy_ids = [p.id for p, _ in await memory.list_patterns(None, 100) if legacy_in(p)]
        for pid in legacy_ids:
            for _ in range(3):
                await memory.record_pattern_application(pid, success=False)
        return {"ops": ops, "legacy": legacy, "patterns": patterns, "decaying": legacy_ids}

    def legacy_in(p: Any) -> bool:
        from self_learning_memory.model.pattern import context_of

        return context_of(p).domain == "legacy"

    extra = with_memory(data_dir, more)
    return {"web": web, **extra}


def _ids(listing: dict[str, Any]) -> set[str]:
    return {p["pattern_id"] for p in listing["patterns"]}


def test_list_filters_run_in_sql(invoke_json: Callable[..., Any], seeded: dict[str, Any]) -> None:
    everything = invoke_json("pattern", "list", "-l", "100")
    assert everything["count"] == len(everything["patterns"]) >= 4
    domains = {p["domain"] for p in everything["patterns"]}
    assert {"web-api", "ops", "legacy"} <= domains

    web = invoke_json("pat", "list", "--domain", "web-api")
    assert web["patterns"]
    assert {p["domain"] for p in web["patterns"]} == {"web-api"}

    sequences = invoke_json("pattern", "list", "-p", "tool-sequence")
    assert sequences["patterns"]
    assert {p["pattern_type"] for p in sequences["patterns"]} == {"tool_sequence"}
    assert sequences["filters"]["pattern_type"] == "tool_sequence"

    sure = invoke_json("pattern", "list", "--min-success-rate", "0.9")
    assert sure["patterns"]
    assert all(p["success_rate"] >= 0.9 for p in sure["patterns"])
    assert _ids(sure) < _ids(everything)  # the 0.6 context pattern and the failures drop out

    # confidence = success rate x sqrt(n): web tool sequence 1.0 x sqrt(3) = 1.73 passes 1.5,
    # the web context pattern 0.6 x sqrt(5) = 1.34 does not
    confident = invoke_json("pattern", "list", "--min-confidence", "1.5")
    assert confident["patterns"]
    assert all(p["confidence"] >= 1.5 for p in confident["patterns"])
    low = [p for p in everything["patterns"] if p["confidence"] < 1.5]
    assert low
    assert not (_ids({"patterns": low}) & _ids(confident))

    one = invoke_json("pattern", "list", "-l", "1")
    assert one["count"] == 1
    # the most observed first
    assert one["patterns"][0]["occurrences"] == max(
        p["occurrences"] for p in everything["patterns"]
    )


def test_list_human_and_yaml(invoke: Invoke, seeded: dict[str, Any]) -> None:
    human = invoke("pattern", "list", "--domain", "ops")
    assert human.exit_code == 0, human.stderr
    assert "grep -> make" in human.stdout
    as_yaml = yaml.safe_load(invoke("--format", "yaml", "pat", "list").stdout)
    assert as_yaml["count"] >= 4


def test_view_shows_usage_and_evidence(
    invoke: Invoke, invoke_json: Callable[..., Any], seeded: dict[str, Any]
) -> None:
    pid = str(seeded["patterns"][("tool_sequence", "web-api")])
    viewed = invoke_json("pattern", "view", pid)
    assert viewed["pattern_id"] == pid
    assert viewed["pattern"]["tools"] == ["editor", "pytest"]
    assert viewed["occurrences"] == 3
    assert viewed["usage"]["application_count"] == 2  # seen again in 2 later episodes
    assert viewed["usage"]["success_count"] == 2
    evidence = {e["episode_id"] for e in viewed["evidence"]}
    assert evidence == {str(i) for i in seeded["web"][:3]}
    assert all(e["outcome"] == "success" for e in viewed["evidence"])
    assert 0 < viewed["effectiveness_now"] <= 1
    human = invoke("pat", "view", pid)
    assert human.exit_code == 0
    assert "editor -> pytest" in human.stdout
    assert "learned from" in human.stdout


def test_analyze_source_episodes(
    invoke: Invoke, invoke_json: Callable[..., Any], seeded: dict[str, Any]
) -> None:
    # the web context pattern was seen in all 5 web episodes: 3 successes, then 2 failures
    listing = invoke_json("pattern", "list", "-p", "context-pattern", "--domain", "web-api")
    web = invoke_json("pattern", "analyze", listing["patterns"][0]["pattern_id"])
    assert web["episodes_analyzed"] == 5
    assert web["outcomes"] == {"success": 3, "partial_success": 0, "failure": 2}
    assert web["success_rate"] == pytest.approx(0.6)
    assert web["trend"] == "declining"  # older half succeeded, newer half failed
    assert web["reward_min"] < web["reward_max"]
    assert sum(p["episodes"] for p in web["over_time"]) == 5

    limited = invoke_json("pattern", "analyze", web["pattern_id"], "-e", "2")
    assert limited["episodes_analyzed"] == 2
    assert limited["outcomes"]["failure"] == 2  # the newest two
    human = invoke("pattern", "analyze", web["pattern_id"])
    assert human.exit_code == 0
    assert "by day" in human.stdout


def test_effectiveness_from_usage_counters(
    invoke: Invoke, invoke_json: Callable[..., Any], data_dir: Path, seeded: dict[str, Any]
) -> None:
    report = invoke_json("pattern", "effectiveness", "--min-uses", "0", "-t", "100")
    assert report["considered"] == report["total_patterns"] >= 4
    scores = [r["effectiveness"] for r in report["patterns"]]
    assert scores == sorted(scores, reverse=True)

    async def usage(memory: SelfLearningMemory) -> dict[str, float]:
        return {str(p.id): effectiveness(u) for p, u in await memory.list_patterns(None, 100)}

    expected = with_memory(data_dir, usage)
    for row in report["patterns"]:
        assert row["effectiveness"] == pytest.approx(expected[row["pattern_id"]], abs=1e-4)
    decaying = {str(i) for i in seeded["decaying"]}
    for row in report["patterns"]:
        if row["pattern_id"] in decaying:
            assert row["failures"] == 3
            assert row["success_rate"] == 0.0
            assert row["below_threshold"] is True

    used = invoke_json("pattern", "effectiveness", "--min-uses", "3")
    assert used["patterns"]
    assert all(r["applications"] >= 3 for r in used["patterns"])
    assert used["considered"] < report["considered"]
    top = invoke_json("pattern", "effectiveness", "--top", "1", "--min-uses", "0")
    assert len(top["patterns"]) == 1
    assert invoke("pattern", "effectiveness").exit_code == 0


def test_decay_lists_then_removes_with_force(
    invoke: Invoke, invoke_json: Callable[..., Any], seeded: dict[str, Any]
) -> None:
    decaying = {str(i) for i in seeded["decaying"]}
    assert decaying
    listed = invoke_json("pattern", "decay")
    assert {r["pattern_id"] for r in listed["candidates"]} == decaying
    assert listed["applied"] is False
    assert listed["removed"] is None
    before = invoke_json("pattern", "list", "-l", "100")["count"]

    for args in (
        ("pattern", "decay", "--force", "--dry-run"),
        ("--dry-run", "pat", "decay", "--force"),
    ):
        dry = invoke_json(*args)
        assert dry["applied"] is False
        assert dry["dry_run"] is True
    assert invoke_json("pattern", "list", "-l", "100")["count"] == before

    done = invoke_json("pattern", "decay", "--force")
    assert done["applied"] is True
    assert done["removed"] == len(decaying)
    assert invoke_json("pattern", "list", "-l", "100")["count"] == before - len(decaying)
    gone = invoke("pattern", "view", next(iter(decaying)))
    assert gone.exit_code == 4
    assert invoke_json("pattern", "decay")["candidates"] == []


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("pattern", "view", "not-a-uuid"), 3, "not a valid UUID"),
        (("pattern", "view", str(uuid.UUID(int=0))), 4, "No pattern with id"),
        (("pattern", "analyze", "xyz"), 3, "not a valid UUID"),
        (("pattern", "analyze", str(uuid.UUID(int=1))), 4, "No pattern with id"),
        (("pattern", "view", "a\x00b"), 3, "NUL"),
        (("pattern", "list", "-p", "tool_sequence"), 2, "tool-sequence"),
        (("pattern", "list", "-l", "0"), 2, "--limit"),
        (("pattern", "list", "-l", "1001"), 2, "--limit"),
        (("pattern", "list", "--min-success-rate", "1.5"), 2, "--min-success-rate"),
        (("pattern", "list", "--min-confidence", "-1"), 2, "--min-confidence"),
        (("pattern", "list", "--domain", "x" * 300), 3, "--domain"),
        (("pattern", "analyze", str(uuid.UUID(int=1)), "-e", "0"), 2, "--episodes"),
        (("pattern", "analyze", str(uuid.UUID(int=1)), "-e", "101"), 2, "--episodes"),
        (("pattern", "effectiveness", "--top", "0"), 2, "--top"),
        (("pattern", "effectiveness", "--min-uses", "-1"), 2, "--min-uses"),
    ],
)
def test_bad_input(invoke: Invoke, args: tuple[str, ...], code: int, text: str) -> None:
    result = invoke(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert text in result.stderr
    assert result.stdout == ""
    if code != 2:  # ours: one line plus a hint, no traceback
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("error:")
        assert lines[-1].startswith("hint:")
        assert "Traceback" not in result.stderr


def test_json_stdout_is_pure_in_real_processes(
    cli_env: dict[str, str], seeded: dict[str, Any]
) -> None:
    pid = str(seeded["patterns"][("tool_sequence", "web-api")])
    for args in (
        ("pattern", "list"),
        ("pat", "view", pid),
        ("pattern", "analyze", pid, "-e", "5"),
        ("pattern", "effectiveness", "--min-uses", "0"),
        ("pattern", "decay"),
        ("pattern", "decay", "--force", "--dry-run"),
    ):
        proc = run_process("--format", "json", "-v", *args, env=cli_env)
        assert proc.returncode == 0, proc.stderr
        json.loads(proc.stdout)  # debug logs (-v) go to stderr only
