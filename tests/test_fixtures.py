"""Records written by earlier versions still load (``fixtures/records-<version>.json``).

Each file holds every key of a store as ``fixtures/make_records.py`` wrote it with that
version: an uncompressed record, zstd without and with a trained dictionary, a small
state at the default threshold, an encrypted one, a revision-2 record and a pickled
legacy record (1.0 compressed JSON, 1.1 the packed layout). They are restored byte for
byte into each kind of store and read with today's code.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from memory_core import SyncBuyerConversationMemory, packed
from memory_core.config import load_config
from memory_core.crypto import KEYS_ENV
from memory_core.inventory import scan_summaries
from memory_core.record import decode_payload, parse_summary

FIXTURES = {path.stem.removeprefix("records-"): json.loads(path.read_text())
            for path in sorted((Path(__file__).parent / "fixtures").glob("records-*.json"))}
PREFIX = "buyer_conversation_memory"
#: How each record was stored: (codec, dictionary used, encryption key id).
EXPECTED_FORMS = {"plain": ("none", False, ""), "zstd": ("zstd", False, ""),
                  "dictionary": ("zstd", True, ""), "small": ("zstd", True, ""),
                  "encrypted": ("zstd", True, "k1")}


@pytest.fixture(params=sorted(FIXTURES))
def fixture(request: pytest.FixtureRequest) -> dict[str, Any]:
    return FIXTURES[request.param]


@pytest.fixture
def restored(raw: redis.Redis, fixture: dict[str, Any]) -> redis.Redis:
    for key, value in fixture["keyspace"].items():
        raw.set(key, base64.b64decode(value))
    return raw


def test_both_payload_layouts_have_fixtures() -> None:
    assert {"1.0", "1.1.0"} <= set(FIXTURES)
    for version, is_packed in (("1.0", False), ("1.1.0", True)):
        keys = {k: base64.b64decode(v) for k, v in FIXTURES[version]["keyspace"].items()}
        zstd_key = keys[f"{PREFIX}:zstd"]
        payload = decode_payload(zstd_key, parse_summary(zstd_key))
        assert packed.is_packed(payload) is is_packed, version


def test_the_fixture_covers_every_form_of_record(restored: redis.Redis) -> None:
    for name, (codec, with_dictionary, key_id) in EXPECTED_FORMS.items():
        summary = parse_summary(restored.get(f"{PREFIX}:{name}") or b"")
        assert (summary.codec, summary.dictionary_id > 0, summary.key_id) == (
            codec, with_dictionary, key_id), name


@pytest.mark.parametrize("name", [*EXPECTED_FORMS, "legacy"])
def test_a_record_written_by_an_earlier_version_loads_as_it_did(
        store_url: str, restored: redis.Redis, fixture: dict[str, Any], name: str) -> None:
    config = load_config(env={KEYS_ENV: fixture["encryption_keys"]})
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        loaded: dict[str, Any] | None = memory.load_state(name)
    assert loaded == fixture["loaded"][name]
    assert loaded is not None and loaded["conversation_history"]


def test_the_scan_reads_every_fixture_record(store_url: str, restored: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        frame = scan_summaries(memory).set_index("contact_id")
    assert set(frame.index) == {*EXPECTED_FORMS, "legacy"}
    assert frame.loc["legacy", "status"] == "legacy"
    assert (frame.drop(index="legacy")["status"] == "ok").all()
    assert frame.loc["dictionary", "revision"] == 2
