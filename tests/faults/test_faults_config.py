"""Config files that attack the parser: YAML alias bombs and oversized files (issue 12, item 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from self_learning_memory.errors import ConfigurationError
from self_learning_memory.settings.files import MAX_CONFIG_BYTES, read_config_file

# ~400 bytes; expanded, 9 levels of 9 aliases is 9**9 (387 million) strings.
BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "storage: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


def test_faults_config_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "memory-cli.yaml"
    path.write_text(BILLION_LAUGHS, encoding="utf-8")
    assert len(BILLION_LAUGHS) < 450
    with pytest.raises(ConfigurationError) as info:
        read_config_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 2" in message
    assert "aliases" in message


def test_faults_config_yaml_alias_bomb_via_cli_exits_6(tmp_path: Path) -> None:
    path = tmp_path / "memory-cli.yaml"
    path.write_text(BILLION_LAUGHS, encoding="utf-8")
    env = dict(os.environ, MEMORY_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "self_learning_memory.cli",
            "--config",
            str(path),
            "config",
            "validate",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 6, done.stdout + done.stderr
    assert "aliases" in done.stdout + done.stderr


def test_faults_config_plain_yaml_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "memory-cli.yaml"
    path.write_text("storage:\n  max_episodes: 50\n", encoding="utf-8")
    assert read_config_file(path).data == {"storage": {"max_episodes": 50}}


@pytest.mark.parametrize("name", ["memory-cli.toml", "memory-cli.json", "memory-cli.yaml"])
def test_faults_config_huge_file_is_refused_before_reading(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with path.open("wb") as handle:  # sparse: 64 MiB of size, no data written
        handle.truncate(64 * 1024 * 1024)
    with pytest.raises(ConfigurationError) as info:
        read_config_file(path)
    message = str(info.value)
    assert str(path) in message
    assert f"{MAX_CONFIG_BYTES} bytes" in message
