"""Deterministic reflection: what went well, what to improve, and insights, from the episode alone.

Each list takes its first source (at most 5 items), extends it with the second source and is
cut to 5 again. The templates and thresholds are the reference system's; every ordering is
deterministic (first-seen order, never set iteration order). The pattern count is known here
because reflection runs after extraction.
"""

from __future__ import annotations

import itertools
from collections import Counter

from ..model.episode import (
    ComplexityLevel,
    Episode,
    FailureOutcome,
    PartialSuccessOutcome,
    Reflection,
    SuccessOutcome,
)
from .reward import has_error_recovery

__all__ = ["MAX_ITEMS", "generate_reflection"]

MAX_ITEMS = 5
_EXPECTED_STEPS = {
    ComplexityLevel.SIMPLE: 5,
    ComplexityLevel.MODERATE: 15,
    ComplexityLevel.COMPLEX: 30,
}


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _secs(episode: Episode) -> float | None:
    d = episode.duration()
    return None if d is None else d.total_seconds()


def _recovery_pairs(episode: Episode) -> list[tuple[int, int]]:
    s = episode.steps
    return [
        (i, i + 1) for i in range(len(s) - 1) if not s[i].is_success() and s[i + 1].is_success()
    ]


def _successes(ep: Episode) -> list[str]:
    out: list[str] = []
    outcome, steps, secs = ep.outcome, ep.steps, _secs(ep)
    if isinstance(outcome, SuccessOutcome):
        out.append(f"Successfully completed task: {outcome.verdict}")
        if outcome.artifacts:
            out.append(f"Generated {len(outcome.artifacts)} artifact(s)")
    elif isinstance(outcome, PartialSuccessOutcome):
        out.append(f"Partial success: {outcome.verdict}")
        out.append(f"Completed {len(outcome.completed)} subtask(s)")
    ok = [s for s in steps if s.is_success()]
    if steps and len(ok) / len(steps) >= 0.8:
        out.append(
            f"High execution success rate: {100 * len(ok) / len(steps):.1f}% ({len(ok)}/{len(steps)})"
        )
    if len(steps) >= 2 and len(ok) >= 3:
        out.append("Effective tool sequence: " + " → ".join(s.tool for s in ok[:3]))
    if secs is not None and secs < 30 and steps:
        out.append(f"Efficient execution: completed in {int(secs)} seconds")
    return out[:MAX_ITEMS]


def _success_patterns(ep: Episode) -> list[str]:
    out: list[str] = []
    steps, secs = ep.steps, _secs(ep)
    if not isinstance(ep.outcome, SuccessOutcome | PartialSuccessOutcome) or not steps:
        return out
    ok = [s for s in steps if s.is_success()]
    tools = _unique([s.tool for s in ok])
    if len(ok) >= 3:
        strategy = (
            "diverse tool strategy"
            if len(tools) == len(ok)
            else "focused tool strategy with repetition"
        )
        out.append(f"Effective {strategy} with {len(tools)} tools: {', '.join(tools)}")
    rate = len(ok) / len(steps)
    pairs = _recovery_pairs(ep)
    if rate > 0.9:
        out.append(
            f"Smooth execution flow with {100 * rate:.0f}% success rate - minimal backtracking required"
        )
    elif len(pairs) >= 2:
        out.append(f"Iterative refinement approach: recovered from {len(pairs)} errors")
    ctx = ep.context
    if ctx.language and len(ok) > 5:
        out.append(
            f"Successfully leveraged {ctx.language}-specific tools and patterns in {ctx.domain} domain"
        )
    elif ctx.tags:
        out.append(f"Effectively utilized domain knowledge: {', '.join(ctx.tags)}")
    if secs is not None:
        if secs < 60 and len(steps) < 15:
            out.append(
                f"Highly efficient execution: {len(steps)} steps in {int(secs)}s - demonstrates expertise"
            )
        elif len(steps) < 5 and secs < 120:
            out.append(f"Minimalist approach: {len(steps)} steps in {int(secs)}s")
    return out


def _improvements(ep: Episode) -> list[str]:
    out: list[str] = []
    outcome, steps, secs = ep.outcome, ep.steps, _secs(ep)
    if isinstance(outcome, FailureOutcome):
        out.append(f"Task failed: {outcome.reason}")
    elif isinstance(outcome, PartialSuccessOutcome) and outcome.failed:
        out.append(f"Failed {len(outcome.failed)} subtask(s)")
    failed = [s for s in steps if not s.is_success()]
    if failed:
        out.append(f"Reduce failed execution steps (current: {len(failed)})")
        tool, count = Counter(s.tool for s in failed).most_common(1)[0]
        if count >= 2:
            out.append(f"Tool '{tool}' failed {count} times - needs attention")
    if secs is not None and secs > 300:
        out.append(f"Optimize execution time (took {int(secs)} seconds)")
    if len(steps) > 50:
        out.append(f"Reduce number of execution steps (current: {len(steps)})")
    messages = Counter(
        s.result.message for s in steps if s.result is not None and s.result.type == "error"
    )
    if messages:
        message, count = messages.most_common(1)[0]
        if count >= 2:
            out.append(f"Repeated error ({count} times): {message}")
    if not out and isinstance(outcome, FailureOutcome | PartialSuccessOutcome):
        out.append("Review and refine approach for better outcomes")
    return out[:MAX_ITEMS]


def _improvement_opportunities(ep: Episode) -> list[str]:
    out: list[str] = []
    steps = ep.steps
    if steps:
        avg = sum(s.latency_ms for s in steps) / len(steps)
        slow = max(steps, key=lambda s: s.latency_ms)
        if slow.latency_ms > 3 * avg and slow.latency_ms > 1000:
            out.append(
                f"Performance bottleneck: '{slow.tool}' took {slow.latency_ms}ms "
                f"({slow.latency_ms / avg:.1f}x the average step)"
            )
        tool, count = Counter(s.tool for s in steps).most_common(1)[0]
        if count >= 5:
            out.append(f"Tool '{tool}' used {count} times - consider consolidating repeated calls")
    failed = [s for s in steps if not s.is_success()]
    if len(failed) >= 3:
        tools = _unique([s.tool for s in failed])
        if len(tools) == 1:
            out.append(f"Systematic issue with '{tools[0]}': all {len(failed)} failures")
        else:
            out.append(
                f"Multiple failure points across {len(tools)} tools - investigate root causes"
            )
    if len(steps) >= 4:
        same = [a.tool for a, b in itertools.pairwise(steps) if a.tool == b.tool]
        if len(same) >= 2:
            out.append(f"Consecutive '{same[0]}' calls could be batched or parallelized")
    tokens = sum(s.tokens_used or 0 for s in steps)
    if tokens > 10_000:
        out.append(f"High token usage ({tokens} tokens) - consider more focused prompts")
    elif 0 < tokens < 1000:
        out.append(f"Efficient token usage ({tokens} tokens)")
    return out


def _insights(ep: Episode) -> list[str]:
    out: list[str] = []
    steps = ep.steps
    if len(steps) < 2:
        return out
    rate = ep.step_success_rate()
    if rate == 1.0:
        out.append("All steps executed successfully - approach is reliable")
    elif rate >= 0.8:
        out.append(f"High reliability: {100 * rate:.0f}% of steps succeeded")
    elif rate < 0.5:
        out.append(
            f"Low reliability: only {100 * rate:.0f}% of steps succeeded - reconsider the approach"
        )
    pairs = _recovery_pairs(ep)
    if pairs:
        out.append(f"Successfully recovered from error using '{steps[pairs[0][1]].tool}'")
    out.append(
        f"Task in {ep.context.domain} domain with {ep.context.complexity.value.capitalize()} complexity"
    )
    tools = _unique([s.tool for s in steps])
    if len(tools) > 5:
        out.append(f"Used a diverse toolset ({len(tools)} distinct tools)")
    elif len(tools) == 1 and len(steps) > 3:
        out.append(f"Repeated use of a single tool ('{tools[0]}') - potential for automation")
    avg = sum(s.latency_ms for s in steps) / len(steps)
    if avg > 5000:
        out.append(f"High average step latency ({avg:.0f}ms) - consider faster tools or caching")
    return out[:MAX_ITEMS]


def _contextual_insights(ep: Episode, pattern_count: int) -> list[str]:
    out: list[str] = []
    steps, secs = ep.steps, _secs(ep)
    complexity = ep.context.complexity
    expected = _EXPECTED_STEPS[complexity]
    name = complexity.value
    if steps and len(steps) < expected / 2:
        out.append(
            f"Task handled more efficiently than expected for {name} complexity "
            f"({len(steps)} steps vs ~{expected} expected)"
        )
    elif len(steps) > expected * 2:
        out.append(
            f"Step count well above expected for {name} complexity ({len(steps)} vs ~{expected}) "
            "- approach may need refinement"
        )
    if pattern_count >= 3:
        out.append(f"Rich learning episode: {pattern_count} patterns extracted")
    elif pattern_count > 0:
        out.append(f"Extracted {pattern_count} reusable pattern(s)")
    if has_error_recovery(ep):
        out.append("Demonstrated error recovery - valuable for learning")
    if steps:
        rate = ep.step_success_rate()
        if rate > 0.8 and secs is not None and secs < 120:
            out.append("Highly effective strategy: high success rate with fast execution")
        elif rate < 0.5:
            out.append("Strategy needs refinement: low step success rate")
    if isinstance(ep.outcome, SuccessOutcome):
        tools = _unique([s.tool for s in steps if s.is_success()])[:3]
        if tools:
            lang = ep.context.language or "any language"
            out.append(
                f"For similar {ep.context.domain} tasks in {lang}, prioritize: {', '.join(tools)}"
            )
    return out


def generate_reflection(episode: Episode, pattern_count: int = 0) -> Reflection:
    """Build the reflection of a completed episode; the same input gives the same lists."""
    return Reflection(
        successes=(_successes(episode) + _success_patterns(episode))[:MAX_ITEMS],
        improvements=(_improvements(episode) + _improvement_opportunities(episode))[:MAX_ITEMS],
        insights=(_insights(episode) + _contextual_insights(episode, pattern_count))[:MAX_ITEMS],
        generated_at=episode.end_time or episode.start_time,
    )
