"""Records written by earlier versions still load (``fixtures/records.json``).

The file holds every key of a store as ``fixtures/make_records.py`` wrote it: an
uncompressed record, zstd without and with a trained dictionary, a small state at the
default threshold, an encrypted one, a revision-2 record and a pickled legacy record.
They are restored byte for byte into each kind of store and read with today's code.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from memory_core import SyncBuyerConversationMemory
from memory_core.config import load_config
from memory_core.crypto import KEYS_ENV
from memory_core.inventory import scan_summaries
from memory_core.record import parse_summary

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "records.json").read_text())
PREFIX = "buyer_conversation_memory"
#: How each record was stored: (codec, dictionary used, encryption key id).
EXPECTED_FORMS = {"plain": ("none", False, ""), "zstd": ("zstd", False, ""),
                  "dictionary": ("zstd", True, ""), "small": ("zstd", True, ""),
                  "encrypted": ("zstd", True, "k1")}


@pytest.fixture
def restored(raw: redis.Redis) -> redis.Redis:
    for key, value in FIXTURE["keyspace"].items():
        raw.set(key, base64.b64decode(value))
    return raw


def test_the_fixture_covers_every_form_of_record(restored: redis.Redis) -> None:
    for name, (codec, with_dictionary, key_id) in EXPECTED_FORMS.items():
        summary = parse_summary(restored.get(f"{PREFIX}:{name}") or b"")
        assert (summary.codec, summary.dictionary_id > 0, summary.key_id) == (
            codec, with_dictionary, key_id), name


@pytest.mark.parametrize("name", [*EXPECTED_FORMS, "legacy"])
def test_a_record_written_by_an_earlier_version_loads_as_it_did(
        store_url: str, restored: redis.Redis, name: str) -> None:
    config = load_config(env={KEYS_ENV: FIXTURE["encryption_keys"]})
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        loaded: dict[str, Any] | None = memory.load_state(name)
    assert loaded == FIXTURE["loaded"][name]
    assert loaded is not None and loaded["conversation_history"]


def test_the_scan_reads_every_fixture_record(store_url: str, restored: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        frame = scan_summaries(memory).set_index("contact_id")
    assert set(frame.index) == {*EXPECTED_FORMS, "legacy"}
    assert frame.loc["legacy", "status"] == "legacy"
    assert (frame.drop(index="legacy")["status"] == "ok").all()
    assert frame.loc["dictionary", "revision"] == 2
