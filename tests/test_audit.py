"""The dashboard's side of the audit trail: actors, the reveal entry, the Audit page.

memory_core.audit (the stream itself) and the entries admin.py's writes append are the
library's; here: the dashboard passes ``dashboard:<role>:<session>`` as the actor of every
write, audits each PII reveal itself, and lists the trail (operators only) with filters
and a CSV export in which no cell runs as a formula.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from apptest_tools import signed_in_page
from streamlit.testing.v1 import AppTest

from dashboard.actions import clear_buyer, reset_buyer_ttl, seed_buyers
from dashboard.audit_view import AuditFilters, events_frame, filter_events
from dashboard.auth import OPERATOR_PASSWORD_ENV, VIEWER_PASSWORD_ENV, Access
from dashboard.settings import DashboardSettings
from memory_core.audit import AuditEvent, append_event, audit_key, read_events
from memory_core.safetext import csv_bytes
from memory_core.seeding import SeedOptions
from memory_core.store import SyncBuyerConversationMemory

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
BUYER_PAGE = "app_pages/buyer.py"
AUDIT_PAGE = "app_pages/audit.py"
OPERATOR_PW, VIEWER_PW = "audit-operator-pw", "audit-viewer-pw"
SESSION = "0123456789abcdef"
APPTEST_SESSION = "test ses"  # AppTest runs every session as "test session id"
FORMULA = '=HYPERLINK("http://attacker.invalid/x","click")'
IMAGE = "![x](http://attacker.invalid/p.png)"


pytestmark = pytest.mark.usefixtures("isolated_dashboard")


@pytest.fixture
def memory(real_redis_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[SyncBuyerConversationMemory]:
    monkeypatch.setenv("REDIS_URL", real_redis_url)
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, OPERATOR_PW)
    monkeypatch.setenv(VIEWER_PASSWORD_ENV, VIEWER_PW)
    with SyncBuyerConversationMemory.from_url(real_redis_url) as opened:
        yield opened


def operator(url: str, *, allow_seeding: bool = False) -> Access:
    settings = DashboardSettings(redis_url=url, is_demo=False, config_path=None,
                                 read_only=False, allow_seeding=allow_seeding)
    return Access("operator", "password", settings, SESSION)


def signed_in(password: str, page: str | None = None, **query: str) -> AppTest:
    return signed_in_page(APP, password, "dashboard_tests", page, **query)


def events(memory: SyncBuyerConversationMemory) -> list[AuditEvent]:
    return read_events(memory.client, memory.prefix)


# actors -----------------------------------------------------------------------------------

def test_dashboard_writes_are_audited_under_the_role_and_session(
        memory: SyncBuyerConversationMemory, real_redis_url: str) -> None:
    access = operator(real_redis_url, allow_seeding=True)
    assert access.actor == "dashboard:operator:01234567"
    assert memory.save_state("contact-a", {"buyer_temperature": "hot"})
    assert reset_buyer_ttl(access, memory, "contact-a", None)
    assert clear_buyer(access, memory, "contact-a", "contact-a", None)
    assert seed_buyers(access, memory, SeedOptions(count=3, seed=8)).written == 3
    written = [(e.actor, e.action) for e in events(memory)]
    assert {actor for actor, _ in written} == {"dashboard:operator:01234567"}
    assert {"reset_ttl", "clear"} <= {action for _, action in written}
    assert "dashboard operator" not in {actor for actor, _ in written}  # the old constant


def test_a_reveal_from_the_buyer_page_is_audited_with_no_pii(
        memory: SyncBuyerConversationMemory) -> None:
    state = {"buyer_temperature": "warm", "buyer_name": "Ottoline Brayfield",
             "buyer_phone": "+44 20 7946 0958", "buyer_email": "ottoline@example.com"}
    assert memory.save_state("contact-reveal", state)
    at = signed_in(OPERATOR_PW, BUYER_PAGE, contact_id="contact-reveal")
    assert events(memory) == []  # looking at a masked buyer is not a reveal
    next(t for t in at.toggle if t.label == "Reveal name, phone and email").set_value(True)
    at.run()
    assert "Ottoline Brayfield" in "\n".join(m.value for m in at.markdown)
    (event,) = events(memory)
    assert (event.actor, event.action, event.contact_id, event.outcome) == (
        f"dashboard:operator:{APPTEST_SESSION}", "reveal_pii", "contact-reveal", "shown")
    raw = repr(memory.client.xrange(audit_key(memory.prefix)))
    for pii in ("Ottoline", "Brayfield", "7946", "ottoline@"):
        assert pii not in raw


def test_no_reveal_is_shown_when_its_audit_entry_cannot_be_written(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("contact-unaudited", {"buyer_name": "Ignatius Pemberton"})
    memory.client.set(audit_key(memory.prefix), b"not a stream")  # XADD now fails
    at = signed_in(OPERATOR_PW, BUYER_PAGE, contact_id="contact-unaudited")
    next(t for t in at.toggle if t.label == "Reveal name, phone and email").set_value(True)
    at.run()
    assert not at.exception
    assert any("Not revealed" in e.value for e in at.error)
    assert "Ignatius" not in "\n".join(m.value for m in at.markdown)


# the Audit page ---------------------------------------------------------------------------

def plant(memory: SyncBuyerConversationMemory) -> None:
    client, prefix = memory.client, memory.prefix
    append_event(client, prefix, actor="dashboard:operator:aaaa1111", action="reveal_pii",
                 contact_id="contact-1", outcome="shown")
    append_event(client, prefix, actor="cli:alice", action="erase", contact_id="contact-2",
                 outcome="1 erased", detail="hmac-sha256:abc")
    append_event(client, prefix, actor=FORMULA, action="clear", contact_id=IMAGE,
                 outcome="@SUM(1+1)", detail="+cmd|' /C calc'!A0")


def test_the_audit_page_lists_and_filters_the_trail(memory: SyncBuyerConversationMemory) -> None:
    plant(memory)
    at = signed_in(OPERATOR_PW, AUDIT_PAGE)
    assert [t.value for t in at.title] == ["Audit trail"]
    table = at.main.dataframe[0].value
    assert list(table["action"]) == ["clear", "erase", "reveal_pii"]  # newest first
    assert IMAGE in set(table["contact_id"]) and FORMULA in set(table["actor"])  # as text
    assert any(b.label == "Download CSV" for b in at.main.get("download_button"))

    next(m for m in at.multiselect if m.label == "Action").set_value(["erase", "reveal_pii"])
    at.run()
    assert list(at.main.dataframe[0].value["action"]) == ["erase", "reveal_pii"]
    next(t for t in at.text_input if t.label == "Actor contains").input("DASHBOARD:op")
    at.run()
    assert list(at.main.dataframe[0].value["contact_id"]) == ["contact-1"]
    next(t for t in at.text_input if t.label == "Actor contains").input("")
    next(m for m in at.multiselect if m.label == "Action").set_value([])
    next(m for m in at.multiselect if m.label == "Outcome").set_value(["1 erased"])
    next(t for t in at.text_input if t.label == "Contact id contains").input("contact-2")
    at.run()
    assert list(at.main.dataframe[0].value["actor"]) == ["cli:alice"]
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    next(d for d in at.date_input if d.label == "Between (UTC days)").set_value(
        (yesterday - timedelta(days=5), yesterday))
    at.run()
    assert at.main.dataframe[0].value.empty


def test_the_audit_page_is_for_operators_only(memory: SyncBuyerConversationMemory) -> None:
    plant(memory)
    at = signed_in(VIEWER_PW)
    with pytest.raises(ValueError):  # not among a viewer's pages: /audit is "not found"
        at.switch_page(AUDIT_PAGE)
    assert "reveal_pii" not in "\n".join(str(d.value) for d in at.main.dataframe)


def test_filters_and_csv_of_the_trail() -> None:
    now = datetime.now(UTC)
    rows = [AuditEvent("3-0", now.isoformat(), FORMULA, "clear", IMAGE, "@SUM(1+1)", "-2+3"),
            AuditEvent("2-0", (now - timedelta(days=40)).isoformat(), "cli:bob", "erase",
                       "contact-old", "1 erased", ""),
            AuditEvent("1-0", "not a time", "forged", "clear", "contact-forged", "done", "")]
    frame = events_frame(rows)
    recent = filter_events(frame, AuditFilters(first_day=now.date() - timedelta(days=29),
                                               last_day=now.date()))
    # the forged entry with no readable time is never hidden by the time filter
    assert list(recent["entry_id"]) == ["3-0", "1-0"]
    assert list(filter_events(frame, AuditFilters(actions=("erase",)))["entry_id"]) == ["2-0"]
    only_day = filter_events(frame, AuditFilters(first_day=date(2000, 1, 1),
                                                 last_day=date(2000, 1, 1)))
    assert list(only_day["entry_id"]) == ["1-0"]

    exported = pd.read_csv(io.BytesIO(csv_bytes(recent)), dtype=str, keep_default_na=False)
    cells = exported.to_numpy().ravel().tolist()
    assert not [c for c in cells if c[:1] and c[:1] in "=+-@"], cells
    assert "'" + FORMULA in cells and "'@SUM(1+1)" in cells and "'-2+3" in cells


def test_a_reveal_left_on_screen_is_one_entry_and_a_new_revision_another(
        memory: SyncBuyerConversationMemory) -> None:
    assert memory.save_state("contact-again", {"buyer_name": "Wilhelmina Stroud"})
    at = signed_in(OPERATOR_PW, BUYER_PAGE, contact_id="contact-again")
    next(t for t in at.toggle if t.label == "Reveal name, phone and email").set_value(True)
    at.run()
    at.run()  # any click while the reveal is on screen reruns the page
    assert [e.action for e in events(memory)] == ["reveal_pii"]
    assert memory.save_state("contact-again", {"buyer_name": "Wilhelmina Stroud-Ames"})
    at.run()
    assert "Stroud-Ames" in "\n".join(m.value for m in at.markdown)
    assert [e.detail for e in events(memory)] == ["revision 2", "revision 1"]
