"""The Streamlit dashboard, run headless with AppTest against the private redis-server.

Each test seeds exactly the data it asserts on, opens ``app.py`` in an AppTest and reads
the rendered elements: metrics, the Vega-Lite specs and Arrow datasets of the charts,
dataframes, widgets. Write actions behind ``st.dialog`` cannot be clicked in AppTest,
so the functions in ``dashboard.actions`` are also called directly.

On the live Redis the dashboard asks for a password: the ``memory`` fixture configures a
viewer and an operator password, and :func:`run_page` signs in (as operator unless told
otherwise) through the sign-in form, as a person would. Sign-in itself, roles and every
route around them are tested in test_auth.py.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
import streamlit as st
from apptest_tools import chart_specs, sign_in, walk
from streamlit.testing.v1 import AppTest

from dashboard.actions import (
    ActionRefused,
    clear_buyer,
    remove_qa_seeds,
    reset_buyer_ttl,
    seed_buyers,
    seed_file,
)
from dashboard.auth import OPERATOR_PASSWORD_ENV, VIEWER_PASSWORD_ENV, Access
from dashboard.buyer_view import SEARCH_KEY, when
from dashboard.markdown import JOINER, code, md
from dashboard.resources import last_scan
from dashboard.settings import ALLOW_SEEDING_ENV, READ_ONLY_ENV, DashboardSettings, load_settings
from memory_core.audit import read_events
from memory_core.errors import InvalidState, RevisionConflict
from memory_core.seeding import SeedOptions, generate_buyers, generate_state
from memory_core.state import QA_SEED_FIELD, mask_pii
from memory_core.store import SyncBuyerConversationMemory
from memory_core.testing import RedisServer, free_port

APP = str(Path(__file__).resolve().parents[1] / "app.py")
BUYER_PAGE = "app_pages/buyer.py"
QA_PAGE = "app_pages/qa.py"
DAY = 86_400

# The known data of the overview tests.
HOT, WARM, COLD = 12, 7, 5
QA_SEEDS = 6  # of which QA_HOT are hot
QA_HOT = 3
NO_TTL = 2
GARBAGE_ID = "garbage-0001"
PASSWORDS = {"operator": "operator-password-for-tests", "viewer": "viewer-password-for-tests"}


# fixtures ---------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("isolated_dashboard")


@pytest.fixture
def memory(real_redis_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[SyncBuyerConversationMemory]:
    """A memory on the (flushed) private Redis, which the dashboard is pointed at too,
    with a viewer and an operator password configured."""
    monkeypatch.setenv("REDIS_URL", real_redis_url)
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, PASSWORDS["operator"])
    monkeypatch.setenv(VIEWER_PASSWORD_ENV, PASSWORDS["viewer"])
    with SyncBuyerConversationMemory.from_url(real_redis_url) as opened:
        yield opened


# helpers ----------------------------------------------------------------------------

def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    # A non-empty at.secrets replaces st.secrets, so a developer's .streamlit/secrets.toml
    # (redis_url, read_only, ...) cannot leak into the tests.
    at.secrets["dashboard_tests"] = "isolated"
    return at




def run_page(page: str | None = None, *, role: str | None = "operator",
             **query: str) -> AppTest:
    """A page as ``role`` sees it: signed in first when passwords are configured."""
    at = new_app()
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    if role is not None and os.environ.get(OPERATOR_PASSWORD_ENV):
        sign_in(at, PASSWORDS[role])
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def buyer_keys(memory: SyncBuyerConversationMemory) -> int:
    """Keys under the buyer prefix: dbsize() also counts the audit stream."""
    return sum(1 for _ in memory.client.scan_iter(match=memory.scan_pattern))


def rendered_text(at: AppTest) -> str:
    """Every rendered element's protobuf as text: what a browser could show."""
    return "\n".join(str(node.proto) for block in (at.main, at.sidebar)
                     for node in walk(block) if getattr(node, "proto", None) is not None)


def encoded_fields(spec: dict[str, Any]) -> set[str]:
    """Fields used by the encodings of a chart and of all its layers."""
    fields: set[str] = set()
    for part in [spec, *spec.get("layer", [])]:
        for channel in part.get("encoding", {}).values():
            for item in channel if isinstance(channel, list) else [channel]:
                if isinstance(item, dict) and "field" in item:
                    fields.add(item["field"])
    return fields


def chart(at: AppTest, title: str) -> tuple[dict[str, Any], list[pd.DataFrame]]:
    found = chart_specs(at)
    match = [name for name in found if name.startswith(title)]
    assert len(match) == 1, f"chart {title!r} not among {sorted(found)}"
    return found[match[0]]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.main.metric}


def widget(elements: Any, label: str) -> Any:
    matches = [e for e in elements if e.label == label]
    assert len(matches) == 1, f"{label!r} not among {[e.label for e in elements]}"
    return matches[0]


def button_labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def state_for(temperature: str, seed: int, *, messages: int = 12,
              qa_seed: bool = False) -> dict[str, Any]:
    state = generate_state(random.Random(seed), temperature=temperature, message_count=messages)
    if qa_seed:
        state[QA_SEED_FIELD] = True
    return state


def seed_known_buyers(memory: SyncBuyerConversationMemory) -> dict[str, list[str]]:
    """12 hot, 7 warm, 5 cold buyers (6 QA seeds, 2 without TTL) and one garbage key."""
    items = []
    ids: dict[str, list[str]] = {"hot": [], "warm": [], "cold": [], "qa": []}
    counts = {"hot": HOT, "warm": WARM, "cold": COLD}
    n = 0
    for temperature, count in counts.items():
        for index in range(count):
            n += 1
            qa = (temperature == "hot" and index < QA_HOT) or (
                temperature != "hot" and index == 0) or (temperature == "warm" and index == 1)
            contact_id = f"{'qa' if qa else 'contact'}-{temperature}-{index:03d}"
            # 4..73 messages: short ones stay uncompressed, long ones are capped at 50.
            items.append((contact_id, state_for(temperature, n, messages=4 + 3 * n,
                                                qa_seed=qa), None, None))
            ids[temperature].append(contact_id)
            if qa:
                ids["qa"].append(contact_id)
    assert len(ids["qa"]) == QA_SEEDS
    assert memory.save_many(items) == HOT + WARM + COLD
    for contact_id in (ids["warm"][3], ids["cold"][4]):
        assert memory.client.persist(memory.key_for(contact_id))
    memory.client.set(memory.key_for(GARBAGE_ID), b"\x00\x01 definitely not a record",
                      ex=5 * DAY)
    return ids


# demo mode --------------------------------------------------------------------------

def test_demo_mode_without_redis_url_says_so_and_shows_the_demo_buyers() -> None:
    at = run_page()
    assert any("Demo mode" in info.value for info in at.info)
    assert metrics(at)["Buyers"] == "300"
    assert len(chart_specs(at)) >= 8
    assert "Demo" in "".join(m.value for m in at.sidebar.markdown)


# overview ---------------------------------------------------------------------------

def test_overview_metrics_and_charts_show_the_stored_buyers(
        memory: SyncBuyerConversationMemory) -> None:
    seed_known_buyers(memory)
    at = run_page()

    assert not any("Demo mode" in info.value for info in at.info)
    shown = metrics(at)
    assert shown["Buyers"] == str(HOT + WARM + COLD)
    assert (shown["Hot"], shown["Warm"], shown["Cold"]) == (str(HOT), str(WARM), str(COLD))
    assert shown["No TTL"] == str(NO_TTL)
    assert shown["Corrupt / foreign"] == "1"
    assert any(f"{NO_TTL} key(s) have no TTL" in w.value for w in at.main.warning)

    spec, (data,) = chart(at, "Temperature mix")
    assert "temperature" in encoded_fields(spec)
    assert dict(zip(data["temperature"], data["buyers"], strict=True)) == {
        "hot": HOT, "warm": WARM, "cold": COLD}

    spec, frames = chart(at, "Compression ratio")
    assert {"bin_start", "codec"} <= encoded_fields(spec)
    assert int(frames[0]["buyers"].sum()) == HOT + WARM + COLD
    assert set(frames[0]["codec"]) == {"zstd"}  # the default threshold compresses short chats

    spec, frames = chart(at, "Days until expiry")
    assert "day" in encoded_fields(spec)
    rules = next(f for f in frames if "day" in f.columns)
    assert sorted(rules["day"]) == [7, 30, 90]
    bars = next(f for f in frames if "buyers" in f.columns)
    assert int(bars["buyers"].sum()) == HOT + WARM + COLD - NO_TTL
    assert set(bars["bin_start"]) == {29}  # saved just now with the 30-day default

    spec, frames = chart(at, "History length")
    rule = next(f for f in frames if "cap" in f.columns)
    assert list(rule["cap"]) == [50]
    bars = next(f for f in frames if "buyers" in f.columns)
    assert int(bars.loc[bars["bin_end"] == 50, "buyers"].sum()) > 0  # long chats capped
    assert bars["bin_end"].max() == 50  # exactly 50 messages ends at the cap, not past it

    spec, frames = chart(at, "Original vs stored bytes")
    assert {"original_bytes", "stored_bytes"} <= encoded_fields(spec)
    cells = next(f for f in frames if "stored_bytes" in f.columns)
    assert int(cells["buyers"].sum()) == HOT + WARM + COLD  # every buyer, binned
    assert (cells["stored_max"] <= cells["original_max"] + 256).all()  # + header
    assert set(cells["codec"]) == {"zstd"}  # the default threshold: every state compressed

    problems = at.main.dataframe[-1].value
    assert list(problems["contact_id"]) == [GARBAGE_ID]
    assert list(problems["status"]) == ["corrupt"]

    table = at.main.dataframe[0].value
    assert len(table) == HOT + WARM + COLD
    assert GARBAGE_ID not in set(table["contact_id"])


def test_overview_filters_change_the_numbers(memory: SyncBuyerConversationMemory) -> None:
    seed_known_buyers(memory)
    at = run_page()
    assert metrics(at)["Buyers"] == str(HOT + WARM + COLD)

    widget(at.multiselect, "Temperature").set_value(["hot"])
    at.run()
    assert not at.exception
    shown = metrics(at)
    assert (shown["Buyers"], shown["Hot"], shown["Warm"], shown["Cold"]) == (
        str(HOT), str(HOT), "0", "0")
    _, (data,) = chart(at, "Temperature mix")
    assert list(data["temperature"]) == ["hot"]
    assert list(data["buyers"]) == [HOT]
    assert len(at.main.dataframe[0].value) == HOT

    widget(at.toggle, "Hide QA seeds").set_value(True)
    at.run()
    assert metrics(at)["Buyers"] == str(HOT - QA_HOT)

    widget(at.multiselect, "Temperature").set_value([])
    at.run()
    assert metrics(at)["Buyers"] == str(HOT + WARM + COLD - QA_SEEDS)
    assert not at.main.dataframe[0].value["qa_seed"].any()

    widget(at.toggle, "Hide QA seeds").set_value(False)
    at.run()
    assert metrics(at)["Buyers"] == str(HOT + WARM + COLD)


def test_overview_with_no_buyers_says_so(memory: SyncBuyerConversationMemory) -> None:
    at = run_page()
    assert metrics(at)["Buyers"] == "0"
    assert any("The store is empty" in info.value for info in at.info)
    assert chart_specs(at) == {}


# buyer page -------------------------------------------------------------------------

FULL_NAME = "Marguerite Okonkwo"


def seed_named_buyer(memory: SyncBuyerConversationMemory, contact_id: str,
                     messages: int = 9) -> dict[str, Any]:
    state = state_for("hot", 77, messages=messages)
    state["buyer_name"] = FULL_NAME
    state["buyer_email"] = "marguerite.okonkwo@example.com"
    state["conversation_history"][0]["content"] = f"Hello, I am {FULL_NAME}."
    assert memory.save_state(contact_id, state)
    return state


def test_buyer_page_from_a_query_parameter_shows_the_masked_transcript(
        memory: SyncBuyerConversationMemory) -> None:
    state = seed_named_buyer(memory, "contact-2026-000042", messages=9)
    at = run_page(BUYER_PAGE, contact_id="contact-2026-000042")

    assert at.text_input[0].value == "contact-2026-000042"
    assert len(at.chat_message) == 9
    assert [m.name for m in at.chat_message] == [  # newest first
        "user" if m["role"] == "user" else "assistant"
        for m in reversed(state["conversation_history"])]
    assert any("Conversation (9 messages)" in h.value for h in at.subheader)
    transcript = [t.value for t in at.text]  # plain text: no markdown, no autolinks
    assert transcript[-1] == "Hello, I am M*** O***."  # masked in the transcript too
    everything = rendered_text(at)
    for secret in (FULL_NAME, "Marguerite", "Okonkwo", "marguerite.okonkwo@", state["buyer_phone"]):
        assert secret not in everything
    assert metrics(at)["Temperature"] == "hot"
    assert {"Clear this buyer", "Reset TTL to default"} <= set(button_labels(at))

    widget(at.toggle, "Reveal name, phone and email").set_value(True)
    at.run()
    assert FULL_NAME in "\n".join(m.value for m in at.markdown)
    assert at.text[-1].value == f"Hello, I am {FULL_NAME}."
    (event,) = read_events(memory.client, memory.prefix)  # the reveal is on the record
    assert (event.action, event.contact_id, event.outcome) == (
        "reveal_pii", "contact-2026-000042", "shown")
    assert event.actor.startswith("dashboard:operator:")


def test_buyer_page_with_history_over_the_cap_shows_the_kept_messages(
        memory: SyncBuyerConversationMemory) -> None:
    """50 kept messages, shown newest first 20 at a time, with "show older" for the rest."""
    state = seed_named_buyer(memory, "contact-long", messages=70)
    kept = state["conversation_history"][-50:]
    at = run_page(BUYER_PAGE, contact_id="contact-long")
    assert memory.config.max_history_messages == 50
    assert any("Conversation (50 messages)" in h.value for h in at.subheader)
    for shown, button in ((20, "Show 20 older messages"), (40, "Show 10 older messages"),
                          (50, None)):
        assert len(at.chat_message) == shown
        texts = [t.value for t in at.text]
        assert texts == [plain_masked(m["content"]) for m in reversed(kept)][:shown]
        if button is None:
            assert not [b for b in button_labels(at) if "older" in b]
            assert any(c.value == "Newest first." for c in at.main.caption)
            break
        assert any(f"the latest {shown} of 50" in c.value for c in at.main.caption)
        widget(at.button, button).click()
        at.run()
        assert not at.exception


def plain_masked(content: str) -> str:
    """A message as the page shows it: the buyer's name masked."""
    return content.replace(FULL_NAME, "M*** O***")


def shown_buyer(at: AppTest, memory: SyncBuyerConversationMemory) -> str | None:
    """The contact id whose record the page shows (by its Redis key), None for none."""
    text = markdown_text(at)
    found = [c for c in SEARCH_IDS if code(memory.key_for(c)) in text]
    assert len(found) <= 1, found
    return found[0] if found else None


SEARCH_IDS = ("contact-search-a", "contact-search-b", "contact-search-c", "contact-search-d",
              "contact-search-e", "contact-search-f")


def test_the_search_box_the_url_and_the_buyer_shown_always_agree(
        memory: SyncBuyerConversationMemory) -> None:
    """Regression: after a deep link, every second id typed snapped back to the one
    before, and emptying the box left the old contact_id in the URL."""
    for contact_id in SEARCH_IDS:
        seed_named_buyer(memory, contact_id, messages=2)
    at = run_page(BUYER_PAGE, contact_id=SEARCH_IDS[0])
    box = at.text_input(key=SEARCH_KEY)
    assert (box.value, at.query_params["contact_id"], shown_buyer(at, memory)) == (
        SEARCH_IDS[0], SEARCH_IDS[0], SEARCH_IDS[0])
    for contact_id in SEARCH_IDS[1:]:
        at.text_input(key=SEARCH_KEY).input(f"  {contact_id} ")
        at.run()
        assert not at.exception
        assert at.text_input(key=SEARCH_KEY).value == contact_id
        assert at.query_params["contact_id"] == contact_id
        assert shown_buyer(at, memory) == contact_id
        at.run()  # and it stays so on the next run
        assert at.text_input(key=SEARCH_KEY).value == contact_id
        assert shown_buyer(at, memory) == contact_id

    at.text_input(key=SEARCH_KEY).input("")
    at.run()
    assert at.text_input(key=SEARCH_KEY).value == ""
    assert "contact_id" not in at.query_params
    assert shown_buyer(at, memory) is None and not at.chat_message
    assert any("Type a contact id" in c.value for c in at.main.caption)

    at.query_params["contact_id"] = SEARCH_IDS[2]  # from outside: the box follows
    at.run()
    assert at.text_input(key=SEARCH_KEY).value == SEARCH_IDS[2]
    assert shown_buyer(at, memory) == SEARCH_IDS[2]

    at.switch_page("app_pages/overview.py")  # away (the box's state is dropped) and back
    at.run()
    at.query_params["contact_id"] = SEARCH_IDS[2]  # as the browser's Back button would
    at.switch_page(BUYER_PAGE)
    at.run()
    assert at.text_input(key=SEARCH_KEY).value == SEARCH_IDS[2]
    assert shown_buyer(at, memory) == SEARCH_IDS[2]


def test_the_buyer_page_shows_fields_as_words_not_json(
        memory: SyncBuyerConversationMemory) -> None:
    state = state_for("warm", 3, messages=2)
    state.update(
        budget_range={"min": 350_000, "max": 450_000, "currency": "USD"},
        property_preferences={"bedrooms": 3, "bathrooms": 2.0, "property_type": "townhouse",
                              "neighborhoods": ["Linden Estates", "Sunset Bluff"],
                              "max_commute_minutes": 20, "pool": False})
    state["conversation_history"][0]["timestamp"] = "2026-11-30T10:00:00+00:00"
    state["conversation_history"][1]["timestamp"] = "2026-11-30T12:05:00+02:00"
    assert memory.save_state("contact-words", state)
    stored = memory.load_state("contact-words")
    assert stored is not None
    at = run_page(BUYER_PAGE, contact_id="contact-words")
    text = markdown_text(at)

    assert f"**Budget:** {md('$350,000–$450,000')}" in text  # "$" escaped: not LaTeX
    for line in ("- **Bedrooms:** 3", "- **Bathrooms:** 2",
                 "- **Property type:** townhouse",
                 f"- **Neighborhoods:** {md('Linden Estates, Sunset Bluff')}",
                 "- **Max commute minutes:** 20", "- **Pool:** no"):
        assert line in text, line
    assert md('{"min"') not in text and md('"bedrooms"') not in text  # no raw JSON
    captions = [c.value for m in at.chat_message for c in m.caption]  # newest first
    assert captions == [md("30 Nov 2026 10:05 UTC"), md("30 Nov 2026 10:00 UTC")]
    last = datetime.fromisoformat(stored["last_interaction_timestamp"])
    assert f"**Last interaction:** {md(when(last))}" in text
    assert f"**Redis key:** {code(memory.key_for('contact-words'))}" in text
    with_expiry = re.search(r"\*\*TTL:\*\* 30 days\\, expires (\d+ \w+ \d{4} "
                            r"\d\d\\:\d\d UTC)", text)
    assert with_expiry, text


def test_buyer_page_for_a_missing_buyer_says_there_is_no_state(
        memory: SyncBuyerConversationMemory) -> None:
    seed_named_buyer(memory, "contact-present")
    at = run_page(BUYER_PAGE, contact_id="contact-absent")
    assert any("No saved state for this contact" in info.value for info in at.info)
    assert not at.error
    assert not at.chat_message
    assert len(at.selectbox) == 0


def test_a_prefix_with_more_matches_than_listed_says_the_list_is_capped(
        memory: SyncBuyerConversationMemory) -> None:
    memory.save_many([(f"lot-{i:03d}", {"buyer_temperature": "warm"}, None, None)
                      for i in range(60)])
    at = run_page(BUYER_PAGE, contact_id="lot-")
    matches = widget(at.selectbox, "Matching contacts")
    assert matches.options == [f"lot-{i:03d}" for i in range(50)]  # sorted before the cut
    shown = " ".join(m.value for m in at.markdown)
    assert "60 start with it (the first 50 are listed" in shown


def test_buyer_page_for_a_prefix_offers_the_matches(
        memory: SyncBuyerConversationMemory) -> None:
    for contact_id in ("shop-001", "shop-002", "shop-003", "other-001"):
        seed_named_buyer(memory, contact_id, messages=4)
    at = run_page(BUYER_PAGE, contact_id="shop-")
    assert not at.info
    matches = widget(at.selectbox, "Matching contacts")
    assert matches.options == ["shop-001", "shop-002", "shop-003"]

    matches.set_value("shop-002")
    at.run()
    assert not at.exception
    assert at.query_params["contact_id"] == "shop-002"
    assert at.text_input[0].value == "shop-002"
    assert len(at.chat_message) == 4


def test_buyer_page_finds_by_an_exact_phone_or_email_and_offers_erase(
        memory: SyncBuyerConversationMemory) -> None:
    state = seed_named_buyer(memory, "contact-find")
    digits = "".join(c for c in state["buyer_phone"] if c.isdigit())
    for query, kind in (("  MARGUERITE.Okonkwo@example.com ", "email"), (f"+{digits}", "phone")):
        at = run_page(BUYER_PAGE, contact_id=query)
        found = widget(at.selectbox, f"Buyers with this {kind} (1)")
        assert found.options == ["contact-find"]
        erase = widget(at.button, f"Erase 1 buyer(s) with this {kind}")
        erase.click()
        at.run()
        assert not at.exception
        assert widget(at.button, "Erase permanently").disabled  # until ERASE is typed
        assert "Cancel" in button_labels(at)
        assert at.text_input(key="confirm_erase").label == "Type ERASE to confirm"
        found = widget(at.selectbox, f"Buyers with this {kind} (1)")
        found.set_value("contact-find")
        at.run()
        assert at.query_params["contact_id"] == "contact-find"
        assert len(at.chat_message) == 9
    events = read_events(memory.client, memory.prefix)
    assert [(e.action, e.outcome) for e in events] == [
        ("find_by_phone", "1 found"), ("find_by_email", "1 found")]
    assert "okonkwo" not in repr(memory.client.xrange(f"{memory.prefix}.audit")).lower()
    assert memory.load_state("contact-find") is not None  # nothing erased without ERASE


def test_buyer_page_search_by_email_is_for_operators(
        memory: SyncBuyerConversationMemory) -> None:
    seed_named_buyer(memory, "contact-find")
    at = run_page(BUYER_PAGE, role="viewer", contact_id="marguerite.okonkwo@example.com")
    assert any("for operators" in i.value for i in at.info)
    assert not at.selectbox and "contact-find" not in rendered_text(at)
    assert read_events(memory.client, memory.prefix) == []


def test_an_exact_contact_id_that_looks_like_a_phone_opens_the_buyer(
        memory: SyncBuyerConversationMemory) -> None:
    seed_named_buyer(memory, "5550001234", messages=3)
    at = run_page(BUYER_PAGE, contact_id="5550001234")
    assert len(at.chat_message) == 3


def test_buyer_page_for_a_corrupt_record_explains_and_offers_to_clear(
        memory: SyncBuyerConversationMemory) -> None:
    memory.client.set(memory.key_for("contact-broken"), b"\x00\x01 not a record")
    at = run_page(BUYER_PAGE, contact_id="contact-broken")
    assert any("cannot be read" in e.value for e in at.error)
    assert "Clear this buyer" in button_labels(at)


def test_buyer_page_for_a_foreign_key_explains_and_offers_to_clear(
        memory: SyncBuyerConversationMemory) -> None:
    """Regression: a hash at a buyer key (listed by the overview) made the page crash."""
    memory.client.hset(memory.key_for("contact-hash"), mapping={"owner": "another app"})
    at = run_page(BUYER_PAGE, contact_id="contact-hash")
    assert any("cannot be read" in e.value and "WRONGTYPE" in e.value for e in at.error)
    assert "Clear this buyer" in button_labels(at)


def test_reset_ttl_button_gives_the_default_ttl_back(
        memory: SyncBuyerConversationMemory) -> None:
    seed_named_buyer(memory, "contact-ttl")
    key = memory.key_for("contact-ttl")
    assert memory.client.expire(key, 3 * DAY)
    at = run_page(contact_id="contact-ttl")  # the overview first: its scan is cached
    assert last_scan(load_settings()) is not None
    at.switch_page(BUYER_PAGE)
    at.run()
    assert f"**TTL:** {md(f'3 days, expires {expiry_day(3)}')}" in markdown_text(at)

    widget(at.button, "Reset TTL to default").click()
    at.run()
    assert not at.exception
    assert not at.error
    assert 30 * DAY - 10 <= memory.client.ttl(key) <= 30 * DAY
    assert any("TTL reset to 30 days" in t.value for t in at.toast)
    # the page shows what the toast says, and the overview will scan again
    assert f"**TTL:** {md(f'30 days, expires {expiry_day(30)}')}" in markdown_text(at)
    assert last_scan(load_settings()) is None
    at.run()  # the toast is shown once
    assert not at.toast


def expiry_day(days: int) -> str:
    """"30 Dec 2026": the day a TTL of ``days`` set now ends, as the buyer page shows it."""
    return when(datetime.now(UTC) + timedelta(days=days)).rsplit(" ", 2)[0]


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_reset_ttl_refuses_when_the_bot_saved_since_the_page_was_drawn(
        memory: SyncBuyerConversationMemory) -> None:
    seed_named_buyer(memory, "contact-race")
    key = memory.key_for("contact-race")
    at = run_page(BUYER_PAGE, contact_id="contact-race")
    assert "**Revision:** 1" in "\n".join(m.value for m in at.markdown)
    assert memory.save_state("contact-race", {"buyer_temperature": "warm"}, ttl_override=DAY)
    widget(at.button, "Reset TTL to default").click()
    at.run()
    assert not at.exception
    assert any("saved by the bot since you looked" in e.value for e in at.error)
    assert memory.client.ttl(key) <= DAY  # the bot's newer save keeps its own TTL


def test_clearing_from_the_page_never_deletes_a_newer_save(
        memory: SyncBuyerConversationMemory, real_redis_url: str) -> None:
    """The dialog's action, called as its button would with the revision on screen."""
    seed_named_buyer(memory, "contact-race")
    shown = memory.read_record("contact-race")
    assert shown is not None and shown.revision == 1
    assert memory.save_state("contact-race", {"buyer_temperature": "warm"})
    with pytest.raises(RevisionConflict, match=r"revision 1 -> 2"):
        clear_buyer(as_operator(real_redis_url), memory, "contact-race", "contact-race",
                    shown.revision)
    assert memory.client.exists(memory.key_for("contact-race"))


def test_every_page_survives_a_huge_current_dictionary_pointer(
        memory: SyncBuyerConversationMemory) -> None:
    """5,000 digits at <prefix>.zdict:current once made every dashboard page raise."""
    seed_named_buyer(memory, "contact-pointer")
    memory.client.set(f"{memory.prefix}.zdict:current", "9" * 5000)
    for page, query in ((None, {}), (BUYER_PAGE, {"contact_id": "contact-pointer"}),
                        (QA_PAGE, {})):
        at = run_page(page, **query)
        assert not at.error, [e.value for e in at.error]
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    assert "Dictionary: **none**" in sidebar


def test_qa_page_refuses_a_file_naming_a_real_buyer(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory.save_state("contact-real", {"buyer_temperature": "warm"})
    content = b'[{"contact_id": "qa-fine", "buyer_temperature": "hot"},' \
              b' {"contact_id": "contact-real", "buyer_temperature": "cold"}]'
    at = upload_and_seed(monkeypatch, "clash.json", content, "application/json")
    errors = "\n".join(e.value for e in at.error)
    assert "hold real buyers" in errors and md("contact-real") in errors
    assert memory.load_state("qa-fine") is None
    kept = memory.load_state("contact-real")
    assert kept is not None and kept["buyer_temperature"] == "warm"


HOSTILE_ID = "![pixel](https://elsewhere.example/p.png)"


def test_a_contact_id_holding_markdown_loads_no_image_in_any_message(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Contact ids may hold any printable character; every message escapes them."""
    assert memory.save_state(HOSTILE_ID, {"buyer_temperature": "warm"})
    content = json.dumps([{"contact_id": HOSTILE_ID, "buyer_temperature": "hot"}]).encode()
    at = upload_and_seed(monkeypatch, "![f](https://elsewhere.example/f.png).json", content)
    at.query_params["contact_id"] = HOSTILE_ID
    assert at.error, "the clash with a real buyer is reported"
    page = run_page(BUYER_PAGE, contact_id=HOSTILE_ID)
    assert memory.save_state(HOSTILE_ID, {"buyer_temperature": "cold"}, ttl_override=DAY)
    widget(page.button, "Reset TTL to default").click()
    page.run()
    assert any("saved by the bot since you looked" in e.value for e in page.error)
    for element in [*at.error, *page.error, *page.markdown, *page.success]:
        text = re.sub(r"(`+) .*? \1", "", element.value)  # a code span shows its text only
        assert "![" not in text and "](http" not in text, element.value


# permissions ------------------------------------------------------------------------

def test_read_only_hides_write_actions(memory: SyncBuyerConversationMemory,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(READ_ONLY_ENV, "1")
    seed_named_buyer(memory, "contact-ro")
    at = run_page(BUYER_PAGE, contact_id="contact-ro")
    assert len(at.chat_message) == 9
    labels = button_labels(at)
    assert "Clear this buyer" not in labels
    assert "Reset TTL to default" not in labels
    assert any("Read-only" in c.value for c in at.caption)

    at.switch_page(QA_PAGE)
    at.run()
    assert not at.exception
    assert any("read-only" in w.value for w in at.warning)
    assert widget(at.button, "Seed buyers").disabled
    assert "Remove QA seeds" not in button_labels(at)


def test_seeding_is_disabled_on_a_real_redis_unless_allowed(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_page(QA_PAGE)
    assert any("Seeding is disabled on this Redis" in w.value for w in at.warning)
    assert widget(at.button, "Seed buyers").disabled

    st.cache_resource.clear()
    monkeypatch.setenv(ALLOW_SEEDING_ENV, "1")
    at = run_page(QA_PAGE)
    assert not at.warning
    submit = widget(at.button, "Seed buyers")
    assert not submit.disabled
    widget(at.number_input, "Buyers").set_value(15)
    submit.click()
    at.run()
    assert not at.exception
    assert any("Seeded **15** QA buyers" in s.value for s in at.success)
    assert buyer_keys(memory) == 15
    assert any("**15** QA-seeded buyers are stored now" in m.value for m in at.markdown)
    # the sidebar is drawn before the page seeds: it is drawn again after
    keys = memory.client.dbsize()
    assert any(f"{keys:,} keys in this database" in c.value for c in at.sidebar.caption)
    at.run()  # the message is shown once
    assert not at.success


def upload_and_seed(monkeypatch: pytest.MonkeyPatch, name: str, content: bytes,
                    mime: str = "application/json") -> AppTest:
    monkeypatch.setenv(ALLOW_SEEDING_ENV, "1")
    at = run_page(QA_PAGE)
    at.file_uploader[0].set_value((name, content, mime))
    at.run()
    widget(at.button, "Seed from file").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_qa_page_seeds_an_uploaded_scenario_file(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    content = (b"- contact_id: qa-upload-1\n  buyer_temperature: hot\n"
               b"- contact_id: qa-upload-2\n  buyer_temperature: cold\n")
    at = upload_and_seed(monkeypatch, "two.yaml", content, "application/yaml")
    assert any(f"Seeded 2 buyer(s) from {md('two.yaml')}" in s.value for s in at.success)
    for contact_id, temperature in (("qa-upload-1", "hot"), ("qa-upload-2", "cold")):
        state = memory.load_state(contact_id)
        assert state is not None
        assert (state["buyer_temperature"], state[QA_SEED_FIELD]) == (temperature, True)


def test_qa_page_lists_the_bad_items_of_an_uploaded_file(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    content = b'[{"contact_id": "qa-ok", "buyer_temperature": "hot"}, {"contact_id": 7}]'
    at = upload_and_seed(monkeypatch, "bad.json", content)
    assert len(at.error) == 1
    assert md("item 2: contact_id must be a string") in at.error[0].value
    assert "nothing was written" in at.error[0].value
    assert buyer_keys(memory) == 0


def test_qa_page_reports_a_file_that_is_not_utf8(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a UTF-16 file (Windows Notepad's "Unicode") crashed the page."""
    content = '{"contact_id": "qa-utf16"}'.encode("utf-16")
    at = upload_and_seed(monkeypatch, "utf16.json", content)
    assert any(md("utf16.json is not UTF-8 text") in e.value for e in at.error)
    assert buyer_keys(memory) == 0


def test_qa_page_removes_qa_seeds_after_confirmation(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory.save_many(b.as_save_item() for b in generate_buyers(
        SeedOptions(count=5, seed=2))) == 5
    seed_named_buyer(memory, "contact-real")
    at = run_page(QA_PAGE)  # no allow_seeding: removing QA seeds is still allowed
    assert any("**5** QA-seeded buyers are stored now" in m.value for m in at.markdown)
    remove = widget(at.button, "Remove QA seeds")
    assert remove.disabled
    widget(at.checkbox, "Yes, delete all 5 QA-seeded buyers").check()
    at.run()
    widget(at.button, "Remove QA seeds").click()
    at.run()
    assert not at.exception
    assert any("Removed 5 QA-seeded buyers" in s.value for s in at.success)
    assert buyer_keys(memory) == 1
    assert memory.load_state("contact-real") is not None
    # Regression: the page said "Removed 5" beside "5 QA-seeded buyers are stored now".
    assert any("**0** QA-seeded buyers are stored now" in m.value for m in at.markdown)
    assert not any("**5** QA-seeded" in m.value for m in at.markdown)
    keys = memory.client.dbsize()
    assert any(f"{keys:,} keys in this database" in c.value for c in at.sidebar.caption)


# connection problems ----------------------------------------------------------------

def test_unreachable_redis_is_reported_without_the_password_or_demo_data(
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("REDIS_URL", f"redis://admin:s3cretpw@127.0.0.1:{port}/0")
    at = run_page()
    assert at.error, "no error element"
    message = at.error[0].value
    assert "Cannot reach Redis" in message
    assert f"127.0.0.1:{port}" in message
    everything = rendered_text(at)
    assert "admin:***@" in everything
    assert "Check that the server runs" in everything
    assert "s3cretpw" not in everything
    assert "Retry" in button_labels(at)
    assert not any("Demo mode" in info.value for info in at.info)
    assert not at.main.metric
    assert not chart_specs(at)


def test_invalid_redis_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://admin:s3cretpw@127.0.0.1:6390/0")
    at = run_page()
    assert any("The dashboard configuration is invalid" in e.value and "http" in e.value
               for e in at.error)
    assert "s3cretpw" not in rendered_text(at)
    assert not any("Demo mode" in info.value for info in at.info)


def test_invalid_memory_setting_is_a_configuration_error(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_CORE_TTL_DAYS", "5000")
    at = run_page()
    assert any("The dashboard configuration is invalid" in e.value
               and md("ttl_days") in e.value for e in at.error)
    assert not at.main.metric


ACL_USER = "dash-ops"
ACL_PASSWORD = "Correct-Horse-9137"
WRONG_PASSWORD = "Wrong-Battery-2468"


@pytest.fixture
def acl_user(redis_server: RedisServer, real_redis_url: str) -> Iterator[redis.Redis]:
    """An ACL user with a password on the private Redis (ACL users survive FLUSHALL:
    deleted after the test); yields an admin client."""
    admin = redis.Redis.from_url(real_redis_url)
    admin.execute_command("ACL", "SETUSER", ACL_USER, "on", f">{ACL_PASSWORD}", "~*", "&*",
                          "+@all")
    try:
        yield admin
    finally:
        admin.execute_command("ACL", "DELUSER", ACL_USER)
        admin.close()


def user_url(redis_server: RedisServer, user: str = "", password: str = "",
             db: int = 0) -> str:
    credentials = f"{user}:{password}@" if user or password else ""
    return f"redis://{credentials}127.0.0.1:{redis_server.port}/{db}"


def connection_page(monkeypatch: pytest.MonkeyPatch, url: str) -> tuple[AppTest, str, str]:
    """The dashboard on ``url``: (app, the error's text, the page's markdown); the raw
    protobuf of every element is checked for tracebacks and ``secrets`` too."""
    monkeypatch.setenv("REDIS_URL", url)
    at = run_page()
    assert not at.exception, [e.value for e in at.exception]  # no traceback
    assert len(at.error) == 1, [e.value for e in at.error]
    assert "Retry" in button_labels(at)
    assert not at.main.metric and not chart_specs(at)
    raw = rendered_text(at)
    assert "Traceback" not in raw and "redis.exceptions" not in raw
    for secret in (ACL_PASSWORD, WRONG_PASSWORD):
        assert secret not in raw
    page = "\n".join(e.value for e in [*at.error, *at.markdown])
    return at, at.error[0].value, page


def test_a_database_that_does_not_exist_is_explained(
        acl_user: redis.Redis, redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: redis://host:port/99 showed redis-py's traceback."""
    url = user_url(redis_server, ACL_USER, ACL_PASSWORD, db=99)
    at, error, everything = connection_page(monkeypatch, url)
    assert "Redis has no database 99" in error
    assert md("DB index is out of range") in error
    assert md("0 to 15") in everything  # what to do
    assert "Cannot reach" not in everything
    assert ACL_PASSWORD not in everything and f"{ACL_USER}:***@" in everything

    widget(at.button, "Retry").click()  # still wrong: the same page, no traceback
    at.run()
    assert not at.exception and "Redis has no database 99" in at.error[0].value


def test_a_wrong_password_says_redis_refused_the_user(
        acl_user: redis.Redis, redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = user_url(redis_server, ACL_USER, WRONG_PASSWORD)
    _, error, everything = connection_page(monkeypatch, url)
    assert f"Redis refused the credentials of user {md(chr(34) + ACL_USER + chr(34))}" in error
    assert md("Redis answered, and refused") in error
    assert "Cannot reach" not in everything and "check that the server runs" not in (
        everything.lower())
    assert md(f"ACL GETUSER {ACL_USER}") in everything  # what to do
    for secret in (WRONG_PASSWORD, ACL_PASSWORD):
        assert secret not in everything
    assert f"{ACL_USER}:***@" in everything


def test_a_missing_password_says_redis_requires_one(
        redis_server: RedisServer, real_redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the page showed redis-py's "HELLO must be called..." text."""
    admin = redis.Redis.from_url(real_redis_url)  # stays signed in while the password is on
    admin.execute_command("ACL", "SETUSER", "default", "resetpass", f">{ACL_PASSWORD}")
    try:
        _, error, everything = connection_page(monkeypatch, user_url(redis_server))
    finally:
        admin.execute_command("ACL", "SETUSER", "default", "nopass")
        admin.close()
    assert md("Redis requires a password, and none was given") in error
    assert md('the "default" user') in error
    assert "HELLO" not in everything and "NOAUTH" not in everything
    assert "Cannot reach" not in everything
    assert ACL_PASSWORD not in everything


def test_a_user_without_rights_is_told_so(
        acl_user: redis.Redis, redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    acl_user.execute_command("ACL", "SETUSER", ACL_USER, "-@all", "+ping", "+hello", "+auth")
    url = user_url(redis_server, ACL_USER, ACL_PASSWORD)
    _, error, everything = connection_page(monkeypatch, url)
    assert f"Redis accepted user {md(chr(34) + ACL_USER + chr(34))}" in error
    assert "NOPERM" not in error or "no permissions" in error
    assert ACL_PASSWORD not in everything


def test_redis_url_with_a_bad_port_is_a_configuration_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://admin:s3cretpw@127.0.0.1:notaport/0")
    at = new_app()
    at.run()
    assert not at.exception
    assert any("The dashboard configuration is invalid" in e.value for e in at.error)


# actions, called directly -----------------------------------------------------------

def as_operator(url: str, *, read_only: bool = False, allow_seeding: bool = False,
                is_demo: bool = False) -> Access:
    """An operator's access to the dashboard with these settings (as sign-in grants it)."""
    settings = DashboardSettings(redis_url=url, is_demo=is_demo, config_path=None,
                                 read_only=read_only, allow_seeding=allow_seeding)
    return Access("operator", "demo" if is_demo else "password", settings, "test-session-id")


def test_clear_buyer_needs_the_typed_contact_id(memory: SyncBuyerConversationMemory,
                                                real_redis_url: str) -> None:
    seed_named_buyer(memory, "contact-clear")
    key = memory.key_for("contact-clear")
    access = as_operator(real_redis_url)
    with pytest.raises(ActionRefused, match="does not match"):
        clear_buyer(access, memory, "contact-clear", "contact-clea", None)
    assert memory.client.exists(key)
    assert clear_buyer(access, memory, "contact-clear", " contact-clear ", None)
    assert not memory.client.exists(key)
    assert not clear_buyer(access, memory, "contact-clear", "contact-clear", None)


def test_read_only_settings_refuse_every_write(memory: SyncBuyerConversationMemory,
                                              real_redis_url: str) -> None:
    seed_named_buyer(memory, "contact-keep")
    key = memory.key_for("contact-keep")
    assert memory.client.expire(key, DAY)
    access = as_operator(real_redis_url, read_only=True, allow_seeding=True)
    with pytest.raises(ActionRefused, match="read-only"):
        clear_buyer(access, memory, "contact-keep", "contact-keep", None)
    with pytest.raises(ActionRefused, match="read-only"):
        reset_buyer_ttl(access, memory, "contact-keep", None)
    with pytest.raises(ActionRefused, match="read-only"):
        seed_buyers(access, memory, SeedOptions(count=3))
    with pytest.raises(ActionRefused, match="read-only"):
        seed_file(access, memory, b'{"contact_id": "qa-x"}', "one.json")
    with pytest.raises(ActionRefused, match="read-only"):
        remove_qa_seeds(access, memory, ["contact-keep"], confirmed=True)
    assert buyer_keys(memory) == 1
    assert memory.client.ttl(key) <= DAY


def test_seed_buyers_needs_allow_seeding_on_a_real_redis(
        memory: SyncBuyerConversationMemory, real_redis_url: str) -> None:
    options = SeedOptions(count=20, seed=3)
    with pytest.raises(ActionRefused, match="allow_seeding"):
        seed_buyers(as_operator(real_redis_url), memory, options)
    assert buyer_keys(memory) == 0

    calls: list[tuple[int, int]] = []
    written = seed_buyers(as_operator(real_redis_url, allow_seeding=True), memory, options,
                          lambda done, total: calls.append((done, total)))
    assert written.written == 20
    assert calls[-1] == (20, 20)
    expected = [buyer.contact_id for buyer in generate_buyers(options)]
    for contact_id in expected:
        state = memory.load_state(contact_id)
        assert state is not None and state[QA_SEED_FIELD] is True
    assert buyer_keys(memory) == 20


@pytest.mark.parametrize("file_name, content", [
    ("scenarios.yaml",
     "- contact_id: qa-file-good\n  buyer_temperature: hot\n"
     "- contact_id: 'bad id with spaces'\n  buyer_temperature: warm\n"),
    ("scenarios.json",
     '[{"contact_id": "qa-file-good", "buyer_temperature": "hot"},'
     ' {"buyer_temperature": "warm"}]'),
])
def test_seed_file_with_one_bad_item_writes_nothing(
        memory: SyncBuyerConversationMemory, real_redis_url: str,
        file_name: str, content: str) -> None:
    access = as_operator(real_redis_url, allow_seeding=True)
    with pytest.raises(InvalidState) as caught:
        seed_file(access, memory, content.encode(), file_name)
    message = str(caught.value)
    assert file_name in message and "nothing was written" in message
    assert "item 2" in message
    assert "item 1" not in message
    assert buyer_keys(memory) == 0

    assert seed_file(access, memory, GOOD_SCENARIO[file_name].encode(), file_name).written == 1
    state = memory.load_state("qa-file-good")
    assert state is not None and state[QA_SEED_FIELD] is True


GOOD_SCENARIO = {
    "scenarios.yaml": "- contact_id: qa-file-good\n  buyer_temperature: hot\n",
    "scenarios.json": '[{"contact_id": "qa-file-good", "buyer_temperature": "hot"}]',
}
BAD_STATE_FILE = ('[{"contact_id": "qa-file-good", "buyer_temperature": "hot"},'
                  ' {"contact_id": "qa-file-bad", "conversation_history": "not a list"}]')


def test_seed_file_with_an_invalid_state_writes_nothing(
        memory: SyncBuyerConversationMemory, real_redis_url: str) -> None:
    access = as_operator(real_redis_url, allow_seeding=True)
    with pytest.raises(InvalidState, match="conversation_history must be a list"):
        seed_file(access, memory, BAD_STATE_FILE.encode(), "scenarios.json")
    assert buyer_keys(memory) == 0


def test_seed_file_error_names_the_item_with_an_invalid_state(
        memory: SyncBuyerConversationMemory, real_redis_url: str) -> None:
    access = as_operator(real_redis_url, allow_seeding=True)
    with pytest.raises(InvalidState) as caught:
        seed_file(access, memory, BAD_STATE_FILE.encode(), "scenarios.json")
    assert "item 2" in str(caught.value)


def test_seed_file_is_refused_on_a_real_redis_without_allow_seeding(
        memory: SyncBuyerConversationMemory, real_redis_url: str) -> None:
    with pytest.raises(ActionRefused, match="allow_seeding"):
        seed_file(as_operator(real_redis_url), memory,
                  b'{"contact_id": "qa-one", "buyer_temperature": "hot"}', "one.json")
    assert buyer_keys(memory) == 0


def test_remove_qa_seeds_deletes_only_qa_seeds_after_confirmation(
        memory: SyncBuyerConversationMemory, real_redis_url: str) -> None:
    access = as_operator(real_redis_url, allow_seeding=True)
    assert seed_buyers(access, memory, SeedOptions(count=8, seed=9)).written == 8
    seed_named_buyer(memory, "contact-real")
    seeded = [b.contact_id for b in generate_buyers(SeedOptions(count=8, seed=9))]

    with pytest.raises(ActionRefused, match="confirmation"):
        remove_qa_seeds(access, memory, seeded, confirmed=False)
    assert buyer_keys(memory) == 9

    # Even when a real buyer is listed by mistake, only QA seeds are deleted.
    assert remove_qa_seeds(access, memory, [*seeded, "contact-real"], confirmed=True) == 8
    assert buyer_keys(memory) == 1
    assert memory.load_state("contact-real") is not None


def test_actions_work_on_the_demo_store_without_allow_seeding(fake_url: str) -> None:
    access = as_operator(fake_url, is_demo=True)
    with SyncBuyerConversationMemory.from_url(fake_url) as demo:
        assert access.can_seed
        assert seed_buyers(access, demo, SeedOptions(count=5, seed=1)).written == 5
        assert remove_qa_seeds(access, demo,
                               [f"qa-1-{i:06d}" for i in range(5)], confirmed=True) == 5
        assert buyer_keys(demo) == 0


def test_sidebar_names_the_live_redis(memory: SyncBuyerConversationMemory,
                                     real_redis_url: str) -> None:
    seed_named_buyer(memory, "contact-side")
    at = run_page()
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    port = real_redis_url.rsplit(":", 1)[1].split("/")[0]
    assert "**Live**" in sidebar and f"127.0.0.1:{port} db 0" in sidebar
    assert "TTL **30 days**" in sidebar
    assert "Compression over **256 B** (zstd, level 3, packed layout)" in sidebar
    assert any("1 key in this database" in c.value for c in at.sidebar.caption)


def test_overview_of_a_large_store_survives_the_cached_scan(
        memory: SyncBuyerConversationMemory) -> None:
    """Regression: a scan of > 5,000 keys draws a progress bar; later runs reuse the scan.

    With the scan inside st.cache_data, the progress calls were recorded on a block made
    outside the cached function, so every run after the first one failed to replay them.
    """
    options = SeedOptions(count=5_100, seed=4, history_range=(2, 3))
    assert memory.save_many(b.as_save_item() for b in generate_buyers(options)) == 5_100
    at = run_page()
    assert metrics(at)["Buyers"] == "5,100"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert metrics(at)["Buyers"] == "5,100"
    other_session = run_page()
    assert metrics(other_session)["Buyers"] == "5,100"


# hostile values are inert text in every element -----------------------------------------

IMAGE = "![x](http://attacker.invalid/p.png)"
PHISH = "[Session expired: log in again](http://attacker.invalid/phish)"
TRANSCRIPT = (f"write to bob@example.com, see www.attacker.invalid or "
              f"http://attacker.invalid/x {IMAGE} :red[alarm] :material/warning:")


def assert_inert(text: str) -> None:
    """No markdown that would load, link or decorate anything is left live in ``text``
    (inside a code span, as for revealed contact details, nothing is interpreted)."""
    text = re.sub(r"(`+) .*? \1", "", text)
    assert "![" not in text and "](" not in text, text
    assert not re.search(r"https?://", text), text  # an autolink needs "://" in one piece
    assert not re.search(r"(?i)www\.", text), text
    assert not re.search(r":[a-z/]", text), text  # :red[...], :material/...:
    assert not re.search(r"@\w", text), text  # name@host is an autolinked e-mail


def hostile_state() -> dict[str, Any]:
    state = state_for("hot", 5, messages=2)
    state.update(buyer_persona=IMAGE, urgency_level=PHISH, financing_status=TRANSCRIPT,
                 budget_range=IMAGE, property_preferences={"note": PHISH},
                 current_qualification_step=":blue-badge[VIP]")
    state["conversation_history"][0].update(content=TRANSCRIPT, timestamp=IMAGE)
    state["conversation_history"][1].update(timestamp=PHISH)
    return state


def test_md_leaves_no_live_markdown_and_keeps_the_text() -> None:
    for payload in (IMAGE, PHISH, TRANSCRIPT, "a\nb\n===\n# h", "x@y.z", "WWW.EXAMPLE.COM"):
        escaped = md(payload)
        assert_inert(escaped)
        shown = re.sub(r"\\(.)", r"\1", escaped).replace(JOINER, "")
        assert shown == payload  # what the reader sees is the text itself
    assert md("\x1b[2J") == "\\\\x1b\\[2J"  # control characters are shown, not sent
    assert code("a`b") == "`` a`b ``" and code("") == "–"


def test_stored_values_render_as_inert_text_in_every_element(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("contact-hostile", hostile_state())
    at = run_page(BUYER_PAGE, contact_id="contact-hostile")

    shown = metrics(at)  # st.metric renders markdown in its label and value
    assert shown["Persona"] == md(IMAGE)
    assert shown["Urgency"] == md(PHISH)
    assert shown["Financing"] == md(mask_pii(hostile_state())["financing_status"])
    captions = [c.value for c in at.main.caption]
    assert md(IMAGE) in captions and md(PHISH) in captions  # message timestamps
    masked = mask_pii(hostile_state())["conversation_history"][0]["content"]
    assert at.text[-1].value == masked  # the message itself: st.text, no markdown at all
    elements = [*at.main.metric, *at.main.caption, *at.main.markdown, *at.main.error,
                *at.main.info, *at.main.warning, *at.main.success]
    for element in elements:
        for text in (element.value, getattr(element, "label", "")):
            assert_inert(str(text))
    assert TRANSCRIPT not in "\n".join(m.value for m in at.main.markdown)


def test_a_hostile_header_codec_is_inert_inside_the_error(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("contact-codec", {"buyer_temperature": "warm"})
    key = memory.key_for("contact-codec")
    raw = memory.client.get(key)
    assert raw is not None and b"\x1fzstd\x1f" in raw
    memory.client.set(key, raw.replace(b"\x1fzstd\x1f", b"\x1f![x](http://a.invalid/p)\x1f", 1))
    at = run_page(BUYER_PAGE, contact_id="contact-codec")
    assert any("cannot be read" in e.value and "unknown codec" in e.value for e in at.error)
    for element in at.error:
        assert_inert(element.value)


def test_a_reflected_contact_id_is_inert_in_every_message(
        memory: SyncBuyerConversationMemory) -> None:
    for contact_id in (IMAGE.replace(" ", ""), PHISH.replace(" ", "_")):
        at = run_page(BUYER_PAGE, contact_id=contact_id)
        assert at.info or at.warning, contact_id
        for element in [*at.info, *at.warning, *at.error, *at.main.markdown, *at.main.caption]:
            assert_inert(element.value)


def test_the_clear_dialog_shows_a_hostile_contact_id_as_text(
        memory: SyncBuyerConversationMemory) -> None:
    contact_id = PHISH.replace(" ", "_")
    assert memory.save_state(contact_id, {"buyer_temperature": "warm"})
    at = run_page(BUYER_PAGE, contact_id=contact_id)
    widget(at.button, "Clear this buyer").click()
    at.run()
    assert not at.exception
    dialog_text = [m.value for m in at.markdown if "This deletes the saved conversation" in m.value]
    assert len(dialog_text) == 1 and md(contact_id) in dialog_text[0]
    assert_inert(dialog_text[0])


def test_the_clear_dialog_enables_its_button_as_the_id_is_typed(
        memory: SyncBuyerConversationMemory) -> None:
    """The confirmation commits while typing (no Enter needed) and there is a Cancel.
    A dialog's own reruns do not happen in AppTest: the browser test types the id key by
    key and watches the button enable."""
    seed_named_buyer(memory, "contact-dialog", messages=2)
    at = run_page(BUYER_PAGE, contact_id="contact-dialog")
    widget(at.button, "Clear this buyer").click()
    at.run()
    typed = at.text_input(key="confirm_clear_id")
    assert 0 < typed.proto.live_debounce_ms <= 250
    assert widget(at.button, "Delete permanently").disabled
    assert "Cancel" in button_labels(at)


def test_hostile_header_labels_reach_charts_and_filters_only_as_data(
        memory: SyncBuyerConversationMemory) -> None:
    for index in range(3):
        assert memory.save_state(f"contact-label-{index}", hostile_state())
    at = run_page()
    spec, (data,) = chart(at, "Persona mix")
    assert IMAGE in set(data["persona"])  # a value in the dataset: Vega draws it as text
    assert IMAGE not in json.dumps(spec)  # never part of the spec (titles, expressions)
    assert all(tooltip.get("field") or isinstance(tooltip, str)
               for tooltip in spec["encoding"]["tooltip"])
    assert IMAGE in widget(at.multiselect, "Persona").options  # options are plain text
    table = at.main.dataframe[0].value
    assert set(table["persona"]) == {IMAGE}  # dataframe cells are plain text too
    # filtered, the list is read from Redis again: still data, never markup
    widget(at.multiselect, "Persona").set_value([IMAGE]).run()
    assert not at.exception
    assert sorted(at.main.dataframe[0].value["contact_id"]) == [
        f"contact-label-{index}" for index in range(3)]
    assert all("](" not in caption.value for caption in at.main.caption)
