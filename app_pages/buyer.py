"""Buyer: find one buyer, read the saved conversation, and act on it."""

from __future__ import annotations

import json

import streamlit as st

from dashboard.actions import ActionRefused, clear_buyer, reset_buyer_ttl, reveal_pii
from dashboard.auth import current_access
from dashboard.buyer_view import (
    MESSAGE_CHARS,
    SEARCH_KEY,
    clipped_json,
    open_contact,
    pii_query,
    search_changed,
    show_conversation,
    show_summary,
    sync_search_box,
)
from dashboard.erasure_view import show_pii_search, show_receipt
from dashboard.markdown import md, plural
from dashboard.resources import (
    id_matches,
    open_memory,
    reload_after_write,
    remember_flash,
    show_flash,
)
from dashboard.signin import read_only_note, require
from memory_core.admin import current_revision
from memory_core.errors import (
    CorruptRecord,
    InvalidContactId,
    RevisionConflict,
    StoreUnavailable,
)
from memory_core.state import mask_pii

MAX_MATCHES = 50
access = require("viewer")
settings, memory = open_memory()


@st.dialog("Clear this buyer?")
def confirm_clear(contact_id: str, revision: int | None) -> None:
    """The button enables while the id is typed (``live``: no Enter needed); the buttons
    work in a real browser only (test_browser.py), the action is tested directly."""
    st.write(f"This deletes the saved conversation of **{md(contact_id)}** (revision "
             f"{revision}). The buyer will start over at the next message. If the bot saves "
             "the buyer before you confirm, nothing is deleted. Type the contact id to confirm.")
    typed = st.text_input("Contact id", key="confirm_clear_id", live="150ms")
    left, right = st.columns(2)
    if left.button("Delete permanently", type="primary",
                   disabled=(typed or "").strip() != contact_id):
        try:
            existed = clear_buyer(current_access(), memory, contact_id, typed or "", revision)
        except (ActionRefused, RevisionConflict, StoreUnavailable) as exc:
            st.error(md(str(exc)))
            return
        reload_after_write("success", f"Buyer **{md(contact_id)}** was cleared: no saved "
                           "state remains." if existed else
                           f"Buyer **{md(contact_id)}** had no saved state to clear.")
    if right.button("Cancel"):
        st.rerun()


def find_matches(prefix: str) -> tuple[list[str], int]:
    """The first contact ids (sorted) starting with ``prefix``, and how many there are."""
    return id_matches(settings, memory, prefix, MAX_MATCHES)


def reset_ttl_clicked(contact_id: str, revision: int | None) -> None:
    """Runs before the page is drawn again, with the revision that was on screen."""
    try:
        reset_buyer_ttl(current_access(), memory, contact_id, revision)
    except (ActionRefused, RevisionConflict, StoreUnavailable) as exc:
        st.session_state["ttl_outcome"] = md(str(exc))
        return
    remember_flash("toast", f"TTL reset to {plural(memory.config.ttl_days, 'day')}")


def show_actions(contact_id: str, revision: int | None) -> None:
    """Clear and reset TTL act on the revision on screen, never on a newer save."""
    if not access.can_write:
        st.caption(f":material/lock: {read_only_note(access)}")
        return
    left, right, _ = st.columns([1, 1, 3])
    if left.button("Clear this buyer", icon=":material/delete:", key="clear_buyer"):
        confirm_clear(contact_id, revision)
    right.button("Reset TTL to default", icon=":material/timer:", key="reset_ttl",
                 on_click=reset_ttl_clicked, args=(contact_id, revision))
    refused = st.session_state.pop("ttl_outcome", None)
    if refused is not None:
        st.error(refused)


st.title("Buyer")
show_flash()
show_receipt()

sync_search_box()
query = st.text_input("Contact id, or the start of one; operators: a phone or email",
                      key=SEARCH_KEY, on_change=search_changed,
                      placeholder="e.g. contact-2026-000042")
contact_id = (query or "").strip()
if not contact_id:
    st.caption("Type a contact id, or open one from the overview table. Links of the form "
               "`/buyer?contact_id=...` open a buyer directly.")
    st.stop()

pii = pii_query(contact_id)
try:
    record = memory.read_record(contact_id)
except InvalidContactId as exc:
    if pii is None:
        st.warning(f"That is not a valid contact id: {md(str(exc))}")
        st.stop()
    record = None
except CorruptRecord as exc:
    st.error(f"The record of **{md(contact_id)}** cannot be read: {md(str(exc))}. The bot "
             "treats it as no saved state; clearing it lets the buyer start fresh.")
    show_actions(contact_id, current_revision(memory, contact_id))
    st.stop()
except StoreUnavailable as exc:
    st.error(f"Cannot read from Redis: {md(str(exc))}")
    st.stop()

if record is None and pii is not None:
    show_pii_search(access, memory, *pii)
    st.stop()
if record is None:
    try:
        matches, total = find_matches(contact_id)
    except StoreUnavailable as exc:
        st.error(f"Cannot search contact ids: {md(str(exc))}")
        st.stop()
    if matches:
        st.write(f"No buyer with exactly this id; {total:,} "
                 + ("starts" if total == 1 else "start") + " with it"
                 + (f" (the first {len(matches):,} "
                    + ("is" if len(matches) == 1 else "are") + " listed: type more of the id)"
                    if total > len(matches) else "") + ":")
        choice = st.selectbox("Matching contacts", matches, index=None,
                              placeholder="Choose a contact")
        if choice:
            open_contact(choice)
    else:
        st.info(f"No saved state for this contact (**{md(contact_id)}**): never saved, "
                "expired or cleared.")
    st.stop()

state = mask_pii(record.state)
# Only an operator gets the toggle; one per buyer, so opening another starts masked again.
if access.can_reveal and st.toggle(
        "Reveal name, phone and email", key=f"reveal:{contact_id}",
        help="PII stays masked on screen and in downloads unless revealed; each reveal is "
             "written to the audit trail"):
    try:
        state = reveal_pii(access, memory, contact_id, record.state, record.revision)
    except (ActionRefused, StoreUnavailable) as exc:
        st.error(f"Not revealed: {md(str(exc))}")
show_summary(record, state, memory.key_for(contact_id))
show_actions(contact_id, record.revision)
export = json.dumps({"contact_id": contact_id, **state}, indent=2, ensure_ascii=False,
                    default=str)
st.download_button("Download state as JSON", data=export.encode(),
                   file_name=f"{contact_id}.json", mime="application/json",
                   icon=":material/download:",
                   help="Replay it with: python -m memory_core seed --from-file FILE")
show_conversation(state, contact_id, most=memory.config.max_history_messages)
with st.expander("Raw JSON"):
    shown, cut = clipped_json(state)
    if cut:
        st.caption(f"{plural(cut, 'long string')} cut to {MESSAGE_CHARS:,} characters here; "
                   "the JSON download holds the whole state.")
    st.json(shown, expanded=False)
