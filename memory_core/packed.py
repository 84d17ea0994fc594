"""The packed layout of a state: its chat history split into streams that compress well.

A chat history interleaves the same keys, a role, a 25-32 byte ISO timestamp and a text
in every message. zstd sees each message's keys and timestamp as a short, costly match.
Packed, the history becomes separate streams: the roles, the timestamps as integer
deltas from the previous message, the texts, and whatever else messages carry. On the
benchmark corpora that stores a state in 9-17 % fewer bytes than its JSON at the same
zstd level (``benchmarks/bench_layout.py``; the README has today's figures).

The packed bytes are one JSON array, so they start with ``[`` where a state's JSON
starts with ``{``: a reader tells the two apart by the first byte, and records written
before this layout existed still load. The array is::

    [1, rest, shapes, shape_ids, roles, clock, times, texts, extras]

- ``rest``: the state with ``conversation_history`` replaced by 0 (key order kept);
- ``shapes``: each distinct message layout, a list of ``[key, stream]`` pairs; stream
  1 is ``roles``, 2 ``texts``, 3 ``times``, 0 ``extras`` (any other value);
- ``shape_ids``: per message, its shape, or -1 for a message that is not an object
  (the message itself is then the next value of ``extras``);
- ``clock``: ``[unit_us, offset_us]``, the unit of the deltas (1 s, or 1 µs when any
  timestamp has a fraction) and the one UTC offset every delta timestamp has; null
  when no timestamp is a delta;
- ``times``: per string timestamp, an integer (units since the previous delta, the
  first since the epoch) or, when the codec cannot give back exactly the string the
  bot saved (another offset, a ``Z`` suffix, no offset, not ISO), the string itself.

Only ``role``, ``content`` and ``timestamp`` string values go to the streams; every
other value stays where it was, so any state packs and unpacks to an equal dict with
its keys in the same order. Unpacking checks every count and bounds what the deltas
expand to: the bytes are read from Redis and may be hostile.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import repeat
from typing import Any

import orjson

from memory_core.errors import CorruptRecord

FORMAT = 1
#: The first byte of packed bytes; a state's JSON (an object) starts with "{".
MARK = b"["
HISTORY_FIELD = "conversation_history"
_EXTRAS, _ROLES, _TEXTS, _TIMES = 0, 1, 2, 3
_STREAM_OF_KEY = {"role": _ROLES, "content": _TEXTS, "timestamp": _TIMES}
_NOT_AN_OBJECT = -1
_SECOND_US = 1_000_000
_HOUR_US = 3600 * _SECOND_US
#: The fewest JSON bytes a delta's timestamp takes ("2026-01-01T00:00:00+00:00" quoted).
#: Unpacking refuses more deltas than the claimed JSON size could hold (beside the keys
#: of every message), so a delta of one byte cannot turn into 27 bytes without limit.
MIN_DELTA_JSON_BYTES = 27
_NAIVE_EPOCH = datetime(1970, 1, 1)
#: The lengths of "2026-11-30T09:15:00+00:00" and "2026-11-30T09:15:00.123456+00:00".
_WHOLE_SECONDS_CHARS, _MICROSECONDS_CHARS = 25, 32


def is_packed(data: bytes | memoryview) -> bool:
    return data[:1] == MARK


def pack(state: dict[str, Any]) -> bytes | None:
    """The packed bytes of a prepared state, or None when it has no history to split."""
    history = state.get(HISTORY_FIELD)
    if not isinstance(history, list | tuple) or not history:
        return None
    shapes, shape_ids, streams = _split_alike(history) or _split_each(history)
    extras, roles, texts, timestamps = streams
    clock, times = _encode_times(timestamps)
    rest = {**state, HISTORY_FIELD: 0}
    return orjson.dumps([FORMAT, rest, [list(map(list, shape)) for shape in shapes],
                         shape_ids, roles, clock, times, texts, extras])


_Split = tuple[list[tuple[tuple[str, int], ...]], list[int], tuple[list[Any], ...]]


def _split_alike(history: list[Any] | tuple[Any, ...]) -> _Split | None:
    """The common case, column by column in C: every message an object with the same
    keys in the same order, each of them a streamed key with a string value."""
    first = history[0]
    if type(first) is not dict or not first:
        return None
    keys = tuple(first)
    if set(map(type, history)) != {dict} or not all(map(keys.__eq__, map(tuple, history))):
        return None
    streams: tuple[list[Any], ...] = ([], [], [], [])
    shape = []
    for key in keys:
        stream = _STREAM_OF_KEY.get(key, _EXTRAS)
        column = [message[key] for message in history]
        if stream == _EXTRAS or set(map(type, column)) != {str}:
            return None
        streams[stream].extend(column)
        shape.append((key, stream))
    return [tuple(shape)], [0] * len(history), streams


def _split_each(history: list[Any] | tuple[Any, ...]) -> _Split:
    """Any history, message by message."""
    shapes: dict[tuple[tuple[str, int], ...], int] = {}
    shape_ids: list[int] = []
    streams: tuple[list[Any], ...] = ([], [], [], [])
    extras = streams[_EXTRAS]
    for message in history:
        if not isinstance(message, dict):
            shape_ids.append(_NOT_AN_OBJECT)
            extras.append(message)
            continue
        shape = []
        for key, value in message.items():
            stream = _STREAM_OF_KEY.get(key, _EXTRAS) if isinstance(value, str) else _EXTRAS
            shape.append((key, stream))
            streams[stream].append(value)
        shape_ids.append(shapes.setdefault(tuple(shape), len(shapes)))
    return list(shapes), shape_ids, streams


def _encode_times(timestamps: list[str]) -> tuple[list[int] | None, list[int | str]]:
    """([unit_us, offset_us] or None, per timestamp its delta or the string as it came)."""
    if not timestamps:
        return None, []
    alike = _encode_alike_times(timestamps)
    if alike is not None:
        return alike
    parsed = [_split_timestamp(text) for text in timestamps]
    offset_us = next((found[1] for found in parsed if found is not None), None)
    if offset_us is None:
        return None, list(timestamps)
    whole_seconds = all(found is None or found[0] % _SECOND_US == 0 for found in parsed)
    unit = _SECOND_US if whole_seconds else 1
    times: list[int | str] = []
    previous = 0
    for text, found in zip(timestamps, parsed, strict=True):
        if found is None or found[1] != offset_us:
            times.append(text)
        else:
            value = found[0] // unit
            times.append(value - previous)
            previous = value
    return [unit, offset_us], times


def _encode_alike_times(timestamps: list[str]) -> tuple[list[int], list[int | str]] | None:
    """The common case, in one plain loop: every timestamp what ``isoformat()`` writes,
    with one and the same "+HH:MM" offset, all with a fraction (µs) or none (seconds)."""
    first = timestamps[0]
    length = len(first)
    if length not in (_WHOLE_SECONDS_CHARS, _MICROSECONDS_CHARS):
        return None
    suffix = first[-6:]
    offset_us = _OFFSETS.get(suffix)
    if offset_us is None:
        offset_us = _remember(_OFFSETS, suffix, _offset_of_suffix(suffix))
    if offset_us is _NOT_CANONICAL:
        return None
    with_fraction = length == _MICROSECONDS_CHARS
    seconds_of = _SECONDS
    deltas: list[int | str] = []
    previous, last_prefix, hour_start = 0, "", 0
    for text in timestamps:
        if len(text) != length or text[-6:] != suffix:
            return None
        prefix = text[:14]
        if prefix != last_prefix:
            hour = _hour_of(prefix)
            if hour is _NOT_CANONICAL:
                return None
            last_prefix, hour_start = prefix, hour * 3600
        second = seconds_of.get(text[14:19])
        if second is None:
            return None
        wall = hour_start + second
        if with_fraction:
            fraction = text[20:26]
            if (text[19] != "." or not (fraction.isascii() and fraction.isdigit())
                    or fraction == "000000"):  # isoformat() leaves out a zero fraction
                return None
            wall = wall * _SECOND_US + int(fraction)
        deltas.append(wall - previous)
        previous = wall
    return [1 if with_fraction else _SECOND_US, offset_us], deltas


def _hour_of(prefix: str) -> Any:
    """The hour of a "YYYY-MM-DDTHH:" prefix, or _NOT_CANONICAL (cached)."""
    hour = _HOURS.get(prefix)
    return _remember(_HOURS, prefix, _hour_of_prefix(prefix)) if hour is None else hour


def _split_timestamp(text: str) -> tuple[int, int] | None:
    """(wall-clock µs since the epoch, UTC offset µs) of a timestamp ``isoformat()``
    would write exactly so; None for any other string.

    Read by slicing, each piece looked up among the texts the decoder writes, so what
    decodes is the same string by construction, at a fraction of the cost of parsing and
    formatting a datetime per message.
    """
    hour = _hour_of(text[:14])
    second = _SECONDS.get(text[14:19])
    if hour is _NOT_CANONICAL or second is None:
        return None
    micro, suffix = 0, text[19:]
    if suffix[:1] == ".":
        fraction, suffix = suffix[1:7], suffix[7:]
        if (len(fraction) != 6 or not (fraction.isascii() and fraction.isdigit())
                or fraction == "000000"):
            return None
        micro = int(fraction)
    offset_us = _OFFSETS.get(suffix)
    if offset_us is None:
        offset_us = _remember(_OFFSETS, suffix, _offset_of_suffix(suffix))
    if offset_us is _NOT_CANONICAL:
        return None
    return (hour * 3600 + second) * _SECOND_US + micro, offset_us


#: What was learnt about timestamp pieces: an hour or offset, or _NOT_CANONICAL.
_NOT_CANONICAL: Any = object()
_HOURS: dict[str, Any] = {}
_OFFSETS: dict[str, Any] = {}
_REMEMBERED = 10_000


def _remember(cache: dict[str, Any], piece: str, value: int | None) -> Any:
    """Cache what a piece means (bounded: cleared when full; each entry is recomputable)."""
    if len(cache) >= _REMEMBERED:
        cache.clear()
    found = _NOT_CANONICAL if value is None else value
    cache[piece] = found
    return found


def _hour_of_prefix(prefix: str) -> int | None:
    """The hour since the epoch of a canonical "YYYY-MM-DDTHH:", else None."""
    if len(prefix) != 14 or prefix[13] != ":":
        return None
    try:
        hour = (datetime.fromisoformat(prefix[:13]) - _NAIVE_EPOCH) // timedelta(hours=1)
    except ValueError:
        return None
    return hour if _hour_prefix(hour) == prefix else None


@lru_cache(maxsize=4096)
def _hour_prefix(hour: int) -> str:
    """"YYYY-MM-DDTHH:" of an hour since the epoch; OverflowError outside years 1-9999."""
    return (_NAIVE_EPOCH + timedelta(hours=hour)).isoformat()[:14]


#: "MM:SS" of each second within an hour, and back.
_MINUTES_SECONDS = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))
_SECONDS = {text: second for second, text in enumerate(_MINUTES_SECONDS)}


def _offset_of_suffix(suffix: str) -> int | None:
    """The UTC offset in µs of a canonical offset suffix ("+00:00"), else None."""
    if not suffix:
        return None  # a naive timestamp: no offset to give back
    try:
        offset = datetime.fromisoformat("2000-01-01T00:00:00" + suffix).utcoffset()
    except ValueError:
        return None
    if offset is None:
        return None
    offset_us = offset // timedelta(microseconds=1)
    return offset_us if _offset_suffix(offset_us) == suffix else None


@lru_cache(maxsize=256)
def _offset_suffix(offset_us: int) -> str:
    """What ``isoformat()`` appends for this UTC offset; ValueError beyond ±24 h."""
    zone = timezone(timedelta(microseconds=offset_us))
    return datetime(2000, 1, 1, tzinfo=zone).isoformat()[19:]


def unpack(data: bytes, max_json_bytes: int) -> dict[str, Any]:
    """The state packed in ``data``; CorruptRecord when the bytes are not a sound packing.

    ``max_json_bytes`` is the state's JSON size the record claims (already checked
    against ``max_state_bytes``): it bounds how many timestamps the deltas may produce.
    """
    try:
        document = orjson.loads(data)
        return _unpacked(document, max_json_bytes)
    except CorruptRecord:
        raise
    except (orjson.JSONDecodeError, TypeError, ValueError, IndexError, KeyError,
            OverflowError, StopIteration, AttributeError) as exc:
        raise CorruptRecord(f"packed state is malformed ({type(exc).__name__}): the payload "
                            "was damaged or forged") from None


def _unpacked(document: Any, max_json_bytes: int) -> dict[str, Any]:
    if not isinstance(document, list) or len(document) != 9 or document[0] != FORMAT:
        raise CorruptRecord("packed state has an unknown layout")
    _, rest, shapes, shape_ids, roles, clock, times, texts, extras = document
    if not isinstance(rest, dict) or rest.get(HISTORY_FIELD) != 0:
        raise CorruptRecord("packed state has no history placeholder")
    for name, value in (("shapes", shapes), ("shape ids", shape_ids), ("roles", roles),
                        ("times", times), ("texts", texts), ("extras", extras)):
        if not isinstance(value, list):
            raise CorruptRecord(f"packed state's {name} are not a list")
    compiled = [_compiled_shape(shape) for shape in shapes]
    per_shape = _check_counts(compiled, shape_ids, (extras, roles, texts, times))
    # A shape's keys are stored once and stand in every message using it: the JSON they
    # stand for must fit the size the record claims, or a few hundred planted bytes
    # would load as a state of gigabytes.
    keys_json = sum(count * (2 + sum(len(key) + 3 for key in keys))
                    for (keys, _), count in zip(compiled, per_shape, strict=True))
    if keys_json > max_json_bytes:
        raise CorruptRecord("packed state stands for more JSON than its size allows")
    timestamps = _decode_times(clock, times, max_json_bytes - keys_json)
    columns = (extras, roles, texts, timestamps)
    rest[HISTORY_FIELD] = _history(compiled, shape_ids, columns)
    return rest


def _compiled_shape(shape: Any) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if not isinstance(shape, list):
        raise CorruptRecord("packed state has a malformed message shape")
    keys, streams = [], []
    for pair in shape:
        key, stream = pair  # ValueError/TypeError for anything but a pair
        if not isinstance(key, str) or stream not in (_EXTRAS, _ROLES, _TEXTS, _TIMES):
            raise CorruptRecord("packed state has a malformed message shape")
        keys.append(key)
        streams.append(stream)
    return tuple(keys), tuple(streams)


def _check_counts(compiled: list[tuple[tuple[str, ...], tuple[int, ...]]],
                  shape_ids: list[Any], columns: tuple[list[Any], ...]) -> list[int]:
    """The messages of each shape, once every stream holds exactly the values its
    messages' shapes take from it."""
    if len(compiled) == 1 and shape_ids.count(0) == len(shape_ids):  # the common case
        uses = [0, 0, 0, 0]
        for stream in compiled[0][1]:
            uses[stream] += len(shape_ids)
        if uses != [len(column) for column in columns]:
            raise CorruptRecord("packed state's streams do not match its messages")
        return [len(shape_ids)]
    uses = [0, 0, 0, 0]
    per_shape = [0] * len(compiled)
    for shape_id in shape_ids:
        if shape_id == _NOT_AN_OBJECT:
            uses[_EXTRAS] += 1
        elif type(shape_id) is int and 0 <= shape_id < len(compiled):
            per_shape[shape_id] += 1
        else:
            raise CorruptRecord("packed state names a message shape it does not hold")
    for (_, streams), count in zip(compiled, per_shape, strict=True):
        for stream in streams:
            uses[stream] += count
    if uses != [len(column) for column in columns]:
        raise CorruptRecord("packed state's streams do not match its messages")
    return per_shape


def _history(compiled: list[tuple[tuple[str, ...], tuple[int, ...]]], shape_ids: list[int],
             columns: tuple[list[Any], ...]) -> list[Any]:
    if len(compiled) == 1 and _fast_shape(compiled[0][1]) and _NOT_AN_OBJECT not in shape_ids:
        keys, streams = compiled[0]  # the common case: every message alike
        rows = zip(*(columns[s] for s in streams), strict=True)
        if len(keys) == 3:  # role, content, timestamp: a literal is three times faster
            first, second, third = keys
            return [{first: a, second: b, third: c} for a, b, c in rows]
        return list(map(dict, map(zip, repeat(keys), rows)))
    readers = [iter(column) for column in columns]
    history: list[Any] = []
    for shape_id in shape_ids:
        if shape_id == _NOT_AN_OBJECT:
            history.append(next(readers[_EXTRAS]))
            continue
        keys, streams = compiled[shape_id]
        pairs = zip(keys, streams, strict=True)
        history.append({key: next(readers[stream]) for key, stream in pairs})
    return history


def _fast_shape(streams: tuple[int, ...]) -> bool:
    """A shape whose messages can be zipped from the streams: each value from its own."""
    return bool(streams) and _EXTRAS not in streams and len(set(streams)) == len(streams)


def _decode_times(clock: Any, times: list[Any], budget: int) -> list[str]:
    """The timestamps' texts; ``budget`` is the JSON bytes the record claims that are left
    for them: each delta becomes at least a quoted 25-character timestamp."""
    if clock is None:
        if not all(type(item) is str for item in times):
            raise CorruptRecord("packed state has timestamp deltas but no clock")
        return times
    unit, offset_us = clock  # ValueError/TypeError for anything but a pair
    if unit not in (1, _SECOND_US) or type(offset_us) is not int:
        raise CorruptRecord("packed state has a malformed clock")
    if sum(map(int.__instancecheck__, times)) * MIN_DELTA_JSON_BYTES > budget:
        raise CorruptRecord("packed state holds more timestamps than its size allows")
    suffix = _offset_suffix(offset_us)
    minutes_seconds = _MINUTES_SECONDS
    per_hour = 3600 * _SECOND_US // unit
    decoded: list[str] = []
    append = decoded.append
    in_seconds = unit == _SECOND_US
    wall, last_hour, prefix = 0, None, ""
    for item in times:  # a plain loop: faster here than chains of map()
        if type(item) is int:
            wall += item
            hour, within = divmod(wall, per_hour)
            if hour != last_hour:
                last_hour, prefix = hour, _hour_prefix(hour)
            if in_seconds:
                append(prefix + minutes_seconds[within] + suffix)
            else:
                second, micro = divmod(within, _SECOND_US)
                text = prefix + minutes_seconds[second]
                # str(1_123_456)[1:] is "123456": twice as fast as a :06d format
                append(f"{text}.{str(micro + _SECOND_US)[1:]}{suffix}" if micro
                       else text + suffix)
        elif type(item) is str:
            append(item)
        else:
            raise CorruptRecord("packed state has a timestamp that is neither")
    return decoded
