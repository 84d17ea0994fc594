"""Encryption at rest: AES-256-GCM keys by id, read from the environment, never from YAML.

``MEMORY_CORE_ENCRYPTION_KEYS`` (or the file named by ``MEMORY_CORE_ENCRYPTION_KEYS_FILE``)
holds comma-separated ``KEY_ID:BASE64`` pairs. The first key encrypts; every listed key
decrypts, so a key is rotated by putting a new one first, running ``reencrypt``, then
dropping the old one. A record names its key id in its (plaintext, PII-free) header, and
its ciphertext is bound by associated data to the Redis key it is stored under, so a
payload copied to another buyer's key does not decrypt.

Key material never appears in a repr, a log line or an error message: errors name the
source (variable or file) and the key id only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from memory_core.errors import ConfigError, UndecryptableRecord

KEYS_ENV = "MEMORY_CORE_ENCRYPTION_KEYS"
KEYS_FILE_ENV = "MEMORY_CORE_ENCRYPTION_KEYS_FILE"
LOOKUP_KEY_ENV = "MEMORY_CORE_LOOKUP_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
#: A keys file is a line of pairs; anything this large is the wrong file.
_MAX_KEYS_FILE_BYTES = 64 * 1024


def _decode_key(text: str, where: str) -> bytes:
    """32 bytes from standard or URL-safe base64 (padding optional)."""
    cleaned = text.strip()
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        if ":" in cleaned:  # base64 has no ':': a whole KEY_ID:BASE64 line was pasted
            raise ConfigError(f"{where} is not valid base64: it contains a ':', as a whole "
                              "`generate-key` line (KEY_ID:BASE64) does; use only the part "
                              "after the colon") from None
        raise ConfigError(f"{where} is not valid base64; generate a key with "
                          "`python -m memory_core generate-key`") from None
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{where} decodes to {len(raw)} bytes; AES-256 needs exactly "
                          f"{KEY_BYTES} (generate one with `python -m memory_core "
                          "generate-key`)")
    return raw


class Keyring:
    """The configured keys by id; the first one encrypts. Never shows key material."""

    __slots__ = ("_ciphers", "_lookup_secret", "primary_id")

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError("an encryption keyring needs at least one key")
        self.primary_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
        # Derived, not the key itself: a lookup hash must not help anyone decrypt.
        self._lookup_secret = hmac.new(keys[0][1], b"memory_core lookup v1",
                                       hashlib.sha256).digest()

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    def __repr__(self) -> str:
        return f"Keyring(primary={self.primary_id!r}, key_ids={list(self._ciphers)!r})"

    def knows(self, key_id: str) -> bool:
        return key_id in self._ciphers

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """nonce + ciphertext + tag under the first key."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._ciphers[self.primary_id].encrypt(nonce, plaintext,
                                                             associated_data)

    def decrypt(self, key_id: str, blob: bytes | memoryview, associated_data: bytes) -> bytes:
        """The plaintext, or :class:`UndecryptableRecord` naming the key id and why."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UndecryptableRecord(key_id, "unknown key id (not in "
                                      f"{KEYS_ENV}; was the key removed too early?)")
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise UndecryptableRecord(key_id, "ciphertext is too short")
        data = bytes(blob)
        try:
            return cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise UndecryptableRecord(
                key_id, "authentication failed (wrong key, tampered bytes, or a record "
                "copied from another key)") from None

    @property
    def derived_lookup_secret(self) -> bytes:
        return self._lookup_secret


def parse_keyring(text: str, source: str) -> Keyring:
    """A keyring from ``KEY_ID:BASE64[,KEY_ID:BASE64...]``; ConfigError naming ``source``."""
    pairs = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if not pairs:
        raise ConfigError(f"{source} is empty; expected KEY_ID:BASE64 pairs separated by "
                          "commas (generate one with `python -m memory_core generate-key`)")
    keys: list[tuple[str, bytes]] = []
    for position, pair in enumerate(pairs, 1):
        key_id, colon, encoded = pair.partition(":")
        key_id = key_id.strip()
        if not colon:
            raise ConfigError(f"{source}: entry {position} is not KEY_ID:BASE64 (no ':')")
        if not _KEY_ID.fullmatch(key_id):
            raise ConfigError(f"{source}: entry {position} has an invalid key id; a key id "
                              "is 1-16 characters of A-Z a-z 0-9 _ -")
        if any(key_id == known for known, _ in keys):
            raise ConfigError(f"{source}: key id {key_id!r} is listed twice")
        keys.append((key_id, _decode_key(encoded, f"{source}: the key of {key_id!r}")))
    return Keyring(keys)


def keyring_from_env(env: Mapping[str, str]) -> Keyring | None:
    """The keyring the environment configures, or None (encryption off)."""
    inline, file_name = env.get(KEYS_ENV), env.get(KEYS_FILE_ENV)
    if inline and file_name:
        raise ConfigError(f"set either {KEYS_ENV} or {KEYS_FILE_ENV}, not both")
    if file_name:
        path = Path(file_name)
        try:
            with path.open("rb") as handle:
                raw = handle.read(_MAX_KEYS_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{KEYS_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
        if len(raw) > _MAX_KEYS_FILE_BYTES:
            raise ConfigError(f"{KEYS_FILE_ENV}: {path} is larger than "
                              f"{_MAX_KEYS_FILE_BYTES} bytes; is it the right file?")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{KEYS_FILE_ENV}: {path} is not UTF-8 text") from None
        return parse_keyring(text, f"{KEYS_FILE_ENV} ({path})")
    if inline is not None:
        return parse_keyring(inline, KEYS_ENV)
    return None


def lookup_secret_from_env(env: Mapping[str, str], keyring: Keyring | None) -> bytes | None:
    """The secret of the phone/email lookup hashes: its own, else derived from the first key.

    Its own is the base64 key alone; a pasted ``KEY_ID:BASE64`` line is refused by
    :func:`_decode_key` with a message saying to keep only the part after the colon.
    """
    raw = env.get(LOOKUP_KEY_ENV)
    if raw is not None:
        return _decode_key(raw, LOOKUP_KEY_ENV)
    return keyring.derived_lookup_secret if keyring is not None else None


def generate_key_pair(key_id: str | None = None) -> str:
    """A fresh ``KEY_ID:BASE64`` pair (32 random bytes, standard base64)."""
    if key_id is None:
        key_id = f"k{datetime.now(UTC):%Y%m%d}{secrets.token_hex(2)}"
    if not _KEY_ID.fullmatch(key_id):
        raise ConfigError(f"key id {key_id!r} is invalid; use 1-16 characters of "
                          "A-Z a-z 0-9 _ -")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def is_key_id(text: str) -> bool:
    return _KEY_ID.fullmatch(text) is not None
