"""What an outage costs the bot: loads while Redis is down, hung or paused, then recovery.

Three faults, each with default settings (``MemoryConfig()``: 0.5 s socket timeout, a
breaker probe every 1.0 s), each measured with fresh memory objects:

- ``stopped``: the server process is stopped (connections refused), then started again;
- ``hung proxy``: a :class:`~memory_core.testing.TcpProxy` between the memory and the
  server stops forwarding (accepts, never answers), then forwards again;
- ``CLIENT PAUSE``: ``CLIENT PAUSE <ms> ALL`` on the server, until it runs out.

For each it prints the total seconds of 1000 sequential ``load_state`` calls (sync and
asyncio), the slowest of 200 concurrent asyncio loads (``asyncio.gather``), and the
seconds from the end of the fault until the first successful load (sync and asyncio),
with the same memory objects. The targets (GUIDE section 4): under 1 s, under 1 s,
under 1.5 s, and recovery on its own. A host that drops packets (no RST) costs a connect
timeout per probe instead; the breaker bounds that to one probe per interval. This
prints numbers; it asserts nothing.

    python benchmarks/bench_outage.py
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory_core import BuyerConversationMemory, MemoryConfig, SyncBuyerConversationMemory
from memory_core.connection import connect
from memory_core.testing import RedisServer, TcpProxy, start_private_server

SEQUENTIAL = 1000
CONCURRENT = 200
#: CLIENT PAUSE cannot be lifted early: long enough for the three measurements.
PAUSE_SECONDS = 4.0
#: Give up waiting for recovery after this long (it is reported as such).
RECOVERY_LIMIT_SECONDS = 30.0
BUYER = "outage-buyer"
STATE = {"buyer_temperature": "hot", "conversation_history": [
    {"role": "user", "content": "a 3 bedroom house near the school, please",
     "timestamp": "2024-05-01T10:00:00+00:00"}]}


@dataclass
class Fault:
    name: str
    url: str
    start: Callable[[], None]
    end: Callable[[], None]


@dataclass
class Figures:
    sync_sequential_seconds: float
    async_sequential_seconds: float
    slowest_concurrent_seconds: float
    sync_recovery_seconds: float | None
    async_recovery_seconds: float | None
    over_the_pause: bool = False


async def _timed(call: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await call
    return time.perf_counter() - started


async def _measure(fault: Fault, config: MemoryConfig) -> Figures:
    sync = SyncBuyerConversationMemory.from_url(fault.url, config)
    sequential = BuyerConversationMemory.from_url(fault.url, config)
    concurrent = BuyerConversationMemory.from_url(fault.url, config)
    try:
        for memory in (sequential, concurrent):  # warm: connected and answering
            if await memory.load_state(BUYER) is None:
                raise RuntimeError(f"{fault.name}: the buyer does not load before the fault")
        if sync.load_state(BUYER) is None:
            raise RuntimeError(f"{fault.name}: the buyer does not load before the fault")
        fault.start()
        fault_started = time.perf_counter()

        started = time.perf_counter()
        for _ in range(SEQUENTIAL):
            sync.load_state(BUYER)
        sync_seconds = time.perf_counter() - started

        started = time.perf_counter()
        for _ in range(SEQUENTIAL):
            await sequential.load_state(BUYER)
        async_seconds = time.perf_counter() - started

        durations = await asyncio.gather(*[_timed(concurrent.load_state(BUYER))
                                           for _ in range(CONCURRENT)])
        over_the_pause = time.perf_counter() - fault_started >= PAUSE_SECONDS

        fault.end()
        ended = time.perf_counter()
        sync_recovery = async_recovery = None
        while (sync_recovery is None or async_recovery is None) and (
                time.perf_counter() - ended < RECOVERY_LIMIT_SECONDS):
            if sync_recovery is None and sync.load_state(BUYER) is not None:
                sync_recovery = time.perf_counter() - ended
            if async_recovery is None and await sequential.load_state(BUYER) is not None:
                async_recovery = time.perf_counter() - ended
            await asyncio.sleep(0.005)
        return Figures(sync_seconds, async_seconds, max(durations), sync_recovery,
                       async_recovery, over_the_pause)
    finally:
        sync.close()
        await sequential.aclose()
        await concurrent.aclose()


def _stopped(server: RedisServer) -> Fault:
    return Fault("stopped", server.url, server.stop, server.start)


def _paused(server: RedisServer) -> Fault:
    client = connect(server.url)
    paused_until = [0.0]

    def pause() -> None:
        client.execute_command("CLIENT", "PAUSE", int(PAUSE_SECONDS * 1000), "ALL")
        paused_until[0] = time.perf_counter() + PAUSE_SECONDS

    def wait_for_the_end() -> None:
        time.sleep(max(0.0, paused_until[0] - time.perf_counter()))
        client.close()

    return Fault(f"CLIENT PAUSE {PAUSE_SECONDS:g}s", server.url, pause, wait_for_the_end)


def _seconds(value: float | None) -> str:
    return f"{value:.3f} s" if value is not None else f"not within {RECOVERY_LIMIT_SECONDS:g} s"


def _report(name: str, figures: Figures) -> None:
    print(f"{name}:")
    print(f"  {SEQUENTIAL} sequential loads: sync {figures.sync_sequential_seconds:.3f} s, "
          f"asyncio {figures.async_sequential_seconds:.3f} s")
    print(f"  slowest of {CONCURRENT} concurrent asyncio loads: "
          f"{figures.slowest_concurrent_seconds:.3f} s")
    print(f"  first successful load after the fault ended: sync "
          f"{_seconds(figures.sync_recovery_seconds)}, asyncio "
          f"{_seconds(figures.async_recovery_seconds)}")
    if figures.over_the_pause:
        print(f"  (the measurements outlasted the {PAUSE_SECONDS:g} s pause: the figures "
              "above understate the fault)")


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the warnings are the point, not the output
    config = MemoryConfig()
    print(f"default settings: socket_timeout_seconds={config.socket_timeout_seconds}, "
          f"failure_cooldown_seconds={config.failure_cooldown_seconds} (probe interval)")
    # Persistent, so the buyer is still there after the "stopped" server restarts.
    directory = tempfile.TemporaryDirectory(prefix="bench-outage-")
    server = start_private_server(Path(directory.name), persistent=True)
    try:
        with SyncBuyerConversationMemory.from_url(server.url, config) as writer:
            if not writer.save_state(BUYER, STATE):
                raise RuntimeError("could not save the buyer")
        _report("server stopped (connections refused), then started",
                asyncio.run(_measure(_stopped(server), config)))
        with TcpProxy(server.port) as proxy:
            _report("hung server (a proxy that accepts and never answers), then forwarding",
                    asyncio.run(_measure(Fault("hung proxy", proxy.url, proxy.hang,
                                               proxy.resume), config)))
        _report(f"CLIENT PAUSE {int(PAUSE_SECONDS * 1000)} ALL, until it runs out",
                asyncio.run(_measure(_paused(server), config)))
    finally:
        server.stop()
        directory.cleanup()


if __name__ == "__main__":
    main()
