"""How one buyer's saved state is drawn: the search box, metrics, fields, the transcript.

Every value comes from a Redis record that whoever can write Redis chose, so each is made
inert for the element that shows it: :func:`md` inside markdown (metric labels and values
render markdown too), :func:`code` for details an operator copies, and ``st.text`` (no
markdown, no autolinks) for messages. Values are built as plain text first (money, dates,
lists), cut to a length a page can show (:func:`clipped`: a record may hold a megabyte in
one field) and escaped once, last: a "$" left bare would start LaTeX in Streamlit's
markdown. Every value stays whole in the JSON download.

The search box, the ``contact_id`` query parameter and the buyer shown always agree: the
box is keyed, its callback writes the URL, and it takes the URL's value only when the URL
changed from outside (a deep link, a match chosen from a list), never from its own write.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, NoReturn, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from dashboard.markdown import code, md, plural
from memory_core.lookup import normalise_email, normalise_phone
from memory_core.safetext import printable
from memory_core.state import parse_timestamp
from memory_core.store import StoredRecord

_PHONE_SHAPE = re.compile(r"\+?[0-9(][0-9 ().\-/]{6,30}")
SEARCH_KEY = "buyer_search"
_SEARCH_SYNCED_KEY = "_buyer_search_synced"  # the URL value the box last agreed with
QUERY_PARAM = "contact_id"
MESSAGES_PER_PAGE = 20
_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$"}
_PREFERENCES_SHOWN = 30
#: Characters of one message shown; the rest is counted in a note (the download has it).
MESSAGE_CHARS = 2_000
#: Characters of one field value (a preference, the budget, a label, a contact detail).
FIELD_CHARS = 300
#: Characters of a preference's name, or of an objection's column name.
NAME_CHARS = 60
#: Levels of nested lists a field's text follows.
FIELD_DEPTH = 10
#: Objection rows and columns drawn (a planted record may hold tens of thousands).
OBJECTIONS_SHOWN = 200
OBJECTION_COLUMNS = 20
#: A metric value longer than this may not fit its column: the whole value (up to
#: FIELD_CHARS) is then also in the metric's tooltip.
METRIC_FITS = 20
_JSON_DEPTH = 100  # deeper than any state the bot writes; a planted one is left as it is


def sync_search_box() -> None:
    """Before the box is drawn: take the URL's contact id if it changed from outside.

    Setting the box's value on every run (as ``value=`` did) made Streamlit see a new
    widget each time the URL changed, and drop every second entry.
    """
    wanted = st.query_params.get(QUERY_PARAM, "")
    # The box's value is forgotten while another page shows (Streamlit drops the state of
    # widgets not drawn): coming back to a URL with a contact id fills it again.
    if st.session_state.get(_SEARCH_SYNCED_KEY) != wanted or SEARCH_KEY not in st.session_state:
        st.session_state[SEARCH_KEY] = wanted
        st.session_state[_SEARCH_SYNCED_KEY] = wanted


def search_changed() -> None:
    """The box's callback (Enter, Tab, blur): what was typed becomes the URL's contact id."""
    typed = str(st.session_state.get(SEARCH_KEY) or "").strip()
    st.session_state[SEARCH_KEY] = typed
    st.session_state[_SEARCH_SYNCED_KEY] = typed
    if typed:
        st.query_params[QUERY_PARAM] = typed
    elif QUERY_PARAM in st.query_params:
        del st.query_params[QUERY_PARAM]


def open_contact(contact_id: str) -> NoReturn:
    """Show another buyer (a match chosen from a list): the URL changes, the box follows."""
    st.query_params[QUERY_PARAM] = contact_id
    st.rerun()


def pii_query(text: str) -> tuple[str, str] | None:
    """("phone" | "email", text) when the search box holds a phone number or an email.

    Only text made of phone characters counts as a phone (``contact-2026-000042`` holds
    ten digits, but is an id); the normalising itself is memory_core.lookup's.
    """
    if "@" in text and normalise_email(text):
        return "email", text
    if _PHONE_SHAPE.fullmatch(text) and normalise_phone(text):
        return "phone", text
    return None


def clipped(text: str, limit: int = FIELD_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out (plain text)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({plural(len(text) - limit, 'more character')})"


def score(value: object) -> float | str:
    """A score as st.metric can show it; the library stores whatever JSON the bot sent.

    Numbers keep at most two decimals, and a huge one is shown in three digits
    ("1.23e+30"), so it fits a quarter of the page.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        # exact, however large: a legacy record's JSON may hold a 400-digit integer,
        # which no float (and so no "g" format of the int) can take
        return short_number(value) if abs(value) >= 10**9 else value
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= 1e9:
            return f"{value:.3g}"
        return round(value, 2)
    return "–" if value is None else md(json.dumps(value, default=str)[:40])


def short_number(value: int) -> str:
    """A whole number of any size in three digits: 10**400 -> "1.00e+400"."""
    return format(Decimal(value), ".3g")


def score_metric(where: Any, name: str, value: object) -> None:
    """A score as a metric; a value that is not a number (and may not fit its quarter of
    the page) is also in the tooltip."""
    shown = score(value)
    text = isinstance(shown, str) and value is not None and not isinstance(value, int | float)
    where.metric(name, shown, help=shown if text else None)


def words(value: object) -> str:
    """A category from the state ("first_time_buyer") as words ("first time buyer"), cut
    to FIELD_CHARS (plain text: escape it before markdown)."""
    return clipped(str(value or "unknown").replace("_", " "))


def label(value: object) -> str:
    """A category from the state ("first_time_buyer") as inert words ("first time buyer")."""
    return md(words(value))


def plain(value: object) -> str:
    """Text for st.text: control and bidi characters visible, line breaks kept."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return "\n".join(printable(line) for line in text.split("\n"))


def word_metric(where: Any, name: str, value: object) -> None:
    """A category as a metric: inert words, and the whole of a long one in the tooltip
    (the browser cuts a value wider than its column with an ellipsis)."""
    text = words(value)
    where.metric(name, md(text), help=md(text) if len(text) > METRIC_FITS else None)


def viewer_zone() -> tzinfo:
    """The browser's time zone (Streamlit reports it), else UTC."""
    name = st.context.timezone
    try:
        return ZoneInfo(name) if name else UTC
    except (ValueError, ZoneInfoNotFoundError, OSError):
        return UTC


def when(moment: datetime, zone: tzinfo = UTC) -> str:
    """"30 Nov 2026 10:00 UTC": day, time and the zone's name, in ``zone``."""
    try:
        local = moment.astimezone(zone)
    except (OverflowError, ValueError):
        local = moment
    return f"{local.day} {local:%b %Y %H:%M} {local.tzname() or 'UTC'}"


def timestamp_text(value: object, zone: tzinfo = UTC) -> str:
    """A stored ISO timestamp as :func:`when` shows it; anything else as it is (plain)."""
    moment = parse_timestamp(value)
    if moment is None:
        return "–" if value in (None, "") else clipped(plain(value))
    return when(moment, zone)


def duration_text(seconds: float) -> str:
    """Readable at every scale: "45 s", "12 min", "5 h 30 min", "3 days 4 h"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if round(seconds / 3600) < 24:
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")


def _number(value: object) -> TypeGuard[int | float]:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def money(amount: float, currency: object = None) -> str:
    """350000, "USD" -> "$350,000" (plain text: escape it before markdown)."""
    text = (short_number(amount) if abs(amount) >= 10**40 else f"{amount:,}") \
        if isinstance(amount, int) else (
        f"{amount:,.0f}" if float(amount).is_integer() or abs(amount) >= 100
        else f"{amount:,.2f}")
    code_ = str(currency).strip().upper()[:8] if isinstance(currency, str) else ""
    symbol = _CURRENCY_SYMBOLS.get(code_)
    if symbol:
        return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"
    return f"{text} {code_}" if code_ else text


def budget_text(value: object) -> str:
    """{"min": 350000, "max": 450000, "currency": "USD"} -> "$350,000–$450,000" (plain)."""
    if isinstance(value, dict):
        low, high = value.get("min"), value.get("max")
        currency = value.get("currency")
        if _number(low) and _number(high):
            return (money(low, currency) if low == high
                    else f"{money(low, currency)}–{money(high, currency)}")
        if _number(high):
            return f"up to {money(high, currency)}"
        if _number(low):
            return f"from {money(low, currency)}"
    if _number(value):
        return money(value)  # type: ignore[arg-type]
    return "–" if value in (None, "", {}, []) else plain(value)


def field_text(value: object, depth: int = 0) -> str:
    """One preference's value as plain text: lists joined, yes/no, whole numbers plain.

    Lists nested deeper than :data:`FIELD_DEPTH` are shown as "[…]": a planted record may
    nest them a thousand levels deep, past what recursion allows.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        if depth >= FIELD_DEPTH:
            return "[…]"
        return ", ".join(field_text(item, depth + 1) for item in value) or "–"
    if value is None or value == "":
        return "–"
    return plain(value)


def _field_name(name: object) -> str:
    """"max_commute_minutes" -> "Max commute minutes" (cut to NAME_CHARS)."""
    text = str(name).replace("_", " ").strip()
    return clipped(text[:1].upper() + text[1:], NAME_CHARS)


def preferences_markdown(value: object) -> str:
    """Preferences as "- **Key:** value" lines (markdown, every part escaped)."""
    if not isinstance(value, dict):
        return "–" if value in (None, "", []) else md(clipped(field_text(value)))
    if not value:
        return "–"
    lines = [f"- **{md(_field_name(name))}:** {md(clipped(field_text(item)))}"
             for name, item in list(value.items())[:_PREFERENCES_SHOWN]]
    if len(value) > _PREFERENCES_SHOWN:
        lines.append(f"- … {len(value) - _PREFERENCES_SHOWN} more (see Raw JSON)")
    return "\n".join(lines)


def _contact(value: object) -> str:
    """A contact detail (masked unless revealed) as a code span an operator can copy."""
    return code(clipped(plain(value)) if value else "–")


def show_summary(record: StoredRecord, state: dict[str, Any], key: str) -> None:
    """Metrics, then the buyer's fields as words, then where and how it is stored.

    Four short values to a row; the categories take two to a row, so a persona such as
    "relocating professional" fits its column at a laptop's width.
    """
    summary = record.summary
    zone = viewer_zone()
    short = st.columns(4)
    word_metric(short[0], "Temperature", state.get("buyer_temperature"))
    short[1].metric("Qualified", "yes" if state.get("is_qualified") else "no")
    score_metric(short[2], "Financial readiness", state.get("financial_readiness_score"))
    score_metric(short[3], "Buying motivation", state.get("buying_motivation_score"))
    for names in ((("Persona", "buyer_persona"), ("Journey stage", "current_journey_stage")),
                  (("Urgency", "urgency_level"), ("Financing", "financing_status"))):
        for column, (name, field) in zip(st.columns(2), names, strict=True):
            word_metric(column, name, state.get(field))
    if record.ttl_seconds is None:
        ttl_text = "never expires (no TTL)"
    else:
        expires = datetime.now(UTC) + timedelta(seconds=record.ttl_seconds)
        ttl_text = f"{duration_text(record.ttl_seconds)}, expires {when(expires, zone)}"
    storage = ("legacy pickled record (run `migrate-legacy`)" if summary is None else
               f"{summary.stored_bytes:,} B stored of {summary.original_bytes:,} B JSON, "
               f"codec {code(summary.codec)}"
               + (f" with dictionary {md(summary.dictionary_id)}"
                  if summary.dictionary_id else "")
               + (f", encrypted with key {code(summary.key_id)}" if summary.key_id
                  else ", not encrypted"))
    left, right = st.columns(2)
    left.markdown(
        f"**Budget:** {md(clipped(budget_text(state.get('budget_range'))))}\n\n"
        f"**Qualification step:** {label(state.get('current_qualification_step'))}\n\n"
        f"**Contact:** {_contact(state.get('buyer_name'))} · "
        f"{_contact(state.get('buyer_phone'))} · {_contact(state.get('buyer_email'))}"
        f"\n\n**Last interaction:** "
        f"{md(timestamp_text(state.get('last_interaction_timestamp'), zone))}")
    right.markdown(f"**Preferences**\n\n{preferences_markdown(state.get('property_preferences'))}")
    st.markdown(
        f"**TTL:** {md(ttl_text)} · **Storage:** {storage} · "
        f"**Schema:** {md(clipped(plain(state.get('state_version')), NAME_CHARS))} · "
        f"**Revision:** {record.revision}\n\n**Redis key:** {code(key)}")


def _show_more(key: str, count: int) -> None:
    st.session_state[key] = count


def message_text(content: object) -> tuple[str, int]:
    """A message for st.text, cut to MESSAGE_CHARS, and how many characters were cut."""
    text = content if isinstance(content, str) else json.dumps(content, default=str)
    if len(text) <= MESSAGE_CHARS:
        return plain(text), 0
    return plain(text[:MESSAGE_CHARS]) + "…", len(text) - MESSAGE_CHARS


def clipped_json(value: Any, limit: int = MESSAGE_CHARS) -> tuple[Any, int]:
    """``value`` with every string longer than ``limit`` cut (saying so), and how many
    were cut: for the Raw JSON view, which would otherwise draw a megabyte in one line."""
    cut = 0

    def walk(item: Any, depth: int = 0) -> Any:
        nonlocal cut
        if isinstance(item, str) and len(item) > limit:
            cut += 1
            return clipped(item, limit)
        if depth > _JSON_DEPTH:
            return item
        if isinstance(item, dict):
            return {walk(key, depth) if isinstance(key, str) else key: walk(inner, depth + 1)
                    for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [walk(inner, depth + 1) for inner in item]
        return item

    return walk(value), cut


def show_conversation(state: dict[str, Any], contact_id: str,
                      most: int | None = None) -> None:
    """The transcript, newest first and a page at a time, as plain text: no markdown, so
    no link, image or autolinked e-mail. A long message is cut at MESSAGE_CHARS, and at
    most ``most`` messages (the store's history cap) are ever drawn: a record planted
    past the cap cannot make the page as long as it likes."""
    history = [m for m in state.get("conversation_history") or [] if isinstance(m, dict)]
    zone = viewer_zone()
    limit = len(history) if most is None else min(len(history), max(most, 1))
    page_key = f"_messages_shown:{contact_id}"
    wanted = st.session_state.get(page_key)
    shown = min(limit, wanted if isinstance(wanted, int) else MESSAGES_PER_PAGE)
    st.subheader(f"Conversation ({plural(len(history), 'message')})")
    if limit < len(history):
        st.caption(f"This record holds more messages than the history cap ({limit:,}): "
                   f"the newest {limit:,} can be shown here, and the JSON download holds "
                   "them all.")
    if history:
        st.caption(f"Newest first: the latest {shown:,} of {len(history):,}."
                   if shown < len(history) else "Newest first.")
    for message in reversed(history[len(history) - shown:]):
        role = "user" if message.get("role") == "user" else "assistant"
        with st.chat_message(role):
            text, cut = message_text(message.get("content", ""))
            st.text(text)
            if cut:
                st.caption(f"Cut here: {plural(cut, 'more character')} not shown. The "
                           "JSON download holds the whole message.")
            if message.get("timestamp"):
                st.caption(md(timestamp_text(message["timestamp"], zone)))
    if shown < limit:
        more = min(MESSAGES_PER_PAGE, limit - shown)
        st.button(f"Show {more} older {'message' if more == 1 else 'messages'}",
                  icon=":material/expand_more:",
                  key=f"older:{contact_id}", on_click=_show_more,
                  args=(page_key, shown + MESSAGES_PER_PAGE))
    show_objections(state.get("objection_history"), zone)


def _is_time_field(name: str) -> bool:
    """Whether an objection's field holds a time: "raised_at", "timestamp", "resolved_on"."""
    lowered = name.lower()
    return lowered.endswith(("_at", "_on", "time", "timestamp", "date"))


def objection_table(objections: list[Any], zone: tzinfo = UTC) -> list[dict[str, Any]]:
    """Objections as table rows: field names as words, times as the page shows times
    (:func:`timestamp_text`), yes/no flags kept as booleans, other values as cut text.

    At most :data:`OBJECTIONS_SHOWN` rows and :data:`OBJECTION_COLUMNS` columns (the
    first names met): a planted record may hold tens of thousands of objections, each
    with keys of its own (Raw JSON has them all).
    """
    rows: list[dict[str, Any]] = []
    names: set[str] = set()
    for item in objections[:OBJECTIONS_SHOWN]:
        if not isinstance(item, dict):
            item = {"objection": item}
        row: dict[str, Any] = {}
        for key, value in item.items():
            name = _field_name(key)
            if name not in names:
                if len(names) >= OBJECTION_COLUMNS:
                    continue
                names.add(name)
            if isinstance(value, bool) or value is None:
                cell: Any = value
            elif _is_time_field(str(key)) and parse_timestamp(value) is not None:
                cell = timestamp_text(value, zone)
            else:
                cell = clipped(field_text(value))
            row.setdefault(name, cell)
        rows.append(row)
    flags, others = set(), set()  # a column of mixed kinds is shown as text, one kind each
    for row in rows:
        for name, cell in row.items():
            if isinstance(cell, bool):
                flags.add(name)
            elif cell is not None:
                others.add(name)
    mixed = flags & others
    for row in rows:
        for name in mixed & row.keys():
            if isinstance(row[name], bool):
                row[name] = field_text(row[name])
    return rows


def show_objections(value: object, zone: tzinfo = UTC) -> None:
    objections = value if isinstance(value, list) else [] if value in (None, "") else [value]
    st.subheader(f"Objections ({len(objections):,})")
    if objections:
        st.dataframe(objection_table(objections, zone), hide_index=True, width="stretch")
        if len(objections) > OBJECTIONS_SHOWN:
            st.caption(f"The first {OBJECTIONS_SHOWN:,} of {len(objections):,} are shown; "
                       "Raw JSON below has them all.")
    else:
        st.caption("No objections recorded.")
