"""A buyer list read from Redis as it streams: the first rows of any query, and its count.

The overview keeps the first rows of its default lists (:mod:`memory_core.breakdown`);
a list for a filter, a contact-id search or an expiry window in another order is read
here instead, with memory bounded by ``limit`` rows and one scan chunk, whatever the
store's size. A search narrows the keys Redis sends with SCAN MATCH where Redis's glob
means what the search means (ASCII text, no character class); every key read is still
checked against the search itself.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from memory_core.breakdown import (
    EVERY_BUYER,
    LIST_ROWS,
    ROW_COLUMNS,
    BuyerFilter,
    first_in_order,
)
from memory_core.errors import REDIS_FAULTS, StoreUnavailable
from memory_core.inventory import (
    MAX_PATTERN_CHARS,
    ORDER_RECENT,
    ProgressCallback,
    check_order,
    contact_id_matches,
    is_glob,
    scan_clients,
    with_derived_columns,
)
from memory_core.report import SeenKeys, unique_chunks
from memory_core.store import SyncBuyerConversationMemory


@dataclass(frozen=True)
class Listing:
    """The first rows of a buyer list, in its order, and how many buyers matched."""

    rows: pd.DataFrame  # ROW_COLUMNS, at most the limit asked for
    matching: int


def scan_match(memory: SyncBuyerConversationMemory, pattern: str) -> str | None:
    """A SCAN MATCH pattern for the keys a contact-id search can match, or None to read
    every key (a class ``[...]``, a backslash or non-ASCII text: Redis's glob would not
    mean what :func:`~memory_core.inventory.contact_id_matches` means).

    Redis's ``?`` is one byte where the search's is one character (``é`` is two bytes),
    so it is sent as ``*``: Redis sends a few keys more, and each is checked anyway.
    """
    if not pattern or not pattern.isascii() or "\\" in pattern or "[" in pattern:
        return None
    if not is_glob(pattern):
        return f"{memory.prefix}:*{pattern}*"
    return f"{memory.prefix}:{pattern.replace('?', '*')}"


def list_buyers(memory: SyncBuyerConversationMemory, chosen: BuyerFilter = EVERY_BUYER, *,
                pattern: str = "", expires_within_seconds: float | None = None,
                without_ttl: bool = False, order: str = ORDER_RECENT,
                limit: int | None = LIST_ROWS,
                progress: ProgressCallback | None = None) -> Listing:
    """The buyers matching the filter, the search and the expiry window, in ``order``
    (ties newest first), cut to ``limit`` rows after sorting (None: every match).

    Raises ValueError for a search longer than
    :data:`~memory_core.inventory.MAX_PATTERN_CHARS`, StoreUnavailable when Redis cannot
    be reached.
    """
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"a contact id search is at most {MAX_PATTERN_CHARS} characters, "
                         f"not {len(pattern)}")
    check_order(order)
    match = scan_match(memory, pattern)
    started_ms = time.time_ns() // 1_000_000
    kept: list[pd.DataFrame] = []
    matching = 0
    try:
        total = int(memory.client.dbsize()) if progress and match is None else 0
        for chunk in unique_chunks(memory, match=match, estimated_total=total,
                                   progress=progress if match is None else None):
            chunk = with_derived_columns(chunk, started_ms)
            keep = chosen.mask(chunk) & contact_id_matches(chunk["contact_id"], pattern)
            ttl_ms = chunk["ttl_ms"].to_numpy(dtype=np.int64)
            if expires_within_seconds is not None:
                keep = keep & (ttl_ms >= 0) & (ttl_ms < expires_within_seconds * 1000)
            if without_ttl:
                keep = keep & (ttl_ms < 0)
            matching += int(keep.sum())
            rows = chunk.loc[keep, list(ROW_COLUMNS)]
            if limit is None:
                kept.append(rows)
            else:
                kept = [first_in_order(pd.concat([*kept, rows]), order, limit)]
    except REDIS_FAULTS as exc:
        raise StoreUnavailable(f"Redis unreachable while listing buyers: {exc}") from exc
    found = pd.concat(kept) if kept else pd.DataFrame(columns=list(ROW_COLUMNS))
    return Listing(rows=first_in_order(found, order, len(found) or 1).reset_index(drop=True),
                   matching=matching)


def glob_escaped(text: str) -> str:
    """``text`` matched literally by Redis's glob (SCAN MATCH)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def ids_starting_with(memory: SyncBuyerConversationMemory, prefix: str,
                      limit: int) -> tuple[list[str], int]:
    """The first ``limit`` contact ids (sorted) that start with ``prefix`` and are longer,
    and how many there are: SCAN MATCH ``<prefix>*``, so Redis sends only those keys.
    Raises StoreUnavailable when Redis cannot be reached."""
    pattern = f"{memory.prefix}:{glob_escaped(prefix)}*"
    found: list[str] = []
    seen = SeenKeys()  # SCAN may return a key twice while Redis rehashes
    count = 0
    try:
        for client, _ in scan_clients(memory.client):
            for keys in _batched(client.scan_iter(
                    match=pattern.encode("utf-8", "surrogateescape"), count=1000)):
                ids = pd.Series([memory.contact_id_for(key) for key in keys], dtype=object)
                ids = ids[ids.str.startswith(prefix) & (ids != prefix)]
                ids = ids[seen.first_time(ids)]
                count += len(ids)
                found = heapq.nsmallest(limit, [*found, *ids])
    except REDIS_FAULTS as exc:
        raise StoreUnavailable(f"Redis unreachable while searching ids: {exc}") from exc
    return found, count


def _batched(keys: Iterator[Any], size: int = 1000) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
