"""kill -9 loop: 5 rounds of a library writer killed at a seeded random moment; every
acknowledged write (logged with fsync as it arrived) is present and the database is intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from .kill_loop import kill_loop

pytestmark = pytest.mark.integration


async def test_sigkill_loop_loses_no_acknowledged_write(tmp_path: Path) -> None:
    report = await kill_loop(tmp_path / "data", rounds=5, seed=12)
    assert report.integrity == "ok"
    assert report.lost == 0
    assert report.kills == 5
    assert report.acknowledged >= 5
