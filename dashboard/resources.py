"""Cached resources: one memory client per process, one inventory scan per short period."""

from __future__ import annotations

from collections.abc import Callable

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


@st.cache_data(ttl=SCAN_CACHE_SECONDS, show_spinner=False, max_entries=4)
def _cached_scan(url: str, config_path: str | None, _memory: SyncBuyerConversationMemory,
                 _progress: Callable[[int, int], None] | None) -> pd.DataFrame:
    return scan_summaries(_memory, progress=_progress)


def scan_inventory(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                   show_progress: bool = True) -> pd.DataFrame:
    """The inventory table, from cache when fresh; a progress bar while a scan runs."""
    bar = st.empty()

    def progress(done: int, total: int) -> None:
        if show_progress and total > 5000:
            bar.progress(min(done / total, 1.0), text=f"Scanning keys: {done:,} of ~{total:,}")

    try:
        return _cached_scan(settings.redis_url, settings.config_path, memory, progress)
    finally:
        bar.empty()


def forget_scan() -> None:
    """Drop the cached scan so the next page run reads Redis again."""
    _cached_scan.clear()
