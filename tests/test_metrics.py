"""Prometheus metrics: counters read at scrape time, latency histograms through the store's
observer hook, the breaker gauge, and the inventory's keyspace figures as text."""

from __future__ import annotations

import asyncio
import importlib
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from memory_core import BuyerConversationMemory, MemoryConfig, SyncBuyerConversationMemory
from memory_core.exposition import MAX_LABEL_CHARS, OTHER_LABEL, keyspace_exposition
from memory_core.metrics import ERROR_KINDS, register_metrics, unregister_metrics
from memory_core.report import scan_report
from memory_core.safetext import printable
from memory_core.testing import RedisServer, TcpProxy, free_port

STORE = "buyer_conversation_memory"  # the default key prefix: the default store label
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of a scrape, by (sample name, labels)."""
    text = generate_latest(registry).decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, store: str = STORE, **labels: str) -> float:
    return samples[(name, frozenset({"store": store, **labels}.items()))]


def assert_counts(samples: Samples, *, store: str = STORE, **expected: float) -> None:
    got = {name: value(samples, f"memory_core_{name}_total", store) for name in expected}
    assert got == expected


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def fast_config() -> MemoryConfig:
    """A breaker that opens on the first failure and probes every 50 ms."""
    return MemoryConfig(failure_threshold=1, failure_cooldown_seconds=0.05,
                        socket_timeout_seconds=0.2, socket_connect_timeout_seconds=0.2)


# counters and histograms ----------------------------------------------------------------

def test_sync_saves_loads_misses_and_a_conflict_are_counted_exactly(
        store_url: str, registry: CollectorRegistry) -> None:
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        register_metrics(memory, registry)
        assert memory.save_state("a", {"buyer_name": "A"})
        assert memory.save_state("b", {"buyer_name": "B"})
        loaded = memory.load_state("a")
        assert loaded is not None and loaded["state_revision"] == 1
        assert memory.load_state("b") is not None
        assert memory.load_state("nobody") is None
        assert memory.save_state("a", {"buyer_name": "A2"}, expected_revision=1)
        # a stale revision: another writer saved since
        assert memory.save_state("a", loaded, expected_revision=1) is False
        samples = scrape(registry)
        stats = memory.get_stats()

    assert_counts(samples, calls=7, saves=3, loads=3, load_hits=2, load_misses=1,
                  save_conflicts=1, breaker_skips=0, refused=0, clears=0)
    assert {kind: value(samples, "memory_core_errors_total", kind=kind)
            for kind in ERROR_KINDS} == dict.fromkeys(ERROR_KINDS, 0)
    assert value(samples, "memory_core_breaker_open") == 0
    assert value(samples, "memory_core_enabled") == 1
    # every call that reached Redis is timed, the conflicting save too
    assert value(samples, "memory_core_load_duration_seconds_count") == 3
    assert value(samples, "memory_core_save_duration_seconds_count") == 4
    assert value(samples, "memory_core_load_duration_seconds_bucket", le="+Inf") == 3
    assert 0 < value(samples, "memory_core_save_duration_seconds_sum") < 5
    # the same numbers as get_stats
    assert (stats["saves"], stats["loads"], stats["hits"], stats["misses"],
            stats["conflicts"]) == (3, 3, 2, 1, 1)


def test_async_memory_is_counted_and_timed_the_same_way(
        real_redis_url: str, registry: CollectorRegistry) -> None:
    async def scenario() -> Samples:
        async with BuyerConversationMemory.from_url(real_redis_url) as memory:
            register_metrics(memory, registry)
            assert await memory.save_state("a", {"buyer_name": "A"})
            assert await memory.load_state("a") is not None
            assert await memory.load_state("nobody") is None
            assert await memory.save_state("a", {}, expected_revision=0) is False
            assert await memory.update_state("a", lambda s: {**s, "buyer_name": "A3"})
            assert await memory.clear_state("a")
            return scrape(registry)

    samples = asyncio.run(scenario())
    # update_state saves (counted, not timed as a save); its load is not a load_state
    assert_counts(samples, calls=6, saves=2, loads=2, load_hits=1, load_misses=1,
                  save_conflicts=1, clears=1, breaker_skips=0)
    assert value(samples, "memory_core_load_duration_seconds_count") == 2
    assert value(samples, "memory_core_save_duration_seconds_count") == 2
    assert value(samples, "memory_core_errors_total", kind="unreachable") == 0


def test_a_refused_call_and_a_corrupt_record_are_counted_by_kind(
        real_redis_url: str, real_raw: Any, registry: CollectorRegistry) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        register_metrics(memory, registry)
        real_raw.set(f"{STORE}:broken", b"not a record")
        assert memory.load_state("broken") is None
        assert memory.save_state("x", {"buyer_name": float("nan")}) is False
        samples = scrape(registry)
        assert memory.get_stats()["errors"] == 1
    assert value(samples, "memory_core_errors_total", kind="corrupt") == 1
    assert sum(value(samples, "memory_core_errors_total", kind=kind)
               for kind in ERROR_KINDS) == 1
    assert_counts(samples, refused=1, loads=1, load_hits=0, load_misses=0)


# the breaker gauge ----------------------------------------------------------------------

def wait_for(predicate: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_the_breaker_gauge_is_1_while_open_and_0_once_redis_answers_again(
        redis_server: RedisServer, real_redis_url: str, registry: CollectorRegistry,
        fast_config: MemoryConfig) -> None:
    with TcpProxy(redis_server.port) as proxy, \
            SyncBuyerConversationMemory.from_url(proxy.url, fast_config) as memory:
        register_metrics(memory, registry)
        assert memory.save_state("a", {})
        assert value(scrape(registry), "memory_core_breaker_open") == 0
        proxy.hang()
        assert memory.load_state("a") is None  # times out: the breaker opens
        assert memory.load_state("a") is None  # skipped at once
        samples = scrape(registry)
        assert value(samples, "memory_core_breaker_open") == 1
        assert value(samples, "memory_core_errors_total", kind="unreachable") == 1
        assert_counts(samples, breaker_skips=1, loads=1)
        # the timed-out load is timed; the skipped one is not
        assert value(samples, "memory_core_load_duration_seconds_count") == 1
        assert value(samples, "memory_core_load_duration_seconds_sum") >= 0.15
        proxy.resume()
        assert wait_for(lambda: value(scrape(registry), "memory_core_breaker_open") == 0)
        assert memory.load_state("a") is not None


def test_the_breaker_gauge_of_an_async_memory_opens_on_a_refused_connection(
        registry: CollectorRegistry, fast_config: MemoryConfig) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    async def scenario() -> Samples:
        async with BuyerConversationMemory.from_url(url, fast_config) as memory:
            register_metrics(memory, registry)
            assert value(scrape(registry), "memory_core_breaker_open") == 0
            assert await memory.save_state("a", {}) is False
            assert await memory.load_state("a") is None
            return scrape(registry)

    samples = asyncio.run(scenario())
    assert value(samples, "memory_core_breaker_open") == 1
    assert value(samples, "memory_core_errors_total", kind="unreachable") == 1
    assert_counts(samples, breaker_skips=1, saves=0, loads=0)
    assert value(samples, "memory_core_save_duration_seconds_count") == 1
    assert value(samples, "memory_core_load_duration_seconds_count") == 0


# registration ---------------------------------------------------------------------------

def test_several_memories_share_the_names_told_apart_by_the_store_label(
        fake_url: str, registry: CollectorRegistry) -> None:
    first = SyncBuyerConversationMemory.from_url(fake_url)
    second = SyncBuyerConversationMemory.from_url(fake_url)
    with first, second:
        register_metrics(first, registry)
        with pytest.raises(ValueError, match="store='buyer_conversation_memory' is registered"):
            register_metrics(second, registry)
        with pytest.raises(ValueError, match="registered already"):
            register_metrics(first, CollectorRegistry())
        register_metrics(second, registry, store="replica-reader")
        assert first.save_state("a", {})
        assert second.load_state("a") is not None
        samples = scrape(registry)
        assert_counts(samples, saves=1, loads=0)
        assert_counts(samples, store="replica-reader", saves=0, loads=1, load_hits=1)

        unregister_metrics(first)
        assert first.observer is None
        samples = scrape(registry)
        assert not [labels for _, labels in samples if ("store", STORE) in labels]
        unregister_metrics(second)
        assert scrape(registry) == {}
        register_metrics(first, registry)  # a fresh start after all left
        assert value(scrape(registry), "memory_core_saves_total") == 1
        unregister_metrics(first)
        with pytest.raises(ValueError, match="not registered"):
            unregister_metrics(first)


def test_register_refuses_what_is_not_a_memory_and_a_bad_namespace(
        fake_url: str, registry: CollectorRegistry) -> None:
    with pytest.raises(TypeError, match="BuyerConversationMemory"):
        register_metrics(object(), registry)  # type: ignore[arg-type]
    with SyncBuyerConversationMemory.from_url(fake_url) as memory:
        with pytest.raises(ValueError, match="not a Prometheus metric name"):
            register_metrics(memory, registry, namespace="memory-core")
        register_metrics(memory, registry, namespace="bot_memory")
        assert memory.save_state("a", {})
        assert value(scrape(registry), "bot_memory_saves_total") == 1
        unregister_metrics(memory)


def test_a_failing_observer_never_changes_a_call_result(
        fake_url: str, caplog: pytest.LogCaptureFixture) -> None:
    def broken(operation: str, seconds: float) -> None:
        raise RuntimeError("metrics bug")

    with SyncBuyerConversationMemory.from_url(fake_url) as memory:
        memory.observer = broken
        assert memory.save_state("a", {"buyer_name": "A"})
        assert memory.load_state("a") is not None
        assert memory.get_stats()["errors"] == 0
    assert sum("observer of load calls failed" in r.getMessage() for r in caplog.records) == 1


def test_without_an_observer_nothing_is_timed(fake_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import memory_core.store as store

    def no_timing(*_: object) -> None:
        raise AssertionError("timed without an observer")

    monkeypatch.setattr(store, "_timed", no_timing)
    with SyncBuyerConversationMemory.from_url(fake_url) as memory:
        assert memory.observer is None
        assert memory.save_state("a", {})
        assert memory.load_state("a") is not None


# the optional extra ---------------------------------------------------------------------

def test_importing_metrics_without_prometheus_client_says_which_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "memory_core.metrics")
    with pytest.raises(ImportError, match=r"pip install 'memory-core\[metrics\]'"):
        importlib.import_module("memory_core.metrics")


def test_the_library_and_the_keyspace_text_need_no_prometheus_client() -> None:
    code = ("import sys; sys.modules['prometheus_client'] = None\n"
            "import memory_core, memory_core.store, memory_core.exposition as e\n"
            "report = {'total': 1, 'buyers': 1, 'by_temperature': {'hot': 1},\n"
            "          'stored_bytes': 10, 'corrupt': 0, 'legacy': 0,\n"
            "          'ttl': {'expiring_24h': 0, 'no_ttl': 0}}\n"
            "print(e.keyspace_exposition(report), end='')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert 'memory_core_keyspace_buyers_by_temperature{temperature="hot"} 1' in done.stdout


# keyspace_exposition --------------------------------------------------------------------

def parse(text: str) -> Samples:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def plain(samples: Samples, name: str, **labels: str) -> float:
    return samples[(f"memory_core_keyspace_{name}", frozenset(labels.items()))]


HOSTILE = 'ho"t\\' + "\x1b[2J\u202e" + "x" * 80


def test_keyspace_figures_of_a_real_scan_parse_back(real_redis_url: str, real_raw: Any) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        for number, temperature in enumerate(["hot", "hot", "warm", HOSTILE]):
            assert memory.save_state(f"b{number}", {"buyer_temperature": temperature})
        assert memory.save_state("soon", {"buyer_temperature": "cold"}, ttl_override=3600)
        real_raw.set(f"{STORE}:broken", b"garbage")
        real_raw.set(f"{STORE}:forever", b"garbage")
        report, _ = scan_report(memory)

    text = keyspace_exposition(report)
    assert text.endswith("\n")
    samples = parse(text)
    assert plain(samples, "keys") == 7
    assert plain(samples, "buyers") == 5
    assert plain(samples, "corrupt_keys") == 2
    assert plain(samples, "expiring_24h_keys") == 1
    assert plain(samples, "no_ttl_keys") == 2
    assert plain(samples, "legacy_keys") == 0
    assert plain(samples, "stored_bytes") == report["stored_bytes"] > 0
    stored_hostile = next(label for label in report["by_temperature"] if label.startswith('ho"'))
    assert {labels: number for (name, labels), number in samples.items()
            if name.endswith("by_temperature")} == {
        frozenset({("temperature", "hot")}): 2, frozenset({("temperature", "warm")}): 1,
        frozenset({("temperature", "cold")}): 1,
        frozenset({("temperature", printable(stored_hostile, MAX_LABEL_CHARS))}): 1}
    assert abs(plain(samples, "report_timestamp_seconds") - time.time()) < 120


def report_with(by_temperature: dict[str, int]) -> dict[str, Any]:
    return {"generated_at": "2024-06-01T12:00:00+00:00", "total": 9, "buyers": 8,
            "by_temperature": by_temperature, "stored_bytes": 1234, "corrupt": 1,
            "legacy": 0, "ttl": {"no_ttl": 0, "expiring_24h": 3, "days_remaining": {}}}


def test_hostile_label_values_are_escaped_and_bounded() -> None:
    hostile = 'a\\b"c\nd} 1\n# TYPE evil counter\nevil 666' + "z" * 500
    text = keyspace_exposition(report_with({hostile: 5, "hot": 3}), store='st"ore\n')
    assert not [line for line in text.splitlines() if line.startswith(("evil", "# TYPE evil"))]
    samples = parse(text)
    shown = printable(hostile, MAX_LABEL_CHARS)
    assert shown.endswith("…") and "\n" not in shown  # cut, newlines shown as \x0a
    by_label = {dict(labels)["temperature"]: number for (name, labels), number
                in samples.items() if name.endswith("by_temperature")}
    assert by_label == {shown: 5, "hot": 3}
    assert all(dict(labels)["store"] == printable('st"ore\n', MAX_LABEL_CHARS)
               for _, labels in samples)
    assert plain(samples, "expiring_24h_keys", store=printable('st"ore\n')) == 3
    assert plain(samples, "report_timestamp_seconds",
                 store=printable('st"ore\n')) == 1717243200


def test_label_values_are_capped_and_labels_cut_alike_are_summed() -> None:
    counts = {f"t{n:03d}": 200 - n for n in range(100)}
    counts |= {"y" * 100 + "1": 1000, "y" * 100 + "2": 999}  # the same once cut
    samples = parse(keyspace_exposition(report_with(counts), max_label_values=10))
    by_label = {dict(labels)["temperature"]: number for (name, labels), number
                in samples.items() if name.endswith("by_temperature")}
    assert len(by_label) == 10  # 9 own series (two merged) and the rest
    assert by_label[printable("y" * 101, MAX_LABEL_CHARS)] == 1999
    assert by_label[OTHER_LABEL] == sum(200 - n for n in range(8, 100))
    assert sum(by_label.values()) == sum(counts.values())
    lines = [line for line in keyspace_exposition(report_with(counts)).splitlines()
             if not line.startswith("#")]
    assert len(lines) == len(set(line.rpartition(" ")[0] for line in lines))


def test_keyspace_exposition_refuses_a_bad_prefix_and_what_is_not_a_report() -> None:
    with pytest.raises(ValueError, match="not a Prometheus metric name"):
        keyspace_exposition(report_with({}), prefix="1bad")
    with pytest.raises(ValueError, match=r"no stored_bytes, ttl\.expiring_24h"):
        keyspace_exposition({k: v for k, v in report_with({}).items()
                             if k not in ("stored_bytes", "ttl")})
    samples = parse(keyspace_exposition(report_with({}), prefix="bot"))
    assert samples[("bot_keyspace_buyers", frozenset())] == 8


@pytest.fixture(autouse=True)
def quiet_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO, logger="memory_core")
    yield


def test_a_dropped_memory_is_not_kept_alive_by_its_metrics(fake_url: str) -> None:
    import gc
    import weakref

    registry = CollectorRegistry()
    memory = SyncBuyerConversationMemory.from_url(fake_url)
    register_metrics(memory, registry, store="dropped")
    assert registry.get_sample_value("memory_core_calls_total", {"store": "dropped"}) == 0
    alive = weakref.ref(memory)
    memory.close()
    del memory
    gc.collect()
    assert alive() is None
    assert registry.get_sample_value("memory_core_calls_total", {"store": "dropped"}) is None
