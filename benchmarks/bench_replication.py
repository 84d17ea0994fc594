"""What a save that waits for its replica costs: ``save_state`` p50/p99 with
``wait_replicas=0`` (the default: asynchronous replication) and ``wait_replicas=1``.

A private primary and replica on loopback (``start_primary_with_replica``), one buyer
state of the seeded kind per save, sync and asyncio, sequential saves. Loopback is the
best case: across hosts or zones each waiting save also pays the round trip to the
replica. This prints numbers; it asserts nothing.

    python benchmarks/bench_replication.py [--saves 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory_core import BuyerConversationMemory, SyncBuyerConversationMemory
from memory_core.seeding import generate_state
from memory_core.testing import start_primary_with_replica


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:6.3f} ms   p99 {p99 * 1000:6.3f} ms"


def sync_saves(url: str, states: list[dict], wait: int) -> tuple[list[float], int]:
    timings, confirmed = [], 0
    with SyncBuyerConversationMemory.from_url(url) as memory:
        for n, state in enumerate(states):
            started = time.perf_counter()
            confirmed += memory.save_state(f"bench-{n}", state, wait_replicas=wait)
            timings.append(time.perf_counter() - started)
    return timings, confirmed


async def async_saves(url: str, states: list[dict], wait: int) -> tuple[list[float], int]:
    timings, confirmed = [], 0
    async with BuyerConversationMemory.from_url(url) as memory:
        for n, state in enumerate(states):
            started = time.perf_counter()
            confirmed += await memory.save_state(f"bench-{n}", state, wait_replicas=wait)
            timings.append(time.perf_counter() - started)
    return timings, confirmed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(7)
    states = [generate_state(rng) for _ in range(args.saves)]
    primary, replica = start_primary_with_replica()
    try:
        for wait in (0, 1):
            for name, run in (("sync", lambda w=wait: sync_saves(primary.url, states, w)),
                              ("asyncio", lambda w=wait: asyncio.run(
                                  async_saves(primary.url, states, w)))):
                run()  # warm-up: connections, script cache, dictionary lookups
                timings, confirmed = run()
                print(f"wait_replicas={wait} {name:7} {percentiles(timings)}   "
                      f"confirmed {confirmed:,}/{len(timings):,}", flush=True)
    finally:
        replica.stop()
        primary.stop()


if __name__ == "__main__":
    main()
