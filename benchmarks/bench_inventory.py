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
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


_OVERVIEW_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from memory_core import SyncBuyerConversationMemory
from memory_core.breakdown import scan_overview
memory = SyncBuyerConversationMemory.from_url({url!r})
scan = scan_overview(memory)
if {snapshot}:  # keep the aggregate, as a dashboard's scan does
    from memory_core.snapshot import keep_snapshot
    keep_snapshot(memory, scan.snapshot())
print(json.dumps({{"seconds": scan.seconds, "rows": scan.report["total"],
                  "cells": len(scan.breakdown.cells),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


_REPORT_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from memory_core import SyncBuyerConversationMemory
from memory_core.report import scan_report
memory = SyncBuyerConversationMemory.from_url({url!r})
started = time.perf_counter()
report, problems = scan_report(memory, batch_size={batch})
print(json.dumps({{"seconds": time.perf_counter() - started, "rows": report["total"],
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def encoded_pool(memory: SyncBuyerConversationMemory, count: int = POOL
                 ) -> tuple[list[dict[str, Any]], list[tuple[bytes, int]]]:
    """``count`` distinct realistic states and each one's stored record and TTL, encoded
    once with the memory's encoder (written under many keys by :func:`write_buyers`)."""
    states = generated_states(count, seed=5)
    records = []
    for i, state in enumerate(states):
        _, _, record, _, ttl = memory.encode_save(f"pool-{i}", state, now=datetime.now(UTC))
        records.append((record, ttl))
    return states, records


def write_buyers(pipeline_for: Callable[[bytes], Any], pipelines: Callable[[], Iterable[Any]],
                 prefix: str, buyers: int, records: list[tuple[bytes, int]],
                 yard_states: list[dict[str, Any]] | None = None,
                 flush_every: int = 5000) -> None:
    """SET ``buyers`` keys ``<prefix>:contact-NNNNNNNN`` from the pool of records, TTLs
    spread over 29 days, through ``pipeline_for(key)`` (one pipeline, or one per cluster
    node); every ``flush_every`` keys each of ``pipelines()`` is executed. With
    ``yard_states`` the yardstick's record of each buyer is written too (``yard:``)."""
    rng = random.Random(3)
    size = len(records)
    for index in range(buyers):
        record, ttl = records[index % size]
        key = f"{prefix}:contact-{index:08d}".encode()
        pipeline_for(key).set(key, record, ex=ttl - rng.randrange(0, 29 * 86_400))
        if yard_states is not None:
            yard_key = f"yard:contact-{index:08d}".encode()
            pipeline_for(yard_key).set(yard_key, yardstick.encode(yard_states[index % size]))
        if index % flush_every == flush_every - 1:
            for pipe in pipelines():
                pipe.execute()
    for pipe in pipelines():
        pipe.execute()


def fill(url: str, buyers: int, with_yardstick: bool) -> None:
    """Empty a single redis-server and write ``buyers`` buyer records into it."""
    memory = SyncBuyerConversationMemory.from_url(url, MemoryConfig(use_dictionary=False))
    client = redis.Redis.from_url(url)
    client.flushall()
    states, records = encoded_pool(memory)
    pipe = client.pipeline(transaction=False)
    write_buyers(lambda key: pipe, lambda: (pipe,), memory.prefix, buyers, records,
                 states if with_yardstick else None)
    memory.close()
    client.close()


def scan_in_child(url: str, batch: int) -> dict[str, float]:
    """Scan into a table (a row per key) and summarise it, in a fresh process."""
    code = _SCAN_CHILD.format(root=str(ROOT), url=url, batch=batch)
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def overview_in_child(url: str, snapshot: bool = False) -> dict[str, float]:
    """The dashboard's exact overview scan (folded per filter cell, no row per buyer) in
    a fresh process; ``snapshot``: also store its snapshot (``<prefix>.snapshot``), as a
    dashboard does."""
    code = _OVERVIEW_CHILD.format(root=str(ROOT), url=url, snapshot=snapshot)
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def report_in_child(url: str, batch: int) -> dict[str, float]:
    """The CLI's inventory (the report folded while the scan streams) in a fresh process."""
    code = _REPORT_CHILD.format(root=str(ROOT), url=url, batch=batch)
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
