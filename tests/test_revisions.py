"""Revisions, conditional saves and update_state; operator writes that never lose a save.

Behaviour tests take ``store_url`` and run on fakeredis (with its Lua extra) and on the
private redis-server, because the check and the write are one server-side script.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from typing import Any

import pytest
import redis

from memory_core import (
    BuyerConversationMemory,
    InvalidState,
    MemoryConfig,
    RevisionConflict,
    SyncBuyerConversationMemory,
    admin,
    scripts,
)
from memory_core.cli import main as cli_main
from memory_core.inventory import scan_summaries
from memory_core.record import MAGIC, SEPARATOR, encode_record, parse_summary
from memory_core.state import STATE_DEFAULTS, dump_json, prepare_state, utc_now

PREFIX = "buyer_conversation_memory"


def key(contact_id: str) -> str:
    return f"{PREFIX}:{contact_id}"


def memory_logs(caplog: pytest.LogCaptureFixture, level: int = logging.INFO
                ) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("memory_core") and r.levelno >= level]


def twelve_field_record(state: dict[str, Any]) -> bytes:
    """A record as the code before revisions wrote it: the same header, one field fewer."""
    prepared = prepare_state(state, max_history_messages=50, now=utc_now())
    record = encode_record(prepared, dump_json(prepared), compress_threshold_bytes=5120,
                           codec="zstd", zstd_level=3)
    header, _, payload = record.partition(b"\n")
    return header.rsplit(SEPARATOR, 1)[0] + b"\n" + payload


# revisions -----------------------------------------------------------------------------

def test_every_save_increments_the_revision(memory: SyncBuyerConversationMemory,
                                            raw: redis.Redis) -> None:
    assert memory.save_state("buyer", {"buyer_temperature": "warm"})
    first = memory.load_state("buyer")
    assert first is not None and first["state_revision"] == 1
    assert memory.save_state("buyer", {**first, "state_revision": 99})  # ignored
    second = memory.load_state("buyer")
    assert second is not None and second["state_revision"] == 2
    stored = raw.get(key("buyer"))
    assert stored is not None and b"state_revision" not in stored  # in the header only
    assert parse_summary(stored).revision == 2


def test_a_record_from_before_revisions_loads_as_revision_0(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    raw.set(key("old"), twelve_field_record({"buyer_temperature": "cold"}))
    loaded = memory.load_state("old")
    assert loaded is not None
    assert loaded["buyer_temperature"] == "cold" and loaded["state_revision"] == 0
    assert scan_summaries(memory).set_index("contact_id").loc["old", "revision"] == 0
    assert memory.save_state("old", loaded, expected_revision=0)
    again = memory.load_state("old")
    assert again is not None and again["state_revision"] == 1


def test_the_scan_shows_each_revision(memory: SyncBuyerConversationMemory) -> None:
    for _ in range(3):
        assert memory.save_state("thrice", {})
    assert memory.save_state("once", {})
    frame = scan_summaries(memory).set_index("contact_id")
    assert frame.loc["thrice", "revision"] == 3
    assert frame.loc["once", "revision"] == 1


# conditional saves ---------------------------------------------------------------------

def test_a_save_at_the_loaded_revision_writes(memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("buyer", {"buyer_temperature": "warm"})
    state = memory.load_state("buyer")
    assert state is not None
    state["buyer_temperature"] = "hot"
    assert memory.save_state("buyer", state, expected_revision=state["state_revision"])
    loaded = memory.load_state("buyer")
    assert loaded is not None and loaded["buyer_temperature"] == "hot"
    assert loaded["state_revision"] == 2


def test_a_stale_save_writes_nothing_and_logs_one_conflict_line(
        memory: SyncBuyerConversationMemory, raw: redis.Redis,
        caplog: pytest.LogCaptureFixture) -> None:
    assert memory.save_state("buyer", {"conversation_history": [{"role": "user",
                                                                  "content": "first"}]})
    stale = memory.load_state("buyer")
    assert stale is not None
    other = dict(stale, conversation_history=[*stale["conversation_history"],
                                              {"role": "user", "content": "second"}])
    assert memory.save_state("buyer", other, expected_revision=stale["state_revision"])
    before = raw.get(key("buyer"))
    caplog.set_level(logging.INFO, logger="memory_core")
    assert memory.save_state("buyer", stale, expected_revision=stale["state_revision"]) is False
    assert raw.get(key("buyer")) == before
    logs = memory_logs(caplog)
    assert len(logs) == 1
    message = logs[0].getMessage()
    assert "conflict" in message and "expected revision 1" in message and "revision 2" in message
    assert memory.get_stats()["conflicts"] == 1


def test_a_missing_record_counts_as_revision_0(memory: SyncBuyerConversationMemory,
                                              raw: redis.Redis) -> None:
    assert memory.save_state("new", {}, expected_revision=1) is False
    assert raw.exists(key("new")) == 0
    assert memory.save_state("new", {}, expected_revision=0)
    assert memory.save_state("new", {}, expected_revision=0) is False  # taken meanwhile


@pytest.mark.parametrize("bad", [-1, 1.0, "2", True])
def test_a_bad_expected_revision_is_refused(memory: SyncBuyerConversationMemory,
                                            raw: redis.Redis, bad: object) -> None:
    assert memory.save_state("buyer", {}, expected_revision=bad) is False  # type: ignore[arg-type]
    assert raw.exists(key("buyer")) == 0
    assert memory.get_stats()["refused"] == 1


def test_the_async_store_saves_conditionally(store_url: str) -> None:
    async def scenario() -> tuple[bool, bool, int]:
        async with BuyerConversationMemory.from_url(store_url) as memory:
            await memory.save_state("buyer", {})
            loaded = await memory.load_state("buyer")
            assert loaded is not None
            first = await memory.save_state("buyer", loaded, expected_revision=1)
            second = await memory.save_state("buyer", loaded, expected_revision=1)
            final = await memory.load_state("buyer")
            assert final is not None
            return first, second, final["state_revision"]

    assert asyncio.run(scenario()) == (True, False, 2)


@pytest.mark.real_redis
def test_a_flushed_script_cache_is_reloaded(any_real_url: str) -> None:
    """A restart, SCRIPT FLUSH, or on a cluster a promoted replica: scripts are gone."""
    with SyncBuyerConversationMemory.from_url(any_real_url) as memory:
        assert memory.save_state("buyer", {})
        memory.client.script_flush()
        assert memory.save_state("buyer", {})
        memory.client.script_flush()
        assert admin.clear_qa_seeds(memory, ["buyer"]) == 0
        loaded = memory.load_state("buyer")
        memory.client.script_flush()

    async def bot() -> tuple[Any, Any, Any]:
        async with BuyerConversationMemory.from_url(any_real_url) as memory:
            saved = await memory.save_state("buyer", {})
            await memory.client.script_flush()
            updated = await memory.update_state("buyer", lambda state: state)
            return saved, updated, await memory.load_state("buyer")

    saved, updated, final = asyncio.run(bot())
    assert loaded is not None and loaded["state_revision"] == 2
    assert saved and updated is not None and final["state_revision"] == 4


# update_state ----------------------------------------------------------------------------

def test_update_state_gives_a_new_buyer_the_defaults(memory: SyncBuyerConversationMemory) -> None:
    seen: list[dict[str, Any]] = []

    def add_greeting(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(copy.deepcopy(state))
        state["conversation_history"].append({"role": "user", "content": "hello"})
        return state

    saved = memory.update_state("new", add_greeting)
    assert seen[0]["state_revision"] == 0
    assert {k: seen[0][k] for k in STATE_DEFAULTS} == STATE_DEFAULTS
    assert saved is not None and saved["state_revision"] == 1
    assert saved["conversation_history"] == [{"role": "user", "content": "hello"}]
    assert memory.load_state("new") == saved
    assert STATE_DEFAULTS["conversation_history"] == []  # the defaults were copied


def test_update_state_accepts_a_function_that_changes_the_state_in_place(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("buyer", {"buyer_temperature": "cold"})
    saved = memory.update_state("buyer", lambda state: state.update(buyer_temperature="hot"))
    assert saved is not None and saved["buyer_temperature"] == "hot"
    assert saved["state_revision"] == 2


def test_update_state_retries_on_a_conflict_and_keeps_both_changes(
        store_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(store_url) as memory, \
            SyncBuyerConversationMemory.from_url(store_url) as other_worker:
        assert memory.save_state("buyer", {"objection_history": []})
        calls = 0

        def add_objection(state: dict[str, Any]) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:  # another worker saves while this one thinks
                other_worker.update_state("buyer", lambda s: s.update(
                    objection_history=[*s["objection_history"], "price"]))
            state["objection_history"].append("location")
            return state

        saved = memory.update_state("buyer", add_objection)
        assert calls == 2
        assert saved is not None and saved["objection_history"] == ["price", "location"]
        assert saved["state_revision"] == 3
        assert memory.get_stats()["conflicts"] == 1


def test_update_state_gives_up_with_one_warning(memory: SyncBuyerConversationMemory,
                                                raw: redis.Redis,
                                                caplog: pytest.LogCaptureFixture) -> None:
    assert memory.save_state("buyer", {})

    def always_overtaken(state: dict[str, Any]) -> dict[str, Any]:
        assert memory.save_state("buyer", {"buyer_temperature": "cold"})
        return {**state, "buyer_temperature": "hot"}

    caplog.set_level(logging.WARNING, logger="memory_core")
    assert memory.update_state("buyer", always_overtaken, retries=2) is None
    loaded = memory.load_state("buyer")
    assert loaded is not None and loaded["buyer_temperature"] == "cold"
    assert loaded["state_revision"] == 4  # the three competing saves, none of ours
    logs = memory_logs(caplog, logging.WARNING)
    assert len(logs) == 1 and "gave up after 3 conflicting saves" in logs[0].getMessage()


def test_an_exception_in_the_update_function_reaches_the_caller(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    assert memory.save_state("buyer", {})
    before = raw.get(key("buyer"))

    def buggy(state: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("budget")

    with pytest.raises(KeyError, match="budget"):
        memory.update_state("buyer", buggy)
    assert raw.get(key("buyer")) == before
    assert memory.get_stats()["errors"] == 0


def test_the_sync_store_refuses_an_async_update_function(
        memory: SyncBuyerConversationMemory) -> None:
    async def update(state: dict[str, Any]) -> dict[str, Any]:
        return state

    with pytest.raises(TypeError, match="BuyerConversationMemory"):
        memory.update_state("buyer", update)  # type: ignore[arg-type]


def test_an_update_the_store_refuses_writes_nothing(memory: SyncBuyerConversationMemory,
                                                    raw: redis.Redis) -> None:
    assert memory.update_state("buyer", lambda state: {**state, "score": float("nan")}) is None
    assert memory.update_state("buyer", lambda state: ["not", "a", "dict"]) is None
    assert raw.exists(key("buyer")) == 0
    assert memory.get_stats()["refused"] == 2


def test_the_async_store_accepts_plain_and_async_update_functions(store_url: str) -> None:
    async def scenario() -> dict[str, Any] | None:
        async with BuyerConversationMemory.from_url(store_url) as memory:
            async def add_reply(state: dict[str, Any]) -> dict[str, Any]:
                await asyncio.sleep(0)
                state["conversation_history"].append({"role": "assistant", "content": "hi"})
                return state

            await memory.update_state("buyer", lambda s: s.update(buyer_temperature="hot"))
            await memory.update_state("buyer", add_reply)
            with pytest.raises(ValueError, match="bot bug"):
                await memory.update_state("buyer", lambda s: int("bot bug"))
            return await memory.load_state("buyer")

    loaded = asyncio.run(scenario())
    assert loaded is not None and loaded["buyer_temperature"] == "hot"
    assert loaded["conversation_history"][-1]["content"] == "hi"
    assert loaded["state_revision"] == 2


def test_update_state_replaces_an_unreadable_record(memory: SyncBuyerConversationMemory,
                                                    raw: redis.Redis) -> None:
    broken = MAGIC + SEPARATOR.join([b"1.0", b"zstd", b"0", b"10", b"4", *[b"x"] * 7, b"7"])
    raw.set(key("buyer"), broken + b"\nnope")
    saved = memory.update_state("buyer", lambda state: state.update(buyer_persona="investor"))
    assert saved is not None and saved["state_revision"] == 8
    assert memory.load_state("buyer") == saved


def test_update_state_with_redis_down_returns_none(memory: SyncBuyerConversationMemory) -> None:
    unreachable = SyncBuyerConversationMemory.from_url(
        "redis://127.0.0.1:1/0", MemoryConfig(socket_connect_timeout_seconds=0.2))
    with unreachable:
        assert unreachable.update_state("buyer", lambda s: s) is None
        assert unreachable.get_stats()["errors"] == 1


# many writers on one buyer -----------------------------------------------------------------

WRITERS, APPENDS = 8, 25


def history_config() -> MemoryConfig:
    return MemoryConfig(max_history_messages=WRITERS * APPENDS)


def append(writer: int, number: int) -> Any:
    def add(state: dict[str, Any]) -> dict[str, Any]:
        state["conversation_history"].append({"role": "user",
                                              "content": f"writer {writer} message {number}"})
        return state
    return add


def assert_every_message_is_there(state: dict[str, Any] | None) -> None:
    assert state is not None
    contents = sorted(m["content"] for m in state["conversation_history"])
    assert contents == sorted(f"writer {w} message {n}"
                              for w in range(WRITERS) for n in range(APPENDS))
    assert state["state_revision"] == WRITERS * APPENDS


def test_eight_async_writers_on_four_memories_lose_no_message(store_url: str) -> None:
    async def scenario() -> dict[str, Any] | None:
        memories = [BuyerConversationMemory.from_url(store_url, history_config())
                    for _ in range(4)]
        try:
            async def writer(number: int) -> None:
                memory = memories[number % len(memories)]
                for message in range(APPENDS):
                    saved = await memory.update_state("buyer", append(number, message),
                                                      retries=5)
                    assert saved is not None

            await asyncio.gather(*(writer(n) for n in range(WRITERS)))
            return await memories[0].load_state("buyer")
        finally:
            for memory in memories:
                await memory.aclose()

    assert_every_message_is_there(asyncio.run(scenario()))


def test_eight_threads_with_the_sync_memory_lose_no_message(store_url: str) -> None:
    failures: list[str] = []
    with SyncBuyerConversationMemory.from_url(store_url, history_config()) as memory:
        def writer(number: int) -> None:
            for message in range(APPENDS):
                if memory.update_state("buyer", append(number, message), retries=5) is None:
                    failures.append(f"writer {number} message {message}")

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert failures == []
        assert_every_message_is_there(memory.load_state("buyer"))


_WORKER = """
import json, sys, time
from memory_core import MemoryConfig, SyncBuyerConversationMemory
url, name, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
memory = SyncBuyerConversationMemory.from_url(url, MemoryConfig(max_history_messages=1000))
time.sleep(max(0.0, start_at - time.time()))
failed = 0
for number in range(count):
    def add(state, number=number):
        state["conversation_history"].append({"role": "user", "content": f"{name} {number}"})
    failed += memory.update_state("buyer", add, retries=100) is None
print(json.dumps({"failed": failed, "conflicts": memory.get_stats()["conflicts"]}))
"""


@pytest.mark.real_redis
@pytest.mark.timeout(120)
def test_worker_processes_racing_on_one_buyer_lose_no_message(real_redis_url: str) -> None:
    """Across processes nothing serialises the writers: the revision check must catch it."""
    import json
    import subprocess
    import sys
    import time

    workers, count = 4, 50
    start_at = time.time() + 3  # every worker imported and connected before the race
    processes = [subprocess.Popen([sys.executable, "-c", _WORKER, real_redis_url, f"w{n}",
                                   str(count), str(start_at)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(workers)]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=100)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    assert sum(r["failed"] for r in reports) == 0
    assert sum(r["conflicts"] for r in reports) > 0  # the race really happened
    with SyncBuyerConversationMemory.from_url(real_redis_url,
                                              MemoryConfig(max_history_messages=1000)) as memory:
        state = memory.load_state("buyer")
    assert state is not None
    assert sorted(m["content"] for m in state["conversation_history"]) == sorted(
        f"w{w} {n}" for w in range(workers) for n in range(count))
    assert state["state_revision"] == workers * count


def test_without_revisions_concurrent_read_modify_write_loses_messages(store_url: str) -> None:
    """The failure update_state exists for: last writer wins drops the other's message."""
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("buyer", {})
        first, second = memory.load_state("buyer"), memory.load_state("buyer")
        assert first is not None and second is not None
        first["conversation_history"].append({"role": "user", "content": "one"})
        second["conversation_history"].append({"role": "user", "content": "two"})
        assert memory.save_state("buyer", first)
        assert memory.save_state("buyer", second)
        loaded = memory.load_state("buyer")
    assert loaded is not None and len(loaded["conversation_history"]) == 1


# operator writes ----------------------------------------------------------------------------

def test_clearing_the_revision_on_screen_deletes_it(memory: SyncBuyerConversationMemory,
                                                     raw: redis.Redis) -> None:
    assert memory.save_state("buyer", {})
    assert admin.delete_buyer(memory, "buyer", expected_revision=1)
    assert raw.exists(key("buyer")) == 0
    assert admin.delete_buyer(memory, "buyer", expected_revision=1) is False


def test_clearing_never_deletes_a_save_made_after_the_operator_looked(
        memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    assert memory.save_state("buyer", {})
    looked_at = admin.current_revision(memory, "buyer")
    assert looked_at == 1
    assert memory.save_state("buyer", {"buyer_temperature": "hot"})  # the bot, meanwhile
    with pytest.raises(RevisionConflict, match=r"revision 1 -> 2\); nothing was deleted"):
        admin.delete_buyer(memory, "buyer", expected_revision=looked_at)
    loaded = memory.load_state("buyer")
    assert loaded is not None and loaded["buyer_temperature"] == "hot"


def test_reset_ttl_acts_on_the_revision_on_screen_only(memory: SyncBuyerConversationMemory,
                                                       raw: redis.Redis) -> None:
    assert memory.save_state("buyer", {}, ttl_override=3600)
    assert admin.reset_ttl(memory, "buyer", expected_revision=1)
    assert raw.ttl(key("buyer")) > 29 * 86_400
    assert memory.save_state("buyer", {}, ttl_override=3600)
    with pytest.raises(RevisionConflict, match="nothing was changed"):
        admin.reset_ttl(memory, "buyer", expected_revision=1)
    assert raw.ttl(key("buyer")) <= 3600
    assert admin.reset_ttl(memory, "gone") is False


def test_the_cli_clears_only_the_revision_it_asked_about(
        store_url: str, memory: SyncBuyerConversationMemory, raw: redis.Redis,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert memory.save_state("buyer", {})

    def bot_saves_while_the_operator_reads(question: str) -> bool:
        assert "revision 1" in question
        assert memory.save_state("buyer", {"buyer_temperature": "hot"})
        return True

    monkeypatch.setattr("memory_core.cli._confirm", bot_saves_while_the_operator_reads)
    assert cli_main(["--redis-url", store_url, "clear", "buyer"]) == 2
    assert "saved by the bot since you looked" in capsys.readouterr().err
    assert raw.exists(key("buyer")) == 1
    monkeypatch.setattr("memory_core.cli._confirm", lambda question: True)
    assert cli_main(["--redis-url", store_url, "clear", "buyer"]) == 0
    assert raw.exists(key("buyer")) == 0


def test_delete_script_codes(memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    assert memory.save_state("real", {})
    assert memory.delete_key(memory.raw_key_for("real"), seeds_only=True) == (
        scripts.NOT_A_SEED, 1)
    assert memory.delete_key(memory.raw_key_for("real"), expected_revision=5) == (
        scripts.CONFLICT, 1)
    assert memory.delete_key(memory.raw_key_for("nothing")) == (scripts.ABSENT, 0)
    raw.hset(key("a-hash"), mapping={"owner": "another app"})
    assert memory.delete_key(memory.raw_key_for("a-hash"), expected_revision=0) == (
        scripts.DONE, 0)
    assert raw.exists(key("a-hash")) == 0


# seeding never replaces a real buyer ----------------------------------------------------------

SCENARIO = b'[{"contact_id": "real-1", "buyer_temperature": "hot"},' \
           b' {"contact_id": "qa-new", "buyer_temperature": "cold"}]'


def test_a_scenario_naming_a_real_buyer_writes_nothing(memory: SyncBuyerConversationMemory,
                                                       raw: redis.Redis) -> None:
    assert memory.save_state("real-1", {"buyer_temperature": "warm"})
    with pytest.raises(InvalidState, match=r"nothing was written; 1 contact id\(s\) hold "
                                           r"real buyers, not QA seeds: real-1"):
        admin.seed_scenarios(memory, admin.parse_scenarios(SCENARIO))
    assert raw.exists(key("qa-new")) == 0
    loaded = memory.load_state("real-1")
    assert loaded is not None and loaded["buyer_temperature"] == "warm"
    assert admin.clear_qa_seeds(memory) == 0
    assert raw.exists(key("real-1")) == 1


def test_overwrite_real_replaces_the_buyer_and_says_so(memory: SyncBuyerConversationMemory,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    assert memory.save_state("real-1", {"buyer_temperature": "warm"})
    caplog.set_level(logging.WARNING, logger="memory_core")
    result = admin.seed_scenarios(memory, admin.parse_scenarios(SCENARIO),
                                  overwrite_real=True, actor="qa tester")
    assert result.written == 2 and result.kept_real == ()
    logs = [r.getMessage() for r in memory_logs(caplog, logging.WARNING)]
    assert logs == ["qa tester overwrote 1 real buyer(s) with QA seeds: real-1"]
    replaced = memory.load_state("real-1")
    assert replaced is not None and replaced["qa_seed"] is True
    assert replaced["state_revision"] == 2


def test_generated_seeds_leave_a_real_buyer_alone(memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("qa-1-000003", {"buyer_temperature": "warm"})
    from memory_core.seeding import SeedOptions, generate_buyers

    items = [b.as_save_item() for b in generate_buyers(SeedOptions(count=6, seed=1))]
    result = admin.seed_generated(memory, items, total=6)
    assert result.written == 5 and result.kept_real == ("qa-1-000003",)
    kept = memory.load_state("qa-1-000003")
    assert kept is not None and kept["buyer_temperature"] == "warm" and "qa_seed" not in kept


def test_the_seed_guard_runs_on_the_server_at_write_time(
        memory: SyncBuyerConversationMemory) -> None:
    """A buyer the bot saves after the pre-check is still kept: the script checks again."""
    items = [("qa-race", {"qa_seed": True}, None, None)]
    assert memory.save_state("qa-race", {"buyer_temperature": "hot"})
    result = memory.save_seeds(items)
    assert result.written == 0 and result.kept_real == ("qa-race",)
    assert memory.save_seeds(items, overwrite_real=True).written == 1


def test_the_cli_refuses_a_real_buyer_unless_told(store_url: str, tmp_path: Any,
                                                  memory: SyncBuyerConversationMemory,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert memory.save_state("real-1", {"buyer_temperature": "warm"})
    scenario = tmp_path / "scenario.json"
    scenario.write_bytes(SCENARIO)
    assert cli_main(["--redis-url", store_url, "seed", "--from-file", str(scenario)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite-real" in err and "real-1" in err
    assert cli_main(["--redis-url", store_url, "seed", "--from-file", str(scenario),
                     "--overwrite-real"]) == 0
    assert "seeded 2 buyer(s)" in capsys.readouterr().out
