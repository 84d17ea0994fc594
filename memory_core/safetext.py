"""Text from Redis made safe for a terminal, a log line or a spreadsheet.

Whoever can write one key chooses its name and its header fields (GUIDE section 5). Shown
as they are, an ESC sequence clears an operator's terminal or sets its title, a newline
forges a log line, a bidi override makes ``txt.exe`` read as ``exe.txt``, and a CSV cell
starting with ``=`` runs as a formula when the export is opened in a spreadsheet. These
helpers are pure functions with no third-party import at module level: the bot imports
this module, and must not pay for pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: Unicode format characters that reorder or hide text: bidi embeddings, overrides and
#: isolates, the Arabic letter mark, zero-width characters and the byte order mark.
_INVISIBLE = (0x061C, *range(0x200B, 0x2010), *range(0x202A, 0x202F),
              *range(0x2060, 0x2065), *range(0x2066, 0x206A), 0xFEFF)
#: Line and paragraph separators: editors and some log viewers start a new line there.
_SEPARATORS = (0x2028, 0x2029)
_C0_DEL_C1 = (*range(0x20), 0x7F, *range(0x80, 0xA0))
#: Most characters of one text from Redis (a reason, a key name) put in a log line.
LOG_CHARS = 500


def _escape(codepoint: int) -> str:
    if 0xDC80 <= codepoint <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{codepoint - 0xDC00:02x}"
    return f"\\x{codepoint:02x}" if codepoint < 0x100 else f"\\u{codepoint:04x}"


_PRINTABLE_TABLE: dict[int, str] = {
    c: _escape(c) for c in (*_C0_DEL_C1, *_INVISIBLE, *_SEPARATORS, *range(0xD800, 0xE000))}
#: For CSV cells: as for a terminal, but tab, CR and LF stay (a quoted cell holds them).
_CSV_TABLE: dict[int, str] = {c: e for c, e in _PRINTABLE_TABLE.items() if c not in (9, 10, 13)}
#: For JSON text: C0 characters are escaped by the encoder inside strings already, and
#: outside strings they are the layout (newlines); a ``\uXXXX`` escape stays valid JSON.
_JSON_TABLE: dict[int, str] = {
    c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), *_INVISIBLE, *_SEPARATORS)}


def printable(text: str, limit: int | None = None) -> str:
    r"""``text`` with control, bidi and separator characters as visible escapes.

    ESC becomes the four characters ``\x1b``, a newline ``\x0a``, U+202E ``\u202e``, a
    byte that was not UTF-8 (surrogateescape) ``\xNN``. Anything else is kept, so names
    stay readable in any script. With ``limit``, at most that many characters of ``text``
    are shown, then ``…``. Linear time (one ``str.translate``), so any text can be passed.
    """
    if not isinstance(text, str):
        text = str(text)
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[:limit]
    return text.translate(_PRINTABLE_TABLE) + ("…" if cut else "")


def printable_json(text: str) -> str:
    r"""JSON text safe for a terminal, still valid JSON that decodes to the same values.

    For the output of an encoder that escapes C0 characters in strings (orjson, json):
    DEL, C1, bidi and separator characters, which it leaves raw, become ``\uXXXX``.
    """
    return text.translate(_JSON_TABLE)


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV
#: injection"), with the full-width forms some spreadsheets also accept.
FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def neutralise_cell(value: object) -> object:
    """A string a spreadsheet would evaluate, prefixed with ``'``; anything else as is."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV, every text cell that could run as a formula neutralised.

    Numbers stay numbers (a negative number in a numeric column is not text); text cells
    starting with ``= + - @``, tab, CR or LF get a leading ``'``, which spreadsheets show
    as text and do not evaluate. Rows end in CRLF (RFC 4180), so a cell holding a CR or
    LF is quoted: unquoted, a spreadsheet starts a new row there and what follows (say
    ``=1+1``) is a cell of its own. Other control, bidi and separator characters, and
    undecodable key bytes (surrogateescape), are written as backslash escapes as
    :func:`printable` writes them: ``cat`` of the file cannot drive a terminal.
    """
    import pandas as pd  # lazily: the bot imports this module and never needs pandas

    safe = frame.copy(deep=False)
    for column in safe.columns:
        values = safe[column]
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object or (
                pd.api.types.is_string_dtype(values.dtype)):
            # an object column: pandas' own string type cannot hold surrogateescape bytes
            safe[column] = pd.Series(
                [neutralise_cell(v.translate(_CSV_TABLE) if isinstance(v, str) else v)
                 for v in values.astype(object)], index=values.index, dtype=object)
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8", "backslashreplace")
