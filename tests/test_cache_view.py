"""``memory.cache``: the read-only EXISTS/TTL/PTTL of the seed's troubleshooting snippets.

Each behaviour runs on fakeredis, the private redis-server and the private cluster
(``store_url``), sync and async alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import redis

from memory_core import (
    BuyerConversationMemory,
    InvalidContactId,
    MemoryConfig,
    StoreUnavailable,
    SyncBuyerConversationMemory,
)
from memory_core.cache_view import COMMANDS, AsyncCacheView, SyncCacheView, cache_key
from memory_core.dictionaries import current_dictionary_key
from memory_core.snapshot import snapshot_key

PREFIX = "buyer_conversation_memory"
DAY = 86_400
STATE = {"buyer_name": "Ana", "messages": [{"role": "user", "content": "3 bedrooms"}]}


def run_async(url: str, action: Callable[[BuyerConversationMemory], Coroutine[Any, Any, Any]],
              config: MemoryConfig | None = None) -> Any:
    """Open an async memory, await ``action(memory)``, close it, in one event loop."""
    async def main() -> Any:
        async with BuyerConversationMemory.from_url(url, config) as memory:
            return await action(memory)

    return asyncio.run(main())


@pytest.fixture
def memory(store_url: str) -> Iterator[SyncBuyerConversationMemory]:
    with SyncBuyerConversationMemory.from_url(store_url) as opened:
        yield opened


# the seed's snippets ---------------------------------------------------------------------

def test_a_saved_buyer_exists_with_the_configured_ttl(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("c-42", STATE)
    key = f"{PREFIX}:c-42"
    assert memory.cache.exists(key) == 1
    assert 30 * DAY - 5 <= memory.cache.ttl(key) <= 30 * DAY
    assert 30 * DAY * 1000 - 5000 <= memory.cache.pttl(key) <= 30 * DAY * 1000


def test_the_async_snippets_answer_as_the_sync_ones(store_url: str) -> None:
    key = f"{PREFIX}:c-42"

    async def snippets(memory: BuyerConversationMemory) -> tuple[int, ...]:
        before = (await memory.cache.exists(key), await memory.cache.ttl(key),
                  await memory.cache.pttl(key))
        assert await memory.save_state("c-42", STATE, ttl_override=2 * DAY)
        return (*before, await memory.cache.exists(key), await memory.cache.ttl(key),
                await memory.cache.pttl(key))

    missing_exists, missing_ttl, missing_pttl, exists, ttl, pttl = run_async(store_url,
                                                                              snippets)
    assert (missing_exists, missing_ttl, missing_pttl) == (0, -2, -2)
    assert exists == 1
    assert 2 * DAY - 5 <= ttl <= 2 * DAY
    assert 2 * DAY * 1000 - 5000 <= pttl <= 2 * DAY * 1000


def test_a_missing_key_does_not_exist_and_has_ttl_minus_two(
        memory: SyncBuyerConversationMemory) -> None:
    for key in (f"{PREFIX}:nobody", "nobody"):
        assert memory.cache.exists(key) == 0
        assert memory.cache.ttl(key) == -2
        assert memory.cache.pttl(key) == -2


def test_a_key_without_ttl_answers_minus_one(store_url: str,
                                             memory: SyncBuyerConversationMemory,
                                             raw: redis.Redis) -> None:
    raw.set(f"{PREFIX}:forever", b"planted without EX")
    assert memory.cache.exists(f"{PREFIX}:forever") == 1
    assert memory.cache.ttl(f"{PREFIX}:forever") == -1
    assert memory.cache.pttl(f"{PREFIX}:forever") == -1

    async def ask(async_memory: BuyerConversationMemory) -> tuple[int, int]:
        return (await async_memory.cache.ttl("forever"),
                await async_memory.cache.pttl(f"{PREFIX}:forever".encode()))

    assert run_async(store_url, ask) == (-1, -1)


def test_answers_are_redis_own(memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    raw.set(f"{PREFIX}:short", b"x", ex=100)
    assert memory.cache.ttl(f"{PREFIX}:short") == raw.ttl(f"{PREFIX}:short")
    assert memory.cache.exists(f"{PREFIX}:short") == raw.exists(f"{PREFIX}:short") == 1


# which keys -------------------------------------------------------------------------------

def test_a_bare_contact_id_names_the_buyer_key(memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("c-7", STATE)
    assert memory.cache.exists("c-7") == memory.cache.exists(f"{PREFIX}:c-7") == 1
    assert memory.cache.ttl("c-7") == memory.cache.ttl(f"{PREFIX}:c-7")
    assert cache_key(PREFIX, "c-7") == cache_key(PREFIX, f"{PREFIX}:c-7") == b"%s:c-7" % (
        PREFIX.encode())


def test_no_key_outside_the_prefix_is_ever_named(memory: SyncBuyerConversationMemory,
                                                 raw: redis.Redis) -> None:
    raw.set("session:1", b"another application's key")
    assert memory.cache.exists("session:1") == 0  # the buyer "session:1", who is not saved
    assert memory.cache.ttl("session:1") == -2
    raw.set(f"{PREFIX}:session:1", b"x")
    assert memory.cache.exists("session:1") == 1
    assert cache_key(PREFIX, "session:1") == f"{PREFIX}:session:1".encode()
    assert cache_key(PREFIX, b"session:1") == f"{PREFIX}:session:1".encode()


def test_the_prefix_is_the_memory_own(store_url: str, raw: redis.Redis) -> None:
    raw.set(f"{PREFIX}:c-1", b"x")
    with SyncBuyerConversationMemory.from_url(
            store_url, MemoryConfig(cache_key_prefix="bot2")) as memory:
        # another memory's full key is read as a contact id under bot2
        assert memory.cache.exists(f"{PREFIX}:c-1") == 0
        assert memory.cache.exists("c-1") == 0
        assert memory.save_state("c-1", STATE)
        assert memory.cache.exists("bot2:c-1") == memory.cache.exists("c-1") == 1


def test_the_memory_own_keys_beside_the_buyers_can_be_asked_about(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    """The dictionary pointer, the snapshot, the audit stream...: <prefix>.<name>."""
    pointer = current_dictionary_key(PREFIX)
    raw.set(pointer, b"3")
    raw.set(snapshot_key(PREFIX), b"x", ex=600)
    assert pointer.startswith(f"{PREFIX}.")
    assert memory.cache.exists(pointer) == 1
    assert memory.cache.exists(pointer.encode()) == 1
    assert memory.cache.ttl(pointer) == -1
    assert 590 <= memory.cache.ttl(snapshot_key(PREFIX)) <= 600
    assert memory.cache.exists(f"{PREFIX}.audit") == 0  # nothing audited yet


@pytest.mark.parametrize("bad", ["", "two words", "tab\there", "x" * 1000, b"\xff\xfe", 42,
                                 None])
def test_what_is_neither_a_key_nor_a_contact_id_is_refused_before_redis_is_asked(
        bad: object) -> None:
    client = _RecordingClient()
    memory = SyncBuyerConversationMemory(client)
    with pytest.raises(InvalidContactId):
        memory.cache.exists(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidContactId):
        asyncio.run(BuyerConversationMemory(_AsyncRecordingClient()).cache.ttl(
            bad))  # type: ignore[arg-type]
    assert client.sent == []


# read-only ---------------------------------------------------------------------------------

class _RecordingClient:
    """A stand-in client: answers 1 and records every command it is sent."""

    def __init__(self, fault: Exception | None = None) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.fault = fault

    def execute_command(self, *command: Any) -> int:
        self.sent.append(command)
        if self.fault is not None:
            raise self.fault
        return 1


class _AsyncRecordingClient(_RecordingClient):
    async def execute_command(self, *command: Any) -> int:  # type: ignore[override]
        return super().execute_command(*command)


def test_the_view_sends_exists_ttl_and_pttl_and_nothing_else() -> None:
    client = _RecordingClient()
    cache = SyncBuyerConversationMemory(client).cache
    assert (cache.exists("c-1"), cache.ttl(f"{PREFIX}:c-1"), cache.pttl(b"c-1")) == (1, 1, 1)
    key = f"{PREFIX}:c-1".encode()
    assert client.sent == [("EXISTS", key), ("TTL", key), ("PTTL", key)]
    assert {command[0] for command in client.sent} <= COMMANDS == {"EXISTS", "TTL", "PTTL"}

    async_client = _AsyncRecordingClient()

    async def ask() -> tuple[int, int, int]:
        view = BuyerConversationMemory(async_client).cache
        return await view.exists("c-1"), await view.ttl("c-1"), await view.pttl("c-1")

    assert asyncio.run(ask()) == (1, 1, 1)
    assert async_client.sent == [("EXISTS", key), ("TTL", key), ("PTTL", key)]


@pytest.mark.parametrize("memory_class", [SyncBuyerConversationMemory,
                                          BuyerConversationMemory])
def test_the_view_has_no_write_and_no_way_to_the_client(memory_class: type) -> None:
    client = (_RecordingClient() if memory_class is SyncBuyerConversationMemory
              else _AsyncRecordingClient())
    cache = memory_class(client).cache
    assert isinstance(cache, SyncCacheView | AsyncCacheView)
    assert {name for name in dir(cache) if not name.startswith("_")} == {
        "exists", "ttl", "pttl"}
    for write in ("set", "delete", "expire", "persist", "execute_command", "pipeline",
                  "client", "getrange", "get"):
        with pytest.raises(AttributeError):
            getattr(cache, write)
    with pytest.raises(AttributeError):
        cache.set = lambda *args: None  # type: ignore[union-attr]  # none can be added
    assert "exists, ttl, pttl" in repr(cache) and f"{PREFIX}:*" in repr(cache)
    assert client.sent == []


# faults ------------------------------------------------------------------------------------

DEAD_URL = "redis://127.0.0.1:1/0"


def test_redis_unreachable_raises_store_unavailable_and_leaves_the_bot_alone() -> None:
    config = MemoryConfig(failure_threshold=1, socket_connect_timeout_seconds=0.2)
    with SyncBuyerConversationMemory.from_url(DEAD_URL, config) as memory:
        before = memory.get_stats()
        for ask in (memory.cache.exists, memory.cache.ttl, memory.cache.pttl):
            with pytest.raises(StoreUnavailable, match=r"^Redis unreachable: ConnectionError"):
                ask("c-1")
        assert memory.get_stats() == before  # not counted, breaker still closed
        assert not memory.get_stats()["circuit_open"]
        assert memory.load_state("c-1") is None  # the bot's call: degrades, opens it
        assert memory.get_stats()["circuit_open"]
        with pytest.raises(StoreUnavailable):  # asked even with the breaker open
            memory.cache.ttl("c-1")

    async def ask_async(memory: BuyerConversationMemory) -> None:
        with pytest.raises(StoreUnavailable, match=r"^Redis unreachable"):
            await memory.cache.exists(f"{PREFIX}:c-1")
        assert (await memory.get_stats())["errors"] == 0

    run_async(DEAD_URL, ask_async, config)


def test_a_refused_command_raises_store_unavailable_naming_it() -> None:
    refused = redis.exceptions.NoPermissionError(
        "this user has no permissions to run the 'ttl' command")
    memory = SyncBuyerConversationMemory(_RecordingClient(refused))
    with pytest.raises(StoreUnavailable, match=r"^Redis refused TTL: NoPermissionError: this"
                       ) as raised:
        memory.cache.ttl("c-1")
    assert raised.value.__cause__ is refused
    assert memory.get_stats()["errors"] == 0


@pytest.mark.real_redis
def test_an_acl_without_ttl_is_reported_by_the_real_server(real_redis_url: str,
                                                           real_raw: redis.Redis) -> None:
    real_raw.execute_command("ACL", "SETUSER", "no-ttl", "on", ">no-ttl-pw", "~*", "+@all",
                             "-ttl")
    try:
        url = real_redis_url.replace("redis://", "redis://no-ttl:no-ttl-pw@")
        with SyncBuyerConversationMemory.from_url(url) as memory:
            assert memory.cache.exists("c-1") == 0
            with pytest.raises(StoreUnavailable, match=r"^Redis refused TTL: NoPermission"):
                memory.cache.ttl("c-1")
            assert memory.cache.pttl("c-1") == -2
    finally:
        real_raw.execute_command("ACL", "DELUSER", "no-ttl")


def test_a_disabled_memory_still_answers(store_url: str, raw: redis.Redis) -> None:
    raw.set(f"{PREFIX}:c-1", b"x", ex=60)
    with SyncBuyerConversationMemory.from_url(store_url, MemoryConfig(enabled=False)) as memory:
        assert memory.load_state("c-1") is None
        assert memory.cache.exists("c-1") == 1
        assert 0 < memory.cache.ttl("c-1") <= 60
