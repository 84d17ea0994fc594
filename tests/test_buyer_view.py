"""dashboard.buyer_view's words for stored values: money, preferences, times, durations.

Pure functions (no Streamlit run needed); the page that uses them is tested in
test_dashboard.py. Values come from Redis, so odd and hostile ones must come out as
inert text, never as an exception.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dashboard.buyer_view import (
    OBJECTION_COLUMNS,
    OBJECTIONS_SHOWN,
    budget_text,
    duration_text,
    field_text,
    money,
    objection_table,
    preferences_markdown,
    score,
    timestamp_text,
    when,
)
from dashboard.markdown import md

IMAGE = "![x](http://attacker.invalid/p.png)"


@pytest.mark.parametrize("value, expected", [
    ({"min": 350_000, "max": 450_000, "currency": "USD"}, "$350,000–$450,000"),
    ({"min": 350_000, "max": 350_000, "currency": "USD"}, "$350,000"),
    ({"max": 450_000.0, "currency": "EUR"}, "up to €450,000"),
    ({"min": 200_000, "currency": "chf"}, "from 200,000 CHF"),
    ({"min": 99.5, "max": 120}, "99.50–120"),
    ({"min": "cheap", "max": None}, '{"min": "cheap", "max": null}'),
    ({"min": float("nan"), "max": 10}, "up to 10"),
    ({"min": True, "max": False}, '{"min": true, "max": false}'),
    ("around 400k", "around 400k"),
    (400_000, "400,000"),
    (None, "–"),
    ({}, "–"),
])
def test_budgets_read_as_money(value: object, expected: str) -> None:
    assert budget_text(value) == expected


def test_money_keeps_the_sign_before_the_symbol() -> None:
    assert money(-1_500, "USD") == "-$1,500"
    assert money(10**30) == f"{10**30:,}"


def test_numbers_no_float_can_hold_are_shown_not_raised() -> None:
    """Regression: a legacy record's JSON (read by the standard library, which keeps
    big integers) with a 400-digit score or budget crashed the Buyer page."""
    assert score(10**400) == "1.00e+400" and score(-(10**12)) == "-1.00e+12"
    assert score(123) == 123 and score(2.5) == 2.5 and score(float("inf")) == "inf"
    assert budget_text({"min": 10**400, "currency": "USD"}) == "from $1.00e+400"
    assert budget_text(-(10**400)) == "-1.00e+400"


def test_deep_or_huge_objections_and_fields_are_bounded() -> None:
    """Regression: objections nested 400 lists deep raised RecursionError, and 40,000
    objections with keys of their own took 45 s to lay out."""
    deep: list[object] = ["bottom"]
    for _ in range(2_000):
        deep = [deep]
    assert field_text(deep).endswith("[…]")
    rows = objection_table([{"note": deep}])
    assert rows[0]["Note"].endswith("[…]")
    many = [{f"key_{n}": n, "resolved": n % 2 == 0} for n in range(40_000)]
    started = time.perf_counter()
    rows = objection_table(many)
    assert time.perf_counter() - started < 5  # linear: a few ms here
    assert len(rows) == OBJECTIONS_SHOWN
    assert len({name for row in rows for name in row}) <= OBJECTION_COLUMNS
    mixed = objection_table([{"resolved": True}, {"resolved": "maybe"}])
    assert [row["Resolved"] for row in mixed] == ["yes", "maybe"]


def test_a_hostile_budget_or_preference_stays_inert() -> None:
    assert md(budget_text(IMAGE)) == md(IMAGE)
    shown = preferences_markdown({IMAGE: IMAGE, "note\n# heading": ["a", {"b": 1}]})
    assert "![" not in shown and "](" not in shown
    assert "\n# heading" not in shown  # a key's newline does not start a heading


def test_preferences_read_as_lines() -> None:
    assert preferences_markdown({"bedrooms": 3, "must_haves": ["garden", "garage"],
                                 "pool": True, "max_price": None}) == (
        "- **Bedrooms:** 3\n"
        f"- **Must haves:** {md('garden, garage')}\n"
        "- **Pool:** yes\n"
        "- **Max price:** –")
    assert preferences_markdown(None) == "–" and preferences_markdown({}) == "–"
    assert preferences_markdown("near the park") == "near the park"
    many = preferences_markdown({f"k{i}": i for i in range(40)})
    assert many.count("\n- ") == 30 and "10 more" in many
    assert field_text(2.0) == "2" and field_text([]) == "–"


def test_times_are_readable_with_their_zone() -> None:
    moment = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert when(moment) == "30 Nov 2026 10:00 UTC"
    assert when(moment, ZoneInfo("Europe/Berlin")) == "30 Nov 2026 11:00 CET"
    assert when(datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
                ZoneInfo("America/New_York")) == "1 Jul 2026 06:00 EDT"
    assert timestamp_text("2026-11-30T12:00:00+02:00") == "30 Nov 2026 10:00 UTC"
    assert timestamp_text("2026-11-30T10:00:00") == "30 Nov 2026 10:00 UTC"  # naive: UTC
    assert timestamp_text("yesterday-ish") == "yesterday-ish"
    assert timestamp_text(None) == "–"
    assert timestamp_text(12345) == "12345"


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_extreme_timestamps_do_not_raise(text: str) -> None:
    assert timestamp_text(text, ZoneInfo("Pacific/Kiritimati"))
    assert timestamp_text(text, timezone(timedelta(hours=-12)))


@pytest.mark.parametrize("seconds, expected", [
    (0, "0 s"), (45, "45 s"), (60, "1 min"), (12 * 60 + 20, "12 min"), (3600, "1 h"),
    (5.5 * 3600, "5 h 30 min"), (86_400 - 5, "1 day"), (3 * 86_400 - 3, "3 days"),
    (3 * 86_400 + 4 * 3600, "3 days 4 h"), (30 * 86_400, "30 days"), (-5, "0 s"),
])
def test_durations_read_at_every_scale(seconds: float, expected: str) -> None:
    assert duration_text(seconds) == expected
