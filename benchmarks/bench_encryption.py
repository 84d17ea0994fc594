"""What encryption at rest and the phone/email lookup cost: time per call and Redis memory.

Three configurations of the same store, on one private redis-server, the same states
and the same trained dictionary (stored encrypted where keys are set):

- ``clear``: no keys (what the other benchmarks measure);
- ``encrypted``: ``MEMORY_CORE_ENCRYPTION_KEYS`` set (AES-256-GCM after compression);
- ``encrypted + lookup``: the same, and the phone/email lookup kept up on every save.

For each: Redis ``used_memory`` per buyer after saving them all (one at a time on an
empty server), then ``save_state`` and ``load_state`` p50, sync and async, every
configuration on its own database and the yardstick (the design this project replaces)
interleaved per buyer, for the ratios. Prints; asserts nothing.

    python benchmarks/bench_encryption.py --buyers 2000 --corpus public
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import time
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
from memory_core.admin import store_dictionary
from memory_core.config import MemoryConfig, load_config
from memory_core.crypto import KEYS_ENV, LOOKUP_KEY_ENV
from memory_core.dictionaries import train_dictionary, training_sample
from memory_core.testing import start_private_server

State = dict[str, Any]


def configurations() -> dict[str, MemoryConfig]:
    key = "bench:" + base64.b64encode(os.urandom(32)).decode()
    encrypted = load_config(env={KEYS_ENV: key})
    return {
        "clear": load_config(env={}),
        # a lookup secret of its own, not derived: the lookup stays off without it
        "encrypted": encrypted.replace(lookup_secret=None),
        "encrypted + lookup": load_config(env={
            KEYS_ENV: key, LOOKUP_KEY_ENV: base64.b64encode(os.urandom(32)).decode()}),
    }


def p50_us(values: list[int]) -> float:
    return statistics.median(values) / 1000


def timed(call: Callable[[], Any]) -> int:
    started = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - started


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def bytes_per_buyer(url: str, config: MemoryConfig | None, ids: list[str],
                    states: list[State], training: list[State]) -> float:
    """Redis used_memory per buyer after saving them all (None: the yardstick)."""
    client = redis.Redis.from_url(url)
    client.flushall()
    if config is None:
        before = used_memory(client)
        for contact_id, state in zip(ids, states, strict=True):
            yardstick.save_state(client, contact_id, state)
    else:
        with SyncBuyerConversationMemory.from_url(url, config) as memory:
            store_dictionary(memory, train_dictionary([training_sample(s) for s in training]))
            before = used_memory(client)
            for contact_id, state in zip(ids, states, strict=True):
                memory.save_state(contact_id, state)
    per_buyer = (used_memory(client) - before) / len(ids)
    client.close()
    return per_buyer


def database_url(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


def timings_sync(url: str, configs: dict[str, MemoryConfig], ids: list[str],
                 states: list[State], training: list[State]) -> dict[str, list[int]]:
    """save/load of every configuration and the yardstick, interleaved per buyer."""
    client = redis.Redis.from_url(url)
    client.flushall()
    memories = {}
    for db, (name, config) in enumerate(configs.items(), start=1):
        memory = SyncBuyerConversationMemory.from_url(database_url(url, db), config)
        store_dictionary(memory, train_dictionary([training_sample(s) for s in training]))
        memories[name] = memory
    times: dict[str, list[int]] = {}
    for contact_id, state in zip(ids, states, strict=True):
        for name, memory in memories.items():
            times.setdefault(f"{name} save", []).append(
                timed(lambda m=memory, c=contact_id, s=state: m.save_state(c, s)))
            times.setdefault(f"{name} load", []).append(
                timed(lambda m=memory, c=contact_id: m.load_state(c)))
        times.setdefault("yardstick save", []).append(
            timed(lambda c=contact_id, s=state: yardstick.save_state(client, c, s)))
        times.setdefault("yardstick load", []).append(
            timed(lambda c=contact_id: yardstick.load_state(client, c)))
    for memory in memories.values():
        memory.close()
    client.close()
    return times


async def timings_async(url: str, configs: dict[str, MemoryConfig], ids: list[str],
                        states: list[State]) -> dict[str, list[int]]:
    client = redis.asyncio.Redis.from_url(url)
    memories = {name: BuyerConversationMemory.from_url(database_url(url, db), config)
                for db, (name, config) in enumerate(configs.items(), start=1)}
    times: dict[str, list[int]] = {}

    async def run(name: str, call: Callable[[], Awaitable[Any]]) -> None:
        started = time.perf_counter_ns()
        await call()
        times.setdefault(name, []).append(time.perf_counter_ns() - started)

    for contact_id, state in zip(ids, states, strict=True):
        for name, memory in memories.items():
            await run(f"{name} save", lambda m=memory, c=contact_id, s=state: m.save_state(c, s))
            await run(f"{name} load", lambda m=memory, c=contact_id: m.load_state(c))
        await run("yardstick save",
                  lambda c=contact_id, s=state: yardstick.save_state_async(client, c, s))
        await run("yardstick load", lambda c=contact_id: yardstick.load_state_async(client, c))
    for memory in memories.values():
        await memory.aclose()
    await client.aclose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--corpus", choices=("generated", "public"), default="generated")
    args = parser.parse_args()
    states, training = measured_and_training(args.corpus, args.buyers, 500)
    ids = [f"bench-{i:07d}" for i in range(len(states))]
    server = start_private_server()
    try:
        configs = configurations()
        yard_bytes = bytes_per_buyer(server.url, None, ids, states, training)
        sizes = {name: bytes_per_buyer(server.url, config, ids, states, training)
                 for name, config in configs.items()}
        sync = timings_sync(server.url, configs, ids, states, training)
        asynchronous = asyncio.run(timings_async(server.url, configs, ids, states))
        print(f"{args.buyers} buyers, {args.corpus} corpus, default settings with a trained "
              "dictionary, redis-server on loopback, calls interleaved per buyer")
        print(f"{'configuration':20} {'B/buyer':>8} {'x yard':>7} {'save p50':>9} "
              f"{'x yard':>7} {'load p50':>9} {'x yard':>7} {'async save':>11} {'x yard':>7} "
              f"{'async load':>11} {'x yard':>7}")
        for name in configs:
            cells = [f"{sizes[name]:8.0f}", f"{sizes[name] / yard_bytes:7.2f}"]
            for times in (sync, asynchronous):
                for operation in ("save", "load"):
                    value = p50_us(times[f"{name} {operation}"])
                    cells += [f"{value:9.0f}" if times is sync else f"{value:11.0f}",
                              f"{value / p50_us(times[f'yardstick {operation}']):7.2f}"]
            print(f"{name:20} " + " ".join(cells))
        print(f"{'yardstick':20} {yard_bytes:8.0f} {1:7.2f} "
              + " ".join(f"{p50_us(t[f'yardstick {o}']):9.0f} {1:7.2f}"
                         for t in (sync, asynchronous) for o in ("save", "load")))
        print("(p50 in microseconds; 'x yard' is the ratio to the yardstick in the same run)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
