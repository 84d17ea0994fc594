"""Operator actions shared by the CLI and the dashboard: each is written once, here.

Unlike the bot-facing calls these raise (:class:`StoreUnavailable`, :class:`InvalidState`,
:class:`RevisionConflict`, ...) so the operator sees why something failed. Actions log
what they did at INFO level, by contact id and count only (never names, phones or
emails); WARNING is kept for problems (a failure, real buyers overwritten). Every write
appends an entry to the audit stream (:mod:`memory_core.audit`) naming its ``actor``:
the trail, not the log level, is the record of what was done. Every write checks on the
server, in the same step, that it does not replace or delete a state a bot saved in
between: by revision, or by the QA-seed tag.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import redis
import yaml
import zstandard

from memory_core import audit, lookup, scripts
from memory_core import dictionaries as dicts
from memory_core.errors import (
    REDIS_FAULTS,
    CorruptRecord,
    InvalidContactId,
    InvalidState,
    MissingDictionary,
    RevisionConflict,
    StoreUnavailable,
    UndecryptableRecord,
    fault_behind,
)
from memory_core.inventory import (
    DEFAULT_BATCH,
    STATUS_LEGACY,
    STATUS_OK,
    ProgressCallback,
    display_id,
    is_qa_seed_header,
    scan_summaries,
    unusable_id_problem,
)
from memory_core.legacy import decode_legacy
from memory_core.migrations import migrate
from memory_core.record import HEADER_READ_BYTES, stored_revision
from memory_core.report import unique_chunks
from memory_core.safetext import printable
from memory_core.state import (
    QA_SEED_FIELD,
    dump_json,
    is_valid_contact_id,
    parse_timestamp,
    prepare_state,
    utc_now,
    validate_contact_id,
)
from memory_core.store import SaveItem, SeedWrite, StoredRecord, SyncBuyerConversationMemory
from memory_core.topology import cluster_topology

logger = logging.getLogger(__name__)
DELETE_BATCH = 1000
#: A scenario file is a handful of states; anything bigger is a mistake or an attack.
MAX_SCENARIO_FILE_CHARS = 20 * 1024 * 1024


def _audit(memory: SyncBuyerConversationMemory, actor: str, action: str, outcome: str, *,
           contact_id: str = "", detail: str = "") -> None:
    audit.append_event(memory.client, memory.prefix, actor=actor, action=action,
                       contact_id=contact_id, outcome=outcome, detail=detail)


def _changed_since(contact_id: str, expected: int | None, stored: int, action: str
                   ) -> RevisionConflict:
    return RevisionConflict(
        f"buyer {contact_id} was saved by the bot since you looked (revision {expected} "
        f"-> {stored}); nothing was {action}. Look at the buyer again and confirm anew.",
        stored)


def delete_buyer(memory: SyncBuyerConversationMemory, contact_id: str, *,
                 expected_revision: int | None = None, actor: str = "operator") -> bool:
    """Delete one buyer's state; True if it existed. Logged at INFO, audited.

    With ``expected_revision`` (the revision the operator looked at) the key is deleted
    only if no save happened since; otherwise :class:`RevisionConflict`.
    """
    code, revision = memory.delete_key(memory.raw_key_for(validate_contact_id(contact_id)),
                                       expected_revision=expected_revision)
    if code == scripts.CONFLICT:
        _audit(memory, actor, "clear", "conflict", contact_id=contact_id,
               detail=f"expected revision {expected_revision}, stored {revision}")
        raise _changed_since(contact_id, expected_revision, revision, "deleted")
    deleted = code == scripts.DONE
    _audit(memory, actor, "clear", "deleted" if deleted else "absent", contact_id=contact_id,
           detail=f"revision {revision}" if deleted else "")
    logger.info("%s cleared buyer %s (existed: %s, revision %s)", printable(actor, 120),
                   printable(contact_id, 120), deleted, revision if deleted else "-")
    return deleted


def reset_ttl(memory: SyncBuyerConversationMemory, contact_id: str, *,
              expected_revision: int | None = None, actor: str = "operator") -> bool:
    """Give a buyer the default TTL again; False if there is no such key.

    With ``expected_revision``, only if no save happened since (a save renews the TTL
    itself); otherwise :class:`RevisionConflict`.
    """
    code, revision = memory.reset_ttl(contact_id, expected_revision)
    if code == scripts.CONFLICT:
        _audit(memory, actor, "reset_ttl", "conflict", contact_id=contact_id,
               detail=f"expected revision {expected_revision}, stored {revision}")
        raise _changed_since(contact_id, expected_revision, revision, "changed")
    changed = code == scripts.DONE
    if changed:
        _extend_lookup(memory, contact_id)
    _audit(memory, actor, "reset_ttl", "done" if changed else "absent", contact_id=contact_id,
           detail=f"{memory.config.ttl_days} days")
    logger.info("TTL of buyer %s reset to %s days (existed: %s)", printable(contact_id, 120),
                memory.config.ttl_days, changed)
    return changed


def _extend_lookup(memory: SyncBuyerConversationMemory, contact_id: str) -> None:
    """Give the buyer's lookup entries the new TTL too, so find and erase keep finding it."""
    secret = memory.config.lookup_secret
    if secret is None:
        return
    try:
        record = memory.read_record(contact_id)
    except (CorruptRecord, InvalidContactId, redis.ResponseError):
        return  # unreadable here: nothing to index by
    if record is None:
        return
    lookup.run_commands(memory.client, lookup.index_commands(
        memory.prefix, secret, contact_id, record.state, memory.config.ttl_seconds))


def current_revision(memory: SyncBuyerConversationMemory, contact_id: str) -> int | None:
    """The revision the server counts for a buyer's key now; None when there is no key.

    An operator confirms an action on this revision, and the action is carried out only
    if it is still the stored one.
    """
    key = memory.key_for(contact_id)
    try:
        with memory.client.pipeline(transaction=False) as pipe:
            pipe.exists(key)
            pipe.getrange(key, 0, HEADER_READ_BYTES - 1)
            exists, window = pipe.execute(raise_on_error=False)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    if not exists:
        return None
    return stored_revision(window if isinstance(window, bytes) else None)


def qa_seed_ids(memory: SyncBuyerConversationMemory) -> list[str]:
    """Contact ids of every QA-seeded record now in Redis, read as the scan streams: only
    the seeds' ids are held, never a row per buyer."""
    ids: list[str] = []
    try:
        for chunk in unique_chunks(memory):
            ids += chunk.loc[chunk["qa_seed"].to_numpy(dtype=bool), "contact_id"].tolist()
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    return ids


def clear_qa_seeds(memory: SyncBuyerConversationMemory, contact_ids: Iterable[str] | None = None,
                   *, actor: str = "operator") -> int:
    """Delete QA-seeded records, and only those; returns how many were deleted.

    Each key is checked and deleted in one server-side step, so a key that a real buyer
    took over since the scan (or in the middle of the clean-up) is kept.
    """
    ids = list(contact_ids) if contact_ids is not None else qa_seed_ids(memory)
    deleted = 0
    try:
        for start in range(0, len(ids), DELETE_BATCH):
            # raw keys, not key_for: an id from the scan need not be one a bot could write
            keys = [memory.raw_key_for(i) for i in ids[start:start + DELETE_BATCH]]
            deleted += memory.delete_seeds(keys)
    except Exception as exc:
        # the batch in flight may have been deleted in part: its replies never came back
        logger.warning("%s cleared at least %d QA-seeded buyers, then stopped on an error; "
                       "run it again to finish", printable(actor, 120), deleted)
        _audit(memory, actor, "clear_qa_seeds", "failed",
               detail=f"at least {deleted} deleted, then {type(exc).__name__}")
        raise
    logger.info("%s cleared %d QA-seeded buyers", printable(actor, 120), deleted)
    _audit(memory, actor, "clear_qa_seeds", "done", detail=f"{deleted} deleted")
    return deleted


@dataclass
class LegacyMigration:
    """What ``migrate-legacy`` found and did."""

    dry_run: bool
    found: int = 0
    migrated: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def migrate_legacy(memory: SyncBuyerConversationMemory, *,
                   dry_run: bool = False, actor: str = "operator") -> LegacyMigration:
    """Rewrite pickled records of the old system in the new format, keeping their TTL."""
    frame = scan_summaries(memory)
    report = LegacyMigration(dry_run=dry_run)
    for contact_id in frame.loc[frame["status"] == STATUS_LEGACY, "contact_id"]:
        report.found += 1
        try:
            outcome = _migrate_one(memory, contact_id, dry_run)
        except (CorruptRecord, InvalidState, InvalidContactId, ValueError) as exc:
            outcome = str(exc)
        except REDIS_FAULTS as exc:
            raise StoreUnavailable.from_fault(exc) from exc
        if outcome is None:
            report.migrated += 1
        else:
            report.failed[display_id(contact_id)] = outcome
    logger.log(logging.WARNING if report.failed else logging.INFO,
               "legacy migration%s: %d found, %d migrated, %d failed",
               " (dry run)" if dry_run else "", report.found, report.migrated,
               len(report.failed))
    if not dry_run:
        _audit(memory, actor, "migrate_legacy", "done",
               detail=f"{report.found} found, {report.migrated} migrated, "
               f"{len(report.failed)} failed")
    return report


def _migrate_one(memory: SyncBuyerConversationMemory, contact_id: str,
                 dry_run: bool) -> str | None:
    """Rewrite one legacy record; None when done, else why not.

    WATCH makes the rewrite conditional: if the bot saves this buyer between the read and
    the write, the bot's newer state is kept and the key is reported, not overwritten.
    """
    key = memory.raw_key_for(contact_id)
    try:
        with memory.client.pipeline(transaction=True) as pipe:  # WATCH: cluster too
            pipe.watch(key)
            # bytes: the memory's clients never decode replies (decode_responses=False)
            raw = cast(bytes, pipe.getrange(key, 0, memory.read_limit_bytes))
            if not raw:
                return "expired before it could be migrated"
            if len(raw) > memory.read_limit_bytes:
                return f"larger than {memory.read_limit_bytes} bytes; not read"
            state = migrate(decode_legacy(raw, max_bytes=memory.config.max_state_bytes))
            when = parse_timestamp(state.get("last_interaction_timestamp"))
            command = memory.encode_save(contact_id, state, now=when)
            if dry_run:
                return None
            pipe.multi()
            pipe.execute_command(*command[:3], "KEEPTTL", "XX")
            (written,) = pipe.execute()
    except redis.WatchError as exc:
        if (fault := fault_behind(exc)) is not None:
            raise StoreUnavailable.from_fault(fault) from exc
        return "changed while migrating (the bot saved it); left as the bot wrote it"
    return None if written else "expired before it could be migrated"


@dataclass(frozen=True)
class TrainedDictionary:
    dictionary_id: int
    dictionary_bytes: int
    samples: int


def sample_records(memory: SyncBuyerConversationMemory, sample_size: int,
                   progress: ProgressCallback | None = None) -> list[StoredRecord]:
    """Up to ``sample_size`` readable buyer records, to train or measure a dictionary on.

    The first ones SCAN returns (hash order: no bias by age or id), read until there are
    enough: a store of millions is not walked, nor held, to pick two thousand.
    ``progress(read, to_read)`` follows the reads.
    """
    sample_ids: list[str] = []
    try:
        for chunk in unique_chunks(memory, chunk_rows=DEFAULT_BATCH):
            sample_ids += chunk.loc[chunk["status"] == STATUS_OK, "contact_id"].tolist()
            if len(sample_ids) >= sample_size:
                break
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    records = []
    chosen = sample_ids[:sample_size]
    for done, contact_id in enumerate(chosen, 1):
        try:
            record = memory.read_record(contact_id)
        except (CorruptRecord, InvalidContactId):
            continue  # a damaged record is no sample; the scan already reports it
        finally:
            if progress is not None and (done % 100 == 0 or done == len(chosen)):
                progress(done, len(chosen))
        if record is not None:
            records.append(record)
    return records


#: States a dictionary is trained on unless told otherwise (the dashboard's button too).
TRAIN_SAMPLES = 2000


def train_dictionary_from_store(memory: SyncBuyerConversationMemory, *,
                                sample_size: int = TRAIN_SAMPLES,
                                dict_size_bytes: int = dicts.DEFAULT_DICTIONARY_BYTES,
                                actor: str = "operator",
                                progress: ProgressCallback | None = None) -> TrainedDictionary:
    """Train a zstd dictionary on stored states and make it the one writers use.

    Trained on the states with their PII replaced by placeholders, and stored encrypted
    when keys are configured. Older dictionaries stay stored, so records written with
    them remain readable. ``progress`` follows the sampled reads (training itself, a
    second or two, reports nothing).
    """
    pack = memory.config.packs_payloads
    samples = [dicts.training_sample(r.state, pack=pack)
               for r in sample_records(memory, sample_size, progress)]
    dictionary = dicts.train_dictionary(samples, dict_size_bytes)
    dictionary_id = dictionary.dict_id()
    try:
        stored = store_dictionary(memory, dictionary)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    logger.info("trained zstd dictionary %d (%d bytes) on %d states; writers now use it",
                dictionary_id, stored, len(samples))
    _audit(memory, actor, "train_dictionary", "done",
           detail=f"dictionary {dictionary_id}, {stored} bytes, {len(samples)} samples")
    return TrainedDictionary(dictionary_id, stored, len(samples))


def store_dictionary(memory: SyncBuyerConversationMemory,
                     dictionary: zstandard.ZstdCompressionDict) -> int:
    """Store a trained dictionary (encrypted when keys are set) and make writers use it.

    Returns the stored size. A dictionary id is immutable once stored (``NX``).
    """
    key = dicts.dictionary_key(memory.prefix, dictionary.dict_id())
    value = dicts.stored_value(dictionary, memory.config.keyring, key)
    memory.client.set(key, value, nx=True)
    new_id = str(dictionary.dict_id()).encode()
    pointer = dicts.current_dictionary_key(memory.prefix)
    try:
        previous = memory.client.set(pointer, new_id, get=True)
    except redis.ResponseError:  # another type at the pointer: a plain SET replaces it
        previous = memory.client.set(pointer, new_id) and None
    if previous != new_id:  # a rotation: prune-dictionaries waits for writers to follow
        memory.client.set(dicts.rotated_at_key(memory.prefix), f"{time.time():.0f}")
    memory.follow_new_dictionary()
    return len(value)


# scenario files ------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """One state to seed from a QA file."""

    contact_id: str
    state: dict[str, Any]


def parse_scenarios(content: bytes | str, source: str = "file") -> list[Scenario]:
    """States from a JSON or YAML document: one ``{"contact_id": ..., ...}`` or a list.

    Every item is validated like a save before anything is returned, so a bad file
    writes nothing. Raises :class:`InvalidState` listing each bad item.
    """
    try:
        text = content.decode("utf-8") if isinstance(content, bytes) else content
    except UnicodeDecodeError as exc:
        raise InvalidState(f"{source} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                           "save it as UTF-8 JSON or YAML") from None
    if len(text) > MAX_SCENARIO_FILE_CHARS:
        raise InvalidState(f"{source} is {len(text):,} characters; scenario files are "
                           f"limited to {MAX_SCENARIO_FILE_CHARS:,}")
    try:
        document = json.loads(text)
    except RecursionError:
        raise InvalidState(f"{source} is nested too deeply to be a buyer state") from None
    except json.JSONDecodeError:
        try:
            if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text)):
                raise InvalidState(f"{source} uses YAML aliases (*name); write each state "
                                   "out in full")
            document = yaml.safe_load(io.StringIO(text))
        except RecursionError:
            raise InvalidState(f"{source} is nested too deeply to be a buyer state") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise InvalidState(f"{source} is neither valid JSON nor YAML{where}: "
                               f"{getattr(exc, 'problem', exc)}") from None
    items = document if isinstance(document, list) else [document]
    if not items:
        raise InvalidState(f"{source} holds no states")
    scenarios: list[Scenario] = []
    problems: list[str] = []
    seen: set[str] = set()
    now = utc_now()
    for number, item in enumerate(items, start=1):
        try:
            scenario = _scenario(item)
            dump_json(prepare_state(scenario.state, max_history_messages=10_000, now=now))
        except (InvalidState, InvalidContactId) as exc:
            problems.append(f"item {number}: {exc}")
            continue
        if scenario.contact_id in seen:
            problems.append(f"item {number}: contact_id {scenario.contact_id!r} appears twice")
        seen.add(scenario.contact_id)
        scenarios.append(scenario)
    if problems:
        raise InvalidState(f"{source}: nothing was written; " + "; ".join(problems))
    return scenarios


def _scenario(item: object) -> Scenario:
    if not isinstance(item, dict):
        raise InvalidState(f"expected a mapping with contact_id and the state, got "
                           f"{type(item).__name__}")
    state = dict(item)
    contact_id = validate_contact_id(state.pop("contact_id", None) or "")
    if isinstance(state.get("state"), dict) and len(state) == 1:
        state = dict(state["state"])  # {"contact_id": ..., "state": {...}} also accepted
    return Scenario(contact_id, state)


def real_buyer_ids(memory: SyncBuyerConversationMemory, contact_ids: list[str]) -> list[str]:
    """Those ids whose key holds anything but a QA seed: a real buyer, legacy, foreign."""
    pipe = memory.client.pipeline(transaction=False)
    for contact_id in contact_ids:
        pipe.getrange(memory.key_for(contact_id), 0, HEADER_READ_BYTES - 1)
    try:
        replies = pipe.execute(raise_on_error=False)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    return [contact_id for contact_id, reply in zip(contact_ids, replies, strict=True)
            if reply != b"" and not is_qa_seed_header(reply)]


def seed_scenarios(memory: SyncBuyerConversationMemory, scenarios: list[Scenario], *,
                   overwrite_real: bool = False, actor: str = "operator") -> SeedWrite:
    """Write parsed scenarios, tagged as QA seeds; all are validated before any is written.

    A scenario whose contact id holds a real buyer stops the whole file (nothing is
    written) unless ``overwrite_real``, which is logged; the check is repeated on the
    server with each write, so a buyer saved meanwhile is kept and reported.
    """
    items: list[SaveItem] = [(s.contact_id, {**s.state, QA_SEED_FIELD: True}, None, None)
                             for s in scenarios]
    problems = []
    for number, (contact_id, state, _, _) in enumerate(items, start=1):
        try:
            memory.prepare(state)  # this store's limits (max_state_bytes) before any write
        except InvalidState as exc:
            problems.append(f"item {number} ({contact_id}): {exc}")
    if problems:
        raise InvalidState("nothing was written; " + "; ".join(problems))
    real = real_buyer_ids(memory, [s.contact_id for s in scenarios])
    if real and not overwrite_real:
        shown = ", ".join(display_id(i) for i in real[:10]) + (" ..." if len(real) > 10 else "")
        raise InvalidState(
            f"nothing was written; {len(real)} contact id(s) hold real buyers, not QA seeds: "
            f"{shown}. Seeding never replaces a real buyer: use other ids, or pass "
            "--overwrite-real to replace them (logged)")
    if real:
        logger.warning("%s overwrote %d real buyer(s) with QA seeds: %s", printable(actor, 120),
                       len(real), ", ".join(printable(display_id(i), 120) for i in real))
    result = memory.save_seeds(items, overwrite_real=overwrite_real)
    _audit(memory, actor, "seed", "done",
           detail=f"{result.written} written from a file, {len(result.kept_real)} real kept"
           + (f", {len(real)} real overwritten" if real and overwrite_real else ""))
    return result


def seed_generated(memory: SyncBuyerConversationMemory, items: Iterable[SaveItem],
                   total: int, progress: Callable[[int, int], None] | None = None,
                   batch_size: int = 500, *, actor: str = "operator") -> SeedWrite:
    """Write generated buyers in pipelined batches, reporting progress after each batch.

    An id that already holds a real buyer is left alone (checked on the server with each
    write) and reported in ``kept_real``.
    """
    written = 0
    kept: list[str] = []
    batch: list[SaveItem] = []

    def flush() -> None:
        nonlocal written
        result = memory.save_seeds(batch, batch_size)
        written += result.written
        kept.extend(result.kept_real)
        batch.clear()
        if progress:
            progress(written + len(kept), total)

    for item in items:
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    logger.info("seeded %d QA buyers; %d ids left alone as real buyers", written, len(kept))
    _audit(memory, actor, "seed", "done",
           detail=f"{written} generated, {len(kept)} real kept")
    return SeedWrite(written, tuple(kept))


def describe_store(memory: SyncBuyerConversationMemory) -> dict[str, Any]:
    """Server facts for a sidebar or ``stats``: version, key count, memory, dictionary,
    and ``topology``: a cluster's primaries and replicas (None for a single server)."""
    facts: dict[str, Any] = {"redis_version": None, "keys": None, "used_memory_bytes": None}
    try:
        facts["keys"] = int(memory.client.dbsize())
        try:
            info = memory.client.info()
            facts["redis_version"] = info.get("redis_version")
            facts["used_memory_bytes"] = info.get("used_memory")
        except redis.ResponseError:
            pass  # INFO can be disabled by ACL; the rest still helps
        try:
            current = memory.client.getrange(dicts.current_dictionary_key(memory.prefix), 0, 31)
        except redis.ResponseError:
            current = None  # another type at the pointer: no dictionary, as writers see it
        facts["dictionary_id"] = dicts.parse_dictionary_id(current)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    facts["topology"] = cluster_topology(memory)  # None on a single server; never raises
    return facts


# what the server costs ------------------------------------------------------------------

#: The share of ``maxmemory`` in use from which the dashboard and ``stats`` warn.
NEAR_LIMIT_SHARE = 0.8
#: Buyer keys whose MEMORY USAGE is asked, at most, for the measured cost per key.
MEMORY_SAMPLE_KEYS = 100
_BYTE_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def format_bytes(count: float | None) -> str:
    """``1,234 bytes``, ``91.2 MiB``: binary units, always named as such (MiB, not MB)."""
    if count is None:
        return "–"
    value = float(count)
    for unit in _BYTE_UNITS:
        if abs(value) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ServerMemory:
    """What the server says it uses (INFO memory and stats), and the cost per buyer.

    Every figure is None when the server would not say (INFO denied by an ACL, fakeredis);
    ``problems`` says why, in words for an operator.
    """

    used_memory_bytes: int | None = None
    startup_memory_bytes: int | None = None
    peak_memory_bytes: int | None = None
    rss_bytes: int | None = None
    maxmemory_bytes: int | None = None  # 0: no limit
    maxmemory_policy: str | None = None
    evicted_keys: int | None = None
    fragmentation_ratio: float | None = None
    buyer_keys: int | None = None
    #: Mean MEMORY USAGE of the sampled buyer keys: value, key name and Redis overhead.
    sampled_key_bytes: float | None = None
    sampled_keys: int = 0
    problems: tuple[str, ...] = ()

    @property
    def per_buyer_estimate_bytes(self) -> float | None:
        """(used - memory at start-up) / buyer keys: an estimate that also charges the
        buyers for everything else stored (lookup sets, audit trail, dictionaries)."""
        if self.used_memory_bytes is None or not self.buyer_keys:
            return None
        base = self.startup_memory_bytes or 0
        return max(self.used_memory_bytes - base, 0) / self.buyer_keys

    @property
    def maxmemory_share(self) -> float | None:
        """used_memory / maxmemory; None when no limit is set (or it is unknown)."""
        if not self.maxmemory_bytes or self.used_memory_bytes is None:
            return None
        return self.used_memory_bytes / self.maxmemory_bytes

    @property
    def near_limit(self) -> bool:
        share = self.maxmemory_share
        return share is not None and share >= NEAR_LIMIT_SHARE


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number >= 0 else None


def _fraction(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number == number and number != float("inf") else None


def _info(memory: SyncBuyerConversationMemory, section: str, problems: list[str]
          ) -> dict[str, Any]:
    try:
        info = memory.client.info(section)
    except redis.ResponseError as exc:
        problems.append(f"INFO {section} is not available ({printable(str(exc), 200)}): "
                        "fakeredis has none; on Redis, grant +info to this user to see the "
                        "server's own figures")
        return {}
    return info if isinstance(info, dict) else {}


def server_memory(memory: SyncBuyerConversationMemory, *, buyer_keys: int | None = None,
                  sample_ids: Iterable[str] = ()) -> ServerMemory:
    """The server's memory figures, and what a buyer costs; raises StoreUnavailable.

    ``buyer_keys`` (from an inventory scan) turns used memory into a cost per buyer;
    ``sample_ids`` (at most :data:`MEMORY_SAMPLE_KEYS` are used) are measured with
    ``MEMORY USAGE``, which counts each key's own overhead. Where INFO or MEMORY USAGE
    is refused (an ACL, fakeredis) the figure is missing and ``problems`` says why.
    """
    problems: list[str] = []
    try:
        stats = _info(memory, "memory", problems)
        stats.update(_info(memory, "stats", problems) if stats else {})
        sampled, sampled_keys = _sample_usage(memory, sample_ids, problems)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    policy = stats.get("maxmemory_policy")
    return ServerMemory(
        used_memory_bytes=_whole(stats.get("used_memory")),
        startup_memory_bytes=_whole(stats.get("used_memory_startup")),
        peak_memory_bytes=_whole(stats.get("used_memory_peak")),
        rss_bytes=_whole(stats.get("used_memory_rss")),
        maxmemory_bytes=_whole(stats.get("maxmemory")),
        maxmemory_policy=printable(str(policy), 40) if policy is not None else None,
        evicted_keys=_whole(stats.get("evicted_keys")),
        fragmentation_ratio=_fraction(stats.get("mem_fragmentation_ratio")),
        buyer_keys=buyer_keys, sampled_key_bytes=sampled, sampled_keys=sampled_keys,
        problems=tuple(problems))


def _sample_usage(memory: SyncBuyerConversationMemory, sample_ids: Iterable[str],
                  problems: list[str]) -> tuple[float | None, int]:
    keys = [memory.raw_key_for(i) for i in list(sample_ids)[:MEMORY_SAMPLE_KEYS]]
    if not keys:
        return None, 0
    with memory.client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.execute_command("MEMORY", "USAGE", key)
        replies = pipe.execute(raise_on_error=False)
    refused = [r for r in replies if isinstance(r, Exception)]
    if refused:
        problems.append("MEMORY USAGE is not available here (fakeredis, or an ACL without "
                        f"+memory|usage: {printable(str(refused[0]), 120)}); the cost per "
                        "buyer is estimated from used memory only")
        return None, 0
    sizes = [r for r in replies if isinstance(r, int) and not isinstance(r, bool) and r > 0]
    return (sum(sizes) / len(sizes), len(sizes)) if sizes else (None, 0)


# keys under the prefix that are not buyer records -------------------------------------

#: Content bytes shown of a key that is not a buyer record, and items of a collection.
PREVIEW_BYTES = 200
PREVIEW_ITEMS = 10
_SIZE_COMMANDS = {"string": ("STRLEN", "bytes"), "hash": ("HLEN", "fields"),
                  "list": ("LLEN", "items"), "set": ("SCARD", "members"),
                  "zset": ("ZCARD", "members"), "stream": ("XLEN", "entries")}

#: The first ARGV[1] elements of the collection at KEYS[1], each cut to ARGV[2] bytes on
#: the server, so a planted collection of huge members costs a bounded reply: hash and
#: zset as field/value (member/score) pairs, stream entries as "id field=value ...".
_PREVIEW_LUA = """
local kind = redis.call('TYPE', KEYS[1])
if type(kind) == 'table' then kind = kind['ok'] end
local n, size = tonumber(ARGV[1]), tonumber(ARGV[2])
local raw = {}
if kind == 'hash' then raw = redis.call('HSCAN', KEYS[1], 0, 'COUNT', n)[2]
elseif kind == 'set' then raw = redis.call('SSCAN', KEYS[1], 0, 'COUNT', n)[2]
elseif kind == 'zset' then raw = redis.call('ZRANGE', KEYS[1], 0, n - 1, 'WITHSCORES')
elseif kind == 'list' then raw = redis.call('LRANGE', KEYS[1], 0, n - 1)
elseif kind == 'stream' then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n)) do
    local line, fields = entry[1], entry[2]
    for j = 1, math.min(#fields, 2 * n), 2 do
      line = string.sub(line .. ' ' .. string.sub(fields[j], 1, size) .. '='
                        .. string.sub(fields[j + 1] or '', 1, size), 1, size)
    end
    raw[#raw + 1] = line
  end
end
local out = {}
for i = 1, math.min(#raw, 2 * n) do out[i] = string.sub(raw[i], 1, size) end
return out
"""


@dataclass(frozen=True)
class KeyInspection:
    """One key under the buyer prefix, as far as it is safe to look at it."""

    contact_id: str  # as shown: undecodable bytes as \\xNN
    key: str  # the full key, as shown
    exists: bool
    redis_type: str = "none"
    size: int | None = None
    size_unit: str = ""
    ttl_seconds: int | None = None  # None: the key never expires
    memory_bytes: int | None = None  # MEMORY USAGE; None where unavailable
    preview: str = ""  # escaped text, at most about PREVIEW_BYTES of content
    preview_cut: bool = False
    revision: int = 0  # what the delete script compares (0 unless a readable header)
    #: Why no state loads from it ("" when one does: then it is a buyer record).
    problem: str = ""
    #: Why it must not be deleted here, even though no state loads ("" when it may be).
    protected: str = ""

    @property
    def buyer_record(self) -> bool:
        return self.exists and not self.problem

    @property
    def size_text(self) -> str | None:
        """The size in its unit, agreeing ("1 field", "3 entries"); None when unknown."""
        if self.size is None:
            return None
        unit = self.size_unit
        if self.size == 1:
            unit = unit[:-3] + "y" if unit.endswith("ies") else unit.removesuffix("s")
        return f"{self.size:,} {unit}"

    @property
    def deletable(self) -> bool:
        return self.exists and bool(self.problem) and not self.protected


def _type_name(reply: object) -> str:
    if isinstance(reply, bytes):
        return printable(reply[:40].decode("utf-8", "replace"), 40)
    return printable(str(reply), 40) if isinstance(reply, str) else "unknown"


def _preview_text(parts: list[bytes], pairs: bool, limit: int = PREVIEW_BYTES
                  ) -> tuple[str, bool]:
    """Escaped text of the parts (``a = b`` pairs for hashes and zsets), cut at ``limit``
    characters of content before escaping (so no escape is cut in half)."""
    raw = [p for p in parts if isinstance(p, bytes)]
    cut = any(len(p) >= limit for p in raw)  # the server cut it
    texts = [p.decode("utf-8", "surrogateescape") for p in raw]
    if pairs:
        texts = [f"{a} = {b}" for a, b in zip(texts[::2], texts[1::2], strict=False)]
    joined = " | ".join(texts)
    if len(joined) > limit:
        return printable(joined[:limit]) + "…", True
    return printable(joined), cut


def inspect_key(memory: SyncBuyerConversationMemory, contact_id: str) -> KeyInspection:
    """Type, size, TTL, memory and a short escaped preview of the key of ``contact_id``.

    For the keys a scan lists as ``foreign`` or ``corrupt``: reads are bounded whatever
    the key holds (:data:`PREVIEW_BYTES` of a string, :data:`PREVIEW_ITEMS` elements of
    a collection, each cut on the server). Says whether a state loads from it (then it
    is a buyer record) and whether it may be deleted. Raises StoreUnavailable.
    """
    key = memory.raw_key_for(contact_id)
    shown = display_id(contact_id)
    try:
        with memory.client.pipeline(transaction=False) as pipe:
            pipe.type(key)
            pipe.pttl(key)
            pipe.getrange(key, 0, HEADER_READ_BYTES - 1)
            kind_reply, pttl, window = pipe.execute(raise_on_error=False)
        kind = _type_name(kind_reply)
        if kind == "none":
            return KeyInspection(shown, f"{memory.prefix}:{shown}", exists=False)
        size_command, unit = _SIZE_COMMANDS.get(kind, ("", ""))
        with memory.client.pipeline(transaction=False) as pipe:
            if size_command:
                pipe.execute_command(size_command, key)
            pipe.execute_command("MEMORY", "USAGE", key)
            replies = pipe.execute(raise_on_error=False)
        size = _whole(replies[0]) if size_command else None
        memory_bytes = _whole(replies[-1]) if not isinstance(replies[-1], Exception) else None
        preview, cut = _preview(memory, key, kind, size)
        problem, protected = _why_no_state(memory, contact_id, key, kind, size)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    ttl = None if not isinstance(pttl, int) or pttl < 0 else round(pttl / 1000)
    return KeyInspection(
        contact_id=shown, key=f"{memory.prefix}:{shown}", exists=True, redis_type=kind,
        size=size, size_unit=unit, ttl_seconds=ttl, memory_bytes=memory_bytes,
        preview=preview, preview_cut=cut,
        revision=stored_revision(window if isinstance(window, bytes) else None),
        problem=problem, protected=protected)


def _preview(memory: SyncBuyerConversationMemory, key: bytes, kind: str, size: int | None
             ) -> tuple[str, bool]:
    if kind == "string":
        head = cast(bytes, memory.client.getrange(key, 0, PREVIEW_BYTES - 1))  # not decoded
        text, cut = _preview_text([head], pairs=False)
        return text, cut or (size or 0) > len(head)
    if kind not in _SIZE_COMMANDS:
        return f"(no preview of a {kind} key)", False
    try:
        parts = memory.client.eval(_PREVIEW_LUA, 1, key, PREVIEW_ITEMS, PREVIEW_BYTES)
    except redis.ResponseError as exc:
        return (f"(no preview: the server refused the read script: "
                f"{printable(str(exc), 120)})"), False
    parts = list(parts or [])[:2 * PREVIEW_ITEMS]
    pairs = kind in ("hash", "zset")
    text, cut = _preview_text(parts, pairs=pairs)
    shown = len(parts) // 2 if pairs else len(parts)
    return text, cut or (size or 0) > shown


def _why_no_state(memory: SyncBuyerConversationMemory, contact_id: str, key: bytes,
                  kind: str, size: int | None) -> tuple[str, str]:
    """(why no state loads from it, why it must not be deleted anyway)."""
    if kind != "string":
        return f"another Redis type ({kind}), not a buyer record", ""
    if size == 0:
        return "an empty string, not a buyer record", ""
    (problem,) = memory.check_records([key])
    if problem is None:  # a sound record, unless no bot can ask for its id
        return ("", "") if is_valid_contact_id(contact_id) else (
            unusable_id_problem(contact_id), "")
    why = printable(str(problem), 300)
    if isinstance(problem, MissingDictionary | UndecryptableRecord):
        return why, ("it is a buyer record this process cannot read (a missing dictionary "
                     "or encryption key), not damage: restore the dictionary or configure "
                     "the key instead")
    return why, ""


def _delete_empty_string(memory: SyncBuyerConversationMemory, key: bytes,
                         expected: int) -> tuple[int, int]:
    """The delete script counts an empty value as no key; WATCH deletes one only if it is
    still empty (a save since would have written a record of revision 1 or more)."""
    try:
        with memory.client.pipeline(transaction=True) as pipe:  # WATCH: cluster too
            pipe.watch(key)
            kind = pipe.type(key)
            if kind == b"none":
                return scripts.ABSENT, 0
            if kind != b"string" or pipe.strlen(key) != 0:  # written since: not ours to delete
                head = (cast(bytes, pipe.getrange(key, 0, HEADER_READ_BYTES - 1))  # not decoded
                        if kind == b"string" else b"")
                return scripts.CONFLICT, stored_revision(head)
            pipe.multi()
            pipe.delete(key)
            (deleted,) = pipe.execute()
    except redis.WatchError as exc:
        if (fault := fault_behind(exc)) is not None:
            raise StoreUnavailable.from_fault(fault) from exc
        return scripts.CONFLICT, expected + 1
    except REDIS_FAULTS as exc:
        raise StoreUnavailable.from_fault(exc) from exc
    return (scripts.DONE if deleted else scripts.ABSENT), 0


def delete_unreadable_key(memory: SyncBuyerConversationMemory, contact_id: str, *,
                          expected_revision: int | None = None,
                          actor: str = "operator") -> bool:
    """Delete a key under the prefix that holds no buyer state; True if it was deleted.

    Refused (:class:`InvalidState`) when a state loads from it, or when it is a record
    this process only cannot read (undecryptable, missing dictionary). Deleted in one
    server-side step only while its revision is still ``expected_revision`` (the one the
    operator looked at; the current one when None): a bot that saved the buyer since
    raises :class:`RevisionConflict` and nothing is deleted. Audited as ``delete_key``.
    """
    found = inspect_key(memory, contact_id)
    shown = found.contact_id
    if not found.exists:
        _audit(memory, actor, "delete_key", "absent", contact_id=shown)
        return False
    if not found.deletable:
        reason = found.protected or ("a buyer state loads from it: it is a buyer record; "
                                     "clear the buyer instead")
        _audit(memory, actor, "delete_key", "refused", contact_id=shown, detail=reason[:200])
        raise InvalidState(f"{shown} was not deleted: {reason}")
    expected = found.revision if expected_revision is None else expected_revision
    key = memory.raw_key_for(contact_id)
    if found.redis_type == "string" and found.size == 0:
        code, revision = _delete_empty_string(memory, key, expected)
    else:
        code, revision = memory.delete_key(key, expected_revision=expected)
    if code == scripts.CONFLICT:
        _audit(memory, actor, "delete_key", "conflict", contact_id=shown,
               detail=f"expected revision {expected}, stored {revision}")
        raise _changed_since(shown, expected, revision, "deleted")
    deleted = code == scripts.DONE
    detail = f"{found.redis_type}, {found.size} {found.size_unit}".strip(", ")
    _audit(memory, actor, "delete_key", "deleted" if deleted else "absent",
           contact_id=shown, detail=detail)
    logger.info("%s deleted the key of %s (%s; existed: %s)", printable(actor, 120),
                printable(shown, 120), detail, deleted)
    return deleted
