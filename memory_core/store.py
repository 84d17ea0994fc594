"""The buyer memory: save, load and clear one state per buyer, never failing the bot.

The logic is written once, as generators that *yield* Redis commands and receive the
replies ("sans-I/O"). :class:`BuyerConversationMemory` (asyncio, for the bot) and
:class:`SyncBuyerConversationMemory` (for the CLI and dashboard) differ only in the
small driver that sends those commands, so both behave identically by construction.

Runtime faults (Redis down or slow, corrupt bytes, a key of the wrong type, bad input)
never raise out of ``save_state``/``load_state``/``clear_state``: they log one line and
return ``False``/``None``. A circuit breaker makes calls skip a dead Redis at once.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self, TypeVar

import redis
import redis.asyncio
import zstandard

from memory_core import dictionaries as dicts
from memory_core import keylocks, lookup, scripts
from memory_core.breaker import CircuitBreaker
from memory_core.cache_view import AsyncCacheView, SyncCacheView
from memory_core.config import MemoryConfig, default_config, load_config
from memory_core.connection import (
    DEFAULT_REDIS_URL,
    REDIS_URL_ENV,
    connect,
    connect_async,
    is_cluster_client,
    parse_target,
)
from memory_core.errors import (
    REDIS_FAULTS,
    CorruptRecord,
    InvalidState,
    KeyNotConfigured,
    MemoryCoreError,
    MissingDictionary,
    StoreUnavailable,
    UndecryptableRecord,
    WrongTypeRecord,
)
from memory_core.health import HealthPublisher
from memory_core.legacy import decode_legacy, looks_legacy
from memory_core.migrations import migrate
from memory_core.record import (
    CODEC_ZSTD,
    HEADER_READ_BYTES,
    RecordSummary,
    decode_state,
    encode_record_parts,
    is_record,
    parse_summary,
    stored_revision,
)
from memory_core.safetext import LOG_CHARS, printable
from memory_core.state import (
    STATE_DEFAULTS,
    STATE_VERSION,
    check_finite,
    check_storable_shape,
    dump_json,
    is_newer_than_known,
    prepare_state,
    shown_contact_id,
    utc_now,
    validate_contact_id,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
Command = tuple[Any, ...]
#: The field a loaded state carries its revision in; never stored inside the JSON.
REVISION_FIELD = "state_revision"
#: A step sends one command, a list of them (one pipeline), or asks the driver for an
#: effect (call the caller's function, sleep) that differs between sync and asyncio.
Steps = Generator["Command | list[Command] | _Effect", Any, T]
#: (contact_id, state, ttl_override seconds or None, interaction time or None = now)
SaveItem = tuple[str, dict[str, Any], int | None, datetime | None]
#: A function ``update_state`` applies: a plain function, or ``async def`` on the asyncio class.
UpdateFn = Callable[[dict[str, Any]], "dict[str, Any] | Awaitable[dict[str, Any] | None] | None"]
_CONNECTION_FAULTS = REDIS_FAULTS
_TIMEOUTS = (redis.TimeoutError, TimeoutError)
#: Shortest pause between two breaker probes, whatever the configured interval.
_MIN_PROBE_SECONDS = 0.05
#: First back-off after a conflicting save in update_state; doubled per retry, jittered.
_BACKOFF_SECONDS = 0.005
_BACKOFF_MAX_SECONDS = 0.1
#: How long a save asked to reach replicas (``wait_replicas``) waits for them by default,
#: and at most: the bot is waiting for this reply.
DEFAULT_WAIT_TIMEOUT_MS = 250
MAX_WAIT_TIMEOUT_MS = 10_000
#: More replicas than any deployment has: a typo, not a policy.
MAX_WAIT_REPLICAS = 16
#: Time the WAIT reply needs to travel, inside the socket timeout.
_WAIT_MARGIN_MS = 100


@dataclass(frozen=True, slots=True)
class Replication:
    """What a save waits for before it counts as done: ``replicas`` acknowledgements
    within ``timeout_ms`` (Redis ``WAIT``)."""

    replicas: int
    timeout_ms: int

    @classmethod
    def asked(cls, replicas: object, timeout_ms: object) -> Replication | None:
        """The caller's ``wait_replicas``/``wait_timeout_ms``; None for 0 replicas (the
        default: Redis replicates asynchronously and the save does not wait)."""
        for name, value, low, high in (("wait_replicas", replicas, 0, MAX_WAIT_REPLICAS),
                                       ("wait_timeout_ms", timeout_ms, 1, MAX_WAIT_TIMEOUT_MS)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidState(f"{name}={value!r} must be a whole number from {low} to "
                                   f"{high:,}")
        assert isinstance(replicas, int) and isinstance(timeout_ms, int)
        return cls(replicas, timeout_ms) if replicas else None


@dataclass(frozen=True)
class StoredRecord:
    """A state with what the operator tools show beside it."""

    contact_id: str
    state: dict[str, Any]
    summary: RecordSummary | None  # None for a legacy (pickled) record
    ttl_seconds: int | None  # None when the key never expires
    legacy: bool
    revision: int = 0


@dataclass(frozen=True)
class SeedWrite:
    """What a guarded batch write did: written, and ids left alone as real buyers."""

    written: int
    kept_real: tuple[str, ...]


class _Effect:
    """Something a step asks of the driver other than a Redis command."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Sleep(_Effect):
    seconds: float


@dataclass(frozen=True, slots=True)
class _Apply(_Effect):
    fn: UpdateFn
    state: dict[str, Any]


class _Replies(list[Command]):
    """A pipeline whose error replies come back in the list instead of raising the first."""

    __slots__ = ()


class _Replicated(_Replies):
    """A save's pipeline followed by ``WAIT``: its last reply counts the replicas that
    acknowledged the save within the timeout."""

    __slots__ = ("key", "replication")

    def __init__(self, commands: list[Command], key: str, replication: Replication) -> None:
        super().__init__(commands)
        self.key = key
        self.replication = replication


def _pipeline(client: Any, commands: list[Command]) -> Any:
    """The commands as one pipeline (sync or asyncio client alike), not yet executed.

    ``WAIT`` counts the writes of the connection it is sent on, so for a
    :class:`_Replicated` save it goes in the same pipeline, and on a cluster to the
    node that owns the key: the node's share of a cluster pipeline is one connection.
    """
    pipe = client.pipeline(transaction=False)
    for item in commands:
        pipe.execute_command(*item)
    if isinstance(commands, _Replicated):
        wanted = commands.replication
        target = ({"target_nodes": client.get_node_from_key(commands.key)}
                  if is_cluster_client(client) else {})
        pipe.execute_command("WAIT", wanted.replicas, wanted.timeout_ms, **target)
    return pipe


class _Unreplicated(Exception):
    """A save was stored, but fewer replicas than asked acknowledged it in time."""

    def __init__(self, acknowledged: int, replication: Replication) -> None:
        super().__init__(f"{acknowledged} of {replication.replicas} replicas acknowledged")
        self.acknowledged = acknowledged
        self.replication = replication


class _CallerFault(Exception):
    """The caller's update function raised: its bug, re-raised to it unchanged."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


@dataclass(frozen=True, slots=True)
class _Encoded:
    """One save, validated and encoded, waiting for the revision the server counts."""

    contact_id: str
    key: str
    prepared: dict[str, Any]
    head: bytes
    tail: bytes
    ttl_seconds: int
    #: The key ids this writer can decrypt: a record under another one is never replaced.
    readable_key_ids: str

    def record(self, revision: int) -> bytes:
        return self.head + str(revision).encode() + self.tail

    def script_command(self, expected_revision: int | None, guard: str = "", *,
                       keep_ttl: bool = False) -> Command:
        ttl = scripts.KEEP_TTL if keep_ttl else self.ttl_seconds
        return ("EVALSHA", scripts.SAVE.sha, 1, self.key, scripts.expected_arg(expected_revision),
                ttl, self.head, self.tail, guard, self.readable_key_ids)


class _MemoryLogic:
    """All behaviour of the memory, expressed as command-yielding steps."""

    #: Opens a client of the right kind (sync or asyncio) for :meth:`from_url`.
    _connect: ClassVar[Callable[..., Any]]

    def __init__(self, client: Any, config: MemoryConfig | None = None, *,
                 owns_client: bool = False) -> None:
        _check_client(client)
        self.client = client
        self._owns_client = owns_client
        self._closed = False
        self.config = config or default_config()
        self.prefix = self.config.cache_key_prefix
        self._breaker = CircuitBreaker(self.config.failure_threshold)
        self._breaker_opened_at = 0.0
        self._dictionaries = dicts.DictionaryCache(self.config.dictionary_refresh_seconds)
        self._bad_pointer_warned = False
        self._counters: Counter[str] = Counter()
        #: ``observer(operation, seconds)`` after each bot call that went to Redis (see
        #: :mod:`memory_core.metrics`); None, the default, costs one check per call.
        self.observer: Callable[[str, float], None] | None = None
        #: Publishes the counters for the health panel (opt-in: health_publish_seconds).
        self._health = (HealthPublisher(self.prefix, self.config.health_publish_seconds,
                                        type(self).__name__)
                        if self.config.health_publish_seconds else None)
        #: A load reads at most this many bytes of a value: an honest record is its header
        #: plus a payload no larger than max_state_bytes (zstd adds a little to data that
        #: does not compress). Anything longer is refused unread.
        keyring = self.config.keyring
        self._readable_key_ids = " ".join(keyring.key_ids) if keyring else ""
        self.read_limit_bytes = (self.config.max_state_bytes + self.config.max_state_bytes // 64
                                 + HEADER_READ_BYTES + 1024)

    @classmethod
    def from_url(cls, url: str, config: MemoryConfig | None = None) -> Self:
        """A memory with its own client for ``url``; close it when done."""
        config = config or default_config()
        return cls(cls._connect(url, config, detect_cluster=True), config, owns_client=True)

    # keys ---------------------------------------------------------------------------
    def key_for(self, contact_id: str) -> str:
        return f"{self.prefix}:{validate_contact_id(contact_id)}"

    def contact_id_for(self, key: str | bytes) -> str:
        """The id part of a key; undecodable bytes survive as surrogates (see raw_key_for)."""
        text = key.decode("utf-8", "surrogateescape") if isinstance(key, bytes) else key
        return text[len(self.prefix) + 1:]

    def raw_key_for(self, contact_id: str) -> bytes:
        """The exact key bytes of an id from a scan, even one no bot would write."""
        return f"{self.prefix}:{contact_id}".encode("utf-8", "surrogateescape")

    @property
    def scan_pattern(self) -> str:
        return f"{self.prefix}:*"

    # pure parts ---------------------------------------------------------------------
    def ttl_seconds_for(self, ttl_override: object) -> int:
        """The TTL of one save; refuses overrides that are not 1..ttl_days_max days."""
        if ttl_override is None:
            return self.config.ttl_seconds
        if (isinstance(ttl_override, bool) or not isinstance(ttl_override, int)
                or ttl_override <= 0):
            raise InvalidState(f"ttl_override={ttl_override!r} must be a positive whole "
                               "number of seconds")
        if ttl_override > self.config.ttl_max_seconds:
            raise InvalidState(
                f"ttl_override={ttl_override}s exceeds ttl_days_max "
                f"({self.config.ttl_days_max} days = {self.config.ttl_max_seconds}s)")
        return ttl_override

    def prepare(self, state: object, now: datetime | None = None) -> tuple[dict[str, Any], bytes]:
        """Validate and shape a state; return it with its JSON bytes (no I/O).

        A ``state_revision`` the caller passes is dropped: the stored count wins.
        """
        prepared = prepare_state(state, max_history_messages=self.config.max_history_messages,
                                 now=now or utc_now(), check_values=False)
        prepared.pop(REVISION_FIELD, None)  # a new dict: the caller's state is untouched
        data = dump_json(prepared)
        if len(data) > self.config.max_state_bytes:
            raise InvalidState(
                f"state is {len(data)} bytes of JSON after trimming history to "
                f"{self.config.max_history_messages} messages; the limit is "
                f"max_state_bytes={self.config.max_state_bytes}")
        if b"null" in data:  # orjson writes NaN and infinity as null: no null, none of them
            check_finite(prepared)  # after the size check: the walk is the slow part
        return prepared, data

    def _wants_dictionary(self, data_bytes: int) -> bool:
        return (self.config.use_dictionary and self.config.codec == CODEC_ZSTD
                and data_bytes > self.config.compress_threshold_bytes)

    def _upgrade(self, key: str, state: dict[str, Any]) -> dict[str, Any]:
        version = state.get("state_version")
        if version == STATE_VERSION:
            return state  # the common case, kept off the migration machinery
        if isinstance(version, str) and is_newer_than_known(version):
            logger.warning("%s was written with schema %s, newer than %s; returned as is",
                           printable(key, LOG_CHARS), printable(version, 40), STATE_VERSION)
            return state
        try:
            return migrate(state)
        except ValueError as exc:
            raise CorruptRecord(str(exc)) from None

    @staticmethod
    def _check_expected_revision(expected_revision: object) -> int | None:
        if expected_revision is None:
            return None
        if (isinstance(expected_revision, bool) or not isinstance(expected_revision, int)
                or expected_revision < 0):
            raise InvalidState(f"expected_revision={expected_revision!r} must be a whole "
                               "number >= 0 (the state_revision load_state returned)")
        return expected_revision

    # steps --------------------------------------------------------------------------
    def _read_steps(self, command: Command | list[Command],
                    what: str = "a buyer record") -> Steps[Any]:
        """One read (a command, or a pipeline on one key); a WRONGTYPE answer means the
        key holds something that is not ours: :class:`WrongTypeRecord` names its type."""
        try:
            return (yield command)
        except redis.ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                key = command[0][1] if isinstance(command, list) else command[1]
                raise (yield from self._wrong_type_steps(key, what)) from None
            raise

    def _wrong_type_steps(self, key: str | bytes, what: str = "a buyer record"
                          ) -> Steps[WrongTypeRecord]:
        """The error for a key that answered WRONGTYPE, naming the type it holds (one
        ``TYPE``; a server that refuses it gets "another Redis type")."""
        try:
            kind = yield ("TYPE", key)
        except redis.ResponseError:  # TYPE denied by an ACL: the reason stays plain
            kind = None
        if isinstance(kind, bytes):
            kind = kind.decode("utf-8", "replace")
        return WrongTypeRecord(kind if isinstance(kind, str) else None, what)

    def _value_command(self, key: str | bytes) -> Command:
        """Read a value, but never more than a record can honestly be (see read_limit_bytes)."""
        return ("GETRANGE", key, 0, self.read_limit_bytes)

    def _check_value_size(self, raw: bytes) -> None:
        if len(raw) > self.read_limit_bytes:
            raise CorruptRecord(f"the value is larger than {self.read_limit_bytes} bytes, more "
                                f"than a record of max_state_bytes={self.config.max_state_bytes}"
                                " can be; not read")

    def _eval_steps(self, command: Command | list[Command], script: scripts.Script
                    ) -> Steps[Any]:
        """An EVALSHA, or a pipeline of them; when Redis lost its script cache (a restart,
        SCRIPT FLUSH), load the script and send again (nothing ran: every one said NOSCRIPT)."""
        try:
            return (yield command)
        except redis.exceptions.NoScriptError:
            pass
        yield ("SCRIPT LOAD", script.source)
        return (yield command)

    def _current_dictionary_steps(self) -> Steps[zstandard.ZstdCompressionDict | None]:
        if self._dictionaries.current_is_stale():
            current_id = self.config.dictionary_id
            if not current_id:
                pointer = dicts.current_dictionary_key(self.prefix)
                try:
                    raw_id = yield from self._read_steps(("GETRANGE", pointer, 0, 31),
                                                         "a dictionary id")
                except CorruptRecord as exc:
                    self._warn_bad_pointer(f"the key is unreadable ({exc})")
                    raw_id = None
                current_id = dicts.parse_dictionary_id(raw_id) or 0
                if raw_id and not current_id:
                    self._warn_bad_pointer(f"it holds {bytes(raw_id[:20])!r}, not a dictionary id")
            if current_id and self._dictionaries.get(current_id) is None:
                try:
                    yield from self._dictionary_steps(current_id)
                except CorruptRecord as exc:
                    logger.warning("not compressing with a dictionary: %s", exc)
                    current_id = 0
            self._dictionaries.set_current(current_id)
        return self._dictionaries.current()

    def _warn_bad_pointer(self, why: str) -> None:
        """One warning per process for a bad current-dictionary pointer; saves go on without."""
        if not self._bad_pointer_warned:
            self._bad_pointer_warned = True
            logger.warning("not compressing with a dictionary: %s: %s",
                           dicts.current_dictionary_key(self.prefix), why)

    def _dictionary_steps(self, dictionary_id: int) -> Steps[zstandard.ZstdCompressionDict]:
        found = self._dictionaries.get(dictionary_id)
        if found is not None:
            return found
        key = dicts.dictionary_key(self.prefix, dictionary_id)
        # room for the encrypted form's header, nonce and tag
        raw = yield from self._read_steps(("GETRANGE", key, 0, dicts.MAX_DICTIONARY_BYTES + 64),
                                          "a compression dictionary")
        if not raw:
            raise MissingDictionary(dictionary_id)
        return self._dictionaries.add(dicts.opened_value(raw, self.config.keyring, key),
                                      expected_id=dictionary_id)

    def _encode_steps(self, contact_id: object, state: object, ttl_override: object,
                      now: datetime | None = None) -> Steps[_Encoded]:
        """Validate and encode one save (I/O only to fetch the current dictionary)."""
        key = self.key_for(contact_id)  # type: ignore[arg-type]
        ttl = self.ttl_seconds_for(ttl_override)
        prepared, data = self.prepare(state, now)
        dictionary = None
        if self._wants_dictionary(len(data)):
            dictionary = yield from self._current_dictionary_steps()
        head, tail = encode_record_parts(
            prepared, data, compress_threshold_bytes=self.config.compress_threshold_bytes,
            codec=self.config.codec, zstd_level=self.config.zstd_level, dictionary=dictionary,
            keyring=self.config.keyring, key_name=key.encode(),
            pack=self.config.packs_payloads)
        return _Encoded(str(contact_id), key, prepared, head, tail, ttl, self._readable_key_ids)

    def _write_steps(self, contact_id: object, state: object, ttl_override: object,
                     expected_revision: object, replication: Replication | None = None
                     ) -> Steps[tuple[dict[str, Any] | None, int]]:
        """Save once: (the stored state, its new revision), or (None, stored) on a conflict.

        With ``replication``, a save the replicas did not acknowledge in time is stored
        but raises :class:`_Unreplicated` after counting it.
        """
        expected = self._check_expected_revision(expected_revision)
        encoded = yield from self._encode_steps(contact_id, state, ttl_override)
        save = encoded.script_command(expected)
        index = [] if self.config.lookup_secret is None else lookup.index_commands(
            self.prefix, self.config.lookup_secret, encoded.contact_id, encoded.prepared,
            encoded.ttl_seconds)
        acknowledged = None
        if index or replication:
            code, revision, acknowledged = yield from self._save_pipeline_steps(
                encoded, save, index, replication)
        else:
            code, revision = yield from self._eval_steps(save, scripts.SAVE)
        if code == scripts.UNKNOWN_KEY:
            raise KeyNotConfigured(self._who(contact_id))
        if code != scripts.DONE:
            self._counters["conflicts"] += 1
            return None, int(revision)
        self._counters["saves"] += 1
        if replication and acknowledged is not None and acknowledged < replication.replicas:
            self._counters["unreplicated"] += 1
            raise _Unreplicated(acknowledged, replication)
        return {**encoded.prepared, REVISION_FIELD: int(revision)}, int(revision)

    def _save_pipeline_steps(self, encoded: _Encoded, save: Command, index: list[Command],
                             replication: Replication | None
                             ) -> Steps[tuple[int, int, int | None]]:
        """The save, its lookup entries and its ``WAIT`` in one round trip: (code, revision,
        replicas that acknowledged or None); the save's reply decides.

        Adding an entry is idempotent and lookups are verified, so an entry sent with a
        save that then conflicts costs nothing; a refused entry only logs a warning.
        """
        commands = [save, *index]

        def pipeline() -> _Replies:
            return (_Replicated(commands, encoded.key, replication) if replication
                    else _Replies(commands))

        replies = yield pipeline()
        if isinstance(replies[0], redis.exceptions.NoScriptError):
            yield ("SCRIPT LOAD", scripts.SAVE.source)
            replies = yield pipeline()
        if isinstance(replies[0], Exception):
            raise replies[0]
        waited = replies[len(commands)] if replication else None
        if isinstance(waited, Exception):
            raise waited
        refused = [r for r in replies[1:len(commands)] if isinstance(r, Exception)]
        if refused:
            logger.warning("save %s: the phone/email lookup was not updated (%s); the state "
                           "was saved", self._who(encoded.contact_id), type(refused[0]).__name__)
        code, revision = replies[0]
        return int(code), int(revision), None if waited is None else int(waited)

    def _lookup_steps(self, who: str, commands: list[Command]) -> Steps[None]:
        """Keep the phone/email lookup in step; the save stands even if this fails.

        Lookups are verified against the state when used, so a missed update costs a
        stale entry (removed when found), never a wrong answer.
        """
        if not commands:
            return
        try:
            yield commands
        except (redis.RedisError, OSError) as exc:
            logger.warning("save %s: the phone/email lookup was not updated (%s); the state "
                           "was saved", who, type(exc).__name__)

    def _rewrite_steps(self, contact_id: str, state: dict[str, Any], expected_revision: int,
                       now: datetime | None, ttl_seconds: int | None
                       ) -> Steps[tuple[int, int]]:
        encoded = yield from self._encode_steps(contact_id, state, None, now)
        code, revision = yield from self._eval_steps(
            encoded.script_command(expected_revision, keep_ttl=True), scripts.SAVE)
        if code == scripts.DONE and self.config.lookup_secret is not None:
            # the lookup secret may be new too (derived from a new first key)
            yield from self._lookup_steps(self._who(contact_id), lookup.index_commands(
                self.prefix, self.config.lookup_secret, contact_id, encoded.prepared,
                ttl_seconds if ttl_seconds else self.config.ttl_max_seconds))
        return int(code), int(revision)

    def _save_steps(self, contact_id: object, state: object, ttl_override: object,
                    expected_revision: object = None, wait_replicas: object = 0,
                    wait_timeout_ms: object = DEFAULT_WAIT_TIMEOUT_MS) -> Steps[bool]:
        replication = Replication.asked(wait_replicas, wait_timeout_ms)
        if replication:
            self._check_wait_fits(replication)
        try:
            saved, revision = yield from self._write_steps(contact_id, state, ttl_override,
                                                           expected_revision, replication)
        except _Unreplicated as short:
            logger.warning("save %s: stored on the primary, but %d of %d replica(s) "
                           "acknowledged it within %d ms: it is lost if the primary fails "
                           "before they catch up", self._who(contact_id), short.acknowledged,
                           short.replication.replicas, short.replication.timeout_ms)
            return False
        if saved is None:
            logger.info("save %s: conflict, expected revision %s but revision %d is stored; "
                        "nothing written", self._who(contact_id), expected_revision, revision)
            return False
        return True

    def _check_wait_fits(self, replication: Replication) -> None:
        """WAIT holds the reply up to its timeout: past the socket timeout that would read
        as Redis being unreachable (and open the circuit breaker)."""
        limit_ms = int(self.config.socket_timeout_seconds * 1000) - _WAIT_MARGIN_MS
        if replication.timeout_ms > limit_ms:
            raise InvalidState(
                f"wait_timeout_ms={replication.timeout_ms} leaves no time within "
                f"socket_timeout_seconds={self.config.socket_timeout_seconds:g}: use at most "
                f"{max(limit_ms, 0)} ms, or raise socket_timeout_seconds")

    def _decode_steps(self, key: str, raw: bytes) -> Steps[tuple[dict[str, Any], int]]:
        """The state in ``raw`` and its revision; CorruptRecord when it cannot be read."""
        self._check_value_size(raw)
        if is_record(raw):
            header = parse_summary(raw)
            dictionary = None
            if header.dictionary_id:
                dictionary = yield from self._dictionary_steps(header.dictionary_id)
            state = decode_state(raw, header, dictionary,
                                 max_bytes=self.config.max_state_bytes,
                                 keyring=self.config.keyring, key_name=key.encode())
            revision = header.revision
        elif looks_legacy(raw):
            state, revision = decode_legacy(raw, max_bytes=self.config.max_state_bytes), 0
        else:
            raise CorruptRecord("unrecognised bytes (not a memory_core or legacy record)")
        if not isinstance(state, dict):
            raise CorruptRecord("payload is not a JSON object")
        state = self._upgrade(key, state)
        try:
            check_storable_shape(state)
        except InvalidState as exc:
            raise CorruptRecord(f"the state could not be saved back: {exc}") from None
        state[REVISION_FIELD] = revision
        return state, revision

    def _load_steps(self, contact_id: object) -> Steps[dict[str, Any] | None]:
        key = self.key_for(contact_id)  # type: ignore[arg-type]
        self._counters["loads"] += 1
        raw = yield from self._read_steps(self._value_command(key))
        if not raw:  # GETRANGE answers "" for a missing key
            self._counters["misses"] += 1
            return None
        state, _ = yield from self._decode_steps(key, raw)
        self._counters["hits"] += 1
        return state

    def _load_for_update_steps(self, contact_id: str, key: str
                               ) -> Steps[tuple[dict[str, Any] | None, int]]:
        """The state and the revision the save script will compare against.

        An unreadable record is no saved state, as for ``load_state``; its revision is
        still the one the script counts, so the fresh state can replace it.
        """
        try:
            raw = yield from self._read_steps(self._value_command(key))
        except CorruptRecord as exc:
            self._log_corrupt("update", contact_id, exc)
            return None, 0
        if not raw:
            return None, 0
        try:
            return (yield from self._decode_steps(key, raw))
        except CorruptRecord as exc:
            self._log_corrupt("update", contact_id, exc)
            return None, stored_revision(raw[:HEADER_READ_BYTES])

    def _update_steps(self, contact_id: object, fn: UpdateFn, retries: object,
                      ttl_override: object) -> Steps[dict[str, Any] | None]:
        """Load, apply ``fn``, save if nobody saved in between; else reload and re-apply."""
        key = self.key_for(contact_id)  # type: ignore[arg-type]
        self.ttl_seconds_for(ttl_override)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidState(f"retries={retries!r} must be a whole number >= 0")
        if not callable(fn):
            raise InvalidState(f"fn must be a function taking and returning a state, got "
                               f"{type(fn).__name__}")
        for attempt in range(retries + 1):
            if attempt:
                cap = min(_BACKOFF_MAX_SECONDS, _BACKOFF_SECONDS * 2 ** (attempt - 1))
                yield _Sleep(random.uniform(cap / 2, cap))
            current, revision = yield from self._load_for_update_steps(str(contact_id), key)
            state = current if current is not None else self._empty_state()
            state[REVISION_FIELD] = revision
            updated = yield _Apply(fn, state)
            saved, stored = yield from self._write_steps(
                contact_id, state if updated is None else updated, ttl_override, revision)
            if saved is not None:
                if current is not None and self.config.lookup_secret is not None:
                    yield from self._lookup_steps(self._who(contact_id), lookup.unindex_commands(
                        self.prefix, self.config.lookup_secret, str(contact_id), current,
                        saved))
                return saved
            logger.debug("update %s: conflict (read revision %d, stored %d); retrying",
                         self._who(contact_id), revision, stored)
        logger.warning("update %s: gave up after %d conflicting saves by other writers; "
                       "nothing written", self._who(contact_id), retries + 1)
        return None

    def _lock_key(self, contact_id: object) -> str:
        """What serialises updates of one buyer in this process (see :mod:`keylocks`)."""
        return f"{self.prefix}:{contact_id}"

    @staticmethod
    def _empty_state() -> dict[str, Any]:
        """What ``update_state`` hands ``fn`` for a buyer with no saved state."""
        return {**copy.deepcopy(STATE_DEFAULTS), "state_version": STATE_VERSION}

    def _clear_steps(self, contact_id: object) -> Steps[bool]:
        key = self.key_for(contact_id)  # type: ignore[arg-type]
        deleted = yield ("DEL", key)
        self._counters["clears"] += 1
        return bool(deleted)

    def _expire_steps(self, contact_id: str, expected_revision: int | None
                      ) -> Steps[tuple[int, int]]:
        command = ("EVALSHA", scripts.EXPIRE.sha, 1, self.key_for(contact_id),
                   scripts.expected_arg(self._check_expected_revision(expected_revision)),
                   self.config.ttl_seconds)
        code, revision = yield from self._eval_steps(command, scripts.EXPIRE)
        return int(code), int(revision)

    def _delete_steps(self, key: bytes, expected_revision: int | None, seeds_only: bool
                      ) -> Steps[tuple[int, int]]:
        command = ("EVALSHA", scripts.DELETE.sha, 1, key,
                   scripts.expected_arg(self._check_expected_revision(expected_revision)),
                   "seed" if seeds_only else "")
        code, revision = yield from self._eval_steps(command, scripts.DELETE)
        return int(code), int(revision)

    def _delete_seeds_steps(self, keys: list[bytes]) -> Steps[int]:
        """Delete those of ``keys`` that hold a QA seed right now, one pipeline per call."""
        commands = [("EVALSHA", scripts.DELETE.sha, 1, key, "", "seed") for key in keys]
        replies = yield from self._eval_steps(commands, scripts.DELETE)
        return sum(1 for code, _ in replies if code == scripts.DONE)

    def _check_records_steps(self, keys: list[bytes]) -> Steps[list[CorruptRecord | None]]:
        """Why each of ``keys`` cannot be loaded (None: it loads, or it is gone)."""
        raws = yield _Replies(self._value_command(key) for key in keys)
        problems: list[CorruptRecord | None] = []
        for key, raw in zip(keys, raws, strict=True):
            problem: CorruptRecord | None = None
            if isinstance(raw, redis.ResponseError):
                if "WRONGTYPE" in str(raw):
                    problem = yield from self._wrong_type_steps(key)
                else:  # an ACL's NOPERM, say: Redis's own words
                    problem = CorruptRecord(f"Redis refused to read the key: {raw}")
            elif raw:
                try:
                    yield from self._decode_steps(key.decode("utf-8", "replace"), raw)
                except CorruptRecord as exc:
                    problem = exc
            problems.append(problem)
        return problems

    def _present_steps(self, keys: list[bytes], batch_size: int) -> Steps[int]:
        """How many of ``keys`` exist: one pipeline of single-key EXISTS per batch."""
        present = 0
        for start in range(0, len(keys), batch_size):
            replies = yield [("EXISTS", key) for key in keys[start:start + batch_size]]
            present += sum(1 for reply in replies if reply)
        return present

    def _record_steps(self, contact_id: str) -> Steps[StoredRecord | None]:
        key = self.key_for(contact_id)
        raw, pttl = yield from self._read_steps([self._value_command(key), ("PTTL", key)])
        if not raw:
            return None
        state, revision = yield from self._decode_steps(key, raw)
        summary = parse_summary(raw) if is_record(raw) else None
        ttl = None if pttl is None or pttl < 0 else max(0, round(pttl / 1000))
        return StoredRecord(contact_id, state, summary, ttl, legacy=summary is None,
                            revision=revision)

    def _save_many_steps(self, items: Iterable[SaveItem], batch_size: int,
                         guard: str = "") -> Steps[SeedWrite]:
        """Pipelined saves; with ``guard="seed"`` a key holding anything but a QA seed is kept."""
        written = 0
        kept: list[str] = []
        batch: list[_Encoded] = []

        def flush() -> Steps[None]:
            nonlocal written
            replies = yield from self._eval_steps(
                [encoded.script_command(None, guard) for encoded in batch], scripts.SAVE)
            index: list[Command] = []
            for encoded, (code, _) in zip(batch, replies, strict=True):
                if code == scripts.DONE:
                    written += 1
                    if self.config.lookup_secret is not None:
                        index += lookup.index_commands(
                            self.prefix, self.config.lookup_secret, encoded.contact_id,
                            encoded.prepared, encoded.ttl_seconds)
                else:
                    kept.append(encoded.contact_id)
            batch.clear()
            yield from self._lookup_steps("of a batch", index)

        for contact_id, state, ttl_override, now in items:
            batch.append((yield from self._encode_steps(contact_id, state, ttl_override, now)))
            if len(batch) >= batch_size:
                yield from flush()
        if batch:
            yield from flush()
        self._counters["saves"] += written
        return SeedWrite(written, tuple(kept))

    def _probe_steps(self) -> Steps[None]:
        """While the breaker is open, ask Redis every interval whether it answers again."""
        interval = max(self.config.failure_cooldown_seconds, _MIN_PROBE_SECONDS)
        try:
            while self._breaker.is_open and not self._closed:
                yield _Sleep(interval)
                try:
                    yield ("PING",)
                except Exception:  # still down or hung; the opening line said so already
                    continue
                self._on_success()
        finally:
            self._breaker.probe_finished()

    # health -------------------------------------------------------------------------
    def _counted(self, steps: Steps[T], operation: str) -> Steps[T]:
        """Count a bot call, timed for the observer if one is set; once per
        ``health_publish_seconds``, publish after it.

        No thread: the publish is one more command at the end of a call that went well,
        and whatever happens to it (refused, timed out) is logged and forgotten, never
        the call's result. The slot is claimed before the call, so concurrent calls do
        not all publish.
        """
        self._counters["calls"] += 1
        observer = self.observer
        if observer is not None:
            steps = _timed(steps, operation, observer)
        publisher = self._health
        if publisher is None or not publisher.claim():
            return steps
        return self._publishing_after(steps, publisher)

    def _publishing_after(self, steps: Steps[T], publisher: HealthPublisher) -> Steps[T]:
        """``steps``, then the publish; a call that failed publishes nothing (its record
        lives three intervals, so one missed publish leaves no gap)."""
        result = yield from steps
        try:
            opened = self._breaker_opened_at
            yield publisher.command(self.stats(),
                                    time.monotonic() - opened if opened else None)
        except Exception as exc:
            publisher.failed(exc)
        return result

    # faults -------------------------------------------------------------------------
    def _before_call(self) -> bool:
        """Whether to talk to Redis at all: enabled, and the breaker closed.

        A skipped call makes sure a background probe is watching for Redis to come back
        (the probe of an event loop that has ended is gone with it).
        """
        if not self.config.enabled:
            return False
        if not self._breaker.allow():
            self._counters["skipped"] += 1
            if self._breaker.claim_probe():
                self._start_probe()
            return False
        return True

    def _start_probe(self) -> None:
        """Run :meth:`_probe_steps` in the background (a thread, or an asyncio task)."""
        raise NotImplementedError

    @staticmethod
    def _who(contact_id: object) -> str:
        """A contact id fit for a log line: only a valid id as is, so none can forge lines.

        An invalid one is often a phone number or an email typed in the wrong field: it is
        logged masked, escaped and cut short (:func:`shown_contact_id`), never as it is.
        """
        try:
            return validate_contact_id(contact_id)
        except MemoryCoreError:
            return f"'{shown_contact_id(contact_id)}'"

    def _log_corrupt(self, operation: str, contact_id: object, exc: CorruptRecord) -> None:
        """One ERROR line; the reason can quote bytes from Redis, so it is escaped."""
        self._counters["errors"] += 1
        # a record no configured key opens is counted apart: a missing key, not damage
        self._counters["undecryptable" if isinstance(exc, UndecryptableRecord)
                       else "corrupt"] += 1
        logger.error("%s %s: stored record is unreadable, treating as no saved state: %s",
                     operation, self._who(contact_id), printable(str(exc), LOG_CHARS))

    def _on_fault(self, operation: str, contact_id: object, exc: BaseException) -> None:
        """Log one line and count a failed call; open the breaker on connection faults.

        One key's problem (corrupt bytes, a refused command) means Redis answered: it
        never counts towards the breaker.
        """
        who = self._who(contact_id)
        if isinstance(exc, CorruptRecord) or (isinstance(exc, redis.ResponseError)
                                              and not isinstance(exc, _CONNECTION_FAULTS)):
            self._on_success()  # Redis answered (a cluster that is down answers too)
        if isinstance(exc, CorruptRecord):
            self._log_corrupt(operation, contact_id, exc)
        elif isinstance(exc, MemoryCoreError):
            self._counters["refused"] += 1
            logger.warning("%s %s refused, nothing written: %s", operation, who,
                           printable(str(exc), LOG_CHARS))
        elif isinstance(exc, redis.exceptions.MaxConnectionsError):
            # this process's own pool is full: Redis may be fine, so no breaker
            self._counters["errors"] += 1
            self._counters["pool_exhausted"] += 1
            logger.warning("%s %s: all %d connections to Redis are busy; nothing done "
                           "(raise max_connections if bursts are this large)", operation,
                           who, self.config.max_connections)
        elif isinstance(exc, _CONNECTION_FAULTS):
            self._counters["errors"] += 1
            self._counters["unreachable"] += 1
            opened = self._breaker.record_failure(timed_out=isinstance(exc, _TIMEOUTS))
            probe_seconds = max(self.config.failure_cooldown_seconds, _MIN_PROBE_SECONDS)
            logger.warning("%s %s: Redis unreachable (%s: %s)%s", operation, who,
                           type(exc).__name__, printable(str(exc), LOG_CHARS),
                           f"; circuit breaker open: skipping Redis, probing it every "
                           f"{probe_seconds:g}s" if opened else "")
            if opened:
                self._breaker_opened_at = time.monotonic()
                if self._breaker.claim_probe():
                    self._start_probe()
        elif isinstance(exc, redis.RedisError):
            self._counters["errors"] += 1
            self._counters["redis_error"] += 1
            logger.error("%s %s: Redis error: %s", operation, who,
                         printable(str(exc), LOG_CHARS))
        else:
            self._counters["errors"] += 1
            self._counters["unexpected"] += 1
            logger.exception("%s %s: unexpected failure", operation, who)

    def _on_success(self) -> None:
        if self._breaker.record_success():
            logger.warning("Redis answers again; circuit breaker closed after %.1fs",
                           time.monotonic() - self._breaker_opened_at)

    def stats(self) -> dict[str, Any]:
        counters = self._counters
        keyring = self.config.keyring
        return {
            "enabled": self.config.enabled,
            "disabled_by": self.config.disabled_by,
            "ttl_days": self.config.ttl_days,
            "ttl_seconds": self.config.ttl_seconds,
            "compress_threshold_bytes": self.config.compress_threshold_bytes,
            "max_history_messages": self.config.max_history_messages,
            "state_version": STATE_VERSION,
            "cache_key_prefix": self.prefix,
            "codec": self.config.codec,
            "zstd_level": self.config.zstd_level,
            "payload_layout": self.config.payload_layout,
            "use_dictionary": self.config.use_dictionary,
            "dictionary_id": self._dictionaries.current_id or None,
            # key ids only: which key writes, which ones read; never key material
            "encryption_key_id": keyring.primary_id if keyring else None,
            "decryption_key_ids": list(keyring.key_ids) if keyring else [],
            "phone_email_lookup": self.config.lookup_secret is not None,
            "circuit_open": self._breaker.is_open,
            **{name: counters[name] for name in (
                "calls", "saves", "loads", "hits", "misses", "clears", "conflicts", "errors",
                "corrupt", "undecryptable", "refused", "skipped", "unreplicated")},
        }


def _timed(steps: Steps[T], operation: str, observer: Callable[[str, float], None]
           ) -> Steps[T]:
    """``steps``, then ``observer(operation, seconds)``: from the first command to the end,
    failed or not. Shared by both drivers: the wait for each reply falls inside."""
    started = time.perf_counter()
    try:
        return (yield from steps)
    finally:
        try:
            observer(operation, time.perf_counter() - started)
        except Exception:  # a metrics bug must never turn a good call into a failed one
            logger.exception("the observer of %s calls failed", operation)


def _check_client(client: Any) -> None:
    options: dict[str, Any] = getattr(client, "get_connection_kwargs", lambda: {})()
    if options.get("decode_responses"):
        raise ValueError("the Redis client must be created with decode_responses=False: "
                         "records are binary")


class SyncBuyerConversationMemory(_MemoryLogic):
    """The memory over a sync ``redis.Redis`` client (CLI, dashboard, scripts)."""

    client: redis.Redis
    _connect = staticmethod(connect)

    def close(self) -> None:
        """Close the client if this object opened it; a running probe stops."""
        self._closed = True
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> SyncBuyerConversationMemory:
        return self

    @property
    def cache(self) -> SyncCacheView:
        """Read-only ``exists``/``ttl``/``pttl`` of a key under the prefix (or of a contact
        id's key), for troubleshooting; they raise StoreUnavailable on a Redis fault
        (see :mod:`memory_core.cache_view`)."""
        return SyncCacheView(self)

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _perform(self, command: Command | list[Command] | _Effect) -> Any:
        if type(command) is tuple:
            return self.client.execute_command(*command)
        if isinstance(command, list):
            return _pipeline(self.client, command).execute(
                raise_on_error=not isinstance(command, _Replies))
        if isinstance(command, _Sleep):
            time.sleep(command.seconds)
            return None
        if isinstance(command, _Apply):
            try:
                result = command.fn(command.state)
            except Exception as exc:
                raise _CallerFault(exc) from exc
            if inspect.isawaitable(result):
                close = getattr(result, "close", None)
                if close:
                    close()  # never awaited: no "coroutine was never awaited" warning
                raise _CallerFault(TypeError(
                    "update_state of SyncBuyerConversationMemory needs a plain function; "
                    "use BuyerConversationMemory for an async def"))
            return result
        raise TypeError(f"unknown step {command!r}")

    def _drive(self, steps: Steps[T]) -> T:
        """Send each step's command and hand it the reply (or the exception it raised)."""
        try:
            command = next(steps)
            while True:
                try:
                    reply = self._perform(command)
                except _CallerFault:
                    steps.close()
                    raise
                except Exception as exc:
                    command = steps.throw(exc)
                    continue
                command = steps.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def run_strict(self, steps: Steps[T]) -> T:
        """Drive steps and let faults raise (operator tools want the reason)."""
        try:
            return self._drive(steps)
        except _CONNECTION_FAULTS as exc:
            raise StoreUnavailable.from_fault(exc) from exc

    def _start_probe(self) -> None:
        def probe() -> None:
            steps = self._probe_steps()
            try:
                self._drive(steps)
            except Exception:  # never let a probe thread die noisily
                pass
            finally:
                steps.close()  # its finally releases the probe, however it ended

        threading.Thread(target=probe, name="memory-core-probe", daemon=True).start()

    def _run(self, operation: str, contact_id: object, steps: Steps[T], default: T) -> T:
        steps = self._counted(steps, operation)
        if not self._before_call():
            steps.close()
            return default
        try:
            result = self._drive(steps)
        except _CallerFault as fault:
            raise fault.original from None
        except Exception as exc:  # the bot must never fail because of its memory
            self._on_fault(operation, contact_id, exc)
            return default
        self._on_success()
        return result

    def save_state(self, contact_id: str, state: dict[str, Any],
                   ttl_override: int | None = None,
                   expected_revision: int | None = None, *, wait_replicas: int = 0,
                   wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS) -> bool:
        """Store the buyer's state; False (and one log line) if it could not be stored.

        With ``expected_revision`` (the ``state_revision`` of the loaded state) the write
        happens only if nobody saved since; otherwise it is a conflict and returns False.
        With ``wait_replicas`` it returns True only once that many replicas acknowledged
        the save (Redis ``WAIT``, up to ``wait_timeout_ms``); False then means "not
        confirmed": the state may be stored on the primary only.
        """
        return self._run("save", contact_id,
                         self._save_steps(contact_id, state, ttl_override, expected_revision,
                                          wait_replicas, wait_timeout_ms),
                         False)

    def load_state(self, contact_id: str) -> dict[str, Any] | None:
        """The buyer's saved state with its ``state_revision``, or None when there is none."""
        return self._run("load", contact_id, self._load_steps(contact_id), None)

    def update_state(self, contact_id: str, fn: Callable[[dict[str, Any]], Any],
                     retries: int = 5, ttl_override: int | None = None
                     ) -> dict[str, Any] | None:
        """Load, apply ``fn(state) -> state``, save unless another writer saved in between.

        Updates of one buyer from this process wait for each other; a save by another
        process in between is a conflict, and then it reloads and applies ``fn`` again (up
        to ``retries`` times, with a short jittered back-off). Returns the saved state, or
        None when it gave up or Redis is down (one log line). An exception from ``fn``
        propagates unchanged.
        """
        with keylocks.thread_locks.hold(self._lock_key(contact_id)):
            return self._run("update", contact_id,
                             self._update_steps(contact_id, fn, retries, ttl_override), None)

    def clear_state(self, contact_id: str) -> bool:
        """Delete the buyer's state; True when the key existed and was removed."""
        return self._run("clear", contact_id, self._clear_steps(contact_id), False)

    def get_stats(self) -> dict[str, Any]:
        return self.stats()

    # operator tools: these raise, with messages for people -------------------------
    def read_record(self, contact_id: str) -> StoredRecord | None:
        """The state with its summary and TTL; raises on corrupt data or a dead Redis."""
        return self.run_strict(self._record_steps(contact_id))

    def save_many(self, items: Iterable[SaveItem], batch_size: int = 500) -> int:
        """Write many states in pipelined batches (demo, benchmarks); raises on the first fault.

        Items are validated as they are encoded: a bad item stops the run before its own
        batch is sent, so pre-validate (``prepare``) when all-or-nothing matters.
        """
        return self.run_strict(self._save_many_steps(items, batch_size)).written

    def save_seeds(self, items: Iterable[SaveItem], batch_size: int = 500, *,
                   overwrite_real: bool = False) -> SeedWrite:
        """Write QA seeds in batches; a key holding a real buyer is kept unless told otherwise.

        The check runs on the server in the same step as each write, so a buyer that a
        bot saves while seeding runs is never replaced.
        """
        return self.run_strict(self._save_many_steps(items, batch_size,
                                                     "" if overwrite_real else "seed"))

    def encode_save(self, contact_id: str, state: dict[str, Any], *,
                    ttl_override: int | None = None, now: datetime | None = None,
                    revision: int = 1) -> Command:
        """The SET command of a save at ``revision``, without sending it; raises on bad input."""
        encoded = self.run_strict(self._encode_steps(contact_id, state, ttl_override, now))
        return ("SET", encoded.key, encoded.record(revision), "EX", encoded.ttl_seconds)

    def rewrite_record(self, contact_id: str, state: dict[str, Any], *, expected_revision: int,
                       now: datetime | None = None, ttl_seconds: int | None = None
                       ) -> tuple[int, int]:
        """Write ``state`` again in today's format and key, keeping the key's TTL.

        Only while the key exists at ``expected_revision`` (re-encryption must never
        overwrite a save made since it read the record). ``ttl_seconds`` is what is left
        of that TTL, for the phone/email lookup. Returns ``(code, revision)`` with a code
        of :mod:`memory_core.scripts`; raises on bad input.
        """
        return self.run_strict(self._rewrite_steps(contact_id, state, expected_revision, now,
                                                   ttl_seconds))

    def follow_new_dictionary(self) -> None:
        """Pick up a newly trained dictionary on the next save instead of within a minute."""
        self._dictionaries.mark_stale()

    def current_dictionary(self) -> zstandard.ZstdCompressionDict | None:
        """The dictionary a save would compress with now (None: none), read as saves read
        it; raises StoreUnavailable when Redis cannot be reached."""
        if not self.config.use_dictionary:
            return None
        return self.run_strict(self._current_dictionary_steps())

    def reset_ttl(self, contact_id: str, expected_revision: int | None = None
                  ) -> tuple[int, int]:
        """Give the buyer the default TTL again, if still at ``expected_revision``.

        Returns ``(code, revision)`` with a code of :mod:`memory_core.scripts`.
        """
        return self.run_strict(self._expire_steps(contact_id, expected_revision))

    def delete_key(self, key: bytes, *, expected_revision: int | None = None,
                   seeds_only: bool = False) -> tuple[int, int]:
        """Delete one key if its revision (and QA tag) still match; ``(code, revision)``."""
        return self.run_strict(self._delete_steps(key, expected_revision, seeds_only))

    def check_records(self, keys: list[bytes]) -> list[CorruptRecord | None]:
        """For each key, why a load would find no state in it (None when it loads)."""
        return self.run_strict(self._check_records_steps(keys))

    def delete_seeds(self, keys: list[bytes]) -> int:
        """Delete those of ``keys`` that hold a QA seed at the moment of deletion."""
        return self.run_strict(self._delete_seeds_steps(keys))

    def count_present(self, keys: list[bytes], batch_size: int = 1000) -> int:
        """How many of ``keys`` exist now (what an interrupted clean-up left, say)."""
        return self.run_strict(self._present_steps(keys, batch_size))


class BuyerConversationMemory(_MemoryLogic):
    """The memory over a ``redis.asyncio`` client: what the bot uses."""

    client: redis.asyncio.Redis
    _connect = staticmethod(connect_async)
    _probe_task: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Close the client if this object opened it; a running probe stops."""
        self._closed = True
        task = self._probe_task
        if task is not None and not task.done():
            task.cancel()
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> BuyerConversationMemory:
        return self

    @property
    def cache(self) -> AsyncCacheView:
        """Read-only ``await exists``/``ttl``/``pttl`` of a key under the prefix (or of a
        contact id's key), for troubleshooting; they raise StoreUnavailable on a Redis
        fault (see :mod:`memory_core.cache_view`)."""
        return AsyncCacheView(self)

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _effect(self, command: list[Command] | _Effect) -> Any:
        if isinstance(command, list):
            if isinstance(command, _Replicated) and is_cluster_client(self.client):
                await self.client.initialize()  # slots known: the WAIT names the key's node
            return await _pipeline(self.client, command).execute(
                raise_on_error=not isinstance(command, _Replies))
        if isinstance(command, _Sleep):
            await asyncio.sleep(command.seconds)
            return None
        if isinstance(command, _Apply):
            try:
                result = command.fn(command.state)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                raise _CallerFault(exc) from exc
            return result
        raise TypeError(f"unknown step {command!r}")

    async def _drive(self, steps: Steps[T]) -> T:
        """Send each step's command and hand it the reply (or the exception it raised)."""
        client = self.client
        try:
            command = next(steps)
            while True:
                try:
                    if isinstance(command, tuple):  # one command: the bot's hot path
                        reply = await client.execute_command(*command)
                    else:
                        reply = await self._effect(command)
                except _CallerFault:
                    steps.close()
                    raise
                except Exception as exc:
                    command = steps.throw(exc)
                    continue
                command = steps.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _start_probe(self) -> None:
        async def probe() -> None:
            steps = self._probe_steps()
            try:
                await self._drive(steps)
            except Exception:  # never let a probe task die noisily
                pass
            finally:
                steps.close()  # its finally releases the probe, even when cancelled

        try:
            self._probe_task = asyncio.get_running_loop().create_task(probe())
        except RuntimeError:  # no running loop: the next skipped call starts one
            self._breaker.probe_finished()

    async def _run(self, operation: str, contact_id: object, steps: Steps[T], default: T) -> T:
        steps = self._counted(steps, operation)
        if not self._before_call():
            steps.close()
            return default
        try:
            result = await self._drive(steps)
        except _CallerFault as fault:
            raise fault.original from None
        except Exception as exc:  # the bot must never fail because of its memory
            self._on_fault(operation, contact_id, exc)
            return default
        self._on_success()
        return result

    async def save_state(self, contact_id: str, state: dict[str, Any],
                         ttl_override: int | None = None,
                         expected_revision: int | None = None, *, wait_replicas: int = 0,
                         wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS) -> bool:
        """Store the buyer's state; False (and one log line) if it could not be stored.

        With ``expected_revision`` (the ``state_revision`` of the loaded state) the write
        happens only if nobody saved since; otherwise it is a conflict and returns False.
        With ``wait_replicas`` it returns True only once that many replicas acknowledged
        the save (Redis ``WAIT``, up to ``wait_timeout_ms``); False then means "not
        confirmed": the state may be stored on the primary only.
        """
        return await self._run(
            "save", contact_id,
            self._save_steps(contact_id, state, ttl_override, expected_revision,
                             wait_replicas, wait_timeout_ms), False)

    async def load_state(self, contact_id: str) -> dict[str, Any] | None:
        """The buyer's saved state with its ``state_revision``, or None when there is none."""
        return await self._run("load", contact_id, self._load_steps(contact_id), None)

    async def update_state(self, contact_id: str, fn: UpdateFn, retries: int = 5,
                           ttl_override: int | None = None) -> dict[str, Any] | None:
        """Load, apply ``fn`` (plain or ``async def``), save unless another writer saved first.

        Updates of one buyer from this process wait for each other; a save by another
        process in between is a conflict, and then it reloads and applies ``fn`` again (up
        to ``retries`` times, with a short jittered back-off). Returns the saved state, or
        None when it gave up or Redis is down (one log line). An exception from ``fn``
        propagates unchanged.
        """
        async with keylocks.task_locks.hold(self._lock_key(contact_id)):
            return await self._run(
                "update", contact_id, self._update_steps(contact_id, fn, retries, ttl_override),
                None)

    async def clear_state(self, contact_id: str) -> bool:
        """Delete the buyer's state; True when the key existed and was removed."""
        return await self._run("clear", contact_id, self._clear_steps(contact_id), False)

    async def get_stats(self) -> dict[str, Any]:
        return self.stats()


_singleton: BuyerConversationMemory | None = None


def get_buyer_conversation_memory() -> BuyerConversationMemory:
    """The process-wide memory: config from ``MEMORY_CORE_CONFIG``, Redis from ``REDIS_URL``."""
    global _singleton
    if _singleton is None:
        url = os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL
        parse_target(url)  # fail at start-up on a bad URL, with a clear message
        _singleton = BuyerConversationMemory.from_url(url, load_config())
    return _singleton


def reset_buyer_conversation_memory() -> None:
    """Forget the singleton (tests); the next call builds a fresh one."""
    global _singleton
    _singleton = None
