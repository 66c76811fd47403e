"""Issue 12, item 6: damaged database pages are a storage integrity error (exit 7), not an
"internal error" (exit 1).

The damage is real: episodes are written through the library, the store is closed, and bytes
inside stored task descriptions are overwritten with invalid UTF-8 (what a torn or flipped page
leaves behind). The cache is removed so every read goes to the damaged file.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest

from cli.conftest import run_process
from cli.seeding import add_episode, with_memory
from self_learning_memory import DataIntegrityError, SelfLearningMemory, TaskContext

pytestmark = pytest.mark.integration


def _damaged_store(tmp_path: Path) -> Path:
    data = tmp_path / "data"

    async def seed(memory: SelfLearningMemory) -> None:
        for i in range(12):
            await add_episode(memory, f"Fix the flaky login test number {i:02d}")

    with_memory(data, seed)
    shutil.rmtree(data / "cache")
    raw = bytearray((data / "memory.db").read_bytes())
    hits = 0
    for found in re.finditer(rb"flaky login test number 0\d", raw):
        raw[found.start() : found.start() + 2] = b"\xff\xfe"
        hits += 1
    assert hits >= 5, "the descriptions were not found in the file"
    (data / "memory.db").write_bytes(bytes(raw))
    return data


def test_faults_damaged_pages_cli_search_exits_7_in_one_line(tmp_path: Path) -> None:
    """Was: `internal error: UnicodeDecodeError` with exit 1."""
    data = _damaged_store(tmp_path)
    done = run_process(
        "-d", str(data), "episode", "search", "flaky login test", env={"NO_COLOR": "1"}
    )
    assert done.returncode == 7, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "internal error" not in done.stderr
    assert "not valid UTF-8" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_faults_damaged_pages_library_raises_the_integrity_error(tmp_path: Path) -> None:
    data = _damaged_store(tmp_path)

    async def search() -> None:
        async with SelfLearningMemory.open(data) as memory:
            await memory.retrieve_relevant_context(
                "flaky login test", TaskContext(domain="web-api"), limit=10
            )

    with pytest.raises(DataIntegrityError, match="not valid UTF-8"):
        asyncio.run(search())
