"""Altair charts of the inventory table: pure functions, DataFrame in, chart out.

Data is aggregated in pandas before it reaches Altair, so a chart of 100k buyers ships a
few hundred rows to the browser, not 100k; the original-vs-stored plot bins buyers into
cells rather than drawing (or sampling) one point each.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from memory_core.config import MemoryConfig
from memory_core.inventory import value_counts_text

TEMPERATURE_COLORS = {"hot": "#d62728", "warm": "#ff7f0e", "cold": "#1f77b4",
                      "unknown": "#9e9e9e"}
_HEIGHT = 240
OTHER = "other"
MAX_CODECS = 4  # codec labels shown apart; the rest are "other"
MAX_CATEGORIES = 12  # bars in a category chart, the last one "other" when there are more


def vega_lite_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart as a Vega-Lite spec with its data inline, validated once.

    Altair validates against the Vega-Lite schema on every ``to_dict()``: 10-30 ms a
    chart, paid on every run of the page by every session if the page drew Altair
    objects. The overview model builds each spec once per scan and filter choice.
    Data goes inline through Altair's default data transformer, a process-wide setting:
    st.altair_chart switches it while it converts a chart, so pages draw specs with
    st.vega_lite_chart, never Altair objects.
    """
    spec = chart.to_dict()
    config = spec.get("config", {})
    config.pop("view", None)  # Altair's default theme sizes; Streamlit sizes the chart
    if not config:
        spec.pop("config", None)
    return spec


def top_labels(values: pd.Series, keep: int) -> pd.Series:
    """``values`` as text, all but the ``keep`` most common replaced by "other".

    Labels come from record headers that anyone with write access can fill; thousands of
    distinct ones must not make thousands of bars, or rows past Altair's 5,000 inline limit.
    """
    text = values.astype(str)
    common = value_counts_text(values).index[:keep]
    return text.where(text.isin(common), OTHER)


def _histogram(values: pd.Series, bins: np.ndarray, groups: pd.Series | None,
               group_name: str) -> pd.DataFrame:
    """Counts per bin (and group): a small frame Altair draws as bars."""
    frames = []
    grouped = [("all", values)] if groups is None else [
        (str(name), values[groups == name]) for name in groups.dropna().unique()]
    for name, group in grouped:
        counts, edges = np.histogram(group.dropna(), bins=bins)
        frames.append(pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:],
                                    group_name: name, "buyers": counts}))
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["bin_start", "bin_end", group_name, "buyers"])
    return result[result["buyers"] > 0]


def compression_ratio_chart(frame: pd.DataFrame) -> alt.Chart:
    ratios = frame["compression_ratio"]
    top = max(float(ratios.max()) if len(ratios.dropna()) else 1.0, 1.0)
    bins = np.linspace(0, np.ceil(top), 31)
    data = _histogram(ratios, bins, top_labels(frame["codec"], MAX_CODECS), "codec")
    return alt.Chart(data, title="Compression ratio (original ÷ stored)").mark_bar().encode(
        x=alt.X("bin_start:Q", title="compression ratio (×)", bin="binned"),
        x2="bin_end:Q",
        y=alt.Y("buyers:Q", title="buyers", stack=True),
        color=alt.Color("codec:N", title="codec"),
        tooltip=[alt.Tooltip("bin_start:Q", title="from", format=".1f"),
                 alt.Tooltip("bin_end:Q", title="to", format=".1f"), "codec:N", "buyers:Q"],
    ).properties(height=_HEIGHT)


PAIR_BINS = 30  # 30 x 30 cells x (MAX_CODECS + 1) codecs stays under the 5,000-row limit
PAIR_EDGE_QUANTILE = 0.995  # the grid ends here; larger buyers go in the last cell


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
        "codec": top_labels(rows["codec"], MAX_CODECS).to_numpy(),
        "x": np.clip(np.searchsorted(x_edges, original, side="right") - 1, 0, bins - 1),
        "y": np.clip(np.searchsorted(y_edges, stored, side="right") - 1, 0, bins - 1),
        "original": original, "stored": stored,
    }).groupby(["codec", "x", "y"], as_index=False).agg(
        buyers=("original", "size"), original_sum=("original", "sum"),
        stored_sum=("stored", "sum"), stored_min=("stored", "min"),
        stored_max=("stored", "max"), original_min=("original", "min"),
        original_max=("original", "max"))
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


def stored_bytes_chart(frame: pd.DataFrame, threshold_bytes: int) -> alt.LayerChart:
    data = binned_pairs(frame)
    points = alt.Chart(data, title="Original vs stored bytes per buyer").mark_circle(
        opacity=0.7).encode(
        x=alt.X("original_bytes:Q", title="original JSON (bytes)"),
        y=alt.Y("stored_bytes:Q", title="stored in Redis (bytes)"),
        size=alt.Size("buyers:Q", title="buyers",
                      scale=alt.Scale(range=[12, 360], zero=False)),
        color=alt.Color("codec:N", title="codec"),
        tooltip=["codec:N", alt.Tooltip("buyers:Q", format=","),
                 alt.Tooltip("original_min:Q", title="original from (B)", format=","),
                 alt.Tooltip("original_max:Q", title="original to (B)", format=","),
                 alt.Tooltip("stored_min:Q", title="stored from (B)", format=","),
                 alt.Tooltip("stored_max:Q", title="stored to (B)", format=","),
                 alt.Tooltip("compression_ratio:Q", format=".2f", title="ratio")],
    )
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold_bytes],
                                   "label": [f"compression threshold {threshold_bytes:,} B"]})
                     ).mark_rule(strokeDash=[6, 4], color="#555").encode(
        x="threshold:Q", tooltip=["label:N"])
    return alt.layer(points, rule).properties(height=_HEIGHT)


def _edge_capped_bars(values: pd.Series, *, limit: float, at_least: float, step: int,
                      title: str, axis: str, from_title: str) -> alt.Chart:
    """Bars of ``values`` in ``step``-wide bins up to at least ``at_least``; values over
    ``limit`` are counted at it, and the axis title says so."""
    clipped = values.clip(upper=limit)
    top = max(float(clipped.max()) if len(clipped.dropna()) else 0.0, at_least)
    data = _histogram(clipped, np.arange(0, top + 2 * step, step), None, "group")
    if (values > limit).any():
        axis += f" (more than {limit} counted at {limit})"
    return alt.Chart(data, title=title).mark_bar().encode(
        x=alt.X("bin_start:Q", title=axis, bin="binned"),
        x2="bin_end:Q",
        y=alt.Y("buyers:Q", title="buyers"),
        tooltip=[alt.Tooltip("bin_start:Q", title=from_title), "buyers:Q"],
    )


def ttl_chart(frame: pd.DataFrame, config: MemoryConfig) -> alt.LayerChart:
    # A TTL set by hand can be years: counted at the edge.
    bars = _edge_capped_bars(frame["ttl_days"], limit=config.ttl_days_max + 30,
                             at_least=config.ttl_days_max, step=1, title="Days until expiry",
                             axis="days remaining", from_title="days from")
    marks = pd.DataFrame({
        "day": [config.ttl_days_min, config.ttl_days_max, config.ttl_days],
        "label": [f"policy minimum {config.ttl_days_min} d",
                  f"policy maximum {config.ttl_days_max} d",
                  f"default TTL {config.ttl_days} d"],
        "kind": ["policy window", "policy window", "default"],
    })
    rules = alt.Chart(marks).mark_rule(strokeWidth=2, strokeDash=[4, 3]).encode(
        x="day:Q",
        color=alt.Color("kind:N", title="marker",
                        scale=alt.Scale(domain=["policy window", "default"],
                                        range=["#888888", "#2ca02c"])),
        tooltip=["label:N"])
    return alt.layer(rules, bars).properties(height=_HEIGHT)  # bars drawn over the markers


def category_chart(frame: pd.DataFrame, column: str, title: str,
                   colors: dict[str, str] | None = None) -> alt.Chart:
    counts = value_counts_text(frame[column])
    if len(counts) > MAX_CATEGORIES:
        rest = counts.iloc[MAX_CATEGORIES - 1:]
        counts = pd.concat([counts.iloc[:MAX_CATEGORIES - 1], pd.Series(
            {f"{OTHER} ({len(rest):,} values)": int(rest.sum())})])
    counts = counts.rename_axis(column).reset_index(name="buyers")
    color = alt.Color(f"{column}:N", legend=None)
    if colors:
        domain = [c for c in colors if c in set(counts[column])] + sorted(
            set(counts[column]) - set(colors))
        color = alt.Color(f"{column}:N", legend=None, scale=alt.Scale(
            domain=domain, range=[colors.get(c, "#9e9e9e") for c in domain]))
    return alt.Chart(counts, title=title).mark_bar().encode(
        y=alt.Y(f"{column}:N", title=None, sort="-x"),
        x=alt.X("buyers:Q", title="buyers"),
        color=color,
        tooltip=[f"{column}:N", "buyers:Q"],
    ).properties(height=_HEIGHT)


def qualified_chart(frame: pd.DataFrame) -> alt.Chart:
    labels = np.where(frame["is_qualified"], "qualified", "not qualified")
    counts = pd.Series(labels).value_counts().rename_axis("qualification").reset_index(
        name="buyers")
    counts["share"] = counts["buyers"] / max(int(counts["buyers"].sum()), 1)
    return alt.Chart(counts, title="Qualified share").mark_arc(innerRadius=45).encode(
        theta=alt.Theta("buyers:Q"),
        color=alt.Color("qualification:N", title=None,
                        scale=alt.Scale(domain=["qualified", "not qualified"],
                                        range=["#2ca02c", "#c7c7c7"])),
        tooltip=["qualification:N", "buyers:Q", alt.Tooltip("share:Q", format=".0%")],
    ).properties(height=_HEIGHT)


def history_chart(frame: pd.DataFrame, cap: int) -> alt.LayerChart:
    # A header can claim any count: larger ones are counted at the edge.
    bars = _edge_capped_bars(frame["message_count"], limit=cap + 50, at_least=cap, step=5,
                             title="History length", axis="messages kept",
                             from_title="messages from")
    rule = alt.Chart(pd.DataFrame({"cap": [cap], "label": [f"history cap {cap} messages"]})
                     ).mark_rule(color="#d62728", strokeDash=[6, 4]).encode(
        x="cap:Q", tooltip=["label:N"])
    return alt.layer(bars, rule).properties(height=_HEIGHT)
