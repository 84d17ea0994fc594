"""The Server & health page's parts: health panel, memory cost, keys that are not buyers.

Everything here comes from Redis, where whoever can write chose it: a process name, a
policy, a key's bytes. Text goes through :func:`md` inside markdown (metric values render
markdown too), through :func:`printable` into dataframe cells and select boxes, and a
key's preview is shown with ``st.text`` (no markdown at all). The two actions of the
page (a preview that may hold personal data, deleting a key) are plain functions that
check the session's access themselves, as in :mod:`dashboard.actions`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard.actions import ActionRefused, _require_operator
from dashboard.auth import Access
from dashboard.charts import human_bytes, human_durations
from dashboard.markdown import code, md
from memory_core import admin, audit
from memory_core.breakdown import OverviewScan
from memory_core.health import HealthReport
from memory_core.inventory import display_id
from memory_core.safetext import printable
from memory_core.store import SyncBuyerConversationMemory

#: Share of calls failing (or of maxmemory used) from which a figure is flagged.
ERROR_RATE_WARNING = 0.01
#: A breaker that opened within this many seconds is shown as "recently opened".
BREAKER_RECENT_SECONDS = 3600
#: Keys listed in the "not buyer records" select box at most.
PROBLEM_KEYS_LISTED = 1000
ENABLE_HEALTH = ("Set `health_publish_seconds: 30` in the bot's `buyer_bot.conversation_memory` "
                 "config (or `MEMORY_CORE_HEALTH_PUBLISH_SECONDS=30` in its environment): each "
                 "bot process then writes its counters (no personal data) to "
                 "`<prefix>.health:<host>:<pid>:<id>` at most every 30 s, with a 90 s TTL.")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return str(human_durations(pd.Series([max(seconds, 0.0)])).iloc[0])


def _ago(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{_duration((now - moment).total_seconds())} ago"


# health -------------------------------------------------------------------------------

def health_frame(report: HealthReport, now: datetime | None = None) -> pd.DataFrame:
    """One row per process, every text cell escaped, for st.dataframe."""
    now = now or datetime.now(UTC)
    rows = []
    for process in report.processes:
        counters = process.counters
        opened = process.breaker_opened_seconds_ago
        rows.append({
            "process": printable(process.process, 120),
            "host": printable(process.host, 80),
            "pid": process.pid,
            "kind": printable(process.kind, 40),
            "calls": counters.get("calls", 0),
            "hit_rate": process.hit_rate,
            "error_rate": process.error_rate,
            "errors": counters.get("errors", 0),
            "corrupt": counters.get("corrupt", 0),
            "skipped": counters.get("skipped", 0),
            "breaker": "open" if process.circuit_open else (
                f"closed (opened {_duration(opened)} ago)" if opened is not None
                else "closed"),
            "last_seen": _ago(process.published_at, now),
            "published_at": process.published_at,
        })
    return pd.DataFrame(rows, columns=[
        "process", "host", "pid", "kind", "calls", "hit_rate", "error_rate", "errors",
        "corrupt", "skipped", "breaker", "last_seen", "published_at"])


def show_health(report: HealthReport) -> None:
    """Processes seen, hit rate, error rate, breaker state, last seen; one row each."""
    now = datetime.now(UTC)
    st.subheader("Is the bot's memory healthy?")
    if not report.seen:
        st.info("**No bot process publishes its health.** " + ENABLE_HEALTH)
    else:
        row = st.columns(5)
        row[0].metric("Processes seen", report.seen,
                      help="Bot processes whose record has not expired (3 intervals)")
        row[1].metric("Hit rate", _percent(report.hit_rate),
                      help="Loads that found a saved state, of all loads")
        row[2].metric("Error rate", _percent(report.error_rate),
                      help="Calls that failed (Redis unreachable, a corrupt record, a Redis "
                           "error), of all calls since each process started")
        row[3].metric("Breaker open", f"{report.breaker_open} of {report.seen}",
                      help="Processes skipping Redis because it did not answer")
        row[4].metric("Last seen", _ago(report.last_seen, now))
        error_rate = report.error_rate
        if report.breaker_open:
            st.error(f"**{report.breaker_open} process(es) have their circuit breaker open**: "
                     "they skip Redis and the bot runs without memory until Redis answers.")
        elif error_rate is not None and error_rate >= ERROR_RATE_WARNING:
            st.warning(f"**{_percent(error_rate)} of calls failed.** See the bot's logs for "
                       "the reasons (one line per failure, no personal data).")
        recent = report.breaker_opened_within(BREAKER_RECENT_SECONDS)
        if recent and not report.breaker_open:
            st.caption(f"{recent} process(es) had their breaker open in the last hour.")
        st.dataframe(health_frame(report, now), hide_index=True, width="stretch",
                     column_config={
                         "process": "Process", "host": "Host", "pid": "PID", "kind": "Kind",
                         "calls": st.column_config.NumberColumn("Calls", format="%d"),
                         "hit_rate": st.column_config.NumberColumn("Hit rate",
                                                                   format="percent"),
                         "error_rate": st.column_config.NumberColumn("Error rate",
                                                                     format="percent"),
                         "errors": st.column_config.NumberColumn("Errors", format="%d"),
                         "corrupt": st.column_config.NumberColumn("Corrupt", format="%d"),
                         "skipped": st.column_config.NumberColumn("Skipped", format="%d"),
                         "breaker": "Breaker", "last_seen": "Last seen",
                         "published_at": st.column_config.DatetimeColumn(
                             "Published (UTC)", format="YYYY-MM-DD HH:mm:ss")})
    if report.unreadable:
        st.warning(f"{len(report.unreadable)} key(s) under the health prefix are not health "
                   "records (planted or damaged); they are ignored.")
    if report.truncated:
        st.caption(f"Only the first {len(report.processes) + len(report.unreadable):,} "
                   "records were read.")


# cost ---------------------------------------------------------------------------------

def show_cost(cost: admin.ServerMemory) -> None:
    """The server's own memory figures, the cost per buyer and the share of maxmemory."""
    st.subheader("What does this cost?")
    row = st.columns(4)
    row[0].metric("Used memory", _bytes(cost.used_memory_bytes),
                  help="used_memory of INFO memory: everything this Redis holds")
    row[1].metric("Peak", _bytes(cost.peak_memory_bytes))
    limit = ("no limit" if cost.maxmemory_bytes == 0 else _bytes(cost.maxmemory_bytes))
    row[2].metric("maxmemory", limit,
                  help="Policy: " + md(cost.maxmemory_policy or "unknown"))
    share = cost.maxmemory_share
    row[3].metric("Share of maxmemory", _percent(share))
    row = st.columns(4)
    row[0].metric("Per buyer (estimate)", _bytes(cost.per_buyer_estimate_bytes),
                  help="(used memory minus memory at start-up) ÷ keys under the buyer prefix: "
                       "also charges the buyers for lookup sets, the audit trail and "
                       "dictionaries, so it is an upper estimate")
    row[1].metric("Per buyer key (measured)", _bytes(cost.sampled_key_bytes),
                  help=f"Mean MEMORY USAGE of {cost.sampled_keys} sampled buyer keys: value, "
                       "key name and Redis' own overhead per key")
    row[2].metric("Evicted keys", "–" if cost.evicted_keys is None
                  else f"{cost.evicted_keys:,}")
    row[3].metric("Fragmentation ratio", "–" if cost.fragmentation_ratio is None
                  else f"{cost.fragmentation_ratio:.2f}",
                  help="RSS ÷ used memory; well above 1.5 on a large store wastes memory")
    st.caption(f"Eviction policy {code(cost.maxmemory_policy or 'unknown')}. "
               "Sizes in binary units (1 MiB = 1,048,576 bytes).")
    if cost.near_limit:
        st.warning(f"**{_percent(share)} of maxmemory is in use.** Near the limit Redis "
                   f"evicts keys (policy {code(cost.maxmemory_policy or 'unknown')}) or "
                   "refuses writes: buyers lose their memory. Raise maxmemory, shorten "
                   "ttl_days or train a dictionary.")
    if cost.evicted_keys:
        st.warning(f"Redis has evicted {cost.evicted_keys:,} keys since it started: buyers "
                   "may have lost their memory before their TTL.")
    for problem in cost.problems:
        st.caption(md(problem))


def _bytes(count: float | None) -> str:
    return "–" if count is None else human_bytes(count)


# keys that are not buyer records ------------------------------------------------------

def problem_keys(scan: OverviewScan) -> pd.DataFrame:
    """The keys a scan found that hold no readable buyer (the first
    :data:`~memory_core.report.MAX_PROBLEMS`), escaped for the screen."""
    rows = scan.problems
    return pd.DataFrame({
        # as read (objects: a key's bytes that are not UTF-8 are lone surrogates, which
        # pandas' string dtype refuses), to inspect or delete that very key
        "contact_id": pd.Series(list(scan.problem_ids), dtype=object),
        "key": [printable(i, 200) for i in rows["contact_id"]],
        "status": rows["status"].astype(str).tolist(),
        "problem": [printable(str(p), 300) for p in rows["problem"]],
        "stored_bytes": rows["stored_bytes"].tolist(),
    })


#: A preview shown again by a rerun is not a new audit entry (as for PII reveals).
PREVIEW_AUDIT_SECONDS = 600
_PREVIEWS_KEPT = 4096
_recent_previews: OrderedDict[tuple[str, str, int], float] = OrderedDict()
_previews_lock = threading.Lock()


def _audit_once(key: tuple[str, str, int]) -> bool:
    """True the first time in PREVIEW_AUDIT_SECONDS (kept in this process, not in session
    state, so nothing a session sends can skip an entry)."""
    now = time.monotonic()
    with _previews_lock:
        seen = _recent_previews.get(key)
        if seen is not None and now - seen < PREVIEW_AUDIT_SECONDS:
            return False
        _recent_previews[key] = now
        _recent_previews.move_to_end(key)
        while len(_recent_previews) > _PREVIEWS_KEPT:
            _recent_previews.popitem(last=False)
        return True


def forget_previews() -> None:
    """Audit the next preview of every key again (tests)."""
    with _previews_lock:
        _recent_previews.clear()


def inspect_key(access: Access, memory: SyncBuyerConversationMemory, contact_id: str, *,
                with_preview: bool = False) -> admin.KeyInspection:
    """Type, size, TTL and memory of a key for any signed-in session; the preview of its
    content only for an operator, audited first (a damaged record may hold a name or a
    phone in the clear). When the entry cannot be written the preview is refused."""
    found = admin.inspect_key(memory, contact_id)
    if not with_preview:
        return dataclasses.replace(found, preview="", preview_cut=False)
    _require_operator(access, memory, "inspect_key", found.contact_id)
    if _audit_once((access.session_id, contact_id, found.revision)):
        audit.append_event(memory.client, memory.prefix, actor=access.actor,
                           action="inspect_key", contact_id=found.contact_id,
                           outcome="shown", detail=f"{found.redis_type}, preview",
                           strict=True)
    return found


def delete_problem_key(access: Access, memory: SyncBuyerConversationMemory, contact_id: str,
                       typed_confirmation: str, expected_revision: int | None) -> bool:
    """Delete a key that holds no buyer after the operator typed its contact id (as
    shown); True if it was deleted. memory_core refuses a key that a state loads from,
    and one the bot saved since the operator looked (RevisionConflict)."""
    shown = display_id(contact_id)
    _require_operator(access, memory, "delete_key", shown)
    if typed_confirmation.strip() != shown:
        raise ActionRefused("the typed contact id does not match; nothing was deleted")
    return admin.delete_unreadable_key(memory, contact_id, expected_revision=expected_revision,
                                       actor=access.actor)


def show_inspection(found: admin.KeyInspection) -> None:
    """What a key is, in a bordered box; the preview as plain text (no markdown)."""
    if not found.exists:
        st.info(f"{code(found.key)} no longer exists (expired or deleted).")
        return
    exact = found.size_text
    # a string's length in binary units (a 60 MB value's byte count did not fit the
    # column), the exact count in the tooltip
    size = _bytes(found.size) if found.size_unit == "bytes" else exact or "–"
    ttl = "none" if found.ttl_seconds is None else f"{_duration(found.ttl_seconds)} left"
    row = st.columns(4)
    row[0].metric("Redis type", md(found.redis_type))
    row[1].metric("Size", size, help=exact)
    row[2].metric("TTL", ttl, help="never expires" if found.ttl_seconds is None else None)
    row[3].metric("Memory", _bytes(found.memory_bytes),
                  help="MEMORY USAGE (unavailable on fakeredis or without +memory|usage)")
    st.markdown(f"**Key** {code(found.key)}")
    if found.buyer_record:
        st.success("A buyer state loads from this key now: it is a buyer record (open it on "
                   "the Buyer page).")
    else:
        st.markdown(f"**Why it is not a buyer:** {md(found.problem)}")
    if found.protected:
        st.warning(md(found.protected))
