"""What a new user's first hour found: metric values cut with an ellipsis, "1 messages",
a megabyte-long buyer drawn in full, a history slider past the store's cap, operator pages
that silently opened the Overview for a viewer, raw ISO objection times, and a TTL range
slider whose equal ends printed "30 30".

Every test runs the pages in AppTest on the private redis-server, signed in, as
test_dashboard.py does. Whether a metric value fits its column is judged with a model of
the browser at a 1280 px wide window with the sidebar open: the main column is 820 px,
columns are separated by 16 px, and a metric value is drawn in 36 px Source Sans (the
widths below were measured in Chromium, rounded up).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from apptest_tools import dashboard_store, sign_in
from streamlit.testing.v1 import AppTest

from dashboard import actions
from dashboard.buyer_view import MESSAGE_CHARS, MESSAGES_PER_PAGE, when
from dashboard.markdown import JOINER, plural
from dashboard.settings import ALLOW_SEEDING_ENV
from memory_core.audit import append_event
from memory_core.config import MemoryConfig, load_config
from memory_core.seeding import SeedOptions, generate_buyers, generate_state
from memory_core.store import SyncBuyerConversationMemory

APP = str(Path(__file__).resolve().parents[1] / "app.py")
BUYER_PAGE = "app_pages/buyer.py"
QA_PAGE = "app_pages/qa.py"
AUDIT_PAGE = "app_pages/audit.py"
PASSWORDS = {"operator": "operator-password-for-polish", "viewer": "viewer-password-for-polish"}

pytestmark = pytest.mark.usefixtures("isolated_dashboard")


@pytest.fixture
def memory(real_redis_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[SyncBuyerConversationMemory]:
    with dashboard_store(real_redis_url, monkeypatch, PASSWORDS) as opened:
        yield opened


def new_app(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["polish_tests"] = "isolated"  # the developer's secrets file is not read
    for name, value in query.items():
        at.query_params[name] = value
    return at


def run_page(page: str | None = None, *, role: str = "operator", **query: str) -> AppTest:
    at = new_app(**query)
    at.run()
    sign_in(at, PASSWORDS[role])
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def one(elements: Any, label: str) -> Any:
    matches = [e for e in elements if e.label == label]
    assert len(matches) == 1, f"{label!r} not among {[e.label for e in elements]}"
    return matches[0]


def state(seed: int, *, messages: int = 4, **fields: Any) -> dict[str, Any]:
    result = generate_state(random.Random(seed), temperature="warm", message_count=messages)
    result.update(fields)
    return result


# the width model ----------------------------------------------------------------------

MAIN_PX = 820  # the main column at a 1280 px window, sidebar open (measured)
GAP_PX = 16  # between columns ("small" gap)
# Widths of a metric value's characters (36 px Source Sans), rounded up; 20 px otherwise.
_CHAR_PX = {**dict.fromkeys("0123456789±×+", 18.0), **dict.fromkeys(",.'|!:;ijlI", 9.5),
            " ": 7.5, **dict.fromkeys("frt()-", 12.5), **dict.fromkeys("mwMW", 30.0),
            "…": 34.5}


def text_px(text: str) -> float:
    return sum(_CHAR_PX.get(char, 20.0) for char in text)


def placed(node: Any, width: float = MAIN_PX) -> Iterator[tuple[Any, float]]:
    """Every element below ``node`` with the width of the column it sits in."""
    yield node, width
    children = getattr(node, "children", None)
    if not isinstance(children, dict):
        return
    kids = list(children.values())
    columns = [kid for kid in kids if getattr(kid, "type", None) == "column"]
    total = sum(column.weight for column in columns)
    for kid in kids:
        share = width
        if any(kid is column for column in columns):
            share = (width - GAP_PX * (len(columns) - 1)) * kid.weight / total
        yield from placed(kid, share)


def metric_widths(at: AppTest) -> dict[str, float]:
    return {node.label: width for node, width in placed(at.main) if node.type == "metric"}


def too_wide(at: AppTest, values: dict[str, str] | None = None) -> list[str]:
    """The metrics whose value (or the value given for its label) would be cut."""
    shown = {m.label: re.sub(r"\\(.)", r"\1", m.value).replace(JOINER, "")  # as read
             for m in at.main.metric}
    widths = metric_widths(at)
    wanted = values if values is not None else shown
    return [f"{label}: {value!r} needs {text_px(value):.0f} px of {widths[label]:.0f}"
            for label, value in wanted.items()
            if label in widths and text_px(value) > widths[label]]


def test_the_width_model_matches_what_chromium_cut() -> None:
    """The trial's screenshots: in a quarter of the page "first time buyer" was cut and
    "6+ months" was not; in a fifth, "440.1 KiB" fitted."""
    quarter, fifth = (MAIN_PX - 3 * GAP_PX) / 4, (MAIN_PX - 4 * GAP_PX) / 5
    assert text_px("first time buyer") > quarter > text_px("6+ months")
    assert text_px("440.1 KiB") < fifth < text_px("62,914,564 B")


# 1. metric values fit their columns ----------------------------------------------------

# The longest value each headline metric shows on a store of tens of millions of buyers.
OVERVIEW_WORST = {"Buyers": "12,345,678", "Hot": "12,345,678", "Warm": "12,345,678",
                  "Cold": "12,345,678", "Stored": "1,023.9 GiB", "Compression ratio": "12.34×",
                  "Expiring in 24 h": "12,345,678", "No TTL": "12,345,678",
                  "Corrupt / foreign": "12,345,678"}
SAMPLED_WORST = {"Buyers": "12,345,678 ± 123,456", "Stored": "1,023.9 GiB ± 1,023.9 GiB",
                 **{label: "12,345,678 ± 123,456" for label in (
                     "Hot", "Warm", "Cold", "Expiring in 24 h", "No TTL", "Corrupt / foreign")}}


def test_the_overview_headline_numbers_fit_their_columns(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_many([(f"contact-{i}", state(i), None, None) for i in range(5)]) == 5
    at = run_page()
    assert set(OVERVIEW_WORST) <= set(metric_widths(at))
    assert not too_wide(at)
    assert not too_wide(at, OVERVIEW_WORST)
    widths = {node.label: width for node, width in placed(at.main) if node.type == "button"}
    for label in ("Show expiring", "Show without TTL"):  # 156 px wide with its icon
        assert widths[label] >= 160, (label, widths[label])
    toggles = {node.label: width for node, width in placed(at.main) if node.type == "toggle"}
    assert toggles["Auto-refresh"] >= 160 and toggles["Sample"] >= 160  # not "Auto-ref…"


def test_the_sampled_overview_fits_its_margins(memory: SyncBuyerConversationMemory) -> None:
    items = [(f"contact-{i:04d}", state(i, messages=8), None, None) for i in range(1200)]
    assert memory.save_many(items) == 1200
    at = run_page()
    one(at.toggle, "Sample").set_value(True)
    at.run()
    one(at.number_input, "Random keys to draw").set_value(1000)
    at.run()
    assert not at.exception
    shown = {m.label: m.value for m in at.main.metric}
    assert " ± " in shown["Buyers"] and " ± " in shown["Stored"]
    assert not too_wide(at), too_wide(at)
    assert not too_wide(at, SAMPLED_WORST)


BUYER_WORST = {"Temperature": "unknown", "Qualified": "yes", "Financial readiness": "100.0",
               "Buying motivation": "100.0", "Persona": "relocating professional",
               "Journey stage": "under contract", "Urgency": "1-3 months",
               "Financing": "pre-qualified"}


def test_the_buyer_metrics_fit_their_columns(memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("contact-persona", state(1, buyer_persona="first_time_buyer"))
    at = run_page(BUYER_PAGE, contact_id="contact-persona")
    shown = {m.label: m.value for m in at.main.metric}
    assert shown["Persona"] == "first time buyer"
    assert set(BUYER_WORST) <= set(shown)
    assert not too_wide(at), too_wide(at)
    assert not too_wide(at, BUYER_WORST)


def test_a_long_category_is_cut_and_whole_in_the_tooltip(
        memory: SyncBuyerConversationMemory) -> None:
    persona = "[a very long](http://attacker.invalid) persona " * 5_000
    assert memory.save_state("contact-long-persona", state(2, buyer_persona=persona))
    at = run_page(BUYER_PAGE, contact_id="contact-long-persona")
    metric = one(at.main.metric, "Persona")
    assert len(metric.value) < 1_000 and "more characters" in metric.value
    assert metric.proto.help == metric.value  # the tooltip holds what the column cuts
    assert "](" not in metric.value and "http://" not in metric.value


# 2. plurals ----------------------------------------------------------------------------

def test_one_of_a_thing_is_said_in_the_singular(
        memory: SyncBuyerConversationMemory, real_redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_CORE_TTL_DAYS_MIN", "1")
    monkeypatch.setenv("MEMORY_CORE_TTL_DAYS", "1")
    monkeypatch.setenv("MEMORY_CORE_MAX_HISTORY_MESSAGES", "21")
    config = load_config()
    assert (config.ttl_days, config.max_history_messages) == (1, 21)
    with SyncBuyerConversationMemory.from_url(real_redis_url, config) as capped:
        assert capped.save_state("contact-one", state(3, messages=1))
        overview = run_page()
        assert any("Scanned 1 key at" in c.value for c in overview.main.caption)
        assert any(re.search(r"\b1 key in this database", c.value)
                   for c in overview.sidebar.caption)
        assert capped.save_state("contact-many", state(4, messages=21))
    at = run_page(BUYER_PAGE, contact_id="contact-one")
    assert [h.value for h in at.subheader if h.value.startswith("Conversation")] == [
        "Conversation (1 message)"]
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    assert "TTL **1 day**" in sidebar and "History cap **21** messages" in sidebar

    at = run_page(BUYER_PAGE, contact_id="contact-many")
    assert "Show 1 older message" in [b.label for b in at.button]


def test_one_qa_seed_and_one_audit_entry_are_singular(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_many(b.as_save_item() for b in generate_buyers(
        SeedOptions(count=1, seed=7))) == 1
    at = run_page(QA_PAGE)
    assert any("**1** QA-seeded buyer is stored now" in m.value for m in at.markdown)
    assert "Yes, delete the 1 QA-seeded buyer" in [c.label for c in at.checkbox]

    assert append_event(memory.client, memory.prefix, actor="test", action="seed",
                        contact_id="qa-7-000000", outcome="written")
    at = run_page(AUDIT_PAGE)
    assert any("1 of 1 entry read matches" in c.value for c in at.main.caption)


def test_plural_helper() -> None:
    assert plural(1, "message") == "1 message" and plural(0, "message") == "0 messages"
    assert plural(1_024, "entry", "entries") == "1,024 entries"


# 3. long values are cut ----------------------------------------------------------------

HOSTILE = "![x](http://attacker.invalid/p.png) [log in](http://attacker.invalid) "


def test_a_huge_buyer_is_drawn_cut_and_inert(memory: SyncBuyerConversationMemory) -> None:
    """About a megabyte in messages and preferences: the page shows each long value cut
    with a note of how much was left out, and draws a few tens of kilobytes, not all."""
    long_text = HOSTILE * 2_000  # ~140,000 characters
    big = state(5, messages=4)
    for message in big["conversation_history"]:
        message["content"] = long_text
    big["property_preferences"] = {f"note_{i}": long_text[:20_000] for i in range(20)}
    big["budget_range"] = long_text[:50_000]
    assert memory.save_state("contact-huge", big)
    at = run_page(BUYER_PAGE, contact_id="contact-huge")

    texts = [t.value for t in at.text]
    assert len(texts) == 4
    for text in texts:
        assert len(text) == MESSAGE_CHARS + 1 and text.endswith("…")
    notes = [c.value for c in at.main.caption if c.value.startswith("Cut here")]
    assert notes == [f"Cut here: {len(long_text) - MESSAGE_CHARS:,} more characters not "
                     "shown. The JSON download holds the whole message."] * 4
    drawn = sum(len(str(node.proto)) for node, _ in placed(at.main)
                if getattr(node, "proto", None) is not None and node.type != "download_button"
                and node.type != "json")
    assert drawn < 100_000, drawn  # over 1,000,000 before
    preferences = next(m.value for m in at.markdown if m.value.startswith("**Preferences**"))
    assert len(preferences) < 20 * 1_000 and "more characters" in preferences
    for element in [*at.main.markdown, *at.main.caption, *at.main.metric]:
        text = re.sub(r"(`+) .*? \1", "", str(element.value))
        assert "![" not in text and "](" not in text and "http://" not in text
    raw = next(node for node, _ in placed(at.main) if node.type == "json")
    assert len(raw.proto.body) < 60_000  # long strings cut in the Raw JSON view too
    assert any("long strings cut to 2,000 characters" in c.value for c in at.main.caption)


def test_a_planted_history_past_the_cap_never_draws_more_than_the_cap(
        memory: SyncBuyerConversationMemory, real_redis_url: str) -> None:
    """A bot with a looser config (or anyone who can write Redis) stored 300 messages:
    "show older" stops at the dashboard's cap of 50, which is more than one page."""
    assert MESSAGES_PER_PAGE < memory.config.max_history_messages == 50
    with SyncBuyerConversationMemory.from_url(
            real_redis_url, MemoryConfig(max_history_messages=400)) as loose:
        assert loose.save_state("contact-planted", state(6, messages=300))
    at = run_page(BUYER_PAGE, contact_id="contact-planted")
    assert any(h.value == "Conversation (300 messages)" for h in at.subheader)
    assert any("more messages than the history cap (50)" in c.value for c in at.main.caption)
    for _ in range(10):
        older = [b for b in at.button if "older" in b.label]
        if not older:
            break
        older[0].click()
        at.run()
    assert len(at.chat_message) == 50
    assert not [b for b in at.button if "older" in b.label]


# 4. the history slider stops at the store's cap -----------------------------------------

def test_the_history_slider_ends_at_the_history_cap(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_page(QA_PAGE)
    slider = one(at.slider, "History length (messages)")
    assert slider.max == memory.config.max_history_messages == 50
    assert slider.value == (2, 50)

    monkeypatch.setenv("MEMORY_CORE_MAX_HISTORY_MESSAGES", "30")
    st.cache_resource.clear()  # the memory, and its config, are opened once per process
    at = run_page(QA_PAGE)
    assert one(at.slider, "History length (messages)").max == 30


# 5. a viewer at an operator page's URL is told why --------------------------------------

@pytest.mark.parametrize("page, title", [(QA_PAGE, "QA seeding"), (AUDIT_PAGE, "Audit")])
def test_a_viewer_at_an_operator_url_is_told_it_needs_the_operator_role(
        memory: SyncBuyerConversationMemory, page: str, title: str) -> None:
    assert memory.save_state("contact-1", state(8))
    at = new_app()
    at.run()
    at.switch_page(page)  # the URL opened before signing in, as a bookmark would
    at.run()
    sign_in(at, PASSWORDS["viewer"])
    assert not at.exception
    assert [t.value for t in at.main.title] == ["Operators only"]
    (info,) = at.main.info  # the message, and nothing of the page or the store
    assert info.value == (f"**{title}** needs the operator role: you are signed in as a "
                          "viewer. Sign out, then sign in with the operator password.")
    assert [type(node).__name__ for node in at.main.children.values()] == ["Title", "Info"]
    with pytest.raises(ValueError):  # its file is still not one of a viewer's pages
        at.switch_page(page)


# 6. objection times read like the page's other times ------------------------------------

def test_objection_times_are_shown_like_the_other_times(
        memory: SyncBuyerConversationMemory) -> None:
    raised = datetime(2026, 11, 16, 17, 9, tzinfo=UTC)
    objections = [{"objection": "Lost bidding wars", "raised_at": raised.isoformat(),
                   "resolved": False},
                  {"objection": HOSTILE, "raised_at": "last week", "resolved": True}]
    assert memory.save_state("contact-objections", state(9, objection_history=objections))
    at = run_page(BUYER_PAGE, contact_id="contact-objections")
    table = at.main.dataframe[-1].value
    (raised_column,) = [name for name in table.columns if "raised" in name.lower()]
    assert list(table[raised_column]) == [when(raised), "last week"]
    assert list(table.columns) == ["Objection", "Raised at", "Resolved"]
    assert list(table["Resolved"]) == [False, True]
    assert list(table["Objection"]) == ["Lost bidding wars", HOSTILE]  # a cell is text
    assert any(h.value == "Objections (2)" for h in at.subheader)


# 7. the TTL is two numbers, not a range slider with both ends on one spot ---------------

def test_the_ttl_is_chosen_as_shortest_and_longest(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_SEEDING_ENV, "1")
    asked: list[SeedOptions] = []
    real_seed = actions.seed_buyers

    def seed_buyers(access: Any, memory: Any, options: SeedOptions, *args: Any) -> Any:
        asked.append(options)
        return real_seed(access, memory, options, *args)

    monkeypatch.setattr(actions, "seed_buyers", seed_buyers)
    at = run_page(QA_PAGE)
    assert not [s for s in at.slider if "TTL" in s.label]
    shortest, longest = (one(at.number_input, label)
                         for label in ("Shortest TTL (days)", "Longest TTL (days)"))
    assert shortest.value == longest.value == memory.config.ttl_days
    shortest.set_value(40)
    longest.set_value(35)  # the wrong way round: taken as 35..40
    one(at.number_input, "Buyers").set_value(20)
    one(at.button, "Seed buyers").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (options,) = asked
    assert options.ttl_days_range == (35, 40) and options.history_range == (2, 50)
    ttls = [memory.client.ttl(key) for key in memory.client.scan_iter(
        match=memory.scan_pattern)]
    assert len(ttls) == 20 and all(0 < ttl <= 40 * 86_400 for ttl in ttls), ttls
