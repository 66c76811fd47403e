"""The one error hierarchy of self-learning-memory.

Every error a user can trigger is a subclass of :class:`SelfLearningMemoryError`. Each class
carries the CLI exit code it maps to and whether a retry may help (``recoverable``); the MCP
server turns every one of them into a tool error whose text is the message.

    SelfLearningMemoryError
    ├── ValidationError            bad input: names the field, the problem and the limit
    ├── NotFoundError              an id that does not exist
    ├── InvalidStateError          a valid request at the wrong time (episode already completed)
    ├── ConfigurationError         a bad config value or file
    ├── StorageError               the durable store or the cache failed
    │   ├── StorageUnavailableError   cannot be reached or stayed locked (recoverable)
    │   ├── CircuitOpenError          the breaker is open (recoverable)
    │   ├── StorageAccessError        a path cannot be used (read-only, a file where a
    │   │                             directory should be): names it and what to do
    │   └── DataIntegrityError        verify-after-write failed, or stored data is corrupt
    ├── OperationTimeoutError      an operation ran out of time (recoverable)
    └── CapabilityUnavailableError an optional part is not installed or not working

Messages are full sentences written for a person or a model to act on.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "CapabilityUnavailableError",
    "CircuitOpenError",
    "ConfigurationError",
    "DataIntegrityError",
    "InvalidStateError",
    "NotFoundError",
    "OperationTimeoutError",
    "SelfLearningMemoryError",
    "StorageAccessError",
    "StorageError",
    "StorageUnavailableError",
    "ValidationError",
]


class SelfLearningMemoryError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code: ClassVar[int] = 1
    recoverable: ClassVar[bool] = False
    kind: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, used by the MCP server and ``--format json``."""
        return {"error": self.kind, "message": self.message, "recoverable": self.recoverable}


class ValidationError(SelfLearningMemoryError):
    """An input broke a rule. ``field`` names it, ``problem`` says how, ``limit`` the bound."""

    exit_code = 3
    kind = "validation_error"

    def __init__(self, field: str, problem: str, limit: str | int | float | None = None) -> None:
        self.field = field
        self.problem = problem
        self.limit = limit
        text = f"Invalid '{field}': {problem}"
        if limit is not None:
            text += f" (limit: {limit})"
        super().__init__(text + ".")

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(field=self.field, problem=self.problem, limit=self.limit)
        return data


class NotFoundError(SelfLearningMemoryError):
    """The thing named by an id does not exist."""

    exit_code = 4
    kind = "not_found"

    def __init__(self, what: str, ident: object) -> None:
        self.what = what
        self.ident = ident
        super().__init__(f"No {what} with id {ident} exists.")


class InvalidStateError(SelfLearningMemoryError):
    """The request is well-formed but not allowed in the object's current state."""

    exit_code = 5
    kind = "invalid_state"


class ConfigurationError(SelfLearningMemoryError):
    """A configuration value or file is wrong."""

    exit_code = 6
    kind = "configuration_error"


class StorageError(SelfLearningMemoryError):
    """The durable store or the cache failed."""

    exit_code = 7
    kind = "storage_error"


class StorageUnavailableError(StorageError):
    """The store could not be reached, or stayed locked past the retry budget."""

    exit_code = 8
    recoverable = True
    kind = "storage_unavailable"


class CircuitOpenError(StorageUnavailableError):
    """The circuit breaker is open: calls to the primary store are refused for a while."""

    kind = "circuit_open"


class StorageAccessError(StorageError):
    """A path of the store cannot be used as it is: read-only, or a file where a directory
    should be (or the reverse). Retrying does not help; the message names the path and the fix."""

    kind = "storage_access"


class DataIntegrityError(StorageError):
    """Stored data failed a check: verify-after-write, a checksum, or a corrupt row."""

    kind = "data_integrity"


class OperationTimeoutError(SelfLearningMemoryError):
    """An operation did not finish in the time it was given."""

    exit_code = 9
    recoverable = True
    kind = "timeout"


class CapabilityUnavailableError(SelfLearningMemoryError):
    """An optional capability is not installed or not working; the message says how to fix it."""

    exit_code = 10
    kind = "capability_unavailable"
