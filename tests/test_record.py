"""The stored bytes: summary header + payload, compression, dictionaries, corruption."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_core.errors import CorruptRecord
from memory_core.record import (
    HEADER_READ_BYTES,
    MAGIC,
    SEPARATOR,
    decode_payload,
    decode_state,
    encode_record,
    is_record,
    parse_summary,
)
from memory_core.state import QA_SEED_FIELD, STATE_DEFAULTS, dump_json, prepare_state

NOW = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
THRESHOLD = 5120
NEVER_COMPRESS = 64 * 1024 * 1024
BuyerStateFactory = Callable[..., dict[str, Any]]
Dictionaries = tuple[zstandard.ZstdCompressionDict, zstandard.ZstdCompressionDict]


def prepared(state: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    ready = prepare_state(state, max_history_messages=50, now=NOW)
    return ready, dump_json(ready)


def encode(state: dict[str, Any], data: bytes, *, threshold: int = THRESHOLD,
           codec: str = "zstd",
           dictionary: zstandard.ZstdCompressionDict | None = None, pack: bool = True
           ) -> bytes:
    return encode_record(state, data, compress_threshold_bytes=threshold, codec=codec,
                         zstd_level=3, dictionary=dictionary, pack=pack)


def header_of(record: bytes) -> bytes:
    return record[:parse_summary(record).header_bytes]


# round trips ------------------------------------------------------------------------------

def test_a_payload_compression_would_not_shrink_is_stored_plain() -> None:
    """Over the threshold, yet zstd's frame would be larger than the bytes themselves
    (high-entropy text): stored plain, so a load has nothing to decompress."""
    state, _ = prepared({"buyer_temperature": "warm"})
    noise = random.Random(7).randbytes(512)  # incompressible: zstd only adds its frame
    assert len(zstandard.ZstdCompressor(level=3).compress(noise)) >= len(noise)
    record = encode(state, noise, threshold=0)
    summary = parse_summary(record)
    assert (summary.codec, summary.dictionary_id) == ("none", 0)
    assert decode_payload(record, summary) == noise
    _, data = prepared({"buyer_temperature": "warm", "notes": "same words " * 50})
    assert parse_summary(encode(state, data, threshold=0)).codec == "zstd"  # it shrinks


def test_small_state_is_stored_uncompressed() -> None:
    state, data = prepared({"buyer_temperature": "warm", "buyer_persona": "investor",
                            "current_journey_stage": "viewing", "is_qualified": True,
                            "conversation_history": [{"content": "hi"}, {"content": "yo"}]})
    assert len(data) <= THRESHOLD
    record = encode(state, data)
    assert is_record(record)
    summary = parse_summary(record)
    assert summary.codec == "none"
    assert summary.dictionary_id == 0
    assert summary.schema_version == "1.0"
    assert summary.original_bytes == summary.payload_bytes == len(data)
    assert summary.stored_bytes == len(record)
    assert summary.temperature == "warm"
    assert summary.persona == "investor"
    assert summary.journey_stage == "viewing"
    assert summary.is_qualified is True
    assert summary.message_count == 2
    assert summary.last_interaction_epoch == int(NOW.timestamp())
    assert summary.qa_seed is False
    assert decode_payload(record, summary) == data
    assert orjson.loads(decode_payload(record, summary)) == state


def test_large_state_is_compressed_with_zstd(make_buyer_state: BuyerStateFactory) -> None:
    state, data = prepared(make_buyer_state(1, messages=50))
    assert len(data) > THRESHOLD
    record = encode(state, data)
    summary = parse_summary(record)
    assert summary.codec == "zstd"
    assert summary.dictionary_id == 0
    assert summary.original_bytes == len(data)
    assert summary.payload_bytes < len(data)
    assert summary.message_count == 50
    assert decode_payload(record, summary)[:1] == b"["  # the packed layout
    assert orjson.dumps(decode_state(record, summary)) == data  # keys in the same order


def test_json_layout_compresses_the_json_itself(make_buyer_state: BuyerStateFactory) -> None:
    state, data = prepared(make_buyer_state(1, messages=50))
    record = encode(state, data, pack=False)
    summary = parse_summary(record)
    assert summary.codec == "zstd"
    assert decode_payload(record, summary) == data
    assert decode_state(record, summary) == state


def test_packed_layout_is_smaller_than_json(make_buyer_state: BuyerStateFactory) -> None:
    state, data = prepared(make_buyer_state(1, messages=50))
    assert (parse_summary(encode(state, data)).payload_bytes
            < parse_summary(encode(state, data, pack=False)).payload_bytes)


def test_codec_none_never_compresses(make_buyer_state: BuyerStateFactory) -> None:
    state, data = prepared(make_buyer_state(2, messages=50))
    record = encode(state, data, codec="none")
    summary = parse_summary(record)
    assert summary.codec == "none"
    assert record.endswith(data)
    assert decode_payload(record, summary) == data


def test_threshold_is_exclusive() -> None:
    state, data = prepared({})
    assert parse_summary(encode(state, data, threshold=len(data))).codec == "none"
    assert parse_summary(encode(state, data, threshold=len(data) - 1)).codec == "zstd"


def test_qa_seed_flag_is_copied_to_the_header() -> None:
    state, data = prepared({QA_SEED_FIELD: True})
    assert parse_summary(encode(state, data)).qa_seed is True
    state, data = prepared({QA_SEED_FIELD: "yes"})
    assert parse_summary(encode(state, data)).qa_seed is False


def test_dictionary_record_names_its_id_and_needs_it(
        make_buyer_state: BuyerStateFactory, zstd_dictionaries: Dictionaries) -> None:
    trained, other = zstd_dictionaries
    state, data = prepared(make_buyer_state(7, messages=40))
    record = encode(state, data, dictionary=trained)
    summary = parse_summary(record)
    assert summary.codec == "zstd"
    assert summary.dictionary_id == trained.dict_id() != 0
    assert orjson.dumps(decode_state(record, summary, trained)) == data
    with pytest.raises(CorruptRecord, match="cannot be decompressed"):
        decode_payload(record, summary, None)
    with pytest.raises(CorruptRecord, match="cannot be decompressed"):
        decode_payload(record, summary, other)


def test_dictionary_compresses_better_than_plain_zstd(
        make_buyer_state: BuyerStateFactory, zstd_dictionaries: Dictionaries) -> None:
    state, data = prepared(make_buyer_state(8, messages=40))
    plain = parse_summary(encode(state, data)).payload_bytes
    with_dictionary = parse_summary(
        encode(state, data, dictionary=zstd_dictionaries[0])).payload_bytes
    assert with_dictionary < plain


def test_dictionary_is_not_named_when_not_compressing(zstd_dictionaries: Dictionaries) -> None:
    state, data = prepared({})
    summary = parse_summary(encode(state, data, dictionary=zstd_dictionaries[0]))
    assert (summary.codec, summary.dictionary_id) == ("none", 0)


# the header -----------------------------------------------------------------------------

def test_header_holds_no_pii(make_buyer_state: BuyerStateFactory) -> None:
    raw_state = make_buyer_state(3, messages=5)
    raw_state.update(buyer_name="Marguerite Okonkwo", buyer_phone="+1 555 867 5309",
                     buyer_email="marguerite.okonkwo@example.com")
    state, data = prepared(raw_state)
    for threshold in (0, NEVER_COMPRESS):
        header = header_of(encode(state, data, threshold=threshold))
        for secret in ("Marguerite", "Okonkwo", "867", "5309", "marguerite.okonkwo",
                       "example.com"):
            assert secret.encode() not in header, (threshold, secret)


@pytest.mark.parametrize("filler", ["x", "W"])
def test_header_fits_the_scan_window_for_very_long_ascii_fields(filler: str) -> None:
    state, data = prepared({"buyer_persona": filler * 5000,
                            "current_journey_stage": filler * 5000,
                            "buyer_temperature": filler * 5000,
                            "conversation_history": [{}] * 50})
    record = encode(state, data, threshold=0, dictionary=None)
    summary = parse_summary(record)
    assert summary.header_bytes <= HEADER_READ_BYTES
    assert parse_summary(record[:HEADER_READ_BYTES]) == summary
    assert summary.persona == filler * 40


@pytest.mark.parametrize(("persona", "stage"), [
    ("首次购房者预算有限需要学区房" * 3, "看房阶段等待贷款预批准" * 4),
    ("primera compradora — señora Núñez, búsqueda en Málaga " * 2,
     "negociación avanzada con el vendedor en Cádiz ñ" * 2),
    ("🏠🏡🏘️" * 20, "📅✅" * 30),
], ids=["chinese", "spanish", "emoji"])
def test_header_fits_the_scan_window_for_very_long_non_ascii_fields(
        persona: str, stage: str, zstd_dictionaries: Dictionaries) -> None:
    """Scans read HEADER_READ_BYTES bytes; the header must fit whatever the text."""
    state, data = prepared({"buyer_persona": persona, "current_journey_stage": stage,
                            "buyer_temperature": "warm",
                            "conversation_history": [{"content": "x" * 200}] * 50})
    record = encode(state, data, threshold=0, dictionary=zstd_dictionaries[0])
    summary = parse_summary(record)
    assert summary.header_bytes <= HEADER_READ_BYTES
    assert parse_summary(record[:HEADER_READ_BYTES]) == summary


def test_delimiters_in_text_fields_are_sanitised() -> None:
    state, data = prepared({"buyer_persona": "first\x1ftime\nbuyer\rnow",
                            "current_journey_stage": "\x1f\n",
                            "buyer_temperature": "hot\n"})
    record = encode(state, data)
    summary = parse_summary(record)
    assert summary.persona == "first time buyer now"
    assert summary.journey_stage == "  "
    assert summary.temperature == "hot "
    assert header_of(record).count(b"\n") == 1
    assert header_of(record).count(SEPARATOR) == 12
    assert orjson.loads(decode_payload(record, summary))["buyer_persona"] == \
        "first\x1ftime\nbuyer\rnow"


def test_non_string_header_values_are_rendered_as_text() -> None:
    state, data = prepared({"buyer_persona": None, "buyer_temperature": 3,
                            "conversation_history": []})
    summary = parse_summary(encode(state, data))
    assert summary.persona == ""
    assert summary.temperature == "3"
    assert summary.message_count == 0


# corruption -----------------------------------------------------------------------------

@pytest.fixture
def compressed_record(make_buyer_state: BuyerStateFactory) -> bytes:
    state, data = prepared(make_buyer_state(4, messages=50))
    record = encode(state, data)
    assert parse_summary(record).codec == "zstd"
    return record


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_truncated_payload_is_corrupt(compressed_record: bytes, cut: int) -> None:
    truncated = compressed_record[:-cut]
    summary = parse_summary(truncated)  # the header is intact
    with pytest.raises(CorruptRecord, match="truncated"):
        decode_payload(truncated, summary)


def test_truncated_header_is_corrupt(compressed_record: bytes) -> None:
    end = parse_summary(compressed_record).header_bytes
    for cut in (end - 1, 20, 5):
        with pytest.raises(CorruptRecord, match="truncated"):
            parse_summary(compressed_record[:cut])


def test_overwritten_zstd_payload_is_corrupt(compressed_record: bytes) -> None:
    summary = parse_summary(compressed_record)
    start = summary.header_bytes
    damaged = compressed_record[:start] + bytes(summary.payload_bytes)
    with pytest.raises(CorruptRecord, match="cannot be decompressed"):
        decode_payload(damaged, summary)


def test_payload_that_decompresses_to_the_wrong_size_is_corrupt() -> None:
    state, data = prepared({})
    record = encode(state, data, threshold=0)
    header, payload = record.split(b"\n", 1)
    parts = header.split(SEPARATOR)
    parts[3] = str(len(data) + 1).encode()  # original_bytes
    forged = SEPARATOR.join(parts) + b"\n" + payload
    with pytest.raises(CorruptRecord, match="size does not match"):
        decode_payload(forged, parse_summary(forged))


@pytest.mark.parametrize("raw", [
    b"",
    b"garbage bytes that are not a record",
    b"\x00\x01\x02\x03\xff" * 20,
    b'{"buyer_name": "plain json"}',
    b"BCM2\x1f" + b"1\x1f" * 11 + b"\n",
])
def test_garbage_is_corrupt(raw: bytes) -> None:
    assert not is_record(raw)
    with pytest.raises(CorruptRecord, match="not a memory_core record"):
        parse_summary(raw)


@pytest.mark.parametrize("fields", [1, 11, 14, 20])
def test_wrong_field_count_is_corrupt(fields: int) -> None:
    raw = MAGIC + SEPARATOR.join([b"0"] * fields) + b"\n{}"
    with pytest.raises(CorruptRecord, match=f"has {fields} fields, expected 13"):
        parse_summary(raw)


@pytest.mark.parametrize(("index", "value"), [
    (2, b"not-a-number"), (3, b""), (4, b"1.5"), (9, b"many"), (10, b"yesterday"),
    (0, b"\xff\xfe"), (1, b"\xc3"),
])
def test_malformed_header_values_are_corrupt(index: int, value: bytes) -> None:
    state, data = prepared({})
    header, payload = encode(state, data).split(b"\n", 1)
    parts = header[len(MAGIC):].split(SEPARATOR)
    parts[index] = value
    raw = MAGIC + SEPARATOR.join(parts) + b"\n" + payload
    with pytest.raises(CorruptRecord, match="malformed"):
        parse_summary(raw)


def test_unknown_codec_is_corrupt() -> None:
    state, data = prepared({})
    record = encode(state, data).replace(b"\x1fnone\x1f", b"\x1flz4\x1f", 1)
    with pytest.raises(CorruptRecord, match="unknown codec b'lz4'"):
        parse_summary(record)


@pytest.mark.parametrize(("index", "value"), [
    (7, b"yes"), (11, b"2"), (10, b"+5"), (9, b" 5"), (3, b"5_000"), (2, b"9" * 19),
])
def test_every_reader_applies_the_same_strict_number_rules(index: int, value: bytes) -> None:
    """int() would accept " 5", "+5" and "5_000"; the scan and the bot must not differ."""
    state, data = prepared({})
    header, payload = encode(state, data).split(b"\n", 1)
    parts = header[len(MAGIC):].split(SEPARATOR)
    parts[index] = value
    with pytest.raises(CorruptRecord, match="malformed"):
        parse_summary(MAGIC + SEPARATOR.join(parts) + b"\n" + payload)


def test_a_last_interaction_before_1970_is_readable() -> None:
    state, data = prepared({})
    header, payload = encode(state, data).split(b"\n", 1)
    parts = header[len(MAGIC):].split(SEPARATOR)
    parts[10] = b"-62135596800"
    assert parse_summary(MAGIC + SEPARATOR.join(parts) + b"\n" + payload
                         ).last_interaction_epoch == -62135596800


# property: any JSON-able state survives the whole path -----------------------------------

_RESERVED = {*STATE_DEFAULTS, "last_interaction_timestamp", "state_version"}
_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
_json_values = st.recursive(
    _scalars,
    lambda children: (st.lists(children, max_size=6)
                      | st.dictionaries(st.text(max_size=12), children, max_size=6)),
    max_leaves=25,
)
_extra_fields = st.dictionaries(st.text(max_size=20).filter(lambda k: k not in _RESERVED),
                                _json_values, max_size=8)
_known_fields = st.fixed_dictionaries({}, optional={
    "buyer_persona": st.none() | st.text(max_size=60),
    "buyer_temperature": st.none() | st.sampled_from(["hot", "warm", "cold"]) | st.text(),
    "current_journey_stage": st.text(max_size=60),
    "is_qualified": st.booleans(),
    "conversation_history": st.lists(_json_values, max_size=70),
    "objection_history": st.lists(st.text(max_size=20), max_size=5),
    "budget_range": _json_values,
    "buyer_name": st.text(max_size=30),
    QA_SEED_FIELD: st.booleans(),
})
_states = st.builds(lambda known, extra: {**extra, **known}, _known_fields, _extra_fields)


@pytest.mark.parametrize(("threshold", "use_dictionary"), [
    (0, False), (0, True), (NEVER_COMPRESS, False)],
    ids=["zstd", "zstd-dictionary", "uncompressed"])
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(state=_states)
def test_any_json_state_round_trips(state: dict[str, Any], threshold: int,
                                    use_dictionary: bool,
                                    zstd_dictionaries: Dictionaries) -> None:
    dictionary = zstd_dictionaries[0] if use_dictionary else None
    ready = prepare_state(state, max_history_messages=50, now=NOW)
    data = dump_json(ready)
    record = encode(ready, data, threshold=threshold, dictionary=dictionary)
    summary = parse_summary(record)
    assert summary.codec == ("zstd" if threshold == 0 else "none")
    assert summary.dictionary_id == (dictionary.dict_id() if dictionary else 0)
    assert summary.original_bytes == len(data)
    assert summary.message_count == len(ready["conversation_history"])
    assert summary.is_qualified is (ready["is_qualified"] is True)
    assert summary.qa_seed is (ready.get(QA_SEED_FIELD) is True)
    decoded = decode_state(record, summary, dictionary)
    assert decoded == ready
    assert orjson.dumps(decoded) == data  # keys in the order they were saved
