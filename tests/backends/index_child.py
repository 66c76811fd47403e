"""A separate process searching a pgvector store, for the concurrent index build test.

    python index_child.py URL DATA_DIR DIMENSIONS QUERY

Opens the memory on ``URL`` with the hashing embedder of DIMENSIONS, builds (or finds) the
HNSW index of its embedding identity through the store's own ``ensure_index``, then runs one
vector retrieval of QUERY. Prints "IDENTITY <identity>", "INDEX <name>", then "TOP
<description>" and "PROVENANCE <comma-separated notes>" of the best result. An error is printed
as "ERROR <type>: <text>" with exit status 1.
"""

from __future__ import annotations

import asyncio
import sys

from self_learning_memory import MemoryConfig, SelfLearningMemory


async def main(url: str, data_dir: str, dimensions: int, query: str) -> None:
    config = MemoryConfig.model_validate(
        {
            "storage": {"url": url},
            "embeddings": {"provider": "hashing", "dimensions": dimensions},
            "sync": {"enabled": False},
        }
    )
    async with SelfLearningMemory.open(data_dir, config=config) as memory:
        assert memory.vectors is not None
        handle = memory.storage.capabilities.vector_index
        assert handle is not None
        print(f"IDENTITY {memory.vectors.identity}", flush=True)
        name = await handle.ensure_index(memory.vectors.identity, dimensions)
        print(f"INDEX {name}", flush=True)
        found = await memory.retrieve_relevant_context(query, None, 3, mode="vector")
        print(f"TOP {found[0].episode.task_description}", flush=True)
        print(f"PROVENANCE {','.join(found[0].provenance)}", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
        sys.exit(1)
