"""The audit trail: every operator write and every PII reveal, appended to a Redis stream.

One stream per store, ``<prefix>.audit`` (outside the ``<prefix>:*`` keyspace, so buyer
scans never see it), capped at about :data:`AUDIT_MAX_ENTRIES` entries with ``XADD MAXLEN
~``: the oldest entries fall off first. An entry holds the time, the actor (a dashboard
role and session, or the CLI's ``--actor`` / OS user), the action, the contact id(s), the
outcome and a short PII-free detail; never a name, phone, email or secret.

The stream lives in Redis, so whoever can write Redis can also forge or trim it: it is a
record for honest operators and an incident trail, not tamper-proof evidence. Entries read
back are treated as hostile like every other value (bounded, decoded leniently).
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from memory_core.errors import (
    REDIS_FAULTS,
    StoreUnavailable,
)

logger = logging.getLogger(__name__)

#: Entries kept, roughly (``MAXLEN ~`` trims whole stream nodes, so a few more may stay).
AUDIT_MAX_ENTRIES = 100_000
#: Characters kept per field when writing and when reading back.
_FIELD_LIMIT = 500
_FIELDS = ("time", "actor", "action", "contact_id", "outcome", "detail")


def audit_key(prefix: str) -> str:
    return f"{prefix}.audit"


def cli_actor(explicit: str | None = None) -> str:
    """The CLI's actor: ``--actor`` when given, else the OS user running the command."""
    if explicit and explicit.strip():
        return f"cli:{explicit.strip()[:100]}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with an arbitrary uid)
        user = "unknown"
    return f"cli:{user}"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit entry as read back (every field is plain text)."""

    entry_id: str
    time: str
    actor: str
    action: str
    contact_id: str
    outcome: str
    detail: str

    def as_row(self) -> dict[str, str]:
        return {"time": self.time, "actor": self.actor, "action": self.action,
                "contact_id": self.contact_id, "outcome": self.outcome,
                "detail": self.detail, "entry_id": self.entry_id}


def _text(value: object) -> str:
    return str(value if value is not None else "")[:_FIELD_LIMIT]


def append_event(client: Any, prefix: str, *, actor: str, action: str, contact_id: str = "",
                 outcome: str, detail: str = "", strict: bool = False) -> bool:
    """Append one entry; True once stored.

    An audit entry is written after the action it records (with its outcome). When Redis
    refuses it, the failure is logged at WARNING (without PII) and, with ``strict``,
    raised as :class:`StoreUnavailable`; by default it does not undo or hide the action.
    """
    entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
             "actor": _text(actor), "action": _text(action),
             "contact_id": _text(contact_id), "outcome": _text(outcome),
             "detail": _text(detail)}
    try:
        client.xadd(audit_key(prefix), entry, maxlen=AUDIT_MAX_ENTRIES, approximate=True)
    except (*REDIS_FAULTS, redis.ResponseError) as exc:
        logger.warning("audit entry for %s by %s could not be written: %s", action, actor,
                       type(exc).__name__)
        if strict:
            raise StoreUnavailable(f"the audit entry could not be written: {exc}") from exc
        return False
    return True


def _decode(value: object) -> str:
    if isinstance(value, bytes):
        return value[:_FIELD_LIMIT * 4].decode("utf-8", "replace")[:_FIELD_LIMIT]
    return _text(value)


def read_events(client: Any, prefix: str, *, limit: int = 1000) -> list[AuditEvent]:
    """The newest ``limit`` entries, newest first. Raises StoreUnavailable."""
    if not 1 <= limit <= AUDIT_MAX_ENTRIES:
        raise ValueError(f"limit={limit} must be between 1 and {AUDIT_MAX_ENTRIES}")
    try:
        rows = client.xrevrange(audit_key(prefix), count=limit)
    except redis.ResponseError as exc:  # the key holds something else: not our stream
        raise StoreUnavailable(f"{audit_key(prefix)} is not an audit stream: {exc}") from exc
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    events = []
    for entry_id, fields in rows:
        values = {_decode(k): _decode(v) for k, v in list(fields.items())[:len(_FIELDS) * 2]}
        events.append(AuditEvent(_decode(entry_id), *(values.get(f, "") for f in _FIELDS)))
    return events


def count_events(client: Any, prefix: str) -> int:
    """Entries in the stream now (0 when there is none)."""
    try:
        return int(client.xlen(audit_key(prefix)))
    except redis.ResponseError:
        return 0
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
