"""Records pickled by the old system: read when plain data, refused (safely) otherwise."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import os
import pickle
import pickletools
import re
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from memory_core import BuyerConversationMemory, SyncBuyerConversationMemory
from memory_core.errors import CorruptRecord
from memory_core.legacy import (
    MAX_LEGACY_OPCODES,
    MAX_PLAIN_NODES,
    _check_plain,
    _PlainDataUnpickler,
    decode_legacy,
    looks_legacy,
)

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


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_protocol_reads_the_real_envelopes(protocol: int) -> None:
    """The pre-scan lets through every form the old system wrote: JSON text, gzip as hex."""
    text = json.dumps(LEGACY_STATE)
    blob = gzip.compress(text.encode("utf-8"))
    for envelope in ({"compressed": False, "data": text},
                     {"compressed": True, "data": blob.hex()}):
        assert decode_legacy(pickle.dumps(envelope, protocol=protocol)) == LEGACY_STATE
    if protocol >= 3:  # protocol 2 pickles bytes through a global, refused as ever
        raw = pickle.dumps({"compressed": True, "data": blob}, protocol=protocol)
        assert decode_legacy(raw) == LEGACY_STATE


# hostile pickles: bounded work, whatever the bytes ----------------------------------

# Ends a walk that never returns (attack 1 before its fix). Hashing and memo growth run in
# C holding the GIL, where no pytest-timeout method reaches: the payloads aimed there are
# sized so that a regression fails on its message, not by hanging CI.
HANG_GUARD = pytest.mark.timeout(20)
PEAK_LIMIT = 4 * 1024 * 1024


def memo_put(index: int) -> bytes:
    if index < 256:
        return pickle.BINPUT + bytes([index])
    return pickle.LONG_BINPUT + struct.pack("<I", index)


def memo_get(index: int) -> bytes:
    if index < 256:
        return pickle.BINGET + bytes([index])
    return pickle.LONG_BINGET + struct.pack("<I", index)


def shared_lists_pickle(levels: int = 45) -> bytes:
    """Each new list APPENDS the previous one twice through the memo: 2**45 nodes to walk.

    The lists stay on the stack; STOP returns the last, as a top-level load would.
    """
    parts = [pickle.PROTO + b"\x02", pickle.EMPTY_LIST, memo_put(0)]
    for level in range(1, levels + 1):
        parts += [pickle.EMPTY_LIST, memo_put(level), pickle.MARK,
                  memo_get(level - 1), memo_get(level - 1), pickle.APPENDS]
    return b"".join([*parts, pickle.STOP])


def huge_memo_index_pickle() -> bytes:
    """9 bytes: CPython grows its memo array to 2 * 2**28 slots (4 GB) for one PUT."""
    return (pickle.PROTO + b"\x02" + pickle.NONE
            + pickle.LONG_BINPUT + struct.pack("<I", 2**28) + pickle.STOP)


def shared_tuple_key_pickle(levels: int = 20) -> bytes:
    """A dict key of tuples sharing their halves: hashing it visits 2**levels tuples.

    The unpickler hashes the key in C, where no timeout reaches, so 20 levels (a second
    of hashing, 100 times the node bound) rather than 45 (forever).
    """
    parts = [pickle.PROTO + b"\x02", pickle.EMPTY_TUPLE, memo_put(0)]
    for level in range(1, levels + 1):
        parts += [memo_get(level - 1), memo_get(level - 1), pickle.TUPLE2, memo_put(level)]
    parts += [pickle.EMPTY_DICT, memo_get(levels), pickle.NONE, pickle.SETITEM, pickle.STOP]
    return b"".join(parts)


HOSTILE = [
    pytest.param(shared_lists_pickle,
                 r"APPENDS at byte \d+ makes a list of more than 10000 values", id="shared-lists"),
    pytest.param(huge_memo_index_pickle,
                 r"LONG_BINPUT at byte 3 puts memo entry 268435456 when 0 exist",
                 id="huge-memo-index"),
    pytest.param(shared_tuple_key_pickle,
                 r"TUPLE2 at byte \d+ makes a tuple of more than 10000 values",
                 id="shared-tuple-key"),
]


def opcode_names(raw: bytes) -> list[str]:
    return [opcode.name for opcode, _, _ in pickletools.genops(io.BytesIO(raw))]


def refusal_and_peak(raw: bytes) -> tuple[str, int]:
    """decode_legacy's refusal message and the most memory it held on the way."""
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecord) as refused:
            decode_legacy(raw)
        return str(refused.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_hostile_pickles_are_small_and_well_formed() -> None:
    """Guards the tests below: the refusals are about the work, not malformed bytes."""
    assert 300 < len(shared_lists_pickle()) < 500
    assert len(huge_memo_index_pickle()) == 9
    assert len(shared_tuple_key_pickle()) < 400
    for build in (shared_lists_pickle, huge_memo_index_pickle, shared_tuple_key_pickle):
        assert opcode_names(build())[-1] == "STOP"
    shared = pickle.loads(shared_lists_pickle())  # cheap to build, 2**45 nodes to walk
    for _ in range(45):
        assert len(shared) == 2 and shared[0] is shared[1]
        shared = shared[0]
    assert shared == []


@HANG_GUARD
@pytest.mark.parametrize(("build", "reason"), HOSTILE)
def test_a_hostile_legacy_pickle_is_corrupt_not_a_hang(
        memory: SyncBuyerConversationMemory, raw: redis.Redis,
        caplog: pytest.LogCaptureFixture, build: Callable[[], bytes], reason: str) -> None:
    raw.set(f"{PREFIX}:hostile-buyer".encode(), build())
    caplog.set_level(logging.WARNING, logger="memory_core")
    assert memory.load_state("hostile-buyer") is None
    assert memory.get_stats()["corrupt"] == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert re.search(reason, errors[0].getMessage())


@HANG_GUARD
@pytest.mark.parametrize(("build", "reason"), HOSTILE)
def test_a_hostile_legacy_pickle_does_not_stop_the_event_loop(
        raw: redis.Redis, store_url: str, caplog: pytest.LogCaptureFixture,
        build: Callable[[], bytes], reason: str) -> None:
    raw.set(f"{PREFIX}:hostile-buyer".encode(), build())
    caplog.set_level(logging.WARNING, logger="memory_core")

    async def load() -> tuple[dict[str, Any] | None, dict[str, Any]]:
        async with BuyerConversationMemory.from_url(store_url) as async_memory:
            return (await async_memory.load_state("hostile-buyer"),
                    await async_memory.get_stats())

    loaded, stats = asyncio.run(load())
    assert loaded is None
    assert stats["corrupt"] == 1
    assert any(re.search(reason, r.getMessage()) for r in caplog.records)


@HANG_GUARD
@pytest.mark.parametrize(("build", "reason"), HOSTILE)
def test_decode_legacy_refuses_a_hostile_pickle_saying_where(
        build: Callable[[], bytes], reason: str) -> None:
    with pytest.raises(CorruptRecord, match=reason):
        decode_legacy(build())


@HANG_GUARD
def test_a_huge_memo_index_is_refused_before_the_memo_grows() -> None:
    message, peak = refusal_and_peak(huge_memo_index_pickle())
    assert "LONG_BINPUT at byte 3" in message
    assert peak < PEAK_LIMIT


@HANG_GUARD
def test_the_plain_data_walk_is_bounded_by_nodes_not_depth() -> None:
    """The last line on its own: the shared lists, unpickled without the pre-scan."""
    shared = _PlainDataUnpickler(io.BytesIO(shared_lists_pickle())).load()
    with pytest.raises(CorruptRecord, match=f"more than {MAX_PLAIN_NODES} values"):
        _check_plain(shared)
    _check_plain([None] * (MAX_PLAIN_NODES - 1))  # the list and its items: exactly the bound
    with pytest.raises(CorruptRecord, match=f"more than {MAX_PLAIN_NODES} values"):
        _check_plain([None] * MAX_PLAIN_NODES)


@pytest.mark.parametrize(("protocol", "opcode"), [
    (2, "GLOBAL"), (3, "GLOBAL"), (4, "STACK_GLOBAL"), (5, "STACK_GLOBAL"),
])
def test_globals_are_refused_by_the_prescan_naming_the_opcode(protocol: int,
                                                               opcode: str) -> None:
    raw = pickle.dumps({"compressed": False, "data": _SetsFlag()}, protocol=protocol)
    assert {opcode, "REDUCE"} <= set(opcode_names(raw))
    name = re.escape(f"{_set_flag.__module__}._set_flag")
    # "at byte" is the pre-scan's wording: the unpickler's find_class never ran
    with pytest.raises(CorruptRecord,
                       match=rf"refused global {name} in a legacy record \({opcode} at byte \d+\)"):
        decode_legacy(raw)
    assert _FLAG["called"] is False


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"\x80\x02N)R.", "REDUCE at byte 4 is not allowed"),
    (b"\x80\x02}}b.", "BUILD at byte 4 is not allowed"),
    (b"\x80\x02N)\x81.", "NEWOBJ at byte 4 is not allowed"),
    (b"\x80\x02NQ.", "BINPERSID at byte 3 is not allowed"),
    (b"\x80\x02\x82\x01.", "EXT1 at byte 2 is not allowed"),
    (b"\x80\x02(ibuiltins\nlist\n.", "INST at byte 3 is not allowed"),
    (b"\x80\x05\x97.", "NEXT_BUFFER at byte 2 is not allowed"),
    (b"\x80\x02N0.", "POP at byte 3 is not allowed"),
], ids=["reduce", "build", "newobj", "persid", "ext", "inst", "buffer", "pop"])
def test_opcodes_outside_plain_data_are_refused_by_name(raw: bytes, fragment: str) -> None:
    assert opcode_names(raw)[-1] == "STOP"
    with pytest.raises(CorruptRecord, match=fragment):
        decode_legacy(raw)


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"\x80\x02h\x00.", "BINGET at byte 2 reads memo entry 0, which was never put"),
    (b"\x80\x02Nq\x00Nj\x07\x00\x00\x00.", "LONG_BINGET at byte 6 reads memo entry 7"),
    (b"\x80\x02Nq\x01.", "BINPUT at byte 3 puts memo entry 1 when 0 exist"),
    (b"\x80\x02]q\x00h\x00Na.", "APPEND at byte 8 adds to a list already shared"),
    (b"\x80\x02}N\x85Na.", "APPEND at byte 6 adds to a tuple, not a list"),
    (b"\x80\x02}(Nu.", "SETITEMS at byte 5 has a key without a value"),
    (b"\x80\x02]e.", "APPENDS at byte 3 has no MARK to pop to"),
    (b"\x80\x02(a.", "APPEND at byte 3 finds too few values above the last MARK"),
], ids=["get-unset", "long-get-unset", "put-skips", "fill-shared", "fill-tuple",
        "odd-setitems", "no-mark", "underflow"])
def test_memo_and_stack_abuse_is_refused_by_the_prescan(raw: bytes, fragment: str) -> None:
    with pytest.raises(CorruptRecord, match=fragment):
        decode_legacy(raw)


def test_more_opcodes_than_an_envelope_needs_are_refused() -> None:
    nones = pickle.NONE * MAX_LEGACY_OPCODES
    raw = b"\x80\x02]" + pickle.MARK + nones + pickle.APPENDS + pickle.STOP
    with pytest.raises(CorruptRecord, match=f"more than {MAX_LEGACY_OPCODES} opcodes"):
        decode_legacy(raw)


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"\x80\x02\xff.", r"opcode at byte 2 is unreadable \(at position 2, opcode b'\\xff'"),
    (b"\x80\x02N", "opcode at byte 3 is unreadable \\(pickle exhausted before seeing STOP"),
    (b"\x80\x02X\x00\x00\x00\x80ab.", "expected 2147483648 bytes in a unicodestring4"),
    (b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"ab.", "expected 1099511627776 bytes"),
], ids=["unknown", "no-stop", "unicode-length", "bytes8-length"])
def test_opcodes_genops_cannot_read_are_refused_without_allocating(raw: bytes,
                                                                   fragment: str) -> None:
    message, peak = refusal_and_peak(raw)
    assert re.search(fragment, message)
    assert peak < PEAK_LIMIT


def test_compressed_data_that_is_a_number_allocates_nothing() -> None:
    """bytes(2_000_000_000) would be 2 GB of zeros."""
    message, peak = refusal_and_peak(
        pickle.dumps({"compressed": True, "data": 2_000_000_000}))
    assert "compressed data is int, not hex or bytes" in message
    assert peak < PEAK_LIMIT
