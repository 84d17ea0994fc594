"""Sizing at scale: inventory, Redis memory per buyer and save/load throughput, standalone
and on a 3-primary/3-replica Redis Cluster.

Every server is private (:func:`memory_core.testing.start_private_server` and
:func:`~memory_core.testing.start_private_cluster`, free loopback ports, no disk), and is
stopped on the way out, errors included.

- inventory: the store is filled with N buyers (records encoded once from a pool of
  realistic states, written under N keys, as :func:`bench_inventory.fill` does; on a
  cluster with one pipeline per primary), then a fresh subprocess runs
  ``scan_summaries`` + ``summarize_inventory`` and reports seconds and its own peak RSS
  (the dashboard's exact scan, a row per buyer), and another runs ``scan_report`` (the
  CLI's inventory, folded while the scan streams).
- memory: ``INFO memory`` ``used_memory`` after the fill minus before, per buyer; on a
  cluster summed over the primaries, and separately over the replicas (each holds a copy).
- throughput: 1, 4, 8 client processes, each with its own
  ``SyncBuyerConversationMemory.from_url``, doing load then save of random buyers of a
  store of ``--throughput-buyers`` for ``--seconds``; total ops/s and p50/p99 latency.

    python benchmarks/bench_scale.py --topology standalone --buyers 100000 1000000 3000000 \\
        --json docs/bench-scale.json
    python benchmarks/bench_scale.py --topology cluster --sections inventory \\
        --buyers 100000 1000000 3000000 --json docs/bench-scale.json
    python benchmarks/bench_scale.py --topology standalone cluster --sections throughput \\
        --processes 1 4 8 --json docs/bench-scale.json

``--json`` merges into the file, so separate runs (one topology, one section) add up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
from bench_inventory import (
    encoded_pool,
    fill,
    overview_in_child,
    report_in_child,
    scan_in_child,
    write_buyers,
)
from redis.crc import key_slot

from memory_core import MemoryConfig, SyncBuyerConversationMemory
from memory_core.testing import RedisClusterServer, start_private_cluster, start_private_server

Target = tuple[str, Any]  # (topology, server or cluster)


# servers ---------------------------------------------------------------------------------

@contextmanager
def private_target(topology: str) -> Iterator[Target]:
    """A private redis-server or 3+3 cluster, stopped on the way out whatever happens."""
    if topology == "standalone":
        server = start_private_server()
        try:
            yield topology, server
        finally:
            server.stop()
    else:
        cluster = start_private_cluster(primaries=3, replicas_per_primary=1)
        try:
            yield topology, cluster
        finally:
            cluster.stop()


def target_url(target: Target) -> str:
    return target[1].url


def _node_client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=60)


def _roles(cluster: RedisClusterServer) -> tuple[list[int], list[int]]:
    """Ports of the primaries and of the replicas, as the nodes say now."""
    primaries = {node.port for node in cluster.primaries()}
    return sorted(primaries), sorted(p for p in cluster.ports if p not in primaries)


def used_memory(ports: list[int]) -> int:
    total = 0
    for port in ports:
        client = _node_client(port)
        try:
            total += int(client.info("memory")["used_memory"])
        finally:
            client.close()
    return total


def wait_for_replicas(cluster: RedisClusterServer, timeout: float = 120) -> None:
    """Until every replica has applied all its primary's writes (offsets equal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        behind = False
        for port in _roles(cluster)[0]:
            client = _node_client(port)
            try:
                info = client.info("replication")
            finally:
                client.close()
            offset = int(info["master_repl_offset"])
            slaves = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            if any(int(s.get("offset", 0)) < offset for s in slaves):
                behind = True
        if not behind:
            return
        time.sleep(0.5)
    raise RuntimeError("replicas did not catch up")


def fill_cluster(cluster: RedisClusterServer, buyers: int) -> None:
    """Empty the cluster and write ``buyers`` records: one pipeline per primary, each key
    sent to the primary owning its slot (CLUSTER SLOTS), executed every 5,000 keys."""
    cluster.flushall()
    memory = SyncBuyerConversationMemory.from_url(cluster.url,
                                                  MemoryConfig(use_dictionary=False))
    _, records = encoded_pool(memory)
    prefix = memory.prefix
    memory.close()
    primaries = _roles(cluster)[0]
    clients = {port: _node_client(port) for port in primaries}
    owner: list[Any] = [None] * 16384
    try:
        any_client = clients[primaries[0]]
        pipes = {port: client.pipeline(transaction=False) for port, client in clients.items()}
        for start, end, master, *_ in any_client.execute_command("CLUSTER", "SLOTS"):
            port = int(master[1])
            for slot in range(int(start), int(end) + 1):
                owner[slot] = pipes[port]
        write_buyers(lambda key: owner[key_slot(key)], pipes.values, prefix, buyers, records)
    finally:
        for client in clients.values():
            client.close()


# inventory and memory --------------------------------------------------------------------

def measure_size(target: Target, buyers: int, batch: int) -> dict[str, Any]:
    """Fill with ``buyers``, then memory per buyer and a scan in a fresh subprocess."""
    topology, server = target
    result: dict[str, Any] = {"topology": topology, "buyers": buyers}
    started = time.perf_counter()
    if topology == "standalone":
        server.flushall()
        before = used_memory([server.port])
        fill(server.url, buyers, with_yardstick=False)
        result["fill_seconds"] = round(time.perf_counter() - started, 1)
        result["used_memory_bytes"] = used_memory([server.port]) - before
    else:
        server.flushall()
        primaries, replicas = _roles(server)
        wait_for_replicas(server)
        before, before_replicas = used_memory(primaries), used_memory(replicas)
        fill_cluster(server, buyers)
        result["fill_seconds"] = round(time.perf_counter() - started, 1)
        wait_for_replicas(server)
        result["used_memory_bytes"] = used_memory(primaries) - before
        result["replica_used_memory_bytes"] = used_memory(replicas) - before_replicas
        result["keys_per_primary"] = [int(_dbsize(port)) for port in primaries]
    result["bytes_per_buyer"] = round(result["used_memory_bytes"] / buyers, 1)
    if "replica_used_memory_bytes" in result:
        result["replica_bytes_per_buyer"] = round(result["replica_used_memory_bytes"] / buyers, 1)
    scan = scan_in_child(server.url, batch)
    result.update(scan_seconds=round(scan["seconds"], 2), rows=int(scan["rows"]),
                  peak_rss_mb=round(scan["maxrss_mb"]), table_mb=round(scan["frame_mb"], 1))
    streamed = report_in_child(server.url, batch)
    result.update(report_seconds=round(streamed["seconds"], 2),
                  report_peak_rss_mb=round(streamed["maxrss_mb"]))
    overview = overview_in_child(server.url)
    result.update(overview_seconds=round(overview["seconds"], 2),
                  overview_peak_rss_mb=round(overview["maxrss_mb"]),
                  overview_cells=int(overview["cells"]))
    for rows in (result["rows"], int(streamed["rows"]), int(overview["rows"])):
        if rows != buyers:
            raise RuntimeError(f"the scan found {rows:,} keys, not {buyers:,}")
    return result


def _dbsize(port: int) -> int:
    client = _node_client(port)
    try:
        return int(client.dbsize())
    finally:
        client.close()


def print_inventory_header() -> None:
    print(f"{'topology':>10} {'buyers':>10} {'fill s':>7} {'scan+summary s':>15} "
          f"{'peak RSS MB':>12} {'table MB':>9} {'CLI report s':>13} {'its RSS MB':>11} "
          f"{'overview s':>11} {'its RSS MB':>11} "
          f"{'used_memory MB':>15} {'B/buyer':>8} {'replicas B/buyer':>17}")


def print_inventory_row(row: dict[str, Any]) -> None:
    replicas = row.get("replica_bytes_per_buyer")
    print(f"{row['topology']:>10} {row['buyers']:>10,} {row['fill_seconds']:>7.1f} "
          f"{row['scan_seconds']:>15.2f} {row['peak_rss_mb']:>12,} {row['table_mb']:>9.1f} "
          f"{row.get('report_seconds', float('nan')):>13.2f} "
          f"{row.get('report_peak_rss_mb', 0):>11,} "
          f"{row.get('overview_seconds', float('nan')):>11.2f} "
          f"{row.get('overview_peak_rss_mb', 0):>11,} "
          f"{row['used_memory_bytes'] / 2**20:>15,.0f} {row['bytes_per_buyer']:>8,.0f} "
          f"{'-' if replicas is None else f'{replicas:,.0f}':>17}", flush=True)


# throughput ------------------------------------------------------------------------------

def worker(url: str, seconds: float, start_at: float, seed: int, buyers: int) -> None:
    """One client process: load then save random buyers until the time is up; prints
    its counts and every latency (microseconds) as JSON."""
    from corpus import generated_states

    memory = SyncBuyerConversationMemory.from_url(url)
    states = generated_states(200, seed=seed)
    rng = random.Random(seed)
    memory.load_state("contact-00000000")  # connect (and on a cluster: learn the slots)
    loads: list[int] = []
    saves: list[int] = []
    failures = 0
    time.sleep(max(0.0, start_at - time.time()))
    stop_at = time.perf_counter() + seconds
    clock = time.perf_counter_ns
    while time.perf_counter() < stop_at:
        contact_id = f"contact-{rng.randrange(buyers):08d}"
        began = clock()
        memory.load_state(contact_id)
        middle = clock()
        if not memory.save_state(contact_id, states[rng.randrange(len(states))]):
            failures += 1
        ended = clock()
        loads.append((middle - began) // 1000)
        saves.append((ended - middle) // 1000)
    memory.close()
    print(json.dumps({"loads": loads, "saves": saves, "failures": failures}))


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000  # ms


def measure_throughput(target: Target, processes: int, seconds: float,
                       buyers: int) -> dict[str, Any]:
    url = target_url(target)
    start_at = time.time() + 3 + 0.3 * processes  # every process imported and connected
    children = [subprocess.Popen(
        [sys.executable, __file__, "--worker", url, str(seconds), str(start_at), str(seed),
         str(buyers)], stdout=subprocess.PIPE, text=True) for seed in range(processes)]
    outputs = []
    try:
        for child in children:
            out, _ = child.communicate(timeout=seconds + 120)
            if child.returncode != 0:
                raise RuntimeError(f"a worker exited with {child.returncode}")
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    loads = [v for o in outputs for v in o["loads"]]
    saves = [v for o in outputs for v in o["saves"]]
    ops = len(loads) + len(saves)
    return {"topology": target[0], "processes": processes, "seconds": seconds,
            "store_buyers": buyers, "ops": ops, "ops_per_second": round(ops / seconds),
            "failed_saves": sum(o["failures"] for o in outputs),
            "load_p50_ms": percentile(loads, 0.50), "load_p99_ms": percentile(loads, 0.99),
            "save_p50_ms": percentile(saves, 0.50), "save_p99_ms": percentile(saves, 0.99),
            "load_mean_ms": round(statistics.fmean(loads) / 1000, 3),
            "save_mean_ms": round(statistics.fmean(saves) / 1000, 3)}


def print_throughput_header() -> None:
    print(f"{'topology':>10} {'procs':>6} {'ops/s':>8} {'load p50 ms':>12} {'load p99 ms':>12} "
          f"{'save p50 ms':>12} {'save p99 ms':>12} {'failed saves':>13}")


def print_throughput_row(row: dict[str, Any]) -> None:
    print(f"{row['topology']:>10} {row['processes']:>6} {row['ops_per_second']:>8,} "
          f"{row['load_p50_ms']:>12.2f} {row['load_p99_ms']:>12.2f} "
          f"{row['save_p50_ms']:>12.2f} {row['save_p99_ms']:>12.2f} "
          f"{row['failed_saves']:>13}", flush=True)


# output ----------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    return {"host": platform.node(), "arch": platform.machine(), "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                               / 2**30, 1),
            "python": platform.python_version(),
            "redis": _redis_version(), "code": _code_version()}


def _code_version() -> str:
    """The commit measured, and whether memory_core had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()
    dirty = git("status", "--porcelain", "memory_core")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted memory_core changes"
                                                  if dirty else "")


def _redis_version() -> str:
    done = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip()


def merge_json(path: Path, section: str, rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` to ``section`` of the file, replacing rows of the same size/topology."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data["machine"] = machine()
    key_fields = ("topology", "buyers", "processes")
    kept = [row for row in data.get(section, [])
            if not any(all(row.get(k) == new.get(k) for k in key_fields) for new in rows)]
    for row in rows:
        row["measured_at"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        row.setdefault("loadavg_1m_after", round(os.getloadavg()[0], 2))
        row.setdefault("code", data["machine"]["code"])
    data[section] = kept + rows
    path.write_text(json.dumps(data, indent=2) + "\n")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, seconds, start_at, seed, buyers = sys.argv[2:7]
        worker(url, float(seconds), float(start_at), int(seed), int(buyers))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", nargs="+", choices=("standalone", "cluster"),
                        default=["standalone", "cluster"])
    parser.add_argument("--sections", nargs="+", choices=("inventory", "throughput"),
                        default=["inventory", "throughput"])
    parser.add_argument("--buyers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=1000, help="keys per SCAN and read")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="duration of each throughput run")
    parser.add_argument("--throughput-buyers", type=int, default=100_000,
                        help="buyers in the store the throughput runs load and save")
    parser.add_argument("--json", type=Path, help="merge the results into this file")
    args = parser.parse_args()
    facts = machine()
    print(f"machine: {facts['host']} {facts['arch']}, {facts['cpus']} CPUs, "
          f"{facts['memory_gb']} GB, Python {facts['python']}, {facts['redis']}; "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    for topology in args.topology:
        with private_target(topology) as target:
            if "inventory" in args.sections:
                print_inventory_header()
                rows = []
                for buyers in args.buyers:
                    rows.append(measure_size(target, buyers, args.batch))
                    print_inventory_row(rows[-1])
                    if args.json:
                        merge_json(args.json, "inventory", rows[-1:])
            if "throughput" in args.sections:
                if topology == "standalone":
                    fill(target[1].url, args.throughput_buyers, with_yardstick=False)
                else:
                    fill_cluster(target[1], args.throughput_buyers)
                print(f"throughput: load then save of random buyers among "
                      f"{args.throughput_buyers:,}, {args.seconds:.0f} s per run")
                print_throughput_header()
                rows = []
                for processes in args.processes:
                    rows.append(measure_throughput(target, processes, args.seconds,
                                                   args.throughput_buyers))
                    print_throughput_row(rows[-1])
                if args.json:
                    merge_json(args.json, "throughput", rows)


if __name__ == "__main__":
    main()
