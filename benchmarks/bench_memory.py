"""Side-by-side: memory_core against the yardstick, on a private redis-server.

Measures, in one run and one process: Redis memory per buyer (``used_memory`` delta /
buyers, each design alone in a flushed server), save and load p50/p99 (sync and async),
a bare GET of the same keys (the round-trip floor), and the overview (yardstick: fetch
and decode every record; memory_core: the header-only inventory scan).

Every design uses the production key prefix (``buyer_conversation_memory:``), each in its
own Redis database, so key names cost all of them the same memory.

Loopback latency on a shared VM drifts between modes within seconds, so timings are
taken interleaved: for each sampled buyer, every design's call and its bare GET run back
to back, and each design is compared with the bare GET of its own keys.

    python benchmarks/bench_memory.py --buyers 10000 --corpus generated
    python benchmarks/bench_memory.py --buyers 10000 --corpus public
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
import redis.asyncio
import yardstick
from corpus import measured_and_training

from memory_core import BuyerConversationMemory, MemoryConfig, SyncBuyerConversationMemory
from memory_core.dictionaries import (
    current_dictionary_key,
    dictionary_key,
    train_dictionary,
    training_sample,
)
from memory_core.inventory import scan_summaries
from memory_core.state import dump_json
from memory_core.testing import start_private_server

State = dict[str, Any]


@dataclass
class Design:
    """One storage design under test, with sync and async entry points."""

    name: str
    url: str  # its own database, so all designs can use the same key names
    prefix: str
    save: Callable[[str, State], Any]
    load: Callable[[str], Any]
    asave: Callable[[str, State], Awaitable[Any]]
    aload: Callable[[str], Awaitable[Any]]
    overview: Callable[[], Any]
    setup: Callable[[], None] = lambda: None
    bytes_per_buyer: float = 0.0
    overview_s: float = 0.0
    us: dict[str, list[float]] = field(default_factory=dict)

    def p(self, op: str, q: float = 0.5) -> float:
        values = sorted(self.us.get(op, []))
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    def record(self, op: str, started_ns: int) -> None:
        self.us.setdefault(op, []).append((time.perf_counter_ns() - started_ns) / 1000)


def database(url: str, number: int) -> str:
    """The same server's database ``number`` (the URL ends in ``/<db>``)."""
    return f"{url.rsplit('/', 1)[0]}/{number}"


def yardstick_design(url: str) -> Design:
    client = redis.Redis.from_url(url)
    aclient = redis.asyncio.Redis.from_url(url)
    return Design(
        "yardstick (pickle + hex gzip)", url, yardstick.PREFIX,
        lambda c, s: yardstick.save_state(client, c, s),
        lambda c: yardstick.load_state(client, c),
        lambda c, s: yardstick.save_state_async(aclient, c, s),
        lambda c: yardstick.load_state_async(aclient, c),
        lambda: yardstick.overview(client))


def memory_core_design(name: str, url: str, config: MemoryConfig,
                       training: list[State] | None) -> Design:
    sync = SyncBuyerConversationMemory.from_url(url, config)
    amemory = BuyerConversationMemory.from_url(url, config)

    def setup() -> None:
        if training is None:
            return
        # as train-dictionary does: PII replaced, in the layout saves compress
        trained = train_dictionary([training_sample(s, pack=config.packs_payloads)
                                    for s in training])
        sync.client.set(dictionary_key(config.cache_key_prefix, trained.dict_id()),
                        trained.as_bytes())
        sync.client.set(current_dictionary_key(config.cache_key_prefix), str(trained.dict_id()))

    return Design(name, url, config.cache_key_prefix, sync.save_state, sync.load_state,
                  amemory.save_state, amemory.load_state, lambda: scan_summaries(sync), setup)


def measure_memory(url: str, design: Design, ids: list[str], states: list[State]) -> None:
    """Redis memory per buyer with only this design's records in the server."""
    client = redis.Redis.from_url(url)
    client.flushall()
    design.setup()
    before = int(client.info("memory")["used_memory"])
    for contact_id, state in zip(ids, states, strict=True):
        design.save(contact_id, state)
    design.bytes_per_buyer = (int(client.info("memory")["used_memory"]) - before) / len(ids)
    started = time.perf_counter()
    design.overview()
    design.overview_s = time.perf_counter() - started
    client.close()


def measure_latency(url: str, designs: list[Design], ids: list[str], states: list[State],
                    samples: int) -> None:
    """All designs' records side by side (own databases), calls interleaved per buyer."""
    client = redis.Redis.from_url(url)
    client.flushall()
    for design in designs:
        design.setup()
    bare = {design.name: redis.Redis.from_url(design.url) for design in designs}
    picks = random.Random(7).sample(range(len(ids)), samples)
    for index in picks:  # saves, interleaved
        for design in designs:
            started = time.perf_counter_ns()
            design.save(ids[index], states[index])
            design.record("save", started)
    for index in picks:  # loads and their floor, interleaved
        for design in designs:
            key = f"{design.prefix}:{ids[index]}"
            started = time.perf_counter_ns()
            design.load(ids[index])
            design.record("load", started)
            started = time.perf_counter_ns()
            bare[design.name].get(key)
            design.record("get", started)

    async def async_part() -> None:
        abare = {design.name: redis.asyncio.Redis.from_url(design.url) for design in designs}
        for index in picks:
            for design in designs:
                key = f"{design.prefix}:{ids[index]}"
                started = time.perf_counter_ns()
                await design.aload(ids[index])
                design.record("aload", started)
                started = time.perf_counter_ns()
                await abare[design.name].get(key)
                design.record("aget", started)
                started = time.perf_counter_ns()
                await design.asave(ids[index], states[index])
                design.record("asave", started)
        for aclient in abare.values():
            await aclient.aclose()

    asyncio.run(async_part())
    for each in bare.values():
        each.close()
    client.close()


def print_table(designs: list[Design], buyers: int, corpus: str, mean_json: float) -> None:
    base = designs[0]
    print(f"\nmachine: {platform.node()} {platform.machine()}, {platform.system()}, Python "
          f"{platform.python_version()}, redis-py {redis.__version__}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"corpus: {corpus}, {buyers:,} buyers, mean state JSON {mean_json:,.0f} B")
    columns = ("design", "B/buyer", "x yard", "save p50", "x yard", "load p50", "p99",
               "x yard", "x GET", "asave p50", "x yard", "aload p50", "x yard", "x aGET",
               "overview s")
    widths = (34, 8, 7, 9, 7, 9, 7, 7, 6, 10, 7, 10, 7, 7, 11)
    header = " ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in
                      enumerate(zip(columns, widths, strict=True)))
    print(header)
    print("-" * len(header))
    for d in designs:
        values = (d.bytes_per_buyer, d.bytes_per_buyer / base.bytes_per_buyer,
                  d.p("save"), d.p("save") / base.p("save"), d.p("load"), d.p("load", 0.99),
                  d.p("load") / base.p("load"), d.p("load") / d.p("get"), d.p("asave"),
                  d.p("asave") / base.p("asave"), d.p("aload"), d.p("aload") / base.p("aload"),
                  d.p("aload") / d.p("aget"), d.overview_s)
        formats = (".0f", ".2f", ".1f", ".2f", ".1f", ".1f", ".2f", ".2f", ".1f", ".2f", ".1f",
                   ".2f", ".2f", ".2f")
        cells = [f"{v:>{w}{f}}" for v, w, f in zip(values, widths[1:], formats, strict=True)]
        print(f"{d.name:<34} " + " ".join(cells))
    print(f"times in microseconds. 'x yard': ratio to the yardstick. 'x GET' / 'x aGET': load "
          f"p50 / p50 of a bare GET of the same keys, interleaved (sync / asyncio). Bare GET "
          f"p50 this run: sync {base.p('get'):.0f} us, asyncio {base.p('aget'):.0f} us.")


def write_json(path: Path, designs: list[Design], corpus: str, buyers: int,
               mean_json: float) -> None:
    rows = [{"design": d.name, "bytes_per_buyer": d.bytes_per_buyer, "overview_s": d.overview_s,
             **{f"{op}_p50_us": d.p(op) for op in ("save", "load", "get", "asave", "aload",
                                                    "aget")},
             **{f"{op}_p99_us": d.p(op, 0.99) for op in ("save", "load")}} for d in designs]
    path.write_text(json.dumps({"corpus": corpus, "buyers": buyers, "mean_json_bytes": mean_json,
                                "date": f"{datetime.now(UTC):%Y-%m-%d}",
                                "machine": f"{platform.machine()} {platform.system()}",
                                "results": rows}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=2000, help="timed calls per operation")
    parser.add_argument("--corpus", choices=("generated", "public"), default="generated")
    parser.add_argument("--threshold", type=int, default=None,
                        help="compress_threshold_bytes for the memory_core designs")
    parser.add_argument("--layout", choices=("packed", "json"), default=None,
                        help="payload_layout for the memory_core designs (default: packed)")
    parser.add_argument("--level", type=int, default=None,
                        help="zstd_level for the memory_core designs (default: 3)")
    parser.add_argument("--json-out", type=Path, default=None,
                        help="also write the results as JSON (for benchmarks/plot.py)")
    args = parser.parse_args()
    states, training = measured_and_training(args.corpus, args.buyers, 2000)
    ids = [f"bench-{i:07d}" for i in range(len(states))]
    mean_json = statistics.mean(len(dump_json(s)) for s in states)
    server = start_private_server()
    try:
        url = server.url
        config = MemoryConfig()
        if args.threshold is not None:
            config = config.replace(compress_threshold_bytes=args.threshold)
        if args.layout is not None:
            config = config.replace(payload_layout=args.layout)
        if args.level is not None:
            config = config.replace(zstd_level=args.level)
        designs = [
            yardstick_design(database(url, 0)),
            memory_core_design("memory_core zstd, no dictionary", database(url, 1),
                               config.replace(use_dictionary=False), None),
            memory_core_design("memory_core zstd + dictionary", database(url, 2), config,
                               training),
        ]
        for design in designs:
            measure_memory(url, design, ids, states)
        measure_latency(url, designs, ids, states, min(args.samples, len(ids)))
        print_table(designs, args.buyers, args.corpus, mean_json)
        if args.json_out is not None:
            write_json(args.json_out, designs, args.corpus, args.buyers, mean_json)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
