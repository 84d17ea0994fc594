"""Find buyers by an exact phone or email, and erase them ("delete my data").

The finding and the erasing are memory_core.erasure's (it normalises the phone or email);
the role checks and the audit entry of a search are dashboard.actions'. The erase dialog
needs a typed confirmation and has a Cancel; its receipt (no PII) is shown on the page
after the dialog closes.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from dashboard.actions import ERASE_CONFIRMATION, ActionRefused, erase_buyers, find_buyers
from dashboard.auth import Access, current_access
from dashboard.buyer_view import open_contact
from dashboard.markdown import code, md
from dashboard.resources import forget_scan
from dashboard.signin import read_only_note
from memory_core.errors import InvalidState, StoreUnavailable
from memory_core.store import SyncBuyerConversationMemory

_RECEIPT_KEY = "erasure_receipt"
_FOUND_KEY = "_pii_search"  # (digest of the query, contact ids): one search per query


@st.dialog("Erase these buyers?")
def confirm_erase(memory: SyncBuyerConversationMemory, kind: str, text: str,
                  contact_ids: list[str]) -> None:
    """Erase needs ERASE typed; the buttons inside a dialog only work in a real browser
    (test_browser.py), the action itself is tested directly."""
    shown = ", ".join(code(c) for c in contact_ids[:20]) + (" …" if len(contact_ids) > 20 else "")
    st.write(f"This permanently deletes the saved conversations of {len(contact_ids)} "
             f"buyer(s) with this {kind} ({shown}) and their lookup entries, whatever the "
             "bot saved meanwhile: a request to delete someone's data wins. You get a "
             f"receipt without PII. Type {ERASE_CONFIRMATION} to confirm.")
    typed = st.text_input(f"Type {ERASE_CONFIRMATION} to confirm", key="confirm_erase",
                          live="150ms")  # enables the button as it is typed
    left, right = st.columns(2)
    if left.button("Erase permanently", type="primary",
                   disabled=(typed or "").strip() != ERASE_CONFIRMATION):
        try:
            receipt = erase_buyers(current_access(), memory, typed_confirmation=typed,
                                   contact_ids=contact_ids, **{kind: text})
        except (ActionRefused, InvalidState, StoreUnavailable) as exc:
            st.error(md(str(exc)))
            return
        st.session_state[_RECEIPT_KEY] = receipt.to_json()
        st.session_state.pop(_FOUND_KEY, None)
        forget_scan()
        st.rerun()
    if right.button("Cancel"):
        st.rerun()


def show_pii_search(access: Access, memory: SyncBuyerConversationMemory, kind: str,
                    text: str) -> None:
    """Buyers found by an exact phone or email, and erase ("delete my data") for them."""
    if not access.can_reveal:
        st.info(f"Finding buyers by phone or email is for operators. {read_only_note(access)}")
        return
    # A search reads every record when no lookup key is configured: once per query, not
    # on every rerun of the page (and so one audit entry per search).
    digest = hashlib.sha256(f"{kind}:{text}".encode("utf-8", "surrogatepass")).hexdigest()
    cached = st.session_state.get(_FOUND_KEY)
    if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == digest:
        found = [str(contact_id) for contact_id in cached[1]]
    else:
        try:
            with st.spinner(f"Looking for this {kind}…"):
                found = find_buyers(access, memory, **{kind: text})
        except (ActionRefused, InvalidState, StoreUnavailable) as exc:
            st.error(md(str(exc)))
            return
        st.session_state[_FOUND_KEY] = (digest, tuple(found))
    if not found:
        st.info(f"No saved buyer has this {kind}.")
        return
    choice = st.selectbox(f"Buyers with this {kind} ({len(found)})", found, index=None,
                          placeholder="Open one")
    if choice:
        open_contact(choice)
    if st.button(f"Erase {len(found)} buyer(s) with this {kind}", icon=":material/delete_forever:",
                 key="erase_open"):
        confirm_erase(memory, kind, text, found)


def show_receipt() -> None:
    """The receipt of an erasure that just happened, once."""
    receipt = st.session_state.pop(_RECEIPT_KEY, None)
    if isinstance(receipt, str):
        st.success("Erased. The receipt (no PII; keep it as the record of the request):")
        st.code(receipt, language="json")
