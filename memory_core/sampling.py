"""A sampled inventory: the overview's figures at any size, each with its margin of error.

An exact scan reads every key: 14 s and a table of every buyer at a million buyers,
minutes at ten million. A sample reads a fixed number of keys drawn at random, so its
time and memory depend on the sample size alone.

How keys are drawn: ``RANDOMKEY`` on each node (every primary of a cluster), as many
draws per node as its share of all keys (a multinomial split of the draws by DBSIZE), so
every key in the database is equally likely in every draw. Redis picks ``RANDOMKEY``
through a fair sample of its hash table: close to uniform, not exactly (its own docs
call it "fair"). Draws are with replacement, and keys outside the buyer prefix count as
draws that found no buyer: with ``m`` draws over ``D`` keys, a figure's estimate is
``D`` times the share of draws that found a buyer with that property, and its 95 %
margin is ``1.96 * D * sqrt(p (1 - p) / m)`` (a mean-based total the same way with the
draws' standard deviation). A store that holds mostly other keys gives few buyer hits
and wide margins; the margins say so.

The rows come from :func:`memory_core.inventory.summaries_of`, as in a full scan, so a
sampled record is read (header, PTTL, length; never the payload) and judged exactly as
the scan judges it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from memory_core.errors import REDIS_FAULTS, StoreUnavailable
from memory_core.inventory import (
    PROBLEM_STATUSES,
    STATUS_LEGACY,
    STATUS_OK,
    Batch,
    BatchReader,
    ProgressCallback,
    scan_clients,
    summaries_of,
    with_derived_columns,
)
from memory_core.store import SyncBuyerConversationMemory

#: Draws one sample may make: enough for margins of a few tenths of a percent.
MIN_DRAWS = 100
MAX_DRAWS = 1_000_000
DEFAULT_DRAWS = 20_000
DRAW_BATCH = 1000  # RANDOMKEY replies per round trip
Z_95 = 1.96


@dataclass(frozen=True)
class Estimate:
    """A figure for the whole store, from a sample: the value and its 95 % margin."""

    value: float
    margin: float

    def text(self, *, unit: Callable[[float], str] | None = None) -> str:
        """``12,300 ± 450``; with ``unit``, each number formatted by it."""
        shown = unit or (lambda number: f"{round(number):,}")
        return f"{shown(self.value)} ± {shown(self.margin)}"


@dataclass(frozen=True)
class Sample:
    """The rows drawn (one per draw that found a buyer key, repeats kept) and the counts
    the estimates scale by."""

    frame: pd.DataFrame
    keys_in_database: int  # D: DBSIZE summed over every node drawn from
    draws: int  # m: RANDOMKEY replies, buyer keys or not
    seconds: float

    def count(self, rows: Any = None) -> Estimate:
        """Keys under the prefix in the whole store (or those of ``rows``, a mask)."""
        hits = len(self.frame) if rows is None else int(np.count_nonzero(rows))
        return self._scaled(np.ones(hits))

    def total(self, column: str, rows: Any = None) -> Estimate:
        """The store-wide sum of ``column`` (over ``rows``, a mask, when given)."""
        values = self.frame[column] if rows is None else self.frame.loc[rows, column]
        numbers = pd.to_numeric(values, errors="coerce").fillna(0).to_numpy(dtype=float)
        return self._scaled(numbers)

    def buyers(self) -> Estimate:
        """Readable buyer states in the whole store."""
        return self.count(self.frame["status"] == STATUS_OK)

    def _scaled(self, values: np.ndarray) -> Estimate:
        """D x the mean over every draw (a draw without a hit adds 0), with its margin."""
        draws = self.draws
        if draws == 0:
            return Estimate(0.0, 0.0)
        total = float(values.sum())
        mean = total / draws
        squares = float((values * values).sum())
        variance = max(squares / draws - mean * mean, 0.0)  # zeros of the misses included
        scale = self.keys_in_database
        margin = Z_95 * scale * math.sqrt(variance / draws)
        return Estimate(scale * mean, margin)

    @property
    def unique_rows(self) -> pd.DataFrame:
        """Each buyer drawn once, for lists and charts of the drawn buyers."""
        return self.frame.drop_duplicates("contact_id", ignore_index=True)


#: The figures :func:`sample_report` estimates, in the order they are shown.
FIGURES = ("keys under the prefix", "readable buyers", "hot", "warm", "cold", "QA seeds",
           "corrupt, foreign or unreadable", "legacy", "no TTL", "expiring within 24 hours",
           "stored bytes", "original bytes")


def sample_report(sample: Sample) -> dict[str, Estimate]:
    """The overview's headline figures for the whole store, estimated from ``sample``.

    The compression ratio is left out: a ratio of two estimates has no margin of this
    simple kind, and ``original bytes / stored bytes`` of the estimates is close enough
    to be shown as approximate by the caller.
    """
    frame = sample.frame
    ok = frame["status"] == STATUS_OK
    ttl_days = frame["ttl_days"]
    return {
        "keys under the prefix": sample.count(),
        "readable buyers": sample.count(ok),
        "hot": sample.count(ok & (frame["temperature"] == "hot")),
        "warm": sample.count(ok & (frame["temperature"] == "warm")),
        "cold": sample.count(ok & (frame["temperature"] == "cold")),
        "QA seeds": sample.count(frame["qa_seed"].astype(bool)),
        "corrupt, foreign or unreadable": sample.count(frame["status"].isin(PROBLEM_STATUSES)),
        "legacy": sample.count(frame["status"] == STATUS_LEGACY),
        "no TTL": sample.count(ttl_days.isna()),
        "expiring within 24 hours": sample.count(ttl_days < 1),
        "stored bytes": sample.total("stored_bytes", ok),
        "original bytes": sample.total("original_bytes", ok),
    }


def check_draws(draws: object) -> int:
    """The number of draws, or ValueError saying what is allowed."""
    if isinstance(draws, bool) or not isinstance(draws, int) or not (
            MIN_DRAWS <= draws <= MAX_DRAWS):
        raise ValueError(f"a sample makes {MIN_DRAWS:,} to {MAX_DRAWS:,} draws; "
                         f"got {draws!r}")
    return draws


def sample_summaries(memory: SyncBuyerConversationMemory, draws: int = DEFAULT_DRAWS, *,
                     seed: int | None = None,
                     progress: ProgressCallback | None = None) -> Sample:
    """Draw ``draws`` random keys over every node and read the buyer keys among them.

    Raises ValueError for a draw count out of range, :class:`StoreUnavailable` when
    Redis cannot be reached.
    """
    draws = check_draws(draws)
    started = time.perf_counter()
    started_ms = time.time_ns() // 1_000_000
    rng = np.random.default_rng(seed)
    try:
        nodes = [(client, cluster_node, int(client.dbsize()))
                 for client, cluster_node in scan_clients(memory.client)]
        keys_in_database = sum(size for _, _, size in nodes)
        if keys_in_database == 0:
            return Sample(with_derived_columns(summaries_of(memory, []), started_ms),
                          0, draws, time.perf_counter() - started)
        shares = np.asarray([size / keys_in_database for _, _, size in nodes])
        per_node = rng.multinomial(draws, shares)
        frame = summaries_of(memory, _drawn(memory, nodes, per_node, progress))
    except REDIS_FAULTS as exc:
        raise StoreUnavailable(f"Redis unreachable while sampling: {exc}") from exc
    return Sample(with_derived_columns(frame, started_ms), keys_in_database, draws,
                  time.perf_counter() - started)


def _drawn(memory: SyncBuyerConversationMemory, nodes: list[tuple[Any, bool, int]],
           per_node: np.ndarray, progress: ProgressCallback | None) -> Iterator[Batch]:
    """Batches of drawn buyer keys with their replies, node by node."""
    prefix = f"{memory.prefix}:".encode()
    total, done = int(per_node.sum()), 0
    for (client, cluster_node, _), wanted in zip(nodes, per_node, strict=True):
        reader = BatchReader(client, cluster_node=cluster_node)
        left = int(wanted)
        while left > 0:
            step = min(left, DRAW_BATCH)
            pipe = client.pipeline(transaction=False)
            for _ in range(step):
                pipe.execute_command("RANDOMKEY")
            keys = [key for key in pipe.execute()
                    if isinstance(key, bytes) and key.startswith(prefix)]
            left -= step
            done += step
            if progress:
                progress(done, total)
            if keys:
                yield keys, reader.read(keys)
