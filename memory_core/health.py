"""Is the bot's memory healthy? Each process publishes its counters; operators read them all.

A memory counts its calls, hits, misses, errors and breaker skips in its own process,
where nobody can see them. With ``health_publish_seconds`` > 0 it writes those counters
(never a contact id, name, phone or email) as a small JSON string to
``<prefix>.health:<host>:<pid>:<id>``, outside the buyer keyspace, with a TTL of
:data:`TTL_FACTOR` times the interval: a process that stops (or stops reaching Redis)
disappears from the panel on its own. There is no thread: the write rides on a bot call
at most once per interval (see ``store._MemoryLogic._counted``), and its failure never
touches that call.

:func:`read_health` is the operator side: it finds the records with a bounded SCAN and
treats each as hostile (whoever can write Redis can plant one): at most
:data:`MAX_RECORD_BYTES` read per record, every field type-checked, text cut short and
kept as text for the screen to escape. This module imports nothing heavy: the bot
imports it.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

import orjson
import redis

from memory_core.errors import REDIS_FAULTS, StoreUnavailable
from memory_core.safetext import printable

logger = logging.getLogger(__name__)

SCHEMA = 1
#: A record lives this many intervals: one missed publish (a failed call) is no gap.
TTL_FACTOR = 3
#: Most bytes read of one record; an honest one is about 600.
MAX_RECORD_BYTES = 4096
#: Most records read; a store with more processes (or planted keys) says it was cut.
MAX_PROCESSES = 500
#: Keys asked per SCAN call while looking for records (few calls on a big keyspace).
SCAN_COUNT = 5000
#: Characters kept of a text field (host, kind, process name) read back.
TEXT_LIMIT = 200
#: The counters published, as ``get_stats()`` names them.
COUNTERS = ("calls", "saves", "loads", "hits", "misses", "clears", "conflicts", "errors",
            "corrupt", "undecryptable", "refused", "skipped")
_MAX_COUNT = 2**63 - 1
_HOST_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def health_key_prefix(prefix: str) -> str:
    """Where the records of the store with this key prefix live (``<prefix>.health:``)."""
    return f"{prefix}.health:"


def host_name() -> str:
    """This machine's name as a key part: letters, digits, ``. _ -`` only, 64 at most."""
    try:
        name = socket.gethostname()
    except OSError:
        name = ""
    return _HOST_CHARS.sub("_", name)[:64] or "unknown-host"


def build_payload(stats: Mapping[str, Any], *, host: str, pid: int, kind: str,
                  interval_seconds: int, started_at: float, published_at: float,
                  breaker_opened_seconds_ago: float | None) -> bytes:
    """The JSON a process publishes: counters and breaker state, nothing about buyers."""
    counters = {}
    for name in COUNTERS:
        value = stats.get(name, 0)
        counters[name] = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return orjson.dumps({
        "schema": SCHEMA, "host": host, "pid": pid, "kind": kind,
        "interval_seconds": interval_seconds, "started_at": round(started_at, 3),
        "published_at": round(published_at, 3),
        "circuit_open": bool(stats.get("circuit_open")),
        "breaker_opened_seconds_ago": (None if breaker_opened_seconds_ago is None
                                       else round(breaker_opened_seconds_ago, 1)),
        "counters": counters,
    })


class HealthPublisher:
    """When and what one memory publishes: its key, its interval, its last claim."""

    def __init__(self, prefix: str, interval_seconds: int, kind: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.prefix = prefix
        self.interval_seconds = interval_seconds
        self.kind = kind
        self.started_at = time.time()
        self._clock = clock
        self._next_at = 0.0  # the first call publishes: the process shows up at once
        self._pid = 0
        self._key = ""
        self._warned = False

    @property
    def ttl_seconds(self) -> int:
        return TTL_FACTOR * self.interval_seconds

    @property
    def key(self) -> str:
        """``<prefix>.health:<host>:<pid>:<random>``; a new one in a forked child."""
        pid = os.getpid()
        if pid != self._pid:
            self._pid = pid
            self._key = (f"{health_key_prefix(self.prefix)}{host_name()}:{pid}:"
                         f"{secrets.token_hex(4)}")
        return self._key

    def claim(self) -> bool:
        """True once per interval, for the one call that publishes (claimed up front, so
        concurrent asyncio calls do not all publish)."""
        now = self._clock()
        if now < self._next_at:
            return False
        self._next_at = now + self.interval_seconds
        return True

    def command(self, stats: Mapping[str, Any],
                breaker_opened_seconds_ago: float | None) -> tuple[Any, ...]:
        """The SET that publishes ``stats`` (a memory's ``get_stats()``)."""
        key = self.key
        payload = build_payload(stats, host=host_name(), pid=self._pid, kind=self.kind,
                                interval_seconds=self.interval_seconds,
                                started_at=self.started_at, published_at=time.time(),
                                breaker_opened_seconds_ago=breaker_opened_seconds_ago)
        return ("SET", key, payload, "EX", self.ttl_seconds)

    def failed(self, exc: BaseException) -> None:
        """One WARNING per memory (then DEBUG): a health write never fails a bot call."""
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        logger.log(level, "health counters not published to %s.health:* (%s: %s); the bot "
                   "call was not affected (a Redis user for the bot needs ~%s.health:* and "
                   "+set)", self.prefix, type(exc).__name__, printable(str(exc), 200),
                   self.prefix)


# reading ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProcessHealth:
    """One process's record as read back; ``problem`` says why it could not be used."""

    process: str
    host: str = ""
    pid: int | None = None
    kind: str = ""
    interval_seconds: int | None = None
    started_at: datetime | None = None
    published_at: datetime | None = None
    circuit_open: bool = False
    breaker_opened_seconds_ago: float | None = None
    counters: dict[str, int] = field(default_factory=dict)
    problem: str | None = None

    @property
    def hit_rate(self) -> float | None:
        return _ratio(self.counters.get("hits", 0),
                      self.counters.get("hits", 0) + self.counters.get("misses", 0))

    @property
    def error_rate(self) -> float | None:
        return _ratio(self.counters.get("errors", 0), self.counters.get("calls", 0))


@dataclass(frozen=True)
class HealthReport:
    """Every process record found, with the aggregate the health panel shows."""

    processes: tuple[ProcessHealth, ...]
    unreadable: tuple[ProcessHealth, ...] = ()
    truncated: bool = False

    @property
    def seen(self) -> int:
        return len(self.processes)

    @property
    def totals(self) -> dict[str, int]:
        return {name: sum(p.counters.get(name, 0) for p in self.processes)
                for name in COUNTERS}

    @property
    def hit_rate(self) -> float | None:
        """Loads that found a state, of loads that found one or found none."""
        totals = self.totals
        return _ratio(totals["hits"], totals["hits"] + totals["misses"])

    @property
    def error_rate(self) -> float | None:
        """Calls that failed (Redis down, a corrupt record, a Redis error), of all calls."""
        totals = self.totals
        return _ratio(totals["errors"], totals["calls"])

    @property
    def skipped_rate(self) -> float | None:
        """Calls skipped at once because the circuit breaker was open, of all calls."""
        totals = self.totals
        return _ratio(totals["skipped"], totals["calls"])

    @property
    def breaker_open(self) -> int:
        return sum(1 for p in self.processes if p.circuit_open)

    def breaker_opened_within(self, seconds: float) -> int:
        """Processes whose breaker opened in the last ``seconds`` (open or closed again)."""
        return sum(1 for p in self.processes if p.breaker_opened_seconds_ago is not None
                   and p.breaker_opened_seconds_ago <= seconds)

    @property
    def last_seen(self) -> datetime | None:
        times = [p.published_at for p in self.processes if p.published_at is not None]
        return max(times) if times else None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def read_health(client: Any, prefix: str, *, limit: int = MAX_PROCESSES,
                now: datetime | None = None) -> HealthReport:
    """Every health record under ``prefix``, checked; raises :class:`StoreUnavailable`.

    Bounded whatever is planted: SCAN stops after ``limit`` records (``truncated``
    then says so), and at most :data:`MAX_RECORD_BYTES` are read of each.
    """
    now = now or datetime.now(UTC)
    pattern = health_key_prefix(prefix) + "*"
    keys: list[bytes] = []
    seen: set[bytes] = set()
    truncated = False
    try:
        # scan_iter: one SCAN cursor per primary on Redis Cluster, the only one otherwise
        for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
            if key in seen:
                continue  # SCAN may return a key twice while the keyspace is rehashed
            if len(keys) >= limit:
                truncated = True
                break
            seen.add(key)
            keys.append(key)
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.getrange(key, 0, MAX_RECORD_BYTES)
            replies = pipe.execute(raise_on_error=False) if keys else []
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    except redis.ResponseError as exc:
        raise StoreUnavailable(f"the health records could not be read (may this Redis "
                               f"user SCAN and GETRANGE {pattern}?): {exc}") from exc
    readable: list[ProcessHealth] = []
    unreadable: list[ProcessHealth] = []
    name_start = len(health_key_prefix(prefix).encode())
    for key, reply in zip(keys, replies, strict=True):
        record = parse_record(_text(key[name_start:]), reply, now)
        (unreadable if record.problem else readable).append(record)
    readable.sort(key=lambda p: p.process)  # <host>:<pid>:<id>: by host, then process
    return HealthReport(tuple(readable), tuple(unreadable), truncated)


def parse_record(process: str, raw: object, now: datetime) -> ProcessHealth:
    """One record from its raw reply; a problem instead of an exception for bad ones."""
    if isinstance(raw, Exception):
        return ProcessHealth(process, problem="not a health record (another Redis type)")
    if not isinstance(raw, bytes) or not raw:
        return ProcessHealth(process, problem="empty, or gone while it was read")
    if len(raw) > MAX_RECORD_BYTES:
        return ProcessHealth(process, problem=f"larger than {MAX_RECORD_BYTES:,} bytes; "
                             "not read")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ProcessHealth(process, problem="not JSON")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return ProcessHealth(process, problem=f"not a health record of schema {SCHEMA}")
    raw_counters = data.get("counters")
    if not isinstance(raw_counters, dict):
        return ProcessHealth(process, problem="no counters")
    counters = {name: _count(raw_counters.get(name)) for name in COUNTERS}
    ago = data.get("breaker_opened_seconds_ago")
    return ProcessHealth(
        process=process, host=_text(data.get("host")), pid=_whole(data.get("pid")),
        kind=_text(data.get("kind")), interval_seconds=_whole(data.get("interval_seconds")),
        started_at=_time(data.get("started_at"), now),
        published_at=_time(data.get("published_at"), now),
        circuit_open=data.get("circuit_open") is True,
        breaker_opened_seconds_ago=(float(ago) if _is_number(ago) and 0 <= ago < 1e10
                                    else None),
        counters=counters)


def _is_number(value: object) -> TypeGuard[int | float]:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _whole(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _count(value: object) -> int:
    """A counter as published, or 0 for anything that is not a plausible count."""
    return _whole(value) or 0


def _time(value: object, now: datetime) -> datetime | None:
    """An epoch time no later than a day ahead of ``now`` (clocks differ; forgeries not)."""
    if not _is_number(value) or not 0 < value <= now.timestamp() + 86_400:
        return None
    return datetime.fromtimestamp(float(value), UTC)


def _text(value: object) -> str:
    """Text for a screen to escape: undecodable bytes as ``\\xNN``, cut short."""
    if isinstance(value, bytes):
        value = value[:TEXT_LIMIT * 4].decode("utf-8", "backslashreplace")
    if not isinstance(value, str):
        return ""
    # a lone surrogate would break the dashboard's Arrow tables: shown as an escape
    return value[:TEXT_LIMIT].encode("utf-8", "backslashreplace").decode("utf-8")
