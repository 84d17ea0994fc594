"""The inventory: one row per buyer key from record headers, and the counts built on it.

Every behaviour test takes ``store_url`` and so runs on fakeredis and on the private
redis-server. The fault test at the end stops that server (real Redis only) and always
restarts it.
"""

from __future__ import annotations

import gzip
import math
import pickle
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import pytest
import redis
import zstandard

from memory_core import StoreUnavailable, SyncBuyerConversationMemory
from memory_core import dictionaries as dicts
from memory_core.config import MemoryConfig
from memory_core.inventory import (
    problem_records,
    scan_summaries,
    summarize_inventory,
    value_counts_text,
)
from memory_core.seeding import SeedBuyer
from memory_core.state import dump_json, prepare_state
from memory_core.testing import seed_buyers, stored_json

if TYPE_CHECKING:
    from memory_core.testing import RedisServer

PREFIX = "buyer_conversation_memory"
DAY_MS = 86_400_000
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
COLUMNS = ("contact_id", "status", "problem", "codec", "schema_version", "temperature",
           "persona", "journey_stage", "stored_bytes", "original_bytes", "dictionary_id",
           "message_count", "last_interaction_epoch", "ttl_ms", "is_qualified", "qa_seed",
           "compression_ratio", "ttl_days", "last_interaction")
Dictionaries = tuple[zstandard.ZstdCompressionDict, zstandard.ZstdCompressionDict]


def key(contact_id: str) -> str:
    return f"{PREFIX}:{contact_id}"


def seed(memory: SyncBuyerConversationMemory, count: int, seed: int = 1,
         **options: Any) -> list[SeedBuyer]:
    """``count`` QA buyers with interaction times before NOW, saved."""
    return seed_buyers(memory, count, seed=seed, now=NOW, **options)


def prepared(buyer: SeedBuyer) -> dict[str, Any]:
    """The state exactly as save_many stored it."""
    return prepare_state(buyer.state, max_history_messages=50, now=buyer.interaction_time)


def legacy_pickle(state: dict[str, Any], compressed: bool = False) -> bytes:
    data = orjson.dumps(state)
    if compressed:
        return pickle.dumps({"compressed": True, "data": gzip.compress(data).hex()})
    return pickle.dumps({"compressed": False, "data": data.decode()})


def row_of(frame: pd.DataFrame, contact_id: str) -> pd.Series:
    rows = frame[frame["contact_id"] == contact_id]
    assert len(rows) == 1, f"{contact_id}: {len(rows)} rows"
    return rows.iloc[0]


# the table -------------------------------------------------------------------------------

def test_empty_store_gives_an_empty_frame_with_every_column(
        memory: SyncBuyerConversationMemory) -> None:
    frame = scan_summaries(memory)
    assert len(frame) == 0
    assert set(COLUMNS) <= set(frame.columns)
    summary = summarize_inventory(frame)
    assert summary["total"] == 0 and summary["buyers"] == 0
    assert summary["compression_ratio"] is None
    assert len(problem_records(frame)) == 0


def test_one_row_per_buyer_with_what_was_saved(memory: SyncBuyerConversationMemory) -> None:
    buyers = seed(memory, 12)
    frame = scan_summaries(memory)
    assert sorted(frame["contact_id"]) == sorted(b.contact_id for b in buyers)
    for buyer in buyers:
        row = row_of(frame, buyer.contact_id)
        state = prepared(buyer)
        assert row["status"] == "ok"
        assert row["problem"] == ""
        assert row["schema_version"] == "1.0"
        assert row["temperature"] == state["buyer_temperature"]
        assert row["persona"] == state["buyer_persona"]
        assert row["journey_stage"] == state["current_journey_stage"]
        assert row["message_count"] == len(state["conversation_history"])
        assert bool(row["qa_seed"]) is True
        assert bool(row["is_qualified"]) is state["is_qualified"]
        assert row["last_interaction_epoch"] == int(buyer.interaction_time.timestamp())
        assert row["last_interaction"] == pd.Timestamp(
            int(buyer.interaction_time.timestamp()), unit="s", tz="UTC")


def test_a_buyer_without_the_qa_tag_is_not_a_qa_seed(
        memory: SyncBuyerConversationMemory, make_buyer_state: Any) -> None:
    state = make_buyer_state(7, messages=5)
    assert memory.save_state("real-buyer", state)
    row = row_of(scan_summaries(memory), "real-buyer")
    assert bool(row["qa_seed"]) is False
    assert bool(row["is_qualified"]) is state["is_qualified"]


def test_sizes_come_from_the_stored_bytes_and_the_json(
        store_url: str, raw: redis.Redis) -> None:
    # the threshold an existing jorge_bots.yaml sets: small states stay uncompressed
    config = MemoryConfig(compress_threshold_bytes=5120)
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        buyers = seed(memory, 10, history_range=(2, 60))
        frame = scan_summaries(memory)
        for row in frame.itertuples():
            assert row.stored_bytes == raw.strlen(key(row.contact_id)), row.contact_id
            assert row.compression_ratio == pytest.approx(row.original_bytes / row.stored_bytes)
        assert set(frame["codec"]) == {"none", "zstd"}  # both small and compressed records
        for buyer in buyers[:4]:
            expected = len(dump_json(prepared(buyer)))
            assert row_of(frame, buyer.contact_id)["original_bytes"] == expected
            assert memory.load_state(buyer.contact_id) == {**prepared(buyer),
                                                           "state_revision": 1}


def test_ttl_days_is_the_default_ttl(memory: SyncBuyerConversationMemory) -> None:
    seed(memory, 5)
    frame = scan_summaries(memory)
    for row in frame.itertuples():
        assert 30 * DAY_MS - 60_000 < row.ttl_ms <= 30 * DAY_MS
        assert row.ttl_days == pytest.approx(30, abs=0.01)


def test_ttl_days_follows_each_buyers_own_ttl(memory: SyncBuyerConversationMemory) -> None:
    buyers = seed(memory, 8, ttl_days_range=(1, 60))
    assert len({b.ttl_seconds for b in buyers}) > 1
    frame = scan_summaries(memory)
    for buyer in buyers:
        assert buyer.ttl_seconds is not None
        row = row_of(frame, buyer.contact_id)
        # the TTL left since the buyer's last interaction, as the bot's save would have left it
        assert row["ttl_days"] == pytest.approx(buyer.remaining_ttl_seconds() / 86_400,
                                                abs=0.01)


def test_persisted_keys_have_no_ttl(memory: SyncBuyerConversationMemory,
                                    raw: redis.Redis) -> None:
    buyers = seed(memory, 4)
    raw.persist(key(buyers[1].contact_id))
    frame = scan_summaries(memory)
    row = row_of(frame, buyers[1].contact_id)
    assert row["ttl_ms"] == -1
    assert math.isnan(row["ttl_days"])
    assert frame["ttl_days"].isna().sum() == 1


# problem keys ----------------------------------------------------------------------------

def test_garbage_bytes_are_corrupt_with_a_reason(memory: SyncBuyerConversationMemory,
                                                 raw: redis.Redis) -> None:
    raw.set(key("garbage"), b"\x00\x01 this is not a record")
    raw.set(key("empty"), b"")
    frame = scan_summaries(memory)
    for contact_id in ("garbage", "empty"):
        row = row_of(frame, contact_id)
        assert row["status"] == "corrupt"
        assert row["problem"]
        assert row["stored_bytes"] == raw.strlen(key(contact_id))


def test_a_hash_at_a_buyer_key_is_foreign(memory: SyncBuyerConversationMemory,
                                          raw: redis.Redis) -> None:
    raw.hset(key("someone-elses"), mapping={"owner": "another app"})
    row = row_of(scan_summaries(memory), "someone-elses")
    assert row["status"] == "foreign"
    assert "not a string key" in row["problem"]


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip-hex"])
def test_a_legacy_pickle_is_legacy(memory: SyncBuyerConversationMemory, raw: redis.Redis,
                                   compressed: bool) -> None:
    record = legacy_pickle({"buyer_temperature": "warm", "conversation_history": []},
                           compressed)
    raw.set(key("old-buyer"), record)
    row = row_of(scan_summaries(memory), "old-buyer")
    assert row["status"] == "legacy"
    assert "migrate-legacy" in row["problem"]
    assert row["stored_bytes"] == len(record)


def test_a_record_whose_dictionary_was_deleted_is_missing_dictionary(
        memory: SyncBuyerConversationMemory, raw: redis.Redis,
        zstd_dictionaries: Dictionaries) -> None:
    dictionary = zstd_dictionaries[0]
    dictionary_id = dictionary.dict_id()
    raw.set(dicts.dictionary_key(PREFIX, dictionary_id), dictionary.as_bytes())
    raw.set(dicts.current_dictionary_key(PREFIX), str(dictionary_id))
    buyers = seed(memory, 3, history_range=(40, 40))  # large enough to be compressed
    frame = scan_summaries(memory)
    assert set(frame["status"]) == {"ok"}
    assert set(frame["dictionary_id"]) == {dictionary_id}
    assert set(frame["codec"]) == {"zstd+dict"}  # the codec mix tells dictionaries apart

    raw.delete(dicts.dictionary_key(PREFIX, dictionary_id))
    frame = scan_summaries(memory)
    for buyer in buyers:
        row = row_of(frame, buyer.contact_id)
        assert row["status"] == "missing_dictionary"
        assert str(dictionary_id) in row["problem"]


def test_keys_outside_the_prefix_are_not_listed(memory: SyncBuyerConversationMemory,
                                                raw: redis.Redis) -> None:
    buyers = seed(memory, 3)
    raw.set("other_app:1", b"x")
    raw.set(f"{PREFIX}X:1", b"x")
    raw.set(f"{PREFIX}.zdict:current", b"123")
    raw.set(f"{PREFIX}.zdict:123", b"not really a dictionary")
    frame = scan_summaries(memory)
    assert sorted(frame["contact_id"]) == sorted(b.contact_id for b in buyers)


# scanning --------------------------------------------------------------------------------

def test_progress_reports_increasing_counts(memory: SyncBuyerConversationMemory) -> None:
    seed(memory, 40, history_range=(2, 4))
    calls: list[tuple[int, int]] = []
    frame = scan_summaries(memory, batch_size=7, progress=lambda d, t: calls.append((d, t)))
    assert len(frame) == 40
    assert len(calls) >= 2
    done = [d for d, _ in calls]
    assert done == sorted(set(done))  # strictly increasing
    assert all(total >= d for d, total in calls)
    assert done[-1] == 40


def test_small_batches_still_return_every_key_exactly_once(
        memory: SyncBuyerConversationMemory) -> None:
    buyers = seed(memory, 45, history_range=(2, 4))
    frame = scan_summaries(memory, batch_size=5)
    assert sorted(frame["contact_id"]) == sorted(b.contact_id for b in buyers)
    assert frame["contact_id"].is_unique


# summary ---------------------------------------------------------------------------------

def test_summarize_inventory_counts_everything(memory: SyncBuyerConversationMemory,
                                               raw: redis.Redis, make_buyer_state: Any) -> None:
    buyers = seed(memory, 10)
    assert memory.save_state("real-1", make_buyer_state(1, messages=5))
    assert memory.save_state("real-2", make_buyer_state(2, messages=60))
    raw.set(key("garbage"), b"garbage", ex=5 * 86_400)
    raw.hset(key("a-hash"), mapping={"owner": "another app"})
    raw.expire(key("a-hash"), 5 * 86_400)
    raw.set(key("legacy-1"), legacy_pickle({"buyer_temperature": "cold"}), ex=5 * 86_400)
    raw.persist(key(buyers[0].contact_id))
    raw.expire(key(buyers[1].contact_id), 3600)
    ok_ids = [b.contact_id for b in buyers] + ["real-1", "real-2"]
    states = {i: memory.load_state(i) for i in ok_ids}

    summary = summarize_inventory(scan_summaries(memory))

    assert summary["total"] == 15
    assert summary["buyers"] == 12
    assert summary["by_status"] == {"ok": 12, "corrupt": 1, "foreign": 1, "legacy": 1}
    assert summary["by_temperature"] == dict(
        Counter(s["buyer_temperature"] for s in states.values() if s))
    assert summary["qa_seeded"] == 10
    assert summary["corrupt"] == 2  # the garbage string and the hash
    assert summary["legacy"] == 1
    stored = sum(raw.strlen(key(i)) for i in ok_ids)
    original = sum(len(stored_json(s)) for s in states.values() if s)
    assert summary["stored_bytes"] == stored
    assert summary["original_bytes"] == original
    assert summary["compression_ratio"] == round(original / stored, 3)
    assert summary["ttl"]["no_ttl"] == 1
    assert summary["ttl"]["expiring_24h"] == 1
    # every key's "no TTL" and "expiring", the buyers' days left (as every "by" count):
    # 12 buyers, one without a TTL
    assert sum(summary["ttl"]["days_remaining"].values()) == 11
    assert orjson.loads(orjson.dumps(summary)) == summary


def test_problem_records_lists_only_the_rows_that_are_not_ok(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    seed(memory, 5)
    raw.set(key("garbage"), b"garbage")
    raw.hset(key("a-hash"), mapping={"owner": "another app"})
    raw.set(key("legacy-1"), legacy_pickle({"buyer_temperature": "cold"}))
    problems = problem_records(scan_summaries(memory))
    assert sorted(problems["contact_id"]) == ["a-hash", "garbage", "legacy-1"]
    assert list(problems.columns) == ["contact_id", "status", "problem", "stored_bytes"]
    assert "ok" not in set(problems["status"])
    assert all(problems["problem"].astype(bool))


def test_frame_columns_have_compact_types(memory: SyncBuyerConversationMemory) -> None:
    seed(memory, 3)
    frame = scan_summaries(memory)
    for name in ("stored_bytes", "original_bytes", "message_count", "ttl_ms"):
        assert frame[name].dtype == np.int64, name
    assert frame["qa_seed"].dtype == bool
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)


# faults (real Redis only) ----------------------------------------------------------------

@pytest.mark.real_redis
def test_scan_raises_store_unavailable_when_redis_stops_midway(
        real_redis_url: str, redis_server: RedisServer) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        seed(memory, 60, history_range=(2, 4))
        calls: list[int] = []

        def stop_after_first_batch(done: int, total: int) -> None:
            calls.append(done)
            redis_server.stop()

        try:
            with pytest.raises(StoreUnavailable):
                scan_summaries(memory, batch_size=5, progress=stop_after_first_batch)
            # It did stop mid-way: after the batches already read ahead (at most 3 more).
            assert 1 <= len(calls) <= 4 and 0 < calls[-1] < 60
        finally:
            redis_server.start()


def test_value_counts_text_labels_values_as_text_and_leaves_out_missing_and_empty() -> None:
    values = pd.Series(["warm", "hot", "warm", None, "warm"], dtype="category")
    values = values.cat.add_categories(["never-used"])
    counts = value_counts_text(values)
    assert list(counts.items()) == [("warm", 3), ("hot", 1)]
    assert list(value_counts_text(pd.Series([7, 7, 8])).items()) == [("7", 2), ("8", 1)]
    assert value_counts_text(pd.Series([], dtype="category")).empty
