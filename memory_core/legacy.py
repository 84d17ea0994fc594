"""Reading the records of the system this one replaces, without trusting them.

The old bot pickled ``{"compressed": bool, "data": str}`` where ``data`` is the state's
JSON text, or the hex of its gzip bytes. Whoever can write one Redis key chooses these
bytes (GUIDE section 5), so reading them must neither run code nor take more than
bounded time and memory, however they are crafted. Three layers, in order:

1. :func:`_prescan` reads the opcodes with :func:`pickletools.genops`, which allocates no
   more than the input, before anything is unpickled. It refuses opcodes outside a
   plain-data allowlist (every global, reduce, build, persistent id, extension, buffer),
   memo indices out of proportion (CPython grows its memo array to the largest index
   put: 9 bytes could cost 4 GB), reads of memo entries never put, more opcodes than an
   envelope needs, and values that the memo's sharing would expand beyond
   ``MAX_PLAIN_NODES`` (a tuple key shared 2**45 times would hang the dict's hashing).
2. :class:`_PlainDataUnpickler` refuses every global and persistent id, should one slip
   past the pre-scan.
3. :func:`_check_plain` checks that the result holds only plain containers and scalars,
   visiting at most ``MAX_PLAIN_NODES`` values, so a few hundred bytes whose lists share
   their children through the memo cannot make the walk last forever.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from memory_core.errors import CorruptRecord
from memory_core.safetext import printable

#: Opcodes a legacy pickle may hold. An honest envelope takes about 15, so a
#: hundredfold margin still keeps the unpickler's work and memo small.
MAX_LEGACY_OPCODES = 1_000
#: Values a legacy pickle may expand to, counting a value again each time the memo shares
#: it. An honest envelope holds 5 (the dict, two keys, two values).
MAX_PLAIN_NODES = 10_000
#: Nesting a legacy record may have; an honest envelope has 1.
MAX_PLAIN_DEPTH = 50

_ALLOWED_TYPES = (dict, list, tuple, str, bytes, int, float, bool, type(None))

_SCALAR_OPCODES = frozenset({
    "NONE", "NEWTRUE", "NEWFALSE", "BININT", "BININT1", "BININT2", "LONG1", "LONG4",
    "BINFLOAT", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
    "SHORT_BINBYTES", "BINBYTES", "BINBYTES8",
})
_EMPTY_CONTAINERS = {"EMPTY_DICT": "dict", "EMPTY_LIST": "list", "EMPTY_TUPLE": "tuple"}
_TUPLE_SIZES = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_PUT_OPCODES = frozenset({"BINPUT", "LONG_BINPUT", "MEMOIZE"})
_GET_OPCODES = frozenset({"BINGET", "LONG_BINGET"})
_GLOBAL_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL"})
# What pickle.dumps emits at protocols 2 to 5 for dict, list, tuple, str, bytes, int,
# float, bool and None; everything else (REDUCE, BUILD, INST, OBJ, NEWOBJ, PERSID, EXT,
# buffers, sets, text-protocol opcodes) is refused.
_ALLOWED_OPCODES = _SCALAR_OPCODES | _PUT_OPCODES | _GET_OPCODES | frozenset({
    *_EMPTY_CONTAINERS, *_TUPLE_SIZES, "PROTO", "FRAME", "MARK", "TUPLE",
    "APPEND", "APPENDS", "SETITEM", "SETITEMS", "STOP",
})


def _shown(text: str, limit: int = 60) -> str:
    """Hostile text made safe for a log line: no control or bidi characters, short.

    A module or class name in a planted pickle is anyone's text: a newline in it would
    forge a log line, an ESC sequence would reach an operator's terminal.
    """
    return printable(text, limit)


class _PlainDataUnpickler(pickle.Unpickler):
    """The second line: even if an opcode slipped past the pre-scan, no global is loaded."""

    def find_class(self, module: str, name: str) -> NoReturn:
        raise pickle.UnpicklingError(
            f"refused global {_shown(module)}.{_shown(name)} in a legacy record")

    def persistent_load(self, pid: Any) -> NoReturn:
        raise pickle.UnpicklingError("refused persistent id in a legacy record")


class _Refused(Exception):
    """An opcode the pre-scan will not let the unpickler run; the caller says where."""


@dataclass(eq=False, slots=True)
class _Value:
    """What the pre-scan knows of one value the unpickler would build."""

    kind: str  # "dict", "list", "tuple" or "scalar"
    nodes: int = 1  # values it holds, counted again each time the memo shares one
    frozen: bool = False  # shared or nested: filling it now would grow other values too
    text: str | None = None  # a string's value, kept to name what STACK_GLOBAL would load


class _OpcodeScan:
    """Runs plain-data opcodes on a model of the unpickler's stack, marks and memo.

    Nothing is built: each value only counts its nodes. A container that has been read
    from the memo or put inside another is frozen, as an honest pickle never fills one
    after that; so the counts stay exact and a value's size is known when it is made.
    """

    def __init__(self) -> None:
        self.stack: list[_Value] = []
        self.marks: list[int] = []  # stack heights at each MARK still open
        self.memo: list[_Value] = []

    def run(self, name: str, arg: Any) -> None:
        """Apply one allowlisted opcode; :class:`_Refused` where the unpickler must not."""
        if name in _SCALAR_OPCODES:
            self.stack.append(_Value("scalar", frozen=True,
                                     text=arg if isinstance(arg, str) else None))
        elif name in _EMPTY_CONTAINERS:
            kind = _EMPTY_CONTAINERS[name]
            self.stack.append(_Value(kind, frozen=kind == "tuple"))
        elif name == "MARK":
            self.marks.append(len(self.stack))
        elif name in _TUPLE_SIZES:
            self._push_tuple(self._pop(_TUPLE_SIZES[name]))
        elif name == "TUPLE":
            self._push_tuple(self._pop_to_mark())
        elif name in ("APPEND", "APPENDS"):
            self._fill("list", self._pop(1) if name == "APPEND" else self._pop_to_mark())
        elif name in ("SETITEM", "SETITEMS"):
            items = self._pop(2) if name == "SETITEM" else self._pop_to_mark()
            if len(items) % 2:
                raise _Refused("has a key without a value")
            self._fill("dict", items)
        elif name in _PUT_OPCODES:
            self._put(len(self.memo) if arg is None else arg)
        elif name in _GET_OPCODES:
            self._get(arg)
        elif name == "STOP":
            self._pop(1)
        # PROTO and FRAME only describe the stream

    def global_name(self, name: str, arg: Any) -> str:
        """``module.name`` a GLOBAL or STACK_GLOBAL would load, for the refusal message."""
        if name == "GLOBAL":
            parts: list[str | None] = [*str(arg).split(" ", 1)]
        else:
            parts = [value.text for value in self.stack[len(self.stack) - 2:]]
        if len(parts) != 2 or parts[0] is None or parts[1] is None:
            return "(a name the pickle computes)"
        return f"{_shown(parts[0])}.{_shown(parts[1])}"

    def _fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def _top(self) -> _Value:
        if len(self.stack) <= self._fence():
            raise _Refused("finds no value above the last MARK")
        return self.stack[-1]

    def _pop(self, count: int) -> list[_Value]:
        start = len(self.stack) - count
        if start < self._fence():
            raise _Refused("finds too few values above the last MARK")
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def _pop_to_mark(self) -> list[_Value]:
        if not self.marks:
            raise _Refused("has no MARK to pop to")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def _adopt(self, items: list[_Value]) -> int:
        """Nodes of ``items``, now nested in a container and so frozen."""
        for item in items:
            item.frozen = True
        return sum(item.nodes for item in items)

    def _check_size(self, value: _Value) -> None:
        if value.nodes > MAX_PLAIN_NODES:
            raise _Refused(f"makes a {value.kind} of more than {MAX_PLAIN_NODES} values "
                           "(the memo shares one value many times)")

    def _push_tuple(self, items: list[_Value]) -> None:
        value = _Value("tuple", 1 + self._adopt(items), frozen=True)
        self._check_size(value)
        self.stack.append(value)

    def _fill(self, kind: str, items: list[_Value]) -> None:
        target = self._top()
        if target.kind != kind:
            raise _Refused(f"adds to a {target.kind}, not a {kind}")
        if target.frozen:
            raise _Refused(f"adds to a {kind} already shared or nested in another value")
        target.nodes += self._adopt(items)
        self._check_size(target)

    def _put(self, index: int) -> None:
        if index > len(self.memo):
            raise _Refused(f"puts memo entry {index} when {len(self.memo)} exist "
                           "(an honest pickle numbers them 0, 1, 2, ...)")
        value = self._top()
        if index == len(self.memo):
            self.memo.append(value)
        else:
            self.memo[index] = value

    def _get(self, index: int) -> None:
        if index >= len(self.memo):
            raise _Refused(f"reads memo entry {index}, which was never put")
        value = self.memo[index]
        value.frozen = True
        self.stack.append(value)


def _opcodes(raw: bytes) -> Iterator[tuple[str, Any, int]]:
    """Name, argument and byte position of each opcode, up to STOP.

    genops refuses (ValueError) an unknown opcode, an argument longer than what remains,
    and bytes that end before STOP, without allocating what a length field claims. Its
    messages quote bytes with repr, so they are safe to log.
    """
    stream = io.BytesIO(raw)
    opcodes = pickletools.genops(stream)
    while True:
        position = stream.tell()
        try:
            opcode, arg, _ = next(opcodes)
        except StopIteration:
            return
        except ValueError as exc:
            raise CorruptRecord("legacy record cannot be read safely: the opcode at byte "
                                f"{position} is unreadable ({_shown(str(exc), 200)})") from None
        yield opcode.name, arg, position


def _prescan(raw: bytes) -> None:
    """Refuse, before unpickling, a pickle that is not plain data or not of honest size.

    The unpickler's cost follows its opcodes, not its input length: a 9-byte memo index
    allocates gigabytes, a few hundred bytes of memo reads build values too large to walk.
    """
    scan = _OpcodeScan()
    for count, (name, arg, position) in enumerate(_opcodes(raw), 1):
        if count > MAX_LEGACY_OPCODES:
            raise CorruptRecord(f"legacy record cannot be read safely: more than "
                                f"{MAX_LEGACY_OPCODES} opcodes (an honest one has about 15)")
        where = f"{name} at byte {position}"
        if name in _GLOBAL_OPCODES:
            raise CorruptRecord(f"refused global {scan.global_name(name, arg)} in a legacy "
                                f"record ({where})")
        if name not in _ALLOWED_OPCODES:
            raise CorruptRecord(f"legacy record is not plain data: {where} is not allowed")
        try:
            scan.run(name, arg)
        except _Refused as exc:
            raise CorruptRecord(f"legacy record cannot be read safely: {where} {exc}") from None


def _check_plain(value: Any) -> None:
    """Only plain containers and scalars, visiting at most ``MAX_PLAIN_NODES`` values.

    Iterative and bounded by nodes, not depth alone: lists sharing their children through
    the memo make a tree of 2**45 nodes out of a few hundred bytes.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    visited = 0
    while pending:
        item, depth = pending.pop()
        visited += 1
        if visited > MAX_PLAIN_NODES:
            raise CorruptRecord(f"legacy record holds more than {MAX_PLAIN_NODES} values "
                                "(is one value shared many times?)")
        if depth > MAX_PLAIN_DEPTH or not isinstance(item, _ALLOWED_TYPES):
            raise CorruptRecord("legacy record holds a value that is not plain data")
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for pair in item.items() for child in pair)
        elif isinstance(item, list | tuple):
            pending.extend((child, depth + 1) for child in item)


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


def _no_number(constant: str) -> None:
    """NaN, Infinity and -Infinity in the old system's JSON: no value."""
    return None


def decode_legacy(raw: bytes, max_bytes: int = 1024 * 1024) -> dict[str, Any]:
    """The state dict inside a legacy pickled envelope; :class:`CorruptRecord` if unsafe."""
    _prescan(raw)
    try:
        envelope = _PlainDataUnpickler(io.BytesIO(raw)).load()
    except Exception as exc:  # any unpickling failure means an unreadable record
        raise CorruptRecord(f"legacy record cannot be read safely: {_shown(str(exc), 200)}"
                            ) from None
    _check_plain(envelope)
    if not isinstance(envelope, dict) or "data" not in envelope:
        raise CorruptRecord("legacy record is not a {'compressed', 'data'} envelope")
    data = envelope["data"]
    try:
        if envelope.get("compressed"):
            if not isinstance(data, str | bytes):  # bytes(an int) would allocate that many
                raise TypeError(f"compressed data is {type(data).__name__}, not hex or bytes")
            blob = bytes.fromhex(data) if isinstance(data, str) else data
            text: bytes | str = _gunzip(blob, max_bytes)
        else:
            text = data
            if len(text) > max_bytes:
                raise CorruptRecord(f"legacy payload is larger than max_state_bytes={max_bytes}")
        # stdlib: the old system's json.dumps may have written NaN or Infinity, which no
        # JSON (and so no save) can hold; they load as None so the state can be saved back
        state = json.loads(text, parse_constant=_no_number)
    except (ValueError, TypeError, OSError, EOFError, zlib.error, RecursionError) as exc:
        raise CorruptRecord(f"legacy record payload is unreadable: {_shown(str(exc), 200)}"
                            ) from None
    if not isinstance(state, dict):
        raise CorruptRecord("legacy record does not hold a JSON object")
    return state
