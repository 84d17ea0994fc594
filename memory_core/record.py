"""The bytes stored at a buyer's key: a short summary header, then the state payload.

Layout (one Redis string per buyer)::

    b"BCM1" <summary fields joined by 0x1F> b"\\n" <payload>

The header holds what an overview needs (sizes, codec, version, temperature, persona,
stage, message count, last interaction, QA flag) and never PII. A scan reads it with
``GETRANGE key 0 255`` and never touches the payload; a load reads the whole string.
The payload is the state's JSON, zstd-compressed (optionally with a trained dictionary)
when larger than the threshold. One string per buyer keeps Redis overhead to one key;
a hash would need a field per summary value and a hashtable encoding for the payload.

Pure functions only: compression dictionaries are passed in by the caller.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import zstandard

from memory_core.errors import CorruptRecord
from memory_core.state import QA_SEED_FIELD, parse_timestamp

MAGIC = b"BCM1"
SEPARATOR = b"\x1f"
HEADER_END = b"\n"
#: A scan reads this many bytes of each record; the header always fits.
HEADER_READ_BYTES = 256
_TEXT_FIELD_LIMIT = 40  # bytes per text field of the header
CODEC_NONE = "none"
CODEC_ZSTD = "zstd"
_HEADER_FIELDS = 12


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """What a scan learns about a buyer from the header alone."""

    schema_version: str
    codec: str
    dictionary_id: int
    original_bytes: int
    payload_bytes: int
    header_bytes: int
    temperature: str
    persona: str
    is_qualified: bool
    journey_stage: str
    message_count: int
    last_interaction_epoch: int
    qa_seed: bool

    @property
    def stored_bytes(self) -> int:
        return self.header_bytes + self.payload_bytes


def _header_text(value: Any) -> bytes:
    """A summary value as short header text with the delimiters removed."""
    text = "" if value is None else str(value)
    text = text.replace("\x1f", " ").replace("\n", " ").replace("\r", " ")
    # Cut by bytes, not characters, so the header fits the scan window whatever the script;
    # "ignore" drops a multi-byte character split by the cut.
    return text.encode("utf-8", "replace")[:_TEXT_FIELD_LIMIT].decode(
        "utf-8", "ignore").encode("utf-8")


class _Codecs(threading.local):
    """Per-thread zstd (de)compressors: they are not thread-safe and costly to build."""

    def __init__(self) -> None:
        self.compressors: dict[tuple[int, int], zstandard.ZstdCompressor] = {}
        self.decompressors: dict[int, zstandard.ZstdDecompressor] = {}

    def compressor(self, level: int,
                   dictionary: zstandard.ZstdCompressionDict | None) -> zstandard.ZstdCompressor:
        key = (level, dictionary.dict_id() if dictionary is not None else 0)
        found = self.compressors.get(key)
        if found is None:
            found = zstandard.ZstdCompressor(level=level, dict_data=dictionary,
                                             write_checksum=False, write_content_size=True)
            self.compressors[key] = found
        return found

    def decompressor(
            self, dictionary: zstandard.ZstdCompressionDict | None) -> zstandard.ZstdDecompressor:
        key = dictionary.dict_id() if dictionary is not None else 0
        found = self.decompressors.get(key)
        if found is None:
            found = zstandard.ZstdDecompressor(dict_data=dictionary)
            self.decompressors[key] = found
        return found


_codecs = _Codecs()


def encode_record(state: dict[str, Any], data: bytes, *, compress_threshold_bytes: int,
                       codec: str, zstd_level: int,
                       dictionary: zstandard.ZstdCompressionDict | None = None) -> bytes:
    """The stored record bytes for a prepared ``state`` already serialised to ``data``."""
    used_codec, dictionary_id, payload = CODEC_NONE, 0, data
    if codec == CODEC_ZSTD and len(data) > compress_threshold_bytes:
        payload = _codecs.compressor(zstd_level, dictionary).compress(data)
        used_codec = CODEC_ZSTD
        dictionary_id = dictionary.dict_id() if dictionary is not None else 0
    last = parse_timestamp(state.get("last_interaction_timestamp"))
    history = state.get("conversation_history")
    fields = (
        _header_text(state.get("state_version")),
        used_codec.encode(),
        str(dictionary_id).encode(),
        str(len(data)).encode(),
        str(len(payload)).encode(),
        _header_text(state.get("buyer_temperature")),
        _header_text(state.get("buyer_persona")),
        b"1" if state.get("is_qualified") is True else b"0",
        _header_text(state.get("current_journey_stage")),
        str(len(history) if isinstance(history, list) else 0).encode(),
        str(int(last.timestamp()) if last else 0).encode(),
        b"1" if state.get(QA_SEED_FIELD) is True else b"0",
    )
    return MAGIC + SEPARATOR.join(fields) + HEADER_END + payload


def is_record(raw: bytes) -> bool:
    return raw[:4] == MAGIC


def split_header(raw: bytes) -> tuple[list[bytes], int]:
    """The raw header fields of a record (or its first bytes) and the header's length.

    The one place that knows the field layout's framing; scans call it per key, so it
    stays a split, not an object.
    """
    if raw[:4] != MAGIC:
        raise CorruptRecord("not a memory_core record (unknown leading bytes)")
    end = raw.find(HEADER_END, 4)
    if end < 0:
        raise CorruptRecord("record header is truncated")
    parts = raw[4:end].split(SEPARATOR)
    if len(parts) != _HEADER_FIELDS:
        raise CorruptRecord(f"record header has {len(parts)} fields, expected {_HEADER_FIELDS}")
    return parts, end + 1


def parse_summary(raw: bytes) -> RecordSummary:
    """Read the header at the start of ``raw`` (a whole record or its first bytes)."""
    parts, header_bytes = split_header(raw)
    try:
        return RecordSummary(
            schema_version=parts[0].decode(),
            codec=parts[1].decode(),
            dictionary_id=int(parts[2]),
            original_bytes=int(parts[3]),
            payload_bytes=int(parts[4]),
            header_bytes=header_bytes,
            temperature=parts[5].decode("utf-8", "replace"),
            persona=parts[6].decode("utf-8", "replace"),
            is_qualified=parts[7] == b"1",
            journey_stage=parts[8].decode("utf-8", "replace"),
            message_count=int(parts[9]),
            last_interaction_epoch=int(parts[10]),
            qa_seed=parts[11] == b"1",
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRecord(f"record header is malformed: {exc}") from None


@dataclass(frozen=True, slots=True)
class PayloadHeader:
    """The header fields a load needs: the first five, parsed without the rest."""

    schema_version: bytes
    codec: str
    dictionary_id: int
    original_bytes: int
    payload_bytes: int
    header_bytes: int


def parse_payload_header(raw: bytes) -> PayloadHeader:
    """The cheap part of the header, for the bot's hot load path."""
    if raw[:4] != MAGIC:
        raise CorruptRecord("not a memory_core record (unknown leading bytes)")
    end = raw.find(HEADER_END, 4)
    if end < 0:
        raise CorruptRecord("record header is truncated")
    parts = raw[4:end].split(SEPARATOR, 5)
    if len(parts) != 6:
        raise CorruptRecord("record header has too few fields")
    try:
        return PayloadHeader(parts[0], parts[1].decode(), int(parts[2]), int(parts[3]),
                             int(parts[4]), end + 1)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRecord(f"record header is malformed: {exc}") from None


def decode_payload(raw: bytes, summary: PayloadHeader | RecordSummary,
                   dictionary: zstandard.ZstdCompressionDict | None = None,
                   max_bytes: int | None = None) -> bytes:
    """The state's JSON bytes from a whole record whose header is ``summary``.

    ``max_bytes`` bounds what a record may expand to: a few KB in Redis must not become
    hundreds of MB in the bot (a decompression bomb planted by anyone who can write keys).
    """
    if max_bytes is not None and summary.original_bytes > max_bytes:
        raise CorruptRecord(f"record claims {summary.original_bytes} bytes of JSON, more "
                            f"than max_state_bytes={max_bytes}")
    payload = memoryview(raw)[summary.header_bytes:]  # no copy on the hot path
    if len(payload) != summary.payload_bytes:
        raise CorruptRecord(f"payload is {len(payload)} bytes, header says "
                            f"{summary.payload_bytes} (truncated or overwritten)")
    if summary.codec == CODEC_NONE:
        return bytes(payload)
    if summary.codec != CODEC_ZSTD:
        raise CorruptRecord(f"unknown codec {summary.codec!r}")
    try:
        if zstandard.frame_content_size(payload) != summary.original_bytes:
            raise CorruptRecord("decompressed size does not match the header")
        data = _codecs.decompressor(dictionary).decompress(payload)
    except zstandard.ZstdError as exc:
        raise CorruptRecord(f"zstd payload cannot be decompressed: {exc}") from None
    if len(data) != summary.original_bytes:
        raise CorruptRecord("decompressed size does not match the header")
    return data
