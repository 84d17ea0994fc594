"""Find and erase a buyer by phone or email: a "delete my data" request, with a receipt.

With a lookup secret configured, :func:`find_contact_ids` asks the lookup
(:mod:`memory_core.lookup`) and verifies every candidate against its decrypted state.
Without one (or with ``scan=True``, for records saved before the lookup existed) it
reads and decodes every record: slow on a big store, but complete.

:func:`erase` deletes the states (whatever their revision: an erasure request wins over
a concurrent save) and their lookup entries, appends an audit entry, and returns a
receipt without PII: the identifier appears only as a keyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from memory_core import audit, lookup, scripts
from memory_core.errors import (
    REDIS_FAULTS,
    CorruptRecord,
    InvalidContactId,
    InvalidState,
    StoreUnavailable,
)
from memory_core.state import validate_contact_id
from memory_core.store import SyncBuyerConversationMemory

logger = logging.getLogger(__name__)
#: Members of one lookup set considered at most: an honest set holds a handful.
MAX_CANDIDATES = 1000
_BATCH = 1000


@dataclass(frozen=True)
class Identifier:
    """A normalised phone or email, and how it is named in receipts and logs."""

    kind: str  # lookup.PHONE or lookup.EMAIL
    normalised: str

    def hashed(self, secret: bytes | None) -> str:
        """The lookup token with a secret; else a salted hash (verifiable by the requester)."""
        if secret is not None:
            return f"hmac-sha256:{lookup.token(secret, self.kind, self.normalised)}"
        salt = secrets.token_hex(8)
        digest = hmac.new(salt.encode(), f"{self.kind}:{self.normalised}".encode(),
                          hashlib.sha256).hexdigest()
        return f"salted-sha256:{salt}:{digest}"


def identifier(*, phone: str | None = None, email: str | None = None) -> Identifier:
    """The identifier of a request; InvalidState saying what is wrong with it."""
    if (phone is None) == (email is None):
        raise InvalidState("give exactly one of a phone number or an email address")
    if phone is not None:
        normalised = lookup.normalise_phone(phone)
        if normalised is None:
            raise InvalidState("that is not a phone number: give 8-15 digits with the country "
                               "code, e.g. +1 555 000 1234")
        return Identifier(lookup.PHONE, normalised)
    normalised = lookup.normalise_email(email)
    if normalised is None:
        raise InvalidState("that is not an email address (expected name@domain)")
    return Identifier(lookup.EMAIL, normalised)


def _state_or_none(memory: SyncBuyerConversationMemory, contact_id: str) -> dict[str, Any] | None:
    try:
        record = memory.read_record(contact_id)
    except (CorruptRecord, InvalidContactId, redis.ResponseError):
        return None
    return record.state if record is not None else None


def _candidates(memory: SyncBuyerConversationMemory, key: str) -> list[str]:
    members: list[str] = []
    for member in memory.client.sscan_iter(key, count=_BATCH):
        if len(members) >= MAX_CANDIDATES:
            logger.warning("lookup set %s holds more than %d contact ids; only the first "
                           "%d were checked", key, MAX_CANDIDATES, MAX_CANDIDATES)
            break
        members.append(member.decode("utf-8", "replace") if isinstance(member, bytes)
                       else str(member))
    return members


def _find_by_lookup(memory: SyncBuyerConversationMemory, wanted: Identifier,
                    secret: bytes) -> list[str]:
    key = lookup.lookup_key(memory.prefix, lookup.token(secret, wanted.kind, wanted.normalised))
    try:
        candidates = _candidates(memory, key)
    except redis.ResponseError:  # another type planted at the key: no lookup there
        return []
    found, stale = [], []
    for contact_id in candidates:
        state = _state_or_none(memory, contact_id)
        if state is not None and lookup.matches(state, wanted.kind, wanted.normalised):
            found.append(contact_id)
        else:
            stale.append(contact_id)
    if stale:
        memory.client.srem(key, *stale)
    return sorted(found)


def _find_by_scan(memory: SyncBuyerConversationMemory, wanted: Identifier) -> list[str]:
    found = []
    for key in memory.client.scan_iter(match=memory.scan_pattern, count=_BATCH):
        contact_id = memory.contact_id_for(key)
        state = _state_or_none(memory, contact_id)
        if state is not None and lookup.matches(state, wanted.kind, wanted.normalised):
            found.append(contact_id)
    return sorted(found)


def find_contact_ids(memory: SyncBuyerConversationMemory, *, phone: str | None = None,
                     email: str | None = None, scan: bool = False) -> list[str]:
    """Contact ids whose stored state has this phone (normalised) or email (any case)."""
    wanted = identifier(phone=phone, email=email)
    secret = memory.config.lookup_secret
    try:
        if secret is not None and not scan:
            return _find_by_lookup(memory, wanted, secret)
        return _find_by_scan(memory, wanted)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc


@dataclass(frozen=True)
class ErasureReceipt:
    """What an erasure did, for the requester and the records: no PII."""

    time: str
    actor: str
    identifier: str  # a keyed or salted hash, or "contact id"
    contact_ids: tuple[str, ...]
    erased: int
    not_found: int
    lookup_entries_removed: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "contact_ids": list(self.contact_ids)}

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()


def _unindex(memory: SyncBuyerConversationMemory, secret: bytes, contact_id: str,
             state: dict[str, Any] | None, extra_tokens: Iterable[str]) -> int:
    tokens = set(extra_tokens)
    if state is not None:
        tokens |= lookup.state_tokens(secret, state)
    removed = 0
    for token in sorted(tokens):
        removed += int(memory.client.srem(lookup.lookup_key(memory.prefix, token), contact_id))
    return removed


def erase(memory: SyncBuyerConversationMemory, *, contact_ids: list[str] | None = None,
          phone: str | None = None, email: str | None = None, actor: str = "operator",
          scan: bool = False) -> ErasureReceipt:
    """Delete every state of a contact id, phone or email, and its lookup entries."""
    secret = memory.config.lookup_secret
    extra_tokens: list[str] = []
    if contact_ids is not None:
        if phone is not None or email is not None:
            raise InvalidState("give contact ids, or a phone, or an email; not several")
        ids = [validate_contact_id(c) for c in contact_ids]
        named = "contact id"
    else:
        wanted = identifier(phone=phone, email=email)
        ids = find_contact_ids(memory, phone=phone, email=email, scan=scan)
        named = wanted.hashed(secret)
        if secret is not None:
            extra_tokens.append(lookup.token(secret, wanted.kind, wanted.normalised))
    erased = removed = 0
    try:
        for contact_id in ids:
            state = _state_or_none(memory, contact_id)
            code, _ = memory.delete_key(memory.raw_key_for(contact_id))
            erased += code == scripts.DONE
            if secret is not None:
                removed += _unindex(memory, secret, contact_id, state, extra_tokens)
    except REDIS_FAULTS as exc:
        audit.append_event(memory.client, memory.prefix, actor=actor, action="erase",
                           contact_id=",".join(ids), outcome="failed", detail=named)
        raise StoreUnavailable.from_fault(
            exc, f"{erased} of {len(ids)} erased; run the erasure again") from exc
    receipt = ErasureReceipt(
        time=datetime.now(UTC).isoformat(timespec="seconds"), actor=actor, identifier=named,
        contact_ids=tuple(ids), erased=erased, not_found=len(ids) - erased,
        lookup_entries_removed=removed)
    logger.warning("%s erased %d buyer(s) (%s): %s", actor, erased, named,
                   ", ".join(ids) or "none found")
    audit.append_event(memory.client, memory.prefix, actor=actor, action="erase",
                       contact_id=",".join(ids), outcome=f"{erased} erased", detail=named)
    return receipt
