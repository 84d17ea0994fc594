"""Unit tests of memory_core.seeding: deterministic, realistic synthetic buyers (no Redis)."""

from __future__ import annotations

import itertools
import math
import random
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from memory_core.errors import InvalidState
from memory_core.seeding import (
    EMAIL_DOMAINS,
    FINANCING_STATUSES,
    INTERACTION_SPREAD_DAYS,
    JOURNEY_STAGES,
    MIN_REMAINING_TTL_SECONDS,
    PERSONAS,
    PROPERTY_TYPES,
    QUALIFICATION_STEPS,
    REFERENCE_TIME,
    URGENCY_LEVELS,
    SeedBuyer,
    SeedOptions,
    check_id_prefix,
    generate_buyers,
    generate_state,
)
from memory_core.state import (
    QA_SEED_FIELD,
    STATE_DEFAULTS,
    TEMPERATURES,
    dump_json,
    parse_timestamp,
    prepare_state,
    validate_contact_id,
)

NOW = datetime(2025, 6, 1, 12, 0, 30, 250_000, tzinfo=UTC)
PHONE = re.compile(r"^\+1-555-0\d{2}-\d{4}$")


@pytest.fixture(scope="module")
def sample() -> list[SeedBuyer]:
    """200 buyers with the default options: the shape benchmarks and QA will see."""
    return list(generate_buyers(SeedOptions(count=200, seed=11), now=NOW))


@pytest.fixture(scope="module")
def many() -> list[SeedBuyer]:
    """2000 buyers with short chats, for distribution checks (fast to generate)."""
    return list(generate_buyers(SeedOptions(count=2000, seed=5, history_range=(2, 6)),
                                now=NOW))


def _as_tuples(buyers: Iterator[SeedBuyer] | list[SeedBuyer]) -> list[tuple[Any, ...]]:
    return [b.as_save_item() for b in buyers]


def _json_size(state: dict[str, Any]) -> int:
    return len(orjson.dumps(state))


# determinism --------------------------------------------------------------------------

def test_same_options_and_now_give_identical_buyers() -> None:
    options = SeedOptions(count=25, seed=42, ttl_days_range=(7, 60))
    first = _as_tuples(generate_buyers(options, now=NOW))
    second = _as_tuples(generate_buyers(options, now=NOW))
    assert first == second
    assert orjson.dumps([s for _, s, _, _ in first]) == orjson.dumps([s for _, s, _, _ in second])


def test_different_seed_gives_different_buyers() -> None:
    one = list(generate_buyers(SeedOptions(count=10, seed=1), now=NOW))
    two = list(generate_buyers(SeedOptions(count=10, seed=2), now=NOW))
    assert {b.contact_id for b in one}.isdisjoint(b.contact_id for b in two)
    assert [b.state for b in one] != [b.state for b in two]
    contents_one = {m["content"] for b in one for m in b.state["conversation_history"]}
    contents_two = {m["content"] for b in two for m in b.state["conversation_history"]}
    assert len(contents_one & contents_two) < 0.1 * min(len(contents_one), len(contents_two))


def test_later_now_moves_times_but_not_content() -> None:
    options = SeedOptions(count=8, seed=3)
    early = list(generate_buyers(options, now=NOW))
    late = list(generate_buyers(options, now=NOW + timedelta(days=1)))
    for a, b in zip(early, late, strict=True):
        assert b.interaction_time - a.interaction_time == timedelta(days=1)
        assert [m["content"] for m in a.state["conversation_history"]] == [
            m["content"] for m in b.state["conversation_history"]]
        for ma, mb in zip(a.state["conversation_history"], b.state["conversation_history"],
                          strict=True):
            shift = parse_timestamp(mb["timestamp"]) - parse_timestamp(ma["timestamp"])
            assert shift == timedelta(days=1)


def test_global_random_is_neither_used_nor_disturbed() -> None:
    options = SeedOptions(count=5, seed=9)
    random.seed(1)
    expected_next = random.random()
    random.seed(1)
    first = _as_tuples(generate_buyers(options, now=NOW))
    assert random.random() == expected_next
    random.seed(12345)
    assert _as_tuples(generate_buyers(options, now=NOW)) == first


def test_generate_buyers_is_lazy_and_validates_up_front() -> None:
    buyers = generate_buyers(SeedOptions(count=1_000_000, seed=1), now=NOW)
    assert isinstance(buyers, Iterator)
    assert len(list(itertools.islice(buyers, 3))) == 3
    with pytest.raises(InvalidState, match="count"):
        generate_buyers(SeedOptions(count=0))  # raises at the call, not on first next()


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(InvalidState, match="now"):
        generate_buyers(SeedOptions(count=1), now=datetime(2025, 1, 1))


def test_now_defaults_to_current_time() -> None:
    before = datetime.now(UTC)
    buyer = next(generate_buyers(SeedOptions(count=1)))
    assert before - timedelta(days=45, seconds=1) <= buyer.interaction_time
    assert buyer.interaction_time <= datetime.now(UTC)


# ids, fields and values -----------------------------------------------------------------

def test_count_and_unique_valid_contact_ids(sample: list[SeedBuyer]) -> None:
    ids = [b.contact_id for b in sample]
    assert len(ids) == 200
    assert len(set(ids)) == 200
    assert ids[0] == "qa-11-000000"
    assert ids[-1] == "qa-11-000199"
    for contact_id in ids:
        assert validate_contact_id(contact_id) == contact_id


def test_custom_prefix_is_used() -> None:
    buyers = list(generate_buyers(SeedOptions(count=3, seed=7, id_prefix="demo/"), now=NOW))
    assert [b.contact_id for b in buyers] == ["demo/7-000000", "demo/7-000001",
                                              "demo/7-000002"]


def test_every_schema_field_is_filled_and_flagged(sample: list[SeedBuyer]) -> None:
    for buyer in sample:
        state = buyer.state
        assert set(state) == set(STATE_DEFAULTS) | {QA_SEED_FIELD}
        assert state[QA_SEED_FIELD] is True
        for field_name in STATE_DEFAULTS:
            assert state[field_name] is not None, field_name


def test_field_values_use_the_known_vocabularies(sample: list[SeedBuyer]) -> None:
    for buyer in sample:
        s = buyer.state
        for score in (s["financial_readiness_score"], s["buying_motivation_score"]):
            assert isinstance(score, float)
            assert 0.0 <= score <= 100.0
            assert round(score, 1) == score
        budget = s["budget_range"]
        assert set(budget) == {"min", "max", "currency"}
        assert budget["currency"] == "USD"
        assert isinstance(budget["min"], int) and isinstance(budget["max"], int)
        assert 0 < budget["min"] <= budget["max"]
        prefs = s["property_preferences"]
        assert set(prefs) == {"bedrooms", "bathrooms", "property_type", "neighborhoods",
                              "must_haves", "max_commute_minutes"}
        assert 1 <= prefs["bedrooms"] <= 6
        assert isinstance(prefs["bathrooms"], float) and prefs["bathrooms"] >= 1
        assert prefs["property_type"] in PROPERTY_TYPES
        assert 1 <= len(prefs["neighborhoods"]) <= 4
        assert 1 <= len(prefs["must_haves"]) <= 4
        assert 15 <= prefs["max_commute_minutes"] <= 60
        assert s["urgency_level"] in URGENCY_LEVELS
        assert s["financing_status"] in FINANCING_STATUSES
        assert s["current_qualification_step"] in QUALIFICATION_STEPS
        assert s["current_journey_stage"] in JOURNEY_STAGES
        assert s["buyer_persona"] in PERSONAS
        assert s["buyer_temperature"] in TEMPERATURES
        assert isinstance(s["is_qualified"], bool)
        assert 0 <= len(s["objection_history"]) <= 4
        for objection in s["objection_history"]:
            assert set(objection) == {"objection", "raised_at", "resolved"}
            assert isinstance(objection["objection"], str) and objection["objection"]
            assert parse_timestamp(objection["raised_at"]) is not None
            assert isinstance(objection["resolved"], bool)


def test_contact_details_are_fictional_and_varied(sample: list[SeedBuyer]) -> None:
    names, phones, emails = set(), set(), set()
    for buyer in sample:
        s = buyer.state
        assert len(s["buyer_name"].split(" ")) >= 2
        assert PHONE.match(s["buyer_phone"]), s["buyer_phone"]
        local, _, domain = s["buyer_email"].partition("@")
        assert domain in EMAIL_DOMAINS
        assert re.fullmatch(r"[a-z0-9._]+", local), s["buyer_email"]
        names.add(s["buyer_name"])
        phones.add(s["buyer_phone"])
        emails.add(s["buyer_email"])
    assert len(names) > 180
    assert len(phones) > 190
    assert len(emails) > 180
    assert len({e.partition("@")[2] for e in emails}) >= 5


def test_states_are_plain_json(sample: list[SeedBuyer]) -> None:
    def check(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str)
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)
        elif isinstance(value, float):
            assert math.isfinite(value)
        else:
            assert value is None or isinstance(value, str | int | bool)

    for buyer in sample:
        check(buyer.state)
        assert orjson.loads(orjson.dumps(buyer.state)) == buyer.state


def test_states_pass_prepare_state(sample: list[SeedBuyer]) -> None:
    for buyer in sample:
        prepared = prepare_state(buyer.state, max_history_messages=50,
                                 now=buyer.interaction_time)
        assert len(prepared["conversation_history"]) <= 50
        assert prepared[QA_SEED_FIELD] is True
        dump_json(prepared)


# history --------------------------------------------------------------------------------

def test_history_lengths_stay_in_range() -> None:
    options = SeedOptions(count=300, seed=4, history_range=(5, 9))
    lengths = [len(b.state["conversation_history"]) for b in generate_buyers(options, now=NOW)]
    assert min(lengths) >= 5
    assert max(lengths) <= 9
    assert set(lengths) == {5, 6, 7, 8, 9}


def test_fixed_history_length() -> None:
    options = SeedOptions(count=20, seed=4, history_range=(1, 1))
    assert {len(b.state["conversation_history"]) for b in generate_buyers(options, now=NOW)
            } == {1}


def test_default_history_length_centres_near_forty(sample: list[SeedBuyer]) -> None:
    lengths = [len(b.state["conversation_history"]) for b in sample]
    assert min(lengths) >= 2
    assert max(lengths) <= 80
    assert 36 <= statistics.mean(lengths) <= 47


def test_messages_are_well_formed_and_ordered(sample: list[SeedBuyer]) -> None:
    roles = Counter()
    same_role_pairs = 0
    pairs = 0
    for buyer in sample:
        history = buyer.state["conversation_history"]
        times = []
        for message in history:
            assert set(message) == {"role", "content", "timestamp"}
            assert message["role"] in ("user", "assistant")
            assert isinstance(message["content"], str) and message["content"].strip()
            stamp = parse_timestamp(message["timestamp"])
            assert stamp is not None and stamp.utcoffset() == timedelta(0)
            times.append(stamp)
            roles[message["role"]] += 1
        assert times == sorted(times)
        assert times[-1] <= buyer.interaction_time
        assert buyer.interaction_time - times[-1] < timedelta(seconds=1)
        pairs += len(history) - 1
        same_role_pairs += sum(a["role"] == b["role"] for a, b in itertools.pairwise(history))
    assert 0.4 < roles["user"] / sum(roles.values()) < 0.6
    assert same_role_pairs / pairs < 0.15  # mostly alternating


def test_message_lengths_are_chat_like(sample: list[SeedBuyer]) -> None:
    by_role: dict[str, list[int]] = {"user": [], "assistant": []}
    for buyer in sample:
        for message in buyer.state["conversation_history"]:
            by_role[message["role"]].append(len(message["content"]))
    overall = statistics.mean(by_role["user"] + by_role["assistant"])
    assert 80 <= overall <= 200
    assert statistics.mean(by_role["assistant"]) > 1.3 * statistics.mean(by_role["user"])


def test_vocabulary_is_varied(sample: list[SeedBuyer]) -> None:
    contents = [m["content"] for b in sample for m in b.state["conversation_history"]]
    assert len(set(contents)) / len(contents) > 0.95
    words = Counter(w.lower() for text in contents for w in re.findall(r"[A-Za-z']+", text))
    assert len(words) > 1500
    numbers = {n for text in contents for n in re.findall(r"\$[\d,.]+[kKM]?", text)}
    assert len(numbers) > 500  # concrete, varied dollar amounts


def test_chat_mentions_real_estate_topics(sample: list[SeedBuyer]) -> None:
    text = " ".join(m["content"].lower() for b in sample
                    for m in b.state["conversation_history"])
    for term in ("pre-approv", "down payment", "hoa", "inspection", "open house", "rate",
                 "bedroom", "commute", "school", "offer", "closing", "budget", "garage"):
        assert term in text, term


def test_json_size_matches_the_benchmark_band(sample: list[SeedBuyer]) -> None:
    sizes = [_json_size(b.state) for b in sample]
    assert 6_000 <= statistics.mean(sizes) <= 12_000
    assert sum(size > 5120 for size in sizes) / len(sizes) >= 0.3
    assert min(sizes) < 4_000  # short chats exist too


# distributions --------------------------------------------------------------------------

def test_temperature_mix_is_roughly_respected(many: list[SeedBuyer]) -> None:
    counts = Counter(b.state["buyer_temperature"] for b in many)
    for temperature, weight in zip(TEMPERATURES, (0.2, 0.45, 0.35), strict=True):
        assert abs(counts[temperature] / len(many) - weight) < 0.04, counts


def test_custom_temperature_mix() -> None:
    only_cold = generate_buyers(SeedOptions(count=50, seed=1, temperature_mix=(0, 0, 1),
                                            history_range=(2, 4)), now=NOW)
    assert {b.state["buyer_temperature"] for b in only_cold} == {"cold"}
    hot_heavy = list(generate_buyers(SeedOptions(count=400, seed=1, temperature_mix=(8, 1, 1),
                                                 history_range=(2, 4)), now=NOW))
    share = sum(b.state["buyer_temperature"] == "hot" for b in hot_heavy) / len(hot_heavy)
    assert 0.72 < share < 0.88


def test_scores_and_qualification_follow_temperature(many: list[SeedBuyer]) -> None:
    def mean_of(field_name: str, temperature: str) -> float:
        return statistics.mean(float(b.state[field_name]) for b in many
                               if b.state["buyer_temperature"] == temperature)

    for field_name in ("financial_readiness_score", "buying_motivation_score",
                       "is_qualified"):
        assert mean_of(field_name, "hot") > mean_of(field_name, "warm") > mean_of(
            field_name, "cold"), field_name
    complete = [b.state["is_qualified"] for b in many
                if b.state["current_qualification_step"] == "complete"]
    first_step = [b.state["is_qualified"] for b in many
                  if b.state["current_qualification_step"] == "budget"]
    assert statistics.mean(complete) > 0.7 > 0.1 > statistics.mean(first_step)


def test_interaction_times_spread_over_45_days(many: list[SeedBuyer]) -> None:
    ages = [NOW - b.interaction_time for b in many]
    assert all(b.interaction_time.tzinfo is not None for b in many)
    assert all(b.interaction_time.utcoffset() == timedelta(0) for b in many)
    assert min(ages) >= timedelta(0)
    assert max(ages) <= timedelta(days=45)
    assert max(ages) > timedelta(days=35)
    assert min(ages) < timedelta(days=2)


def test_ttl_defaults_to_store_ttl(sample: list[SeedBuyer]) -> None:
    assert {b.ttl_seconds for b in sample} == {None}
    assert {b.as_save_item()[2] for b in sample} == {None}  # the store's, from the write


def test_ttl_days_range_becomes_whole_days_in_seconds() -> None:
    buyers = list(generate_buyers(SeedOptions(count=300, seed=2, ttl_days_range=(7, 10),
                                              history_range=(2, 4)), now=NOW))
    assert {b.ttl_seconds for b in buyers} == {d * 86_400 for d in range(7, 11)}


def test_as_save_item_matches_save_many_tuple(sample: list[SeedBuyer]) -> None:
    buyer = sample[0]
    assert buyer.as_save_item() == (buyer.contact_id, buyer.state, buyer.ttl_seconds,
                                    buyer.interaction_time)


# remaining TTL: as if the bot had saved the buyer at its last interaction ---------------

DAY = 86_400


def buyer_seen(days_ago: float, ttl_days: int | None) -> SeedBuyer:
    return SeedBuyer(contact_id="qa-x", state={}, interaction_time=NOW - timedelta(days=days_ago),
                     ttl_seconds=None if ttl_days is None else ttl_days * DAY,
                     generated_at=NOW)


def test_a_buyer_seen_20_days_ago_with_a_30_day_ttl_has_10_days_left() -> None:
    assert buyer_seen(20, 30).remaining_ttl_seconds() == 10 * DAY
    assert buyer_seen(20, None).remaining_ttl_seconds(30 * DAY) == 10 * DAY
    assert buyer_seen(20, 30).as_save_item()[2] == 10 * DAY
    assert buyer_seen(0, 30).remaining_ttl_seconds() == 30 * DAY


def test_a_seed_older_than_its_ttl_still_gets_an_hour() -> None:
    assert buyer_seen(40, 30).remaining_ttl_seconds() == MIN_REMAINING_TTL_SECONDS == 3600
    assert buyer_seen(40, None).as_save_item(30 * DAY)[2] == 3600
    assert buyer_seen(40, None).as_save_item()[2] is None  # the store's TTL, unknown here


def test_with_a_ttl_range_every_buyer_was_seen_within_its_ttl() -> None:
    options = SeedOptions(count=600, seed=4, ttl_days_range=(1, 60), history_range=(2, 4))
    buyers = list(generate_buyers(options, now=NOW))
    for buyer in buyers:
        assert buyer.ttl_seconds is not None and buyer.generated_at == NOW
        age = (NOW - buyer.interaction_time).total_seconds()
        left = buyer.as_save_item()[2]
        assert left == buyer.ttl_seconds - int(age)  # exactly what a save then would leave
        assert MIN_REMAINING_TTL_SECONDS <= left <= buyer.ttl_seconds
        assert age <= INTERACTION_SPREAD_DAYS * DAY
    # the ages still spread over weeks, so the expiry charts look like a real store
    lefts = [b.as_save_item()[2] / DAY for b in buyers]
    assert min(lefts) < 1 and max(lefts) > 45
    assert len({round(x) for x in lefts}) > 30


def test_remaining_ttls_are_deterministic_for_a_seed() -> None:
    options = SeedOptions(count=50, seed=8, ttl_days_range=(30, 30))
    first = [b.as_save_item() for b in generate_buyers(options, now=NOW)]
    assert first == [b.as_save_item() for b in generate_buyers(options, now=NOW)]
    assert len({ttl for _, _, ttl, _ in first}) > 40  # each buyer its own age


# generate_state -------------------------------------------------------------------------

def test_generate_state_is_deterministic_for_an_rng() -> None:
    first = generate_state(random.Random(77))
    second = generate_state(random.Random(77))
    assert first == second
    assert QA_SEED_FIELD not in first
    assert set(first) == set(STATE_DEFAULTS)
    assert generate_state(random.Random(78)) != first


def test_generate_state_honours_its_arguments() -> None:
    rng = random.Random(5)
    for temperature in TEMPERATURES:
        state = generate_state(rng, temperature=temperature, message_count=7)
        assert state["buyer_temperature"] == temperature
        assert len(state["conversation_history"]) == 7
        assert state["conversation_history"][-1]["timestamp"] == REFERENCE_TIME.isoformat()
    empty = generate_state(rng, message_count=0)
    assert empty["conversation_history"] == []
    assert empty["objection_history"] == []
    ends_at = datetime(2024, 3, 2, 8, 15, tzinfo=UTC)
    state = generate_state(rng, message_count=3, ends_at=ends_at)
    assert state["conversation_history"][-1]["timestamp"] == ends_at.isoformat()


@pytest.mark.parametrize("kwargs", [
    {"temperature": "lukewarm"},
    {"message_count": -1},
    {"message_count": 2.5},
    {"message_count": True},
    {"ends_at": datetime(2025, 1, 1)},
])
def test_generate_state_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidState):
        generate_state(random.Random(0), **kwargs)


# SeedOptions.validate -------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "field_name"), [
    ({"count": 0}, "count"),
    ({"count": -5}, "count"),
    ({"count": 1_000_001}, "count"),
    ({"count": 2.0}, "count"),
    ({"count": True}, "count"),
    ({"seed": "abc"}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"temperature_mix": (-0.1, 0.5, 0.6)}, "temperature_mix"),
    ({"temperature_mix": (0, 0, 0)}, "temperature_mix"),
    ({"temperature_mix": (0.5, 0.5)}, "temperature_mix"),
    ({"temperature_mix": (math.nan, 1, 1)}, "temperature_mix"),
    ({"temperature_mix": (math.inf, 1, 1)}, "temperature_mix"),
    ({"temperature_mix": ("1", 1, 1)}, "temperature_mix"),
    ({"history_range": (0, 10)}, "history_range"),
    ({"history_range": (10, 5)}, "history_range"),
    ({"history_range": (1, 501)}, "history_range"),
    ({"history_range": (3,)}, "history_range"),
    ({"history_range": (1.0, 5)}, "history_range"),
    ({"history_range": None}, "history_range"),
    ({"ttl_days_range": (0, 30)}, "ttl_days_range"),
    ({"ttl_days_range": (30, 7)}, "ttl_days_range"),
    ({"ttl_days_range": (1, 3651)}, "ttl_days_range"),
    ({"ttl_days_range": (7, 30, 90)}, "ttl_days_range"),
    ({"ttl_days_range": 30}, "ttl_days_range"),
    ({"id_prefix": "qa seed-"}, "id_prefix"),
    ({"id_prefix": "x" * 300}, "id_prefix"),
    ({"id_prefix": "tab\t"}, "id_prefix"),
    ({"id_prefix": 7}, "id_prefix"),
])
def test_validate_rejects_bad_options(changes: dict[str, Any], field_name: str) -> None:
    options = SeedOptions(**{"count": 10, **changes})
    with pytest.raises(InvalidState, match=field_name):
        options.validate()


@pytest.mark.parametrize("changes", [
    {"count": 1},
    {"count": 1_000_000},
    {"seed": -3},
    {"temperature_mix": (0, 0, 1)},
    {"temperature_mix": (1, 2, 3)},
    {"history_range": (1, 1)},
    {"history_range": (500, 500)},
    {"ttl_days_range": (1, 3650)},
    {"ttl_days_range": (30, 30)},
    {"id_prefix": ""},
])
def test_validate_accepts_edge_options(changes: dict[str, Any]) -> None:
    SeedOptions(**{"count": 10, **changes}).validate()


def test_a_bad_id_prefix_is_named_itself_not_as_a_masked_contact_id() -> None:
    """Once: "id_prefix='bad prefix ' makes invalid contact ids: contact_id 'bad prefix
    ***-0002' ...", the seed and number masked as if they were a phone number."""
    with pytest.raises(InvalidState) as excinfo:
        SeedOptions(count=3, id_prefix="bad prefix ").validate()
    message = str(excinfo.value)
    assert message.startswith("id_prefix 'bad prefix ' contains a space or a control "
                              "character")
    assert "***" not in message and "000002" not in message


@pytest.mark.parametrize(("prefix", "shown"), [
    ("tab\t", "'tab\\x09'"), ("nl\n", "'nl\\x0a'"), ("esc\x1b[2J", "'esc\\x1b[2J'"),
    ("nbsp\u00a0", "'nbsp\\xa0'"), ("bidi\u202e", "'bidi\\u202e'"),
    ("y " * 30, "'" + "y " * 20 + "…'"),
])
def test_a_bad_id_prefix_is_shown_escaped_and_cut(prefix: str, shown: str) -> None:
    with pytest.raises(InvalidState) as excinfo:
        check_id_prefix(prefix, name="--id-prefix")
    message = str(excinfo.value)
    assert message.startswith(f"--id-prefix {shown} contains a space or a control character")
    assert message.isprintable()


def test_an_empty_id_prefix_is_refused_where_asked() -> None:
    assert check_id_prefix("") == ""  # the library default: SeedOptions(id_prefix="") is valid
    with pytest.raises(InvalidState, match=r"--id-prefix is empty: .* look like real contact"):
        check_id_prefix("", name="--id-prefix", allow_empty=False)
    assert check_id_prefix("qa-", allow_empty=False) == "qa-"
