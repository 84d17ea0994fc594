"""Stored dictionaries and the records naming each; pruning the unused ones safely."""

from __future__ import annotations

import time

import orjson
import pytest

from memory_core import admin, report
from memory_core import dictionaries as dicts
from memory_core.admin import clear_qa_seeds, train_dictionary_from_store
from memory_core.audit import read_events
from memory_core.cli import main
from memory_core.dictionary_use import dictionary_use, estimate_saving, prune_dictionaries
from memory_core.errors import InvalidState
from memory_core.store import SyncBuyerConversationMemory
from memory_core.testing import seed_buyers


def rotated_long_ago(memory: SyncBuyerConversationMemory) -> None:
    memory.client.set(dicts.rotated_at_key(memory.prefix), str(time.time() - 86_400))


def two_generations(memory: SyncBuyerConversationMemory) -> tuple[int, int]:
    """30 buyers without a dictionary, 20 with A, 10 with B (the current one)."""
    seed_buyers(memory, 30, seed=1, id_prefix="none-")
    first = train_dictionary_from_store(memory, sample_size=30, actor="test").dictionary_id
    seed_buyers(memory, 20, seed=2, id_prefix="first-")
    second = train_dictionary_from_store(memory, sample_size=30, dict_size_bytes=16_384,
                                         actor="test").dictionary_id
    seed_buyers(memory, 10, seed=3, id_prefix="second-")
    return first, second


def test_each_dictionary_is_listed_with_the_records_naming_it(
        memory: SyncBuyerConversationMemory) -> None:
    first, second = two_generations(memory)
    use = dictionary_use(memory)
    listed = {d.dictionary_id: (d.records, d.current, d.stored_bytes) for d in use.dictionaries}
    assert listed == {first: (20, False, 65_536), second: (10, True, 16_384)}
    assert use.records_without == 30 and use.missing == {}
    assert use.since_rotation is not None and use.since_rotation < 60
    assert use.removable() == []


def test_a_record_naming_a_dictionary_that_is_gone_is_reported(
        memory: SyncBuyerConversationMemory) -> None:
    first, _ = two_generations(memory)
    memory.client.delete(dicts.dictionary_key(memory.prefix, first))
    use = dictionary_use(memory)
    assert use.missing == {first: 20}
    assert first not in {d.dictionary_id for d in use.dictionaries}


def test_pruning_waits_after_a_rotation_then_removes_only_the_unused(
        memory: SyncBuyerConversationMemory) -> None:
    first, second = two_generations(memory)
    clear_qa_seeds(memory, actor="test")  # no record names either dictionary now
    use = dictionary_use(memory)
    assert [d.dictionary_id for d in use.removable()] == [first]  # never the current one
    with pytest.raises(InvalidState, match=r"made current 0 s ago.*Nothing was removed"):
        prune_dictionaries(memory, use, actor="ops-test")
    assert memory.client.exists(dicts.dictionary_key(memory.prefix, first))

    rotated_long_ago(memory)
    assert prune_dictionaries(memory, dictionary_use(memory), actor="ops-test") == [first]
    assert not memory.client.exists(dicts.dictionary_key(memory.prefix, first))
    assert memory.client.exists(dicts.dictionary_key(memory.prefix, second))
    events = [e for e in read_events(memory.client, memory.prefix)
              if e.action == "prune_dictionary"]
    assert len(events) == 1 and events[0].actor == "ops-test" and str(first) in events[0].detail


def test_a_dictionary_still_named_is_kept_and_its_records_load(
        memory: SyncBuyerConversationMemory) -> None:
    first, second = two_generations(memory)
    rotated_long_ago(memory)
    assert prune_dictionaries(memory, dictionary_use(memory), actor="test") == []
    for kept in (first, second):
        assert memory.client.exists(dicts.dictionary_key(memory.prefix, kept))
    ids = [key.decode().split(":", 1)[1]
           for key in memory.client.scan_iter(match=memory.scan_pattern)]
    assert len(ids) == 60 and all(memory.load_state(i) is not None for i in ids)


def test_the_cli_lists_and_prunes(real_redis_url: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        first, second = two_generations(memory)
        clear_qa_seeds(memory, actor="test")
    assert main(["--redis-url", real_redis_url, "dictionaries", "--json"]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert {d["dictionary_id"] for d in listed["dictionaries"]} == {first, second}
    assert main(["--redis-url", real_redis_url, "prune-dictionaries", "--yes"]) == 2
    assert "run this again in" in capsys.readouterr().err  # right after training
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        rotated_long_ago(memory)
    assert main(["--redis-url", real_redis_url, "prune-dictionaries"]) == 2  # no tty: no yes
    assert "nothing removed" in capsys.readouterr().err
    assert main(["--redis-url", real_redis_url, "prune-dictionaries", "--yes"]) == 0
    assert f"removed 1 unused dictionary(ies) (65,536 bytes): {first}" in capsys.readouterr().out
    assert main(["--redis-url", real_redis_url, "dictionaries"]) == 0
    out = capsys.readouterr().out
    assert str(second) in out and "current" in out and str(first) not in out


def test_train_if_worthwhile_trains_once_then_says_why_not(
        real_redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """For cron: exit 0 either way, with one line saying what it did."""
    argv = ["--redis-url", real_redis_url, "train-dictionary", "--if-worthwhile"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("not trained: training a dictionary needs")
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        seed_buyers(memory, 120, seed=4)
        estimate = estimate_saving(memory, sample_size=120)
        assert estimate.current_id is None and estimate.measured == 60
        assert estimate.saving > 0.3  # a dictionary against none, on generated states
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("trained dictionary ") and "against no dictionary" in out
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        current = memory.client.get(dicts.current_dictionary_key(memory.prefix))
    assert main(argv) == 0  # the fresh dictionary is no better than the current one
    out = capsys.readouterr().out
    assert out.startswith("not trained: a new dictionary would save") and (
        f"against dictionary {current.decode()}" in out)
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        assert memory.client.get(dicts.current_dictionary_key(memory.prefix)) == current


def test_sampling_states_for_a_dictionary_stops_once_it_has_enough(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store of millions is not walked (nor held) to pick a sample of thousands."""
    seed_buyers(memory, 2500, seed=5)
    read: list[int] = []
    real = report.summary_chunks

    def counting(*args: object, **kwargs: object) -> object:
        for chunk in real(*args, **kwargs):  # type: ignore[arg-type]
            read.append(len(chunk))
            yield chunk

    monkeypatch.setattr(report, "summary_chunks", counting)
    records = admin.sample_records(memory, 40)
    assert len({r.contact_id for r in records}) == len(records) == 40
    assert 40 <= sum(read) < 2500


@pytest.mark.parametrize("planted", [b"x" * 5_000_000, b"nan", b"inf", b"-1e999",
                                     b"\x1b[2J\x00\xff", b"![x](http://a.invalid/p)"])
def test_a_hostile_rotation_time_is_read_bounded_and_ignored(
        memory: SyncBuyerConversationMemory, planted: bytes) -> None:
    memory.client.set(dicts.rotated_at_key(memory.prefix), planted)
    assert dictionary_use(memory).since_rotation is None


def test_a_rotation_time_key_of_another_type_is_ignored(
        memory: SyncBuyerConversationMemory) -> None:
    memory.client.hset(dicts.rotated_at_key(memory.prefix), mapping={"a": "b"})
    assert dictionary_use(memory).since_rotation is None


def test_a_pinned_dictionary_counts_as_current_and_is_never_pruned(store_url: str) -> None:
    """With dictionary_id pinned, saves use that one; the store's pointer names another
    that unpinned bots follow: both are current, the bytes say so, neither is pruned."""
    from memory_core.config import MemoryConfig

    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        first, second = two_generations(memory)
    pinned_config = MemoryConfig(dictionary_id=first)
    with SyncBuyerConversationMemory.from_url(store_url, pinned_config) as pinned:
        clear_qa_seeds(pinned, actor="test")  # no record names either dictionary now
        rotated_long_ago(pinned)
        seed_buyers(pinned, 5, seed=4, id_prefix="pinned-")  # saved with the pinned one
        use = dictionary_use(pinned)
        assert {d.dictionary_id: d.current for d in use.dictionaries} == {first: True,
                                                                          second: True}
        assert use.stored_bytes_by_dictionary["current"] > 0  # the pinned one's records
        assert use.removable() == []
        assert prune_dictionaries(pinned, use, actor="ops-test") == []
