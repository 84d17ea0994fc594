"""How one buyer's saved state is drawn: metrics, the summary line, the transcript.

Every value comes from a Redis record that whoever can write Redis chose, so each is made
inert for the element that shows it: :func:`md` inside markdown (metric labels and values
render markdown too), :func:`code` for details an operator copies, and ``st.text`` (no
markdown, no autolinks) for messages.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import streamlit as st

from dashboard.markdown import code, md
from memory_core.lookup import normalise_email, normalise_phone
from memory_core.safetext import printable
from memory_core.store import StoredRecord

_PHONE_SHAPE = re.compile(r"\+?[0-9(][0-9 ().\-/]{6,30}")


def pii_query(text: str) -> tuple[str, str] | None:
    """("phone" | "email", text) when the search box holds a phone number or an email.

    Only text made of phone characters counts as a phone (``contact-2026-000042`` holds
    ten digits, but is an id); the normalising itself is memory_core.lookup's.
    """
    if "@" in text and normalise_email(text):
        return "email", text
    if _PHONE_SHAPE.fullmatch(text) and normalise_phone(text):
        return "phone", text
    return None


def score(value: object) -> float | str:
    """A score as st.metric can show it; the library stores whatever JSON the bot sent."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return "–" if value is None else md(json.dumps(value, default=str)[:40])


def label(value: object) -> str:
    """A category from the state ("first_time_buyer") as inert words ("first time buyer")."""
    return md(str(value or "unknown").replace("_", " "))


def plain(value: object) -> str:
    """Text for st.text: control and bidi characters visible, line breaks kept."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return "\n".join(printable(line) for line in text.split("\n"))


def show_summary(record: StoredRecord, state: dict[str, Any]) -> None:
    summary = record.summary
    row = st.columns(4)
    row[0].metric("Temperature", label(state.get("buyer_temperature")))
    row[1].metric("Persona", label(state.get("buyer_persona")))
    row[2].metric("Qualified", "yes" if state.get("is_qualified") else "no")
    row[3].metric("Journey stage", label(state.get("current_journey_stage")))
    row = st.columns(4)
    row[0].metric("Financial readiness", score(state.get("financial_readiness_score")))
    row[1].metric("Buying motivation", score(state.get("buying_motivation_score")))
    row[2].metric("Urgency", label(state.get("urgency_level")))
    row[3].metric("Financing", label(state.get("financing_status")))
    if record.ttl_seconds is None:
        ttl_text = "never expires (no TTL)"
    else:
        expires = datetime.now(UTC) + timedelta(seconds=record.ttl_seconds)
        ttl_text = (f"{record.ttl_seconds / 86400:.1f} days, expires "
                    f"{expires:%Y-%m-%d %H:%M} UTC")
    storage = ("legacy pickled record (run `migrate-legacy`)" if summary is None else
               f"{summary.stored_bytes:,} B stored of {summary.original_bytes:,} B JSON, "
               f"codec {code(summary.codec)}"
               + (f" with dictionary {md(summary.dictionary_id)}"
                  if summary.dictionary_id else "")
               + (f", encrypted with key {code(summary.key_id)}" if summary.key_id
                  else ", not encrypted"))
    st.markdown(
        f"**Qualification step:** {label(state.get('current_qualification_step'))} · "
        f"**Budget:** {md(state.get('budget_range'))}\n\n"
        f"**Preferences:** {md(state.get('property_preferences'))}\n\n"
        f"**Contact:** {code(state.get('buyer_name') or '–')} · "
        f"{code(state.get('buyer_phone') or '–')} · {code(state.get('buyer_email') or '–')}"
        f"\n\n**TTL:** {md(ttl_text)} · **Storage:** {storage} · "
        f"**Schema:** {md(state.get('state_version'))} · **Revision:** {record.revision} · "
        f"**Last interaction:** {md(state.get('last_interaction_timestamp'))}")


def show_conversation(state: dict[str, Any]) -> None:
    """The transcript as plain text: no markdown, so no link, image or autolinked e-mail."""
    history = state.get("conversation_history") or []
    st.subheader(f"Conversation ({len(history)} messages)")
    for message in history:
        if not isinstance(message, dict):
            continue
        role = "user" if message.get("role") == "user" else "assistant"
        with st.chat_message(role):
            st.text(plain(message.get("content", "")))
            if message.get("timestamp"):
                st.caption(md(message["timestamp"]))
    objections = state.get("objection_history") or []
    st.subheader(f"Objections ({len(objections)})")
    if objections:
        st.dataframe(objections, hide_index=True, width="stretch")
    else:
        st.caption("No objections recorded.")
