"""Reading the records of the system this one replaces, without trusting them.

The old bot pickled ``{"compressed": bool, "data": str}`` where ``data`` is the state's
JSON text, or the hex of its gzip bytes. Unpickling data from Redis would let anyone who
can write a key run code in the bot, so :class:`_PlainDataUnpickler` refuses every global
(classes, functions, ``__reduce__`` tricks) and accepts only plain containers and scalars.
"""

from __future__ import annotations

import io
import json
import pickle
import zlib
from typing import Any, NoReturn

from memory_core.errors import CorruptRecord

_ALLOWED_TYPES = (dict, list, tuple, str, bytes, int, float, bool, type(None))


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> NoReturn:
        raise pickle.UnpicklingError(f"refused global {module}.{name} in a legacy record")

    def persistent_load(self, pid: Any) -> NoReturn:
        raise pickle.UnpicklingError("refused persistent id in a legacy record")


def _check_plain(value: Any, depth: int = 0) -> None:
    if depth > 50 or not isinstance(value, _ALLOWED_TYPES):
        raise CorruptRecord("legacy record holds a value that is not plain data")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, depth + 1)
            _check_plain(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_plain(item, depth + 1)


def looks_legacy(raw: bytes) -> bool:
    """Pickle protocol 2+ starts with 0x80; the old system used the default protocol."""
    return raw[:1] == b"\x80"


def _gunzip(blob: bytes, max_bytes: int) -> bytes:
    """gzip bytes, refusing to expand beyond ``max_bytes`` (a bomb stays small)."""
    inflater = zlib.decompressobj(wbits=31)
    data = inflater.decompress(blob, max_bytes + 1)
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise CorruptRecord(f"legacy payload expands beyond max_state_bytes={max_bytes}")
    if not inflater.eof:
        raise CorruptRecord("legacy payload is truncated gzip")
    return data


def decode_legacy(raw: bytes, max_bytes: int = 1024 * 1024) -> dict[str, Any]:
    """The state dict inside a legacy pickled envelope; :class:`CorruptRecord` if unsafe."""
    try:
        envelope = _PlainDataUnpickler(io.BytesIO(raw)).load()
    except Exception as exc:  # any unpickling failure means an unreadable record
        raise CorruptRecord(f"legacy record cannot be read safely: {exc}") from None
    _check_plain(envelope)
    if not isinstance(envelope, dict) or "data" not in envelope:
        raise CorruptRecord("legacy record is not a {'compressed', 'data'} envelope")
    data = envelope["data"]
    try:
        if envelope.get("compressed"):
            blob = bytes.fromhex(data) if isinstance(data, str) else bytes(data)
            text: bytes | str = _gunzip(blob, max_bytes)
        else:
            text = data
            if len(text) > max_bytes:
                raise CorruptRecord(f"legacy payload is larger than max_state_bytes={max_bytes}")
        state = json.loads(text)  # stdlib: the old system's json.dumps may have written NaN
    except (ValueError, TypeError, OSError, EOFError, zlib.error, RecursionError) as exc:
        raise CorruptRecord(f"legacy record payload is unreadable: {exc}") from None
    if not isinstance(state, dict):
        raise CorruptRecord("legacy record does not hold a JSON object")
    return state
