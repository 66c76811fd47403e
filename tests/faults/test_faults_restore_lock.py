"""Restore over a store in use (issue 12, item 1): a live ``memory-mcp`` server and a live
library writer keep a restore out and lose nothing they acknowledged; a process that opens the
store while a restore holds the restore lock is refused or waits, and then writes to the
restored files, never to the replaced ones."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from integration.test_backup import CONFIG, populate
from mcp_server.tools import ok, record_episode, stdio_client
from self_learning_memory import SelfLearningMemory
from self_learning_memory.backup import create_backup, restore_backup
from self_learning_memory.backup import restore as restore_module
from self_learning_memory.errors import InvalidStateError
from self_learning_memory.storage.restore_lock import restore_exclusive, store_opening

pytestmark = [pytest.mark.integration, pytest.mark.sqlite_only("the embedded store's files")]

# A library process: writes episodes, prints each acknowledged id, then waits on stdin.
WRITER = """
import asyncio, sys
from self_learning_memory import MemoryConfig, SelfLearningMemory
from self_learning_memory.config import EmbeddingsConfig

async def main() -> None:
    config = MemoryConfig(embeddings=EmbeddingsConfig(provider="hashing"))
    async with SelfLearningMemory.open(sys.argv[1], config=config) as memory:
        for i in range(3):
            eid = await memory.start_episode(f"writer episode {i}", task_type="testing")
            print(eid, flush=True)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        eid = await memory.start_episode("written after the refused restore", task_type="testing")
        print(eid, flush=True)

asyncio.run(main())
"""

# A process that opens the store with an opener's wait bound of argv[2] seconds, writes one
# episode and prints its id; a refusal is printed as "refused: <message>" (exit 3).
OPENER = """
import asyncio, logging, sys
from self_learning_memory import MemoryConfig, SelfLearningMemory
from self_learning_memory.config import EmbeddingsConfig
from self_learning_memory.errors import InvalidStateError
from self_learning_memory.storage import restore_lock

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
restore_lock.OPEN_WAIT_S = float(sys.argv[2])

async def main() -> int:
    config = MemoryConfig(embeddings=EmbeddingsConfig(provider="hashing"))
    try:
        async with SelfLearningMemory.open(sys.argv[1], config=config) as memory:
            print(await memory.start_episode("opened during the restore", task_type="testing"))
    except InvalidStateError as exc:
        print(f"refused: {exc}")
        return 3
    return 0

sys.exit(asyncio.run(main()))
"""


async def _descriptions(data_dir: Path) -> dict[str, str]:
    async with SelfLearningMemory.open(data_dir, config=CONFIG) as memory:
        return {
            str(e.episode_id): e.task_description for e in await memory.list_episodes(limit=1000)
        }


@pytest.fixture
async def backup(tmp_path: Path) -> Path:
    await populate(tmp_path / "source", episodes=1)
    return (await create_backup(tmp_path / "source", tmp_path / "backups")).path


async def test_faults_restore_refused_by_a_live_server_and_writer_loses_nothing(
    backup: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    await populate(target, episodes=1)
    acknowledged: list[str] = []
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        str(target),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert writer.stdout is not None
    assert writer.stdin is not None
    try:
        async with stdio_client(target) as server:
            done = await record_episode(
                server, "served while a restore was tried", [("pytest", {"type": "success", "output": "ok"})],
                {"outcome_type": "success", "verdict": "done"},
            )  # fmt: skip
            acknowledged.append(str(done["episode_id"]))
            while (line := (await asyncio.wait_for(writer.stdout.readline(), 60)).strip()) != (
                b"ready"
            ):
                acknowledged.append(line.decode())
            assert len(acknowledged) == 4

            with pytest.raises(InvalidStateError) as refused:
                await restore_backup(backup, target, force=True)
            message = str(refused.value)
            assert "in use by 2 other process(es)" in message
            assert f"pid {writer.pid} " in message
            assert "self_learning_memory.mcp --data-dir" in message  # the server, named
            assert refused.value.exit_code == 5

            # both go on writing to the store they hold, and are acknowledged
            created = await ok(
                server,
                "create_episode",
                {
                    "task_description": "served after the refusal",
                    "domain": "web-api",
                    "task_type": "testing",
                },
            )
            acknowledged.append(str(created["episode_id"]))
            writer.stdin.write(b"go on\n")
            await writer.stdin.drain()
            acknowledged.append((await asyncio.wait_for(writer.stdout.readline(), 60)).decode())
            assert await asyncio.wait_for(writer.wait(), 60) == 0
    finally:
        if writer.returncode is None:
            writer.kill()
            await writer.wait()

    kept = await _descriptions(target)
    missing = [eid for eid in (a.strip() for a in acknowledged) if eid not in kept]
    assert missing == [], f"acknowledged but lost: {missing}"

    report = await restore_backup(backup, target, force=True)  # both stopped: it works
    assert report.replaced_existing
    restored = await _descriptions(target)
    assert len(restored) == report.counts.episodes
    assert not set(restored) & {a.strip() for a in acknowledged}  # the backup's store now


async def test_faults_restore_an_opener_during_the_swap_is_refused_or_waits(
    backup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ordered with pipes, no sleeps: the restore's last check runs under the lock; while the
    lock is held an opener with no wait is refused, and an opener with a wait says it waits;
    the swap then happens and the waiting opener writes to the restored store."""
    target = tmp_path / "target"
    await populate(target, episodes=2)
    real_check = restore_module.refuse_if_in_use
    seen: dict[str, object] = {}
    calls: list[Path] = []

    def opener(wait_s: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", OPENER, str(target), wait_s],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def check_then_race(data_dir: Path) -> None:
        real_check(data_dir)
        calls.append(data_dir)
        if len(calls) == 1:  # the first check, before staging: no lock held yet
            return
        impatient = opener("0")
        out, _ = impatient.communicate(timeout=120)
        seen["refused"] = (impatient.returncode, out)
        patient = opener("120")
        assert patient.stderr is not None
        for line in patient.stderr:  # it has met the lock and is waiting
            if "A restore is in progress" in line:
                break
        else:
            raise AssertionError("the opener never waited for the restore")
        seen["patient"] = patient

    monkeypatch.setattr(restore_module, "refuse_if_in_use", check_then_race)
    report = await restore_backup(backup, target, force=True)
    assert report.replaced_existing
    assert calls == [target, target]

    code, out = seen["refused"]  # type: ignore[misc]
    assert code == 3, out
    assert "A restore is in progress in" in out
    patient = seen["patient"]
    assert isinstance(patient, subprocess.Popen)
    out, err = patient.communicate(timeout=120)
    assert patient.returncode == 0, err
    written = str(uuid.UUID(out.strip()))

    restored = await _descriptions(target)  # the waiting opener wrote to the restored store
    assert restored[written] == "opened during the restore"
    assert len(restored) == report.counts.episodes + 1
    assert "opened during the restore" not in [
        d for eid, d in restored.items() if eid != written
    ]  # the refused opener wrote nothing


def test_faults_restore_lock_excludes_openers_within_one_process(tmp_path: Path) -> None:
    """flock belongs to an open file description: the lock works between threads too."""
    with (
        restore_exclusive(tmp_path),
        pytest.raises(InvalidStateError, match="restore is in"),
        store_opening(tmp_path, wait_s=0),
    ):
        pass
    with (
        store_opening(tmp_path),
        store_opening(tmp_path, wait_s=0),  # openers share it
        pytest.raises(InvalidStateError, match="being opened"),
        restore_exclusive(tmp_path, wait_s=0),
    ):
        pass
    with (
        restore_exclusive(tmp_path),
        pytest.raises(InvalidStateError),
        restore_exclusive(tmp_path, wait_s=0),
    ):
        pass
