"""Server & health: is the bot's memory healthy, what does it cost, what else is stored."""

from __future__ import annotations

import streamlit as st

from dashboard.actions import ActionRefused
from dashboard.auth import current_access
from dashboard.markdown import code, md
from dashboard.resources import forget_scan, open_memory, scan_for_overview
from dashboard.server_view import (
    PROBLEM_KEYS_LISTED,
    delete_problem_key,
    inspect_key,
    problem_keys,
    show_cost,
    show_health,
    show_inspection,
)
from dashboard.signin import read_only_note, require
from memory_core.admin import ServerMemory, server_memory
from memory_core.breakdown import OverviewScan
from memory_core.errors import InvalidState, RevisionConflict, StoreUnavailable
from memory_core.health import HealthReport, read_health
from memory_core.store import SyncBuyerConversationMemory

HEALTH_REFRESH_SECONDS = 15
CHOICE_KEY = "server_key_choice"
CONFIRM_KEY = "server_delete_confirm"
OUTCOME_KEY = "server_delete_outcome"

access = require("viewer")
settings, memory = open_memory()


@st.cache_data(ttl=HEALTH_REFRESH_SECONDS, show_spinner=False)
def cached_health(url: str, config_path: str | None,
                  _memory: SyncBuyerConversationMemory) -> HealthReport:
    return read_health(_memory.client, _memory.prefix)


@st.cache_data(ttl=60, show_spinner=False)
def cached_cost(url: str, config_path: str | None, scan_stamp: object,
                _memory: SyncBuyerConversationMemory, _scan: OverviewScan) -> ServerMemory:
    """Per scan: a new scan (after any write) measures again."""
    return server_memory(_memory, buyer_keys=int(_scan.report["total"]),
                         sample_ids=_scan.breakdown.sample_ids)


@st.fragment(run_every=HEALTH_REFRESH_SECONDS)
def health_panel() -> None:
    """Refreshed on its own; nothing in it asks for a confirmation (see the GUIDE)."""
    try:
        show_health(cached_health(settings.redis_url, settings.config_path, memory))
    except StoreUnavailable as exc:
        st.error(f"Cannot read the health records: {md(str(exc))}")


def delete_clicked(contact_id: str, revision: int) -> None:
    """Runs before the page is drawn again: delete, remember the outcome, clear the box."""
    typed = str(st.session_state.get(CONFIRM_KEY, ""))
    try:
        deleted = delete_problem_key(current_access(), memory, contact_id, typed, revision)
    except (ActionRefused, InvalidState, RevisionConflict, StoreUnavailable) as exc:
        st.session_state[OUTCOME_KEY] = ("error", str(exc))
        return
    st.session_state[OUTCOME_KEY] = ("deleted" if deleted else "absent", typed.strip())
    st.session_state[CONFIRM_KEY] = ""
    forget_scan()  # every count on screen follows the deletion


st.title("Server & health")
st.caption("The bot processes' own counters, the Redis server's memory, and the keys under "
           f"the buyer prefix {code(memory.prefix + ':')} that are not buyer records.")

health_panel()

try:
    scan = scan_for_overview(settings, memory)  # the overview's, shared
    cost = cached_cost(settings.redis_url, settings.config_path, scan.taken_at, memory, scan)
except StoreUnavailable as exc:
    st.error(md(str(exc)))
    st.stop()
if settings.is_demo:  # fakeredis has no INFO or MEMORY USAGE: a row of dashes says nothing
    st.subheader("What does this cost?")
    st.info("The embedded demo store has no server memory figures. Connect a Redis "
            "(`REDIS_URL`) to see used memory, `maxmemory`, evictions and what a buyer "
            "costs, measured per key.")
else:
    show_cost(cost)

st.subheader("What else is under the prefix?")
outcome = st.session_state.pop(OUTCOME_KEY, None)
if outcome is not None:
    kind, text = outcome
    if kind == "error":
        st.error(md(text))
    elif kind == "deleted":
        st.success(f"Deleted the key of {code(text)}.")
    else:
        st.info(f"The key of {code(text)} was already gone.")
keys = problem_keys(scan)
if keys.empty:
    st.success("Every key under the prefix is a readable buyer record.")
    st.stop()
listed = keys.head(PROBLEM_KEYS_LISTED)
unreadable = int(scan.report["total"]) - int(scan.report["buyers"])  # listed or not
st.caption(f"{unreadable:,} key(s) hold no readable buyer"
           + (f"; the first {len(listed):,} are listed" if unreadable > len(listed) else "")
           + ". Legacy, undecryptable and missing-dictionary records are buyers this process "
             "cannot show: they can be inspected, not deleted here.")
st.dataframe(listed[["key", "status", "problem", "stored_bytes"]], hide_index=True,
             width="stretch", column_config={
                 "key": "Contact id", "status": "Status", "problem": "What is wrong",
                 "stored_bytes": st.column_config.NumberColumn("Stored bytes",
                                                               format="localized")})
by_shown = dict(zip(listed["key"], listed["contact_id"], strict=True))
choice = st.selectbox("Inspect a key", options=list(by_shown), index=None, key=CHOICE_KEY,
                      placeholder="Choose a contact id from the list")
if choice is None:
    st.stop()
contact_id = by_shown[choice]
try:
    found = inspect_key(access, memory, contact_id)
except StoreUnavailable as exc:
    st.error(md(str(exc)))
    st.stop()
with st.container(border=True):
    show_inspection(found)
    if found.exists and access.can_reveal and st.toggle(
            "Show the first 200 bytes (audited: a damaged record may hold personal data)",
            key=f"server_preview:{choice}"):
        try:
            previewed = inspect_key(access, memory, contact_id, with_preview=True)
            st.text(previewed.preview + ("\n(cut)" if previewed.preview_cut else "")
                    or "(empty)")
        except (ActionRefused, StoreUnavailable) as exc:
            st.error(md(str(exc)))
    if found.deletable:
        if access.can_write:
            st.markdown(f"Delete this key permanently? It holds no buyer state. Type "
                        f"{code(found.contact_id)} to confirm. If the bot saves a buyer "
                        "here before you confirm, nothing is deleted.")
            st.text_input("Contact id", key=CONFIRM_KEY)
            st.button("Delete key permanently", type="primary", key="server_delete",
                      on_click=delete_clicked, args=(contact_id, found.revision))
        else:
            st.caption(read_only_note(access) or "Only an operator may delete keys.")
