"""Exceptions of memory_core: small named classes whose messages say what to fix.

The bot-facing calls (save, load, clear) never raise these for runtime faults; they log
and degrade. These reach callers only for programming errors at start-up (bad config,
bad URL) and from the operator tools (CLI, dashboard), which show the message.
"""

from __future__ import annotations

from types import MappingProxyType

import redis

from memory_core.safetext import printable

#: What a lost, refused or hung connection raises: the store is unavailable, not wrong.
#: What "Redis is not there right now" looks like: a connection lost or timed out, and on a
#: cluster a node down, slots not covered during a failover, or no startup node answering.
REDIS_FAULTS = (redis.ConnectionError, redis.TimeoutError, OSError,
                redis.exceptions.ClusterError, redis.exceptions.RedisClusterException)


def fault_behind(exc: redis.WatchError) -> BaseException | None:
    """The connection fault behind a ``WatchError``, None for a real concurrent write.

    redis-py reports a connection lost while keys are watched as a ``WatchError`` raised
    while handling the fault: without this, a Redis that went away reads as "someone wrote it".
    """
    for behind in (exc.__cause__, exc.__context__):  # redis-py raises it while handling
        if isinstance(behind, REDIS_FAULTS):
            return behind
    return None


class MemoryCoreError(Exception):
    """Base class of every error memory_core raises on purpose."""


class ConfigError(MemoryCoreError, ValueError):
    """A setting is unknown, of the wrong type, or out of its allowed range."""


class ConnectionURLError(MemoryCoreError, ValueError):
    """A Redis URL cannot be used (unknown scheme, malformed)."""


class InvalidContactId(MemoryCoreError, ValueError):
    """A contact id is empty, too long, not a string, or holds whitespace/control chars."""


class InvalidState(MemoryCoreError, ValueError):
    """A state is not a dict, holds values JSON cannot keep, or is too large."""


class CorruptRecord(MemoryCoreError):
    """Bytes stored at a key cannot be decoded into a state."""


#: How a type that ``TYPE`` reports reads in a sentence.
_TYPE_NAMES = MappingProxyType({
    "hash": "a hash", "list": "a list", "set": "a set", "zset": "a sorted set",
    "stream": "a stream", "string": "a string"})


class WrongTypeRecord(CorruptRecord):
    """The key holds another Redis type (a hash, a list...), where a string value belongs.

    The message names the type Redis reports (``TYPE``), never redis-py's pipeline text
    ("Command # 1 (GETRANGE ...) of pipeline caused error"), which quotes the command.
    ``WRONGTYPE`` stays in it: the word Redis uses, for whoever searches the logs.
    """

    def __init__(self, kind: str | None, what: str = "a buyer record") -> None:
        if not kind or kind == "none":  # TYPE refused, or the key went since the read
            holds = "another Redis type"
        else:  # a module's type (ReJSON-RL, ...) as Redis names it, escaped and short
            holds = _TYPE_NAMES.get(kind) or f"a {printable(kind, 40)} value"
        super().__init__(f"the key holds {holds}, not {what} (WRONGTYPE)")
        self.kind = kind


class MissingDictionary(CorruptRecord):
    """A record was compressed with a zstd dictionary that Redis no longer holds."""

    def __init__(self, dictionary_id: int) -> None:
        super().__init__(f"zstd dictionary {dictionary_id} is not stored in Redis; "
                         "the record cannot be decompressed")
        self.dictionary_id = dictionary_id


class UndecryptableRecord(CorruptRecord):
    """A record's payload is encrypted, and no configured key opens it."""

    def __init__(self, key_id: str, reason: str) -> None:
        super().__init__(f"cannot decrypt (key id {key_id!r}): {reason}")
        self.key_id = key_id
        self.reason = reason


class KeyNotConfigured(MemoryCoreError):
    """A save would replace a record encrypted under a key this process does not have."""

    def __init__(self, key_name: str) -> None:
        super().__init__(
            f"{key_name} is stored encrypted under a key id this process does not have; "
            "it was not overwritten (give this process every key in "
            "MEMORY_CORE_ENCRYPTION_KEYS before it saves)")


class RevisionConflict(MemoryCoreError):
    """Someone saved the buyer after the operator looked: the action was not carried out."""

    def __init__(self, message: str, stored_revision: int) -> None:
        super().__init__(message)
        self.stored_revision = stored_revision


class StoreUnavailable(MemoryCoreError):
    """Redis could not be reached or answered with an error (operator tools only)."""

    @classmethod
    def from_fault(cls, exc: BaseException, then: str = "") -> StoreUnavailable:
        """The error for a connection fault, with what to do after it (``then``)."""
        return cls(f"Redis unreachable: {type(exc).__name__}: {exc}"
                   + (f"; {then}" if then else ""))
