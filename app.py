"""Buyer memory operations dashboard: ``streamlit run app.py``.

Connects to ``REDIS_URL`` (or ``redis_url`` in .streamlit/secrets.toml); with neither it
runs on an embedded demo store and says so. An unreachable Redis is reported with the
host tried and how to fix it; the dashboard never falls back to demo data silently.
"""

from __future__ import annotations

import streamlit as st

from dashboard.resources import forget_scan, open_memory
from dashboard.settings import DashboardSettings
from memory_core.admin import describe_store
from memory_core.connection import parse_target
from memory_core.errors import MemoryCoreError, StoreUnavailable
from memory_core.store import SyncBuyerConversationMemory

st.set_page_config(page_title="Buyer memory", page_icon=":material/home_work:", layout="wide")


def _show_connection_problem(settings: DashboardSettings | None, exc: Exception) -> None:
    where = parse_target(settings.redis_url).redacted_url if settings else "the configured Redis"
    st.error(f"**Cannot reach Redis at `{where}`.**\n\n{exc}")
    st.markdown(
        "- Check that the server runs and accepts connections from this host "
        "(`redis-cli -u <url> ping`).\n"
        "- Check `REDIS_URL` or `redis_url` in `.streamlit/secrets.toml`: host, port, "
        "database, TLS (`rediss://`), user and password.\n"
        "- Unset both to explore the embedded demo store instead.")
    if st.button("Retry", type="primary"):
        forget_scan()
        st.rerun()
    st.stop()


def _sidebar(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
             facts: dict[str, object]) -> None:
    target = parse_target(settings.redis_url)
    with st.sidebar:
        st.subheader("Connection")
        mode = ":material/science: **Demo**" if target.is_demo else ":material/cloud_done: **Live**"
        st.markdown(f"{mode} · {target.label}")
        version = "fakeredis, in-process" if target.is_demo else (
            f"Redis {facts.get('redis_version') or 'version unknown'}")
        st.caption(f"{version} · "
                   f"{facts.get('keys') or 0:,} keys in this database")
        if settings.read_only:
            st.caption(":material/lock: Read-only: write actions are disabled")
        st.subheader("Memory settings")
        config = memory.config
        st.markdown(
            f"- TTL **{config.ttl_days} days** (policy {config.ttl_days_min}–"
            f"{config.ttl_days_max})\n"
            f"- Compression over **{config.compress_threshold_bytes:,} B** "
            f"({config.codec}, level {config.zstd_level})\n"
            f"- History cap **{config.max_history_messages}** messages\n"
            f"- Dictionary: **{facts.get('dictionary_id') or 'none'}**\n"
            f"- Key prefix `{config.cache_key_prefix}:`")


settings: DashboardSettings | None = None
try:
    settings, memory = open_memory()
    facts = describe_store(memory)
except StoreUnavailable as exc:
    _show_connection_problem(settings, exc)
except MemoryCoreError as exc:
    st.error(f"**The dashboard configuration is invalid.** {exc}")
    st.stop()

if settings.is_demo:
    st.info("**Demo mode**: no Redis is configured, so this runs on an embedded store "
            "seeded with a few hundred synthetic buyers. Set `REDIS_URL` (or `redis_url` in "
            "`.streamlit/secrets.toml`) to operate a real Redis.")

_sidebar(settings, memory, facts)
# The pages live in app_pages/, not pages/: with a pages/ folder Streamlit emulates its old
# multipage mode until st.navigation has run once, so a deep link (/buyer?contact_id=...)
# opened first on a fresh server would run the page without this entry point.
navigation = st.navigation([
    st.Page("app_pages/overview.py", title="Overview", icon=":material/monitoring:", default=True),
    st.Page("app_pages/buyer.py", title="Buyer", icon=":material/person_search:", url_path="buyer"),
    st.Page("app_pages/qa.py", title="QA seeding", icon=":material/science:", url_path="qa"),
])
navigation.run()
