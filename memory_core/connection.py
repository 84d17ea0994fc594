"""Redis clients from a URL: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``memory://``.

``memory://<name>`` is an embedded fakeredis store living in this process, shared by
every client opened on the same name (sync and async alike): for demos and quick tries,
never for production. Clients are built with short timeouts and no automatic retries,
because the memory must fail fast and let the circuit breaker take over. URLs shown to
people go through :func:`redact_url` so passwords never reach a log or a screen.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from memory_core.config import MemoryConfig
from memory_core.errors import ConnectionURLError

REDIS_URL_ENV = "REDIS_URL"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
SCHEMES = ("redis", "rediss", "unix", "memory")

_PASSWORD_PARAMETER = re.compile(r"(?i)([?&]password=)[^&#]*")
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

    @property
    def is_demo(self) -> bool:
        return self.scheme == "memory"

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"

    @property
    def label(self) -> str:
        if self.is_demo:
            return f"embedded demo store ({self.host})"
        if self.scheme == "unix":
            return f"unix socket {self.host} db {self.db}"
        return f"{self.host}:{self.port} db {self.db}" + (" (TLS)" if self.tls else "")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``.

    Works on the text, not on a parse, so a password holding an unescaped ``#``, ``?`` or
    ``/`` (which confuses URL parsers) is still hidden: everything between ``user:`` and
    the last ``@`` goes, and so does a ``password=`` query parameter, which redis-py reads.
    """
    if not isinstance(url, str):
        return "<not a URL>"
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "<unparseable URL>" if "@" in url or "password" in url.lower() else url
    userinfo, at, host_and_path = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:***@{host_and_path}" if colon else f"***@{host_and_path}"
    rest = _PASSWORD_PARAMETER.sub(r"\1***", rest)
    return f"{scheme}://{rest}"


def parse_target(url: str) -> Target:
    """Validate a URL and describe it; :class:`ConnectionURLError` says what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise ConnectionURLError("Redis URL is empty; set REDIS_URL or pass --redis-url, "
                                 "e.g. redis://localhost:6379/0")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # the parser's message can quote part of the password: not shown
        raise ConnectionURLError(
            f"Redis URL {redact_url(url)!r} is malformed: check the host and port, and write "
            "special characters in the password as %XX (e.g. %23 for #)") from None
    if parts.scheme not in SCHEMES:
        raise ConnectionURLError(
            f"Redis URL scheme {parts.scheme!r} is not supported; use one of "
            + ", ".join(f"{s}://" for s in SCHEMES))
    if parts.scheme == "memory":
        name = (parts.netloc + parts.path).strip("/") or "default"
        return Target("memory", name, None, 0, f"memory://{name}")
    if parts.scheme == "unix":
        if not parts.path:
            raise ConnectionURLError("unix:// URL needs a socket path, e.g. "
                                     "unix:///run/redis/redis.sock?db=0")
        db_text = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("db", "0")
        return Target("unix", parts.path, None, _parse_db(db_text, url), redact_url(url))
    db_text = unquote(parts.path.lstrip("/")) or "0"
    return Target(parts.scheme, parts.hostname or "localhost", port or 6379,
                  _parse_db(db_text, url), redact_url(url))


def _parse_db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ConnectionURLError(f"database {text!r} in {redact_url(url)!r} must be a number")
    return int(text)


def _fake_server(name: str) -> Any:
    import fakeredis  # only demos need it; the bot never pays for the import

    with _fake_servers_lock:
        server = _fake_servers.get(name)
        if server is None:
            server = _fake_servers[name] = fakeredis.FakeServer()
        return server


def _client_options(config: MemoryConfig) -> dict[str, Any]:
    return {
        "socket_timeout": config.socket_timeout_seconds,
        "socket_connect_timeout": config.socket_connect_timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": False,
    }


def connect(url: str, config: MemoryConfig | None = None) -> redis.Redis:
    """A sync client for ``url`` (the connection opens lazily, on first command)."""
    target = parse_target(url)
    if target.is_demo:
        import fakeredis

        return fakeredis.FakeRedis(server=_fake_server(target.host))
    return redis.Redis.from_url(url.strip(), **_client_options(config or MemoryConfig()))


def connect_async(url: str, config: MemoryConfig | None = None) -> redis.asyncio.Redis:
    """An asyncio client for ``url``."""
    target = parse_target(url)
    if target.is_demo:
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=_fake_server(target.host))
    return redis.asyncio.Redis.from_url(url.strip(), **_client_options(config or MemoryConfig()))
