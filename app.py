"""Buyer memory operations dashboard: ``streamlit run app.py``.

Connects to ``REDIS_URL`` (or ``redis_url`` in .streamlit/secrets.toml); with neither it
runs on an embedded demo store and says so. An unreachable Redis is reported with the
host tried and how to fix it; the dashboard never falls back to demo data silently.

Who may see and do what is decided by dashboard.auth before anything else: a visitor who
has to sign in sees the sign-in form and nothing of the store, not even a key count.
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st

from dashboard.auth import Access, AuthConfigError, current_access, load_auth_config
from dashboard.markdown import code, md, plural
from dashboard.resources import forget_scan, open_memory
from dashboard.settings import DashboardSettings, load_settings
from dashboard.signin import ENABLE_OPERATOR_ACCESS, sidebar_account, sign_in_screen
from memory_core.admin import describe_store
from memory_core.config import MemoryConfig
from memory_core.connection import (
    CONNECTION_FAILURES,
    describe_connection_error,
    parse_target,
)
from memory_core.errors import ConfigError, MemoryCoreError, StoreUnavailable
from memory_core.store import SyncBuyerConversationMemory
from memory_core.topology import Topology, summary_line

st.set_page_config(page_title="Buyer memory", page_icon=":material/home_work:", layout="wide")


def _show_connection_problem(settings: DashboardSettings | None, exc: BaseException) -> NoReturn:
    """What went wrong, in words (never a traceback, never the password), and what to do:
    Redis not answering, and Redis answering no, need different fixes."""
    problem = describe_connection_error(exc, settings.redis_url if settings else None)
    st.error(f"**{md(problem.headline)}** · {code(problem.where)}\n\n{md(problem.detail)}")
    steps = "".join(f"- {md(step)}\n" for step in problem.steps)
    st.markdown(
        f"**What to do**\n\n{steps}"
        "- Check `REDIS_URL` or `redis_url` in `.streamlit/secrets.toml`: host, port, "
        "database, TLS (`rediss://`), user and password.\n"
        "- Unset both to explore the embedded demo store instead.")
    if st.button("Retry", type="primary"):
        forget_scan()
        st.rerun()
    st.stop()


def _sidebar(access: Access, memory: SyncBuyerConversationMemory,
             facts: dict[str, object]) -> None:
    settings = access.settings
    target = parse_target(settings.redis_url)
    with st.sidebar:
        sidebar_account(access)
        st.subheader("Connection")
        mode = ":material/science: **Demo**" if target.is_demo else ":material/cloud_done: **Live**"
        st.markdown(f"{mode} · {code(target.label)}")
        version = "fakeredis, in-process" if target.is_demo else (
            f"Redis {md(facts.get('redis_version') or 'version unknown')}")
        keys = facts.get("keys")
        st.caption(f"{version} · "
                   f"{plural(keys if isinstance(keys, int) else 0, 'key')} in this database")
        found = facts.get("topology")
        if isinstance(found, Topology):
            _cluster_topology(found)
        if settings.read_only:
            st.caption(":material/lock: Read-only: write actions are disabled")
        st.subheader("Memory settings")
        config = memory.config
        st.markdown(
            f"- TTL **{plural(config.ttl_days, 'day')}** (policy {config.ttl_days_min}–"
            f"{config.ttl_days_max})\n"
            f"- Compression over **{config.compress_threshold_bytes:,} B** "
            f"({config.codec}, level {config.zstd_level}, {config.payload_layout} layout)\n"
            f"- History cap **{config.max_history_messages:,}** "
            f"{'message' if config.max_history_messages == 1 else 'messages'}\n"
            f"- Dictionary: **{md(facts.get('dictionary_id') or 'none')}**\n"
            f"- Encryption: {_encryption_text(config)}\n"
            f"- Key prefix {code(config.cache_key_prefix + ':')}")


#: Primaries listed in the sidebar, at most; ``stats`` lists every one.
SIDEBAR_PRIMARIES = 12
#: Notes about nodes in trouble shown in the sidebar, at most; the rest are counted.
SIDEBAR_NOTES = 5


def _cluster_topology(found: Topology) -> None:
    """A cluster's primaries with their keys and replicas, under Connection; a node that
    does not answer is flagged, so an operator sees which one is down without a shell."""
    st.markdown(f"**{md(summary_line(found))}**")
    rows = []
    for node in found.primaries[:SIDEBAR_PRIMARIES]:
        down = sum(1 for r in found.replicas
                   if r.primary_address == node.address and not r.reachable)
        keys = (f"**{node.keys:,}** {'key' if node.keys == 1 else 'keys'}"
                if node.keys is not None else ":material/error: **unreachable**")
        replicas = "" if node.replicas is None else (
            f" · {node.replicas} replica{'' if node.replicas == 1 else 's'}"
            + (f" (:material/error: {down} down)" if down else ""))
        rows.append(f"- {code(node.address)} · {keys}{replicas}")
    st.caption("\n".join(rows))
    notes = [f":material/error: Replica {code(r.address)}"
             + (f" of {code(r.primary_address)}" if r.primary_address else "")
             + " is **unreachable**" for r in found.replicas if not r.reachable]
    notes += [f":material/warning: {code(n.address)} is flagged failing by the cluster"
              for n in found.nodes if n.reachable and n.failing]
    if len(notes) > SIDEBAR_NOTES:
        more = len(notes) - SIDEBAR_NOTES
        notes[SIDEBAR_NOTES:] = [f"… and {more:,} more {'node' if more == 1 else 'nodes'} "
                                 "in trouble"]
    hidden = found.unlisted + max(len(found.primaries) - SIDEBAR_PRIMARIES, 0)
    if hidden:
        notes.append(f"{hidden:,} more {'node' if hidden == 1 else 'nodes'} not shown: "
                     f"`python -m memory_core stats` lists {'it' if hidden == 1 else 'them'}")
    if found.problem:
        notes.append(md(found.problem))
    for note in notes:
        st.caption(note)


def _encryption_text(config: MemoryConfig) -> str:
    """Which key writes (by id, never the key), or that payloads are stored in the clear."""
    if config.keyring is None:
        return "**off** (set `MEMORY_CORE_ENCRYPTION_KEYS`)"
    return f"**on**, key {code(config.keyring.primary_id)}"


def _operator_only(access: Access, title: str, url_path: str) -> st.Page:
    """What a session below operator gets at an operator page's URL (a bookmark, a shared
    link): a hidden page there that says the page needs the operator role and how to get
    it, and shows nothing else. The page's own file is not registered for this session,
    so none of its code runs; without this page the URL opened the Overview unexplained.
    """
    def needs_operator() -> None:
        st.title("Operators only")  # not the page's own heading: that page does not open
        if access.via == "open":
            why = ("the dashboard is read-only for everyone, as no sign-in is configured. "
                   + ENABLE_OPERATOR_ACCESS)
        elif access.via == "sso":
            why = (f"you are signed in as a {access.role}. Ask whoever runs the dashboard to "
                   "add your account to the operators.")
        else:
            why = (f"you are signed in as a {access.role}. Sign out, then sign in with the "
                   "operator password.")
        st.info(f"**{title}** needs the operator role: {why}", icon=":material/lock:")

    return st.Page(needs_operator, title=title, url_path=url_path, visibility="hidden")


def _pages(access: Access) -> list[st.Page]:
    """The pages this role may open; a page not listed is "not found" at its URL.

    The pages live in app_pages/, not pages/: with a pages/ folder Streamlit emulates its
    old multipage mode until st.navigation has run once, so a deep link opened first on a
    fresh server would run the page without this entry point (and its sign-in).
    """
    pages = [
        st.Page("app_pages/overview.py", title="Overview", icon=":material/monitoring:",
                default=True),
        st.Page("app_pages/buyer.py", title="Buyer", icon=":material/person_search:",
                url_path="buyer"),
    ]
    if access.is_operator:
        pages.append(st.Page("app_pages/qa.py", title="QA seeding", icon=":material/science:",
                             url_path="qa"))
    else:
        pages.append(_operator_only(access, "QA seeding", "qa"))
    if access.can_audit:
        pages.append(st.Page("app_pages/audit.py", title="Audit", icon=":material/policy:",
                             url_path="audit"))
    else:
        pages.append(_operator_only(access, "Audit", "audit"))
    # every signed-in role: the page gates key previews and deletion itself
    pages.append(st.Page("app_pages/server.py", title="Server & health", icon=":material/dns:",
                         url_path="server"))
    return pages


settings: DashboardSettings | None = None
try:
    settings = load_settings()
    auth_config = load_auth_config()
    access = current_access(settings, auth_config)
except AuthConfigError as exc:
    st.error(f"**The dashboard's sign-in settings are invalid.** {md(str(exc))}")
    st.stop()
except ConfigError as exc:
    st.error(f"**The dashboard's settings are invalid.** {md(str(exc))}")
    st.stop()

if not access.signed_in:
    # Every page stays registered (hidden) so a deep link opens after signing in; none of
    # them runs, and nothing about the store is read, until then.
    st.navigation(_pages(Access("operator", "none", settings)), position="hidden")
    sign_in_screen(access, auth_config)
    st.stop()

try:
    settings, memory = open_memory()
    facts = describe_store(memory)
except StoreUnavailable as exc:
    _show_connection_problem(settings, exc)
except MemoryCoreError as exc:
    st.error(f"**The dashboard configuration is invalid.** {md(str(exc))}")
    st.stop()
except CONNECTION_FAILURES as exc:  # Redis said no (no such database, NOPERM): no traceback
    _show_connection_problem(settings, exc)

if access.via == "demo":
    st.info("**Demo mode**: no Redis is configured, so this runs on an embedded store "
            "seeded with a few hundred synthetic buyers. Set `REDIS_URL` (or `redis_url` in "
            "`.streamlit/secrets.toml`) to operate a real Redis.")
elif access.via == "open":
    st.info("**Read-only for everyone**: no dashboard password is configured, so buyers are "
            "shown masked and nothing can be changed. " + ENABLE_OPERATOR_ACCESS)

_sidebar(access, memory, facts)
st.navigation(_pages(access)).run()
