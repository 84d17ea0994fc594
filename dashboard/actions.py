"""Operator actions of the dashboard as plain functions (so tests can call them directly).

Each one checks the session's :class:`~dashboard.auth.Access` itself: hiding a button is
not enough, a refused action must stay refused however it is reached (a crafted widget
state, a stale button, a page run on its own). A refusal for lack of rights is written to
the audit trail (unless the dashboard is read-only: then it writes nothing). Writes go
through memory_core.admin and memory_core.erasure, which log and audit them under the
session's actor (``dashboard:<role>:<session>``); a PII reveal and a search by phone or
email are audited here.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from dashboard.auth import Access
from memory_core import admin, audit, erasure
from memory_core.seeding import SeedOptions, generate_buyers
from memory_core.store import SeedWrite, SyncBuyerConversationMemory


class ActionRefused(Exception):
    """This session may not do this, or its confirmation did not match."""


def _refuse(access: Access, memory: SyncBuyerConversationMemory, action: str,
            contact_id: str, reason: str) -> ActionRefused:
    """The exception to raise, after recording the attempt under the action name that
    memory_core gives the write (a read-only dashboard writes nothing, not even this: its
    Redis user may well lack the right)."""
    if not access.read_only:
        audit.append_event(memory.client, memory.prefix, actor=access.actor, action=action,
                           contact_id=contact_id, outcome="refused", detail=reason[:120])
    return ActionRefused(reason)


def _why_not(access: Access) -> str | None:
    """Why this session may not change data or reveal PII; None when it may."""
    if not access.signed_in:
        return "sign in first"
    if access.settings.read_only:
        return ("the dashboard is read-only (MEMORY_DASHBOARD_READ_ONLY / read_only in "
                "secrets); write actions and PII reveal are disabled")
    if access.via == "open":
        return ("the dashboard is read-only: no operator password is configured "
                "(MEMORY_DASHBOARD_OPERATOR_PASSWORD, or operator_password in [auth])")
    if not access.is_operator:
        return f"only an operator may do this; this session is signed in as {access.role}"
    return None


def _require_operator(access: Access, memory: SyncBuyerConversationMemory, action: str,
                      contact_id: str = "") -> None:
    reason = _why_not(access)
    if reason is not None:
        raise _refuse(access, memory, action, contact_id, reason)


#: A reveal shown again by a rerun of the same page (any click while it is on screen) is
#: not a new entry: one per session, buyer and revision within this many seconds.
REVEAL_AUDIT_SECONDS = 600
_REVEALS_KEPT = 4096
_recent_reveals: OrderedDict[tuple[str, str, int | None], float] = OrderedDict()
_reveals_lock = threading.Lock()


def _seen_recently(key: tuple[str, str, int | None]) -> bool:
    """Whether this reveal was audited in the last REVEAL_AUDIT_SECONDS (kept in this
    process, not in session state, so nothing a session sends can skip an entry)."""
    now = time.monotonic()
    with _reveals_lock:
        seen = _recent_reveals.get(key)
        return seen is not None and now - seen < REVEAL_AUDIT_SECONDS


def _remember(key: tuple[str, str, int | None]) -> None:
    with _reveals_lock:
        _recent_reveals[key] = time.monotonic()
        _recent_reveals.move_to_end(key)
        while len(_recent_reveals) > _REVEALS_KEPT:
            _recent_reveals.popitem(last=False)


def forget_reveals() -> None:
    """Audit the next reveal of every buyer again (tests)."""
    with _reveals_lock:
        _recent_reveals.clear()


def reveal_pii(access: Access, memory: SyncBuyerConversationMemory, contact_id: str,
               state: dict[str, Any], revision: int | None = None) -> dict[str, Any]:
    """The state with its name, phone and email, for an operator; audited first.

    When the audit entry cannot be written the reveal is refused (StoreUnavailable):
    no PII is shown that the trail does not record.
    """
    _require_operator(access, memory, "reveal_pii", contact_id)
    key = (access.session_id, contact_id, revision)
    if not _seen_recently(key):
        audit.append_event(memory.client, memory.prefix, actor=access.actor,
                           action="reveal_pii", contact_id=contact_id, outcome="shown",
                           detail=f"revision {revision}" if revision is not None else "",
                           strict=True)
        _remember(key)
    return state


def clear_buyer(access: Access, memory: SyncBuyerConversationMemory,
                contact_id: str, typed_confirmation: str,
                expected_revision: int | None) -> bool:
    """Delete one buyer after the operator typed its contact id; True if it existed.

    Only the revision on screen is deleted: a save by the bot since then raises
    RevisionConflict and nothing is deleted.
    """
    _require_operator(access, memory, "clear", contact_id)
    if typed_confirmation.strip() != contact_id:
        raise ActionRefused("the typed contact id does not match; nothing was deleted")
    return admin.delete_buyer(memory, contact_id, expected_revision=expected_revision,
                              actor=access.actor)


def reset_buyer_ttl(access: Access, memory: SyncBuyerConversationMemory,
                    contact_id: str, expected_revision: int | None) -> bool:
    _require_operator(access, memory, "reset_ttl", contact_id)
    return admin.reset_ttl(memory, contact_id, expected_revision=expected_revision,
                           actor=access.actor)


def _require_seeding(access: Access, memory: SyncBuyerConversationMemory, action: str) -> None:
    _require_operator(access, memory, action)
    if not access.can_seed:
        raise _refuse(access, memory, action, "",
                      "seeding is only allowed on the demo store, or where allow_seeding is "
                      "set (MEMORY_DASHBOARD_ALLOW_SEEDING=1), so production is never "
                      "filled with test data by accident")


def seed_buyers(access: Access, memory: SyncBuyerConversationMemory, options: SeedOptions,
                progress: Callable[[int, int], None] | None = None) -> SeedWrite:
    """Generate and write QA buyers; ids that hold real buyers are left alone."""
    _require_seeding(access, memory, "seed")
    options.validate()
    items = (buyer.as_save_item() for buyer in generate_buyers(options))
    return admin.seed_generated(memory, items, options.count, progress, actor=access.actor)


def seed_file(access: Access, memory: SyncBuyerConversationMemory,
              content: bytes, file_name: str) -> SeedWrite:
    """Seed the states of an uploaded JSON/YAML file; a bad file writes nothing.

    A file naming a real buyer's contact id is refused whole: the dashboard offers no
    way to overwrite real buyers (the CLI's --overwrite-real does, logged).
    """
    _require_seeding(access, memory, "seed")
    return admin.seed_scenarios(memory, admin.parse_scenarios(content, file_name),
                                actor=access.actor)


def remove_qa_seeds(access: Access, memory: SyncBuyerConversationMemory,
                    contact_ids: list[str], confirmed: bool) -> int:
    """Delete the QA-seeded buyers listed (and only QA seeds); needs explicit confirmation."""
    _require_operator(access, memory, "clear_qa_seeds")
    if not confirmed:
        raise ActionRefused("tick the confirmation first; nothing was deleted")
    return admin.clear_qa_seeds(memory, contact_ids, actor=access.actor)


ERASE_CONFIRMATION = "ERASE"


def find_buyers(access: Access, memory: SyncBuyerConversationMemory, *,
                phone: str | None = None, email: str | None = None) -> list[str]:
    """Contact ids whose state holds this phone or email, for an operator; audited.

    Finding by phone or email ties a person to a buyer, like a reveal does: viewers and
    read-only dashboards may not, and the audit entry records the kind, never the value.
    """
    kind = "phone" if phone is not None else "email"
    _require_operator(access, memory, f"find_by_{kind}")
    found = erasure.find_contact_ids(memory, phone=phone, email=email)
    audit.append_event(memory.client, memory.prefix, actor=access.actor,
                       action=f"find_by_{kind}", contact_id=",".join(found)[:400],
                       outcome=f"{len(found)} found")
    return found


def erase_buyers(access: Access, memory: SyncBuyerConversationMemory, *,
                 typed_confirmation: str, phone: str | None = None,
                 email: str | None = None,
                 contact_ids: list[str] | None = None) -> erasure.ErasureReceipt:
    """Erase the buyers with this phone or email and their lookup entries ("delete my
    data"); the operator must have typed ERASE. ``contact_ids``: exactly the ones the
    operator saw and confirmed (a search now could find others). Returns the receipt."""
    _require_operator(access, memory, "erase")
    if typed_confirmation.strip() != ERASE_CONFIRMATION:
        raise ActionRefused(f"type {ERASE_CONFIRMATION} to confirm; nothing was erased")
    return erasure.erase(memory, contact_ids=contact_ids, phone=phone, email=email,
                         actor=access.actor)


def train_dictionary(access: Access, memory: SyncBuyerConversationMemory, *,
                     sample_size: int,
                     progress: Callable[[int, int], None] | None = None
                     ) -> admin.TrainedDictionary:
    """Train a zstd dictionary on sampled stored states and make saves use it; audited
    under the operator's actor. Not destructive (older dictionaries stay, so every record
    still loads), hence no confirmation; raises InvalidState when too few states are
    stored, StoreUnavailable when Redis is down."""
    _require_operator(access, memory, "train_dictionary")
    return admin.train_dictionary_from_store(memory, sample_size=sample_size,
                                             actor=access.actor, progress=progress)
