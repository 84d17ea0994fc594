"""Everything the overview draws, computed once per scan and filter choice.

The exact overview comes from a folded scan (:class:`memory_core.breakdown.OverviewScan`):
counts per filter cell and fine bins, never a row per buyer, so a filter recounts every
figure from a few thousand numbers (cached by (scan, filters) in
:mod:`dashboard.resources`).

The buyer list under the charts shows at most :data:`TABLE_ROWS` buyers, sorted before the
cut: the scan keeps the first rows of each order (the list as the page opens, and the
soonest-expiring buyers of any expiry window); any other list (a filter, a search, an
expiry window in another order) is read from Redis again by
:func:`memory_core.listing.list_buyers`, keeping only its first rows. The CSV reads every
match when it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from dashboard import charts
from memory_core.breakdown import LIST_ROWS, BreakdownFold, BuyerFilter, OverviewScan
from memory_core.config import MemoryConfig
from memory_core.inventory import (
    ORDER_EXPIRING,
    ORDER_LARGEST,
    ORDER_RECENT,
    STATUS_LEGACY,
    STATUS_OK,
    display_id,
)
from memory_core.listing import Listing
from memory_core.listing import list_buyers as read_buyer_list
from memory_core.snapshot import Snapshot
from memory_core.store import SyncBuyerConversationMemory

TABLE_ROWS = LIST_ROWS

#: The operator's filters; an empty tuple means 'all'.
Filters = BuyerFilter

#: The buyer list's orders, as the page offers them.
ORDERS = {"Most recent first": ORDER_RECENT, "Soonest expiry first": ORDER_EXPIRING,
          "Largest stored first": ORDER_LARGEST}
ORDER_WORDS = {ORDER_RECENT: "newest first", ORDER_EXPIRING: "soonest expiry first",
               ORDER_LARGEST: "largest first"}
#: Expiry windows of the buyer list: (seconds, only keys without a TTL).
EXPIRES_ANY = "Any time"
EXPIRES_24H = "Within 24 hours"
EXPIRES_NEVER = "Never (no TTL)"
EXPIRY_WINDOWS: dict[str, tuple[float | None, bool]] = {
    EXPIRES_ANY: (None, False),
    "Within 1 hour": (3600, False),
    EXPIRES_24H: (86_400, False),
    "Within 7 days": (7 * 86_400, False),
    "Within 30 days": (30 * 86_400, False),
    EXPIRES_NEVER: (None, True),
}


@dataclass(frozen=True)
class Figures:
    """The overview's numbers and charts: a folded scan's for a filter, or a snapshot's."""

    buyers: int
    report: dict[str, Any]
    unreadable: int
    legacy: int
    charts: dict[str, dict[str, Any]]  # Vega-Lite specs, data inline; draw copies
    bytes_note: str  # what the original-vs-stored chart shows, under it
    #: Readable buyers in the whole store, whatever the filters: 0 means an empty store,
    #: not a filter that matches nobody.
    stored_buyers: int


@dataclass(frozen=True)
class OverviewModel(Figures):
    """A fresh scan's figures for a filter, and what its buyer list needs."""

    problems: pd.DataFrame  # keys that are no readable buyer, at most MAX_PROBLEMS
    problem_count: int  # every such key, listed or not
    scan: OverviewScan
    filters: BuyerFilter


@dataclass(frozen=True)
class BuyerQuery:
    """What the buyer list under the charts shows: a search, an expiry window, an order."""

    pattern: str = ""
    expires: str = EXPIRES_ANY
    order: str = ORDER_RECENT


@dataclass(frozen=True)
class BuyerList:
    """One run's buyer list: the shown rows and how many matched before the cut."""

    shown: pd.DataFrame  # at most TABLE_ROWS rows, display columns
    matching: int  # rows matching the query, all of them in the CSV
    #: Every match, in order, as the CSV has it: read from Redis when called.
    export: Callable[[], pd.DataFrame]
    #: When the rows were read from Redis; None: kept by the scan.
    read_at: datetime | None = None

    @property
    def capped(self) -> bool:
        return self.matching > len(self.shown)


def colours_of(ranks: dict[str, dict[str, int]]) -> dict[str, dict[str, str]]:
    """Colours of the charted labels, handed out by their rank among every label of the
    column (sorted): a label keeps its colour under any filter, scan or snapshot."""
    palette = charts.CATEGORY_PALETTE
    maps = {column: {label: palette[rank % len(palette)] for label, rank in labels.items()}
            for column, labels in ranks.items()}
    maps["temperature"] = charts.TEMPERATURE_COLORS
    maps["codec"] = charts.CODEC_COLORS
    return maps


def figures_from_snapshot(snapshot: Snapshot, config: MemoryConfig) -> Figures:
    """What the overview draws before a scan: a validated snapshot's counts and bins."""
    report = snapshot.report
    buyers = int(report["buyers"])
    return Figures(
        buyers=buyers, report=report, unreadable=int(report["corrupt"]),
        legacy=int(report["legacy"]),
        charts=charts.draw_charts(snapshot.charts, config, colours_of(snapshot.ranks))
        if buyers else {},
        bytes_note=bytes_note(config), stored_buyers=buyers)


def build_overview(scan: OverviewScan, filters: Filters, config: MemoryConfig) -> OverviewModel:
    """The figures of a folded scan for ``filters`` (a few thousand numbers summed)."""
    breakdown = scan.breakdown
    report, inputs = breakdown.figures(filters)
    whole = scan.report
    return OverviewModel(
        buyers=int(report["buyers"]), report=report, unreadable=int(whole["corrupt"]),
        legacy=int(whole["legacy"]),
        charts=charts.draw_charts(inputs, config, colours_of(breakdown.label_ranks()))
        if inputs.buyers else {},
        bytes_note=bytes_note(config), stored_buyers=int(whole["buyers"]),
        problems=scan.problems, problem_count=int(whole["corrupt"]) + int(whole["legacy"]),
        scan=scan, filters=filters)


def figures_of_rows(rows: pd.DataFrame, config: MemoryConfig) -> Figures:
    """The figures of a few scanned rows (a sample's drawn buyers), folded as a scan is."""
    fold = BreakdownFold(config)
    fold.add(rows)
    breakdown = fold.result()
    report, inputs = breakdown.figures()
    problems = rows["status"] != STATUS_OK
    legacy = int((rows["status"] == STATUS_LEGACY).sum())
    return Figures(
        buyers=int(report["buyers"]), report=report,
        unreadable=int(problems.sum()) - legacy, legacy=legacy,
        charts=charts.draw_charts(inputs, config, colours_of(breakdown.label_ranks()))
        if inputs.buyers else {},
        bytes_note=bytes_note(config), stored_buyers=int(report["buyers"]))


def display_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows as the table shows them: a link, a printable id, the time left in words."""
    ttl_seconds = rows["ttl_ms"].to_numpy(dtype=np.float64) / 1000
    return pd.DataFrame({
        "open": "buyer?contact_id=" + rows["contact_id"].map(
            lambda contact_id: quote(contact_id, errors="surrogateescape")),
        "contact_id": rows["contact_id"].map(display_id),
        "temperature": rows["temperature"].astype(str),
        "persona": rows["persona"].astype(str),
        "message_count": rows["message_count"].astype(np.int64),
        "stored_bytes": rows["stored_bytes"].astype(np.int64),
        "compression_ratio": rows["compression_ratio"].astype(np.float64),
        "expires_in": charts.human_durations(
            pd.Series(np.where(ttl_seconds >= 0, ttl_seconds, np.nan), index=rows.index)
        ).where(ttl_seconds >= 0, "never (no TTL)"),
        "expires_at": rows["expires_at"],
        "last_interaction": rows["last_interaction"],
        "qa_seed": rows["qa_seed"].astype(bool),
    }, index=rows.index)


def kept_list(model: OverviewModel, query: BuyerQuery) -> Listing | None:
    """The list from the rows the scan kept, when they hold it: no filter, no search, and
    any expiry, no TTL, or a window of the soonest-expiring buyers. None otherwise."""
    within, never = EXPIRY_WINDOWS[query.expires]
    if model.filters.narrows or query.pattern or (
            within is not None and query.order != ORDER_EXPIRING):
        return None
    breakdown = model.scan.breakdown
    if never:
        return Listing(rows=breakdown.first_rows(query.order, without_ttl=True),
                       matching=int(model.report["ttl"]["no_ttl"]))
    rows = breakdown.first_rows(query.order)
    if within is None:
        return Listing(rows=rows, matching=model.buyers)
    ttl_ms = rows["ttl_ms"].to_numpy(dtype=np.int64)
    return Listing(rows=rows[(ttl_ms >= 0) & (ttl_ms < within * 1000)],
                   matching=breakdown.expiring_within(within))


def list_buyers(memory: SyncBuyerConversationMemory, model: OverviewModel,
                query: BuyerQuery) -> BuyerList:
    """The buyer list for ``query``: every match sorted first, then cut to TABLE_ROWS.

    Sorting before the cut is the point: the table once held the 1,000 newest buyers and
    sorting that by TTL showed 1 of 5 expiring ones. Lists the scan did not keep are read
    from Redis (StoreUnavailable when it cannot be reached). Raises ValueError for a
    search over :data:`memory_core.inventory.MAX_PATTERN_CHARS`.
    """
    within, never = EXPIRY_WINDOWS[query.expires]
    found = kept_list(model, query)
    read_at = None
    if found is None:
        read_at = datetime.now(UTC)
        found = read_buyer_list(memory, model.filters, pattern=query.pattern,
                                expires_within_seconds=within, without_ttl=never,
                                order=query.order, limit=TABLE_ROWS)

    def export() -> pd.DataFrame:
        every = read_buyer_list(memory, model.filters, pattern=query.pattern,
                                expires_within_seconds=within, without_ttl=never,
                                order=query.order, limit=None)
        return export_frame(every.rows)

    return BuyerList(shown=display_rows(found.rows.head(TABLE_ROWS)),
                     matching=found.matching, export=export, read_at=read_at)


def _narrowing(query: BuyerQuery) -> str:
    """The search and expiry window in words: "matching the search and expiring within
    24 hours"; empty when neither is set."""
    parts = ["matching the search"] if query.pattern else []
    if query.expires == EXPIRES_NEVER:
        parts.append("without a TTL")
    elif query.expires != EXPIRES_ANY:
        parts.append(f"expiring {query.expires.lower()}")
    return " and ".join(parts)


def describe_list(listed: BuyerList, query: BuyerQuery, total: int) -> str:
    """What the list shows, as plain text: how many of how many, in which order, capped.

    ``total``: buyers matching the filters above, before the search and expiry window.
    """
    order = ORDER_WORDS[query.order]
    narrowing = _narrowing(query)
    if listed.matching == 0:
        return f"No buyer {narrowing} (of {total:,})." if narrowing else "No buyers to list."
    noun = "buyer" if listed.matching == 1 else "buyers"
    which = f"{noun} {narrowing} (of {total:,})" if narrowing else noun
    if listed.capped:
        return (f"Showing {len(listed.shown):,} of {listed.matching:,} {which}, {order}. "
                f"The list is capped at {TABLE_ROWS:,} rows, cut after sorting; the CSV "
                f"has all {listed.matching:,}.")
    every = "the" if listed.matching == 1 else "all"
    return f"Showing {every} {listed.matching:,} {which}, {order}."


#: CSV columns: readable names, in the order a spreadsheet reader wants them.
EXPORT_COLUMNS = {
    "contact_id": "Contact id", "status": "Status", "temperature": "Temperature",
    "persona": "Persona", "journey_stage": "Journey stage", "message_count": "Messages",
    "stored_bytes": "Stored bytes", "original_bytes": "Original JSON bytes",
    "compression_ratio": "Compression ratio", "codec": "Codec", "key_id": "Encryption key id",
    "expires_at": "Expires at (UTC)", "last_interaction": "Last interaction (UTC)",
    "revision": "Revision", "qa_seed": "QA seed",
}
_ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def export_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows for the CSV: readable column names, ratios to 2 decimals, times as UTC ISO 8601.

    The expiry is a timestamp, not a countdown that is wrong by the time the file is
    read; a key without a TTL has an empty expiry. Vectorised (100k rows well under a
    second); the page builds it only when the download is clicked.
    """
    out = rows[list(EXPORT_COLUMNS)].copy()
    out["compression_ratio"] = out["compression_ratio"].round(2)
    for column in ("expires_at", "last_interaction"):
        times = pd.to_datetime(out[column], utc=True)  # an empty list has no dtype yet
        out[column] = times.dt.strftime(_ISO_UTC).astype(object).where(times.notna(), "")
    for column in ("temperature", "persona", "journey_stage", "status", "codec", "key_id"):
        out[column] = out[column].astype(str)
    return out.rename(columns=EXPORT_COLUMNS)


def bytes_note(config: MemoryConfig) -> str:
    threshold = config.compress_threshold_bytes
    return (f"Every buyer counted: a circle is the buyers of one codec in one size cell, "
            f"sized by their number (hover for their real sizes). Codec none: stored "
            f"uncompressed (JSON up to the {threshold:,} B threshold, dashed line, or "
            f"JSON that compression would not shrink).")
