"""Which stored zstd dictionaries records still name, removing the ones none does, and
whether training a new one would pay.

Every ``train-dictionary`` stores a new dictionary and keeps the old ones, because records
written with them need them to load. Over months that adds up (64 KB to 1 MB each). A
dictionary no record names can go, with two guards: the current one never goes, and
nothing goes within :func:`rotation_window` of a rotation, because a bot process looks
for a new dictionary only every ``dictionary_refresh_seconds`` and may still be writing
with the previous one.

Counting needs every record's header: a streamed scan (:mod:`memory_core.report`'s
chunks), memory bounded by the chunk, not the store.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis
import zstandard

from memory_core import audit
from memory_core import dictionaries as dicts
from memory_core.admin import sample_records
from memory_core.errors import REDIS_FAULTS, InvalidState, StoreUnavailable
from memory_core.inventory import ProgressCallback, scan_clients
from memory_core.record import compression_input
from memory_core.report import unique_chunks
from memory_core.state import dump_json
from memory_core.store import REVISION_FIELD, SyncBuyerConversationMemory

#: Dictionaries listed at most (a store is expected to hold a handful).
MAX_LISTED = 1000
#: Shortest wait after a rotation before anything is pruned, whatever the refresh setting.
MIN_ROTATION_WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class StoredDictionary:
    dictionary_id: int
    stored_bytes: int
    records: int  # records whose header names it
    current: bool  # the one writers use


@dataclass(frozen=True)
class DictionaryUse:
    dictionaries: list[StoredDictionary]
    #: Dictionary ids records name that are not stored (those records cannot load).
    missing: dict[int, int]
    records_without: int  # buyer records compressed without a dictionary, or not at all
    #: Seconds since a dictionary was last made current; None when unknown.
    since_rotation: float | None

    def removable(self) -> list[StoredDictionary]:
        return [d for d in self.dictionaries if d.records == 0 and not d.current]

    def as_dict(self) -> dict[str, Any]:
        return {"dictionaries": [vars(d) for d in self.dictionaries],
                "missing": {str(k): v for k, v in self.missing.items()},
                "records_without_dictionary": self.records_without,
                "seconds_since_rotation": self.since_rotation}


def rotation_window(memory: SyncBuyerConversationMemory) -> float:
    """How long after a rotation writers may still use the previous dictionary."""
    return max(MIN_ROTATION_WINDOW_SECONDS, 2 * memory.config.dictionary_refresh_seconds)


def dictionary_use(memory: SyncBuyerConversationMemory, *,
                   progress: ProgressCallback | None = None) -> DictionaryUse:
    """Every stored dictionary with the records naming it (a full, streamed scan).

    Raises :class:`StoreUnavailable` if Redis cannot be reached.
    """
    try:
        stored = _stored(memory)
        current = dicts.parse_dictionary_id(memory.client.get(
            dicts.current_dictionary_key(memory.prefix)))
        since = _since_rotation(memory)
        named: Counter[int] = Counter()
        without = 0
        total = int(memory.client.dbsize()) if progress else 0
        for chunk in unique_chunks(memory, progress=progress, estimated_total=total):
            ids = chunk["dictionary_id"]
            named.update(int(i) for i in ids[ids > 0])
            without += int(((ids == 0) & (chunk["status"] == "ok")).sum())
    except REDIS_FAULTS as exc:
        raise StoreUnavailable(f"Redis unreachable while counting dictionaries: {exc}") from exc
    listed = [StoredDictionary(i, size, named.get(i, 0), i == current)
              for i, size in sorted(stored.items())]
    missing = {i: n for i, n in sorted(named.items()) if i not in stored}
    return DictionaryUse(listed, missing, without, since)


def _stored(memory: SyncBuyerConversationMemory) -> dict[int, int]:
    """Stored dictionary ids and their sizes, from every node."""
    pattern = dicts.dictionary_key(memory.prefix, "*")
    found: dict[int, int] = {}
    for client, _ in scan_clients(memory.client):
        for key in client.scan_iter(match=pattern, count=1000):
            dictionary_id = dicts.parse_dictionary_id(key.rsplit(b":", 1)[-1])
            if dictionary_id is not None and len(found) < MAX_LISTED:
                found[dictionary_id] = int(client.strlen(key))
    return found


def _since_rotation(memory: SyncBuyerConversationMemory) -> float | None:
    """Seconds since the last rotation; None when no time is recorded, or what is there
    is not one (read bounded: any bytes may sit at that key)."""
    try:
        raw = memory.client.getrange(dicts.rotated_at_key(memory.prefix), 0, 31)
    except redis.ResponseError:  # another type at the key
        return None
    try:
        stamp = float(raw) if raw and raw.isascii() else math.nan
    except ValueError:
        return None
    return max(0.0, time.time() - stamp) if math.isfinite(stamp) else None


def check_prunable(memory: SyncBuyerConversationMemory, use: DictionaryUse) -> None:
    """InvalidState within :func:`rotation_window` of a rotation, when a bot process may
    still compress with the previous dictionary (which the scan may have seen unused)."""
    window = rotation_window(memory)
    if use.since_rotation is not None and use.since_rotation < window:
        wait = int(window - use.since_rotation) + 1
        raise InvalidState(
            f"a dictionary was made current {int(use.since_rotation)} s ago: bot processes "
            f"may still compress with the previous one for up to {int(window)} s. Nothing "
            f"was removed; run this again in {wait} s.")


def prune_dictionaries(memory: SyncBuyerConversationMemory, use: DictionaryUse, *,
                       actor: str) -> list[int]:
    """Delete the dictionaries ``use`` found unused (never the current one); the ids.

    Refused by :func:`check_prunable` right after a rotation. Each deletion is audited.
    """
    check_prunable(memory, use)
    removed = []
    for found in use.removable():
        key = dicts.dictionary_key(memory.prefix, found.dictionary_id)
        if memory.client.delete(key):
            removed.append(found.dictionary_id)
            audit.append_event(memory.client, memory.prefix, actor=actor,
                               action="prune_dictionary", contact_id="", outcome="done",
                               detail=f"dictionary {found.dictionary_id}, "
                                      f"{found.stored_bytes} bytes, no record named it")
    return removed


#: States the reports sample for their estimate: half train, half are measured.
OUTLOOK_SAMPLES = 1000


@dataclass(frozen=True)
class SavingEstimate:
    """Payload bytes of sampled states as a save would write them today (with the current
    dictionary, or none) and with a freshly trained one."""

    measured: int  # states measured (the other sampled half trained the dictionary)
    current_id: int | None  # the dictionary saves use now
    current_bytes: int
    with_new_bytes: int

    @property
    def saving(self) -> float:
        """The share of those bytes a new dictionary would save (0..1)."""
        if not self.current_bytes:
            return 0.0
        return max(0.0, 1 - self.with_new_bytes / self.current_bytes)


def estimate_saving(memory: SyncBuyerConversationMemory, *, sample_size: int = 2000,
                    dict_size_bytes: int = dicts.DEFAULT_DICTIONARY_BYTES) -> SavingEstimate:
    """What a dictionary trained now would save against the one saves use now, measured
    on stored states it was not trained on (half the sample trains, half is measured).

    Records are re-compressed when the bot saves them again, so that is the saving that
    training buys. Raises InvalidState when too few states are stored to train on.
    """
    records = [r for r in sample_records(memory, sample_size) if r.summary is not None]
    trained_on, measured = records[::2], records[1::2]
    pack = memory.config.packs_payloads
    fresh = dicts.train_dictionary(
        [dicts.training_sample(r.state, pack=pack) for r in trained_on], dict_size_bytes)
    current = memory.current_dictionary()
    current_id = current.dict_id() if current is not None else None
    level = memory.config.zstd_level
    now = zstandard.ZstdCompressor(level=level, dict_data=current, write_checksum=False)
    new = zstandard.ZstdCompressor(level=level, dict_data=fresh, write_checksum=False)
    current_bytes = with_new = 0
    for record in measured:
        state = {k: v for k, v in record.state.items() if k != REVISION_FIELD}
        data = dump_json(state)
        body = compression_input(state, data, pack=memory.config.packs_payloads)
        current_bytes += min(len(data), len(now.compress(body)))
        with_new += min(len(data), len(new.compress(body)))
    return SavingEstimate(len(measured), current_id, current_bytes, with_new)


@dataclass(frozen=True)
class DictionaryOutlook:
    """The dictionary saves use now and what a fresh one would save, for the reports."""

    current_id: int | None
    estimate: SavingEstimate | None
    #: Why there is no estimate ("" when there is one): too few states stored yet.
    unavailable: str = ""

    def as_dict(self) -> dict[str, Any]:
        estimate = self.estimate
        return {"current_id": self.current_id,
                "estimated_saving": round(estimate.saving, 4) if estimate else None,
                "estimated_on_states": estimate.measured if estimate else 0,
                "estimate_unavailable": self.unavailable or None}


def dictionary_outlook(memory: SyncBuyerConversationMemory, *,
                       sample_size: int = OUTLOOK_SAMPLES) -> DictionaryOutlook:
    """:func:`estimate_saving` on a modest sample (about a second), or why there is none.

    Raises StoreUnavailable when Redis cannot be reached.
    """
    try:
        estimate = estimate_saving(memory, sample_size=sample_size)
    except InvalidState as exc:
        current = memory.current_dictionary()
        return DictionaryOutlook(current.dict_id() if current is not None else None, None,
                                 str(exc))
    return DictionaryOutlook(estimate.current_id, estimate)
