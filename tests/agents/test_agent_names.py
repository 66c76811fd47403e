"""Agent names: the validation rule (typed errors naming the field and the limit), the MCP
client name's sanitising, and the agent type inferred from the name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from self_learning_memory import ValidationError
from self_learning_memory.model.agents import (
    MAX_AGENT_LEN,
    AgentType,
    agent_type_of,
    check_agent,
    sanitize_agent,
)


@pytest.mark.parametrize(
    "name", ["a", "claude-code", "ci/release-bot@v2", "team.x:reviewer_3", "A" * MAX_AGENT_LEN]
)
def test_valid_names_are_kept(name: str) -> None:
    assert check_agent(f"  {name}\t") == name


def test_errors_name_the_field_and_the_limit() -> None:
    with pytest.raises(ValidationError) as long:
        check_agent("x" * 65)
    assert (long.value.field, long.value.limit) == ("agent", "64 characters")
    with pytest.raises(ValidationError) as bad:
        check_agent("über", field="--agent")
    assert bad.value.field == "--agent"
    assert "'ü'" in bad.value.problem
    with pytest.raises(ValidationError) as wrong_type:
        check_agent(5)  # type: ignore[arg-type]
    assert "must be a string" in wrong_type.value.problem


@pytest.mark.parametrize(
    ("raw", "agent"),
    [
        ("Claude Code", "Claude-Code"),
        ("  cursor (1.2)  ", "cursor-1.2"),
        ("mcp", "mcp"),
        ("???", None),
        ("", None),
        (None, None),
        ("x" * 100, "x" * 64),
    ],
)
def test_client_names_are_sanitised(raw: str | None, agent: str | None) -> None:
    assert sanitize_agent(raw) == agent


@given(st.text(max_size=200))
def test_sanitised_names_always_pass_and_checks_never_crash(raw: str) -> None:
    cleaned = sanitize_agent(raw)
    if cleaned is not None:
        assert check_agent(cleaned) == cleaned
    field = None
    try:
        check_agent(raw)
    except ValidationError as exc:  # the only error it may raise
        field = exc.field
    assert field in (None, "agent")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("feature-implementer", AgentType.FEATURE_IMPLEMENTER),
        ("ci/Code_Reviewer-2", AgentType.CODE_REVIEWER),
        ("test-runner", AgentType.TEST_RUNNER),
        ("architecture-validator", AgentType.ARCHITECTURE_VALIDATOR),
        ("my-debugger", AgentType.DEBUGGER),
        ("analysis-swarm@x", AgentType.ANALYSIS_SWARM),
        ("goap-agent", AgentType.GOAP_AGENT),
        ("claude-code", AgentType.OTHER),
    ],
)
def test_agent_type_is_inferred_from_the_name(name: str, kind: AgentType) -> None:
    assert agent_type_of(name) is kind


@pytest.mark.parametrize(
    ("agents", "executions", "line"),
    [
        (0, 0, "0 agents, 0 executions"),
        (1, 1, "1 agent, 1 execution"),
        (2, 5, "2 agents, 5 executions"),
    ],
)
def test_the_headline_counts_agree_in_number(agents: int, executions: int, line: str) -> None:
    from datetime import UTC, datetime

    from self_learning_memory.model.agents import AgentMetrics

    metrics = AgentMetrics(
        generated_at=datetime.now(UTC),
        since=None,
        window="day",
        total_agents=agents,
        total_executions=executions,
        successful_executions=0,
        success_rate=0.0,
        total_duration_ms=0.0,
        avg_duration_ms=0.0,
        agents=[],
    )
    assert metrics.counts_line() == line
