"""The sampled inventory: estimates within their margins, on every kind of Redis."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pandas as pd
import pytest
import redis

from memory_core import SyncBuyerConversationMemory
from memory_core.inventory import scan_summaries, summarize_inventory
from memory_core.sampling import (
    MAX_DRAWS,
    MIN_DRAWS,
    check_draws,
    sample_report,
    sample_summaries,
)
from memory_core.state import QA_SEED_FIELD

BUYERS = 1500
OTHER_KEYS = 500  # keys of other applications in the same database: draws that miss
TEMPERATURES = ("hot", "warm", "warm", "cold")


def fill(memory: SyncBuyerConversationMemory, raw: redis.Redis) -> None:
    states = [(f"buyer-{n}", {"buyer_temperature": TEMPERATURES[n % 4],
                              "conversation_history": [
                                  {"role": "user", "content": "a house with a yard " * (n % 30)}],
                              QA_SEED_FIELD: n % 5 == 0}, None, None)
              for n in range(BUYERS)]
    assert memory.save_many(states) == BUYERS
    for n in range(OTHER_KEYS):
        raw.set(f"another-app:{n}", "x")
    raw.set(f"{memory.prefix}:broken", b"\x00 not a record")


def within(estimate: Any, truth: float) -> bool:
    """Inside twice the 95 % margin: a miss is a 4-sigma event, not bad luck."""
    return abs(estimate.value - truth) <= 2 * estimate.margin + 1


def test_every_figure_lands_within_its_margin(memory: SyncBuyerConversationMemory,
                                              raw: redis.Redis) -> None:
    fill(memory, raw)
    exact = summarize_inventory(scan_summaries(memory))
    sample = sample_summaries(memory, 4000, seed=7)
    figures = sample_report(sample)
    assert sample.keys_in_database >= BUYERS + OTHER_KEYS
    assert 0 < len(sample.frame) < 4000  # some draws found other applications' keys
    assert within(figures["keys under the prefix"], exact["total"])
    assert within(figures["readable buyers"], exact["buyers"])
    for temperature in ("hot", "warm", "cold"):
        assert within(figures[temperature], exact["by_temperature"][temperature])
    assert within(figures["QA seeds"], exact["qa_seeded"])
    assert within(figures["corrupt, foreign or unreadable"], exact["corrupt"])
    assert within(figures["stored bytes"], exact["stored_bytes"])
    assert within(figures["original bytes"], exact["original_bytes"])
    # a margin that means something: a few percent of the buyers, not all of them
    assert 0 < figures["readable buyers"].margin < 0.1 * BUYERS
    assert figures["legacy"].value == 0 and figures["legacy"].margin == 0


def test_an_empty_store_is_zero_plus_or_minus_zero(memory: SyncBuyerConversationMemory) -> None:
    sample = sample_summaries(memory, MIN_DRAWS)
    assert sample.keys_in_database == 0 and sample.frame.empty
    assert sample.buyers().value == 0 and sample.buyers().margin == 0


def test_a_sample_reads_records_as_the_scan_does(memory: SyncBuyerConversationMemory,
                                                 raw: redis.Redis) -> None:
    fill(memory, raw)
    raw.hset(f"{memory.prefix}:a-hash", mapping={"not": "a record"})
    scanned = scan_summaries(memory).set_index("contact_id")
    drawn = sample_summaries(memory, 6000, seed=3).unique_rows.set_index("contact_id")
    assert "another-app:1" not in drawn.index  # only keys under the prefix become rows
    common = drawn.index.intersection(scanned.index)
    assert len(common) == len(drawn)
    columns = ["status", "temperature", "stored_bytes", "original_bytes", "qa_seed"]
    # the same values; the category lists differ when the draws missed a rare label
    pd.testing.assert_frame_equal(drawn.loc[common, columns], scanned.loc[common, columns],
                                  check_categorical=False)


@pytest.mark.parametrize("draws", [0, MIN_DRAWS - 1, MAX_DRAWS + 1, True, "1000", 1.5])
def test_a_draw_count_out_of_range_is_refused_with_the_range(draws: object) -> None:
    with pytest.raises(ValueError, match="100 to 1,000,000 draws"):
        check_draws(draws)


def test_the_cli_prints_estimates_and_refuses_bad_counts(real_redis_url: str,
                                                         real_raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        fill(memory, real_raw)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "memory_core", "--redis-url",
                               real_redis_url, "inventory", *args],
                              capture_output=True, text=True, timeout=60, check=False)

    shown = run("--sample", "2000")
    assert shown.returncode == 0, shown.stderr
    assert "estimates for the whole store, 95% margins" in shown.stdout
    assert "readable buyers" in shown.stdout and "±" in shown.stdout
    refused = run("--sample", "5")
    assert refused.returncode == 2 and "100 to 1,000,000 draws" in refused.stderr
    both = run("--sample", "500", "--verify")
    assert both.returncode == 2 and "use one" in both.stderr
