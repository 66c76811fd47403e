"""The public surface: every exported name imports and is what its module defines."""

from __future__ import annotations

import importlib

import pytest

import self_learning_memory as slm


def test_every_name_in_all_is_importable() -> None:
    module = importlib.import_module("self_learning_memory")
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_all_has_no_duplicates_and_is_sorted() -> None:
    assert len(slm.__all__) == len(set(slm.__all__))
    assert list(slm.__all__) == sorted(slm.__all__)


def test_exported_objects_come_from_the_package() -> None:
    for name in slm.__all__:
        value = getattr(slm, name)
        if isinstance(value, type):
            assert value.__module__.startswith("self_learning_memory."), name


def test_dir_lists_exactly_the_public_names() -> None:
    assert set(slm.__all__) <= set(dir(slm))
    assert {n for n in dir(slm) if not n.startswith("_")} <= set(slm.__all__)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        getattr(slm, "NoSuchThing")  # noqa: B009


def test_star_import_gives_all() -> None:
    namespace: dict[str, object] = {}
    exec("from self_learning_memory import *", namespace)
    assert set(slm.__all__) - {"__version__"} <= set(namespace)


def test_version_is_a_string() -> None:
    assert isinstance(slm.__version__, str)
    assert slm.__version__.count(".") == 2


def test_core_entry_points_are_the_expected_kinds() -> None:
    assert callable(slm.SelfLearningMemory.open)
    for name in ("start_episode", "log_step", "complete_episode", "retrieve_relevant_context"):
        assert callable(getattr(slm.SelfLearningMemory, name))
    assert issubclass(slm.ValidationError, slm.SelfLearningMemoryError)
    assert slm.TaskType("code_generation") is slm.TaskType.CODE_GENERATION
