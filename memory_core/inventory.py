"""The keyspace as a table: one row per buyer key, from record headers only.

:func:`scan_summaries` walks ``<prefix>:*`` with SCAN and, per batch of keys, reads each
key's header (``GETRANGE key 0 255``, cut after the header), ``PTTL`` and ``STRLEN`` in
one Lua call (on Redis Cluster: every primary walked at once, each by its own thread,
with a script that may read the node's keys of every slot), a helper thread reading the
next batch while this one is parsed. Payloads are never read or decoded,
so a million buyers cost a million small replies, not a million decompressions. Columns are
built in compact arrays (8 bytes a number, shared strings for repeated labels) so memory
stays bounded by the row count, not by state sizes. :func:`summarize_inventory` turns the
table into the counts the CLI prints and the dashboard shows.
"""

from __future__ import annotations

import fnmatch
import queue
import re
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import redis

from memory_core import dictionaries as dicts
from memory_core.connection import is_cluster_client
from memory_core.errors import (
    REDIS_FAULTS,
    CorruptRecord,
    MemoryCoreError,
    StoreUnavailable,
    UndecryptableRecord,
)
from memory_core.legacy import looks_legacy
from memory_core.record import HEADER_READ_BYTES, MAGIC, header_numbers, split_header
from memory_core.state import MAX_CONTACT_ID_LENGTH, id_characters_ok, is_valid_contact_id
from memory_core.store import SyncBuyerConversationMemory

STATUS_OK = "ok"
STATUS_LEGACY = "legacy"  # pickled record of the old system: readable, not summarised
STATUS_CORRUPT = "corrupt"
STATUS_FOREIGN = "foreign"  # a key of another Redis type under our prefix
STATUS_MISSING_DICTIONARY = "missing_dictionary"
#: Encrypted with a key this process does not have, or failing authentication.
STATUS_UNDECRYPTABLE = "undecryptable"
PROBLEM_STATUSES = (STATUS_CORRUPT, STATUS_FOREIGN, STATUS_MISSING_DICTIONARY,
                    STATUS_UNDECRYPTABLE)
#: The key_id label of a record stored in the clear.
NOT_ENCRYPTED = "none"
#: The ``dictionary`` column: a record compressed with the dictionary saves use now, with
#: an older one (it shrinks when the bot saves it again), or with none.
DICTIONARY_USE = ("current", "older", "none")

#: Rows handed to ``progress`` at a time; also the keys per SCAN call and per read.
DEFAULT_BATCH = 1000
#: Most JSON bytes a header may claim per stored payload byte. Buyer states compress 3 to
#: 20 times (more with a dictionary); a header claiming more is lying about its size, and
#: one such record (300 MB "original" on 200 bytes) would skew every ratio and size chart.
MAX_PLAUSIBLE_RATIO = 1000

ProgressCallback = Callable[[int, int], None]

#: Reads the header window, PTTL and length of every key in one call per batch. A key of
#: another type yields false (nil), which marks it foreign. A record's window is cut after
#: its header (about 80 of the 256 bytes), which makes the reply a third of the size.
#: Where scripting is unavailable (fakeredis without Lua, an ACL without EVAL) the same
#: reads go through a pipeline.
_READ_HEADERS_LUA = f"""
local out = {{}}
for i, key in ipairs(KEYS) do
  local ok, head = pcall(redis.call, 'GETRANGE', key, 0, {HEADER_READ_BYTES - 1})
  if ok and string.sub(head, 1, {len(MAGIC)}) == '{MAGIC.decode()}' then
    local stop = string.find(head, '\\n', {len(MAGIC) + 1}, true)
    if stop then head = string.sub(head, 1, stop) end
  end
  out[3 * i - 2] = ok and head or false
  out[3 * i - 1] = redis.call('PTTL', key)
  local sized, length = pcall(redis.call, 'STRLEN', key)
  out[3 * i] = sized and length or 0
end
return out
"""
#: The same for one node of a Redis Cluster, whose SCAN batch spans many slots: a script
#: may declare keys of one slot only, so the keys come as arguments, which Redis 7 allows
#: to a script flagged ``allow-cross-slot-keys`` as long as this node holds them all (a
#: key moved away meanwhile fails the call, and the batch is read with a pipeline).
#: 60k keys on 3 primaries: 0.9 s, against 3.2 s with the pipeline of single-key commands.
_READ_NODE_HEADERS_LUA = ("#!lua flags=no-writes,allow-cross-slot-keys\n"
                          + _READ_HEADERS_LUA.replace("ipairs(KEYS)", "ipairs(ARGV)"))
#: Replies per key: header window (None for another type), PTTL, STRLEN.
_REPLIES_PER_KEY = 3
_CLEAR = NOT_ENCRYPTED.encode()


class _Columns:
    """Column builders: arrays for numbers, shared strings for repeated labels.

    ``add_record`` runs once per key (a million times for a million buyers), so it looks
    labels up five at a time and appends through pre-bound methods.
    """

    _LABELS = ("status", "codec", "schema_version", "temperature", "persona", "journey_stage",
               "key_id")
    _INTS = ("stored_bytes", "original_bytes", "dictionary_id", "message_count",
             "last_interaction_epoch", "ttl_ms", "revision")

    def __init__(self, max_original_bytes: int | None = None) -> None:
        #: Largest original size a header may claim: a load refuses more (max_state_bytes).
        self.max_original_bytes = max_original_bytes
        self.contact_id: list[str] = []
        self.problem: list[str] = []
        self.labels: dict[str, list[str]] = {name: [] for name in self._LABELS}
        self.ints: dict[str, array[int]] = {name: array("q") for name in self._INTS}
        self.flags: dict[str, bytearray] = {"is_qualified": bytearray(),
                                            "qa_seed": bytearray()}
        self._decoded: dict[bytes, str] = {}
        self._label_rows: dict[tuple[bytes, ...], tuple[str, ...]] = {}
        self._status_append = self.labels["status"].append
        self._label_appends = tuple(self.labels[name].append for name in self._LABELS[1:])
        self._int_appends = tuple(self.ints[name].append for name in self._INTS)
        self._qualified_append = self.flags["is_qualified"].append
        self._qa_seed_append = self.flags["qa_seed"].append

    def _label(self, raw: bytes) -> str:
        found = self._decoded.get(raw)
        if found is None:
            found = self._decoded[raw] = raw.decode("utf-8", "replace") or "unknown"
        return found

    def add_record(self, contact_id: str, fields: list[bytes], header_bytes: int,
                   ttl_ms: int, stored_bytes: int) -> None:
        """A readable record: every column from its header fields and its real length."""
        # the rules every reader applies; CorruptRecord if malformed
        dictionary_id, original, payload, messages, last_interaction, revision = (
            header_numbers(fields))
        if header_bytes + payload != stored_bytes:
            raise CorruptRecord(f"record is {stored_bytes} bytes, its header says "
                                f"{header_bytes + payload} (truncated or overwritten)")
        if original > payload * MAX_PLAUSIBLE_RATIO or (
                self.max_original_bytes is not None and original > self.max_original_bytes
        ) or (fields[1] == b"none" and original != payload):  # (encrypted: "none+k1")
            raise CorruptRecord(implausible_size(fields[1], original, payload,
                                                 self.max_original_bytes))
        self.contact_id.append(contact_id)
        self.problem.append("")
        # "zstd+k1": the codec, then the key id (already checked by header_numbers)
        compression, _, key_id = fields[1].partition(b"+")
        raw_labels = (compression + b"+dict" if dictionary_id else compression, fields[0],
                      fields[5], fields[6], fields[8], key_id or _CLEAR)
        labels = self._label_rows.get(raw_labels)
        if labels is None:
            labels = self._label_rows[raw_labels] = tuple(map(self._label, raw_labels))
        self._status_append(STATUS_OK)
        codec, schema, temperature, persona, stage, key_ids = self._label_appends
        codec(labels[0])
        schema(labels[1])
        temperature(labels[2])
        persona(labels[3])
        stage(labels[4])
        key_ids(labels[5])
        stored, original_bytes, dictionary, message_count, last, ttl, revisions = (
            self._int_appends)
        stored(stored_bytes)
        original_bytes(original)
        dictionary(dictionary_id)
        message_count(messages)
        last(last_interaction)
        ttl(ttl_ms)
        revisions(revision)
        self._qualified_append(fields[7] == b"1")
        self._qa_seed_append(fields[11] == b"1")

    def add_unreadable(self, contact_id: str, status: str, problem: str, ttl_ms: int,
                       stored_bytes: int = 0) -> None:
        """A key with no usable header: its size, 'unknown' labels, beside its status."""
        self.contact_id.append(contact_id)
        self.problem.append(problem)
        for name, values in self.labels.items():
            values.append(status if name == "status" else "unknown")
        for name, ints in self.ints.items():
            ints.append(ttl_ms if name == "ttl_ms" else
                        stored_bytes if name in ("stored_bytes", "original_bytes") else 0)
        for flags in self.flags.values():
            flags.append(0)

    def add(self, contact_id: str, header: bytes | None, ttl_ms: int,
            stored_bytes: int) -> None:
        if header is None:
            self.add_unreadable(contact_id, STATUS_FOREIGN, "not a string key (another Redis "
                                "type is stored under the buyer prefix)", ttl_ms)
        elif looks_legacy(header):
            self.add_unreadable(contact_id, STATUS_LEGACY,
                                "pickled record of the old system; run migrate-legacy", ttl_ms,
                                stored_bytes)
        else:
            try:
                fields, header_bytes = split_header(header)
                self.add_record(contact_id, fields, header_bytes, ttl_ms, stored_bytes)
            except CorruptRecord as exc:
                self.add_unreadable(contact_id, STATUS_CORRUPT, str(exc), ttl_ms, stored_bytes)
            except (ValueError, OverflowError) as exc:
                self.add_unreadable(contact_id, STATUS_CORRUPT,
                                    f"record header is malformed: {exc}", ttl_ms, stored_bytes)

    def frame(self) -> pd.DataFrame:
        data: dict[str, Any] = {"contact_id": pd.Series(self.contact_id, dtype=object)}
        for name, values in self.labels.items():
            data[name] = pd.Categorical(values)
        for name, ints in self.ints.items():
            data[name] = np.frombuffer(ints, dtype=np.int64).copy() if len(ints) else np.array(
                [], dtype=np.int64)
        for name, flags in self.flags.items():
            data[name] = np.frombuffer(bytes(flags), dtype=np.uint8).astype(bool)
        data["problem"] = pd.Series(self.problem, dtype=object)
        return pd.DataFrame(data)


def implausible_size(codec_field: bytes, original: int, payload: int,
                     max_original_bytes: int | None) -> str:
    """Why a header's sizes cannot be true; the record is flagged, not charted."""
    claim = f"header claims {original:,} bytes of JSON in a {payload:,}-byte payload"
    if max_original_bytes is not None and original > max_original_bytes:
        return f"{claim}, more than max_state_bytes={max_original_bytes:,} (a load refuses it)"
    if codec_field == b"none":
        return f"{claim}, but codec none stores the JSON as it is (sizes forged)"
    return (f"{claim}, more than {MAX_PLAUSIBLE_RATIO}x compression (sizes forged or "
            "damaged)")


def is_qa_seed_header(header: object) -> bool:
    """Whether a header window belongs to a readable record tagged as a QA seed."""
    if not isinstance(header, bytes):
        return False
    try:
        fields, _ = split_header(header)
    except CorruptRecord:
        return False
    return fields[11] == b"1"


def scan_summaries(memory: SyncBuyerConversationMemory, *, batch_size: int = DEFAULT_BATCH,
                   progress: ProgressCallback | None = None,
                   verify: bool = False,
                   verify_progress: ProgressCallback | None = None) -> pd.DataFrame:
    """One row per key under the memory's prefix, built from headers (and lengths) only.

    Columns: contact_id, status (ok/legacy/corrupt/foreign/missing_dictionary), problem,
    codec (none, zstd, or zstd+dict with the id in dictionary_id), schema_version,
    temperature, persona, journey_stage, stored_bytes, original_bytes, dictionary_id,
    message_count, last_interaction_epoch, ttl_ms (-1: no TTL), revision, is_qualified, qa_seed,
    plus derived compression_ratio, ttl_days, last_interaction and expires_at (UTC, NaT
    without a TTL: the scan's start plus the TTL read, so at most the scan's duration early).
    ``progress(done, estimated_total)`` is called after each batch. A header is trusted
    only as far as it is plausible: a payload length other than the stored one, or an
    original size above max_state_bytes, beyond :data:`MAX_PLAUSIBLE_RATIO` times the
    payload, or unequal to it with codec none, marks the record corrupt with the reason,
    so forged sizes never reach the totals and charts.

    The headers tell a scan everything but whether a payload still decodes: a flipped
    byte inside a compressed payload leaves its header intact. ``verify=True`` also reads
    and decodes every readable record (bounded work each, as a load does) and marks the
    ones that fail ``corrupt`` with the reason; it costs a full read of the keyspace, and
    reports ``verify_progress(done, total)`` after each batch.
    Raises :class:`StoreUnavailable` if Redis cannot be reached.
    """
    client = memory.client
    started_ms = time.time_ns() // 1_000_000
    try:
        estimated_total = int(client.dbsize()) if progress else 0
        # SCAN may return a key twice when the keyspace is rehashed during the walk.
        frame = summaries_of(memory, walk_batches(memory, batch_size), progress,
                             estimated_total).drop_duplicates("contact_id", ignore_index=True)
        if verify:
            verify_payloads(memory, frame, verify_progress)
    except REDIS_FAULTS as exc:
        raise StoreUnavailable(f"Redis unreachable during scan: {exc}") from exc
    return with_derived_columns(frame, started_ms)


def summaries_of(memory: SyncBuyerConversationMemory, batches: Iterable[Batch],
                 progress: ProgressCallback | None = None,
                 estimated_total: int = 0) -> pd.DataFrame:
    """The rows of ``batches`` (keys with their header, PTTL and length replies), marked
    for missing dictionaries and unknown keys; a key gone since it was listed is left out.
    Shared by the full scan and the sample, so both read a record the same way."""
    return next(summary_chunks(memory, batches, progress, estimated_total))


def summary_chunks(memory: SyncBuyerConversationMemory, batches: Iterable[Batch],
                   progress: ProgressCallback | None = None, estimated_total: int = 0,
                   chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """:func:`summaries_of` in frames of about ``chunk_rows`` rows (None: one frame), so a
    caller that folds them holds one chunk at a time; the last frame may be empty."""
    columns = _Columns(max_original_bytes=memory.config.max_state_bytes)
    current_id = current_dictionary_id(memory)
    earlier = 0
    for keys, replies in batches:
        for index, key in enumerate(keys):
            header, ttl_ms, length = replies[3 * index:3 * index + 3]
            if not isinstance(ttl_ms, int) or ttl_ms == -2:
                continue  # expired or deleted between SCAN and read
            columns.add(memory.contact_id_for(key), header, ttl_ms,
                        length if isinstance(length, int) else 0)
        if progress:
            done = earlier + len(columns.contact_id)
            progress(done, max(estimated_total, done))
        if chunk_rows and len(columns.contact_id) >= chunk_rows:
            earlier += len(columns.contact_id)
            yield _marked(memory, columns.frame(), current_id)
            columns = _Columns(max_original_bytes=memory.config.max_state_bytes)
    yield _marked(memory, columns.frame(), current_id)


def _marked(memory: SyncBuyerConversationMemory, frame: pd.DataFrame,
            current_id: int) -> pd.DataFrame:
    _mark_unusable_ids(frame)
    _mark_missing_dictionaries(memory, frame)
    _mark_unknown_keys(memory, frame)
    ids = frame["dictionary_id"].to_numpy()
    codes = np.where(ids == 0, 2, np.where(ids == current_id, 0, 1))
    frame["dictionary"] = pd.Categorical.from_codes(codes,
                                                    categories=pd.Index(DICTIONARY_USE))
    return frame


def current_dictionary_id(memory: SyncBuyerConversationMemory) -> int:
    """The id of the dictionary saves compress with now; 0 when there is none (or the
    pointer names one that is missing: then no record is "current")."""
    try:
        dictionary = memory.current_dictionary()
    except MemoryCoreError as exc:
        if isinstance(exc, StoreUnavailable):
            raise
        return 0
    return dictionary.dict_id() if dictionary is not None else 0


Batch = tuple[list[bytes], list[Any]]


def walk_batches(memory: SyncBuyerConversationMemory,
                 batch_size: int = DEFAULT_BATCH, match: str | None = None
                 ) -> Iterator[Batch]:
    """Every key under the prefix with its replies, batch by batch, every node walked in
    parallel (a key may come twice: SCAN repeats keys while Redis rehashes).

    ``match``: a narrower SCAN MATCH pattern (under the prefix) for Redis to filter keys
    by; the caller still checks each key, as this only saves reading the others.
    """
    return _read_ahead(_walks(memory, batch_size, match or memory.scan_pattern))


def _walks(memory: SyncBuyerConversationMemory, batch_size: int,
           pattern: str) -> list[Iterator[Batch]]:
    """One walk per node to scan (each primary of a cluster): its SCAN batches of keys
    matching ``pattern``, each with its replies (header, PTTL, length)."""
    return [_walk(client, cluster_node, pattern, batch_size)
            for client, cluster_node in scan_clients(memory.client)]


def _walk(client: Any, cluster_node: bool, pattern: str,
          batch_size: int) -> Iterator[Batch]:
    reader = BatchReader(client, cluster_node=cluster_node)
    cursor: int = 0
    started = True
    while started or cursor != 0:
        started = False
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=batch_size)
        if keys:
            yield keys, reader.read(keys)


def scan_clients(client: Any) -> list[tuple[Any, bool]]:
    """The clients one scan walks, and whether each is one node of a cluster.

    A single server: the client itself. Redis Cluster: a client per primary, each walked
    with its own SCAN cursor, in parallel.
    """
    if not is_cluster_client(client):
        return [(client, False)]
    return [(client.get_redis_connection(node), True) for node in client.get_primaries()]


_END = object()


def _read_ahead(walks: list[Iterator[Batch]], depth: int = 2) -> Iterator[Batch]:
    """The batches of every walk, each walk read by its own thread up to ``depth`` ahead.

    Redis works on the next batch while this thread parses the last one: on two cores a
    scan of 100k keys took 2.0 s one step after the other. On a cluster the primaries are
    walked at the same time, each by its thread. An error in a reader is raised here;
    leaving early stops every reader.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth * max(len(walks), 1))
    stopping = threading.Event()

    def hand_over(item: Any) -> bool:
        while not stopping.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read(batches: Iterator[Batch]) -> None:
        try:
            for batch in batches:
                if not hand_over(batch):
                    return
            hand_over(_END)
        except BaseException as exc:  # handed to the consuming thread, raised there
            hand_over(exc)

    readers = [threading.Thread(target=read, args=(walk,), name="memory-core-scan",
                                daemon=True) for walk in walks]
    try:
        for reader in readers:
            reader.start()
        running = len(readers)
        while running:
            item = handoff.get()
            if item is _END:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stopping.set()
        for reader in readers:
            if reader.is_alive():
                reader.join()


class BatchReader:
    """Header windows and PTTLs for a batch of keys: Lua when possible, else a pipeline."""

    def __init__(self, client: redis.Redis, *, cluster_node: bool = False) -> None:
        self._client = client
        self._cluster_node = cluster_node
        self._script: Any = client.register_script(
            _READ_NODE_HEADERS_LUA if cluster_node else _READ_HEADERS_LUA)
        self.uses_script = True

    def read(self, keys: list[bytes]) -> list[Any]:
        if self.uses_script:
            try:
                if self._cluster_node:
                    return list(self._script(keys=[], args=keys))
                return list(self._script(keys=keys))
            except redis.ResponseError as exc:
                # no scripting here (fakeredis, ACL, Redis 6 without script flags): a
                # pipeline from now on; a key that moved to another node: this batch only
                self.uses_script = "non local key" in str(exc)
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("GETRANGE", key, 0, HEADER_READ_BYTES - 1)
            pipe.execute_command("PTTL", key)
            pipe.execute_command("STRLEN", key)
        replies = pipe.execute(raise_on_error=False)
        return [None if isinstance(r, redis.ResponseError) else r for r in replies]


#: Whole values read per round trip when verifying payloads.
VERIFY_BATCH = 200


def verify_payloads(memory: SyncBuyerConversationMemory, frame: pd.DataFrame,
                    progress: ProgressCallback | None) -> None:
    """Decode every ok or legacy record; mark those that fail, with the reason.

    A payload no configured key opens is undecryptable (a key missing here, or bytes
    changed), anything else that fails is corrupt.
    """
    rows = frame.index[frame["status"].isin([STATUS_OK, STATUS_LEGACY])]
    failed: dict[str, tuple[list[int], list[str]]] = {STATUS_CORRUPT: ([], []),
                                                      STATUS_UNDECRYPTABLE: ([], [])}
    for start in range(0, len(rows), VERIFY_BATCH):
        chunk = rows[start:start + VERIFY_BATCH]
        keys = [memory.raw_key_for(i) for i in frame.loc[chunk, "contact_id"]]
        for row, problem in zip(chunk, memory.check_records(keys), strict=True):
            if problem is not None:
                status = (STATUS_UNDECRYPTABLE if isinstance(problem, UndecryptableRecord)
                          else STATUS_CORRUPT)
                failed[status][0].append(row)
                failed[status][1].append(str(problem))
        if progress:
            progress(start + len(chunk), len(rows))
    for status, (failed_rows, reasons) in failed.items():
        _mark(frame, failed_rows, status, reasons)


def _mark(frame: pd.DataFrame, rows: Any, status: str, problems: list[str]) -> None:
    """Give ``rows`` a problem status and their reasons."""
    if len(problems) == 0:
        return
    if status not in frame["status"].cat.categories:
        frame["status"] = frame["status"].cat.add_categories([status])
    frame.loc[rows, "status"] = status
    frame.loc[rows, "problem"] = problems


def _mark_unusable_ids(frame: pd.DataFrame) -> None:
    """Records under a key whose contact id no bot can load (whitespace, control
    characters, bytes that are not UTF-8, too long: written by another tool) are corrupt,
    so that they are listed with the keys to inspect and delete, not as buyers."""
    ids = frame["contact_id"].to_numpy(dtype=object)
    joined = "".join(ids)  # the common case, every id sound, in a few C calls
    lengths = list(map(len, ids))
    if (id_characters_ok(joined) and min(lengths, default=1) > 0
            and max(lengths, default=0) <= MAX_CONTACT_ID_LENGTH):
        return
    suspect = [index for index, contact_id in enumerate(ids)
               if not is_valid_contact_id(contact_id)]
    rows, problems = [], []
    readable = frame["status"].isin([STATUS_OK, STATUS_LEGACY]).to_numpy(dtype=bool)
    for index in suspect:
        if readable[index]:
            rows.append(frame.index[index])
            problems.append(unusable_id_problem(ids[index]))
    _mark(frame, rows, STATUS_CORRUPT, problems)


def unusable_id_problem(contact_id: str) -> str:
    """Why no bot can load the state under this key's contact id (which it refuses)."""
    if not contact_id:
        why = "the key has no contact id after the prefix"
    elif len(contact_id) > MAX_CONTACT_ID_LENGTH:
        why = (f"its contact id is {len(contact_id):,} characters long (the limit is "
               f"{MAX_CONTACT_ID_LENGTH})")
    else:
        why = "its contact id has whitespace, control characters or bytes that are not UTF-8"
    return f"{why}: no bot can load this state (written by another tool?)"


def _mark_missing_dictionaries(memory: SyncBuyerConversationMemory, frame: pd.DataFrame) -> None:
    ids = [int(i) for i in frame.loc[frame["dictionary_id"] > 0, "dictionary_id"].unique()]
    if not ids:
        return
    pipe = memory.client.pipeline(transaction=False)
    for dictionary_id in ids:
        pipe.exists(dicts.dictionary_key(memory.prefix, dictionary_id))
    missing = [i for i, found in zip(ids, pipe.execute(), strict=True) if not found]
    if not missing:
        return
    rows = frame["dictionary_id"].isin(missing)
    _mark(frame, rows, STATUS_MISSING_DICTIONARY, [
        f"zstd dictionary {i} is missing from Redis; the state cannot be decompressed"
        for i in frame.loc[rows, "dictionary_id"]])


def _mark_unknown_keys(memory: SyncBuyerConversationMemory, frame: pd.DataFrame) -> None:
    """With keys configured, records naming a key id that is not among them.

    Without keys nothing is marked: the overview needs none, and the payloads stay
    unread (``--verify`` with the keys tells which really decrypt).
    """
    keyring = memory.config.keyring
    if keyring is None:
        return
    key_ids = [str(k) for k in frame.loc[frame["status"] == STATUS_OK, "key_id"].unique()]
    unknown = [k for k in key_ids if k != NOT_ENCRYPTED and not keyring.knows(k)]
    if not unknown:
        return
    rows = (frame["status"] == STATUS_OK) & frame["key_id"].isin(unknown)
    _mark(frame, rows, STATUS_UNDECRYPTABLE, [
        f"encrypted with key id {k!r}, which is not configured here" for k in
        frame.loc[rows, "key_id"]])


#: The last second pandas' datetimes hold (2262-04-11).
_LAST_DATETIME_EPOCH = int(pd.Timestamp.max.timestamp())


def with_derived_columns(frame: pd.DataFrame, scanned_at_ms: int) -> pd.DataFrame:
    stored = frame["stored_bytes"].to_numpy(dtype=np.float64)
    original = frame["original_bytes"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["compression_ratio"] = np.where(stored > 0, original / stored, np.nan)
    ttl_ms = frame["ttl_ms"].to_numpy()
    frame["ttl_days"] = np.where(ttl_ms >= 0, ttl_ms / 86_400_000, np.nan)
    epoch = frame["last_interaction_epoch"]
    # a forged header may claim any 18-digit time: past pandas' year 2262, none
    frame["last_interaction"] = pd.to_datetime(
        epoch.where((epoch > 0) & (epoch < _LAST_DATETIME_EPOCH)), unit="s", utc=True)
    # A timestamp rather than a countdown: it stays true in an export read days later.
    expires_ms = np.where(ttl_ms >= 0, scanned_at_ms + ttl_ms, np.iinfo(np.int64).min)
    frame["expires_at"] = pd.Series(expires_ms.astype("datetime64[ms]"),
                                    index=frame.index).dt.tz_localize("UTC")
    return frame


def value_counts_text(values: pd.Series) -> pd.Series:
    """Rows per value, labelled as text, most common first; missing values and zero
    counts left out.

    Counts the (categorical) column first and turns only the labels into text: turning
    100k cells into ``str`` first costs 20-40 ms a column.
    """
    counts = values.value_counts()
    counts = counts[counts > 0]
    counts.index = counts.index.astype(str)
    return counts.groupby(level=0, sort=False).sum().sort_values(ascending=False, kind="stable")


#: The report's TTL buckets: where each starts, in days, and its name.
TTL_BUCKET_DAYS = (0, 1, 7, 14, 30, 60, 90)
TTL_BUCKET_NAMES = ("<1", "1-7", "7-14", "14-30", "30-60", "60-90", ">90")


def summarize_inventory(frame: pd.DataFrame, now: datetime | None = None) -> dict[str, Any]:
    """Counts for the whole table: what ``inventory --json`` prints and the overview shows."""
    now = now or datetime.now(UTC)
    ok = frame[frame["status"] == STATUS_OK]
    # "no TTL" and "expiring" count every key (a corrupt key that never expires leaks
    # memory); the days left are the buyers', beside the other "by" counts
    ttl_days = frame["ttl_days"]
    stored = int(ok["stored_bytes"].sum())
    original = int(ok["original_bytes"].sum())

    def counts(column: str, rows: pd.DataFrame = ok) -> dict[str, int]:
        return {str(k): int(v) for k, v in value_counts_text(rows[column]).items()}

    buckets = pd.cut(ok["ttl_days"].dropna(), bins=[*TTL_BUCKET_DAYS, float("inf")],
                     labels=list(TTL_BUCKET_NAMES), include_lowest=True, right=False)
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "total": len(frame),
        "buyers": len(ok),
        "by_status": counts("status", frame),
        "by_temperature": counts("temperature"),
        "by_persona": counts("persona"),
        "by_journey_stage": counts("journey_stage"),
        "by_codec": counts("codec"),
        "by_key_id": counts("key_id"),
        "by_schema_version": counts("schema_version"),
        "qualified": int(ok["is_qualified"].sum()),
        "qa_seeded": int(frame["qa_seed"].sum()),
        "corrupt": int(frame["status"].isin(PROBLEM_STATUSES).sum()),
        "legacy": int((frame["status"] == STATUS_LEGACY).sum()),
        "undecryptable": int((frame["status"] == STATUS_UNDECRYPTABLE).sum()),
        "stored_bytes": stored,
        "original_bytes": original,
        "stored_bytes_by_dictionary": bytes_by_dictionary(ok),
        "compression_ratio": round(original / stored, 3) if stored else None,
        "ttl": {
            "no_ttl": int(ttl_days.isna().sum()),
            "expiring_24h": int((ttl_days < 1).sum()),
            "days_remaining": {str(k): int(v) for k, v in
                               buckets.value_counts(sort=False).items()},
        },
    }


def bytes_by_dictionary(ok: pd.DataFrame) -> dict[str, int]:
    """Stored bytes of readable records per :data:`DICTIONARY_USE` label."""
    if "dictionary" not in ok:
        return dict.fromkeys(DICTIONARY_USE, 0)
    sums = ok.groupby("dictionary", observed=False)["stored_bytes"].sum()
    return {label: int(sums.get(label, 0)) for label in DICTIONARY_USE}


def display_id(contact_id: str) -> str:
    """A contact id safe to print: undecodable key bytes shown as \\xNN escapes."""
    return contact_id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def problem_records(frame: pd.DataFrame) -> pd.DataFrame:
    """Keys that are not readable buyer states, with what is wrong (for ops to act on)."""
    rows = frame[frame["status"] != STATUS_OK]
    problems = rows[["contact_id", "status", "problem", "stored_bytes"]].reset_index(drop=True)
    problems["contact_id"] = problems["contact_id"].map(display_id)
    return problems


def timed_scan(memory: SyncBuyerConversationMemory,
               **kwargs: Any) -> tuple[pd.DataFrame, float]:
    """:func:`scan_summaries` and the seconds it took (for the dashboard and benchmarks)."""
    started = time.perf_counter()
    frame = scan_summaries(memory, **kwargs)
    return frame, time.perf_counter() - started


# finding buyers in the table ----------------------------------------------------------------

#: Orders of a buyer list. Applied to every match before any cut, so the first rows of a
#: capped list are the newest, soonest-expiring or largest of all, not of some sample.
ORDER_RECENT = "recent"  # last interaction, newest first
ORDER_EXPIRING = "expiring"  # remaining TTL, soonest first; keys without a TTL last
ORDER_LARGEST = "largest"  # stored bytes, largest first
BUYER_ORDERS = (ORDER_RECENT, ORDER_EXPIRING, ORDER_LARGEST)
#: Longest contact-id search accepted: the pattern runs against every id of the table.
MAX_PATTERN_CHARS = 200
_GLOB_CHARACTERS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` is matched as a glob (it holds ``*``, ``?`` or ``[``)."""
    return not _GLOB_CHARACTERS.isdisjoint(pattern)


def contact_id_matches(contact_ids: pd.Series, pattern: str) -> np.ndarray:
    """Which ids contain ``pattern``, or, when it holds ``* ? [``, match it as a glob.

    Case-sensitive, as Redis keys are; a glob matches the whole id (``contact-2026-*``),
    as ``SCAN MATCH`` does. Vectorised: 100k ids take tens of milliseconds. fnmatch's
    regex is linear in the id (no catastrophic backtracking on repeated ``*``).
    """
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"a contact id search is at most {MAX_PATTERN_CHARS} characters, "
                         f"not {len(pattern)}")
    if not pattern:
        return np.ones(len(contact_ids), dtype=bool)
    ids = contact_ids.astype(object)
    found = (ids.str.match(fnmatch.translate(pattern), flags=re.DOTALL) if is_glob(pattern)
             else ids.str.contains(pattern, regex=False))
    return found.fillna(False).to_numpy(dtype=bool)


def check_order(order: str) -> None:
    """Raise ValueError naming the orders there are, for anything else."""
    if order not in BUYER_ORDERS:
        raise ValueError(f"unknown order {order!r}; one of {', '.join(BUYER_ORDERS)}")


def order_key(frame: pd.DataFrame, order: str) -> np.ndarray:
    """An ascending sort key per row for ``order``."""
    check_order(order)
    if order == ORDER_RECENT:
        return -frame["last_interaction_epoch"].to_numpy(dtype=np.int64)
    if order == ORDER_EXPIRING:
        ttl_ms = frame["ttl_ms"].to_numpy(dtype=np.int64)
        return np.where(ttl_ms < 0, np.iinfo(np.int64).max, ttl_ms)
    return -frame["stored_bytes"].to_numpy(dtype=np.int64)


def find_buyers(frame: pd.DataFrame, *, pattern: str = "",
                expires_within_seconds: float | None = None, without_ttl: bool = False,
                order: str = ORDER_RECENT) -> np.ndarray:
    """Row positions (for ``iloc``) of the rows matching every condition, in ``order``.

    ``expires_within_seconds``: a TTL set and under that many seconds (the same rule as
    the "expiring in 24 h" count, so a list and its count agree); ``without_ttl``: keys
    that never expire. Sorted before any cut, stable for ties. Vectorised, no per-row
    Python: the overview calls this on every run.
    """
    keep = contact_id_matches(frame["contact_id"], pattern)
    ttl_ms = frame["ttl_ms"].to_numpy(dtype=np.int64)
    if expires_within_seconds is not None:  # not &=: pandas may hand out read-only arrays
        keep = keep & (ttl_ms >= 0) & (ttl_ms < expires_within_seconds * 1000)
    if without_ttl:
        keep = keep & (ttl_ms < 0)
    positions = np.flatnonzero(keep)
    return positions[np.argsort(order_key(frame, order)[positions], kind="stable")]
