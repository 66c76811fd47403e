"""The ``[sandbox]`` keys that choose, switch and size the sandbox: enabled, backend, node_ratio,
node_rule, pool_size. Loaded from a real file and the environment; bad values are errors naming the key
and the allowed values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from self_learning_memory.errors import ConfigurationError
from self_learning_memory.sandbox import CodeSandbox
from self_learning_memory.sandbox.service import default_pool_size
from self_learning_memory.settings.loader import load_settings
from self_learning_memory.settings.schema import Settings
from self_learning_memory.settings.validation import validate_settings


def issues(**sandbox: object) -> tuple[list[str], list[str]]:
    settings = Settings.model_validate({"sandbox": sandbox})
    report = validate_settings(settings, env={})
    return [str(i) for i in report.errors], [str(i) for i in report.warnings]


def test_the_defaults_are_the_wasm_backend_switched_on() -> None:
    sandbox = Settings().sandbox
    assert (sandbox.enabled, sandbox.backend, sandbox.node_ratio, sandbox.node_rule) == (
        True,
        "wasm",
        0.0,
        "none",
    )
    assert issues() == ([], [])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"backend": "docker"},
            "sandbox.backend = 'docker': unknown backend (limit: wasm | node | hybrid)",
        ),
        (
            {"backend": "hybrid", "node_ratio": 1.5},
            "sandbox.node_ratio = 1.5: out of range (limit: 0..1)",
        ),
        (
            {"backend": "hybrid", "node_ratio": -0.1},
            "sandbox.node_ratio = -0.1: out of range (limit: 0..1)",
        ),
        ({"pool_size": 0}, "sandbox.pool_size = 0: out of range (limit: 1..20)"),
        ({"pool_size": 21}, "sandbox.pool_size = 21: out of range (limit: 1..20)"),
        (
            {"backend": "hybrid", "node_rule": "always"},
            "sandbox.node_rule = 'always': unknown rule (limit: none | uses_require)",
        ),
    ],
)
def test_bad_values_are_errors_naming_the_key_and_the_allowed_values(
    values: dict[str, object], expected: str
) -> None:
    errors, _ = issues(**values)
    assert errors == [expected]


def test_warnings_for_routing_keys_that_do_nothing_and_for_the_legacy_backend() -> None:
    _, warnings = issues(backend="wasm", node_ratio=0.5)
    assert any("only apply to the hybrid backend" in w for w in warnings)
    _, warnings = issues(backend="hybrid")
    assert any("sends nothing to Node" in w for w in warnings)
    _, warnings = issues(backend="node")
    assert any("does not block the network" in w for w in warnings)
    assert issues(enabled=False, backend="node")[1] == []


def test_the_keys_load_from_a_file_and_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "memory-cli.toml"
    config.write_text(
        '[sandbox]\nenabled = false\nbackend = "hybrid"\nnode_ratio = 0.25\nnode_rule = "uses_require"\n'
    )
    loaded = load_settings(config, env={}, cwd=tmp_path, discover=False)
    sandbox = loaded.settings.sandbox
    assert (sandbox.enabled, sandbox.backend, sandbox.node_ratio, sandbox.node_rule) == (
        False,
        "hybrid",
        0.25,
        "uses_require",
    )
    loaded = load_settings(
        config,
        env={"MEMORY_SANDBOX_BACKEND": "node", "MEMORY_SANDBOX_ENABLED": "true"},
        cwd=tmp_path,
        discover=False,
    )
    assert (loaded.settings.sandbox.backend, loaded.settings.sandbox.enabled) == ("node", True)


def test_a_bad_backend_stops_the_server_config_with_a_typed_error(tmp_path: Path) -> None:
    config = tmp_path / "memory-cli.toml"
    config.write_text('[sandbox]\nbackend = "docker"\n')
    loaded = load_settings(config, env={}, cwd=tmp_path, discover=False)
    with pytest.raises(ConfigurationError, match=r"sandbox\.backend = 'docker'.*wasm \| node"):
        loaded.memory_config()
    config.write_text('[sandbox]\nnode_ratio = "half"\n')
    with pytest.raises(ConfigurationError, match="node_ratio"):
        load_settings(config, env={}, cwd=tmp_path, discover=False)


def pool_of(settings: Settings, pool_size: int | None = None) -> tuple[int, int]:
    """The sandbox's pool size and its executor's real worker limit."""
    box = CodeSandbox.from_settings(settings.sandbox, pool_size=pool_size)
    try:
        return box.pool_size, box._pool._max_workers
    finally:
        box.close()


def test_the_pool_size_comes_from_the_file_then_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "memory-cli.toml"
    config.write_text("[sandbox]\npool_size = 3\n")
    from_file = load_settings(config, env={}, cwd=tmp_path, discover=False).settings
    assert from_file.sandbox.pool_size == 3
    assert pool_of(from_file) == (3, 3)
    from_env = load_settings(
        config, env={"MEMORY_SANDBOX_POOL_SIZE": "2"}, cwd=tmp_path, discover=False
    ).settings
    assert pool_of(from_env) == (2, 2)
    # an explicit argument (the CLI's single run) wins over the config
    assert pool_of(from_env, pool_size=1) == (1, 1)
    # unset: one per core, at most 20
    unset = load_settings(None, env={}, cwd=tmp_path, discover=False).settings
    assert unset.sandbox.pool_size is None
    assert pool_of(unset) == (default_pool_size(),) * 2
    assert default_pool_size() == max(1, min(20, os.cpu_count() or 1))


@pytest.mark.parametrize("size", [0, 21])
def test_a_pool_size_out_of_range_is_refused_with_a_typed_error(tmp_path: Path, size: int) -> None:
    config = tmp_path / "memory-cli.toml"
    config.write_text(f"[sandbox]\npool_size = {size}\n")
    loaded = load_settings(config, env={}, cwd=tmp_path, discover=False)
    limit = rf"sandbox\.pool_size = {size}: out of range \(limit: 1\.\.20\)"
    with pytest.raises(ConfigurationError, match=limit):
        loaded.memory_config()
    # the sandbox refuses it too, when built from a section nobody validated
    with pytest.raises(ConfigurationError, match=limit):
        CodeSandbox.from_settings(loaded.settings.sandbox)
    from_env = load_settings(
        None, env={"MEMORY_SANDBOX_POOL_SIZE": str(size)}, cwd=tmp_path, discover=False
    )
    with pytest.raises(ConfigurationError, match=limit):
        from_env.memory_config()
