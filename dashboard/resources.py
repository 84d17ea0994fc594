"""Cached resources: one memory client per process, one inventory scan per short period.

After a write, :func:`reload_after_write` drops the cached scan and runs the page again, so
every number on screen (the sidebar's key count included, drawn before the page acted) is
read after the write; its message is carried over and shown once by :func:`show_flash`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, NoReturn

import streamlit as st

from dashboard.overview_model import (
    BuyerList,
    BuyerQuery,
    Figures,
    Filters,
    OverviewModel,
    build_overview,
    figures_from_snapshot,
    list_buyers,
)
from dashboard.settings import DashboardSettings, load_settings
from memory_core.admin import qa_seed_ids
from memory_core.breakdown import OverviewScan, scan_overview
from memory_core.config import MemoryConfig, load_config
from memory_core.connection import parse_target
from memory_core.demo import seed_demo_store
from memory_core.dictionary_use import DictionaryStatus, dictionary_status
from memory_core.errors import StoreUnavailable
from memory_core.listing import ids_starting_with
from memory_core.sampling import Sample, check_draws, sample_summaries
from memory_core.snapshot import Snapshot, keep_snapshot, read_snapshot
from memory_core.store import SyncBuyerConversationMemory

log = logging.getLogger(__name__)

SCAN_CACHE_SECONDS = 60
_FLASH_KEY = "_flash_after_write"
FlashKind = Literal["success", "warning", "error", "toast"]


@st.cache_resource(show_spinner=False)
def _open_memory(url: str, config_path: str | None) -> SyncBuyerConversationMemory:
    config: MemoryConfig = load_config(config_path)
    memory = SyncBuyerConversationMemory.from_url(url, config)
    if parse_target(url).is_demo:
        seed_demo_store(memory)
    return memory


def open_memory() -> tuple[DashboardSettings, SyncBuyerConversationMemory]:
    """Settings and the process-wide memory for them (raises ConfigError, URL errors)."""
    settings = load_settings()
    return settings, _open_memory(settings.redis_url, settings.config_path)


@dataclass
class _ScanSlot:
    """The latest scan of one Redis; a lock so concurrent sessions share one scan."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The overview's scan, folded: counts per filter cell, no row per buyer.
    overview: OverviewScan | None = None
    #: Its figures without filters, built by the scan itself, so the first page after a
    #: scan only draws them.
    unfiltered: OverviewModel | None = None
    #: The QA-seeded buyers' ids, read when the QA page is opened (under their own lock:
    #: never waiting for, nor ageing, the overview's scan), and when (monotonic).
    qa_seeds: list[str] | None = None
    qa_read_at: float = 0.0
    qa_lock: threading.Lock = field(default_factory=threading.Lock)
    scanned_at: datetime | None = None
    scan_seconds: float = 0.0
    #: The dictionary at the scan and a fresh one's estimated saving, made once by the
    #: scan (training on samples takes a second: never per page run).
    dictionary: DictionaryStatus | None = None
    #: The background scan, one per slot (so per process and Redis): sessions share it.
    starting: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    progress: tuple[int, int] = (0, 0)  # keys done, estimated total, of that scan
    error: str | None = None  # why the background scan failed (shown; Refresh retries)
    #: The snapshot drawn while no fresh scan is there, read once per slot.
    snapshot: Snapshot | None = None
    figures: Figures | None = None
    snapshot_read: bool = False

    created_at: float = field(default_factory=time.monotonic)
    #: When the scan ended (monotonic): the cache period counts from here.
    finished_at: float | None = None

    @property
    def scanning(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def expired(self, now: float) -> bool:
        """A scan older than the cache period, counted from its end (a 1M-buyer scan
        took half a minute: counted from its start, its table was fresh for seconds), or
        a failed scan as old (it is tried again)."""
        if self.finished_at is not None:
            return now - self.finished_at > SCAN_CACHE_SECONDS
        return self.error is not None and now - self.created_at > SCAN_CACHE_SECONDS


# Not st.cache_data around the scan itself: the progress bar is drawn while the scan
# runs, and st.cache_data would record those calls on a block created outside the
# cached function and fail to replay them (CacheReplayClosureError on every later run
# once a scan of more than 5,000 keys had shown progress).
@st.cache_resource(show_spinner=False)
def _slots() -> dict[tuple[str, str | None], _ScanSlot]:
    """One slot per Redis and config, for the whole process."""
    return {}


_SLOTS_LOCK = threading.Lock()


def _scan_slot(url: str, config_path: str | None) -> _ScanSlot:
    """The current slot of this Redis; a new one once its scan is older than the period."""
    with _SLOTS_LOCK:
        slots = _slots()
        slot = slots.get((url, config_path))
        if slot is None or slot.expired(time.monotonic()):
            slot = slots[(url, config_path)] = _ScanSlot()
        return slot


def _progress_bar(show: bool) -> tuple[Callable[[int, int], None], Callable[[], None],
                                         Callable[[], object]]:
    """A progress bar for a scan in the page's thread: (progress, estimating, done). Only
    for scans of more than 5,000 keys: a small store's scan takes a blink."""
    bar = st.empty()
    shown = [False]

    def progress(done: int, total: int) -> None:
        if show and total > 5000:
            shown[0] = True
            bar.progress(min(done / total, 1.0), text=f"Scanning keys: {done:,} of ~{total:,}")

    def estimating() -> None:
        if shown[0]:
            bar.progress(1.0, text="Estimating what a new compression dictionary would "
                                   "save…")

    return progress, estimating, bar.empty


def qa_seeds(settings: DashboardSettings, memory: SyncBuyerConversationMemory) -> list[str]:
    """The QA-seeded buyers' ids, read once per scan period for every session (only the
    seeds' ids are held; a write forgets them). Raises StoreUnavailable."""
    slot = _scan_slot(settings.redis_url, settings.config_path)
    with slot.qa_lock:
        now = time.monotonic()
        if slot.qa_seeds is None or now - slot.qa_read_at > SCAN_CACHE_SECONDS:
            slot.qa_seeds = qa_seed_ids(memory)
            slot.qa_read_at = now
        return slot.qa_seeds


@st.cache_resource(ttl=SCAN_CACHE_SECONDS, max_entries=64, show_spinner=False)
def _id_matches(url: str, config_path: str | None, prefix: str, limit: int,
                _memory: SyncBuyerConversationMemory) -> tuple[list[str], int]:
    return ids_starting_with(_memory, prefix, limit)


def id_matches(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
               prefix: str, limit: int) -> tuple[list[str], int]:
    """The first ``limit`` contact ids (sorted) starting with ``prefix`` and how many
    there are, from SCAN MATCH (no table of every key); shared for the scan period."""
    return _id_matches(settings.redis_url, settings.config_path, prefix, limit, memory)


def scan_for_overview(settings: DashboardSettings, memory: SyncBuyerConversationMemory
                      ) -> OverviewScan:
    """The overview's folded scan, from cache when fresh; a progress bar while it runs."""
    slot = _scan_slot(settings.redis_url, settings.config_path)
    with slot.lock:
        if slot.overview is None:
            progress, estimating, done = _progress_bar(True)
            try:
                _scan_into(slot, memory, progress, estimating)
            finally:
                done()
        if slot.overview is None:  # _scan_into sets it or raises
            raise RuntimeError("the inventory scan finished without a result")
        return slot.overview


def _finished(slot: _ScanSlot, taken_at: datetime, seconds: float) -> None:
    slot.scan_seconds, slot.scanned_at = seconds, taken_at
    slot.finished_at = time.monotonic()


def _scan_into(slot: _ScanSlot, memory: SyncBuyerConversationMemory,
               progress: Callable[[int, int], None],
               estimating: Callable[[], None] | None = None) -> None:
    """Scan (caller holds ``slot.lock``), estimate a fresh dictionary's saving once,
    keep both, and store them as the snapshot. The estimate never fails the scan."""
    scan = scan_overview(memory, progress=progress)
    if estimating is not None:
        estimating()
    dictionary = dictionary_status(memory)
    keep_snapshot(memory, scan.snapshot(dictionary))
    slot.unfiltered = build_overview(scan, Filters(), memory.config)
    slot.dictionary = dictionary
    slot.overview = scan
    _finished(slot, datetime.now(UTC), scan.seconds)


#: A snapshot is drawn first only when the last scan took at least this long: a faster
#: scan runs in the foreground, so a small store never shows its list a moment late.
BACKGROUND_AFTER_SECONDS = 0.5
#: How often the page looks at a background scan (progress, done).
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class OverviewSource:
    """What the overview draws now: a fresh scan, or a snapshot while one runs."""

    scan: OverviewScan | None  # the fresh scan; None while drawing from the snapshot
    snapshot: Snapshot | None = None
    figures: Figures | None = None
    progress: tuple[int, int] = (0, 0)
    error: str | None = None
    #: The compression dictionary of that scan (or snapshot) and a fresh one's estimate.
    dictionary: DictionaryStatus | None = None


def overview_source(settings: DashboardSettings, memory: SyncBuyerConversationMemory
                    ) -> OverviewSource:
    """The fresh scan when there is one; else the newest valid snapshot at once, with a
    background scan (one per process, shared by sessions) refreshing it; else a scan now.

    Raises StoreUnavailable when a scan in the foreground cannot reach Redis.
    """
    slot = _scan_slot(settings.redis_url, settings.config_path)
    if slot.overview is not None:
        return OverviewSource(scan=slot.overview, dictionary=slot.dictionary)
    snapshot, figures = _slot_snapshot(slot, settings, memory)
    if snapshot is None or figures is None or (
            snapshot.scan_seconds < BACKGROUND_AFTER_SECONDS and not slot.scanning):
        scan = scan_for_overview(settings, memory)
        return OverviewSource(scan=scan, dictionary=slot.dictionary)
    _start_background_scan(slot, memory)
    if slot.overview is not None:  # finished meanwhile
        return OverviewSource(scan=slot.overview, dictionary=slot.dictionary)
    return OverviewSource(scan=None, snapshot=snapshot, figures=figures,
                          progress=slot.progress, error=slot.error,
                          dictionary=snapshot.dictionary)


def _slot_snapshot(slot: _ScanSlot, settings: DashboardSettings,
                   memory: SyncBuyerConversationMemory
                   ) -> tuple[Snapshot | None, Figures | None]:
    """The newest snapshot and its figures, read and drawn once per slot for all sessions.

    A snapshot taken before this process last wrote to Redis is not used: the page after
    a write shows numbers read after it (see :func:`reload_after_write`).
    """
    with slot.starting:
        if not slot.snapshot_read:
            slot.snapshot_read = True
            snapshot = read_snapshot(memory)
            not_before = _write_marks().get("not_before")
            if snapshot is not None and (not_before is None or snapshot.taken_at >= not_before):
                try:
                    slot.figures = figures_from_snapshot(snapshot, memory.config)
                    slot.snapshot = snapshot
                except (ValueError, TypeError, KeyError) as exc:  # valid, yet not drawable
                    log.warning("inventory snapshot not drawn: %s", type(exc).__name__)
        return slot.snapshot, slot.figures


def _start_background_scan(slot: _ScanSlot, memory: SyncBuyerConversationMemory) -> None:
    """Start the slot's scan in a thread unless one runs, ran, or failed (Refresh retries).

    The thread calls no Streamlit API (Streamlit's APIs belong to a script's thread): it
    only fills the slot, which the page reads on its next run.
    """
    with slot.starting:
        if slot.thread is not None or slot.overview is not None:
            return

        def progress(done: int, total: int) -> None:
            slot.progress = (done, total)

        def run() -> None:
            try:
                with slot.lock:
                    if slot.overview is None:
                        _scan_into(slot, memory, progress)
            except StoreUnavailable as exc:
                slot.error = str(exc)
            except Exception as exc:
                log.exception("background inventory scan failed")
                slot.error = f"{type(exc).__name__}: {exc}"

        slot.thread = threading.Thread(target=run, name="inventory-scan", daemon=True)
        slot.thread.start()


def background_scan(settings: DashboardSettings) -> threading.Thread | None:
    """The current background scan's thread, if any (for tests and benchmarks to join)."""
    return _scan_slot(settings.redis_url, settings.config_path).thread


@st.cache_resource(show_spinner=False)
def _write_marks() -> dict[str, datetime]:
    """When this process last wrote to Redis: older snapshots are not drawn."""
    return {}


def last_scan(settings: DashboardSettings) -> tuple[datetime, float] | None:
    """When the cached scan was taken and how long it took, to show how fresh data is."""
    slot = _scan_slot(settings.redis_url, settings.config_path)
    return (slot.scanned_at, slot.scan_seconds) if slot.scanned_at else None


def forget_scan() -> None:
    """Drop the cached scan so the next page run reads Redis again (not an older snapshot)."""
    _write_marks()["not_before"] = datetime.now(UTC)
    with _SLOTS_LOCK:
        _slots().clear()
    _sample.clear()
    _id_matches.clear()


@st.cache_resource(ttl=SCAN_CACHE_SECONDS, max_entries=4, show_spinner=False)
def _sample(url: str, config_path: str | None, draws: int,
            _memory: SyncBuyerConversationMemory) -> tuple[Sample, datetime]:
    return sample_summaries(_memory, draws), datetime.now(UTC)


def sample_inventory(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                     draws: int) -> tuple[Sample, datetime]:
    """A sample of ``draws`` random keys and when it was drawn, shared by every session
    for the scan cache's period (raises StoreUnavailable, ValueError for a bad count)."""
    return _sample(settings.redis_url, settings.config_path, check_draws(draws), memory)


@st.cache_resource(ttl=SCAN_CACHE_SECONDS, max_entries=64, show_spinner=False)
def _overview_model(source: tuple[str, str | None, datetime], filters: Filters,
                    _scan: OverviewScan, _config: MemoryConfig) -> OverviewModel:
    return build_overview(_scan, filters, _config)


def overview_model(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                   scan: OverviewScan, filters: Filters) -> OverviewModel:
    """What the overview draws for this scan and these filters, computed once for all."""
    slot = _scan_slot(settings.redis_url, settings.config_path)
    if filters == Filters() and slot.overview is scan and slot.unfiltered is not None:
        return slot.unfiltered
    return _overview_model((settings.redis_url, settings.config_path, scan.taken_at),
                           filters, scan, memory.config)


@st.cache_resource(ttl=SCAN_CACHE_SECONDS, max_entries=32, show_spinner=False)
def _buyer_list(source: tuple[str, str | None, datetime], filters: Filters,
                query: BuyerQuery, _memory: SyncBuyerConversationMemory,
                _model: OverviewModel) -> BuyerList:
    return list_buyers(_memory, _model, query)


def buyer_list(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
               model: OverviewModel, query: BuyerQuery) -> BuyerList:
    """The buyer list for this scan, filters and query, read once for every session
    within the cache period (a list the scan did not keep reads Redis again)."""
    return _buyer_list((settings.redis_url, settings.config_path, model.scan.taken_at),
                       model.filters, query, memory, model)


def remember_flash(kind: FlashKind, message: str) -> None:
    """Keep an outcome (markdown, values already escaped) for the next run to show once.

    For callbacks: they run before the page is drawn, so no rerun is needed after them.
    """
    forget_scan()
    flashes = st.session_state.get(_FLASH_KEY)
    flashes = list(flashes) if isinstance(flashes, list) else []
    flashes.append((kind, message))
    st.session_state[_FLASH_KEY] = flashes


def reload_after_write(kind: FlashKind, message: str) -> NoReturn:
    """After a write in the page's body: run the page again so nothing shows old numbers.

    Not for callbacks (st.rerun is a no-op there): use :func:`remember_flash`.
    """
    remember_flash(kind, message)
    st.rerun()


def show_flash() -> None:
    """The outcomes of the writes just done, once, above the page that re-read Redis."""
    flashes = st.session_state.pop(_FLASH_KEY, None)
    for kind, message in flashes if isinstance(flashes, list) else []:
        if kind == "toast":
            st.toast(message)
        elif kind == "warning":
            st.warning(message)
        elif kind == "error":
            st.error(message)
        else:
            st.success(message)
