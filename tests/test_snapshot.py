"""The scan snapshot (memory_core.snapshot) and the overview drawn from it, on a real Redis.

A snapshot must hold the scan's figures and nothing about any one buyer; a fresh
dashboard process draws the overview from it before any scan finishes, and refreshes it
in the background; whatever is planted at the key, the page falls back to a scan.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import streamlit as st
from apptest_tools import HeldScan, metrics, signed_in_page
from conftest import buyer_state
from streamlit.testing.v1 import AppTest

from dashboard import resources
from dashboard.auth import OPERATOR_PASSWORD_ENV, VIEWER_PASSWORD_ENV
from dashboard.overview_model import Filters, build_overview, figures_from_snapshot
from dashboard.settings import load_settings
from memory_core.breakdown import OverviewScan, scan_overview
from memory_core.config import MemoryConfig
from memory_core.dictionary_use import DictionaryStatus
from memory_core.inventory import STATUS_OK, scan_summaries, summarize_inventory
from memory_core.snapshot import (
    MAGIC,
    MAX_SNAPSHOT_BYTES,
    InvalidSnapshot,
    build_snapshot,
    decode_snapshot,
    encode_snapshot,
    keep_snapshot,
    read_snapshot,
    snapshot_key,
    store_snapshot,
)
from memory_core.store import SyncBuyerConversationMemory

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PASSWORD = "viewer-for-snapshot-tests"

pytestmark = pytest.mark.usefixtures("isolated_dashboard")


@pytest.fixture
def memory(real_redis_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[SyncBuyerConversationMemory]:
    monkeypatch.setenv("REDIS_URL", real_redis_url)
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, "operator-for-snapshot-tests")
    monkeypatch.setenv(VIEWER_PASSWORD_ENV, PASSWORD)
    with SyncBuyerConversationMemory.from_url(real_redis_url) as opened:
        yield opened


def seed(memory: SyncBuyerConversationMemory, count: int, first: int = 0) -> list[str]:
    ids = [f"contact-secret-{i:04d}" for i in range(first, first + count)]
    assert memory.save_many([(cid, buyer_state(i, messages=3 + i % 20), None, None)
                             for i, cid in enumerate(ids, start=first)]) == count
    return ids


def scan_and_store(memory: SyncBuyerConversationMemory, scan_seconds: float = 30.0,
                   taken_at: datetime | None = None) -> OverviewScan:
    """The dashboard's scan and its snapshot, stored as if taken then and that long."""
    scan = dataclasses.replace(scan_overview(memory), seconds=scan_seconds,
                               taken_at=taken_at or datetime.now(UTC))
    assert keep_snapshot(memory, scan.snapshot()) is not None
    return scan


def run_page() -> AppTest:
    return signed_in_page(APP, PASSWORD, "snapshot_tests")


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def without_time(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "generated_at"}


# the snapshot itself --------------------------------------------------------------------------

def test_snapshot_round_trip_has_the_scans_figures_and_no_contact_id_or_pii(
        memory: SyncBuyerConversationMemory, real_raw: redis.Redis) -> None:
    ids = seed(memory, 60)
    memory.client.set(memory.key_for("contact-secret-broken"), b"\x00 not a record")
    scan = scan_and_store(memory)
    frame = scan_summaries(memory)
    stored = real_raw.get(snapshot_key(memory.prefix))
    assert stored is not None and stored.startswith(MAGIC) and len(stored) < 64 * 1024
    assert 0 < real_raw.ttl(snapshot_key(memory.prefix)) <= 7 * 86_400
    text = stored.decode()
    assert "contact-secret" not in text
    for i in range(60):
        state = buyer_state(i)
        for field in ("buyer_name", "buyer_phone", "buyer_email"):
            assert state[field] not in text
    assert all(cid not in text for cid in ids)

    snapshot = read_snapshot(memory)
    assert snapshot is not None
    # the keyspace's counts, and the buyers' TTLs as the fresh overview counts them
    # (readable buyers: the corrupt key has no TTL)
    readable = frame[frame["status"] == STATUS_OK]
    assert without_time(snapshot.report) == without_time(
        {**summarize_inventory(frame), "ttl": summarize_inventory(readable)["ttl"]})
    assert snapshot.report["corrupt"] == 1 and snapshot.report["buyers"] == 60
    figures = figures_from_snapshot(snapshot, memory.config)
    model = build_overview(scan, Filters(), memory.config)
    assert figures.report["ttl"] == model.report["ttl"]
    assert figures.charts == model.charts  # the same specs, data and colours
    assert (figures.buyers, figures.unreadable, figures.legacy, figures.stored_buyers) == (
        model.buyers, model.unreadable, model.legacy, model.stored_buyers)
    # the snapshot lives outside the buyer keyspace: a scan never lists it
    assert snapshot_key(memory.prefix) not in set(scan_summaries(memory)["contact_id"])


def test_an_older_scan_finishing_late_keeps_the_newer_snapshot(
        memory: SyncBuyerConversationMemory) -> None:
    seed(memory, 5)
    now = datetime.now(UTC)
    scan_and_store(memory, taken_at=now)
    frame = scan_summaries(memory)
    assert store_snapshot(memory, frame, taken_at=now - timedelta(minutes=5),
                          scan_seconds=1.0) is None
    snapshot = read_snapshot(memory)
    assert snapshot is not None
    assert abs((snapshot.taken_at - now).total_seconds()) < 0.01


def _valid(memory: SyncBuyerConversationMemory) -> dict[str, Any]:
    seed(memory, 3)
    data = encode_snapshot(build_snapshot(scan_summaries(memory), memory.config,
                                          taken_at=datetime.now(UTC), scan_seconds=9.0))
    head, _, body = data.partition(b"\n")
    return {"head": head + b"\n", "body": json.loads(body)}


def _with(valid: dict[str, Any], change: Any) -> bytes:
    body = json.loads(json.dumps(valid["body"]))
    change(body)
    return valid["head"] + json.dumps(body).encode()


PLANTED = {
    "garbage": lambda v: b"\x80\x03 not json at all",
    "magic then garbage": lambda v: v["head"] + b"{\"version\": 1, ",
    "deep nesting": lambda v: v["head"] + b"[" * 200_000 + b"]" * 200_000,
    "huge": lambda v: v["head"] + b" " * (MAX_SNAPSHOT_BYTES + 10),
    "negative count": lambda v: _with(v, lambda b: b["report"].__setitem__("buyers", -5)),
    "count as text": lambda v: _with(v, lambda b: b["report"].__setitem__("total", "9")),
    "bool as count": lambda v: _with(v, lambda b: b["charts"].__setitem__("qualified", True)),
    "extra field": lambda v: _with(v, lambda b: b.__setitem__("html", "<script>")),
    "other version": lambda v: _with(v, lambda b: b.__setitem__("version", 2)),
    "too many rows": lambda v: _with(v, lambda b: b["charts"].__setitem__(
        "ratio", [[0, 1, "zstd", 1]] * 10_000)),
    "long label": lambda v: _with(v, lambda b: b["report"]["by_persona"].__setitem__(
        "x" * 5000, 1)),
    "nan": lambda v: _with(v, lambda b: b["charts"]["pairs"][0].__setitem__(1, float("nan"))),
    "wrong expiring bins": lambda v: _with(v, lambda b: b["charts"].__setitem__(
        "expiring", [1])),
    "in the future": lambda v: _with(v, lambda b: b.__setitem__(
        "taken_at_ms", b["taken_at_ms"] + 10**9)),
}


@pytest.mark.parametrize("kind", [*PLANTED, "hash"])
def test_a_planted_snapshot_is_refused_and_the_page_scans_instead(
        memory: SyncBuyerConversationMemory, real_raw: redis.Redis, kind: str) -> None:
    valid = _valid(memory)
    key = snapshot_key(memory.prefix)
    real_raw.delete(key)
    if kind == "hash":
        real_raw.hset(key, mapping={"version": "1"})
    else:
        data = PLANTED[kind](valid)
        real_raw.set(key, data)
        with pytest.raises(ValueError):
            decode_snapshot(data)
    assert read_snapshot(memory) is None

    at = run_page()
    assert metrics(at)["Buyers"] == "3"  # from a scan in the foreground
    assert "Scanned 3 keys" in captions(at)
    assert not at.error
    fresh = read_snapshot(memory)  # the scan replaced the planted key with a snapshot
    assert fresh is not None and fresh.report["buyers"] == 3


# the compression dictionary's estimate: optional, validated ----------------------------------

ESTIMATED = DictionaryStatus(current_id=3_141_592_653, measured=500, current_bytes=812_345,
                             with_new_bytes=401_002)


@pytest.mark.parametrize("status", [
    ESTIMATED,
    DictionaryStatus(current_id=None, measured=12, current_bytes=9_000, with_new_bytes=9_500),
    *(DictionaryStatus(current_id=None, reason=reason) for reason in
      ("too_few", "disabled", "unavailable", "failed")),
    DictionaryStatus(current_id=77, reason="too_few"),
], ids=lambda status: f"{status.current_id}-{status.reason}")
def test_the_dictionary_estimate_round_trips(memory: SyncBuyerConversationMemory,
                                             status: DictionaryStatus) -> None:
    seed(memory, 3)
    frame = scan_summaries(memory)
    assert store_snapshot(memory, frame, taken_at=datetime.now(UTC), scan_seconds=2.0,
                          dictionary=status) is not None
    snapshot = read_snapshot(memory)
    assert snapshot is not None and snapshot.dictionary == status
    assert snapshot.report["buyers"] == 3


def test_a_snapshot_stored_by_the_previous_version_still_draws() -> None:
    """The fixture was written by the code before bytes by dictionary existed (git
    dda627a): after an upgrade the first overview draws it instead of scanning first."""
    stored = (Path(__file__).parent / "fixtures" /
              "snapshot-before-dictionary-bytes.bin").read_bytes()
    assert b"stored_bytes_by_dictionary" not in stored
    snapshot = decode_snapshot(stored)
    assert snapshot.report["buyers"] == 12
    assert snapshot.report["stored_bytes_by_dictionary"] is None
    assert snapshot.dictionary is None
    assert figures_from_snapshot(snapshot, MemoryConfig()) is not None


def test_a_snapshot_without_the_estimate_still_decodes(
        memory: SyncBuyerConversationMemory, real_raw: redis.Redis) -> None:
    """Snapshots stored before the estimate existed (and callers that do not estimate,
    such as benchmarks) carry no "dictionary" field: drawn all the same, without it."""
    seed(memory, 3)
    scan_and_store(memory)
    stored = real_raw.get(snapshot_key(memory.prefix))
    assert stored is not None and b'"dictionary"' not in stored
    snapshot = read_snapshot(memory)
    assert snapshot is not None and snapshot.dictionary is None
    assert snapshot.report["buyers"] == 3
    with_it = encode_snapshot(build_snapshot(scan_summaries(memory), memory.config,
                                             taken_at=datetime.now(UTC), scan_seconds=1.0,
                                             dictionary=ESTIMATED))
    assert decode_snapshot(with_it).dictionary == ESTIMATED


def _with_dictionary(memory: SyncBuyerConversationMemory,
                     change: Any) -> bytes:
    seed(memory, 3)
    data = encode_snapshot(build_snapshot(scan_summaries(memory), memory.config,
                                          taken_at=datetime.now(UTC), scan_seconds=1.0,
                                          dictionary=ESTIMATED))
    head, _, body = data.partition(b"\n")
    fields = json.loads(body)
    change(fields["dictionary"], fields)
    return head + b"\n" + json.dumps(fields).encode()


HOSTILE_DICTIONARY = {
    "null": lambda d, b: b.__setitem__("dictionary", None),
    "a list": lambda d, b: b.__setitem__("dictionary", [1, 2]),
    "extra field": lambda d, b: d.__setitem__("note", "<img src=x>"),
    "missing field": lambda d, b: d.pop("measured"),
    "id as text": lambda d, b: d.__setitem__("current_id", "3141592653"),
    "id zero": lambda d, b: d.__setitem__("current_id", 0),
    "id over 32 bits": lambda d, b: d.__setitem__("current_id", 2**32),
    "negative id": lambda d, b: d.__setitem__("current_id", -1),
    "negative bytes": lambda d, b: d.__setitem__("with_new_bytes", -5),
    "huge bytes": lambda d, b: d.__setitem__("current_bytes", 10**30),
    "float bytes": lambda d, b: d.__setitem__("current_bytes", 1.5),
    "bool measured": lambda d, b: d.__setitem__("measured", True),
    "too many measured": lambda d, b: d.__setitem__("measured", 10**9),
    "nothing measured": lambda d, b: d.__setitem__("measured", 0),
    "unknown reason": lambda d, b: d.__setitem__("reason", "**ask [me](http://x)**"),
    "reason as number": lambda d, b: d.__setitem__("reason", 1),
    "estimate and reason": lambda d, b: d.__setitem__("reason", "too_few"),
}


@pytest.mark.parametrize("kind", HOSTILE_DICTIONARY)
def test_a_hostile_dictionary_estimate_is_refused(memory: SyncBuyerConversationMemory,
                                                  real_raw: redis.Redis, kind: str) -> None:
    data = _with_dictionary(memory, HOSTILE_DICTIONARY[kind])
    with pytest.raises(InvalidSnapshot):
        decode_snapshot(data)
    real_raw.set(snapshot_key(memory.prefix), data)
    assert read_snapshot(memory) is None  # the page scans instead


# the page: a fresh process draws the snapshot first -------------------------------------------

def test_a_fresh_process_draws_the_snapshot_at_once_and_refreshes_it_in_the_background(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(memory, 40)
    taken = datetime.now(UTC) - timedelta(minutes=7)
    scan_and_store(memory, taken_at=taken)
    seed(memory, 10, first=40)  # written after the snapshot: only a new scan counts them
    st.cache_resource.clear()  # a new dashboard process
    slow = HeldScan()
    monkeypatch.setattr(resources, "scan_overview", slow)

    at = run_page()
    assert metrics(at)["Buyers"] == "40"  # the snapshot's, while the scan is held
    assert "From the scan taken 7 minutes ago" in captions(at)
    assert "refreshing…" in captions(at)
    assert any("appear when the scan finishes" in i.value for i in at.info)
    assert not at.dataframe  # no buyer rows before the scan
    assert len(at.get("vega_lite_chart")) == 11
    assert slow.calls == 1

    at.run()  # another run while scanning: still the snapshot, still one scan
    assert metrics(at)["Buyers"] == "40" and slow.calls == 1

    slow.release.set()
    thread = resources.background_scan(load_settings())
    assert thread is not None
    thread.join(30)
    at.run()
    assert not at.exception
    assert metrics(at)["Buyers"] == "50"
    assert "Scanned 50 keys" in captions(at)
    assert at.dataframe  # the buyer list, now that rows are there
    snapshot = read_snapshot(memory)
    assert snapshot is not None and snapshot.report["buyers"] == 50
    assert snapshot.taken_at > taken


def test_reading_the_qa_seeds_neither_waits_for_nor_ages_a_background_scan(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the QA page's read took the scan's lock (waiting out a 1M scan) and
    stamped the slot as scanned, so a minute later a second full scan started."""
    seed(memory, 20)
    assert memory.save_state("qa-seed-1", {**buyer_state(99), "qa_seed": True})
    scan_and_store(memory)
    st.cache_resource.clear()
    slow = HeldScan()
    monkeypatch.setattr(resources, "scan_overview", slow)
    run_page()  # draws the snapshot; the scan is held in the background
    settings = load_settings()
    found: list[list[str]] = []
    reader = threading.Thread(target=lambda: found.append(resources.qa_seeds(settings,
                                                                             memory)))
    reader.start()
    reader.join(10)  # held behind the scan, it would wait until the scan is released
    assert found == [["qa-seed-1"]]
    assert resources.last_scan(settings) is None  # not stamped as a finished scan
    slow.release.set()
    thread = resources.background_scan(settings)
    assert thread is not None
    thread.join(30)
    assert slow.calls == 1
    assert resources.last_scan(settings) is not None


def test_the_scan_builds_the_unfiltered_overview_so_the_next_page_does_not(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a million buyers building the overview took 2-3 s of the first page after
    each scan; the background scan builds it once, and a filter still builds its own."""
    seed(memory, 12)
    scan_and_store(memory)
    st.cache_resource.clear()
    at = run_page()  # draws the snapshot, scans in the background
    thread = resources.background_scan(load_settings())
    assert thread is not None
    thread.join(30)
    built: list[Filters] = []
    real = resources.build_overview

    def counting(scan: OverviewScan, filters: Filters, config: Any) -> Any:
        built.append(filters)
        return real(scan, filters, config)

    monkeypatch.setattr(resources, "build_overview", counting)
    at.run()
    assert not at.exception
    assert metrics(at)["Buyers"] == "12" and "Scanned 12 keys" in captions(at)
    assert built == []  # drawn from the model the scan built
    at.toggle[-1].set_value(True).run()  # "Hide QA seeds": a filter
    assert built == [Filters(hide_qa=True)]


def test_a_fast_last_scan_scans_in_the_foreground_instead(
        memory: SyncBuyerConversationMemory) -> None:
    seed(memory, 5)
    scan_and_store(memory, scan_seconds=0.01)
    seed(memory, 2, first=5)
    st.cache_resource.clear()
    at = run_page()
    assert metrics(at)["Buyers"] == "7"
    assert "From the scan taken" not in captions(at)


def test_a_failed_background_scan_keeps_the_snapshot_and_says_so(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    from memory_core.errors import StoreUnavailable

    seed(memory, 4)
    scan_and_store(memory)
    st.cache_resource.clear()

    def broken(memory: SyncBuyerConversationMemory, **kwargs: Any) -> Any:
        raise StoreUnavailable("Redis unreachable during scan: [planted](https://x)")

    monkeypatch.setattr(resources, "scan_overview", broken)
    at = run_page()
    thread = resources.background_scan(load_settings())
    assert thread is not None
    thread.join(10)
    at.run()
    assert metrics(at)["Buyers"] == "4"
    assert any("Refreshing failed" in e.value and "](" not in e.value for e in at.error)


def test_after_a_write_the_page_does_not_draw_an_older_snapshot(
        memory: SyncBuyerConversationMemory) -> None:
    seed(memory, 4)
    scan_and_store(memory)
    resources.forget_scan()  # what every write in the dashboard does
    seed(memory, 1, first=4)
    at = run_page()
    assert metrics(at)["Buyers"] == "5"
    assert "From the scan taken" not in captions(at)


def test_the_scan_cache_period_counts_from_the_end_of_the_scan() -> None:
    """A 1M-buyer scan took half a minute: counted from the slot's creation, its table
    was fresh for seconds, and the next session drew the old snapshot again."""
    now = 10_000.0
    slow = resources._ScanSlot(created_at=now - 100)  # a scan that took 70 s
    slow.finished_at = now - 30
    assert not slow.expired(now)
    assert slow.expired(now + resources.SCAN_CACHE_SECONDS)
    running = resources._ScanSlot(created_at=now - 1000)  # still scanning: never dropped
    assert not running.expired(now)
    failed = resources._ScanSlot(created_at=now - resources.SCAN_CACHE_SECONDS - 1,
                                 error="Redis unreachable")
    assert failed.expired(now)  # tried again after the period


def test_a_fresh_slot_is_shared_and_an_old_one_replaced() -> None:
    resources._slots.clear()
    first = resources._scan_slot("redis://slot-test", None)
    assert resources._scan_slot("redis://slot-test", None) is first
    first.finished_at = first.created_at - resources.SCAN_CACHE_SECONDS - 1
    assert resources._scan_slot("redis://slot-test", None) is not first
    resources._slots.clear()
