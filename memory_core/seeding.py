"""Realistic synthetic buyer states, generated deterministically, for QA, demos and benchmarks.

Every buyer gets a coherent profile (persona, budget, neighbourhoods, lender, partner...)
and a conversation written from many small fragment pools whose slots are filled from
that profile and from fresh random numbers. The result reads like real buyer chat and,
importantly for the compression benchmarks, does not repeat one template: messages vary
in structure, vocabulary, numbers, casing and the occasional typo.

All randomness comes from the ``random.Random`` passed in (or seeded from
:class:`SeedOptions`), never from the global generator, so a given seed always yields the
same buyers. Nothing here talks to Redis; feed :meth:`SeedBuyer.as_save_item` tuples to
``SyncBuyerConversationMemory.save_many``.

The phrase tables (names, places, message templates, objections...) are package data,
``memory_core/data/seeding_*.json``, so that this module holds the logic alone. They are
read and compiled once, when the first buyer is generated (:func:`_tables`), not on
import: the CLI and the dashboard import this module just for :class:`SeedOptions`.
What a seed generates depends on every entry of every table and on its place, so any
edit there changes seeded buyers (and needs ``tests/fixtures/seeding`` regenerated).
"""

from __future__ import annotations

import math
import random
import re
import string
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import orjson

from memory_core.errors import InvalidContactId, InvalidState
from memory_core.safetext import printable
from memory_core.state import (
    QA_SEED_FIELD,
    TEMPERATURES,
    id_characters_ok,
    validate_contact_id,
)

T = TypeVar("T")

__all__ = [
    "DEFAULT_HISTORY_RANGE",
    "DEFAULT_TEMPERATURE_MIX",
    "MIN_REMAINING_TTL_SECONDS",
    "REFERENCE_TIME",
    "SeedBuyer",
    "SeedOptions",
    "generate_buyers",
    "generate_state",
]

DEFAULT_TEMPERATURE_MIX: tuple[float, float, float] = (0.2, 0.45, 0.35)
DEFAULT_HISTORY_RANGE: tuple[int, int] = (2, 80)
MAX_COUNT = 1_000_000
MAX_HISTORY_MESSAGES = 500
MAX_TTL_DAYS = 3650
#: Interaction times are spread over this many days before ``now``.
INTERACTION_SPREAD_DAYS = 45
#: The least TTL a seeded buyer is written with, whatever its age: seeds whose TTL would
#: have run out already stay an hour rather than vanish as they are written.
MIN_REMAINING_TTL_SECONDS = 3600
#: When :func:`generate_state` is not told when the chat ended, it ends here, so a state
#: depends on nothing but the random generator (reproducible benchmark corpora).
REFERENCE_TIME = datetime(2025, 1, 15, 17, 30, tzinfo=UTC)

URGENCY_LEVELS = ("immediate", "1-3 months", "3-6 months", "6+ months", "unknown")
FINANCING_STATUSES = ("pre-approved", "pre-qualified", "cash", "exploring", "unknown")
QUALIFICATION_STEPS = ("budget", "timeline", "financing", "preferences", "decision_makers",
                       "complete")
JOURNEY_STAGES = ("discovery", "searching", "touring", "offer", "under_contract", "closed")
PERSONAS = ("first_time_buyer", "move_up_buyer", "investor", "relocating_professional",
            "downsizer", "luxury_buyer")
PROPERTY_TYPES = ("single_family", "condo", "townhouse", "multi_family")

# ---------------------------------------------------------------------------------------
# How the conversation moves
# ---------------------------------------------------------------------------------------

#: topic -> (weight early, weight mid, weight late, minimum journey stage index). Topics
#: that belong to a later stage than the buyer has reached are down-weighted to 10%.
TOPIC_WEIGHTS: dict[str, tuple[float, float, float, int]] = {
    "greeting": (1.5, 0.2, 0.1, 0),
    "budget": (5.0, 1.5, 0.5, 0),
    "timeline": (4.0, 1.0, 0.5, 0),
    "financing": (4.0, 2.0, 1.0, 0),
    "preferences": (4.0, 3.0, 1.0, 0),
    "neighborhoods": (3.0, 3.0, 1.0, 0),
    "schools": (1.5, 2.0, 0.5, 0),
    "commute": (1.5, 2.0, 0.5, 0),
    "listings": (1.0, 4.0, 3.0, 1),
    "tours": (0.3, 3.0, 3.0, 1),
    "hoa": (0.3, 1.5, 1.0, 1),
    "inspection": (0.0, 0.5, 2.0, 3),
    "rates": (1.0, 2.0, 1.5, 0),
    "offer": (0.0, 0.8, 3.0, 3),
    "objection": (0.5, 1.5, 2.0, 0),
    "decision": (0.5, 1.0, 2.0, 1),
    "closing": (0.0, 0.2, 2.5, 4),
    "persona": (2.0, 2.0, 1.0, 0),
    "logistics": (1.0, 1.5, 1.5, 0),
}
TOPICS = tuple(TOPIC_WEIGHTS)

#: Per temperature: weights over URGENCY_LEVELS, FINANCING_STATUSES, QUALIFICATION_STEPS,
#: JOURNEY_STAGES, the number of objections (0-4), the chance one is resolved, and the
#: (low, high, mode) of the two scores.
_TEMPERATURE_PROFILES: dict[str, dict[str, Any]] = {
    "hot": {
        "urgency": (0.45, 0.40, 0.10, 0.02, 0.03),
        "financing": (0.55, 0.15, 0.20, 0.07, 0.03),
        "step": (0.02, 0.03, 0.10, 0.15, 0.25, 0.45),
        "stage": (0.02, 0.13, 0.35, 0.25, 0.17, 0.08),
        "objections": (0.35, 0.35, 0.20, 0.08, 0.02),
        "resolved": 0.75,
        "financial": (55.0, 100.0, 84.0),
        "motivation": (60.0, 100.0, 88.0),
    },
    "warm": {
        "urgency": (0.08, 0.35, 0.35, 0.12, 0.10),
        "financing": (0.30, 0.30, 0.07, 0.25, 0.08),
        "step": (0.10, 0.15, 0.25, 0.25, 0.15, 0.10),
        "stage": (0.15, 0.40, 0.30, 0.10, 0.04, 0.01),
        "objections": (0.25, 0.30, 0.25, 0.15, 0.05),
        "resolved": 0.5,
        "financial": (30.0, 85.0, 58.0),
        "motivation": (30.0, 85.0, 60.0),
    },
    "cold": {
        "urgency": (0.02, 0.08, 0.25, 0.40, 0.25),
        "financing": (0.05, 0.15, 0.03, 0.45, 0.32),
        "step": (0.40, 0.25, 0.15, 0.12, 0.05, 0.03),
        "stage": (0.60, 0.30, 0.08, 0.02, 0.0, 0.0),
        "objections": (0.20, 0.25, 0.25, 0.20, 0.10),
        "resolved": 0.25,
        "financial": (2.0, 60.0, 25.0),
        "motivation": (2.0, 55.0, 20.0),
    },
}
_QUALIFIED_CHANCE_BY_STEP = {"budget": 0.02, "timeline": 0.05, "financing": 0.15,
                             "preferences": 0.35, "decision_makers": 0.6, "complete": 0.92}
_QUALIFIED_SHIFT_BY_TEMPERATURE = {"hot": 0.1, "warm": 0.0, "cold": -0.1}
_PERSONA_WEIGHTS = (0.32, 0.2, 0.1, 0.15, 0.1, 0.05)
#: persona -> (budget max low, high), bedrooms (low, high), property type weights.
_PERSONA_SHAPES: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[float, ...]]] = {
    "first_time_buyer": ((220_000, 520_000), (1, 3), (0.45, 0.3, 0.25, 0.0)),
    "move_up_buyer": ((380_000, 950_000), (3, 5), (0.85, 0.03, 0.12, 0.0)),
    "investor": ((150_000, 700_000), (2, 4), (0.4, 0.2, 0.1, 0.3)),
    "relocating_professional": ((350_000, 1_100_000), (2, 4), (0.6, 0.2, 0.2, 0.0)),
    "downsizer": ((250_000, 700_000), (1, 3), (0.35, 0.4, 0.25, 0.0)),
    "luxury_buyer": ((1_200_000, 4_500_000), (4, 6), (0.9, 0.1, 0.0, 0.0)),
}


def _cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    """Running totals, for picking by weight with one random() and a bisect."""
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return tuple(out)


_WEIGHTED_KEYS = ("urgency", "financing", "step", "stage", "objections")
_TEMPERATURE_TABLES = {
    temperature: {key: _cumulative(profile[key]) for key in _WEIGHTED_KEYS}
    for temperature, profile in _TEMPERATURE_PROFILES.items()
}
_DEFAULT_MIX_TABLE = _cumulative(DEFAULT_TEMPERATURE_MIX)
_PERSONA_TABLE = _cumulative(_PERSONA_WEIGHTS)
_PERSONA_TYPE_TABLES = {p: _cumulative(shape[2]) for p, shape in _PERSONA_SHAPES.items()}


def _weighted(rnd: Callable[[], float], items: Sequence[Any],
              cumulative: Sequence[float]) -> Any:
    """One item by weight; zero-weight items are never chosen."""
    index = bisect_right(cumulative, rnd() * cumulative[-1])
    return items[min(index, len(items) - 1)]


# ---------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------

def _round_to(value: float, step: int) -> int:
    return round(value / step) * step


def _money(amount: int) -> str:
    return f"${amount:,}"


def _money_casual(amount: int, r: float) -> str:
    """How people type prices: '$450k', '450K', '$1.2M', '$450,000'."""
    if amount >= 1_000_000:
        millions = f"{amount / 1_000_000:.2f}".rstrip("0").rstrip(".")
        if r < 0.4:
            return f"${millions}M"
        if r < 0.7:
            return f"{millions} million"
        return _money(amount)
    thousands = round(amount / 1000)
    if r < 0.35:
        return f"${thousands}k"
    if r < 0.55:
        return f"{thousands}k"
    if r < 0.65:
        return f"${thousands}K"
    return _money(_round_to(amount, 1000))


def _email_slug(text: str) -> str:
    """ASCII lower-case letters only: 'José' -> 'jose', "O'Brien" -> 'obrien'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed.lower() if c in string.ascii_lowercase) or "buyer"


def _typo(text: str, r: Callable[[], float]) -> str:
    """One human slip: swapped, dropped or doubled letter, or lower-case and no full stop."""
    length = len(text)
    if length < 12:
        return text
    kind = r()
    pos = 1 + int(r() * (length - 3))
    if kind < 0.3:
        a, b = text[pos], text[pos + 1]
        if a.isalpha() and b.isalpha():
            return text[:pos] + b + a + text[pos + 2:]
        return text
    if kind < 0.5:  # only inside a word, so no one-letter word vanishes
        inside = text[pos - 1].isalpha() and text[pos].isalpha() and text[pos + 1].isalpha()
        return text[:pos] + text[pos + 1:] if inside else text
    if kind < 0.65:
        return text[:pos] + text[pos] + text[pos:] if text[pos].isalpha() else text
    lowered = text[0].lower() + text[1:]
    return lowered[:-1] if lowered.endswith(".") else lowered


# ---------------------------------------------------------------------------------------
# One buyer's profile and conversation
# ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Profile:
    """The facts a conversation keeps coming back to, so it reads as one buyer's chat."""

    first: str
    last: str
    temperature: str
    persona: str
    city: str
    neighborhoods: list[str]
    school: str
    workplace: str
    partner: str
    lender: str
    agent: str
    from_city: str
    budget_min: int
    budget_max: int
    down_pct: float
    bedrooms: int
    bathrooms: float
    property_type: str
    must_haves: list[str]
    max_commute: int
    stage_index: int
    casual: bool
    objection_kinds: list[int]
    phone: str
    email: str


Template = tuple[tuple[str, Callable[["_Writer"], str] | None], ...]


class _Writer:
    """Renders templates for one buyer; each ``_s_<slot>`` method fills one slot."""

    __slots__ = ("data", "objection", "p", "previous", "r", "role", "table", "used")

    def __init__(self, rng: random.Random, profile: _Profile, data: _Tables) -> None:
        self.r = rng.random
        self.p = profile
        self.data = data
        self.role = "user"
        self.objection = 0
        self.used: set[int] = set()
        self.previous = 0
        self.table: tuple[float, ...] = _topic_tables(profile.stage_index)[0]

    # plumbing -----------------------------------------------------------------------
    def pick(self, items: Sequence[T]) -> T:
        return items[int(self.r() * len(items))]

    def between(self, low: int, high: int) -> int:
        """Inclusive random integer, cheaper than rng.randint."""
        return low + int(self.r() * (high - low + 1))

    def render(self, template: Template) -> str:
        text = ""
        for literal, slot in template:
            text = text + literal + slot(self) if slot is not None else text + literal
        return text

    def phrase(self, pool: Sequence[Template]) -> str:
        """Render a template from ``pool``, avoiding ones this buyer already used.

        One re-draw on a repeat keeps the chat from echoing itself without the cost of
        tracking exhaustion; the template just rendered is never drawn twice in a row,
        so one message never says the same sentence twice.
        """
        r = self.r
        size = len(pool)
        template = pool[int(r() * size)]
        used = self.used
        if id(template) in used:
            template = pool[int(r() * size)]
        while id(template) == self.previous and size > 1:
            template = pool[int(r() * size)]
        used.add(id(template))
        self.previous = id(template)
        text = ""  # render(), inlined: this is the hottest path of the generator
        for literal, slot in template:
            text = text + literal + slot(self) if slot is not None else text + literal
        return text

    def money(self, amount: int) -> str:
        """Bot messages use full figures; buyers type them however they like."""
        if self.role == "assistant":
            return _money(amount)
        return _money_casual(amount, self.r())

    # slots: the buyer ---------------------------------------------------------------
    def _s_first(self) -> str:
        return self.p.first

    def _s_first_agent(self) -> str:
        return self.p.agent

    def _s_agent(self) -> str:
        return self.p.agent

    def _s_city(self) -> str:
        return self.p.city

    def _s_hood(self) -> str:
        return self.pick(self.p.neighborhoods)

    def _s_other_hood(self) -> str:
        return self.pick(self.data.neighborhoods)

    def _s_school(self) -> str:
        return self.p.school

    def _s_workplace(self) -> str:
        return self.p.workplace

    def _s_partner(self) -> str:
        return self.p.partner

    def _s_partner_cap(self) -> str:
        return "Buyer's " + self.p.partner

    def _s_lender(self) -> str:
        return self.p.lender

    def _s_from_city(self) -> str:
        return self.p.from_city

    def _s_beds(self) -> str:
        return str(self.p.bedrooms)

    def _s_beds_alt(self) -> str:
        return str(max(1, self.p.bedrooms - self.between(1, 2)))

    def _s_beds_old(self) -> str:
        return str(self.p.bedrooms + self.between(1, 3))

    def _s_baths(self) -> str:
        return f"{self.p.bathrooms:g}"

    def _s_ptype(self) -> str:
        return self.pick(self.data.property_phrases[self.p.property_type])

    def _s_ptype_alt(self) -> str:
        return self.pick(self.data.property_alternatives)

    def _s_must(self) -> str:
        return self.pick(self.p.must_haves)

    def _s_must2(self) -> str:
        return self.pick(self.data.must_haves_by_persona[self.p.persona])

    def _s_commute(self) -> str:
        return str(self.p.max_commute)

    def _s_down(self) -> str:
        pct = self.p.down_pct
        return f"{pct:g}%" if self.r() < 0.7 else f"{pct:g} percent"

    def _s_down_amt(self) -> str:
        amount = self.p.budget_max * self.p.down_pct / 100 * (0.8 + 0.5 * self.r())
        return self.money(_round_to(amount, 500))

    def _s_budget(self) -> str:
        return self.money(self.p.budget_max)

    def _s_budget_min(self) -> str:
        return self.money(self.p.budget_min)

    def _s_budget_mid(self) -> str:
        return self.money(_round_to((self.p.budget_min + self.p.budget_max) / 2, 5000))

    def _s_budget_stretch(self) -> str:
        return self.money(_round_to(self.p.budget_max * (1.05 + 0.12 * self.r()), 5000))

    def _s_payment(self) -> str:
        payment = self.p.budget_max * (0.0055 + 0.0015 * self.r())
        return self.money(_round_to(payment, 10))

    def _s_income(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.22 + 0.1 * self.r()), 1000))

    def _s_rent(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.004 + 0.002 * self.r()), 25))

    def _s_equity(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.15 + 0.35 * self.r()), 5000))

    # slots: fresh numbers and places ------------------------------------------------
    def _s_price(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.85 + 0.3 * self.r()), 1000))

    def _s_price_low(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.78 + 0.17 * self.r()), 1000))

    def _s_quarter_point(self) -> str:
        """What a quarter point of rate costs a month on this buyer's kind of loan."""
        return self.money(_round_to(self.p.budget_max * (0.00014 + 0.00004 * self.r()), 5))

    def _s_hoa_power(self) -> str:
        return self.money(_round_to(15_000 + 90_000 * self.r(), 1000))

    def _s_phone_tail(self) -> str:
        return self.p.phone[-4:]

    def _s_small_money(self) -> str:
        return self.money(_round_to(150 + 14_000 * self.r() ** 2, 25))

    def _s_earnest(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.01 + 0.02 * self.r()), 500))

    def _s_student_loans(self) -> str:
        return self.money(_round_to(8_000 + 110_000 * self.r(), 1000))

    def _s_rate(self) -> str:
        return f"{5.5 + 0.125 * int(self.r() * 17):.3f}".rstrip("0").rstrip(".") + "%"

    def _s_points(self) -> str:
        return self.pick(("half a", "one", "1.5", "two", "0.75", "zero"))

    def _s_cap(self) -> str:
        return f"{3.5 + 4 * self.r():.1f}"

    def _s_hoa(self) -> str:
        fee = _round_to(90 + 600 * self.r() ** 1.5, 5)
        return self.pick((f"${fee}/month", f"${fee} a month", f"${fee}/mo", f"${fee} monthly"))

    def _s_tax(self) -> str:
        return self.money(_round_to(self.p.budget_max * (0.009 + 0.014 * self.r()), 10)) + (
            " a year" if self.r() < 0.6 else "/yr")

    def _s_sqft(self) -> str:
        base = 700 + self.p.bedrooms * 420
        size = _round_to(base * (0.8 + 0.6 * self.r()), 10)
        return self.pick((f"{size:,} sq ft", f"{size:,} square feet", f"{size}sqft",
                          f"{size:,} sf"))

    def _s_lot(self) -> str:
        return self.pick(("a quarter acre", "half an acre", "an acre", "a tenth of an acre",
                          f"0.{self.between(12, 45)} acres", f"{self.between(5, 12)},000 sq ft"))

    def _s_year(self) -> str:
        return str(self.between(1952, 2023))

    def _s_year_old(self) -> str:
        return str(self.between(1965, 1995))

    def _s_street(self) -> str:
        return f"{self.pick(self.data.street_names)} {self.pick(self.data.street_suffixes)}"

    def _s_addr(self) -> str:
        number = self.between(12, 9899)
        unit = f" #{self.between(101, 540)}" if self.p.property_type == "condo" and \
            self.r() < 0.5 else ""
        street = f"{self.pick(self.data.street_names)} {self.pick(self.data.street_suffixes)}"
        return f"{number} {street}{unit}"

    def _s_minutes(self) -> str:
        return str(self.between(8, 75))

    def _s_long_minutes(self) -> str:
        return str(self.between(max(35, self.p.max_commute + 5), 95))

    def _s_miles(self) -> str:
        return f"{0.3 + 4 * self.r():.1f}"

    def _s_office_days(self) -> str:
        return self.pick(("two", "three", "2", "3", "four", "1-2"))

    def _s_day(self) -> str:
        return self.pick(self.data.days)

    def _s_time(self) -> str:
        return self.pick(self.data.times)

    def _s_month(self) -> str:
        return self.pick(self.data.months)

    def _s_date(self) -> str:
        day = self.between(1, 28)
        month = self.pick(self.data.months)
        return f"{month} {day}" if self.r() < 0.6 else f"{self.between(1, 12)}/{day}"

    def _s_months(self) -> str:
        return str(self.between(2, 9))

    def _s_years(self) -> str:
        return str(self.between(2, 9))

    def _s_nth(self) -> str:
        return self.pick(("first", "second", "next", "third", "fourth"))

    def _s_feature(self) -> str:
        return self.pick(self.data.features)

    def _s_feature2(self) -> str:
        return self.pick(self.data.features)

    def _s_amenity(self) -> str:
        return self.pick(self.data.amenities)

    def _s_issue(self) -> str:
        return self.pick(self.data.inspection_issues)

    def _s_issue_cap(self) -> str:
        issue = self.pick(self.data.inspection_issues)
        return issue[0].upper() + issue[1:]

    def _s_count(self) -> str:
        return str(self.between(2, 19))

    def _s_dom(self) -> str:
        return str(self.between(4, 95))

    def _s_pct(self) -> str:
        return str(self.between(2, 12))

    def _s_credit(self) -> str:
        return str(self.between(610, 815))

    def _s_pages(self) -> str:
        return str(self.between(28, 96))

    def _s_kid_age(self) -> str:
        return self.pick(("4", "5", "6", "7", "9", "11", "13", "two", "three", "14"))

    def _s_pets(self) -> str:
        return self.pick(("two dogs", "a big dog", "a golden retriever", "two cats",
                          "a very energetic puppy", "three kids and a dog", "a husky"))

    def _s_garage_cars(self) -> str:
        return self.pick(("three", "four", "five", "3", "4"))

    # messages -------------------------------------------------------------------------
    def user_message(self, topic: str) -> str:
        """Opener, one or two topic sentences, maybe a tail; casing and typos per buyer."""
        self.role = "user"
        r = self.r
        parts = []
        if r() < 0.3:
            parts.append(self.phrase(self.data.user_openers))
        parts.append(self.phrase(self._user_pool(topic)))
        if r() < 0.3:
            extra = topic if r() < 0.6 else _weighted(r, TOPICS, self.table)
            if extra == "objection":
                extra = topic
            parts.append(self.phrase(self._user_pool(extra)))
        if r() < 0.25:
            parts.append(self.phrase(self.data.user_tails))
        text = " ".join(parts)
        if self.p.casual and r() < 0.7:
            text = text[0].lower() + text[1:]
            if text.endswith("."):
                text = text[:-1]
        if r() < 0.08:
            text = _typo(text, r)
        return text

    def assistant_message(self, topic: str) -> str:
        """Acknowledge, answer with one or two sentences, then usually ask the next thing."""
        self.role = "assistant"
        r = self.r
        parts = []
        if r() < 0.6:
            parts.append(self.phrase(self.data.assistant_acks))
        parts.append(self.phrase(self._assistant_pool(topic)))
        if r() < 0.3 and topic != "greeting":
            parts.append(self.phrase(self._assistant_pool(topic)))
        if r() < 0.65:
            parts.append(self.phrase(self.data.assistant_questions))
        return " ".join(parts)

    def objection_summary(self, kind: int) -> str:
        self.role = "assistant"
        return self.render(self.data.objection_summaries[kind])

    def _user_pool(self, topic: str) -> tuple[Template, ...]:
        if topic == "persona":
            return self.data.persona_user[self.p.persona]
        if topic == "objection":
            return self.data.objection_user[self.objection]
        return self.data.user_topics[topic]

    def _assistant_pool(self, topic: str) -> tuple[Template, ...]:
        if topic == "persona":
            return self.data.persona_assistant[self.p.persona]
        if topic == "objection":
            return self.data.objection_assistant[self.objection]
        return self.data.assistant_topics[topic]

    def conversation(self, count: int, ends_at: datetime) -> list[dict[str, Any]]:
        """``count`` messages, mostly alternating, in sessions ending at ``ends_at``."""
        r = self.r
        tables = _topic_tables(self.p.stage_index)
        kinds = self.p.objection_kinds or list(range(len(self.data.objection_summaries)))
        role = "assistant" if r() < 0.15 else "user"
        topic = "greeting"
        drafted: list[tuple[str, str, int]] = []
        clock = 0
        for index in range(count):
            # The buyer steers: a new topic most turns (a first message is often hello).
            if role == "user" and r() < (0.75 if index else 0.4):
                progress = index / count
                self.table = tables[0] if progress < 0.25 else (
                    tables[1] if progress < 0.7 else tables[2])
                topic = _weighted(r, TOPICS, self.table)
                if topic == "objection":
                    self.objection = self.pick(kinds)
            text = (self.user_message(topic) if role == "user"
                    else self.assistant_message(topic))
            drafted.append((role, text, clock))
            next_role = role if r() < 0.06 else ("assistant" if role == "user" else "user")
            clock += _gap_seconds(r, role, next_role)
            role = next_role
        end = int(ends_at.timestamp())
        last = drafted[-1][2] if drafted else 0
        return [{"role": role, "content": text, "timestamp": _iso_utc(end - (last - at))}
                for role, text, at in drafted]


_EPOCH_DAY_CACHE: dict[int, str] = {}


def _iso_utc(epoch_seconds: int) -> str:
    """Same text as ``datetime.fromtimestamp(s, UTC).isoformat()``, several times faster."""
    day, second = divmod(epoch_seconds, 86_400)
    date = _EPOCH_DAY_CACHE.get(day)
    if date is None:
        date = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
        if len(_EPOCH_DAY_CACHE) < 100_000:
            _EPOCH_DAY_CACHE[day] = date
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}+00:00"


def _gap_seconds(r: Callable[[], float], role: str, next_role: str) -> int:
    """Seconds until the next message: the bot replies fast, buyers come back later."""
    if role == "user" and next_role == "assistant":
        return 4 + int(70 * r())
    if role == "user":
        return 8 + int(170 * r())
    if next_role == "assistant":  # the bot nudging a silent buyer
        return 86_400 + int(2 * 86_400 * r())
    if r() < 0.22:  # a new session: hours to days later
        return int(7_200 * 60 ** r())
    return int(25 * 60 ** r())


_TOPIC_TABLE_CACHE: dict[int, tuple[tuple[float, ...], ...]] = {}


def _topic_tables(stage_index: int) -> tuple[tuple[float, ...], ...]:
    """Cumulative topic weights for the early, middle and late part of a chat."""
    tables = _TOPIC_TABLE_CACHE.get(stage_index)
    if tables is None:
        tables = tuple(
            _cumulative([w[phase] * (1.0 if stage_index >= w[3] else 0.1)
                         for w in TOPIC_WEIGHTS.values()])
            for phase in range(3))
        _TOPIC_TABLE_CACHE[stage_index] = tables
    return tables


_ALTERNATION = re.compile(r"\[([^\[\]]*\|[^\[\]]*)\]")


def _alternation(options: tuple[Template, ...]) -> Callable[[_Writer], str]:
    """A slot that renders one of several phrasings: '[drop|fall|come down]'."""
    def render(writer: _Writer) -> str:
        return writer.render(options[int(writer.r() * len(options))])
    return render


def _compile_slots(template: str) -> list[tuple[str, Callable[[_Writer], str] | None]]:
    """Resolve ``{name}`` fields to ``_Writer._s_name``; a typo fails as the tables load."""
    compiled: list[tuple[str, Callable[[_Writer], str] | None]] = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        slot = None
        if field is not None:
            slot = getattr(_Writer, f"_s_{field}", None)
            if slot is None:
                raise KeyError(f"template slot {{{field}}} has no _Writer._s_{field}: "
                               f"{template!r}")
        compiled.append((literal, slot))
    return compiled


def _compile(template: str) -> Template:
    """Split a template into (literal, slot) pairs once, as the tables load, so rendering
    is cheap.

    ``{name}`` calls ``_Writer._s_name``; ``[a|b|c]`` picks one phrasing (which may hold
    ``{slots}`` itself, or be empty).
    """
    compiled: list[tuple[str, Callable[[_Writer], str] | None]] = []
    position = 0
    for match in _ALTERNATION.finditer(template):
        compiled.extend(_compile_slots(template[position:match.start()]))
        options = tuple(_compile(option) for option in match.group(1).split("|"))
        compiled.append(("", _alternation(options)))
        position = match.end()
    compiled.extend(_compile_slots(template[position:]))
    # Drop the empty pairs left where an alternation or slot opens the text.
    return tuple((lit, slot) for lit, slot in compiled if lit or slot is not None)


def _compile_all(templates: Sequence[str]) -> tuple[Template, ...]:
    return tuple(_compile(t) for t in templates)


# ---------------------------------------------------------------------------------------
# The phrase tables: package data, read on first use
# ---------------------------------------------------------------------------------------

#: The files under ``memory_core/data/`` that hold the tables: who the buyers are, what
#: they and the bot say, and the objections they raise. Each has an "about" entry.
_DATA_FILES = ("seeding_profiles.json", "seeding_phrases.json", "seeding_objections.json")
#: Tables still readable under their module-level names from before they moved to
#: package data (``seeding.EMAIL_DOMAINS``), through the module ``__getattr__``.
_PROFILE_NAMES = frozenset((
    "FIRST_NAMES", "LAST_NAMES", "EMAIL_DOMAINS", "CITIES", "NEIGHBORHOODS", "STREET_NAMES",
    "STREET_SUFFIXES", "SCHOOL_DISTRICTS", "LENDERS", "AGENT_NAMES", "PARTNERS", "WORKPLACES",
    "FROM_CITIES", "FEATURES", "MUST_HAVES_BY_PERSONA", "AMENITIES", "INSPECTION_ISSUES",
    "DAYS", "TIMES", "MONTHS"))
_PHRASE_NAMES = frozenset((
    "USER_OPENERS", "USER_TAILS", "ASSISTANT_ACKS", "ASSISTANT_QUESTIONS", "USER_TOPICS",
    "ASSISTANT_TOPICS", "PERSONA_USER", "PERSONA_ASSISTANT"))


@dataclass(frozen=True, slots=True)
class _Tables:
    """Every table, as tuples, with the templates compiled (:func:`_tables`)."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    email_domains: tuple[str, ...]
    cities: tuple[str, ...]
    neighborhoods: tuple[str, ...]
    street_names: tuple[str, ...]
    street_suffixes: tuple[str, ...]
    school_districts: tuple[str, ...]
    lenders: tuple[str, ...]
    agent_names: tuple[str, ...]
    partners: tuple[str, ...]
    workplaces: tuple[str, ...]
    from_cities: tuple[str, ...]
    features: tuple[str, ...]  # each reads after "a": "a {feature}"
    must_haves_by_persona: dict[str, tuple[str, ...]]
    property_phrases: dict[str, tuple[str, ...]]  # property type -> how buyers say it
    property_alternatives: tuple[str, ...]  # each reads after "a": "a {ptype_alt}"
    amenities: tuple[str, ...]
    inspection_issues: tuple[str, ...]
    days: tuple[str, ...]
    times: tuple[str, ...]
    months: tuple[str, ...]
    user_openers: tuple[Template, ...]
    user_tails: tuple[Template, ...]
    assistant_acks: tuple[Template, ...]
    assistant_questions: tuple[Template, ...]
    user_topics: dict[str, tuple[Template, ...]]
    assistant_topics: dict[str, tuple[Template, ...]]
    persona_user: dict[str, tuple[Template, ...]]
    persona_assistant: dict[str, tuple[Template, ...]]
    objection_summaries: tuple[Template, ...]  # for objection_history
    objection_user: tuple[tuple[Template, ...], ...]  # what the buyer says, per objection
    objection_assistant: tuple[tuple[Template, ...], ...]  # how the bot answers


@cache
def _raw_tables() -> dict[str, Any]:
    """The data files' tables in one mapping, as JSON gives them (read once)."""
    raw: dict[str, Any] = {}
    for name in _DATA_FILES:
        tables = orjson.loads((resources.files("memory_core") / "data" / name).read_bytes())
        tables.pop("about", None)
        raw.update(tables)
    keyed = {"user_topics": set(TOPICS) - {"persona", "objection"},
             "assistant_topics": set(TOPICS) - {"persona", "objection"},
             "persona_user": set(PERSONAS), "persona_assistant": set(PERSONAS),
             "must_haves_by_persona": set(PERSONAS), "property_phrases": set(PROPERTY_TYPES)}
    for key, keys in keyed.items():
        if set(raw[key]) != keys:
            raise ValueError(f"memory_core/data: {key} must have the keys {sorted(keys)}, "
                             f"not {sorted(raw[key])}")
    return raw


@cache
def _tables() -> _Tables:
    """Read and compile the tables once, when the first buyer is generated.

    Not at import: the CLI and the dashboard import this module for :class:`SeedOptions`
    alone, and ``import memory_core`` does not import it at all.
    """
    raw = _raw_tables()

    def words(key: str) -> tuple[str, ...]:
        return tuple(raw[key])

    def words_by(key: str) -> dict[str, tuple[str, ...]]:
        return {name: tuple(pool) for name, pool in raw[key].items()}

    def every(key: str) -> tuple[str, ...]:  # every head followed by every tail
        return tuple(f"{head} {tail}" for head in raw[f"{key}_heads"]
                     for tail in raw[f"{key}_tails"])

    def templates_by(key: str) -> dict[str, tuple[Template, ...]]:
        return {name: _compile_all(pool) for name, pool in raw[key].items()}

    objections = raw["objections"]
    return _Tables(
        first_names=words("first_names"), last_names=words("last_names"),
        email_domains=words("email_domains"), cities=words("cities"),
        neighborhoods=every("neighborhood"), street_names=words("street_names"),
        street_suffixes=words("street_suffixes"), school_districts=every("school_district"),
        lenders=every("lender"), agent_names=words("agent_names"),
        partners=words("partners"), workplaces=words("workplaces"),
        from_cities=words("from_cities"), features=words("features"),
        must_haves_by_persona=words_by("must_haves_by_persona"),
        property_phrases=words_by("property_phrases"),
        property_alternatives=words("property_alternatives"),
        amenities=words("amenities"), inspection_issues=words("inspection_issues"),
        days=words("days"), times=words("times"), months=words("months"),
        user_openers=_compile_all(raw["user_openers"]),
        user_tails=_compile_all(raw["user_tails"]),
        assistant_acks=_compile_all(raw["assistant_acks"]),
        assistant_questions=_compile_all(raw["assistant_questions"]),
        user_topics=templates_by("user_topics"),
        assistant_topics=templates_by("assistant_topics"),
        persona_user=templates_by("persona_user"),
        persona_assistant=templates_by("persona_assistant"),
        objection_summaries=tuple(_compile(o["summary"]) for o in objections),
        objection_user=tuple(_compile_all(o["buyer"]) for o in objections),
        objection_assistant=tuple(_compile_all(o["assistant"]) for o in objections),
    )


def __getattr__(name: str) -> Any:
    """The tables under their old module-level names, e.g. ``seeding.EMAIL_DOMAINS``."""
    if name in _PROFILE_NAMES:
        value = getattr(_tables(), name.lower())
        return dict(value) if isinstance(value, dict) else value
    if name in _PHRASE_NAMES:
        texts = _raw_tables()[name.lower()]
        if isinstance(texts, dict):
            return {key: tuple(pool) for key, pool in texts.items()}
        return tuple(texts)
    if name == "OBJECTIONS":  # (summary, what the buyer says, how the bot answers)
        return tuple((o["summary"], tuple(o["buyer"]), tuple(o["assistant"]))
                     for o in _raw_tables()["objections"])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PROFILE_NAMES, *_PHRASE_NAMES, "OBJECTIONS"})


# ---------------------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------------------

#: Down payment percentages as buyers plan them (repeats weight the common choices).
_DOWN_PAYMENT_PERCENTS = (3, 3.5, 5, 5, 10, 10, 15, 20, 20, 25)
_LUXURY_DOWN_PERCENTS = (20, 25, 30, 40, 50)


def _score(rng: random.Random, shape: tuple[float, float, float], bonus: float) -> float:
    """A 0-100 score around the temperature's typical value, rounded like the bot's."""
    value = rng.triangular(shape[0], shape[1], shape[2]) + bonus
    return round(min(100.0, max(0.0, value)), 1)


def _make_profile(rng: random.Random, data: _Tables, temperature: str,
                  objection_count: int) -> _Profile:
    """Draw the facts about one buyer (no conversation yet)."""
    r = rng.random
    persona = _weighted(r, PERSONAS, _PERSONA_TABLE)
    (budget_low, budget_high), (beds_low, beds_high), _ = _PERSONA_SHAPES[persona]
    budget_max = _round_to(budget_low + (budget_high - budget_low) * r() ** 1.3, 5000)
    budget_min = _round_to(budget_max * (0.65 + 0.25 * r()), 5000)
    bedrooms = rng.randint(beds_low, beds_high)
    bathrooms = max(1.0, bedrooms - 1 + 0.5 * rng.randint(0, 2))
    musts = data.must_haves_by_persona[persona]
    stage = _weighted(r, JOURNEY_STAGES, _TEMPERATURE_TABLES[temperature]["stage"])
    kinds = rng.sample(range(len(data.objection_summaries)), objection_count)
    first, last = rng.choice(data.first_names), rng.choice(data.last_names)
    phone, email = _contact_details(rng, data, first, last)
    return _Profile(
        first=first, last=last, temperature=temperature,
        persona=persona, city=rng.choice(data.cities),
        neighborhoods=rng.sample(data.neighborhoods, rng.randint(1, 4)),
        school=rng.choice(data.school_districts), workplace=rng.choice(data.workplaces),
        partner=rng.choice(data.partners), lender=rng.choice(data.lenders),
        agent=rng.choice(data.agent_names), from_city=rng.choice(data.from_cities),
        budget_min=budget_min, budget_max=budget_max,
        down_pct=rng.choice(_LUXURY_DOWN_PERCENTS if persona == "luxury_buyer"
                            else _DOWN_PAYMENT_PERCENTS),
        bedrooms=bedrooms, bathrooms=bathrooms,
        property_type=_weighted(r, PROPERTY_TYPES, _PERSONA_TYPE_TABLES[persona]),
        must_haves=rng.sample(musts, rng.randint(1, 4)),
        max_commute=5 * rng.randint(3, 12), stage_index=JOURNEY_STAGES.index(stage),
        casual=r() < 0.3, objection_kinds=kinds, phone=phone, email=email,
    )


def _contact_details(rng: random.Random, data: _Tables, first: str,
                     last: str) -> tuple[str, str]:
    """A fictional 555 phone number and an email at a reserved example domain."""
    phone = f"+1-555-0{rng.randrange(100):02d}-{rng.randrange(10_000):04d}"
    f, la = _email_slug(first), _email_slug(last)
    local = rng.choice((f"{f}.{la}", f"{f}{la}", f"{f[0]}{la}", f"{f}_{la}",
                        f"{f}.{la}{rng.randint(1, 99)}", f"{f}{rng.randint(70, 99)}",
                        f"{la}.{f}", f"{f}.{la[0]}"))
    return phone, f"{local}@{rng.choice(data.email_domains)}"


def generate_state(rng: random.Random, *, temperature: str | None = None,
                   message_count: int | None = None,
                   ends_at: datetime | None = None) -> dict[str, Any]:
    """One realistic buyer state with every schema field filled (no ``qa_seed`` flag).

    ``temperature`` defaults to a draw from the default mix and ``message_count`` to a
    draw from :data:`DEFAULT_HISTORY_RANGE`. ``ends_at`` is when the last message was
    sent; it defaults to :data:`REFERENCE_TIME` so the state depends on ``rng`` alone.
    """
    if temperature is None:
        temperature = _weighted(rng.random, TEMPERATURES, _DEFAULT_MIX_TABLE)
    elif temperature not in TEMPERATURES:
        raise InvalidState(f"temperature={temperature!r} must be one of {TEMPERATURES}")
    if message_count is None:
        message_count = _history_length(rng, *DEFAULT_HISTORY_RANGE)
    elif not _is_int(message_count) or message_count < 0:
        raise InvalidState(f"message_count={message_count!r} must be a whole number >= 0")
    ends_at = _aware_utc(ends_at, "ends_at") if ends_at is not None else REFERENCE_TIME

    data = _tables()
    tables = _TEMPERATURE_TABLES[temperature]
    shape = _TEMPERATURE_PROFILES[temperature]
    objection_count = min(_weighted(rng.random, range(5), tables["objections"]),
                          message_count // 4)
    profile = _make_profile(rng, data, temperature, objection_count)
    writer = _Writer(rng, profile, data)
    history = writer.conversation(message_count, ends_at)

    financing = _weighted(rng.random, FINANCING_STATUSES, tables["financing"])
    step = _weighted(rng.random, QUALIFICATION_STEPS, tables["step"])
    qualified_chance = (_QUALIFIED_CHANCE_BY_STEP[step]
                        + _QUALIFIED_SHIFT_BY_TEMPERATURE[temperature])
    financing_bonus = {"cash": 8.0, "pre-approved": 5.0, "unknown": -5.0}.get(financing, 0.0)
    user_times = [m["timestamp"] for m in history if m["role"] == "user"] or [
        m["timestamp"] for m in history] or [ends_at.astimezone(UTC).isoformat()]
    objections = [
        {"objection": writer.objection_summary(kind),
         "raised_at": rng.choice(user_times),
         "resolved": rng.random() < shape["resolved"]}
        for kind in profile.objection_kinds
    ]
    objections.sort(key=lambda item: item["raised_at"])
    return {
        "conversation_history": history,
        "financial_readiness_score": _score(rng, shape["financial"], financing_bonus),
        "buying_motivation_score": _score(rng, shape["motivation"], 0.0),
        "budget_range": {"min": profile.budget_min, "max": profile.budget_max,
                         "currency": "USD"},
        "property_preferences": {
            "bedrooms": profile.bedrooms,
            "bathrooms": profile.bathrooms,
            "property_type": profile.property_type,
            "neighborhoods": list(profile.neighborhoods),
            "must_haves": list(profile.must_haves),
            "max_commute_minutes": profile.max_commute,
        },
        "urgency_level": _weighted(rng.random, URGENCY_LEVELS, tables["urgency"]),
        "financing_status": financing,
        "current_qualification_step": step,
        "current_journey_stage": JOURNEY_STAGES[profile.stage_index],
        "buyer_persona": profile.persona,
        "buyer_temperature": temperature,
        "is_qualified": rng.random() < qualified_chance,
        "objection_history": objections,
        "buyer_name": f"{profile.first} {profile.last}",
        "buyer_phone": profile.phone,
        "buyer_email": profile.email,
    }


def _history_length(rng: random.Random, low: int, high: int) -> int:
    """Triangular around the middle of the range: most chats medium, a few short or long."""
    if low == high:
        return low
    value = rng.triangular(low - 0.5, high + 0.5, (low + high) / 2)
    return min(high, max(low, round(value)))


def _aware_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidState(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------

def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(value: object, name: str, low: int, high: int, unit: str) -> None:
    """A (lo, hi) pair of whole numbers with low <= lo <= hi <= high."""
    if not isinstance(value, tuple | list) or len(value) != 2 or not all(
            _is_int(v) for v in value):
        raise InvalidState(f"{name}={value!r} must be a pair of whole numbers (lo, hi)")
    lo, hi = value
    if lo > hi:
        raise InvalidState(f"{name}={value!r}: lo must be <= hi")
    if lo < low or hi > high:
        raise InvalidState(f"{name}={value!r}: both ends must be within {low}..{high} {unit}")


def check_id_prefix(prefix: object, *, name: str = "id_prefix",
                    allow_empty: bool = True) -> str:
    """``prefix`` if it can start contact ids; else :class:`InvalidState` naming it.

    Checked on its own, before an id is built from it: an id's error would show the
    prefix followed by the seed and the number, masked as a phone number when it looks
    like one ("bad prefix ***-0002"), which names the wrong culprit. The CLI refuses an
    empty prefix (``allow_empty=False``): bare ids such as ``0-000000`` look like real
    contacts.
    """
    if not isinstance(prefix, str):
        raise InvalidState(f"{name}={prefix!r} must be a string")
    if not prefix and not allow_empty:
        raise InvalidState(f"{name} is empty: the ids would be bare numbers such as "
                           "0-000000, which look like real contact ids; give a prefix such "
                           "as qa- (the default)")
    if not id_characters_ok(prefix):
        shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100
                        else f"\\u{ord(c):04x}" for c in prefix[:40])  # a no-break space too
        raise InvalidState(f"{name} '{printable(shown)}{'…' if len(prefix) > 40 else ''}' "
                           "contains a space or a control character, which contact ids "
                           "cannot hold: use letters, digits and punctuation, such as qa- or "
                           "demo/")
    return prefix


@dataclass(frozen=True)
class SeedOptions:
    """What to generate: how many buyers, from which seed, and in what shape."""

    count: int
    seed: int = 0
    temperature_mix: tuple[float, float, float] = DEFAULT_TEMPERATURE_MIX  # hot, warm, cold
    history_range: tuple[int, int] = DEFAULT_HISTORY_RANGE  # messages per buyer, inclusive
    ttl_days_range: tuple[int, int] | None = None  # None: the store's default TTL
    id_prefix: str = "qa-"

    def validate(self) -> None:
        """Raise :class:`InvalidState` naming the first option that cannot be used."""
        if not _is_int(self.count) or not 1 <= self.count <= MAX_COUNT:
            raise InvalidState(f"count={self.count!r} must be a whole number in "
                               f"1..{MAX_COUNT:,}")
        if not _is_int(self.seed):
            raise InvalidState(f"seed={self.seed!r} must be a whole number")
        mix = self.temperature_mix
        if not isinstance(mix, tuple | list) or len(mix) != 3:
            raise InvalidState(f"temperature_mix={mix!r} must be three weights (hot, warm, "
                               "cold)")
        for weight in mix:
            if isinstance(weight, bool) or not isinstance(weight, int | float) \
                    or not math.isfinite(weight) or weight < 0:
                raise InvalidState(f"temperature_mix={mix!r}: each weight must be a finite "
                                   "number >= 0")
        if sum(mix) <= 0:
            raise InvalidState(f"temperature_mix={mix!r}: the weights must not all be zero")
        _check_range(self.history_range, "history_range", 1, MAX_HISTORY_MESSAGES,
                     "messages")
        if self.ttl_days_range is not None:
            _check_range(self.ttl_days_range, "ttl_days_range", 1, MAX_TTL_DAYS, "days")
        check_id_prefix(self.id_prefix)
        try:
            validate_contact_id(self.contact_id(self.count - 1))
        except InvalidContactId as exc:
            raise InvalidState(f"id_prefix={self.id_prefix[:40]!r} makes invalid contact "
                               f"ids: {exc}") from None

    def contact_id(self, index: int) -> str:
        """The id of the index-th buyer of this run, e.g. 'qa-0-000042'."""
        return f"{self.id_prefix}{self.seed}-{index:06d}"


@dataclass(frozen=True)
class SeedBuyer:
    """One generated buyer, ready for ``save_many``."""

    contact_id: str
    state: dict[str, Any]  # every STATE_DEFAULTS field plus "qa_seed": True
    #: The TTL the buyer got at its last interaction; None: the store's default TTL.
    ttl_seconds: int | None
    interaction_time: datetime  # tz-aware UTC; the time the state is saved "as of"
    #: When the buyers were generated ("now"); None: as if saved at the interaction.
    generated_at: datetime | None = None

    def remaining_ttl_seconds(self, default_ttl_seconds: int | None = None) -> int | None:
        """What is left at ``generated_at`` of the TTL the buyer got at its last
        interaction, as if the bot had saved it then: 30 days given 20 days ago leave 10.

        Never less than :data:`MIN_REMAINING_TTL_SECONDS`, so seeds do not vanish at
        once. ``default_ttl_seconds`` stands for the store's TTL when ``ttl_seconds`` is
        None; with neither, None (the store's full TTL, counted from the write).
        """
        full = self.ttl_seconds if self.ttl_seconds is not None else default_ttl_seconds
        if full is None:
            return None
        age = (self.generated_at - self.interaction_time).total_seconds() \
            if self.generated_at is not None else 0
        return min(full, max(MIN_REMAINING_TTL_SECONDS, full - max(0, int(age))))

    def as_save_item(self, default_ttl_seconds: int | None = None
                     ) -> tuple[str, dict[str, Any], int | None, datetime]:
        """The (contact_id, state, ttl_override, now) tuple ``save_many`` takes; the TTL
        is the one left since the last interaction (:meth:`remaining_ttl_seconds`)."""
        return (self.contact_id, self.state, self.remaining_ttl_seconds(default_ttl_seconds),
                self.interaction_time)


def generate_buyers(options: SeedOptions, now: datetime | None = None) -> Iterator[SeedBuyer]:
    """Lazily yield ``options.count`` buyers; the same (options, now) gives the same buyers.

    Options are validated here, before the first buyer is asked for. Interaction times
    fall in the last :data:`INTERACTION_SPREAD_DAYS` days before ``now`` (default: the
    current time), skewed towards recent, and each conversation ends at its buyer's
    interaction time; with ``ttl_days_range`` it falls within the buyer's TTL. Written
    with :meth:`SeedBuyer.as_save_item`, a buyer keeps the TTL left since that
    interaction, as a buyer the bot saved then would.
    """
    options.validate()
    anchor = datetime.now(UTC) if now is None else _aware_utc(now, "now")
    return _buyers(options, anchor)


def _buyers(options: SeedOptions, now: datetime) -> Iterator[SeedBuyer]:
    rng = random.Random(options.seed)
    mix = _cumulative(options.temperature_mix)
    spread = INTERACTION_SPREAD_DAYS * 86_400
    ttl_range = options.ttl_days_range
    for index in range(options.count):
        temperature = _weighted(rng.random, TEMPERATURES, mix)
        message_count = _history_length(rng, *options.history_range)
        recency = rng.random() ** 1.3
        ttl = None if ttl_range is None else rng.randint(*ttl_range) * 86_400
        # A buyer the bot saved longer ago than its TTL would be gone: with a known TTL,
        # the last interaction falls within it (at least MIN_REMAINING_TTL_SECONDS left).
        window = spread if ttl is None else min(spread, ttl - MIN_REMAINING_TTL_SECONDS)
        interaction_time = now - timedelta(seconds=int(window * recency))
        state = generate_state(rng, temperature=temperature, message_count=message_count,
                               ends_at=interaction_time)
        state[QA_SEED_FIELD] = True
        yield SeedBuyer(contact_id=options.contact_id(index), state=state, ttl_seconds=ttl,
                        interaction_time=interaction_time, generated_at=now)
