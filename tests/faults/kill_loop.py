"""A kill -9 loop over a writer process: rounds of ``memory_child.py acker`` (the library, each
step committed before it returns) killed with SIGKILL after a seeded random number of
acknowledgements. The parent appends every acknowledgement to an fsync'd log as it arrives;
after each kill the store is reopened and every acknowledged write is checked, and SQLite's
``PRAGMA integrity_check`` must say ok. Used by tests/faults/test_faults_kill.py (5 rounds) and
benchmarks/fault_kill.py (more)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import apsw

from self_learning_memory import SelfLearningMemory
from self_learning_memory.storage.factory import DB_FILENAME

CHILD = Path(__file__).resolve().parents[1] / "integration" / "memory_child.py"
TIMEOUT = 30.0


@dataclass
class KillReport:
    kills: int = 0
    acknowledged: int = 0  # acknowledgements checked after the last round (starts, steps, ends)
    episodes: int = 0
    lost: int = 0
    integrity: str = "ok"


def _append(log: Path, line: str) -> None:
    with log.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


async def _round(data_dir: Path, acks_wanted: int, log: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        "acker",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    for _ in range(acks_wanted):
        raw = await asyncio.wait_for(proc.stdout.readline(), timeout=TIMEOUT)
        assert raw.endswith(b"\n"), f"the writer died by itself: {raw!r}"
        line = raw.decode().strip()
        assert line.startswith("ACK "), line
        await asyncio.to_thread(_append, log, line)
    os.kill(proc.pid, signal.SIGKILL)
    rest = await asyncio.wait_for(proc.stdout.read(), timeout=TIMEOUT)
    await asyncio.wait_for(proc.wait(), timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    for line in rest.decode().split("\n")[:-1]:  # a torn last line was never acknowledged
        await asyncio.to_thread(_append, log, line.strip())


def integrity(data_dir: Path) -> str:
    conn = apsw.Connection(str(data_dir / DB_FILENAME))
    try:
        return ",".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


async def check(data_dir: Path, log: Path) -> KillReport:
    """Every acknowledgement in the log is in the store."""
    starts: set[uuid.UUID] = set()
    steps: dict[uuid.UUID, set[int]] = defaultdict(set)
    completions: set[uuid.UUID] = set()
    report = KillReport()
    text = await asyncio.to_thread(log.read_text, encoding="utf-8")
    for line in text.splitlines():
        kind, eid, *rest = line.split()[1:]
        episode_id = uuid.UUID(eid)
        report.acknowledged += 1
        if kind == "start":
            starts.add(episode_id)
        elif kind == "step":
            steps[episode_id].add(int(rest[0]))
        else:
            completions.add(episode_id)
    report.integrity = await asyncio.to_thread(integrity, data_dir)
    async with SelfLearningMemory.open(data_dir) as memory:
        for episode_id in starts:
            episode = await memory.get_episode(episode_id)
            stored = {s.step_number for s in episode.steps}
            report.lost += len(steps[episode_id] - stored)
            report.lost += episode_id in completions and not episode.is_complete()
    report.episodes = len(starts)
    return report


async def kill_loop(data_dir: Path, rounds: int, seed: int) -> KillReport:
    rng = random.Random(seed)
    log = data_dir.parent / f"{data_dir.name}.acks"
    await asyncio.to_thread(log.write_text, "")
    report = KillReport()
    for kills in range(1, rounds + 1):
        await _round(data_dir, rng.randrange(1, 40), log)
        report = await check(data_dir, log)
        report.kills = kills
        if report.lost or report.integrity != "ok":
            break
    return report
