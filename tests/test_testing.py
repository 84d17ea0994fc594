"""memory_core.testing: a private redis-server that can be stopped and started again."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from memory_core.testing import RedisServer, start_private_server

pytestmark = pytest.mark.real_redis  # counted in the CI tally of real-Redis tests


@pytest.fixture
def server(tmp_path: Path, redis_binary: str) -> Iterator[RedisServer]:
    started = start_private_server(tmp_path)
    try:
        yield started
    finally:
        started.stop()


def ping(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2,
                         socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    finally:
        client.close()


def refuses_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
    return False


def test_start_private_server_answers_ping_on_its_own_port(server: RedisServer,
                                                           tmp_path: Path) -> None:
    assert server.running
    assert server.port != 6379
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    assert server.directory == tmp_path
    assert ping(server.port)


def test_stop_then_start_again(server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url, socket_timeout=2)
    try:
        client.set("k", "v")
    finally:
        client.close()
    server.stop()
    assert not server.running
    assert refuses_connections(server.port)
    with pytest.raises(redis.ConnectionError):
        ping(server.port)
    server.stop()  # stopping a stopped server is harmless

    server.start()
    assert server.running
    assert ping(server.port)
    client = redis.Redis.from_url(server.url, socket_timeout=2)
    try:
        assert client.get("k") is None  # no persistence: a restart starts empty
    finally:
        client.close()


def test_two_private_servers_do_not_share_a_port(server: RedisServer, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = start_private_server(other_dir)
    try:
        assert other.port != server.port
        assert ping(other.port) and ping(server.port)
    finally:
        other.stop()
    assert ping(server.port)
