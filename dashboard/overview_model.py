"""Everything the overview draws, computed once per scan and filter choice.

The page is re-run on every interaction and by every session; with 100k buyers the
filtering, counting and chart building take a few hundred milliseconds, so the result is
built here as plain data and cached by (scan, filters) in :mod:`dashboard.resources`.

The buyer list under the charts (search, expiry window, order) is cheap by comparison,
vectorised over the cached rows on each run: :func:`list_buyers` sorts every match
before cutting to :data:`TABLE_ROWS`, and says how many it shows of how many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from dashboard import charts
from memory_core.admin import frame_for_export
from memory_core.config import MemoryConfig
from memory_core.inventory import (
    ORDER_EXPIRING,
    ORDER_LARGEST,
    ORDER_RECENT,
    PROBLEM_STATUSES,
    STATUS_OK,
    display_id,
    find_buyers,
    problem_records,
    summarize_inventory,
)
from memory_core.snapshot import Snapshot, chart_inputs

TABLE_ROWS = 1000
FILTER_COLUMNS = ("temperature", "persona", "journey_stage")
#: Columns of a buyer the list and its CSV need (the export columns and the expiry).
_ROW_COLUMNS = ("contact_id", "status", "temperature", "persona", "journey_stage",
                "message_count", "stored_bytes", "original_bytes", "compression_ratio",
                "codec", "key_id", "ttl_days", "ttl_ms", "expires_at", "last_interaction",
                "last_interaction_epoch", "revision", "qa_seed")
#: Columns whose colours are handed out from the unfiltered labels.
_COLOURED_COLUMNS = ("persona", "journey_stage", "schema_version")

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
class Filters:
    """The operator's choice; an empty tuple means 'all'."""

    temperatures: tuple[str, ...] = ()
    personas: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    hide_qa: bool = False


@dataclass(frozen=True)
class OverviewModel:
    buyers: int
    report: dict[str, Any]
    unreadable: int
    legacy: int
    problems: pd.DataFrame
    charts: dict[str, dict[str, Any]]  # Vega-Lite specs, data inline; draw copies
    bytes_note: str  # what the original-vs-stored chart shows, under it
    table: pd.DataFrame  # every matching buyer, newest first, export columns
    shown: pd.DataFrame  # the first TABLE_ROWS of it, as the table shows them
    #: Readable buyers in the whole store, whatever the filters: 0 means an empty store,
    #: not a filter that matches nobody.
    stored_buyers: int
    #: ``table`` plus what the buyer list sorts and filters on (TTL, expiry time).
    rows: pd.DataFrame


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
    positions: np.ndarray  # of every match in ``rows``, in the chosen order
    rows: pd.DataFrame  # the model's rows, shared: read only

    @property
    def capped(self) -> bool:
        return self.matching > len(self.shown)

    def export(self) -> pd.DataFrame:
        """Every match, in order, as the CSV has it (built when asked, not on each run)."""
        return export_frame(self.rows.iloc[self.positions])


def filter_options(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Values each filter can take, from the readable records."""
    buyers = frame[frame["status"] == STATUS_OK]
    return {column: sorted(buyers[column].astype(str).unique()) for column in FILTER_COLUMNS}


def apply_filters(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """Buyers (readable records) matching the filters."""
    rows = frame[frame["status"] == STATUS_OK]
    for column, chosen in zip(FILTER_COLUMNS, (filters.temperatures, filters.personas,
                                               filters.stages), strict=True):
        if chosen:
            rows = rows[rows[column].astype(str).isin(chosen)]
    if filters.hide_qa:
        rows = rows[~rows["qa_seed"]]
    return rows


def colour_maps(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Colour per label of each charted column, from every readable buyer (no filter)."""
    buyers = frame[frame["status"] == STATUS_OK]
    maps = {column: charts.category_colors(buyers[column]) for column in _COLOURED_COLUMNS}
    maps["temperature"] = charts.TEMPERATURE_COLORS
    maps["codec"] = charts.CODEC_COLORS
    return maps


def build_charts(buyers: pd.DataFrame, config: MemoryConfig,
                 colours: dict[str, dict[str, str]] | None = None
                 ) -> dict[str, dict[str, Any]]:
    """Every chart's spec; ``colours`` from :func:`colour_maps` of the unfiltered table."""
    if buyers.empty:
        return {}
    colours = colours if colours is not None else colour_maps(buyers)
    return charts.draw_charts(chart_inputs(buyers, config), config, colours)


@dataclass(frozen=True)
class Figures:
    """The overview's numbers and charts without any buyer row: drawn from a snapshot.

    The same names as :class:`OverviewModel`, so the page draws either one the same way.
    """

    buyers: int
    report: dict[str, Any]
    unreadable: int
    legacy: int
    charts: dict[str, dict[str, Any]]
    bytes_note: str
    stored_buyers: int


def snapshot_colours(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    """Colours of the snapshot's labels, handed out by their rank as :func:`colour_maps`
    does from a table: a label has the same colour from a snapshot and from a scan."""
    palette = charts.CATEGORY_PALETTE
    maps = {column: {label: palette[rank % len(palette)] for label, rank in ranks.items()}
            for column, ranks in snapshot.ranks.items()}
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
        charts=charts.draw_charts(snapshot.charts, config, snapshot_colours(snapshot))
        if buyers else {},
        bytes_note=bytes_note(config), stored_buyers=buyers)


def build_overview(frame: pd.DataFrame, filters: Filters, config: MemoryConfig) -> OverviewModel:
    buyers = apply_filters(frame, filters)
    problems = problem_records(frame)
    unreadable = int(problems["status"].isin(PROBLEM_STATUSES).sum())
    rows = buyers[list(_ROW_COLUMNS)]
    rows = rows.iloc[find_buyers(rows, order=ORDER_RECENT)]  # the list's default order
    table = frame_for_export(rows)
    return OverviewModel(
        buyers=len(buyers), report=summarize_inventory(buyers), unreadable=unreadable,
        legacy=len(problems) - unreadable, problems=problems,
        charts=build_charts(buyers, config, colour_maps(frame)),
        bytes_note=bytes_note(config), table=table,
        shown=display_rows(rows.head(TABLE_ROWS)),
        stored_buyers=int((frame["status"] == STATUS_OK).sum()), rows=rows)


def display_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows as the table shows them: a link, a printable id, the time left in words."""
    ttl_seconds = rows["ttl_ms"].to_numpy(dtype=np.float64) / 1000
    return pd.DataFrame({
        "open": "buyer?contact_id=" + rows["contact_id"].map(quote),
        "contact_id": rows["contact_id"].map(display_id),
        "temperature": rows["temperature"].astype(str),
        "persona": rows["persona"].astype(str),
        "message_count": rows["message_count"],
        "stored_bytes": rows["stored_bytes"],
        "compression_ratio": rows["compression_ratio"],
        "expires_in": charts.human_durations(
            pd.Series(np.where(ttl_seconds >= 0, ttl_seconds, np.nan), index=rows.index)
        ).where(ttl_seconds >= 0, "never (no TTL)"),
        "expires_at": rows["expires_at"],
        "last_interaction": rows["last_interaction"],
        "qa_seed": rows["qa_seed"],
    }, index=rows.index)


def list_buyers(model: OverviewModel, query: BuyerQuery) -> BuyerList:
    """The buyer list for ``query``: every match sorted first, then cut to TABLE_ROWS.

    Sorting before the cut is the point: the table once held the 1,000 newest buyers and
    sorting that by TTL showed 1 of 5 expiring ones. Raises ValueError for a search over
    :data:`memory_core.inventory.MAX_PATTERN_CHARS`.
    """
    rows = model.rows
    within, never = EXPIRY_WINDOWS[query.expires]
    positions = find_buyers(rows, pattern=query.pattern, expires_within_seconds=within,
                            without_ttl=never, order=query.order)
    if query == BuyerQuery() and len(positions) == len(rows):
        shown = model.shown  # the default view: built once with the model
    else:
        shown = display_rows(rows.iloc[positions[:TABLE_ROWS]])
    return BuyerList(shown=shown, matching=len(positions), positions=positions, rows=rows)


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
    which = f"buyers {narrowing} (of {total:,})" if narrowing else "buyers"
    if listed.capped:
        return (f"Showing {len(listed.shown):,} of {listed.matching:,} {which}, {order}. "
                f"The list is capped at {TABLE_ROWS:,} rows, cut after sorting; the CSV "
                f"has all {listed.matching:,}.")
    return f"Showing all {listed.matching:,} {which}, {order}."


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
        out[column] = out[column].dt.strftime(_ISO_UTC).astype(object).where(
            out[column].notna(), "")
    for column in ("temperature", "persona", "journey_stage", "status", "codec", "key_id"):
        out[column] = out[column].astype(str)
    return out.rename(columns=EXPORT_COLUMNS)


def bytes_note(config: MemoryConfig) -> str:
    threshold = config.compress_threshold_bytes
    return (f"Every buyer counted: a circle is the buyers of one codec in one size cell, "
            f"sized by their number (hover for their real sizes). Codec none: stored "
            f"uncompressed (JSON up to the {threshold:,} B threshold, dashed line, or "
            f"JSON that compression would not shrink).")
