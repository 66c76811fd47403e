"""`memory-cli monitor agents` (json, yaml, human), `episode create --agent`, `episode list
--agent`, and the Prometheus export's per-agent series: every agent name a validated label,
escaped, at most ``monitoring.max_agent_labels`` of them plus ``other``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cli.conftest import Invoke
from self_learning_memory import MemoryConfig, SelfLearningMemory, SuccessOutcome
from self_learning_memory.core.metrics import label_value


def seed(data_dir: Path, agents: int = 2, config: MemoryConfig | None = None) -> None:
    async def go() -> None:
        async with SelfLearningMemory.open(data_dir, config=config) as memory:
            eid = await memory.start_episode("review the diff", agent="code-reviewer")
            await memory.complete_episode(eid, SuccessOutcome(verdict="lgtm"))
            for i in range(agents):
                for n in range(i + 1):  # agent-i has i + 1 executions: a strict order
                    await memory.record_agent_execution(f"agent-{i:03d}", n % 2 == 0, 10.0 + n)

    asyncio.run(go())


def test_monitor_agents_json_yaml_human(cli_env: dict[str, str], invoke: Invoke) -> None:
    seed(Path(cli_env["MEMORY_DATA_DIR"]))
    result = invoke("--format", "json", "monitor", "agents", "--window", "hour")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    by = {a["agent"]: a for a in data["agents"]}
    assert data["window"] == "hour"
    assert (data["total_agents"], data["total_executions"]) == (3, 4)
    assert (by["agent-001"]["executions"], by["agent-001"]["successes"]) == (2, 1)
    assert by["code-reviewer"]["agent_type"] == "code-reviewer"
    point = by["agent-001"]["series"][0]
    assert set(point) == {"window_start", "executions", "successes", "success_rate"}

    as_yaml = yaml.safe_load(invoke("--format", "yaml", "monitor", "agents").stdout)
    assert as_yaml["total_executions"] == 4
    assert as_yaml["window"] == "day"

    top = json.loads(invoke("--format", "json", "monitor", "agents", "--top", "1").stdout)
    assert [a["agent"] for a in top["agents"]] == ["agent-001", "other"]
    assert top["agents"][1]["agents"] == 2

    human = invoke("monitor", "agents")
    assert human.exit_code == 0
    assert "3 agents, 4 executions, 75.0% successful" in human.stdout
    assert "code-reviewer" in human.stdout
    assert "agent-001" in human.stdout

    bad = invoke("monitor", "agents", "--since", "yesterday")
    assert bad.exit_code == 3
    assert "--since" in bad.stderr


def test_ci_defaults_to_json(
    cli_env: dict[str, str], invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(Path(cli_env["MEMORY_DATA_DIR"]), agents=1)
    monkeypatch.setenv("CI", "true")
    data = json.loads(invoke("monitor", "agents").stdout)
    assert data["total_executions"] == 2


def test_episode_create_and_list_with_agent(cli_env: dict[str, str], invoke: Invoke) -> None:
    made = invoke(
        "--format", "json", "episode", "create", "--task", "ship it", "--agent", "release-bot"
    )
    assert made.exit_code == 0, made.stderr
    assert json.loads(made.stdout)["agent"] == "release-bot"
    invoke("episode", "create", "--task", "someone else's")
    listed = json.loads(
        invoke("--format", "json", "episode", "list", "--agent", "release-bot").stdout
    )
    assert listed["total"] == 1
    assert listed["episodes"][0]["agent"] == "release-bot"
    refused = invoke("episode", "create", "--task", "x", "--agent", "no spaces please")
    assert refused.exit_code == 3
    assert "'agent'" in refused.stderr


def test_prometheus_agent_labels_are_capped(cli_env: dict[str, str], invoke: Invoke) -> None:
    data_dir = Path(cli_env["MEMORY_DATA_DIR"])
    config_file = data_dir.parent / "memory-cli.toml"
    config_file.write_text("[monitoring]\nmax_agent_labels = 20\n")
    seed(data_dir, agents=200)
    result = invoke("--config", str(config_file), "monitor", "export", "--probes", "0")
    assert result.exit_code == 0, result.stderr
    families = {f.name: f for f in text_string_to_metric_families(result.stdout)}
    runs = families["memory_agent_executions"]  # the parser drops a counter's _total
    labels = {s.labels["agent"]: s.value for s in runs.samples if s.name.endswith("_total")}
    assert len(labels) == 21  # the cap, plus other
    assert "other" in labels
    executions = 1 + sum(range(1, 201))  # code-reviewer, then agent-i with i + 1
    assert sum(labels.values()) == executions  # nothing lost in the fold
    busiest = sorted(labels, key=lambda a: -labels[a])[:20]
    assert "agent-199" in busiest
    assert labels["agent-199"] == 200
    assert all(len(a) <= 64 for a in labels)


def test_label_values_are_escaped() -> None:
    assert label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert label_value("ci/bot@v2:x") == "ci/bot@v2:x"
