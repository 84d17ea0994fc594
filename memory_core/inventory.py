"""The keyspace as a table: one row per buyer key, from record headers only.

:func:`scan_summaries` walks ``<prefix>:*`` with SCAN and, per batch of keys, pipelines
``GETRANGE key 0 255`` (the header) and ``PTTL``. Payloads are never read or decoded, so
a million buyers cost a million small replies, not a million decompressions. Columns are
built in compact arrays (8 bytes a number, shared strings for repeated labels) so memory
stays bounded by the row count, not by state sizes. :func:`summarize_inventory` turns the
table into the counts the CLI prints and the dashboard shows.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import redis

from memory_core import dictionaries as dicts
from memory_core.errors import CorruptRecord, StoreUnavailable
from memory_core.legacy import looks_legacy
from memory_core.record import HEADER_READ_BYTES, parse_summary
from memory_core.store import SyncBuyerConversationMemory

STATUS_OK = "ok"
STATUS_LEGACY = "legacy"  # pickled record of the old system: readable, not summarised
STATUS_CORRUPT = "corrupt"
STATUS_FOREIGN = "foreign"  # a key of another Redis type under our prefix
STATUS_MISSING_DICTIONARY = "missing_dictionary"
PROBLEM_STATUSES = (STATUS_CORRUPT, STATUS_FOREIGN, STATUS_MISSING_DICTIONARY)

_TEXT_COLUMNS = ("status", "codec", "schema_version", "temperature", "persona",
                 "journey_stage")
_INT_COLUMNS = ("stored_bytes", "original_bytes", "dictionary_id", "message_count",
                "last_interaction_epoch", "ttl_ms")
_BOOL_COLUMNS = ("is_qualified", "qa_seed")
#: Rows handed to ``progress`` at a time; also the pipeline size (measured in benchmarks).
DEFAULT_BATCH = 1000

ProgressCallback = Callable[[int, int], None]


class _Columns:
    """Column builders: arrays for numbers, interned strings for repeated labels."""

    def __init__(self) -> None:
        self.contact_id: list[str] = []
        self.problem: list[str] = []
        self.text: dict[str, list[str]] = {name: [] for name in _TEXT_COLUMNS}
        self.ints: dict[str, array[int]] = {name: array("q") for name in _INT_COLUMNS}
        self.bools: dict[str, bytearray] = {name: bytearray() for name in _BOOL_COLUMNS}
        self._interned: dict[str, str] = {}

    def _label(self, value: str) -> str:
        return self._interned.setdefault(value, value)

    def add(self, contact_id: str, status: str, problem: str, ttl_ms: int,
            values: dict[str, Any]) -> None:
        self.contact_id.append(contact_id)
        self.problem.append(problem)
        self.text["status"].append(self._label(status))
        for name in _TEXT_COLUMNS[1:]:
            self.text[name].append(self._label(values.get(name, "")))
        for name in _INT_COLUMNS[:-1]:
            self.ints[name].append(values.get(name, 0))
        self.ints["ttl_ms"].append(ttl_ms)
        for name in _BOOL_COLUMNS:
            self.bools[name].append(1 if values.get(name) else 0)

    def frame(self) -> pd.DataFrame:
        data: dict[str, Any] = {"contact_id": pd.Series(self.contact_id, dtype=object)}
        for name, values in self.text.items():
            data[name] = pd.Categorical(values)
        for name, ints in self.ints.items():
            data[name] = np.frombuffer(ints, dtype=np.int64) if len(ints) else np.array(
                [], dtype=np.int64)
        for name, flags in self.bools.items():
            data[name] = np.frombuffer(bytes(flags), dtype=np.uint8).astype(bool)
        data["problem"] = pd.Series(self.problem, dtype=object)
        return pd.DataFrame(data)


def _summary_values(raw: bytes) -> dict[str, Any]:
    summary = parse_summary(raw)
    return {
        "codec": summary.codec, "schema_version": summary.schema_version,
        "temperature": summary.temperature or "unknown",
        "persona": summary.persona or "unknown",
        "journey_stage": summary.journey_stage or "unknown",
        "stored_bytes": summary.stored_bytes, "original_bytes": summary.original_bytes,
        "dictionary_id": summary.dictionary_id, "message_count": summary.message_count,
        "last_interaction_epoch": summary.last_interaction_epoch,
        "is_qualified": summary.is_qualified, "qa_seed": summary.qa_seed,
    }


def classify_header(reply: Any) -> tuple[str, str, dict[str, Any]]:
    """(status, problem, summary values) for one GETRANGE reply."""
    if isinstance(reply, redis.ResponseError):
        return STATUS_FOREIGN, f"not a string key ({reply})", {}
    if isinstance(reply, Exception):
        return STATUS_CORRUPT, f"read failed: {reply}", {}
    if looks_legacy(reply):
        return STATUS_LEGACY, "pickled record of the old system; run migrate-legacy", {}
    try:
        return STATUS_OK, "", _summary_values(reply)
    except CorruptRecord as exc:
        return STATUS_CORRUPT, str(exc), {}


def scan_summaries(memory: SyncBuyerConversationMemory, *, batch_size: int = DEFAULT_BATCH,
                   progress: ProgressCallback | None = None) -> pd.DataFrame:
    """One row per key under the memory's prefix, built from headers only.

    Columns: contact_id, status (ok/legacy/corrupt/foreign/missing_dictionary), problem,
    codec, schema_version, temperature, persona, journey_stage, stored_bytes,
    original_bytes, dictionary_id, message_count, last_interaction_epoch, ttl_ms (-1: no
    TTL), is_qualified, qa_seed, plus derived compression_ratio, ttl_days and
    last_interaction. ``progress(done, estimated_total)`` is called after each batch.
    Raises :class:`StoreUnavailable` if Redis cannot be reached.
    """
    client = memory.client
    columns = _Columns()
    try:
        estimated_total = int(client.dbsize()) if progress else 0
        cursor: int = 0
        started = True
        while started or cursor != 0:
            started = False
            cursor, keys = client.scan(cursor=cursor, match=memory.scan_pattern,
                                       count=batch_size)
            if keys:
                _read_batch(memory, keys, columns)
                if progress:
                    progress(len(columns.contact_id), max(estimated_total,
                                                          len(columns.contact_id)))
        frame = columns.frame()
        _mark_missing_dictionaries(memory, frame)
        _fill_unsummarised_sizes(memory, frame)
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis unreachable during scan: {exc}") from exc
    return _with_derived_columns(frame)


def _read_batch(memory: SyncBuyerConversationMemory, keys: list[bytes],
                columns: _Columns) -> None:
    pipe = memory.client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("GETRANGE", key, 0, HEADER_READ_BYTES - 1)
        pipe.execute_command("PTTL", key)
    replies = pipe.execute(raise_on_error=False)
    for index, key in enumerate(keys):
        header, pttl = replies[2 * index], replies[2 * index + 1]
        if not isinstance(pttl, int) or pttl == -2:
            continue  # expired or deleted between SCAN and read
        status, problem, values = classify_header(header)
        columns.add(memory.contact_id_for(key), status, problem, pttl, values)


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
    frame["status"] = frame["status"].cat.add_categories(
        [c for c in [STATUS_MISSING_DICTIONARY] if c not in frame["status"].cat.categories])
    frame.loc[rows, "status"] = STATUS_MISSING_DICTIONARY
    frame.loc[rows, "problem"] = [
        f"zstd dictionary {i} is missing from Redis; the state cannot be decompressed"
        for i in frame.loc[rows, "dictionary_id"]]


def _fill_unsummarised_sizes(memory: SyncBuyerConversationMemory, frame: pd.DataFrame) -> None:
    """Sizes of legacy and corrupt records (rare), which have no trustworthy header."""
    rows = frame.index[frame["status"].isin([STATUS_LEGACY, STATUS_CORRUPT])]
    if len(rows) == 0:
        return
    pipe = memory.client.pipeline(transaction=False)
    for contact_id in frame.loc[rows, "contact_id"]:
        pipe.strlen(f"{memory.prefix}:{contact_id}")
    sizes = [s if isinstance(s, int) else 0 for s in pipe.execute(raise_on_error=False)]
    frame.loc[rows, "stored_bytes"] = sizes
    frame.loc[rows, "original_bytes"] = sizes


def _with_derived_columns(frame: pd.DataFrame) -> pd.DataFrame:
    stored = frame["stored_bytes"].to_numpy(dtype=np.float64)
    original = frame["original_bytes"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["compression_ratio"] = np.where(stored > 0, original / stored, np.nan)
    ttl_ms = frame["ttl_ms"].to_numpy()
    frame["ttl_days"] = np.where(ttl_ms >= 0, ttl_ms / 86_400_000, np.nan)
    epoch = frame["last_interaction_epoch"]
    frame["last_interaction"] = pd.to_datetime(epoch.where(epoch > 0), unit="s", utc=True)
    return frame


def summarize_inventory(frame: pd.DataFrame, now: datetime | None = None) -> dict[str, Any]:
    """Counts for the whole table: what ``inventory --json`` prints and the overview shows."""
    now = now or datetime.now(UTC)
    ok = frame[frame["status"] == STATUS_OK]
    ttl_days = frame["ttl_days"]
    stored = int(ok["stored_bytes"].sum())
    original = int(ok["original_bytes"].sum())

    def counts(column: str, rows: pd.DataFrame = ok) -> dict[str, int]:
        series = rows[column].astype(str).value_counts()
        return {str(k): int(v) for k, v in series.items() if v}

    buckets = pd.cut(ttl_days.dropna(), bins=[0, 1, 7, 14, 30, 60, 90, float("inf")],
                     labels=["<1", "1-7", "7-14", "14-30", "30-60", "60-90", ">90"],
                     include_lowest=True, right=False)
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "total": len(frame),
        "buyers": len(ok),
        "by_status": counts("status", frame),
        "by_temperature": counts("temperature"),
        "by_persona": counts("persona"),
        "by_journey_stage": counts("journey_stage"),
        "by_codec": counts("codec"),
        "by_schema_version": counts("schema_version"),
        "qualified": int(ok["is_qualified"].sum()),
        "qa_seeded": int(frame["qa_seed"].sum()),
        "corrupt": int(frame["status"].isin(PROBLEM_STATUSES).sum()),
        "legacy": int((frame["status"] == STATUS_LEGACY).sum()),
        "stored_bytes": stored,
        "original_bytes": original,
        "compression_ratio": round(original / stored, 3) if stored else None,
        "ttl": {
            "no_ttl": int(ttl_days.isna().sum()),
            "expiring_24h": int((ttl_days < 1).sum()),
            "days_remaining": {str(k): int(v) for k, v in
                               buckets.value_counts(sort=False).items()},
        },
    }


def problem_records(frame: pd.DataFrame) -> pd.DataFrame:
    """Keys that are not readable buyer states, with what is wrong (for ops to act on)."""
    rows = frame[frame["status"] != STATUS_OK]
    return rows[["contact_id", "status", "problem", "stored_bytes"]].reset_index(drop=True)


def timed_scan(memory: SyncBuyerConversationMemory,
               **kwargs: Any) -> tuple[pd.DataFrame, float]:
    """:func:`scan_summaries` and the seconds it took (for the dashboard and benchmarks)."""
    started = time.perf_counter()
    frame = scan_summaries(memory, **kwargs)
    return frame, time.perf_counter() - started
