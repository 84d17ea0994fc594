"""Overview: the health of the buyer memory at a glance, from record headers only."""

from __future__ import annotations

import copy
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard.charts import human_bytes
from dashboard.dictionary_view import dictionary_section
from dashboard.markdown import md, plural
from dashboard.overview_model import (
    EXPIRES_24H,
    EXPIRES_NEVER,
    EXPIRY_WINDOWS,
    ORDERS,
    TABLE_ROWS,
    BuyerQuery,
    Figures,
    Filters,
    OverviewModel,
    describe_list,
    figures_of_rows,
)
from dashboard.resources import (
    POLL_SECONDS,
    SCAN_CACHE_SECONDS,
    OverviewSource,
    buyer_list,
    forget_scan,
    open_memory,
    overview_model,
    overview_source,
    sample_inventory,
)
from dashboard.signin import require
from memory_core.connection import CONNECTION_FAILURES
from memory_core.errors import StoreUnavailable
from memory_core.inventory import MAX_PATTERN_CHARS, ORDER_EXPIRING, is_glob
from memory_core.safetext import csv_bytes
from memory_core.sampling import DEFAULT_DRAWS, MAX_DRAWS, MIN_DRAWS, sample_report

SEARCH_KEY = "overview_search"
SAMPLE_KEY = "overview_sample"
DRAWS_KEY = "overview_draws"
ORDER_KEY = "overview_order"
EXPIRES_KEY = "overview_expires"
_ORDER_LABELS = {order: label for label, order in ORDERS.items()}


def draw(where: DeltaGenerator, model: OverviewModel | Figures, name: str) -> None:
    """One of the model's charts; a copy, because Streamlit takes the data out of a spec."""
    where.vega_lite_chart(copy.deepcopy(model.charts[name]), width="stretch")


def show_in_list(expires: str) -> None:
    """Callback of the figures' buttons: the list below shows those buyers, soonest first.

    A callback runs before the widgets are drawn, so it may set their values.
    """
    st.session_state[EXPIRES_KEY] = expires
    st.session_state[ORDER_KEY] = _ORDER_LABELS[ORDER_EXPIRING]
    st.session_state[SEARCH_KEY] = ""


def database_keys() -> int | None:
    """DBSIZE, read once per run (None when Redis does not answer: the scan or the sample
    then says what is wrong)."""
    try:
        return int(memory.client.dbsize())
    except CONNECTION_FAILURES:
        return None


def keys_above(keys: int | None, limit: int) -> bool:
    """Whether the database holds more than ``limit`` keys (0: no limit): the Sample
    toggle then starts on, so opening the page never starts a scan of every key."""
    return bool(limit) and keys is not None and keys > limit


access = require("viewer")  # app.py lists this page only after sign-in; holds for any route
st.title("Buyer memory overview")
settings, memory = open_memory()
# One row, each control as wide as its label: fixed columns cut "Auto-refresh" short.
top = st.container(horizontal=True, vertical_alignment="center", gap="medium")
if top.button("Refresh", icon=":material/refresh:", help="Scan Redis again now"):
    forget_scan()
auto = top.toggle("Auto-refresh", help=f"Rescan every {SCAN_CACHE_SECONDS} s")
keys_now = database_keys()
large = keys_above(keys_now, settings.sample_above_keys)
sampled = top.toggle(
    "Sample", key=SAMPLE_KEY, value=large,
    help="Estimate the figures from random keys instead of reading every key: seconds at "
         "any size, each figure with its 95% margin. Turn off for the exact scan.")


def charts_section(model: OverviewModel | Figures) -> None:
    """The charts, or why there are none: an empty store is not a filter matching nobody."""
    report = model.report
    if model.stored_buyers == 0:
        others = model.unreadable + model.legacy
        st.info("**The store is empty**: no buyer records are stored under this prefix yet."
                + (f" {others:,} other key(s) are listed under *Corrupt, foreign and legacy "
                   "records* below." if others else ""))
        return
    if not model.charts:
        stored = model.stored_buyers
        st.info(f"No buyers match these filters ({stored:,} "
                f"{'is' if stored == 1 else 'are'} stored). Clear a filter to see them.")
        return
    left, right = st.columns(2)
    draw(left, model, "ttl")
    if report["ttl"]["no_ttl"]:
        left.warning(f"{report['ttl']['no_ttl']:,} key(s) have no TTL and never expire.")
    draw(right, model, "expiring")
    ratio, size, codec = st.columns([2, 2, 1])
    draw(ratio, model, "ratio")
    draw(size, model, "bytes")
    size.caption(model.bytes_note)
    draw(codec, model, "codec")
    for names in (("temperature", "qualified", "history"), ("persona", "stage", "schema")):
        for column, name in zip(st.columns(3), names, strict=True):
            draw(column, model, name)


def buyers_section(model: OverviewModel) -> None:
    """The buyer list: search, expiry window and order, sorted before it is cut."""
    st.subheader("Buyers")
    cols = st.columns([3, 2, 2])
    pattern = cols[0].text_input(
        "Search contact ids", key=SEARCH_KEY, max_chars=MAX_PATTERN_CHARS,
        placeholder="part of an id, or a glob such as contact-2026-*",
        help="Case-sensitive. Text with * ? or [ ] is a glob matching the whole id, as "
             "Redis SCAN MATCH does; other text matches anywhere in the id.")
    expires = cols[1].selectbox("Expires", list(EXPIRY_WINDOWS), key=EXPIRES_KEY,
                                help="Only buyers whose TTL runs out within this time")
    order = cols[2].selectbox("Order", list(ORDERS), key=ORDER_KEY,
                              help="Every match is sorted first, then the list is cut at "
                                   f"{TABLE_ROWS:,} rows")
    query = BuyerQuery(pattern=pattern, expires=expires, order=ORDERS[order])
    try:
        with st.spinner("Reading the buyers of this list from Redis…"):
            listed = buyer_list(settings, memory, model, query)
    except StoreUnavailable as exc:
        st.error(f"Listing buyers failed: {md(str(exc))}. Use Refresh to try again.")
        return
    searched = ""
    if pattern:
        how = "matching the glob" if is_glob(pattern) else "containing"
        searched = f" Contact ids {how} {md(pattern)}."
    read = (f" Read from Redis at {listed.read_at:%H:%M:%S} UTC." if listed.read_at
            else "")
    st.caption(md(describe_list(listed, query, model.buyers)) + searched + read)
    st.dataframe(
        listed.shown, hide_index=True, width="stretch",
        column_config={
            "open": st.column_config.LinkColumn("Buyer", display_text="Open"),
            "contact_id": "Contact id",
            "temperature": "Temperature",
            "persona": "Persona",
            "message_count": st.column_config.NumberColumn("Messages", format="%,d"),
            "stored_bytes": st.column_config.NumberColumn("Stored (bytes)", format="%,d"),
            "compression_ratio": st.column_config.NumberColumn("Ratio", format="%.2f×"),
            "expires_in": st.column_config.TextColumn(
                "Expires in", help="Time left when the list was read, in days, hours "
                                   "and minutes"),
            "expires_at": st.column_config.DatetimeColumn(
                "Expires at (UTC)", format="YYYY-MM-DD HH:mm", timezone="UTC"),
            "last_interaction": st.column_config.DatetimeColumn(
                "Last interaction (UTC)", format="YYYY-MM-DD HH:mm", timezone="UTC"),
            "qa_seed": st.column_config.CheckboxColumn("QA seed"),
        })
    stamp = f"-{model.scan.taken_at:%Y%m%dT%H%MZ}"
    st.download_button(
        "Download CSV",
        data=lambda: csv_bytes(listed.export()),  # no cell runs as a formula
        file_name=f"buyers{stamp}.csv", mime="text/csv", icon=":material/download:",
        help=f"{'The' if listed.matching == 1 else 'All'} "
             f"{plural(listed.matching, 'buyer')} of this list, in its order, with readable "
             "columns and UTC timestamps; read from Redis when you click, not on every "
             "refresh")


def problems_section(model: OverviewModel) -> None:
    st.subheader("Corrupt, foreign and legacy records")
    if model.problems.empty:
        st.success("Every key under the prefix holds a readable buyer state.")
        return
    st.dataframe(model.problems.head(TABLE_ROWS), hide_index=True, width="stretch",
                 column_config={
                     "contact_id": "Contact id", "status": "Status", "problem": "Problem",
                     "stored_bytes": st.column_config.NumberColumn("Stored (bytes)",
                                                                   format="%,d")})
    if model.problem_count > TABLE_ROWS:
        st.caption(f"Showing the first {TABLE_ROWS:,} of {model.problem_count:,} keys: the "
                   "list is capped.")


def figures_section(model: OverviewModel | Figures, fresh: bool) -> None:
    """The headline numbers; their buttons filter the buyer list, so only with a scan.

    Three to a row, so that a value such as "1,023.9 GiB" or "12,345,678" fits its column
    at a laptop's width (five to a row cut them with an ellipsis): the totals, the
    temperatures, then what needs looking at.
    """
    report = model.report
    temps = report["by_temperature"]
    ratio = report["compression_ratio"]
    expiring, no_ttl = report["ttl"]["expiring_24h"], report["ttl"]["no_ttl"]
    totals = st.columns(3)
    totals[0].metric("Buyers", f"{model.buyers:,}")
    totals[1].metric("Stored", human_bytes(report["stored_bytes"]),
                     help="Payload bytes of the buyer records shown (binary units: 1 MiB is "
                          "1,048,576 bytes), without Redis' own per-key overhead")
    totals[2].metric("Compression ratio", f"{ratio:.2f}×" if ratio else "–",
                     help="Total original JSON bytes ÷ total stored bytes")
    for column, name in zip(st.columns(3), ("hot", "warm", "cold"), strict=True):
        column.metric(name.capitalize(), f"{temps.get(name, 0):,}")
    attention = st.columns(3)
    attention[0].metric("Expiring in 24 h", f"{expiring:,}")
    attention[1].metric("No TTL", f"{no_ttl:,}",
                        help="Keys that never expire: the bot always sets a TTL, so look at "
                             "these")
    if fresh:
        attention[0].button("Show expiring", key="list_expiring", icon=":material/schedule:",
                            disabled=not expiring, on_click=show_in_list, args=(EXPIRES_24H,),
                            help="Show these buyers in the list below, soonest expiry first")
        attention[1].button("Show without TTL", key="list_no_ttl",
                            icon=":material/all_inclusive:", disabled=not no_ttl,
                            on_click=show_in_list, args=(EXPIRES_NEVER,),
                            help="Show these buyers in the list below")
    attention[2].metric("Corrupt / foreign", f"{model.unreadable:,}",
                        help="Keys under the prefix that are not readable buyer states"
                        + (f"; plus {model.legacy:,} legacy record(s) to migrate"
                           if model.legacy else ""))


def age_words(seconds: float) -> str:
    """How old a snapshot is, in words: "12 seconds", "5 minutes", "3 hours", "2 days"."""
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"


def from_snapshot(source: OverviewSource) -> None:
    """The last scan's numbers and charts at once, while a new scan runs in the background."""
    snapshot, figures = source.snapshot, source.figures
    assert snapshot is not None and figures is not None
    age = age_words(snapshot.age_seconds())
    if source.error:
        st.caption(f"From the scan taken {age} ago ({snapshot.taken_at:%Y-%m-%d %H:%M} UTC).")
        st.error(f"Refreshing failed: {md(source.error)}. Use Refresh to try again.")
    else:
        st.caption(f"From the scan taken {age} ago ({snapshot.taken_at:%Y-%m-%d %H:%M} UTC, "
                   f"{snapshot.scan_seconds:.1f} s); refreshing…")
        done, total = source.progress
        st.progress(min(done / total, 1.0) if total else 0.0,
                    text=f"Scanning keys: {done:,} of ~{total:,}" if total
                    else "Scanning keys…")
    figures_section(figures, fresh=False)
    dictionary_section(source.dictionary, snapshot.report["stored_bytes_by_dictionary"],
                       access, memory, polling=not source.error)
    charts_section(figures)
    st.subheader("Buyers")
    st.info("The buyer list, its search and the filters appear when the scan finishes; "
            "the numbers above are the last scan's, for every buyer.")


def from_scan(source: OverviewSource) -> None:
    """The fresh scan: filters, numbers, charts, the buyer list and the problem keys."""
    scan = source.scan
    assert scan is not None
    st.caption(f"Scanned {plural(scan.report['total'], 'key')} at {scan.taken_at:%H:%M:%S} UTC in "
               f"{scan.seconds:.1f} s; cached for up to {SCAN_CACHE_SECONDS} s.")
    options = scan.breakdown.options()
    if scan.breakdown.capped:
        st.caption(":material/warning: This store's headers carry more distinct "
                   "personas, stages or temperatures (or combinations of them) than the "
                   "overview tells apart: the rest are counted together as “(other "
                   "labels)” in the charts, and a filter on a persona or stage may miss "
                   "those buyers. The buyer list reads Redis and finds them all.")
    with st.container(border=True):
        cols = st.columns([2, 3, 3, 2])
        filters = Filters(
            temperatures=tuple(cols[0].multiselect("Temperature", options["temperature"])),
            personas=tuple(cols[1].multiselect("Persona", options["persona"])),
            stages=tuple(cols[2].multiselect("Journey stage", options["journey_stage"])),
            hide_qa=cols[3].toggle("Hide QA seeds", value=False))
    model = overview_model(settings, memory, scan, filters)
    figures_section(model, fresh=True)
    dictionary_section(source.dictionary, scan.report["stored_bytes_by_dictionary"],
                       access, memory)
    charts_section(model)
    buyers_section(model)
    problems_section(model)


def sample_draws() -> int | None:
    """The draws asked for; None when the store holds fewer keys than that, as the exact
    scan then reads fewer keys than the sample would draw (and is exact)."""
    draws = int(st.number_input(
        "Random keys to draw", min_value=MIN_DRAWS, max_value=MAX_DRAWS,
        value=DEFAULT_DRAWS, step=10_000, key=DRAWS_KEY,
        help="More draws, narrower margins: the margin shrinks with the square root"))
    if keys_now is None or keys_now > draws:
        return draws  # unanswered: the sample says what is wrong
    st.info(f"This database holds {plural(keys_now, 'key')}, no more than the {draws:,} draws: the "
            "exact scan below reads fewer keys than a sample would, and is exact.")
    return None


def from_sample(draws: int) -> None:
    """Estimates for the whole store from random keys, and the drawn buyers' charts."""
    try:
        with st.spinner(f"Drawing {draws:,} random keys…"):
            sample, taken_at = sample_inventory(settings, memory, draws)
    except StoreUnavailable as exc:
        st.error(f"Sampling failed: {md(str(exc))}. Use Refresh to try again.")
        return
    figures = sample_report(sample)
    if large:
        st.caption(f"This database holds more than {plural(settings.sample_above_keys, 'key')}, so "
                   "the overview starts sampled; turn Sample off for the exact scan, which "
                   "reads every key (about 40 s and 450 MB per million buyers on 2 CPUs).")
    st.caption(f"Estimated from {sample.draws:,} random keys of "
               f"{sample.keys_in_database:,} ({len(sample.frame):,} under the prefix), "
               f"drawn at {taken_at:%H:%M:%S} UTC in {sample.seconds:.1f} s. ± is the 95% "
               "margin of error. Turn Sample off for exact numbers.")

    def shown(name: str, unit: Any = None) -> str:
        return figures[name].text(unit=unit)

    # Two columns: an estimate with its margin ("1,234,567 ± 12,345") needs half the width.
    people, keys = st.columns(2)
    people.metric("Buyers", shown("readable buyers"))
    for name in ("hot", "warm", "cold"):
        people.metric(name.capitalize(), shown(name))
    keys.metric("Stored", shown("stored bytes", human_bytes),
                help="Payload bytes of the readable buyer records, estimated")
    keys.metric("Expiring in 24 h", shown("expiring within 24 hours"))
    keys.metric("No TTL", shown("no TTL"))
    keys.metric("Corrupt / foreign", shown("corrupt, foreign or unreadable"))
    drawn = sample.unique_rows
    model = figures_of_rows(drawn, memory.config)
    st.caption(f"The charts show the {plural(model.buyers, 'buyer')} drawn: their shapes estimate "
               "the store's, their counts are the sample's.")
    charts_section(model)
    st.subheader("Buyers")
    st.info("The buyer list and its search need every key: turn Sample off for them.")


def first_source() -> OverviewSource | None:
    """This run's source, or None when Redis cannot be reached (the error is shown)."""
    try:
        return overview_source(settings, memory)
    except StoreUnavailable as exc:
        st.error(f"Scan failed: {md(str(exc))}. Use Refresh to try again.")
        return None


draws = sample_draws() if sampled else None
source = None if draws else first_source()
refreshing = source is not None and source.scan is None and not source.error


@st.fragment(run_every=POLL_SECONDS if refreshing else SCAN_CACHE_SECONDS if auto else None)
def overview() -> None:
    """Polls a background scan while one runs; a full run once it is done, to reset that."""
    current = first_source()
    if current is None:
        return
    if current.scan is None:
        from_snapshot(current)
    elif refreshing:
        st.rerun()  # the scan finished: draw it, and stop polling every second
    else:
        from_scan(current)


if draws:
    from_sample(draws)
elif source is not None:
    overview()
