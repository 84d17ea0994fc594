"""What the README tells people to do works: the bot handler example and the ACL lines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from memory_core import (
    BuyerConversationMemory,
    SyncBuyerConversationMemory,
    admin,
    audit,
    erasure,
    rotation,
)
from memory_core.config import load_config
from memory_core.crypto import KEYS_ENV, generate_key_pair
from memory_core.inventory import scan_summaries

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def acl_line(user: str) -> str:
    match = re.search(rf"ACL SETUSER {user} [^\n]*", README)
    assert match is not None, f"no ACL line for {user} in the README"
    return match.group(0)


def test_the_bot_handler_example_keeps_every_message(store_url: str) -> None:
    source = python_blocks()[0]
    assert "update_state" in source
    source = source.replace('load_config("jorge_bots.yaml")', "load_config()")
    source = source.replace('"redis://localhost:6379/0"', repr(store_url))

    async def qualify(state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        asked = sum(1 for m in state["conversation_history"] if m["role"] == "user")
        return f"reply {asked}", {"buyer_temperature": "warm" if asked > 1 else "cold"}

    namespace: dict[str, Any] = {"qualify": qualify}
    exec(compile(source, "README.md", "exec"), namespace)

    async def conversation() -> tuple[list[str], dict[str, Any] | None]:
        memory: BuyerConversationMemory = namespace["memory"]
        try:
            replies = [await namespace["handle_message"]("contact-readme", text)
                       for text in ("Hi", "3 bedrooms please")]
            return replies, await memory.load_state("contact-readme")
        finally:
            await memory.aclose()

    replies, state = asyncio.run(conversation())
    assert replies == ["reply 1", "reply 2"]
    assert state is not None and state["state_revision"] == 2
    assert [m["content"] for m in state["conversation_history"]] == [
        "Hi", "reply 1", "3 bedrooms please", "reply 2"]
    assert state["buyer_temperature"] == "warm"


def acl_user_url(real_redis_url: str, user: str) -> str:
    password = uuid.uuid4().hex
    admin_client = redis.Redis.from_url(real_redis_url)
    try:
        line = acl_line(user).replace(">BOT_PASSWORD", f">{password}").replace(
            ">OPS_PASSWORD", f">{password}")
        admin_client.execute_command(*line.split())
    finally:
        admin_client.close()
    return real_redis_url.replace("redis://", f"redis://{user}:{password}@")


@pytest.fixture
def acl_users(real_redis_url: str) -> Any:
    yield
    admin_client = redis.Redis.from_url(real_redis_url)
    try:
        admin_client.execute_command("ACL", "DELUSER", "buyer-bot", "memory-ops")
    finally:
        admin_client.close()


@pytest.mark.real_redis
def test_the_bot_acl_allows_everything_the_bot_does(real_redis_url: str, acl_users: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    url = acl_user_url(real_redis_url, "buyer-bot")
    # with encryption and the phone/email lookup on, as in production
    monkeypatch.setenv(KEYS_ENV, generate_key_pair("k1"))
    config = load_config()

    async def bot() -> tuple[Any, ...]:
        async with BuyerConversationMemory.from_url(url, config) as memory:
            saved = await memory.save_state("acl-buyer", {"buyer_temperature": "hot",
                                                          "buyer_phone": "+15550001234"})
            updated = await memory.update_state("acl-buyer", lambda s: s.update(
                buyer_persona="investor", buyer_phone="+15550009999"))
            loaded = await memory.load_state("acl-buyer")
            cleared = await memory.clear_state("acl-buyer")
            return saved, updated, loaded, cleared, await memory.get_stats()

    with assert_no_refused_side_writes():
        saved, updated, loaded, cleared, stats = asyncio.run(bot())
    assert saved and cleared
    assert updated is not None and loaded == updated
    assert stats["errors"] == 0


@pytest.mark.real_redis
def test_the_operator_acl_allows_every_operator_action(real_redis_url: str, acl_users: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url = acl_user_url(real_redis_url, "memory-ops")
    monkeypatch.setenv(KEYS_ENV, generate_key_pair("k1"))
    with (assert_no_refused_side_writes(),
          SyncBuyerConversationMemory.from_url(url, load_config()) as memory):
        assert memory.save_state("acl-real", {"buyer_email": "a@example.com"})
        assert admin.seed_scenarios(memory, admin.parse_scenarios(
            b'{"contact_id": "acl-seed", "buyer_temperature": "cold"}')).written == 1
        assert len(scan_summaries(memory)) == 2
        assert admin.reset_ttl(memory, "acl-real", expected_revision=1)
        assert admin.clear_qa_seeds(memory) == 1
        assert erasure.find_contact_ids(memory, email="A@example.com") == ["acl-real"]
        assert rotation.reencrypt_store(memory).failed == 0
        assert admin.delete_buyer(memory, "acl-real", expected_revision=1)
        assert erasure.erase(memory, email="a@example.com").erased == 0
        assert admin.describe_store(memory)["keys"] >= 1  # the audit stream
        assert len(audit.read_events(memory.client, memory.prefix)) == 6


@contextlib.contextmanager
def assert_no_refused_side_writes() -> Iterator[None]:
    """Fail if an audit entry or a lookup update was refused: those only log a warning."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    target = logging.getLogger("memory_core")
    target.addHandler(handler)
    try:
        yield
    finally:
        target.removeHandler(handler)
    refused = [r.getMessage() for r in records
               if "could not be written" in r.getMessage() or "not updated" in r.getMessage()
               or "NOPERM" in r.getMessage()]
    assert not refused
