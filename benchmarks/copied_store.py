"""A large retrieval store in a minute: renumbered copies of a built bench store.

    python -m benchmarks.copied_store --source DIR/10000 --copies 10 --target COPIES/100000

``embeddings_bench --store-dir`` builds its stores through the learning path, one episode at a
time (the 100K build took ~470 s on a quiet machine; under load 5-6 it was at 15,690 episodes
after 27 minutes).
This writes ``copies`` copies of the source store's episodes as rows (``transfer.py``'s import,
the way a migration copies a memory), each episode's ``#n`` suffix renumbered so every copy has
its own description, full-text row and hashing vector (384 dims, as the bench). The copies
share everything else (context, steps, outcome, reward, reflection, end time); no patterns,
heuristics or usage are written. Then ``built`` is written, so ``embeddings_bench --store-dir
COPIES --sizes 100000`` reuses it. It is not the bench's own build: say so next to its numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
import uuid
from pathlib import Path

from self_learning_memory import MemoryConfig
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.model.episode import Episode
from self_learning_memory.model.records import EpisodeFilters
from self_learning_memory.retrieval.vectors import VectorSearch
from self_learning_memory.storage.factory import open_embedded
from self_learning_memory.storage.transfer import transfer_adapter


async def copy_store(source_dir: Path, copies: int, target_dir: Path) -> int:
    started = time.perf_counter()
    source, _ = open_embedded(source_dir, MemoryConfig())
    target, _ = open_embedded(target_dir, MemoryConfig())
    async with source, target:
        episodes: list[Episode] = []
        while page := await source.list_episodes(EpisodeFilters(), 1000, len(episodes)):
            episodes += page
        adapter = transfer_adapter(target)
        vectors = VectorSearch(HashingEmbedding(384), target)
        rng = random.Random(3)
        size = len(episodes)
        for c in range(copies):
            for start in range(0, size, 2000):
                page = [
                    e.model_copy(
                        update={
                            "episode_id": e.episode_id
                            if c == 0
                            else uuid.UUID(int=rng.getrandbits(128), version=4),
                            "task_description": re.sub(
                                r"#\d+$", f"#{c * size + n}", e.task_description
                            ),
                        }
                    )
                    for n, e in enumerate(episodes[start : start + 2000], start=start)
                ]
                await adapter.import_episodes(page)
                await target.store_embeddings(await vectors.embed_records(page))
            print(f"copy {c + 1}/{copies}: {time.perf_counter() - started:.0f} s", flush=True)
    return copies * size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--target", type=Path, required=True)
    args = parser.parse_args(argv)
    args.target.mkdir(parents=True, exist_ok=True)
    written = asyncio.run(copy_store(args.source, args.copies, args.target))
    (args.target / "built").write_text(
        f"{written} episodes: {args.copies} renumbered copies of {args.source}, imported\n"
    )


if __name__ == "__main__":
    main()
