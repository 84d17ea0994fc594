"""The packed layout: every state comes back equal, timestamps byte for byte, and
bytes that are not a sound packing are a CorruptRecord, never another exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_core import packed
from memory_core.errors import CorruptRecord
from memory_core.record import decode_payload, decode_state, encode_record, parse_summary
from memory_core.state import dump_json, prepare_state

NOW = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


def round_trip(state: dict[str, Any]) -> dict[str, Any]:
    data = packed.pack(state)
    assert data is not None and packed.is_packed(data)
    back = packed.unpack(data, len(dump_json(state)))
    assert orjson.dumps(back) == dump_json(state)  # equal, keys in the same order
    return back


def history_of(timestamps: list[str]) -> dict[str, Any]:
    return {"conversation_history": [
        {"role": "user" if i % 2 else "assistant", "content": f"message {i}", "timestamp": t}
        for i, t in enumerate(timestamps)]}


def test_a_chat_with_timestamps_from_the_bot_packs_them_as_deltas() -> None:
    stamps = [(NOW + timedelta(seconds=37 * i, microseconds=1234 * i)).isoformat()
              for i in range(50)]
    state = history_of(stamps)
    data = packed.pack(state)
    assert data is not None
    document = orjson.loads(data)
    assert document[5] == [1, 0]  # microsecond deltas at UTC
    assert all(type(item) is int for item in document[6])
    assert stamps[1].encode() not in data
    assert round_trip(state) == state


def test_whole_second_timestamps_count_seconds() -> None:
    stamps = [(NOW + timedelta(minutes=i)).isoformat() for i in range(5)]
    document = orjson.loads(packed.pack(history_of(stamps)) or b"")
    assert document[5] == [1_000_000, 0]
    assert document[6][1:] == [60, 60, 60, 60]


@pytest.mark.parametrize("stamp", [
    "2026-11-30T10:00:00Z",                 # isoformat() never writes Z
    "2026-11-30T10:00:00",                  # no offset
    "2026-11-30 10:00:00+00:00",            # space, not T
    "2026-11-30T10:00:00.000000+00:00",     # isoformat() drops a zero fraction
    "2026-11-30T10:00:00.5+00:00",          # a short fraction
    "2026-11-30T10:00+00:00",               # no seconds
    "2026-11-30T10:00:00+0000",             # offset without a colon
    "2026-11-30T10:00:00+05:30:15",         # not what isoformat() writes for that
    "2026-11-30T10:00:60+00:00",            # not a time
    "\uff12\uff10\uff12\uff16-11-30T10:00:00+00:00",  # full-width digits
    "2026-11-30T10:00:00.\uff11\uff12\uff13\uff14\uff15\uff16+00:00",
    "yesterday", "", "2026-11-30T10:00:00+00:00 ",
])
def test_a_timestamp_the_codec_cannot_give_back_exactly_is_kept_as_it_came(stamp: str) -> None:
    state = history_of([NOW.isoformat(), stamp, (NOW + timedelta(seconds=5)).isoformat()])
    document = orjson.loads(packed.pack(state) or b"")
    assert document[6][1] == stamp
    assert round_trip(state) == state


def test_timestamps_in_another_offset_than_the_first_are_kept_as_they_came() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    stamps = [NOW.astimezone(india).isoformat(), NOW.isoformat(),
              (NOW + timedelta(hours=1)).astimezone(india).isoformat()]
    document = orjson.loads(packed.pack(history_of(stamps)) or b"")
    assert document[5] == [1_000_000, 19_800_000_000]
    assert document[6][1] == stamps[1]
    assert document[6][2] == 3600
    round_trip(history_of(stamps))


@pytest.mark.parametrize("stamp", [
    "0001-01-01T00:00:00+00:00", "0999-12-31T23:59:59.999999+00:00",
    "9999-12-31T23:59:59.999999+00:00", "1969-12-31T23:59:59.000001-23:59",
    "2024-02-29T12:00:00+14:00",
])
def test_timestamps_at_the_edges_of_the_calendar_round_trip(stamp: str) -> None:
    round_trip(history_of([stamp, "2026-11-30T10:00:00+00:00"]))


_zones = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)),
                   st.integers(-23 * 60 - 59, 23 * 60 + 59))
_moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                        timezones=st.one_of(st.just(UTC), _zones))
_stamp = st.one_of(_moments.map(datetime.isoformat), st.text(max_size=30))
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)
_message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]),
                           "content": st.text(max_size=40), "timestamp": _stamp}),
    st.dictionaries(st.sampled_from(["role", "content", "timestamp", "meta", "x"]),
                    st.one_of(_stamp, _json_value), max_size=5),
    _json_value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(_message, min_size=1, max_size=12), extra=_json_value)
def test_any_history_round_trips_exactly(history: list[Any], extra: Any) -> None:
    round_trip({"a": 1, "conversation_history": history, "z": extra})


def test_a_state_without_history_is_not_packed() -> None:
    assert packed.pack({"conversation_history": []}) is None
    assert packed.pack({"a": 1}) is None


# hostile bytes ---------------------------------------------------------------------------

def _sound() -> list[Any]:
    state = history_of([NOW.isoformat(), (NOW + timedelta(seconds=9)).isoformat()])
    return orjson.loads(packed.pack(state) or b"")


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: d.__setitem__(0, 2), "unknown layout"),
    (lambda d: d.pop(), "unknown layout"),
    (lambda d: d.__setitem__(1, []), "no history placeholder"),
    (lambda d: d[1].__setitem__("conversation_history", 5), "no history placeholder"),
    (lambda d: d.__setitem__(2, {}), "shapes are not a list"),
    (lambda d: d[2].__setitem__(0, [["role", 9]]), "malformed message shape"),
    (lambda d: d[2].__setitem__(0, [[1, 1]]), "malformed message shape"),
    (lambda d: d[2].__setitem__(0, [["role"]]), "malformed"),
    (lambda d: d[3].append(0), "do not match"),
    (lambda d: d[3].__setitem__(0, 7), "does not hold"),
    (lambda d: d[3].__setitem__(0, True), "does not hold"),
    (lambda d: d[4].pop(), "do not match"),
    (lambda d: d[7].append("more"), "do not match"),
    (lambda d: d.__setitem__(5, [7, 0]), "malformed clock"),
    (lambda d: d.__setitem__(5, [1, "0"]), "malformed clock"),
    (lambda d: d.__setitem__(5, None), "deltas but no clock"),
    (lambda d: d.__setitem__(5, [1, 10**12]), "malformed"),  # beyond ±24 h
    (lambda d: d[6].__setitem__(1, 10**15), "malformed"),  # past year 9999
    (lambda d: d[6].__setitem__(1, 1.5), "neither"),
])
def test_a_damaged_packing_is_corrupt(change: Any, reason: str) -> None:
    document = _sound()
    change(document)
    with pytest.raises(CorruptRecord, match=reason):
        packed.unpack(orjson.dumps(document), 10_000)


def test_deltas_cannot_expand_beyond_the_claimed_size() -> None:
    """One-byte deltas become 25-byte timestamps: no more of them than the JSON size the
    record claims could hold, beside each message's keys."""
    document = _sound()
    count = 100_000
    document[3] = [0] * count
    document[4] = ["user"] * count
    document[6] = [1] * count
    document[7] = [""] * count
    data = orjson.dumps(document)
    keys = 2 + sum(len(key) + 3 for key in ("role", "content", "timestamp"))  # {"role":...}
    least = count * (keys + packed.MIN_DELTA_JSON_BYTES)
    with pytest.raises(CorruptRecord, match="more timestamps than its size allows"):
        packed.unpack(data, least - 1)
    state = packed.unpack(data, least)
    assert len(state["conversation_history"]) == count
    assert len(orjson.dumps(state["conversation_history"])) >= least


def test_a_shape_cannot_stand_for_more_json_than_claimed() -> None:
    """A key stored once stands in every message of its shape: 60,000 messages with a
    400 KB key would be 24 GB of JSON from a record of a few hundred bytes."""
    count = 60_000
    document = [1, {"conversation_history": 0}, [[["k" * 400_000, 0]]], [0] * count, [],
                None, [], [], [0] * count]
    data = orjson.dumps(document)
    with pytest.raises(CorruptRecord, match="stands for more JSON than its size allows"):
        packed.unpack(data, 1024 * 1024)


@settings(max_examples=500, deadline=None)
@given(where=st.integers(2, 8), how=st.sampled_from(["replace", "item", "append"]),
       position=st.integers(0, 10), value=_json_value)
def test_damaged_sound_packings_are_refused_cleanly(where: int, how: str, position: int,
                                                    value: Any) -> None:
    """One part of a sound packing damaged (replaced, one of its items replaced, or one
    item added): a CorruptRecord or a state, never another exception."""
    document = _sound()
    part = document[where]
    if how == "replace" or not isinstance(part, list):
        document[where] = value
    elif how == "item" and part:
        part[position % len(part)] = value
    else:
        part.insert(position % (len(part) + 1), value)
    try:
        state = packed.unpack(orjson.dumps(document), 10_000)
    except CorruptRecord:
        return
    assert isinstance(state, dict)
    orjson.dumps(state)  # whatever loads can be stored again


@pytest.mark.parametrize("data", [b"[", b"[1,", b"\xff", b"[1]" * 3, b"[]"])
def test_bytes_that_are_not_json_are_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptRecord):
        packed.unpack(data, 10_000)


# in a record ------------------------------------------------------------------------------

def _record(state: dict[str, Any], *, pack: bool = True) -> tuple[bytes, bytes]:
    ready = prepare_state(state, max_history_messages=50, now=NOW)
    data = dump_json(ready)
    return encode_record(ready, data, compress_threshold_bytes=0, codec="zstd",
                         zstd_level=3, pack=pack), data


def test_a_record_keeps_the_json_size_in_its_header() -> None:
    record, data = _record(history_of([NOW.isoformat()] * 30))
    summary = parse_summary(record)
    assert summary.original_bytes == len(data)
    assert len(decode_payload(record, summary)) < len(data)


def test_a_packing_that_claims_the_full_json_size_is_corrupt() -> None:
    """JSON is exactly the claimed size and a packing is smaller: a forged size that
    makes one pass for the other is refused."""
    record, data = _record(history_of([NOW.isoformat()] * 30))
    packed_bytes = decode_payload(record, parse_summary(record))
    padded = {"conversation_history": [], "pad": "x" * 10}
    forged, _ = _record(padded, pack=False)
    header_end = parse_summary(forged).header_bytes
    payload = zstandard.ZstdCompressor(write_content_size=True).compress(packed_bytes)
    fields = forged[4:header_end - 1].split(b"\x1f")
    fields[3] = str(len(packed_bytes)).encode()
    fields[4] = str(len(payload)).encode()
    record = b"BCM1" + b"\x1f".join(fields) + b"\n" + payload
    with pytest.raises(CorruptRecord, match="size does not match"):
        decode_state(record, parse_summary(record))
    assert len(data) > len(packed_bytes)


def test_plain_records_are_never_unpacked() -> None:
    """Codec none stores JSON as it is: a payload starting with [ is not a state."""
    record, _ = _record({"conversation_history": []})
    summary = parse_summary(record)
    fields = record[4:summary.header_bytes - 1].split(b"\x1f")
    body = packed.pack(history_of([NOW.isoformat()])) or b""
    fields[1], fields[3], fields[4] = b"none", str(len(body)).encode(), str(len(body)).encode()
    forged = b"BCM1" + b"\x1f".join(fields) + b"\n" + body
    assert isinstance(decode_state(forged, parse_summary(forged)), list)


# in a store ------------------------------------------------------------------------------

def test_either_layout_loads_what_the_other_saved(store_url: str) -> None:
    """A rolling upgrade: bots writing json (for 1.0 readers) and packed share a store."""
    from memory_core import MemoryConfig, SyncBuyerConversationMemory

    state = history_of([(NOW + timedelta(seconds=13 * i)).isoformat() for i in range(30)])
    state["buyer_temperature"] = "warm"
    with SyncBuyerConversationMemory.from_url(
            store_url, MemoryConfig(payload_layout="json")) as old, \
            SyncBuyerConversationMemory.from_url(store_url) as new:
        assert old.save_state("from-json", state) and new.save_state("from-packed", state)
        for writer, contact_id, is_packed in ((old, "from-json", False),
                                              (new, "from-packed", True)):
            raw = writer.client.get(writer.key_for(contact_id)) or b""
            assert packed.is_packed(decode_payload(raw, parse_summary(raw))) is is_packed
        for reader in (old, new):
            for contact_id in ("from-json", "from-packed"):
                loaded = reader.load_state(contact_id)
                assert loaded is not None
                assert loaded["conversation_history"] == state["conversation_history"]
                assert loaded["buyer_temperature"] == "warm"
