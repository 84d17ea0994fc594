"""How long the overview's inventory takes, and how much memory the scanning process needs.

Fills a private redis-server with N buyer records, then, in a fresh subprocess (so its
RSS is the scan's own), runs :func:`memory_core.inventory.scan_summaries` plus the
summary the dashboard charts from, and prints seconds and peak RSS. For comparison the
yardstick's overview (fetch and decode every record) is timed up to 100k buyers.

Records are encoded from a pool of distinct realistic states and written under N keys:
the scan reads only headers and TTLs, so its cost depends on the key count, not on
whether payloads repeat.

    python benchmarks/bench_inventory.py --buyers 10000 100000 1000000
    python benchmarks/bench_inventory.py --buyers 100000 --batch-sizes 250 1000 4000
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
import yardstick
from corpus import generated_states

from memory_core import MemoryConfig, SyncBuyerConversationMemory
from memory_core.testing import start_private_server

POOL = 3000
_SCAN_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from memory_core import SyncBuyerConversationMemory
from memory_core.inventory import scan_summaries, summarize_inventory
memory = SyncBuyerConversationMemory.from_url({url!r})
started = time.perf_counter()
frame = scan_summaries(memory, batch_size={batch})
report = summarize_inventory(frame)
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": seconds, "rows": len(frame),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "frame_mb": frame.memory_usage(deep=True).sum() / 2**20}}))
"""


def fill(url: str, buyers: int, with_yardstick: bool) -> None:
    memory = SyncBuyerConversationMemory.from_url(url, MemoryConfig(use_dictionary=False))
    client = redis.Redis.from_url(url)
    client.flushall()
    states = generated_states(POOL, seed=5)
    records = [memory.encode_save(f"pool-{i}", s, now=datetime.now(UTC))
               for i, s in enumerate(states)]
    rng = random.Random(3)
    pipe = client.pipeline(transaction=False)
    for index in range(buyers):
        _, _, record, _, ttl = records[index % POOL]
        pipe.set(f"{memory.prefix}:contact-{index:08d}", record,
                 ex=ttl - rng.randrange(0, 29 * 86_400))
        if with_yardstick:
            pipe.set(f"yard:contact-{index:08d}", yardstick.encode(states[index % POOL]))
        if index % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    memory.close()
    client.close()


def scan_in_child(url: str, batch: int) -> dict[str, float]:
    code = _SCAN_CHILD.format(root=str(ROOT), url=url, batch=batch)
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def yardstick_overview_seconds(url: str) -> float:
    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    counts: dict[str, int] = {}
    for keys in yardstick._batches(client.scan_iter(match="yard:*", count=1000), 1000):
        for raw in client.mget(keys):
            state = yardstick.decode(raw)
            label = str(state.get("buyer_temperature"))
            counts[label] = counts.get(label, 0) + 1
    client.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--yardstick-up-to", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, Python "
          f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{'buyers':>9} {'batch':>6} {'scan+summary s':>15} {'rows':>9} {'peak RSS MB':>12} "
          f"{'table MB':>9} {'yardstick overview s':>21}")
    server = start_private_server()
    try:
        for buyers in args.buyers:
            with_yardstick = buyers <= args.yardstick_up_to
            fill(server.url, buyers, with_yardstick)
            yard = f"{yardstick_overview_seconds(server.url):21.2f}" if with_yardstick else (
                f"{'(not run)':>21}")
            for batch in args.batch_sizes:
                result = scan_in_child(server.url, batch)
                print(f"{buyers:>9,} {batch:>6} {result['seconds']:>15.2f} "
                      f"{int(result['rows']):>9,} {result['maxrss_mb']:>12.0f} "
                      f"{result['frame_mb']:>9.1f} {yard}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
