"""Redis Cluster: URLs, clients, keys on every primary, the scan, and a failover.

The behaviours shared with a single server run on the cluster through the ``store_url``
fixture (its ``cluster`` parameter) and ``any_real_url`` here; this module holds what only
a cluster has. The cluster is the session's private one (3 primaries, 1 replica each).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from memory_core import admin
from memory_core.config import MemoryConfig
from memory_core.connection import (
    AsyncClusterClient,
    ClusterClient,
    DeferredClusterClient,
    ReplyDeadlineConnection,
    connect,
    connect_async,
    parse_target,
)
from memory_core.errors import ConnectionURLError
from memory_core.inventory import BatchReader, scan_clients, scan_summaries
from memory_core.store import BuyerConversationMemory, SyncBuyerConversationMemory
from memory_core.testing import RedisClusterServer

PASSWORD = "s3cr#t/p@ss"


def state(temperature: str = "warm") -> dict[str, Any]:
    return {"buyer_temperature": temperature,
            "conversation_history": [{"role": "user", "content": "a 3 bedroom house"}]}


# URLs ---------------------------------------------------------------------------------

def test_a_cluster_url_names_its_startup_nodes_and_never_its_password() -> None:
    url = f"redis+cluster://ops:{PASSWORD}@10.0.0.1:7000,10.0.0.2:7001/"
    target = parse_target(url)
    assert target.is_cluster and not target.tls
    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert (target.host, target.port, target.db) == ("10.0.0.1", 7000, 0)
    for shown in (target.label, target.redacted_url):
        assert "s3cr" not in shown and "p@ss" not in shown
    assert target.label == "Redis Cluster via 10.0.0.1:7000 (+1 startup nodes)"
    tls = parse_target("rediss+cluster://h1:7000/?ssl_cert_reqs=none")
    assert tls.tls and tls.label.endswith("(TLS)")


@pytest.mark.parametrize("url", [
    "redis+cluster://h1:7000/3",  # a cluster has database 0 only
    "redis+cluster://h1:7000,h2:notaport/",
    "redis+cluster://h1:7000/?socket_timeout=abc",
])
def test_a_bad_cluster_url_is_one_clear_error(url: str) -> None:
    with pytest.raises(ConnectionURLError):
        parse_target(url)


def test_a_cluster_url_gives_the_cluster_clients(cluster_url: str) -> None:
    client = connect(cluster_url)
    try:
        assert isinstance(client, ClusterClient)
        assert client.ping()
        node = client.get_redis_connection(client.get_primaries()[0])
        # the sync cluster keeps the one-deadline-per-reply reads of a single server
        assert node.connection_pool.connection_class is ReplyDeadlineConnection
        assert len(client.get_primaries()) == 3
    finally:
        client.close()
    assert isinstance(connect_async(cluster_url), AsyncClusterClient)


def test_a_plain_url_of_a_cluster_node_uses_the_cluster_client(
        redis_cluster: RedisClusterServer, cluster_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    node_url = redis_cluster.node_url
    assert isinstance(connect(node_url), redis.Redis)  # no detection asked: no probe
    with caplog.at_level(logging.INFO, logger="memory_core.connection"), \
            SyncBuyerConversationMemory.from_url(node_url) as memory:
        assert isinstance(memory.client, ClusterClient)
        for number in range(30):  # keys in many slots, on every primary
            assert memory.save_state(f"plain-{number}", state())
        assert all(memory.load_state(f"plain-{n}") for n in range(30))
    lines = [r.getMessage() for r in caplog.records if "cluster client" in r.getMessage()]
    assert lines == [f"{node_url} is a Redis Cluster node: using the cluster client"]


# the keyspace over every primary --------------------------------------------------------

def test_keys_land_on_every_primary_and_the_scan_finds_each_once(
        redis_cluster: RedisClusterServer, cluster_url: str) -> None:
    count = 300
    with SyncBuyerConversationMemory.from_url(cluster_url) as memory:
        written = memory.save_many([(f"many-{n}", state(), None, None) for n in range(count)])
        assert written == count
        per_primary = [redis.Redis(port=node.port).dbsize() for node in redis_cluster.primaries()]
        assert len(per_primary) == 3 and all(keys > 0 for keys in per_primary)
        assert sum(per_primary) == count
        frame = scan_summaries(memory, batch_size=50)
        assert len(frame) == count and frame["contact_id"].is_unique
        facts = admin.describe_store(memory)
        assert facts["keys"] == count
        info = memory.client.info("memory")
        assert info["primaries"] == 3 and info["used_memory"] > 0


def test_a_node_reads_its_keys_of_every_slot_in_one_script_call(cluster_url: str) -> None:
    """The scan's fast path on a cluster: one script call per batch per primary; a batch
    naming a key another node holds (moved meanwhile) is read with a pipeline instead."""
    with SyncBuyerConversationMemory.from_url(cluster_url) as memory:
        memory.save_many([(f"slot-{n}", state(), None, None) for n in range(60)])
        (first, _), (second, _) = scan_clients(memory.client)[:2]
        own = list(first.scan_iter(match=memory.scan_pattern, count=100))
        foreign = next(iter(second.scan_iter(match=memory.scan_pattern, count=100)))
        assert len({memory.client.keyslot(key) for key in own}) > 1  # many slots, one call
        reader = BatchReader(first, cluster_node=True)
        replies = reader.read(own)
        assert reader.uses_script and len(replies) == 3 * len(own)
        assert all(header.startswith(b"BCM1") for header in replies[0::3])
        assert all(ttl > 0 for ttl in replies[1::3])
        mixed = reader.read([*own[:2], foreign])  # the script refuses a non-local key
        assert mixed[0].startswith(b"BCM1") and mixed[6] is None  # MOVED: read as absent
        assert reader.uses_script  # the next batch tries the script again


@pytest.mark.parametrize("reader", ["sync", "asyncio"])
def test_save_load_and_conflicts_on_both_kinds_of_redis(any_real_url: str,
                                                        reader: str) -> None:
    async def run_async() -> None:
        async with BuyerConversationMemory.from_url(any_real_url) as memory:
            assert await memory.save_state("both", state("hot"))
            loaded = await memory.load_state("both")
            assert loaded is not None and loaded["state_revision"] == 1
            assert await memory.save_state("both", state("cold"), expected_revision=0) is False
            assert await memory.save_state("both", state("cold"), expected_revision=1)
            assert await memory.clear_state("both")
            assert await memory.load_state("both") is None

    if reader == "asyncio":
        asyncio.run(run_async())
        return
    with SyncBuyerConversationMemory.from_url(any_real_url) as memory:
        assert memory.save_state("both", state("hot"))
        updated = memory.update_state("both", lambda s: {**s, "buyer_temperature": "cold"})
        assert updated is not None and updated["state_revision"] == 2
        assert memory.save_state("both", state(), expected_revision=1) is False
        assert memory.clear_state("both")
        assert memory.load_state("both") is None


# TLS ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory,
                redis_binary: str) -> Iterator[RedisClusterServer]:
    """A second private cluster, 3 primaries, speaking TLS to clients and on its bus."""
    cluster = RedisClusterServer(redis_binary, tmp_path_factory.mktemp("tls-cluster"),
                                 replicas_per_primary=0, tls=True)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.redis_cluster
def test_a_rediss_cluster_url_saves_loads_and_scans_over_tls(
        tls_cluster: RedisClusterServer) -> None:
    url = tls_cluster.url
    assert url.startswith("rediss+cluster://")
    with SyncBuyerConversationMemory.from_url(url) as memory:
        assert isinstance(memory.client, ClusterClient)  # started: the TLS handshake worked
        ids = [f"tls-{n}" for n in range(30)]
        assert memory.save_many([(contact_id, state("hot"), None, None)
                                 for contact_id in ids]) == 30
        assert memory.load_state("tls-7")["buyer_temperature"] == "hot"
        assert sorted(scan_summaries(memory)["contact_id"]) == sorted(ids)

    async def bot() -> Any:
        async with BuyerConversationMemory.from_url(url) as memory:
            assert await memory.save_state("tls-async", state("cold"))
            return await memory.load_state("tls-async")

    assert asyncio.run(bot())["buyer_temperature"] == "cold"


@pytest.mark.redis_cluster
def test_a_tls_cluster_refuses_a_client_that_does_not_trust_its_certificate(
        tls_cluster: RedisClusterServer) -> None:
    untrusting = tls_cluster.url.partition("?")[0]  # the system CAs: not this one
    with SyncBuyerConversationMemory.from_url(untrusting) as memory:
        assert memory.load_state("tls-7") is None  # no saved state, no exception
        assert memory.get_stats()["errors"] == 1


# start-up -------------------------------------------------------------------------------

DOWN_CLUSTER_URL = "redis+cluster://127.0.0.1:1,127.0.0.1:2/"


def test_a_bot_started_while_the_cluster_is_down_starts_and_sees_no_saved_state(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with SyncBuyerConversationMemory.from_url(DOWN_CLUSTER_URL) as memory:
        assert isinstance(memory.client, DeferredClusterClient)
        assert memory.load_state("buyer-1") is None
        assert memory.save_state("buyer-1", state()) is False
        assert memory.get_stats()["errors"] == 2

    async def bot() -> tuple[Any, Any]:
        async with BuyerConversationMemory.from_url(DOWN_CLUSTER_URL) as memory:
            return await memory.load_state("buyer-1"), await memory.save_state(
                "buyer-1", state())

    assert asyncio.run(bot()) == (None, False)
    assert "unexpected failure" not in caplog.text  # a fault, counted and paced as one
    assert "Redis unreachable" in caplog.text


def test_a_deferred_cluster_client_starts_on_the_first_use_that_finds_the_cluster(
        cluster_url: str) -> None:
    attempts: list[int] = []

    def start() -> ClusterClient:
        attempts.append(1)
        if len(attempts) == 1:
            raise redis.exceptions.RedisClusterException("no node answered")
        client = connect(cluster_url)
        assert isinstance(client, ClusterClient)
        return client

    deferred = DeferredClusterClient(start)
    with pytest.raises(redis.ConnectionError, match="no Redis Cluster node answered"):
        deferred.set("k", "v")
    with SyncBuyerConversationMemory(deferred) as memory:
        assert memory.save_state("after-start", state("hot"))
        assert memory.load_state("after-start")["buyer_temperature"] == "hot"
    assert len(attempts) == 2  # started once, then used as it is
    deferred.close()


def test_a_cluster_client_starts_even_when_replies_must_be_quick(cluster_url: str) -> None:
    """redis-py reads COMMAND (~80 ms) as the client starts: the bot's 1 ms reply
    deadline would refuse it, so the start-up alone is given longer."""
    client = connect(cluster_url, MemoryConfig(socket_timeout_seconds=0.001))
    try:
        assert isinstance(client, ClusterClient)  # started, not deferred
    finally:
        client.close()


# failover -------------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_a_killed_primary_fails_over_and_the_memory_carries_on(
        redis_cluster: RedisClusterServer, cluster_url: str) -> None:
    ids = [f"durable-{n}" for n in range(60)]
    with SyncBuyerConversationMemory.from_url(cluster_url) as memory:
        for contact_id in ids:
            assert memory.save_state(contact_id, state("hot"))
        # replication is asynchronous: a save acknowledged but not yet on a replica may
        # be lost with its primary (docs/scaling.md); these are on the replicas first
        redis_cluster.wait_until_replicated()
        victim_id = ids[0]
        slot_node = memory.client.get_node_from_key(memory.key_for(victim_id))
        victim = next(n for n in redis_cluster.nodes if n.port == slot_node.port)
        redis_cluster.kill_node(victim)
        seen: list[Any] = []
        deadline = time.monotonic() + 60
        recovered = False
        while time.monotonic() < deadline:
            loaded = memory.load_state(victim_id)  # an exception here fails the test
            saved = memory.save_state("after-failover", state("cold"))
            seen.extend([loaded, saved])
            if loaded is not None and saved:
                recovered = True
                break
            time.sleep(0.1)
        assert recovered, "loads and saves did not come back after the failover"
        assert all(value in (None, False, True) or isinstance(value, dict) for value in seen)
        # every state acknowledged (and replicated) before the kill is still there
        assert all(memory.load_state(contact_id) is not None for contact_id in ids)
    victim.start()  # it rejoins as a replica of the promoted node
    redis_cluster.wait_until_ok()
