"""Overview: the health of the buyer memory at a glance, from record headers only."""

from __future__ import annotations

import copy

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard.markdown import md
from dashboard.overview_model import TABLE_ROWS, Filters, OverviewModel
from dashboard.resources import (
    SCAN_CACHE_SECONDS,
    forget_scan,
    last_scan,
    open_memory,
    overview_model,
    overview_options,
    scan_inventory,
)
from dashboard.signin import require
from memory_core.errors import StoreUnavailable
from memory_core.safetext import csv_bytes


def human_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"


def draw(where: DeltaGenerator, model: OverviewModel, name: str) -> None:
    """One of the model's charts; a copy, because Streamlit takes the data out of a spec."""
    where.vega_lite_chart(copy.deepcopy(model.charts[name]), width="stretch")


require("viewer")  # app.py lists this page only after sign-in; this holds for any route
st.title("Buyer memory overview")
settings, memory = open_memory()
top = st.columns([1, 1, 4])
if top[0].button("Refresh", icon=":material/refresh:", help="Scan Redis again now"):
    forget_scan()
auto = top[1].toggle("Auto-refresh", help=f"Rescan every {SCAN_CACHE_SECONDS} s")


@st.fragment(run_every=SCAN_CACHE_SECONDS if auto else None)
def overview() -> None:
    try:
        frame = scan_inventory(settings, memory)
    except StoreUnavailable as exc:
        st.error(f"Scan failed: {md(str(exc))}. Use Refresh to try again.")
        return
    scan = last_scan(settings)
    if scan is not None:
        st.caption(f"Scanned {len(frame):,} keys at {scan[0]:%H:%M:%S} UTC in {scan[1]:.1f} s; "
                   f"cached for up to {SCAN_CACHE_SECONDS} s.")
    options = overview_options(settings, frame)
    with st.container(border=True):
        cols = st.columns([2, 3, 3, 2])
        filters = Filters(
            temperatures=tuple(cols[0].multiselect("Temperature", options["temperature"])),
            personas=tuple(cols[1].multiselect("Persona", options["persona"])),
            stages=tuple(cols[2].multiselect("Journey stage", options["journey_stage"])),
            hide_qa=cols[3].toggle("Hide QA seeds", value=False))
    model = overview_model(settings, memory, frame, filters)
    report = model.report

    temps = report["by_temperature"]
    row = st.columns(4)
    row[0].metric("Buyers", f"{model.buyers:,}")
    row[1].metric("Hot", f"{temps.get('hot', 0):,}")
    row[2].metric("Warm", f"{temps.get('warm', 0):,}")
    row[3].metric("Cold", f"{temps.get('cold', 0):,}")
    row = st.columns(5)
    row[0].metric("Stored", human_bytes(report["stored_bytes"]))
    ratio = report["compression_ratio"]
    row[1].metric("Compression ratio", f"{ratio:.2f}×" if ratio else "–",
                  help="Total original JSON bytes ÷ total stored bytes")
    row[2].metric("Expiring in 24 h", f"{report['ttl']['expiring_24h']:,}")
    row[3].metric("No TTL", f"{report['ttl']['no_ttl']:,}",
                  help="Keys that never expire: the bot always sets a TTL, so look at these")
    row[4].metric("Corrupt / foreign", f"{model.unreadable:,}",
                  help="Keys under the prefix that are not readable buyer states"
                  + (f"; plus {model.legacy:,} legacy record(s) to migrate"
                     if model.legacy else ""))

    if not model.charts:
        st.info("No buyers match these filters.")
    else:
        left, right = st.columns(2)
        draw(left, model, "ratio")
        draw(right, model, "bytes")
        right.caption(model.bytes_note)
        left, right = st.columns(2)
        draw(left, model, "ttl")
        if report["ttl"]["no_ttl"]:
            left.warning(f"{report['ttl']['no_ttl']:,} key(s) have no TTL and never expire.")
        draw(right, model, "temperature")
        for names in (("persona", "stage", "qualified"), ("history", "schema", "codec")):
            for column, name in zip(st.columns(3), names, strict=True):
                draw(column, model, name)

    st.subheader("Buyers")
    st.dataframe(
        model.shown[["open", "contact_id", "temperature", "persona", "message_count",
                     "stored_bytes", "compression_ratio", "ttl_days", "last_interaction",
                     "qa_seed"]],
        hide_index=True, width="stretch",
        column_config={
            "open": st.column_config.LinkColumn("Buyer", display_text="Open"),
            "contact_id": "Contact id",
            "temperature": "Temperature",
            "persona": "Persona",
            "message_count": st.column_config.NumberColumn("Messages"),
            "stored_bytes": st.column_config.NumberColumn("Stored (B)", format="%d"),
            "compression_ratio": st.column_config.NumberColumn("Ratio", format="%.2f×"),
            "ttl_days": st.column_config.NumberColumn("TTL (days)", format="%.1f"),
            "last_interaction": st.column_config.DatetimeColumn("Last interaction"),
            "qa_seed": st.column_config.CheckboxColumn("QA seed"),
        })
    if len(model.table) > TABLE_ROWS:
        st.caption(f"Showing the {TABLE_ROWS:,} most recent of {len(model.table):,} matching "
                   "buyers; the CSV has them all.")
    st.download_button("Download CSV",
                       data=lambda: csv_bytes(model.table),  # no cell runs as a formula
                       file_name="buyers.csv", mime="text/csv", icon=":material/download:",
                       help="All matching buyers; built when you click, not on every refresh")

    st.subheader("Corrupt, foreign and legacy records")
    if model.problems.empty:
        st.success("Every key under the prefix holds a readable buyer state.")
    else:
        st.dataframe(model.problems, hide_index=True, width="stretch",
                     column_config={"stored_bytes": st.column_config.NumberColumn(
                         "Stored (B)", format="%d")})


overview()
