"""self-learning-memory: a memory for AI agents that learns from verified outcomes."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import (
        BatchConfig,
        CacheConfig,
        EmbeddingsConfig,
        ExtractionConfig,
        MemoryConfig,
        MonitoringConfig,
        QueueConfig,
        RetrievalConfig,
        RetrievalMode,
        SandboxAuditConfig,
        StorageConfig,
    )
    from .core.health import MemoryStats
    from .core.memory import SelfLearningMemory
    from .errors import (
        CapabilityUnavailableError,
        CircuitOpenError,
        ConfigurationError,
        DataIntegrityError,
        InvalidStateError,
        NotFoundError,
        OperationTimeoutError,
        SelfLearningMemoryError,
        StorageAccessError,
        StorageError,
        StorageUnavailableError,
        ValidationError,
    )
    from .model.agents import AgentExecution, AgentMetrics, AgentSummary, AgentWindowPoint
    from .model.episode import (
        ComplexityLevel,
        Episode,
        ErrorResult,
        ExecutionStep,
        FailureOutcome,
        PartialSuccessOutcome,
        Reflection,
        RewardScore,
        SuccessOutcome,
        SuccessResult,
        TaskContext,
        TaskOutcome,
        TaskType,
        TimeoutResult,
    )
    from .model.pattern import (
        ContextPattern,
        DecisionPoint,
        ErrorRecovery,
        Evidence,
        Heuristic,
        OutcomeStats,
        Pattern,
        ToolSequence,
    )
    from .model.records import EpisodeFilters, PatternFilters
    from .model.sandbox_run import SandboxRun, SandboxRunCounts, SandboxRunFilters
    from .model.timeline import OutcomeWindow
    from .retrieval.known_failures import FailureWarning, KnownFailure
    from .retrieval.patterns import HeuristicMatch, PatternMatch
    from .retrieval.scores import RetrievalResult, ScoreComponents
    from .storage.backend import StorageBackend

from .version import __version__

# Public names are imported on first use (PEP 562), so ``import self_learning_memory`` and the
# MCP server's and CLI's start stay fast: nothing heavy loads until it is needed.
_EXPORTS: dict[str, str] = {
    "AgentExecution": ".model.agents",
    "AgentMetrics": ".model.agents",
    "AgentSummary": ".model.agents",
    "AgentWindowPoint": ".model.agents",
    "BatchConfig": ".config",
    "CacheConfig": ".config",
    "CapabilityUnavailableError": ".errors",
    "CircuitOpenError": ".errors",
    "ComplexityLevel": ".model.episode",
    "ConfigurationError": ".errors",
    "ContextPattern": ".model.pattern",
    "DataIntegrityError": ".errors",
    "DecisionPoint": ".model.pattern",
    "EmbeddingsConfig": ".config",
    "Episode": ".model.episode",
    "EpisodeFilters": ".model.records",
    "ErrorRecovery": ".model.pattern",
    "ErrorResult": ".model.episode",
    "Evidence": ".model.pattern",
    "ExecutionStep": ".model.episode",
    "ExtractionConfig": ".config",
    "FailureOutcome": ".model.episode",
    "FailureWarning": ".retrieval.known_failures",
    "Heuristic": ".model.pattern",
    "HeuristicMatch": ".retrieval.patterns",
    "InvalidStateError": ".errors",
    "KnownFailure": ".retrieval.known_failures",
    "MemoryConfig": ".config",
    "MonitoringConfig": ".config",
    "MemoryStats": ".core.health",
    "NotFoundError": ".errors",
    "OperationTimeoutError": ".errors",
    "OutcomeStats": ".model.pattern",
    "OutcomeWindow": ".model.timeline",
    "PartialSuccessOutcome": ".model.episode",
    "Pattern": ".model.pattern",
    "PatternFilters": ".model.records",
    "PatternMatch": ".retrieval.patterns",
    "QueueConfig": ".config",
    "Reflection": ".model.episode",
    "RetrievalConfig": ".config",
    "RetrievalMode": ".config",
    "RetrievalResult": ".retrieval.scores",
    "RewardScore": ".model.episode",
    "SandboxAuditConfig": ".config",
    "SandboxRun": ".model.sandbox_run",
    "SandboxRunCounts": ".model.sandbox_run",
    "SandboxRunFilters": ".model.sandbox_run",
    "ScoreComponents": ".retrieval.scores",
    "SelfLearningMemory": ".core.memory",
    "SelfLearningMemoryError": ".errors",
    "StorageBackend": ".storage.backend",
    "StorageConfig": ".config",
    "StorageAccessError": ".errors",
    "StorageError": ".errors",
    "StorageUnavailableError": ".errors",
    "SuccessOutcome": ".model.episode",
    "SuccessResult": ".model.episode",
    "TaskContext": ".model.episode",
    "TaskOutcome": ".model.episode",
    "TaskType": ".model.episode",
    "TimeoutResult": ".model.episode",
    "ToolSequence": ".model.pattern",
    "ValidationError": ".errors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AgentExecution",
    "AgentMetrics",
    "AgentSummary",
    "AgentWindowPoint",
    "BatchConfig",
    "CacheConfig",
    "CapabilityUnavailableError",
    "CircuitOpenError",
    "ComplexityLevel",
    "ConfigurationError",
    "ContextPattern",
    "DataIntegrityError",
    "DecisionPoint",
    "EmbeddingsConfig",
    "Episode",
    "EpisodeFilters",
    "ErrorRecovery",
    "ErrorResult",
    "Evidence",
    "ExecutionStep",
    "ExtractionConfig",
    "FailureOutcome",
    "FailureWarning",
    "Heuristic",
    "HeuristicMatch",
    "InvalidStateError",
    "KnownFailure",
    "MemoryConfig",
    "MemoryStats",
    "MonitoringConfig",
    "NotFoundError",
    "OperationTimeoutError",
    "OutcomeStats",
    "OutcomeWindow",
    "PartialSuccessOutcome",
    "Pattern",
    "PatternFilters",
    "PatternMatch",
    "QueueConfig",
    "Reflection",
    "RetrievalConfig",
    "RetrievalMode",
    "RetrievalResult",
    "RewardScore",
    "SandboxAuditConfig",
    "SandboxRun",
    "SandboxRunCounts",
    "SandboxRunFilters",
    "ScoreComponents",
    "SelfLearningMemory",
    "SelfLearningMemoryError",
    "StorageAccessError",
    "StorageBackend",
    "StorageConfig",
    "StorageError",
    "StorageUnavailableError",
    "SuccessOutcome",
    "SuccessResult",
    "TaskContext",
    "TaskOutcome",
    "TaskType",
    "TimeoutResult",
    "ToolSequence",
    "ValidationError",
    "__version__",
]
