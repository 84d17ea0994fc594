"""The overview folded while the scan streams (memory_core.breakdown) and the buyer list
read from Redis (memory_core.listing), checked against the full table they replace.

On the private redis-server and the private cluster: seeded buyers of every temperature,
persona and stage, QA seeds, keys without a TTL, short TTLs and a corrupt key, folded in
small chunks so that every table is merged many times.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from memory_core import breakdown
from memory_core.breakdown import (
    LIST_ROWS,
    MAX_FILTER_LABELS,
    OTHER_LABELS,
    SAMPLE_IDS,
    BreakdownFold,
    BuyerFilter,
    scan_overview,
    size_bin_floor,
    size_bins,
)
from memory_core.config import MemoryConfig
from memory_core.inventory import (
    BUYER_ORDERS,
    ORDER_EXPIRING,
    ORDER_LARGEST,
    ORDER_RECENT,
    STATUS_OK,
    find_buyers,
    scan_summaries,
    summarize_inventory,
)
from memory_core.listing import ids_starting_with, list_buyers, scan_match
from memory_core.record import SEPARATOR
from memory_core.seeding import SeedOptions, generate_buyers
from memory_core.snapshot import chart_inputs
from memory_core.store import SyncBuyerConversationMemory

BUYERS = 360
HOUR_MS = 3_600_000
FILTERS = [
    BuyerFilter(),
    BuyerFilter(temperatures=("hot",)),
    BuyerFilter(hide_qa=True),
    BuyerFilter(temperatures=("warm", "cold"), hide_qa=True),
]


@pytest.fixture
def store(any_real_url: str) -> Iterator[SyncBuyerConversationMemory]:
    """A flushed store with generated buyers (some QA seeds), no-TTL and soon-expiring
    keys, a few buyers under other ids, and one corrupt key."""
    with SyncBuyerConversationMemory.from_url(any_real_url) as memory:
        options = SeedOptions(count=BUYERS, seed=11, ttl_days_range=(1, 60),
                              history_range=(1, 60))
        items = [buyer.as_save_item(memory.ttl_seconds_for(None))
                 for buyer in generate_buyers(options)]
        real = [(f"contact-2026-{n:03d}", state, ttl, when)
                for n, (_, state, ttl, when) in enumerate(items[:60])]
        for _, state, _, _ in real:  # these are real buyers, not QA seeds
            state.pop("qa_seed", None)
        assert memory.save_many(items[60:] + real) == BUYERS
        rng = random.Random(3)
        for contact_id, *_ in rng.sample(real, 8):
            memory.client.persist(memory.key_for(contact_id))
        for n, (contact_id, *_) in enumerate(rng.sample(items[60:], 6)):
            memory.client.pexpire(memory.key_for(contact_id), (n + 1) * HOUR_MS)
        memory.client.set(memory.key_for("broken"), b"\x00 not a record")
        yield memory


def filtered(frame: pd.DataFrame, chosen: BuyerFilter) -> pd.DataFrame:
    return frame[chosen.mask(frame)]


def categories(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.items()}


def test_folded_figures_equal_the_tables_for_every_filter(
        store: SyncBuyerConversationMemory) -> None:
    scan = scan_overview(store, chunk_rows=50)  # merged eight times
    frame = scan_summaries(store)
    assert scan.report["total"] == len(frame) == BUYERS + 1
    assert scan.report["corrupt"] == 1 and len(scan.problems) == 1
    personas = scan.breakdown.options()["persona"]
    assert len(personas) > 2
    for chosen in [*FILTERS, BuyerFilter(personas=tuple(personas[:2]), stages=("touring",))]:
        rows = filtered(frame, chosen)
        expected = chart_inputs(rows, store.config)
        report, folded = scan.breakdown.figures(chosen)
        assert folded.buyers == expected.buyers == report["buyers"] == len(rows), chosen
        assert folded.qualified == expected.qualified
        for name in ("ttl", "history"):
            pd.testing.assert_frame_equal(getattr(folded, name).reset_index(drop=True),
                                          getattr(expected, name).reset_index(drop=True),
                                          check_dtype=False, obj=f"{name} of {chosen}")
        order = ["codec", "bin_start"]
        pd.testing.assert_frame_equal(
            folded.ratio.sort_values(order).reset_index(drop=True),
            expected.ratio.sort_values(order).reset_index(drop=True), check_dtype=False,
            obj=f"ratio of {chosen}, ratios {sorted(rows['compression_ratio'].round(4))}")
        assert list(folded.expiring) == list(expected.expiring)
        assert (folded.ttl_over_limit, folded.history_over_limit) == (
            expected.ttl_over_limit, expected.history_over_limit)
        for column, counts in expected.categories.items():
            assert categories(folded.categories[column]) == categories(counts), column
        # the size grid: every buyer in it, per codec; each cell's sizes as its buyers'
        assert (folded.pairs.groupby("codec")["buyers"].sum().to_dict()
                == expected.pairs.groupby("codec")["buyers"].sum().to_dict())
        assert (folded.pairs["original_min"] <= folded.pairs["original_max"]).all()
        assert folded.pairs["stored_max"].max() == rows["stored_bytes"].max()
        assert folded.pairs["original_min"].min() == rows["original_bytes"].min()
        table = summarize_inventory(rows)
        for name in ("by_temperature", "by_persona", "by_journey_stage", "by_codec",
                     "by_schema_version", "stored_bytes", "original_bytes",
                     "compression_ratio", "qualified", "stored_bytes_by_dictionary"):
            assert report[name] == table[name], name
        assert report["ttl"] == table["ttl"]


def test_every_filter_value_is_offered_and_labels_keep_their_colour_rank(
        store: SyncBuyerConversationMemory) -> None:
    scan = scan_overview(store, chunk_rows=50)
    ok = scan_summaries(store).query("status == @STATUS_OK")
    for column, values in scan.breakdown.options().items():
        assert values == sorted(ok[column].astype(str).unique()), column
    ranks = scan.breakdown.label_ranks()
    assert ranks["persona"] == {label: rank for rank, label in
                                enumerate(sorted(ok["persona"].astype(str).unique()))}


def test_size_bins_are_exact_below_32_then_sixteen_per_doubling() -> None:
    values = np.array([0, 1, 31, 32, 33, 63, 64, 65, 1000, 4095, 4096, 2**31 - 1, 2**31,
                       *random.Random(5).sample(range(2**40), 2000)], dtype=np.int64)
    bins = size_bins(values)
    assert list(bins[:3]) == [0, 1, 31]
    floors = size_bin_floor(bins)
    above = size_bin_floor(bins + 1)
    assert (floors <= values).all() and (values < above).all()
    big = values >= 32
    assert ((above[big] - floors[big]) / floors[big] <= 1 / 16).all()
    ordered = np.sort(values)
    assert (np.diff(size_bins(ordered)) >= 0).all()  # monotone: a larger size, a later bin


def chunk_of(count: int, labels: Any, config: MemoryConfig, seed: int = 0) -> pd.DataFrame:
    """A scan chunk (derived columns included) of ``count`` made-up readable buyers."""
    rng = np.random.default_rng(seed)
    stored = rng.integers(200, 20_000, count)
    ttl_ms = rng.integers(-1, 90 * 86_400_000, count)
    return pd.DataFrame({
        "contact_id": [f"c-{seed}-{n}" for n in range(count)], "status": STATUS_OK,
        "temperature": pd.Categorical(rng.choice(["hot", "warm", "cold"], count)),
        "persona": pd.Categorical(labels(count, rng)),
        "journey_stage": pd.Categorical(labels(count, rng)),
        "qa_seed": rng.random(count) < 0.1, "is_qualified": rng.random(count) < 0.5,
        "codec": pd.Categorical(rng.choice(["zstd", "none"], count)),
        "schema_version": pd.Categorical(labels(count, rng)),
        "key_id": "none", "stored_bytes": stored, "original_bytes": stored * 3,
        "compression_ratio": 3.0, "message_count": rng.integers(0, 50, count),
        "ttl_ms": ttl_ms, "ttl_days": np.where(ttl_ms >= 0, ttl_ms / 86_400_000, np.nan),
        "expires_at": pd.NaT, "last_interaction": pd.NaT,
        "last_interaction_epoch": rng.integers(0, 2**31, count), "revision": 1,
    })


def test_what_the_fold_holds_grows_with_cells_and_bins_not_buyers() -> None:
    config = MemoryConfig()
    fold = BreakdownFold(config)

    def some(count: int, rng: np.random.Generator) -> Any:
        return rng.choice(["a", "b", "c", "d"], count)

    chunk = chunk_of(5000, some, config)
    fold.add(chunk.copy())
    held = {name: len(table) for name, table in fold.result().tables.items()}
    for _ in range(9):  # ten times the buyers, in the very same bins: not one row more
        fold.add(chunk.copy())
    assert {name: len(table) for name, table in fold.result().tables.items()} == held
    for seed in range(1, 20):  # other buyers: rows up to the cells x bins bound only
        fold.add(chunk_of(5000, some, config, seed))
    result = fold.result()
    assert result.buyers == 145_000
    cells = len(result.cells)
    assert cells <= 3 * 4 * 4 * 2
    bounds = {"totals": cells, "ttl": cells * (config.ttl_days_max + 32) * 2,
              "soon": cells * 168, "history": cells * 50, "labels": cells * (2 + 4),
              "ratio": cells * 2}
    for name, bound in bounds.items():
        assert len(result.tables[name]) <= bound, name
    assert len(result.tables["pairs"]) < 145_000 // 5  # fine size cells, not buyers
    assert all(len(rows) <= LIST_ROWS for rows in result.first.values())


def test_hostile_labels_are_counted_under_one_label_past_the_cap() -> None:
    config = MemoryConfig()
    fold = BreakdownFold(config, max_cells=300)

    def unique(count: int, rng: np.random.Generator) -> Any:
        return [f"label-{rng.integers(0, 10**9)}" for _ in range(count)]

    for seed in range(4):
        fold.add(chunk_of(2000, unique, config, seed))
    result = fold.result()
    assert result.capped and result.buyers == 8000  # every buyer still counted
    assert len(result.cells) <= 300 + 2  # the overflow cell, with and without QA seeds
    options = result.options()
    assert len(options["persona"]) <= MAX_FILTER_LABELS
    assert OTHER_LABELS not in options["persona"]  # not a label to filter on
    assert OTHER_LABELS in set(result.cells["persona"])  # but the charts count them
    assert len(result.tables["labels"]) <= (len(result.cells) + 2) * 2 * (1000 + 1)
    report, inputs = result.figures()
    assert report["buyers"] == inputs.buyers == 8000


def test_past_the_cell_cap_a_temperature_still_counts_every_buyer() -> None:
    """Regression: combinations past the cap shared one cell with every label counted as
    "(other labels)", so a temperature first seen after the cap had 0 buyers."""
    config = MemoryConfig()
    fold = BreakdownFold(config, max_cells=5)

    def unique(count: int, rng: np.random.Generator) -> Any:
        return [f"label-{rng.integers(0, 10**9)}" for _ in range(count)]

    first = chunk_of(300, unique, config)
    first["temperature"] = pd.Categorical(["cold"] * 300)
    later = chunk_of(200, unique, config, seed=1)
    later["temperature"] = pd.Categorical(["hot"] * 150 + ["warm"] * 50)
    fold.add(first)
    fold.add(later)
    result = fold.result()
    assert result.capped and result.buyers == 500
    assert result.options()["temperature"] == ["cold", "hot", "warm"]
    for temperature, buyers in (("hot", 150), ("warm", 50), ("cold", 300)):
        report, inputs = result.figures(BuyerFilter(temperatures=(temperature,)))
        assert report["buyers"] == inputs.buyers == buyers, temperature
    # the combinations told apart, plus an overflow cell per temperature and QA flag
    assert len(result.cells) <= 5 + 3 * 2


def test_codec_and_schema_labels_past_their_cap_do_not_flag_the_filters() -> None:
    config = MemoryConfig()
    fold = BreakdownFold(config)

    def few(count: int, rng: np.random.Generator) -> Any:
        return rng.choice(["a", "b"], count)

    chunk = chunk_of(3000, few, config)
    chunk["schema_version"] = pd.Categorical([f"v{n}" for n in range(3000)])
    fold.add(chunk)
    result = fold.result()
    assert not result.capped  # personas, stages and temperatures are all told apart
    assert OTHER_LABELS in result.report()["by_schema_version"]


@pytest.mark.parametrize("ttl_days_max", [30, 90, 365])
def test_ttl_buckets_and_expiry_counts_equal_the_tables_whatever_the_ttl_limit(
        ttl_days_max: int) -> None:
    """Regression: with ttl_days_max + 30 under 90 days, a 200-day TTL was bucketed
    "60-90" instead of ">90"."""
    config = MemoryConfig(ttl_days=min(30, ttl_days_max), ttl_days_max=ttl_days_max)
    chunk = chunk_of(4000, lambda count, rng: rng.choice(["a", "b"], count), config)
    ttl_ms = chunk["ttl_ms"].to_numpy().copy()
    ttl_ms[:500] = np.random.default_rng(5).integers(90, 400, 500) * 86_400_000
    chunk["ttl_ms"] = ttl_ms
    chunk["ttl_days"] = np.where(ttl_ms >= 0, ttl_ms / 86_400_000, np.nan)
    fold = BreakdownFold(config)
    fold.add(chunk.copy())
    result = fold.result()
    table = summarize_inventory(chunk)
    assert result.report()["ttl"] == table["ttl"]
    assert table["ttl"]["days_remaining"][">90"] >= 500
    for days in (1, 7, 30, 90):
        expected = int(((ttl_ms >= 0) & (ttl_ms < days * 86_400_000)).sum())
        assert result.expiring_within(days * 86_400) == expected, days


def test_the_snapshot_counts_as_the_fresh_overview_does(
        store: SyncBuyerConversationMemory) -> None:
    """Regression: the snapshot's TTL counts took in the corrupt key (no TTL), the fresh
    scan's did not, so "No TTL" changed when the scan replaced the snapshot."""
    scan = scan_overview(store, chunk_rows=50)
    shown = scan.breakdown.report()
    assert scan.report["ttl"]["no_ttl"] == shown["ttl"]["no_ttl"] + 1  # "broken"
    snapshot = scan.snapshot()
    for name, value in shown.items():
        assert snapshot.report[name] == value, name
    assert (snapshot.report["total"], snapshot.report["corrupt"]) == (BUYERS + 1, 1)


def test_a_forged_last_interaction_time_is_no_time_and_no_crash(
        store: SyncBuyerConversationMemory) -> None:
    raw = store.client.get(store.key_for("contact-2026-000"))
    head, body = raw.split(b"\n", 1)
    fields = head[4:].split(SEPARATOR)
    fields[10] = b"9" * 18  # the most digits a header number may have
    store.client.set(store.key_for("from-the-future"),
                     head[:4] + SEPARATOR.join(fields) + b"\n" + body)
    scan = scan_overview(store)
    assert scan.report["buyers"] == BUYERS + 1
    listed = list_buyers(store, pattern="from-the-future")
    assert listed.matching == 1 and pd.isna(listed.rows["last_interaction"][0])


def test_the_first_rows_of_each_order_are_a_full_sorts(
        store: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(breakdown, "LIST_ROWS", 40)  # cut well inside the store
    scan = scan_overview(store, chunk_rows=30)
    frame = scan_summaries(store)
    ok = frame[frame["status"] == STATUS_OK]
    ok = ok.iloc[find_buyers(ok, order=ORDER_RECENT)]  # ties: newest first, as the list
    for order in BUYER_ORDERS:
        for without_ttl in (False, True):
            kept = scan.breakdown.first_rows(order, without_ttl)
            expected = ok.iloc[find_buyers(ok, order=order, without_ttl=without_ttl)]
            assert len(kept) == min(40, len(expected))
            # TTLs count down between the two scans, and ties may come in another order
            # (a cluster's nodes are read in parallel): compare what the order sorts by
            key = {ORDER_RECENT: "last_interaction_epoch", ORDER_LARGEST: "stored_bytes",
                   ORDER_EXPIRING: "contact_id"}[order]
            assert list(kept[key]) == list(expected[key][:40]), (order, without_ttl)
    soonest = scan.breakdown.first_rows(ORDER_EXPIRING)
    assert list(soonest["ttl_ms"][:6]) == sorted(soonest["ttl_ms"][:6])
    for window in (3600, 86_400, 7 * 86_400, 30 * 86_400):  # as the list counts them
        assert scan.breakdown.expiring_within(window) == len(
            find_buyers(ok, expires_within_seconds=window)), window
    assert scan.breakdown.expiring_within(3600) >= 1  # the key planted to end within it


@pytest.mark.parametrize("pattern", ["", "2026-01", "contact-2026-0?5", "*-0[12]*", "é",
                                     "qa-"])
@pytest.mark.parametrize("chosen", [BuyerFilter(), BuyerFilter(temperatures=("cold",),
                                                               hide_qa=True)])
def test_a_streamed_list_is_the_tables_list(store: SyncBuyerConversationMemory,
                                            pattern: str, chosen: BuyerFilter) -> None:
    frame = scan_summaries(store)
    rows = frame[chosen.mask(frame)]
    rows = rows.iloc[find_buyers(rows, order=ORDER_RECENT)]
    for order, within, never in ((ORDER_RECENT, None, False), (ORDER_LARGEST, 86_400, False),
                                 (ORDER_EXPIRING, None, True), (ORDER_EXPIRING, None, False)):
        expected = rows.iloc[find_buyers(rows, pattern=pattern, order=order,
                                         expires_within_seconds=within, without_ttl=never)]
        listed = list_buyers(store, chosen, pattern=pattern, order=order,
                             expires_within_seconds=within, without_ttl=never, limit=25)
        assert listed.matching == len(expected), (pattern, order, within, never)
        assert list(listed.rows["contact_id"]) == list(expected["contact_id"][:25])
    every = list_buyers(store, chosen, pattern=pattern, limit=None)
    assert every.matching == len(every.rows)


def test_a_search_narrows_the_scan_only_where_redis_glob_means_the_same(
        store: SyncBuyerConversationMemory) -> None:
    prefix = store.prefix
    assert scan_match(store, "") is None
    assert scan_match(store, "2026") == f"{prefix}:*2026*"
    assert scan_match(store, "contact-*") == f"{prefix}:contact-*"
    assert scan_match(store, "a?c") == f"{prefix}:a*c"  # Redis's ? is a byte, not a char
    for pattern in ("[ab]*", "é*", "a\\*"):  # a class, non-ASCII, an escape: read all
        assert scan_match(store, pattern) is None
    for contact_id in ("a\u00e9b", "axb", "a\u00e9\u00e9b"):
        assert store.save_state(contact_id, {"buyer_temperature": "warm"})
    assert sorted(list_buyers(store, pattern="a?b").rows["contact_id"]) == ["axb", "a\u00e9b"]
    with pytest.raises(ValueError, match="at most 200"):
        list_buyers(store, pattern="x" * 201)
    with pytest.raises(ValueError, match="unknown order"):
        list_buyers(store, order="sideways")


def test_ids_starting_with_reads_only_matching_keys_and_counts_each_once(
        store: SyncBuyerConversationMemory) -> None:
    for contact_id in ("odd*[id]?", "odd*[id]?-2", "odd*x", "odd"):
        assert store.save_state(contact_id, {"buyer_temperature": "warm"})
    found, count = ids_starting_with(store, "contact-2026-0", 5)
    assert count == 60 and found == [f"contact-2026-{n:03d}" for n in range(5)]
    # glob characters in the prefix are matched literally; the prefix itself is no match
    assert ids_starting_with(store, "odd*[id]?", 10) == (["odd*[id]?-2"], 1)
    assert ids_starting_with(store, "odd", 10) == (sorted(
        ["odd*[id]?", "odd*[id]?-2", "odd*x"]), 3)
    assert ids_starting_with(store, "nobody-", 10) == ([], 0)


def test_the_fold_draws_a_sample_of_readable_buyers(
        store: SyncBuyerConversationMemory) -> None:
    scan = scan_overview(store, chunk_rows=50)
    readable = set(scan_summaries(store).query("status == @STATUS_OK")["contact_id"])
    drawn = scan.breakdown.sample_ids
    assert len(drawn) == len(set(drawn)) == SAMPLE_IDS and set(drawn) <= readable
    assert len(scan.problem_ids) == len(scan.problems) == 1
    assert scan.problem_ids[0] == "broken"
