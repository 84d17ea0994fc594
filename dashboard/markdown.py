"""Text from Redis, an upload or a URL, made safe to show inside Streamlit markdown.

Streamlit renders markdown in errors, toasts and captions too, so a contact id such as
``![x](https://elsewhere/pixel)`` would load an image in the operator's browser. Every
value that did not come from this code goes through :func:`md` before it is shown.
"""

from __future__ import annotations

import json

_MARKDOWN_CHARACTERS = frozenset("\\`*_{}[]<>()#+-.!|~$")


def md(value: object) -> str:
    """Text shown inside markdown, with its markdown characters escaped (masks use ***)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return "".join("\\" + c if c in _MARKDOWN_CHARACTERS else c for c in text)
