"""Cached resources: one memory client per process, one inventory scan per short period."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from dashboard.settings import DashboardSettings, load_settings
from memory_core.config import MemoryConfig, load_config
from memory_core.connection import parse_target
from memory_core.demo import seed_demo_store
from memory_core.inventory import scan_summaries
from memory_core.store import SyncBuyerConversationMemory

SCAN_CACHE_SECONDS = 60


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


@st.cache_resource(ttl=SCAN_CACHE_SECONDS, max_entries=4, show_spinner=False)
def _scan_slot(url: str, config_path: str | None) -> _ScanSlot:
    # Not st.cache_data around the scan itself: the progress bar is drawn while the scan
    # runs, and st.cache_data would record those calls on a block created outside the
    # cached function and fail to replay them (CacheReplayClosureError on every later
    # run once a scan of more than 5,000 keys had shown progress).
    return _ScanSlot()


def scan_inventory(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                   show_progress: bool = True) -> pd.DataFrame:
    """The inventory table, from cache when fresh; a progress bar while a scan runs."""
    slot = _scan_slot(settings.redis_url, settings.config_path)
    with slot.lock:
        if slot.frame is None:
            bar = st.empty()

            def progress(done: int, total: int) -> None:
                if show_progress and total > 5000:
                    bar.progress(min(done / total, 1.0),
                                 text=f"Scanning keys: {done:,} of ~{total:,}")

            try:
                slot.frame = scan_summaries(memory, progress=progress)
            finally:
                bar.empty()
        return slot.frame.copy()


def forget_scan() -> None:
    """Drop the cached scan so the next page run reads Redis again."""
    _scan_slot.clear()
