"""Health publishing: each bot process writes its counters to Redis; operators read them all.

The publishing side runs on the private redis-server with the sync and the asyncio memory
(the same steps drive both), including a Redis user that may not write the health keys:
the bot's calls must not notice. The reading side gets planted, hostile records. The
dashboard page is run with AppTest.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from streamlit.testing.v1 import AppTest

from dashboard.actions import ActionRefused
from dashboard.auth import OPERATOR_PASSWORD_ENV, VIEWER_PASSWORD_ENV, Access
from dashboard.server_view import delete_problem_key, forget_previews, health_frame
from dashboard.settings import DashboardSettings
from memory_core import BuyerConversationMemory, SyncBuyerConversationMemory, audit
from memory_core.config import ConfigError, MemoryConfig, load_config, settings_table
from memory_core.health import (
    COUNTERS,
    MAX_RECORD_BYTES,
    TTL_FACTOR,
    build_payload,
    health_key_prefix,
    read_health,
)
from memory_core.inventory import scan_summaries

PREFIX = "buyer_conversation_memory"
HEALTH = health_key_prefix(PREFIX)
KEY_SHAPE = re.compile(rf"^{re.escape(HEALTH)}[A-Za-z0-9._-]+:\d+:[0-9a-f]{{8}}$")
PII = {"buyer_name": "Elena Ruiz", "buyer_phone": "+1 555 000 1234",
       "buyer_email": "elena@example.com"}
PASSWORDS = {"operator": "operator-password-for-health", "viewer": "viewer-password-health"}


def health_keys(client: redis.Redis) -> list[bytes]:
    return sorted(client.scan_iter(match=HEALTH + "*"))


def record(client: redis.Redis) -> dict[str, Any]:
    (key,) = health_keys(client)
    value = client.get(key)
    assert value is not None
    return dict(orjson.loads(value))


def plant(client: redis.Redis, name: str, *, published_at: float | None = None,
          circuit_open: bool = False, host: str = "bot-1", **counters: int) -> None:
    """A record as a process would publish it, with these counters."""
    stats = {name: counters.get(name, 0) for name in COUNTERS} | {"circuit_open": circuit_open}
    now = time.time() if published_at is None else published_at
    client.set(HEALTH + name, build_payload(
        stats, host=host, pid=42, kind="BuyerConversationMemory", interval_seconds=30,
        started_at=now - 100, published_at=now, breaker_opened_seconds_ago=None), ex=90)


# the setting -----------------------------------------------------------------------------

def test_the_setting_is_off_by_default_and_set_from_the_environment() -> None:
    assert MemoryConfig().health_publish_seconds == 0
    assert load_config(env={"MEMORY_CORE_HEALTH_PUBLISH_SECONDS": "30"}
                       ).health_publish_seconds == 30
    assert "health_publish_seconds" in {name for name, _, _ in settings_table()}
    with pytest.raises(ConfigError, match="health_publish_seconds"):
        MemoryConfig(health_publish_seconds=-1)


def test_nothing_is_published_unless_asked(store_url: str, raw: redis.Redis) -> None:
    with SyncBuyerConversationMemory.from_url(store_url) as memory:
        assert memory.save_state("c-1", {"buyer_temperature": "hot"})
        assert memory.load_state("c-1") is not None
    assert health_keys(raw) == []


# publishing ------------------------------------------------------------------------------

def test_a_memory_publishes_a_small_pii_free_record_with_a_ttl(
        store_url: str, raw: redis.Redis) -> None:
    config = MemoryConfig(health_publish_seconds=30)
    with SyncBuyerConversationMemory.from_url(store_url, config) as memory:
        assert memory.load_state("c-1") is None  # the first call publishes at once
        assert memory.save_state("c-1", {**PII, "buyer_temperature": "hot"})
        assert memory.load_state("c-1") is not None
    (key,) = health_keys(raw)
    assert KEY_SHAPE.match(key.decode()), key
    assert 0 < raw.ttl(key) <= TTL_FACTOR * 30
    value = raw.get(key) or b""
    assert len(value) < 1024
    for text in (*PII.values(), "c-1", "Elena"):
        assert text.encode() not in value
    published = orjson.loads(value)
    assert published["counters"] == {**{name: 0 for name in COUNTERS}, "calls": 1,
                                     "loads": 1, "misses": 1}
    assert published["kind"] == "SyncBuyerConversationMemory"
    assert published["circuit_open"] is False and published["interval_seconds"] == 30
    # outside the buyer keyspace: no scan, count or chart ever sees it
    assert len(scan_summaries(SyncBuyerConversationMemory(raw))) == 1


def test_at_most_one_publish_per_interval(real_redis_url: str, real_raw: redis.Redis) -> None:
    config = MemoryConfig(health_publish_seconds=1)
    with SyncBuyerConversationMemory.from_url(real_redis_url, config) as memory:
        for _ in range(20):
            memory.load_state("c-1")
        assert record(real_raw)["counters"]["calls"] == 1
        time.sleep(1.05)
        assert memory.save_state("c-1", {"buyer_temperature": "warm"})
        counters = record(real_raw)["counters"]
    assert (counters["calls"], counters["loads"], counters["saves"]) == (21, 20, 1)


def test_the_asyncio_memory_publishes_once_for_concurrent_calls(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    config = MemoryConfig(health_publish_seconds=30)

    async def bot() -> list[Any]:
        async with BuyerConversationMemory.from_url(real_redis_url, config) as memory:
            return list(await asyncio.gather(*(memory.load_state(f"c-{i}")
                                               for i in range(50))))

    real_raw.config_resetstat()
    assert asyncio.run(bot()) == [None] * 50
    published = record(real_raw)
    assert published["kind"] == "BuyerConversationMemory"
    assert published["counters"]["calls"] >= 1
    sets = real_raw.info("commandstats").get("cmdstat_set", {}).get("calls", 0)
    assert sets == 1  # one publish for 50 concurrent calls, not one per call


BOT_ACL = ("~buyer_conversation_memory:* ~buyer_conversation_memory.zdict:* "
           "~buyer_conversation_memory.lookup:* -@all +getrange +get +set +del +expire "
           "+evalsha +eval +script|load +ping +sadd +srem +ttl")


@pytest.fixture
def bot_without_health_rights(real_redis_url: str, real_raw: redis.Redis) -> Iterator[str]:
    """A bot user as the README's ACL line makes it, without ~<prefix>.health:*."""
    real_raw.execute_command("ACL", "SETUSER", "bot-no-health", "on", ">bot-pw",
                             *BOT_ACL.split())
    try:
        yield real_redis_url.replace("redis://", "redis://bot-no-health:bot-pw@")
    finally:
        real_raw.execute_command("ACL", "DELUSER", "bot-no-health")


def test_a_refused_publish_never_touches_the_bot_call(
        bot_without_health_rights: str, real_raw: redis.Redis,
        caplog: pytest.LogCaptureFixture) -> None:
    config = MemoryConfig(health_publish_seconds=1)

    async def bot() -> tuple[Any, ...]:
        async with BuyerConversationMemory.from_url(bot_without_health_rights,
                                                    config) as memory:
            saved = await memory.save_state("c-1", {"buyer_temperature": "hot"})
            await asyncio.sleep(1.05)
            loaded = await memory.load_state("c-1")
            return saved, loaded, await memory.get_stats()

    with caplog.at_level(logging.DEBUG, logger="memory_core"):
        saved, loaded, stats = asyncio.run(bot())
        with SyncBuyerConversationMemory.from_url(bot_without_health_rights,
                                                  config) as sync:
            assert sync.load_state("c-1") is not None
    assert saved is True and loaded is not None and loaded["buyer_temperature"] == "hot"
    assert stats["errors"] == 0 and stats["circuit_open"] is False
    refused = [r for r in caplog.records if "health counters not published" in r.getMessage()]
    assert [r.levelno for r in refused] == [logging.WARNING, logging.DEBUG, logging.WARNING]
    assert "NoPermissionError" in refused[0].getMessage()
    assert health_keys(real_raw) == []


def test_with_the_health_keys_in_its_acl_the_bot_publishes(
        real_redis_url: str, real_raw: redis.Redis) -> None:
    real_raw.execute_command("ACL", "SETUSER", "bot-health", "on", ">bot-pw",
                             *BOT_ACL.split(), "~buyer_conversation_memory.health:*")
    try:
        url = real_redis_url.replace("redis://", "redis://bot-health:bot-pw@")
        with SyncBuyerConversationMemory.from_url(
                url, MemoryConfig(health_publish_seconds=30)) as memory:
            assert memory.save_state("c-1", {"buyer_temperature": "hot"})
    finally:
        real_raw.execute_command("ACL", "DELUSER", "bot-health")
    assert record(real_raw)["counters"]["saves"] == 1


# reading ---------------------------------------------------------------------------------

def test_read_health_aggregates_every_process(real_raw: redis.Redis) -> None:
    now = time.time()
    plant(real_raw, "a:1:00000001", calls=100, loads=50, hits=40, misses=10, errors=2,
          published_at=now - 5)
    plant(real_raw, "b:2:00000002", calls=300, loads=150, hits=140, misses=10, errors=1,
          published_at=now - 20)
    plant(real_raw, "c:3:00000003", calls=100, skipped=60, errors=3, circuit_open=True,
          published_at=now - 1)
    report = read_health(real_raw, PREFIX)
    assert report.seen == 3 and not report.unreadable and not report.truncated
    assert report.hit_rate == pytest.approx(180 / 200)
    assert report.error_rate == pytest.approx(6 / 500)
    assert report.skipped_rate == pytest.approx(60 / 500)
    assert report.breaker_open == 1
    assert report.last_seen is not None
    assert abs(report.last_seen.timestamp() - (now - 1)) < 0.01
    by_name = {p.process: p for p in report.processes}
    assert by_name["a:1:00000001"].hit_rate == pytest.approx(0.8)
    assert by_name["b:2:00000002"].error_rate == pytest.approx(1 / 300)


def test_read_health_survives_planted_records(store_url: str, raw: redis.Redis) -> None:
    plant(raw, "good:1:00000001", calls=10, loads=10, hits=5, misses=5,
          host="evil\x1b[2J\u202ehost")
    raw.set(HEALTH + "huge", b"{" + b" " * (4 * MAX_RECORD_BYTES) + b"}")
    raw.hset(HEALTH + "hash", mapping={"a": "b"})
    raw.set(HEALTH + "not-json", b"\x00\x01garbage")
    raw.set(HEALTH + "a-list", b"[1, 2]")
    raw.set(HEALTH + "schema-2", orjson.dumps({"schema": 2, "counters": {}}))
    raw.set(HEALTH + "forged", b'{"schema": 1, "host": ["not", "text"], "pid": -5, '
            b'"published_at": 1e12, "circuit_open": "yes", "breaker_opened_seconds_ago": 1e300,'
            b' "counters": {"calls": "9", "hits": -3, "misses": true, "errors": 1e30}}')
    raw.set(HEALTH.encode() + b"\xff\xfe:1:bytes", orjson.dumps({"schema": 1,
                                                                 "counters": {"calls": 1}}))
    report = read_health(raw, PREFIX)
    problems = sorted(p.problem or "" for p in report.unreadable)
    assert len(problems) == 5
    assert any("larger than" in p for p in problems)
    assert any("another Redis type" in p for p in problems)
    assert "not JSON" in problems
    assert report.seen == 3
    forged = next(p for p in report.processes if p.process == "forged")
    assert forged.host == "" and forged.pid is None and forged.published_at is None
    assert forged.circuit_open is False and forged.breaker_opened_seconds_ago is None
    assert set(forged.counters.values()) == {0}
    odd = next(p for p in report.processes if p.process.endswith(":1:bytes"))
    assert odd.process == "\\xff\\xfe:1:bytes"
    good = next(p for p in report.processes if p.process == "good:1:00000001")
    assert good.host == "evil\x1b[2J\u202ehost"  # kept as text; screens escape it
    table = health_frame(report)
    cells = " ".join(str(v) for v in table.to_numpy().ravel())
    assert "\x1b" not in cells and "\u202e" not in cells and "\\x1b[2J\\u202ehost" in cells


def test_read_health_reads_a_bounded_number_of_records(fake_url: str) -> None:
    client = SyncBuyerConversationMemory.from_url(fake_url).client
    for index in range(30):
        plant(client, f"p:{index}:0000000{index % 10}", calls=1)
    report = read_health(client, PREFIX, limit=10)
    assert report.seen == 10 and report.truncated


# the dashboard page ---------------------------------------------------------------------

SERVER_PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "server.py")


def run_server_page(role: str = "operator") -> AppTest:
    """The page signed in as ``role`` (app.py registers it; here it runs on its own)."""
    def page(path: str) -> None:
        import runpy

        import streamlit as st

        from dashboard import auth

        auth.sign_in(st.secrets["password"])
        runpy.run_path(path, run_name="__main__")

    at = AppTest.from_function(page, default_timeout=60, args=(SERVER_PAGE,))
    at.secrets["password"] = PASSWORDS[role]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def dashboard_memory(real_redis_url: str, monkeypatch: pytest.MonkeyPatch,
                     isolated_dashboard: None) -> Iterator[SyncBuyerConversationMemory]:
    monkeypatch.setenv("REDIS_URL", real_redis_url)
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, PASSWORDS["operator"])
    monkeypatch.setenv(VIEWER_PASSWORD_ENV, PASSWORDS["viewer"])
    forget_previews()
    with SyncBuyerConversationMemory.from_url(real_redis_url) as opened:
        yield opened


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_server_page_shows_health_cost_and_keys_that_are_not_buyers(
        dashboard_memory: SyncBuyerConversationMemory, real_raw: redis.Redis) -> None:
    memory = dashboard_memory
    assert memory.save_state("c-1", {"buyer_temperature": "hot"})
    plant(real_raw, "bot-a:1:00000001", calls=200, loads=100, hits=90, misses=10, errors=2)
    plant(real_raw, "bot-b:2:00000002", calls=50, skipped=20, circuit_open=True,
          host="![x](https://evil.example/p.png)\x1b[2J")
    real_raw.set(memory.key_for("garbage"), b"\x1b]0;pwned\x07 not a record")
    real_raw.hset(memory.key_for("foreign"), mapping={"owner": "another app"})
    at = run_server_page()
    shown = metrics(at)
    assert shown["Processes seen"] == "2"
    assert shown["Hit rate"] == "90.0%" and shown["Error rate"] == "0.8%"
    assert shown["Breaker open"] == "1 of 2"
    assert any("circuit breaker open" in e.value for e in at.error)
    assert shown["Used memory"].endswith(("KiB", "MiB"))
    assert shown["maxmemory"] == "no limit"
    assert shown["Per buyer key (measured)"].endswith(" B")
    table = at.dataframe[0].value
    assert list(table["process"]) == ["bot-a:1:00000001", "bot-b:2:00000002"]
    assert "\x1b" not in "".join(table["host"]) and "https" in "".join(table["host"])
    assert not any("evil.example" in m.value for m in at.markdown)
    assert sorted(at.selectbox(key="server_key_choice").options) == ["foreign", "garbage"]


def test_an_operator_inspects_and_deletes_a_key_that_is_not_a_buyer(
        dashboard_memory: SyncBuyerConversationMemory, real_raw: redis.Redis) -> None:
    memory = dashboard_memory
    real_raw.set(memory.key_for("garbage"), b"\x1b]0;pwned\x07 not a record")
    at = run_server_page()
    at.selectbox(key="server_key_choice").select("garbage").run()
    assert metrics(at)["Redis type"] == "string"
    assert metrics(at)["Size"] == "23 B"
    at.toggle[0].set_value(True).run()
    assert [t.value for t in at.text] == ["\\x1b]0;pwned\\x07 not a record"]
    at.text_input(key="server_delete_confirm").input("wrong").run()
    at.button(key="server_delete").click().run()
    assert any("does not match" in e.value for e in at.error)
    assert real_raw.exists(memory.key_for("garbage")) == 1
    at.text_input(key="server_delete_confirm").input("garbage").run()
    at.button(key="server_delete").click().run()
    assert not at.exception
    assert real_raw.exists(memory.key_for("garbage")) == 0
    assert any("Deleted the key" in s.value for s in at.success)
    assert any("Every key under the prefix is a readable buyer" in s.value for s in at.success)
    actions = [(e.action, e.contact_id, e.outcome) for e in
               audit.read_events(memory.client, memory.prefix)]
    # one entry for the preview however often the page reran, one for the deletion
    assert actions == [("delete_key", "garbage", "deleted"),
                       ("inspect_key", "garbage", "shown")]


@pytest.mark.parametrize(("key", "typed"), [(b"bad\xff-id", "bad\\xff-id"),
                                            (b"<b>a b</b>", "<b>a b</b>")])
def test_a_sound_record_under_an_id_no_bot_can_ask_for_is_listed_and_deleted(
        dashboard_memory: SyncBuyerConversationMemory, real_raw: redis.Redis,
        key: bytes, typed: str) -> None:
    """Regression: a key that is not UTF-8 crashed this page, and a record under an id
    with a space was a "buyer" nobody could open or delete but with redis-cli."""
    memory = dashboard_memory
    assert memory.save_state("c-1", {"buyer_temperature": "hot"})
    raw_key = memory.prefix.encode() + b":" + key
    real_raw.set(raw_key, real_raw.get(memory.key_for("c-1")))
    at = run_server_page()
    assert at.selectbox(key="server_key_choice").options == [typed]
    at.selectbox(key="server_key_choice").select(typed).run()
    assert any("no bot can load" in m.value for m in at.markdown)
    at.text_input(key="server_delete_confirm").input(typed).run()
    at.button(key="server_delete").click().run()
    assert not at.exception
    assert real_raw.exists(raw_key) == 0
    assert real_raw.exists(memory.key_for("c-1")) == 1


def test_the_demo_store_says_it_has_no_server_figures_instead_of_dashes(
        isolated_dashboard: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)

    def page(path: str) -> None:
        import runpy

        runpy.run_path(path, run_name="__main__")

    at = AppTest.from_function(page, default_timeout=60, args=(SERVER_PAGE,))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("no server memory figures" in i.value for i in at.info)
    assert not at.metric or "Used memory" not in metrics(at)
    assert not any("unknown command" in c.value for c in at.caption)
    assert at.selectbox(key="server_key_choice").options  # the demo's broken keys


def test_a_viewer_sees_no_preview_and_cannot_delete(
        dashboard_memory: SyncBuyerConversationMemory, real_raw: redis.Redis) -> None:
    memory = dashboard_memory
    real_raw.set(memory.key_for("garbage"), b"Elena Ruiz +1 555 000 1234 in the clear")
    at = run_server_page("viewer")
    at.selectbox(key="server_key_choice").select("garbage").run()
    assert metrics(at)["Redis type"] == "string"
    assert not at.toggle and not at.button and not at.text
    assert "Elena" not in str([m.value for m in at.markdown])
    viewer = Access("viewer", "password", DashboardSettings(
        redis_url="redis://x", is_demo=False, config_path=None, read_only=False,
        allow_seeding=False), session_id="viewer-session")
    with pytest.raises(ActionRefused, match="only an operator"):
        delete_problem_key(viewer, memory, "garbage", "garbage", 0)
    assert real_raw.exists(memory.key_for("garbage")) == 1
    (event,) = audit.read_events(memory.client, memory.prefix)
    assert (event.action, event.outcome) == ("delete_key", "refused")


def test_the_server_page_says_how_to_turn_health_on_and_warns_near_maxmemory(
        dashboard_memory: SyncBuyerConversationMemory, real_raw: redis.Redis) -> None:
    assert dashboard_memory.save_state("c-1", {"buyer_temperature": "hot"})
    used = int(real_raw.info("memory")["used_memory"])
    real_raw.config_set("maxmemory", str(int(used / 0.85)))
    try:
        at = run_server_page()
    finally:
        real_raw.config_set("maxmemory", "0")
    assert any("health_publish_seconds" in i.value for i in at.info)
    assert any("of maxmemory is in use" in w.value for w in at.warning)
    share = metrics(at)["Share of maxmemory"]
    assert share.endswith("%") and 80 <= float(share[:-1]) < 100


def test_health_frame_says_when_a_breaker_opened(real_raw: redis.Redis) -> None:
    stats = {"calls": 5, "circuit_open": False}
    real_raw.set(HEALTH + "p:1:00000001", build_payload(
        stats, host="h", pid=1, kind="k", interval_seconds=30, started_at=time.time() - 60,
        published_at=time.time(), breaker_opened_seconds_ago=125.0))
    report = read_health(real_raw, PREFIX)
    assert report.breaker_opened_within(3600) == 1 and report.breaker_open == 0
    frame = health_frame(report, now=datetime.now(UTC) + timedelta(seconds=1))
    assert frame.loc[0, "breaker"] == "closed (opened 2 min ago)"


def test_the_server_page_run_without_sign_in_shows_nothing(
        dashboard_memory: SyncBuyerConversationMemory, real_raw: redis.Redis) -> None:
    plant(real_raw, "bot-a:1:00000001", calls=1)
    at = AppTest.from_file(SERVER_PAGE, default_timeout=60)
    at.secrets["dashboard_tests"] = "isolated"
    at.run()
    assert not at.exception
    assert any("Sign in first" in w.value for w in at.warning)
    assert not at.metric and not at.dataframe and not at.selectbox
