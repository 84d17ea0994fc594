"""Audit: who revealed, cleared, reset, erased or seeded what, newest first (operators only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard.audit_view import AuditFilters, choices, events_frame, filter_events
from dashboard.markdown import code, md, plural
from dashboard.resources import open_memory
from dashboard.signin import require
from memory_core.audit import AUDIT_MAX_ENTRIES, audit_key, count_events, read_events
from memory_core.errors import StoreUnavailable
from memory_core.safetext import csv_bytes

require("operator")  # actor names and sessions are operational data, not for viewers
settings, memory = open_memory()
st.title("Audit trail")
st.caption(f"Every write and PII reveal, from the dashboard and the CLI, from the stream "
           f"{code(audit_key(memory.prefix))} (about {AUDIT_MAX_ENTRIES:,} entries are "
           "kept; the oldest fall off first). No PII is recorded.")

newest = st.select_slider("Entries to read (newest first)",
                          options=[1_000, 5_000, 20_000, AUDIT_MAX_ENTRIES], value=5_000)
try:
    frame = events_frame(read_events(memory.client, memory.prefix, limit=newest))
    stored = count_events(memory.client, memory.prefix)
except StoreUnavailable as exc:
    st.error(f"Cannot read the audit trail: {md(str(exc))}")
    st.stop()

with st.container(border=True):
    cols = st.columns([2, 2, 2, 2, 3])
    today = datetime.now(UTC).date()
    days = cols[4].date_input("Between (UTC days)", value=(today - timedelta(days=29), today),
                              max_value=today)
    picked = list(days) if isinstance(days, tuple | list) else [days]  # 1 day mid-choice
    filters = AuditFilters(
        actions=tuple(cols[0].multiselect("Action", choices(frame, "action"))),
        outcomes=tuple(cols[1].multiselect("Outcome", choices(frame, "outcome"))),
        actor_text=cols[2].text_input("Actor contains", placeholder="dashboard:operator"),
        contact_text=cols[3].text_input("Contact id contains"),
        first_day=picked[0] if picked else None, last_day=picked[-1] if picked else None)
shown = filter_events(frame, filters)

st.caption(f"{len(shown):,} of {plural(len(frame), 'entry', 'entries')} read "
           f"match{'es' if len(shown) == 1 else ''} ({stored:,} in the stream).")
st.dataframe(shown, hide_index=True, width="stretch", column_config={
    "time": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "actor": "Actor", "action": "Action", "contact_id": "Contact id", "outcome": "Outcome",
    "detail": "Detail", "entry_id": "Stream id"})
st.download_button("Download CSV", data=lambda: csv_bytes(shown), file_name="audit.csv",
                   mime="text/csv", icon=":material/download:",
                   help="The entries shown; no cell runs as a formula in a spreadsheet")
