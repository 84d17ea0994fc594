"""Which stored zstd dictionaries records still name, and removing the ones none does.

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

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from memory_core import audit
from memory_core import dictionaries as dicts
from memory_core.errors import REDIS_FAULTS, InvalidState, StoreUnavailable
from memory_core.inventory import (
    ProgressCallback,
    scan_clients,
    summary_chunks,
    walk_batches,
)
from memory_core.report import SeenKeys
from memory_core.store import SyncBuyerConversationMemory

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
        seen = SeenKeys()
        total = int(memory.client.dbsize()) if progress else 0
        for chunk in summary_chunks(memory, walk_batches(memory), progress, total, 50_000):
            chunk = chunk[seen.first_time(chunk["contact_id"])]
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
    raw = memory.client.get(dicts.rotated_at_key(memory.prefix))
    try:
        return max(0.0, time.time() - float(raw)) if raw else None
    except ValueError:
        return None


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
