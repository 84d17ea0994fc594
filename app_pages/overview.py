"""Overview: the health of the buyer memory at a glance, from record headers only."""

from __future__ import annotations

from urllib.parse import quote

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.resources import SCAN_CACHE_SECONDS, forget_scan, open_memory, scan_inventory
from memory_core.admin import frame_for_export
from memory_core.errors import StoreUnavailable
from memory_core.inventory import STATUS_OK, problem_records, summarize_inventory

TABLE_ROWS = 1000


def human_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"


def apply_filters(frame: pd.DataFrame, temperatures: list[str], personas: list[str],
                  stages: list[str], hide_qa: bool) -> pd.DataFrame:
    """Buyers (readable records) matching the filters; empty selections match everything."""
    rows = frame[frame["status"] == STATUS_OK]
    for column, chosen in (("temperature", temperatures), ("persona", personas),
                           ("journey_stage", stages)):
        if chosen:
            rows = rows[rows[column].astype(str).isin(chosen)]
    if hide_qa:
        rows = rows[~rows["qa_seed"]]
    return rows


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
        st.error(f"Scan failed: {exc}. Use Refresh to try again.")
        return
    buyers_all = frame[frame["status"] == STATUS_OK]
    options = {c: sorted(buyers_all[c].astype(str).unique())
               for c in ("temperature", "persona", "journey_stage")}
    with st.container(border=True):
        cols = st.columns([2, 3, 3, 2])
        temperatures = cols[0].multiselect("Temperature", options["temperature"])
        personas = cols[1].multiselect("Persona", options["persona"])
        stages = cols[2].multiselect("Journey stage", options["journey_stage"])
        hide_qa = cols[3].toggle("Hide QA seeds", value=False)
    buyers = apply_filters(frame, temperatures, personas, stages, hide_qa)
    report = summarize_inventory(buyers)
    problems = problem_records(frame)

    temps = report["by_temperature"]
    row = st.columns(4)
    row[0].metric("Buyers", f"{len(buyers):,}")
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
    row[4].metric("Corrupt / foreign", f"{len(problems):,}")

    if len(buyers) == 0:
        st.info("No buyers match these filters.")
    else:
        config = memory.config
        left, right = st.columns(2)
        left.altair_chart(charts.compression_ratio_chart(buyers), width="stretch")
        right.altair_chart(charts.stored_bytes_chart(buyers, config.compress_threshold_bytes),
                           width="stretch")
        left, right = st.columns(2)
        left.altair_chart(charts.ttl_chart(buyers, config), width="stretch")
        if report["ttl"]["no_ttl"]:
            left.warning(f"{report['ttl']['no_ttl']:,} key(s) have no TTL and never expire.")
        right.altair_chart(charts.category_chart(buyers, "temperature", "Temperature mix",
                                                 charts.TEMPERATURE_COLORS),
                           width="stretch")
        cols = st.columns(3)
        cols[0].altair_chart(charts.category_chart(buyers, "persona", "Persona mix"),
                             width="stretch")
        cols[1].altair_chart(charts.category_chart(buyers, "journey_stage", "Journey stage"),
                             width="stretch")
        cols[2].altair_chart(charts.qualified_chart(buyers), width="stretch")
        cols = st.columns(3)
        cols[0].altair_chart(charts.history_chart(buyers, config.max_history_messages),
                             width="stretch")
        cols[1].altair_chart(charts.category_chart(buyers, "schema_version", "Schema versions"),
                             width="stretch")
        cols[2].altair_chart(charts.category_chart(buyers, "codec", "Codec mix"),
                             width="stretch")

    st.subheader("Buyers")
    table = frame_for_export(buyers).sort_values("last_interaction", ascending=False)
    shown = table.head(TABLE_ROWS).assign(
        open=lambda d: "buyer?contact_id=" + d["contact_id"].map(quote))
    st.dataframe(
        shown[["open", "contact_id", "temperature", "persona", "message_count", "stored_bytes",
               "compression_ratio", "ttl_days", "last_interaction", "qa_seed"]],
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
    if len(table) > TABLE_ROWS:
        st.caption(f"Showing the {TABLE_ROWS:,} most recent of {len(table):,} matching buyers; "
                   "the CSV has them all.")
    st.download_button("Download CSV", data=lambda: table.to_csv(index=False),
                       file_name="buyers.csv", mime="text/csv", icon=":material/download:",
                       help="All matching buyers; built when you click, not on every refresh")

    st.subheader("Corrupt or foreign records")
    if problems.empty:
        st.success("Every key under the prefix holds a readable buyer state.")
    else:
        st.dataframe(problems, hide_index=True, width="stretch",
                     column_config={"stored_bytes": st.column_config.NumberColumn(
                         "Stored (B)", format="%d")})


overview()
