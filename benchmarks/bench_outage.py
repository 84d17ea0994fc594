"""What a dead Redis costs the bot: 1000 load_state calls while it is down, then recovery.

Starts a private redis-server, saves one buyer, stops the server, and times 1000 loads
(sync and asyncio) against the dead port, then restarts it and times how long until a
save succeeds again. A host that drops packets (no RST) costs a connect timeout
per probe instead; the breaker bounds that to one probe per cooldown.

    python benchmarks/bench_outage.py
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory_core import BuyerConversationMemory, MemoryConfig, SyncBuyerConversationMemory
from memory_core.testing import start_private_server

CALLS = 1000


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the warnings are the point, not the output
    server = start_private_server()
    config = MemoryConfig()
    sync = SyncBuyerConversationMemory.from_url(server.url, config)
    amemory = BuyerConversationMemory.from_url(server.url, config)
    try:
        sync.save_state("outage-buyer", {"buyer_temperature": "hot"})
        server.stop()
        started = time.perf_counter()
        results = [sync.load_state("outage-buyer") for _ in range(CALLS)]
        sync_seconds = time.perf_counter() - started
        during = sync.get_stats()

        async def async_loads() -> list[object]:
            return [await amemory.load_state("outage-buyer") for _ in range(CALLS)]

        started = time.perf_counter()
        async_results = asyncio.run(async_loads())
        async_seconds = time.perf_counter() - started
        assert all(r is None for r in results + async_results)
        server.start()
        restarted = time.perf_counter()
        # The server keeps nothing on disk, so "recovered" means a save succeeds again.
        while not sync.save_state("outage-buyer", {"buyer_temperature": "hot"}):
            time.sleep(0.01)
        recovery = time.perf_counter() - restarted
        print(f"{CALLS} load_state calls with Redis down: sync {sync_seconds:.3f} s, asyncio "
              f"{async_seconds:.3f} s (sync: Redis tried {during['errors']} times, "
              f"{during['skipped']} calls skipped by the open breaker)")
        print(f"recovered {recovery:.2f} s after the server came back "
              f"(failure_cooldown_seconds={config.failure_cooldown_seconds})")
    finally:
        sync.close()
        server.stop()


if __name__ == "__main__":
    main()
