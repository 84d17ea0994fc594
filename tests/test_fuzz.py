"""Fuzzing what a buyer key may hold: the bot, the inventory and the operator read.

GUIDE section 5: everything read from Redis is hostile. Hypothesis plants bytes straight
into the private redis-server under ``buyer_conversation_memory:<id>``: arbitrary bytes,
and real records of every kind (codec none, zstd, zstd with a trained dictionary stored
the way :mod:`memory_core.dictionaries` stores it, a record from before revisions, and
the old system's pickles) after bit flips, truncation, splicing and header-field edits.
For each planted value:

(a) ``load_state`` never raises, returns None or a dict with an int ``state_revision``,
    and the asyncio memory returns the same; an unreadable value is a corrupt record,
    never an "unexpected failure" (a stack trace in the bot's log);
(b) ``update_state`` never raises and leaves a record that loads, and it can save every
    state ``load_state`` returns (else that buyer's memory is frozen);
(c) the inventory lists a value that does not load (and is not empty) with a problem
    status and text, and a value that loads as ok or legacy;
(d) the operator read returns a record or raises :class:`CorruptRecord` with a message,
    and it agrees with ``load_state`` about which values are readable.

A planted value is described by a small tuple (see :func:`build`) so that an example is
short to write down: ``("flip", "zstd", ((200, 3),))`` is the zstd record with bit 3 of
byte 200 flipped. Examples that found bugs are kept as explicit ``@example`` cases.

``FUZZ_EXAMPLES`` sets the examples per property (default 200); with ``CI`` set the run
is derandomized, so CI sees the same examples every time.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import streamlit as st
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as hs
from streamlit.testing.v1 import AppTest

from dashboard.settings import ALLOW_SEEDING_ENV, READ_ONLY_ENV
from memory_core import dictionaries as dicts
from memory_core.config import MemoryConfig
from memory_core.errors import CorruptRecord
from memory_core.inventory import STATUS_LEGACY, STATUS_OK, scan_summaries
from memory_core.record import (
    CODEC_NONE,
    CODEC_ZSTD,
    HEADER_END,
    MAGIC,
    SEPARATOR,
    encode_record,
    encode_record_parts,
)
from memory_core.state import dump_json, prepare_state
from memory_core.store import (
    REVISION_FIELD,
    BuyerConversationMemory,
    StoredRecord,
    SyncBuyerConversationMemory,
)

PREFIX = MemoryConfig().cache_key_prefix
CONTACT_ID = "fuzz-buyer-0001"
KEY = f"{PREFIX}:{CONTACT_ID}".encode()
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
APP = str(Path(__file__).resolve().parents[1] / "app.py")
BUYER_PAGE = "app_pages/buyer.py"

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None,  # no .hypothesis directory in the work tree; failures print their example
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# hostile pickles --------------------------------------------------------------------

#: Created by the hostile pickle if anything ever unpickles it with globals allowed.
PWNED_MARKER = Path(tempfile.gettempdir()) / f"memory-core-fuzz-pwned-{os.getpid()}"


class _RunsCode:
    """Pickles to a call of ``os.system``: what an attacker plants as a legacy record."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {PWNED_MARKER}",)


def _shared_lists(levels: int) -> bytes:
    """A list of two references to a list of two references to ... (2**levels nodes)."""
    body = b"]"  # EMPTY_LIST
    for level in range(levels):
        body += b"q" + bytes([level]) + b"](" + (b"h" + bytes([level])) * 2 + b"e"
    return b"\x80\x02" + body + b"."


HOSTILE_PICKLES: dict[str, bytes] = {
    "os.system via REDUCE": pickle.dumps(_RunsCode(), protocol=2),
    "eval via INST": b"\x80\x02(c__builtin__\neval\nX\x03\x00\x00\x001+1o.",
    "memo index 2**31": b"\x80\x02Nr\xff\xff\xff\x7f.",
    "2**40 shared lists": _shared_lists(40),
    "string claiming 2**60 bytes": b"\x80\x04\x8d" + (2**60).to_bytes(8, "little") + b"x.",
    "5000 nested lists": b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b".",
}

# the corpus of real records ---------------------------------------------------------

_PHRASES = (
    "Hi, I'm looking for a 3 bedroom house near downtown with a garden.",
    "What is your budget range and are you pre-approved for a mortgage?",
    "We are pre-approved up to $450,000 with a local credit union.",
    "Is the school district good? We have two kids in elementary school.",
    "The HOA fee is $250 a month and covers the pool and landscaping.",
)


def fuzz_state(seed: int, messages: int) -> dict[str, Any]:
    history = [{"role": "user" if j % 2 else "assistant",
                "content": f"{_PHRASES[(seed + j) % len(_PHRASES)]} ({seed}-{j})",
                "timestamp": f"2024-05-{1 + j % 28:02d}T10:{j % 60:02d}:00+00:00"}
               for j in range(messages)]
    return {"conversation_history": history, "buyer_persona": "investor",
            "buyer_temperature": "hot", "current_journey_stage": "viewing",
            "budget_range": {"min": 300_000, "max": 450_000}, "is_qualified": True,
            "financial_readiness_score": 71.5, "buyer_name": f"Fuzz Buyer{seed}",
            "buyer_email": f"fuzz{seed}@example.com"}


def _record(state: dict[str, Any], *, codec: str, revision: int,
            dictionary: zstandard.ZstdCompressionDict | None = None) -> bytes:
    prepared = prepare_state(state, max_history_messages=50, now=NOW)
    data = dump_json(prepared)
    return encode_record(prepared, data, compress_threshold_bytes=5120, codec=codec,
                         zstd_level=3, dictionary=dictionary, revision=revision)


def _record_without_revision(state: dict[str, Any]) -> bytes:
    """A codec-none record as written before revisions existed (twelve header fields)."""
    prepared = prepare_state(state, max_history_messages=50, now=NOW)
    head, tail = encode_record_parts(prepared, dump_json(prepared),
                                     compress_threshold_bytes=5120, codec=CODEC_NONE,
                                     zstd_level=3)
    return head[:-len(SEPARATOR)] + tail


def _legacy_state(seed: int, messages: int) -> dict[str, Any]:
    """A state of the old system: schema 0.9, ``urgency`` instead of ``urgency_level``."""
    state = fuzz_state(seed, messages)
    state["urgency"] = "high"
    return state


class Corpus:
    """The real records to mutate, and the dictionary keys to store beside them."""

    def __init__(self, records: dict[str, bytes], dictionary_keys: dict[str, bytes],
                 dictionary_ids: tuple[int, int]) -> None:
        self.records = records
        self.dictionary_keys = dictionary_keys
        self.dictionary_ids = dictionary_ids

    def __repr__(self) -> str:  # failure reports show the description, not 30 kB of bytes
        return f"Corpus({sorted(self.records)})"


RECORD_KINDS = ("none", "no_revision", "zstd", "zstd_dict")
LEGACY_KINDS = ("legacy_json", "legacy_gzip")
KINDS = RECORD_KINDS + LEGACY_KINDS


@pytest.fixture(scope="module")
def corpus(zstd_dictionaries: tuple[zstandard.ZstdCompressionDict,
                                    zstandard.ZstdCompressionDict]) -> Corpus:
    first, second = zstd_dictionaries
    small, large = fuzz_state(1, 6), fuzz_state(2, 60)
    records = {
        "none": _record(small, codec=CODEC_ZSTD, revision=3),  # under the threshold
        "no_revision": _record_without_revision(fuzz_state(3, 4)),
        "zstd": _record(large, codec=CODEC_ZSTD, revision=7),
        "zstd_dict": _record(fuzz_state(4, 60), codec=CODEC_ZSTD, revision=1,
                             dictionary=first),
        "legacy_json": pickle.dumps({"compressed": False,
                                     "data": json.dumps(_legacy_state(5, 5))}),
        "legacy_gzip": pickle.dumps({"compressed": True, "data": gzip.compress(
            json.dumps(_legacy_state(6, 60)).encode()).hex()}),
    }
    assert b"\x1fnone\x1f" in records["none"] and b"\x1fzstd\x1f0\x1f" in records["zstd"]
    assert f"\x1fzstd\x1f{first.dict_id()}\x1f".encode() in records["zstd_dict"]
    # Both dictionaries are stored, the first is current: a record naming the second
    # finds a dictionary, just not the one it was compressed with.
    dictionary_keys = {
        dicts.dictionary_key(PREFIX, first.dict_id()): first.as_bytes(),
        dicts.dictionary_key(PREFIX, second.dict_id()): second.as_bytes(),
        dicts.current_dictionary_key(PREFIX): str(first.dict_id()).encode(),
    }
    return Corpus(records, dictionary_keys, (first.dict_id(), second.dict_id()))


# planted values ---------------------------------------------------------------------

Description = tuple[Any, ...]


def _flip(raw: bytes, flips: tuple[tuple[int, int], ...]) -> bytes:
    out = bytearray(raw)
    for position, bit in flips:
        out[position % len(out)] ^= 1 << bit
    return bytes(out)


def _header_fields(raw: bytes) -> tuple[list[bytes], bytes]:
    end = raw.index(HEADER_END, 4)
    return raw[4:end].split(SEPARATOR), raw[end:]


def _with_field(raw: bytes, index: int, value: bytes | None) -> bytes:
    """The record with header field ``index`` replaced (appended past the end, or
    removed when ``value`` is None)."""
    fields, rest = _header_fields(raw)
    if value is None:
        del fields[index % len(fields)]
    elif index < len(fields):
        fields[index] = value
    else:
        fields.append(value)
    return MAGIC + SEPARATOR.join(fields) + rest


def build(description: Description, corpus: Corpus) -> bytes:
    """The bytes a description stands for (``corpus`` holds the real records).

    ``("raw", b)``: ``b`` as is. ``("flip", kind, ((position, bit), ...))``: the record of
    that kind with bits flipped (positions wrap around; no flips: the record as written).
    ``("truncate", kind, n)``: its first ``n % len`` bytes. ``("splice", a, b, i, j)``:
    the start of ``a`` up to ``i``, then ``b`` from ``j``. ``("field", kind, i, value)``:
    header field ``i`` replaced, appended or (value None) removed.
    ``("pickle", obj, protocol)``: ``pickle.dumps`` of ``obj``.
    """
    what = description[0]
    records = corpus.records
    if what == "raw":
        return bytes(description[1])
    if what == "flip":
        return _flip(records[description[1]], description[2])
    if what == "truncate":
        raw = records[description[1]]
        return raw[:description[2] % len(raw)]
    if what == "splice":
        first, second = records[description[1]], records[description[2]]
        return first[:description[3] % len(first)] + second[description[4] % len(second):]
    if what == "field":
        value = description[3]
        if isinstance(value, str):  # a placeholder for a dictionary id of the corpus
            value = str(corpus.dictionary_ids[value == "second_dictionary"]).encode()
        return _with_field(records[description[1]], description[2], value)
    if what == "pickle":
        return pickle.dumps(description[1], protocol=description[2])
    raise AssertionError(f"unknown description {description!r}")


kinds = hs.sampled_from(KINDS)
record_kinds = hs.sampled_from(RECORD_KINDS)
#: Mostly inside the header (about 90 bytes), sometimes anywhere in the payload.
positions = hs.one_of(hs.integers(0, 120), hs.integers(0, 20_000))

_FIELD_VALUES = (b"", b"0", b"1", b"-1", b"+1", b" 1", b"1 ", b"1_0", b"00", b"1.5", b"0x1f",
                 b"4294967296", b"9" * 12, b"9" * 13, b"9" * 20, b"none", b"zstd", b"zstd2",
                 b"NONE", b"\xff", b"\xc3", b"\xe9t\xc3\xa9", "first_dictionary",
                 "second_dictionary")
field_values = hs.one_of(hs.sampled_from(_FIELD_VALUES), hs.binary(max_size=12),
                         hs.none())

_JSON_TEXTS = (
    json.dumps(fuzz_state(9, 3)), json.dumps({**fuzz_state(9, 3), "state_version": "1.0"}),
    '{"conversation_history": 5}', '{"conversation_history": [1, "x", null]}',
    '{"objection_history": "price"}', '{"buyer_name": ' + '"x' * 300 + '"}',
    '{"score": NaN}', '{"score": Infinity}', '{"state_version": "0.1"}',
    '{"state_version": "9.0"}', '{"state_version": 1}', '{"state_version": null}',
    '{"urgency": "high", "urgency_level": "low"}', '[1, 2]', '"text"', "{", "",
    '{"a": {"b": {"c": [[[[[[[[[[]]]]]]]]]]}}}', "[" * 2000 + "]" * 2000,
)
json_texts = hs.one_of(hs.sampled_from(_JSON_TEXTS), hs.text(max_size=40))
legacy_data = hs.one_of(
    json_texts,
    json_texts.map(lambda text: gzip.compress(text.encode()).hex()),
    json_texts.map(lambda text: gzip.compress(text.encode())),
    json_texts.map(lambda text: gzip.compress(text.encode())[:-5].hex()),  # truncated gzip
    hs.binary(max_size=30), hs.integers(), hs.none(), hs.lists(hs.integers(), max_size=3),
)
plain_values = hs.recursive(
    hs.one_of(hs.none(), hs.booleans(), hs.integers(), hs.floats(), hs.text(max_size=8),
              hs.binary(max_size=8)),
    lambda inner: hs.one_of(hs.lists(inner, max_size=4),
                            hs.dictionaries(hs.text(max_size=6), inner, max_size=4),
                            hs.tuples(inner, inner)),
    max_leaves=12)
envelopes = hs.one_of(
    hs.fixed_dictionaries({"compressed": hs.one_of(hs.booleans(), hs.integers(0, 2),
                                                   hs.none(), hs.text(max_size=3)),
                           "data": legacy_data}),
    plain_values)

descriptions = hs.one_of(
    hs.tuples(hs.just("raw"), hs.one_of(
        hs.binary(max_size=400),
        hs.binary(max_size=300).map(lambda tail: MAGIC + tail),
        hs.binary(max_size=300).map(lambda tail: b"\x80" + tail),
        hs.sampled_from(sorted(HOSTILE_PICKLES.values())))),
    hs.tuples(hs.just("flip"), kinds,
              hs.lists(hs.tuples(positions, hs.integers(0, 7)), min_size=1, max_size=4)
              .map(tuple)),
    hs.tuples(hs.just("truncate"), kinds, positions),
    hs.tuples(hs.just("splice"), kinds, kinds, positions, positions),
    hs.tuples(hs.just("field"), record_kinds, hs.integers(0, 13), field_values),
    hs.tuples(hs.just("pickle"), envelopes, hs.integers(2, 5)),
)


def readable_examples(test: Any) -> Any:
    """The explicit examples every property runs: one of each kind, intact."""
    for kind in KINDS:
        test = example(description=("flip", kind, ()))(test)
    return test


def examples(*found: Description) -> Any:
    """Explicit examples that once failed (see the fixed bugs below)."""
    def decorate(test: Any) -> Any:
        for description in reversed(found):
            test = example(description=description)(test)
        return test
    return decorate


# Bugs the properties found in memory_core, fixed and kept as explicit examples. Each
# value is built from the corpus (``build``); the report in the test names the bytes.

#: The header is intact and consistent, the payload is not: a header-only scan listed
#: the key as ok although the bot finds no state in it. ``scan_summaries(verify=True)``
#: decodes every payload (an unknown codec is now refused by the header rules too).
PAYLOAD_UNREADABLE = (
    ("flip", "none", ((65, 0),)),  # the JSON's opening "{" became "z"
    ("flip", "zstd", ((110, 5),)),  # one bit inside the zstd frame
    ("field", "zstd", 1, b"zstd2"),  # an unknown codec name
    ("field", "zstd_dict", 2, "second_dictionary"),  # a stored, but the wrong, dictionary
)
#: The bot's header parser checked fewer fields than the inventory's and the operator
#: read's: the bot loaded these, the inventory said corrupt, and the dashboard said
#: "cannot be read ... the bot treats it as no saved state". All three now apply
#: :func:`memory_core.record.header_numbers`.
LAX_HEADER = (
    ("flip", "zstd_dict", ((57, 0),)),  # a 0x1f became 0x1e: 12 fields, read as pre-revision
    ("field", "none", 9, b"x"),  # the message count is not a number
    ("flip", "none", ((50, 4),)),  # the last interaction is b"!717243200"
)
#: Negative JSON size of a codec-none record: the bot and the operator read accepted it
#: (the size is never compared for codec none), the inventory called it corrupt.
NEGATIVE_SIZE = ("field", "none", 3, b"-1")
#: Schema version that is not UTF-8: the bot and the inventory accepted it, the operator
#: read (``parse_summary`` decodes it strictly) refused the record.
NON_UTF8_VERSION = ("field", "none", 0, b"\xff")
#: States ``load_state`` returned and ``update_state`` could never save (InvalidState,
#: so every update of that buyer returned None). The legacy reader now reads the old
#: system's NaN as None, and a state of a shape no save accepts is a corrupt record.
UNSAVABLE = (
    ("pickle", {"compressed": False, "data": '{"score": NaN}'}, 4),
    ("pickle", {"compressed": False, "data": '{"objection_history": "price"}'}, 4),
)


# the stores -------------------------------------------------------------------------

class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Stores:
    """The sync and asyncio memories and a raw client, all on the private redis-server."""

    def __init__(self, raw: redis.Redis, memory: SyncBuyerConversationMemory,
                 async_memory: BuyerConversationMemory, runner: asyncio.Runner,
                 corpus: Corpus, logs: _Collect) -> None:
        self.raw = raw
        self.memory = memory
        self.async_memory = async_memory
        self.runner = runner
        self.corpus = corpus
        self.logs = logs

    def __repr__(self) -> str:
        return "Stores(private redis-server)"

    def plant(self, description: Description) -> bytes:
        """A fresh database holding the dictionaries and the value at the buyer's key."""
        value = build(description, self.corpus)
        pipe = self.raw.pipeline(transaction=False)
        pipe.flushdb()
        for key, stored in self.corpus.dictionary_keys.items():
            pipe.set(key, stored)
        pipe.set(KEY, value)
        pipe.execute()
        self.logs.records.clear()
        return value

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)

    def unexpected_failures(self) -> list[str]:
        """Log lines of faults memory_core did not expect (logged with a stack trace)."""
        return [f"{r.getMessage()}: {r.exc_info[1]!r}" for r in self.logs.records
                if r.exc_info]


@pytest.fixture
def stores(real_redis_url: str, corpus: Corpus) -> Iterator[Stores]:
    logs = _Collect()
    logger = logging.getLogger("memory_core")
    logger.addHandler(logs)
    raw = redis.Redis.from_url(real_redis_url)
    memory = SyncBuyerConversationMemory.from_url(real_redis_url)
    with asyncio.Runner() as runner:
        async_memory = BuyerConversationMemory.from_url(real_redis_url)
        try:
            yield Stores(raw, memory, async_memory, runner, corpus, logs)
        finally:
            runner.run(async_memory.aclose())
            memory.close()
            raw.close()
            logger.removeHandler(logs)


def same(first: Any, second: Any) -> bool:
    """Equal, with NaN equal to NaN (the old system's JSON may hold NaN)."""
    return repr(first) == repr(second)


def check_loaded(state: object) -> None:
    assert state is None or isinstance(state, dict), type(state)
    if state is not None:
        revision = state[REVISION_FIELD]
        assert isinstance(revision, int) and not isinstance(revision, bool), revision


# (a) loads ---------------------------------------------------------------------------

@FUZZ
@given(description=descriptions)
@readable_examples
def test_load_never_raises_and_the_async_load_agrees(stores: Stores,
                                                      description: Description) -> None:
    stores.plant(description)
    loaded = stores.memory.load_state(CONTACT_ID)
    check_loaded(loaded)
    loaded_async = stores.run(stores.async_memory.load_state(CONTACT_ID))
    check_loaded(loaded_async)
    assert same(loaded, loaded_async)
    assert not stores.unexpected_failures()


def test_every_intact_record_of_the_corpus_loads(stores: Stores) -> None:
    """The mutations start from readable records (else the fuzz proves little)."""
    for kind in KINDS:
        stores.plant(("flip", kind, ()))  # no flips: the record as written
        loaded = stores.memory.load_state(CONTACT_ID)
        assert loaded is not None, kind
        assert loaded["buyer_persona"] == "investor"


# (b) updates -------------------------------------------------------------------------

def _touch(state: dict[str, Any]) -> dict[str, Any]:
    """What a bot's update does: change the state it is handed and return it."""
    return {**state, "fuzz_touched": True}


@FUZZ
@given(description=descriptions)
@readable_examples
def test_update_never_raises_and_leaves_a_readable_record(stores: Stores,
                                                          description: Description) -> None:
    stores.plant(description)
    before = stores.memory.load_state(CONTACT_ID)
    updated = stores.memory.update_state(CONTACT_ID, _touch)
    after = stores.memory.load_state(CONTACT_ID)
    assert after is not None, "the key holds no readable record after update_state"
    if before is None:  # nothing readable: the update starts fresh and replaces it
        assert updated is not None
    if updated is not None:
        assert same(after, updated)

    stores.plant(description)  # the asyncio memory, from the same planted value
    updated_async = stores.run(stores.async_memory.update_state(CONTACT_ID, _touch))
    after_async = stores.run(stores.async_memory.load_state(CONTACT_ID))
    assert after_async is not None
    assert (updated is None) == (updated_async is None)
    assert not stores.unexpected_failures()


@FUZZ
@given(description=descriptions)
@readable_examples
@examples(*UNSAVABLE)
def test_update_saves_every_state_that_loads(stores: Stores,
                                             description: Description) -> None:
    """A state the bot is handed by load_state, the bot can save back (else that buyer's
    memory is frozen: every update_state returns None)."""
    stores.plant(description)
    loaded = stores.memory.load_state(CONTACT_ID)
    if loaded is None:
        return  # (b) covers unreadable values
    updated = stores.memory.update_state(CONTACT_ID, _touch)
    assert updated is not None, "update_state refused to save the state load_state returned"
    assert updated["fuzz_touched"] is True


# (c) the inventory -------------------------------------------------------------------

def _inventory_row(stores: Stores) -> dict[str, Any]:
    frame = scan_summaries(stores.memory, verify=True)
    rows = frame[frame["contact_id"] == CONTACT_ID]
    assert len(rows) == 1, f"the key is listed {len(rows)} times"
    return rows.iloc[0].to_dict()


@FUZZ
@given(description=descriptions)
@readable_examples
@examples(*PAYLOAD_UNREADABLE)
def test_inventory_flags_every_value_that_does_not_load(stores: Stores,
                                                        description: Description) -> None:
    value = stores.plant(description)
    loaded = stores.memory.load_state(CONTACT_ID)
    row = _inventory_row(stores)
    if loaded is None and value:
        assert row["status"] != STATUS_OK, (
            "load_state finds no readable state, the inventory lists the key as ok")
        assert str(row["problem"]).strip()


@FUZZ
@given(description=descriptions)
@readable_examples
@examples(*LAX_HEADER, NEGATIVE_SIZE)
def test_inventory_lists_every_value_that_loads_as_ok_or_legacy(
        stores: Stores, description: Description) -> None:
    stores.plant(description)
    loaded = stores.memory.load_state(CONTACT_ID)
    row = _inventory_row(stores)
    if loaded is not None:
        assert row["status"] in (STATUS_OK, STATUS_LEGACY), (
            f"load_state reads the state, the inventory says {row['status']}: "
            f"{row['problem']}")


# (d) the operator read ---------------------------------------------------------------

@FUZZ
@given(description=descriptions)
@readable_examples
def test_operator_read_returns_a_record_or_raises_corrupt_record(
        stores: Stores, description: Description) -> None:
    value = stores.plant(description)
    try:
        record = stores.memory.read_record(CONTACT_ID)
    except CorruptRecord as exc:
        assert str(exc).strip()
        return
    if value:
        assert isinstance(record, StoredRecord)
    else:
        assert record is None


@FUZZ
@given(description=descriptions)
@readable_examples
@examples(*LAX_HEADER, NON_UTF8_VERSION)
def test_operator_read_and_load_agree_on_what_is_readable(
        stores: Stores, description: Description) -> None:
    stores.plant(description)
    loaded = stores.memory.load_state(CONTACT_ID)
    try:
        record: StoredRecord | None = stores.memory.read_record(CONTACT_ID)
    except CorruptRecord as exc:
        assert loaded is None, f"load_state reads it, the operator read refuses: {exc}"
        return
    if loaded is None:
        assert record is None, "the operator read shows a state load_state does not find"
    else:
        assert record is not None and same(record.state, loaded)


# the dashboard -----------------------------------------------------------------------

@pytest.fixture
def dashboard_on(real_redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The dashboard pointed at the private Redis, with fresh Streamlit caches."""
    for name in list(os.environ):
        # MEMORY_DASHBOARD_*: a developer's passwords would put the pages behind sign-in
        if name.startswith(("MEMORY_CORE_", "MEMORY_DASHBOARD_")) or name in (
                "REDIS_URL", READ_ONLY_ENV, ALLOW_SEEDING_ENV):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_URL", real_redis_url)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield real_redis_url
    st.cache_data.clear()
    st.cache_resource.clear()


def test_buyer_page_shows_an_error_for_the_nastiest_values(
        dashboard_on: str, corpus: Corpus) -> None:
    zstd = corpus.records["zstd"]
    header_bytes = zstd.index(HEADER_END) + 1
    planted = {
        "flipped-zstd": _flip(zstd, ((header_bytes + 40, 5),)),
        "flipped-zstd-dict": _flip(corpus.records["zstd_dict"], ((header_bytes + 300, 0),)),
        "truncated": zstd[:len(zstd) // 2],
        "not-a-record": b"\x00\x1b[2J\x1b]0;owned\x07 **bold** <script>alert(1)</script>",
        "hostile-pickle": HOSTILE_PICKLES["os.system via REDUCE"],
        "memo-bomb": HOSTILE_PICKLES["memo index 2**31"],
    }
    raw = redis.Redis.from_url(dashboard_on)
    try:
        raw.mset(corpus.dictionary_keys)
        raw.mset({f"{PREFIX}:{contact_id}": value for contact_id, value in planted.items()})
    finally:
        raw.close()

    for contact_id in planted:
        at = AppTest.from_file(APP, default_timeout=60)
        at.secrets["dashboard_tests"] = "isolated"  # no developer secrets.toml
        at.query_params["contact_id"] = contact_id
        at.run()
        at.switch_page(BUYER_PAGE)
        at.run()
        assert not at.exception, (contact_id, [e.value for e in at.exception])
        errors = [e.value for e in at.error]
        assert any("cannot be read" in text for text in errors), (contact_id, errors)
        assert not at.chat_message, contact_id
        for text in errors:
            assert "\x1b" not in text and "<script>" not in text, (contact_id, text)
    assert not PWNED_MARKER.exists(), "the hostile pickle ran code"
