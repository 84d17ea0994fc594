"""The chart data builders: every buyer counted, the numbers in a cell true to its buyers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard.charts import (
    CODEC_COLORS,
    MAX_CATEGORIES,
    OTHER_COLOR,
    binned_pairs,
    category_chart,
    category_colors,
    compression_ratio_chart,
    expiring_soon_chart,
    history_bins,
    history_chart,
    human_bytes,
    human_durations,
    qualified_chart,
    stored_bytes_chart,
    ttl_chart,
    vega_lite_spec,
)
from memory_core.config import MemoryConfig


def sizes(count: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    original = rng.integers(300, 40_000, count)
    compressed = original > 5120
    stored = np.where(compressed, original // rng.integers(3, 9, count), original + 80)
    return pd.DataFrame({"original_bytes": original, "stored_bytes": stored,
                         "codec": np.where(compressed, "zstd", "none")})


def test_binned_pairs_counts_every_buyer_in_a_bounded_number_of_cells() -> None:
    frame = sizes(100_000)
    cells = binned_pairs(frame, bins=40)
    assert int(cells["buyers"].sum()) == len(frame)
    assert len(cells) <= 40 * 40 * 2
    for codec, group in frame.groupby("codec"):
        mine = cells[cells["codec"] == codec]
        assert int(mine["buyers"].sum()) == len(group)
        assert mine["original_min"].min() == group["original_bytes"].min()
        assert mine["stored_max"].max() == group["stored_bytes"].max()


def test_a_cell_reports_its_buyers_ranges_and_ratio_and_sits_at_its_middle() -> None:
    frame = pd.DataFrame({"original_bytes": [10_000, 10_010, 20_000],
                          "stored_bytes": [2_000, 2_010, 20_080],
                          "codec": ["zstd", "zstd", "none"]})
    cells = binned_pairs(frame, bins=4).set_index("codec")
    zstd = cells.loc["zstd"]
    assert zstd["buyers"] == 2
    assert (zstd["original_min"], zstd["original_max"]) == (10_000, 10_010)
    assert (zstd["stored_min"], zstd["stored_max"]) == (2_000, 2_010)
    assert zstd["compression_ratio"] == pytest.approx(20_010 / 4_010)
    # The grid ends at the 99.5th percentile of each axis and a cell is drawn at its middle.
    x_top = np.quantile([10_000, 10_010, 20_000], 0.995)
    y_top = np.quantile([2_000, 2_010, 20_080], 0.995)
    assert zstd["original_bytes"] == round(x_top / 4 * 2.5)  # middle of the third cell
    assert zstd["stored_bytes"] == round(y_top / 8)  # first cell
    assert cells.loc["none", "buyers"] == 1


def test_one_huge_record_does_not_squash_the_size_grid() -> None:
    frame = sizes(10_000)
    spread = len(binned_pairs(frame))
    huge = pd.DataFrame({"original_bytes": [900_000], "stored_bytes": [200_000],
                         "codec": ["zstd"]})
    cells = binned_pairs(pd.concat([frame, huge], ignore_index=True))
    assert int(cells["buyers"].sum()) == len(frame) + 1
    assert len(cells) >= spread * 0.9  # still spread over the grid, not in 4 cells
    assert cells["original_max"].max() == 900_000  # counted, in the last cell


def test_stray_codec_labels_are_grouped_so_no_chart_exceeds_altairs_row_limit() -> None:
    frame = sizes(20_000)
    frame["codec"] = [f"codec-{i % 300}" for i in range(len(frame))]
    cells = binned_pairs(frame)
    assert set(cells["codec"]) == {"other"}  # not a codec the scan knows: drawn as other
    assert len(CODEC_COLORS) == 5
    assert len(cells) < 5000
    assert vega_lite_spec(stored_bytes_chart(frame, 5120))["layer"]


def test_a_free_text_column_with_thousands_of_values_draws_a_bounded_bar_chart() -> None:
    frame = pd.DataFrame({"persona": [f"persona {i}" for i in range(6000)] + ["buyer"] * 50})
    spec = vega_lite_spec(category_chart(frame, "persona", "Persona mix"))
    (rows,) = spec["datasets"].values()
    assert len(rows) == MAX_CATEGORIES
    assert rows[0] == {"persona": "buyer", "buyers": 50, "color": OTHER_COLOR}
    assert rows[-1]["persona"] == f"other ({6000 - MAX_CATEGORIES + 2:,} values)"
    assert sum(row["buyers"] for row in rows) == 6050


def test_ttl_and_history_charts_count_absurd_values_at_their_edge() -> None:
    config = MemoryConfig()
    frame = pd.DataFrame({"ttl_days": [30.0, 29.5, 3_000_000.0],
                          "message_count": [10, 50, 10**12]})
    ttl = vega_lite_spec(ttl_chart(frame, config))
    history = vega_lite_spec(history_chart(frame, config.max_history_messages))
    for spec, limit in ((ttl, config.ttl_days_max + 30),
                        (history, config.max_history_messages + 50)):
        bars = [rows for rows in spec["datasets"].values() if rows and "buyers" in rows[0]]
        (rows,) = bars
        assert sum(row["buyers"] for row in rows) == 3
        assert max(row["bin_start"] for row in rows) <= limit
        assert f"more than {limit} counted at {limit}" in json.dumps(spec)


def test_binned_pairs_of_no_buyers_is_empty_and_the_chart_still_builds() -> None:
    empty = sizes(0)
    assert binned_pairs(empty).empty
    assert stored_bytes_chart(empty, 5120).to_dict()["layer"]


# issue 10: charts that stay true --------------------------------------------------------------

DAY_MS = 86_400_000


def spec_without_data(spec: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in spec.items() if k != "datasets"})


def dataset(spec: dict[str, Any], column: str) -> list[dict[str, Any]]:
    (rows,) = [rows for rows in spec["datasets"].values() if rows and column in rows[0]]
    return rows


def test_a_label_keeps_its_colour_whatever_the_filter_and_stays_out_of_the_spec() -> None:
    stages = pd.Series(["discovery"] * 5 + ["touring"] * 3 + ["offer"] * 2 + ["![x](http://a.b)"])
    colours = category_colors(stages)  # from the unfiltered column
    everyone = dataset(vega_lite_spec(category_chart(stages.to_frame("journey_stage"),
                                                     "journey_stage", "Journey stage", colours)),
                       "journey_stage")
    only_touring = dataset(vega_lite_spec(category_chart(
        stages[stages == "touring"].to_frame("journey_stage"), "journey_stage", "Journey stage",
        colours)), "journey_stage")
    before = {row["journey_stage"]: row["color"] for row in everyone}
    assert len(set(before.values())) == 4
    assert only_touring == [{"journey_stage": "touring", "buyers": 3,
                             "color": before["touring"]}]
    spec = vega_lite_spec(category_chart(stages.to_frame("journey_stage"), "journey_stage",
                                         "Journey stage", colours))
    assert "![x]" not in spec_without_data(spec)  # a header's label never enters the spec
    assert spec["encoding"]["color"] == {"field": "color", "type": "nominal", "scale": None,
                                         "legend": None}


def test_codec_colours_are_fixed_whatever_the_filter() -> None:
    frame = sizes(3000)
    frame["codec"] = np.where(np.arange(3000) % 3 == 0, "zstd+dict", frame["codec"])
    frame["compression_ratio"] = frame["original_bytes"] / frame["stored_bytes"]

    def scale(rows: pd.DataFrame) -> dict[str, str]:
        color = vega_lite_spec(compression_ratio_chart(rows))["encoding"]["color"]["scale"]
        return dict(zip(color["domain"], color["range"], strict=True))

    everyone = scale(frame)
    assert everyone == {c: CODEC_COLORS[c] for c in ("none", "zstd", "zstd+dict")}
    only_dict = scale(frame[frame["codec"] == "zstd+dict"])
    assert only_dict == {"zstd+dict": everyone["zstd+dict"]}


def count_axes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    parts = [spec, *spec.get("layer", [])]
    return [part["encoding"][channel]["axis"] for part in parts for channel in ("x", "y")
            if part.get("encoding", {}).get(channel, {}).get("field") == "buyers"]


@pytest.mark.parametrize("buyers", [1, 2, 3, 7, 20_000])
def test_count_axes_show_whole_buyers_only(buyers: int) -> None:
    frame = pd.DataFrame({"journey_stage": ["touring"] * buyers,
                          "message_count": [10] * buyers, "ttl_ms": [DAY_MS // 2] * buyers})
    for chart in (category_chart(frame, "journey_stage", "Journey stage"),
                  history_chart(frame, 50), expiring_soon_chart(frame)):
        (axis,) = count_axes(vega_lite_spec(chart))
        assert axis["format"] == ",d" and axis["tickMinStep"] == 1
        assert 1 <= axis["tickCount"] <= min(buyers, 5)  # 1 buyer: ticks 0 and 1, no 0.5


def test_the_size_legend_lists_whole_buyers() -> None:
    spec = vega_lite_spec(stored_bytes_chart(sizes(500), 5120))
    legend = spec["layer"][0]["encoding"]["size"]["legend"]
    assert legend["format"] == ",d" and legend["values"]
    assert all(isinstance(v, int) for v in legend["values"])
    x_axis = spec["layer"][0]["encoding"]["x"]["axis"]
    assert x_axis["format"] == ",d"  # "20,000" bytes: not 20000, nor Vega's "2e+4" for ","


def test_a_few_short_ttls_stay_visible_beside_twenty_thousand_at_day_30() -> None:
    config = MemoryConfig()
    ttl_ms = np.concatenate([np.full(20_000, 30 * DAY_MS - 60_000),
                             np.linspace(HOUR := 3_600_000, 7 * DAY_MS - HOUR, 55).astype(int)])
    frame = pd.DataFrame({"ttl_ms": ttl_ms, "ttl_days": ttl_ms / DAY_MS})
    spec = vega_lite_spec(ttl_chart(frame, config))
    bars = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "bar")
    assert bars["encoding"]["y"]["scale"] == {"type": "symlog"}
    assert bars["encoding"]["y"]["axis"]["values"] == [0, 1, 10, 100, 1000, 10_000]
    rows = dataset(spec, "buyers")
    assert sum(row["buyers"] for row in rows if row["bin_start"] < 7) == 55
    assert spec["title"]["text"] == "Days until expiry" and "log" in spec["title"]["subtitle"]

    soon = vega_lite_spec(expiring_soon_chart(frame))
    rows = dataset(soon, "buyers")
    assert len(rows) == 28 and sum(row["buyers"] for row in rows) == 55  # empty bins drawn
    assert rows[0]["range"] == "under 6 h" and rows[4]["range"] == "1 d to 1 d 6 h"
    assert "55 buyer(s) expire within 7 days" in soon["title"]["subtitle"]
    x_axis = soon["encoding"]["x"]["axis"]
    assert x_axis["values"] == [0, 24, 48, 72, 96, 120, 144, 168]


def test_nothing_expiring_soon_still_draws_a_chart_that_says_so() -> None:
    frame = pd.DataFrame({"ttl_ms": [30 * DAY_MS, -1]})
    spec = vega_lite_spec(expiring_soon_chart(frame))
    assert sum(row["buyers"] for row in dataset(spec, "buyers")) == 0
    assert spec["title"]["subtitle"] == "no buyer expires within 7 days"


def test_history_bins_put_the_cap_at_the_end_of_a_bin() -> None:
    data = history_bins(pd.Series([0, 1, 5, 6, 45, 46, 50, 50, 10**12]), step=5, limit=100,
                        at_least=50)
    rows = {row.messages: (row.bin_start, row.bin_end, row.buyers)
            for row in data.itertuples()}
    assert rows == {"0–5": (0, 5, 3), "6–10": (5, 10, 1), "41–45": (40, 45, 1),
                    "46–50": (45, 50, 3), "96–100": (95, 100, 1)}


def test_the_donut_is_labelled_with_counts_and_shares() -> None:
    frame = pd.DataFrame({"is_qualified": [True] * 3 + [False] * 9})
    spec = vega_lite_spec(qualified_chart(frame))
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert text["encoding"]["text"]["field"] == "label"
    assert text["encoding"]["color"] == {"value": "#222222"}  # not the slice's own colour
    labels = {row["qualification"]: row["label"] for row in dataset(spec, "label")}
    assert labels == {"qualified": "25%", "not qualified": "75%"}
    assert spec["title"] == {"text": "Qualified share",
                             "subtitle": "3 of 12 buyers qualified (25%)"}


def test_durations_and_sizes_read_well_at_every_scale() -> None:
    seconds = [0, 45, 60, 3600, 3660, 86_399, 86_400, 90_000, 30 * 86_400 - 1, np.nan, -1]
    assert list(human_durations(np.array(seconds, dtype=float))) == [
        "0 s", "45 s", "1 min", "1 h", "1 h 1 min", "23 h 59 min", "1 d", "1 d 1 h",
        "29 d 23 h", "", ""]
    assert human_bytes(512) == "512 B"
    assert human_bytes(2048) == "2.0 KiB"
    assert human_bytes(74.3 * 2**20) == "74.3 MiB"
    assert human_bytes(1234.5 * 2**30) == "1.2 TiB"
    assert human_bytes(3 * 2**50) == "3,072.0 TiB"  # the largest unit, thousands separated
