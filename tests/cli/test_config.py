"""`memory-cli config`: show, validate, check, init, wizard, reset through typer's runner (every
format), the config's default_format honoured, and memory-mcp reading the same file."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Invoke, run_process

FORMATS = ("human", "json", "yaml")


def parse(fmt: str, text: str) -> Any:
    if fmt == "json":
        return json.loads(text)
    if fmt == "yaml":
        return yaml.safe_load(text)
    return text


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "args",
    [
        ("config", "show"),
        ("config", "show", "storage"),
        ("config", "validate"),
        ("config", "check"),
        ("cfg", "show", "cli.default_format"),
    ],
)
def test_read_commands_in_every_format(invoke: Invoke, fmt: str, args: tuple[str, ...]) -> None:
    result = invoke("--format", fmt, *args)
    assert result.exit_code == 0, result.stderr
    data = parse(fmt, result.stdout)
    if fmt != "human":
        assert "config_file" in data
    else:
        assert result.stdout.strip()


def test_show_sources_and_masked_secrets(
    invoke_json: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TURSO_TOKEN", "very-secret-token")
    monkeypatch.setenv("MEMORY_DATABASE_POSTGRES_DSN", "postgresql://me:hunter2@db/mem")
    (tmp_path / "memory-cli.toml").write_text("[storage]\npool_size = 7\n")
    data = invoke_json("config", "show")
    text = json.dumps(data)
    assert "very-secret-token" not in text
    assert "hunter2" not in text
    settings = data["settings"]
    assert settings["storage.auth_token"] == {"value": "***", "source": "env TURSO_TOKEN"}
    assert settings["storage.url"]["source"] == "env MEMORY_DATABASE_POSTGRES_DSN"  # old name
    assert settings["storage.pool_size"]["value"] == 7
    assert settings["storage.pool_size"]["source"].startswith(
        f"file {tmp_path / 'memory-cli.toml'}, line 2"
    )
    assert settings["storage.data_dir"]["source"] == "env MEMORY_DATA_DIR"
    assert data["config_file_origin"] == "discovered"


def test_show_unknown_key_is_a_validation_error(invoke: Invoke) -> None:
    result = invoke("config", "show", "storage.nope")
    assert result.exit_code == 3
    assert "storage.nope" in result.stderr


def test_data_dir_flag_wins(invoke_json: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text(f'[storage]\ndata_dir = "{tmp_path / "f"}"\n')
    data = invoke_json("--data-dir", str(tmp_path / "flag"), "config", "show", "storage.data_dir")
    assert data["settings"]["storage.data_dir"]["source"] == "flag --data-dir"
    assert data["data_dir"] == str(tmp_path / "flag")


def test_config_default_format_is_honoured(invoke: Invoke, tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text('[cli]\ndefault_format = "json"\n')
    result = invoke("config", "show")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["settings"]["cli.default_format"]["value"] == "json"
    result = invoke("episode", "list")
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)
    # the flag still wins
    result = invoke("--format", "yaml", "config", "show", "cli")
    assert yaml.safe_load(result.stdout)["output_format"] == "yaml"


def test_explicit_config_flag_and_env(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = tmp_path / "conf" / "mine.yaml"
    explicit.parent.mkdir()
    explicit.write_text("cli:\n  default_format: yaml\nstorage:\n  pool_size: 9\n")
    result = invoke("--config", str(explicit), "config", "show", "storage.pool_size")
    assert yaml.safe_load(result.stdout)["settings"]["storage.pool_size"]["value"] == 9
    monkeypatch.setenv("MEMORY_CLI_CONFIG", str(explicit))
    result = invoke("config", "show", "storage.pool_size")
    data = yaml.safe_load(result.stdout)
    assert data["config_file"] == str(explicit)
    assert data["config_file_origin"] == "explicit"


def test_missing_explicit_config_fails(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("--config", str(tmp_path / "nope.toml"), "config", "show")
    assert result.exit_code == 6
    assert "nope.toml does not exist" in result.stderr


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("memory-cli.toml", "[storage]\npool_size = = 3\n", 2),
        ("memory-cli.json", '{"storage": {\n"pool_size": 3,,\n}}', 2),
        ("memory-cli.yaml", "storage:\n  pool_size: [3\n", 3),
    ],
)
def test_malformed_file_names_file_and_line(
    invoke: Invoke, tmp_path: Path, name: str, text: str, line: int
) -> None:
    (tmp_path / name).write_text(text)
    for args in (("config", "validate"), ("config", "show"), ("episode", "list")):
        result = invoke(*args)
        assert result.exit_code == 6, args
        assert name in result.stderr
        assert f"line {line}" in result.stderr
        assert "Traceback" not in result.stderr


def test_validate_errors_exit_6_with_field_value_and_limit(invoke: Invoke, tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text(
        '[storage]\npool_size = 0\nmax_episodes_cache = 200000\n[cli]\ndefault_format = "xml"\n'
    )
    result = invoke("--format", "json", "config", "validate")
    assert result.exit_code == 6
    data = json.loads(result.stdout)
    assert data["valid"] is False
    errors = {e["field"]: e for e in data["errors"]}
    assert errors["storage.pool_size"]["value"] == 0
    assert errors["storage.pool_size"]["limit"].startswith(">= 1")
    assert "line 2" in errors["storage.pool_size"]["source"]
    assert errors["cli.default_format"]["limit"] == "human | json | yaml"
    assert any(w["field"] == "cache.max_episodes" for w in data["warnings"])
    human = invoke("config", "validate")
    assert human.exit_code == 6
    assert "storage.pool_size = 0" in human.stdout
    assert "warning" in human.stdout
    # commands that open the memory refuse an invalid configuration
    result = invoke("episode", "list")
    assert result.exit_code == 6
    assert "storage.pool_size" in result.stderr


def test_validate_warnings_do_not_fail(invoke_json: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text("[storage]\ncache_ttl_seconds = 30\nzzz = 1\n")
    data = invoke_json("config", "validate")
    assert data["valid"] is True
    fields = {w["field"] for w in data["warnings"]}
    assert {"storage.cache_ttl_seconds", "storage.zzz"} <= fields


def test_check_recommendations(invoke_json: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text(
        '[database]\nturso_token = "t"\n[storage]\npool_size = 4\n'
    )
    data = invoke_json("config", "check")
    topics = {r["topic"] for r in data["recommendations"]}
    assert {"storage.pool_size", "storage.auth_token", "embeddings.provider"} <= topics


def test_init_writes_commented_toml_and_refuses_to_overwrite(
    invoke: Invoke, tmp_path: Path
) -> None:
    target = tmp_path / "memory-cli.toml"
    result = invoke("--format", "json", "config", "init", "--preset", "memory")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["path"] == "memory-cli.toml"
    text = target.read_text()
    assert tomllib.loads(text) == {
        "preset": "memory",
        **{s: {} for s in tomllib.loads(text) if s != "preset"},
    }
    assert "# (env MEMORY_STORAGE_POOL_SIZE" in text
    assert invoke("--format", "json", "config", "validate").exit_code == 0
    again = invoke("config", "init")
    assert again.exit_code == 6
    assert "--force" in again.stderr
    assert target.read_text() == text
    forced = invoke("config", "init", "--force")
    assert forced.exit_code == 0
    assert "preset = " not in tomllib.loads(target.read_text())


def test_init_dry_run_stdout_and_bad_input(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("--dry-run", "--format", "json", "config", "init", "x.toml")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["dry_run"] is True
    assert not (tmp_path / "x.toml").exists()
    result = invoke("config", "init", "--stdout", "--preset", "cloud")
    assert tomllib.loads(result.stdout)["preset"] == "cloud"
    assert not (tmp_path / "memory-cli.toml").exists()
    assert invoke("config", "init", "--preset", "turbo").exit_code == 3
    assert invoke("config", "init", "conf.json").exit_code == 6
    assert not (tmp_path / "conf.json").exists()


def test_wizard_with_piped_answers(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = "local\n" + f"{tmp_path / 'store'}\n" + "\n" + "400\n3\n" + "yaml\n" + "y\n"
    result = invoke("--format", "json", "config", "wizard", input=answers)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["saved"] is True
    assert data["valid"] is True
    written = tomllib.loads((tmp_path / "memory-cli.toml").read_text())
    assert written["cache"]["max_episodes"] == 400
    assert written["storage"]["pool_size"] == 3
    assert written["cli"] == {"default_format": "yaml"}
    # the written file is what the next invocation uses (yaml is now the default format)
    monkeypatch.delenv("MEMORY_DATA_DIR")
    shown = yaml.safe_load(invoke("config", "show", "storage").stdout)
    assert shown["data_dir"] == str(tmp_path / "store")


def test_wizard_dry_run_and_existing_file(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke(
        "--dry-run", "--format", "json", "config", "wizard", input="memory\n" + "\n" * 9
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["saved"] is False
    assert not (tmp_path / "memory-cli.toml").exists()
    (tmp_path / "memory-cli.toml").write_text("")
    assert invoke("config", "wizard", input="\n" * 10).exit_code == 6
    assert (tmp_path / "memory-cli.toml").read_text() == ""


def test_reset_keeps_a_backup(invoke: Invoke, tmp_path: Path) -> None:
    target = tmp_path / "memory-cli.toml"
    result = invoke("--format", "json", "config", "reset", "--yes")
    assert json.loads(result.stdout)["reset"] is False
    target.write_text("[storage]\npool_size = 0\n")
    dry = invoke("--dry-run", "--format", "json", "config", "reset")
    assert json.loads(dry.stdout)["dry_run"] is True
    assert target.read_text() == "[storage]\npool_size = 0\n"
    declined = invoke("config", "reset", input="n\n")
    assert declined.exit_code == 130
    result = invoke("--format", "json", "config", "reset", "--yes")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "memory-cli.toml.bak").read_text() == "[storage]\npool_size = 0\n"
    assert invoke("config", "validate").exit_code == 0
    json_file = tmp_path / "c.json"
    json_file.write_text('{"storage": {"pool_size": 0}}')
    assert invoke("config", "reset", str(json_file), "-y").exit_code == 0
    assert json.loads(json_file.read_text()) == {}


def test_ci_smart_defaults_through_the_cli(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = invoke("config", "show", "storage")
    data = json.loads(result.stdout)  # json is the CI default
    assert data["settings"]["storage.pool_size"] == {"value": 5, "source": "smart default (CI)"}
    cache = json.loads(invoke("config", "show", "storage.max_episodes_cache").stdout)  # old name
    assert cache["settings"] == {
        "cache.max_episodes": {"value": 100, "source": "smart default (CI)"}
    }


def test_json_output_is_pure_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text("[storage]\npool_size = 0\n")
    env = {
        "MEMORY_DATA_DIR": str(tmp_path / "d"),
        "MEMORY_CLI_CONFIG": str(tmp_path / "memory-cli.toml"),
    }
    done = run_process("--format", "json", "config", "validate", env=env)
    assert done.returncode == 6
    assert json.loads(done.stdout)["errors"][0]["field"] == "storage.pool_size"
    done = run_process("--format", "json", "config", "show", env=env)
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)


def test_mcp_server_reads_the_same_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from self_learning_memory.mcp import app as mcp_app
    from self_learning_memory.mcp import server as mcp_server

    config = tmp_path / "memory-cli.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "mcpdata"}"\nmax_episodes_cache = 123\n'
        '[retrieval]\nmode = "lexical"\n[logging]\nlevel = "WARNING"\n'
    )
    captured: dict[str, Any] = {}

    def fake_build(settings: Any) -> tuple[Any, Any]:
        captured["settings"] = settings
        return object(), object()

    monkeypatch.setattr(mcp_server, "build_server", fake_build)
    monkeypatch.setattr(mcp_app.anyio, "run", lambda *a, **k: None)
    monkeypatch.delenv("MEMORY_DATA_DIR", raising=False)
    assert mcp_app.main(["--config", str(config), "--log-file", "none"]) == 0
    settings = captured["settings"]
    assert settings.data_dir == tmp_path / "mcpdata"
    assert settings.config.cache.max_episodes == 123
    assert settings.config.retrieval.mode.value == "lexical"
    config.write_text("[storage]\npool_size = 0\n")
    assert mcp_app.main(["--config", str(config), "--log-file", "none"]) == 6
