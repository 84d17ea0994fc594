"""The embedded demo store: 300 realistic buyers and a few broken keys, written once."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from memory_core import SyncBuyerConversationMemory
from memory_core import dictionaries as dicts
from memory_core.demo import DEMO_BUYERS, seed_demo_store
from memory_core.inventory import scan_summaries, summarize_inventory
from memory_core.legacy import decode_legacy

PREFIX = "buyer_conversation_memory"
NOW = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
BROKEN = {"demo-garbage": "corrupt", "demo-truncated": "corrupt",
          "demo-foreign-hash": "foreign", "legacy-0001": "legacy"}
PERSISTED = ["contact-2026-000001", "contact-2026-000002", "contact-2026-000003"]


def fresh_memory() -> SyncBuyerConversationMemory:
    return SyncBuyerConversationMemory.from_url(f"memory://demo-test-{uuid.uuid4().hex}")


@pytest.fixture
def memory() -> Iterator[SyncBuyerConversationMemory]:
    with fresh_memory() as opened:
        yield opened


def snapshot(client: redis.Redis) -> dict[bytes, Any]:
    """Every key with its value (hash fields for hashes) and whether it expires."""
    result: dict[bytes, Any] = {}
    for name in client.scan_iter(count=1000):
        kind = client.type(name)
        value = client.get(name) if kind == b"string" else client.hgetall(name)
        result[name] = (value, client.ttl(name) >= 0)
    return result


def test_demo_store_holds_300_buyers_and_the_broken_keys(
        memory: SyncBuyerConversationMemory) -> None:
    assert seed_demo_store(memory, now=NOW) is True
    frame = scan_summaries(memory)
    assert len(frame) == DEMO_BUYERS + len(BROKEN)
    ok = frame[frame["status"] == "ok"]
    assert len(ok) == DEMO_BUYERS
    statuses = dict(zip(frame["contact_id"], frame["status"], strict=True))
    for contact_id, status in BROKEN.items():
        assert statuses[contact_id] == status, contact_id
    summary = summarize_inventory(frame)
    assert summary["corrupt"] == 3 and summary["legacy"] == 1
    loaded = memory.load_state("legacy-0001")  # the legacy pickle is readable
    assert loaded is not None and loaded["urgency_level"] == "3-6 months"


def test_a_tenth_of_the_demo_buyers_are_qa_seeds(memory: SyncBuyerConversationMemory) -> None:
    seed_demo_store(memory, now=NOW)
    frame = scan_summaries(memory)
    seeds = frame[frame["qa_seed"]]
    assert len(seeds) == DEMO_BUYERS // 10
    assert all(cid.startswith("demo-2026-") for cid in seeds["contact_id"])
    others = frame[(frame["status"] == "ok") & ~frame["qa_seed"]]
    assert all(cid.startswith("contact-2026-") for cid in others["contact_id"])


def test_three_demo_buyers_have_no_ttl(memory: SyncBuyerConversationMemory) -> None:
    seed_demo_store(memory, now=NOW)
    frame = scan_summaries(memory)
    no_ttl = frame[frame["ttl_days"].isna()]
    ok_no_ttl = no_ttl[no_ttl["status"] == "ok"]
    assert sorted(ok_no_ttl["contact_id"]) == PERSISTED
    assert (ok_no_ttl["ttl_ms"] == -1).all()
    # the other app's hash never had a TTL; it is the only other key without one
    assert sorted(no_ttl["contact_id"]) == sorted([*PERSISTED, "demo-foreign-hash"])
    ttl = frame.loc[frame["status"] == "ok", "ttl_days"].dropna()
    # what is left of 1..60 day TTLs since each buyer's last interaction (at least an hour)
    assert ttl.between(3599 / 86_400, 60.01).all() and ttl.nunique() > 10


def test_seeding_twice_writes_nothing_the_second_time(
        memory: SyncBuyerConversationMemory) -> None:
    assert seed_demo_store(memory, now=NOW) is True
    before = snapshot(memory.client)
    assert seed_demo_store(memory, now=NOW) is False
    assert snapshot(memory.client) == before


def freeze_gzip_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """gzip stamps the wall-clock time into its header; pin it for one seeding."""
    monkeypatch.setattr(gzip, "time", SimpleNamespace(time=lambda: seconds))


def two_demo_stores(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[bytes, Any],
                                                              dict[bytes, Any]]:
    """Seed two fresh stores with the same ``now``, one wall-clock minute apart."""
    snapshots = []
    for clock in (1_750_000_000.0, 1_750_000_060.0):
        freeze_gzip_clock(monkeypatch, clock)
        with fresh_memory() as memory:
            assert seed_demo_store(memory, now=NOW) is True
            snapshots.append(snapshot(memory.client))
    return snapshots[0], snapshots[1]


def test_a_fixed_now_gives_the_same_buyers(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_demo_stores(monkeypatch)
    legacy_key = f"{PREFIX}:legacy-0001".encode()
    assert first.keys() == second.keys()
    # + the "seeded" marker, the trained dictionary, the key naming it as current and
    # when that pointer last changed (prune-dictionaries waits after a rotation)
    assert len(first) == DEMO_BUYERS + len(BROKEN) + 4
    rotated_at = dicts.rotated_at_key(PREFIX).encode()  # wall-clock time, by design
    for name in first:
        if name not in (legacy_key, rotated_at):
            assert first[name] == second[name], name
    assert decode_legacy(first[legacy_key][0]) == decode_legacy(second[legacy_key][0])


def test_a_fixed_now_gives_byte_identical_legacy_records(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_demo_stores(monkeypatch)
    legacy_key = f"{PREFIX}:legacy-0001".encode()
    assert first[legacy_key] == second[legacy_key]
