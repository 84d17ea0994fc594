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

import logging
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
from memory_core.safetext import LOG_CHARS, printable
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
        """The lookup token (a keyed hash) as receipts and the audit trail name it.

        Without a secret nothing is recorded: any unkeyed or salted hash of a phone number
        is undone by trying all ten billion of them.
        """
        if secret is not None:
            return f"hmac-sha256:{lookup.token(secret, self.kind, self.normalised)}"
        return f"{self.kind} (not recorded: no lookup secret configured)"


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


class _Unreadable(Exception):
    """A candidate's record exists but cannot be decoded here (a missing key, damage)."""


def _state_or_none(memory: SyncBuyerConversationMemory, contact_id: str) -> dict[str, Any] | None:
    """The stored state, None when there is none; _Unreadable when it cannot be read."""
    try:
        record = memory.read_record(contact_id)
    except (CorruptRecord, InvalidContactId, redis.ResponseError) as exc:
        raise _Unreadable(str(exc)) from None
    return record.state if record is not None else None


@dataclass(frozen=True)
class Candidates:
    """What a search found: verified matches, and records that could not be checked."""

    contact_ids: list[str]
    #: contact id -> why its record could not be read (it may be this buyer's)
    unreadable: dict[str, str]


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


def _check(memory: SyncBuyerConversationMemory, contact_ids: Iterable[str],
           wanted: Identifier) -> tuple[Candidates, list[str]]:
    """Verify each candidate against its state: (what matched or could not be read, gone).

    Gone means no record, or a readable record with another phone or email: the lookup
    entry is stale. A record that cannot be read is never called stale: it may be this
    buyer's under a key this process lacks.
    """
    found, unreadable, stale = [], {}, []
    for contact_id in contact_ids:
        try:
            state = _state_or_none(memory, contact_id)
        except _Unreadable as exc:
            unreadable[contact_id] = str(exc)
            continue
        if state is not None and lookup.matches(state, wanted.kind, wanted.normalised):
            found.append(contact_id)
        else:
            stale.append(contact_id)
    return Candidates(sorted(found), dict(sorted(unreadable.items()))), stale


def _find_by_lookup(memory: SyncBuyerConversationMemory, wanted: Identifier,
                    secret: bytes) -> Candidates:
    key = lookup.lookup_key(memory.prefix, lookup.token(secret, wanted.kind, wanted.normalised))
    try:
        members = _candidates(memory, key)
    except redis.ResponseError:  # another type planted at the key: no lookup there
        return Candidates([], {})
    candidates, stale = _check(memory, members, wanted)
    if stale:
        memory.client.srem(key, *stale)
    return candidates


def _find_by_scan(memory: SyncBuyerConversationMemory, wanted: Identifier) -> Candidates:
    ids = (memory.contact_id_for(key)
           for key in memory.client.scan_iter(match=memory.scan_pattern, count=_BATCH))
    candidates, _ = _check(memory, ids, wanted)
    if candidates.unreadable:  # a scan reaches every record: only lookup candidates count
        candidates = Candidates(candidates.contact_ids, {})
    return candidates


def find_candidates(memory: SyncBuyerConversationMemory, *, phone: str | None = None,
                    email: str | None = None, scan: bool = False) -> Candidates:
    """Buyers whose stored state has this phone (normalised) or email (any case), and the
    lookup's candidates whose record could not be read here."""
    wanted = identifier(phone=phone, email=email)
    secret = memory.config.lookup_secret
    try:
        if secret is not None and not scan:
            return _find_by_lookup(memory, wanted, secret)
        return _find_by_scan(memory, wanted)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc


def find_contact_ids(memory: SyncBuyerConversationMemory, *, phone: str | None = None,
                     email: str | None = None, scan: bool = False) -> list[str]:
    """Contact ids whose stored state has this phone (normalised) or email (any case)."""
    return find_candidates(memory, phone=phone, email=email, scan=scan).contact_ids


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
    """Delete every state of a contact id, phone or email, and its lookup entries.

    With ``contact_ids`` and a phone or email, exactly those ids are erased (the ones an
    operator confirmed after a search) and the receipt names the phone or email hashed.
    """
    secret = memory.config.lookup_secret
    extra_tokens: list[str] = []
    named = "contact id"
    if phone is not None or email is not None:
        wanted = identifier(phone=phone, email=email)
        named = wanted.hashed(secret)
        if secret is not None:
            extra_tokens.append(lookup.token(secret, wanted.kind, wanted.normalised))
    if contact_ids is not None:
        ids = [validate_contact_id(c) for c in contact_ids]
    elif phone is not None or email is not None:
        ids = find_contact_ids(memory, phone=phone, email=email, scan=scan)
    else:
        raise InvalidState("give contact ids, or a phone, or an email")
    erased = removed = 0
    try:
        for contact_id in ids:
            try:
                state = _state_or_none(memory, contact_id)
            except _Unreadable:
                state = None  # erased all the same; its own entries expire or go stale
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
    logger.info("%s erased %d buyer(s) (%s): %s", printable(actor, 120), erased, named,
                   printable(", ".join(ids), LOG_CHARS) or "none found")
    audit.append_event(memory.client, memory.prefix, actor=actor, action="erase",
                       contact_id=",".join(ids), outcome=f"{erased} erased", detail=named)
    return receipt
