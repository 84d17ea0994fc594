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

import logging
import os
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self, TypeVar

import redis
import redis.asyncio
import zstandard

from memory_core import dictionaries as dicts
from memory_core.breaker import CircuitBreaker
from memory_core.config import MemoryConfig, load_config
from memory_core.connection import (
    DEFAULT_REDIS_URL,
    REDIS_URL_ENV,
    connect,
    connect_async,
    parse_target,
)
from memory_core.errors import (
    CorruptRecord,
    InvalidState,
    MemoryCoreError,
    MissingDictionary,
    StoreUnavailable,
)
from memory_core.legacy import decode_legacy, looks_legacy
from memory_core.migrations import is_newer_than_known, migrate
from memory_core.record import (
    CODEC_ZSTD,
    RecordSummary,
    decode_payload,
    encode_record,
    is_record,
    parse_payload_header,
    parse_summary,
)
from memory_core.state import (
    STATE_VERSION,
    check_finite,
    dump_json,
    load_json,
    prepare_state,
    utc_now,
    validate_contact_id,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
Command = tuple[Any, ...]
#: A step either sends one command or a list of them (sent as one pipeline).
Steps = Generator[Command | list[Command], Any, T]
#: (contact_id, state, ttl_override seconds or None, interaction time or None = now)
SaveItem = tuple[str, dict[str, Any], int | None, datetime | None]
_CONNECTION_FAULTS = (redis.ConnectionError, redis.TimeoutError, OSError)


@dataclass(frozen=True)
class StoredRecord:
    """A state with what the operator tools show beside it."""

    contact_id: str
    state: dict[str, Any]
    summary: RecordSummary | None  # None for a legacy (pickled) record
    ttl_seconds: int | None  # None when the key never expires
    legacy: bool


class _MemoryLogic:
    """All behaviour of the memory, expressed as command-yielding steps."""

    #: Opens a client of the right kind (sync or asyncio) for :meth:`from_url`.
    _connect: ClassVar[Callable[[str, MemoryConfig], Any]]

    def __init__(self, client: Any, config: MemoryConfig | None = None, *,
                 owns_client: bool = False) -> None:
        _check_client(client)
        self.client = client
        self._owns_client = owns_client
        self.config = config or MemoryConfig()
        self.prefix = self.config.cache_key_prefix
        self._breaker = CircuitBreaker(self.config.failure_threshold,
                                       self.config.failure_cooldown_seconds)
        self._dictionaries = dicts.DictionaryCache(self.config.dictionary_refresh_seconds)
        self._counters: Counter[str] = Counter()

    @classmethod
    def from_url(cls, url: str, config: MemoryConfig | None = None) -> Self:
        """A memory with its own client for ``url``; close it when done."""
        config = config or MemoryConfig()
        return cls(cls._connect(url, config), config, owns_client=True)

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
        """Validate and shape a state; return it with its JSON bytes (no I/O)."""
        prepared = prepare_state(state, max_history_messages=self.config.max_history_messages,
                                 now=now or utc_now(), check_values=False)
        data = dump_json(prepared)
        if len(data) > self.config.max_state_bytes:
            raise InvalidState(
                f"state is {len(data)} bytes of JSON after trimming history to "
                f"{self.config.max_history_messages} messages; the limit is "
                f"max_state_bytes={self.config.max_state_bytes}")
        if b"null" in data:  # orjson writes NaN and infinity as null: no null, none of them
            check_finite(prepared)  # after the size check: the walk is the slow part
        return prepared, data

    def _set_command(self, key: str, prepared: dict[str, Any], data: bytes, ttl: int,
                     dictionary: zstandard.ZstdCompressionDict | None) -> Command:
        record = encode_record(prepared, data,
                               compress_threshold_bytes=self.config.compress_threshold_bytes,
                               codec=self.config.codec, zstd_level=self.config.zstd_level,
                               dictionary=dictionary)
        return ("SET", key, record, "EX", ttl)

    def _wants_dictionary(self, data_bytes: int) -> bool:
        return (self.config.use_dictionary and self.config.codec == CODEC_ZSTD
                and data_bytes > self.config.compress_threshold_bytes)

    def _upgrade(self, key: str, state: dict[str, Any]) -> dict[str, Any]:
        version = state.get("state_version")
        if version == STATE_VERSION:
            return state  # the common case, kept off the migration machinery
        if isinstance(version, str) and is_newer_than_known(version):
            logger.warning("%s was written with schema %s, newer than %s; returned as is",
                           key, version, STATE_VERSION)
            return state
        try:
            return migrate(state)
        except ValueError as exc:
            raise CorruptRecord(str(exc)) from None

    # steps --------------------------------------------------------------------------
    def _read_steps(self, command: Command | list[Command]) -> Steps[Any]:
        """One read; a WRONGTYPE answer means the key holds something that is not ours."""
        try:
            return (yield command)
        except redis.ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise CorruptRecord("the key holds another Redis type, not a buyer record "
                                    f"({exc})") from None
            raise

    def _current_dictionary_steps(self) -> Steps[zstandard.ZstdCompressionDict | None]:
        if self._dictionaries.current_is_stale():
            current_id = self.config.dictionary_id
            if not current_id:
                try:
                    raw_id = yield from self._read_steps(
                        ("GET", dicts.current_dictionary_key(self.prefix)))
                except CorruptRecord as exc:
                    logger.warning("not compressing with a dictionary: the current-dictionary "
                                   "key is unreadable (%s)", exc)
                    raw_id = None
                current_id = int(raw_id) if raw_id and raw_id.isdigit() else 0
            if current_id and self._dictionaries.get(current_id) is None:
                try:
                    yield from self._dictionary_steps(current_id)
                except CorruptRecord as exc:
                    logger.warning("not compressing with a dictionary: %s", exc)
                    current_id = 0
            self._dictionaries.set_current(current_id)
        return self._dictionaries.current()

    def _dictionary_steps(self, dictionary_id: int) -> Steps[zstandard.ZstdCompressionDict]:
        found = self._dictionaries.get(dictionary_id)
        if found is not None:
            return found
        raw = yield from self._read_steps(
            ("GET", dicts.dictionary_key(self.prefix, dictionary_id)))
        if raw is None:
            raise MissingDictionary(dictionary_id)
        return self._dictionaries.add(raw, expected_id=dictionary_id)

    def _encode_steps(self, contact_id: object, state: object, ttl_override: object,
                      now: datetime | None = None) -> Steps[Command]:
        """Validate and encode one save into its SET command (I/O only to fetch a dictionary)."""
        key = self.key_for(contact_id)  # type: ignore[arg-type]
        ttl = self.ttl_seconds_for(ttl_override)
        prepared, data = self.prepare(state, now)
        dictionary = None
        if self._wants_dictionary(len(data)):
            dictionary = yield from self._current_dictionary_steps()
        return self._set_command(key, prepared, data, ttl, dictionary)

    def _save_steps(self, contact_id: object, state: object, ttl_override: object) -> Steps[bool]:
        yield (yield from self._encode_steps(contact_id, state, ttl_override))
        self._counters["saves"] += 1
        return True

    def _decode_steps(self, key: str, raw: bytes) -> Steps[dict[str, Any]]:
        if is_record(raw):
            header = parse_payload_header(raw)
            dictionary = None
            if header.dictionary_id:
                dictionary = yield from self._dictionary_steps(header.dictionary_id)
            data = decode_payload(raw, header, dictionary,
                                  max_bytes=self.config.max_state_bytes)
            try:
                state = load_json(data)
            except ValueError as exc:
                raise CorruptRecord(f"payload is not valid JSON: {exc}") from None
        elif looks_legacy(raw):
            state = decode_legacy(raw, max_bytes=self.config.max_state_bytes)
        else:
            raise CorruptRecord("unrecognised bytes (not a memory_core or legacy record)")
        if not isinstance(state, dict):
            raise CorruptRecord("payload is not a JSON object")
        return self._upgrade(key, state)

    def _load_steps(self, contact_id: object) -> Steps[dict[str, Any] | None]:
        key = self.key_for(contact_id)  # type: ignore[arg-type]
        self._counters["loads"] += 1
        raw = yield from self._read_steps(("GET", key))
        if raw is None:
            self._counters["misses"] += 1
            return None
        state = yield from self._decode_steps(key, raw)
        self._counters["hits"] += 1
        return state

    def _clear_steps(self, contact_id: object) -> Steps[bool]:
        key = self.key_for(contact_id)  # type: ignore[arg-type]
        deleted = yield ("DEL", key)
        self._counters["clears"] += 1
        return bool(deleted)

    def _expire_steps(self, contact_id: str) -> Steps[int]:
        return (yield ("EXPIRE", self.key_for(contact_id), self.config.ttl_seconds))

    def _record_steps(self, contact_id: str) -> Steps[StoredRecord | None]:
        key = self.key_for(contact_id)
        raw, pttl = yield from self._read_steps([("GET", key), ("PTTL", key)])
        if raw is None:
            return None
        state = yield from self._decode_steps(key, raw)
        summary = parse_summary(raw) if is_record(raw) else None
        ttl = None if pttl is None or pttl < 0 else max(0, round(pttl / 1000))
        return StoredRecord(contact_id, state, summary, ttl, legacy=summary is None)

    def _save_many_steps(self, items: Iterable[SaveItem], batch_size: int) -> Steps[int]:
        written = 0
        batch: list[Command] = []
        for contact_id, state, ttl_override, now in items:
            batch.append((yield from self._encode_steps(contact_id, state, ttl_override, now)))
            if len(batch) >= batch_size:
                yield batch
                written += len(batch)
                batch = []
        if batch:
            yield batch
            written += len(batch)
        self._counters["saves"] += written
        return written

    # faults -------------------------------------------------------------------------
    def _before_call(self) -> bool:
        """Whether to talk to Redis at all (enabled, breaker closed or probing)."""
        if not self.config.enabled:
            return False
        if not self._breaker.allow():
            self._counters["skipped"] += 1
            return False
        return True

    def _on_fault(self, operation: str, contact_id: object, exc: BaseException) -> None:
        """Log one line and count a failed call; open the breaker on connection faults."""
        try:  # only a valid id is logged as is; anything else could forge log lines
            who = validate_contact_id(contact_id)
        except MemoryCoreError:
            who = repr(contact_id)[:80]
        if isinstance(exc, CorruptRecord | redis.ResponseError):
            self._breaker.record_success()  # Redis answered: the connection is fine
        if isinstance(exc, CorruptRecord):
            self._counters["errors"] += 1
            self._counters["corrupt"] += 1
            logger.error("%s %s: stored record is unreadable, treating as no saved state: %s",
                         operation, who, exc)
        elif isinstance(exc, MemoryCoreError):
            self._counters["refused"] += 1
            logger.warning("%s %s refused, nothing written: %s", operation, who, exc)
        elif isinstance(exc, _CONNECTION_FAULTS):
            self._counters["errors"] += 1
            opened = self._breaker.record_failure()
            logger.warning("%s %s: Redis unreachable (%s: %s)%s", operation, who,
                           type(exc).__name__, exc,
                           f"; skipping Redis for {self.config.failure_cooldown_seconds}s"
                           if opened else "")
        elif isinstance(exc, redis.RedisError):
            self._counters["errors"] += 1
            logger.error("%s %s: Redis error: %s", operation, who, exc)
        else:
            self._counters["errors"] += 1
            logger.exception("%s %s: unexpected failure", operation, who)

    def _on_success(self) -> None:
        self._breaker.record_success()

    def stats(self) -> dict[str, Any]:
        counters = self._counters
        return {
            "enabled": self.config.enabled,
            "ttl_days": self.config.ttl_days,
            "ttl_seconds": self.config.ttl_seconds,
            "compress_threshold_bytes": self.config.compress_threshold_bytes,
            "max_history_messages": self.config.max_history_messages,
            "state_version": STATE_VERSION,
            "cache_key_prefix": self.prefix,
            "codec": self.config.codec,
            "zstd_level": self.config.zstd_level,
            "use_dictionary": self.config.use_dictionary,
            "dictionary_id": self._dictionaries.current_id or None,
            "circuit_open": self._breaker.is_open,
            **{name: counters[name] for name in (
                "saves", "loads", "hits", "misses", "clears", "errors", "corrupt",
                "refused", "skipped")},
        }


def _check_client(client: Any) -> None:
    options = getattr(client, "get_connection_kwargs", lambda: {})()
    if options.get("decode_responses"):
        raise ValueError("the Redis client must be created with decode_responses=False: "
                         "records are binary")


class SyncBuyerConversationMemory(_MemoryLogic):
    """The memory over a sync ``redis.Redis`` client (CLI, dashboard, scripts)."""

    client: redis.Redis
    _connect = staticmethod(connect)

    def close(self) -> None:
        """Close the client if this object opened it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> SyncBuyerConversationMemory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, command: Command | list[Command]) -> Any:
        if isinstance(command, list):
            pipe = self.client.pipeline(transaction=False)
            for item in command:
                pipe.execute_command(*item)
            return pipe.execute()
        return self.client.execute_command(*command)

    def run_strict(self, steps: Steps[T]) -> T:
        """Drive steps and let faults raise (operator tools want the reason)."""
        try:
            command = next(steps)
            while True:
                try:
                    reply = self._send(command)
                except redis.ResponseError as exc:  # Redis answered "no": the steps decide
                    command = steps.throw(exc)
                    continue
                command = steps.send(reply)
        except StopIteration as done:
            return done.value
        except _CONNECTION_FAULTS as exc:
            raise StoreUnavailable(f"Redis unreachable: {type(exc).__name__}: {exc}") from exc

    def _run(self, operation: str, contact_id: object, steps: Steps[T], default: T) -> T:
        if not self._before_call():
            steps.close()
            return default
        try:
            result = self.run_strict(steps)
        except StoreUnavailable as exc:
            self._on_fault(operation, contact_id, exc.__cause__ or exc)
            return default
        except Exception as exc:  # the bot must never fail because of its memory
            self._on_fault(operation, contact_id, exc)
            return default
        self._on_success()
        return result

    def save_state(self, contact_id: str, state: dict[str, Any],
                   ttl_override: int | None = None) -> bool:
        """Store the buyer's state; False (and one log line) if it could not be stored."""
        return self._run("save", contact_id, self._save_steps(contact_id, state, ttl_override),
                         False)

    def load_state(self, contact_id: str) -> dict[str, Any] | None:
        """The buyer's saved state, or None when there is none (or it cannot be read)."""
        return self._run("load", contact_id, self._load_steps(contact_id), None)

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
        """Write many states in pipelined batches (seeding); raises on the first fault.

        Items are validated as they are encoded: a bad item stops the run before its own
        batch is sent, so pre-validate (``encode_save``) when all-or-nothing matters.
        """
        return self.run_strict(self._save_many_steps(items, batch_size))

    def encode_save(self, contact_id: str, state: dict[str, Any], *,
                    ttl_override: int | None = None, now: datetime | None = None) -> Command:
        """The SET command a save would send, without sending it; raises on bad input."""
        return self.run_strict(self._encode_steps(contact_id, state, ttl_override, now))

    def follow_new_dictionary(self) -> None:
        """Pick up a newly trained dictionary on the next save instead of within a minute."""
        self._dictionaries.mark_stale()

    def reset_ttl(self, contact_id: str) -> bool:
        """Give the buyer the default TTL again; False when there is no such key."""
        return bool(self.run_strict(self._expire_steps(contact_id)))


class BuyerConversationMemory(_MemoryLogic):
    """The memory over a ``redis.asyncio`` client: what the bot uses."""

    client: redis.asyncio.Redis
    _connect = staticmethod(connect_async)

    async def aclose(self) -> None:
        """Close the client if this object opened it."""
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> BuyerConversationMemory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send(self, command: Command | list[Command]) -> Any:
        if isinstance(command, list):
            pipe = self.client.pipeline(transaction=False)
            for item in command:
                pipe.execute_command(*item)
            return await pipe.execute()
        return await self.client.execute_command(*command)

    async def _run(self, operation: str, contact_id: object, steps: Steps[T], default: T) -> T:
        if not self._before_call():
            steps.close()
            return default
        client = self.client
        try:
            command = next(steps)
            while True:
                try:
                    if isinstance(command, list):
                        reply = await self._send(command)
                    else:  # one command: skip a coroutine layer on the bot's hot path
                        reply = await client.execute_command(*command)
                except redis.ResponseError as exc:  # Redis answered "no": the steps decide
                    command = steps.throw(exc)
                    continue
                command = steps.send(reply)
        except StopIteration as done:
            self._on_success()
            return done.value
        except Exception as exc:  # the bot must never fail because of its memory
            self._on_fault(operation, contact_id, exc)
            return default

    async def save_state(self, contact_id: str, state: dict[str, Any],
                         ttl_override: int | None = None) -> bool:
        """Store the buyer's state; False (and one log line) if it could not be stored."""
        return await self._run("save", contact_id,
                               self._save_steps(contact_id, state, ttl_override), False)

    async def load_state(self, contact_id: str) -> dict[str, Any] | None:
        """The buyer's saved state, or None when there is none (or it cannot be read)."""
        return await self._run("load", contact_id, self._load_steps(contact_id), None)

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
