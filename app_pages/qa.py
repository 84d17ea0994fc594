"""QA seeding: create realistic test buyers, replay scenario files, and remove them again."""

from __future__ import annotations

import streamlit as st

from dashboard.actions import ActionRefused, remove_qa_seeds, seed_buyers, seed_file
from dashboard.markdown import code, md, plural
from dashboard.resources import (
    open_memory,
    qa_seeds,
    reload_after_write,
    remember_flash,
    show_flash,
)
from dashboard.signin import require
from memory_core.errors import InvalidContactId, InvalidState, MemoryCoreError, StoreUnavailable
from memory_core.seeding import MAX_HISTORY_MESSAGES, SeedOptions

access = require("operator")
settings, memory = open_memory()
st.title("QA seeding")
show_flash()  # the outcome of the last write; the page below was read after it
st.caption("Seeded buyers carry a QA tag inside their state, so they can be listed and "
           "removed exactly, without touching real buyers.")

if access.read_only:
    st.warning(":material/lock: The dashboard is read-only: seeding and removal are disabled.")
elif not access.can_seed:
    st.warning("Seeding is disabled on this Redis: it is not the demo store. Set "
               "`allow_seeding = true` in secrets (or `MEMORY_DASHBOARD_ALLOW_SEEDING=1`) on "
               "a staging Redis to enable it.")

with st.form("seed_form"):
    st.subheader("Generate test buyers")
    cols = st.columns(3)
    count = cols[0].number_input("Buyers", min_value=1, max_value=100_000, value=100, step=100)
    seed = cols[1].number_input("Random seed", min_value=0, value=1, step=1,
                                help="The same seed gives the same buyers")
    id_prefix = cols[2].text_input("Contact id prefix", value="qa-")
    shares = st.columns(3)
    hot = shares[0].slider("Hot share", 0, 100, 20, format="%d%%")
    warm = shares[1].slider("Warm share", 0, 100, 45, format="%d%%")
    cold = shares[2].slider("Cold share", 0, 100, 35, format="%d%%")
    ranges = st.columns([2, 1, 1])
    # The store keeps at most max_history_messages per buyer: a longer history would be
    # trimmed on save, so the slider does not offer one.
    cap = min(memory.config.max_history_messages, MAX_HISTORY_MESSAGES)
    if cap > 1:
        shortest = min(2, cap - 1)
        history = ranges[0].slider(
            "History length (messages)", shortest, cap, (shortest, cap),
            help=f"Messages per buyer, at most the store's history cap "
                 f"({plural(cap, 'message')}, `max_history_messages`)")
    else:  # a one-message cap leaves nothing to choose
        history = (1, 1)
        ranges[0].caption("History length: 1 message (the store's history cap)")
    # Two numbers, not a range slider: its usual setting, one TTL for every buyer, put
    # both ends on one spot and their labels side by side ("30 30").
    policy_max, default_ttl = memory.config.ttl_days_max, memory.config.ttl_days
    spread = "Each buyer gets a TTL between the shortest and the longest"
    shortest_ttl = ranges[1].number_input("Shortest TTL (days)", 1, policy_max, default_ttl,
                                          help=f"{spread}; equal values give every buyer "
                                               "that TTL")
    longest_ttl = ranges[2].number_input("Longest TTL (days)", 1, policy_max, default_ttl,
                                         help=f"{spread}; at most the policy's "
                                              f"{plural(policy_max, 'day')}")
    ttl_days = sorted((int(shortest_ttl), int(longest_ttl)))
    submitted = st.form_submit_button("Seed buyers", type="primary",
                                      disabled=not access.can_seed)
if submitted:
    options = SeedOptions(count=int(count), seed=int(seed), id_prefix=id_prefix.strip(),
                          temperature_mix=(hot / 100, warm / 100, cold / 100),
                          history_range=(int(history[0]), int(history[1])),
                          ttl_days_range=(int(ttl_days[0]), int(ttl_days[1])))
    bar = st.progress(0.0, text="Seeding…")

    def show_seeded(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Seeded {done:,}/{total:,}")

    try:
        result = seed_buyers(access, memory, options, show_seeded)
        remember_flash("success", f"Seeded **{result.written:,}** QA "
                       f"{'buyer' if result.written == 1 else 'buyers'} (seed "
                       f"{options.seed}, ids {code(f'{options.id_prefix}{options.seed}-…')}).")
        if result.kept_real:
            kept = len(result.kept_real)
            remember_flash("warning", f"{kept:,} of the generated ids "
                           + ("holds a real buyer; it was" if kept == 1 else
                              "hold real buyers; those were") + " left alone.")
    except (ActionRefused, InvalidState, InvalidContactId, StoreUnavailable) as exc:
        st.error(md(str(exc)))
    else:
        st.rerun()  # the sidebar's key count and the counts below were read before
    finally:
        bar.empty()

st.subheader("Replay a scenario file")
upload = st.file_uploader("JSON or YAML: one state with its contact_id, or a list of them",
                          type=["json", "yaml", "yml"], disabled=not access.can_seed)
if upload is not None and st.button("Seed from file", disabled=not access.can_seed):
    try:
        result = seed_file(access, memory, upload.getvalue(), upload.name)
        remember_flash("success", f"Seeded {result.written} buyer(s) from {md(upload.name)}.")
        if result.kept_real:
            kept = len(result.kept_real)
            remember_flash("warning", f"{plural(kept, 'buyer')} "
                           f"{'was' if kept == 1 else 'were'} saved by the bot while seeding "
                           "ran and left alone.")
    except (ActionRefused, InvalidState, InvalidContactId) as exc:
        problems = str(exc).split("; ")
        st.error("\n".join(f"- {md(p)}" for p in problems))
    except StoreUnavailable as exc:
        st.error(md(str(exc)))
    else:
        st.rerun()

st.subheader("Remove QA seeds")
try:
    with st.spinner("Finding the QA-seeded buyers…"):
        seeded = qa_seeds(settings, memory)  # cached, shared
except StoreUnavailable as exc:
    st.error(md(str(exc)))
    st.stop()
one = len(seeded) == 1
st.write(f"**{len(seeded):,}** QA-seeded {'buyer is' if one else 'buyers are'} stored now. "
         "Real buyers are never touched.")
if seeded and access.can_write:
    confirmed = st.checkbox("Yes, delete the 1 QA-seeded buyer" if one else
                            f"Yes, delete all {len(seeded):,} QA-seeded buyers")
    if st.button("Remove QA seeds", disabled=not confirmed):
        try:
            removed = remove_qa_seeds(access, memory, seeded, confirmed)
        except (ActionRefused, MemoryCoreError) as exc:
            st.error(md(str(exc)))
        else:
            reload_after_write("success", f"Removed {removed:,} QA-seeded "
                               f"{'buyer' if removed == 1 else 'buyers'}.")
