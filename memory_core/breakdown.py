"""The overview's figures for any filter, folded while the scan streams: no row per buyer.

The dashboard's exact overview once held the scan's whole table (217 MB per million
buyers) so that a filter could recount every figure. Here each chunk of the scan is
counted into small tables keyed by a *cell*, one combination of the overview's filters
(temperature, persona, journey stage, QA seed), and by fine fixed bins of what the charts
draw; a filter sums the cells it selects and coarsens the bins into the charts' own
(:class:`~memory_core.snapshot.ChartInputs`, the same the snapshot stores). What stays
grows with the cells and the bins, not with the buyers: at most :data:`MAX_CELLS` cells
(buyers of later new combinations share one cell labelled :data:`OTHER_LABELS`), and per
cell at most a few hundred bins of each chart.

Fine bins and what coarsening costs: days of TTL, hours to expiry and message counts are
counted exactly; a compression ratio in steps of 1/60, which the ratio chart's 30 bins of
``ceil(largest ratio) / 30`` always line up with; sizes in 16 steps per doubling (6 %),
so the size chart's cells, whose edges come from the 99.5th percentile, can differ from
the exact grid's by a buyer near an edge. Each size cell's smallest and largest sizes,
the counts and the sums are exact.

The buyer list keeps the first :data:`LIST_ROWS` buyers of each order, of all buyers and
of those without a TTL: the list as the page opens, and the soonest-expiring buyers of
every expiry window. Any other list (a filter, a search, a window in another order) is
read from Redis again by :func:`memory_core.listing.list_buyers`, which keeps only its
first rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from memory_core.admin import MEMORY_SAMPLE_KEYS
from memory_core.config import MemoryConfig
from memory_core.dictionary_use import DictionaryStatus
from memory_core.inventory import (
    BUYER_ORDERS,
    DICTIONARY_USE,
    ORDER_RECENT,
    STATUS_OK,
    TTL_BUCKET_DAYS,
    TTL_BUCKET_NAMES,
    ProgressCallback,
    order_key,
)
from memory_core.report import CHUNK_ROWS, OTHER_LABELS, ReportFold, scan_report
from memory_core.snapshot import (
    CATEGORY_COLUMNS,
    HISTORY_STEP,
    PAIR_BINS,
    PAIR_COLUMNS,
    PAIR_EDGE_QUANTILE,
    SOON_HOURS,
    ChartInputs,
    Snapshot,
    capped_categories,
    codec_labels,
    expiring_counts,
    grid_rows,
    history_chart_messages,
    history_histogram,
    ratio_bins,
    ratio_steps,
    snapshot_of,
    ttl_chart_days,
    ttl_histogram,
)
from memory_core.store import SyncBuyerConversationMemory

#: Filter combinations counted apart; buyers of later new ones share one cell.
MAX_CELLS = 2000
#: Distinct labels of one filter column (a header field anyone may write) told apart.
MAX_FILTER_LABELS = 200
#: Distinct codec and schema labels told apart per column; the rest count together.
MAX_OTHER_LABELS = 1000
#: Rows of each order kept for the buyer list.
LIST_ROWS = 1000
#: Readable buyers' ids drawn at random while folding: as many as the Server page
#: measures to tell what a key costs.
SAMPLE_IDS = MEMORY_SAMPLE_KEYS
#: Fine size bins per doubling, above :data:`_EXACT_SIZES` bytes.
SIZE_STEPS = 16
_EXACT_SIZES = 2 * SIZE_STEPS
FILTER_COLUMNS = ("temperature", "persona", "journey_stage")
#: Columns of a kept buyer row: what the list shows and exports.
ROW_COLUMNS = ("contact_id", "status", "temperature", "persona", "journey_stage",
               "message_count", "stored_bytes", "original_bytes", "compression_ratio",
               "codec", "key_id", "ttl_days", "ttl_ms", "expires_at", "last_interaction",
               "last_interaction_epoch", "revision", "qa_seed")
_COUNTED_LABELS = ("codec", "schema_version")


@dataclass(frozen=True)
class BuyerFilter:
    """The overview's filters; an empty tuple means every value."""

    temperatures: tuple[str, ...] = ()
    personas: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    hide_qa: bool = False

    @property
    def narrows(self) -> bool:
        return bool(self.temperatures or self.personas or self.stages or self.hide_qa)

    def chosen(self) -> dict[str, tuple[str, ...]]:
        return dict(zip(FILTER_COLUMNS, (self.temperatures, self.personas, self.stages),
                        strict=True))

    def mask(self, rows: pd.DataFrame) -> np.ndarray:
        """Which readable rows of a scan chunk match (the labels as text)."""
        keep = (rows["status"] == STATUS_OK).to_numpy(dtype=bool)  # new arrays: pandas may
        # hand out read-only ones, so never &=
        for column, chosen in self.chosen().items():
            if chosen:
                keep = keep & rows[column].astype(str).isin(chosen).to_numpy(dtype=bool)
        if self.hide_qa:
            keep = keep & ~rows["qa_seed"].to_numpy(dtype=bool)
        return keep


#: The filter that selects every buyer.
EVERY_BUYER = BuyerFilter()


def size_bins(values: np.ndarray) -> np.ndarray:
    """Fine size bin of each byte count: exact below 32, then 16 per doubling."""
    values = np.maximum(values.astype(np.int64), 0)
    _, exponent = np.frexp(values.astype(np.float64))  # values < 2**53: exact bit length
    shift = np.maximum(exponent.astype(np.int64) - 5, 0)
    mantissa = values >> shift
    return np.where(values < _EXACT_SIZES, values,
                    _EXACT_SIZES + (shift - 1) * SIZE_STEPS + (mantissa - SIZE_STEPS))


def size_bin_floor(bins: np.ndarray) -> np.ndarray:
    """The smallest byte count of each fine size bin (the inverse of :func:`size_bins`)."""
    bins = bins.astype(np.int64)
    above = np.maximum(bins - _EXACT_SIZES, 0)
    shift = above // SIZE_STEPS + 1
    return np.where(bins < _EXACT_SIZES, bins, (SIZE_STEPS + above % SIZE_STEPS) << shift)


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's label index and the labels as text (-1: no label), from a scan's
    categorical column without turning every row into text."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy(dtype=np.int64)
        names = [str(label) for label in values.cat.categories]
    else:
        found, uniques = pd.factorize(values.astype(str))
        codes, names = found.astype(np.int64), [str(label) for label in uniques]
    return codes, names


def first_in_order(rows: pd.DataFrame, order: str, limit: int) -> pd.DataFrame:
    """The first ``limit`` rows in ``order``, ties newest first, then in the given order."""
    if len(rows) <= 1:
        return rows
    primary = order_key(rows, order)
    if len(rows) > limit:  # keep every row tied with the limit-th, then sort those
        threshold = np.partition(primary, limit - 1)[limit - 1]
        keep = primary <= threshold
        rows, primary = rows[keep], primary[keep]
    ranked = np.lexsort((order_key(rows, ORDER_RECENT), primary))
    return rows.iloc[ranked[:limit]]


def _kept_ttl_days(config: MemoryConfig) -> int:
    """Whole days of TTL told apart: up to the chart's edge (past it, the "over" flag)
    and at least up to the report's last bucket, so a long TTL is bucketed as a table
    buckets it."""
    return max(ttl_chart_days(config), TTL_BUCKET_DAYS[-1])


@dataclass(frozen=True)
class _Table:
    """One folded table: its key columns and how each value column adds up."""

    keys: tuple[str, ...]
    values: dict[str, str]  # column -> "sum" | "min" | "max"


_TABLES = {
    "totals": _Table(("cell",), {"buyers": "sum", "qualified": "sum", "stored": "sum",
                                 "original": "sum", "ratio_max": "max",
                                 **{f"dictionary_{u}": "sum" for u in DICTIONARY_USE}}),
    "ttl": _Table(("cell", "day", "over"), {"buyers": "sum"}),
    "soon": _Table(("cell", "hour"), {"buyers": "sum"}),
    "ratio": _Table(("cell", "codec", "step"), {"buyers": "sum"}),
    "pairs": _Table(("cell", "codec", "x", "y"), {
        "buyers": "sum", "original_sum": "sum", "stored_sum": "sum", "original_min": "min",
        "original_max": "max", "stored_min": "min", "stored_max": "max"}),
    "history": _Table(("cell", "messages", "over"), {"buyers": "sum"}),
    "labels": _Table(("cell", "column", "label"), {"buyers": "sum"}),
}


def _fold(table: _Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with the same keys added up (sums summed, smallest and largest kept)."""
    if frame.empty:
        return frame
    grouped = frame.groupby(list(table.keys), sort=False, as_index=False, observed=True)
    if set(table.values.values()) == {"sum"}:
        return grouped.sum()  # the common case, without agg's per-column dispatch
    return grouped.agg(table.values)


@dataclass
class BreakdownFold:
    """Running per-cell tables and first rows; :meth:`result` gives the :class:`Breakdown`."""

    config: MemoryConfig
    max_cells: int = MAX_CELLS
    cells: dict[tuple[str, str, str, bool], int] = field(default_factory=dict)
    filter_labels: dict[str, set[str]] = field(
        default_factory=lambda: {column: set() for column in FILTER_COLUMNS})
    other_labels: dict[str, set[str]] = field(
        default_factory=lambda: {column: set() for column in _COUNTED_LABELS})
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    first: dict[tuple[str, bool], pd.DataFrame] = field(default_factory=dict)
    #: Some buyers' persona, stage or temperature was counted under OTHER_LABELS.
    capped: bool = False
    #: A uniform sample of readable buyers' ids: the :data:`SAMPLE_IDS` with the lowest
    #: random priority (bottom-k sampling; a fixed seed, so a rescan draws alike).
    sample: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"priority": pd.Series(dtype=np.float64), "contact_id": pd.Series(dtype=object)}))
    random: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def add(self, chunk: pd.DataFrame) -> None:
        """Count one scan chunk (with derived columns); its rows are not kept."""
        ok = chunk[chunk["status"] == STATUS_OK]
        if ok.empty:
            return
        cell = self._cells_of(ok)
        parts = self._parts(ok, cell)
        for name, table in _TABLES.items():
            part = _fold(table, parts[name])
            held = self.tables.get(name)
            self.tables[name] = part if held is None else _fold(
                table, pd.concat([held, part], ignore_index=True))
        drawn = pd.DataFrame({"priority": self.random.random(len(ok)),  # ids as objects:
                              # a key's undecodable bytes are lone surrogates, which
                              # pandas' string dtype refuses
                              "contact_id": pd.Series(ok["contact_id"].to_numpy(dtype=object),
                                                      dtype=object)})
        self.sample = pd.concat([self.sample, drawn]).nsmallest(SAMPLE_IDS, "priority")
        rows = ok[list(ROW_COLUMNS)]
        no_ttl = rows[rows["ttl_ms"].to_numpy() < 0]
        for order in BUYER_ORDERS:
            for without_ttl, candidates in ((False, rows), (True, no_ttl)):
                # the chunk's own first rows, then those merged with the held ones: a
                # concat of a thousand rows or two, not of the whole chunk
                candidates = first_in_order(candidates, order, LIST_ROWS)
                held = self.first.get((order, without_ttl))
                if held is not None:
                    candidates = pd.concat([held, candidates])
                self.first[(order, without_ttl)] = first_in_order(candidates, order, LIST_ROWS)

    @staticmethod
    def _capped_label(column: str, label: str, known: dict[str, set[str]],
                      limit: int) -> str:
        """The label, or OTHER_LABELS once ``limit`` others of the column were seen."""
        seen = known[column]
        if label in seen:
            return label
        if len(seen) < limit:
            seen.add(label)
            return label
        return OTHER_LABELS

    def _cells_of(self, ok: pd.DataFrame) -> np.ndarray:
        """Each row's cell id. A new combination past :attr:`max_cells` joins its
        temperature's overflow cell (persona and stage counted as OTHER_LABELS), so a
        temperature filter still counts every buyer; there is one such cell per
        temperature label and QA flag at most. Works on label codes: Python runs once
        per distinct combination in the chunk, not per row."""
        columns = [_codes(ok[column]) for column in FILTER_COLUMNS]
        combined = ok["qa_seed"].to_numpy(dtype=bool).astype(np.int64)
        for codes, labels in columns:  # mixed radix: at most 2 x 50,001**3, well in int64
            combined = combined * (len(labels) + 1) + (codes + 1)
        uniques, inverse = np.unique(combined, return_inverse=True)
        ids = np.empty(len(uniques), dtype=np.int64)
        for index, value in enumerate(uniques.tolist()):
            digits = []
            for _, labels in reversed(columns):
                value, digit = divmod(value, len(labels) + 1)
                digits.append(labels[digit - 1] if digit else "unknown")
            capped = [self._capped_label(column, label, self.filter_labels, MAX_FILTER_LABELS)
                      for column, label in zip(FILTER_COLUMNS, reversed(digits), strict=True)]
            key = (capped[0], capped[1], capped[2], bool(value))
            found = self.cells.get(key)
            if found is None and len(self.cells) >= self.max_cells:
                key = (capped[0], OTHER_LABELS, OTHER_LABELS, key[3])
                found = self.cells.get(key)
            if found is None:
                found = self.cells[key] = len(self.cells)
            self.capped = self.capped or OTHER_LABELS in key
            ids[index] = found
        result: np.ndarray = ids[inverse.reshape(-1)]
        return result

    def _parts(self, ok: pd.DataFrame, cell: np.ndarray) -> dict[str, pd.DataFrame]:
        """This chunk's rows of every table, before they are added up."""
        config = self.config
        one = np.ones(len(ok), dtype=np.int64)
        stored = ok["stored_bytes"].to_numpy(dtype=np.int64)
        original = ok["original_bytes"].to_numpy(dtype=np.int64)
        ratio = ok["compression_ratio"].to_numpy(dtype=np.float64)
        ttl_days = ok["ttl_days"].to_numpy(dtype=np.float64)
        ttl_ms = ok["ttl_ms"].to_numpy(dtype=np.int64)
        codec = codec_labels(ok["codec"]).to_numpy(dtype=object)
        use = ok["dictionary"].to_numpy(dtype=object) if "dictionary" in ok \
            else np.full(len(ok), "none", dtype=object)
        limit = ttl_chart_days(config)
        kept_days = _kept_ttl_days(config)
        has_ttl = ttl_ms >= 0
        soon = has_ttl & (ttl_ms < SOON_HOURS * 3_600_000)
        rated = np.isfinite(ratio)
        history_limit = history_chart_messages(config)
        messages = ok["message_count"].to_numpy(dtype=np.int64)
        labels = []
        for column in _COUNTED_LABELS:
            codes, names = _codes(ok[column])
            capped = np.array([self._capped_label(column, name, self.other_labels,
                                                  MAX_OTHER_LABELS) for name in names]
                              + ["unknown"], dtype=object)
            labels.append(pd.DataFrame({"cell": cell, "column": column,
                                        "label": capped[codes], "buyers": one}))
        return {
            "totals": pd.DataFrame({
                "cell": cell, "buyers": one,
                "qualified": ok["is_qualified"].to_numpy(dtype=np.int64),
                "stored": stored, "original": original,
                "ratio_max": np.where(rated, ratio, 0.0),
                **{f"dictionary_{u}": np.where(use == u, stored, 0) for u in DICTIONARY_USE}}),
            "ttl": pd.DataFrame({
                "cell": cell,
                "day": np.where(has_ttl, np.floor(np.minimum(np.nan_to_num(ttl_days),
                                                             kept_days)), -1).astype(np.int64),
                "over": has_ttl & (np.nan_to_num(ttl_days) > limit), "buyers": one}),
            "soon": pd.DataFrame({"cell": cell[soon], "hour": ttl_ms[soon] // 3_600_000,
                                  "buyers": one[soon]}),
            "ratio": pd.DataFrame({
                "cell": cell[rated], "codec": codec[rated],
                "step": ratio_steps(ratio[rated]),
                "buyers": one[rated]}),
            "pairs": pd.DataFrame({
                "cell": cell, "codec": codec, "x": size_bins(original), "y": size_bins(stored),
                "buyers": one, "original_sum": original, "stored_sum": stored,
                "original_min": original, "original_max": original, "stored_min": stored,
                "stored_max": stored}),
            "history": pd.DataFrame({
                "cell": cell, "messages": np.minimum(messages, history_limit),
                "over": messages > history_limit, "buyers": one}),
            "labels": pd.concat(labels, ignore_index=True),
        }

    def result(self) -> Breakdown:
        cells = pd.DataFrame(
            [(*key, cell) for key, cell in self.cells.items()],
            columns=[*FILTER_COLUMNS, "qa_seed", "cell"]).set_index("cell").sort_index()
        tables = {name: self.tables.get(name, pd.DataFrame(
            columns=[*table.keys, *table.values])) for name, table in _TABLES.items()}
        first = {key: self.first.get(key, pd.DataFrame(columns=list(ROW_COLUMNS)))
                 for key in ((o, n) for o in BUYER_ORDERS for n in (False, True))}
        return Breakdown(config=self.config, cells=cells, tables=tables, first=first,
                         capped=self.capped,
                         sample_ids=tuple(str(i) for i in self.sample["contact_id"]))


@dataclass(frozen=True)
class Breakdown:
    """A scan's figures per filter cell, and the first rows of each list order."""

    config: MemoryConfig
    cells: pd.DataFrame  # index: cell id; columns FILTER_COLUMNS and qa_seed
    tables: dict[str, pd.DataFrame]
    first: dict[tuple[str, bool], pd.DataFrame]  # (order, without TTL only) -> rows
    capped: bool  # some labels or combinations were counted under OTHER_LABELS
    sample_ids: tuple[str, ...] = ()  # a uniform sample of readable buyers

    @property
    def buyers(self) -> int:
        return int(self.tables["totals"]["buyers"].sum())

    def options(self) -> dict[str, list[str]]:
        """Values each filter can take, sorted; never :data:`OTHER_LABELS`, which stands
        for labels counted together, not a label a buyer carries."""
        return {column: sorted({str(v) for v in self.cells[column]} - {OTHER_LABELS})
                for column in FILTER_COLUMNS}

    def label_counts(self, column: str, selected: Sequence[int] | None = None) -> pd.Series:
        """Buyers per label of a charted column, most common first (ties by label)."""
        if column in FILTER_COLUMNS:
            totals = self._select("totals", selected)
            labels = self.cells[column].reindex(totals["cell"]).to_numpy()
            counts = pd.Series(totals["buyers"].to_numpy(), index=labels, dtype=np.int64)
        else:
            rows = self._select("labels", selected)
            rows = rows[rows["column"] == column]
            counts = pd.Series(rows["buyers"].to_numpy(), index=rows["label"].to_numpy(),
                               dtype=np.int64)
        counts = counts.groupby(level=0).sum()
        counts = counts[counts > 0]
        order = np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))
        return counts.iloc[order]

    def selected_cells(self, chosen: BuyerFilter) -> list[int]:
        """The cells a filter selects."""
        keep = np.ones(len(self.cells), dtype=bool)
        for column, values in chosen.chosen().items():
            if values:
                keep = keep & self.cells[column].isin(values).to_numpy(dtype=bool)
        if chosen.hide_qa:
            keep = keep & ~self.cells["qa_seed"].to_numpy(dtype=bool)
        return [int(c) for c in self.cells.index[keep]]

    def _select(self, name: str, selected: Sequence[int] | None) -> pd.DataFrame:
        table = self.tables[name]
        return table if selected is None else table[table["cell"].isin(selected)]

    def _summed(self, name: str, selected: Sequence[int] | None,
                by: Sequence[str]) -> pd.DataFrame:
        rows = self._select(name, selected)
        spec = _TABLES[name].values
        if rows.empty:
            return pd.DataFrame(columns=[*by, *spec])
        return rows.groupby(list(by), as_index=False, observed=True).agg(spec)

    def figures(self, chosen: BuyerFilter = EVERY_BUYER) -> tuple[dict[str, Any],
                                                                    ChartInputs]:
        """The report the page's numbers read and the chart inputs, for a filter."""
        selected = self.selected_cells(chosen) if chosen.narrows else None
        return self.report(selected), self.chart_inputs(selected)

    def report(self, selected: Sequence[int] | None = None) -> dict[str, Any]:
        """:func:`~memory_core.inventory.summarize_inventory`'s figures of the selected
        buyers that the overview shows (readable buyers only)."""
        totals = self._select("totals", selected)
        stored, original = int(totals["stored"].sum()), int(totals["original"].sum())
        days = self._summed("ttl", selected, ("day",))
        day = days["day"].to_numpy(dtype=np.int64)
        count = days["buyers"].to_numpy(dtype=np.int64)
        # whole days, so a bucket's whole-day edges split them exactly as the table's
        buckets = {name: int(count[(day >= low) & (day < high)].sum()) for name, low, high
                   in zip(TTL_BUCKET_NAMES, TTL_BUCKET_DAYS, [*TTL_BUCKET_DAYS[1:], 2**62],
                          strict=True)}

        def labelled(column: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in self.label_counts(column, selected).items()}

        return {
            "buyers": int(totals["buyers"].sum()),
            "by_temperature": labelled("temperature"),
            "by_persona": labelled("persona"),
            "by_journey_stage": labelled("journey_stage"),
            "by_codec": labelled("codec"),
            "by_schema_version": labelled("schema_version"),
            "qualified": int(totals["qualified"].sum()),
            "stored_bytes": stored,
            "original_bytes": original,
            "stored_bytes_by_dictionary": {
                u: int(totals[f"dictionary_{u}"].sum()) for u in DICTIONARY_USE},
            "compression_ratio": round(original / stored, 3) if stored else None,
            "ttl": {"no_ttl": int(count[day < 0].sum()),
                    "expiring_24h": int(count[day == 0].sum()),
                    "days_remaining": buckets},
        }

    def expiring_within(self, seconds: float, selected: Sequence[int] | None = None) -> int:
        """Buyers whose TTL ends within ``seconds`` (whole hours or days: what the
        fine bins tell apart exactly)."""
        if seconds % 86_400 == 0 and seconds // 86_400 <= _kept_ttl_days(self.config):
            days = self._summed("ttl", selected, ("day",))
            return int(days.loc[(days["day"] >= 0) & (days["day"] < seconds // 86_400),
                                "buyers"].sum())
        if seconds % 3600 or seconds > SOON_HOURS * 3600:
            raise ValueError(f"an expiry window of {seconds} s is not counted")
        hours = self._summed("soon", selected, ("hour",))
        return int(hours.loc[hours["hour"] < seconds // 3600, "buyers"].sum())

    def chart_inputs(self, selected: Sequence[int] | None = None) -> ChartInputs:
        """The chart inputs of the selected cells (all when None), binned as a table's."""
        config = self.config
        totals = self._select("totals", selected)
        ttl = self._summed("ttl", selected, ("day", "over"))
        dated = ttl[ttl["day"] >= 0]  # whole days (clipped at the limit), exact bins
        ttl_bins, _ = ttl_histogram(dated["day"].astype(np.float64), config, dated["buyers"])
        soon = self._summed("soon", selected, ("hour",))  # whole hours: exact bins
        expiring = expiring_counts(soon["hour"].astype(np.int64) * 3_600_000, soon["buyers"])
        ratio = self._summed("ratio", selected, ("codec", "step"))
        folded_ratios = ratio_bins(
            ratio["step"], ratio["codec"].astype(str),
            float(totals["ratio_max"].max()) if len(totals) else 1.0, ratio["buyers"])
        history = self._summed("history", selected, ("messages", "over"))
        categories = {column: capped_categories(self.label_counts(column, selected))
                      for column in CATEGORY_COLUMNS}
        return ChartInputs(
            ttl=ttl_bins,
            ttl_over_limit=bool(ttl.loc[ttl["over"].astype(bool), "buyers"].sum()),
            expiring=expiring, ratio=folded_ratios,
            pairs=self._pairs(selected), categories=categories,
            qualified=int(totals["qualified"].sum()), buyers=int(totals["buyers"].sum()),
            history=history_histogram(
                history["messages"].astype(np.float64), step=HISTORY_STEP,
                limit=history_chart_messages(config),
                at_least=config.max_history_messages, weights=history["buyers"]),
            history_over_limit=bool(history.loc[history["over"].astype(bool),
                                                "buyers"].sum()))

    def _pairs(self, selected: Sequence[int] | None) -> pd.DataFrame:
        """The size chart's cells: fine size bins put into the 30 x 30 grid."""
        fine = self._summed("pairs", selected, ("codec", "x", "y"))
        if fine.empty:
            return pd.DataFrame(columns=list(PAIR_COLUMNS))
        weights = fine["buyers"].to_numpy(dtype=np.int64)

        def edges(bins: pd.Series, largest: pd.Series) -> np.ndarray:
            """Grid edges up to the 99.5th percentile: the largest size of the fine bin
            holding it (an upper bound, at most one fine bin high)."""
            by_bin = pd.DataFrame({"bin": bins.to_numpy(), "n": weights,
                                   "top": largest.to_numpy()}).groupby("bin").agg(
                n=("n", "sum"), top=("top", "max"))
            reach = np.cumsum(by_bin["n"].to_numpy())
            at = int(np.searchsorted(reach, PAIR_EDGE_QUANTILE * reach[-1]))
            top = float(by_bin["top"].iloc[min(at, len(by_bin) - 1)])
            return np.linspace(0, max(top, 1.0), PAIR_BINS + 1)

        x_edges = edges(fine["x"], fine["original_max"])
        y_edges = edges(fine["y"], fine["stored_max"])
        mean_x = fine["original_sum"].to_numpy(dtype=np.float64) / weights
        mean_y = fine["stored_sum"].to_numpy(dtype=np.float64) / weights
        fine = fine.assign(  # each fine cell into the grid cell of its buyers' mean sizes
            x=np.clip(np.searchsorted(x_edges, mean_x, side="right") - 1, 0, PAIR_BINS - 1),
            y=np.clip(np.searchsorted(y_edges, mean_y, side="right") - 1, 0, PAIR_BINS - 1))
        cells = fine.groupby(["codec", "x", "y"], as_index=False).agg(_TABLES["pairs"].values)
        return grid_rows(cells, x_edges, y_edges)

    def first_rows(self, order: str, without_ttl: bool = False) -> pd.DataFrame:
        """The first :data:`LIST_ROWS` buyers of every buyer (or of those without a TTL)
        in ``order``: the list as the page opens, and, soonest first, every expiry
        window's."""
        return self.first[(order, without_ttl)]

    def label_ranks(self) -> dict[str, dict[str, int]]:
        """Each charted label's colour index: its place among the column's labels, sorted
        (as the table's colours were handed out)."""
        return {column: {label: rank for rank, label in
                         enumerate(sorted(self.label_counts(column).index.astype(str)))}
                for column in ("persona", "journey_stage", "schema_version")}


@dataclass(frozen=True)
class OverviewScan:
    """One full scan, folded: what the overview draws, with no row per buyer."""

    breakdown: Breakdown
    report: dict[str, Any]  # of every key, shaped as summarize_inventory's
    problems: pd.DataFrame  # keys that are no readable buyer, at most MAX_PROBLEMS
    problem_ids: tuple[str, ...]  # their contact ids as read, to inspect or delete one
    taken_at: datetime  # when the scan started (UTC)
    seconds: float

    def snapshot(self, dictionary: DictionaryStatus | None = None) -> Snapshot:
        """The snapshot of this scan: the whole store's report and charts, with the
        figures the overview draws of its buyers as the fresh scan draws them (the
        report's TTL counts are of every key, unreadable ones too)."""
        report = {**self.report, **self.breakdown.report()}
        return snapshot_of(report, self.breakdown.chart_inputs(),
                           self.breakdown.label_ranks(), taken_at=self.taken_at,
                           scan_seconds=self.seconds, dictionary=dictionary)


def scan_overview(memory: SyncBuyerConversationMemory, *,
                  progress: ProgressCallback | None = None,
                  fold: ReportFold | None = None,
                  chunk_rows: int = CHUNK_ROWS) -> OverviewScan:
    """Scan every key under the prefix and fold the report and the per-cell figures as
    the chunks stream. Raises :class:`~memory_core.errors.StoreUnavailable` if Redis
    cannot be reached."""
    taken_at = datetime.now(UTC)
    started = time.perf_counter()
    cells = BreakdownFold(memory.config)
    fold = fold or ReportFold()
    report, problems = scan_report(memory, progress=progress, fold=fold,
                                   chunk_rows=chunk_rows, each_chunk=cells.add)
    return OverviewScan(breakdown=cells.result(), report=report, problems=problems,
                        problem_ids=tuple(fold.problem_ids), taken_at=taken_at,
                        seconds=time.perf_counter() - started)
