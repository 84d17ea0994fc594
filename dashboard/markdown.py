"""Text from Redis, an upload or a URL, made inert before Streamlit shows it as markdown.

Streamlit renders markdown in st.markdown, captions, alerts, toasts, metric labels and
values, widget labels and dialogs. A contact id such as ``![x](https://elsewhere/pixel)``
would load an image in the operator's browser, and ``[Session expired](https://phish)`` is
a link. Backslash escapes stop those, but not everything: after parsing, Streamlit's
markdown turns bare ``http://...``, ``www.`` and ``name@host.tld`` text into links, and
``:material/...:`` or ``:red[...]`` into icons and colours, by pattern-matching the text
that the escapes produced. :func:`md` therefore also puts an invisible word joiner
(U+2060) where such a pattern would start, so the text reads the same and links nothing.

Use :func:`md` for every value that did not come from this code, :func:`code` for values
an operator copies (ids, revealed contact details: a code span is inert and keeps the
text exact), and ``st.text`` (no markdown at all) for long free text such as messages.
"""

from __future__ import annotations

import json
import re
import string

from memory_core.safetext import printable

#: CommonMark lets a backslash escape any ASCII punctuation, and shows the character.
_ESCAPES = {ord(c): "\\" + c for c in string.punctuation}
JOINER = "\u2060"
# Where the text patterns that Streamlit's markdown links or decorates after parsing
# would match: a scheme's "://", "www.", an e-mail's "@", and ":name" of a shortcode or
# colour directive. The joiner goes inside each, so none of the patterns matches.
_AUTOLINK_STARTS = re.compile(r"(?i)(?<=:)(?=[a-z/])|(?<=@)|(?<=www)(?=\.)")


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def md(value: object) -> str:
    """``value`` as markdown that shows exactly its text: nothing formatted or linked.

    Control and bidi characters are shown as visible escapes (a newline is kept); a
    non-string value is shown as JSON.
    """
    lines = (printable(line) for line in _text(value).split("\n"))
    text = "\n".join(_AUTOLINK_STARTS.sub(JOINER, line) for line in lines)
    return text.translate(_ESCAPES)


def code(value: object) -> str:
    """``value`` as an inline code span: inert and exact (copies as it reads).

    The fence is one backtick longer than the longest run inside, with spaces so a
    value starting or ending with a backtick still parses; newlines become spaces.
    """
    text = printable(_text(value).replace("\r\n", " ").replace("\n", " "))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if text else "–"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and its noun, agreeing: "1 message", "2 messages", "1,024 entries".

    ``many`` is the plural when it is not ``noun`` + "s". Plain text: the words are this
    code's, the count a number, so nothing needs escaping.
    """
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"
