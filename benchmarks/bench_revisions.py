"""What revisions cost: saves through the server-side script against the plain SET before.

Before revisions a save was: validate, encode, ``SET key value EX ttl``. Now every save
runs a single-key Lua script that reads the stored revision from the header and writes
the next one, and a load reads with ``GETRANGE`` bounded by ``max_state_bytes`` instead
of ``GET``. This script times, interleaved per buyer on one private redis-server:

- ``SET (before)``: the old save path, the same encoding sent as a plain SET;
- ``save_state``: today's unconditional save (the script);
- ``save_state(expected_revision=n)``: the conditional save;
- ``update_state``: load, apply a small function, conditional save;
- ``GET (before)`` and ``load_state``: the old and the new load, decoding included;
- the yardstick's save and load (the design this project replaces), for the targets.

Sync and async. Prints p50s in microseconds and the ratios; asserts nothing.

    python benchmarks/bench_revisions.py --buyers 2000 --corpus generated
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
import redis.asyncio
import yardstick
from corpus import measured_and_training

from memory_core import BuyerConversationMemory, SyncBuyerConversationMemory
from memory_core.dictionaries import (
    current_dictionary_key,
    dictionary_key,
    train_dictionary,
    training_sample,
)
from memory_core.testing import start_private_server

State = dict[str, Any]
Timings = dict[str, list[int]]
#: Operations compared with the old save and the yardstick's save (the rest: with loads).
WRITES = frozenset({"SET (before)", "save_state", "save_state(expected_revision)",
                    "update_state", "yardstick save"})


def add_message(state: State) -> State:
    state["conversation_history"].append({"role": "user", "content": "Is it still available?"})
    return state


def timed(timings: Timings, name: str, call: Callable[[], Any]) -> None:
    started = time.perf_counter_ns()
    call()
    timings[name].append(time.perf_counter_ns() - started)


async def atimed(timings: Timings, name: str, call: Callable[[], Awaitable[Any]]) -> None:
    started = time.perf_counter_ns()
    await call()
    timings[name].append(time.perf_counter_ns() - started)


def run_sync(url: str, ids: list[str], states: list[State], rounds: int) -> Timings:
    timings: Timings = defaultdict(list)
    client = redis.Redis.from_url(url)
    with SyncBuyerConversationMemory.from_url(url) as memory:
        order = list(range(len(ids)))
        for _ in range(rounds):
            random.Random(len(timings)).shuffle(order)
            for index in order:
                contact_id, state = ids[index], states[index]
                key = memory.key_for(contact_id)

                def old_save(contact_id: str = contact_id, state: State = state) -> None:
                    client.execute_command(*memory.encode_save(contact_id, state))

                def old_load(key: str = key) -> None:
                    raw = client.get(key)
                    memory.run_strict(memory._decode_steps(key, raw))  # the same decoding

                timed(timings, "SET (before)", old_save)
                timed(timings, "save_state", lambda c=contact_id, s=state: memory.save_state(c, s))
                revision = memory.load_state(contact_id)["state_revision"]  # type: ignore[index]
                timed(timings, "save_state(expected_revision)",
                      lambda c=contact_id, s=state, r=revision: memory.save_state(
                          c, s, expected_revision=r))
                timed(timings, "update_state", lambda c=contact_id: memory.update_state(
                    c, add_message))
                timed(timings, "GET (before)", old_load)
                timed(timings, "load_state", lambda c=contact_id: memory.load_state(c))
                timed(timings, "yardstick save",
                      lambda c=contact_id, s=state: yardstick.save_state(client, f"y-{c}", s))
                timed(timings, "yardstick load",
                      lambda c=contact_id: yardstick.load_state(client, f"y-{c}"))
    client.close()
    return timings


async def run_async(url: str, ids: list[str], states: list[State], rounds: int) -> Timings:
    timings: Timings = defaultdict(list)
    client = redis.asyncio.Redis.from_url(url)
    async with BuyerConversationMemory.from_url(url) as memory:
        sync = SyncBuyerConversationMemory.from_url(url)  # encoding only, no I/O
        order = list(range(len(ids)))
        for round_number in range(rounds):
            random.Random(round_number).shuffle(order)
            for index in order:
                contact_id, state = ids[index], states[index]
                key = memory.key_for(contact_id)

                async def old_save(contact_id: str = contact_id, state: State = state) -> None:
                    await client.execute_command(*sync.encode_save(contact_id, state))

                async def old_load(key: str = key) -> None:
                    raw = await client.get(key)
                    sync.run_strict(sync._decode_steps(key, raw))

                await atimed(timings, "SET (before)", old_save)
                await atimed(timings, "save_state",
                             lambda c=contact_id, s=state: memory.save_state(c, s))
                loaded = await memory.load_state(contact_id)
                revision = loaded["state_revision"] if loaded else 0
                await atimed(timings, "save_state(expected_revision)",
                             lambda c=contact_id, s=state, r=revision: memory.save_state(
                                 c, s, expected_revision=r))
                await atimed(timings, "update_state",
                             lambda c=contact_id: memory.update_state(c, add_message))
                await atimed(timings, "GET (before)", old_load)
                await atimed(timings, "load_state", lambda c=contact_id: memory.load_state(c))
                await atimed(timings, "yardstick save", lambda c=contact_id, s=state:
                             yardstick.save_state_async(client, f"y-{c}", s))
                await atimed(timings, "yardstick load", lambda c=contact_id:
                             yardstick.load_state_async(client, f"y-{c}"))
        sync.close()
    await client.aclose()
    return timings


def report(title: str, timings: Timings) -> None:
    p50 = {name: statistics.median(values) / 1000 for name, values in timings.items()}
    print(f"\n{title} (p50 in microseconds, {len(next(iter(timings.values())))} calls each)")
    print(f"{'operation':34} {'p50':>8} {'x before':>9} {'x yardstick':>12}")
    for name, value in p50.items():
        writes = name in WRITES
        before = p50["SET (before)" if writes else "GET (before)"]
        yard = p50["yardstick save" if writes else "yardstick load"]
        print(f"{name:34} {value:8.0f} {value / before:9.2f} {value / yard:12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--corpus", choices=("generated", "public"), default="generated")
    args = parser.parse_args()
    states, training = measured_and_training(args.corpus, args.buyers, 500)
    ids = [f"bench-{i:07d}" for i in range(len(states))]
    server = start_private_server()
    try:
        client = redis.Redis.from_url(server.url)
        trained = train_dictionary([training_sample(s) for s in training])
        client.set(dictionary_key("buyer_conversation_memory", trained.dict_id()),
                   trained.as_bytes())
        client.set(current_dictionary_key("buyer_conversation_memory"), str(trained.dict_id()))
        client.close()
        print(f"{args.buyers} buyers, {args.corpus} corpus, default settings with a trained "
              f"dictionary, redis-server on loopback, calls interleaved per buyer")
        report("sync", run_sync(server.url, ids, states, args.rounds))
        report("async", asyncio.run(run_async(server.url, ids, states, args.rounds)))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
