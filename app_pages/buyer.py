"""Buyer: find one buyer, read the saved conversation, and act on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard.actions import ActionRefused, clear_buyer, reset_buyer_ttl
from dashboard.markdown import md
from dashboard.resources import forget_scan, open_memory, scan_inventory
from memory_core.admin import current_revision
from memory_core.errors import (
    CorruptRecord,
    InvalidContactId,
    RevisionConflict,
    StoreUnavailable,
)
from memory_core.state import mask_pii
from memory_core.store import StoredRecord

MAX_MATCHES = 50
settings, memory = open_memory()


@st.dialog("Clear this buyer?")
def confirm_clear(contact_id: str, revision: int | None) -> None:
    st.write(f"This deletes the saved conversation of **{md(contact_id)}** (revision "
             f"{revision}). The buyer will start over at the next message. If the bot saves "
             "the buyer before you confirm, nothing is deleted. Type the contact id to confirm.")
    typed = st.text_input("Contact id", key="confirm_clear_id")
    if st.button("Delete permanently", type="primary", disabled=typed.strip() != contact_id):
        try:
            existed = clear_buyer(settings, memory, contact_id, typed, revision)
        except (ActionRefused, RevisionConflict, StoreUnavailable) as exc:
            st.error(md(str(exc)))
            return
        st.session_state["cleared"] = (contact_id, existed)
        forget_scan()
        st.rerun()


def find_matches(prefix: str) -> list[str]:
    """Contact ids starting with ``prefix``, from the cached scan."""
    frame = scan_inventory(settings, memory, show_progress=False)
    ids = frame.loc[frame["contact_id"].str.startswith(prefix, na=False), "contact_id"]
    return sorted(ids.head(MAX_MATCHES * 4))[:MAX_MATCHES]


def score(value: object) -> float | str:
    """A score as st.metric can show it; the library stores whatever JSON the bot sent."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return "–" if value is None else json.dumps(value, default=str)[:40]


def label(value: object) -> str:
    return str(value or "unknown").replace("_", " ")


def show_summary(record: StoredRecord, state: dict) -> None:
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
    now = datetime.now(UTC)
    if record.ttl_seconds is None:
        ttl_text = "never expires (no TTL)"
    else:
        expires = now + timedelta(seconds=record.ttl_seconds)
        ttl_text = (f"{record.ttl_seconds / 86400:.1f} days, expires "
                    f"{expires:%Y-%m-%d %H:%M} UTC")
    storage = ("legacy pickled record (run `migrate-legacy`)" if summary is None else
               f"{summary.stored_bytes:,} B stored of {summary.original_bytes:,} B JSON, "
               f"codec `{summary.codec}`"
               + (f" with dictionary {summary.dictionary_id}" if summary.dictionary_id else ""))
    st.markdown(
        f"**Qualification step:** {md(label(state.get('current_qualification_step')))} · "
        f"**Budget:** {md(state.get('budget_range'))}\n\n"
        f"**Preferences:** {md(state.get('property_preferences'))}\n\n"
        f"**Contact:** {md(state.get('buyer_name') or '–')} · "
        f"{md(state.get('buyer_phone') or '–')} · {md(state.get('buyer_email') or '–')}\n\n"
        f"**TTL:** {md(ttl_text)} · **Storage:** {storage} · "
        f"**Schema:** {md(state.get('state_version'))} · **Revision:** {record.revision} · "
        f"**Last interaction:** {md(state.get('last_interaction_timestamp'))}")


def show_conversation(state: dict) -> None:
    history = state.get("conversation_history") or []
    st.subheader(f"Conversation ({len(history)} messages)")
    for message in history:
        if not isinstance(message, dict):
            continue
        role = "user" if message.get("role") == "user" else "assistant"
        with st.chat_message(role):
            st.markdown(md(str(message.get("content", ""))))
            if message.get("timestamp"):
                st.caption(str(message["timestamp"]))
    objections = state.get("objection_history") or []
    st.subheader(f"Objections ({len(objections)})")
    if objections:
        st.dataframe(objections, hide_index=True, width="stretch")
    else:
        st.caption("No objections recorded.")


def reset_ttl_clicked(contact_id: str, revision: int | None) -> None:
    """Runs before the page is drawn again, with the revision that was on screen."""
    try:
        reset_buyer_ttl(settings, memory, contact_id, revision)
    except (ActionRefused, RevisionConflict, StoreUnavailable) as exc:
        st.session_state["ttl_outcome"] = ("error", md(str(exc)))
        return
    forget_scan()
    st.session_state["ttl_outcome"] = ("done", f"TTL reset to {memory.config.ttl_days} days")


def show_actions(contact_id: str, revision: int | None) -> None:
    """Clear and reset TTL act on the revision on screen, never on a newer save."""
    if settings.read_only:
        st.caption(":material/lock: Read-only dashboard: clearing and TTL changes are disabled.")
        return
    left, right, _ = st.columns([1, 1, 3])
    if left.button("Clear this buyer", icon=":material/delete:"):
        confirm_clear(contact_id, revision)
    right.button("Reset TTL to default", icon=":material/timer:",
                 on_click=reset_ttl_clicked, args=(contact_id, revision))
    outcome = st.session_state.pop("ttl_outcome", None)
    if outcome is not None:
        kind, message = outcome
        if kind == "done":
            st.toast(message)
        else:
            st.error(message)


st.title("Buyer")
cleared = st.session_state.pop("cleared", None)
if cleared:
    st.success(f"Buyer **{md(cleared[0])}** was cleared: no saved state remains."
               if cleared[1] else f"Buyer **{md(cleared[0])}** had no saved state to clear.")

query = st.text_input("Contact id, or the start of one",
                      value=st.query_params.get("contact_id", ""),
                      placeholder="e.g. contact-2026-000042")
contact_id = query.strip()
if not contact_id:
    st.caption("Type a contact id, or open one from the overview table. Links of the form "
               "`/buyer?contact_id=...` open a buyer directly.")
    st.stop()
if st.query_params.get("contact_id") != contact_id:
    st.query_params["contact_id"] = contact_id

try:
    record = memory.read_record(contact_id)
except InvalidContactId as exc:
    st.warning(f"That is not a valid contact id: {md(str(exc))}")
    st.stop()
except CorruptRecord as exc:
    st.error(f"The record of **{md(contact_id)}** cannot be read: {md(str(exc))}. The bot "
             "treats it as no saved state; clearing it lets the buyer start fresh.")
    show_actions(contact_id, current_revision(memory, contact_id))
    st.stop()
except StoreUnavailable as exc:
    st.error(f"Cannot read from Redis: {exc}")
    st.stop()

if record is None:
    matches = [m for m in find_matches(contact_id) if m != contact_id]
    if matches:
        st.write(f"No buyer with exactly this id; {len(matches)} start with it:")
        choice = st.selectbox("Matching contacts", matches, index=None,
                              placeholder="Choose a contact")
        if choice:
            st.query_params["contact_id"] = choice
            st.rerun()
    else:
        st.info(f"No saved state for this contact (**{contact_id}**): never saved, expired "
                "or cleared.")
    st.stop()

reveal = st.toggle("Reveal name, phone and email", value=False,
                   help="PII stays masked on screen and in downloads unless revealed")
state = record.state if reveal else mask_pii(record.state)
show_summary(record, state)
show_actions(contact_id, record.revision)
export = json.dumps({"contact_id": contact_id, **state}, indent=2, ensure_ascii=False,
                    default=str)
st.download_button("Download state as JSON", data=export.encode(),
                   file_name=f"{contact_id}.json", mime="application/json",
                   icon=":material/download:",
                   help="Replay it with: python -m memory_core seed --from-file FILE")
show_conversation(state)
with st.expander("Raw JSON"):
    st.json(state, expanded=False)
