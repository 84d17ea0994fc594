"""The state as the bot sees it: contact ids, defaults, trimming, JSON safety, masking."""

from __future__ import annotations

import copy
import math
import random
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
import redis

from memory_core import SyncBuyerConversationMemory
from memory_core.errors import InvalidContactId, InvalidState
from memory_core.state import (
    MAX_CONTACT_ID_LENGTH,
    MAX_NAME_FORMS,
    PII_FIELDS,
    PII_MAX_CHARS,
    STATE_DEFAULTS,
    STATE_VERSION,
    dump_json,
    mask_pii,
    mask_text,
    parse_timestamp,
    prepare_state,
    validate_contact_id,
)

NOW = datetime(2024, 6, 1, 12, 30, 0, tzinfo=UTC)


def prepare(state: object, max_history_messages: int = 50,
            now: datetime = NOW) -> dict[str, Any]:
    return prepare_state(state, max_history_messages=max_history_messages, now=now)


# contact ids ----------------------------------------------------------------------------

@pytest.mark.parametrize("contact_id", [
    "abc123", "ghl_contact_9f8e7d", "x" * MAX_CONTACT_ID_LENGTH, "contact:with:colons",
    "ñandú-42", "a",
])
def test_valid_contact_ids_are_returned(contact_id: str) -> None:
    assert validate_contact_id(contact_id) == contact_id


@pytest.mark.parametrize(("contact_id", "fragment"), [
    ("", "empty"),
    ("x" * (MAX_CONTACT_ID_LENGTH + 1), "257 characters"),
    ("has space", "whitespace"),
    (" leading", "whitespace"),
    ("trailing\n", "whitespace"),
    ("tab\there", "whitespace"),
    ("nul\x00byte", "control"),
    ("bell\x07", "control"),
    ("del\x7f", "control"),
    ("zero\u200bwidth", "control"),
])
def test_invalid_contact_ids_are_refused(contact_id: str, fragment: str) -> None:
    with pytest.raises(InvalidContactId, match=fragment):
        validate_contact_id(contact_id)


@pytest.mark.parametrize("contact_id", [None, 123, b"bytes-id", ["a"], 1.5])
def test_non_string_contact_ids_are_refused(contact_id: object) -> None:
    with pytest.raises(InvalidContactId, match="must be a string"):
        validate_contact_id(contact_id)


# prepare_state ----------------------------------------------------------------------------

def test_empty_state_gets_every_default() -> None:
    prepared = prepare({})
    for name, default in STATE_DEFAULTS.items():
        assert prepared[name] == default, name
    assert prepared["state_version"] == STATE_VERSION == "1.0"
    assert prepared["last_interaction_timestamp"] == "2024-06-01T12:30:00+00:00"


def test_defaults_are_not_shared_between_states(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bot that appends to a fresh state's lists must not change the next buyer's state."""
    # Fresh default lists for this test, so a failure here cannot leak into other tests.
    monkeypatch.setitem(STATE_DEFAULTS, "objection_history", [])
    monkeypatch.setitem(STATE_DEFAULTS, "conversation_history", [])
    first = prepare({})
    first["objection_history"].append("price")
    first["conversation_history"].append({"role": "user"})
    second = prepare({})
    assert second["objection_history"] == []
    assert second["conversation_history"] == []
    assert STATE_DEFAULTS["objection_history"] == []


def test_given_values_and_extra_fields_are_kept() -> None:
    state = {"buyer_temperature": "hot", "financial_readiness_score": 72.5,
             "custom_crm_field": {"agent": "Jorge", "tags": ["vip"]}, "is_qualified": True}
    prepared = prepare(state)
    assert prepared["buyer_temperature"] == "hot"
    assert prepared["financial_readiness_score"] == 72.5
    assert prepared["custom_crm_field"] == {"agent": "Jorge", "tags": ["vip"]}
    assert prepared["is_qualified"] is True
    assert prepared["urgency_level"] == "unknown"


def test_history_is_trimmed_to_the_most_recent_messages() -> None:
    history = [{"role": "user", "content": f"message {i}"} for i in range(120)]
    prepared = prepare({"conversation_history": history}, max_history_messages=50)
    assert len(prepared["conversation_history"]) == 50
    assert prepared["conversation_history"][0]["content"] == "message 70"
    assert prepared["conversation_history"][-1]["content"] == "message 119"


def test_short_history_is_kept_whole_and_tuples_become_lists() -> None:
    history = ({"content": "a"}, {"content": "b"})
    prepared = prepare({"conversation_history": history}, max_history_messages=50)
    assert prepared["conversation_history"] == [{"content": "a"}, {"content": "b"}]


def test_none_histories_become_empty_lists() -> None:
    prepared = prepare({"conversation_history": None, "objection_history": None})
    assert prepared["conversation_history"] == []
    assert prepared["objection_history"] == []


@pytest.mark.parametrize("state", [
    {"conversation_history": "hello"},
    {"conversation_history": {"0": "hello"}},
    {"objection_history": "too expensive"},
])
def test_histories_that_are_not_lists_are_refused(state: dict[str, Any]) -> None:
    with pytest.raises(InvalidState, match="must be a list"):
        prepare(state)


def test_caller_dict_is_not_mutated() -> None:
    history = [{"role": "user", "content": f"m{i}"} for i in range(60)]
    state = {"conversation_history": history, "buyer_name": "Ana",
             "last_interaction_timestamp": "old", "state_version": "0.9"}
    before = copy.deepcopy(state)
    prepared = prepare(state, max_history_messages=10)
    assert state == before
    assert state["conversation_history"] is history
    assert len(history) == 60
    assert prepared is not state
    assert prepared["conversation_history"] is not history


def test_timestamp_is_utc_iso_and_version_is_current() -> None:
    eastern = timezone(timedelta(hours=-5))
    now = datetime(2024, 6, 1, 7, 30, tzinfo=eastern)
    prepared = prepare({"last_interaction_timestamp": "1999-01-01T00:00:00",
                        "state_version": "0.9"}, now=now)
    assert prepared["last_interaction_timestamp"] == "2024-06-01T12:30:00+00:00"
    assert datetime.fromisoformat(prepared["last_interaction_timestamp"]).utcoffset() \
        == timedelta(0)
    assert prepared["state_version"] == "1.0"


@pytest.mark.parametrize("state", [None, [], "state", 42, (("a", 1),)])
def test_state_that_is_not_a_dict_is_refused(state: object) -> None:
    with pytest.raises(InvalidState, match="state must be a dict"):
        prepare(state)


@pytest.mark.parametrize("state", [{1: "one"}, {("a", "b"): 1}, {None: 1}])
def test_non_string_keys_are_refused(state: dict[Any, Any]) -> None:
    with pytest.raises(InvalidState, match="keys must be strings"):
        prepare(state)


def test_non_string_keys_nested_are_refused_by_dump_json() -> None:
    prepared = prepare({"budget_range": {1: 100}})
    with pytest.raises(InvalidState):
        dump_json(prepared)


@pytest.mark.parametrize(("state", "where"), [
    ({"financial_readiness_score": math.nan}, "state.financial_readiness_score"),
    ({"financial_readiness_score": math.inf}, "state.financial_readiness_score"),
    ({"buying_motivation_score": -math.inf}, "state.buying_motivation_score"),
    ({"budget_range": {"min": 1.0, "max": math.inf}}, "state.budget_range.max"),
    ({"conversation_history": [{"role": "user", "score": math.nan}]},
     "state.conversation_history[0].score"),
    ({"deep": {"a": [1, {"b": (2.0, math.nan)}]}}, "state.deep.a[1].b[1]"),
])
def test_nan_and_infinity_are_refused_even_nested_and_named(state: dict[str, Any],
                                                            where: str) -> None:
    with pytest.raises(InvalidState, match="NaN or infinity") as refused:
        prepare(state)
    assert str(refused.value).startswith(f"{where} is ")


def test_datetime_values_become_iso_strings() -> None:
    moment = datetime(2024, 5, 1, 9, 15, tzinfo=UTC)
    prepared = prepare({"next_viewing": moment, "viewings": [moment]})
    loaded = orjson.loads(dump_json(prepared))
    assert loaded["next_viewing"] == "2024-05-01T09:15:00+00:00"
    assert loaded["viewings"] == ["2024-05-01T09:15:00+00:00"]
    assert parse_timestamp(loaded["next_viewing"]) == moment


class _Opaque:
    pass


@pytest.mark.parametrize(("value", "fragment"), [
    (_Opaque(), "_Opaque"),
    ({1, 2, 3}, "set"),
    (frozenset({"a"}), "frozenset"),
    (b"raw bytes", "bytes"),
    (object(), "object"),
])
def test_values_json_cannot_hold_are_refused(value: object, fragment: str) -> None:
    prepared = prepare({"extra": value})
    with pytest.raises(InvalidState, match=fragment):
        dump_json(prepared)


def test_dump_json_round_trips_a_prepared_state() -> None:
    prepared = prepare({"buyer_name": "Ana López", "budget_range": {"min": 1, "max": 2}})
    assert orjson.loads(dump_json(prepared)) == prepared


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-06-01T12:30:00+00:00", datetime(2024, 6, 1, 12, 30, tzinfo=UTC)),
    ("2024-06-01T12:30:00", datetime(2024, 6, 1, 12, 30, tzinfo=UTC)),
    ("not a time", None),
    (None, None),
    (1717245000, None),
])
def test_parse_timestamp(value: object, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected


# masking ----------------------------------------------------------------------------------

PII_EXAMPLES = {
    "buyer_name": "Jonathan Smithers",
    "buyer_phone": "+1 (555) 123-4567",
    "buyer_email": "jonathan.smithers@example.com",
}


def test_mask_pii_hides_name_phone_and_email() -> None:
    state = {**PII_EXAMPLES, "buyer_temperature": "hot", "conversation_history": []}
    masked = mask_pii(state)
    assert state == {**PII_EXAMPLES, "buyer_temperature": "hot",
                     "conversation_history": []}  # the input is not modified
    assert masked["buyer_temperature"] == "hot"
    for field_name, original in PII_EXAMPLES.items():
        assert original not in masked[field_name], field_name
    assert masked["buyer_name"] == "J*** S***"
    assert masked["buyer_phone"] == "***-4567"
    assert masked["buyer_email"] == "j***@example.com"
    blob = orjson.dumps(masked).decode()
    assert not any(original in blob for original in PII_EXAMPLES.values())


def test_mask_pii_leaves_missing_and_empty_values() -> None:
    masked = mask_pii({"buyer_name": None, "buyer_phone": "", "other": "Jonathan"})
    assert masked == {"buyer_name": None, "buyer_phone": "", "other": "Jonathan"}


@pytest.mark.parametrize(("value", "email"), [
    ("Jonathan Smithers", False),
    ("María José García", False),
    ("Ana", False),
    ("5551234567", False),
    ("+44 20 7946 0958", False),
    ("555-1234", False),
    ("jonathan@example.com", True),
    ("a.b@example.co.uk", True),
    ("no-at-sign-here", True),
])
def test_mask_text_never_contains_the_original(value: str, email: bool) -> None:
    masked = mask_text(value, email=email)
    assert value not in masked
    assert "***" in masked


@pytest.mark.parametrize("name", ["Ng", "Al"])
def test_mask_text_hides_short_names(name: str) -> None:
    """A CRM contact known only by a short first name or surname must not be shown whole."""
    assert name not in mask_text(name)
    assert name not in mask_pii({"buyer_name": name})["buyer_name"]


def test_mask_text_of_blank_value() -> None:
    assert mask_text("   ") == "***"


# PII caps and masking cost ------------------------------------------------------------
# A review found that an 18 KB buyer_name made mask_pii (CLI show, dashboard buyer page)
# take 50 s: every word became its own regex run over every message.

def _json_of_length(length: int) -> dict[str, str]:
    """A dict whose JSON text is exactly ``length`` characters."""
    value = {"n": "x" * (length - len('{"n":""}'))}
    assert len(orjson.dumps(value)) == length
    return value


def test_pii_caps_are_what_the_docs_say() -> None:
    assert PII_MAX_CHARS == {"buyer_name": 200, "buyer_phone": 64, "buyer_email": 254}
    assert set(PII_MAX_CHARS) == set(PII_FIELDS)


@pytest.mark.parametrize("field_name", PII_FIELDS)
def test_pii_values_at_the_limit_are_accepted(field_name: str) -> None:
    limit = PII_MAX_CHARS[field_name]
    assert prepare({field_name: "x" * limit})[field_name] == "x" * limit
    as_json = _json_of_length(limit)
    assert prepare({field_name: as_json})[field_name] == as_json


@pytest.mark.parametrize("field_name", PII_FIELDS)
def test_pii_strings_over_the_limit_are_refused_and_named(field_name: str) -> None:
    limit = PII_MAX_CHARS[field_name]
    with pytest.raises(InvalidState) as refused:
        prepare({field_name: "x" * (limit + 1)})
    message = str(refused.value)
    assert message.startswith(f"{field_name} is {limit + 1} characters long; "
                              f"the limit is {limit}.")
    assert "Store only" in message and "another field" in message


@pytest.mark.parametrize("field_name", PII_FIELDS)
@pytest.mark.parametrize("kind", ["dict", "list"])
def test_non_string_pii_is_bounded_by_its_json_length(field_name: str, kind: str) -> None:
    limit = PII_MAX_CHARS[field_name]
    value: object = _json_of_length(limit + 1)
    if kind == "list":
        value = [1] * (limit // 2)  # "[1,1,...]" is 2 characters per item, plus one
    length = len(orjson.dumps(value))
    assert length > limit
    with pytest.raises(InvalidState, match=rf"^{field_name} is {length} characters long "
                                           rf"as JSON \(a {kind}\); the limit is {limit}\."):
        prepare({field_name: value})


def test_small_non_string_pii_and_none_are_accepted() -> None:
    state = {"buyer_name": {"first": "Elena"}, "buyer_phone": 15551234567, "buyer_email": None}
    assert prepare(state)["buyer_phone"] == 15551234567


def test_a_state_with_an_oversized_name_writes_nothing(memory: SyncBuyerConversationMemory,
                                                       raw: redis.Redis) -> None:
    """prepare_state runs before any write: the stored record stays as it was."""
    assert memory.save_state("long-name", {"buyer_name": "Elena Garcia"}) is True
    before = raw.get("buyer_conversation_memory:long-name")
    assert memory.save_state("long-name", {"buyer_name": "Elena " * 3000}) is False
    assert memory.save_state("new-long-name", {"buyer_name": "Elena " * 3000}) is False
    assert raw.get("buyer_conversation_memory:long-name") == before
    assert raw.exists("buyer_conversation_memory:new-long-name") == 0


def _hostile_state(word_count: int) -> tuple[dict[str, Any], list[str]]:
    """A planted state: a name of ``word_count`` words, 50 messages of 4 KB repeating it."""
    rng = random.Random(word_count)
    words = ["".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(3, 8)))
             for _ in range(word_count)]
    name = " ".join(words)
    repeated = words[:MAX_NAME_FORMS]
    history = [{"role": "user", "content": " ".join(
        rng.choice(repeated + words[-10:]) for _ in range(700))[:4096]} for _ in range(50)]
    return {"buyer_name": name, "buyer_phone": "+1 (555) 123-4567 " + name,
            "buyer_email": name + "@example.com", "conversation_history": history}, repeated


@pytest.mark.timeout(10)
@pytest.mark.parametrize("word_count", [3_000, 100_000])
def test_masking_a_hostile_name_is_fast_and_still_masks_its_parts(word_count: int) -> None:
    state, repeated = _hostile_state(word_count)
    assert len(state["buyer_name"]) > 18_000
    masked = mask_pii(state)
    assert {masked[field_name] for field_name in PII_FIELDS} == {"***"}
    contents = " ".join(m["content"] for m in masked["conversation_history"])
    words_left = set(contents.lower().split())
    assert not words_left & {word.lower() for word in repeated}
    assert "***" in contents


@pytest.mark.timeout(10)
@pytest.mark.parametrize("field_name", PII_FIELDS)
def test_masking_a_megabyte_value_of_any_field_is_fast(field_name: str) -> None:
    value = "7" * 500_000 + "a" * 500_000
    history = [{"role": "user", "content": value[:4096]}, {"role": "user", "content": value}]
    masked = mask_pii({field_name: value, "conversation_history": history})
    assert masked[field_name] == "***"
    assert len(masked["conversation_history"]) == 2


@pytest.mark.timeout(10)
def test_mask_text_is_linear() -> None:
    assert mask_text("ab " * 300_000).startswith("a*** a***")
    assert mask_text("5" * 1_000_000) == "***-5555"
    assert mask_text("x" * 1_000_000 + "@example.com", email=True) == "x***@example.com"


# repeats in the transcript ---------------------------------------------------------------

def _masked_content(state: dict[str, Any], content: str) -> str:
    masked = mask_pii({**state, "conversation_history": [{"role": "user", "content": content}]})
    return str(masked["conversation_history"][0]["content"])


@pytest.mark.parametrize(("content", "expected"), [
    ("Thanks, Elena!", "Thanks, E***!"),
    ("ELENA GARCIA here", "E*** G*** here"),
    ("garcia", "G***"),
    ("Elenas and Garcias stay", "Elenas and Garcias stay"),  # word boundaries
    ("write to elena.garcia@Example.com", "write to E***@example.com"),  # email first
    ("call (555) 123-4567", "call ***-4567"),
    ("call +1 555.123.4567 now", "call ***-4567 now"),
    ("call 1234567", "call ***-4567"),
    ("ref 91234567 and 12345678", "ref 91234567 and 12345678"),  # other numbers
    ("nothing here", "nothing here"),
])
def test_mask_pii_masks_repeats_in_the_transcript(content: str, expected: str) -> None:
    state = {"buyer_name": "Elena Garcia", "buyer_phone": "+1-555-123-4567",
             "buyer_email": "Elena.Garcia@example.com"}
    assert _masked_content(state, content) == expected


def test_the_whole_name_is_masked_even_with_short_parts() -> None:
    """Short parts are masked only inside the whole name; longer overlapping forms win."""
    state = {"buyer_name": "Jo Al Lee"}
    assert _masked_content(state, "Hi Jo Al Lee, Jo and Al, Lee") == \
        "Hi J*** A*** L***, Jo and Al, L***"
    assert _masked_content({"buyer_name": "Mary Mary-Jane"}, "Mary-Jane") == "M***"


def test_every_part_of_a_name_within_the_cap_is_masked() -> None:
    parts = [f"P{i:02d}" for i in range(MAX_NAME_FORMS)]
    name = " ".join(parts)
    assert len(name) <= PII_MAX_CHARS["buyer_name"]
    assert _masked_content({"buyer_name": name}, " ".join(reversed(parts))) == \
        " ".join("P***" for _ in parts)


def test_odd_messages_keep_their_shape_and_any_text_in_them_is_masked() -> None:
    # a bare string in the history is still text a viewer would read: masked like the rest
    history: list[Any] = ["Elena", {"role": "user"}, {"content": 42}, None]
    masked = mask_pii({"buyer_name": "Elena", "conversation_history": history})
    assert masked["conversation_history"] == ["E***", {"role": "user"}, {"content": 42}, None]


# PII anywhere in the state ---------------------------------------------------------------
# A review found that a viewer's masked view (dashboard raw JSON, masked download, CLI
# show) still showed the buyer's email in objection_history and preference strings, any
# other phone or email in the transcript, and the parts of a hyphenated surname.

BUYER = {"buyer_name": "Ana Marquez-Lopez", "buyer_phone": "+1 (555) 123-4567",
         "buyer_email": "ana.ml@example.com"}
#: Everything below must be gone from the masked state, in any case.
SECRETS = ("Marquez", "Lopez", "ana.ml@", "123-4567", "5551234567", "bob@", "222-3333",
           "5550001234", "7946 0958", "carol.s@")


def _everywhere_state() -> dict[str, Any]:
    return {
        **BUYER,
        "objection_history": ["price", "email ana.ml@example.com first"],
        "property_preferences": "near the Lopez school; call5550001234",
        "budget_range": {"note": ["cc bob@x.org", {"deep": ["my wife: 555-222-3333"]}]},
        "notes": ("London office +44 20 7946 0958", 42, None, True, 1.5),
        "conversation_history": [
            {"role": "user", "content": "Ms. Marquez here. MARQUEZ-LOPEZ, Lopez here",
             "meta": {"forwarded_to": "Carol.S@agency.org"}},
            "ana.ml@example.com",
        ],
        "carol.s@agency.org": "the key stays",
    }


def test_masking_reaches_every_string_in_the_state_and_keeps_keys() -> None:
    state = _everywhere_state()
    before = copy.deepcopy(state)
    masked = mask_pii(state)
    assert state == before  # the input is not modified
    assert masked["objection_history"] == ["price", "email a***@example.com first"]
    assert masked["property_preferences"] == "near the L*** school; call***-1234"
    assert masked["budget_range"] == {"note": ["cc b***@x.org",
                                               {"deep": ["my wife: ***-3333"]}]}
    assert masked["notes"] == ["London office ***-0958", 42, None, True, 1.5]
    assert masked["conversation_history"][0] == {
        "role": "user", "content": "Ms. M*** here. M***, L*** here",
        "meta": {"forwarded_to": "C***@agency.org"}}
    assert masked["conversation_history"][1] == "a***@example.com"
    assert masked["carol.s@agency.org"] == "the key stays"  # keys are not masked
    del masked["carol.s@agency.org"]
    blob = orjson.dumps(masked).decode().lower()
    for secret in SECRETS:
        assert secret.lower() not in blob, secret


@pytest.mark.parametrize(("content", "expected"), [
    ("my wife's number is 555-222-3333", "my wife's number is ***-3333"),
    ("or (555) 222-3333, 555.222.3333, 1-555-222-3333", "or ***-3333, ***-3333, ***-3333"),
    ("call5550001234 today", "call***-1234 today"),
    ("ring 222-3333!", "ring ***-3333!"),
    ("UK: +44 20 7946 0958 or 020 7946 0958", "UK: ***-0958 or ***-0958"),
    ("cc bob@x.org, <Bob.Smith+home@mail.example.co.uk>",
     "cc b***@x.org, <B***@mail.example.co.uk>"),
    # what is no phone or email stays readable
    ("ref 91234567 on 2024/05/01 10:30, or 01/02/2024 10:30", None),
    ("$450,000 for 1,250 sq ft; HOA 250/mo; zip 90210-1234", None),
    ("meet @ 5pm; @@@ ; a@ ; @b", None),
])
def test_any_phone_or_email_in_any_text_is_masked(content: str, expected: str | None) -> None:
    masked = mask_pii({"buyer_name": "Elena Garcia", "property_preferences": content,
                       "conversation_history": [{"role": "user", "content": content}]})
    want = content if expected is None else expected
    assert masked["property_preferences"] == want
    assert masked["conversation_history"][0]["content"] == want


@pytest.mark.parametrize(("content", "expected"), [
    ("Ms. Marquez", "Ms. M***"),
    ("Lopez here", "L*** here"),
    ("ANA MARQUEZ-LOPEZ", "A*** M***"),
    ("marquez-lopez family", "M*** family"),
    ("the Lopez\u2010Marquez house", "the L***\u2010M*** house"),  # U+2010, reversed
])
def test_each_part_of_a_hyphenated_name_is_masked(content: str, expected: str) -> None:
    assert _masked_content({"buyer_name": "Ana Marquez-Lopez"}, content) == expected
    # a name written with the Unicode hyphen has the same parts
    assert _masked_content({"buyer_name": "Ana Marquez\u2010Lopez"}, "Lopez, Marquez") == \
        "L***, M***"


def test_masking_walks_nesting_deeper_than_the_recursion_limit() -> None:
    deep: Any = "call 555-222-3333"
    for _ in range(5_000):
        deep = [deep]
    masked = mask_pii({"buyer_name": "Elena", "extra": deep})["extra"]
    for _ in range(5_000):
        masked = masked[0]
    assert masked == "call ***-3333"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("text", [
    "5 / " * 250_000, "555-" * 250_000, "5" * 1_000_000, "0 " * 500_000, "+1 (5" * 200_000,
    "5555555 " * 125_000, "@@@@" * 250_000, "a@" * 500_000, "a." * 500_000 + "@",
    "a@" + "b." * 500_000, "x" * 1_000_000,
])
def test_the_generic_patterns_are_linear_over_a_megabyte(text: str) -> None:
    """A megabyte of digits and separators or of "@" anywhere in a planted state."""
    import time

    state = {**BUYER, "objection_history": [text],
             "conversation_history": [{"role": "user", "content": text}]}
    started = time.perf_counter()
    masked = mask_pii(state)
    assert time.perf_counter() - started < 5
    assert masked["buyer_email"] == "a***@example.com"


def test_cli_show_masks_pii_outside_the_transcript(real_redis_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from memory_core.cli import main as cli_main

    state = _everywhere_state()
    del state["carol.s@agency.org"]
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        assert memory.save_state("c-everywhere", state)
    for extra in ([], ["--json"]):
        assert cli_main(["--redis-url", real_redis_url, "show", "c-everywhere", *extra]) == 0
        out = capsys.readouterr().out.lower()
        if extra:  # the whole state, masked
            assert "a***@example.com" in out and "***-3333" in out
        else:  # a summary, then the transcript
            assert "m***" in out and "conversation" in out
        for secret in SECRETS:
            assert secret.lower() not in out, (extra, secret)
