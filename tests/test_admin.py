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

from memory_core import InvalidState, RevisionConflict, SyncBuyerConversationMemory, admin, audit
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
    # a success is logged at INFO: the audit trail records it, WARNING is for problems
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    lines = [r for r in caplog.records if r.name == "memory_core.admin"]
    assert len(lines) == 2
    assert all("buyer-11" in r.getMessage() for r in lines)
    assert "tester" in lines[0].getMessage()
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


# what the server costs --------------------------------------------------------------------

@pytest.mark.real_redis
def test_server_memory_reports_the_servers_own_figures_and_the_cost_per_buyer(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        buyers = seed(memory, 40)
        cost = admin.server_memory(memory, buyer_keys=40,
                                   sample_ids=[b.contact_id for b in buyers])
    info = real_raw.info("memory")
    assert cost.problems == ()
    assert cost.used_memory_bytes is not None and cost.used_memory_bytes > 0
    assert cost.peak_memory_bytes is not None
    assert cost.peak_memory_bytes >= cost.used_memory_bytes * 0.5
    assert cost.maxmemory_bytes == 0 and cost.maxmemory_share is None  # no limit set
    assert cost.maxmemory_policy == info["maxmemory_policy"]
    assert cost.evicted_keys == 0
    assert cost.fragmentation_ratio is not None and cost.fragmentation_ratio > 0
    # MEMORY USAGE counts the value and the key's overhead: more than the stored bytes
    assert cost.sampled_keys == 40
    stored = sum(real_raw.strlen(key(b.contact_id)) for b in buyers) / 40
    assert cost.sampled_key_bytes is not None and cost.sampled_key_bytes > stored
    estimate = cost.per_buyer_estimate_bytes
    assert estimate is not None
    assert estimate == (cost.used_memory_bytes - (cost.startup_memory_bytes or 0)) / 40
    assert not cost.near_limit


@pytest.mark.real_redis
def test_server_memory_warns_near_maxmemory(real_redis_url: str,
                                            real_raw: redis.Redis) -> None:
    used = int(real_raw.info("memory")["used_memory"])
    real_raw.config_set("maxmemory", str(int(used / 0.9)))  # 90% in use
    try:
        with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
            cost = admin.server_memory(memory)
    finally:
        real_raw.config_set("maxmemory", "0")
    assert cost.maxmemory_bytes is not None and cost.maxmemory_bytes > 0
    share = cost.maxmemory_share
    assert share is not None and admin.NEAR_LIMIT_SHARE <= share < 1
    assert cost.near_limit


@pytest.mark.real_redis
def test_server_memory_without_info_or_memory_usage_rights_degrades(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    real_raw.execute_command("ACL", "SETUSER", "no-info", "on", ">no-info-pw", "~*",
                             "+@all", "-info", "-memory")
    try:
        url = real_redis_url.replace("redis://", "redis://no-info:no-info-pw@")
        with SyncBuyerConversationMemory.from_url(url) as memory:
            buyers = seed(memory, 3)
            cost = admin.server_memory(memory, buyer_keys=3,
                                       sample_ids=[b.contact_id for b in buyers])
    finally:
        real_raw.execute_command("ACL", "DELUSER", "no-info")
    assert cost.used_memory_bytes is None and cost.maxmemory_bytes is None
    assert cost.per_buyer_estimate_bytes is None and cost.sampled_key_bytes is None
    assert any("INFO" in p for p in cost.problems)
    assert any("MEMORY USAGE" in p for p in cost.problems)


def test_server_memory_on_fakeredis_says_what_is_missing(fake_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(fake_url) as memory:
        seed(memory, 2)
        cost = admin.server_memory(memory, buyer_keys=2, sample_ids=["qa-1-000000"])
    assert cost.used_memory_bytes is None and cost.sampled_key_bytes is None
    assert len(cost.problems) == 2 and not cost.near_limit


def test_format_bytes_names_binary_units() -> None:
    assert admin.format_bytes(512) == "512 bytes"
    assert admin.format_bytes(1536) == "1.5 KiB"
    assert admin.format_bytes(95_637_504) == "91.2 MiB"
    assert admin.format_bytes(None) == "–"


# keys under the prefix that are not buyer records ----------------------------------------

HUGE = 1024 * 1024


def plant_other_types(client: redis.Redis) -> None:
    """One key of every type under the buyer prefix, with huge and hostile members."""
    client.hset(key("a-hash"), mapping={"f" * 300: "v" * HUGE, "esc\x1b[2J": "x"})
    client.rpush(key("a-list"), *[f"item-{i}" for i in range(50)], "L" * HUGE)
    client.sadd(key("a-set"), "m" * HUGE, "small")
    client.zadd(key("a-zset"), {"z" * HUGE: 1.5, "low": 0.5})
    client.xadd(key("a-stream"), {"field": "s" * HUGE, "other": "o"})
    client.set(key("garbage"), b"\x1b]0;pwned\x07" + b"G" * HUGE, ex=3600)


@pytest.mark.parametrize(("contact_id", "kind", "size", "unit"), [
    ("a-hash", "hash", 2, "fields"), ("a-list", "list", 51, "items"),
    ("a-set", "set", 2, "members"), ("a-zset", "zset", 2, "members"),
    ("a-stream", "stream", 1, "entries"), ("garbage", "string", HUGE + 10, "bytes"),
])
def test_inspect_key_is_bounded_and_escaped_for_every_type(
        memory: SyncBuyerConversationMemory, raw: redis.Redis, contact_id: str, kind: str,
        size: int, unit: str) -> None:
    plant_other_types(raw)
    found = admin.inspect_key(memory, contact_id)
    assert found.exists and found.redis_type == kind
    assert (found.size, found.size_unit) == (size, unit)
    assert found.deletable and not found.buyer_record and found.problem
    assert found.revision == 0
    # at most PREVIEW_BYTES of content, escaped (an ESC or BEL becomes visible text)
    assert 0 < len(found.preview) <= 4 * admin.PREVIEW_BYTES + 1
    assert found.preview_cut
    assert "\x1b" not in found.preview and "\x07" not in found.preview
    if contact_id == "garbage":
        assert found.preview.startswith("\\x1b]0;pwned\\x07GGG")
        assert 3500 < (found.ttl_seconds or 0) <= 3600
    else:
        assert found.ttl_seconds is None


@pytest.mark.real_redis
def test_inspect_key_measures_memory_on_real_redis(real_redis_url: str,
                                                  real_raw: redis.Redis) -> None:
    plant_other_types(real_raw)
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        found = admin.inspect_key(memory, "a-list")
    assert found.memory_bytes is not None and found.memory_bytes > HUGE
    assert found.preview.startswith("item-0 | item-1 | ")


def test_inspect_key_of_a_buyer_and_of_nothing(memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("real-1", {"buyer_temperature": "hot"})
    found = admin.inspect_key(memory, "real-1")
    assert found.buyer_record and not found.deletable and found.revision == 1
    gone = admin.inspect_key(memory, "nobody")
    assert not gone.exists and not gone.deletable


def test_delete_unreadable_key_deletes_only_what_holds_no_buyer_and_audits(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    plant_other_types(raw)
    raw.set(key("empty"), b"")
    assert memory.save_state("real-1", {"buyer_temperature": "hot"})
    for contact_id in ("a-hash", "garbage", "empty"):
        assert admin.delete_unreadable_key(memory, contact_id, actor="ops-ann") is True
        assert raw.exists(key(contact_id)) == 0
    assert admin.delete_unreadable_key(memory, "garbage", actor="ops-ann") is False
    with pytest.raises(InvalidState, match="buyer record"):
        admin.delete_unreadable_key(memory, "real-1", actor="ops-ann")
    assert raw.exists(key("real-1")) == 1
    events = [(e.action, e.contact_id, e.outcome) for e in
              audit.read_events(memory.client, memory.prefix)]
    assert events[:5] == [("delete_key", "real-1", "refused"),
                          ("delete_key", "garbage", "absent"),
                          ("delete_key", "empty", "deleted"),
                          ("delete_key", "garbage", "deleted"),
                          ("delete_key", "a-hash", "deleted")]


def test_delete_unreadable_key_keeps_a_buyer_the_bot_saved_since_the_operator_looked(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    raw.set(key("contact-9"), b"damaged bytes")
    looked = admin.inspect_key(memory, "contact-9")
    assert looked.deletable and looked.revision == 0
    assert memory.save_state("contact-9", {"buyer_temperature": "warm"})  # the bot, meanwhile
    with pytest.raises(InvalidState, match="buyer record"):
        admin.delete_unreadable_key(memory, "contact-9", expected_revision=looked.revision)
    loaded = memory.load_state("contact-9")
    assert loaded is not None and loaded["buyer_temperature"] == "warm"


def test_delete_unreadable_key_deletes_only_the_revision_the_operator_looked_at(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    raw.set(key("contact-7"), b"damaged bytes")
    looked = admin.inspect_key(memory, "contact-7")
    # meanwhile: saved twice, then damaged again (its header, and revision 2, still read)
    assert memory.save_state("contact-7", {"buyer_temperature": "hot"})
    assert memory.save_state("contact-7", {"buyer_temperature": "cold"})
    damaged = bytearray(raw.get(key("contact-7")) or b"")
    damaged[-1:] = b"#"
    raw.set(key("contact-7"), bytes(damaged))
    assert admin.inspect_key(memory, "contact-7").revision == 2
    with pytest.raises(RevisionConflict):
        admin.delete_unreadable_key(memory, "contact-7", expected_revision=looked.revision)
    assert raw.exists(key("contact-7")) == 1
    assert admin.delete_unreadable_key(memory, "contact-7", expected_revision=2) is True


@pytest.mark.real_redis
def test_a_record_whose_dictionary_is_missing_is_protected_not_deleted(
        real_redis_url: str, real_raw: redis.Redis, make_buyer_state: Any,
        zstd_dictionaries: tuple[Any, Any]) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        admin.store_dictionary(memory, zstd_dictionaries[0])
        assert memory.save_state("dict-buyer", make_buyer_state(5, messages=80))
    real_raw.delete(dicts.dictionary_key(PREFIX, zstd_dictionaries[0].dict_id()))
    with SyncBuyerConversationMemory.from_url(real_redis_url) as fresh:
        found = admin.inspect_key(fresh, "dict-buyer")
        assert found.problem and found.protected and not found.deletable
        with pytest.raises(InvalidState, match="cannot read"):
            admin.delete_unreadable_key(fresh, "dict-buyer")
    assert real_raw.exists(key("dict-buyer")) == 1
