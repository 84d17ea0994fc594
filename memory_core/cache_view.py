"""``memory.cache``: read-only EXISTS, TTL and PTTL on the memory's own keys.

For troubleshooting, from the bot's own process (a REPL, an admin endpoint), with the
memory it already holds::

    key = "buyer_conversation_memory:c-42"   # or just "c-42"
    await memory.cache.exists(key)           # 1, or 0: no state saved (or it expired)
    await memory.cache.ttl(key)              # seconds left; -1: never expires; -2: no key

and the same without ``await`` on :class:`~memory_core.store.SyncBuyerConversationMemory`.
The answers are Redis's own (``redis-cli EXISTS``/``TTL``/``PTTL`` print the same), so a
runbook written for redis-cli reads the same here.

Decisions, for the people who read these answers:

* **Which keys.** A key that starts with the memory's prefix and a colon
  (``buyer_conversation_memory:`` by default, ``cache_key_prefix``) or a dot is used as
  given: the buyer keys, and the memory's own keys beside them (``<prefix>.zdict:current``,
  ``<prefix>.snapshot``, ``<prefix>.audit``, ``<prefix>.lookup:...``, ``<prefix>.health:...``).
  Anything else is read as a
  contact id, so ``ttl("c-42")`` asks about ``buyer_conversation_memory:c-42`` (an id no
  bot could save is refused with :class:`~memory_core.errors.InvalidContactId`, before
  Redis is asked). No key outside the prefix is ever named: ``exists("session:1")``
  asks about the buyer ``session:1`` and is 0 unless that buyer is saved. Another
  application's keys are for redis-cli, with its own credentials. (A contact id that
  itself starts with the prefix and a colon or a dot is read as a full key: pass its
  full key.)
* **Read-only.** The view sends EXISTS, TTL and PTTL (:data:`COMMANDS`) and has no
  other public attribute: no write, no value read, no way to the client.
* **Faults raise.** Unlike the bot's calls, which log and degrade, these raise
  :class:`~memory_core.errors.StoreUnavailable` when Redis cannot be reached or refuses
  the command (an ACL without EXISTS, say): a troubleshooting question needs its
  answer, or the reason there is none, never a made-up 0. The message is the reason.
* **The bot is left alone.** They go to Redis even while the circuit breaker is open or
  the memory is disabled (``enabled: false``), and they are not counted in
  ``get_stats()``, nor do their faults open the breaker or their answers close it.

Both work on a single Redis and on a Redis Cluster (each is one key's command, sent to
the node that owns the key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis

from memory_core.errors import REDIS_FAULTS, InvalidContactId, StoreUnavailable
from memory_core.safetext import LOG_CHARS, printable
from memory_core.state import validate_contact_id

if TYPE_CHECKING:
    from memory_core.store import BuyerConversationMemory, SyncBuyerConversationMemory

__all__ = ["COMMANDS", "AsyncCacheView", "SyncCacheView", "cache_key"]

#: Every command the views send: each reads one key's existence or expiry, no value.
COMMANDS = frozenset({"EXISTS", "TTL", "PTTL"})

_FAULTS = (redis.RedisError, OSError)


def cache_key(prefix: str, key: object) -> bytes:
    """The key ``key`` names under ``prefix``: a full key as given, else a contact id's.

    Raises :class:`InvalidContactId` for what is neither (not text, or an id no bot
    could save).
    """
    head = f"{prefix}:"
    own = (head, f"{prefix}.")  # buyers, and the memory's other keys (.zdict:, .audit, ...)
    if isinstance(key, bytes):
        if key.startswith(tuple(h.encode() for h in own)):
            return key
        key = key.decode("utf-8", "surrogateescape")  # an id: refused if not valid UTF-8
    elif not isinstance(key, str):
        raise InvalidContactId(f"key must be a string, a key under {head} or a contact id; "
                               f"got {type(key).__name__}")
    if key.startswith(own):
        return key.encode("utf-8", "surrogateescape")
    return f"{head}{validate_contact_id(key)}".encode()


def _command(prefix: str, name: str, key: object) -> tuple[str, bytes]:
    assert name in COMMANDS
    return name, cache_key(prefix, key)


def _unavailable(exc: BaseException, name: str) -> StoreUnavailable:
    """The error for a fault of one command: unreachable, or refused by Redis."""
    if isinstance(exc, REDIS_FAULTS):
        return StoreUnavailable.from_fault(exc)
    return StoreUnavailable(f"Redis refused {name}: {type(exc).__name__}: "
                            f"{printable(str(exc), LOG_CHARS)}")


class SyncCacheView:
    """``memory.cache`` of :class:`~memory_core.store.SyncBuyerConversationMemory`.

    See :mod:`memory_core.cache_view` for which keys it reaches and how it fails.
    """

    __slots__ = ("_memory",)

    def __init__(self, memory: SyncBuyerConversationMemory) -> None:
        self._memory = memory

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._memory.prefix}:* (exists, ttl, pttl)>"

    def exists(self, key: str | bytes) -> int:
        """1 when the key exists, 0 when it does not (a buyer with no saved state)."""
        return self._ask("EXISTS", key)

    def ttl(self, key: str | bytes) -> int:
        """Seconds until the key expires; -1 when it never expires, -2 when there is none."""
        return self._ask("TTL", key)

    def pttl(self, key: str | bytes) -> int:
        """:meth:`ttl` in milliseconds (-1 and -2 alike)."""
        return self._ask("PTTL", key)

    def _ask(self, name: str, key: object) -> int:
        command = _command(self._memory.prefix, name, key)
        try:
            reply: Any = self._memory.client.execute_command(*command)
        except _FAULTS as exc:
            raise _unavailable(exc, name) from exc
        return int(reply)


class AsyncCacheView:
    """``memory.cache`` of :class:`~memory_core.store.BuyerConversationMemory`: the
    same as :class:`SyncCacheView`, awaited."""

    __slots__ = ("_memory",)

    def __init__(self, memory: BuyerConversationMemory) -> None:
        self._memory = memory

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._memory.prefix}:* (exists, ttl, pttl)>"

    async def exists(self, key: str | bytes) -> int:
        """1 when the key exists, 0 when it does not (a buyer with no saved state)."""
        return await self._ask("EXISTS", key)

    async def ttl(self, key: str | bytes) -> int:
        """Seconds until the key expires; -1 when it never expires, -2 when there is none."""
        return await self._ask("TTL", key)

    async def pttl(self, key: str | bytes) -> int:
        """:meth:`ttl` in milliseconds (-1 and -2 alike)."""
        return await self._ask("PTTL", key)

    async def _ask(self, name: str, key: object) -> int:
        command = _command(self._memory.prefix, name, key)
        try:
            reply: Any = await self._memory.client.execute_command(*command)
        except _FAULTS as exc:
            raise _unavailable(exc, name) from exc
        return int(reply)
