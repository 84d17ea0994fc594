"""Trained zstd dictionaries: where they live in Redis and how readers cache them.

Chat states share most of their structure (field names, greetings, phrasing), so a
dictionary trained on a sample of real states compresses each one far better than plain
zstd. A dictionary is immutable once stored under its id (``<prefix>.zdict:<id>``);
``<prefix>.zdict:current`` names the one writers use. Records name the id they were
written with, so records written with an older dictionary stay readable after rotation.
The keys sit outside ``<prefix>:*`` so buyer scans never see them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import zstandard

from memory_core.errors import CorruptRecord, InvalidState

DEFAULT_DICTIONARY_BYTES = 64 * 1024
MIN_TRAINING_SAMPLES = 20


def dictionary_key(prefix: str, dictionary_id: int | str) -> str:
    return f"{prefix}.zdict:{dictionary_id}"


def current_dictionary_key(prefix: str) -> str:
    return dictionary_key(prefix, "current")


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
    """Dictionaries by id (kept forever: ids are immutable) and the current id (refreshed)."""

    def __init__(self, refresh_seconds: float) -> None:
        self._by_id: dict[int, zstandard.ZstdCompressionDict] = {}
        self._refresh_seconds = refresh_seconds
        self._current_id: int = 0
        self._checked_at: float | None = None

    def get(self, dictionary_id: int) -> zstandard.ZstdCompressionDict | None:
        return self._by_id.get(dictionary_id)

    def add(self, raw: bytes, expected_id: int) -> zstandard.ZstdCompressionDict:
        """Cache the dictionary stored under ``expected_id``; refuse one that is not it."""
        dictionary = zstandard.ZstdCompressionDict(raw)
        if dictionary.dict_id() != expected_id:
            raise CorruptRecord(f"the key for zstd dictionary {expected_id} holds "
                                f"dictionary {dictionary.dict_id()} (overwritten or corrupt)")
        self._by_id[expected_id] = dictionary
        return dictionary

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
        return self._by_id.get(self._current_id) if self._current_id else None
