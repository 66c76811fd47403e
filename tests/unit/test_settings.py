"""The configuration library: smart defaults, precedence, files, validator, mapping, setup,
TOML writer and wizard (hermetic: explicit env dicts and tmp_path files)."""

from __future__ import annotations

import io
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from self_learning_memory.config import MemoryConfig
from self_learning_memory.errors import ConfigurationError
from self_learning_memory.settings import environment as environment_module
from self_learning_memory.settings.environment import (
    Environment,
    detect_environment,
    smart_defaults,
)
from self_learning_memory.settings.files import read_config_file
from self_learning_memory.settings.keys import HELP, KEY_ALIASES, REMOVED_KEYS, env_names
from self_learning_memory.settings.layers import quick_default_format
from self_learning_memory.settings.loader import load_settings
from self_learning_memory.settings.schema import Settings, iter_keys
from self_learning_memory.settings.setup import progressive, simple
from self_learning_memory.settings.toml_writer import render_toml
from self_learning_memory.settings.validation import validate_settings
from self_learning_memory.settings.wizard import LinePrompter, ScriptedPrompter, run_wizard

PLAIN = Environment(cpu_cores=4, available_memory_gb=8.0)


def load(tmp_path: Path, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return load_settings(
        env=env or {}, cwd=tmp_path, environment=kwargs.pop("environment", PLAIN), **kwargs
    )


# --- smart defaults -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (Environment(ci=True), (5, 100, "json")),
        (Environment(dev=True), (5, 500, "human")),
        (Environment(ci=True, dev=True), (5, 100, "json")),
        (Environment(github_actions=True, cpu_cores=4, available_memory_gb=8), (8, 1600, "json")),
        (Environment(cpu_cores=1, available_memory_gb=2), (3, 1000, "human")),
        (Environment(cpu_cores=4, available_memory_gb=10), (8, 2000, "human")),
        (Environment(cpu_cores=16, available_memory_gb=64), (20, 5000, "human")),
    ],
)
def test_smart_default_formulas(environment: Environment, expected: tuple[Any, ...]) -> None:
    values = {key: value for key, (value, _why) in smart_defaults(environment).items()}
    got = (values["storage.pool_size"], values["cache.max_episodes"], values["cli.default_format"])
    assert got == expected
    assert set(values) <= set(HELP)  # a layer of the one tree: only its keys


@pytest.mark.parametrize(
    ("env", "ci", "dev"),
    [
        ({}, False, False),
        ({"CI": "true"}, True, False),
        ({"CI": "0"}, False, False),
        ({"CI": "false"}, False, False),
        ({"DEV": "1"}, False, True),
        ({"DEVELOPMENT": "yes"}, False, True),
    ],
)
def test_detect_ci_and_dev(env: dict[str, str], ci: bool, dev: bool) -> None:
    detected = detect_environment(env)
    assert (detected.ci, detected.dev) == (ci, dev)


def test_cpu_count_from_cpuinfo_or_os(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    blocks = [f"processor\t: {n}\nphysical id\t: 0\ncore id\t: {n % 3}\n" for n in range(6)]
    cpuinfo.write_text("\n".join(blocks) + "\n")
    assert environment_module._physical_cores(str(cpuinfo)) == 3  # 6 threads on 3 cores
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert environment_module._physical_cores(str(tmp_path / "missing")) == 7


def test_detected_machine_feeds_the_pool_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment_module, "_physical_cores", lambda: 6)
    monkeypatch.setattr(environment_module, "_available_memory_gb", lambda: 3.0)
    values = smart_defaults(detect_environment({}))
    assert values["storage.pool_size"][0] == 12
    assert values["cache.max_episodes"][0] == 1000


# --- precedence -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_text", "env", "flag", "expected", "source"),
    [
        (None, {}, None, 8, "smart default"),
        ('preset = "memory"\n', {}, None, 2, "preset memory"),
        ("[storage]\npool_size = 7\n", {}, None, 7, "file"),
        ('preset = "memory"\n[storage]\npool_size = 7\n', {}, None, 7, "file"),
        (
            "[storage]\npool_size = 7\n",
            {"MEMORY_STORAGE_POOL_SIZE": "9"},
            None,
            9,
            "env MEMORY_STORAGE_POOL_SIZE",
        ),
        ("[storage]\npool_size = 7\n", {"MEMORY_STORAGE_POOL_SIZE": "9"}, 11, 11, "flag --pool"),
        (None, {"MEMORY_PRESET": "memory"}, None, 2, "preset memory"),
        (None, {"CI": "1"}, None, 5, "smart default (CI)"),
    ],
)
def test_precedence(
    tmp_path: Path,
    file_text: str | None,
    env: dict[str, str],
    flag: int | None,
    expected: int,
    source: str,
) -> None:
    if file_text is not None:
        (tmp_path / "memory-cli.toml").write_text(file_text)
    flags = {"storage.pool_size": (flag, "--pool")} if flag is not None else None
    environment = detect_environment(env) if env.get("CI") else PLAIN
    loaded = load(tmp_path, env, flags=flags, environment=environment)
    assert loaded.settings.storage.pool_size == expected
    assert loaded.sources["storage.pool_size"].startswith(source)


def test_explicit_file_wins_over_discovered(tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text("[storage]\npool_size = 7\n")
    explicit = tmp_path / "other.yaml"
    explicit.write_text("storage:\n  pool_size: 8\n")
    loaded = load(tmp_path, config_path=explicit)
    assert loaded.settings.storage.pool_size == 8
    assert loaded.file is not None
    assert loaded.file.origin == "explicit"
    assert "other.yaml, line 2" in loaded.sources["storage.pool_size"]


def test_discovery_order(tmp_path: Path) -> None:
    (tmp_path / ".memory-cli.toml").write_text("[storage]\npool_size = 3\n")
    (tmp_path / "memory-cli.json").write_text('{"storage": {"pool_size": 4}}')
    assert load(tmp_path).settings.storage.pool_size == 4
    (tmp_path / "unified-config.toml").write_text("[storage]\npool_size = 6\n")
    assert load(tmp_path).settings.storage.pool_size == 6


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load(tmp_path, config_path=tmp_path / "nope.toml")


def test_env_values_are_parsed(tmp_path: Path) -> None:
    env = {
        "MEMORY_QUEUE_ENABLED": "true",
        "MEMORY_RESILIENCE_MAX_ATTEMPTS": "7",
        "MEMORY_BATCH_AUTO_FLUSH": "false",
        "MEMORY_FORMAT": "yaml",
        "MEMORY_DATA_DIR": str(tmp_path / "d"),
    }
    loaded = load(tmp_path, env)
    config = loaded.memory_config()
    assert config.queue.enabled is True
    assert config.resilience.max_attempts == 7
    assert config.batch is not None
    assert config.batch.auto_flush is False
    assert loaded.sources["queue.enabled"] == "env MEMORY_QUEUE_ENABLED"
    assert loaded.settings.cli.default_format == "yaml"
    assert loaded.data_dir() == tmp_path / "d"


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="env MEMORY_STORAGE_POOL_SIZE"):
        load(tmp_path, {"MEMORY_STORAGE_POOL_SIZE": "many"})


@pytest.mark.parametrize(
    ("file_text", "env"),
    [
        (None, {}),
        ('[cli]\ndefault_format = "json"\n', {}),
        ('preset = "cloud"\n', {}),
        ('[cli]\ndefault_format = "json"\n', {"MEMORY_FORMAT": "yaml"}),
        (None, {"GITHUB_ACTIONS": "true"}),
    ],
)
def test_quick_default_format_matches_full_load(
    tmp_path: Path, file_text: str | None, env: dict[str, str]
) -> None:
    if file_text is not None:
        (tmp_path / "memory-cli.toml").write_text(file_text)
    quick = quick_default_format(env=env, cwd=tmp_path)
    full = load_settings(env=env, cwd=tmp_path).settings.cli.default_format
    assert quick == full


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("memory-cli.toml", ""),
        ("memory-cli.toml", "[storage]\n"),
        ("memory-cli.toml", '[cli]\ndefault_format = "json"\n'),
        ("memory-cli.json", "{}"),
        ("memory-cli.json", '{"database": {"busy_timeout_ms": 1000}}'),
        ("memory-cli.yaml", ""),
        ("memory-cli.yaml", "storage:\n  max_episodes_cache: 300\n"),
    ],
)
def test_partial_files_are_valid(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    loaded = load(tmp_path)
    assert loaded.validate({}).ok
    loaded.memory_config()


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"),
    [
        (
            "memory-cli.toml",
            "[storage]\npool_size = 5\nmax_episodes_cache = \n",
            3,
            "max_episodes_cache",
        ),
        ("memory-cli.toml", "[storage\npool_size = 5\n", 1, "invalid TOML"),
        ("memory-cli.json", '{\n  "storage": {\n    "pool_size": 5,\n  }\n}', 4, "invalid JSON"),
        ("memory-cli.yaml", "storage:\n  pool_size: 5\n bad: [\n", 3, "invalid YAML"),
        ("memory-cli.toml", '[storage]\n\npool_size = "five"\n', 3, "storage.pool_size"),
        ("memory-cli.json", '{"queue":\n {"enabled": "maybe"}}', 2, "queue.enabled"),
        ("memory-cli.yaml", "batch:\n  max_batch_size: lots\n", 2, "batch.max_batch_size"),
    ],
)
def test_malformed_files_name_file_line_and_key(
    tmp_path: Path, name: str, text: str, line: int, fragment: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigurationError) as info:
        load(tmp_path)
    message = info.value.message
    assert str(tmp_path / name) in message
    assert f"line {line}" in message
    assert fragment in message


def test_unknown_extension_is_parsed_as_json(tmp_path: Path) -> None:
    good = tmp_path / "memory.conf"
    good.write_text('{"storage": {"pool_size": 4}}')
    assert load(tmp_path, config_path=good).settings.storage.pool_size == 4
    bad = tmp_path / "memory.cfg"
    bad.write_text("[storage]\npool_size = 4\n")
    with pytest.raises(ConfigurationError, match="invalid JSON"):
        load(tmp_path, config_path=bad)


@pytest.mark.parametrize("text", ["[1, 2]", "null", '"text"'])
def test_top_level_must_be_a_table(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match="line 1"):
        read_config_file(path)


def test_relative_paths_in_a_file_are_relative_to_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    path = sub / "memory-cli.toml"
    path.write_text('[storage]\ndata_dir = "store"\n[resilience]\noutbox_path = "../ob.db"\n')
    loaded = load(tmp_path, config_path=path)
    assert loaded.data_dir() == (sub / "store").resolve()
    assert loaded.memory_config().resilience.outbox_path == str((tmp_path / "ob.db").resolve())


def test_sqlite_url_sets_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text('[database]\nurl = "sqlite:///db/memory.db"\n')
    loaded = load(tmp_path)
    assert loaded.data_dir() == (tmp_path / "db").resolve()
    assert loaded.validate({}).ok
    # a flag still wins
    flagged = load(tmp_path, flags={"storage.data_dir": (str(tmp_path / "f"), "--data-dir")})
    assert flagged.data_dir() == tmp_path / "f"


# --- validator ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "severity", "limit"),
    [
        ("cache.max_episodes", 0, "error", ">= 1"),
        ("cache.max_episodes", 200_000, "warning", "<= 100000"),
        ("storage.pool_size", 0, "error", ">= 1"),
        ("storage.pool_size", 500, "error", "<= 100"),
        ("storage.busy_timeout_ms", -1, "error", ">= 0"),
        ("storage.synchronous", "off", "error", "normal | full"),
        ("cli.default_format", "xml", "error", "human | json | yaml"),
        ("storage.url", "", "error", "a SQLite path or URL"),
        ("storage.url", "libsql://db.turso.io", "warning", "a token for a remote libsql://"),
        ("storage.url", "mysql://u:pw@h/db", "error", "sqlite:, file:"),
        ("storage.url", ":memory:", "error", "memory.db"),
        ("storage.url", "/x/other.sqlite", "error", "memory.db"),
        ("logging.level", "LOUD", "error", "DEBUG | INFO"),
        ("sync.strategy", "newest", "error", "primary_wins | most_recent | cache_wins"),
        ("resilience.max_attempts", 50, "error", "<= 20"),
        ("queue.worker_count", 0, "error", ">= 1"),
        ("sandbox_audit.keep", 0, "error", ">= 1"),
        ("retrieval.mmr_lambda", 2, "error", "<= 1"),
        ("retrieval.mode", "fuzzy", "error", "hybrid | lexical"),
        ("storage.cache_ttl_seconds", 30, "warning", "unset"),
        ("backup.keep", 3, "warning", "unset"),
        ("preset", "turbo", "error", "local | cloud"),
    ],
)
def test_validator_names_field_value_and_limit(
    tmp_path: Path, key: str, value: Any, severity: str, limit: str
) -> None:
    section, _, name = key.partition(".")
    data: dict[str, Any] = {section: {name: value}} if name else {section: value}
    (tmp_path / "memory-cli.json").write_text(json.dumps(data))
    report = load(tmp_path).validate({})
    issues = report.errors if severity == "error" else report.warnings
    matching = [issue for issue in issues if issue.field == key]
    assert matching, (report.errors, report.warnings)
    issue = matching[0]
    assert limit in issue.limit
    text = str(issue)
    assert key in text
    assert "limit:" in text
    if "pw" in str(value):
        assert "pw" not in text  # passwords in URLs are masked


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text(
        '[storage]\npool_size = 0\n[queue]\nworker_count = 0\n[logging]\nlevel = "LOUD"\n'
        '[sandbox]\nbackend = "docker"\n[cache]\nmax_episodes = 0\n'
    )
    loaded = load(tmp_path)
    fields = sorted(issue.field for issue in loaded.validate({}).errors)
    assert fields == [
        "cache.max_episodes",
        "logging.level",
        "queue.worker_count",
        "sandbox.backend",
        "storage.pool_size",
    ]
    assert loaded.show()["queue.worker_count"]["value"] == 0  # the refused value, not a default
    with pytest.raises(ConfigurationError, match=r"and 4 more"):
        loaded.memory_config()


def test_cross_checks_and_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "memory-cli.json").write_text(
        json.dumps(
            {"cache": {"max_episodes": 50}, "storage": {"url": "postgresql://h/db", "pool_sise": 3}}
        )
    )
    loaded = load(tmp_path)
    report = loaded.validate({})
    assert report.ok
    messages = {issue.field: issue.message for issue in report.warnings}
    assert "small cache in front of a remote database" in messages["cache.max_episodes"]
    assert "storage.pool_size" in messages["storage.pool_sise"]  # did you mean
    assert loaded.show()["storage.pool_sise"]["source"].endswith("(unknown key)")


def test_openai_without_key_warns() -> None:
    settings = Settings.model_validate({"embeddings": {"provider": "openai"}})
    report = validate_settings(settings, env={})
    assert any(i.field == "embeddings.api_key_env" for i in report.warnings)
    assert not any(
        i.field == "embeddings.api_key_env"
        for i in validate_settings(settings, env={"OPENAI_API_KEY": "k"}).warnings
    )


def test_memory_config_refuses_invalid_settings(tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text("[storage]\npool_size = 0\n")
    loaded = load(tmp_path)
    with pytest.raises(ConfigurationError, match=r"storage.pool_size.*line 2"):
        loaded.memory_config()


def test_old_key_names_still_reach_the_library_config(tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text(
        "[storage]\nmax_episodes_cache = 321\ncache_enabled = false\n"
        '[database]\nbusy_timeout_ms = 1234\nsynchronous = "full"\n'
        '[embeddings]\nprovider = "hashing"\ndimensions = 64\n'
        '[retrieval]\nmode = "lexical"\ncandidate_limit = 80\n'
    )
    config = load(tmp_path).memory_config()
    assert config.cache.max_episodes == 321
    assert config.cache.enabled is False
    assert config.storage.busy_timeout_ms == 1234
    assert config.storage.synchronous == "full"
    assert config.embeddings.provider == "hashing"
    assert config.embeddings.dimensions == 64
    assert config.retrieval.mode.value == "lexical"
    assert config.retrieval.candidate_limit == 80


def test_every_library_section_is_settable_from_a_file(tmp_path: Path) -> None:
    assert set(MemoryConfig.model_fields) <= {key.partition(".")[0] for key in HELP}
    (tmp_path / "memory-cli.toml").write_text(
        "[resilience]\nenabled = true\nmax_attempts = 2\noutbox_enabled = false\n"
        "[queue]\nenabled = true\nworker_count = 3\n"
        "[batch]\nmax_batch_size = 7\nauto_flush = false\n"
        "[extraction]\nmax_sequence_length = 9\n"
        '[sync]\nenabled = true\nstrategy = "most_recent"\nwindow_s = 60\n'
        "[cache]\nmap_size_mb = 64\n[sandbox_audit]\nkeep = 5\n"
    )
    config = load(tmp_path).memory_config()
    assert type(config) is MemoryConfig
    assert (config.resilience.enabled, config.resilience.max_attempts) == (True, 2)
    assert config.resilience.outbox_enabled is False
    assert (config.queue.enabled, config.queue.worker_count) == (True, 3)
    assert config.batch is not None
    assert (config.batch.max_batch_size, config.batch.auto_flush) == (7, False)
    assert config.extraction.max_sequence_length == 9
    assert (config.sync.enabled, config.sync.strategy, config.sync.window_s) == (
        True,
        "most_recent",
        60.0,
    )
    assert (config.cache.map_size_mb, config.sandbox_audit.keep) == (64, 5)


@pytest.mark.parametrize(
    ("old", "value", "new", "expected"),
    [
        ("database.url", "postgresql://h/db", "storage.url", "postgresql://h/db"),
        ("database.turso_url", "libsql://x.turso.io", "storage.url", "libsql://x.turso.io"),
        ("database.postgres_dsn", "postgresql://h/db", "storage.url", "postgresql://h/db"),
        ("database.turso_token", "tok", "storage.auth_token", "tok"),
        ("database.busy_timeout_ms", 99, "storage.busy_timeout_ms", 99),
        ("database.synchronous", "full", "storage.synchronous", "full"),
        ("storage.max_episodes_cache", 77, "cache.max_episodes", 77),
        ("storage.cache_enabled", False, "cache.enabled", False),
        ("sync.interval_seconds", 12, "sync.interval_s", 12.0),
        ("sync.conflict_resolution", "durable_wins", "sync.strategy", "primary_wins"),
        ("sandbox.audit_keep", 5, "sandbox_audit.keep", 5),
    ],
)
def test_moved_keys_are_accepted_from_files_and_the_environment(
    tmp_path: Path, old: str, value: Any, new: str, expected: Any
) -> None:
    assert KEY_ALIASES[old] == new
    section, _, name = old.partition(".")
    (tmp_path / "memory-cli.json").write_text(json.dumps({section: {name: value}}))
    from_file = load(tmp_path)
    assert from_file.settings.get(new) == expected
    assert "line 1" in from_file.sources[new]
    assert not [w for w in from_file.validate({}).warnings if w.field == old]
    env = {env_names(old)[0]: str(value).lower() if isinstance(value, bool) else str(value)}
    from_env = load(tmp_path / "none", env)
    assert from_env.settings.get(new) == expected
    assert from_env.sources[new] == f"env {env_names(old)[0]}"


def test_a_key_s_own_name_wins_over_its_old_name(tmp_path: Path) -> None:
    (tmp_path / "memory-cli.toml").write_text(
        "[storage]\nmax_episodes_cache = 10\n[cache]\nmax_episodes = 20\n"
    )
    assert load(tmp_path).settings.cache.max_episodes == 20
    env = {"MEMORY_STORAGE_MAX_EPISODES_CACHE": "30"}  # the environment beats the file
    assert load(tmp_path, env).settings.cache.max_episodes == 30


def test_show_masks_secrets(tmp_path: Path) -> None:
    env = {"TURSO_TOKEN": "tok-secret", "MEMORY_DATABASE_POSTGRES_DSN": "postgresql://u:pw@h/db"}
    shown = json.dumps(load(tmp_path, env).show())
    assert "tok-secret" not in shown
    assert "pw@" not in shown
    assert load(tmp_path, env).show()["storage.auth_token"]["value"] == "***"


def test_every_key_has_help() -> None:
    assert [key for key, _ in iter_keys()] == list(HELP)


# --- setup ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "preset"),
    [
        ({}, "local"),
        ({"CI": "true"}, "memory"),
        ({"TURSO_URL": "libsql://x"}, "cloud"),
        ({"FLY_IO": "1"}, "cloud"),
    ],
)
def test_simple_chooses_a_preset(env: dict[str, str], preset: str) -> None:
    loaded = simple(env=env)
    assert loaded.preset == preset
    assert loaded.sources["preset"].startswith("simple setup")


def test_progressive_builder(tmp_path: Path) -> None:
    loaded = (
        progressive("local", env={})
        .data_dir(tmp_path / "m")
        .storage(max_episodes_cache=250)
        .retrieval(mode="lexical")
        .build()
    )
    assert loaded.data_dir() == tmp_path / "m"
    assert loaded.memory_config().cache.max_episodes == 250
    with pytest.raises(ConfigurationError, match="pool_size"):
        progressive("local", env={}).storage(pool_size=0).build()
    with pytest.raises(ConfigurationError, match="Unknown config key"):
        progressive(env={}).set("storage.nope", 1)


# --- TOML writer and wizard -----------------------------------------------------------------


def test_rendered_toml_round_trips(tmp_path: Path) -> None:
    explicit = {
        "preset": "memory",
        "storage.pool_size": 4,
        "queue.enabled": True,
        "embeddings.model": 'we"ird',
        "retrieval.mmr_lambda": 0.5,
        "database.busy_timeout_ms": 1500,
    }
    text = render_toml(explicit)
    assert tomllib.loads(text)["storage"] == {"pool_size": 4, "busy_timeout_ms": 1500}
    path = tmp_path / "memory-cli.toml"
    path.write_text(text)
    loaded = load(tmp_path)
    assert loaded.settings.embeddings.model == 'we"ird'
    assert loaded.settings.queue.enabled is True
    assert loaded.settings.storage.busy_timeout_ms == 1500  # an old name written as its key
    assert loaded.settings.retrieval.mmr_lambda == 0.5
    assert loaded.preset == "memory"
    assert all(len(line) <= 100 for line in text.splitlines())


def test_wizard_with_scripted_answers(tmp_path: Path) -> None:
    target = tmp_path / "memory-cli.toml"
    prompter = ScriptedPrompter(
        {
            "preset": "local",
            "data_dir": str(tmp_path / "data"),
            "max_episodes_cache": "750",
            "pool_size": "4",
            "default_format": "yaml",
        }
    )
    result = run_wizard(prompter, target, env={})
    assert result.saved
    assert result.report.ok
    assert prompter.asked[:2] == ["preset", "data_dir"]
    assert "save" in prompter.asked
    loaded = load(tmp_path)
    s = loaded.settings
    assert (s.cache.max_episodes, s.storage.pool_size) == (750, 4)
    assert s.cli.default_format == "yaml"
    assert loaded.data_dir() == tmp_path / "data"
    assert target.read_text().startswith("# Configuration")


def test_wizard_does_not_save_errors_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "memory-cli.toml"
    result = run_wizard(ScriptedPrompter({"pool_size": "0"}), target, env={})
    assert not result.saved
    assert not target.exists()
    assert [i.field for i in result.report.errors] == ["storage.pool_size"]
    result = run_wizard(ScriptedPrompter({"pool_size": "0", "save_anyway": True}), target, env={})
    assert result.saved
    assert target.exists()


def test_wizard_with_line_input(tmp_path: Path) -> None:
    target = tmp_path / "w.toml"
    answers = "memory\n\n\n\n\njson\ny\n"
    out = io.StringIO()
    result = run_wizard(
        LinePrompter(io.StringIO(answers), out.write), target, out=out.write, env={}
    )
    assert result.saved
    data = tomllib.loads(target.read_text())
    assert data["preset"] == "memory"
    assert data["cli"]["default_format"] == "json"
    assert data["storage"]["pool_size"] == 2  # the memory preset's, the default answer
    assert "Step 5/5" in out.getvalue()


def test_wizard_input_ending_early_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "w.toml"
    with pytest.raises(ConfigurationError, match="input ended"):
        run_wizard(LinePrompter(io.StringIO("local\n"), lambda _t: None), target, env={})
    assert not target.exists()


# --- docs -----------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_every_key_is_documented_with_its_env_name() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for key in HELP:
        assert f"| `{key}` |" in text, key
        assert f"`{env_names(key)[0]}`" in text, key


def test_example_config_is_valid(tmp_path: Path) -> None:
    loaded = load(tmp_path, config_path=ROOT / "examples" / "memory-cli.toml")
    assert loaded.preset == "local"
    assert validate_settings(loaded.settings, env={}).ok
    assert loaded.data_dir() == ROOT / "examples" / "memory-data"


def test_postgresql_url_is_accepted_and_reaches_the_library_config() -> None:
    from self_learning_memory.settings.loader import memory_config_from

    for data in (
        {"database": {"url": "postgresql://u:pw@h/db"}, "storage": {"pool_size": 7}},
        {"database": {"postgres_dsn": "postgresql://u:pw@h/db"}, "storage": {"pool_size": 7}},
    ):
        settings = Settings.model_validate(data)
        report = validate_settings(settings, env={})
        assert not [e for e in report.errors if e.field.startswith("storage.")], report.errors
        config = memory_config_from(settings)
        assert config.storage.url == "postgresql://u:pw@h/db"
        assert config.storage.pool_size == 7
    embedded = memory_config_from(Settings.model_validate({"database": {"url": "/x/memory.db"}}))
    assert embedded.storage.url is None


def test_a_file_with_every_old_key_still_loads(tmp_path: Path) -> None:
    """Every key the config file had before the sections became MemoryConfig's: moved keys are
    read as their new key, keys nothing reads are warnings, nothing is an error."""
    old = {
        "database": {
            "url": "sqlite:///db/memory.db",
            "turso_token": "t",
            "busy_timeout_ms": 1000,
            "synchronous": "full",
        },
        "storage": {
            "data_dir": str(tmp_path / "d"),
            "max_episodes_cache": 600,
            "cache_ttl_seconds": 7200,
            "pool_size": 4,
            "cache_enabled": True,
        },
        "cli": {"default_format": "json", "progress_bars": True, "batch_size": 200},
        "sandbox": {"audit_keep": 50, "max_cpu_percent": 30, "allow_network": False},
        "sync": {"enabled": True, "interval_seconds": 60, "batch_size": 100},
        "logging": {"level": "INFO", "max_file_mb": 5, "backup_count": 3},
        "monitoring": {"enabled": True, "latency_window": 1000, "export_format": "json"},
        "backup": {"format": "json", "compress": False, "keep": 10},
    }
    old["sync"]["conflict_resolution"] = "durable_wins"
    old["sandbox"].update(allow_filesystem=False, allow_subprocesses=False, allowed_paths=[])
    (tmp_path / "memory-cli.json").write_text(json.dumps(old))
    loaded = load(tmp_path)
    report = loaded.validate({})
    assert report.errors == []
    removed = set(REMOVED_KEYS) - {"backup.dir"}
    # and the SQLite URL outside the data directory set next to it, as for any source
    assert {w.field for w in report.warnings} == removed | {"storage.url"}
    config = loaded.memory_config()
    assert (config.cache.max_episodes, config.storage.pool_size) == (600, 4)
    assert (config.storage.busy_timeout_ms, config.storage.synchronous) == (1000, "full")
    assert (config.sync.enabled, config.sync.interval_s, config.sync.strategy) == (
        True,
        60.0,
        "primary_wins",
    )
    assert config.sandbox_audit.keep == 50
    assert config.storage.url is None  # the SQLite URL names the data directory...
    assert loaded.data_dir() == tmp_path / "d"  # ...which storage.data_dir overrides
