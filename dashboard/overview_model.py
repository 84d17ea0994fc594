"""Everything the overview draws, computed once per scan and filter choice.

The page is re-run on every interaction and by every session; with 100k buyers the
filtering, counting and chart building take a few hundred milliseconds, so the result is
built here as plain data and cached by (scan, filters) in :mod:`dashboard.resources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import altair as alt
import pandas as pd

from dashboard import charts
from memory_core.admin import frame_for_export
from memory_core.config import MemoryConfig
from memory_core.inventory import (
    PROBLEM_STATUSES,
    STATUS_OK,
    display_id,
    problem_records,
    summarize_inventory,
)

TABLE_ROWS = 1000
FILTER_COLUMNS = ("temperature", "persona", "journey_stage")


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
    table: pd.DataFrame  # every matching buyer, newest first (the CSV)
    shown: pd.DataFrame  # the first TABLE_ROWS of it, with a link column


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


def build_charts(buyers: pd.DataFrame, config: MemoryConfig) -> dict[str, dict[str, Any]]:
    if buyers.empty:
        return {}
    built: dict[str, alt.TopLevelMixin] = {
        "ratio": charts.compression_ratio_chart(buyers),
        "bytes": charts.stored_bytes_chart(buyers, config.compress_threshold_bytes),
        "ttl": charts.ttl_chart(buyers, config),
        "temperature": charts.category_chart(buyers, "temperature", "Temperature mix",
                                             charts.TEMPERATURE_COLORS),
        "persona": charts.category_chart(buyers, "persona", "Persona mix"),
        "stage": charts.category_chart(buyers, "journey_stage", "Journey stage"),
        "qualified": charts.qualified_chart(buyers),
        "history": charts.history_chart(buyers, config.max_history_messages),
        "schema": charts.category_chart(buyers, "schema_version", "Schema versions"),
        "codec": charts.category_chart(buyers, "codec", "Codec mix"),
    }
    return {name: charts.vega_lite_spec(chart) for name, chart in built.items()}


def build_overview(frame: pd.DataFrame, filters: Filters, config: MemoryConfig) -> OverviewModel:
    buyers = apply_filters(frame, filters)
    problems = problem_records(frame)
    unreadable = int(problems["status"].isin(PROBLEM_STATUSES).sum())
    table = frame_for_export(buyers).sort_values("last_interaction", ascending=False)
    shown = table.head(TABLE_ROWS).assign(
        contact_id=lambda d: d["contact_id"].map(display_id),
        open=lambda d: "buyer?contact_id=" + d["contact_id"].map(quote))
    return OverviewModel(
        buyers=len(buyers), report=summarize_inventory(buyers), unreadable=unreadable,
        legacy=len(problems) - unreadable, problems=problems,
        charts=build_charts(buyers, config), bytes_note=bytes_note(config),
        table=table, shown=shown)


def bytes_note(config: MemoryConfig) -> str:
    threshold = config.compress_threshold_bytes
    return (f"Every buyer counted: a circle is the buyers of one codec in one size cell, "
            f"sized by their number (hover for their real sizes). Codec none: stored "
            f"uncompressed (JSON up to the {threshold:,} B threshold, dashed line).")
