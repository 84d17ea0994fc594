"""The operator CLI, run in-process against the private redis-server, and once or twice as
``python -m memory_core`` in a subprocess.

Exit codes: 0 ok, 1 not found (or no readable buyer), 2 usage or connection error, 130 stopped
by Ctrl-C; failures print one line.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from memory_core import MemoryConfig, SyncBuyerConversationMemory
from memory_core import dictionaries as dicts
from memory_core.cli import WholeRateBar, build_parser, main
from memory_core.seeding import SeedOptions, generate_buyers
from memory_core.state import mask_pii, parse_timestamp
from memory_core.testing import buyer_key_count, free_port, stored_json

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PREFIX = "buyer_conversation_memory"
DAY = 86_400
PII = ("buyer_name", "buyer_phone", "buyer_email")
#: Fields that differ between two runs of the same seed: times, and the revision a rerun bumps.
TIME_FIELDS = ("timestamp", "raised_at", "last_interaction_timestamp", "state_revision")


def key(contact_id: str) -> str:
    return f"{PREFIX}:{contact_id}"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No REDIS_URL or MEMORY_CORE_* from the machine may steer the CLI."""
    for name in list(os.environ):
        if name == "REDIS_URL" or name.startswith("MEMORY_CORE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def raw(real_raw: redis.Redis) -> redis.Redis:
    """These tests run on real Redis only: ``raw`` is the private server's client."""
    return real_raw


@pytest.fixture
def memory(real_redis_url: str) -> Iterator[SyncBuyerConversationMemory]:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as opened:
        yield opened


def cli(url: str, *args: str) -> int:
    return main(["--redis-url", url, *args])


def timeless(value: Any) -> Any:
    """A state without the fields that depend on when it was generated."""
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k not in TIME_FIELDS}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def buyer_keys(client: redis.Redis) -> list[str]:
    return sorted(k.decode()[len(PREFIX) + 1:] for k in client.keys(f"{PREFIX}:*"))


def states(memory: SyncBuyerConversationMemory, ids: list[str]) -> dict[str, Any]:
    return {i: memory.load_state(i) for i in ids}


# seed ------------------------------------------------------------------------------------

def test_seed_count_is_deterministic(real_redis_url: str, raw: redis.Redis,
                                     memory: SyncBuyerConversationMemory,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "seed", "--count", "25", "--seed", "3") == 0
    assert capsys.readouterr().out.strip() == "seeded 25 QA buyers (seed 3)"
    ids = buyer_keys(raw)
    assert ids == [f"qa-3-{i:06d}" for i in range(25)]
    first = states(memory, ids)

    assert cli(real_redis_url, "seed", "--count", "25", "--seed", "3") == 0
    assert buyer_keys(raw) == ids
    second = states(memory, ids)
    assert timeless(second) == timeless(first)
    # the CLI seeds with the store's TTL (30 days), so each buyer keeps what is left of it
    generated = [b.state for b in generate_buyers(SeedOptions(count=25, seed=3,
                                                              ttl_days_range=(30, 30)))]
    for contact_id, state in zip(ids, generated, strict=True):
        assert first[contact_id]["buyer_name"] == state["buyer_name"]
        assert first[contact_id]["qa_seed"] is True


def test_a_seeded_buyer_has_the_ttl_left_since_its_last_interaction(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory) -> None:
    assert cli(real_redis_url, "seed", "--count", "40", "--seed", "6") == 0
    now = datetime.now(UTC)
    lefts = []
    for contact_id in buyer_keys(raw):
        state = memory.load_state(contact_id)
        assert state is not None
        seen = parse_timestamp(state["last_interaction_timestamp"])
        assert seen is not None
        expected = 30 * DAY - (now - seen).total_seconds()  # as if the bot saved it then
        left = raw.ttl(key(contact_id))
        assert abs(left - max(expected, 3600)) < 120, (contact_id, left, expected)
        lefts.append(left / DAY)
    assert min(lefts) < 10 and max(lefts) > 25  # spread like a real store, not all at 30


def test_seed_from_a_json_file_tags_qa_seeds(real_redis_url: str, tmp_path: Path,
                                             memory: SyncBuyerConversationMemory,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps([
        {"contact_id": "qa-file-1", "buyer_temperature": "hot"},
        {"contact_id": "qa-file-2", "state": {"buyer_temperature": "cold"}},
    ]))
    assert cli(real_redis_url, "seed", "--from-file", str(good)) == 0
    assert "seeded 2 buyer(s)" in capsys.readouterr().out
    for contact_id, temperature in (("qa-file-1", "hot"), ("qa-file-2", "cold")):
        loaded = memory.load_state(contact_id)
        assert loaded is not None
        assert loaded["qa_seed"] is True
        assert loaded["buyer_temperature"] == temperature


@pytest.mark.parametrize(("content", "fragments"), [
    ("- contact_id: qa-1\n  buyer_temperature: hot\n- buyer_temperature: cold\n",
     ["item 2", "contact_id"]),
    ("- contact_id: qa-1\n  buyer_temperature: hot\n"
     "- contact_id: qa-2\n  conversation_history: not a list\n",
     ["item 2", "conversation_history"]),
], ids=["missing-contact-id", "history-not-a-list"])
def test_seed_from_a_bad_file_writes_nothing(real_redis_url: str, raw: redis.Redis,
                                             tmp_path: Path, content: str,
                                             fragments: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    assert cli(real_redis_url, "seed", "--from-file", str(bad)) == 2
    err = capsys.readouterr().err
    assert raw.dbsize() == 0
    assert err.count("\n") == 1 and err.startswith("error: ")
    for fragment in fragments:
        assert fragment in err


def test_seed_from_a_missing_file(real_redis_url: str, tmp_path: Path, raw: redis.Redis,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert cli(real_redis_url, "seed", "--from-file", str(missing)) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and str(missing) in err
    assert raw.dbsize() == 0


# inventory -------------------------------------------------------------------------------

@pytest.fixture
def mixed_store(real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
                make_buyer_state: Any) -> list[str]:
    """12 QA seeds, 2 real buyers, a garbage key and a legacy pickle; the ok ids."""
    assert cli(real_redis_url, "seed", "--count", "12", "--seed", "5") == 0
    assert memory.save_state("real-1", make_buyer_state(1, messages=5))
    assert memory.save_state("real-2", make_buyer_state(2, messages=60))
    raw.set(key("garbage"), b"garbage", ex=86_400)
    raw.set(key("legacy-1"), pickle.dumps({"compressed": False,
                                           "data": '{"buyer_temperature": "warm"}'}))
    return [f"qa-5-{i:06d}" for i in range(12)] + ["real-1", "real-2"]


def test_inventory_json(real_redis_url: str, raw: redis.Redis, mixed_store: list[str],
                        memory: SyncBuyerConversationMemory,
                        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(real_redis_url, "inventory", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    saved = {i: memory.load_state(i) for i in mixed_store}
    assert report["total"] == 16
    assert report["buyers"] == 14
    assert report["qa_seeded"] == 12
    assert report["corrupt"] == 1
    assert report["legacy"] == 1
    assert report["by_temperature"] == dict(
        Counter(s["buyer_temperature"] for s in saved.values() if s))
    assert report["stored_bytes"] == sum(raw.strlen(key(i)) for i in mixed_store)
    assert report["original_bytes"] == sum(len(stored_json(s)) for s in saved.values() if s)
    assert sorted(p["contact_id"] for p in report["problems"]) == ["garbage", "legacy-1"]


def columns(line: str) -> int:
    """Terminal columns a line takes (wide characters count two)."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in line)


def test_inventory_is_an_aligned_table_that_fits_100_columns(
        real_redis_url: str, raw: redis.Redis, mixed_store: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    raw.set(key("廣告-" + "x" * 80), b"junk")  # wide and long
    raw.set(key("bad\x1b[2J"), b"junk")  # hostile
    capsys.readouterr()
    assert cli(real_redis_url, "inventory") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(columns(line) <= 100 for line in lines), max(lines, key=columns)
    assert "\x1b" not in out and "\\x1b[2J" in out
    rows = {line.split("  ")[1].strip(): line for line in lines if line.startswith("  ")
            and "  " in line[2:]}
    assert re.search(r"readable buyers +14 +77\.8%$", rows["readable buyers"])
    assert re.search(r"QA seeds +12 ", rows["QA seeds"])
    assert re.search(r"corrupt, foreign or unreadable +3 ", out)
    assert re.search(r"legacy \(run migrate-legacy\) +1 ", out)
    assert re.search(r"all keys +18$", out, re.MULTILINE)
    # counts right-aligned in one column, labels of the value column in another
    header = next(line for line in lines if line.startswith("BUYERS BY"))
    end = header.index("BUYERS", 5) + len("BUYERS")
    value_at = header.index("VALUE")
    temperature = [line for line in lines if line.startswith(("temperature", " " * 25))][:3]
    for line in temperature:
        assert line[end - 1].isdigit() and line[end] == " "
        assert line[value_at] != " " and line[value_at - 1] == " "
    problems = lines[lines.index(next(line for line in lines
                                      if line.startswith("PROBLEM KEYS"))) + 1:]
    assert any(line.startswith("corrupt") and " garbage " in line for line in problems)
    assert any(line.startswith("legacy") and " legacy-1 " in line for line in problems)
    assert any("廣告-xxx" in line and "…" in line for line in problems)  # cut to its column


# show ------------------------------------------------------------------------------------

def test_show_masks_pii_unless_asked(real_redis_url: str, memory: SyncBuyerConversationMemory,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "seed", "--count", "3", "--seed", "8") == 0
    state = memory.load_state("qa-8-000001")
    assert state is not None
    capsys.readouterr()

    assert cli(real_redis_url, "show", "qa-8-000001") == 0
    out = capsys.readouterr().out
    assert out.startswith("contact qa-8-000001  (QA seed)\n  revision 1 · TTL ")
    for field in PII:
        assert state[field] not in out, field

    assert cli(real_redis_url, "show", "qa-8-000001", "--reveal-pii") == 0
    out = capsys.readouterr().out
    for field in PII:
        assert state[field] in out, field


def test_show_prints_a_summary_then_the_transcript(
        real_redis_url: str, memory: SyncBuyerConversationMemory,
        capsys: pytest.CaptureFixture[str]) -> None:
    history = [{"role": "user", "content": "Hi, I need 3 bedrooms\nnear \x1b[31mschools",
                "timestamp": "2025-06-01T12:00:00+00:00"},
               {"role": "assistant", "content": "Sure! " + "Long answer. " * 20,
                "timestamp": "2025-06-01T12:01:00+00:00"}]
    assert memory.save_state("c-42", {
        "conversation_history": history, "buyer_temperature": "hot",
        "buyer_persona": "first_time_buyer", "budget_range": {"min": 300000, "max": 450000,
                                                             "currency": "USD"},
        "property_preferences": {"bedrooms": 3, "neighborhoods": ["Oak Hill"]},
        "buyer_name": "Elena Ruiz", "buyer_email": "elena@example.com"}, ttl_override=DAY)
    capsys.readouterr()
    assert cli(real_redis_url, "show", "c-42") == 0
    lines = capsys.readouterr().out.splitlines()
    summary, transcript = lines[:lines.index("")], lines[lines.index("") + 1:]
    assert summary[0] == "contact c-42"
    assert re.match(r"  revision 1 · TTL (23 h 59 min|1 day) left \(expires ", summary[1])
    text = "\n".join(summary)
    assert "temperature hot · persona first time buyer" in text
    assert "budget 300,000 to 450,000 USD · wants 3 bed, in Oak Hill" in text
    assert "2 messages · 0 objections (0 open)" in text
    assert "Elena" not in text and "elena@" not in text
    assert transcript[0] == "conversation (2 messages, oldest first):"
    assert transcript[1] == "  [2025-06-01 12:00 UTC] buyer: Hi, I need 3 bedrooms"
    assert transcript[2] == "      near \\x1b[31mschools"  # escaped, on its own line
    assert transcript[3].startswith("  [2025-06-01 12:01 UTC] bot: Sure! Long answer.")
    assert all(len(line) <= 100 for line in lines)


def test_show_json_prints_only_the_masked_state(real_redis_url: str,
                                                memory: SyncBuyerConversationMemory,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "seed", "--count", "2", "--seed", "8") == 0
    capsys.readouterr()
    assert cli(real_redis_url, "show", "qa-8-000000", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    state = memory.load_state("qa-8-000000")
    assert state is not None
    assert shown == mask_pii(state)
    assert shown["buyer_email"] != state["buyer_email"]


def test_show_a_missing_buyer(real_redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "show", "nobody-42") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "no such buyer: nobody-42" in captured.err


# clear -----------------------------------------------------------------------------------

def test_clear_one_buyer(real_redis_url: str, raw: redis.Redis,
                         memory: SyncBuyerConversationMemory,
                         capsys: pytest.CaptureFixture[str]) -> None:
    assert memory.save_state("buyer-1", {"buyer_temperature": "hot"})
    assert cli(real_redis_url, "clear", "buyer-1", "--yes") == 0
    assert "cleared buyer-1" in capsys.readouterr().out
    assert raw.exists(key("buyer-1")) == 0
    assert cli(real_redis_url, "clear", "buyer-1", "--yes") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "buyer-1" in err


def test_clear_says_no_such_buyer_before_asking(
        real_redis_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def never(question: str) -> bool:
        raise AssertionError(f"asked {question!r} about a buyer that does not exist")

    monkeypatch.setattr("memory_core.cli._confirm", never)
    assert cli(real_redis_url, "clear", "nobody-7") == 1
    err = capsys.readouterr().err
    assert err.startswith("no such buyer: nobody-7") and err.count("\n") == 1


def test_clear_asks_unless_yes(real_redis_url: str, raw: redis.Redis,
                               memory: SyncBuyerConversationMemory,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert memory.save_state("buyer-2", {"buyer_temperature": "hot"})
    asked: list[str] = []
    monkeypatch.setattr("memory_core.cli._confirm", lambda q: asked.append(q) or False)
    assert cli(real_redis_url, "clear", "buyer-2") == 2
    assert asked == ["delete the saved state of buyer-2 (revision 1) permanently?"]
    assert "pass --yes" in capsys.readouterr().err
    assert raw.exists(key("buyer-2")) == 1
    assert cli(real_redis_url, "clear", "--yes", "buyer-2") == 0  # --yes anywhere
    assert len(asked) == 1 and raw.exists(key("buyer-2")) == 0


def test_clear_qa_seeds_without_yes_and_without_a_tty_deletes_nothing(
        real_redis_url: str, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "seed", "--count", "4") == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a TTY, even if it says y
    assert cli(real_redis_url, "clear", "--qa-seeds") == 2
    assert "nothing deleted" in capsys.readouterr().err
    assert buyer_key_count(raw) == 4


def test_delete_key_removes_what_holds_no_buyer_and_refuses_a_buyer(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The Server page's delete, from a shell: keys no bot can ask for (an id with a space,
    bytes that are not UTF-8, as the shell passes them), another type, garbage."""
    from memory_core import audit

    assert memory.save_state("c-1", {"buyer_temperature": "hot"})
    record = raw.get(f"{PREFIX}:c-1")
    planted = {"<b>a b</b>": f"{PREFIX}:<b>a b</b>".encode(),
               b"bad\xff-id".decode("utf-8", "surrogateescape"): f"{PREFIX}:".encode()
               + b"bad\xff-id"}
    for key in planted.values():
        raw.set(key, record)
    raw.hset(f"{PREFIX}:a-hash", mapping={"owner": "another app"})
    raw.set(f"{PREFIX}:garbage", b"\x1b[2J not a record")
    capsys.readouterr()
    printed = {}
    for contact_id in [*planted, "a-hash", "garbage"]:
        assert cli(real_redis_url, "delete-key", contact_id, "--yes") == 0
        printed[contact_id] = out = capsys.readouterr().out
        assert "deleted buyer_conversation_memory:" in out and "\x1b" not in out
    assert "no bot can load" in printed["<b>a b</b>"]
    assert f"{PREFIX}:bad\\xff-id: string" in printed[b"bad\xff-id".decode(
        "utf-8", "surrogateescape")]
    assert "hash, 1 field; another Redis type" in printed["a-hash"]
    assert not any(raw.exists(key) for key in planted.values())
    assert raw.exists(f"{PREFIX}:a-hash", f"{PREFIX}:garbage") == 0

    assert cli(real_redis_url, "delete-key", "c-1", "--yes") == 2  # a buyer: clear it
    assert "a buyer state loads from it" in capsys.readouterr().err
    assert raw.get(f"{PREFIX}:c-1") == record
    assert cli(real_redis_url, "delete-key", "nobody", "--yes") == 1
    assert cli(real_redis_url, "delete-key", "a-hash") == 1  # gone: nothing to ask
    outcomes = [(e.action, e.outcome) for e in audit.read_events(memory.client, PREFIX)]
    assert outcomes.count(("delete_key", "deleted")) == 4
    assert ("delete_key", "refused") in outcomes


def test_clear_qa_seeds_with_yes_deletes_only_qa_seeds(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "seed", "--count", "4") == 0
    assert memory.save_state("qa-looking-real", {"buyer_temperature": "warm"})
    assert cli(real_redis_url, "clear", "--qa-seeds", "--yes") == 0
    assert "deleted 4 QA-seeded buyers" in capsys.readouterr().out
    assert buyer_keys(raw) == ["qa-looking-real"]


# migrate, stats, train -------------------------------------------------------------------

def test_migrate_legacy_dry_run(real_redis_url: str, raw: redis.Redis,
                                capsys: pytest.CaptureFixture[str]) -> None:
    legacy = pickle.dumps({"compressed": False, "data": '{"buyer_temperature": "warm"}'})
    raw.set(key("old-1"), legacy)
    assert cli(real_redis_url, "migrate-legacy", "--dry-run") == 0
    assert "legacy records: 1 found, would migrate 1, 0 failed" in capsys.readouterr().out
    assert raw.get(key("old-1")) == legacy
    assert cli(real_redis_url, "migrate-legacy") == 0
    assert "1 found, migrated 1, 0 failed" in capsys.readouterr().out
    migrated = raw.get(key("old-1"))
    assert migrated is not None and migrated.startswith(b"BCM1")


def test_stats_json_prints_settings_server_facts_memory_and_health(
        real_redis_url: str, raw: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    raw.set("other_app:1", b"x")
    assert cli(real_redis_url, "stats", "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["settings"]["ttl_days"] == 30
    assert "saves" not in stats["settings"]  # per-process counters mean nothing here
    assert "calls" not in stats["settings"]
    assert stats["server"]["keys"] == 1
    assert isinstance(stats["server"]["redis_version"], str)
    assert stats["memory"]["used_memory_bytes"] > 0
    assert stats["memory"]["maxmemory_bytes"] == 0 and stats["memory"]["near_limit"] is False
    assert stats["health"]["processes_seen"] == 0


def test_stats_is_readable_by_default(real_redis_url: str, raw: redis.Redis,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = MemoryConfig(health_publish_seconds=30)
    with SyncBuyerConversationMemory.from_url(real_redis_url, config) as bot:
        assert bot.save_state("c-1", {"buyer_temperature": "hot"})
    raw.set(f"{PREFIX}.health:evil\x1b[2J:1:x", b"not json")
    capsys.readouterr()
    assert cli(real_redis_url, "stats") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Settings" and "Server" in lines and all(len(x) <= 100 for x in lines)
    assert re.search(r"^  ttl_days +30$", out, re.MULTILINE)
    assert re.search(r"^  used memory +[\d.,]+ (KiB|MiB) \([\d,]+ bytes\)$", out, re.MULTILINE)
    assert re.search(r"^  maxmemory +no limit, policy noeviction$", out, re.MULTILINE)
    assert re.search(r"^  per key \(estimate\) +[\d.,]+ (B|KiB|MiB) \([\d,]+ bytes\)$", out,
                     re.MULTILINE)
    assert "1 process · hit rate –" in out and "1 record(s) under the health prefix" in out
    assert "\x1b" not in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_help_has_no_stray_markup(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ([], *([name] for name in build_parser()._subparsers._group_actions[0]
                          .choices)):  # type: ignore[union-attr]
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        for markup in ("``", ":class:", ":mod:", "**", "`"):
            assert markup not in out, (command, markup)
    main_help = build_parser().format_help()
    assert "Exit codes: 0 ok, 1 not found, 2 usage or connection error" in main_help


def test_successes_are_printed_not_logged_as_warnings(real_redis_url: str) -> None:
    url = ["--redis-url", real_redis_url]
    for args in (["seed", "--count", "5"], ["clear", "qa-0-000001", "--yes"],
                 ["clear", "--qa-seeds", "--yes"], ["inventory"], ["stats"]):
        result = run_module(*url, *args)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", (args, result.stderr)


def test_the_progress_bar_counts_whole_buyers_per_second() -> None:
    bar = WholeRateBar(total=20_000, unit="buyers", file=io.StringIO(), mininterval=0)
    try:
        bar.update(1500)
        time.sleep(0.05)
        bar.update(1500)
        text = str(bar)
    finally:
        bar.close()
    match = re.search(r"\| 3,000/20,000 \[.*, ([\d,]+) buyers/s\]$", text)
    assert match is not None, text
    assert "." not in match.group(1) and "k" not in text.split("[")[1]


def test_train_dictionary(real_redis_url: str, raw: redis.Redis,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "seed", "--count", "40", "--seed", "4") == 0
    capsys.readouterr()
    assert cli(real_redis_url, "train-dictionary", "--size-kb", "16") == 0
    out = capsys.readouterr().out
    assert "on 40 states" in out
    current = raw.get(dicts.current_dictionary_key(PREFIX))
    assert current is not None and f"trained dictionary {current.decode()} " in out
    assert raw.exists(dicts.dictionary_key(PREFIX, current.decode())) == 1


# errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["inventory"], ["inventory", "--json"], ["show", "x"], ["stats"], ["seed", "--count", "1"],
    ["clear", "x", "--yes"], ["clear", "--qa-seeds", "--yes"], ["migrate-legacy"],
    ["train-dictionary"],
], ids=lambda c: " ".join(c))
def test_unreachable_redis_is_one_line_without_the_password(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert cli(f"redis://user:pw123@127.0.0.1:{port}/0", *command) == 2
    captured = capsys.readouterr()
    assert "cannot reach Redis" in captured.err
    assert f"redis://user:***@127.0.0.1:{port}/0" in captured.err
    assert captured.err.count("\n") == 1
    assert "pw123" not in captured.err + captured.out


def test_unknown_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("ftp://127.0.0.1/0", "stats") == 2
    err = capsys.readouterr().err
    assert "scheme" in err and "'ftp'" in err


def test_malformed_port_is_a_usage_error_without_the_password(
        capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = cli("redis://user:pw123@127.0.0.1:notaport/0", "stats")
    except ValueError as exc:
        pytest.fail(f"main() raised {exc!r} instead of printing one line and exiting 2")
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "pw123" not in err


def test_invalid_config_file(real_redis_url: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "memory.yaml"
    config.write_text("buyer_bot:\n  conversation_memory:\n    ttl_days: 500\n")
    assert main(["--config", str(config), "--redis-url", real_redis_url, "stats"]) == 2
    err = capsys.readouterr().err
    assert "ttl_days" in err and "500" in err
    assert err.count("\n") == 1


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2
    assert "error:" in capsys.readouterr().err


# python -m memory_core -------------------------------------------------------------------

def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k != "REDIS_URL" and not k.startswith("MEMORY_CORE_")}
    return subprocess.run([sys.executable, "-m", "memory_core", *args], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_python_dash_m_seeds_and_inventories(real_redis_url: str) -> None:
    seeded = run_module("--redis-url", real_redis_url, "seed", "--count", "3", "--seed", "9")
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.strip() == "seeded 3 QA buyers (seed 9)"
    listed = run_module("--redis-url", real_redis_url, "inventory", "--json")
    assert listed.returncode == 0, listed.stderr
    report = orjson.loads(listed.stdout)
    assert report["total"] == 3 and report["qa_seeded"] == 3


def test_python_dash_m_reports_an_unreachable_redis_in_one_line() -> None:
    result = run_module("--redis-url", f"redis://user:pw123@127.0.0.1:{free_port()}/0",
                        "inventory")
    assert result.returncode == 2
    assert "cannot reach Redis" in result.stderr
    assert "Traceback" not in result.stderr and "pw123" not in result.stderr


def test_inventory_verify_finds_a_payload_the_header_cannot_show(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
        make_buyer_state: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert memory.save_state("intact", make_buyer_state(1, messages=50))
    assert memory.save_state("flipped", make_buyer_state(2, messages=50))
    record = bytearray(raw.get(key("flipped")) or b"")
    record[-40] ^= 0x10  # inside the zstd frame: the header still matches
    raw.set(key("flipped"), bytes(record))
    assert memory.load_state("flipped") is None
    capsys.readouterr()
    assert cli(real_redis_url, "inventory", "--json") == 0
    assert json.loads(capsys.readouterr().out)["corrupt"] == 0  # headers only
    assert cli(real_redis_url, "inventory", "--json", "--verify") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["corrupt"] == 1 and report["buyers"] == 1
    (problem,) = report["problems"]
    assert problem["contact_id"] == "flipped" and problem["status"] == "corrupt"
    # the flip lands in a zstd block or in a literal that no longer parses
    assert re.search("cannot be decompressed|malformed|not valid JSON", problem["problem"])


# the compression dictionary in inventory and stats ------------------------------------------

def _seed_buyers(memory: SyncBuyerConversationMemory, count: int, first: int = 0) -> None:
    for number, buyer in enumerate(generate_buyers(SeedOptions(count=count, seed=first))):
        assert memory.save_state(f"buyer-{first + number}", buyer.state)


def test_inventory_shows_bytes_by_dictionary_and_what_a_fresh_one_would_save(
        real_redis_url: str, memory: SyncBuyerConversationMemory,
        capsys: pytest.CaptureFixture[str]) -> None:
    _seed_buyers(memory, 120)
    capsys.readouterr()
    assert cli(real_redis_url, "inventory", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stored_bytes_by_dictionary"]["none"] == report["stored_bytes"] > 0
    assert report["dictionary"]["current_id"] is None
    assert report["dictionary"]["estimated_saving"] > 0.3  # no dictionary at all: a lot
    assert report["dictionary"]["estimated_on_states"] == 60  # the other half trained
    assert cli(real_redis_url, "train-dictionary", "--samples", "100") == 0
    with SyncBuyerConversationMemory.from_url(real_redis_url) as restarted:  # a bot
        current = restarted.current_dictionary()
        assert current is not None
        _seed_buyers(restarted, 30, first=1000)  # written with the new dictionary
    capsys.readouterr()
    assert cli(real_redis_url, "inventory") == 0
    out = capsys.readouterr().out
    section = out[out.index("COMPRESSION DICTIONARY"):]
    assert re.search(rf"saves use +dictionary {current.dict_id()}$", section, re.MULTILINE)
    with_it = re.search(r"stored with it +([\d.,]+ \w+) +([\d.]+)%$", section, re.MULTILINE)
    assert with_it and 0 < float(with_it.group(2)) < 100
    assert re.search(r"with none +[\d.,]+ \w+ +[\d.]+%$", section, re.MULTILINE)
    assert re.search(r"a fresh dictionary +would save \d+% \(estimated on [\d,]+ sampled "
                     r"states\)$", section, re.MULTILINE)
    assert all(columns(line) <= 100 for line in out.splitlines())


def test_the_estimate_says_why_there_is_none(real_redis_url: str,
                                             memory: SyncBuyerConversationMemory,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _seed_buyers(memory, 3)
    capsys.readouterr()
    assert cli(real_redis_url, "inventory") == 0
    assert re.search(r"a fresh dictionary +no estimate: .*states", capsys.readouterr().out)
    assert cli(real_redis_url, "inventory", "--json", "--no-estimate") == 0
    assert json.loads(capsys.readouterr().out)["dictionary"] is None


def test_stats_shows_the_dictionary_status(real_redis_url: str,
                                            memory: SyncBuyerConversationMemory,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _seed_buyers(memory, 60)
    capsys.readouterr()
    assert cli(real_redis_url, "stats", "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["dictionary"]["current_id"] is None
    assert stats["dictionary"]["estimated_saving"] > 0.3
    assert stats["dictionaries"]["dictionaries"] == []
    assert stats["dictionaries"]["records_without_dictionary"] == 60
    stored = sum(memory.client.strlen(f"{PREFIX}:buyer-{i}") for i in range(60))
    assert stats["dictionaries"]["stored_bytes_by_dictionary"] == {
        "current": 0, "older": 0, "none": stored}
    assert cli(real_redis_url, "train-dictionary", "--samples", "60") == 0
    with SyncBuyerConversationMemory.from_url(real_redis_url) as bot:
        current = bot.current_dictionary()
        assert current is not None
        _seed_buyers(bot, 10)  # saved again, with the new dictionary
    capsys.readouterr()
    assert cli(real_redis_url, "stats") == 0
    out = capsys.readouterr().out
    assert re.search(rf"saves use +dictionary {current.dict_id()}$", out, re.MULTILINE)
    assert re.search(rf"^{current.dict_id()} +65,536 +10 +current$", out, re.MULTILINE)
    assert "50 record(s) use no dictionary" in out
    assert re.search(r"stored with it +[\d.,]+ \w+ +[\d.]+%$", out, re.MULTILINE)
    assert cli(real_redis_url, "stats", "--quick", "--json") == 0
    quick = json.loads(capsys.readouterr().out)
    assert quick["dictionaries"] is None and quick["dictionary"] is None


def test_inventory_prometheus_is_the_text_format(real_redis_url: str,
                                                 memory: SyncBuyerConversationMemory,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from memory_core import dictionary_use

    def no_estimate(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a cron job's scrape must not sample and train")

    monkeypatch.setattr(dictionary_use, "dictionary_status", no_estimate)
    _seed_buyers(memory, 20)
    capsys.readouterr()
    assert cli(real_redis_url, "inventory", "--prometheus") == 0
    captured = capsys.readouterr()
    families = {f.name: f for f in text_string_to_metric_families(captured.out)}
    assert families["memory_core_keyspace_buyers"].samples[0].value == 20
    by_dictionary = {s.labels["dictionary"]: s.value for s in
                     families["memory_core_keyspace_stored_bytes_by_dictionary"].samples}
    assert by_dictionary["none"] == families["memory_core_keyspace_stored_bytes"].samples[
        0].value > 0
    assert captured.err == ""


@pytest.mark.parametrize("args", [("--prometheus", "--json"), ("--prometheus", "--sample",
                                                                "500")])
def test_inventory_prometheus_refuses_what_it_cannot_print(
        real_redis_url: str, args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = cli(real_redis_url, "inventory", *args)
    except SystemExit as exited:  # argparse: the two formats exclude each other
        code = exited.code  # type: ignore[assignment]
    assert code == 2
    assert capsys.readouterr().out == ""  # nothing half-printed for the collector


def test_stats_says_when_dictionaries_are_off(real_redis_url: str,
                                              memory: SyncBuyerConversationMemory,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _seed_buyers(memory, 30)
    monkeypatch.setenv("MEMORY_CORE_USE_DICTIONARY", "false")
    capsys.readouterr()
    assert cli(real_redis_url, "stats") == 0
    out = capsys.readouterr().out
    assert re.search(r"saves use +none: dictionaries are off \(use_dictionary\)$", out,
                     re.MULTILINE)
    assert "run train-dictionary" not in out
    assert re.search(r"a fresh dictionary +no estimate: saves use no dictionary here", out)


# trial findings: empty URLs, Ctrl-C, unreadable records, id prefixes ---------------------

@pytest.mark.parametrize("given", ["", "   "], ids=["empty", "blank"])
def test_an_empty_redis_url_is_refused_not_replaced_by_the_default(
        given: str, real_redis_url: str, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``--redis-url "$UNSET"`` once fell back to $REDIS_URL, then localhost:6379."""
    monkeypatch.setenv("REDIS_URL", real_redis_url)  # where a fallback would have written
    assert main(["--redis-url", given, "seed", "--count", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --redis-url is empty") and err.count("\n") == 1
    assert "give a Redis URL" in err
    assert buyer_key_count(raw) == 0


@pytest.mark.parametrize("value", ["", " "], ids=["empty", "blank"])
def test_an_empty_redis_url_variable_is_refused(
        value: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", value)
    assert main(["stats"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: REDIS_URL is set but empty") and err.count("\n") == 1
    assert "unset it" in err


def test_the_help_states_the_exit_codes_and_the_empty_url_rule() -> None:
    main_help = " ".join(build_parser().format_help().split())
    assert "130 stopped by Ctrl-C" in main_help
    assert "holds no readable buyer" in main_help and "an empty one is refused" in main_help


def stopped_cli(url: str, *args: str) -> int:
    """:func:`cli` for a command the test interrupts: a KeyboardInterrupt escaping main()
    is the bug, and must fail this test, not stop the whole pytest session."""
    try:
        return cli(url, *args)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main(): a raw traceback for the operator")


def seed_audits(memory: SyncBuyerConversationMemory) -> list[Any]:
    from memory_core.audit import read_events
    return [e for e in read_events(memory.client, memory.prefix) if e.action == "seed"]


def interrupt_third_batch(monkeypatch: pytest.MonkeyPatch,
                          interrupt: Callable[[], None]) -> list[int]:
    """Seed in batches of 10 and call ``interrupt`` as the third batch is written; the
    list counts the batches begun."""
    monkeypatch.setattr("memory_core.cli.SEED_BATCH", 10)
    original = SyncBuyerConversationMemory.save_seeds
    calls: list[int] = []

    def save_seeds(self: SyncBuyerConversationMemory, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            interrupt()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncBuyerConversationMemory, "save_seeds", save_seeds)
    return calls


def test_ctrl_c_during_seed_stops_after_the_batch_in_flight(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A real SIGINT during the third batch: that batch is finished, then the seed stops,
    says how many it wrote, audits exactly that, and exits 130 (no traceback)."""
    import signal
    # the operator's Ctrl-C, mid-write
    calls = interrupt_third_batch(monkeypatch, lambda: signal.raise_signal(signal.SIGINT))
    assert stopped_cli(real_redis_url, "seed", "--count", "100", "--seed", "4") == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("stopped: wrote 30 of 100 QA buyers (seed 4) before "
                                   "Ctrl-C; run the same command again")
    assert "Traceback" not in captured.err
    assert buyer_key_count(raw) == 30 and len(calls) == 3
    (entry,) = seed_audits(memory)
    assert entry.outcome == "interrupted"
    assert entry.detail.startswith("30 generated of 100, 0 real kept")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_ctrl_c_raised_inside_a_batch_write_says_at_least(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A KeyboardInterrupt out of the batch writer itself (a second Ctrl-C): the batch in
    flight is in doubt, so the line and the audit say "at least" and by how much more."""
    def second_ctrl_c() -> None:
        raise KeyboardInterrupt

    interrupt_third_batch(monkeypatch, second_ctrl_c)
    assert stopped_cli(real_redis_url, "seed", "--count", "100") == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("stopped: wrote at least 20 of 100 QA buyers (seed 0) before "
                          "Ctrl-C (up to 10 more may have been written by the batch in flight)")
    assert buyer_key_count(raw) == 20
    (entry,) = seed_audits(memory)
    assert entry.outcome == "interrupted"
    assert entry.detail.startswith("20 generated of 100, 0 real kept, up to 10 more in flight")


def test_ctrl_c_in_the_progress_callback_counts_real_buyers_left_alone(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("memory_core.cli.SEED_BATCH", 10)
    assert memory.save_state("qa-0-000003", {"buyer_temperature": "hot"})  # a real buyer
    updates: list[int] = []

    def progress_bar(unit: str) -> tuple[Any, Any]:
        def update(done: int, total: int) -> None:
            updates.append(done)
            if len(updates) == 2:
                raise KeyboardInterrupt
        return update, lambda: None

    monkeypatch.setattr("memory_core.cli._progress_bar", progress_bar)
    assert stopped_cli(real_redis_url, "seed", "--count", "50") == 130
    err = capsys.readouterr().err
    assert err.startswith("stopped: wrote 19 of 50 QA buyers (seed 0) before Ctrl-C; 1 id(s) "
                          "hold real buyers and were left alone;") and err.count("\n") == 1
    assert buyer_key_count(raw) == 20
    (entry,) = seed_audits(memory)
    assert entry.detail.startswith("19 generated of 50, 1 real kept;")


def test_ctrl_c_during_clear_qa_seeds_counts_what_is_gone(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from memory_core.audit import read_events
    assert cli(real_redis_url, "seed", "--count", "25") == 0
    monkeypatch.setattr("memory_core.admin.DELETE_BATCH", 10)
    original = SyncBuyerConversationMemory.delete_seeds
    calls: list[int] = []

    def delete_seeds(self: SyncBuyerConversationMemory, keys: list[bytes]) -> int:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, keys)

    monkeypatch.setattr(SyncBuyerConversationMemory, "delete_seeds", delete_seeds)
    capsys.readouterr()
    assert stopped_cli(real_redis_url, "clear", "--qa-seeds", "--yes") == 130
    err = capsys.readouterr().err
    assert err == ("stopped: deleted 10 of 25 QA-seeded buyers before Ctrl-C (counted from "
                   "the keys left: 15); run clear --qa-seeds again to delete the rest\n")
    assert buyer_key_count(raw) == 15
    entry = read_events(memory.client, memory.prefix)[0]
    assert (entry.action, entry.outcome) == ("clear_qa_seeds", "interrupted")
    assert entry.detail.startswith("10 of 25 gone, 15 left")


def test_ctrl_c_during_migrate_legacy_is_one_line_audited_and_130(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from memory_core.audit import read_events
    raw.set(key("old-1"), pickle.dumps({"compressed": False, "data": "{}"}))

    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("memory_core.admin._migrate_one", interrupted)
    assert stopped_cli(real_redis_url, "migrate-legacy") == 130
    err = capsys.readouterr().err
    assert err.startswith("stopped: migrate-legacy interrupted by Ctrl-C;")
    assert err.count("\n") == 1 and "run it again" in err
    (entry,) = read_events(memory.client, memory.prefix)
    assert (entry.action, entry.outcome) == ("migrate_legacy", "interrupted")


def test_ctrl_c_at_the_confirmation_is_a_no(
        real_redis_url: str, raw: redis.Redis, memory: SyncBuyerConversationMemory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert memory.save_state("buyer-3", {"buyer_temperature": "hot"})

    def interrupted(prompt: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", interrupted)
    assert stopped_cli(real_redis_url, "clear", "buyer-3") == 2
    assert "not confirmed; nothing deleted" in capsys.readouterr().err
    assert raw.exists(key("buyer-3")) == 1


@pytest.mark.parametrize(("plant", "reason"), [
    (lambda r: r.hset(key("bad"), mapping={"owner": "another app"}),
     "the key holds a hash, not a buyer record (WRONGTYPE)"),
    (lambda r: r.rpush(key("bad"), b"one"),
     "the key holds a list, not a buyer record (WRONGTYPE)"),
    (lambda r: r.set(key("bad"), b"\x00\x01 garbage"), "unrecognised bytes"),
    (lambda r: r.set(key("bad"), b"BCM1" + b"x" * (2 * 1024 * 1024)),
     "the value is larger than"),
], ids=["hash", "list", "corrupt", "oversized"])
def test_show_of_an_unreadable_record_exits_1_with_a_plain_reason(
        plant: Any, reason: str, real_redis_url: str, raw: redis.Redis,
        memory: SyncBuyerConversationMemory, capsys: pytest.CaptureFixture[str]) -> None:
    """Data, not usage: exit 1 ("no readable buyer"), one line naming the problem and what
    to do; never redis-py's pipeline text quoting the GETRANGE command."""
    plant(raw)
    assert cli(real_redis_url, "show", "bad") == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: buyer bad has no readable record: " + reason)
    assert "memory-core clear bad" in captured.err
    for raw_text in ("Command #", "GETRANGE", "pipeline", "Operation against"):
        assert raw_text not in captured.err
    assert cli(real_redis_url, "show", "bad", "--json") == 1


def test_a_wrong_type_record_names_its_type_wherever_it_is_read(
        raw: redis.Redis, memory: SyncBuyerConversationMemory) -> None:
    from memory_core.errors import CorruptRecord
    raw.sadd(key("a-set"), b"member")
    with pytest.raises(CorruptRecord) as excinfo:
        memory.read_record("a-set")
    assert str(excinfo.value) == "the key holds a set, not a buyer record (WRONGTYPE)"
    (problem,) = memory.check_records([key("a-set").encode()])
    assert str(problem) == "the key holds a set, not a buyer record (WRONGTYPE)"


def test_seed_refuses_an_empty_id_prefix(real_redis_url: str, raw: redis.Redis,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "seed", "--count", "3", "--id-prefix", "") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --id-prefix is empty") and err.count("\n") == 1
    assert "0-000000" in err and "qa-" in err
    assert buyer_key_count(raw) == 0


@pytest.mark.parametrize(("prefix", "shown"), [
    ("bad prefix ", "'bad prefix '"), ("tab\t", "'tab\\x09'"), ("no\u00a0break", "'no\\xa0break'"),
], ids=["space", "tab", "no-break-space"])
def test_seed_names_a_bad_id_prefix_itself(prefix: str, shown: str, real_redis_url: str,
                                           raw: redis.Redis,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The error once showed an id masked as a phone number: "bad prefix ***-0002"."""
    assert cli(real_redis_url, "seed", "--count", "3", "--id-prefix", prefix) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --id-prefix {shown} contains a space or a control "
                          "character") and err.count("\n") == 1
    assert "***" not in err and "000002" not in err
    assert buyer_key_count(raw) == 0
