"""Cached resources: one memory client per process, one inventory scan per short period.

After a write, :func:`reload_after_write` drops the cached scan and runs the page again, so
every number on screen (the sidebar's key count included, drawn before the page acted) is
read after the write; its message is carried over and shown once by :func:`show_flash`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, NoReturn

import pandas as pd
import streamlit as st

from dashboard.overview_model import Filters, OverviewModel, build_overview, filter_options
from dashboard.settings import DashboardSettings, load_settings
from memory_core.config import MemoryConfig, load_config
from memory_core.connection import parse_target
from memory_core.demo import seed_demo_store
from memory_core.inventory import timed_scan
from memory_core.store import SyncBuyerConversationMemory

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
    frame: pd.DataFrame | None = None
    scanned_at: datetime | None = None
    scan_seconds: float = 0.0


@st.cache_resource(ttl=SCAN_CACHE_SECONDS, max_entries=4, show_spinner=False)
def _scan_slot(url: str, config_path: str | None) -> _ScanSlot:
    # Not st.cache_data around the scan itself: the progress bar is drawn while the scan
    # runs, and st.cache_data would record those calls on a block created outside the
    # cached function and fail to replay them (CacheReplayClosureError on every later
    # run once a scan of more than 5,000 keys had shown progress).
    return _ScanSlot()


def scan_inventory(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                   show_progress: bool = True) -> pd.DataFrame:
    """The inventory table, from cache when fresh; a progress bar while a scan runs.

    The frame is shared by every session until the next scan: treat it as read-only.
    """
    slot = _scan_slot(settings.redis_url, settings.config_path)
    with slot.lock:
        if slot.frame is None:
            bar = st.empty()

            def progress(done: int, total: int) -> None:
                if show_progress and total > 5000:
                    bar.progress(min(done / total, 1.0),
                                 text=f"Scanning keys: {done:,} of ~{total:,}")

            try:
                slot.frame, slot.scan_seconds = timed_scan(memory, progress=progress)
                slot.scanned_at = datetime.now(UTC)
            finally:
                bar.empty()
        return slot.frame  # shared by every session: read it, never modify it


def last_scan(settings: DashboardSettings) -> tuple[datetime, float] | None:
    """When the cached scan was taken and how long it took, to show how fresh data is."""
    slot = _scan_slot(settings.redis_url, settings.config_path)
    return (slot.scanned_at, slot.scan_seconds) if slot.scanned_at else None


def forget_scan() -> None:
    """Drop the cached scan so the next page run reads Redis again."""
    _scan_slot.clear()


@st.cache_resource(ttl=SCAN_CACHE_SECONDS, max_entries=64, show_spinner=False)
def _overview_model(source: tuple[str, str | None, datetime | None], filters: Filters,
                    _frame: pd.DataFrame, _config: MemoryConfig) -> OverviewModel:
    return build_overview(_frame, filters, _config)


@st.cache_resource(ttl=SCAN_CACHE_SECONDS, max_entries=8, show_spinner=False)
def _filter_options(source: tuple[str, str | None, datetime | None],
                    _frame: pd.DataFrame) -> dict[str, list[str]]:
    return filter_options(_frame)


def overview_options(settings: DashboardSettings, frame: pd.DataFrame) -> dict[str, list[str]]:
    """Filter choices for this scan, computed once per scan."""
    return _filter_options(_scan_source(settings), frame)


def overview_model(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                   frame: pd.DataFrame, filters: Filters) -> OverviewModel:
    """What the overview draws for this scan and these filters, computed once for all."""
    return _overview_model(_scan_source(settings), filters, frame, memory.config)


def _scan_source(settings: DashboardSettings) -> tuple[str, str | None, datetime | None]:
    """Which scan a derived result belongs to: Redis, config, and when it was scanned."""
    scan = last_scan(settings)
    return settings.redis_url, settings.config_path, scan[0] if scan else None


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
