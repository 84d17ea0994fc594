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

A dictionary holds fragments of the states it was trained on, so it is trained on
states with the buyer's name, phone and email (and any phone or email in the messages)
replaced by placeholders (:func:`training_sample`), and, with encryption keys configured,
stored encrypted (:func:`stored_value`) like the records themselves.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import zstandard

from memory_core.crypto import Keyring, is_key_id
from memory_core.errors import CorruptRecord, InvalidState, UndecryptableRecord
from memory_core.record import compression_input
from memory_core.state import (
    EMAIL_PATTERN,
    PHONE_PATTERN,
    PII_FIELDS,
    dump_json,
    name_forms,
)

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


def rotated_at_key(prefix: str) -> str:
    """When (epoch seconds) the current pointer last changed: pruning waits after it.

    Outside ``<prefix>.zdict:*``, which holds only the dictionaries and their pointer."""
    return f"{prefix}.zdict_rotated_at"


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


#: An encrypted dictionary value: this magic, the key id, a newline, nonce+ciphertext+tag.
ENCRYPTED_MAGIC = b"BCMD1"
PLACEHOLDERS = {"buyer_name": "{name}", "buyer_phone": "{phone}", "buyer_email": "{email}"}
#: Strings in one state scrubbed at most (a state is bounded by max_state_bytes anyway).
_MAX_SCRUBBED_STRINGS = 100_000


def training_sample(state: dict[str, Any], *, pack: bool = True) -> bytes:
    """A state with its PII replaced by placeholders, to train a dictionary on: the bytes
    a save would compress (packed when ``pack``, see :func:`record.compression_input`).

    The buyer's name (and each word of it, and each part of a hyphenated one:
    "Marquez-Lopez" gives "Marquez" and "Lopez" too), phone and email become ``{name}``,
    ``{phone}`` and ``{email}`` wherever they appear, and so does any email-like word or
    phone-like number in any text, whoever's it is, even glued to a word
    ("call5550001234"). The patterns and name forms are :func:`~memory_core.state.mask_pii`'s
    (one definition, linear in the text), so what a viewer never sees no dictionary holds.
    """
    name = state.get("buyer_name")
    names = name_forms(name.strip()) if isinstance(name, str) else []
    name_pattern = (re.compile("|".join(re.escape(n) for n in names), re.IGNORECASE)
                    if names else None)
    budget = [_MAX_SCRUBBED_STRINGS]

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            budget[0] -= 1
            if budget[0] < 0:
                return ""
            text = EMAIL_PATTERN.sub(PLACEHOLDERS["buyer_email"], value)
            text = PHONE_PATTERN.sub(PLACEHOLDERS["buyer_phone"], text)
            return name_pattern.sub(PLACEHOLDERS["buyer_name"], text) if name_pattern else text
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return value

    scrubbed = scrub(state)
    for field_name in PII_FIELDS:
        if scrubbed.get(field_name) not in (None, ""):
            scrubbed[field_name] = PLACEHOLDERS[field_name]
    return compression_input(scrubbed, dump_json(scrubbed), pack=pack)


def stored_value(dictionary: zstandard.ZstdCompressionDict, keyring: Keyring | None,
                 key_name: str) -> bytes:
    """The bytes to store a dictionary as: encrypted (bound to its key) when keys are set."""
    raw = dictionary.as_bytes()
    if keyring is None:
        return raw
    return (ENCRYPTED_MAGIC + keyring.primary_id.encode() + b"\n"
            + keyring.encrypt(raw, key_name.encode()))


def opened_value(value: bytes, keyring: Keyring | None, key_name: str) -> bytes:
    """A stored dictionary value as plain dictionary bytes (decrypted when encrypted)."""
    if not value.startswith(ENCRYPTED_MAGIC):
        return value
    end = value.find(b"\n", len(ENCRYPTED_MAGIC), len(ENCRYPTED_MAGIC) + 20)
    key_id = value[len(ENCRYPTED_MAGIC):end].decode("ascii", "replace") if end > 0 else ""
    if not is_key_id(key_id):
        raise CorruptRecord(f"{key_name} is an encrypted dictionary with a malformed header")
    if keyring is None:
        raise UndecryptableRecord(key_id, f"{key_name} is encrypted and no encryption keys "
                                  "are configured")
    return keyring.decrypt(key_id, memoryview(value)[end + 1:], key_name.encode())


def train_dictionary(samples: Iterable[bytes],
                     dict_size_bytes: int = DEFAULT_DICTIONARY_BYTES
                     ) -> zstandard.ZstdCompressionDict:
    """Train a zstd dictionary on serialised states (JSON bytes)."""
    # typed as zstandard's stubs take it (a list is invariant in its item type)
    sample_list: list[bytes | bytearray | memoryview] = [bytes(s) for s in samples]
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
