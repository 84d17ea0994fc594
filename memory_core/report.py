"""The inventory's report, folded chunk by chunk while the scan streams.

``inventory`` (the CLI, cron jobs) needs counts, sums and the problem keys, not a row per
buyer: the full table held 217 MB per million buyers (1.35 GB peak at 3M). Here the scan's
rows come in chunks of :data:`CHUNK_ROWS`; each chunk is summarised with
:func:`~memory_core.inventory.summarize_inventory` and added to running totals, then
dropped. What stays grows with the labels and the capped problem list, plus 8 bytes per
key for the duplicate check: SCAN returns a key twice while Redis rehashes, and the full
scan drops such repeats, so this must too.

A store with hostile headers could carry a million distinct personas: each column counts
at most :data:`MAX_LABELS` distinct labels, later new ones together as
:data:`OTHER_LABELS`; the problem keys are kept up to :data:`MAX_PROBLEMS` (counted in full).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from memory_core.errors import REDIS_FAULTS, StoreUnavailable
from memory_core.inventory import (
    DEFAULT_BATCH,
    DICTIONARY_USE,
    STATUS_OK,
    ProgressCallback,
    problem_records,
    summarize_inventory,
    summary_chunks,
    verify_payloads,
    walk_batches,
    with_derived_columns,
)
from memory_core.store import SyncBuyerConversationMemory

#: Rows summarised at once: 50k rows are about 11 MB of table.
CHUNK_ROWS = 50_000
#: Distinct labels counted per column (persona, stage, codec...) before the rest are
#: counted together.
MAX_LABELS = 10_000
OTHER_LABELS = "(other labels)"
#: Problem keys listed in a report; ``corrupt`` and ``legacy`` count every one.
MAX_PROBLEMS = 10_000
#: The report's label counts, by name in :func:`summarize_inventory`'s report.
_COUNTED = ("by_status", "by_temperature", "by_persona", "by_journey_stage", "by_codec",
            "by_key_id", "by_schema_version")
_SUMMED = ("total", "buyers", "qualified", "qa_seeded", "corrupt", "legacy",
           "undecryptable", "stored_bytes", "original_bytes")


class SeenKeys:
    """The contact ids counted so far, as sorted 8-byte hashes: 8 MB per million keys."""

    def __init__(self) -> None:
        self._hashes = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._hashes)

    def first_time(self, contact_ids: pd.Series) -> np.ndarray:
        """A mask of the ids not seen before (in earlier calls or earlier in this one);
        they count as seen from now on."""
        # Python's own 64-bit string hash: ids may hold lone surrogates (undecodable key
        # bytes, escaped) that pandas' hashing refuses
        hashes = np.fromiter((hash(i) for i in contact_ids), dtype=np.int64,
                             count=len(contact_ids)).view(np.uint64)
        fresh = np.zeros(len(hashes), dtype=bool)
        fresh[np.unique(hashes, return_index=True)[1]] = True
        if len(self._hashes):
            at = np.searchsorted(self._hashes, hashes).clip(max=len(self._hashes) - 1)
            fresh &= self._hashes[at] != hashes
        # two sorted runs: the stable sort (timsort) merges them in linear time, in place
        self._hashes = np.concatenate([self._hashes, np.sort(hashes[fresh])])
        self._hashes.sort(kind="stable")
        return fresh


@dataclass
class ReportFold:
    """Running totals of chunk reports; :meth:`result` gives the whole store's report."""

    max_labels: int = MAX_LABELS
    max_problems: int = MAX_PROBLEMS
    sums: Counter[str] = field(default_factory=Counter)
    labels: dict[str, Counter[str]] = field(
        default_factory=lambda: {name: Counter() for name in _COUNTED})
    ttl_buckets: Counter[str] = field(default_factory=Counter)
    by_dictionary: Counter[str] = field(default_factory=Counter)
    no_ttl: int = 0
    expiring_24h: int = 0
    problems: list[pd.DataFrame] = field(default_factory=list)
    problems_kept: int = 0
    #: The kept problem keys' contact ids as read (the report shows them escaped): what a
    #: page that inspects or deletes one of them needs.
    problem_ids: list[str] = field(default_factory=list)

    def add(self, frame: pd.DataFrame, now: datetime) -> None:
        """Add one chunk (with derived columns) to the totals."""
        part = summarize_inventory(frame, now)
        for name in _SUMMED:
            self.sums[name] += part[name]
        for name in _COUNTED:
            self._count(self.labels[name], part[name])
        self.by_dictionary.update(part["stored_bytes_by_dictionary"])
        ttl = part["ttl"]
        self.no_ttl += ttl["no_ttl"]
        self.expiring_24h += ttl["expiring_24h"]
        self.ttl_buckets.update(ttl["days_remaining"])
        room = self.max_problems - self.problems_kept
        if room > 0:
            found = problem_records(frame).head(room)
            if len(found):
                self.problems.append(found)
                self.problems_kept += len(found)
                self.problem_ids += frame.loc[frame["status"] != STATUS_OK,
                                              "contact_id"].head(room).tolist()

    def _count(self, counts: Counter[str], part: dict[str, int]) -> None:
        for label, number in part.items():
            if label in counts or len(counts) < self.max_labels:
                counts[label] += number
            else:
                counts[OTHER_LABELS] += number

    def result(self, now: datetime) -> tuple[dict[str, Any], pd.DataFrame]:
        """The report, shaped as :func:`summarize_inventory`'s, and the kept problem rows."""
        stored, original = self.sums["stored_bytes"], self.sums["original_bytes"]
        report: dict[str, Any] = {"generated_at": now.isoformat(timespec="seconds")}
        report.update({name: int(self.sums[name]) for name in ("total", "buyers")})
        report.update({name: dict(self.labels[name].most_common()) for name in _COUNTED})
        report.update({name: int(self.sums[name]) for name in _SUMMED[2:]})
        report["compression_ratio"] = round(original / stored, 3) if stored else None
        report["stored_bytes_by_dictionary"] = {
            label: int(self.by_dictionary[label]) for label in DICTIONARY_USE}
        report["ttl"] = {"no_ttl": self.no_ttl, "expiring_24h": self.expiring_24h,
                         "days_remaining": dict(self.ttl_buckets)}
        problems = (pd.concat(self.problems, ignore_index=True) if self.problems
                    else problem_records(pd.DataFrame(
                        columns=["contact_id", "status", "problem", "stored_bytes"])))
        return report, problems


def unique_chunks(memory: SyncBuyerConversationMemory, *, chunk_rows: int = CHUNK_ROWS,
                  batch_size: int = DEFAULT_BATCH, progress: ProgressCallback | None = None,
                  estimated_total: int = 0, match: str | None = None
                  ) -> Iterator[pd.DataFrame]:
    """Every key's summary row once (SCAN's repeats dropped), chunk by chunk; ``match``
    narrows the keys read (see :func:`~memory_core.inventory.walk_batches`). Leaving
    early stops the node readers. Redis faults are raised as they come."""
    seen = SeenKeys()
    batches = walk_batches(memory, batch_size, match)
    try:
        for chunk in summary_chunks(memory, batches, progress, estimated_total, chunk_rows):
            yield chunk[seen.first_time(chunk["contact_id"])].reset_index(drop=True)
    finally:
        close = getattr(batches, "close", None)  # the node readers' generator stops them
        if close is not None:
            close()


def scan_report(memory: SyncBuyerConversationMemory, *, batch_size: int = DEFAULT_BATCH,
                chunk_rows: int = CHUNK_ROWS, progress: ProgressCallback | None = None,
                verify: bool = False, verify_progress: ProgressCallback | None = None,
                fold: ReportFold | None = None,
                each_chunk: Callable[[pd.DataFrame], None] | None = None
                ) -> tuple[dict[str, Any], pd.DataFrame]:
    """:func:`~memory_core.inventory.summarize_inventory` of every key under the prefix
    and the problem keys (at most ``fold.max_problems``), without holding every row.

    The same rows as :func:`~memory_core.inventory.scan_summaries` (``verify`` decodes
    every record too), so the same report. Raises :class:`StoreUnavailable` if Redis
    cannot be reached. ``each_chunk`` is handed every chunk (with derived columns) too,
    for a caller folding more than the report (:mod:`memory_core.breakdown`).
    """
    fold = fold or ReportFold()
    started_ms = time.time_ns() // 1_000_000
    now = datetime.now(UTC)
    try:
        estimated_total = int(memory.client.dbsize()) if progress or verify_progress else 0
        verified = 0
        for chunk in unique_chunks(memory, chunk_rows=chunk_rows, batch_size=batch_size,
                                   progress=progress, estimated_total=estimated_total):
            if verify:
                def counted(done: int, _total: int, before: int = verified) -> None:
                    if verify_progress:
                        verify_progress(before + done, max(estimated_total, before + done))
                verify_payloads(memory, chunk, counted)
                verified += len(chunk)
            chunk = with_derived_columns(chunk, started_ms)
            fold.add(chunk, now)
            if each_chunk is not None:
                each_chunk(chunk)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable(f"Redis unreachable during scan: {exc}") from exc
    return fold.result(now)
