"""The chart data builders: every buyer counted, the numbers in a cell true to its buyers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.charts import binned_pairs, stored_bytes_chart


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


def test_a_cell_reports_the_mean_sizes_ranges_and_ratio_of_its_buyers() -> None:
    frame = pd.DataFrame({"original_bytes": [10_000, 10_010, 20_000],
                          "stored_bytes": [2_000, 2_010, 20_080],
                          "codec": ["zstd", "zstd", "none"]})
    cells = binned_pairs(frame, bins=4).set_index("codec")
    zstd = cells.loc["zstd"]
    assert zstd["buyers"] == 2
    assert (zstd["original_min"], zstd["original_max"]) == (10_000, 10_010)
    assert (zstd["stored_min"], zstd["stored_max"]) == (2_000, 2_010)
    assert zstd["original_bytes"] == 10_005 and zstd["stored_bytes"] == 2_005
    assert zstd["compression_ratio"] == pytest.approx(20_010 / 4_010)
    assert cells.loc["none", "buyers"] == 1


def test_binned_pairs_of_no_buyers_is_empty_and_the_chart_still_builds() -> None:
    empty = sizes(0)
    assert binned_pairs(empty).empty
    assert stored_bytes_chart(empty, 5120).to_dict()["layer"]
