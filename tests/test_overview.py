"""The overview's buyer list, expiry views, numbers and exports (issue 10), on a real Redis.

The model functions are called on a real scan; the page is run in AppTest signed in as a
viewer or an operator, as in test_dashboard.py, and read through its elements: metrics,
captions, the Vega-Lite specs and datasets of the charts, the dataframe.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from apptest_tools import chart_specs, dashboard_store, metrics, signed_in_page
from streamlit.testing.v1 import AppTest

from dashboard.markdown import JOINER
from dashboard.overview_model import (
    EXPIRES_24H,
    EXPIRES_NEVER,
    EXPORT_COLUMNS,
    TABLE_ROWS,
    BuyerQuery,
    Filters,
    build_overview,
    describe_list,
    list_buyers,
)
from memory_core.breakdown import MAX_FILTER_LABELS, scan_overview
from memory_core.inventory import (
    ORDER_EXPIRING,
    ORDER_LARGEST,
    contact_id_matches,
    find_buyers,
    scan_summaries,
)
from memory_core.safetext import csv_bytes
from memory_core.state import QA_SEED_FIELD
from memory_core.store import SyncBuyerConversationMemory

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PASSWORDS = {"operator": "operator-password-for-overview", "viewer": "viewer-for-overview"}
HOUR_MS = 3_600_000
STAGES = ("discovery", "touring", "offer")

pytestmark = pytest.mark.usefixtures("isolated_dashboard")


@pytest.fixture
def memory(real_redis_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[SyncBuyerConversationMemory]:
    with dashboard_store(real_redis_url, monkeypatch, PASSWORDS) as opened:
        yield opened


# data -------------------------------------------------------------------------------------

def state(index: int, *, temperature: str | None = None, qa: bool = False,
          messages: int = 0, persona: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "buyer_temperature": temperature or ("hot", "warm", "cold")[index % 3],
        "current_journey_stage": STAGES[index % 3],
        "buyer_persona": persona or ("investor", "first_time_buyer")[index % 2],
        "conversation_history": [
            {"role": "user" if j % 2 else "assistant", "content": f"message {j} of {index}"}
            for j in range(messages)],
    }
    if qa:
        result[QA_SEED_FIELD] = True
    return result


def seed_with_a_few_expiring(memory: SyncBuyerConversationMemory, recent: int = 1_195,
                             expiring: int = 5) -> list[str]:
    """``recent`` buyers seen in the last hours with the 30-day TTL, and ``expiring`` buyers
    seen 30 days ago whose TTL runs out within hours: older than the 1,000 newest, as
    in the issue. Returns the expiring ids, soonest first."""
    now = datetime.now(UTC)
    items = [(f"contact-{i:05d}", state(i), None, now - timedelta(minutes=i))
             for i in range(recent)]
    soon = [f"leaving-{i}" for i in range(expiring)]
    items += [(contact_id, state(i), None, now - timedelta(days=30, minutes=i))
              for i, contact_id in enumerate(soon)]
    assert memory.save_many(items) == recent + expiring
    for hours, contact_id in enumerate(soon, start=1):
        assert memory.client.pexpire(memory.key_for(contact_id), hours * HOUR_MS)
    return soon


# the list: sorted before the cut ------------------------------------------------------------

def test_expiring_buyers_older_than_the_newest_thousand_are_all_listed_soonest_first(
        memory: SyncBuyerConversationMemory) -> None:
    soon = seed_with_a_few_expiring(memory)
    model = build_overview(scan_overview(memory), Filters(), memory.config)
    assert model.report["ttl"]["expiring_24h"] == 5
    newest = list_buyers(memory, model, BuyerQuery())
    assert newest.matching == 1_200 and len(newest.shown) == TABLE_ROWS and newest.capped
    assert not set(soon) & set(newest.shown["contact_id"])  # the old table's blind spot

    expiring = list_buyers(memory, model, BuyerQuery(expires=EXPIRES_24H, order=ORDER_EXPIRING))
    assert list(expiring.shown["contact_id"]) == soon  # all 5, the count's 5, soonest first
    assert list(expiring.shown["expires_in"].str.split().str[0]) == ["59", "1", "2", "3", "4"]
    by_ttl = list_buyers(memory, model, BuyerQuery(order=ORDER_EXPIRING))
    assert list(by_ttl.shown["contact_id"][:5]) == soon  # sorted first, then cut
    assert len(by_ttl.shown) == TABLE_ROWS

    text = describe_list(newest, BuyerQuery(), model.buyers)
    assert text.startswith("Showing 1,000 of 1,200 buyers, newest first.")
    assert "capped at 1,000" in text and "the CSV has all 1,200" in text
    text = describe_list(expiring, BuyerQuery(expires=EXPIRES_24H), model.buyers)
    assert text == "Showing all 5 buyers expiring within 24 hours (of 1,200), newest first."
    both = BuyerQuery(pattern="leaving-[0-2]", expires=EXPIRES_NEVER)
    assert describe_list(list_buyers(memory, model, both), both, model.buyers) == (
        "No buyer matching the search and without a TTL (of 1,200).")
    one = BuyerQuery(pattern="leaving-0")
    assert describe_list(list_buyers(memory, model, one), one, model.buyers) == (
        "Showing the 1 buyer matching the search (of 1,200), newest first.")


def test_no_ttl_window_lists_the_keys_that_never_expire(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_many([(f"c-{i}", state(i), None, None) for i in range(6)]) == 6
    memory.client.persist(memory.key_for("c-4"))
    model = build_overview(scan_overview(memory), Filters(), memory.config)
    listed = list_buyers(memory, model, BuyerQuery(expires=EXPIRES_NEVER))
    assert list(listed.shown["contact_id"]) == ["c-4"]
    assert list(listed.shown["expires_in"]) == ["never (no TTL)"]
    assert listed.shown["expires_at"].isna().all()
    last = list_buyers(memory, model, BuyerQuery(order=ORDER_EXPIRING)).shown
    assert last["contact_id"].iloc[-1] == "c-4"  # no TTL sorts after every TTL


def test_largest_records_come_first_and_search_takes_substrings_and_globs(
        memory: SyncBuyerConversationMemory) -> None:
    items = [(f"contact-2026-{i:03d}", state(i, messages=i), None, None) for i in range(30)]
    items.append(("vip-[x]", state(99, messages=1), None, None))
    assert memory.save_many(items) == 31
    frame = scan_summaries(memory)
    model = build_overview(scan_overview(memory), Filters(), memory.config)
    largest = list_buyers(memory, model, BuyerQuery(order=ORDER_LARGEST)).shown
    assert largest["stored_bytes"].is_monotonic_decreasing
    assert largest["contact_id"].iloc[0] == frame.loc[frame["stored_bytes"].idxmax(),
                                                      "contact_id"]
    assert largest["stored_bytes"].iloc[0] > largest["stored_bytes"].iloc[-1]

    def ids(pattern: str) -> list[str]:
        return sorted(list_buyers(memory, model, BuyerQuery(pattern=pattern)).shown["contact_id"])

    assert ids("-02") == [f"contact-2026-{i:03d}" for i in range(20, 30)]
    assert ids("contact-2026-00?") == [f"contact-2026-{i:03d}" for i in range(10)]
    assert ids("*-01[05]") == ["contact-2026-010", "contact-2026-015"]
    assert ids("[x]") == []  # a glob, matching the whole id: no id is one of "x"
    assert ids("*[[]x]") == ["vip-[x]"]
    assert ids("CONTACT") == []  # case-sensitive, as Redis keys are
    with pytest.raises(ValueError, match="at most 200"):
        list_buyers(memory, model, BuyerQuery(pattern="x" * 201))


def test_contact_id_search_is_vectorised_and_safe_on_repeated_stars() -> None:
    ids = pd.Series([f"contact-{i:06d}" for i in range(100_000)] + ["a" * 5000])
    started = datetime.now(UTC)
    found = contact_id_matches(ids, "*a*a*a*a*a*a*a*a*a*a*b")
    assert not found.any()
    assert contact_id_matches(ids, "contact-0999*").sum() == 100
    assert (datetime.now(UTC) - started).total_seconds() < 2


def test_find_buyers_filters_and_sorts_without_touching_the_frame() -> None:
    frame = pd.DataFrame({
        "contact_id": ["a", "b", "c", "d"], "ttl_ms": [5 * HOUR_MS, -1, HOUR_MS, 40 * HOUR_MS],
        "stored_bytes": [10, 40, 30, 20], "last_interaction_epoch": [4, 3, 2, 1]})
    before = frame.copy()
    assert list(find_buyers(frame, order=ORDER_EXPIRING)) == [2, 0, 3, 1]
    assert list(find_buyers(frame, order=ORDER_LARGEST)) == [1, 2, 3, 0]
    assert list(find_buyers(frame, expires_within_seconds=86_400,
                            order=ORDER_EXPIRING)) == [2, 0]
    assert list(find_buyers(frame, without_ttl=True)) == [1]
    assert list(find_buyers(frame, pattern="[bcd]", expires_within_seconds=86_400)) == [2]
    assert list(find_buyers(frame, pattern="b", without_ttl=True)) == [1]
    pd.testing.assert_frame_equal(frame, before)


# CSV ----------------------------------------------------------------------------------------

def test_csv_has_readable_columns_rounded_ratios_and_utc_expiry_timestamps(
        memory: SyncBuyerConversationMemory) -> None:
    soon = seed_with_a_few_expiring(memory, recent=3, expiring=2)
    memory.client.persist(memory.key_for("contact-00001"))
    assert memory.save_state("=HYPERLINK(1)", state(7, persona="=cmd|'/c calc'!A1"))
    memory.client.persist(memory.key_for("=HYPERLINK(1)"))
    before = datetime.now(UTC)
    model = build_overview(scan_overview(memory), Filters(), memory.config)
    listed = list_buyers(memory, model, BuyerQuery(order=ORDER_EXPIRING))
    rows = pd.read_csv(io.BytesIO(csv_bytes(listed.export())), keep_default_na=False)
    assert list(rows.columns) == list(EXPORT_COLUMNS.values())
    assert list(rows["Contact id"][:2]) == soon
    assert set(rows["Contact id"][-2:]) == {"contact-00001", "'=HYPERLINK(1)"}  # no TTL: last
    assert "'=cmd|'/c calc'!A1" in set(rows["Persona"])  # no cell runs as a formula
    expiry = rows["Expires at (UTC)"]
    assert list(expiry[-2:]) == ["", ""]  # no TTL: no expiry time
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in expiry[:-2])
    first = datetime.strptime(expiry.iloc[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(first - (before + timedelta(hours=1))).total_seconds() < 30
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t)
               for t in rows["Last interaction (UTC)"])
    ratios = rows["Compression ratio"].astype(str)
    assert all(len(r.split(".")[1]) <= 2 for r in ratios if "." in r)
    assert rows["Stored bytes"].dtype.kind == "i"


# the page -----------------------------------------------------------------------------------

def run_page(role: str = "operator") -> AppTest:
    return signed_in_page(APP, PASSWORDS[role], "overview_tests")


def one(elements: Any, label: str) -> Any:
    matches = [e for e in elements if e.label == label]
    assert len(matches) == 1, f"{label!r} not among {[e.label for e in elements]}"
    return matches[0]


def buyer_table(at: AppTest) -> pd.DataFrame:
    return at.main.dataframe[0].value


def list_caption(at: AppTest) -> str:
    return next(c.value for c in at.main.caption if "Showing" in c.value or "No buyer" in c.value)


def plain(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown).replace(JOINER, "")


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_the_expiring_figure_opens_the_list_of_those_buyers(
        memory: SyncBuyerConversationMemory, role: str) -> None:
    soon = seed_with_a_few_expiring(memory)
    at = run_page(role)
    assert metrics(at)["Expiring in 24 h"] == "5"
    assert plain(list_caption(at)).startswith("Showing 1,000 of 1,200 buyers, newest first.")
    assert "capped" in list_caption(at)
    assert len(buyer_table(at)) == TABLE_ROWS

    one(at.button, "Show expiring").click()
    at.run()
    assert not at.exception
    assert one(at.selectbox, "Expires").value == EXPIRES_24H
    assert one(at.selectbox, "Order").value == "Soonest expiry first"
    assert list(buyer_table(at)["contact_id"]) == soon
    assert plain(list_caption(at)).startswith(
        "Showing all 5 buyers expiring within 24 hours (of 1,200), soonest expiry first.")


def test_search_and_order_on_the_page(memory: SyncBuyerConversationMemory) -> None:
    items = [(f"contact-{i:03d}", state(i, messages=i % 40), None, None) for i in range(40)]
    assert memory.save_many(items) == 40
    at = run_page()
    one(at.text_input, "Search contact ids").input("contact-03*")
    at.run()
    assert sorted(buyer_table(at)["contact_id"]) == [f"contact-{i:03d}" for i in range(30, 40)]
    assert "matching the glob" in plain(list_caption(at))
    one(at.selectbox, "Order").set_value("Largest stored first")
    at.run()
    assert buyer_table(at)["contact_id"].iloc[0] == "contact-039"
    one(at.text_input, "Search contact ids").input("nobody")
    at.run()
    assert plain(list_caption(at)).startswith("No buyer matching the search (of 40).")
    assert buyer_table(at).empty


def test_a_searched_list_is_read_from_redis_and_says_when(
        memory: SyncBuyerConversationMemory) -> None:
    """The list as the page opens comes with the scan; a search reads Redis again (the
    scan keeps no row per buyer), so it also finds a buyer saved since the scan."""
    assert memory.save_many([(f"contact-{i:03d}", state(i), None, None)
                             for i in range(12)]) == 12
    at = run_page()
    assert "Read from Redis" not in list_caption(at)
    assert memory.save_state("contact-new", state(99))  # after the scan
    assert "contact-new" not in set(buyer_table(at)["contact_id"])
    one(at.text_input, "Search contact ids").input("new")
    at.run()
    assert list(buyer_table(at)["contact_id"]) == ["contact-new"]
    assert re.search(r"Read from Redis at \d\d:\d\d:\d\d UTC", list_caption(at))
    one(at.text_input, "Search contact ids").input("")
    one(at.selectbox, "Order").set_value("Largest stored first")
    at.run()  # kept by the scan: the buyer saved since is not in it until a refresh
    assert "contact-new" not in set(buyer_table(at)["contact_id"])
    assert "Read from Redis" not in list_caption(at)


def test_more_personas_than_the_overview_tells_apart_are_counted_and_said(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_many([(f"c-{i}", state(i, persona=f"persona-{i:03d}"), None, None)
                             for i in range(MAX_FILTER_LABELS + 20)]) == MAX_FILTER_LABELS + 20
    at = run_page()
    assert metrics(at)["Buyers"] == f"{MAX_FILTER_LABELS + 20:,}"  # every buyer counted
    assert any("counted together" in c.value for c in at.main.caption)
    personas = one(at.multiselect, "Persona").options
    assert len(personas) == MAX_FILTER_LABELS and "(other labels)" not in personas


@pytest.mark.parametrize("key", [b"bad\xff-id", b"<img src=x onerror=alert(1)>", b""])
def test_a_record_under_an_id_no_bot_can_ask_for_is_a_problem_key_not_a_buyer(
        memory: SyncBuyerConversationMemory, key: bytes) -> None:
    """Regression: a record under a key that is not UTF-8 made the overview's scan fail
    (a lone surrogate in its id), and one under an id with spaces was listed as a buyer
    whose page refused to open it. The bot cannot load either: both are problem keys."""
    assert memory.save_many([(f"contact-{i}", state(i), None, None) for i in range(3)]) == 3
    record = memory.client.get(memory.key_for("contact-0"))
    memory.client.set(memory.prefix.encode() + b":" + key, record)
    at = run_page()
    assert not at.exception
    assert metrics(at)["Buyers"] == "3"
    assert len(buyer_table(at)) == 3
    assert metrics(at)["Corrupt / foreign"] == "1"


def test_a_hostile_search_is_shown_as_text(memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("contact-1", state(1))
    at = run_page()
    pattern = "![x](http://attacker.invalid/p.png)"
    one(at.text_input, "Search contact ids").input(pattern)
    at.run()
    caption = list_caption(at)
    assert "](" not in caption and "http://" not in caption
    assert pattern in plain(caption)


def test_the_empty_store_says_it_is_empty(memory: SyncBuyerConversationMemory) -> None:
    at = run_page()
    assert any("The store is empty" in info.value for info in at.main.info)
    assert not any("match these filters" in info.value for info in at.main.info)
    assert chart_specs(at) == {}


def test_filters_matching_nobody_say_so_and_that_buyers_exist(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_many([(f"qa-{i}", state(i, qa=True), None, None)
                             for i in range(3)]) == 3
    at = run_page()
    one(at.toggle, "Hide QA seeds").set_value(True)
    at.run()
    info = " ".join(i.value for i in at.main.info)
    assert "No buyers match these filters" in info and "3 are stored" in info
    assert "empty" not in info


def walk_encodings(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for part in [spec, *spec.get("layer", [])]:
        for channel, definition in part.get("encoding", {}).items():
            for item in definition if isinstance(definition, list) else [definition]:
                if isinstance(item, dict):
                    yield channel, item


def test_every_count_on_the_page_is_a_whole_number_and_colours_survive_filters(
        memory: SyncBuyerConversationMemory) -> None:
    now = datetime.now(UTC)
    items = [(f"contact-{i:03d}", state(i, messages=(i * 7) % 61), None, now)
             for i in range(60)]
    assert memory.save_many(items) == 60
    at = run_page()
    found = chart_specs(at)
    assert {"Days until expiry", "Expiring in the next 7 days", "History length",
            "Qualified share", "Journey stage"} <= set(found)
    count_axes = 0
    for spec, _ in found.values():
        for channel, item in walk_encodings(spec):
            if item.get("field") == "buyers" and channel in ("x", "y"):
                axis = item["axis"]
                assert axis["format"] == ",d", spec.get("title")
                count_axes += 1
                if item.get("scale", {}).get("type") != "symlog":
                    assert axis["tickMinStep"] == 1
            if item.get("field") == "buyers" and channel == "size":
                legend = item["legend"]
                assert legend["format"] == ",d"
                assert all(isinstance(v, int) for v in legend["values"])
            if item.get("field") == "buyers" and channel == "tooltip":
                assert item["format"] == ",d"
    assert count_axes >= 8

    # 50 messages sit in the bin that ends at the cap, none starts at or past it.
    _, frames = found["History length"]
    bars = next(f for f in frames if "buyers" in f.columns)
    assert bars.loc[bars["bin_end"] == 50, "buyers"].sum() > 0
    assert bars["bin_start"].max() < 50 and bars["bin_end"].max() == 50

    # The donut says its numbers without hovering: shares on the slices, counts above.
    spec, frames = found["Qualified share"]
    assert any(layer["mark"]["type"] == "text" for layer in spec["layer"])
    labels = next(f for f in frames if "label" in f.columns)
    assert all(re.fullmatch(r"\d+%", text) for text in labels["label"])
    assert re.fullmatch(r"\d+ of 60 buyers qualified \(\d+%\)", spec["title"]["subtitle"])

    _, (stages,) = found["Journey stage"]
    colours = dict(zip(stages["journey_stage"], stages["color"], strict=True))
    assert len(set(colours.values())) == 3
    one(at.multiselect, "Journey stage").set_value(["touring"])
    at.run()
    _, (filtered,) = chart_specs(at)["Journey stage"]
    assert dict(zip(filtered["journey_stage"], filtered["color"], strict=True)) == {
        "touring": colours["touring"]}
    one(at.multiselect, "Journey stage").set_value(["offer", "discovery"])
    at.run()
    _, (filtered,) = chart_specs(at)["Journey stage"]
    assert dict(zip(filtered["journey_stage"], filtered["color"], strict=True)) == {
        "offer": colours["offer"], "discovery": colours["discovery"]}


def test_short_ttls_show_on_the_expiry_charts_beside_thousands_at_day_30(
        memory: SyncBuyerConversationMemory) -> None:
    soon = seed_with_a_few_expiring(memory, recent=2_000, expiring=5)
    at = run_page()
    found = chart_specs(at)
    spec, frames = found["Days until expiry"]
    bars_layer = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "bar")
    y = bars_layer["encoding"]["y"]
    assert y["scale"]["type"] == "symlog" and y["axis"]["values"] == [0, 1, 10, 100, 1000]
    bars = next(f for f in frames if "buyers" in f.columns)
    assert bars.loc[bars["bin_start"] == 0, "buyers"].sum() == len(soon)
    assert set(bars.loc[bars["bin_start"] == 0, "range"]) == {"under 1 d"}

    spec, (hours,) = found["Expiring in the next 7 days"]
    assert len(hours) == 28 and int(hours["buyers"].sum()) == len(soon)
    assert list(hours["buyers"][:1]) == [5]  # all within the first 6 hours
    assert hours["range"].iloc[1] == "6 h to 12 h"
    assert "5 buyer(s) expire within 7 days" in json.dumps(spec["title"])


def test_sizes_are_in_binary_units_said_as_such(memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("contact-1", state(1, messages=3))
    at = run_page()
    stored = metrics(at)["Stored"]
    assert re.fullmatch(r"[\d,]+ B|[\d,]+\.\d (KiB|MiB|GiB)", stored), stored
    assert "MB" not in stored


def test_a_long_problem_list_says_it_is_capped(memory: SyncBuyerConversationMemory) -> None:
    pipe = memory.client.pipeline(transaction=False)
    for index in range(TABLE_ROWS + 5):
        pipe.set(memory.key_for(f"garbage-{index}"), b"not a record")
    pipe.execute()
    at = run_page()
    assert len(at.main.dataframe[-1].value) == TABLE_ROWS
    assert any(f"Showing the first 1,000 of {TABLE_ROWS + 5:,} keys" in c.value
               and "capped" in c.value for c in at.main.caption)
    assert any("The store is empty" in info.value and "1,005 other key(s)" in info.value
               for info in at.main.info)


# the sampled overview ------------------------------------------------------------------------

def test_the_sample_toggle_shows_estimates_with_margins_and_the_drawn_buyers_charts(
        memory: SyncBuyerConversationMemory) -> None:
    items = [(f"contact-{i:04d}", state(i, temperature="hot" if i < 300 else "cold"),
              None, None) for i in range(1200)]
    assert memory.save_many(items) == 1200
    for n in range(400):  # another application's keys: draws that find no buyer
        memory.client.set(f"other-app:{n}", "x")
    at = run_page()
    one(at.toggle, "Sample").set_value(True)
    at.run()
    one(at.number_input, "Random keys to draw").set_value(1000)  # fewer than the keys
    at.run()
    assert not at.exception
    shown = metrics(at)
    value, margin = (int(part.replace(",", "")) for part in shown["Buyers"].split(" ± "))
    assert abs(value - 1200) <= 2 * margin + 1 and 0 < margin < 200
    hot = int(shown["Hot"].split(" ± ")[0].replace(",", ""))
    assert 150 < hot < 450  # a quarter of 1,200, within a generous band
    assert " ± " in shown["Stored"] and "B" in shown["Stored"]
    assert any("random keys of" in c.value and "95% margin" in c.value for c in at.caption)
    assert chart_specs(at)  # the drawn buyers' charts
    assert any("turn Sample off" in i.value for i in at.info)
    assert not at.dataframe or all("contact_id" not in d.value for d in at.dataframe)

    one(at.number_input, "Random keys to draw").set_value(1500)
    at.run()
    assert not at.exception
    assert any("Estimated from 1,500 random keys" in c.value for c in at.caption)


def test_a_sample_of_a_small_store_gives_way_to_the_exact_scan(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_many([(f"contact-{i}", state(i), None, None) for i in range(30)]) == 30
    at = run_page()
    one(at.toggle, "Sample").set_value(True)
    at.run()
    assert not at.exception
    assert any("the exact scan below reads fewer keys" in i.value for i in at.info)
    assert metrics(at)["Buyers"] == "30"  # exact, no margin
    assert len(buyer_table(at)) == 30


def test_a_store_above_the_sampling_threshold_opens_sampled(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the page on a very large store must not start a scan of every key."""
    monkeypatch.setenv("MEMORY_DASHBOARD_SAMPLE_ABOVE_KEYS", "1000")
    assert memory.save_many([(f"contact-{i}", state(i), None, None)
                             for i in range(1500)]) == 1500
    at = run_page()
    assert one(at.toggle, "Sample").value is True
    one(at.number_input, "Random keys to draw").set_value(1000)
    at.run()
    assert not at.exception
    assert any("starts sampled" in c.value for c in at.caption)
    assert " ± " in metrics(at)["Buyers"]
    one(at.toggle, "Sample").set_value(False)  # the exact scan, on request
    at.run()
    assert metrics(at)["Buyers"] == "1,500"


@pytest.mark.parametrize("value", ["lots", "-5", "1.5e6"])
def test_a_bad_sampling_threshold_is_one_clear_error(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch,
        value: str) -> None:
    monkeypatch.setenv("MEMORY_DASHBOARD_SAMPLE_ABOVE_KEYS", value)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["overview_tests"] = "isolated"
    at.run()
    assert not at.exception
    assert any("MEMORY_DASHBOARD_SAMPLE_ABOVE_KEYS" in plain(e.value)
               and "whole number" in plain(e.value)
               for e in at.error)
