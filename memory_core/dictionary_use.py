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

import logging
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
from memory_core.inventory import (
    DICTIONARY_USE,
    ProgressCallback,
    bytes_by_dictionary,
    current_dictionary_id,
    scan_clients,
)
from memory_core.record import compression_input
from memory_core.report import unique_chunks
from memory_core.state import dump_json
from memory_core.store import REVISION_FIELD, SyncBuyerConversationMemory

logger = logging.getLogger(__name__)

#: Dictionaries listed at most (a store is expected to hold a handful).
MAX_LISTED = 1000
#: Shortest wait after a rotation before anything is pruned, whatever the refresh setting.
MIN_ROTATION_WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class StoredDictionary:
    dictionary_id: int
    stored_bytes: int
    records: int  # records whose header names it
    current: bool  # one writers use: the store's pointer, or the id this config pins


@dataclass(frozen=True)
class DictionaryUse:
    dictionaries: list[StoredDictionary]
    #: Dictionary ids records name that are not stored (those records cannot load).
    missing: dict[int, int]
    records_without: int  # buyer records compressed without a dictionary, or not at all
    #: Seconds since a dictionary was last made current; None when unknown.
    since_rotation: float | None
    #: Stored bytes of readable records with the current dictionary, an older one, none.
    stored_bytes_by_dictionary: dict[str, int]

    def removable(self) -> list[StoredDictionary]:
        return [d for d in self.dictionaries if d.records == 0 and not d.current]

    def as_dict(self) -> dict[str, Any]:
        return {"dictionaries": [vars(d) for d in self.dictionaries],
                "missing": {str(k): v for k, v in self.missing.items()},
                "records_without_dictionary": self.records_without,
                "seconds_since_rotation": self.since_rotation,
                "stored_bytes_by_dictionary": self.stored_bytes_by_dictionary}


def rotation_window(memory: SyncBuyerConversationMemory) -> float:
    """How long after a rotation writers may still use the previous dictionary."""
    return max(MIN_ROTATION_WINDOW_SECONDS, 2 * memory.config.dictionary_refresh_seconds)


def dictionary_use(memory: SyncBuyerConversationMemory, *,
                   progress: ProgressCallback | None = None) -> DictionaryUse:
    """Every stored dictionary with the records naming it, and the stored bytes with the
    current dictionary, an older one and none (a full, streamed scan).

    Raises :class:`StoreUnavailable` if Redis cannot be reached.
    """
    try:
        stored = _stored(memory)
        pointer = dicts.parse_dictionary_id(memory.client.get(
            dicts.current_dictionary_key(memory.prefix)))
        # what the scan labels "current" (this config may pin one), and what unpinned
        # bots follow: both are in use, neither may be pruned
        current = {pointer, memory.config.dictionary_id or None} - {None}
        since = _since_rotation(memory)
        named: Counter[int] = Counter()
        by_bytes: Counter[str] = Counter()
        without = 0
        total = int(memory.client.dbsize()) if progress else 0
        for chunk in unique_chunks(memory, progress=progress, estimated_total=total):
            ids = chunk["dictionary_id"]
            named.update(int(i) for i in ids[ids > 0])
            without += int(((ids == 0) & (chunk["status"] == "ok")).sum())
            by_bytes.update(bytes_by_dictionary(chunk[chunk["status"] == "ok"]))
    except REDIS_FAULTS as exc:
        raise StoreUnavailable(f"Redis unreachable while counting dictionaries: {exc}") from exc
    listed = [StoredDictionary(i, size, named.get(i, 0), i in current)
              for i, size in sorted(stored.items())]
    missing = {i: n for i, n in sorted(named.items()) if i not in stored}
    return DictionaryUse(listed, missing, without, since,
                         {label: by_bytes[label] for label in DICTIONARY_USE})


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


#: Why a :class:`DictionaryStatus` holds no estimate: a fixed set, so nothing free-form
#: (an exception's text) is stored or drawn from the snapshot.
NO_ESTIMATE_REASONS = (
    "too_few",  # too few (or too small) states stored to train a dictionary on
    "disabled",  # use_dictionary is off: saves use no dictionary, training buys nothing
    "unavailable",  # Redis stopped answering between the scan and the estimate
    "failed",  # anything else (logged where it happened)
)
#: Each reason, said to an operator.
REASON_TEXT = {
    "too_few": f"too few buyer states are stored to train one on (at least "
               f"{dicts.MIN_TRAINING_SAMPLES} of some size, and as many again to measure it)",
    "disabled": "saves use no dictionary here (use_dictionary is false)",
    "unavailable": "Redis stopped answering; try again",
    "failed": "estimating failed (see the log); try again",
}


@dataclass(frozen=True)
class DictionaryStatus:
    """The dictionary saves used at a scan, and what a fresh one would save then.

    ``current_id`` is None when saves used none (or, with reason "unavailable", when it
    could not be read). With an estimate, ``reason`` is None and the byte counts are of
    the ``measured`` sampled states compressed as saves do now and with a fresh dictionary.
    """

    current_id: int | None
    measured: int = 0
    current_bytes: int = 0
    with_new_bytes: int = 0
    reason: str | None = None  # one of NO_ESTIMATE_REASONS when there is no estimate

    @property
    def estimated(self) -> bool:
        return self.reason is None and self.measured > 0 and self.current_bytes > 0

    @property
    def saves_use(self) -> str:
        """The dictionary saves use now, in words (the CLI and the dashboard say it so)."""
        if self.reason == "disabled":
            return "none: dictionaries are off (use_dictionary)"
        if self.current_id is not None:
            return f"dictionary {self.current_id}"
        if self.reason == "unavailable":
            return "not known: Redis did not answer"
        return "none trained yet"

    @property
    def why_not(self) -> str:
        """Why there is no estimate, in words ("" when there is one)."""
        return "" if self.estimated else REASON_TEXT.get(self.reason or "failed", "")

    def as_dict(self) -> dict[str, Any]:
        """The status as reports print it (the JSON of ``inventory`` and ``stats``)."""
        return {"current_id": self.current_id,
                "estimated_saving": round(self.saving, 4) if self.estimated else None,
                "estimated_on_states": self.measured if self.estimated else 0,
                "no_estimate": self.reason}

    @property
    def saving(self) -> float:
        """The share of the measured bytes a fresh dictionary would save (0..1)."""
        if not self.estimated:
            return 0.0
        return min(max(1 - self.with_new_bytes / self.current_bytes, 0.0), 1.0)


def dictionary_status(memory: SyncBuyerConversationMemory, *,
                      sample_size: int = OUTLOOK_SAMPLES) -> DictionaryStatus:
    """The dictionary saves use now and what a fresh one would save (:func:`estimate_saving`
    on a modest sample: about a second), or why there is no estimate.

    Never raises: the reports and scans that call it have already done their work, and an
    estimate is a nicety.
    """
    if not memory.config.use_dictionary:
        return DictionaryStatus(current_id=None, reason="disabled")
    try:
        estimate = estimate_saving(memory, sample_size=sample_size)
    except InvalidState:  # too few (or too small) states stored to train on
        return DictionaryStatus(current_id=_current_id(memory), reason="too_few")
    except (StoreUnavailable, *REDIS_FAULTS):
        return DictionaryStatus(current_id=None, reason="unavailable")
    except Exception:
        logger.exception("estimating what a fresh compression dictionary would save failed")
        return DictionaryStatus(current_id=_current_id(memory), reason="failed")
    return DictionaryStatus(current_id=estimate.current_id or None, measured=estimate.measured,
                            current_bytes=estimate.current_bytes,
                            with_new_bytes=estimate.with_new_bytes)


def _current_id(memory: SyncBuyerConversationMemory) -> int | None:
    """The id of the dictionary saves use now; None for none, or when it cannot be read."""
    try:
        return current_dictionary_id(memory) or None
    except (StoreUnavailable, *REDIS_FAULTS):
        return None
