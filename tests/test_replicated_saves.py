"""Saves that wait for replicas (``wait_replicas``): Redis ``WAIT`` on the save's own
connection, against a real primary with a replica and against the real cluster.

Redis replicates asynchronously: an acknowledged save can be lost with its primary. A
caller that cannot afford that asks for ``wait_replicas``; True then means the replicas
have it. The decisive test stalls the replica (SIGSTOP): a WAIT sent on any other
connection than the save's would still count it, because that connection wrote nothing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from memory_core import erasure
from memory_core.config import load_config
from memory_core.crypto import KEYS_ENV, LOOKUP_KEY_ENV
from memory_core.store import BuyerConversationMemory, SyncBuyerConversationMemory
from memory_core.testing import RedisClusterServer, RedisServer, start_primary_with_replica


def state(temperature: str = "hot") -> dict[str, Any]:
    return {"temperature": temperature, "conversation_history": [
        {"role": "user", "content": "Three bedrooms near the river, please",
         "timestamp": "2026-11-30T10:00:00Z"}]}


@pytest.fixture(scope="module")
def primary_with_replica(redis_binary: str) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A private primary and its replica (not the suite's shared server)."""
    primary, replica = start_primary_with_replica()
    yield primary, replica
    replica.stop()
    primary.stop()


@pytest.fixture
def replicated_url(primary_with_replica: tuple[RedisServer, RedisServer],
                   redis_binary: str) -> str:
    """The primary's URL, emptied; ``redis_binary`` counts the test as a real-Redis one."""
    primary, _ = primary_with_replica
    primary.flushall()
    return primary.url


def test_a_save_waits_for_the_replica_and_says_so(replicated_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(replicated_url) as memory:
        assert memory.save_state("c-1", state(), wait_replicas=1)
        assert memory.load_state("c-1")["temperature"] == "hot"
        assert memory.get_stats()["unreplicated"] == 0


def test_a_stalled_replica_makes_the_save_unconfirmed_but_stored(
        primary_with_replica: tuple[RedisServer, RedisServer], replicated_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    _, replica = primary_with_replica
    with SyncBuyerConversationMemory.from_url(replicated_url) as memory:
        memory.save_state("warm-up", state())  # a connection that has written before
        with replica.stalled(), caplog.at_level(logging.WARNING, "memory_core"):
            confirmed = memory.save_state("c-2", state("cold"), wait_replicas=1,
                                          wait_timeout_ms=100)
        assert confirmed is False
        assert "0 of 1 replica(s) acknowledged it within 100 ms" in caplog.text
        stats = memory.get_stats()
        assert (stats["unreplicated"], stats["saves"], stats["errors"]) == (1, 2, 0)
        assert not stats["circuit_open"]
        assert memory.load_state("c-2")["temperature"] == "cold"  # on the primary


def test_a_save_with_lookup_entries_waits_after_them_all(replicated_url: str) -> None:
    """The save, its phone/email lookup entries and the WAIT go in one pipeline: the
    WAIT's reply is the last one, the save's the first."""
    config = load_config(env={
        KEYS_ENV: "k1:" + base64.b64encode(bytes(range(32))).decode(),
        LOOKUP_KEY_ENV: base64.b64encode(bytes(range(200, 232))).decode()})
    buyer = {**state(), "buyer_phone": "+1 555 000 1234"}
    with SyncBuyerConversationMemory.from_url(replicated_url, config) as memory:
        assert memory.save_state("c-5", buyer, wait_replicas=1)
        assert erasure.find_contact_ids(memory, phone="+1 555 000 1234") == ["c-5"]


def test_the_async_save_waits_on_its_own_connection_too(
        primary_with_replica: tuple[RedisServer, RedisServer], replicated_url: str) -> None:
    _, replica = primary_with_replica

    async def scenario() -> tuple[bool, bool]:
        async with BuyerConversationMemory.from_url(replicated_url) as memory:
            ok = await memory.save_state("a-1", state(), wait_replicas=1)
            with replica.stalled():
                stalled = await memory.save_state("a-2", state(), wait_replicas=1,
                                                  wait_timeout_ms=100)
            return ok, stalled

    assert asyncio.run(scenario()) == (True, False)


def test_without_replicas_a_save_that_asks_for_one_is_not_confirmed(
        real_redis_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        assert memory.save_state("c-3", state(), wait_replicas=1, wait_timeout_ms=20) is False
        assert memory.load_state("c-3") is not None
        assert memory.save_state("c-3", state())  # not asking: as before


@pytest.mark.parametrize(("replicas", "timeout_ms", "why"), [
    (-1, 100, "wait_replicas=-1 must be a whole number from 0 to 16"),
    (17, 100, "wait_replicas=17 must be"),
    ("1", 100, "wait_replicas='1' must be"),
    (True, 100, "wait_replicas=True must be"),
    (1, 0, "wait_timeout_ms=0 must be a whole number from 1 to 10,000"),
    (1, 1.5, "wait_timeout_ms=1.5 must be"),
    (1, 450, "wait_timeout_ms=450 leaves no time within socket_timeout_seconds=0.5: use at "
             "most 400 ms, or raise socket_timeout_seconds"),
])
def test_a_bad_wait_is_refused_and_nothing_is_written(
        store_url: str, replicas: Any, timeout_ms: Any, why: str,
        caplog: pytest.LogCaptureFixture) -> None:
    with SyncBuyerConversationMemory.from_url(store_url) as memory, \
            caplog.at_level(logging.WARNING, "memory_core"):
        assert memory.save_state("c-4", state(), wait_replicas=replicas,
                                 wait_timeout_ms=timeout_ms) is False
        assert why in caplog.text
        assert memory.load_state("c-4") is None
        assert memory.get_stats()["refused"] == 1


def test_on_the_cluster_the_wait_goes_to_the_node_that_wrote_the_key(
        redis_cluster: RedisClusterServer, cluster_url: str) -> None:
    redis_cluster.wait_until_replicated()  # every replica past its initial sync
    with SyncBuyerConversationMemory.from_url(cluster_url) as memory:
        for n in range(12):  # keys on every primary
            assert memory.save_state(f"k-{n}", state(), wait_replicas=1)
        node = memory.client.get_node_from_key(memory.key_for("k-0"))
        (replica,) = redis_cluster.replicas_of(node.port)
        with replica.stalled():
            stalled = memory.save_state("k-0", state("cold"), wait_replicas=1,
                                        wait_timeout_ms=100)
        assert stalled is False
        assert memory.load_state("k-0")["temperature"] == "cold"
        assert memory.save_state("k-0", state("warm"), wait_replicas=1)


def test_on_the_cluster_the_async_save_waits_on_the_key_node(
        redis_cluster: RedisClusterServer, cluster_url: str) -> None:
    redis_cluster.wait_until_replicated()  # every replica past its initial sync

    async def scenario() -> list[bool]:
        async with BuyerConversationMemory.from_url(cluster_url) as memory:
            results = [await memory.save_state(f"k-{n}", state(), wait_replicas=1)
                       for n in range(12)]
            node = memory.client.get_node_from_key(memory.key_for("k-0"))
            (replica,) = redis_cluster.replicas_of(node.port)
            with replica.stalled():
                results.append(await memory.save_state("k-0", state(), wait_replicas=1,
                                                       wait_timeout_ms=100))
            return results

    assert asyncio.run(scenario()) == [True] * 12 + [False]
