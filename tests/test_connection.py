"""Tests of memory_core.connection: one deadline per reply, and URL options checked up front.

A tiny server in a thread plays a Redis that answers the connection handshake properly and
then every other command with the start of a large bulk reply, trickled 8 bytes at a time
just inside the socket timeout: redis-py's per-``recv`` timeout never fires on it, the
per-reply deadline must.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis
from redis._parsers import _RESP2Parser, _RESP3Parser
from redis.backoff import NoBackoff
from redis.retry import Retry

from memory_core.cli import main
from memory_core.config import MemoryConfig
from memory_core.connection import (
    ReplyDeadlineConnection,
    ReplyDeadlineSSLConnection,
    ReplyDeadlineUnixDomainSocketConnection,
    connect,
    connect_async,
    normalise_url,
    parse_target,
    redact_url,
)
from memory_core.errors import ConnectionURLError
from memory_core.extras import MissingExtra
from memory_core.store import SyncBuyerConversationMemory

CONFIG = MemoryConfig(socket_timeout_seconds=0.5, socket_connect_timeout_seconds=0.5)
BOUND_SECONDS = 1.5  # socket_timeout 0.5 s, plus room for a loaded test machine
_HANDSHAKE_REPLIES = {b"PING": b"+PONG\r\n", b"CLIENT": b"+OK\r\n", b"SELECT": b"+OK\r\n",
                      b"AUTH": b"+OK\r\n",
                      b"HELLO": b"%1\r\n$5\r\nproto\r\n:3\r\n"}  # redis-py 8 speaks RESP3


# a slow Redis ------------------------------------------------------------------------

@dataclass
class TrickleServer:
    """Answers handshake commands at once; any other with ``$<bulk_bytes>`` and a trickle.

    The trickle is ``chunk_bytes`` every ``interval_seconds`` until the bulk value (and its
    CRLF) is complete or the client goes away. ``stop()`` ends every thread it started.
    """

    family: socket.AddressFamily
    tls: ssl.SSLContext | None = None
    bulk_bytes: int = 1_000_000
    chunk_bytes: int = 8
    interval_seconds: float = 0.3
    url: str = ""  # set by start()
    commands: list[bytes] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _directory: str | None = None

    def start(self) -> str:
        self._listener = socket.socket(self.family, socket.SOCK_STREAM)
        if self.family == socket.AF_UNIX:
            self._directory = tempfile.mkdtemp(prefix="mc-trickle-")  # short: 108-byte limit
            path = os.path.join(self._directory, "redis.sock")
            self._listener.bind(path)
            url = f"unix://{path}"
        else:
            self._listener.bind(("127.0.0.1", 0))
            port = self._listener.getsockname()[1]
            url = (f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none" if self.tls
                   else f"redis://127.0.0.1:{port}/0")
        self._listener.listen()
        self._listener.settimeout(0.05)
        self._spawn(self._accept_loop)
        self.url = url
        return url

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        self._listener.close()
        if self._directory:
            shutil.rmtree(self._directory, ignore_errors=True)
        assert not alive, f"server threads still running: {alive}"

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"trickle-server-{len(self._threads)}")
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        buffer = b""
        if self.tls is not None:
            client.settimeout(5)
            try:
                client = self.tls.wrap_socket(client, server_side=True)
            except OSError:
                client.close()
                return
        with client:
            client.settimeout(0.05)
            while not self._stopping.is_set():
                try:
                    data = client.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while (parsed := _parse_command(buffer)) is not None:
                    command, buffer = parsed
                    self.commands.append(command)
                    try:
                        if command in _HANDSHAKE_REPLIES:
                            client.sendall(_HANDSHAKE_REPLIES[command])
                        else:
                            self._trickle(client)
                    except OSError:  # the client hung up: what a timed-out client does
                        return

    def _trickle(self, client: socket.socket) -> None:
        client.sendall(b"$%d\r\n" % self.bulk_bytes)
        left = self.bulk_bytes + 2
        while left > 0 and not self._stopping.wait(self.interval_seconds):
            chunk = min(left, self.chunk_bytes)
            client.sendall((b"x" * self.bulk_bytes + b"\r\n")[-left:][:chunk])
            left -= chunk


def _parse_command(buffer: bytes) -> tuple[bytes, bytes] | None:
    """The upper-cased name of the first complete RESP command and what follows it."""
    if not buffer.startswith(b"*") or b"\r\n" not in buffer:
        return None
    head, rest = buffer.split(b"\r\n", 1)
    parts = []
    for _ in range(int(head[1:])):
        if b"\r\n" not in rest:
            return None
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line[1:])
        if len(rest) < size + 2:
            return None
        parts.append(rest[:size])
        rest = rest[size + 2:]
    return parts[0].upper(), rest


@contextmanager
def _running(server: TrickleServer) -> Iterator[TrickleServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["tcp", "unix"])
def trickle_server(request: pytest.FixtureRequest) -> Iterator[TrickleServer]:
    family = socket.AF_INET if request.param == "tcp" else socket.AF_UNIX
    with _running(TrickleServer(family)) as server:
        yield server


@pytest.fixture
def tcp_trickle_server() -> Iterator[TrickleServer]:
    with _running(TrickleServer(socket.AF_INET)) as server:
        yield server


def _data_commands(server: TrickleServer) -> list[bytes]:
    return [command for command in server.commands if command not in _HANDSHAKE_REPLIES]


@pytest.fixture(scope="module")
def server_tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A self-signed certificate made with the openssl command line tool."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed; the TLS test needs it to make a certificate")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def slow_tcp_server() -> Iterator[TrickleServer]:
    """A server whose replies complete: 24 bytes in 8-byte chunks every 0.25 s (~0.75 s)."""
    with _running(TrickleServer(socket.AF_INET, bulk_bytes=22, interval_seconds=0.25)) as server:
        yield server


# one deadline per reply ----------------------------------------------------------------

def test_a_trickled_reply_times_out_within_the_socket_timeout(
        trickle_server: TrickleServer) -> None:
    url = trickle_server.url
    client = connect(url, CONFIG)
    try:
        expected = (ReplyDeadlineUnixDomainSocketConnection if url.startswith("unix")
                    else ReplyDeadlineConnection)
        assert client.connection_pool.connection_class is expected
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.get("x")
        elapsed = time.monotonic() - started
    finally:
        client.close()
    assert 0.4 <= elapsed < BOUND_SECONDS, elapsed
    assert _data_commands(trickle_server) == [b"GET"]  # the handshake went through


def test_load_state_gives_up_on_a_trickled_reply(trickle_server: TrickleServer) -> None:
    url = trickle_server.url
    with SyncBuyerConversationMemory.from_url(url, CONFIG) as memory:
        started = time.monotonic()
        assert memory.load_state("x") is None
        elapsed = time.monotonic() - started
    assert elapsed < BOUND_SECONDS, elapsed
    assert _data_commands(trickle_server)


@pytest.mark.parametrize(("parser_class", "protocol"), [(_RESP2Parser, 2), (_RESP3Parser, 3)])
def test_the_deadline_holds_with_the_pure_python_parsers(
        tcp_trickle_server: TrickleServer, parser_class: type, protocol: int) -> None:
    url = tcp_trickle_server.url
    client = redis.Redis.from_url(url, connection_class=ReplyDeadlineConnection,
                                  parser_class=parser_class, protocol=protocol,
                                  socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.get("x")
        assert time.monotonic() - started < BOUND_SECONDS
        connection = client.connection_pool.get_connection()
        assert type(connection._parser) is parser_class
        client.connection_pool.release(connection)
    finally:
        client.close()
    assert _data_commands(tcp_trickle_server) == [b"GET"]


def test_a_slow_reply_that_ends_in_time_is_read_and_the_timeout_restored(
        slow_tcp_server: TrickleServer) -> None:
    url = slow_tcp_server.url
    client = connect(url, MemoryConfig(socket_timeout_seconds=2.0))
    try:
        assert client.get("x") == b"x" * 22  # four reads, the later ones with less time
        connection = client.connection_pool.get_connection()
        try:
            assert connection._sock.gettimeout() == 2.0
            assert connection._sock._sock.gettimeout() == 2.0  # the real socket's, restored
        finally:
            client.connection_pool.release(connection)
        assert client.get("y") == b"x" * 22  # the same connection serves the next reply
    finally:
        client.close()
    assert slow_tcp_server.commands.count(b"GET") == 2


def test_without_a_socket_timeout_a_slow_reply_is_waited_for(
        slow_tcp_server: TrickleServer) -> None:
    url = slow_tcp_server.url
    client = redis.Redis.from_url(url, connection_class=ReplyDeadlineConnection,
                                  socket_timeout=None, retry=Retry(NoBackoff(), 0))
    try:
        started = time.monotonic()
        assert client.get("x") == b"x" * 22  # ~0.75 s: longer than 0.5 s, no deadline
        assert time.monotonic() - started > 0.5
    finally:
        client.close()


def test_over_tls_a_trickled_reply_times_out_and_a_slow_one_is_read(
        server_tls_context: ssl.SSLContext) -> None:
    with _running(TrickleServer(socket.AF_INET, tls=server_tls_context)) as server:
        client = connect(server.url, CONFIG)
        try:
            assert client.connection_pool.connection_class is ReplyDeadlineSSLConnection
            started = time.monotonic()
            with pytest.raises(redis.TimeoutError):
                client.get("x")
            assert time.monotonic() - started < BOUND_SECONDS
        finally:
            client.close()
        assert _data_commands(server) == [b"GET"]
    slow = TrickleServer(socket.AF_INET, tls=server_tls_context, bulk_bytes=22,
                         interval_seconds=0.1)
    with _running(slow) as server:
        client = connect(server.url, CONFIG)
        try:
            assert client.get("x") == b"x" * 22  # several TLS reads within one deadline
            assert client.get("y") == b"x" * 22
        finally:
            client.close()


# the same client on a real redis-server ----------------------------------------------

def test_round_trips_on_a_real_redis_use_the_deadline_classes(real_redis_url: str) -> None:
    client = connect(real_redis_url, CONFIG)
    try:
        assert client.connection_pool.connection_class is ReplyDeadlineConnection
        assert client.set("small", b"value")
        assert client.get("small") == b"value"
        pipe = client.pipeline()
        for i in range(50):
            pipe.set(f"k{i}", i)
        for i in range(50):
            pipe.get(f"k{i}")
        assert pipe.execute()[50:] == [str(i).encode() for i in range(50)]
        big = os.urandom(4 * 1024 * 1024)
        assert client.set("big", big)
        assert client.get("big") == big
        assert client.strlen("big") == len(big)
        connection = client.connection_pool.get_connection()
        try:
            assert type(connection._sock).__name__.startswith("_DeadlineSocket")
            assert connection._sock._sock.gettimeout() == 0.5
        finally:
            client.connection_pool.release(connection)
    finally:
        client.close()


def test_a_connection_the_server_closed_is_noticed_and_replaced(real_redis_url: str) -> None:
    """redis-py's checks on a pooled connection (poll, MSG_PEEK) see through the wrapper."""
    client = connect(real_redis_url, CONFIG)
    admin = redis.Redis.from_url(real_redis_url)
    try:
        assert client.set("k", b"v")
        connection = client.connection_pool.get_connection()
        wrapped = connection._sock
        client.connection_pool.release(connection)
        first_id = client.client_id()
        assert admin.client_kill_filter(_id=first_id) == 1
        assert select.select([wrapped], [], [], 2)[0], "the server's close never arrived"
        assert client.get("k") == b"v"  # the pool saw EOF and reconnected
        assert client.client_id() != first_id
    finally:
        client.close()
        admin.close()


# URL options ---------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "option", "shown_value"), [
    ("socket_timeout=abc", "socket_timeout", "abc"),
    ("socket_connect_timeout=1s", "socket_connect_timeout", "1s"),
    ("socket_timeout=-1", "socket_timeout", "-1"),
    ("socket_timeout=nan", "socket_timeout", "nan"),
    ("socket_timeout=0", "socket_timeout", "0"),
    ("db=two", "db", "two"),
    ("max_connections=-5", "max_connections", "-5"),
    ("health_check_interval=often", "health_check_interval", "often"),
    ("protocol=three", "protocol", "three"),
    ("socket_timeout=1&nonsense=1", "nonsense", None),
    ("decode_responses=false", "decode_responses", None),
    ("timeout=3", "timeout", None),
    ("retry_on_error=TimeoutError", "retry_on_error", None),
    ("ssl_ca_certs=/etc/ca.pem", "ssl_ca_certs", None),
])
def test_a_bad_url_option_is_one_line_naming_it(query: str, option: str,
                                                 shown_value: str | None) -> None:
    url = f"redis://reader:hunter2@127.0.0.1:1/0?{query}"
    with pytest.raises(ConnectionURLError) as caught:
        parse_target(url)
    message = str(caught.value)
    assert option in message and "\n" not in message
    if shown_value is not None:
        assert repr(shown_value) in message
    assert "hunter2" not in message
    for opener in (connect, connect_async, SyncBuyerConversationMemory.from_url):
        with pytest.raises(ConnectionURLError):
            opener(url)  # type: ignore[operator]


@pytest.mark.parametrize("url", [
    "unix:///run/redis.sock?db=x",
    "unix:///run/redis.sock?socket_keepalive=yes",
    "rediss://127.0.0.1:6380/0?ssl_include_verify_flags=NOT_A_FLAG",
])
def test_bad_options_of_the_other_schemes(url: str) -> None:
    with pytest.raises(ConnectionURLError, match="option"):
        parse_target(url)


def test_a_password_query_value_is_never_shown() -> None:
    url = "redis://127.0.0.1:1/0?password=hunter2&socket_timeout=abc"
    with pytest.raises(ConnectionURLError) as caught:
        parse_target(url)
    assert "hunter2" not in str(caught.value) and "socket_timeout" in str(caught.value)


def test_a_password_with_a_raw_question_mark_is_not_read_as_options() -> None:
    url = "redis://:pa?socket_timeout=HUNTER2@127.0.0.1:1/0"
    target = parse_target(url)  # "HUNTER2@127..." is no valid timeout: the @ ends a password
    assert (target.host, target.port) == ("127.0.0.1", 1)
    assert "HUNTER2" not in target.redacted_url + target.label
    assert redis.connection.parse_url(normalise_url(url))["password"] == (
        "pa?socket_timeout=HUNTER2")
    with pytest.raises(ConnectionURLError) as caught:  # port 6379 and a name: two readings
        parse_target("redis://:6379?client_name=HUNTER2@127.0.0.1:1/0")
    assert "HUNTER2" not in str(caught.value) and "%3F" in str(caught.value)


def test_a_raw_at_sign_in_an_option_value_must_be_escaped() -> None:
    with pytest.raises(ConnectionURLError, match="%40"):
        parse_target("redis://127.0.0.1:6379/0?client_name=ops@host")
    assert parse_target("redis://127.0.0.1:6379/0?client_name=ops%40host").host == "127.0.0.1"


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0?socket_timeout=2.5&socket_connect_timeout=1",
    "redis://user:pw@127.0.0.1:6379/2?client_name=cli&health_check_interval=30"
    "&max_connections=20&socket_keepalive=false&retry_on_timeout=no&protocol=3",
    "redis://127.0.0.1:6379?db=3&password=x%26y",
    "rediss://redis.example:6380/0?ssl_cert_reqs=none&ssl_ca_certs=/etc/ca.pem"
    "&ssl_check_hostname=false&ssl_include_verify_flags=VERIFY_X509_STRICT",
    "unix:///run/redis/redis.sock?db=4&socket_timeout=1",
])
def test_good_options_pass(url: str) -> None:
    target = parse_target(url)
    assert target.db in (0, 2, 3, 4)
    connect(url).close()  # builds the pool without a TypeError (connections open lazily)


def test_the_url_database_option_wins_as_in_redis_py() -> None:
    assert parse_target("redis://127.0.0.1:6379/1?db=5").db == 5
    assert parse_target("unix:///run/redis.sock?db=7").db == 7


def test_the_cli_reports_a_bad_option_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--redis-url", "redis://127.0.0.1:1/0?socket_timeout=abc", "stats"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "socket_timeout" in err and "'abc'" in err


# passwords holding URL delimiters ---------------------------------------------------------

#: (password as written in the URL, the password it means, a fragment that must never show)
NASTY_PASSWORDS = [
    ("4242#Secret", "4242#Secret", "Secret"),
    ("1234/topsecret", "1234/topsecret", "topsecret"),
    ("9876?db=Hidden", "9876?db=Hidden", "Hidden"),
    ("5150?socket_timeout=Sneaky", "5150?socket_timeout=Sneaky", "Sneaky"),
    ("12@34#Mixed/Bits?x=y", "12@34#Mixed/Bits?x=y", "Mixed"),
    ("77:88@99/Colons#", "77:88@99/Colons#", "Colons"),
    ("3141%23Encoded%2F%40%3F", "3141#Encoded/@?", "Encoded"),
    ("2718%Raw#Percent", "2718%Raw#Percent", "Percent"),
]


def _shown_forms(url: str) -> str:
    """Everything a person can see of a URL: its redaction, the label, or the error."""
    try:
        target = parse_target(url)
    except ConnectionURLError as exc:
        return f"{redact_url(url)} {exc}"
    return f"{redact_url(url)} {target.redacted_url} {target.label} {target!r}"


@pytest.mark.parametrize(("written", "meant", "fragment"), NASTY_PASSWORDS)
@pytest.mark.parametrize("user", ["bot", ""])
def test_a_password_is_read_up_to_the_last_at_and_never_shown(
        written: str, meant: str, fragment: str, user: str) -> None:
    url = f"redis://{user}:{written}@cache.example:6390/3"
    target = parse_target(url)
    assert (target.host, target.port, target.db) == ("cache.example", 6390, 3)
    assert target.redacted_url == f"redis://{user}:***@cache.example:6390/3"
    shown = _shown_forms(url)
    assert fragment not in shown and written.split("#")[0].split("/")[0] not in shown
    options = redis.connection.parse_url(normalise_url(url))
    assert options["password"] == meant
    assert options.get("username") == (user or None)
    assert (options["host"], options["port"], options["db"]) == ("cache.example", 6390, 3)


@pytest.mark.parametrize(("written", "meant", "fragment"), NASTY_PASSWORDS[:3])
def test_nasty_passwords_in_tls_and_unix_urls(written: str, meant: str, fragment: str) -> None:
    tls = parse_target(f"rediss://bot:{written}@cache.example/1")
    assert (tls.host, tls.port, tls.db) == ("cache.example", 6379, 1)
    unix_url = f"unix://:{written}@/run/redis@1/redis.sock?db=2"
    unix = parse_target(unix_url)
    assert (unix.host, unix.db) == ("/run/redis@1/redis.sock", 2)
    for url in (f"rediss://bot:{written}@cache.example/1", unix_url):
        assert fragment not in _shown_forms(url)
        assert redis.connection.parse_url(normalise_url(url))["password"] == meant


@pytest.mark.parametrize(("written", "meant", "fragment"), NASTY_PASSWORDS)
def test_the_cli_never_shows_a_nasty_password(written: str, meant: str, fragment: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    port = free_tcp_port()
    assert main(["--redis-url", f"redis://bot:{written}@127.0.0.1:{port}/0", "stats"]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err  # the real host was tried, not "bot:4242"
    assert fragment not in err and "bot:" + written[:4] not in err.replace("***", "")


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def acl_user(real_raw: redis.Redis, name: str, password: str) -> Iterator[None]:
    real_raw.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", "~*",
                             "+@all")
    try:
        yield
    finally:
        real_raw.execute_command("ACL", "DELUSER", name)


@pytest.mark.parametrize(("written", "meant", "fragment"), NASTY_PASSWORDS)
def test_clients_authenticate_with_the_whole_nasty_password(
        real_redis_url: str, real_raw: redis.Redis, written: str, meant: str,
        fragment: str) -> None:
    port = parse_target(real_redis_url).port
    url = f"redis://nasty:{written}@127.0.0.1:{port}/0"
    with acl_user(real_raw, "nasty", meant):
        client = connect(url)
        try:
            assert client.execute_command("ACL", "WHOAMI") == b"nasty"
        finally:
            client.close()

        async def whoami() -> bytes:
            async_client = connect_async(url)
            try:
                return bytes(await async_client.execute_command("ACL", "WHOAMI"))
            finally:
                await async_client.aclose()

        assert asyncio.run(whoami()) == b"nasty"
        with SyncBuyerConversationMemory.from_url(url) as memory:
            assert memory.save_state("acl-buyer", {"buyer_temperature": "hot"})
            assert memory.load_state("acl-buyer") is not None


def test_a_wrong_nasty_password_is_refused_without_being_shown(
        real_redis_url: str, real_raw: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    port = parse_target(real_redis_url).port
    with acl_user(real_raw, "nasty", "right#Password"):
        code = main(["--redis-url", f"redis://nasty:4242#WrongPass/x?y@127.0.0.1:{port}/0",
                     "stats"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "WrongPass" not in err and f"127.0.0.1:{port}" in err


# memory:// without fakeredis -------------------------------------------------------------

def test_a_memory_url_without_fakeredis_names_the_demo_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fakeredis", None)  # import fakeredis fails as if absent
    message = r"^a memory:// store needs fakeredis: pip install 'memory-core\[demo\]'$"
    for open_client in (connect, connect_async):
        with pytest.raises(MissingExtra, match=message) as raised:
            open_client("memory://no-fakeredis")
        assert isinstance(raised.value, ImportError) and raised.value.name == "fakeredis"
    with pytest.raises(MissingExtra, match=message):
        SyncBuyerConversationMemory.from_url("memory://no-fakeredis")
