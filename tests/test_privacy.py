"""PII at rest and in motion: PII-free dictionaries, the phone/email lookup, erasure,
re-encryption, the audit trail of operator writes, and logs without PII.

The tests that matter run on the private redis-server (``real_redis_url``).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
from typing import Any

import pytest
import redis

from memory_core import SyncBuyerConversationMemory, admin, audit, erasure, rotation
from memory_core import dictionaries as dicts
from memory_core.cli import main as cli_main
from memory_core.config import MemoryConfig, load_config
from memory_core.crypto import KEYS_ENV, LOOKUP_KEY_ENV, parse_keyring
from memory_core.errors import InvalidState
from memory_core.lookup import normalise_email, normalise_phone
from memory_core.record import parse_summary
from memory_core.seeding import SeedOptions, generate_buyers
from memory_core.testing import seed_buyers

PREFIX = "buyer_conversation_memory"
K1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
K2 = "k2:" + base64.b64encode(bytes(range(50, 82))).decode()
LOOKUP = base64.b64encode(bytes(range(200, 232))).decode()


def config_with(keys: str | None = K1, lookup: str | None = None) -> MemoryConfig:
    env = {}
    if keys:
        env[KEYS_ENV] = keys
    if lookup:
        env[LOOKUP_KEY_ENV] = lookup
    return load_config(env=env)


def cli(url: str, *args: str, env: dict[str, str] | None = None,
        monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    if monkeypatch is not None:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
    return cli_main(["--redis-url", url, *args])


def buyer(phone: str | None = "+1 (555) 000-1234", email: str | None = "Elena@Example.com",
          name: str = "Elena Ruiz") -> dict[str, Any]:
    return {"buyer_name": name, "buyer_phone": phone, "buyer_email": email,
            "conversation_history": [{"role": "user", "content": f"I'm {name}, {phone}"}]}


# normalisation -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["+1 (555) 000-1234", "+15550001234", "555-000-1234",
                                  "001 555 000 1234", "(555) 000 1234", "+1.555.000.1234"])
def test_phone_forms_normalise_to_digits_with_the_country_code(text: str) -> None:
    assert normalise_phone(text) == "15550001234"


def test_emails_normalise_lower_case_and_nonsense_is_refused() -> None:
    assert normalise_email("  Elena.Ruiz@Example.COM ") == "elena.ruiz@example.com"
    assert normalise_email("not an email") is None
    assert normalise_phone("12") is None and normalise_phone("x" * 1000) is None
    with pytest.raises(InvalidState, match="not a phone number"):
        erasure.identifier(phone="call me")
    with pytest.raises(InvalidState, match="exactly one"):
        erasure.identifier(phone="+15550001234", email="a@b.c")


# dictionaries ---------------------------------------------------------------------------------

def _seeded_pii(count: int) -> list[str]:
    values = []
    for item in generate_buyers(SeedOptions(count=count, seed=11)):
        _, state, _, _ = item.as_save_item()
        phone = state["buyer_phone"]
        values += [state["buyer_name"], state["buyer_email"], phone,
                   re.sub(r"\D", "", phone), re.sub(r"\D", "", phone)[-10:]]
    return values


@pytest.mark.parametrize("keys", [None, K1])
def test_a_trained_dictionary_holds_none_of_the_seeded_names_phones_or_emails(
        real_redis_url: str, real_raw: redis.Redis, keys: str | None) -> None:
    config = config_with(keys)
    with SyncBuyerConversationMemory.from_url(real_redis_url, config) as memory:
        seed_buyers(memory, 300, seed=11)
        trained = admin.train_dictionary_from_store(memory, sample_size=300)
        key = dicts.dictionary_key(PREFIX, trained.dictionary_id)
        stored = real_raw.get(key) or b""
        plain = dicts.opened_value(stored, config.keyring, key)
        # the plain dictionary is what a reader would use: it must carry no PII
        for value in _seeded_pii(300):
            assert value.encode() not in plain, value
            assert value.encode() not in stored, value
        if keys:  # stored encrypted: nothing of the dictionary is readable
            assert stored.startswith(dicts.ENCRYPTED_MAGIC + b"k1\n")
            assert plain[:64] not in stored
        # and the store still writes and reads with it
        memory.save_state("after", buyer())
        record = memory.read_record("after")
        assert record is not None and record.state["buyer_name"] == "Elena Ruiz"


def test_training_samples_replace_pii_inside_messages() -> None:
    sample = dicts.training_sample({
        "buyer_name": "Elena Ruiz", "buyer_phone": "+1 555 000 1234",
        "buyer_email": "elena@example.com",
        "conversation_history": [{"role": "user", "content":
                                  "elena here: ring 555.000.1234 or mail ELENA@example.com; "
                                  "my friend Bob is bob@x.org, 020 7946 0958"}]})
    text = sample.decode()
    for leaked in ("Elena", "elena", "Ruiz", "555", "1234", "example.com", "bob@x.org",
                   "7946"):
        assert leaked not in text
    assert "{name}" in text and "{phone}" in text and "{email}" in text


# the lookup, find and erase ---------------------------------------------------------------------

def test_find_by_any_phone_form_or_email_case_and_follow_a_change(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as memory:
        assert memory.save_state("c-1", buyer())
        assert memory.save_state("c-2", buyer(phone="+15550001234", email=None))
        assert memory.save_state("c-3", buyer(phone="+44 20 7946 0958", email="x@y.org"))
        assert erasure.find_contact_ids(memory, phone="+15550001234") == ["c-1", "c-2"]
        assert erasure.find_contact_ids(memory, phone="+1 (555) 000-1234") == ["c-1", "c-2"]
        assert erasure.find_contact_ids(memory, email="ELENA@example.COM") == ["c-1"]
        # nothing in plaintext outside the encrypted payloads: keys are hashes
        for key in real_raw.scan_iter(match=f"{PREFIX}.lookup:*"):
            assert re.fullmatch(rb"buyer_conversation_memory\.lookup:[0-9a-f]{32}", key)
            assert 0 < real_raw.ttl(key) <= 30 * 86_400
            for member in real_raw.smembers(key):
                assert member in (b"c-1", b"c-2", b"c-3")
        dump = b"".join(real_raw.dump(k) or b"" for k in real_raw.scan_iter())
        for pii in (b"5550001234", b"000-1234", b"Elena@", b"elena@", b"7946"):
            assert pii not in dump
        # a change of phone is followed (update_state knows the old one; find verifies)
        memory.update_state("c-1", lambda s: {**s, "buyer_phone": "+1 555 999 0000"})
        assert erasure.find_contact_ids(memory, phone="+15550001234") == ["c-2"]
        assert erasure.find_contact_ids(memory, phone="+15559990000") == ["c-1"]
        memory.save_state("c-2", buyer(phone="+1 555 777 0000", email=None))
        assert erasure.find_contact_ids(memory, phone="+15550001234") == []


def test_the_lookup_expires_with_the_longest_lived_state(real_redis_url: str,
                                                         real_raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as memory:
        memory.save_state("long", buyer(), ttl_override=90 * 86_400)
        memory.save_state("short", buyer(), ttl_override=7 * 86_400)
        keys = list(real_raw.scan_iter(match=f"{PREFIX}.lookup:*"))
        assert len(keys) == 2  # the phone's and the email's
        for key in keys:
            assert real_raw.smembers(key) == {b"long", b"short"}
            assert real_raw.ttl(key) > 89 * 86_400  # the 7-day save did not shorten it


def test_without_a_lookup_secret_find_reads_every_record(real_redis_url: str,
                                                         real_raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, MemoryConfig()) as memory:
        memory.save_state("c-1", buyer())
        assert not list(real_raw.scan_iter(match=f"{PREFIX}.lookup:*"))
        assert erasure.find_contact_ids(memory, phone="555 000 1234") == ["c-1"]


def test_cli_erase_by_phone_deletes_states_and_lookups_and_prints_a_pii_free_receipt(
        real_redis_url: str, real_raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(KEYS_ENV, K1)
    monkeypatch.setenv(LOOKUP_KEY_ENV, LOOKUP)
    with SyncBuyerConversationMemory.from_url(real_redis_url, load_config()) as memory:
        memory.save_state("c-1", buyer())
        memory.save_state("c-2", buyer(email="other@example.com"))
        memory.save_state("keep", buyer(phone="+1 555 123 9999", email="keep@example.com"))
    assert cli(real_redis_url, "find", "--phone", "+1 555-000-1234") == 0
    assert capsys.readouterr().out.split() == ["c-1", "c-2"]
    assert cli(real_redis_url, "erase", "--phone", "(555) 000 1234") == 2  # not confirmed
    assert real_raw.exists(f"{PREFIX}:c-1")
    capsys.readouterr()
    assert cli(real_redis_url, "--actor", "dpo-alice", "erase", "--phone", "(555) 000 1234",
               "--yes") == 0
    out = capsys.readouterr().out
    receipt = json.loads(out)
    assert receipt["contact_ids"] == ["c-1", "c-2"] and receipt["erased"] == 2
    assert receipt["actor"] == "cli:dpo-alice"
    assert receipt["identifier"].startswith("hmac-sha256:")
    assert receipt["lookup_entries_removed"] >= 3
    for pii in ("555", "1234", "Elena", "example.com"):
        assert pii not in out
    assert not real_raw.exists(f"{PREFIX}:c-1") and not real_raw.exists(f"{PREFIX}:c-2")
    assert real_raw.exists(f"{PREFIX}:keep")
    members = {m for k in real_raw.scan_iter(match=f"{PREFIX}.lookup:*")
               for m in real_raw.smembers(k)}
    assert members == {b"keep"}
    assert cli(real_redis_url, "find", "--email", "elena@example.com") == 1
    events = audit.read_events(real_raw, PREFIX, limit=10)
    # newest first: the last find, the erase, the find before it (each search is audited)
    assert [e.action for e in events[:3]] == ["find_by_email", "erase", "find_by_phone"]
    erase_event = events[1]
    assert erase_event.actor == "cli:dpo-alice" and erase_event.outcome == "2 erased"
    assert erase_event.contact_id == "c-1,c-2" and "555" not in erase_event.detail
    assert erase_event.detail == receipt["identifier"]


def test_cli_erase_by_contact_id_and_find_with_scan(
        real_redis_url: str, real_raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, MemoryConfig()) as plain:
        plain.save_state("before-lookup", buyer())
    monkeypatch.setenv(KEYS_ENV, K1)
    assert cli(real_redis_url, "find", "--email", "elena@example.com") == 1
    assert "--scan" in capsys.readouterr().err
    assert cli(real_redis_url, "find", "--email", "elena@example.com", "--scan") == 0
    assert capsys.readouterr().out.split() == ["before-lookup"]
    assert cli(real_redis_url, "erase", "before-lookup", "--yes") == 0
    assert json.loads(capsys.readouterr().out)["identifier"] == "contact id"
    assert not real_raw.exists(f"{PREFIX}:before-lookup")
    assert cli(real_redis_url, "erase", "--phone", "nope", "--yes") == 2
    assert "not a phone number" in capsys.readouterr().err


# re-encryption -----------------------------------------------------------------------------------

def test_reencrypt_rewrites_everything_under_the_first_key_keeping_ttls(
        real_redis_url: str, real_raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, MemoryConfig()) as plain:
        seed_buyers(plain, 30, seed=3)
        admin.train_dictionary_from_store(plain, sample_size=30)  # a plain dictionary
        plain.save_state("no-ttl", buyer())
        real_raw.persist(f"{PREFIX}:no-ttl")
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as old:
        old.save_state("under-k1", buyer())
    ttls = {k: real_raw.pttl(k) for k in real_raw.scan_iter(match=f"{PREFIX}:*")}
    revisions = {k: parse_summary(real_raw.get(k) or b"").revision for k in ttls}
    real_raw.set(f"{PREFIX}:garbage", b"\x00not a record")
    monkeypatch.setenv(KEYS_ENV, f"{K2},{K1}")
    assert cli(real_redis_url, "reencrypt") == 2  # no tty, no --yes: nothing done
    assert "nothing rewritten" in capsys.readouterr().err
    assert cli(real_redis_url, "reencrypt", "--yes") == 1  # the garbage key failed
    out = capsys.readouterr().out
    assert "33 record(s) to rewrite under key k2" in out
    assert "rewritten 32, skipped 0, failed 1" in out and "garbage" in out
    for key, ttl in ttls.items():
        stored = real_raw.get(key) or b""
        summary = parse_summary(stored)
        assert summary.key_id == "k2"
        assert summary.revision == revisions[key] + 1
        if ttl < 0:
            assert real_raw.pttl(key) == -1
        else:
            assert ttl - 5000 <= real_raw.pttl(key) <= ttl
        assert b"Elena" not in stored
    for key in real_raw.scan_iter(match=f"{PREFIX}.zdict:*"):
        if not key.endswith(b"current"):
            assert (real_raw.get(key) or b"").startswith(dicts.ENCRYPTED_MAGIC + b"k2\n")
    # resumable: a second run finds nothing left but the broken key
    assert cli(real_redis_url, "reencrypt", "--yes") == 1
    assert "rewritten 0, skipped 32, failed 1" in capsys.readouterr().out
    # the old key can go now: every record reads with k2 alone
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K2)) as new:
        for key in ttls:
            assert new.load_state(new.contact_id_for(key)) is not None


def test_reencrypt_never_overwrites_a_save_made_while_it_runs(real_redis_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as old:
        seed_buyers(old, 200, seed=9)
    new_config = config_with(f"{K2},{K1}")
    pending = rotation.pending_contact_ids(
        SyncBuyerConversationMemory.from_url(real_redis_url, new_config))[0]
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as bot, \
            SyncBuyerConversationMemory.from_url(real_redis_url, new_config) as operator:
        stop = threading.Event()
        bot_saves: dict[str, str] = {}

        def bot_loop() -> None:
            n = 0
            while not stop.is_set():
                contact_id = pending[n % len(pending)]
                marker = f"bot-{n}"

                def add(state: dict[str, Any], marker: str = marker) -> dict[str, Any]:
                    state["conversation_history"].append({"role": "user",
                                                          "content": marker})
                    return state

                if bot.update_state(contact_id, add) is not None:
                    bot_saves[contact_id] = marker
                n += 1

        thread = threading.Thread(target=bot_loop)
        thread.start()
        try:
            report = rotation.reencrypt_store(operator, actor="test")
        finally:
            stop.set()
            thread.join()
        assert report.failed == 0 and report.rewritten + report.skipped == 200
        assert bot_saves  # the bot really saved while the run went on
        for contact_id, marker in bot_saves.items():
            state = operator.load_state(contact_id)
            assert state is not None
            assert state["conversation_history"][-1]["content"] == marker, contact_id


def test_reencrypt_without_keys_says_what_to_do(real_redis_url: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "reencrypt", "--yes") == 2
    assert KEYS_ENV in capsys.readouterr().err


def test_generate_key_prints_a_usable_pair(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["generate-key", "--key-id", "prod-2026"]) == 0
    pair = capsys.readouterr().out.strip()
    assert parse_keyring(pair, "test").primary_id == "prod-2026"
    assert cli_main(["generate-key", "--key-id", "bad id"]) == 2


def test_hash_password_reads_stdin_and_prints_a_verifiable_hash(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from memory_core.passwords import verify_password

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert cli_main(["hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed.startswith("scrypt$") and "correct horse" not in hashed
    assert verify_password("correct horse", hashed)
    assert not verify_password("wrong", hashed)


# the audit trail of operator writes ------------------------------------------------------------

def test_every_operator_write_and_reveal_is_audited_without_pii(
        real_redis_url: str, real_raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(real_redis_url, "--actor", "qa-bob", "seed", "--count", "3") == 0
    with SyncBuyerConversationMemory.from_url(real_redis_url, MemoryConfig()) as memory:
        memory.save_state("real-1", buyer())
        admin.reset_ttl(memory, "real-1", actor="dashboard:operator:abcd1234")
    assert cli(real_redis_url, "--actor", "ops-carol", "show", "real-1", "--reveal-pii") == 0
    assert cli(real_redis_url, "--actor", "ops-carol", "clear", "real-1", "--yes") == 0
    assert cli(real_redis_url, "clear", "--qa-seeds", "--yes") == 0
    capsys.readouterr()
    events = list(reversed(audit.read_events(real_raw, PREFIX)))
    assert [(e.actor, e.action, e.contact_id, e.outcome) for e in events] == [
        ("cli:qa-bob", "seed", "", "done"),
        ("dashboard:operator:abcd1234", "reset_ttl", "real-1", "done"),
        ("cli:ops-carol", "reveal_pii", "real-1", "shown"),
        ("cli:ops-carol", "clear", "real-1", "deleted"),
        (audit.cli_actor(None), "clear_qa_seeds", "", "done"),
    ]
    stream = json.dumps([e.as_row() for e in events])
    for pii in ("Elena", "555", "example.com"):
        assert pii not in stream
    assert audit.count_events(real_raw, PREFIX) == 5
    # the stream lives outside the buyer keyspace
    assert not real_raw.keys(f"{PREFIX}:*audit*")


def test_audit_stream_is_capped_and_hostile_entries_read_back_as_text(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    real_raw.xadd(f"{PREFIX}.audit", {"time": "x", "actor": "\x1b]0;pwned\x07" + "a" * 5000,
                                      "junk": "y"})
    (event,) = audit.read_events(real_raw, PREFIX)
    assert len(event.actor) <= 500 and event.action == ""
    real_raw.set(f"{PREFIX}.audit", "not a stream")
    with pytest.raises(Exception, match="not an audit stream"):
        audit.read_events(real_raw, PREFIX)
    assert audit.AUDIT_MAX_ENTRIES == 100_000


# logs ------------------------------------------------------------------------------------------

def test_no_pii_key_or_password_in_any_log_line_at_info_or_above(
        real_redis_url: str, real_raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(KEYS_ENV, K1)
    monkeypatch.setenv(LOOKUP_KEY_ENV, LOOKUP)
    secrets_and_pii = ["Elena", "Ruiz", "5550001234", "000-1234", "elena@example.com",
                       K1.split(":")[1], LOOKUP]
    with caplog.at_level(logging.INFO):
        with SyncBuyerConversationMemory.from_url(real_redis_url, load_config()) as memory:
            memory.save_state("c-1", buyer(email="elena@example.com"))
            memory.save_state("+1 555 000 1234", buyer())  # an id that is a phone: refused
            memory.load_state("elena@example.com")
            raw = bytearray(real_raw.get(f"{PREFIX}:c-1") or b"")
            raw[-3] ^= 1
            real_raw.set(f"{PREFIX}:tampered", bytes(raw))
            memory.load_state("tampered")
        cli(real_redis_url, "find", "--phone", "+1 555 000 1234")
        cli(real_redis_url, "erase", "--email", "elena@example.com", "--yes")
        cli(real_redis_url, "show", "c-1")
        cli(real_redis_url, "reencrypt", "--yes")
        cli(real_redis_url, "inventory")
    capsys.readouterr()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines  # the operations above do log
    for line in lines:
        for value in secrets_and_pii:
            assert value not in line, (value, line)


def test_a_save_with_lookup_entries_survives_a_flushed_script_cache_and_a_refused_entry(
        real_redis_url: str, real_raw: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as memory:
        real_raw.script_flush()
        assert memory.save_state("c-1", buyer())
        assert erasure.find_contact_ids(memory, phone="+15550001234") == ["c-1"]
        # a planted key of another type where an entry goes: the save still stands
        from memory_core.lookup import lookup_key, normalise_email, token

        assert memory.config.lookup_secret is not None
        email_key = lookup_key(PREFIX, token(memory.config.lookup_secret, "email",
                                             normalise_email("x@planted.org") or ""))
        real_raw.set(email_key, "not a set")
        with caplog.at_level(logging.WARNING, logger="memory_core"):
            assert memory.save_state("c-2", buyer(email="x@planted.org"))
        assert any("lookup was not updated" in r.getMessage() for r in caplog.records)
        loaded = memory.load_state("c-2")
        assert loaded is not None and loaded["buyer_email"] == "x@planted.org"
        assert erasure.find_contact_ids(memory, email="x@planted.org") == []
        assert erasure.find_contact_ids(memory, email="x@planted.org", scan=True) == ["c-2"]


def test_batch_saves_and_qa_seeds_are_found_by_phone_too(real_redis_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as memory:
        buyers = seed_buyers(memory, 20, seed=4)
        assert memory.save_many([("batch-1", buyer(), None, None)]) == 1
        _, first, _, _ = buyers[0].as_save_item()
        assert buyers[0].contact_id in erasure.find_contact_ids(
            memory, phone=first["buyer_phone"])
        assert erasure.find_contact_ids(memory, email="elena@example.com") == ["batch-1"]


# found in review ------------------------------------------------------------------------------

def test_a_candidate_this_process_cannot_read_is_kept_and_reported_not_dropped(
        real_redis_url: str, real_raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    lookup_only = {LOOKUP_KEY_ENV: LOOKUP}
    with SyncBuyerConversationMemory.from_url(
            real_redis_url, load_config(env={KEYS_ENV: K1, **lookup_only})) as memory:
        memory.save_state("real-f", buyer())
    # a process with the same lookup secret but without k1 cannot verify the candidate
    with SyncBuyerConversationMemory.from_url(
            real_redis_url, load_config(env={KEYS_ENV: K2, **lookup_only})) as other:
        found = erasure.find_candidates(other, phone="+15550001234")
        assert found.contact_ids == [] and list(found.unreadable) == ["real-f"]
    monkeypatch.setenv(KEYS_ENV, K2)
    monkeypatch.setenv(LOOKUP_KEY_ENV, LOOKUP)
    assert cli(real_redis_url, "find", "--phone", "+15550001234") == 1
    assert "cannot check real-f" in capsys.readouterr().err
    # the entry survived: with the key, the buyer is still found and erased
    monkeypatch.setenv(KEYS_ENV, K1)
    assert cli(real_redis_url, "erase", "--phone", "+15550001234", "--yes") == 0
    assert json.loads(capsys.readouterr().out)["contact_ids"] == ["real-f"]


def test_reset_ttl_extends_the_lookup_entries_too(real_redis_url: str,
                                                  real_raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as memory:
        memory.save_state("short", buyer(), ttl_override=3600)
        assert admin.reset_ttl(memory, "short")
        keys = list(real_raw.scan_iter(match=f"{PREFIX}.lookup:*"))
        assert len(keys) == 2
        assert all(real_raw.ttl(k) > 29 * 86_400 for k in keys)


def test_reencrypt_survives_planted_dictionary_keys(
        real_redis_url: str, real_raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, MemoryConfig()) as plain:
        plain.save_state("c-1", buyer())
    real_raw.sadd(f"{PREFIX}.zdict:junk", "a")
    real_raw.set(f"{PREFIX}.zdict:77", b"not a dictionary")
    monkeypatch.setenv(KEYS_ENV, K1)
    assert cli(real_redis_url, "reencrypt", "--yes") == 0
    out = capsys.readouterr().out
    assert "rewritten 1, skipped 0, failed 0" in out
    assert out.count("not rewritten") == 2


def test_reindex_enters_every_record_under_a_new_lookup_secret(
        real_redis_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as memory:
        memory.save_state("c-1", buyer())
        memory.save_state("c-2", buyer(phone=None, email=None))
    monkeypatch.setenv(KEYS_ENV, K1)
    monkeypatch.setenv(LOOKUP_KEY_ENV, LOOKUP)  # a new secret: the old entries mean nothing
    assert cli(real_redis_url, "find", "--email", "elena@example.com") == 1
    assert cli(real_redis_url, "reindex") == 0
    assert "indexed 1 buyer(s); 1 without a phone or email" in capsys.readouterr().out
    assert cli(real_redis_url, "find", "--email", "elena@example.com") == 0
    assert capsys.readouterr().out.split() == ["c-1"]


def test_a_planted_unencodable_email_breaks_neither_update_nor_erase(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    import pickle

    legacy = pickle.dumps({"compressed": False, "data": json.dumps(
        {"buyer_email": "\ud800@x.io", "conversation_history": []})})
    real_raw.set(f"{PREFIX}:legacy-s", legacy)
    with SyncBuyerConversationMemory.from_url(real_redis_url, config_with(K1)) as memory:
        loaded = memory.load_state("legacy-s")
        assert loaded is not None and loaded["buyer_email"] == "\ud800@x.io"
        updated = memory.update_state("legacy-s", lambda s: {**s, "buyer_email": "new@x.io"})
        assert updated is not None and updated["buyer_email"] == "new@x.io"
        assert erasure.find_contact_ids(memory, email="new@x.io") == ["legacy-s"]
        receipt = erasure.erase(memory, contact_ids=["legacy-s"])
        assert receipt.erased == 1


def test_without_a_lookup_secret_the_receipt_records_no_guessable_hash(
        real_redis_url: str) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, MemoryConfig()) as memory:
        memory.save_state("c-1", buyer())
        receipt = erasure.erase(memory, phone="+1 555 000 1234")
    assert receipt.erased == 1
    assert receipt.identifier == "phone (not recorded: no lookup secret configured)"


def test_an_actor_cannot_forge_a_log_line(real_redis_url: str,
                                          caplog: pytest.LogCaptureFixture,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, MemoryConfig()) as memory:
        memory.save_state("c-1", buyer())
    with caplog.at_level(logging.INFO):
        assert cli(real_redis_url, "--actor", "dpo\nCRITICAL memory_core: forged",
                   "erase", "c-1", "--yes") == 0
    capsys.readouterr()
    assert caplog.records
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_no_reveal_without_its_audit_entry_and_no_traceback_for_an_empty_password(
        real_redis_url: str, real_raw: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url, MemoryConfig()) as memory:
        memory.save_state("c-1", buyer())
    real_raw.set(f"{PREFIX}.audit", "planted: not a stream")
    assert cli(real_redis_url, "show", "c-1", "--reveal-pii") == 2
    captured = capsys.readouterr()
    assert "Elena" not in captured.out and "audit" in captured.err
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert cli_main(["hash-password"]) == 2
    assert "empty" in capsys.readouterr().err


# audit stream hardening ----------------------------------------------------------------------
# A review found that an actor with a newline went into the stream and the warning log line
# as it was, and that read_events fetched whole entries (a planted 500 MB field whole).

FORGED_ACTOR = "x\nCRITICAL memory_core: forged\x1b[2J\u202e"


def test_an_actor_with_control_characters_reaches_neither_stream_nor_log_raw(
        real_redis_url: str, real_raw: redis.Redis, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert "\n" not in audit.cli_actor(FORGED_ACTOR)
    assert audit.cli_actor(FORGED_ACTOR).startswith("cli:x\\x0aCRITICAL")
    with SyncBuyerConversationMemory.from_url(real_redis_url, MemoryConfig()) as memory:
        memory.save_state("c-1", buyer())
    assert cli(real_redis_url, "--actor", FORGED_ACTOR, "erase", "c-1", "--yes") == 0
    assert audit.append_event(real_raw, PREFIX, actor=FORGED_ACTOR, action="a\rb",
                              contact_id="c\n1", outcome="o\x1b", detail="d\u2028e")
    capsys.readouterr()
    entries = real_raw.xrange(f"{PREFIX}.audit")
    assert len(entries) == 2
    for _, fields in entries:
        for name, value in fields.items():
            for raw_char in (b"\n", b"\r", b"\x1b", "\u202e".encode(), "\u2028".encode()):
                assert raw_char not in name + value, (name, value)
    assert audit.read_events(real_raw, PREFIX)[0].actor.startswith("x\\x0a")
    # the warning when the stream cannot be written escapes the actor too
    real_raw.delete(f"{PREFIX}.audit")
    real_raw.set(f"{PREFIX}.audit", "planted: not a stream")
    with caplog.at_level(logging.WARNING, logger="memory_core"):
        assert not audit.append_event(real_raw, PREFIX, actor=FORGED_ACTOR,
                                      action="act\nion", outcome="done")
    (record,) = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert "\n" not in record.getMessage() and "\x1b" not in record.getMessage()
    assert "x\\x0aCRITICAL" in record.getMessage()


@pytest.mark.timeout(20)
def test_a_planted_huge_audit_field_is_cut_by_redis_before_the_reply(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    import time

    key = f"{PREFIX}.audit"
    huge = "é" * (5 * 1024 * 1024 // 2)  # 5 MB of two-byte characters
    real_raw.xadd(key, {"time": "t", "actor": huge, "action": "big",
                        **{f"junk{i}": huge[:1000] for i in range(40)}})
    audit.append_event(real_raw, PREFIX, actor="ops", action="after", outcome="done")
    # the script's reply itself is cut: at most 12 pairs of at most 500 bytes per entry
    reply = real_raw.eval(audit._READ_LUA, 1, key, 10, 24, 500)
    assert len(reply) == 2
    for _, fields in reply:
        assert len(fields) <= 24 and all(len(value) <= 500 for value in fields)
    started = time.perf_counter()
    newest, planted = audit.read_events(real_raw, PREFIX)
    assert time.perf_counter() - started < 2
    assert newest.action == "after" and newest.actor == "ops"
    assert planted.action == "big" and 0 < len(planted.actor) <= 500
    assert set(planted.actor) <= {"é", "\ufffd"}  # a character cut in two reads as U+FFFD
    assert len(audit.read_events(real_raw, PREFIX, limit=1)) == 1


def test_reading_the_audit_stream_from_a_server_that_is_gone_is_store_unavailable() -> None:
    from memory_core.connection import connect
    from memory_core.errors import StoreUnavailable
    from memory_core.testing import free_port

    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(StoreUnavailable):
            audit.read_events(client, PREFIX)
    finally:
        client.close()


def test_the_audit_stream_reads_the_same_on_the_embedded_demo_store() -> None:
    """The dashboard's demo store is fakeredis: the Lua read must work there too."""
    from memory_core.connection import connect
    from memory_core.errors import StoreUnavailable

    client = connect("memory://audit-lua-demo")
    try:
        assert audit.read_events(client, PREFIX) == []
        client.xadd(f"{PREFIX}.audit", {"actor": "a" * 2000, **{f"j{i}": "v" for i in range(30)}})
        assert audit.append_event(client, PREFIX, actor=FORGED_ACTOR, action="x", outcome="o")
        newest, planted = audit.read_events(client, PREFIX)
        assert newest.actor.startswith("x\\x0a") and len(planted.actor) == 500
        client.delete(f"{PREFIX}.audit")
        client.set(f"{PREFIX}.audit", "not a stream")
        with pytest.raises(StoreUnavailable, match="not an audit stream"):
            audit.read_events(client, PREFIX)
    finally:
        client.delete(f"{PREFIX}.audit")
        client.close()


# dictionary scrub misses -------------------------------------------------------------------
# A review found that training samples kept the parts of a hyphenated surname ("Marquez"
# and "Lopez" of "Marquez-Lopez") and phone digits glued to a word ("call5550001234").

def test_training_samples_replace_hyphenated_name_parts_and_glued_phones() -> None:
    sample = dicts.training_sample({
        "buyer_name": "Ana Marquez-Lopez", "buyer_phone": "+1 555 000 1234",
        "buyer_email": "ana@example.com",
        "objection_history": ["Lopez family budget", "sms2223334444"],
        "conversation_history": [{"role": "user", "content":
                                  "Ms. Marquez here; LOPEZ too. call5550001234 or "
                                  "text me at cell:555-888-9999, cc bob@x.org"}]})
    text = sample.decode()
    for leaked in ("Marquez", "Lopez", "LOPEZ", "5550001234", "2223334444", "888-9999",
                   "bob@x.org", "example.com"):
        assert leaked not in text, leaked
    assert "Ms. {name} here; {name} too. call{phone} or text me at cell:{phone}" in text
    assert "sms{phone}" in text
    # the scrub and the viewer's mask share one definition of a phone and an email
    from memory_core import state as state_module

    assert dicts.PHONE_PATTERN is state_module.PHONE_PATTERN
    assert dicts.EMAIL_PATTERN is state_module.EMAIL_PATTERN


@pytest.mark.timeout(20)
@pytest.mark.parametrize("text", ["call5" * 200_000, "5 / " * 250_000, "@@@@" * 250_000,
                                  "a-" * 500_000, "x1" * 500_000])
def test_training_samples_of_a_hostile_megabyte_are_linear(text: str) -> None:
    import time

    started = time.perf_counter()
    dicts.training_sample({"buyer_name": "Ana Marquez-Lopez " + "a-b-" * 50_000,
                           "objection_history": [text],
                           "conversation_history": [{"role": "user", "content": text}]})
    assert time.perf_counter() - started < 5
