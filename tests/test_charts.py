"""The chart data builders: every buyer counted, the numbers in a cell true to its buyers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dashboard.charts import (
    MAX_CATEGORIES,
    MAX_CODECS,
    binned_pairs,
    category_chart,
    history_chart,
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
    assert cells["codec"].nunique() <= MAX_CODECS + 1 and "other" in set(cells["codec"])
    assert len(cells) < 5000
    assert vega_lite_spec(stored_bytes_chart(frame, 5120))["layer"]


def test_a_free_text_column_with_thousands_of_values_draws_a_bounded_bar_chart() -> None:
    frame = pd.DataFrame({"persona": [f"persona {i}" for i in range(6000)] + ["buyer"] * 50})
    spec = vega_lite_spec(category_chart(frame, "persona", "Persona mix"))
    (rows,) = spec["datasets"].values()
    assert len(rows) == MAX_CATEGORIES
    assert rows[0] == {"persona": "buyer", "buyers": 50}
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
