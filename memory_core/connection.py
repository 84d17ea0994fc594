"""Redis clients from a URL: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``memory://``,
and Redis Cluster: ``redis+cluster://[user:password@]host:port[,host:port...]/`` (and
``rediss+cluster://`` for TLS), whose hosts are startup nodes for redis-py's cluster
clients. A plain ``redis://`` URL that points at a cluster node works too when the
caller asks for detection (the memory classes' ``from_url`` do): one ``INFO cluster``
at start-up, and an INFO log line says the cluster client is used.

``memory://<name>`` is an embedded fakeredis store living in this process, shared by
every client opened on the same name (sync and async alike): for demos and quick tries,
never for production. Clients are built with short timeouts and no automatic retries,
because the memory must fail fast and let the circuit breaker take over. URLs shown to
people go through :func:`redact_url` so passwords never reach a log or a screen, and
clients are given :func:`normalise_url`'s form, so a password holding a raw ``#``, ``?``,
``/`` or ``@`` is read whole instead of as host, port or database.

Why the sync client has its own connection classes: redis-py applies ``socket_timeout``
to each ``recv`` separately, so a server that trickles a few bytes just inside the timeout
can hold one reply open for minutes (8 bytes every 0.3 s kept a load busy for 48 s with a
0.5 s timeout). redis.asyncio wraps the whole read in one timeout; the ``ReplyDeadline*``
classes give the sync client (CLI, dashboard) the same bound: reading one reply takes at
most ``socket_timeout`` in total and then fails with ``redis.TimeoutError``, as before.

Query options are checked by :func:`parse_target` with redis-py's own URL parser, so a bad
value or an unknown option is one clear :class:`ConnectionURLError`, not a traceback later.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import re
import socket
import threading
import time
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.connection
import redis.asyncio.retry
import redis.cluster
import redis.connection
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.utils import SENTINEL

from memory_core import extras
from memory_core.config import MemoryConfig
from memory_core.errors import ConnectionURLError

REDIS_URL_ENV = "REDIS_URL"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
SCHEMES = ("redis", "rediss", "unix", "memory", "redis+cluster", "rediss+cluster")
#: Cluster schemes and the single-node scheme each node is reached with.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_URL_SCHEMES = ("redis", "rediss", "unix", *CLUSTER_SCHEMES)
logger = logging.getLogger(__name__)

_PASSWORD_PARAMETER = re.compile(r"(?i)([?&]\w*password=)[^&#]*")
#: User information that ends inside a password option, as a parser would read it:
#: ``?password=a@b`` puts the last ``@`` in the option's value.
_OPEN_PASSWORD_PARAMETER = re.compile(r"(?i)\?(?:[^#&]*&)*\w*password=[^&#]*$")
_fake_servers: dict[str, Any] = {}  # name -> fakeredis.FakeServer
_fake_servers_lock = threading.Lock()


@dataclass(frozen=True)
class Target:
    """Where a URL points, safe to show: no password."""

    scheme: str
    host: str
    port: int | None
    db: int
    redacted_url: str
    #: Startup nodes (host, port) of a cluster URL; empty for a single server.
    nodes: tuple[tuple[str, int], ...] = ()

    @property
    def is_demo(self) -> bool:
        return self.scheme == "memory"

    @property
    def is_cluster(self) -> bool:
        return self.scheme in CLUSTER_SCHEMES

    @property
    def tls(self) -> bool:
        return self.scheme in ("rediss", "rediss+cluster")

    @property
    def label(self) -> str:
        if self.is_cluster:
            first = f"{self.nodes[0][0]}:{self.nodes[0][1]}"
            more = f" (+{len(self.nodes) - 1} startup nodes)" if len(self.nodes) > 1 else ""
            return f"Redis Cluster via {first}{more}" + (" (TLS)" if self.tls else "")
        if self.is_demo:
            return f"embedded demo store ({self.host})"
        if self.scheme == "unix":
            return f"unix socket {self.host} db {self.db}"
        return f"{self.host}:{self.port} db {self.db}" + (" (TLS)" if self.tls else "")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``.

    Works on the text, not on a parse, so a password holding an unescaped ``#``, ``?`` or
    ``/`` (which confuses URL parsers) is still hidden: everything between ``user:`` and
    the last ``@`` goes, and so does a ``password=`` (or ``ssl_password=``) query
    parameter, which redis-py reads. Where the last ``@`` may sit inside such a parameter
    (``?password=a@b``), the text after it is hidden too.
    """
    if not isinstance(url, str):
        return "<not a URL>"
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "<unparseable URL>" if "@" in url or "password" in url.lower() else url
    end = _userinfo_end(scheme.lower(), rest)
    if end >= 0:
        userinfo, host_and_path = rest[:end], rest[end + 1:]
        user, colon, _ = userinfo.partition(":")
        if _OPEN_PASSWORD_PARAMETER.search(userinfo):
            host_and_path = re.sub(r"^[^&#]*", "***", host_and_path)
        rest = f"{user}:***@{host_and_path}" if colon else f"***@{host_and_path}"
    rest = _PASSWORD_PARAMETER.sub(r"\1***", rest)
    return f"{scheme}://{rest}"


def normalise_url(url: str) -> str:
    """``url`` with its user name and password percent-encoded, as redis-py must read them.

    A password may hold any character, ``#``, ``?``, ``/``, ``@`` and ``:`` included: the
    user information runs from ``//`` to the last ``@`` (for ``unix://``, the last ``@/``,
    where the socket path starts), and its first ``:`` ends the user name. URL parsers
    (redis-py's too) stop the host part at the first ``/``, ``?`` or ``#`` instead, so
    ``redis://u:1234#Secret@host`` would connect to host ``u`` port 1234, and an error or a
    label would show part of the password. Encoded here, every parser reads it the same.
    ``memory://`` URLs, and URLs with no user information, are returned as they are.

    Raises :class:`ConnectionURLError` when the text has two sensible readings: the last
    ``@`` is in what a parser reads as valid options (``redis://h:6379?client_name=a@b``,
    which could also be user ``h`` with password ``6379?client_name=a``). The message
    says to write the character as ``%XX``.
    """
    scheme, separator, rest = url.partition("://")
    end = _userinfo_end(scheme.lower(), rest)
    if not separator or scheme.lower() not in _URL_SCHEMES or end < 0:
        return url
    userinfo, host_and_path = rest[:end], rest[end + 1:]
    if any(c in userinfo for c in "/?#"):
        _check_not_an_option_value(url, scheme.lower())
    user, colon, password = userinfo.partition(":")
    encoded = quote(unquote(user), safe="") + (
        ":" + quote(unquote(password), safe="") if colon else "")
    return f"{scheme}://{encoded}@{host_and_path}"


def _userinfo_end(scheme: str, rest: str) -> int:
    """Where the ``@`` ending the user information is in ``rest`` (after ``//``); -1: none.

    The last ``@``, or for ``unix://`` the last ``@/`` (its path may hold an ``@``).
    A URL of ours whose authority is empty (``unix:///path``) has none.
    """
    if scheme in _URL_SCHEMES and rest.startswith("/"):
        return -1
    end = rest.rfind("@/") if scheme == "unix" else -1
    return end if end >= 0 else rest.rfind("@")


def _check_not_an_option_value(url: str, scheme: str) -> None:
    """Refuse a URL that also makes sense with its last ``@`` inside an option value.

    That other reading (a URL parser's) is sensible when the port, the database and every
    option it finds are valid: ``redis://h:6379/0?client_name=ops@host``. Where they are
    not (``redis://u:1234?db=Secret@host``), the ``@`` can only end a password.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port
        names = parse_qs(parts.query)
    except ValueError:
        return
    database = unquote(parts.path.lstrip("/"))
    if "@" not in parts.query or not names or (
            scheme != "unix" and database and not database.isdigit()):
        return
    try:
        _check_query_options(url, scheme, parts.query)
    except ConnectionURLError:
        return
    raise ConnectionURLError(
        f"Redis URL {redact_url(url)!r} is ambiguous: write special characters in the "
        "password, and any @ in option values, as %XX (%23 for #, %3F for ?, %2F for /, "
        "%40 for @)")


def parse_target(url: str) -> Target:
    """Validate a URL and describe it; :class:`ConnectionURLError` says what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise ConnectionURLError("Redis URL is empty; set REDIS_URL or pass --redis-url, "
                                 "e.g. redis://localhost:6379/0")
    text = url.strip()
    clean = normalise_url(text)  # the password read up to the last @, whatever it holds
    scheme = clean.partition("://")[0].lower()
    if scheme in CLUSTER_SCHEMES:
        return _parse_cluster_target(text, clean, scheme)
    try:
        parts = urlsplit(clean)
        port = parts.port
    except ValueError:  # the parser's message can quote part of the password: not shown
        raise ConnectionURLError(
            f"Redis URL {redact_url(text)!r} is malformed: check the host and port, and "
            "write special characters in option values as %XX (e.g. %40 for @)") from None
    if parts.scheme not in SCHEMES:
        raise ConnectionURLError(
            f"Redis URL scheme {parts.scheme!r} is not supported; use one of "
            + ", ".join(f"{s}://" for s in SCHEMES))
    if parts.scheme == "memory":
        name = (parts.netloc + parts.path).strip("/") or "default"
        return Target("memory", name, None, 0, f"memory://{name}")
    options = _check_query_options(clean, parts.scheme, parts.query)
    if parts.scheme == "unix":
        if not parts.path:
            raise ConnectionURLError("unix:// URL needs a socket path, e.g. "
                                     "unix:///run/redis/redis.sock?db=0")
        return Target("unix", parts.path, None, options.get("db", 0), redact_url(text))
    db_text = unquote(parts.path.lstrip("/")) or "0"
    db = _parse_db(db_text, text)
    return Target(parts.scheme, parts.hostname or "localhost", port or 6379,
                  options.get("db", db), redact_url(text))


def _parse_cluster_target(text: str, clean: str, scheme: str) -> Target:
    """A ``redis+cluster://`` URL: a comma-separated list of startup nodes, database 0."""
    rest = clean.partition("://")[2]
    end = _userinfo_end(scheme, rest)
    userinfo, after = (rest[:end + 1], rest[end + 1:]) if end >= 0 else ("", rest)
    cut = min((i for i in (after.find("/"), after.find("?"), after.find("#")) if i >= 0),
              default=len(after))
    hosts_text, tail = after[:cut], after[cut:]
    path, _, query = tail.partition("?")
    query = query.partition("#")[0]
    nodes: list[tuple[str, int]] = []
    for item in hosts_text.split(","):
        host, colon, port_text = item.strip().rpartition(":")
        if not colon:
            host, port_text = port_text, "6379"
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConnectionURLError(
                f"Redis Cluster URL {redact_url(text)!r} needs startup nodes as host:port "
                "separated by commas, e.g. redis+cluster://10.0.0.1:7000,10.0.0.2:7000/")
        nodes.append((host.strip("[]"), int(port_text)))
    database = unquote(path.strip("/")) or "0"
    base = CLUSTER_SCHEMES[scheme]
    single = f"{base}://{userinfo}{nodes[0][0]}:{nodes[0][1]}/0" + (
        f"?{query}" if query else "")
    options = _check_query_options(single, base, query)
    if _parse_db(database, text) != 0 or options.get("db", 0) != 0:
        raise ConnectionURLError(f"Redis Cluster has database 0 only; {redact_url(text)!r} "
                                 "names another")
    return Target(scheme, nodes[0][0], nodes[0][1], 0, redact_url(text), tuple(nodes))


def _parse_db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ConnectionURLError(f"database {text!r} in {redact_url(url)!r} must be a number")
    return int(text)


#: Options given as plain text that a URL may carry besides the ones redis-py converts
#: (``URL_QUERY_ARGUMENT_PARSERS``); redis-py passes any other name through as a string,
#: which its constructors reject (TypeError) or misread (``decode_responses=false`` is a
#: true string, ``retry=...`` is not a Retry object).
_TEXT_OPTIONS = frozenset({
    "username", "password", "client_name", "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs",
    "ssl_ca_certs", "ssl_ca_data", "ssl_ca_path", "ssl_password", "ssl_ciphers"})
#: In redis-py's table, but parsed as ``list(text)``: a list of characters, not errors.
_REFUSED_OPTIONS = frozenset({"retry_on_error"})
#: Numbers that must be above zero (0 would make the socket non-blocking or read nothing).
_POSITIVE_OPTIONS = frozenset({"socket_timeout", "socket_connect_timeout", "socket_read_size"})
_EXPECTED: dict[Any, str] = {int: "a whole number", float: "a number"}


@cache
def _accepted_options(scheme: str) -> frozenset[str]:
    """Query options both the sync and the asyncio client take for ``scheme``."""
    def parameters(*classes: type) -> set[str]:
        names: set[str] = set()
        for cls in classes:
            for klass in cls.__mro__:
                init = klass.__dict__.get("__init__")
                if init is not None:
                    names.update(inspect.signature(inspect.unwrap(init)).parameters)
        return names

    sync_class, async_class = {
        "redis": (redis.connection.Connection, redis.asyncio.connection.Connection),
        "rediss": (redis.connection.SSLConnection, redis.asyncio.connection.SSLConnection),
        "unix": (redis.connection.UnixDomainSocketConnection,
                 redis.asyncio.connection.UnixDomainSocketConnection),
    }[scheme]
    known = (parameters(sync_class, redis.connection.ConnectionPool)
             & parameters(async_class, redis.asyncio.connection.ConnectionPool))
    usable = set(redis.connection.URL_QUERY_ARGUMENT_PARSERS) | _TEXT_OPTIONS
    return frozenset((known & usable) - _REFUSED_OPTIONS)


def _check_query_options(url: str, scheme: str, query: str) -> dict[str, Any]:
    """redis-py's reading of the URL's options; :class:`ConnectionURLError` names a bad one.

    The query is read as redis-py reads it (``parse_qs``, first value of a repeated name),
    values are converted by redis-py's own table and, last, by its ``parse_url`` itself.
    Values are quoted in messages, except those of text options (passwords among them).
    """
    redacted = redact_url(url)
    accepted = _accepted_options(scheme)
    parsers = redis.connection.URL_QUERY_ARGUMENT_PARSERS
    options = {name: values[0] for name, values in parse_qs(query).items() if values}
    for name, text in options.items():
        if name not in accepted:
            hint = " (TLS options need a rediss:// URL)" if name.startswith("ssl_") else ""
            raise ConnectionURLError(
                f"Redis URL option {name[:40]!r} is not supported in {scheme}:// URLs{hint}; "
                f"known options: {', '.join(sorted(accepted))}")
        parser = parsers.get(name)
        if not callable(parser):  # None: redis-py passes the text through
            continue
        try:
            parser(text)
        except (TypeError, ValueError):
            expected = _EXPECTED.get(parser, "a value redis-py accepts")
            raise ConnectionURLError(
                f"Redis URL option {name}={text[:40]!r} is invalid: expected {expected} "
                f"(in {redacted!r})") from None
    try:
        parsed: dict[str, Any] = redis.connection.parse_url(url)
    except ValueError:  # its message is not shown: it could quote part of the password
        raise ConnectionURLError(f"Redis URL {redacted!r} is not accepted by redis-py: "
                                 "check its options") from None
    for name in options:
        value = parsed.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value) or value < 0 or (value == 0 and name in _POSITIVE_OPTIONS):
            lowest = "above 0" if name in _POSITIVE_OPTIONS else "of 0 or more"
            raise ConnectionURLError(
                f"Redis URL option {name}={options[name][:40]!r} is invalid: expected "
                f"a finite number {lowest} (in {redacted!r})")
    return {name: parsed[name] for name in options if name in parsed}


def _fakeredis() -> ModuleType:
    """fakeredis, imported on first use of a ``memory://`` URL: the bot never pays for the
    import. Missing, :class:`~memory_core.extras.MissingExtra` names the ``[demo]`` extra."""
    return extras.require("fakeredis", "demo", "a memory:// store")


def _fake_server(name: str) -> Any:
    fakeredis = _fakeredis()
    with _fake_servers_lock:
        server = _fake_servers.get(name)
        if server is None:
            server = _fake_servers[name] = fakeredis.FakeServer()
        return server


class _DeadlineSocket:
    """A connected socket whose reads, while a reply is read, share one deadline.

    Outside a reply (and for every call but ``recv``/``recv_into``) it is the socket
    itself: :func:`_wrap_socket` gives it every public attribute of the wrapped socket's
    class, so redis-py's health checks (``fileno`` for poll, ``pending`` on TLS only,
    ``recv(1, MSG_PEEK)``), ``sendall``, ``shutdown`` and ``close`` behave as before.
    During a reply the first read runs with the socket's own timeout, which starts the
    clock; each later read waits at most the time left, and one that would start after
    the deadline raises ``TimeoutError`` (``socket.timeout``), which redis-py turns into
    ``redis.TimeoutError`` and a disconnect, as for a plain timeout. A reply that arrives
    in one read costs a clock reading and no system call.
    """

    __slots__ = ("_deadline", "_limit", "_shortened", "_sock", "_timeout", "fileno", "sendall")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()  # as last set by redis-py
        self._limit: float | None = None  # seconds for the reply being read, None: idle
        self._deadline: float | None = None  # set by the reply's first read
        self._shortened = False  # the socket's timeout is, for now, below _timeout
        # called once or more per command: the socket's own methods, no Python frame
        self.fileno = sock.fileno
        self.sendall = sock.sendall

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._sock!r}>"

    def settimeout(self, value: float | None) -> None:
        self._sock.settimeout(value)
        self._timeout = self._sock.gettimeout()
        self._shortened = False

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)
        self._timeout = self._sock.gettimeout()
        self._shortened = False

    def gettimeout(self) -> float | None:
        return self._timeout

    # The arguments go through untouched: ssl.SSLSocket.recv_into reads nothing when
    # given nbytes=0 explicitly, where socket.socket reads the whole buffer.
    def recv(self, *args: Any) -> bytes:
        if self._limit is not None:
            self._before_read()
        return self._sock.recv(*args)

    def recv_into(self, *args: Any) -> int:
        if self._limit is not None:
            self._before_read()
        return self._sock.recv_into(*args)

    def begin_reply(self, limit_seconds: float) -> bool:
        """Start the deadline of one reply; False when a reply is being read already."""
        if self._limit is not None:
            return False
        self._limit = limit_seconds
        self._deadline = None
        return True

    def end_reply(self) -> None:
        self._limit = None
        if self._shortened:
            self._shortened = False
            with contextlib.suppress(OSError):  # closed by the disconnect after a timeout
                self._sock.settimeout(self._timeout)

    def _before_read(self) -> None:
        """Give the coming read at most the time left until the reply's deadline."""
        limit = self._limit
        assert limit is not None
        timeout = self._timeout
        if self._deadline is None:  # the reply's first read starts the clock
            self._deadline = time.monotonic() + limit
            left = limit
        else:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")  # what socket.timeout is since Python 3.10
        if timeout is not None and timeout <= left:
            if self._shortened:
                self._sock.settimeout(timeout)
                self._shortened = False
            return
        self._sock.settimeout(left)
        self._shortened = True


def _delegated(name: str) -> property:
    return property(lambda self: getattr(self._sock, name), doc=f"The socket's {name}.")


@cache
def _deadline_socket_class(socket_class: type) -> type[_DeadlineSocket]:
    """A :class:`_DeadlineSocket` with the public attributes of ``socket_class``.

    Explicit properties rather than ``__getattr__``: redis-py asks ``hasattr(sock,
    "pending")`` before every command, and a miss through ``__getattr__`` costs ~1.4 us.
    """
    delegated = {name: _delegated(name) for name in dir(socket_class)
                 if not name.startswith("_") and not hasattr(_DeadlineSocket, name)}
    return type(f"_DeadlineSocket_{socket_class.__name__}", (_DeadlineSocket,),
                {"__slots__": (), **delegated})


def _wrap_socket(sock: socket.socket) -> _DeadlineSocket:
    # as a plain ``type``: mypy reads ``type[socket]`` against Hashable through socket's
    # own ``__hash__`` (an instance method) and refuses the class as a cache key
    socket_class: type = type(sock)
    return _deadline_socket_class(socket_class)(sock)


#: How long one reply may take while a cluster client starts: redis-py asks a node for
#: ``COMMAND`` (240 entries, ~80 ms on an idle loopback node), which a 0.5 s reply
#: deadline meant for the bot's GET and SET refused on a busy 2-CPU machine.
_START_UP_REPLY_SECONDS = 3.0


class _StartUp(threading.local):
    patient = False  # the class attribute: False in every thread until one sets it


_start_up = _StartUp()


@contextlib.contextmanager
def _patient_start_up() -> Any:
    """Replies read by this thread meanwhile get :data:`_START_UP_REPLY_SECONDS` at least."""
    _start_up.patient = True
    try:
        yield
    finally:
        _start_up.patient = False


class _ReplyDeadline:
    """Mixin for redis-py's sync connection classes: one deadline per reply.

    ``_connect`` wraps the socket in a :class:`_DeadlineSocket`; ``read_response`` gives
    the reply ``socket_timeout`` (or the call's own ``timeout``) in total. Without a
    timeout (None or 0) nothing changes.
    """

    _sock: Any
    socket_timeout: float | None

    def _connect(self) -> Any:
        return _wrap_socket(super()._connect())  # type: ignore[misc]

    def read_response(self, disable_decoding: bool = False, *,
                      timeout: float | object | None = SENTINEL,
                      disconnect_on_error: bool = True, push_request: bool = False) -> Any:
        sock = self._sock
        # SENTINEL stands for "the socket's timeout"; redis-py's callers pass seconds or None
        limit = self.socket_timeout if timeout is SENTINEL else cast("float | None", timeout)
        if _start_up.patient and limit:  # each read of the reply gets as long too
            limit = timeout = max(limit, _START_UP_REPLY_SECONDS)
        timed = (limit is not None and limit > 0
                 and isinstance(sock, _DeadlineSocket) and sock.begin_reply(limit))
        try:
            return super().read_response(  # type: ignore[misc]
                disable_decoding, timeout=timeout, disconnect_on_error=disconnect_on_error,
                push_request=push_request)
        finally:
            if timed:
                sock.end_reply()


class ReplyDeadlineConnection(_ReplyDeadline, redis.connection.Connection):
    """TCP (``redis://``) with one deadline per reply."""


class ReplyDeadlineSSLConnection(_ReplyDeadline, redis.connection.SSLConnection):
    """TLS (``rediss://``) with one deadline per reply."""


class ReplyDeadlineUnixDomainSocketConnection(_ReplyDeadline,
                                              redis.connection.UnixDomainSocketConnection):
    """Unix socket (``unix://``) with one deadline per reply."""


#: ``connection_class`` given to ``from_url`` replaces the scheme's class, so pick it here.
_SYNC_CONNECTION_CLASSES: dict[str, type[redis.connection.Connection
                                         | redis.connection.UnixDomainSocketConnection]] = {
    "redis": ReplyDeadlineConnection,
    "rediss": ReplyDeadlineSSLConnection,
    "unix": ReplyDeadlineUnixDomainSocketConnection,
}


def _client_options(config: MemoryConfig) -> dict[str, Any]:
    return {
        "socket_timeout": config.socket_timeout_seconds,
        "socket_connect_timeout": config.socket_connect_timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": False,
        "max_connections": config.max_connections,
    }


def connect(url: str, config: MemoryConfig | None = None, *,
            detect_cluster: bool = False) -> Any:
    """A sync client for ``url`` (the connection opens lazily, on first command).

    ``redis.cluster.RedisCluster`` for a ``redis+cluster://`` URL, and for a ``redis://``
    or ``rediss://`` URL of a cluster node when ``detect_cluster`` is set (one
    ``INFO cluster`` now; a server that does not answer keeps the single-node client).
    """
    target = parse_target(url)
    config = config or MemoryConfig()
    if target.is_demo:
        return _fakeredis().FakeRedis(server=_fake_server(target.host))
    if target.is_cluster or (detect_cluster and _is_cluster_node(url, target, config)):
        return _cluster_client(url, target, config, asyncio_client=False)
    connection_class = _SYNC_CONNECTION_CLASSES[target.scheme]
    return redis.Redis.from_url(normalise_url(url.strip()),
                                connection_class=connection_class,
                                **_client_options(config))


def connect_async(url: str, config: MemoryConfig | None = None, *,
                  detect_cluster: bool = False) -> Any:
    """An asyncio client for ``url`` (``redis.asyncio.cluster.RedisCluster`` for a
    cluster, as :func:`connect` decides; the detection's one probe is synchronous)."""
    target = parse_target(url)
    config = config or MemoryConfig()
    if target.is_demo:
        return _fakeredis().FakeAsyncRedis(server=_fake_server(target.host))
    if target.is_cluster or (detect_cluster and _is_cluster_node(url, target, config)):
        return _cluster_client(url, target, config, asyncio_client=True)
    return redis.asyncio.Redis.from_url(normalise_url(url.strip()),
                                        **_client_options(config))


def is_cluster_client(client: Any) -> bool:
    """Whether ``client`` is one of redis-py's cluster clients (sync or asyncio)."""
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster
                      | DeferredClusterClient)


class ClusterClient(redis.cluster.RedisCluster):
    """redis-py's sync cluster client, where DBSIZE and KEYS cover the whole keyspace
    (every primary, summed or merged) instead of one node chosen at random."""

    def dbsize(self, **kwargs: Any) -> Any:
        kwargs.setdefault("target_nodes", self.PRIMARIES)
        return super().dbsize(**kwargs)

    def keys(self, pattern: Any = "*", **kwargs: Any) -> Any:
        kwargs.setdefault("target_nodes", self.PRIMARIES)
        return super().keys(pattern, **kwargs)

    def info(self, section: Any = None, *args: Any, **kwargs: Any) -> Any:
        """INFO of every primary, merged: whole numbers (used_memory, key counts) summed,
        anything else (version, ratios) as the first primary says; ``primaries`` is how
        many answered. With ``target_nodes`` given, redis-py's reply as it is."""
        if "target_nodes" in kwargs:
            return super().info(section, *args, **kwargs)
        replies = super().info(section, *args, target_nodes=self.PRIMARIES, **kwargs)
        if not isinstance(replies, dict) or not all(isinstance(v, dict)
                                                    for v in replies.values()):
            return replies
        return {**merge_node_info(list(replies.values())), "primaries": len(replies)}


def merge_node_info(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """Several nodes' INFO as one: whole numbers summed (nested ones too), else the first."""
    merged: dict[str, Any] = {}
    for reply in replies:
        for name, value in reply.items():
            if name not in merged:
                merged[name] = dict(value) if isinstance(value, dict) else value
                continue
            current = merged[name]
            if isinstance(value, dict) and isinstance(current, dict):
                merged[name] = merge_node_info([current, value])
            elif (type(value) is int and type(current) is int):
                merged[name] = current + value
    return merged


class AsyncClusterClient(redis.asyncio.cluster.RedisCluster):
    """redis-py's asyncio cluster client, DBSIZE and KEYS over every primary."""

    async def dbsize(self, **kwargs: Any) -> Any:
        kwargs.setdefault("target_nodes", self.PRIMARIES)
        return await super().dbsize(**kwargs)

    async def keys(self, pattern: Any = "*", **kwargs: Any) -> Any:
        kwargs.setdefault("target_nodes", self.PRIMARIES)
        return await super().keys(pattern, **kwargs)


def _node_options(url: str, target: Target) -> dict[str, Any]:
    """What redis-py reads from the URL for each node (credentials, options), host aside."""
    base = CLUSTER_SCHEMES.get(target.scheme, target.scheme)
    clean = normalise_url(url.strip())
    if target.is_cluster:
        rest = clean.partition("://")[2]
        end = _userinfo_end(target.scheme, rest)
        userinfo = rest[:end + 1] if end >= 0 else ""
        query = rest.partition("?")[2].partition("#")[0]
        clean = f"{base}://{userinfo}{target.host}:{target.port}/0" + (
            f"?{query}" if query else "")
    options: dict[str, Any] = redis.connection.parse_url(clean)
    for name in ("host", "port", "db", "path", "connection_class"):
        options.pop(name, None)
    return options


def _cluster_client(url: str, target: Target, config: MemoryConfig, *,
                    asyncio_client: bool) -> Any:
    """redis-py's cluster client with the startup nodes, timeouts and pool size of
    ``config``; no retries of our own (the circuit breaker takes over), as for a node."""
    options = {**_client_options(config), **_node_options(url, target)}
    options.pop("retry", None)  # a cluster client takes its retry as its own argument
    nodes = target.nodes or ((target.host, target.port or 6379),)
    tls = target.tls
    if asyncio_client:
        options.pop("ssl", None)
        return AsyncClusterClient(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port)
                           for host, port in nodes],
            retry=redis.asyncio.retry.Retry(NoBackoff(), 0), ssl=tls, **options)
    # Given a URL (the first node's address only), redis-py builds each node's pool with
    # our connection class: the sync cluster gets the one-deadline-per-reply reads too.
    options.pop("ssl", None)

    def start() -> ClusterClient:
        with _patient_start_up():
            return ClusterClient(
                url=f"redis://{nodes[0][0]}:{nodes[0][1]}/0",
                startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in nodes],
                retry=Retry(NoBackoff(), 0),
                connection_class=(ReplyDeadlineSSLConnection if tls
                                  else ReplyDeadlineConnection),
                **options)

    try:
        return start()
    except _CLUSTER_START_FAULTS as exc:
        # redis-py's sync cluster client asks the nodes as it is built: a bot starting
        # while the cluster is down must still start, as it does with a single node
        logger.warning("%s: no cluster node answered (%s); trying again on first use",
                       target.redacted_url, type(exc).__name__)
        return DeferredClusterClient(start)


_CLUSTER_START_FAULTS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)


class DeferredClusterClient:
    """A sync cluster client that could not start: each use tries to start it again.

    Until one start succeeds, every use raises ``redis.ConnectionError`` (what a single
    node's lazy client raises when it is down), so callers see "Redis unreachable" and
    the store's circuit breaker paces the attempts. Then it forwards to the real client.
    """

    def __init__(self, start: Any) -> None:
        self._start = start
        self._client: ClusterClient | None = None
        self._lock = threading.Lock()

    def _started(self) -> ClusterClient:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = self._start()
                    except _CLUSTER_START_FAULTS as exc:
                        raise redis.ConnectionError(
                            f"no Redis Cluster node answered: {exc}") from exc
                client = self._client
        return client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._started(), name)

    def get_connection_kwargs(self) -> dict[str, Any]:
        """What the store checks before use: replies stay bytes, as for the real client."""
        return {"decode_responses": False}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _is_cluster_node(url: str, target: Target, config: MemoryConfig) -> bool:
    """One ``INFO cluster`` on a ``redis://``/``rediss://`` URL: ``cluster_enabled:1``?

    A server that cannot be asked (down, hung, refusing the credentials) is taken for a
    single node: the usual client then reports the fault where it is used.
    """
    if target.scheme not in ("redis", "rediss"):
        return False
    probe = redis.Redis.from_url(normalise_url(url.strip()),
                                 connection_class=_SYNC_CONNECTION_CLASSES[target.scheme],
                                 **{**_client_options(config), "max_connections": 1})
    try:
        enabled = bool(probe.info("cluster").get("cluster_enabled"))
    except CONNECTION_FAILURES:
        return False
    finally:
        probe.close()
    if enabled:
        logger.info("%s is a Redis Cluster node: using the cluster client",
                    target.redacted_url)
    return enabled


# What went wrong, for people --------------------------------------------------------

#: The kinds of :class:`ConnectionProblem`, from "nothing answered" to "it answered no".
PROBLEM_KINDS = ("unreachable", "timeout", "credentials_refused", "password_required",
                 "password_not_set", "no_such_database", "permission", "loading",
                 "server_error")
#: What to catch around a first command to hand it to :func:`describe_connection_error`:
#: a refused SELECT or NOPERM is a ``ResponseError``, not a connection fault.
CONNECTION_FAILURES = (redis.RedisError, OSError)
_SERVER_TEXT_CHARS = 300


@dataclass(frozen=True)
class ConnectionProblem:
    """Why a Redis cannot be used, in words for the person who configured it.

    Plain text (the caller escapes it for its screen); never holds the password: the URL
    is redacted, and the server's reply is scrubbed of it should it be echoed.
    """

    kind: str  # one of PROBLEM_KINDS
    headline: str  # what went wrong, one line
    detail: str  # what was tried and what Redis (or the network) said
    steps: tuple[str, ...]  # what to do about it
    where: str  # the redacted URL
    user: str | None  # the user named in the URL (None: Redis's "default" user)


def describe_connection_error(exc: BaseException, url: str | None) -> ConnectionProblem:
    """Map a failure of the first commands on ``url`` to a :class:`ConnectionProblem`.

    ``exc`` may be redis-py's exception or a :class:`~memory_core.errors.StoreUnavailable`
    raised from one; the redis-py exception decides the kind. Redis saying no (wrong
    credentials, no such database, no permission) is told apart from Redis not
    answering, because each needs a different fix.
    """
    fault = _redis_fault(exc)
    where, user, password, db = _url_facts(url)
    reply = _scrub(str(fault), password)[:_SERVER_TEXT_CHARS]
    status = str(getattr(fault, "status_code", None) or "")
    who = f'user "{user}"' if user else 'the "default" user'

    def problem(kind: str, headline: str, detail: str, *steps: str) -> ConnectionProblem:
        return ConnectionProblem(kind, headline, detail, steps, where, user)

    if isinstance(fault, redis.exceptions.AuthenticationWrongNumberOfArgsError):
        return problem(
            "credentials_refused", f"Redis refused the credentials of {who}",
            f"Redis answered, and rejected the sign-in: it takes a password only, no user "
            f"name (a Redis before 6 has no ACL users). Redis said: {reply}",
            "Remove the user name from the URL and keep the password: "
            "redis://:PASSWORD@host:port/db.")
    if isinstance(fault, redis.AuthenticationError):
        lowered = reply.lower()
        if status == "NOAUTH" or "hello must be called" in lowered or (
                "authentication required" in lowered):
            return problem(
                "password_required", "Redis requires a password, and none was given",
                f"Redis answered, and refuses every command until the client signs in; "
                f"the URL gives no password for {who}.",
                "Add the password to the URL: redis://USER:PASSWORD@host:port/db (or "
                "redis://:PASSWORD@host:port/db for the default user); write special "
                "characters in it as %XX.")
        if "without any password configured" in lowered or "no password is set" in lowered:
            return problem(
                "password_not_set", "Redis has no password, and the URL gives one",
                f"Redis answered, and refused the sign-in of {who}: no password is set "
                f"on the server. Redis said: {reply}",
                "Remove the password from the URL, or set one on the server "
                "(requirepass, or ACL SETUSER).")
        return problem(
            "credentials_refused", f"Redis refused the credentials of {who}",
            f"Redis answered, and refused the user name and password given for {who}. "
            f"Redis said: {reply}",
            f"Check the password of {who} in the URL (redis://USER:PASSWORD@host:port/db); "
            "write special characters in it as %XX.",
            "Check on the server that the user exists and is enabled: ACL GETUSER "
            + (user or "default") + ".")
    if isinstance(fault, redis.exceptions.NoPermissionError):
        return problem(
            "permission", f"Redis accepted {who}, but refuses it a command the "
            "dashboard needs",
            f"Redis said: {reply}",
            f"Give {who} the commands and keys the dashboard uses (ACL SETUSER), or use "
            "a user that has them.")
    if isinstance(fault, redis.exceptions.BusyLoadingError):
        return problem(
            "loading", "Redis is loading its data",
            "Redis answered, and is still loading its data set into memory; it serves "
            "commands once loading is done.",
            "Retry in a moment.")
    if isinstance(fault, redis.TimeoutError):
        return problem(
            "timeout", "Redis did not answer in time",
            f"A connection was attempted, and no answer came before the timeout. "
            f"Error: {reply}",
            "Check that the server is not overloaded or blocked by a slow command "
            "(redis-cli --latency).",
            "Check that a firewall does not drop the traffic, and that TLS matches the "
            "server: rediss:// for a TLS port, redis:// otherwise.")
    if isinstance(fault, redis.ResponseError):
        lowered = reply.lower()
        if "db index is out of range" in lowered or "select is not allowed" in lowered \
                or "invalid db index" in lowered:
            return problem(
                "no_such_database", f"Redis has no database {db}",
                f"Redis answered, and refused to select database {db}. Redis said: {reply}",
                "Use a database that exists: 0 to 15 on a server with default settings "
                "(the databases setting of redis.conf); Redis Cluster, and many hosted "
                "Redis services, have database 0 only.")
        return problem(
            "server_error", "Redis answered with an error",
            f"Redis said: {reply}",
            "Check the server's log and settings; retry once it is fixed.")
    if isinstance(fault, redis.ConnectionError | OSError):
        return problem(
            "unreachable", "Cannot reach Redis",
            f"No connection could be made. Error: {reply}",
            "Check that the server runs and accepts connections from this host "
            "(redis-cli -u URL ping).",
            "Check the host, the port and TLS in the URL: rediss:// for a TLS port, "
            "redis:// otherwise.")
    return problem("server_error", "Redis could not be used",
                   f"{type(fault).__name__}: {reply}",
                   "Check the server's log and settings; retry once it is fixed.")


def _redis_fault(exc: BaseException) -> BaseException:
    """The redis-py (or socket) exception behind ``exc``: the first one in its chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CONNECTION_FAILURES):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return exc


def _url_facts(url: str | None) -> tuple[str, str | None, str | None, int]:
    """(redacted URL, user name, password, database) of ``url``, as redis-py reads it."""
    if not url:
        return "the configured Redis", None, None, 0
    where = redact_url(url)
    try:
        target = parse_target(url)
        options = redis.connection.parse_url(normalise_url(url.strip()))
    except (ConnectionURLError, ValueError):
        return where, None, None, 0
    user = options.get("username") or None
    password = options.get("password") or None
    return target.redacted_url, user, password, target.db


def _scrub(text: str, password: str | None) -> str:
    """``text`` without ``password`` in any form a server or library might echo."""
    if password:
        for form in {password, quote(password, safe=""), quote(password)}:
            text = text.replace(form, "***")
    return text
