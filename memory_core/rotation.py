"""Re-encryption: rewrite every record (and dictionary) under the first configured key.

Run after switching encryption on (records written before stay in the clear until then)
or after putting a new key first. Each record is read, decoded with whichever configured
key it names, and written back under the first key by the save script with
``expected_revision`` set to the revision read and the key's own TTL kept: a save the
bot made in between wins, and the record is counted as skipped (the bot's save is
already encrypted, or the next run picks it up). Records already under the first key
are skipped, so an interrupted run is resumed by running it again. Rewritten records are
entered in the phone/email lookup again, whose secret may be derived from the new key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
import zstandard

from memory_core import audit, lookup, scripts
from memory_core import dictionaries as dicts
from memory_core.errors import (
    REDIS_FAULTS,
    ConfigError,
    CorruptRecord,
    InvalidContactId,
    InvalidState,
    StoreUnavailable,
)
from memory_core.record import HEADER_READ_BYTES, is_record, parse_summary
from memory_core.safetext import printable
from memory_core.state import parse_timestamp
from memory_core.store import SyncBuyerConversationMemory

logger = logging.getLogger(__name__)
_BATCH = 1000
#: Reasons listed per run at most; the counts stay exact.
_MAX_LISTED = 100

ProgressCallback = Callable[[int, int], None]


@dataclass
class Reencryption:
    """What a ``reencrypt`` run did."""

    key_id: str
    rewritten: int = 0
    skipped: int = 0
    failed: int = 0
    dictionaries_rewritten: int = 0
    #: dictionary key -> why it could not be rewritten (planted or damaged: records that
    #: name it are reported on their own)
    dictionary_failures: dict[str, str] = field(default_factory=dict)
    #: contact id -> why it failed (the first hundred)
    failures: dict[str, str] = field(default_factory=dict)
    #: contact ids a bot saved while the run was reading them (rewritten by the bot)
    changed_meanwhile: int = 0

    def fail(self, contact_id: str, why: str) -> None:
        self.failed += 1
        if len(self.failures) < _MAX_LISTED:
            self.failures[contact_id] = why


def _key_id_of(window: bytes) -> str | None:
    """The key id a record's header names ("" in the clear); None for legacy/unreadable."""
    if not is_record(window):
        return None
    return parse_summary(window).key_id


def pending_contact_ids(memory: SyncBuyerConversationMemory) -> tuple[list[str], int]:
    """Contact ids whose record is not under the first key yet, and how many are.

    Reads headers only (``GETRANGE``), so it costs what an inventory scan costs.
    """
    keyring = memory.config.keyring
    assert keyring is not None
    pending: list[str] = []
    done = 0
    keys: list[bytes] = []

    def flush() -> None:
        nonlocal done
        with memory.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.getrange(key, 0, HEADER_READ_BYTES - 1)
            windows = pipe.execute(raise_on_error=False)
        for key, window in zip(keys, windows, strict=True):
            contact_id = memory.contact_id_for(key)
            if not isinstance(window, bytes) or not window:
                pending.append(contact_id)  # another type, or gone: reported by the rewrite
                continue
            try:
                if _key_id_of(window) == keyring.primary_id:
                    done += 1
                    continue
            except CorruptRecord:
                pass
            pending.append(contact_id)
        keys.clear()

    try:
        for key in memory.client.scan_iter(match=memory.scan_pattern, count=_BATCH):
            keys.append(key)
            if len(keys) >= _BATCH:
                flush()
        if keys:
            flush()
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    return pending, done


def _rewrite_dictionaries(memory: SyncBuyerConversationMemory, report: Reencryption) -> None:
    """Every stored dictionary under the first key: records name them for as long as they live."""
    keyring = memory.config.keyring
    assert keyring is not None
    pattern = dicts.dictionary_key(memory.prefix, "*")
    current = dicts.current_dictionary_key(memory.prefix)
    for raw_key in memory.client.scan_iter(match=pattern, count=_BATCH):
        key = raw_key.decode("utf-8", "replace")
        if key == current:
            continue
        try:
            value = memory.client.getrange(raw_key, 0, dicts.MAX_DICTIONARY_BYTES + 64)
        except redis.ResponseError as exc:  # another Redis type planted under the name
            report.dictionary_failures[printable(key, 200)] = str(exc)
            continue
        if not isinstance(value, bytes) or not value:
            continue
        try:
            if value.startswith(dicts.ENCRYPTED_MAGIC + keyring.primary_id.encode() + b"\n"):
                continue
            dictionary = zstandard.ZstdCompressionDict(dicts.opened_value(value, keyring, key))
            expected_id = dicts.parse_dictionary_id(key.rsplit(":", 1)[-1])
            if expected_id is None or dictionary.dict_id() != expected_id:
                raise CorruptRecord("not the trained dictionary its key names")
        except (CorruptRecord, zstandard.ZstdError) as exc:
            report.dictionary_failures[printable(key, 200)] = str(exc)
            continue
        rewritten = dicts.stored_value(dictionary, keyring, key)
        # XX with KEEPTTL: never resurrect a pruned dictionary, never change its lifetime
        if memory.client.set(raw_key, rewritten, xx=True, keepttl=True):
            report.dictionaries_rewritten += 1


def reencrypt_store(memory: SyncBuyerConversationMemory, *, actor: str = "operator",
                    progress: ProgressCallback | None = None) -> Reencryption:
    """Rewrite every record not yet under the first key; raises ConfigError without keys."""
    keyring = memory.config.keyring
    if keyring is None:
        raise ConfigError("no encryption keys are configured: set MEMORY_CORE_ENCRYPTION_KEYS "
                          "(or MEMORY_CORE_ENCRYPTION_KEYS_FILE) with the new key first")
    report = Reencryption(keyring.primary_id)
    try:
        _rewrite_dictionaries(memory, report)
        memory.follow_new_dictionary()
        pending, report.skipped = pending_contact_ids(memory)
        for number, contact_id in enumerate(pending, 1):
            _rewrite_one(memory, contact_id, report)
            if progress is not None and (number % 100 == 0 or number == len(pending)):
                progress(number, len(pending))
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(
            exc, f"{report.rewritten} rewritten so far, run again to resume") from exc
    finally:
        # a success is INFO (the audit trail records it); failures are worth a WARNING
        logger.log(logging.WARNING if report.failed else logging.INFO,
                   "reencrypt under key %s: %d rewritten, %d skipped, %d failed, "
                   "%d dictionaries", report.key_id, report.rewritten, report.skipped,
                   report.failed, report.dictionaries_rewritten)
        audit.append_event(memory.client, memory.prefix, actor=actor, action="reencrypt",
                           outcome="done" if not report.failed else "partial",
                           detail=f"key {report.key_id}: {report.rewritten} rewritten, "
                           f"{report.skipped} skipped, {report.failed} failed")
    return report


def _rewrite_one(memory: SyncBuyerConversationMemory, contact_id: str,
                 report: Reencryption) -> None:
    primary_id = report.key_id
    try:
        record = memory.read_record(contact_id)
    except InvalidContactId as exc:
        report.fail(contact_id, str(exc))
        return
    except CorruptRecord as exc:
        report.fail(contact_id, str(exc))
        return
    except redis.ResponseError as exc:  # another Redis type under our prefix
        report.fail(contact_id, f"not a record ({exc})")
        return
    if record is None:  # expired or deleted since the scan
        report.skipped += 1
        return
    if record.summary is not None and record.summary.key_id == primary_id:
        report.skipped += 1  # the bot saved it under the first key meanwhile
        return
    state = {k: v for k, v in record.state.items() if k != "state_revision"}
    when = parse_timestamp(state.get("last_interaction_timestamp"))
    try:
        code, _ = memory.rewrite_record(contact_id, state, expected_revision=record.revision,
                                        now=when, ttl_seconds=record.ttl_seconds)
    except InvalidState as exc:
        report.fail(contact_id, str(exc))
        return
    if code == scripts.DONE:
        report.rewritten += 1
    else:  # saved by the bot (conflict) or gone (absent) since it was read
        report.skipped += 1
        report.changed_meanwhile += code == scripts.CONFLICT



@dataclass
class Reindex:
    """What a ``reindex`` run did."""

    indexed: int = 0
    without_contact_details: int = 0
    unreadable: int = 0


def reindex_lookup(memory: SyncBuyerConversationMemory, *, actor: str = "operator",
                   progress: ProgressCallback | None = None) -> Reindex:
    """Enter every readable record in the phone/email lookup under today's secret.

    For a new ``MEMORY_CORE_LOOKUP_KEY``, or records saved before the lookup existed. Each
    entry gets the record's remaining TTL (a record without one: the longest TTL allowed).
    Old entries made with another secret are never found again and expire on their own.
    """
    secret = memory.config.lookup_secret
    if secret is None:
        raise ConfigError("no lookup secret: set MEMORY_CORE_LOOKUP_KEY (or encryption keys, "
                          "from which one is derived)")
    report = Reindex()
    try:
        keys = list(memory.client.scan_iter(match=memory.scan_pattern, count=_BATCH))
        for number, key in enumerate(keys, 1):
            contact_id = memory.contact_id_for(key)
            try:
                record = memory.read_record(contact_id)
            except (CorruptRecord, InvalidContactId, redis.ResponseError):
                report.unreadable += 1
                continue
            if record is not None:
                commands = lookup.index_commands(
                    memory.prefix, secret, contact_id, record.state,
                    record.ttl_seconds or memory.config.ttl_max_seconds)
                if commands:
                    lookup.run_commands(memory.client, commands)
                    report.indexed += 1
                else:
                    report.without_contact_details += 1
            if progress is not None and (number % 100 == 0 or number == len(keys)):
                progress(number, len(keys))
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc, "run reindex again") from exc
    audit.append_event(memory.client, memory.prefix, actor=actor, action="reindex",
                       outcome="done", detail=f"{report.indexed} indexed, "
                       f"{report.unreadable} unreadable")
    return report
