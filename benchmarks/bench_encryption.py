"""What encryption at rest and the phone/email lookup cost: time per call and Redis memory.

Three configurations of the same store, on one private redis-server, the same states
and the same trained dictionary (stored encrypted where keys are set):

- ``clear``: no keys (what the other benchmarks measure);
- ``encrypted``: ``MEMORY_CORE_ENCRYPTION_KEYS`` set (AES-256-GCM after compression);
- ``encrypted + lookup``: the same, and the phone/email lookup kept up on every save.

For each: ``save_state`` and ``load_state`` p50 (sync and async, interleaved per buyer),
and Redis ``used_memory`` per buyer after saving them all. The yardstick (the design this
project replaces) is run in the same process for the ratios. Prints; asserts nothing.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
import yardstick
from corpus import generated_states, public_dialog_states

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


def measure_sync(url: str, config: MemoryConfig, ids: list[str], states: list[State],
                 training: list[State]) -> dict[str, float]:
    client = redis.Redis.from_url(url)
    client.flushall()
    with SyncBuyerConversationMemory.from_url(url, config) as memory:
        store_dictionary(memory, train_dictionary([training_sample(s) for s in training]))
        before = used_memory(client)
        saves = [timed(lambda c=c, s=s: memory.save_state(c, s))
                 for c, s in zip(ids, states, strict=True)]
        per_buyer = (used_memory(client) - before) / len(ids)
        loads = [timed(lambda c=c: memory.load_state(c)) for c in ids]
    yard_saves = [timed(lambda c=c, s=s: yardstick.save_state(client, f"y-{c}", s))
                  for c, s in zip(ids, states, strict=True)]
    yard_loads = [timed(lambda c=c: yardstick.load_state(client, f"y-{c}")) for c in ids]
    client.close()
    return {"save": p50_us(saves), "load": p50_us(loads), "bytes": per_buyer,
            "yard save": p50_us(yard_saves), "yard load": p50_us(yard_loads)}


async def measure_async(url: str, config: MemoryConfig, ids: list[str],
                        states: list[State]) -> dict[str, float]:
    saves, loads = [], []
    async with BuyerConversationMemory.from_url(url, config) as memory:
        for contact_id, state in zip(ids, states, strict=True):
            started = time.perf_counter_ns()
            await memory.save_state(contact_id, state)
            saves.append(time.perf_counter_ns() - started)
            started = time.perf_counter_ns()
            await memory.load_state(contact_id)
            loads.append(time.perf_counter_ns() - started)
    return {"save": p50_us(saves), "load": p50_us(loads)}


def yardstick_bytes(url: str, ids: list[str], states: list[State]) -> float:
    client = redis.Redis.from_url(url)
    client.flushall()
    before = used_memory(client)
    for contact_id, state in zip(ids, states, strict=True):
        yardstick.save_state(client, contact_id, state)
    per_buyer = (used_memory(client) - before) / len(ids)
    client.close()
    return per_buyer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--corpus", choices=("generated", "public"), default="generated")
    args = parser.parse_args()
    if args.corpus == "generated":
        states, training = generated_states(args.buyers, seed=11), generated_states(500, seed=99)
    else:
        states = public_dialog_states(args.buyers, seed=11, half=1)
        training = public_dialog_states(500, seed=99, half=0)
    ids = [f"bench-{i:07d}" for i in range(len(states))]
    server = start_private_server()
    try:
        yard_bytes = yardstick_bytes(server.url, ids, states)
        print(f"{args.buyers} buyers, {args.corpus} corpus, default settings with a trained "
              "dictionary, redis-server on loopback")
        print(f"{'configuration':20} {'save p50':>9} {'x yard':>7} {'load p50':>9} "
              f"{'x yard':>7} {'async save':>11} {'async load':>11} {'B/buyer':>8} "
              f"{'x yard':>7}")
        for name, config in configurations().items():
            sync = measure_sync(server.url, config, ids, states, training)
            asynchronous = asyncio.run(measure_async(server.url, config, ids, states))
            print(f"{name:20} {sync['save']:9.0f} {sync['save'] / sync['yard save']:7.2f} "
                  f"{sync['load']:9.0f} {sync['load'] / sync['yard load']:7.2f} "
                  f"{asynchronous['save']:11.0f} {asynchronous['load']:11.0f} "
                  f"{sync['bytes']:8.0f} {sync['bytes'] / yard_bytes:7.2f}")
        print("(p50 in microseconds; 'x yard' is the ratio to the yardstick in the same run)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
