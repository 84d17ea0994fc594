"""A private redis-server for tests and benchmarks: its own port, its own data, no disk.

Never the machine's shared Redis: :class:`RedisServer` starts ``redis-server`` on a free
loopback port with persistence off, and can stop and restart it for fault tests. With
``persistent=True`` it writes an append-only file (``appendfsync always``) in its own
directory, so what it acknowledged survives :meth:`RedisServer.kill` (SIGKILL) and a
restart.

:class:`TcpProxy` sits between a client and a server to inject faults at a chosen
point: run a hook once after a given number of bytes went to the server (kill it in the
middle of a command), stop forwarding without closing anything (a hung server: it
accepts and never answers), trickle replies a few bytes at a time, and resume.
"""

from __future__ import annotations

import contextlib
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

_START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _installed(name: str) -> str | None:
    """A program on PATH, or where Debian's package puts it; None when neither has it."""
    found = shutil.which(name)
    if found:
        return found
    fallback = Path("/usr/bin") / name
    return str(fallback) if fallback.exists() else None


def redis_server_binary() -> str | None:
    return _installed("redis-server")


class RedisServer:
    """A private redis-server process on a fixed port, restartable for fault tests.

    ``persistent=False`` (the default) keeps nothing on disk: a restart starts empty.
    ``persistent=True`` appends every write to an AOF in ``directory`` and fsyncs it
    before replying (``--appendonly yes --appendfsync always``), so a restart after
    :meth:`kill` finds every write the server acknowledged.
    """

    def __init__(self, binary: str, port: int, directory: Path, *,
                 persistent: bool = False, extra_args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.port = port
        self.directory = directory
        self.persistent = persistent
        self.extra_args = extra_args
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        log_file = self.directory / "redis-server.log"
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.persistent
                       else ["--appendonly", "no"])
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", *persistence, "--dir", str(self.directory),
             "--daemonize", "no", "--logfile", str(log_file), *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5,
                                 socket_connect_timeout=0.5)
            try:
                if client.ping():
                    return
            except redis.RedisError as exc:
                last_error = exc
            finally:
                client.close()
            time.sleep(0.05)
        log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within "
                           f"{_START_TIMEOUT_SECONDS}s (last error: {last_error}); log:\n{log}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        stop_process(process)

    def kill(self) -> None:
        """SIGKILL the server, as a crash or the OOM killer would: no shutdown, no save.

        Safe to call from another thread (a :class:`TcpProxy` hook); :meth:`start`
        brings it back on the same port and directory.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """SIGSTOP the server for the block, as a stalled machine would: it answers
        nothing (a replica acknowledges nothing) until SIGCONT at the end."""
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} is not running")
        process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            process.send_signal(signal.SIGCONT)

    def flushall(self) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            client.flushall()
        finally:
            client.close()


def stop_process(process: subprocess.Popen[bytes], timeout_seconds: float = 10) -> None:
    """Terminate a child process, and kill it if it does not exit in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_seconds)


def stored_json(state: dict[str, Any]) -> bytes:
    """The JSON a loaded state was stored as: its revision lives in the header, not there."""
    from memory_core.state import dump_json

    return dump_json({k: v for k, v in state.items() if k != "state_revision"})


def buyer_key_count(client: Any, prefix: str = "buyer_conversation_memory") -> int:
    """Keys in the buyer keyspace (``<prefix>:*``), leaving out the audit stream and the
    other ``<prefix>.<name>`` keys that writes may add beside it."""
    return sum(1 for _ in client.scan_iter(match=f"{prefix}:*", count=1000))


def seed_buyers(memory: Any, count: int, *, seed: int = 1, now: datetime | None = None,
                **options: Any) -> list[Any]:
    """Generate ``count`` QA buyers deterministically and save them; returns the buyers."""
    from memory_core.seeding import SeedOptions, generate_buyers

    buyers = list(generate_buyers(SeedOptions(count=count, seed=seed, **options), now=now))
    written = memory.save_many([buyer.as_save_item() for buyer in buyers])
    if written != count:
        raise RuntimeError(f"seeded {written} of {count} buyers")
    return buyers


def start_private_server(directory: Path | None = None, *,
                         persistent: bool = False) -> RedisServer:
    """Start a private redis-server on a free port; raises RuntimeError if it cannot.

    ``persistent=True``: an AOF fsynced on every write, in ``directory`` (see
    :class:`RedisServer`).
    """
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary, free_port(),
                         directory or Path(tempfile.mkdtemp(prefix="memory-core-redis-")),
                         persistent=persistent)
    server.start()
    return server


def start_primary_with_replica(timeout_seconds: float = 10.0
                               ) -> tuple[RedisServer, RedisServer]:
    """A private primary and a replica of it, past its initial sync; the caller stops
    both. RuntimeError if the replica does not catch up in time."""
    primary = start_private_server()
    try:
        replica = start_private_server()
    except RuntimeError:
        primary.stop()
        raise
    client = redis.Redis(host="127.0.0.1", port=replica.port, socket_timeout=2)
    try:
        client.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        deadline = time.monotonic() + timeout_seconds
        while client.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica on port {replica.port} did not sync with "
                                   f"its primary within {timeout_seconds:g} s")
            time.sleep(0.05)
    except (RuntimeError, redis.RedisError):
        replica.stop()
        primary.stop()
        raise
    finally:
        client.close()
    return primary, replica


# a private Redis Cluster ---------------------------------------------------------------

_CLUSTER_TIMEOUT_SECONDS = 30.0


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port(taken: set[int]) -> int:
    """A free port for a cluster node: at most 55535, and its bus port (+10000) free too."""
    import random

    for _ in range(1000):
        port = random.randint(20000, 55000)
        if (port not in taken and port + 10000 not in taken and _bindable(port)
                and _bindable(port + 10000)):
            taken.update((port, port + 10000))
            return port
    raise RuntimeError("no free port pair for a cluster node")


def redis_cli_binary() -> str | None:
    return _installed("redis-cli")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files in ``directory``."""
    from datetime import UTC, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "redis-test.crt", directory / "redis-test.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class RedisClusterServer:
    """A private Redis Cluster on loopback: ``primaries`` primaries with
    ``replicas_per_primary`` replicas each, every node a :class:`RedisServer` of the same
    binary on a free port, with its own directory (``nodes.conf``) under ``directory``.

    :meth:`start` launches the nodes, joins them with ``redis-cli --cluster create`` and
    waits until every node reports ``cluster_state:ok``. ``url`` is a
    ``redis+cluster://`` URL naming every primary as a startup node. :meth:`kill_node`
    SIGKILLs one node (a crash), :meth:`wait_for_failover` waits until a replica took
    over its slots.
    """

    def __init__(self, binary: str, directory: Path, *, primaries: int = 3,
                 replicas_per_primary: int = 1, node_timeout_ms: int = 1000,
                 tls: bool = False) -> None:
        if primaries < 3:
            raise ValueError("Redis Cluster needs at least 3 primaries")
        self.binary = binary
        self.directory = directory
        self.replicas_per_primary = replicas_per_primary
        args: tuple[str, ...] = (
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms))
        #: With ``tls``, clients and the cluster bus speak TLS on each node's ``tls_ports``
        #: (plain ports stay open for this harness); ``certificate`` is the CA to trust.
        self.certificate: Path | None = None
        if tls:
            self.certificate, key = self_signed_certificate(directory)
            args += ("--tls-cert-file", str(self.certificate), "--tls-key-file", str(key),
                     "--tls-ca-cert-file", str(self.certificate), "--tls-auth-clients", "no",
                     "--tls-cluster", "yes", "--tls-replication", "yes")
        self.nodes: list[RedisServer] = []
        self.tls_ports: list[int] = []
        taken: set[int] = set()
        for index in range(primaries * (1 + replicas_per_primary)):
            node_dir = directory / f"node-{index}"
            node_dir.mkdir(parents=True, exist_ok=True)
            port = free_cluster_port(taken)
            node_args = args
            if tls:
                self.tls_ports.append(free_cluster_port(taken))
                node_args += ("--tls-port", str(self.tls_ports[-1]))
            self.nodes.append(RedisServer(binary, port, node_dir, extra_args=node_args))
        self._created = False

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node as a startup node (any one of them is enough to find the rest);
        ``rediss+cluster://`` trusting :attr:`certificate` for a TLS cluster."""
        if self.certificate is not None:
            hosts = ",".join(f"127.0.0.1:{port}" for port in self.tls_ports)
            return f"rediss+cluster://{hosts}/?ssl_ca_certs={self.certificate}"
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"redis+cluster://{hosts}/"

    @property
    def node_url(self) -> str:
        """A plain ``redis://`` URL of one live node (cluster mode must be detected)."""
        node = next(node for node in self.nodes if node.running)
        return node.url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        if not self._created:
            cli = redis_cli_binary()
            if cli is None:
                raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
            tls = (["--tls", "--cacert", str(self.certificate)]
                   if self.certificate is not None else [])
            command = [cli, *tls, "--cluster", "create",
                       *(f"127.0.0.1:{port}" for port in (self.tls_ports or self.ports)),
                       "--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"]
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=_CLUSTER_TIMEOUT_SECONDS, check=False)
            if done.returncode != 0:
                output = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-cli --cluster create failed:\n{output}")
            self._created = True
        self.wait_until_ok()

    def _node_client(self, node: RedisServer) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2,
                           socket_connect_timeout=2)

    def _node_facts(self, node: RedisServer) -> tuple[str, str]:
        """(cluster_state, role) of one node; ('', '') when it does not answer."""
        client = self._node_client(node)
        try:
            info = client.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            state = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                          if line.startswith("cluster_state:")), "")
            role = client.execute_command("ROLE")[0]
            return state, role.decode() if isinstance(role, bytes) else str(role)
        except redis.RedisError:
            return "", ""
        finally:
            client.close()

    def wait_until_ok(self, timeout_seconds: float = _CLUSTER_TIMEOUT_SECONDS) -> None:
        """Wait until every running node says cluster_state:ok, with the expected number
        of primaries among them."""
        deadline = time.monotonic() + timeout_seconds
        facts: list[tuple[str, str]] = []
        expected_primaries = len(self.nodes) // (1 + self.replicas_per_primary)
        while time.monotonic() < deadline:
            facts = [self._node_facts(node) for node in self.nodes if node.running]
            if (all(state == "ok" for state, _ in facts)
                    and sum(role == "master" for _, role in facts) == expected_primaries):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the cluster on ports {self.ports} did not reach "
                           f"cluster_state:ok within {timeout_seconds}s: {facts}")

    def primaries(self) -> list[RedisServer]:
        """The running nodes whose role is master right now."""
        return [node for node in self.nodes
                if node.running and self._node_facts(node)[1] == "master"]

    def flushall(self) -> None:
        """Empty every primary (replicas follow)."""
        for node in self.primaries():
            node.flushall()

    def wait_until_replicated(self, timeout_seconds: float = _CLUSTER_TIMEOUT_SECONDS) -> None:
        """Wait until every replica has applied everything its primary has written.

        ``WAIT`` would not do from here: it counts the replicas that reached the offset of
        the asking connection's own last write, and this connection wrote nothing.
        """
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if all(self._replicated(node) for node in self.primaries()):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the replicas of the cluster on ports {self.ports} did not "
                           f"catch up within {timeout_seconds:g} s")

    def _replicated(self, primary: RedisServer) -> bool:
        client = self._node_client(primary)
        try:
            info = client.info("replication")
        except redis.RedisError:
            return False
        finally:
            client.close()
        written = int(info.get("master_repl_offset", 0))
        replicas = [value for name, value in info.items()
                    if name.startswith("slave") and isinstance(value, dict)]
        # "online": past the initial sync (a replica waiting for it reports offset 0)
        return (len(replicas) >= self.replicas_per_primary
                and all(r.get("state") == "online" and int(r.get("offset", -1)) >= written
                        for r in replicas))

    def replicas_of(self, port: int) -> list[RedisServer]:
        """The running nodes replicating the primary on ``port`` right now."""
        found = []
        for node in self.nodes:
            if not node.running:
                continue
            client = self._node_client(node)
            try:
                role = client.execute_command("ROLE")
            except redis.RedisError:
                continue
            finally:
                client.close()
            if role[0] in (b"slave", "slave") and int(role[2]) == port:
                found.append(node)
        return found

    def kill_node(self, node: RedisServer) -> None:
        node.kill()

    def wait_for_failover(self, timeout_seconds: float = _CLUSTER_TIMEOUT_SECONDS) -> None:
        """Wait until the running nodes again hold every slot (a replica was promoted)."""
        self.wait_until_ok(timeout_seconds)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_private_cluster(directory: Path | None = None, *, primaries: int = 3,
                          replicas_per_primary: int = 1,
                          tls: bool = False) -> RedisClusterServer:
    """Start a private Redis Cluster on free loopback ports; RuntimeError if it cannot."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    cluster = RedisClusterServer(
        binary, directory or Path(tempfile.mkdtemp(prefix="memory-core-cluster-")),
        primaries=primaries, replicas_per_primary=replicas_per_primary, tls=tls)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


# a fault-injecting TCP proxy -------------------------------------------------------------

#: Bytes a proxy holds per direction of one connection before it stops reading that side.
_PROXY_BUFFER_BYTES = 1024 * 1024
_PROXY_CHUNK_BYTES = 64 * 1024


class _Link:
    """One client connection and its connection to the server, with what is in flight."""

    __slots__ = ("client", "next_trickle_at", "server", "server_eof", "to_client",
                 "to_server")

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.server_eof = False  # the server closed: close the client once replies are out
        self.next_trickle_at = 0.0


class TcpProxy:
    """A TCP proxy on 127.0.0.1 (a free port) to a server, for fault injection in tests.

    One thread forwards every connection both ways. Fault controls, usable from any
    thread while connections are open:

    - :meth:`on_bytes_to_server`: run a hook once, when exactly that many bytes (counted
      over every connection, client to server) have been passed on; the rest of the
      chunk that crossed the threshold is sent after the hook ran. Hook
      ``server.kill`` and the server dies in the middle of a command.
    - :meth:`hang`: stop forwarding in both directions without closing anything; new
      connections are still accepted (and connected to the server) but nothing passes:
      a hung server. :meth:`resume` passes everything held back, in order.
    - :meth:`trickle`: replies reach clients ``nbytes`` at a time, every ``interval``
      seconds per connection: a server that answers, very slowly.

    When the server refuses a connection (it is down) the client's connection is closed
    at once; when the server closes one, the client's is closed after the replies
    already read. :meth:`stop` (or leaving the ``with`` block) closes everything and
    joins the thread.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._forwarding = True
        self._trickle: tuple[int, float] | None = None
        self._bytes_to_server = 0
        self._hook: tuple[int, Callable[[], None]] | None = None
        self.hook_fired = threading.Event()
        self.hook_error: BaseException | None = None
        self.connections_accepted = 0
        self._stopping = False
        self._selector = selectors.DefaultSelector()
        self._thread = threading.Thread(target=self._serve, name=f"tcp-proxy-{self.port}",
                                        daemon=True)
        self._started = False

    # control ------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listener; join the thread."""
        self._stopping = True
        self._wake()
        if self._started:
            self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError(f"TCP proxy thread on port {self.port} did not stop")
        for link in self._links:
            self._close_link(link)
        self._links.clear()
        for sock in (self._listener, self._wake_read, self._wake_write):
            sock.close()
        if not self._started:
            self._selector.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def bytes_to_server(self) -> int:
        """Bytes passed on from clients to the server so far, over every connection."""
        return self._bytes_to_server

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def on_bytes_to_server(self, threshold: int, hook: Callable[[], None]) -> None:
        """Run ``hook`` once, in the proxy thread, when ``threshold`` bytes have gone on.

        Forwarding pauses while the hook runs. An exception from it is kept in
        ``hook_error``; ``hook_fired`` is set either way.
        """
        if threshold < 0:
            raise ValueError(f"threshold={threshold} must be >= 0")
        with self._lock:
            self._hook = (threshold, hook)
            self.hook_fired.clear()
        self._wake()

    def hang(self) -> None:
        """Stop forwarding (both ways) without closing anything: a hung server."""
        with self._lock:
            self._forwarding = False
        self._wake()

    def resume(self) -> None:
        """Forward again at full speed, starting with what was held back."""
        with self._lock:
            self._forwarding = True
            self._trickle = None
        self._wake()

    def trickle(self, nbytes: int = 1, interval_seconds: float = 0.1) -> None:
        """Pass replies to each client ``nbytes`` at a time, every ``interval_seconds``."""
        if nbytes < 1 or interval_seconds <= 0:
            raise ValueError("trickle needs nbytes >= 1 and interval_seconds > 0")
        with self._lock:
            self._forwarding = True
            self._trickle = (nbytes, interval_seconds)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_write.send(b"x")

    # the forwarding thread -----------------------------------------------------------
    def _serve(self) -> None:
        selector = self._selector
        selector.register(self._listener, selectors.EVENT_READ, "accept")
        selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping:
                timeout = self._update_interest(selector)
                for key, events in selector.select(timeout):
                    if self._stopping:
                        break
                    self._handle(key, events)
                self._fire_hook_if_due()
        finally:
            selector.close()

    def _update_interest(self, selector: selectors.BaseSelector) -> float | None:
        """Register what each socket waits for now; the time until the next trickle."""
        with self._lock:
            forwarding, trickle = self._forwarding, self._trickle
        now = time.monotonic()
        timeout: float | None = None
        for link in list(self._links):
            client_events = server_events = 0
            if forwarding:
                if len(link.to_server) < _PROXY_BUFFER_BYTES:
                    client_events |= selectors.EVENT_READ
                if (len(link.to_client) < _PROXY_BUFFER_BYTES and not link.server_eof):
                    server_events |= selectors.EVENT_READ
                if link.to_server and not self._hook_blocks():
                    server_events |= selectors.EVENT_WRITE
                if link.to_client:
                    if trickle is None or link.next_trickle_at <= now:
                        client_events |= selectors.EVENT_WRITE
                    else:
                        wait = link.next_trickle_at - now
                        timeout = wait if timeout is None else min(timeout, wait)
            self._set_events(selector, link.client, client_events, link)
            self._set_events(selector, link.server, server_events, link)
        return timeout

    def _hook_blocks(self) -> bool:
        """True while the hook is due but has not run: nothing more may reach the server."""
        hook = self._hook
        return hook is not None and self._bytes_to_server >= hook[0]

    @staticmethod
    def _set_events(selector: selectors.BaseSelector, sock: socket.socket, events: int,
                    link: _Link) -> None:
        try:
            registered = selector.get_key(sock)
        except KeyError:
            registered = None
        if registered is None:
            if events:
                selector.register(sock, events, link)
        elif not events:
            selector.unregister(sock)
        elif registered.events != events:
            selector.modify(sock, events, link)

    def _handle(self, key: selectors.SelectorKey, events: int) -> None:
        if key.data == "wake":
            with contextlib.suppress(BlockingIOError):
                while self._wake_read.recv(4096):
                    pass
            return
        if key.data == "accept":
            self._accept()
            return
        link: _Link = key.data
        if link not in self._links:
            return  # closed earlier in this round
        try:
            if key.fileobj is link.client:
                self._client_ready(link, events)
            else:
                self._server_ready(link, events)
        except OSError:
            self._drop(link)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            self.connections_accepted += 1
            try:
                server = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()  # the server is down: the client sees its connection closed
                continue
            for sock in (client, server):
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._links.append(_Link(client, server))

    def _client_ready(self, link: _Link, events: int) -> None:
        if events & selectors.EVENT_READ:
            data = link.client.recv(_PROXY_CHUNK_BYTES)
            if not data:
                self._drop(link)  # the client went away: nothing more to deliver
                return
            link.to_server += data
        if events & selectors.EVENT_WRITE and link.to_client:
            trickle = self._trickle
            size = len(link.to_client) if trickle is None else trickle[0]
            sent = link.client.send(link.to_client[:size])
            del link.to_client[:sent]
            if trickle is not None:
                link.next_trickle_at = time.monotonic() + trickle[1]
            if link.server_eof and not link.to_client:
                self._drop(link)

    def _server_ready(self, link: _Link, events: int) -> None:
        if events & selectors.EVENT_READ:
            data = link.server.recv(_PROXY_CHUNK_BYTES)
            if not data:
                link.server_eof = True
                if not link.to_client:
                    self._drop(link)
                return
            link.to_client += data
        if events & selectors.EVENT_WRITE and link.to_server:
            size = len(link.to_server)
            hook = self._hook
            if hook is not None:
                size = min(size, max(0, hook[0] - self._bytes_to_server))
            if size:
                sent = link.server.send(link.to_server[:size])
                del link.to_server[:sent]
                self._bytes_to_server += sent

    def _fire_hook_if_due(self) -> None:
        with self._lock:
            hook = self._hook
            if hook is None or self._bytes_to_server < hook[0]:
                return
            self._hook = None
        try:
            hook[1]()
        except BaseException as exc:  # kept for the test to inspect; the proxy goes on
            self.hook_error = exc
        finally:
            self.hook_fired.set()

    def _drop(self, link: _Link) -> None:
        if link in self._links:
            self._links.remove(link)
        for sock in (link.client, link.server):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
        self._close_link(link)

    @staticmethod
    def _close_link(link: _Link) -> None:
        for sock in (link.client, link.server):
            with contextlib.suppress(OSError):
                sock.close()
