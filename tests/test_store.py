"""The buyer memory end to end, on fakeredis and on a real redis-server.

Every behaviour test takes ``store_url`` and so runs on both backends. The fault tests at
the end stop the private redis-server (real Redis only) and always restart it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fakeredis
import pytest
import redis
import redis.asyncio
import zstandard

from memory_core import (
    BuyerConversationMemory,
    ConnectionURLError,
    CorruptRecord,
    MemoryConfig,
    StoreUnavailable,
    SyncBuyerConversationMemory,
    get_buyer_conversation_memory,
    reset_buyer_conversation_memory,
)
from memory_core import dictionaries as dicts
from memory_core.connection import connect, connect_async
from memory_core.record import encode_record
from memory_core.state import STATE_DEFAULTS, dump_json, prepare_state, utc_now

if TYPE_CHECKING:
    from memory_core.testing import RedisServer

PREFIX = "buyer_conversation_memory"
DAY = 86_400
BuyerStateFactory = Callable[..., dict[str, Any]]
Dictionaries = tuple[zstandard.ZstdCompressionDict, zstandard.ZstdCompressionDict]
REQUIRED_STATS = ("enabled", "ttl_days", "ttl_seconds", "compress_threshold_bytes",
                  "max_history_messages", "state_version", "saves", "loads", "hits",
                  "misses", "errors")


def key(contact_id: str) -> str:
    return f"{PREFIX}:{contact_id}"


def problem_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name.startswith("memory_core") and r.levelno >= logging.WARNING]


def run_async(url: str, config: MemoryConfig | None,
              action: Callable[[BuyerConversationMemory], Any]) -> Any:
    """Open an async memory, await ``action(memory)``, close it, all in one event loop."""
    async def main() -> Any:
        async with BuyerConversationMemory.from_url(url, config) as async_memory:
            return await action(async_memory)

    return asyncio.run(main())


# round trips -----------------------------------------------------------------------------

def test_sync_save_and_load_round_trip(memory: SyncBuyerConversationMemory,
                                       make_buyer_state: BuyerStateFactory) -> None:
    state = make_buyer_state(1, messages=10)
    before = utc_now().replace(microsecond=0)
    assert memory.save_state("buyer-1", state) is True
    loaded = memory.load_state("buyer-1")
    assert loaded is not None
    for name, value in state.items():
        assert loaded[name] == value, name
    assert loaded["state_version"] == "1.0"
    stamp = datetime.fromisoformat(loaded["last_interaction_timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert stamp >= before
    assert memory.load_state("somebody-else") is None


def test_async_and_sync_see_the_same_data(store_url: str,
                                          make_buyer_state: BuyerStateFactory) -> None:
    from_sync = make_buyer_state(2, messages=10)
    from_async = make_buyer_state(3, messages=60)  # compressed
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("written-by-sync", from_sync)

    async def exchange(async_memory: BuyerConversationMemory) -> Any:
        saved = await async_memory.save_state("written-by-async", from_async)
        return saved, await async_memory.load_state("written-by-sync")

    saved, seen_by_async = run_async(store_url, None, exchange)
    assert saved is True
    assert seen_by_async is not None
    assert seen_by_async["conversation_history"] == from_sync["conversation_history"]
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        seen_by_sync = memory.load_state("written-by-async")
    assert seen_by_sync is not None
    assert seen_by_sync["buyer_name"] == from_async["buyer_name"]
    assert seen_by_sync["conversation_history"] == \
        from_async["conversation_history"][-50:]


def test_defaults_are_filled(memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("sparse", {"buyer_temperature": "cold"})
    loaded = memory.load_state("sparse")
    assert loaded is not None
    assert loaded["buyer_temperature"] == "cold"
    for name, default in STATE_DEFAULTS.items():
        if name != "buyer_temperature":
            assert loaded[name] == default, name


def test_history_is_trimmed_to_the_last_50(memory: SyncBuyerConversationMemory) -> None:
    history = [{"role": "user", "content": f"message {i}"} for i in range(75)]
    assert memory.save_state("chatty", {"conversation_history": history})
    loaded = memory.load_state("chatty")
    assert loaded is not None
    assert loaded["conversation_history"] == history[25:]
    assert len(history) == 75  # the caller's list is untouched


def test_extra_fields_are_kept(memory: SyncBuyerConversationMemory) -> None:
    extra = {"crm_tags": ["vip", "referral"], "agent": {"name": "Jorge", "id": 7},
             "notes": None, "score_history": [1.5, 2, 3]}
    assert memory.save_state("extra", extra)
    loaded = memory.load_state("extra")
    assert loaded is not None
    assert {name: loaded[name] for name in extra} == extra


# TTL ---------------------------------------------------------------------------------------

def test_default_ttl_is_30_days(memory: SyncBuyerConversationMemory,
                                raw: redis.Redis) -> None:
    assert memory.save_state("ttl-default", {})
    assert 30 * DAY - 5 <= raw.ttl(key("ttl-default")) <= 30 * DAY


def test_ttl_follows_the_config(store_url: str, raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(store_url, MemoryConfig(ttl_days=10)) as memory:
        assert memory.save_state("ttl-config", {})
    assert 10 * DAY - 5 <= raw.ttl(key("ttl-config")) <= 10 * DAY


@pytest.mark.parametrize("override", [3600, 1, 90 * DAY])
def test_ttl_override_is_applied(memory: SyncBuyerConversationMemory, raw: redis.Redis,
                                 override: int) -> None:
    assert memory.save_state("ttl-override", {}, ttl_override=override) is True
    assert max(1, override - 5) <= raw.ttl(key("ttl-override")) <= override


@pytest.mark.parametrize("override", [0, -1, 1.5, "10", True, 90 * DAY + 1, 10**12])
def test_bad_ttl_override_is_refused_and_nothing_written(
        memory: SyncBuyerConversationMemory, raw: redis.Redis,
        caplog: pytest.LogCaptureFixture, override: object) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")
    assert memory.save_state("ttl-bad", {}, ttl_override=override) is False  # type: ignore[arg-type]
    assert raw.exists(key("ttl-bad")) == 0
    assert raw.dbsize() == 0
    logs = problem_logs(caplog)
    assert len(logs) == 1
    assert "ttl_override" in logs[0].getMessage()
    assert memory.get_stats()["refused"] == 1


def test_bad_ttl_override_does_not_overwrite_an_existing_state(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("keep-me", {"buyer_temperature": "hot"})
    assert memory.save_state("keep-me", {"buyer_temperature": "cold"}, ttl_override=0) is False
    loaded = memory.load_state("keep-me")
    assert loaded is not None and loaded["buyer_temperature"] == "hot"


# compression ---------------------------------------------------------------------------------

def test_compression_only_over_the_threshold(store_url: str,
                                             make_buyer_state: BuyerStateFactory) -> None:
    """An explicit threshold (an existing jorge_bots.yaml says 5120) works as written."""
    small, large = make_buyer_state(4, messages=5), make_buyer_state(5, messages=50)
    assert len(dump_json(prepare_state(small, max_history_messages=50, now=utc_now()))) < 5120
    config = MemoryConfig(compress_threshold_bytes=5120)
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        assert memory.save_state("small", small)
        assert memory.save_state("large", large)
        small_record = memory.read_record("small")
        large_record = memory.read_record("large")
    assert small_record is not None and small_record.summary is not None
    assert large_record is not None and large_record.summary is not None
    assert small_record.summary.codec == "none"
    assert large_record.summary.codec == "zstd"
    assert large_record.summary.original_bytes > 5120
    assert large_record.summary.payload_bytes < large_record.summary.original_bytes
    assert large_record.state["conversation_history"] == large["conversation_history"]
    assert large_record.legacy is False
    assert large_record.ttl_seconds is not None
    assert 30 * DAY - 5 <= large_record.ttl_seconds <= 30 * DAY


def test_by_default_a_new_buyers_small_state_is_compressed_too(
        memory: SyncBuyerConversationMemory, make_buyer_state: BuyerStateFactory) -> None:
    """The default threshold (256 B) is under any prepared state: bench_threshold.py
    measured new buyers (1-10 messages) at 1,850-2,108 B plain against 930-1,109 B
    compressed without a dictionary."""
    small = make_buyer_state(4, messages=3)
    assert memory.save_state("small", small)
    record = memory.read_record("small")
    assert record is not None and record.summary is not None
    assert record.summary.codec == "zstd"
    assert record.summary.payload_bytes < record.summary.original_bytes
    assert record.state["conversation_history"] == small["conversation_history"]


def test_codec_none_stores_large_states_uncompressed(
        store_url: str, make_buyer_state: BuyerStateFactory) -> None:
    config = MemoryConfig(codec="none")
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        assert memory.save_state("large", make_buyer_state(6, messages=50))
        record = memory.read_record("large")
    assert record is not None and record.summary is not None
    assert record.summary.codec == "none"
    assert record.summary.original_bytes > 5120


# refused input -------------------------------------------------------------------------------

@pytest.mark.parametrize("contact_id", ["", "has space", "line\nbreak", "x" * 257, None, 42,
                                        b"bytes"])
def test_bad_contact_ids_are_refused(memory: SyncBuyerConversationMemory, raw: redis.Redis,
                                     caplog: pytest.LogCaptureFixture,
                                     contact_id: Any) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")
    assert memory.save_state(contact_id, {"buyer_temperature": "hot"}) is False
    assert memory.load_state(contact_id) is None
    assert memory.clear_state(contact_id) is False
    assert raw.dbsize() == 0
    assert len(problem_logs(caplog)) == 3
    assert memory.get_stats()["refused"] == 3


def test_bad_contact_ids_are_refused_by_the_async_store(store_url: str,
                                                        raw: redis.Redis) -> None:
    async def attempt(async_memory: BuyerConversationMemory) -> Any:
        return (await async_memory.save_state("", {}),
                await async_memory.load_state("has space"),
                await async_memory.clear_state(None))  # type: ignore[arg-type]

    assert run_async(store_url, None, attempt) == (False, None, False)
    assert raw.dbsize() == 0


class _Opaque:
    pass


@pytest.mark.parametrize("state", [
    None,
    ["not", "a", "dict"],
    "state",
    {1: "non-string key"},
    {"financial_readiness_score": math.nan},
    {"budget_range": {"max": math.inf}},
    {"conversation_history": [{"score": -math.inf}]},
    {"payload": _Opaque()},
    {"tags": {"a", "b"}},
    {"conversation_history": "not a list"},
], ids=["none", "list", "str", "int-key", "nan", "nested-inf", "history-inf", "object",
        "set", "history-str"])
def test_unstorable_states_are_refused_and_nothing_written(
        memory: SyncBuyerConversationMemory, raw: redis.Redis,
        caplog: pytest.LogCaptureFixture, state: Any) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")
    assert memory.save_state("refused", state) is False
    assert raw.dbsize() == 0
    logs = problem_logs(caplog)
    assert len(logs) == 1
    assert "refused, nothing written" in logs[0].getMessage()
    stats = memory.get_stats()
    assert (stats["saves"], stats["refused"]) == (0, 1)


def test_unstorable_state_is_refused_by_the_async_store(store_url: str,
                                                        raw: redis.Redis) -> None:
    async def attempt(async_memory: BuyerConversationMemory) -> bool:
        return await async_memory.save_state("refused", {"x": math.nan})

    assert run_async(store_url, None, attempt) is False
    assert raw.dbsize() == 0


def test_state_over_max_state_bytes_is_refused(store_url: str, raw: redis.Redis,
                                               caplog: pytest.LogCaptureFixture) -> None:
    config = MemoryConfig(max_state_bytes=2000)
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        assert memory.save_state("big", {"notes": "x" * 5000}) is False
        assert raw.dbsize() == 0
        assert "max_state_bytes=2000" in problem_logs(caplog)[0].getMessage()
        assert memory.save_state("fits", {"notes": "x" * 100}) is True
    assert raw.exists(key("fits")) == 1


def test_size_limit_applies_after_history_trimming(store_url: str) -> None:
    config = MemoryConfig(max_state_bytes=20_000, max_history_messages=50)
    history = [{"content": "y" * 200} for _ in range(500)]  # ~100 KB before trimming
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        assert memory.save_state("long-chat", {"conversation_history": history}) is True
        loaded = memory.load_state("long-chat")
    assert loaded is not None
    assert len(loaded["conversation_history"]) == 50


# switch, clear, stats ----------------------------------------------------------------------

def test_disabled_memory_does_nothing(store_url: str, raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(store_url) as enabled:
        assert enabled.save_state("existing", {"buyer_temperature": "hot"})
    with SyncBuyerConversationMemory.from_url(store_url, MemoryConfig(enabled=False)) as off:
        assert off.save_state("new", {"buyer_temperature": "warm"}) is False
        assert off.load_state("existing") is None
        assert off.clear_state("existing") is False
        stats = off.get_stats()
    assert stats["enabled"] is False
    assert (stats["saves"], stats["loads"], stats["errors"]) == (0, 0, 0)
    assert raw.exists(key("new")) == 0
    assert raw.exists(key("existing")) == 1  # clear did not delete
    assert raw.dbsize() == 1


def test_disabled_async_memory_does_nothing(store_url: str, raw: redis.Redis) -> None:
    raw.set(key("existing"), b"whatever")

    async def attempt(async_memory: BuyerConversationMemory) -> Any:
        return (await async_memory.save_state("new", {}),
                await async_memory.load_state("existing"),
                await async_memory.clear_state("existing"))

    assert run_async(store_url, MemoryConfig(enabled=False), attempt) == (False, None, False)
    assert raw.exists(key("new")) == 0
    assert raw.get(key("existing")) == b"whatever"


def test_clear_state(memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    assert memory.save_state("to-clear", {"buyer_temperature": "hot"})
    assert memory.save_state("to-keep", {"buyer_temperature": "cold"})
    assert memory.clear_state("to-clear") is True
    assert raw.exists(key("to-clear")) == 0
    assert memory.load_state("to-clear") is None
    assert memory.clear_state("to-clear") is False
    assert memory.clear_state("never-existed") is False
    assert memory.load_state("to-keep") is not None


def test_async_clear_state(store_url: str, raw: redis.Redis) -> None:
    async def scenario(async_memory: BuyerConversationMemory) -> Any:
        await async_memory.save_state("to-clear", {})
        return (await async_memory.clear_state("to-clear"),
                await async_memory.clear_state("to-clear"))

    assert run_async(store_url, None, scenario) == (True, False)
    assert raw.dbsize() == 0


def test_stats_have_the_required_keys_and_counters_move(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    stats = memory.get_stats()
    assert set(REQUIRED_STATS) <= set(stats)
    assert stats["enabled"] is True
    assert stats["ttl_days"] == 30
    assert stats["ttl_seconds"] == 30 * DAY
    assert stats["compress_threshold_bytes"] == 256
    assert stats["max_history_messages"] == 50
    assert stats["state_version"] == "1.0"
    assert all(stats[name] == 0 for name in ("saves", "loads", "hits", "misses", "errors"))

    memory.save_state("a", {})
    memory.save_state("b", {})
    memory.load_state("a")
    memory.load_state("missing")
    raw.set(key("broken"), b"garbage")
    memory.load_state("broken")
    memory.clear_state("a")
    stats = memory.get_stats()
    assert stats["saves"] == 2
    assert stats["loads"] == 3
    assert stats["hits"] == 1
    assert stats["misses"] == 1
    assert stats["errors"] == 1
    assert stats["corrupt"] == 1
    assert stats["clears"] == 1


def test_async_stats(store_url: str) -> None:
    async def scenario(async_memory: BuyerConversationMemory) -> dict[str, Any]:
        await async_memory.save_state("a", {})
        await async_memory.load_state("a")
        await async_memory.load_state("b")
        return await async_memory.get_stats()

    stats = run_async(store_url, MemoryConfig(ttl_days=14), scenario)
    assert set(REQUIRED_STATS) <= set(stats)
    assert stats["ttl_days"] == 14
    assert (stats["saves"], stats["loads"], stats["hits"], stats["misses"]) == (1, 2, 1, 1)


# clients -------------------------------------------------------------------------------------

class _CloseSpy:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


def test_sync_close_only_closes_a_client_it_opened(store_url: str) -> None:
    injected = connect(store_url)
    try:
        spy = _CloseSpy(injected)
        injected.close = spy.close  # type: ignore[method-assign]
        memory = SyncBuyerConversationMemory(injected)
        assert memory.save_state("shared-client", {})
        memory.close()
        assert spy.closed == 0
        with SyncBuyerConversationMemory(injected, owns_client=True) as owner:
            assert owner.load_state("shared-client") is not None
        assert spy.closed == 1
    finally:
        del injected.close
        injected.close()


def test_from_url_memory_closes_its_client(store_url: str) -> None:
    memory = SyncBuyerConversationMemory.from_url(store_url)
    spy = _CloseSpy(memory.client)
    original_close = memory.client.close
    memory.client.close = spy.close  # type: ignore[method-assign]
    assert memory.save_state("x", {})
    memory.close()
    assert spy.closed == 1
    original_close()


def test_async_aclose_only_closes_a_client_it_opened(store_url: str) -> None:
    async def scenario() -> tuple[bool, int, int]:
        injected = connect_async(store_url)
        injected_spy = _CloseSpy(injected)
        injected.aclose = injected_spy.aclose  # type: ignore[method-assign]
        borrower = BuyerConversationMemory(injected)
        saved = await borrower.save_state("shared-client", {})
        await borrower.aclose()
        async with BuyerConversationMemory(injected, owns_client=True) as owner:
            await owner.load_state("shared-client")
        del injected.aclose
        await injected.aclose()

        owned = BuyerConversationMemory.from_url(store_url)
        owned_spy = _CloseSpy(owned.client)
        real_aclose = owned.client.aclose
        owned.client.aclose = owned_spy.aclose  # type: ignore[method-assign]
        await owned.aclose()
        await real_aclose()
        return saved, injected_spy.closed, owned_spy.closed

    saved, injected_closed, owned_closed = asyncio.run(scenario())
    assert saved is True
    assert injected_closed == 1  # by the owner only, not by the borrower
    assert owned_closed == 1


@pytest.mark.parametrize("make_client", [
    lambda: redis.Redis(decode_responses=True),
    lambda: fakeredis.FakeRedis(decode_responses=True),
], ids=["redis", "fakeredis"])
def test_sync_client_with_decode_responses_is_rejected(
        make_client: Callable[[], redis.Redis]) -> None:
    client = make_client()
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            SyncBuyerConversationMemory(client)
    finally:
        client.close()


@pytest.mark.parametrize("make_client", [
    lambda: redis.asyncio.Redis(decode_responses=True),
    lambda: fakeredis.FakeAsyncRedis(decode_responses=True),
], ids=["redis", "fakeredis"])
def test_async_client_with_decode_responses_is_rejected(
        make_client: Callable[[], redis.asyncio.Redis]) -> None:
    async def scenario() -> None:
        client = make_client()
        try:
            with pytest.raises(ValueError, match="decode_responses=False"):
                BuyerConversationMemory(client)
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_injected_binary_clients_are_accepted(store_url: str) -> None:
    client = connect(store_url)
    try:
        memory = SyncBuyerConversationMemory(client, MemoryConfig(ttl_days=8))
        assert memory.save_state("injected", {"buyer_temperature": "hot"})
        assert client.ttl(key("injected")) > 7 * DAY
    finally:
        client.close()


# the process-wide memory ---------------------------------------------------------------------

@pytest.fixture
def clean_singleton() -> Iterator[None]:
    reset_buyer_conversation_memory()
    yield
    reset_buyer_conversation_memory()


@pytest.mark.usefixtures("clean_singleton")
def test_singleton_uses_redis_url_and_config_env(
        store_url: str, raw: redis.Redis, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "jorge_bots.yaml"
    config_file.write_text("buyer_bot:\n  conversation_memory:\n    ttl_days: 12\n",
                           encoding="utf-8")
    monkeypatch.setenv("REDIS_URL", store_url)
    monkeypatch.setenv("MEMORY_CORE_CONFIG", str(config_file))
    for name in list(os.environ):
        if name.startswith("MEMORY_CORE_") and name != "MEMORY_CORE_CONFIG":
            monkeypatch.delenv(name)

    async def scenario() -> tuple[BuyerConversationMemory, bool, bool]:
        singleton = get_buyer_conversation_memory()
        same = get_buyer_conversation_memory() is singleton
        saved = await singleton.save_state("singleton-buyer", {"buyer_temperature": "hot"})
        await singleton.aclose()
        return singleton, same, saved

    first, same, saved = asyncio.run(scenario())
    assert same is True
    assert saved is True
    assert first.config.ttl_days == 12
    assert 12 * DAY - 5 <= raw.ttl(key("singleton-buyer")) <= 12 * DAY

    reset_buyer_conversation_memory()
    monkeypatch.delenv("MEMORY_CORE_CONFIG")
    second = get_buyer_conversation_memory()
    assert second is not first
    assert second.config.ttl_days == 30
    assert get_buyer_conversation_memory() is second


@pytest.mark.usefixtures("clean_singleton")
def test_singleton_refuses_a_bad_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://localhost:6379")
    monkeypatch.delenv("MEMORY_CORE_CONFIG", raising=False)
    with pytest.raises(ConnectionURLError, match="scheme 'http' is not supported"):
        get_buyer_conversation_memory()


# unreadable data at a key --------------------------------------------------------------------

def _plant_garbage(client: redis.Redis, memory: SyncBuyerConversationMemory) -> None:
    client.set(key("victim"), b"\x00\xffthis is not a record at all")


def _plant_truncated(client: redis.Redis, memory: SyncBuyerConversationMemory) -> None:
    big = {"conversation_history": [{"content": f"message {i} " * 20} for i in range(50)]}
    assert memory.save_state("victim", big)
    record = client.get(key("victim"))
    assert record is not None
    client.set(key("victim"), record[:-10])


def _plant_bad_json(client: redis.Redis, memory: SyncBuyerConversationMemory) -> None:
    state = prepare_state({}, max_history_messages=50, now=utc_now())
    bad = b'{"buyer_temperature": "hot", oops'
    client.set(key("victim"), encode_record(state, bad, compress_threshold_bytes=5120,
                                            codec="zstd", zstd_level=3))


def _plant_json_array(client: redis.Redis, memory: SyncBuyerConversationMemory) -> None:
    state = prepare_state({}, max_history_messages=50, now=utc_now())
    client.set(key("victim"), encode_record(state, b"[1, 2, 3]", compress_threshold_bytes=0,
                                            codec="zstd", zstd_level=3))


def _plant_hash(client: redis.Redis, memory: SyncBuyerConversationMemory) -> None:
    client.hset(key("victim"), mapping={"buyer_temperature": "hot"})


def _plant_list(client: redis.Redis, memory: SyncBuyerConversationMemory) -> None:
    client.rpush(key("victim"), b"one", b"two")


FAULTS = {
    "garbage": (_plant_garbage, "unrecognised bytes"),
    "truncated": (_plant_truncated, "truncated"),
    "bad-json": (_plant_bad_json, "not valid JSON"),
    "json-array": (_plant_json_array, "not a JSON object"),
    "hash": (_plant_hash, "WRONGTYPE"),
    "list": (_plant_list, "WRONGTYPE"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_unreadable_key_loads_as_no_state(memory: SyncBuyerConversationMemory,
                                          raw: redis.Redis, caplog: pytest.LogCaptureFixture,
                                          fault: str) -> None:
    plant, fragment = FAULTS[fault]
    plant(raw, memory)
    caplog.set_level(logging.WARNING, logger="memory_core")
    assert memory.load_state("victim") is None
    logs = problem_logs(caplog)
    assert len(logs) == 1
    assert logs[0].levelno == logging.ERROR
    assert fragment in logs[0].getMessage()
    assert "victim" in logs[0].getMessage()
    assert memory.get_stats()["errors"] == 1
    assert memory.get_stats()["hits"] == 0


@pytest.mark.parametrize("fault", list(FAULTS))
def test_unreadable_key_loads_as_no_state_async(store_url: str,
                                                memory: SyncBuyerConversationMemory,
                                                raw: redis.Redis,
                                                caplog: pytest.LogCaptureFixture,
                                                fault: str) -> None:
    plant, fragment = FAULTS[fault]
    plant(raw, memory)
    caplog.set_level(logging.WARNING, logger="memory_core")

    async def load(async_memory: BuyerConversationMemory) -> Any:
        return await async_memory.load_state("victim"), await async_memory.get_stats()

    loaded, stats = run_async(store_url, None, load)
    assert loaded is None
    logs = problem_logs(caplog)
    assert len(logs) == 1
    assert fragment in logs[0].getMessage()
    assert stats["errors"] == 1


def test_save_over_a_wrong_type_key_replaces_it(memory: SyncBuyerConversationMemory,
                                                raw: redis.Redis) -> None:
    _plant_hash(raw, memory)
    assert memory.save_state("victim", {"buyer_temperature": "warm"}) is True
    loaded = memory.load_state("victim")
    assert loaded is not None and loaded["buyer_temperature"] == "warm"


def test_operator_read_record_raises_on_corrupt_data(memory: SyncBuyerConversationMemory,
                                                     raw: redis.Redis) -> None:
    _plant_garbage(raw, memory)
    with pytest.raises(CorruptRecord, match="unrecognised bytes"):
        memory.read_record("victim")
    assert memory.read_record("nobody") is None


# trained dictionaries ------------------------------------------------------------------------

def store_dictionary(client: redis.Redis, dictionary: zstandard.ZstdCompressionDict,
                     make_current: bool = True) -> int:
    dictionary_id = dictionary.dict_id()
    client.set(dicts.dictionary_key(PREFIX, dictionary_id), dictionary.as_bytes())
    if make_current:
        client.set(dicts.current_dictionary_key(PREFIX), str(dictionary_id))
    return dictionary_id


def dictionary_id_of(memory: SyncBuyerConversationMemory, contact_id: str) -> int:
    record = memory.read_record(contact_id)
    assert record is not None and record.summary is not None
    assert record.summary.codec == "zstd"
    return record.summary.dictionary_id


def test_saves_use_the_current_dictionary_and_survive_rotation(
        store_url: str, raw: redis.Redis, make_buyer_state: BuyerStateFactory,
        zstd_dictionaries: Dictionaries, caplog: pytest.LogCaptureFixture) -> None:
    first_dictionary, second_dictionary = zstd_dictionaries
    config = MemoryConfig(dictionary_refresh_seconds=0)
    old_state, new_state = make_buyer_state(20, messages=50), make_buyer_state(21, messages=50)
    small_state = make_buyer_state(22, messages=3)

    first_id = store_dictionary(raw, first_dictionary)
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        assert memory.save_state("old", old_state)
        assert memory.save_state("small", small_state)
        assert dictionary_id_of(memory, "old") == first_id
        assert memory.get_stats()["dictionary_id"] == first_id
        small = memory.read_record("small")
        assert small is not None and small.summary is not None
        # the default threshold compresses a 3-message state with the dictionary too
        assert (small.summary.codec, small.summary.dictionary_id) == ("zstd", first_id)
        loaded = memory.load_state("old")
        assert loaded is not None
        assert loaded["conversation_history"] == old_state["conversation_history"]

        second_id = store_dictionary(raw, second_dictionary)  # rotate
        assert memory.save_state("new", new_state)
        assert dictionary_id_of(memory, "new") == second_id != first_id
        assert memory.load_state("old") is not None

    with SyncBuyerConversationMemory.from_url(store_url, config) as fresh:
        old_loaded, new_loaded = fresh.load_state("old"), fresh.load_state("new")
    assert old_loaded is not None and new_loaded is not None
    assert old_loaded["buyer_name"] == old_state["buyer_name"]
    assert new_loaded["buyer_name"] == new_state["buyer_name"]

    raw.delete(dicts.dictionary_key(PREFIX, first_id))
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url, config) as emptied_cache:
        assert emptied_cache.load_state("old") is None
        assert emptied_cache.load_state("new") is not None
    logs = problem_logs(caplog)
    assert len(logs) == 1
    assert "dictionary" in logs[0].getMessage()
    assert str(first_id) in logs[0].getMessage()


def test_async_saves_use_the_current_dictionary(
        store_url: str, raw: redis.Redis, make_buyer_state: BuyerStateFactory,
        zstd_dictionaries: Dictionaries) -> None:
    dictionary_id = store_dictionary(raw, zstd_dictionaries[0])
    state = make_buyer_state(23, messages=50)

    async def scenario(async_memory: BuyerConversationMemory) -> Any:
        await async_memory.save_state("async-dict", state)
        return await async_memory.load_state("async-dict")

    loaded = run_async(store_url, None, scenario)
    assert loaded is not None
    assert loaded["conversation_history"] == state["conversation_history"]
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert dictionary_id_of(memory, "async-dict") == dictionary_id


def test_pinned_dictionary_id_wins_over_the_current_one(
        store_url: str, raw: redis.Redis, make_buyer_state: BuyerStateFactory,
        zstd_dictionaries: Dictionaries) -> None:
    first, second = zstd_dictionaries
    pinned_id = store_dictionary(raw, first, make_current=False)
    store_dictionary(raw, second)  # the current one, which the pin overrides
    config = MemoryConfig(dictionary_id=pinned_id)
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        assert memory.save_state("pinned", make_buyer_state(27, messages=50))
        assert dictionary_id_of(memory, "pinned") == pinned_id
        assert memory.get_stats()["dictionary_id"] == pinned_id
        assert memory.load_state("pinned") is not None


def test_use_dictionary_false_ignores_the_stored_dictionary(
        store_url: str, raw: redis.Redis, make_buyer_state: BuyerStateFactory,
        zstd_dictionaries: Dictionaries) -> None:
    store_dictionary(raw, zstd_dictionaries[0])
    config = MemoryConfig(use_dictionary=False)
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        assert memory.save_state("plain", make_buyer_state(24, messages=50))
        assert dictionary_id_of(memory, "plain") == 0


def test_current_pointing_at_a_missing_dictionary_falls_back_to_plain_zstd(
        store_url: str, raw: redis.Redis, make_buyer_state: BuyerStateFactory,
        zstd_dictionaries: Dictionaries, caplog: pytest.LogCaptureFixture) -> None:
    raw.set(dicts.current_dictionary_key(PREFIX), str(zstd_dictionaries[0].dict_id()))
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("fallback", make_buyer_state(25, messages=50)) is True
        assert dictionary_id_of(memory, "fallback") == 0
        assert memory.load_state("fallback") is not None
    logs = problem_logs(caplog)
    assert len(logs) == 1
    assert "not compressing with a dictionary" in logs[0].getMessage()


def test_dictionary_key_holding_another_dictionary_is_refused(
        store_url: str, raw: redis.Redis, make_buyer_state: BuyerStateFactory,
        zstd_dictionaries: Dictionaries, caplog: pytest.LogCaptureFixture) -> None:
    first, second = zstd_dictionaries
    first_id = store_dictionary(raw, first)
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("victim", make_buyer_state(26, messages=50))
    raw.set(dicts.dictionary_key(PREFIX, first_id), second.as_bytes())  # overwritten
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as fresh:
        assert fresh.load_state("victim") is None
    logs = problem_logs(caplog)
    assert len(logs) == 1
    assert "overwritten or corrupt" in logs[0].getMessage()


# Redis down (real Redis only) ----------------------------------------------------------------

def fault_config(cooldown: float) -> MemoryConfig:
    return MemoryConfig(failure_threshold=3, failure_cooldown_seconds=cooldown,
                        socket_timeout_seconds=0.5, socket_connect_timeout_seconds=0.5)


def unreachable_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in problem_logs(caplog) if "Redis unreachable" in r.getMessage()]


@pytest.mark.real_redis
def test_dead_redis_opens_the_breaker_and_calls_skip_it(
        real_redis_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(real_redis_url, fault_config(3600)) as memory:
        assert memory.save_state("buyer", {"buyer_temperature": "hot"})  # pool is warm
        redis_server.stop()
        try:
            assert memory.save_state("buyer", {}) is False
            assert len(problem_logs(caplog)) == 1
            assert memory.load_state("buyer") is None
            assert len(problem_logs(caplog)) == 2
            assert memory.get_stats()["circuit_open"] is False
            assert memory.load_state("buyer") is None
            logs = problem_logs(caplog)
            assert len(logs) == 3
            assert len(unreachable_logs(caplog)) == 3
            assert "skipping Redis" in logs[-1].getMessage()
            stats = memory.get_stats()
            assert stats["circuit_open"] is True
            assert stats["errors"] == 3
            skipped_before = stats["skipped"]

            results = [memory.load_state(f"buyer-{i}") for i in range(1000)]
            assert results == [None] * 1000
            assert memory.save_state("buyer", {}) is False
            assert memory.clear_state("buyer") is False
            assert memory.get_stats()["skipped"] == skipped_before + 1002
            assert len(problem_logs(caplog)) == 3  # skipped calls log nothing
        finally:
            redis_server.start()


@pytest.mark.real_redis
def test_breaker_recovers_after_redis_comes_back(
        real_redis_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(real_redis_url, fault_config(0.2)) as memory:
        assert memory.save_state("buyer", {"buyer_temperature": "hot"})
        redis_server.stop()
        try:
            for _ in range(3):
                assert memory.load_state("buyer") is None
            assert memory.get_stats()["circuit_open"] is True
        finally:
            redis_server.start()
        time.sleep(0.3)  # let the cooldown pass so the next call probes Redis
        assert memory.save_state("buyer", {"buyer_temperature": "warm"}) is True
        loaded = memory.load_state("buyer")
        stats = memory.get_stats()
    assert loaded is not None and loaded["buyer_temperature"] == "warm"
    assert stats["circuit_open"] is False
    assert len(unreachable_logs(caplog)) == 3


@pytest.mark.real_redis
def test_async_dead_redis_opens_the_breaker_and_calls_skip_it(
        real_redis_url: str, redis_server: RedisServer,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")

    async def scenario() -> None:
        async with BuyerConversationMemory.from_url(real_redis_url,
                                                    fault_config(3600)) as memory:
            assert await memory.save_state("buyer", {"buyer_temperature": "hot"})
            redis_server.stop()
            try:
                assert await memory.save_state("buyer", {}) is False
                assert len(unreachable_logs(caplog)) == 1
                assert await memory.load_state("buyer") is None
                assert len(unreachable_logs(caplog)) == 2
                assert await memory.clear_state("buyer") is False
                assert len(unreachable_logs(caplog)) == 3
                stats = await memory.get_stats()
                assert stats["circuit_open"] is True
                assert stats["errors"] == 3
                results = [await memory.load_state(f"b{i}") for i in range(1000)]
                assert results == [None] * 1000
                after = await memory.get_stats()
                assert after["skipped"] == stats["skipped"] + 1000
                assert after["errors"] == 3
                assert len(problem_logs(caplog)) == 3
            finally:
                redis_server.start()

    asyncio.run(scenario())


@pytest.mark.real_redis
def test_async_breaker_recovers_after_redis_comes_back(
        real_redis_url: str, redis_server: RedisServer,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")

    async def scenario() -> tuple[dict[str, Any] | None, dict[str, Any]]:
        async with BuyerConversationMemory.from_url(real_redis_url,
                                                    fault_config(0.2)) as memory:
            assert await memory.save_state("buyer", {"buyer_temperature": "hot"})
            redis_server.stop()
            try:
                for _ in range(3):
                    assert await memory.load_state("buyer") is None
                assert (await memory.get_stats())["circuit_open"] is True
            finally:
                redis_server.start()
            await asyncio.sleep(0.3)  # let the cooldown pass so the next call probes Redis
            assert await memory.save_state("buyer", {"buyer_temperature": "warm"}) is True
            return await memory.load_state("buyer"), await memory.get_stats()

    loaded, stats = asyncio.run(scenario())
    assert loaded is not None and loaded["buyer_temperature"] == "warm"
    assert stats["circuit_open"] is False
    assert len(unreachable_logs(caplog)) == 3


@pytest.fixture
def nothing_listening_url() -> str:
    """A Redis URL on a free port where nothing is started."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.mark.real_redis
def test_nothing_listening_means_no_state(nothing_listening_url: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(nothing_listening_url) as memory:
        assert memory.load_state("buyer") is None
        assert memory.save_state("buyer", {"buyer_temperature": "hot"}) is False
        assert memory.clear_state("buyer") is False
        stats = memory.get_stats()
    assert stats["errors"] == 3
    assert len(unreachable_logs(caplog)) == 3


@pytest.mark.real_redis
def test_nothing_listening_means_no_state_async(nothing_listening_url: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")

    async def attempt(async_memory: BuyerConversationMemory) -> Any:
        return (await async_memory.load_state("buyer"),
                await async_memory.save_state("buyer", {}),
                await async_memory.get_stats())

    loaded, saved, stats = run_async(nothing_listening_url, None, attempt)
    assert (loaded, saved) == (None, False)
    assert stats["errors"] == 2
    assert len(unreachable_logs(caplog)) == 2


@pytest.mark.real_redis
def test_operator_read_record_reports_an_unreachable_redis(nothing_listening_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(nothing_listening_url) as memory, \
            pytest.raises(StoreUnavailable, match="Redis unreachable"):
        memory.read_record("buyer")


@pytest.mark.real_redis
def test_a_full_connection_pool_is_not_an_outage(real_redis_url: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """More concurrent calls than max_connections: the extra ones return at once, logged,
    and the breaker stays closed for everyone else."""
    caplog.set_level(logging.WARNING, logger="memory_core")

    async def burst() -> tuple[list[Any], dict[str, Any], Any]:
        config = MemoryConfig(max_connections=5)
        async with BuyerConversationMemory.from_url(real_redis_url, config) as memory:
            assert await memory.save_state("buyer", {"buyer_temperature": "hot"})
            results = await asyncio.gather(*(memory.load_state("buyer") for _ in range(50)))
            return list(results), await memory.get_stats(), await memory.load_state("buyer")

    results, stats, after = asyncio.run(burst())
    assert any(r is not None for r in results) and any(r is None for r in results)
    assert stats["circuit_open"] is False and stats["skipped"] == 0
    assert after is not None
    busy = [r for r in problem_logs(caplog) if "connections to Redis are busy" in r.getMessage()]
    assert len(busy) == results.count(None)
