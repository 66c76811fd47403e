"""errors.py: the hierarchy, the exit codes, recoverability and the messages."""

from __future__ import annotations

import uuid

import pytest

import self_learning_memory as slm
from self_learning_memory import errors

EXPECTED = {
    # class name: (parent, exit code, recoverable, kind)
    "SelfLearningMemoryError": (Exception, 1, False, "error"),
    "ValidationError": (errors.SelfLearningMemoryError, 3, False, "validation_error"),
    "NotFoundError": (errors.SelfLearningMemoryError, 4, False, "not_found"),
    "InvalidStateError": (errors.SelfLearningMemoryError, 5, False, "invalid_state"),
    "ConfigurationError": (errors.SelfLearningMemoryError, 6, False, "configuration_error"),
    "StorageError": (errors.SelfLearningMemoryError, 7, False, "storage_error"),
    "StorageUnavailableError": (errors.StorageError, 8, True, "storage_unavailable"),
    "CircuitOpenError": (errors.StorageUnavailableError, 8, True, "circuit_open"),
    "DataIntegrityError": (errors.StorageError, 7, False, "data_integrity"),
    "StorageAccessError": (errors.StorageError, 7, False, "storage_access"),
    "OperationTimeoutError": (errors.SelfLearningMemoryError, 9, True, "timeout"),
    "CapabilityUnavailableError": (
        errors.SelfLearningMemoryError,
        10,
        False,
        "capability_unavailable",
    ),
}


def test_every_error_class_is_listed() -> None:
    assert set(errors.__all__) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hierarchy_exit_code_and_recoverability(name: str) -> None:
    parent, exit_code, recoverable, kind = EXPECTED[name]
    cls = getattr(errors, name)
    assert cls.__bases__ == (parent,)
    assert issubclass(cls, errors.SelfLearningMemoryError)
    assert cls.exit_code == exit_code
    assert cls.recoverable is recoverable
    assert cls.kind == kind
    # the same class is what the package exports
    assert getattr(slm, name) is cls


def test_exit_codes_are_distinct_outside_one_family() -> None:
    # a CLI user can tell the families apart by exit code; only subclasses of
    # StorageUnavailableError and DataIntegrityError share their parent's code
    codes = {name: v[1] for name, v in EXPECTED.items()}
    shared = {"CircuitOpenError", "DataIntegrityError", "StorageAccessError"}
    distinct = [c for n, c in codes.items() if n not in shared]
    assert len(distinct) == len(set(distinct))
    assert all(code != 0 for code in codes.values())


def test_validation_error_names_field_problem_and_limit() -> None:
    err = errors.ValidationError("task_description", "is 10001 bytes long", "10000 bytes")
    assert err.field == "task_description"
    assert err.problem == "is 10001 bytes long"
    assert err.limit == "10000 bytes"
    assert str(err) == "Invalid 'task_description': is 10001 bytes long (limit: 10000 bytes)."
    assert err.to_dict() == {
        "error": "validation_error",
        "message": str(err),
        "recoverable": False,
        "field": "task_description",
        "problem": "is 10001 bytes long",
        "limit": "10000 bytes",
    }


def test_validation_error_without_limit_is_one_sentence() -> None:
    err = errors.ValidationError("tool", "must not contain a NUL character")
    assert str(err) == "Invalid 'tool': must not contain a NUL character."
    assert err.to_dict()["limit"] is None


def test_not_found_names_what_and_id() -> None:
    ident = uuid.UUID(int=7)
    err = errors.NotFoundError("episode", ident)
    assert err.what == "episode"
    assert err.ident == ident
    assert str(err) == f"No episode with id {ident} exists."
    assert err.to_dict() == {"error": "not_found", "message": str(err), "recoverable": False}


def test_recoverable_errors_say_so_in_to_dict() -> None:
    err = errors.CircuitOpenError("The circuit is open; retry in 5 s.")
    assert err.message == "The circuit is open; retry in 5 s."
    assert err.to_dict() == {"error": "circuit_open", "message": err.message, "recoverable": True}
    assert isinstance(err, errors.StorageError)
    with pytest.raises(errors.StorageUnavailableError):
        raise err
