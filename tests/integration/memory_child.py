"""A separate process using the memory, for the multi-process integration tests.

    python memory_child.py [--url URL] COMMAND DATA_DIR ...

``--url`` names the durable store (a postgresql:// DSN; the local cache stays in DATA_DIR);
without it the memory is the embedded store in DATA_DIR. The commands:

    python memory_child.py start DATA_DIR DESCRIPTION          -> prints the episode id
    python memory_child.py log DATA_DIR EPISODE_ID FIRST LAST  -> logs steps FIRST..LAST
    python memory_child.py complete DATA_DIR EPISODE_ID        -> prints the episode as JSON
    python memory_child.py delete DATA_DIR EPISODE_ID
    python memory_child.py writer DATA_DIR NAME TASKS EPISODES -> TASKS asyncio tasks, each
        writing EPISODES episodes of 3 steps; prints "EPISODE <id>" for each completed one
    python memory_child.py acker DATA_DIR                      -> writes until killed, printing
        "ACK start <id>", "ACK step <id> <n>" and "ACK complete <id>" after each call returns

Every line is flushed as soon as it is printed. An error is printed as "ERROR <type>: <text>"
and exits with status 1, so the parent sees exactly what escaped to the caller.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from self_learning_memory import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)

CONTEXT = TaskContext(domain="ops", language="python")


def say(line: str) -> None:
    print(line, flush=True)


STORE_URL: str | None = None  # set from --url


def open_memory(data_dir: str, config: MemoryConfig | None = None) -> SelfLearningMemory:
    """The memory in ``data_dir``, on the store ``--url`` named (if any)."""
    config = config or MemoryConfig()
    if STORE_URL is not None:
        storage = config.storage.model_copy(update={"url": STORE_URL})
        config = config.model_copy(update={"storage": storage})
    return SelfLearningMemory.open(data_dir, config=config)


def make_step(n: int, tool: str = "shell") -> ExecutionStep:
    return ExecutionStep(
        step_number=n,
        tool=tool,
        action=f"run command {n}",
        parameters={"n": n},
        result=SuccessResult(output=f"step {n} done"),
    )


async def start(data_dir: str, description: str) -> None:
    async with open_memory(data_dir) as memory:
        say(str(await memory.start_episode(description, CONTEXT, "testing")))


async def log(data_dir: str, episode_id: str, first: int, last: int) -> None:
    async with open_memory(data_dir) as memory:
        for n in range(first, last + 1):
            await memory.log_step(episode_id, make_step(n))
    say("LOGGED")  # after close: the buffered steps are flushed


async def complete(data_dir: str, episode_id: str) -> None:
    async with open_memory(data_dir) as memory:
        done = await memory.complete_episode(episode_id, SuccessOutcome(verdict="done"))
        say(done.model_dump_json())


async def delete(data_dir: str, episode_id: str) -> None:
    async with open_memory(data_dir) as memory:
        await memory.delete_episode(episode_id)
    say("DELETED")


async def writer(data_dir: str, name: str, tasks: int, episodes: int) -> None:
    async with open_memory(data_dir) as memory:

        async def one_task(t: int) -> None:
            for i in range(episodes):
                eid = await memory.start_episode(f"{name} task {t} episode {i}", CONTEXT)
                for n in range(1, 4):
                    await memory.log_step(
                        eid, make_step(n, tool=["git", "editor", "pytest"][n - 1])
                    )
                await memory.complete_episode(eid, SuccessOutcome(verdict=f"{name} {t} {i}"))
                say(f"EPISODE {eid}")

        await asyncio.gather(*(one_task(t) for t in range(tasks)))


async def acker(data_dir: str) -> None:
    # batch=None: log_step returns only once the step is committed, so an ACK means durable
    async with open_memory(data_dir, MemoryConfig(batch=None)) as memory:
        i = 0
        while True:
            eid = await memory.start_episode(f"acknowledged episode {i}", CONTEXT, "debugging")
            say(f"ACK start {eid}")
            for n in range(1, 4):
                step = make_step(n)
                if n == 2:
                    step = step.model_copy(update={"result": ErrorResult(message="exit 1")})
                await memory.log_step(eid, step)
                say(f"ACK step {eid} {n}")
            outcome = (
                SuccessOutcome(verdict="ok") if i % 2 == 0 else FailureOutcome(reason="broken")
            )
            await memory.complete_episode(eid, outcome)
            say(f"ACK complete {eid}")
            i += 1


async def main(argv: list[str]) -> None:
    global STORE_URL
    if argv[0] == "--url":
        STORE_URL, argv = argv[1], argv[2:]
    command, data_dir, *rest = argv
    if command == "start":
        await start(data_dir, rest[0])
    elif command == "log":
        await log(data_dir, str(uuid.UUID(rest[0])), int(rest[1]), int(rest[2]))
    elif command == "complete":
        await complete(data_dir, rest[0])
    elif command == "delete":
        await delete(data_dir, rest[0])
    elif command == "writer":
        await writer(data_dir, rest[0], int(rest[1]), int(rest[2]))
    elif command == "acker":
        await acker(data_dir)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except Exception as exc:
        say(f"ERROR {type(exc).__name__}: {exc}")
        sys.exit(1)
