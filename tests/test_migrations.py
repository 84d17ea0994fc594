"""Schema migrations: old states upgrade on load, newer ones are left alone."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from memory_core import BuyerConversationMemory, SyncBuyerConversationMemory
from memory_core.connection import connect
from memory_core.migrations import migrate
from memory_core.record import encode_record
from memory_core.state import is_newer_than_known, version_key

PREFIX = "buyer_conversation_memory"

OLD_STATE: dict[str, Any] = {
    "state_version": "0.9",
    "urgency": "high",
    "buyer_temperature": "hot",
    "conversation_history": [{"role": "user", "content": "Need to move by June"}],
    "budget_range": {"min": 300_000, "max": 450_000},
}


def write_raw_record(url: str, contact_id: str, state: dict[str, Any],
                     threshold: int = 5120) -> None:
    record = encode_record(state, orjson.dumps(state), compress_threshold_bytes=threshold,
                           codec="zstd", zstd_level=3)
    client = connect(url)
    try:
        client.set(f"{PREFIX}:{contact_id}", record)
    finally:
        client.close()


def test_0_9_state_upgrades_to_1_0() -> None:
    original = dict(OLD_STATE)
    upgraded = migrate(original)
    assert upgraded["state_version"] == "1.0"
    assert upgraded["urgency_level"] == "high"
    assert "urgency" not in upgraded
    assert upgraded["objection_history"] == []
    assert upgraded["budget_range"] == OLD_STATE["budget_range"]
    assert upgraded["conversation_history"] == OLD_STATE["conversation_history"]
    assert original == OLD_STATE  # the input is not modified


def test_0_9_keeps_an_existing_urgency_level_and_objections() -> None:
    upgraded = migrate({"state_version": "0.9", "urgency": "low", "urgency_level": "medium",
                        "objection_history": ["price"]})
    assert upgraded["urgency_level"] == "medium"
    assert "urgency" not in upgraded
    assert upgraded["objection_history"] == ["price"]


def test_0_9_without_urgency_gets_no_urgency_level() -> None:
    upgraded = migrate({"state_version": "0.9"})
    assert upgraded == {"state_version": "1.0", "objection_history": []}


@pytest.mark.parametrize("version", [None, 9, 0.9])
def test_unversioned_state_is_treated_as_0_9(version: object) -> None:
    state: dict[str, Any] = {"urgency": "high"}
    if version is not None:
        state["state_version"] = version
    upgraded = migrate(state)
    assert upgraded["state_version"] == "1.0"
    assert upgraded["urgency_level"] == "high"
    assert upgraded["objection_history"] == []


def test_current_state_is_returned_unchanged() -> None:
    state = {"state_version": "1.0", "urgency": "kept as an extra field"}
    assert migrate(state) == {"state_version": "1.0", "urgency": "kept as an extra field"}


@pytest.mark.parametrize("version", ["2.0", "1.1", "10.0"])
def test_newer_version_is_returned_unchanged(version: str) -> None:
    state = {"state_version": version, "urgency": "high", "new_field": [1, 2]}
    result = migrate(state)
    assert result == {"state_version": version, "urgency": "high", "new_field": [1, 2]}
    assert is_newer_than_known(version)


@pytest.mark.parametrize("version", ["0.1", "0.8", "abc", ""])
def test_unknown_old_version_raises(version: str) -> None:
    with pytest.raises(ValueError, match=f"no migration from schema version {version!r}"):
        migrate({"state_version": version})


def test_version_ordering_helpers() -> None:
    assert version_key("1.10") == (1, 10)
    assert version_key("x.y") is None
    assert is_newer_than_known("1.10")
    assert not is_newer_than_known("1.0")
    assert not is_newer_than_known("0.9")
    assert not is_newer_than_known("garbage")


# through the store -----------------------------------------------------------------------

@pytest.mark.parametrize("threshold", [5120, 0], ids=["plain", "compressed"])
def test_store_loads_a_0_9_record_migrated(store_url: str, threshold: int) -> None:
    write_raw_record(store_url, "old-buyer", OLD_STATE, threshold)
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        record = memory.read_record("old-buyer")
        loaded = memory.load_state("old-buyer")
    assert record is not None and record.summary is not None
    assert record.summary.schema_version == "0.9"
    assert loaded is not None
    assert loaded["state_version"] == "1.0"
    assert loaded["urgency_level"] == "high"
    assert "urgency" not in loaded
    assert loaded["objection_history"] == []
    assert loaded["budget_range"] == {"min": 300_000, "max": 450_000}


def test_async_store_loads_a_0_9_record_migrated(store_url: str) -> None:
    write_raw_record(store_url, "old-buyer", OLD_STATE)

    async def load() -> dict[str, Any] | None:
        async with BuyerConversationMemory.from_url(store_url) as memory:
            return await memory.load_state("old-buyer")

    loaded = asyncio.run(load())
    assert loaded is not None
    assert loaded["state_version"] == "1.0"
    assert loaded["urgency_level"] == "high"


def test_store_loads_a_newer_record_as_is_with_a_warning(
        store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    newer = {"state_version": "2.0", "urgency": "high", "buyer_mood": {"score": 3}}
    write_raw_record(store_url, "future-buyer", newer)
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        loaded = memory.load_state("future-buyer")
    assert loaded == {**newer, "state_revision": 1}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "2.0" in message and "newer" in message
    assert f"{PREFIX}:future-buyer" in message


def test_store_treats_an_unknown_old_version_as_unreadable(
        store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    write_raw_record(store_url, "ancient-buyer", {"state_version": "0.1"})
    caplog.set_level(logging.WARNING, logger="memory_core")
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.load_state("ancient-buyer") is None
        assert memory.get_stats()["corrupt"] == 1
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert "no migration from schema version '0.1'" in errors[0].getMessage()

