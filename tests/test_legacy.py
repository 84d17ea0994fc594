"""Records pickled by the old system: read when plain data, refused (safely) otherwise."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import pickle
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from memory_core import BuyerConversationMemory, SyncBuyerConversationMemory
from memory_core.errors import CorruptRecord
from memory_core.legacy import decode_legacy, looks_legacy

PREFIX = "buyer_conversation_memory"

LEGACY_STATE: dict[str, Any] = {
    "buyer_name": "Dana Whitfield",
    "urgency": "high",
    "buyer_temperature": "warm",
    "conversation_history": [{"role": "user", "content": "Looking for a condo, ~$350k"}],
    "budget_range": {"min": 300_000, "max": 350_000},
    "financial_readiness_score": 61.5,
}

_FLAG: dict[str, bool] = {"called": False}


def _set_flag(*_args: object) -> None:
    """Stands in for any callable a malicious pickle would make the reader run."""
    _FLAG["called"] = True


class _RunsShellCommand:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.path}",))


class _SetsFlag:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_set_flag, ())


@pytest.fixture
def memory(store_url: str) -> Iterator[SyncBuyerConversationMemory]:
    with SyncBuyerConversationMemory.from_url(store_url) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _reset_flag() -> None:
    _FLAG["called"] = False


def write_raw(memory: SyncBuyerConversationMemory, contact_id: str, raw: bytes) -> None:
    memory.client.set(f"{PREFIX}:{contact_id}", raw)


def plain_envelope() -> bytes:
    return pickle.dumps({"compressed": False, "data": json.dumps(LEGACY_STATE)})


def gzip_envelope() -> bytes:
    blob = gzip.compress(json.dumps(LEGACY_STATE).encode("utf-8"))
    return pickle.dumps({"compressed": True, "data": blob.hex()})


def assert_loaded_legacy_state(loaded: dict[str, Any] | None) -> None:
    assert loaded is not None
    assert loaded["buyer_name"] == "Dana Whitfield"
    assert loaded["conversation_history"] == LEGACY_STATE["conversation_history"]
    assert loaded["budget_range"] == {"min": 300_000, "max": 350_000}
    assert loaded["financial_readiness_score"] == 61.5
    # unversioned = 0.9, upgraded on load
    assert loaded["state_version"] == "1.0"
    assert loaded["urgency_level"] == "high"
    assert "urgency" not in loaded
    assert loaded["objection_history"] == []


@pytest.mark.parametrize("envelope", [plain_envelope, gzip_envelope], ids=["plain", "gzip"])
def test_legacy_envelope_loads(memory: SyncBuyerConversationMemory,
                               envelope: Any) -> None:
    write_raw(memory, "legacy-buyer", envelope())
    assert_loaded_legacy_state(memory.load_state("legacy-buyer"))
    stats = memory.get_stats()
    assert (stats["hits"], stats["errors"]) == (1, 0)


def test_legacy_envelope_loads_in_the_async_store(memory: SyncBuyerConversationMemory,
                                                  store_url: str) -> None:
    write_raw(memory, "legacy-buyer", gzip_envelope())

    async def load() -> dict[str, Any] | None:
        async with BuyerConversationMemory.from_url(store_url) as async_memory:
            return await async_memory.load_state("legacy-buyer")

    assert_loaded_legacy_state(asyncio.run(load()))


def test_legacy_record_is_flagged_in_read_record(memory: SyncBuyerConversationMemory) -> None:
    write_raw(memory, "legacy-buyer", plain_envelope())
    record = memory.read_record("legacy-buyer")
    assert record is not None
    assert record.legacy is True
    assert record.summary is None
    assert record.ttl_seconds is None  # written without expiry by the raw SET
    assert record.state["buyer_name"] == "Dana Whitfield"


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_binary_pickle_protocol_is_recognised(protocol: int) -> None:
    raw = pickle.dumps({"compressed": False, "data": "{}"}, protocol=protocol)
    assert looks_legacy(raw)
    assert decode_legacy(raw) == {}


def test_bytes_gzip_payload_is_accepted() -> None:
    raw = pickle.dumps({"compressed": True, "data": gzip.compress(b'{"a": 1}')})
    assert decode_legacy(raw) == {"a": 1}


def test_malicious_pickle_does_not_run_a_shell_command(
        memory: SyncBuyerConversationMemory, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "pwned"
    raw = pickle.dumps({"compressed": False, "data": _RunsShellCommand(marker)})
    assert looks_legacy(raw)
    write_raw(memory, "evil-buyer", raw)
    caplog.set_level(logging.WARNING, logger="memory_core")
    assert memory.load_state("evil-buyer") is None
    assert not marker.exists()
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert "refused global" in errors[0].getMessage()
    assert "system" in errors[0].getMessage()
    assert memory.get_stats()["corrupt"] == 1


def test_malicious_pickle_does_not_call_a_function(
        memory: SyncBuyerConversationMemory, caplog: pytest.LogCaptureFixture) -> None:
    write_raw(memory, "evil-buyer", pickle.dumps(_SetsFlag()))
    caplog.set_level(logging.WARNING, logger="memory_core")
    assert memory.load_state("evil-buyer") is None
    assert _FLAG["called"] is False
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "_set_flag" in errors[0].getMessage()


def test_the_flag_function_would_run_under_plain_pickle() -> None:
    """Guards the test above: the payload really does call the function when trusted."""
    pickle.loads(pickle.dumps(_SetsFlag()))
    assert _FLAG["called"] is True


@pytest.mark.parametrize(("value", "fragment"), [
    ([{"compressed": False, "data": "{}"}], "envelope"),
    ("just a string", "envelope"),
    (42, "envelope"),
    ({"compressed": False}, "envelope"),
    ({1, 2, 3}, "not plain data"),
    ({"compressed": False, "data": {"a", "b"}}, "not plain data"),
    ({"compressed": False, "data": frozenset({"a"})}, "not plain data"),
    ({"compressed": False, "data": datetime(2024, 1, 1)}, "refused global"),
    ({"compressed": False, "data": bytearray(b"{}")}, "refused global"),
    ({"compressed": False, "data": "[1, 2, 3]"}, "JSON object"),
    ({"compressed": False, "data": "{not json"}, "unreadable"),
    ({"compressed": True, "data": "zz-not-hex"}, "unreadable"),
    ({"compressed": True, "data": "00ff00ff"}, "unreadable"),
    ({"compressed": False, "data": None}, "unreadable"),
])
def test_unsafe_or_malformed_legacy_records_are_refused(
        memory: SyncBuyerConversationMemory, caplog: pytest.LogCaptureFixture,
        value: object, fragment: str) -> None:
    raw = pickle.dumps(value)
    with pytest.raises(CorruptRecord, match=fragment):
        decode_legacy(raw)
    write_raw(memory, "odd-buyer", raw)
    caplog.set_level(logging.WARNING, logger="memory_core")
    assert memory.load_state("odd-buyer") is None
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1
    assert fragment in problems[0].getMessage()


def test_truncated_pickle_is_refused(memory: SyncBuyerConversationMemory) -> None:
    write_raw(memory, "cut-buyer", plain_envelope()[:-5])
    assert memory.load_state("cut-buyer") is None
    assert memory.get_stats()["corrupt"] == 1


def test_protocol_0_pickle_is_not_mistaken_for_a_legacy_record(
        memory: SyncBuyerConversationMemory) -> None:
    raw = pickle.dumps({"compressed": False, "data": "{}"}, protocol=0)
    assert not looks_legacy(raw)
    write_raw(memory, "text-pickle", raw)
    assert memory.load_state("text-pickle") is None
    assert memory.get_stats()["corrupt"] == 1
