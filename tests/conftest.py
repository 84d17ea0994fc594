"""Shared fixtures: a private redis-server, per-test fake stores, and the real-Redis tally.

Behaviour tests take ``store_url`` and run twice: on an embedded fakeredis store
(``memory://``) and on a redis-server this suite starts itself on a free port, never
the machine's shared one. At the end of the session a line
``real-redis tests: N passed, M skipped`` is written for CI, which fails when M > 0, and
the same line for the tests marked ``browser`` (``browser tests: N passed, M skipped``),
and for the tests on the private Redis Cluster (``cluster tests: N passed, M skipped``):
three primaries with a replica each, started once per session, every primary flushed
before each test that uses it.
"""

from __future__ import annotations

import gc
import os
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest
import redis
import zstandard

from memory_core.connection import connect
from memory_core.dictionaries import train_dictionary
from memory_core.state import dump_json, prepare_state
from memory_core.store import SyncBuyerConversationMemory
from memory_core.testing import (
    RedisClusterServer,
    RedisServer,
    free_port,
    redis_cli_binary,
    redis_server_binary,
)

REAL_REDIS_MARK = "real_redis"
BROWSER_MARK = "browser"
CLUSTER_MARK = "redis_cluster"
_REAL_FIXTURES = ("redis_binary", "redis_server", "real_redis_url")
_CLUSTER_FIXTURES = ("redis_cluster", "cluster_url")


@pytest.fixture
def without_gc_pauses() -> Iterator[None]:
    """No garbage collection during a test whose budget is the product's 0.5 s timeouts.

    After a thousand tests this process holds a large heap, and one full collection in
    the middle of a burst stalls the event loop past a connect timeout: that would be a
    pause of the test suite, not of memory_core, so it is collected before and not during.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """The redis-server binary; skips the test without one, and fails it on CI."""
    binary = redis_server_binary()
    if binary is None:
        message = "redis-server is not installed; the real-Redis tests cannot run"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: real-Redis tests must never be skipped)")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory,
                 redis_binary: str) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, free_port(), tmp_path_factory.mktemp("redis-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def real_redis_url(redis_server: RedisServer, request: pytest.FixtureRequest) -> str:
    request.node.add_marker(REAL_REDIS_MARK)
    if not redis_server.running:  # a fault test that failed to restart it
        redis_server.start()
    redis_server.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory,
                  redis_binary: str) -> Iterator[RedisClusterServer]:
    """A private Redis Cluster: 3 primaries, 1 replica each, on free loopback ports."""
    if redis_cli_binary() is None:
        message = "redis-cli is not installed; the cluster tests cannot run"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: cluster tests must never be skipped)")
        pytest.skip(message)
    cluster = RedisClusterServer(redis_binary, tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterServer, request: pytest.FixtureRequest) -> str:
    """The cluster's ``redis+cluster://`` URL, every primary flushed."""
    request.node.add_marker(CLUSTER_MARK)
    request.node.add_marker(REAL_REDIS_MARK)
    for node in redis_cluster.nodes:
        if not node.running:  # a failover test that failed to bring its node back
            node.start()
    redis_cluster.wait_until_ok()
    redis_cluster.flushall()
    return redis_cluster.url


@pytest.fixture(params=["standalone", "cluster"])
def any_real_url(request: pytest.FixtureRequest) -> str:
    """A real Redis: the private standalone server, then the private cluster."""
    if request.param == "cluster":
        return str(request.getfixturevalue("cluster_url"))
    return str(request.getfixturevalue("real_redis_url"))


@pytest.fixture
def fake_url() -> str:
    return f"memory://test-{uuid.uuid4().hex}"


@pytest.fixture(params=["fake", "real", "cluster"])
def store_url(request: pytest.FixtureRequest) -> str:
    """An embedded fakeredis store, the private redis-server, then the private cluster."""
    if request.param == "real":
        return str(request.getfixturevalue("real_redis_url"))
    if request.param == "cluster":
        return str(request.getfixturevalue("cluster_url"))
    return str(request.getfixturevalue("fake_url"))


_PHRASES = (
    "Hi, I'm looking for a 3 bedroom house near downtown with a garden.",
    "What is your budget range and are you pre-approved for a mortgage?",
    "We are pre-approved up to $450,000 with a local credit union.",
    "Great! Are you hoping to move in the next three months?",
    "Yes, our lease ends in June so we need to move quickly.",
    "I can schedule viewings this weekend for the Maple Street listing.",
    "Is the school district good? We have two kids in elementary school.",
    "The HOA fee is $250 a month and covers the pool and landscaping.",
)


class BuyerStateFactory(Protocol):
    def __call__(self, seed: int, messages: int = 30) -> dict[str, Any]: ...


def buyer_state(seed: int, messages: int = 30) -> dict[str, Any]:
    """A realistic, varied buyer state (deterministic for a seed); ~100 bytes per message."""
    rng = random.Random(seed)
    history = [
        {"role": "user" if j % 2 else "assistant",
         "content": f"{rng.choice(_PHRASES)} ({seed}-{j}-{rng.randint(0, 10**6)})",
         "timestamp": f"2024-05-{1 + j % 28:02d}T10:{j % 60:02d}:00+00:00"}
        for j in range(messages)
    ]
    return {
        "conversation_history": history,
        "buyer_persona": rng.choice(["first_time_buyer", "investor", "upsizer", "relocator"]),
        "buyer_temperature": rng.choice(["hot", "warm", "cold"]),
        "current_journey_stage": rng.choice(["discovery", "viewing", "offer"]),
        "budget_range": {"min": rng.randint(1, 5) * 100_000, "max": rng.randint(5, 9) * 100_000},
        "financial_readiness_score": round(rng.random() * 100, 2),
        "objection_history": rng.sample(["price", "location", "timing", "hoa"], 2),
        "is_qualified": rng.random() < 0.5,
        "buyer_name": f"Buyer Number{seed}",
        "buyer_phone": f"+1 555 {seed % 1000:03d} {rng.randint(1000, 9999)}",
        "buyer_email": f"buyer{seed}@example.com",
    }


@pytest.fixture
def make_buyer_state() -> BuyerStateFactory:
    return buyer_state


@pytest.fixture(scope="session")
def zstd_dictionaries() -> tuple[zstandard.ZstdCompressionDict, zstandard.ZstdCompressionDict]:
    """Two different dictionaries trained on 50 synthetic states each."""
    now = datetime(2024, 6, 1, tzinfo=UTC)

    def samples(first_seed: int) -> list[bytes]:
        return [dump_json(prepare_state(buyer_state(seed, messages=10 + seed % 30),
                                        max_history_messages=50, now=now))
                for seed in range(first_seed, first_seed + 50)]

    first = train_dictionary(samples(0), dict_size_bytes=16 * 1024)
    second = train_dictionary(samples(1000), dict_size_bytes=16 * 1024)
    assert first.dict_id() != second.dict_id()
    return first, second


def _uses_cluster(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("any_real_url") == "standalone":
        return False
    if any(name in getattr(item, "fixturenames", ()) for name in _CLUSTER_FIXTURES):
        return True
    return callspec is not None and (callspec.params.get("store_url") == "cluster"
                                     or callspec.params.get("any_real_url") == "cluster")


def _uses_real_redis(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "any_real_url" in callspec.params:
        return True
    if any(name in getattr(item, "fixturenames", ()) for name in _REAL_FIXTURES):
        return True
    return callspec is not None and callspec.params.get("store_url") in ("real", "cluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that talks to the private redis-server or the private cluster,
    before any of them runs."""
    for item in items:
        if _uses_real_redis(item) and item.get_closest_marker(REAL_REDIS_MARK) is None:
            item.add_marker(REAL_REDIS_MARK)
        if _uses_cluster(item) and item.get_closest_marker(CLUSTER_MARK) is None:
            item.add_marker(CLUSTER_MARK)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Tally real-Redis and browser tests: a test counts once, as passed or as skipped."""
    def tally(mark: str) -> tuple[int, int]:
        def ids(category: str) -> set[str]:
            return {report.nodeid for report in terminalreporter.stats.get(category, [])
                    if mark in getattr(report, "keywords", {})}

        passed, skipped = ids("passed"), ids("skipped")
        return len(passed), len(skipped - passed)

    passed, skipped = tally(REAL_REDIS_MARK)
    terminalreporter.write_line(f"real-redis tests: {passed} passed, {skipped} skipped")
    passed, skipped = tally(BROWSER_MARK)
    terminalreporter.write_line(f"browser tests: {passed} passed, {skipped} skipped")
    passed, skipped = tally(CLUSTER_MARK)
    terminalreporter.write_line(f"cluster tests: {passed} passed, {skipped} skipped")


@pytest.fixture
def raw(store_url: str) -> Iterator[redis.Redis]:
    """A plain client on the same store as ``memory``, to plant and inspect raw keys."""
    client = connect(store_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def real_raw(real_redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the private redis-server, for tests that run on real Redis only."""
    client = connect(real_redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def memory(store_url: str) -> Iterator[SyncBuyerConversationMemory]:
    """A sync memory with default settings on ``store_url`` (fakeredis, then real Redis)."""
    with SyncBuyerConversationMemory.from_url(store_url) as opened:
        yield opened


@pytest.fixture
def isolated_dashboard(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No dashboard or memory settings from the environment, fresh Streamlit caches, no
    sign-in lockout or remembered reveal left over from another test.

    st.cache_resource / st.cache_data are process-wide: without clearing them one test
    would get the memory client (and the scan) another test opened.
    """
    import streamlit as st

    from dashboard import auth
    from dashboard.actions import forget_reveals

    for name in list(os.environ):
        if name.startswith(("MEMORY_CORE_", "MEMORY_DASHBOARD_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    st.cache_data.clear()
    st.cache_resource.clear()
    auth.reset_lockout()
    forget_reveals()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    auth.reset_lockout()
