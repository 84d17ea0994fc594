"""Regression tests for the defects a review found: each failed before its fix."""

from __future__ import annotations

import asyncio
import gzip
import logging
import pickle
import threading
from pathlib import Path

import pytest
import redis
import zstandard

from memory_core import BuyerConversationMemory, MemoryConfig, SyncBuyerConversationMemory
from memory_core import dictionaries as dicts
from memory_core.admin import clear_qa_seeds, migrate_legacy, parse_scenarios, qa_seed_ids
from memory_core.cli import main as cli_main
from memory_core.config import load_config
from memory_core.connection import parse_target, redact_url
from memory_core.errors import ConfigError, ConnectionURLError, CorruptRecord, InvalidState
from memory_core.inventory import BatchReader, scan_summaries
from memory_core.record import MAGIC, SEPARATOR
from memory_core.state import mask_pii
from memory_core.testing import buyer_key_count

PREFIX = "buyer_conversation_memory"


def key(contact_id: str) -> bytes:
    return f"{PREFIX}:{contact_id}".encode()


def zstd_record(json_bytes: bytes, claimed_original: int | None = None) -> bytes:
    payload = zstandard.ZstdCompressor(level=3).compress(json_bytes)
    original = len(json_bytes) if claimed_original is None else claimed_original
    fields = [b"1.0", b"zstd", b"0", str(original).encode(), str(len(payload)).encode(),
              b"hot", b"investor", b"0", b"discovery", b"1", b"0", b"0"]
    return MAGIC + SEPARATOR.join(fields) + b"\n" + payload


def problem_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name.startswith("memory_core") and r.levelno >= logging.WARNING]


# decompression bombs ----------------------------------------------------------------

def test_a_record_expanding_beyond_max_state_bytes_is_refused(
        store_url: str, raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    bomb = b'{"x": "' + b" " * 5_000_000 + b'"}'
    raw.set(key("bomb"), zstd_record(bomb))
    assert len(raw.get(key("bomb")) or b"") < 1000
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.load_state("bomb") is None
    logs = problem_logs(caplog)
    assert len(logs) == 1 and "max_state_bytes" in logs[0].getMessage()


def test_a_header_understating_the_frame_size_is_refused(store_url: str,
                                                          raw: redis.Redis) -> None:
    raw.set(key("liar"), zstd_record(b'{"x": "' + b" " * 3_000_000 + b'"}',
                                     claimed_original=100))
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.load_state("liar") is None
        assert memory.get_stats()["corrupt"] == 1


def test_a_legacy_gzip_bomb_is_refused(store_url: str, raw: redis.Redis) -> None:
    blob = gzip.compress(b'{"x": "' + b" " * 5_000_000 + b'"}')
    raw.set(key("legacy-bomb"), pickle.dumps({"compressed": True, "data": blob.hex()}))
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.load_state("legacy-bomb") is None
        assert memory.get_stats()["corrupt"] == 1


# secrets and PII --------------------------------------------------------------------

@pytest.mark.parametrize(("url", "secret"), [
    ("redis://127.0.0.1:1/0?password=s3cretpw", "s3cretpw"),
    ("redis://bot:ab?cd@127.0.0.1:1/0", "ab?cd"),
    ("redis://bot:123#Secret@127.0.0.1:1/0", "123#Secret"),
    ("rediss://user:p@ss@redis.example:6380/0", "p@ss"),
])
def test_passwords_never_survive_redaction(url: str, secret: str) -> None:
    assert secret not in redact_url(url)
    try:
        shown = parse_target(url).redacted_url
    except ConnectionURLError as exc:
        shown = str(exc)
    assert secret not in shown
    assert "'ab'" not in shown  # a parser message can quote the part of a password it read


def test_non_string_pii_and_reworded_repeats_are_masked() -> None:
    state = {"buyer_name": "Elena Garcia", "buyer_phone": "+1-555-123-4567",
             "buyer_email": "Elena.Garcia@example.com",
             "conversation_history": [{"role": "user", "content":
                                       "Reach me at (555) 123-4567 or elena.garcia@Example.com"
                                       " - ELENA"}]}
    content = mask_pii(state)["conversation_history"][0]["content"]
    for secret in ("123-4567", "elena.garcia", "ELENA", "Garcia"):
        assert secret.lower() not in content.lower(), secret
    assert "4567" in content  # enough left to recognise the buyer
    odd = mask_pii({"buyer_name": {"first": "Elena"}, "buyer_phone": 15551234567})
    assert odd["buyer_name"] == "***" and odd["buyer_phone"] == "***"


def test_a_contact_id_cannot_forge_log_lines(store_url: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("x\nERROR memory_core.store: forged", {}) is False
    logs = problem_logs(caplog)
    assert len(logs) == 1
    assert "\n" not in logs[0].getMessage()


# deep and huge inputs -------------------------------------------------------------

def nested_list(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_states_are_refused_with_one_line(
        store_url: str, raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("deep", {"extra": nested_list(5000)}) is False
        assert memory.get_stats()["refused"] == 1
    assert raw.exists(key("deep")) == 0
    assert len(problem_logs(caplog)) == 1


def test_a_deeply_nested_legacy_record_is_corrupt_not_a_crash(store_url: str,
                                                              raw: redis.Redis) -> None:
    raw.set(key("legacy-deep"), pickle.dumps({"compressed": False,
                                              "data": "[" * 100_000 + "]" * 100_000}))
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.load_state("legacy-deep") is None
        assert memory.get_stats()["corrupt"] == 1


def test_a_newer_schema_version_is_kept_on_save(store_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("future", {"state_version": "2.0", "new_field": 1})
        loaded = memory.load_state("future")
    assert loaded is not None
    assert loaded["state_version"] == "2.0" and loaded["new_field"] == 1


# Redis answers "wrong type" -------------------------------------------------------

def test_a_current_dictionary_key_of_another_type_only_disables_the_dictionary(
        store_url: str, raw: redis.Redis, make_buyer_state) -> None:  # type: ignore[no-untyped-def]
    raw.hset(dicts.current_dictionary_key(PREFIX), mapping={"oops": "1"})
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("large", make_buyer_state(1, messages=50)) is True
        record = memory.read_record("large")
    assert record is not None and record.summary is not None
    assert (record.summary.codec, record.summary.dictionary_id) == ("zstd", 0)


def test_async_and_sync_agree_that_a_hash_is_a_corrupt_record(store_url: str,
                                                              raw: redis.Redis) -> None:
    raw.hset(key("hash"), mapping={"a": "b"})

    async def load() -> dict[str, object]:
        async with BuyerConversationMemory.from_url(store_url) as memory:
            assert await memory.load_state("hash") is None
            return await memory.get_stats()

    stats = asyncio.run(load())
    assert (stats["errors"], stats["corrupt"]) == (1, 1)


# the scan -------------------------------------------------------------------------

def test_truncated_and_overflowing_records_are_corrupt_and_the_scan_goes_on(
        memory: SyncBuyerConversationMemory, raw: redis.Redis, make_buyer_state) -> None:  # type: ignore[no-untyped-def]
    assert memory.save_state("good", make_buyer_state(2, messages=50))
    whole = raw.get(key("good")) or b""
    raw.set(key("cut"), whole[:-10])
    fields = [b"1.0", b"none", b"0", b"9" * 25, b"2", b"", b"", b"0", b"", b"0", b"0", b"0"]
    raw.set(key("huge"), MAGIC + SEPARATOR.join(fields) + b"\n{}")
    frame = scan_summaries(memory).set_index("contact_id")
    assert frame.loc["good", "status"] == "ok"
    assert frame.loc["good", "stored_bytes"] == len(whole)
    assert frame.loc["cut", "status"] == "corrupt"
    assert "truncated" in frame.loc["cut", "problem"]
    assert frame.loc["cut", "stored_bytes"] == len(whole) - 10
    assert frame.loc["huge", "status"] == "corrupt"


@pytest.mark.real_redis
def test_the_lua_scan_and_the_pipeline_scan_agree(any_real_url: str,
                                                  make_buyer_state) -> None:  # type: ignore[no-untyped-def]
    """On a cluster too: the node script over many slots reads what the pipeline reads."""
    with SyncBuyerConversationMemory.from_url(any_real_url) as memory:
        for index in range(30):
            memory.save_state(f"c-{index}", make_buyer_state(index, messages=index % 60))
        memory.client.set(key("garbage"), b"\x00garbage")
        memory.client.hset(key("hash"), mapping={"a": "b"})
        memory.client.set(key("legacy"), pickle.dumps({"compressed": False, "data": "{}"}))
        memory.client.set(key("no-header-end"), b"BCM1" + b"x" * 400)
        with_lua = scan_summaries(memory).set_index("contact_id").sort_index()
        original = BatchReader.read

        def pipeline_only(self: BatchReader, keys: list[bytes]) -> list[object]:
            self.uses_script = False
            return original(self, keys)

        BatchReader.read = pipeline_only  # type: ignore[method-assign]
        try:
            with_pipeline = scan_summaries(memory).set_index("contact_id").sort_index()
        finally:
            BatchReader.read = original  # type: ignore[method-assign]
    # what counts down between the two scans
    compared = [c for c in with_lua.columns if c not in ("ttl_ms", "ttl_days", "expires_at")]
    assert with_lua[compared].astype(str).equals(with_pipeline[compared].astype(str))
    assert len(with_lua) == 34
    assert with_lua.loc["no-header-end", "status"] == "corrupt"


@pytest.mark.real_redis
def test_a_scan_left_early_stops_its_read_ahead_thread(any_real_url: str,
                                                       make_buyer_state) -> None:  # type: ignore[no-untyped-def]
    """On a cluster, each primary's walk has its thread: every one of them stops."""
    with SyncBuyerConversationMemory.from_url(any_real_url) as memory:
        for index in range(40):
            memory.save_state(f"early-{index}", make_buyer_state(index, messages=2))

        def leave(done: int, total: int) -> None:
            raise KeyboardInterrupt  # an operator's Ctrl-C, or Streamlit stopping a run

        with pytest.raises(KeyboardInterrupt):
            scan_summaries(memory, batch_size=5, progress=leave)
    assert not [t for t in threading.enumerate() if t.name == "memory-core-scan"]


def test_odd_keys_neither_merge_nor_block_the_qa_cleanup(
        memory: SyncBuyerConversationMemory, raw: redis.Redis, make_buyer_state) -> None:  # type: ignore[no-untyped-def]
    assert memory.save_state("qa-1", {**make_buyer_state(3, messages=5), "qa_seed": True})
    seeded = raw.get(key("qa-1")) or b""
    raw.set(key("qa 1 copied"), seeded)  # an id no bot could write
    raw.set(f"{PREFIX}:bad\xffone".encode("latin-1"), seeded)
    raw.set(f"{PREFIX}:bad\xfeone".encode("latin-1"), seeded)
    assert memory.save_state("real-buyer", make_buyer_state(4, messages=5))
    frame = scan_summaries(memory)
    assert len(frame) == 5 and frame["contact_id"].is_unique
    assert clear_qa_seeds(memory, qa_seed_ids(memory)) == 4
    assert buyer_key_count(raw) == 1 and raw.exists(key("real-buyer"))


def test_migration_keeps_a_save_the_bot_made_meanwhile(
        store_url: str, memory: SyncBuyerConversationMemory, raw: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    raw.set(key("racer"), pickle.dumps({"compressed": False,
                                        "data": '{"buyer_temperature": "cold"}'}))
    real_encode = memory.encode_save

    def bot_saves_meanwhile(*args: object, **kwargs: object) -> object:
        command = real_encode(*args, **kwargs)  # type: ignore[arg-type]
        with SyncBuyerConversationMemory.from_url(store_url) as bot:
            assert bot.save_state("racer", {"buyer_temperature": "hot"})
        return command

    monkeypatch.setattr(memory, "encode_save", bot_saves_meanwhile)
    report = migrate_legacy(memory)
    assert report.migrated == 0 and "racer" in report.failed
    loaded = memory.load_state("racer")
    assert loaded is not None and loaded["buyer_temperature"] == "hot"


# configuration, files and the CLI -------------------------------------------------

def test_odd_config_keys_and_prefixes_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("buyer_bot:\n  conversation_memory:\n    1: x\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match="backslash"):
        load_config(None, env={"MEMORY_CORE_CACHE_KEY_PREFIX": "bcm\\x"})


def test_scenario_files_with_aliases_or_deep_nesting_are_refused() -> None:
    bomb = 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\ncontact_id: c1\n'
    with pytest.raises(InvalidState, match="aliases"):
        parse_scenarios(bomb, "bomb.yaml")
    with pytest.raises(InvalidState, match="nested too deeply"):
        parse_scenarios('{"contact_id": "c", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")


@pytest.mark.real_redis
@pytest.mark.parametrize("args", [["--size-kb", "-1"], ["--samples", "-5"]])
def test_train_dictionary_arguments_are_checked(real_redis_url: str, args: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli_main(["--redis-url", real_redis_url, "train-dictionary", *args])
    assert stopped.value.code == 2
    assert "outside" in capsys.readouterr().err


# a planted dictionary pointer, planted dictionaries, an oversized value ----------------

def test_a_huge_current_dictionary_pointer_only_disables_the_dictionary(
        store_url: str, raw: redis.Redis, make_buyer_state,  # type: ignore[no-untyped-def]
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """5,000 digits once made every large save fail (Python's int-conversion limit)."""
    raw.set(dicts.current_dictionary_key(PREFIX), "9" * 5000)
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        for number in range(3):
            assert memory.save_state(f"large-{number}", make_buyer_state(number, messages=50))
        record = memory.read_record("large-0")
        stats = memory.get_stats()
    assert record is not None and record.summary is not None
    assert (record.summary.codec, record.summary.dictionary_id) == ("zstd", 0)
    assert stats["errors"] == 0 and stats["refused"] == 0
    logs = problem_logs(caplog)
    assert len(logs) == 1 and "not a dictionary id" in logs[0].getMessage()
    assert cli_main(["--redis-url", store_url, "stats", "--json"]) == 0
    assert '"dictionary_id": null' in capsys.readouterr().out


def padded_dictionary(base: zstandard.ZstdCompressionDict, dictionary_id: int,
                      size: int) -> bytes:
    """A valid zstd dictionary of ``size`` bytes with another id (content padded)."""
    raw = bytearray(base.as_bytes())
    raw[4:8] = dictionary_id.to_bytes(4, "little")
    return bytes(raw) + b"x" * max(0, size - len(raw))


def record_naming(dictionary_id: int) -> bytes:
    payload = zstandard.ZstdCompressor().compress(b'{"a": 1}')
    fields = [b"1.0", b"zstd", str(dictionary_id).encode(), b"8", str(len(payload)).encode(),
              b"hot", b"", b"0", b"", b"0", b"0", b"0", b"1"]
    return MAGIC + SEPARATOR.join(fields) + b"\n" + payload


def test_planted_dictionaries_cannot_grow_the_cache_without_bound(
        store_url: str, raw: redis.Redis,
        zstd_dictionaries: tuple[zstandard.ZstdCompressionDict, ...]) -> None:
    """40 records naming 40 planted dictionaries once took a process from 33 to 369 MB."""
    for number in range(40):
        dictionary_id = 1000 + number
        raw.set(dicts.dictionary_key(PREFIX, dictionary_id),
                padded_dictionary(zstd_dictionaries[0], dictionary_id, 1024 * 1024))
        raw.set(key(f"planted-{number}"), record_naming(dictionary_id))
    raw.set(dicts.dictionary_key(PREFIX, 9999),
            padded_dictionary(zstd_dictionaries[0], 9999, 8 * 1024 * 1024))
    raw.set(key("planted-huge"), record_naming(9999))
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        for number in range(40):  # each fetches and caches its 1 MiB dictionary
            loaded = memory.load_state(f"planted-{number}")
            assert loaded is not None and loaded["a"] == 1
        assert memory.load_state("planted-huge") is None  # 8 MiB: refused unread
        cache = memory._dictionaries
        assert len(cache) == dicts.CACHED_DICTIONARIES
        assert cache.cached_bytes <= dicts.CACHED_DICTIONARY_BYTES
        assert memory.get_stats()["corrupt"] == 1
    with pytest.raises(CorruptRecord, match="more than 1048576 bytes"):
        dicts.DictionaryCache(60).add(b"\x37\xa4\x30\xec" + b"\0" * (2 * 1024 * 1024), 1)


@pytest.mark.real_redis
def test_an_oversized_value_is_refused_unread_and_opens_no_breaker(
        real_redis_url: str, real_raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    """A 300 MB value once timed out, counted as an outage and skipped honest buyers."""
    config = MemoryConfig(max_state_bytes=64 * 1024)
    raw = real_raw
    raw.set(key("oversized"), b"BCM1" + b"x" * (20 * 1024 * 1024))
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(real_redis_url, config) as memory:
        assert memory.save_state("honest", {"buyer_temperature": "hot"})
        sent_before = int(raw.info("stats")["total_net_output_bytes"])
        for _ in range(5):
            assert memory.load_state("oversized") is None
        sent = int(raw.info("stats")["total_net_output_bytes"]) - sent_before
        honest = [memory.load_state("honest") for _ in range(20)]
        stats = memory.get_stats()
    assert sent < 5 * 200 * 1024  # about max_state_bytes per load, never the 20 MB
    assert all(state is not None for state in honest)
    assert stats["circuit_open"] is False and stats["skipped"] == 0
    assert stats["corrupt"] == 5
    assert "larger than" in problem_logs(caplog)[0].getMessage()


def test_an_oversized_value_is_refused_by_the_async_store_too(store_url: str,
                                                               raw: redis.Redis) -> None:
    raw.set(key("oversized"), b"BCM1" + b"x" * (3 * 1024 * 1024))

    async def load() -> tuple[object, dict[str, object]]:
        async with BuyerConversationMemory.from_url(store_url) as memory:
            return await memory.load_state("oversized"), await memory.get_stats()

    loaded, stats = asyncio.run(load())
    assert loaded is None and stats["corrupt"] == 1 and stats["circuit_open"] is False


@pytest.mark.parametrize("version", ["99.0\n2026-01-01 INFO forged line", "\n9",
                                     "9\x1b]0;title\x07", "\u0661.0"])
def test_a_planted_schema_version_cannot_forge_a_log_line(
        real_redis_url: str, real_raw: redis.Redis, caplog: pytest.LogCaptureFixture,
        version: str) -> None:
    from memory_core.record import encode_record
    from memory_core.state import dump_json

    state = {"state_version": version, "conversation_history": []}
    real_raw.set(key("planted"), encode_record(state, dump_json(state),
                                               compress_threshold_bytes=5120, codec="zstd",
                                               zstd_level=3))
    with (caplog.at_level(logging.INFO, logger="memory_core"),
          SyncBuyerConversationMemory.from_url(real_redis_url) as memory):
        memory.load_state("planted")
    assert caplog.records
    for record in caplog.records:
        line = record.getMessage()
        assert "\n" not in line and "\x1b" not in line and "\x07" not in line
