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
        QueueConfig,
        RetrievalConfig,
        RetrievalMode,
        SandboxAuditConfig,
        StorageConfig,
    )
    from .core.known_failures import FailureWarning, KnownFailure
    from .core.memory import SelfLearningMemory
    from .core.memory_reads import MemoryStats
    from .core.retrieval import RetrievalResult, ScoreComponents
    from .core.sandbox_audit import SandboxRun, SandboxRunCounts, SandboxRunFilters
    from .core.types import (
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
    from .patterns.ranking import HeuristicMatch, PatternMatch
    from .patterns.types import (
        ContextPattern,
        DecisionPoint,
        ErrorRecovery,
        Evidence,
        Heuristic,
        OutcomeStats,
        Pattern,
        ToolSequence,
    )
    from .storage.backend import EpisodeFilters, PatternFilters, StorageBackend

__version__ = "0.1.0"

# Public names are imported on first use (PEP 562), so ``import self_learning_memory`` and the
# MCP server's and CLI's start stay fast: nothing heavy loads until it is needed.
_EXPORTS: dict[str, str] = {
    "BatchConfig": ".config",
    "CacheConfig": ".config",
    "CapabilityUnavailableError": ".errors",
    "CircuitOpenError": ".errors",
    "ComplexityLevel": ".core.types",
    "ConfigurationError": ".errors",
    "ContextPattern": ".patterns.types",
    "DataIntegrityError": ".errors",
    "DecisionPoint": ".patterns.types",
    "EmbeddingsConfig": ".config",
    "Episode": ".core.types",
    "EpisodeFilters": ".storage.backend",
    "ErrorRecovery": ".patterns.types",
    "ErrorResult": ".core.types",
    "Evidence": ".patterns.types",
    "ExecutionStep": ".core.types",
    "ExtractionConfig": ".config",
    "FailureOutcome": ".core.types",
    "FailureWarning": ".core.known_failures",
    "Heuristic": ".patterns.types",
    "HeuristicMatch": ".patterns.ranking",
    "InvalidStateError": ".errors",
    "KnownFailure": ".core.known_failures",
    "MemoryConfig": ".config",
    "MemoryStats": ".core.memory_reads",
    "NotFoundError": ".errors",
    "OperationTimeoutError": ".errors",
    "OutcomeStats": ".patterns.types",
    "PartialSuccessOutcome": ".core.types",
    "Pattern": ".patterns.types",
    "PatternFilters": ".storage.backend",
    "PatternMatch": ".patterns.ranking",
    "QueueConfig": ".config",
    "Reflection": ".core.types",
    "RetrievalConfig": ".config",
    "RetrievalMode": ".config",
    "RetrievalResult": ".core.retrieval",
    "RewardScore": ".core.types",
    "SandboxAuditConfig": ".config",
    "SandboxRun": ".core.sandbox_audit",
    "SandboxRunCounts": ".core.sandbox_audit",
    "SandboxRunFilters": ".core.sandbox_audit",
    "ScoreComponents": ".core.retrieval",
    "SelfLearningMemory": ".core.memory",
    "SelfLearningMemoryError": ".errors",
    "StorageBackend": ".storage.backend",
    "StorageConfig": ".config",
    "StorageAccessError": ".errors",
    "StorageError": ".errors",
    "StorageUnavailableError": ".errors",
    "SuccessOutcome": ".core.types",
    "SuccessResult": ".core.types",
    "TaskContext": ".core.types",
    "TaskOutcome": ".core.types",
    "TaskType": ".core.types",
    "TimeoutResult": ".core.types",
    "ToolSequence": ".patterns.types",
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
    "NotFoundError",
    "OperationTimeoutError",
    "OutcomeStats",
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
