"""The overview's "Compression dictionary" section and its "Train a dictionary" button
(issue 12), on the suite's private redis-server.

The page is run in AppTest signed in as a viewer or an operator (as in test_overview.py)
and read through its metrics, captions and buttons; the estimate is counted where the
scan calls it, to show it runs once per scan and never on a page run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from apptest_tools import HeldScan, dashboard_store, signed_in_page
from conftest import buyer_state
from streamlit.testing.v1 import AppTest

from dashboard import actions, resources
from dashboard.actions import ActionRefused
from dashboard.auth import Access
from dashboard.charts import human_bytes
from dashboard.dictionary_model import (
    BYTE_LABELS,
    byte_shares,
    current_text,
    estimate_text,
    offers_training,
)
from dashboard.dictionary_view import TRAIN_BUTTON
from dashboard.markdown import JOINER
from dashboard.settings import (
    READ_ONLY_ENV,
    TRAIN_MIN_SAVING_ENV,
    DashboardSettings,
    load_settings,
)
from memory_core import admin, dictionary_use
from memory_core.audit import read_events
from memory_core.dictionaries import current_dictionary_key, parse_dictionary_id
from memory_core.dictionary_use import DictionaryStatus, SavingEstimate, dictionary_status
from memory_core.errors import ConfigError, InvalidState, StoreUnavailable
from memory_core.inventory import scan_summaries, summarize_inventory
from memory_core.snapshot import read_snapshot, store_snapshot
from memory_core.store import SyncBuyerConversationMemory

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PASSWORDS = {"operator": "operator-for-dictionary-panel", "viewer": "viewer-for-dictionary"}
CURRENT, OLDER, NONE = (BYTE_LABELS[label] for label in ("current", "older", "none"))

pytestmark = pytest.mark.usefixtures("isolated_dashboard")


@pytest.fixture
def memory(real_redis_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[SyncBuyerConversationMemory]:
    with dashboard_store(real_redis_url, monkeypatch, PASSWORDS) as opened:
        yield opened


class CountingEstimate:
    """estimate_saving as the scan calls it, counted (and optionally replaced)."""

    def __init__(self, replacement: Any = None) -> None:
        self.calls = 0
        self.real = dictionary_use.estimate_saving
        self.replacement = replacement

    def __call__(self, memory: SyncBuyerConversationMemory, **kwargs: Any) -> SavingEstimate:
        self.calls += 1
        if self.replacement is not None:
            return self.replacement(memory, **kwargs)  # type: ignore[no-any-return]
        return self.real(memory, **kwargs)


@pytest.fixture
def estimates(monkeypatch: pytest.MonkeyPatch) -> CountingEstimate:
    counting = CountingEstimate()
    monkeypatch.setattr(dictionary_use, "estimate_saving", counting)
    return counting


def seed(memory: SyncBuyerConversationMemory, count: int, first: int = 0) -> None:
    items = [(f"contact-{i:05d}", buyer_state(i, messages=8 + i % 30), None, None)
             for i in range(first, first + count)]
    assert memory.save_many(items) == count


def run_page(role: str = "operator") -> AppTest:
    return signed_in_page(APP, PASSWORDS[role], "dictionary_panel_tests")


def section_metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    """The section's metrics: label -> (value, delta)."""
    wanted = {CURRENT, OLDER, NONE}
    return {m.label: (m.value, m.proto.delta) for m in at.main.metric if m.label in wanted}


def saves_use(at: AppTest) -> str:
    """What the section's heading says saves use: "dictionary 123", "none trained yet"."""
    (heading,) = [m.value for m in at.main.markdown
                  if m.value.startswith("**Compression dictionary**")]
    return heading.removeprefix("**Compression dictionary** · saves use **").removesuffix("**")


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.main.caption)


def train_buttons(at: AppTest) -> list[Any]:
    return [b for b in at.button if b.label == TRAIN_BUTTON]


def plain(markdown: str) -> str:
    """Markdown as it reads: escapes and md()'s invisible joiners removed."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(JOINER, "")


def current_pointer(memory: SyncBuyerConversationMemory) -> int | None:
    return parse_dictionary_id(memory.client.get(current_dictionary_key(memory.prefix)))


# the section ------------------------------------------------------------------------------

def test_the_section_shows_bytes_by_dictionary_and_the_estimate(
        memory: SyncBuyerConversationMemory, estimates: CountingEstimate) -> None:
    """Records without a dictionary, with an older one and with the current one: three
    byte figures with their shares, the current id, and the estimate in words."""
    seed(memory, 120)
    first = admin.train_dictionary_from_store(memory, sample_size=120, actor="test")
    seed(memory, 60, first=120)  # compressed with the first dictionary
    second = admin.train_dictionary_from_store(memory, sample_size=180, actor="test")
    assert second.dictionary_id != first.dictionary_id
    seed(memory, 40, first=180)  # with the second, the current one
    by_dictionary = summarize_inventory(scan_summaries(memory))["stored_bytes_by_dictionary"]
    assert all(by_dictionary.values())
    whole = sum(by_dictionary.values())

    at = run_page("viewer")
    assert not at.exception and not at.error
    shown = section_metrics(at)
    assert saves_use(at) == f"dictionary {second.dictionary_id}"
    for label, kind in ((CURRENT, "current"), (OLDER, "older"), (NONE, "none")):
        value, delta = shown[label]
        assert value == human_bytes(by_dictionary[kind])
        assert delta == f"{by_dictionary[kind] / whole:.0%} of stored bytes"
    text = captions(at)
    assert "A dictionary trained now would store the sampled states in" in text
    assert "than the dictionary saves use now, estimated on 110 states." in text  # 220 / 2
    assert estimates.calls == 1
    assert not train_buttons(at)  # a viewer never sees it


def test_an_operator_is_offered_training_when_no_dictionary_exists_a_viewer_is_not(
        memory: SyncBuyerConversationMemory, estimates: CountingEstimate) -> None:
    seed(memory, 300)
    operator = run_page("operator")
    assert saves_use(operator) == "none trained yet"
    assert section_metrics(operator)[NONE][1] == "100% of stored bytes"
    assert "than compressing without one, as saves do now" in captions(operator)
    assert len(train_buttons(operator)) == 1
    viewer = run_page("viewer")
    assert saves_use(viewer) == "none trained yet"
    assert not train_buttons(viewer)
    assert estimates.calls == 1  # both sessions share the one scan and its estimate


def test_read_only_mode_offers_no_training(memory: SyncBuyerConversationMemory,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seed(memory, 300)
    monkeypatch.setenv(READ_ONLY_ENV, "1")
    at = run_page("operator")
    assert "A dictionary trained now would" in captions(at)
    assert not train_buttons(at)


def test_a_small_saving_offers_no_training_unless_the_setting_allows_it(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch,
        estimates: CountingEstimate) -> None:
    seed(memory, 300)
    admin.train_dictionary_from_store(memory, sample_size=300, actor="test")
    estimates.replacement = lambda memory, **kwargs: SavingEstimate(
        500, current_pointer(memory), 100_000, 95_000)  # 5%: under the default 10%
    at = run_page("operator")
    assert "**5% fewer bytes**" in captions(at)
    assert not train_buttons(at)
    assert "Training is offered from a 10% saving (MEMORY_DASHBOARD_TRAIN_MIN_SAVING)" in (
        captions(at))

    st.cache_resource.clear()  # a dashboard started with a lower bar
    monkeypatch.setenv(TRAIN_MIN_SAVING_ENV, "5%")
    assert len(train_buttons(run_page("operator"))) == 1


def test_too_few_states_say_why_there_is_no_estimate_and_offer_nothing(
        memory: SyncBuyerConversationMemory) -> None:
    seed(memory, 5)
    at = run_page("operator")
    assert not at.exception and not at.error
    assert "too few buyer states are stored to train one on" in captions(at)
    assert saves_use(at) == "none trained yet"
    assert not train_buttons(at)


@pytest.mark.parametrize(("error", "words"), [
    (RuntimeError("zstd blew up"), "estimating it failed"),
    (StoreUnavailable("Redis unreachable"), "Redis stopped answering after the scan"),
])
def test_a_failed_estimate_never_fails_the_scan(
        memory: SyncBuyerConversationMemory, estimates: CountingEstimate,
        error: Exception, words: str) -> None:
    seed(memory, 50)

    def broken(memory: SyncBuyerConversationMemory, **kwargs: Any) -> SavingEstimate:
        raise error

    estimates.replacement = broken
    at = run_page("operator")
    assert not at.exception and not at.error
    assert any(m.label == "Buyers" and m.value == "50" for m in at.main.metric)
    assert words in captions(at)
    assert not train_buttons(at)
    snapshot = read_snapshot(memory)  # stored all the same, with the reason
    assert snapshot is not None and snapshot.report["buyers"] == 50
    assert snapshot.dictionary is not None and not snapshot.dictionary.estimated


def test_the_estimate_runs_once_per_scan_not_per_page_run(
        memory: SyncBuyerConversationMemory, estimates: CountingEstimate) -> None:
    seed(memory, 200)
    at = run_page("operator")
    assert estimates.calls == 1
    for _ in range(3):
        at.run()
    at.toggle[-1].set_value(True).run()  # "Hide QA seeds": a filter, the same scan
    assert not at.exception
    assert estimates.calls == 1
    assert "A dictionary trained now would" in captions(at)
    next(b for b in at.button if b.label == "Refresh").click().run()  # a new scan
    assert estimates.calls == 2


# training ---------------------------------------------------------------------------------

def test_an_operator_trains_a_dictionary_and_the_next_scan_shows_it(
        memory: SyncBuyerConversationMemory, estimates: CountingEstimate,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed(memory, 300)
    at = run_page("operator")
    before = resources.last_scan(load_settings())
    assert before is not None and current_pointer(memory) is None
    reported: list[tuple[int, int]] = []
    real_train = actions.admin.train_dictionary_from_store

    def watched(memory: SyncBuyerConversationMemory, **kwargs: Any) -> Any:
        bar = kwargs["progress"]  # the page's progress bar, fed by the sampled reads

        def progress(done: int, total: int) -> None:
            reported.append((done, total))
            bar(done, total)

        return real_train(memory, **{**kwargs, "progress": progress})

    monkeypatch.setattr(actions.admin, "train_dictionary_from_store", watched)
    (button,) = train_buttons(at)
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert reported[0] == (100, 300) and reported[-1] == (300, 300)
    assert not at.get("progress")  # the bar is gone once trained

    trained = current_pointer(memory)
    assert trained is not None
    (event,) = [e for e in read_events(memory.client, memory.prefix)
                if e.action == "train_dictionary"]
    assert event.actor.startswith("dashboard:operator:") and event.outcome == "done"
    assert f"dictionary {trained}" in event.detail
    (success,) = [e for e in at.success if "Trained" in e.value]
    assert f"Trained dictionary **{trained}** on 300 sampled states" in success.value
    assert "within 60 s (dictionary_refresh_seconds)" in success.value
    assert "shrink as the bot saves them again" in success.value
    after = resources.last_scan(load_settings())
    assert after is not None and after[0] > before[0]  # the cache was dropped: scanned again
    assert estimates.calls == 2  # and estimated again, against the new dictionary
    assert saves_use(at) == f"dictionary {trained}"
    # every record was written without a dictionary: none is "current" until re-saved
    assert section_metrics(at)[CURRENT][0] == "0 B"
    snapshot = read_snapshot(memory)
    assert snapshot is not None and snapshot.dictionary is not None
    assert snapshot.dictionary.current_id == trained

    at.run()  # the message was shown once
    assert not [e for e in at.success if "Trained" in e.value]


def test_the_demo_store_trains_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """No REDIS_URL: the embedded demo store (seeded with a dictionary), where the visitor
    acts as operator; with the bar at 0% training is always offered."""
    monkeypatch.setenv(TRAIN_MIN_SAVING_ENV, "0")
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["dictionary_panel_tests"] = "isolated"
    at.run()
    assert not at.exception
    assert saves_use(at).startswith("dictionary ")
    train_buttons(at)[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    (success,) = [e.value for e in at.success if "Trained dictionary" in e.value]
    trained = re.search(r"Trained dictionary \*\*(\d+)\*\*", success)
    assert trained is not None and saves_use(at) == f"dictionary {trained.group(1)}"


def test_a_training_that_fails_says_what_to_do(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(memory, 300)
    at = run_page("operator")
    for error, words in ((InvalidState("training a dictionary needs at least 20 states; "
                                       "found 3. Seed or collect more first."),
                          "once more buyer states are stored"),
                         (StoreUnavailable("Redis unreachable: [x](http://evil.invalid)"),
                          "Check the connection")):
        def failing(memory: SyncBuyerConversationMemory, error: Exception = error,
                    **kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(actions.admin, "train_dictionary_from_store", failing)
        train_buttons(at)[0].click().run()
        assert not at.exception
        (shown,) = at.error
        assert shown.value.startswith("Not trained:") and words in shown.value
        assert "](" not in shown.value  # the message is escaped
    assert current_pointer(memory) is None


def test_training_is_refused_to_a_viewer_and_in_read_only_mode(
        memory: SyncBuyerConversationMemory) -> None:
    seed(memory, 40)
    settings = load_settings()
    for access in (Access("viewer", "password", settings, "viewer-session"),
                   Access("operator", "password",
                          DashboardSettings(**{**vars(settings), "read_only": True}),
                          "read-only-session")):
        with pytest.raises(ActionRefused):
            actions.train_dictionary(access, memory, sample_size=40)
    assert current_pointer(memory) is None
    refused = [e for e in read_events(memory.client, memory.prefix)
               if e.action == "train_dictionary"]
    assert [e.outcome for e in refused] == ["refused"]  # read-only writes nothing
    assert refused[0].actor.startswith("dashboard:viewer:")


# the snapshot: a fresh process shows the last scan's estimate ---------------------------------

def test_a_fresh_process_shows_the_snapshots_estimate_while_the_scan_runs(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch,
        estimates: CountingEstimate) -> None:
    seed(memory, 200)
    status = DictionaryStatus(current_id=None, measured=321, current_bytes=100_000,
                              with_new_bytes=40_000)
    assert store_snapshot(memory, scan_summaries(memory), taken_at=datetime.now(UTC),
                          scan_seconds=30.0, dictionary=status) is not None
    st.cache_resource.clear()  # a new dashboard process
    held = HeldScan()
    monkeypatch.setattr(resources, "scan_overview", held)

    at = run_page("operator")
    assert "refreshing…" in captions(at)
    assert "**60% fewer bytes**" in captions(at) and "estimated on 321 states" in captions(at)
    assert saves_use(at) == "none trained yet"
    assert section_metrics(at)[NONE][1] == "100% of stored bytes"
    assert len(train_buttons(at)) == 1  # offered from the snapshot's estimate too
    assert estimates.calls == 0  # nothing estimated on a page run

    held.release.set()
    thread = resources.background_scan(load_settings())
    assert thread is not None
    thread.join(30)
    at.run()
    assert not at.exception
    assert estimates.calls == 1  # by the background scan, once
    assert "Scanned 200 keys" in captions(at)
    assert "estimated on 321 states" not in captions(at)
    snapshot = read_snapshot(memory)
    assert snapshot is not None and snapshot.dictionary is not None
    assert snapshot.dictionary.estimated and snapshot.dictionary.measured == 100


def test_an_old_snapshot_without_the_estimate_says_it_comes_with_the_next_scan(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(memory, 30)
    assert store_snapshot(memory, scan_summaries(memory), taken_at=datetime.now(UTC),
                          scan_seconds=30.0) is not None
    st.cache_resource.clear()
    held = HeldScan()
    monkeypatch.setattr(resources, "scan_overview", held)
    try:
        at = run_page("operator")
        assert not at.exception
        assert "refreshing…" in captions(at)
        assert saves_use(at) == "not known yet"
        assert "it is made with the next scan" in captions(at)
        assert not train_buttons(at)
    finally:
        held.release.set()
        thread = resources.background_scan(load_settings())
        if thread is not None:
            thread.join(30)


# the pure parts ---------------------------------------------------------------------------

def test_offers_training_from_the_set_share_or_when_none_exists() -> None:
    nothing = DictionaryStatus(7, measured=10, current_bytes=1000, with_new_bytes=998)
    assert estimate_text(nothing).startswith(
        "A dictionary trained now would store the sampled states in no fewer bytes than the "
        "dictionary saves use now")
    high = DictionaryStatus(7, measured=10, current_bytes=1000, with_new_bytes=850)
    assert offers_training(high, 10) and offers_training(high, 15)
    assert not offers_training(high, 15.1)
    none_yet = DictionaryStatus(None, measured=10, current_bytes=1000, with_new_bytes=990)
    assert offers_training(none_yet, 50)  # no dictionary yet: any estimate offers one
    assert not offers_training(DictionaryStatus(None, reason="too_few"), 0)
    assert not offers_training(None, 0)
    assert current_text(DictionaryStatus(None, reason="disabled")).startswith("none: ")
    assert "use_dictionary" in estimate_text(DictionaryStatus(None, reason="disabled"))
    worse = DictionaryStatus(7, measured=10, current_bytes=1000, with_new_bytes=1200)
    assert worse.saving == 0.0
    shares = byte_shares({"current": 0, "older": 0, "none": 0})
    assert [s.share_text for s in shares] == ["–"] * 3


def test_dictionaries_off_means_no_estimate(memory: SyncBuyerConversationMemory,
                                            estimates: CountingEstimate) -> None:
    from memory_core.config import MemoryConfig

    seed(memory, 50)
    off = SyncBuyerConversationMemory(memory.client, MemoryConfig(use_dictionary=False))
    assert dictionary_status(off) == DictionaryStatus(None, reason="disabled")
    assert estimates.calls == 0


@pytest.mark.parametrize(("value", "percent"), [("12.5", 12.5), ("10%", 10.0), ("0", 0.0),
                                                ("100", 100.0), (" ", 10.0)])
def test_the_training_threshold_setting(monkeypatch: pytest.MonkeyPatch, value: str,
                                        percent: float) -> None:
    monkeypatch.setenv(TRAIN_MIN_SAVING_ENV, value)
    assert load_settings().train_min_saving == percent


@pytest.mark.parametrize("value", ["lots", "-5", "101", "nan", "inf", "1e400"])
def test_a_bad_training_threshold_is_one_clear_error(
        memory: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch,
        value: str) -> None:
    monkeypatch.setenv(TRAIN_MIN_SAVING_ENV, value)
    with pytest.raises(ConfigError, match="percentage from 0 to 100"):
        load_settings()
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["dictionary_panel_tests"] = "isolated"
    at.run()
    assert not at.exception
    assert any(TRAIN_MIN_SAVING_ENV in plain(e.value) and "percentage from 0 to 100"
               in plain(e.value) for e in at.error)
