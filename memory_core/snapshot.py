"""The last full scan's aggregate, kept in Redis so an overview can open before a scan.

A scan of millions of buyers takes many seconds; the counts and histograms the overview
draws fit in a few kilobytes. Each full scan stores them under ``<prefix>.snapshot``
(outside the ``<prefix>:*`` buyer keyspace, one key, so one hash slot on a cluster) with
the time it was taken, and a dashboard draws the newest one at once while it scans again.

A snapshot holds counts, byte sizes and header labels (temperature, persona, stage,
schema, codec) only: never a contact id or any per-buyer row. The chart inputs are the
small binned tables the charts draw (:class:`ChartInputs`); the binning lives here so the
fresh scan and the snapshot draw from the very same numbers.

Whoever can write the key can plant anything there: :func:`read_snapshot` reads at most
:data:`MAX_SNAPSHOT_BYTES`, parses JSON of that size, validates every field against a
strict schema (types, ranges, row and label limits) and returns None for anything else,
so the caller falls back to a scan.

A snapshot may also carry :class:`DictionaryStatus`: the compression dictionary saves used
at the scan and what a freshly trained one would save, estimated once per scan (training
on sampled states takes about a second), so the overview shows it without estimating on
every page. It is optional: a snapshot stored before it existed still decodes (without it),
and so does one stored before the report had its bytes by dictionary (read as None).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
import redis

from memory_core.config import MemoryConfig
from memory_core.dictionary_use import NO_ESTIMATE_REASONS, DictionaryStatus
from memory_core.inventory import (
    DICTIONARY_USE,
    STATUS_OK,
    summarize_inventory,
    value_counts_text,
)
from memory_core.store import SyncBuyerConversationMemory

log = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1
MAGIC = b"MCSNAP1 "
_STAMP_DIGITS = 15  # taken_at in ms, zero padded: the newest-wins check reads only this
_HEAD_BYTES = len(MAGIC) + _STAMP_DIGITS + 1
#: Largest snapshot read or written; real ones are a few (at most ~300) kilobytes.
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024
SNAPSHOT_TTL_SECONDS = 7 * 86_400
MAX_ROWS = 6000  # rows of one chart table (the size grid is at most 30 x 30 x 5)
MAX_LABELS = 100  # entries of a by_* count in the report
MAX_LABEL_CHARS = 300  # a label comes from a header window of 256 bytes
_MAX_COUNT = 2**53
#: Largest zstd dictionary id (a 32-bit number) and most states a dictionary estimate
#: measures (the dashboard samples 1,000; more is not a snapshot this code wrote).
MAX_DICTIONARY_ID = 2**32 - 1
MAX_ESTIMATE_STATES = 100_000

#: Codec labels are a fixed set (the scan refuses others); anything else is "other".
KNOWN_CODECS = ("none", "zstd", "zstd+dict", "none+dict")
OTHER = "other"
MAX_CATEGORIES = 12  # bars in a category chart, the last one "other" when there are more
CATEGORY_COLUMNS = ("codec", "temperature", "persona", "journey_stage", "schema_version")
#: Columns whose colours are handed out by rank among every label (unfiltered).
RANKED_COLUMNS = ("persona", "journey_stage", "schema_version")
DAY_SECONDS = 86_400
SOON_HOURS = 7 * 24  # the "next 7 days" chart
SOON_STEP_HOURS = 6
PAIR_BINS = 30  # 30 x 30 cells x 5 codec labels stays under Altair's 5,000-row limit
PAIR_EDGE_QUANTILE = 0.995  # the grid ends here; larger buyers go in the last cell
RATIO_BINS = 30
#: Fine steps of a compression ratio per unit: the ratio chart's bin width, ceil(top)/30,
#: is always a whole number of them.
RATIO_STEPS = 2 * RATIO_BINS
HISTORY_STEP = 5
PAIR_COLUMNS = ("codec", "original_bytes", "stored_bytes", "original_min", "original_max",
                "stored_min", "stored_max", "buyers", "compression_ratio")


def snapshot_key(prefix: str) -> str:
    """``<prefix>.snapshot``: outside the buyer keyspace, never listed as a buyer."""
    return f"{prefix}.snapshot"


# binning: the chart inputs, from a table of buyers -------------------------------------------

def codec_labels(values: pd.Series) -> pd.Series:
    """Codec labels as text, any label outside :data:`KNOWN_CODECS` as "other"."""
    text = values.astype(str)
    return text.where(text.isin(list(KNOWN_CODECS)), OTHER)


def histogram(values: pd.Series, bins: np.ndarray, groups: pd.Series | None,
              group_name: str, weights: pd.Series | None = None) -> pd.DataFrame:
    """Counts per bin (and group), empty bins left out: a small frame drawn as bars.

    ``weights``: how many buyers each value stands for (binned inputs folded by
    :mod:`memory_core.breakdown`); one each when None.
    """
    frames = []
    weights = pd.Series(1, index=values.index) if weights is None else weights
    grouped = [("all", values)] if groups is None else [
        (str(name), values[groups == name]) for name in groups.dropna().unique()]
    for name, group in grouped:
        group = group.dropna()
        counts, edges = np.histogram(group, bins=bins, weights=weights[group.index])
        counts = counts.astype(np.int64)
        frames.append(pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:],
                                    group_name: name, "buyers": counts}))
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["bin_start", "bin_end", group_name, "buyers"])
    return result[result["buyers"] > 0].reset_index(drop=True)


def ratio_steps(ratios: np.ndarray) -> np.ndarray:
    """Each compression ratio in whole :data:`RATIO_STEPS` (the fine bins a folded scan
    counts; the ratio chart's bins are a whole number of them)."""
    steps: np.ndarray = np.floor(ratios * RATIO_STEPS).astype(np.int64)
    return steps


def ratio_bins(steps: pd.Series, codecs: pd.Series, top: float,
               weights: pd.Series | None = None) -> pd.DataFrame:
    """Buyers per compression-ratio bin and codec: 30 bins from 0 to ``ceil(top)`` (the
    largest ratio, at least 1), counted from fine steps so a table and a folded scan put
    a ratio on an edge in the same bin."""
    top = float(np.ceil(max(top, 1.0)))
    middles = ((steps.astype(np.float64) + 0.5) / RATIO_STEPS).clip(upper=top)
    return histogram(middles, np.linspace(0, top, RATIO_BINS + 1), codecs, "codec", weights)


def ratio_histogram(frame: pd.DataFrame) -> pd.DataFrame:
    """Buyers per compression-ratio bin and codec (30 bins from 0 to the largest ratio)."""
    rated = frame[np.isfinite(frame["compression_ratio"].to_numpy(dtype=np.float64))]
    ratios = rated["compression_ratio"].to_numpy(dtype=np.float64)
    return ratio_bins(pd.Series(ratio_steps(ratios), index=rated.index),
                      codec_labels(rated["codec"]),
                      float(ratios.max()) if len(ratios) else 1.0)


def ttl_chart_days(config: MemoryConfig) -> int:
    """Days of TTL the TTL chart draws; a longer TTL (set by hand) is counted at it."""
    return config.ttl_days_max + 30


def history_chart_messages(config: MemoryConfig) -> int:
    """Messages the history chart draws; a longer history is counted at it."""
    return config.max_history_messages + 50


def ttl_histogram(ttl_days: pd.Series, config: MemoryConfig,
                  weights: pd.Series | None = None) -> tuple[pd.DataFrame, bool]:
    """Buyers per day of remaining TTL, and whether some were over the edge (counted at it).

    A TTL set by hand can be years: those are counted at :func:`ttl_chart_days`.
    ``weights``: buyers per value (a folded scan's whole days), one each when None.
    """
    limit = ttl_chart_days(config)
    clipped = ttl_days.clip(upper=limit)
    top = max(float(clipped.max()) if len(clipped.dropna()) else 0.0, config.ttl_days_max)
    data = histogram(clipped, np.arange(0, top + 2, 1), None, "group", weights)
    return data[["bin_start", "bin_end", "buyers"]], bool((ttl_days > limit).any())


def expiring_counts(ttl_ms: pd.Series, weights: pd.Series | None = None) -> np.ndarray:
    """Buyers expiring per :data:`SOON_STEP_HOURS` over the next :data:`SOON_HOURS`
    (``weights``: buyers per value, one each when None)."""
    values = ttl_ms.to_numpy(dtype=np.int64)
    soon = (values >= 0) & (values < SOON_HOURS * 3_600_000)
    counts, _ = np.histogram(values[soon] / 3_600_000, bins=np.arange(
        0, SOON_HOURS + SOON_STEP_HOURS, SOON_STEP_HOURS),
        weights=None if weights is None else weights.to_numpy(dtype=np.float64)[soon])
    result: np.ndarray = counts.astype(np.int64)
    return result


def binned_pairs(frame: pd.DataFrame, bins: int = PAIR_BINS) -> pd.DataFrame:
    """Buyers counted per (original bytes, stored bytes, codec) cell of a bins x bins grid.

    Every buyer is counted, and the browser draws a few hundred cells instead of one
    mark per buyer: at 100k buyers that is the difference between a chart and a stall.
    The grid spans the sizes up to the 99.5th percentile, so one huge record cannot squash
    everyone else into a corner; the last cells hold the few larger ones. A cell is drawn at
    its middle; its buyers' real smallest and largest sizes are in the tooltip.
    """
    rows = frame[["original_bytes", "stored_bytes", "codec"]].dropna()
    original = rows["original_bytes"].to_numpy(dtype=float)
    stored = rows["stored_bytes"].to_numpy(dtype=float)

    def edges(values: np.ndarray) -> np.ndarray:
        top = float(np.quantile(values, PAIR_EDGE_QUANTILE)) if len(values) else 0.0
        return np.linspace(0, max(top, 1.0), bins + 1)

    x_edges, y_edges = edges(original), edges(stored)
    cells = pd.DataFrame({
        "codec": codec_labels(rows["codec"]).to_numpy(),
        "x": np.clip(np.searchsorted(x_edges, original, side="right") - 1, 0, bins - 1),
        "y": np.clip(np.searchsorted(y_edges, stored, side="right") - 1, 0, bins - 1),
        "original": original, "stored": stored,
    }).groupby(["codec", "x", "y"], as_index=False).agg(
        buyers=("original", "size"), original_sum=("original", "sum"),
        stored_sum=("stored", "sum"), stored_min=("stored", "min"),
        stored_max=("stored", "max"), original_min=("original", "min"),
        original_max=("original", "max"))
    return grid_rows(cells, x_edges, y_edges)


def grid_rows(cells: pd.DataFrame, x_edges: np.ndarray, y_edges: np.ndarray) -> pd.DataFrame:
    """The size chart's rows (:data:`PAIR_COLUMNS`) of grid cells counted per codec and
    cell index ``x``/``y``, with their buyers, size sums, smallest and largest sizes: each
    drawn at its cell's middle."""
    x, y = cells["x"].to_numpy(), cells["y"].to_numpy()
    return pd.DataFrame({
        "codec": cells["codec"].astype(str),
        "original_bytes": ((x_edges[x] + x_edges[x + 1]) / 2).round(),
        "stored_bytes": ((y_edges[y] + y_edges[y + 1]) / 2).round(),
        "original_min": cells["original_min"], "original_max": cells["original_max"],
        "stored_min": cells["stored_min"], "stored_max": cells["stored_max"],
        "buyers": cells["buyers"],
        "compression_ratio": cells["original_sum"] / cells["stored_sum"],
    })


def history_histogram(values: pd.Series, *, step: int, limit: int,
                      at_least: int, weights: pd.Series | None = None) -> pd.DataFrame:
    """Message counts in bins of ``step`` closed on the right: 46-50 ends at 50.

    Counts are whole numbers, so the bin holding exactly the cap ends at the cap line
    instead of starting there. The first bin also holds 0. Values over ``limit`` are
    counted at it. Columns: bin_start, bin_end, buyers (empty bins left out).
    """
    present = values.dropna()
    clipped = present.clip(upper=limit).to_numpy()
    top = max(float(clipped.max()) if len(clipped) else 0.0, float(at_least))
    edges = np.arange(0, top + step, step)
    if edges[-1] < top:
        edges = np.append(edges, edges[-1] + step)
    index = np.maximum(np.searchsorted(edges, clipped, side="left") - 1, 0)
    counts = np.bincount(index, minlength=len(edges) - 1,
                         weights=None if weights is None else
                         weights[present.index].to_numpy(dtype=np.float64)
                         )[:len(edges) - 1].astype(np.int64)
    data = pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "buyers": counts})
    return data[data["buyers"] > 0].reset_index(drop=True)


def category_counts(values: pd.Series) -> pd.Series:
    """Buyers per label, most common first; past :data:`MAX_CATEGORIES` the rest is one
    "other (N values)" entry, so a free-text column draws (and stores) a bounded chart."""
    return capped_categories(value_counts_text(values))


def capped_categories(counts: pd.Series) -> pd.Series:
    """Buyers per label (most common first) cut as :func:`category_counts` cuts them."""
    if len(counts) > MAX_CATEGORIES:
        rest = counts.iloc[MAX_CATEGORIES - 1:]
        counts = pd.concat([counts.iloc[:MAX_CATEGORIES - 1], pd.Series(
            {f"{OTHER} ({len(rest):,} values)": int(rest.sum())})])
    return counts.astype(np.int64)


@dataclass(frozen=True)
class ChartInputs:
    """Everything the overview's charts draw, binned: a few hundred rows whatever the size."""

    ttl: pd.DataFrame  # bin_start, bin_end (days), buyers
    ttl_over_limit: bool
    expiring: np.ndarray  # buyers per SOON_STEP_HOURS, SOON_HOURS / SOON_STEP_HOURS bins
    ratio: pd.DataFrame  # bin_start, bin_end, codec, buyers
    pairs: pd.DataFrame  # PAIR_COLUMNS
    categories: dict[str, pd.Series]  # CATEGORY_COLUMNS -> buyers per label, capped
    qualified: int
    buyers: int
    history: pd.DataFrame  # bin_start, bin_end (messages), buyers
    history_over_limit: bool


def chart_inputs(buyers: pd.DataFrame, config: MemoryConfig) -> ChartInputs:
    """The binned chart inputs of a table of (readable) buyers."""
    ttl, ttl_over = ttl_histogram(buyers["ttl_days"], config)
    history_limit = history_chart_messages(config)
    return ChartInputs(
        ttl=ttl, ttl_over_limit=ttl_over, expiring=expiring_counts(buyers["ttl_ms"]),
        ratio=ratio_histogram(buyers), pairs=binned_pairs(buyers),
        categories={column: category_counts(buyers[column]) for column in CATEGORY_COLUMNS},
        qualified=int(buyers["is_qualified"].sum()), buyers=len(buyers),
        history=history_histogram(buyers["message_count"], step=HISTORY_STEP,
                                  limit=history_limit, at_least=config.max_history_messages),
        history_over_limit=bool((buyers["message_count"] > history_limit).any()))


def label_ranks(values: pd.Series) -> dict[str, int]:
    """Each label's position among every label of a column, sorted: its colour's index."""
    return {label: rank for rank, label in enumerate(sorted(value_counts_text(values).index))}


# the snapshot -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """One full scan's aggregate: when, how long, the counts, the chart inputs."""

    taken_at: datetime  # when the scan started (UTC)
    scan_seconds: float
    report: dict[str, Any]  # summarize_inventory's dict, by_* counts cut to MAX_LABELS
    charts: ChartInputs  # of every readable buyer, no filter
    #: Colour rank of each charted label of RANKED_COLUMNS, among every label of the column.
    ranks: dict[str, dict[str, int]]
    #: The dictionary at the scan and a fresh one's estimated saving; None when the scan
    #: stored none (an older snapshot, or a caller that did not estimate).
    dictionary: DictionaryStatus | None = None

    def age_seconds(self, now: datetime | None = None) -> float:
        return max(((now or datetime.now(UTC)) - self.taken_at).total_seconds(), 0.0)


def build_snapshot(frame: pd.DataFrame, config: MemoryConfig, *, taken_at: datetime,
                   scan_seconds: float, dictionary: DictionaryStatus | None = None
                   ) -> Snapshot:
    """The aggregate of a scan's table: counts and bins only, no row of any buyer."""
    buyers = frame[frame["status"] == STATUS_OK]
    charts = chart_inputs(buyers, config)
    every = {column: label_ranks(buyers[column]) for column in RANKED_COLUMNS}
    return snapshot_of(summarize_inventory(frame, now=taken_at), charts, every,
                       taken_at=taken_at, scan_seconds=scan_seconds, dictionary=dictionary)


def snapshot_of(report: dict[str, Any], charts: ChartInputs,
                every_rank: dict[str, dict[str, int]], *, taken_at: datetime,
                scan_seconds: float, dictionary: DictionaryStatus | None = None) -> Snapshot:
    """A snapshot of a whole-store report and its chart inputs (a table's or a folded
    scan's); ``every_rank``: each label's rank among every label of its column."""
    report = dict(report)
    for name, value in report.items():
        if name.startswith("by_"):
            report[name] = dict(list(value.items())[:MAX_LABELS])
    ranks = {column: {label: every_rank[column][label]
                      for label in charts.categories[column].index
                      if label in every_rank[column]}
             for column in RANKED_COLUMNS}
    return Snapshot(taken_at=taken_at, scan_seconds=float(scan_seconds), report=report,
                    charts=charts, ranks=ranks, dictionary=dictionary)


def _frame_rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[list[Any]]:
    return [[_plain(v) for v in row] for row in frame[list(columns)].itertuples(index=False)]


def _plain(value: Any) -> Any:
    """A JSON-safe scalar: numpy numbers as Python ones, NaN and infinity as null."""
    if isinstance(value, str | bool):
        return value
    if isinstance(value, np.integer | int):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The stored bytes: a fixed-width head (magic, taken-at ms) then compact JSON."""
    charts = snapshot.charts
    taken_ms = int(snapshot.taken_at.timestamp() * 1000)
    body = {
        "version": SNAPSHOT_VERSION,
        "taken_at_ms": taken_ms,
        "scan_seconds": round(snapshot.scan_seconds, 3),
        "report": snapshot.report,
        "ranks": snapshot.ranks,
        "charts": {
            "ttl": _frame_rows(charts.ttl, ("bin_start", "bin_end", "buyers")),
            "ttl_over_limit": charts.ttl_over_limit,
            "expiring": [int(v) for v in charts.expiring],
            "ratio": _frame_rows(charts.ratio, ("bin_start", "bin_end", "codec", "buyers")),
            "pairs": _frame_rows(charts.pairs, PAIR_COLUMNS),
            "categories": {column: [[label, int(count)] for label, count in counts.items()]
                           for column, counts in charts.categories.items()},
            "qualified": charts.qualified,
            "buyers": charts.buyers,
            "history": _frame_rows(charts.history, ("bin_start", "bin_end", "buyers")),
            "history_over_limit": charts.history_over_limit,
        },
    }
    if snapshot.dictionary is not None:
        body["dictionary"] = _dictionary_fields(snapshot.dictionary)
    text = json.dumps(body, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return MAGIC + str(taken_ms).zfill(_STAMP_DIGITS).encode() + b"\n" + text.encode()


def _dictionary_fields(status: DictionaryStatus) -> dict[str, Any]:
    return {"current_id": status.current_id, "measured": status.measured,
            "current_bytes": status.current_bytes, "with_new_bytes": status.with_new_bytes,
            "reason": status.reason}


# validation: everything read back is hostile --------------------------------------------------

class InvalidSnapshot(ValueError):
    """The stored bytes are not a snapshot this code wrote (planted, damaged, other version)."""


def _check(condition: bool, why: str) -> None:
    if not condition:
        raise InvalidSnapshot(why)


def _int(value: Any, name: str, high: int = _MAX_COUNT) -> int:
    _check(type(value) is int and 0 <= value <= high, f"{name} is not a count")
    return int(value)


def _num(value: Any, name: str, *, nullable: bool = False) -> float:
    """A finite number, kept int or float as written (a bin edge at 29 stays 29)."""
    if value is None and nullable:
        return math.nan
    _check(type(value) in (int, float) and math.isfinite(value) and abs(value) < 1e18,
           f"{name} is not a finite number")
    return value  # type: ignore[no-any-return]


def _text(value: Any, name: str) -> str:
    _check(isinstance(value, str) and len(value) <= MAX_LABEL_CHARS, f"{name} is not a label")
    return str(value)


def _bool(value: Any, name: str) -> bool:
    _check(isinstance(value, bool), f"{name} is not a flag")
    return bool(value)


def _dict(value: Any, name: str, keys: set[str] | None = None) -> dict[str, Any]:
    _check(isinstance(value, dict), f"{name} is not an object")
    if keys is not None:
        _check(set(value) == keys, f"{name} has other fields than expected")
    return cast(dict[str, Any], value)


def _rows(value: Any, name: str, kinds: str, limit: int = MAX_ROWS) -> list[list[Any]]:
    """Rows of a table; ``kinds`` per column: n number, N number or null, c count, t text."""
    _check(isinstance(value, list) and len(value) <= limit, f"{name} is not a bounded list")
    out = []
    for row in value:
        _check(isinstance(row, list) and len(row) == len(kinds), f"{name} has a bad row")
        out.append([
            _num(v, name) if k == "n" else _num(v, name, nullable=True) if k == "N"
            else _int(v, name) if k == "c" else _text(v, name) for v, k in zip(row, kinds,
                                                                            strict=True)])
    return out


def _counts(value: Any, name: str, limit: int = MAX_LABELS) -> dict[str, int]:
    items = _dict(value, name)
    _check(len(items) <= limit, f"{name} has too many labels")
    return {_text(k, name): _int(v, name) for k, v in items.items()}


_REPORT_COUNTS = ("total", "buyers", "qualified", "qa_seeded", "corrupt", "legacy",
                  "undecryptable", "stored_bytes", "original_bytes")
_REPORT_LABELS = ("by_status", "by_temperature", "by_persona", "by_journey_stage",
                  "by_codec", "by_key_id", "by_schema_version")


#: Report fields a snapshot of an earlier version lacks: read as None.
_REPORT_LATER = ("stored_bytes_by_dictionary",)


def _report(value: Any) -> dict[str, Any]:
    fields = _dict(value, "report")
    required = {"generated_at", "compression_ratio", "ttl", *_REPORT_COUNTS, *_REPORT_LABELS}
    _check(required <= set(fields) <= required | set(_REPORT_LATER),
           "report has other fields than expected")
    report: dict[str, Any] = {"generated_at": _text(fields["generated_at"], "generated_at")}
    report.update({name: _int(fields[name], name) for name in _REPORT_COUNTS})
    report.update({name: _counts(fields[name], name) for name in _REPORT_LABELS})
    ratio = fields["compression_ratio"]
    report["compression_ratio"] = None if ratio is None else float(
        _num(ratio, "compression_ratio"))
    report["stored_bytes_by_dictionary"] = None
    if "stored_bytes_by_dictionary" in fields:
        by_dictionary = _dict(fields["stored_bytes_by_dictionary"],
                              "stored_bytes_by_dictionary", set(DICTIONARY_USE))
        report["stored_bytes_by_dictionary"] = {
            label: _int(by_dictionary[label], label) for label in DICTIONARY_USE}
    ttl = _dict(fields["ttl"], "ttl", {"no_ttl", "expiring_24h", "days_remaining"})
    report["ttl"] = {"no_ttl": _int(ttl["no_ttl"], "no_ttl"),
                     "expiring_24h": _int(ttl["expiring_24h"], "expiring_24h"),
                     "days_remaining": _counts(ttl["days_remaining"], "days_remaining", 10)}
    _check(report["buyers"] <= report["total"], "more buyers than keys")
    return report


def _table(rows: list[list[Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def _chart_inputs(value: Any) -> ChartInputs:
    fields = _dict(value, "charts", {"ttl", "ttl_over_limit", "expiring", "ratio", "pairs",
                                     "categories", "qualified", "buyers", "history",
                                     "history_over_limit"})
    expiring = fields["expiring"]
    _check(isinstance(expiring, list) and len(expiring) == SOON_HOURS // SOON_STEP_HOURS,
           "expiring has the wrong number of bins")
    ratio = _table(_rows(fields["ratio"], "ratio", "nntc"),
                   ("bin_start", "bin_end", "codec", "buyers"))
    ratio["codec"] = codec_labels(ratio["codec"])
    pairs = _table(_rows(fields["pairs"], "pairs", "tnnnnnncN"), PAIR_COLUMNS)
    pairs["codec"] = codec_labels(pairs["codec"])
    categories_in = _dict(fields["categories"], "categories", set(CATEGORY_COLUMNS))
    categories = {}
    for column in CATEGORY_COLUMNS:
        rows = _rows(categories_in[column], column, "tc", MAX_CATEGORIES)
        categories[column] = pd.Series({label: count for label, count in rows}, dtype=np.int64)
    buyers = _int(fields["buyers"], "buyers")
    return ChartInputs(
        ttl=_table(_rows(fields["ttl"], "ttl", "nnc"), ("bin_start", "bin_end", "buyers")),
        ttl_over_limit=_bool(fields["ttl_over_limit"], "ttl_over_limit"),
        expiring=np.array([_int(v, "expiring") for v in expiring], dtype=np.int64),
        ratio=ratio, pairs=pairs, categories=categories,
        qualified=_int(fields["qualified"], "qualified", buyers), buyers=buyers,
        history=_table(_rows(fields["history"], "history", "nnc"),
                       ("bin_start", "bin_end", "buyers")),
        history_over_limit=_bool(fields["history_over_limit"], "history_over_limit"))


def _dictionary_status(value: Any) -> DictionaryStatus:
    """A stored :class:`DictionaryStatus`: bounded whole numbers, a known reason, and
    either an estimate (reason null, states measured) or a reason (no byte counts)."""
    fields = _dict(value, "dictionary", {"current_id", "measured", "current_bytes",
                                         "with_new_bytes", "reason"})
    current_id = fields["current_id"]
    reason = fields["reason"]
    _check(reason is None or (isinstance(reason, str) and reason in NO_ESTIMATE_REASONS),
           "dictionary has an unknown reason")
    status = DictionaryStatus(
        current_id=None if current_id is None else _int(current_id, "current_id",
                                                        MAX_DICTIONARY_ID),
        measured=_int(fields["measured"], "measured", MAX_ESTIMATE_STATES),
        current_bytes=_int(fields["current_bytes"], "current_bytes"),
        with_new_bytes=_int(fields["with_new_bytes"], "with_new_bytes"))
    _check(status.current_id != 0, "dictionary id 0 is no dictionary")
    if reason is None:
        _check(status.measured > 0 and status.current_bytes > 0,
               "dictionary estimate measured nothing")
    else:
        _check(status.measured == status.current_bytes == status.with_new_bytes == 0,
               "dictionary has both an estimate and a reason for none")
    return DictionaryStatus(status.current_id, status.measured, status.current_bytes,
                            status.with_new_bytes, reason)


def decode_snapshot(data: bytes) -> Snapshot:
    """A snapshot from stored bytes; :class:`InvalidSnapshot` for anything else."""
    _check(len(data) <= MAX_SNAPSHOT_BYTES, "snapshot too large")
    _check(data.startswith(MAGIC) and data[_HEAD_BYTES - 1:_HEAD_BYTES] == b"\n",
           "not a snapshot")
    try:
        body = json.loads(data[_HEAD_BYTES:].decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidSnapshot(f"snapshot is not JSON: {exc}") from None
    fields = _dict(body, "snapshot")
    _check(set(fields) - {"dictionary"} == {"version", "taken_at_ms", "scan_seconds",
                                             "report", "ranks", "charts"},
           "snapshot has other fields than expected")
    _check(fields["version"] == SNAPSHOT_VERSION and type(fields["version"]) is int,
           "unknown snapshot version")
    taken_ms = _int(fields["taken_at_ms"], "taken_at_ms", 10**_STAMP_DIGITS - 1)
    _check(data[len(MAGIC):_HEAD_BYTES - 1] == str(taken_ms).zfill(_STAMP_DIGITS).encode(),
           "head and body disagree on the time")
    _check(taken_ms <= time.time() * 1000 + 300_000, "snapshot taken in the future")
    ranks_in = _dict(fields["ranks"], "ranks", set(RANKED_COLUMNS))
    ranks = {column: {_text(label, column): _int(rank, column, 10**6)
                      for label, rank in _dict(ranks_in[column], column).items()}
             for column in RANKED_COLUMNS}
    _check(all(len(r) <= MAX_CATEGORIES for r in ranks.values()), "too many ranked labels")
    return Snapshot(
        taken_at=datetime.fromtimestamp(taken_ms / 1000, UTC),
        scan_seconds=float(_num(fields["scan_seconds"], "scan_seconds")),
        report=_report(fields["report"]), charts=_chart_inputs(fields["charts"]), ranks=ranks,
        dictionary=_dictionary_status(fields["dictionary"]) if "dictionary" in fields
        else None)


# Redis --------------------------------------------------------------------------------------

def _stored_taken_ms(client: Any, key: str) -> int | None:
    """The taken-at stamp of the stored snapshot from its fixed head; None if unreadable."""
    try:
        head = client.getrange(key, 0, _HEAD_BYTES - 1)
    except redis.ResponseError:  # another type at the key: replace it
        return None
    if not isinstance(head, bytes) or not head.startswith(MAGIC) or len(head) != _HEAD_BYTES:
        return None
    stamp = head[len(MAGIC):-1]
    return int(stamp) if stamp.isdigit() else None


def store_snapshot(memory: SyncBuyerConversationMemory, frame: pd.DataFrame, *,
                   taken_at: datetime, scan_seconds: float,
                   dictionary: DictionaryStatus | None = None) -> Snapshot | None:
    """Aggregate a full scan (and its dictionary estimate, if any) and keep it as the
    newest snapshot (with a TTL).

    An older scan that finishes late does not replace a newer snapshot (a check of the
    stored stamp, then SET: two scans finishing within the same milliseconds may race,
    which costs only a slightly older snapshot). Returns what was stored, or None when
    Redis refused or a newer one is there; never raises for a Redis fault (the scan
    itself already succeeded).
    """
    return keep_snapshot(memory, build_snapshot(
        frame, memory.config, taken_at=taken_at, scan_seconds=scan_seconds,
        dictionary=dictionary))


def keep_snapshot(memory: SyncBuyerConversationMemory, snapshot: Snapshot) -> Snapshot | None:
    """Store ``snapshot`` as the newest, as :func:`store_snapshot` does."""
    taken_at = snapshot.taken_at
    data = encode_snapshot(snapshot)
    if len(data) > MAX_SNAPSHOT_BYTES:  # cannot happen with the caps above; never store it
        log.warning("inventory snapshot of %d bytes not stored (limit %d)", len(data),
                    MAX_SNAPSHOT_BYTES)
        return None
    key = snapshot_key(memory.prefix)
    taken_ms = int(taken_at.timestamp() * 1000)
    try:
        stored = _stored_taken_ms(memory.client, key)
        if stored is not None and stored > taken_ms:
            return None
        memory.client.set(key, data, ex=SNAPSHOT_TTL_SECONDS)
    except redis.RedisError as exc:
        log.warning("inventory snapshot not stored: %s", type(exc).__name__)
        return None
    return snapshot


def read_snapshot(memory: SyncBuyerConversationMemory) -> Snapshot | None:
    """The newest snapshot, or None when there is none or it is not valid.

    At most :data:`MAX_SNAPSHOT_BYTES` are read (STRLEN first: a larger value is refused
    unread); a Redis fault is None too, and the caller scans.
    """
    key = snapshot_key(memory.prefix)
    try:
        length = memory.client.strlen(key)
        if not length:
            return None
        if length > MAX_SNAPSHOT_BYTES:
            log.warning("inventory snapshot ignored: %d bytes, over the limit", length)
            return None
        data = memory.client.getrange(key, 0, MAX_SNAPSHOT_BYTES - 1)
    except redis.RedisError as exc:  # WRONGTYPE, connection problems
        log.warning("inventory snapshot not read: %s", type(exc).__name__)
        return None
    try:
        return decode_snapshot(bytes(cast(bytes, data)))  # replies are never decoded
    except InvalidSnapshot as exc:
        log.warning("inventory snapshot ignored: %s", str(exc)[:200])
        return None
