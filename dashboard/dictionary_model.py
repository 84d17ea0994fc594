"""The overview's "Compression dictionary" section as plain data: no Streamlit here.

What a dictionary trained now would save is measured by training one on sampled stored
states (about a second for 1,000): far too slow for every page run of every session, so
:func:`memory_core.dictionary_use.dictionary_status` runs once per scan, in the scan's
own path (foreground or background, :mod:`dashboard.resources`), and its result travels
with the scan's slot and its snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.charts import human_bytes
from memory_core.dictionaries import MIN_TRAINING_SAMPLES
from memory_core.dictionary_use import DictionaryStatus
from memory_core.inventory import DICTIONARY_USE

#: How each :data:`DICTIONARY_USE` label is said on the page.
BYTE_LABELS = {"current": "With the current dictionary", "older": "With an older dictionary",
               "none": "Without a dictionary"}
BYTE_HELP = {
    "current": "Stored bytes of readable records compressed with the dictionary saves use "
               "now",
    "older": "Stored bytes of records compressed with a dictionary saves no longer use: "
             "they are compressed with the current one when the bot saves them again",
    "none": "Stored bytes of records compressed without a dictionary (or stored "
            "uncompressed, being small)",
}


def offers_training(status: DictionaryStatus | None, min_saving_percent: float) -> bool:
    """Whether training is worth offering: a fresh dictionary would save at least the set
    share, or none exists yet and a dictionary can be trained (the estimate worked)."""
    if status is None or not status.estimated:
        return False
    return status.current_id is None or status.saving * 100 >= min_saving_percent


@dataclass(frozen=True)
class ByteShare:
    """Stored bytes with one kind of dictionary, as the page shows them."""

    label: str
    help: str
    stored_bytes: int
    share: float | None  # of every readable record's stored bytes; None when there are none

    @property
    def value(self) -> str:
        return human_bytes(self.stored_bytes)

    @property
    def share_text(self) -> str:
        return "–" if self.share is None else f"{self.share:.0%} of stored bytes"


def byte_shares(by_dictionary: dict[str, int]) -> list[ByteShare]:
    """Stored bytes with the current dictionary, an older one and none, with their shares."""
    whole = sum(int(by_dictionary.get(label, 0)) for label in DICTIONARY_USE)
    return [ByteShare(BYTE_LABELS[label], BYTE_HELP[label], int(by_dictionary.get(label, 0)),
                      int(by_dictionary.get(label, 0)) / whole if whole else None)
            for label in DICTIONARY_USE]


def current_text(status: DictionaryStatus | None) -> str:
    """The dictionary saves use now, in words."""
    return "not known yet" if status is None else status.saves_use


def estimate_text(status: DictionaryStatus | None) -> str:
    """What a dictionary trained now would save, or why there is no estimate."""
    if status is None:
        return ("No estimate yet of what a new dictionary would save: it is made with the "
                "next scan (Refresh).")
    if status.estimated:
        against = ("the dictionary saves use now" if status.current_id is not None
                   else "compressing without one, as saves do now")
        if round(status.saving * 100) == 0:
            return (f"A dictionary trained now would store the sampled states in no fewer "
                    f"bytes than {against}, estimated on {status.measured:,} states.")
        return (f"A dictionary trained now would store the sampled states in "
                f"**{status.saving:.0%} fewer bytes** than {against}, estimated on "
                f"{status.measured:,} states.")
    if status.reason == "too_few":
        return ("No estimate of what a new dictionary would save: too few buyer states are "
                f"stored to train one on (it takes at least {MIN_TRAINING_SAMPLES} states of "
                "some size, and as many again to measure it). It appears once more buyers "
                "are stored.")
    if status.reason == "disabled":
        return ("No estimate: saves use no dictionary in this configuration "
                "(use_dictionary = false), so training one would change nothing.")
    if status.reason == "unavailable":
        return ("No estimate of what a new dictionary would save: Redis stopped answering "
                "after the scan. Use Refresh to try again.")
    return ("No estimate of what a new dictionary would save: estimating it failed (see "
            "the dashboard's log). Use Refresh to try again.")


def trained_text(dictionary_id: int, samples: int, size: int, refresh_seconds: float) -> str:
    """What training did, and when it shows (markdown; every value is a number)."""
    within = f"{refresh_seconds:g} s"
    return (f"Trained dictionary **{dictionary_id}** on {samples:,} sampled states "
            f"({human_bytes(size)} stored); it is now the one saves use. Bot processes "
            f"switch to it within {within} (dictionary_refresh_seconds), and stored records "
            "shrink as the bot saves them again: later scans show them move to *With the "
            "current dictionary*. Older dictionaries stay stored, so every record still "
            "loads.")
