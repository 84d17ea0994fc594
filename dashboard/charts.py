"""Altair charts of the inventory table: pure functions, DataFrame in, chart out.

Data is aggregated in pandas before it reaches Altair, so a chart of 100k buyers ships a
few hundred rows to the browser, not 100k; the original-vs-stored plot bins buyers into
cells rather than drawing (or sampling) one point each.

Charts stay true whatever the filters: a category's colour comes from a map built once
from the unfiltered table (or fixed, for codecs and temperatures) and travels in the data
as a colour value, so "touring" is the same colour with or without a filter, and no label
read from Redis ever becomes part of a spec (titles, scale domains, expressions). Counts
are whole numbers on every axis and legend, durations are read in days, hours and
minutes, and byte sizes use binary units said as such (KiB, MiB).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from memory_core.config import MemoryConfig
from memory_core.inventory import value_counts_text
from memory_core.snapshot import (
    DAY_SECONDS,
    HISTORY_STEP,
    MAX_CATEGORIES,
    OTHER,
    PAIR_BINS,
    PAIR_EDGE_QUANTILE,
    SOON_HOURS,
    SOON_STEP_HOURS,
    ChartInputs,
    binned_pairs,
    category_counts,
    codec_labels,
    expiring_counts,
    history_histogram,
    ratio_histogram,
    ttl_chart_days,
    ttl_histogram,
)

TEMPERATURE_COLORS = {"hot": "#d62728", "warm": "#ff7f0e", "cold": "#1f77b4",
                      "unknown": "#9e9e9e"}
OTHER_COLOR = "#9e9e9e"
#: Codec labels come from a fixed set (the scan refuses unknown codecs), so their colours
#: are fixed too; anything else is drawn as "other".
#: What alt.layer(...).properties(...) is typed as.
LayeredChart = alt.LayerChart | alt.FacetChart

CODEC_COLORS = {"none": "#9ecae9", "zstd": "#4c78a8", "zstd+dict": "#54a24b",
                "none+dict": "#72b7b2", OTHER: OTHER_COLOR}
#: Colours handed out to the categories of a column in sorted order (no grey: grey is
#: "other"); the 21st category reuses the first colour.
CATEGORY_PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b",
                    "#b279a2", "#ff9da6", "#9d755d", "#17becf", "#9ecae9", "#ffbf79",
                    "#88d27a", "#ff9d98", "#83bcb6", "#f2cf5b", "#d6a5c9", "#fcbfd2",
                    "#d8b5a5", "#bcbd22")
_HEIGHT = 240
#: Vega's format for counts: whole numbers with thousands separators ("20,000", never
#: "0.5" or "1.000000").
COUNT_FORMAT = ",d"
#: Byte counts on an axis: "12,000", not Vega's default "1.2e+4" for a bare ",".
BYTES_FORMAT = ",d"
__all__ = ["MAX_CATEGORIES", "OTHER", "PAIR_BINS", "PAIR_EDGE_QUANTILE", "binned_pairs",
           "codec_labels"]  # the binning lives in memory_core.snapshot, shared with it


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


# units ------------------------------------------------------------------------------------

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(value: float) -> str:
    """A byte count in binary units, said as such: "512 B", "70.9 MiB", "1,234.5 GiB"."""
    for unit in _BYTE_UNITS:
        if abs(value) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_durations(seconds: pd.Series | np.ndarray) -> pd.Series:
    """Durations as text readable at every scale: "45 s", "12 min", "3 h 5 min", "29 d 23 h".

    One hour is "1 h", not "0.0 days". Missing or negative values (no TTL) are "".
    Vectorised string building: a thousand rows cost about a millisecond.
    """
    values = pd.Series(np.asarray(seconds, dtype=np.float64))
    valid = values.notna() & (values >= 0)
    whole = values.where(valid, 0).astype(np.int64)
    days, hours = whole // DAY_SECONDS, whole % DAY_SECONDS // 3600
    minutes, secs = whole % 3600 // 60, whole % 60
    text_days, text_hours = days.astype(str) + " d", hours.astype(str) + " h"
    text_minutes = minutes.astype(str) + " min"
    text = np.select(
        [whole < 60, whole < 3600, whole < DAY_SECONDS],
        [secs.astype(str) + " s", text_minutes,
         text_hours.where(minutes == 0, text_hours + " " + text_minutes)],
        default=text_days.where(hours == 0, text_days + " " + text_hours))
    return pd.Series(np.where(valid, text, ""), index=getattr(seconds, "index", None),
                     dtype=object)


def duration_ranges(start_seconds: pd.Series, end_seconds: pd.Series) -> np.ndarray:
    """Bin ranges in words for tooltips: "under 1 d", "6 h to 12 h", "29 d to 30 d"."""
    start, end = human_durations(start_seconds), human_durations(end_seconds)
    return np.where(np.asarray(start_seconds) <= 0, "under " + end,
                    start + " to " + end)


# colours ----------------------------------------------------------------------------------

def category_colors(values: pd.Series) -> dict[str, str]:
    """A colour per label of an (unfiltered) column, handed out in sorted order.

    Built from every buyer, not the filtered ones, so a filter never recolours a label.
    """
    labels = sorted(value_counts_text(values).index)
    return {label: CATEGORY_PALETTE[i % len(CATEGORY_PALETTE)] for i, label in
            enumerate(labels)}


def _codec_color(labels: pd.Series) -> alt.Color:
    """Codec colours with a legend: only the codecs present, each in its fixed colour.

    The domain holds codec labels only, which come from a fixed set, never free text.
    """
    present = set(labels)
    domain = [codec for codec in CODEC_COLORS if codec in present]
    return alt.Color("codec:N", title="codec", scale=alt.Scale(
        domain=domain, range=[CODEC_COLORS[codec] for codec in domain]))


# axes and legends of counts ---------------------------------------------------------------

def count_axis(title: str, top: float) -> alt.Axis:
    """An axis of buyers: whole numbers only (no tick at 0.5 buyers), thousands separated.

    ``tickMinStep`` keeps Vega from stepping under 1; the tick count is capped by the
    largest count as well, which holds even where a Vega-Lite version ignores the step.
    """
    return alt.Axis(title=title, format=COUNT_FORMAT, tickMinStep=1,
                    tickCount=int(min(5, max(1, top))))


def log_count_ticks(top: float) -> list[int]:
    """0, 1, 10, 100, ... up to ``top``: the ticks of a log-like count axis."""
    ticks, power = [0, 1], 10
    while power <= top:
        ticks.append(power)
        power *= 10
    return ticks


def whole_legend_values(low: float, high: float, count: int = 4) -> list[int]:
    """Up to ``count`` distinct whole numbers from ``low`` to ``high`` for a size legend."""
    if not np.isfinite(low) or not np.isfinite(high):
        return []
    return sorted({int(v) for v in np.round(np.linspace(low, high, count))})


# histograms -------------------------------------------------------------------------------

def compression_ratio_chart(frame: pd.DataFrame) -> alt.Chart:
    return draw_ratio(ratio_histogram(frame))


def draw_ratio(data: pd.DataFrame) -> alt.Chart:
    """Buyers per compression-ratio bin, stacked by codec (from :func:`ratio_histogram`)."""
    tallest = int(data.groupby("bin_start")["buyers"].sum().max()) if len(data) else 0
    return alt.Chart(data, title="Compression ratio (original ÷ stored)").mark_bar().encode(
        x=alt.X("bin_start:Q", title="compression ratio (×)", bin="binned"),
        x2="bin_end:Q",
        y=alt.Y("buyers:Q", stack=True, axis=count_axis("buyers", tallest)),
        color=_codec_color(data["codec"]),
        tooltip=[alt.Tooltip("bin_start:Q", title="from", format=".1f"),
                 alt.Tooltip("bin_end:Q", title="to", format=".1f"), "codec:N",
                 alt.Tooltip("buyers:Q", format=COUNT_FORMAT)],
    ).properties(height=_HEIGHT)


def stored_bytes_chart(frame: pd.DataFrame, threshold_bytes: int) -> LayeredChart:
    return draw_bytes(binned_pairs(frame), threshold_bytes)


def draw_bytes(data: pd.DataFrame, threshold_bytes: int) -> LayeredChart:
    """The size grid's cells (from :func:`binned_pairs`) and the compression threshold."""
    counts = data["buyers"]
    legend = alt.Legend(title="buyers", format=COUNT_FORMAT, tickMinStep=1,
                        values=whole_legend_values(counts.min(), counts.max())
                        if len(counts) else [])
    points = alt.Chart(data, title="Original vs stored bytes per buyer").mark_circle(
        opacity=0.7).encode(
        x=alt.X("original_bytes:Q", title="original JSON (bytes)",
                axis=alt.Axis(format=BYTES_FORMAT)),
        y=alt.Y("stored_bytes:Q", title="stored in Redis (bytes)",
                axis=alt.Axis(format=BYTES_FORMAT)),
        size=alt.Size("buyers:Q", legend=legend,
                      scale=alt.Scale(range=[12, 360], zero=False)),
        color=_codec_color(data["codec"]),
        tooltip=["codec:N", alt.Tooltip("buyers:Q", format=COUNT_FORMAT),
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


# expiry -----------------------------------------------------------------------------------

def ttl_chart(frame: pd.DataFrame, config: MemoryConfig) -> LayeredChart:
    """Buyers per day of remaining TTL, counted on a log-like (symlog) scale.

    With 20,000 buyers at day 30, a linear axis draws the 55 expiring this week as
    nothing at all; on symlog one buyer is still a visible bar and 0 stays 0.
    A TTL set by hand can be years: those are counted at the edge, and the axis says so.
    """
    data, over_limit = ttl_histogram(frame["ttl_days"], config)
    return draw_ttl(data, over_limit, config)


def draw_ttl(data: pd.DataFrame, over_limit: bool, config: MemoryConfig) -> LayeredChart:
    """Days-until-expiry bars (from :func:`ttl_histogram`) over the policy markers."""
    limit = ttl_chart_days(config)
    data = data.copy()
    data["range"] = duration_ranges(data["bin_start"] * DAY_SECONDS,
                                    data["bin_end"] * DAY_SECONDS)
    axis = "days remaining"
    if over_limit:
        axis += f" (more than {limit} counted at {limit})"
    tallest = int(data["buyers"].max()) if len(data) else 0
    bars = alt.Chart(data).mark_bar(binSpacing=0).encode(  # a day is a few pixels wide
        x=alt.X("bin_start:Q", title=axis, bin="binned"),
        x2="bin_end:Q",
        y=alt.Y("buyers:Q", scale=alt.Scale(type="symlog"),
                axis=alt.Axis(title="buyers (log scale)", format=COUNT_FORMAT,
                              values=log_count_ticks(tallest), labelOverlap="greedy")),
        tooltip=[alt.Tooltip("range:N", title="expires in"),
                 alt.Tooltip("buyers:Q", format=COUNT_FORMAT)],
    )
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
    return alt.layer(rules, bars).properties(  # bars drawn over the markers
        height=_HEIGHT, title=alt.TitleParams(
            "Days until expiry", subtitle="buyer counts on a log scale: one buyer stays visible"))


def expiring_soon_chart(frame: pd.DataFrame) -> alt.Chart:
    """Buyers expiring in the next 7 days, per 6 hours: the short TTLs, large enough to read.

    Every bin is drawn, empty ones at zero, so the chart shows "none" rather than nothing.
    """
    return draw_expiring(expiring_counts(frame["ttl_ms"]))


def draw_expiring(counts: np.ndarray) -> alt.Chart:
    """Buyers expiring per 6 hours (from :func:`expiring_counts`), empty bins at zero."""
    edges = np.arange(0, SOON_HOURS + SOON_STEP_HOURS, SOON_STEP_HOURS)
    data = pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "buyers": counts})
    data["range"] = duration_ranges(data["bin_start"] * 3600, data["bin_end"] * 3600)
    soon = int(counts.sum())
    subtitle = (f"{soon:,} buyer(s) expire within 7 days, per {SOON_STEP_HOURS} hours"
                if soon else "no buyer expires within 7 days")
    return alt.Chart(data, title=alt.TitleParams("Expiring in the next 7 days",
                                                 subtitle=subtitle)).mark_bar().encode(
        x=alt.X("bin_start:Q", bin="binned", scale=alt.Scale(domain=[0, SOON_HOURS]),
                axis=alt.Axis(title="time until expiry", values=list(range(0, SOON_HOURS + 1,
                                                                           24)),
                              labelExpr="datum.value == 0 ? 'now' : datum.value / 24 + ' d'")),
        x2="bin_end:Q",
        y=alt.Y("buyers:Q", axis=count_axis("buyers", int(counts.max(initial=0)))),
        color=alt.value("#e45756"),
        tooltip=[alt.Tooltip("range:N", title="expires in"),
                 alt.Tooltip("buyers:Q", format=COUNT_FORMAT)],
    ).properties(height=_HEIGHT)


# categories -------------------------------------------------------------------------------

def category_chart(frame: pd.DataFrame, column: str, title: str,
                   colors: Mapping[str, str] | None = None) -> alt.Chart:
    """Buyers per label, most common first; ``colors`` maps a label to its colour.

    The colour is a column of the data drawn as is (``scale=None``): a label keeps its
    colour whatever else is shown, and labels (free text from headers) stay out of the
    spec. Labels without a colour, and the "other" bar, are grey.
    """
    return draw_category(category_counts(frame[column]), column, title, colors)


def draw_category(counts: pd.Series, column: str, title: str,
                  colors: Mapping[str, str] | None = None) -> alt.Chart:
    """Bars of buyers per label (from :func:`category_counts`), coloured from ``colors``."""
    rows = counts.rename_axis(column).reset_index(name="buyers")
    palette = colors or {}
    rows["color"] = [palette.get(label, OTHER_COLOR) for label in rows[column]]  # <= 12
    tallest = int(rows["buyers"].max()) if len(rows) else 0
    return alt.Chart(rows, title=title).mark_bar().encode(
        y=alt.Y(f"{column}:N", title=None, sort="-x"),
        x=alt.X("buyers:Q", axis=count_axis("buyers", tallest)),
        color=alt.Color("color:N", scale=None, legend=None),
        tooltip=[f"{column}:N", alt.Tooltip("buyers:Q", format=COUNT_FORMAT)],
    ).properties(height=_HEIGHT)


QUALIFIED_COLORS = {"qualified": "#2ca02c", "not qualified": "#c7c7c7"}


def qualified_chart(frame: pd.DataFrame) -> LayeredChart:
    """The qualified share as a donut, readable without hovering.

    Each slice carries its share; the subtitle says how many of how many. Labels outside
    the ring were clipped in a narrow column, so they stay on it.
    """
    return draw_qualified(int(frame["is_qualified"].sum()), len(frame))


def draw_qualified(qualified: int, total: int) -> LayeredChart:
    """The donut of ``qualified`` of ``total`` buyers."""
    counts = pd.DataFrame({"qualification": ["not qualified", "qualified"],
                           "buyers": [total - qualified, qualified]})
    counts = counts[counts["buyers"] > 0].sort_values(
        "buyers", ascending=False, kind="stable").reset_index(drop=True)
    total = int(counts["buyers"].sum())
    counts["share"] = counts["buyers"] / max(total, 1)
    counts["label"] = (counts["share"] * 100).round().astype(int).astype(str) + "%"
    qualified = int(counts.loc[counts["qualification"] == "qualified", "buyers"].sum())
    title = alt.TitleParams("Qualified share", subtitle=(
        f"{qualified:,} of {total:,} buyers qualified ({qualified / max(total, 1):.0%})"))
    base = alt.Chart(counts).encode(
        theta=alt.Theta("buyers:Q", stack=True),
        color=alt.Color("qualification:N", title=None,
                        scale=alt.Scale(domain=list(QUALIFIED_COLORS),
                                        range=list(QUALIFIED_COLORS.values()))),
        order=alt.Order("qualification:N"),
        tooltip=["qualification:N", alt.Tooltip("buyers:Q", format=COUNT_FORMAT),
                 alt.Tooltip("share:Q", format=".0%")],
    )
    arcs = base.mark_arc(innerRadius=45, outerRadius=85)
    # The colour channel would paint each label in its own slice's colour: override it.
    text = base.mark_text(radius=65, fontSize=12, fontWeight="bold").encode(
        text="label:N", color=alt.value("#222222"))
    return alt.layer(arcs, text).properties(height=_HEIGHT, title=title)


def history_bins(values: pd.Series, *, step: int, limit: int, at_least: int) -> pd.DataFrame:
    """Message counts in bins of ``step`` closed on the right: 46-50 ends at 50.

    Counts are whole numbers, so the bin holding exactly the cap ends at the cap line
    instead of starting there (a bar from 50 to 55 read as "50 to 54 messages", past the
    cap). The first bin also holds 0. Values over ``limit`` are counted at it.
    """
    return _with_message_labels(history_histogram(values, step=step, limit=limit,
                                                  at_least=at_least))


def _with_message_labels(data: pd.DataFrame) -> pd.DataFrame:
    """The bins with their tooltip text, "1–5", "46–50" (the first bin holds 0)."""
    data = data.copy()
    starts = data["bin_start"].to_numpy(dtype=np.float64)
    first = np.where(starts == 0, 0, starts + 1).astype(int)
    data["messages"] = [f"{low}–{int(high)}" for low, high in zip(first, data["bin_end"],
                                                                  strict=True)]
    return data


def history_chart(frame: pd.DataFrame, cap: int) -> LayeredChart:
    # A header can claim any count: larger ones are counted at the edge.
    limit = cap + 50
    data = history_histogram(frame["message_count"], step=HISTORY_STEP, limit=limit,
                             at_least=cap)
    return draw_history(data, bool((frame["message_count"] > limit).any()), cap)


def draw_history(data: pd.DataFrame, over_limit: bool, cap: int) -> LayeredChart:
    """History-length bars (from :func:`history_histogram`) and the cap line."""
    limit = cap + 50
    data = _with_message_labels(data)
    axis = "messages kept"
    if over_limit:
        axis += f" (more than {limit} counted at {limit})"
    tallest = int(data["buyers"].max()) if len(data) else 0
    bars = alt.Chart(data, title="History length").mark_bar().encode(
        x=alt.X("bin_start:Q", title=axis, bin="binned"),
        x2="bin_end:Q",
        y=alt.Y("buyers:Q", axis=count_axis("buyers", tallest)),
        tooltip=[alt.Tooltip("messages:N", title="messages"),
                 alt.Tooltip("buyers:Q", format=COUNT_FORMAT)],
    )
    rule = alt.Chart(pd.DataFrame({"cap": [cap], "label": [f"history cap {cap} messages"]})
                     ).mark_rule(color="#d62728", strokeDash=[6, 4]).encode(
        x="cap:Q", tooltip=["label:N"])
    return alt.layer(bars, rule).properties(height=_HEIGHT)


def draw_charts(inputs: ChartInputs, config: MemoryConfig,
                colours: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Every overview chart's spec from binned inputs: a fresh scan's or a snapshot's."""
    categories = inputs.categories
    built: dict[str, alt.TopLevelMixin] = {
        "ttl": draw_ttl(inputs.ttl, inputs.ttl_over_limit, config),
        "expiring": draw_expiring(inputs.expiring),
        "ratio": draw_ratio(inputs.ratio),
        "bytes": draw_bytes(inputs.pairs, config.compress_threshold_bytes),
        "codec": draw_category(categories["codec"], "codec", "Codec mix", colours["codec"]),
        "temperature": draw_category(categories["temperature"], "temperature",
                                     "Temperature mix", colours["temperature"]),
        "qualified": draw_qualified(inputs.qualified, inputs.buyers),
        "history": draw_history(inputs.history, inputs.history_over_limit,
                                config.max_history_messages),
        "persona": draw_category(categories["persona"], "persona", "Persona mix",
                                 colours["persona"]),
        "stage": draw_category(categories["journey_stage"], "journey_stage",
                               "Journey stage", colours["journey_stage"]),
        "schema": draw_category(categories["schema_version"], "schema_version",
                                "Schema versions", colours["schema_version"]),
    }
    return {name: vega_lite_spec(chart) for name, chart in built.items()}
