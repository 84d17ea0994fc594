"""Trained zstd dictionaries: where they live in Redis and how readers cache them.

Chat states share most of their structure (field names, greetings, phrasing), so a
dictionary trained on a sample of real states compresses each one far better than plain
zstd. A dictionary is immutable once stored under its id (``<prefix>.zdict:<id>``);
``<prefix>.zdict:current`` names the one writers use. Records name the id they were
written with, so records written with an older dictionary stay readable after rotation.
The keys sit outside ``<prefix>:*`` so buyer scans never see them.

Whoever can write keys can plant dictionaries and records that name them, so a reader
accepts dictionaries up to :data:`MAX_DICTIONARY_BYTES`, caches a bounded number of them,
and reads the current-dictionary pointer strictly (a bad pointer only disables the
dictionary).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

import zstandard

from memory_core.errors import CorruptRecord, InvalidState

DEFAULT_DICTIONARY_BYTES = 64 * 1024
MIN_TRAINING_SAMPLES = 20
#: The largest dictionary ``train-dictionary`` writes (``--size-kb 1024``) and readers accept.
MAX_DICTIONARY_BYTES = 1024 * 1024
#: Dictionaries a reader keeps: the current one plus a few older ones still named by records.
CACHED_DICTIONARIES = 8
CACHED_DICTIONARY_BYTES = 8 * 1024 * 1024
_MAX_DICTIONARY_ID = 2**32 - 1


def dictionary_key(prefix: str, dictionary_id: int | str) -> str:
    return f"{prefix}.zdict:{dictionary_id}"


def current_dictionary_key(prefix: str) -> str:
    return dictionary_key(prefix, "current")


def parse_dictionary_id(raw: bytes | str | None) -> int | None:
    """A dictionary id as stored in the current pointer, or None when it is not one.

    Strict on purpose: the pointer comes from Redis, and ``int()`` of a 5,000-digit value
    raises (Python's int-conversion limit), which once stopped every large save.
    """
    if raw is None:
        return None
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= _MAX_DICTIONARY_ID else None


def train_dictionary(samples: Iterable[bytes],
                     dict_size_bytes: int = DEFAULT_DICTIONARY_BYTES
                     ) -> zstandard.ZstdCompressionDict:
    """Train a zstd dictionary on serialised states (JSON bytes)."""
    sample_list = [bytes(s) for s in samples]
    if len(sample_list) < MIN_TRAINING_SAMPLES:
        raise InvalidState(f"training a dictionary needs at least {MIN_TRAINING_SAMPLES} "
                           f"states; found {len(sample_list)}. Seed or collect more first.")
    try:
        return zstandard.train_dictionary(dict_size_bytes, sample_list)
    except zstandard.ZstdError as exc:
        raise InvalidState(f"zstd could not train a dictionary from these samples: {exc}; "
                           "try more or larger states") from None


class DictionaryCache:
    """Dictionaries by id (a bounded LRU; ids are immutable) and the current id (refreshed)."""

    def __init__(self, refresh_seconds: float, max_entries: int = CACHED_DICTIONARIES,
                 max_bytes: int = CACHED_DICTIONARY_BYTES) -> None:
        self._by_id: OrderedDict[int, tuple[zstandard.ZstdCompressionDict, int]] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._refresh_seconds = refresh_seconds
        self._current_id: int = 0
        self._checked_at: float | None = None

    def get(self, dictionary_id: int) -> zstandard.ZstdCompressionDict | None:
        found = self._by_id.get(dictionary_id)
        if found is None:
            return None
        self._by_id.move_to_end(dictionary_id)
        return found[0]

    def add(self, raw: bytes, expected_id: int) -> zstandard.ZstdCompressionDict:
        """Cache the dictionary stored under ``expected_id``; refuse one that is not it."""
        if len(raw) > MAX_DICTIONARY_BYTES:
            raise CorruptRecord(f"the key for zstd dictionary {expected_id} holds more than "
                                f"{MAX_DICTIONARY_BYTES} bytes; refused")
        try:
            dictionary = zstandard.ZstdCompressionDict(raw)
            found_id = dictionary.dict_id()
        except zstandard.ZstdError as exc:
            raise CorruptRecord(f"zstd dictionary {expected_id} is unreadable: {exc}") from None
        if found_id != expected_id:
            raise CorruptRecord(f"the key for zstd dictionary {expected_id} holds "
                                f"dictionary {found_id} (overwritten or corrupt)")
        if expected_id in self._by_id:
            self._bytes -= self._by_id.pop(expected_id)[1]
        self._by_id[expected_id] = (dictionary, len(raw))
        self._bytes += len(raw)
        while len(self._by_id) > 1 and (len(self._by_id) > self._max_entries
                                        or self._bytes > self._max_bytes):
            evicted_id, (_, size) = next(iter(self._by_id.items()))
            if evicted_id == self._current_id and expected_id != evicted_id:
                self._by_id.move_to_end(evicted_id)  # keep the one writers use
                evicted_id, (_, size) = next(iter(self._by_id.items()))
            del self._by_id[evicted_id]
            self._bytes -= size
        return dictionary

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def current_id(self) -> int:
        return self._current_id

    def current_is_stale(self) -> bool:
        return (self._checked_at is None
                or time.monotonic() - self._checked_at >= self._refresh_seconds)

    def mark_stale(self) -> None:
        """Look for the current dictionary again on the next save."""
        self._checked_at = None

    def set_current(self, dictionary_id: int) -> None:
        self._current_id = dictionary_id
        self._checked_at = time.monotonic()

    def current(self) -> zstandard.ZstdCompressionDict | None:
        return self.get(self._current_id) if self._current_id else None
