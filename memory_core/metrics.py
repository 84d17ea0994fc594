"""Prometheus metrics of a buyer memory: ``register_metrics(memory)`` and it is scraped.

The counters and gauges are read from the memory's own counters (the ones ``get_stats``
shows) when Prometheus scrapes, by a collector: the bot's calls do no extra work for them.
Only the two latency histograms need the calls timed; the memory's ``observer`` hook does
that, and costs one ``is None`` check per call while no metrics are registered.

Needs the ``[metrics]`` extra (``prometheus_client``); ``import memory_core`` never loads
it. :func:`keyspace_exposition` (the inventory's figures for a textfile collector) lives
in :mod:`memory_core.exposition`, which needs no extra, and is re-exported here.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Histogram
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - tested with the module hidden
    raise ImportError("memory_core.metrics needs prometheus_client: "
                      "pip install 'memory-core[metrics]'") from exc

from memory_core.exposition import check_metric_prefix, keyspace_exposition
from memory_core.store import BuyerConversationMemory, SyncBuyerConversationMemory

__all__ = ["ERROR_KINDS", "LATENCY_BUCKETS", "keyspace_exposition", "register_metrics",
           "unregister_metrics"]

Memory = BuyerConversationMemory | SyncBuyerConversationMemory
#: The ``kind`` label of ``<namespace>_errors_total``: the store's counter of each kind.
#: They add up to ``get_stats()["errors"]``.
ERROR_KINDS = (
    "unreachable",     # refused, reset or timed out (these open the breaker)
    "pool_exhausted",  # every connection of this process busy
    "redis_error",     # Redis answered with an error
    "corrupt",         # a stored record no load can read
    "undecryptable",   # encrypted with a key this process lacks
    "unexpected",      # a bug: logged with its traceback
)
#: Seconds: a load or save on a healthy Redis takes well under a millisecond to a few,
#: and the default socket timeout is 0.5 s, so the buckets are finer than the default's.
LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1, 0.25, 0.5, 1.0, 2.5)
#: (metric name after the namespace, store counter, help): counters with a ``store`` label.
_COUNTERS = (
    ("calls", "calls", "Bot calls (load, save, update, clear), skipped ones included."),
    ("saves", "saves", "States stored (save_state, update_state, batch writes)."),
    ("loads", "loads", "load_state calls that went to Redis."),
    ("load_hits", "hits", "Loads that found a readable state."),
    ("load_misses", "misses", "Loads that found no state (a new or expired buyer)."),
    ("clears", "clears", "clear_state calls that reached Redis."),
    ("save_conflicts", "conflicts", "Saves not written: another writer saved since the "
     "expected_revision."),
    ("refused", "refused", "Calls refused for bad input, nothing written: a caller bug."),
    ("unreplicated_saves", "unreplicated", "Saves stored on the primary but not "
     "acknowledged by the replicas asked for in time."),
    ("breaker_skips", "skipped", "Calls skipped at once because the circuit breaker "
     "was open."),
)
#: Operations the observer times, and the histogram each goes to.
_TIMED = {"load": "load_duration_seconds", "save": "save_duration_seconds"}
_TIMED_HELP = {"load": "Seconds a load_state call took, Redis round trips included; calls "
                       "skipped by the breaker are not timed.",
               "save": "Seconds a save_state call took, encoding and Redis round trips "
                       "included; calls skipped by the breaker are not timed."}


@dataclass(eq=False)
class _StoreCollector(Collector):
    """Every registered memory of one registry and namespace, read at scrape time."""

    namespace: str
    buckets: Sequence[float]
    #: Held weakly: a memory the bot drops stops being scraped (and can be collected)
    #: even without unregister_metrics; its histogram series stay until then.
    memories: weakref.WeakValueDictionary[str, Memory] = field(
        default_factory=weakref.WeakValueDictionary)
    histograms: dict[str, Histogram] = field(init=False)

    def __post_init__(self) -> None:
        # registry=None: scraped through this collector, so one registry entry in all
        self.histograms = {
            operation: Histogram(f"{self.namespace}_{name}", _TIMED_HELP[operation],
                                 ["store"], registry=None, buckets=self.buckets)
            for operation, name in _TIMED.items()}

    def describe(self) -> Iterator[Metric]:
        """The names this collector owns, so a registry refuses another that reuses one."""
        yield from self._families(())

    def collect(self) -> Iterator[Metric]:
        yield from self._families(tuple(self.memories.items()))

    def _families(self, memories: tuple[tuple[str, Memory], ...]) -> Iterator[Metric]:
        ns = self.namespace
        for name, counter, help_text in _COUNTERS:
            family = CounterMetricFamily(f"{ns}_{name}", help_text, labels=["store"])
            for store, memory in memories:
                family.add_metric([store], memory._counters[counter])
            yield family
        errors = CounterMetricFamily(
            f"{ns}_errors", "Failed calls and unreadable records, by kind (together "
            "get_stats()['errors']).", labels=["store", "kind"])
        for store, memory in memories:
            for kind in ERROR_KINDS:
                errors.add_metric([store, kind], memory._counters[kind])
        yield errors
        breaker = GaugeMetricFamily(
            f"{ns}_breaker_open", "1 while the circuit breaker is open (every call skips "
            "Redis, a background probe waits for it), 0 while closed.", labels=["store"])
        enabled = GaugeMetricFamily(
            f"{ns}_enabled", "1 when the memory talks to Redis; 0 when configured off "
            "(every call a no-op).", labels=["store"])
        for store, memory in memories:
            breaker.add_metric([store], 1.0 if memory._breaker.is_open else 0.0)
            enabled.add_metric([store], 1.0 if memory.config.enabled else 0.0)
        yield breaker
        yield enabled
        for histogram in self.histograms.values():
            yield from histogram.collect()

    def observer(self, store: str) -> Callable[[str, float], None]:
        """The memory's ``observer``: a dict look-up and one histogram observation."""
        children = {operation: histogram.labels(store=store)
                    for operation, histogram in self.histograms.items()}

        def observe(operation: str, seconds: float) -> None:
            child = children.get(operation)
            if child is not None:
                child.observe(seconds)

        return observe


_lock = threading.Lock()
#: The collector of each (registry, namespace); a registry that is dropped takes its own.
_collectors: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, _StoreCollector]] = (
    weakref.WeakKeyDictionary())
#: Where each registered memory is scraped: (collector, its store label).
_registered: weakref.WeakKeyDictionary[Any, tuple[CollectorRegistry, _StoreCollector, str]] = (
    weakref.WeakKeyDictionary())


def register_metrics(memory: Memory, registry: CollectorRegistry | None = None, *,
                     namespace: str = "memory_core", store: str | None = None,
                     buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
    """Publish ``memory``'s metrics in ``registry`` (prometheus_client's default one).

    Several memories share the metric names, told apart by the ``store`` label (the key
    prefix unless given): two memories with the same label in one registry are refused,
    as is registering one memory twice (:func:`unregister_metrics` first). ``buckets``
    of the latency histograms are fixed by the first memory of a registry and namespace.
    """
    if not isinstance(memory, BuyerConversationMemory | SyncBuyerConversationMemory):
        raise TypeError(f"register_metrics needs a BuyerConversationMemory or "
                        f"SyncBuyerConversationMemory, got {type(memory).__name__}")
    check_metric_prefix(namespace)
    registry = REGISTRY if registry is None else registry
    label = memory.prefix if store is None else store
    if not isinstance(label, str) or not label:
        raise ValueError(f"store={store!r} must be a non-empty label value")
    with _lock:
        if memory in _registered or memory.observer is not None:
            raise ValueError("this memory's metrics are registered already (or another "
                             "observer is set); call unregister_metrics(memory) first")
        by_namespace = _collectors.setdefault(registry, {})
        collector = by_namespace.get(namespace)
        if collector is not None and label in collector.memories:
            raise ValueError(f"a memory with store={label!r} is registered already in this "
                             "registry; give this one another label: "
                             "register_metrics(memory, store='...')")
        if collector is None:
            collector = _StoreCollector(namespace, tuple(buckets))
            registry.register(collector)  # ValueError if another collector has the names
            by_namespace[namespace] = collector
        collector.memories[label] = memory
        _registered[memory] = (registry, collector, label)
        memory.observer = collector.observer(label)


def unregister_metrics(memory: Memory) -> None:
    """Stop publishing ``memory``'s metrics (its series disappear); the hook is unset."""
    with _lock:
        found = _registered.pop(memory, None)
        if found is None:
            raise ValueError("this memory's metrics are not registered")
        registry, collector, label = found
        memory.observer = None
        del collector.memories[label]
        for histogram in collector.histograms.values():
            histogram.remove(label)
        if not collector.memories:
            registry.unregister(collector)
            del _collectors[registry][collector.namespace]
