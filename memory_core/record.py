"""The bytes stored at a buyer's key: a short summary header, then the state payload.

Layout (one Redis string per buyer)::

    b"BCM1" <summary fields joined by 0x1F> b"\\n" <payload>

The header holds what an overview needs (sizes, codec, version, temperature, persona,
stage, message count, last interaction, QA flag, revision) and never PII. The revision is
the last field, so the server-side save script (:mod:`memory_core.scripts`) can put the
next revision between the two halves that :func:`encode_record_parts` returns; records
written before revisions existed have twelve fields and count as revision 0. A scan reads it with
``GETRANGE key 0 255`` and never touches the payload; a load reads the whole string.
The payload is the state's JSON, or, when larger than the threshold, zstd-compressed
(optionally with a trained dictionary) in the packed layout of :mod:`memory_core.packed`
(the history split into streams; JSON when packing does not make it smaller). When
encryption keys are configured it is then AES-256-GCM encrypted (:mod:`memory_core.crypto`):
the codec field reads ``<codec>+<key id>`` (``zstd+k1``) and the payload is nonce +
ciphertext + tag, bound to the Redis key name, the codec field, the dictionary id and the
original size. One string per buyer keeps Redis overhead to one key; a hash would need a
field per summary value and a hashtable encoding for the payload.

Pure functions only: compression dictionaries are passed in by the caller.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import zstandard

from memory_core import packed
from memory_core.crypto import Keyring, is_key_id
from memory_core.errors import CorruptRecord, UndecryptableRecord
from memory_core.state import QA_SEED_FIELD, load_json, parse_timestamp

MAGIC = b"BCM1"
SEPARATOR = b"\x1f"
HEADER_END = b"\n"
#: A scan reads this many bytes of each record; the header always fits.
HEADER_READ_BYTES = 256
_TEXT_FIELD_LIMIT = 40  # bytes per text field of the header
CODEC_NONE = "none"
CODEC_ZSTD = "zstd"
_CODECS = (CODEC_NONE.encode(), CODEC_ZSTD.encode())
#: Joins the compression codec and the encryption key id in the codec field.
KEY_ID_SEPARATOR = "+"
_HEADER_FIELDS = 13
#: Records written before revisions existed: the same fields without the revision.
_HEADER_FIELDS_WITHOUT_REVISION = 12
#: A revision is 1 to 12 ASCII digits; the save script wraps around before 10**12, and
#: anything else in that field makes the header unreadable (and the script count it 0).
MAX_REVISION_DIGITS = 12


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
    revision: int
    #: The id of the key the payload is encrypted with; "" when it is not encrypted.
    key_id: str = ""

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


#: (De)compressors kept per thread. Each holds its dictionary, and records name the
#: dictionary they need, so planted records must not be able to grow this without bound.
_CODECS_PER_THREAD = 4


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
            if len(self.compressors) >= _CODECS_PER_THREAD:
                self.compressors.clear()
            self.compressors[key] = found
        return found

    def decompressor(
            self, dictionary: zstandard.ZstdCompressionDict | None) -> zstandard.ZstdDecompressor:
        key = dictionary.dict_id() if dictionary is not None else 0
        found = self.decompressors.get(key)
        if found is None:
            found = zstandard.ZstdDecompressor(dict_data=dictionary)
            if len(self.decompressors) >= _CODECS_PER_THREAD:
                self.decompressors.clear()
            self.decompressors[key] = found
        return found


_codecs = _Codecs()


def associated_data(key_name: bytes, codec_field: bytes, dictionary_id: int,
                    original_bytes: int) -> bytes:
    """What an encrypted payload is bound to: where it is stored and how to decode it."""
    return SEPARATOR.join((MAGIC, key_name, codec_field, str(dictionary_id).encode(),
                           str(original_bytes).encode()))


def encode_record_parts(state: dict[str, Any], data: bytes, *, compress_threshold_bytes: int,
                        codec: str, zstd_level: int,
                        dictionary: zstandard.ZstdCompressionDict | None = None,
                        keyring: Keyring | None = None, key_name: bytes = b"",
                        pack: bool = True) -> tuple[bytes, bytes]:
    """The record of a prepared ``state`` (serialised to ``data``) around its revision.

    ``head + b"<revision>" + tail`` is the stored record; the split lets the server fill in
    the revision it counts, in the same step as the write. With a ``keyring`` the payload
    is encrypted under its first key and bound to ``key_name`` (the Redis key). ``pack``
    compresses the packed layout rather than the JSON. The header's original size is the
    JSON's either way: what the state costs before compression, and the bound a reader
    holds a payload to.
    """
    used_codec, dictionary_id, payload = CODEC_NONE, 0, data
    if codec == CODEC_ZSTD and len(data) > compress_threshold_bytes:
        body = compression_input(state, data, pack=pack)
        compressed = _codecs.compressor(zstd_level, dictionary).compress(body)
        if len(compressed) < len(data):  # else plain: smaller, and no decompression
            payload, used_codec = compressed, CODEC_ZSTD
            dictionary_id = dictionary.dict_id() if dictionary is not None else 0
    codec_field = used_codec.encode()
    if keyring is not None:
        codec_field += (KEY_ID_SEPARATOR + keyring.primary_id).encode()
        payload = keyring.encrypt(payload, associated_data(key_name, codec_field,
                                                           dictionary_id, len(data)))
    last = parse_timestamp(state.get("last_interaction_timestamp"))
    history = state.get("conversation_history")
    fields = (
        _header_text(state.get("state_version")),
        codec_field,
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
    return MAGIC + SEPARATOR.join(fields) + SEPARATOR, HEADER_END + payload


def compression_input(state: dict[str, Any], data: bytes, *, pack: bool) -> bytes:
    """What zstd compresses for a state serialised to ``data``: its packed layout when
    asked for and smaller, else the JSON. Dictionaries are trained on the same bytes."""
    body = packed.pack(state) if pack else None
    return data if body is None or len(body) >= len(data) else body


def encode_record(state: dict[str, Any], data: bytes, *, compress_threshold_bytes: int,
                  codec: str, zstd_level: int,
                  dictionary: zstandard.ZstdCompressionDict | None = None,
                  revision: int = 1, keyring: Keyring | None = None,
                  key_name: bytes = b"", pack: bool = True) -> bytes:
    """The stored record bytes for a prepared ``state`` already serialised to ``data``."""
    head, tail = encode_record_parts(state, data,
                                     compress_threshold_bytes=compress_threshold_bytes,
                                     codec=codec, zstd_level=zstd_level, dictionary=dictionary,
                                     keyring=keyring, key_name=key_name, pack=pack)
    return head + str(revision).encode() + tail


def is_record(raw: bytes) -> bool:
    return raw[:4] == MAGIC


def _header_end(raw: bytes) -> int:
    """Where the header's newline is; an honest header always ends inside the scan window."""
    if raw[:4] != MAGIC:
        raise CorruptRecord("not a memory_core record (unknown leading bytes)")
    end = raw.find(HEADER_END, 4, HEADER_READ_BYTES)
    if end < 0:
        raise CorruptRecord("record header is truncated or longer than "
                            f"{HEADER_READ_BYTES} bytes")
    return end


def _revision(field: bytes) -> int:
    if not field.isdigit() or len(field) > MAX_REVISION_DIGITS:
        raise CorruptRecord(f"record header has a malformed revision {field[:20]!r}")
    return int(field)


def split_header(raw: bytes) -> tuple[list[bytes], int]:
    """The raw header fields of a record (or its first bytes) and the header's length.

    The one place that knows the field layout's framing; scans call it per key, so it
    stays a split, not an object. A record from before revisions has one field fewer.
    """
    end = _header_end(raw)
    parts = raw[4:end].split(SEPARATOR)
    if len(parts) not in (_HEADER_FIELDS, _HEADER_FIELDS_WITHOUT_REVISION):
        raise CorruptRecord(f"record header has {len(parts)} fields, expected {_HEADER_FIELDS}")
    return parts, end + 1


def header_revision(fields: list[bytes]) -> int:
    """The revision among split header fields (0 for a record from before revisions)."""
    return _revision(fields[12]) if len(fields) == _HEADER_FIELDS else 0


def stored_revision(window: bytes | None) -> int:
    """The revision the server-side scripts count for these leading bytes of a value.

    Mirrors ``revision_of`` in :mod:`memory_core.scripts` exactly: anything that is not a
    readable header with a well-formed revision field counts as 0, so a writer that found
    no readable state can replace it with ``expected_revision=0``.
    """
    if not window or window[:4] != MAGIC:
        return 0
    end = window.find(HEADER_END, 4, HEADER_READ_BYTES)
    if end < 0:
        return 0
    parts = window[4:end].split(SEPARATOR)
    if len(parts) != _HEADER_FIELDS:
        return 0
    field = parts[-1]
    return int(field) if field.isdigit() and len(field) <= MAX_REVISION_DIGITS else 0


#: Digits a header number may have: a non-negative int64 (an epoch may also be negative).
_MAX_NUMBER_DIGITS = 18


def _number(field: bytes, name: str, *, signed: bool = False) -> int:
    digits = field[1:] if signed and field[:1] == b"-" else field
    if not digits.isdigit() or len(digits) > _MAX_NUMBER_DIGITS:
        raise CorruptRecord(f"record header is malformed: {name} is {field[:20]!r}")
    return int(field)


def split_codec(field: bytes) -> tuple[str, str]:
    """(compression codec, key id) of a header's codec field; the key id is "" in the clear."""
    if field in _CODECS:
        return field.decode(), ""
    codec, separator, key_id = field.partition(KEY_ID_SEPARATOR.encode())
    if not separator or codec not in _CODECS:
        raise CorruptRecord(f"record header is malformed: unknown codec {field[:20]!r}")
    text = key_id.decode("ascii", "replace")
    if not is_key_id(text):
        raise CorruptRecord(f"record header is malformed: invalid key id {key_id[:20]!r}")
    return codec.decode(), text


def _flag(field: bytes, name: str) -> bool:
    if field not in (b"0", b"1"):
        raise CorruptRecord(f"record header is malformed: {name} is {field[:20]!r}")
    return field == b"1"


_FLAGS = (b"0", b"1")


def header_numbers(parts: list[bytes]) -> tuple[int, int, int, int, int, int]:
    """The checked numbers of split header fields, the same rules for every reader.

    (dictionary id, original bytes, payload bytes, message count, last interaction epoch,
    revision). The bot, the operator tools and the scan all apply these rules, so a record
    one of them calls readable none of them calls corrupt. Raises CorruptRecord. The scan
    calls this once per key, so an honest header takes one fast path of C-level checks.
    """
    dictionary_id, original, payload, messages, last = (
        parts[2], parts[3], parts[4], parts[9], parts[10])
    unsigned_last = last[1:] if last[:1] == b"-" else last
    if ((parts[1] in _CODECS or _is_encrypted_codec(parts[1])) and parts[7] in _FLAGS
            and parts[11] in _FLAGS
            and dictionary_id.isdigit() and original.isdigit() and payload.isdigit()
            and messages.isdigit() and unsigned_last.isdigit() and parts[0].isascii()
            and max(len(dictionary_id), len(original), len(payload), len(messages),
                    len(unsigned_last)) <= _MAX_NUMBER_DIGITS):
        return (int(dictionary_id), int(original), int(payload), int(messages), int(last),
                header_revision(parts))
    return _checked_numbers(parts)  # the slow path names what is wrong


def _is_encrypted_codec(field: bytes) -> bool:
    try:
        return bool(split_codec(field)[1])
    except CorruptRecord:
        return False


def _checked_numbers(parts: list[bytes]) -> tuple[int, int, int, int, int, int]:
    split_codec(parts[1])  # raises naming what is wrong
    try:
        parts[0].decode()
    except UnicodeDecodeError:
        raise CorruptRecord("record header is malformed: the schema version is not "
                            "UTF-8") from None
    _flag(parts[7], "the qualified flag")
    _flag(parts[11], "the QA flag")
    return (_number(parts[2], "the dictionary id"), _number(parts[3], "the original size"),
            _number(parts[4], "the payload size"), _number(parts[9], "the message count"),
            _number(parts[10], "the last interaction", signed=True), header_revision(parts))


def parse_summary(raw: bytes) -> RecordSummary:
    """Read and check the header at the start of ``raw`` (a whole record or its first bytes)."""
    parts, header_bytes = split_header(raw)
    dictionary_id, original, payload, messages, last, revision = header_numbers(parts)
    codec, key_id = split_codec(parts[1])
    return RecordSummary(
        schema_version=parts[0].decode(),
        codec=codec,
        dictionary_id=dictionary_id,
        original_bytes=original,
        payload_bytes=payload,
        header_bytes=header_bytes,
        temperature=parts[5].decode("utf-8", "replace"),
        persona=parts[6].decode("utf-8", "replace"),
        is_qualified=parts[7] == b"1",
        journey_stage=parts[8].decode("utf-8", "replace"),
        message_count=messages,
        last_interaction_epoch=last,
        qa_seed=parts[11] == b"1",
        revision=revision,
        key_id=key_id,
    )


def decode_payload(raw: bytes, summary: RecordSummary,
                   dictionary: zstandard.ZstdCompressionDict | None = None,
                   max_bytes: int | None = None, *, keyring: Keyring | None = None,
                   key_name: bytes = b"") -> bytes:
    """The state's bytes from a whole record whose header is ``summary``: its JSON, or
    its packed layout (see :func:`decode_state`).

    ``max_bytes`` bounds what a record may expand to: a few KB in Redis must not become
    hundreds of MB in the bot (a decompression bomb planted by anyone who can write keys).
    An encrypted payload needs the ``keyring`` and the Redis ``key_name`` it was bound to;
    without them it raises :class:`UndecryptableRecord`.
    """
    if max_bytes is not None and summary.original_bytes > max_bytes:
        raise CorruptRecord(f"record claims {summary.original_bytes} bytes of JSON, more "
                            f"than max_state_bytes={max_bytes}")
    payload = memoryview(raw)[summary.header_bytes:]  # no copy on the hot path
    if len(payload) != summary.payload_bytes:
        raise CorruptRecord(f"payload is {len(payload)} bytes, header says "
                            f"{summary.payload_bytes} (truncated or overwritten)")
    if summary.key_id:
        if keyring is None:
            raise UndecryptableRecord(summary.key_id, "no encryption keys are configured "
                                      "(MEMORY_CORE_ENCRYPTION_KEYS)")
        codec_field = f"{summary.codec}{KEY_ID_SEPARATOR}{summary.key_id}".encode()
        payload = memoryview(keyring.decrypt(summary.key_id, payload, associated_data(
            key_name, codec_field, summary.dictionary_id, summary.original_bytes)))
    if summary.codec == CODEC_NONE:
        return bytes(payload)
    if summary.codec != CODEC_ZSTD:
        raise CorruptRecord(f"unknown codec {summary.codec!r}")
    try:
        # The frame states its size: no more than the JSON's is ever allocated.
        if not 0 < zstandard.frame_content_size(payload) <= summary.original_bytes:
            raise CorruptRecord("decompressed size does not match the header")
        data = _codecs.decompressor(dictionary).decompress(payload)
    except zstandard.ZstdError as exc:
        raise CorruptRecord(f"zstd payload cannot be decompressed: {exc}") from None
    # JSON is exactly the size the header claims; a packing is smaller (else it is JSON)
    if (len(data) < summary.original_bytes) != packed.is_packed(data):
        raise CorruptRecord("decompressed size does not match the header")
    return data


def decode_state(raw: bytes, summary: RecordSummary,
                 dictionary: zstandard.ZstdCompressionDict | None = None,
                 max_bytes: int | None = None, *, keyring: Keyring | None = None,
                 key_name: bytes = b"") -> Any:
    """The value stored in a whole record whose header is ``summary`` (a dict when sound).

    Raises :class:`CorruptRecord` (or :class:`UndecryptableRecord`) as
    :func:`decode_payload` does, and for bytes that are neither JSON nor a sound packing.
    """
    data = decode_payload(raw, summary, dictionary, max_bytes, keyring=keyring,
                          key_name=key_name)
    if summary.codec == CODEC_ZSTD and packed.is_packed(data):
        return packed.unpack(data, summary.original_bytes)
    try:
        return load_json(data)
    except ValueError as exc:
        raise CorruptRecord(f"payload is not valid JSON: {exc}") from None
