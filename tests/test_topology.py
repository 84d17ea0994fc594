"""A cluster's topology: primaries, replicas, keys per primary; in memory_core, the CLI's
``stats`` and the dashboard's sidebar.

On the session's private cluster (3 primaries, 1 replica each), the private standalone
server and a fakeredis store. One test stops a replica and starts it again; it waits
until the cluster is whole again, because the other cluster tests share it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis._parsers.helpers import parse_cluster_nodes
from streamlit.testing.v1 import AppTest

from dashboard.markdown import code, md
from memory_core import admin
from memory_core.cli import main
from memory_core.connection import DeferredClusterClient, connect, connect_async
from memory_core.store import SyncBuyerConversationMemory
from memory_core.testing import RedisClusterServer, RedisServer
from memory_core.topology import (
    MAX_LISTED_NODES,
    SLOT_COUNT,
    Topology,
    cluster_topology,
    summary_line,
)

APP = str(Path(__file__).resolve().parents[1] / "app.py")
BUYERS = 40
HEALTHY_SECONDS = 60


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No REDIS_URL or MEMORY_CORE_* from the machine may steer the CLI or the memory."""
    for name in list(os.environ):
        if name == "REDIS_URL" or name.startswith(("MEMORY_CORE_", "MEMORY_DASHBOARD_")):
            monkeypatch.delenv(name)


@pytest.fixture
def cluster_memory(cluster_url: str) -> Iterator[SyncBuyerConversationMemory]:
    """A memory on the (flushed) private cluster holding :data:`BUYERS` buyers."""
    with SyncBuyerConversationMemory.from_url(cluster_url) as memory:
        for n in range(BUYERS):
            assert memory.save_state(f"topology-{n:03d}", {"buyer_temperature": "warm"})
        yield memory


def node_client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)


def ask(port: int, *command: str) -> Any:
    client = node_client(port)
    try:
        return client.execute_command(*command)
    finally:
        client.close()


def address(node: RedisServer) -> str:
    return f"127.0.0.1:{node.port}"


def replicas_of(cluster: RedisClusterServer) -> list[RedisServer]:
    primaries = {node.port for node in cluster.primaries()}
    return [node for node in cluster.nodes if node.running and node.port not in primaries]


def wait_until_whole(memory: SyncBuyerConversationMemory) -> None:
    """Until every node answers and none is flagged failing: how the next test needs it."""
    deadline = time.monotonic() + HEALTHY_SECONDS
    found = cluster_topology(memory)
    while time.monotonic() < deadline:
        found = cluster_topology(memory)
        if (found is not None and (found.primary_count, found.replica_count) == (3, 3)
                and not found.unreachable and not any(
                    node.failing for node in (*found.primaries, *found.replicas))):
            return
        time.sleep(0.2)
    raise AssertionError(f"the cluster was not whole again within {HEALTHY_SECONDS}s: "
                         f"{found}")


@pytest.fixture
def stopped_replica(redis_cluster: RedisClusterServer,
                    cluster_memory: SyncBuyerConversationMemory) -> Iterator[RedisServer]:
    """One replica stopped for the test, then started again and waited for."""
    replica = replicas_of(redis_cluster)[0]
    replica.stop()
    try:
        yield replica
    finally:
        replica.start()
        redis_cluster.wait_until_ok()
        wait_until_whole(cluster_memory)


# memory_core.topology --------------------------------------------------------------

def test_a_cluster_shows_three_primaries_three_replicas_and_the_keys_on_each(
        redis_cluster: RedisClusterServer,
        cluster_memory: SyncBuyerConversationMemory) -> None:
    found = cluster_topology(cluster_memory)
    assert isinstance(found, Topology)
    assert (found.primary_count, found.replica_count, found.unlisted) == (3, 3, 0)
    assert found.problem == "" and found.source.startswith("CLUSTER NODES of 127.0.0.1:")
    assert {p.address for p in found.primaries} == {
        address(node) for node in redis_cluster.primaries()}
    # each primary's own DBSIZE, and together every buyer saved
    for primary in found.primaries:
        assert primary.reachable and not primary.failing and primary.problem == ""
        assert primary.keys == ask(int(primary.address.rsplit(":", 1)[1]), "DBSIZE")
        assert primary.replicas == 1 and primary.slot_ranges == 1
    assert sum(p.keys or 0 for p in found.primaries) == found.keys == BUYERS
    assert sum(p.slots or 0 for p in found.primaries) == SLOT_COUNT
    assert [p.slots for p in found.primaries] == [5461, 5462, 5461]  # by first slot
    # each replica follows the primary its own ROLE names
    assert {r.address for r in found.replicas} == {
        address(node) for node in replicas_of(redis_cluster)}
    for replica in found.replicas:
        role = ask(int(replica.address.rsplit(":", 1)[1]), "ROLE")
        assert role[0] == b"slave"
        assert replica.primary_address == f"{role[1].decode()}:{role[2]}"
        assert replica.reachable and not replica.failing
    assert summary_line(found) == "Redis Cluster · 3 primaries, 3 replicas"


def test_a_single_server_and_the_demo_store_have_no_topology(
        real_redis_url: str, fake_url: str, cluster_url: str) -> None:
    for url in (real_redis_url, fake_url):
        with SyncBuyerConversationMemory.from_url(url) as memory:
            assert memory.save_state("single-1", {"buyer_temperature": "hot"})
            assert cluster_topology(memory) is None
            assert cluster_topology(memory.client) is None
            facts = admin.describe_store(memory)
            assert facts["topology"] is None and facts["keys"] == 1
    # the asyncio cluster client: this function is for the sync tools
    assert cluster_topology(connect_async(cluster_url)) is None


def test_describe_store_on_a_cluster_carries_the_topology(
        cluster_memory: SyncBuyerConversationMemory) -> None:
    facts = admin.describe_store(cluster_memory)
    found = facts["topology"]
    assert isinstance(found, Topology) and found.primary_count == 3
    assert facts["keys"] == found.keys == BUYERS


@pytest.mark.timeout(120)
def test_a_stopped_replica_is_unreachable_and_nothing_raises(
        stopped_replica: RedisServer, cluster_memory: SyncBuyerConversationMemory) -> None:
    started = time.monotonic()
    found = cluster_topology(cluster_memory)
    assert time.monotonic() - started < 2  # refused at once: no waiting on the dead node
    assert found is not None and found.replica_count == 3
    assert found.unreachable == (address(stopped_replica),)
    (down,) = [r for r in found.replicas if not r.reachable]
    assert "Connection" in down.problem and down.primary_address in {
        p.address for p in found.primaries}
    assert all(p.reachable for p in found.primaries) and found.keys == BUYERS
    assert summary_line(found) == "Redis Cluster · 3 primaries, 3 replicas · 1 unreachable"
    facts = admin.describe_store(cluster_memory)  # the sidebar's facts still come
    assert facts["keys"] == BUYERS and facts["topology"].unreachable == found.unreachable


def test_a_cluster_whose_nodes_all_are_down_is_a_topology_with_its_reason() -> None:
    def start() -> Any:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    found = cluster_topology(DeferredClusterClient(start))
    assert found is not None and found.primaries == () and found.primary_count == 0
    assert "no node of the cluster answered" in found.problem


# a map that cannot be trusted ------------------------------------------------------------

def cluster_nodes_text(port: int) -> bytes:
    """The real CLUSTER NODES text of the node on ``port``, unparsed."""
    client = node_client(port)
    try:
        client.set_response_callback("CLUSTER NODES", lambda reply, **_: reply)
        text = client.execute_command("CLUSTER NODES")
    finally:
        client.close()
    assert isinstance(text, bytes)
    return text


def answer_cluster_nodes_with(monkeypatch: pytest.MonkeyPatch, text: bytes) -> list[str]:
    """Every node answers CLUSTER NODES with redis-py's parse of ``text`` (raising what
    it raises), as a node holding that text would; returns the commands nodes were sent
    by this thread and topology's probe threads (a background thread an earlier test left
    running, talking to another server, is not what the test is about)."""
    original: Callable[..., Any] = redis.Redis.execute_command
    sent: list[str] = []
    test_thread = threading.current_thread()

    def execute_command(self: redis.Redis, *args: Any, **options: Any) -> Any:
        caller = threading.current_thread()
        if caller is test_thread or caller.name.startswith("topology"):
            sent.append(f"{args[0]} {self.connection_pool.connection_kwargs.get('port')}")
        if args and args[0] == "CLUSTER NODES":
            return parse_cluster_nodes(text)
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", execute_command)
    return sent


def test_a_hostile_map_is_bounded_escaped_and_never_sends_to_names(
        redis_cluster: RedisClusterServer, cluster_memory: SyncBuyerConversationMemory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = cluster_nodes_text(redis_cluster.primaries()[0].port).rstrip(b"\n")
    some_primary_id = next(line.split(b" ")[0] for line in real.splitlines()
                           if b"master" in line)
    planted = [
        # an address that would clear a terminal and retitle it; no slot is a slot
        b"e" * 40 + b" \x1b[2J\x1b]0;pwned\x07evil:7000@17000 master - 0 0 9 connected "
        b"0-99999 abc 9-3 -1 " + "\u0661-\u0662".encode(),  # Arabic-Indic 1-2
        b"f" * 40 + b" 127.0.0.1:7001@17001 myself,master,slave - 0 0 9 connected",  # both
        b"a" * 40 + b" 127.0.0.1:7002@17002 handshake,master - 0 0 9 connected",
        # 200 replicas by name: too many to list, and a name is never looked up
        *(b"%040d node-%d.invalid:7000@17000 slave %s 0 0 9 connected"
          % (n, n, some_primary_id) for n in range(200)),
    ]
    sent = answer_cluster_nodes_with(monkeypatch, real + b"\n" + b"\n".join(planted))
    started = time.monotonic()
    found = cluster_topology(cluster_memory)
    assert time.monotonic() - started < 2
    assert found is not None
    assert (found.primary_count, found.replica_count) == (4, 203)
    assert len(found.primaries) + len(found.replicas) == MAX_LISTED_NODES
    assert found.unlisted == 4 + 203 - MAX_LISTED_NODES
    evil = found.primaries[-1]  # no valid slot: listed after the three real primaries
    assert evil.address == "\\x1b[2J\\x1b]0;pwned\\x07evil:7000"
    assert (evil.slot_ranges, evil.slots, evil.reachable) == (0, 0, False)
    assert "no IP address" in evil.problem
    assert [p.keys for p in found.primaries[:3]] == [
        ask(int(p.address.rsplit(":", 1)[1]), "DBSIZE") for p in found.primaries[:3]]
    assert found.keys == BUYERS
    assert not any("\x1b" in n.address for n in (*found.primaries, *found.replicas))
    # only the cluster's own nodes were sent a command
    ports = {str(node.port) for node in redis_cluster.nodes}
    assert {entry.rsplit(" ", 1)[1] for entry in sent} <= ports


def test_a_map_redis_py_cannot_read_falls_back_on_the_clients_own(
        redis_cluster: RedisClusterServer, cluster_memory: SyncBuyerConversationMemory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    answer_cluster_nodes_with(monkeypatch, b"not a cluster nodes line")
    found = cluster_topology(cluster_memory)
    assert found is not None and found.source == "the client's map"
    assert "CLUSTER NODES of 127.0.0.1:" in found.problem and "ValueError" in found.problem
    assert {p.address for p in found.primaries} == {
        address(node) for node in redis_cluster.primaries()}
    assert found.keys == BUYERS and not found.unreachable
    # what only CLUSTER NODES says is unknown, not made up
    assert all(p.replicas is None and p.slots is None for p in found.primaries)
    assert all(r.primary_address == "" for r in found.replicas)


# CLI stats -------------------------------------------------------------------------------

def test_stats_lists_the_primaries_and_replicas_of_a_cluster(
        cluster_url: str, cluster_memory: SyncBuyerConversationMemory,
        redis_cluster: RedisClusterServer, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--redis-url", cluster_url, "stats"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert any(line.startswith("Cluster (CLUSTER NODES of 127.0.0.1:") for line in lines)
    assert "  Redis Cluster · 3 primaries, 3 replicas" in lines
    for node in redis_cluster.primaries():
        keys = ask(node.port, "DBSIZE")
        row = next(line for line in lines if line.startswith(f"  {address(node)} "))
        cells = row.split()[1:]
        assert cells[0] == f"{keys:,}" and cells[1] in ("5,461", "5,462")
        assert cells[2:] == ["1", "1", "ok"]
    replica_rows = [line for line in lines if line.split()[:1] in (
        [address(node)] for node in replicas_of(redis_cluster))]
    assert len(replica_rows) == 3 and all(line.endswith(" ok") for line in replica_rows)

    assert main(["--redis-url", cluster_url, "stats", "--json"]) == 0
    topology = json.loads(capsys.readouterr().out)["server"]["topology"]
    assert (topology["primary_count"], topology["replica_count"]) == (3, 3)
    assert sum(p["keys"] for p in topology["primaries"]) == topology["keys"] == BUYERS
    assert topology["unreachable"] == [] and len(topology["replicas"]) == 3


def test_stats_of_a_single_server_has_no_cluster_section(
        real_redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--redis-url", real_redis_url, "stats"]) == 0
    out = capsys.readouterr().out
    assert "Cluster" not in out and "PRIMARY" not in out
    assert main(["--redis-url", real_redis_url, "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["server"]["topology"] is None


@pytest.mark.timeout(120)
def test_stats_flags_a_stopped_replica(stopped_replica: RedisServer, cluster_url: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--redis-url", cluster_url, "stats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  Redis Cluster · 3 primaries, 3 replicas · 1 unreachable" in lines
    row = next(line for line in lines if line.startswith(f"  {address(stopped_replica)} "))
    assert row.endswith("UNREACHABLE")
    assert any(line.startswith(f"  {address(stopped_replica)}: ConnectionError")
               for line in lines)


# the dashboard's sidebar -----------------------------------------------------------------

def sidebar_of(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[str]]:
    """The dashboard on ``url`` (no passwords: read-only for everyone): the sidebar's
    markdown, and its captions."""
    monkeypatch.setenv("REDIS_URL", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["dashboard_tests"] = "isolated"  # no developer's secrets.toml
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return ("\n".join(m.value for m in at.sidebar.markdown),
            [c.value for c in at.sidebar.caption])


@pytest.mark.usefixtures("isolated_dashboard")
def test_the_sidebar_shows_the_cluster_and_the_keys_per_primary(
        cluster_url: str, cluster_memory: SyncBuyerConversationMemory,
        redis_cluster: RedisClusterServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # the sidebar is drawn before the page runs (and stores its snapshot key)
    keys = {address(node): ask(node.port, "DBSIZE") for node in redis_cluster.primaries()}
    assert sum(keys.values()) == BUYERS
    sidebar, captions = sidebar_of(cluster_url, monkeypatch)
    assert f"**{md('Redis Cluster · 3 primaries, 3 replicas')}**" in sidebar
    (rows,) = [c for c in captions if c.startswith("- ")]
    assert rows.splitlines() == [f"- {code(node_address)} · **{count:,}** keys · 1 replica"
                                 for node_address, count in keys.items()]
    assert "unreachable" not in sidebar and not any("unreachable" in c for c in captions)
    assert any(f"{BUYERS:,} keys in this database" in c for c in captions)


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("isolated_dashboard")
def test_the_sidebar_flags_a_stopped_replica(
        stopped_replica: RedisServer, cluster_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sidebar, captions = sidebar_of(cluster_url, monkeypatch)
    assert md("Redis Cluster · 3 primaries, 3 replicas · 1 unreachable") in sidebar
    (note,) = [c for c in captions if "unreachable" in c]
    assert note.startswith(f":material/error: Replica {code(address(stopped_replica))} of ")
    primary = note.split(" of ", 1)[1].removesuffix(" is **unreachable**")
    (rows,) = [c for c in captions if c.startswith("- ")]
    # its primary's row counts it as down, the others do not
    assert [row.startswith(f"- {primary} ") for row in rows.splitlines()].count(True) == 1
    for row in rows.splitlines():
        assert row.endswith("1 replica (:material/error: 1 down)") == row.startswith(
            f"- {primary} ")


@pytest.mark.usefixtures("isolated_dashboard")
def test_the_sidebar_of_a_single_server_has_no_cluster_lines(
        real_redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sidebar, captions = sidebar_of(real_redis_url, monkeypatch)
    assert "**Live**" in sidebar and "Redis Cluster" not in sidebar
    assert not any("Cluster" in c or c.startswith("- ") for c in captions)


def test_connect_gives_a_cluster_client_whose_topology_matches_the_memorys(
        cluster_url: str, cluster_memory: SyncBuyerConversationMemory) -> None:
    client = connect(cluster_url)
    try:
        from_client = cluster_topology(client)
    finally:
        client.close()
    from_memory = cluster_topology(cluster_memory)
    assert from_client is not None and from_memory is not None
    assert ([(p.address, p.keys) for p in from_client.primaries]
            == [(p.address, p.keys) for p in from_memory.primaries])
