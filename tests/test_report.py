"""The inventory report folded chunk by chunk (``memory_core.report``): the same report
as the full table's, on every kind of store, with repeats, hostile labels and a problem
list that stays capped."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from memory_core import report as streamed
from memory_core.demo import seed_demo_store
from memory_core.inventory import problem_records, scan_summaries, summarize_inventory
from memory_core.report import OTHER_LABELS, ReportFold, SeenKeys, scan_report
from memory_core.store import SyncBuyerConversationMemory


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "generated_at"}


@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_the_folded_report_is_the_full_tables_report(
        memory: SyncBuyerConversationMemory, chunk_rows: int) -> None:
    seed_demo_store(memory, count=120)  # buyers, QA seeds, no-TTL keys and problem keys
    frame = scan_summaries(memory)
    report, problems = scan_report(memory, chunk_rows=chunk_rows)
    assert comparable(report) == comparable(summarize_inventory(frame))
    assert report["corrupt"] >= 3 and report["legacy"] == 1
    expected = problem_records(frame)
    assert sorted(map(tuple, problems.itertuples(index=False))) == sorted(
        map(tuple, expected.itertuples(index=False)))


def test_verify_marks_the_same_records_as_the_full_scan(
        memory: SyncBuyerConversationMemory) -> None:
    seed_demo_store(memory, count=40)
    key = min(k for k in memory.client.scan_iter(match=memory.scan_pattern)
              if b":contact-" in k)
    raw = memory.client.get(key)
    memory.client.set(key, raw[:-8] + bytes(8), keepttl=True)  # payload damaged, header fine
    full = summarize_inventory(scan_summaries(memory, verify=True))
    report, problems = scan_report(memory, chunk_rows=5, verify=True)
    assert "contact-" in " ".join(problems["contact_id"])  # the damaged buyer is listed
    assert comparable(report) == comparable(full)
    assert report["corrupt"] == full["corrupt"] >= 4


def test_a_key_scan_returns_twice_is_counted_once(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_demo_store(memory, count=30)
    once = list(streamed.walk_batches(memory))
    monkeypatch.setattr(streamed, "walk_batches", lambda *_: iter(once + once))
    report, _ = scan_report(memory, chunk_rows=4)
    assert comparable(report) == comparable(summarize_inventory(scan_summaries(memory)))


def test_seen_keys_masks_repeats_within_and_across_chunks() -> None:
    seen = SeenKeys()
    first = seen.first_time(pd.Series(["a", "b", "a", "c"]))
    second = seen.first_time(pd.Series(["c", "d", "b", "e", "d"]))
    assert first.tolist() == [True, True, False, True]
    # an id from undecodable key bytes carries a lone surrogate: still hashed
    assert seen.first_time(pd.Series(["x\udcffy", "x\udcffy"], dtype=object)).tolist() == [
        True, False]
    assert second.tolist() == [False, True, False, True, False]
    assert len(seen) == 6


def test_labels_beyond_the_cap_are_counted_together_and_nothing_is_lost(
        memory: SyncBuyerConversationMemory) -> None:
    for n in range(12):  # twelve distinct personas, as a hostile store could hold millions
        memory.save_state(f"p-{n}", {"buyer_persona": f"persona-{n:02d}",
                                     "buyer_temperature": "warm"})
    report, _ = scan_report(memory, chunk_rows=3, fold=ReportFold(max_labels=5))
    personas = report["by_persona"]
    assert len(personas) == 6 and OTHER_LABELS in personas
    assert sum(personas.values()) == report["buyers"] == 12


def test_the_problem_list_is_capped_but_counted_in_full(
        memory: SyncBuyerConversationMemory) -> None:
    for n in range(9):
        memory.client.set(memory.key_for(f"junk-{n}"), b"not a record", ex=3600)
    report, problems = scan_report(memory, chunk_rows=2, fold=ReportFold(max_problems=4))
    assert report["corrupt"] == 9 and report["total"] - report["buyers"] == 9
    assert len(problems) == 4
    assert set(problems["status"]) == {"corrupt"}


def test_an_empty_store_gives_an_empty_report(memory: SyncBuyerConversationMemory) -> None:
    report, problems = scan_report(memory)
    assert (report["total"], report["buyers"], report["compression_ratio"]) == (0, 0, None)
    assert problems.empty
