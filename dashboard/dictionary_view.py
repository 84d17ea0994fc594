"""The overview's "Compression dictionary" section, and its "Train a dictionary" button.

The figures come from the scan (or the snapshot drawn while one runs): nothing here reads
Redis on a page run, except the training an operator asks for.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from dashboard.actions import ActionRefused, train_dictionary
from dashboard.auth import Access
from dashboard.dictionary_model import (
    byte_shares,
    current_text,
    estimate_text,
    offers_training,
    trained_text,
)
from dashboard.markdown import md
from dashboard.resources import forget_scan
from dashboard.settings import TRAIN_MIN_SAVING_ENV
from memory_core.admin import TRAIN_SAMPLES
from memory_core.dictionary_use import DictionaryStatus
from memory_core.errors import InvalidState, StoreUnavailable
from memory_core.store import SyncBuyerConversationMemory

TRAIN_BUTTON = "Train a dictionary"
#: What the last training click did, for the run after it: (kind, markdown, when).
OUTCOME_KEY = "_dictionary_training_outcome"
#: How long an outcome stays on screen while a background scan redraws the page each
#: second (a run that is not such a poll shows it once).
OUTCOME_SECONDS = 120.0


def dictionary_section(status: DictionaryStatus | None, by_dictionary: dict[str, int] | None,
                       access: Access, memory: SyncBuyerConversationMemory, *,
                       polling: bool = False) -> None:
    """The dictionary saves use, stored bytes by dictionary, the estimate, the button.

    ``polling``: this run redraws a snapshot while a background scan runs (every second),
    so the outcome of a training click is kept rather than shown once.
    """
    with st.container(border=True, key="dictionary_section"):
        st.markdown(f"**Compression dictionary** · saves use **{current_text(status)}**",
                    help="The trained zstd dictionary saves compress with now (as of the "
                         "scan). A dictionary makes small states compress several times "
                         "better; every record names the one it was written with.")
        if by_dictionary is None:  # a snapshot stored by an earlier version
            st.caption("Bytes per dictionary: shown after the next full scan.")
        else:
            columns = st.columns(3)
            for column, share in zip(columns, byte_shares(by_dictionary), strict=True):
                column.metric(share.label, share.value, delta=share.share_text,
                              delta_color="off", delta_arrow="off", help=share.help)
        st.caption(estimate_text(status))
        _outcome(polling)
        if access.can_write and offers_training(status, access.settings.train_min_saving):
            _train_button(access, memory, status)
        elif access.can_write and status is not None and status.estimated:
            st.caption(f"Training is offered from a {access.settings.train_min_saving:g}% "
                       f"saving ({TRAIN_MIN_SAVING_ENV}).")


def _train_button(access: Access, memory: SyncBuyerConversationMemory,
                  status: DictionaryStatus | None) -> None:
    """Train with a progress bar, then run the page again on a fresh scan."""
    why = ("No dictionary is trained yet" if status is None or status.current_id is None
           else f"A new dictionary would save about {status.saving:.0%}")
    if not st.button(TRAIN_BUTTON, type="primary", icon=":material/model_training:",
                     key="train_dictionary",
                     help=f"{why}. Trains on {TRAIN_SAMPLES:,} sampled stored states (their "
                          "names, phones and emails replaced by placeholders) and makes "
                          "saves use it; older dictionaries stay, so every record still "
                          "loads. Audited under your sign-in."):
        return
    bar = st.progress(0.0, text="Reading sampled states…")

    def progress(done: int, total: int) -> None:
        if done < total:
            bar.progress(done / total, text=f"Reading sampled states: {done:,} of {total:,}")
        else:
            bar.progress(1.0, text="Training the dictionary…")

    try:
        trained = train_dictionary(access, memory, sample_size=TRAIN_SAMPLES,
                                   progress=progress)
    except ActionRefused as exc:
        _remember("error", f"Not trained: {md(str(exc))}")
    except InvalidState as exc:
        _remember("error", f"Not trained: {md(str(exc))} The overview offers training "
                           "again once more buyer states are stored.")
    except StoreUnavailable as exc:
        _remember("error", f"Not trained: Redis did not answer ({md(str(exc))}). Check "
                           "the connection (the sidebar shows it), then try again.")
    else:
        _remember("success", trained_text(trained.dictionary_id, trained.samples,
                                          trained.dictionary_bytes,
                                          memory.config.dictionary_refresh_seconds))
        forget_scan()  # the next run scans again: the new current dictionary, its estimate
    finally:
        bar.empty()
    st.rerun()  # the whole page: the sidebar's dictionary id too


def _remember(kind: str, message: str) -> None:
    st.session_state[OUTCOME_KEY] = (kind, message, time.monotonic())


def _outcome(polling: bool) -> None:
    """The last training click's outcome: once, or kept a while during polling runs."""
    found: Any = st.session_state.get(OUTCOME_KEY)
    if not (isinstance(found, tuple) and len(found) == 3):
        return
    kind, message, when = found
    if time.monotonic() - when > OUTCOME_SECONDS:
        st.session_state.pop(OUTCOME_KEY, None)
        return
    if not polling:
        st.session_state.pop(OUTCOME_KEY, None)
    if kind == "success":
        st.success(message, icon=":material/check_circle:")
    else:
        st.error(message)
