"""The audit trail: every operator write and every PII reveal, appended to a Redis stream.

One stream per store, ``<prefix>.audit`` (outside the ``<prefix>:*`` keyspace, so buyer
scans never see it), capped at about :data:`AUDIT_MAX_ENTRIES` entries with ``XADD MAXLEN
~``: the oldest entries fall off first. An entry holds the time, the actor (a dashboard
role and session, or the CLI's ``--actor`` / OS user), the action, the contact id(s), the
outcome and a short PII-free detail; never a name, phone, email or secret.

The stream lives in Redis, so whoever can write Redis can also forge or trim it: it is a
record for honest operators and an incident trail, not tamper-proof evidence. Entries read
back are treated as hostile like every other value: they are read through a Lua script
that cuts every entry and field server-side (:data:`_READ_LUA`), so one planted entry with
a huge field costs a bounded reply, and are decoded leniently. Every field written is
passed through :func:`~memory_core.safetext.printable`, so an actor such as
``x\\nCRITICAL forged`` cannot break a line in the stream, a log or a terminal.
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
from memory_core.safetext import printable

logger = logging.getLogger(__name__)

#: Entries kept, roughly (``MAXLEN ~`` trims whole stream nodes, so a few more may stay).
AUDIT_MAX_ENTRIES = 100_000
#: Characters kept per field when writing and when reading back.
_FIELD_LIMIT = 500
_FIELDS = ("time", "actor", "action", "contact_id", "outcome", "detail")
#: Field/value pairs read back per entry: ours are six, the rest of a planted one is junk.
_PAIRS_READ = 2 * len(_FIELDS)

#: The newest ARGV[1] entries of the stream at KEYS[1], each cut server-side to its first
#: ARGV[2] fields and values (that is, ARGV[2] / 2 pairs) of at most ARGV[3] bytes each,
#: so the reply is bounded however large a planted entry is. XREVRANGE still copies an
#: entry into the script (a stream has no ranged read of a field); what crosses the
#: network and reaches Python is cut. One declared key: valid on Redis Cluster.
_READ_LUA = """
local rows = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', tonumber(ARGV[1]))
local cap, size = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i, row in ipairs(rows) do
  local fields, kept = row[2], {}
  for j = 1, math.min(#fields, cap) do
    kept[j] = string.sub(fields[j], 1, size)
  end
  rows[i] = nil
  out[i] = {row[1], kept}
end
return out
"""


def audit_key(prefix: str) -> str:
    return f"{prefix}.audit"


def cli_actor(explicit: str | None = None) -> str:
    """The CLI's actor: ``--actor`` when given, else the OS user running the command.

    Escaped (:func:`~memory_core.safetext.printable`): the actor goes into log lines and
    onto terminals, and ``--actor $'x\\nCRITICAL forged'`` must not start a line.
    """
    if explicit and explicit.strip():
        return f"cli:{printable(explicit.strip()[:100])}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with an arbitrary uid)
        user = "unknown"
    return f"cli:{printable(user[:100])}"


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
    """A value as one escaped line of at most :data:`_FIELD_LIMIT` characters."""
    text = str(value if value is not None else "")[:_FIELD_LIMIT]
    return printable(text)[:_FIELD_LIMIT]


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
        logger.warning("audit entry for %s by %s could not be written: %s", entry["action"],
                       entry["actor"], type(exc).__name__)
        if strict:
            raise StoreUnavailable(f"the audit entry could not be written: {exc}") from exc
        return False
    return True


def _decode(value: object) -> str:
    """Leniently decoded and cut: a field read back may be any bytes (a cut UTF-8 too)."""
    if isinstance(value, bytes):
        return value[:_FIELD_LIMIT * 4].decode("utf-8", "replace")[:_FIELD_LIMIT]
    return str(value if value is not None else "")[:_FIELD_LIMIT]


def read_events(client: Any, prefix: str, *, limit: int = 1000) -> list[AuditEvent]:
    """The newest ``limit`` entries, newest first. Raises StoreUnavailable.

    Read through :data:`_READ_LUA`, so the reply holds at most ``limit`` entries of
    :data:`_PAIRS_READ` pairs of :data:`_FIELD_LIMIT` bytes each, whatever was planted.
    """
    if not 1 <= limit <= AUDIT_MAX_ENTRIES:
        raise ValueError(f"limit={limit} must be between 1 and {AUDIT_MAX_ENTRIES}")
    key = audit_key(prefix)
    try:
        rows = client.eval(_READ_LUA, 1, key, limit, 2 * _PAIRS_READ, _FIELD_LIMIT)
    except redis.ResponseError as exc:
        if "WRONGTYPE" in str(exc):  # the key holds something else: not our stream
            raise StoreUnavailable(f"{key} is not an audit stream: {exc}") from exc
        raise StoreUnavailable(f"{key} could not be read (the audit trail is read with "
                               f"EVAL; may this Redis user run scripts?): {exc}"
                               ) from exc
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    events = []
    for entry_id, fields in rows or []:
        flat = list(fields or [])[:2 * _PAIRS_READ]
        values = {_decode(k): _decode(v) for k, v in zip(flat[::2], flat[1::2], strict=False)}
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
