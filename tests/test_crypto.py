"""Encryption at rest: key parsing, encrypted records and dictionaries, undecryptable data.

Behaviour tests take ``store_url`` and run on fakeredis and on the private redis-server.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from typing import Any

import pytest
import redis

from memory_core import BuyerConversationMemory, SyncBuyerConversationMemory
from memory_core.config import MemoryConfig, load_config
from memory_core.crypto import (
    KEYS_ENV,
    KEYS_FILE_ENV,
    LOOKUP_KEY_ENV,
    generate_key_pair,
    keyring_from_env,
    parse_keyring,
)
from memory_core.errors import ConfigError, CorruptRecord, UndecryptableRecord
from memory_core.record import parse_summary

PREFIX = "buyer_conversation_memory"
K1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
K2 = "k2:" + base64.urlsafe_b64encode(bytes(range(100, 132))).decode().rstrip("=")


def encrypted_config(keys: str = K1, **changes: Any) -> MemoryConfig:
    return load_config(env={KEYS_ENV: keys}).replace(**changes)


def a_state(messages: int = 40) -> dict[str, Any]:
    return {
        "buyer_name": "Elena Ruiz", "buyer_phone": "+1 (555) 000-1234",
        "buyer_email": "elena.ruiz@example.com", "buyer_temperature": "hot",
        "conversation_history": [
            {"role": "user", "content": f"Hi, I'm Elena Ruiz, call me at 555-000-1234 ({i})",
             "timestamp": "2026-11-01T10:00:00+00:00"} for i in range(messages)],
    }


# keys from the environment --------------------------------------------------------------

def test_keys_parse_standard_and_url_safe_base64_first_key_encrypts() -> None:
    keyring = parse_keyring(f"{K1}, {K2}", KEYS_ENV)
    assert keyring.primary_id == "k1"
    assert keyring.key_ids == ("k1", "k2")
    blob = keyring.encrypt(b"secret", b"aad")
    assert keyring.decrypt("k1", blob, b"aad") == b"secret"


@pytest.mark.parametrize(("value", "message"), [
    ("", "empty"),
    ("k1", "no ':'"),
    ("bad id!:" + K1.split(":")[1], "invalid key id"),
    ("this-id-is-far-too-long:" + K1.split(":")[1], "invalid key id"),
    ("k1:not base64!!", "not valid base64"),
    ("k1:" + base64.b64encode(b"short").decode(), "exactly 32"),
    (f"{K1},{K1}", "listed twice"),
])
def test_bad_keys_stop_start_up_with_a_message_and_no_key_material(value: str,
                                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(env={KEYS_ENV: value})
    assert K1.split(":")[1] not in str(caught.value)
    assert KEYS_ENV in str(caught.value)


def test_keys_come_from_a_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{K2}\n{K1}\n")
    config = load_config(env={KEYS_FILE_ENV: str(keys_file)})
    assert config.keyring is not None and config.keyring.key_ids == ("k2", "k1")
    with pytest.raises(ConfigError, match="not both"):
        keyring_from_env({KEYS_ENV: K1, KEYS_FILE_ENV: str(keys_file)})
    with pytest.raises(ConfigError, match="cannot read"):
        keyring_from_env({KEYS_FILE_ENV: str(tmp_path / "missing")})


@pytest.mark.parametrize("name", ["encryption_keys", "encryption_key", "lookup_key"])
def test_a_key_in_the_yaml_stops_start_up_saying_where_keys_go(tmp_path: Path,
                                                                name: str) -> None:
    path = tmp_path / "bots.yaml"
    path.write_text(f"buyer_bot:\n  conversation_memory:\n    {name}: {K1}\n")
    with pytest.raises(ConfigError, match=KEYS_ENV) as caught:
        load_config(path, env={})
    assert K1.split(":")[1] not in str(caught.value)


def test_key_material_never_shows_in_a_repr() -> None:
    config = load_config(env={KEYS_ENV: K1, LOOKUP_KEY_ENV: K2.split(":")[1]})
    for text in (repr(config), str(config), repr(config.keyring)):
        assert K1.split(":")[1] not in text
        assert K2.split(":")[1] not in text
    assert "k1" in repr(config.keyring)  # the key id is fine to show


def test_generated_keys_are_fresh_valid_pairs() -> None:
    first, second = generate_key_pair(), generate_key_pair("rotated-2026")
    assert first != second and second.startswith("rotated-2026:")
    assert parse_keyring(f"{first},{second}", "generated").key_ids[1] == "rotated-2026"
    with pytest.raises(ConfigError):
        generate_key_pair("no spaces")


# encrypted records ---------------------------------------------------------------------------

def test_encrypted_record_keeps_a_plain_pii_free_header_and_no_pii_bytes(
        store_url: str, raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config()) as memory:
        assert memory.save_state("c-1", a_state())
        stored = raw.get(f"{PREFIX}:c-1")
        assert stored is not None
        summary = parse_summary(stored)
        assert summary.key_id == "k1" and summary.codec == "zstd"
        assert summary.temperature == "hot" and summary.message_count == 40
        for pii in (b"Elena", b"Ruiz", b"555", b"example.com"):
            assert pii not in stored[summary.header_bytes:]
        loaded = memory.load_state("c-1")
        assert loaded is not None and loaded["buyer_name"] == "Elena Ruiz"
    # states under an explicit threshold (stored uncompressed) are encrypted too
    plain_config = encrypted_config(compress_threshold_bytes=5120)
    with SyncBuyerConversationMemory.from_url(store_url, plain_config) as memory:
        assert memory.save_state("c-small", {"buyer_name": "Elena Ruiz"})
        small = raw.get(f"{PREFIX}:c-small")
        assert small is not None and b"Elena" not in small
        assert parse_summary(small).codec == "none" and parse_summary(small).key_id == "k1"


def test_a_record_copied_under_another_buyer_does_not_decrypt(
        store_url: str, raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config()) as memory:
        memory.save_state("victim", a_state())
        raw.set(f"{PREFIX}:attacker", raw.get(f"{PREFIX}:victim") or b"")
        with caplog.at_level(logging.INFO, logger="memory_core"):
            assert memory.load_state("attacker") is None
        lines = [r.getMessage() for r in caplog.records if "decrypt" in r.getMessage()]
        assert len(lines) == 1 and "'k1'" in lines[0] and "authentication failed" in lines[0]


def test_tampered_or_unknown_key_records_load_as_none_with_one_line_naming_key_and_reason(
        store_url: str, raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config()) as memory:
        memory.save_state("c-1", a_state())
        stored = bytearray(raw.get(f"{PREFIX}:c-1") or b"")
        stored[-5] ^= 0x01
        raw.set(f"{PREFIX}:tampered", bytes(stored))
        raw.set(f"{PREFIX}:renamed-key",
                bytes(stored).replace(b"zstd+k1", b"zstd+k9", 1))
        with caplog.at_level(logging.INFO, logger="memory_core"):
            assert memory.load_state("tampered") is None
            assert memory.load_state("renamed-key") is None
        reasons = [r.getMessage() for r in caplog.records if "decrypt" in r.getMessage()]
        assert len(reasons) == 2
        assert "'k1'" in reasons[0] and "authentication failed" in reasons[0]
        assert "'k9'" in reasons[1] and "unknown key id" in reasons[1]
        assert memory.load_state("c-1") is not None  # one bad key is that key's problem


def test_rotation_reads_old_keys_writes_the_first_and_plain_records_keep_loading(
        store_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(store_url, MemoryConfig()) as plain:
        plain.save_state("before-encryption", a_state())
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config(K1)) as old:
        old.save_state("under-k1", a_state())
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config(f"{K2},{K1}")) as new:
        for contact_id in ("before-encryption", "under-k1"):
            loaded = new.load_state(contact_id)
            assert loaded is not None and loaded["buyer_email"] == "elena.ruiz@example.com"
        new.save_state("under-k1", a_state())
        record = new.read_record("under-k1")
        assert record is not None and record.summary is not None
        assert record.summary.key_id == "k2"
    with SyncBuyerConversationMemory.from_url(store_url, MemoryConfig()) as keyless:
        assert keyless.load_state("under-k1") is None  # no key: no state, no exception
        assert keyless.load_state("before-encryption") is not None


def test_async_memory_encrypts_and_decrypts_the_same_way(store_url: str) -> None:
    async def scenario() -> dict[str, Any] | None:
        async with BuyerConversationMemory.from_url(store_url, encrypted_config()) as memory:
            assert await memory.save_state("async-1", a_state())
            return await memory.load_state("async-1")

    loaded = asyncio.run(scenario())
    assert loaded is not None and loaded["buyer_phone"] == "+1 (555) 000-1234"
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config()) as sync:
        record = sync.read_record("async-1")
        assert record is not None and record.summary is not None
        assert record.summary.key_id == "k1"


def test_the_header_rejects_a_malformed_key_id(store_url: str, raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config()) as memory:
        memory.save_state("c-1", a_state())
        stored = raw.get(f"{PREFIX}:c-1") or b""
        forged = stored.replace(b"zstd+k1", b"zstd+\x1b]0;x", 1)
        with pytest.raises(CorruptRecord, match="invalid key id"):
            parse_summary(forged)
        raw.set(f"{PREFIX}:forged", forged)
        assert memory.load_state("forged") is None


def test_undecryptable_is_a_corrupt_record_naming_the_key() -> None:
    error = UndecryptableRecord("k7", "unknown key id")
    assert isinstance(error, CorruptRecord)
    assert "k7" in str(error) and error.key_id == "k7"


def test_nonces_are_fresh_per_save(store_url: str, raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config()) as memory:
        memory.save_state("c-1", {"buyer_name": "Same"})
        first = raw.get(f"{PREFIX}:c-1") or b""
        memory.save_state("c-2", {"buyer_name": "Same"})
        second = raw.get(f"{PREFIX}:c-2") or b""
    first_payload = first[parse_summary(first).header_bytes:]
    second_payload = second[parse_summary(second).header_bytes:]
    assert first_payload[:12] != second_payload[:12]
    assert first_payload != second_payload


# the inventory: headers only, no key needed ------------------------------------------------------

def test_the_inventory_works_without_keys_and_names_each_records_key(
        store_url: str, raw: redis.Redis) -> None:
    from memory_core.inventory import STATUS_OK, scan_summaries, summarize_inventory

    with SyncBuyerConversationMemory.from_url(store_url, MemoryConfig()) as plain:
        plain.save_state("clear", a_state())
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config()) as memory:
        memory.save_state("secret", a_state())
    with SyncBuyerConversationMemory.from_url(store_url, MemoryConfig()) as keyless:
        frame = scan_summaries(keyless).set_index("contact_id")
        assert frame.loc["secret", "status"] == STATUS_OK  # no key, still summarised
        assert frame.loc["secret", "key_id"] == "k1" and frame.loc["secret", "codec"] == "zstd"
        assert frame.loc["clear", "key_id"] == "none"
        assert frame.loc["secret", "temperature"] == "hot"
        report = summarize_inventory(frame.reset_index())
        assert report["by_key_id"] == {"k1": 1, "none": 1} and report["undecryptable"] == 0


def test_the_inventory_lists_undecryptable_records(store_url: str, raw: redis.Redis) -> None:
    from memory_core.inventory import STATUS_UNDECRYPTABLE, scan_summaries

    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config(K2)) as other:
        other.save_state("under-k2", a_state())
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config()) as memory:
        memory.save_state("good", a_state())
        memory.save_state("tampered", a_state())
        stored = bytearray(raw.get(f"{PREFIX}:tampered") or b"")
        stored[-2] ^= 0x10
        raw.set(f"{PREFIX}:tampered", bytes(stored))
        frame = scan_summaries(memory).set_index("contact_id")
        assert frame.loc["under-k2", "status"] == STATUS_UNDECRYPTABLE
        assert "'k2'" in frame.loc["under-k2", "problem"]
        assert frame.loc["tampered", "status"] == "ok"  # the header cannot tell
        verified = scan_summaries(memory, verify=True).set_index("contact_id")
        assert verified.loc["tampered", "status"] == STATUS_UNDECRYPTABLE
        assert "authentication failed" in verified.loc["tampered", "problem"]
        assert verified.loc["good", "status"] == "ok"


def test_a_memory_built_without_a_config_still_uses_the_environments_keys(
        store_url: str, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEYS_ENV, K1)
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("c-1", a_state())
    assert parse_summary(raw.get(f"{PREFIX}:c-1") or b"").key_id == "k1"
    monkeypatch.setenv(KEYS_ENV, "k1:not-a-key")
    with pytest.raises(ConfigError, match=KEYS_ENV):
        SyncBuyerConversationMemory.from_url(store_url)


def test_stats_name_the_keys_by_id_and_count_undecryptable_loads(
        store_url: str, raw: redis.Redis, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from memory_core.cli import main as cli_main

    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config(K2)) as other:
        other.save_state("under-k2", a_state())
    with SyncBuyerConversationMemory.from_url(store_url, encrypted_config()) as memory:
        assert memory.load_state("under-k2") is None
        stats = memory.get_stats()
    assert stats["encryption_key_id"] == "k1" and stats["decryption_key_ids"] == ["k1"]
    assert stats["phone_email_lookup"] is True
    assert stats["undecryptable"] == 1 and stats["corrupt"] == 0
    if store_url.startswith("redis://"):
        monkeypatch.setenv(KEYS_ENV, f"{K1},{K2}")
        assert cli_main(["--redis-url", store_url, "stats", "--json"]) == 0
        out = capsys.readouterr().out
        assert '"encryption_key_id": "k1"' in out and K1.split(":")[1] not in out


def test_a_worker_without_the_new_key_never_overwrites_what_it_cannot_read(
        store_url: str, raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    """A rolling key rotation: one worker already has k2 first, another still only k1."""
    with (SyncBuyerConversationMemory.from_url(store_url, encrypted_config(f"{K2},{K1}")) as new,
          SyncBuyerConversationMemory.from_url(store_url, encrypted_config(K1)) as old,
          SyncBuyerConversationMemory.from_url(store_url, MemoryConfig()) as keyless):
        assert new.save_state("c-1", a_state(messages=12))
        stored = raw.get(f"{PREFIX}:c-1")

        def add(state: dict[str, Any]) -> dict[str, Any]:
            state["conversation_history"].append({"role": "user", "content": "hi"})
            return state

        with caplog.at_level(logging.WARNING, logger="memory_core"):
            assert old.load_state("c-1") is None
            assert old.update_state("c-1", add) is None
            assert old.save_state("c-1", {"buyer_name": "Somebody Else"}) is False
            assert keyless.save_state("c-1", {}) is False
        assert raw.get(f"{PREFIX}:c-1") == stored  # untouched
        assert any("not overwritten" in r.getMessage() for r in caplog.records)
        loaded = new.load_state("c-1")
        assert loaded is not None and len(loaded["conversation_history"]) == 12
        # records it can read (clear or under k1) it still saves as before
        assert keyless.save_state("c-clear", {}) and old.save_state("c-clear", {})
        assert old.get_stats()["refused"] == 2


# a whole generate-key line pasted as the lookup key ----------------------------------------
# A review found that MEMORY_CORE_LOOKUP_KEY=k1:BASE64 (a whole `generate-key` line) only
# said "not valid base64", leaving the operator to guess what to change.

@pytest.mark.parametrize("pasted", [K1, f" {K1} ", "k1:" + K2.split(":")[1]])
def test_a_pasted_key_line_as_lookup_key_says_to_keep_the_part_after_the_colon(
        pasted: str) -> None:
    with pytest.raises(ConfigError, match="only the part after the colon") as caught:
        load_config(env={LOOKUP_KEY_ENV: pasted})
    message = str(caught.value)
    assert LOOKUP_KEY_ENV in message and "not valid base64" in message
    for secret in (K1.split(":")[1], K2.split(":")[1], pasted.strip()):
        assert secret not in message
    # the part after the colon is what works
    assert load_config(env={LOOKUP_KEY_ENV: pasted.split(":")[1].strip()}).lookup_secret


def test_invalid_base64_without_a_colon_keeps_the_generate_key_hint() -> None:
    with pytest.raises(ConfigError, match="generate-key") as caught:
        load_config(env={LOOKUP_KEY_ENV: "not base64!!"})
    assert "colon" not in str(caught.value) and "not base64!!" not in str(caught.value)
