"""The audit trail as a table the Audit page filters: pure functions, events in, frame out.

Entries are read back from Redis, so every field is hostile text: they are shown in
st.dataframe cells (plain text) and exported through safetext.csv_bytes, never as
markdown. A time that does not parse stays in the table with an empty time, so a forged
entry cannot hide from the time filter by carrying a nonsense time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pandas as pd

from memory_core.audit import AuditEvent

COLUMNS = ["time", "actor", "action", "contact_id", "outcome", "detail", "entry_id"]


@dataclass(frozen=True)
class AuditFilters:
    """The operator's choice; empty means 'all'. Dates are UTC days, both included."""

    actions: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    actor_text: str = ""
    contact_text: str = ""
    first_day: date | None = None
    last_day: date | None = None


def events_frame(events: list[AuditEvent]) -> pd.DataFrame:
    """One row per event, newest first, ``time`` as UTC timestamps (NaT when unreadable)."""
    frame = pd.DataFrame([event.as_row() for event in events], columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True, errors="coerce", format="ISO8601")
    return frame


def _contains(values: pd.Series, text: str) -> pd.Series:
    return values.str.contains(text.strip(), case=False, regex=False, na=False)


def filter_events(frame: pd.DataFrame, filters: AuditFilters) -> pd.DataFrame:
    """Rows matching every filter that is set."""
    keep = pd.Series(True, index=frame.index)
    if filters.actions:
        keep &= frame["action"].isin(filters.actions)
    if filters.outcomes:
        keep &= frame["outcome"].isin(filters.outcomes)
    if filters.actor_text.strip():
        keep &= _contains(frame["actor"], filters.actor_text)
    if filters.contact_text.strip():
        keep &= _contains(frame["contact_id"], filters.contact_text)
    unreadable = frame["time"].isna()
    if filters.first_day is not None:
        start = pd.Timestamp(datetime.combine(filters.first_day, time.min), tz="UTC")
        keep &= unreadable | (frame["time"] >= start)
    if filters.last_day is not None:
        end = pd.Timestamp(datetime.combine(filters.last_day + timedelta(days=1), time.min),
                           tz="UTC")
        keep &= unreadable | (frame["time"] < end)
    return frame[keep]


def choices(frame: pd.DataFrame, column: str, limit: int = 200) -> list[str]:
    """Distinct values of a column for a multiselect (bounded: values are hostile)."""
    return sorted(frame[column].astype(str).value_counts().index[:limit])
