"""What a Redis Cluster is made of: its primaries, their replicas, and the keys on each.

An operator looking at a cluster wants to know where the buyers are and which node is
down, without opening redis-cli. :func:`cluster_topology` asks one node for ``CLUSTER
NODES`` (the cluster's own view, failed nodes included), then asks each node listed,
itself: ``DBSIZE`` of a primary, ``PING`` of a replica. A node that does not answer is
reported as unreachable, never raised: the sidebar and ``stats`` must still draw when one
node of six is down. A standalone server and the embedded demo store have no topology:
the function returns None for them, so their screens stay as they were.

Everything read here comes from Redis and is treated as hostile: addresses are escaped
and cut, numbers that are not whole numbers are dropped, at most
:data:`MAX_LISTED_NODES` nodes are listed (and asked) and the rest only counted, and the
nodes are asked in parallel with the client's own timeouts, so a cluster of unreachable
hosts costs about one timeout, not one per node.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
import redis.cluster

from memory_core.connection import DeferredClusterClient
from memory_core.errors import REDIS_FAULTS
from memory_core.safetext import printable
from memory_core.store import SyncBuyerConversationMemory

#: Nodes listed and asked, at most (primaries first); the others are only counted.
MAX_LISTED_NODES = 64
#: Nodes tried in turn for ``CLUSTER NODES`` before falling back on the client's map.
MAX_NODES_ASKED_FOR_MAP = 3
#: Nodes asked at the same time.
PROBE_THREADS = 8
SLOT_COUNT = 16384
_ADDRESS_CHARS = 80
_PROBLEM_CHARS = 160
#: What a call to one node may raise: faults, refusals (ACL, LOADING) and, from a node
#: whose reply redis-py cannot parse, parser errors.
_NODE_FAULTS = (redis.RedisError, *REDIS_FAULTS, ValueError, IndexError, TypeError,
                AttributeError, UnicodeError)


@dataclass(frozen=True)
class PrimaryNode:
    """One primary: where it is, whether it answered, and how much of the keyspace it
    holds (its own ``DBSIZE`` and the hash slots it serves)."""

    address: str  # host:port as the cluster names it, escaped
    reachable: bool  # answered DBSIZE just now
    keys: int | None  # DBSIZE; None when it did not answer
    slot_ranges: int | None  # None when only the client's map was available
    slots: int | None
    #: Replicas the cluster lists as following it (listed or not); None when only the
    #: client's map was available, which does not say.
    replicas: int | None
    failing: bool = False  # the cluster itself flags it as failing (fail or fail?)
    problem: str = ""  # why it is not reachable, escaped; "" when it is


@dataclass(frozen=True)
class ReplicaNode:
    """One replica: where it is, which primary it copies, whether it answered."""

    address: str
    primary_address: str  # "" when the cluster did not say (or named an unknown node)
    reachable: bool  # answered PING just now
    failing: bool = False
    problem: str = ""


@dataclass(frozen=True)
class Topology:
    """A cluster's nodes as far as they answered; None stands for "not a cluster"."""

    primaries: tuple[PrimaryNode, ...]
    replicas: tuple[ReplicaNode, ...]
    primary_count: int  # every primary the cluster lists, listed here or not
    replica_count: int
    #: Where the map came from: "CLUSTER NODES of host:port", or the client's own map.
    source: str
    problem: str = ""  # why the map is incomplete, escaped; "" when it is not

    @property
    def unlisted(self) -> int:
        """Nodes counted but not listed (beyond :data:`MAX_LISTED_NODES`)."""
        return self.primary_count + self.replica_count - len(self.primaries) - len(
            self.replicas)

    @property
    def keys(self) -> int:
        """Keys on the listed primaries that answered."""
        return sum(p.keys for p in self.primaries if p.keys is not None)

    @property
    def nodes(self) -> tuple[PrimaryNode | ReplicaNode, ...]:
        """Every listed node: the primaries, then the replicas."""
        return (*self.primaries, *self.replicas)

    @property
    def unreachable(self) -> tuple[str, ...]:
        """Addresses of the listed nodes that did not answer."""
        return tuple(n.address for n in self.nodes if not n.reachable)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON, the derived figures included."""
        return {**dataclasses.asdict(self), "unlisted": self.unlisted, "keys": self.keys,
                "unreachable": list(self.unreachable)}


@dataclass
class _Entry:
    """One line of CLUSTER NODES, checked."""

    address: str
    host: str | None  # None: no usable address (then the node is not asked)
    port: int
    node_id: str
    primary: bool
    failing: bool
    master_id: str
    ranges: int | None
    slots: int | None
    first_slot: int


def cluster_topology(source: SyncBuyerConversationMemory | Any) -> Topology | None:
    """The primaries and replicas of the cluster behind ``source`` (a memory or a client).

    None for anything but redis-py's sync cluster client (a standalone server, the
    fakeredis demo store, an asyncio client): they have no topology to show. Never raises
    for a node that does not answer: that node is listed as unreachable, and when no node
    gives the map, redis-py's own map is used and ``problem`` says so.
    """
    client = source.client if isinstance(source, SyncBuyerConversationMemory) else source
    if not isinstance(client, redis.cluster.RedisCluster | DeferredClusterClient):
        return None
    try:
        known = {node.name: node for node in client.get_nodes()}
    except _NODE_FAULTS as exc:  # a deferred client whose cluster is still down
        return Topology((), (), 0, 0, "no node", f"no node of the cluster answered: "
                        f"{_fault_text(exc)}")
    entries, source_text, problem = _read_map(client, list(known.values()))
    primaries = sorted((e for e in entries if e.primary), key=lambda e: e.first_slot)
    replicas = [e for e in entries if not e.primary]
    listed_primaries = primaries[:MAX_LISTED_NODES]
    listed_replicas = replicas[:MAX_LISTED_NODES - len(listed_primaries)]
    answers = _ask_nodes(client, known, [*listed_primaries, *listed_replicas])
    address_of = {e.node_id: e.address for e in primaries if e.node_id}
    followers: dict[str, int] = {}
    for entry in replicas:
        followers[entry.master_id] = followers.get(entry.master_id, 0) + 1
    return Topology(
        primaries=tuple(
            PrimaryNode(e.address, reachable, keys, e.ranges, e.slots,
                        followers.get(e.node_id, 0) if e.node_id else None, e.failing, why)
            for e, (reachable, keys, why) in zip(listed_primaries, answers, strict=False)),
        replicas=tuple(
            ReplicaNode(e.address, address_of.get(e.master_id, ""), reachable, e.failing, why)
            for e, (reachable, _, why) in zip(listed_replicas,
                                              answers[len(listed_primaries):], strict=False)),
        primary_count=len(primaries), replica_count=len(replicas), source=source_text,
        problem=problem)


def _read_map(client: Any, known: list[Any]) -> tuple[list[_Entry], str, str]:
    """The checked lines of CLUSTER NODES of the first node that gives them, or redis-py's
    own map (no slots, no replica links) with the reason."""
    ordered = sorted(known, key=lambda n: n.server_type != redis.cluster.PRIMARY)
    reason = "no node to ask"
    for node in ordered[:MAX_NODES_ASKED_FOR_MAP]:
        try:
            reply = client.get_redis_connection(node).execute_command("CLUSTER NODES")
            if not isinstance(reply, dict):
                raise TypeError(f"CLUSTER NODES gave a {type(reply).__name__}, not a map")
            entries = [e for e in (_entry(a, d) for a, d in reply.items()) if e is not None]
        except redis.ResponseError as exc:  # refused (an ACL): every node would refuse
            reason = f"CLUSTER NODES was refused: {printable(str(exc), _PROBLEM_CHARS)}"
            break
        except _NODE_FAULTS as exc:
            reason = f"CLUSTER NODES of {_shown(node.name)} failed: {_fault_text(exc)}"
            continue
        if entries:
            return entries, f"CLUSTER NODES of {_shown(node.name)}", ""
        reason = "CLUSTER NODES listed no primary or replica"
    entries = [_Entry(_shown(n.name), str(n.host), int(n.port), "",
                      n.server_type == redis.cluster.PRIMARY, False, "", None, None, SLOT_COUNT)
               for n in known]
    return entries, "the client's map", reason + "; showing the client's own map"


def _entry(address: object, details: object) -> _Entry | None:
    """One node of redis-py's parse of CLUSTER NODES, checked; None when it is neither a
    primary nor a replica (a handshake, a line that makes no sense)."""
    if not isinstance(address, str) or not isinstance(details, dict):
        return None
    flags = details.get("flags")
    flag_set = set(flags.split(",")[:16]) if isinstance(flags, str) else set()
    primary, replica = "master" in flag_set, "slave" in flag_set
    if primary == replica or "handshake" in flag_set:
        return None
    host_text, _, port_text = address.rpartition(":")
    port = _small_number(port_text) or 0
    usable = bool(host_text) and 0 < port < 65536 and "noaddr" not in flag_set
    ranges, slots, first = _slots(details.get("slots")) if primary else (None, None, 0)
    node_id, master_id = details.get("node_id"), details.get("master_id")
    return _Entry(
        address=_shown(address), host=host_text if usable else None, port=port,
        node_id=node_id[:64] if isinstance(node_id, str) else "", primary=primary,
        failing=bool(flag_set & {"fail", "fail?"}),
        master_id=master_id[:64] if isinstance(master_id, str) and replica else "",
        ranges=ranges, slots=slots, first_slot=first)


def _slots(ranges: object) -> tuple[int, int, int]:
    """(slot ranges, slots, first slot) of a primary's ``[[start, end], [slot], ...]``;
    anything that is not a range of slot numbers is left out."""
    count = served = 0
    first = SLOT_COUNT
    for item in ranges if isinstance(ranges, list) else []:
        numbers = [_small_number(b) for b in item] if isinstance(item, list) and len(
            item) in (1, 2) else []
        bounds = [n for n in numbers if n is not None]
        if not bounds or len(bounds) != len(numbers) or not (
                bounds[0] <= bounds[-1] < SLOT_COUNT):
            continue
        count += 1
        served += bounds[-1] - bounds[0] + 1
        first = min(first, bounds[0])
    return count, served, first


def _small_number(text: object) -> int | None:
    """A port or slot number written in ASCII digits (``isdigit`` alone takes other
    scripts' digits too), at most 5 of them; None for anything else."""
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 5:
        return int(text)
    return None


def _ask_nodes(client: Any, known: dict[str, Any], entries: list[_Entry]
               ) -> list[tuple[bool, int | None, str]]:
    """(answered, DBSIZE of a primary, why not) per entry, asked in parallel."""
    if not entries:
        return []
    with ThreadPoolExecutor(max_workers=min(PROBE_THREADS, len(entries)),
                            thread_name_prefix="topology") as pool:
        return list(pool.map(lambda e: _ask(client, known, e), entries))


def _ask(client: Any, known: dict[str, Any], entry: _Entry) -> tuple[bool, int | None, str]:
    if entry.host is None:
        return False, None, "the cluster gives no usable address for it"
    node = known.get(redis.cluster.get_node_name(entry.host, entry.port))
    temporary = node is None
    if node is None:  # not in redis-py's map (a failed replica is left out of CLUSTER SLOTS)
        if not _is_ip(entry.host):
            return False, None, "not in the client's map, and no IP address to try"
        node = redis.cluster.ClusterNode(entry.host, entry.port)
    try:
        connection = client.get_redis_connection(node)
        reply = connection.execute_command("DBSIZE" if entry.primary else "PING")
    except _NODE_FAULTS as exc:
        return False, None, _fault_text(exc)
    finally:
        if temporary and node.redis_connection is not None:
            node.redis_connection.connection_pool.disconnect()
    keys = reply if type(reply) is int and reply >= 0 else None
    return True, keys if entry.primary else None, ""


def _is_ip(host: str) -> bool:
    """Only a literal address is tried outside the client's map: a name would need a DNS
    lookup, which no socket timeout bounds."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _shown(address: str) -> str:
    return printable(address, _ADDRESS_CHARS)


def _fault_text(exc: BaseException) -> str:
    return printable(f"{type(exc).__name__}: {exc}", _PROBLEM_CHARS)


def summary_line(topology: Topology) -> str:
    """``Redis Cluster · 3 primaries, 3 replicas`` (and how many do not answer)."""
    down = len(topology.unreachable)
    return (f"Redis Cluster · {_count(topology.primary_count, 'primary', 'primaries')}, "
            f"{_count(topology.replica_count, 'replica')}"
            + (f" · {down} unreachable" if down else ""))


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"

