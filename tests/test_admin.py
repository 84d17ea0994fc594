"""Operator actions: delete, TTL reset, QA seeds, legacy migration, dictionaries, scenarios.

Behaviour tests take ``store_url`` and run on fakeredis and on the private redis-server.
"""

from __future__ import annotations

import gzip
import logging
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from memory_core import InvalidState, SyncBuyerConversationMemory, admin
from memory_core import dictionaries as dicts
from memory_core.inventory import scan_summaries
from memory_core.seeding import SeedBuyer, SeedOptions, generate_buyers
from memory_core.testing import seed_buyers

PREFIX = "buyer_conversation_memory"
DAY = 86_400
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def key(contact_id: str) -> str:
    return f"{PREFIX}:{contact_id}"


def seed(memory: SyncBuyerConversationMemory, count: int, seed: int = 1,
         **options: Any) -> list[SeedBuyer]:
    """``count`` QA buyers with interaction times before NOW, saved."""
    return seed_buyers(memory, count, seed=seed, now=NOW, **options)


def legacy_pickle(state: dict[str, Any], compressed: bool = False) -> bytes:
    """A record of the old system: a pickled {"compressed", "data"} envelope."""
    data = orjson.dumps(state)
    if compressed:
        return pickle.dumps({"compressed": True, "data": gzip.compress(data).hex()})
    return pickle.dumps({"compressed": False, "data": data.decode()})


def snapshot(client: redis.Redis) -> dict[bytes, Any]:
    """Every key with its value (strings) or type (others) and whether it has a TTL."""
    result: dict[bytes, Any] = {}
    for name in client.scan_iter(count=1000):
        kind = client.type(name)
        value = client.get(name) if kind == b"string" else kind
        result[name] = (value, client.ttl(name) >= 0)
    return result


# delete and TTL --------------------------------------------------------------------------

def test_delete_buyer_says_whether_it_existed_and_logs_without_pii(
        memory: SyncBuyerConversationMemory, raw: redis.Redis, make_buyer_state: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="memory_core")
    state = make_buyer_state(11, messages=4)
    assert memory.save_state("buyer-11", state)
    assert admin.delete_buyer(memory, "buyer-11", actor="tester") is True
    assert raw.exists(key("buyer-11")) == 0
    assert admin.delete_buyer(memory, "buyer-11") is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("buyer-11" in r.getMessage() for r in warnings)
    assert "tester" in warnings[0].getMessage()
    for value in (state["buyer_name"], state["buyer_phone"], state["buyer_email"]):
        assert value not in caplog.text


def test_reset_ttl_gives_the_default_ttl_again(memory: SyncBuyerConversationMemory,
                                               raw: redis.Redis) -> None:
    assert memory.save_state("buyer", {"buyer_temperature": "hot"})
    raw.expire(key("buyer"), 100)
    assert admin.reset_ttl(memory, "buyer") is True
    assert 30 * DAY - 60 < raw.ttl(key("buyer")) <= 30 * DAY
    assert admin.reset_ttl(memory, "nobody") is False
    assert raw.exists(key("nobody")) == 0


# QA seeds --------------------------------------------------------------------------------

def test_clear_qa_seeds_deletes_only_qa_seeds(memory: SyncBuyerConversationMemory,
                                              raw: redis.Redis, make_buyer_state: Any) -> None:
    buyers = seed(memory, 6)
    assert memory.save_state("qa-real-buyer", make_buyer_state(3, messages=4))
    raw.set(key("qa-garbage"), b"garbage")
    assert sorted(admin.qa_seed_ids(memory)) == sorted(b.contact_id for b in buyers)
    assert admin.clear_qa_seeds(memory) == 6
    assert sorted(raw.keys(f"{PREFIX}:*")) == [key("qa-garbage").encode(),
                                               key("qa-real-buyer").encode()]
    assert admin.qa_seed_ids(memory) == []


def test_clear_qa_seeds_keeps_a_key_a_real_buyer_overwrote_since_the_scan(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    buyers = seed(memory, 4)
    ids = admin.qa_seed_ids(memory)
    overwritten = buyers[2].contact_id
    assert overwritten in ids
    assert memory.save_state(overwritten, {"buyer_temperature": "hot"})  # no qa_seed tag
    assert admin.clear_qa_seeds(memory, ids) == 3
    assert raw.exists(key(overwritten)) == 1
    assert [raw.exists(key(b.contact_id)) for b in buyers] == [0, 0, 1, 0]


# legacy migration ------------------------------------------------------------------------

def test_migrate_legacy_dry_run_changes_nothing(memory: SyncBuyerConversationMemory,
                                                raw: redis.Redis) -> None:
    seed(memory, 2)
    raw.set(key("old-1"), legacy_pickle({"buyer_temperature": "warm"}), ex=5 * DAY)
    raw.set(key("old-2"), legacy_pickle({"buyer_temperature": "cold"}, compressed=True))
    before = snapshot(raw)
    report = admin.migrate_legacy(memory, dry_run=True)
    assert report.dry_run is True
    assert (report.found, report.migrated, report.failed) == (2, 2, {})
    assert snapshot(raw) == before


def test_migrate_legacy_rewrites_records_and_keeps_their_ttl(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    history = [{"role": "user", "content": "Still looking for a condo."}]
    states = {
        "plain": {"buyer_temperature": "warm", "conversation_history": history},
        "gzipped": {"buyer_temperature": "hot", "buyer_persona": "investor",
                    "conversation_history": history * 3},
        "forever": {"buyer_temperature": "cold"},
    }
    raw.set(key("plain"), legacy_pickle(states["plain"]), ex=5 * DAY)
    raw.set(key("gzipped"), legacy_pickle(states["gzipped"], compressed=True), ex=12 * DAY)
    raw.set(key("forever"), legacy_pickle(states["forever"]))
    ttl_before = {name: raw.pttl(key(name)) for name in states}

    report = admin.migrate_legacy(memory)

    assert (report.dry_run, report.found, report.migrated, report.failed) == (
        False, 3, 3, {})
    for name, state in states.items():
        stored = raw.get(key(name))
        assert stored is not None and stored.startswith(b"BCM1"), name
        loaded = memory.load_state(name)
        assert loaded is not None
        for field, value in state.items():
            assert loaded[field] == value, (name, field)
        assert loaded["state_version"] == "1.0"
    assert abs(raw.pttl(key("plain")) - ttl_before["plain"]) <= 2000
    assert abs(raw.pttl(key("gzipped")) - ttl_before["gzipped"]) <= 2000
    assert raw.pttl(key("forever")) == -1
    frame = scan_summaries(memory)
    assert set(frame["status"]) == {"ok"}
    assert admin.migrate_legacy(memory).found == 0


@pytest.mark.parametrize("version_field", [{}, {"state_version": "0.9"}],
                         ids=["unversioned", "0.9"])
def test_migrate_legacy_upgrades_0_9_states_to_1_0(
        memory: SyncBuyerConversationMemory, raw: redis.Redis,
        version_field: dict[str, str]) -> None:
    old = {"buyer_temperature": "warm", "urgency": "3-6 months", **version_field,
           "conversation_history": [{"role": "user", "content": "Maybe next spring."}]}
    raw.set(key("old-09"), legacy_pickle(old, compressed=True), ex=20 * DAY)
    read_before = memory.load_state("old-09")  # the reader upgrades on the fly
    assert read_before is not None and read_before["urgency_level"] == "3-6 months"

    assert admin.migrate_legacy(memory).migrated == 1

    loaded = memory.load_state("old-09")
    assert loaded is not None
    assert loaded["state_version"] == "1.0"
    assert loaded["urgency_level"] == "3-6 months"  # not the "unknown" default
    assert "urgency" not in loaded


class _Exploit:
    """Unpickling this calls ``_touch(path)``: what an attacker's legacy record would do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _touch, (str(self.path),)


def _touch(path: str) -> None:
    Path(path).write_text("code ran")


def test_migrate_legacy_refuses_a_malicious_pickle_without_running_it(
        memory: SyncBuyerConversationMemory, raw: redis.Redis, tmp_path: Path) -> None:
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Exploit(control)))  # the payload is live with plain pickle
    assert control.exists()
    target = tmp_path / "pwned"
    payload = pickle.dumps({"compressed": False, "data": _Exploit(target)})
    raw.set(key("evil"), payload, ex=3 * DAY)
    raw.set(key("fine"), legacy_pickle({"buyer_temperature": "hot"}), ex=3 * DAY)

    report = admin.migrate_legacy(memory)

    assert not target.exists()
    assert list(report.failed) == ["evil"]
    assert "refused" in report.failed["evil"]
    assert (report.found, report.migrated) == (2, 1)
    assert raw.get(key("evil")) == payload
    assert raw.ttl(key("evil")) > 0


# dictionaries ----------------------------------------------------------------------------

def test_training_needs_at_least_20_states(memory: SyncBuyerConversationMemory,
                                           raw: redis.Redis) -> None:
    seed(memory, 19)
    with pytest.raises(InvalidState, match="at least 20"):
        admin.train_dictionary_from_store(memory, dict_size_bytes=16 * 1024)
    assert raw.keys(f"{PREFIX}.zdict:*") == []


def test_trained_dictionary_is_stored_and_used_by_new_saves(
        store_url: str, memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    seed(memory, 60, history_range=(20, 60))
    trained = admin.train_dictionary_from_store(memory, dict_size_bytes=16 * 1024)
    assert trained.samples == 60
    stored = raw.get(dicts.dictionary_key(PREFIX, trained.dictionary_id))
    assert stored is not None and len(stored) == trained.dictionary_bytes
    assert raw.get(dicts.current_dictionary_key(PREFIX)) == str(trained.dictionary_id).encode()

    new = next(iter(generate_buyers(SeedOptions(count=1, seed=99, history_range=(40, 40)),
                                    now=NOW)))
    with SyncBuyerConversationMemory.from_url(store_url) as writer:  # a writer starting up
        assert writer.save_state("new-buyer", new.state)
        record = writer.read_record("new-buyer")
    assert record is not None and record.summary is not None
    assert record.summary.codec == "zstd"
    assert record.summary.dictionary_id == trained.dictionary_id
    loaded = memory.load_state("new-buyer")
    assert loaded is not None
    assert loaded["conversation_history"] == new.state["conversation_history"][-50:]


def test_training_again_rotates_and_older_records_stay_readable(
        store_url: str, memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    seed(memory, 40, seed=1, history_range=(20, 60))
    first = admin.train_dictionary_from_store(memory, dict_size_bytes=16 * 1024)
    with SyncBuyerConversationMemory.from_url(store_url) as writer:
        second_batch = seed(writer, 40, seed=2, history_range=(40, 60))
        written_with_first = writer.read_record(second_batch[0].contact_id)
    assert written_with_first is not None and written_with_first.summary is not None
    assert written_with_first.summary.dictionary_id == first.dictionary_id

    second = admin.train_dictionary_from_store(memory, dict_size_bytes=16 * 1024)

    assert second.dictionary_id != first.dictionary_id
    assert raw.get(dicts.current_dictionary_key(PREFIX)) == str(second.dictionary_id).encode()
    assert raw.exists(dicts.dictionary_key(PREFIX, first.dictionary_id)) == 1
    with SyncBuyerConversationMemory.from_url(store_url) as reader:  # empty dictionary cache
        for buyer in second_batch:
            loaded = reader.load_state(buyer.contact_id)
            assert loaded is not None, buyer.contact_id
            assert loaded["buyer_name"] == buyer.state["buyer_name"]
        assert reader.save_state("after-rotation", second_batch[0].state)
        record = reader.read_record("after-rotation")
    assert record is not None and record.summary is not None
    assert record.summary.dictionary_id == second.dictionary_id


# scenario files --------------------------------------------------------------------------

SINGLE_JSON = '{"contact_id": "qa-one", "buyer_temperature": "hot"}'
LIST_JSON = ('[{"contact_id": "qa-one", "buyer_temperature": "hot"},'
             ' {"contact_id": "qa-two", "state": {"buyer_temperature": "cold"}}]')
LIST_YAML = """\
- contact_id: qa-one
  buyer_temperature: hot
- contact_id: qa-two
  state:
    buyer_temperature: cold
"""


@pytest.mark.parametrize(("content", "expected"), [
    (SINGLE_JSON, [("qa-one", {"buyer_temperature": "hot"})]),
    (SINGLE_JSON.encode(), [("qa-one", {"buyer_temperature": "hot"})]),
    ("contact_id: qa-one\nbuyer_temperature: hot\n", [("qa-one", {"buyer_temperature": "hot"})]),
    (LIST_JSON, [("qa-one", {"buyer_temperature": "hot"}),
                 ("qa-two", {"buyer_temperature": "cold"})]),
    (LIST_YAML, [("qa-one", {"buyer_temperature": "hot"}),
                 ("qa-two", {"buyer_temperature": "cold"})]),
], ids=["json-mapping", "json-bytes", "yaml-mapping", "json-list", "yaml-list"])
def test_parse_scenarios_accepts_every_documented_form(
        content: str | bytes, expected: list[tuple[str, dict[str, Any]]]) -> None:
    scenarios = admin.parse_scenarios(content, "qa.file")
    assert [(s.contact_id, s.state) for s in scenarios] == expected


@pytest.mark.parametrize(("content", "fragments"), [
    ("[]", ["qa.file", "no states"]),
    ('[{"contact_id": "qa-1"}, 42]', ["item 2", "mapping"]),
    ('[{"buyer_temperature": "hot"}]', ["item 1", "contact_id"]),
    ('[{"contact_id": "qa-1"}, {"contact_id": "has space"}]', ["item 2", "contact_id"]),
    ('[{"contact_id": 17}]', ["item 1", "contact_id"]),
    ('[{"contact_id": "qa-1"}, {"contact_id": "qa-1"}]', ["item 2", "appears twice"]),
    ("- contact_id: qa-1\n  buyer_temperature: hot\n - contact_id: qa-2\n",
     ["qa.file", "line 3"]),
], ids=["empty-list", "not-a-mapping", "missing-id", "invalid-id", "non-string-id",
        "duplicate-id", "invalid-yaml"])
def test_parse_scenarios_names_what_is_wrong(content: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidState) as excinfo:
        admin.parse_scenarios(content, "qa.file")
    for fragment in fragments:
        assert fragment in str(excinfo.value)


def test_a_duplicate_id_is_reported_with_its_own_item_number() -> None:
    content = ('[{"contact_id": "bad id"}, {"contact_id": "qa-1"},'
               ' {"contact_id": "qa-1"}]')
    with pytest.raises(InvalidState) as excinfo:
        admin.parse_scenarios(content, "qa.file")
    message = str(excinfo.value)
    assert "item 1" in message
    assert "item 3: contact_id 'qa-1' appears twice" in message


def test_a_state_that_save_would_refuse_is_named_and_nothing_is_written(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    content = """\
- contact_id: qa-1
  buyer_temperature: hot
- contact_id: qa-2
  conversation_history: "not a list"
"""
    with pytest.raises(InvalidState) as excinfo:
        admin.seed_scenarios(memory, admin.parse_scenarios(content, "bad.yaml"))
    assert raw.dbsize() == 0
    message = str(excinfo.value)
    assert "conversation_history" in message
    assert "item 2" in message


def test_seed_scenarios_tags_every_state_as_a_qa_seed(memory: SyncBuyerConversationMemory) -> None:
    assert admin.seed_scenarios(memory, admin.parse_scenarios(LIST_YAML)).written == 2
    for contact_id, temperature in (("qa-one", "hot"), ("qa-two", "cold")):
        loaded = memory.load_state(contact_id)
        assert loaded is not None
        assert loaded["qa_seed"] is True
        assert loaded["buyer_temperature"] == temperature
    assert sorted(admin.qa_seed_ids(memory)) == ["qa-one", "qa-two"]


# server facts ----------------------------------------------------------------------------

def test_describe_store_counts_keys_and_names_the_dictionary(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    seed(memory, 3)
    raw.set("other_app:1", b"x")
    facts = admin.describe_store(memory)
    assert facts["keys"] == 4
    assert facts["dictionary_id"] is None
    raw.set(dicts.current_dictionary_key(PREFIX), b"12345")
    assert admin.describe_store(memory)["dictionary_id"] == 12345


@pytest.mark.real_redis
def test_describe_store_reports_the_redis_version(real_redis_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        facts = admin.describe_store(memory)
    assert isinstance(facts["redis_version"], str)
    assert facts["redis_version"].split(".")[0].isdigit()
    assert isinstance(facts["used_memory_bytes"], int) and facts["used_memory_bytes"] > 0
    assert facts["keys"] == 0
