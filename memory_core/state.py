"""The buyer state as the bot sees it: defaults, trimming, validation, JSON bytes.

Pure functions, no I/O. The sync and async stores, the seeder and the CLI all pass
states through :func:`prepare_state` so a record is shaped the same way whoever wrote it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from memory_core.errors import InvalidContactId, InvalidState
from memory_core.safetext import printable

STATE_VERSION = "1.0"
MAX_CONTACT_ID_LENGTH = 256
PII_FIELDS = ("buyer_name", "buyer_phone", "buyer_email")
#: Longest value, in characters (JSON text for a non-string), :func:`prepare_state` accepts
#: for each PII field. Masking turns every repeat form into a pattern, so an unbounded name
#: made the CLI and dashboard stall; 254 is the longest deliverable address (RFC 5321).
PII_MAX_CHARS: dict[str, int] = {"buyer_name": 200, "buyer_phone": 64, "buyer_email": 254}
#: Most name parts masked on their own. 50 covers every part of a name within the cap
#: (3 characters and a separator each); a longer, planted name uses only its first ones.
MAX_NAME_FORMS = 50
_PII_WHAT = {"buyer_name": "the buyer's name", "buyer_phone": "one phone number",
             "buyer_email": "one email address"}
TEMPERATURES = ("hot", "warm", "cold")

#: Fields every saved state carries, with the value used when the caller leaves one out.
STATE_DEFAULTS: dict[str, Any] = {
    "conversation_history": [],
    "financial_readiness_score": 0.0,
    "buying_motivation_score": 0.0,
    "budget_range": None,
    "property_preferences": None,
    "urgency_level": "unknown",
    "financing_status": "unknown",
    "current_qualification_step": "budget",
    "current_journey_stage": "discovery",
    "buyer_persona": None,
    "buyer_temperature": None,
    "is_qualified": False,
    "objection_history": [],
    "buyer_name": None,
    "buyer_phone": None,
    "buyer_email": None,
}

#: Marks a state written by QA tooling; kept inside the state so it survives the bot's
#: load-modify-save cycle, and copied into the record summary for scans.
QA_SEED_FIELD = "qa_seed"


def id_characters_ok(text: str) -> bool:
    """Whether ``text`` holds only characters a contact id may: isprintable() is False for
    control and non-ASCII space characters (and lone surrogates); " " is the rest."""
    return text.isprintable() and " " not in text


def is_valid_contact_id(contact_id: str) -> bool:
    """What :func:`validate_contact_id` lets through, without building an error (the
    inventory asks it of every key)."""
    return 0 < len(contact_id) <= MAX_CONTACT_ID_LENGTH and id_characters_ok(contact_id)


def validate_contact_id(contact_id: object) -> str:
    """Return the id if it can name a key; raise :class:`InvalidContactId` otherwise."""
    if not isinstance(contact_id, str):
        raise InvalidContactId(
            f"contact_id must be a string, got {type(contact_id).__name__}")
    if not contact_id:
        raise InvalidContactId("contact_id is empty; pass the CRM contact id of the buyer")
    if len(contact_id) > MAX_CONTACT_ID_LENGTH:
        raise InvalidContactId(
            f"contact_id is {len(contact_id)} characters long; the limit is "
            f"{MAX_CONTACT_ID_LENGTH}")
    if not id_characters_ok(contact_id):
        raise InvalidContactId(
            f"contact_id '{shown_contact_id(contact_id)}' contains whitespace or control "
            "characters")
    return contact_id


#: Phone-like runs (7 or more digits, with the separators people write between them) and
#: email-like words in a contact id; both patterns do bounded work per character. Broader
#: than :data:`PHONE_PATTERN`: an invalid id is only ever shown in an error or a log line.
_PHONE_LIKE = re.compile(r"\+?\d(?:[\s./()\-]{0,4}\d){6,}")
_EMAIL_LIKE = re.compile(r"[^\s@]{1,200}@[^\s@]{1,200}")
#: The end of a text cut short: its last word, and the phone-like run before it, which
#: the cut may have left too short to be recognised and masked.
_CUT_TOKEN = re.compile(r"[\d\s./()+-]*[\w.+@-]*$")


def shown_contact_id(contact_id: object, limit: int = 40) -> str:
    """A contact id fit for a log line or an error, however invalid it is.

    An invalid id is often a phone number or an email typed where the CRM id belongs, and
    it may hold newlines or terminal escapes: phones and emails are masked as
    :func:`mask_text` masks them, control and bidi characters are escaped
    (:func:`~memory_core.safetext.printable`), and at most ``limit`` characters are shown.
    A token cut off by that limit is dropped, never shown in part.
    """
    if not isinstance(contact_id, str):
        return f"<{type(contact_id).__name__}>"
    window = contact_id[:4 * limit]  # masking shortens: mask more than is shown, then cut
    cut = len(window) < len(contact_id)
    if cut:
        window = _CUT_TOKEN.sub("", window)
    window = _EMAIL_LIKE.sub(lambda m: mask_text(m[0], email=True), window)
    window = _PHONE_LIKE.sub(lambda m: mask_text(m[0]), window)
    if len(window) > limit:
        window, cut = _CUT_TOKEN.sub("", window[:limit]), True
    return printable(window) + ("…" if cut else "")


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_finite(value: Any, path: str = "state") -> None:
    """Refuse NaN and infinities, which JSON would silently turn into null.

    Iterative, so a deeply nested state is refused by orjson's depth limit or walked here
    without exhausting Python's recursion limit. The walk on every save carries no paths
    (building them was most of a save's CPU); only a state that fails is walked again to
    name the field.
    """
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidState(f"{_non_finite_path(value, path)} is {item!r}; JSON cannot "
                                   "store NaN or infinity")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _non_finite_path(value: Any, path: str) -> str:
    """Where the first non-finite float is, as ``state.a.b[3]`` (for the error message)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where
        if isinstance(item, dict):
            stack.extend((v, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
    return path


def version_key(version: str) -> tuple[int, ...] | None:
    """``"1.0"`` as ``(1, 0)``; None for anything but a few dot-separated ASCII numbers
    (``int()`` would also take whitespace and other scripts' digits from a planted state)."""
    parts = version.split(".", 8)
    if len(version) > 40 or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    return tuple(int(part) for part in parts)


def is_newer_than_known(version: object) -> bool:
    """True for a version above this code's: such states are kept as they are."""
    key = version_key(version) if isinstance(version, str) else None
    return key is not None and key > (version_key(STATE_VERSION) or ())


def _to_json_value(value: Any) -> Any:
    """orjson ``default`` hook: refuse what JSON cannot hold without loss."""
    if isinstance(value, set | frozenset):
        raise TypeError(f"{type(value).__name__} values have no JSON form; convert to a list")
    raise TypeError(f"values of type {type(value).__name__} cannot be stored as JSON")


def dump_json(state: dict[str, Any]) -> bytes:
    """Serialise a state; datetimes become ISO 8601 strings, other objects are refused."""
    try:
        return orjson.dumps(state, default=_to_json_value)
    except orjson.JSONEncodeError as exc:
        cause = exc.__cause__ or exc
        raise InvalidState(f"state cannot be stored as JSON: {cause}; store plain "
                           "str/int/float/bool/None, lists and dicts") from None


def load_json(data: bytes) -> Any:
    return orjson.loads(data)


def prepare_state(state: object, *, max_history_messages: int, now: datetime,
                  check_values: bool = True) -> dict[str, Any]:
    """A new dict ready to store: defaults filled, history trimmed, version and time set.

    The caller's dict is never modified. Raises :class:`InvalidState` for input that
    cannot be stored faithfully. ``check_values=False`` leaves the NaN/infinity walk to
    the caller (the store runs it after the cheaper size check). A state written by a
    newer schema keeps its version, so a newer bot does not migrate it twice.
    """
    if not isinstance(state, dict):
        raise InvalidState(f"state must be a dict, got {type(state).__name__}")
    bad_keys = [k for k in state if not isinstance(k, str)]
    if bad_keys:
        raise InvalidState(f"state keys must be strings; found {bad_keys[0]!r}")
    prepared = {**STATE_DEFAULTS, **state}
    check_storable_shape(prepared)
    history = prepared["conversation_history"] or []
    prepared["conversation_history"] = list(history[-max_history_messages:])
    # a new list: never share the default's
    prepared["objection_history"] = list(prepared["objection_history"] or [])
    if check_values:
        check_finite(prepared)
    prepared["last_interaction_timestamp"] = now.astimezone(UTC).isoformat()
    if not is_newer_than_known(prepared.get("state_version")):
        prepared["state_version"] = STATE_VERSION
    return prepared


def check_storable_shape(state: dict[str, Any]) -> None:
    """Refuse a state whose lists are not lists or whose PII is over the caps.

    :func:`prepare_state` refuses such a state on save, and a load refuses it as a
    corrupt record, with the same rule: whatever ``load_state`` returns, ``update_state``
    can save back.
    """
    check_pii_lengths(state)
    for name, what in (("conversation_history", "a list of messages"),
                       ("objection_history", "a list")):
        value = state.get(name)
        if value is not None and not isinstance(value, list | tuple):
            raise InvalidState(f"{name} must be {what}, got {type(value).__name__}")


def check_pii_lengths(state: dict[str, Any]) -> None:
    """Refuse PII values over :data:`PII_MAX_CHARS`: masking must stay cheap for any record.

    A non-string value is measured by its JSON text; one JSON cannot hold is left for
    :func:`dump_json` to refuse with its own message.
    """
    for field_name in PII_FIELDS:
        value = state.get(field_name)
        if value is None:
            continue
        limit = PII_MAX_CHARS[field_name]
        if isinstance(value, str):
            length, what = len(value), "characters long"
        else:
            try:
                length = len(orjson.dumps(value))
            except orjson.JSONEncodeError:
                continue
            what = f"characters long as JSON (a {type(value).__name__})"
        if length > limit:
            raise InvalidState(
                f"{field_name} is {length} {what}; the limit is {limit}. Store only "
                f"{_PII_WHAT[field_name]} there, as a string, and keep longer text in "
                "another field")


def parse_timestamp(value: object) -> datetime | None:
    """Best-effort read of an ISO timestamp written by us or by an older system."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def mask_pii(state: dict[str, Any]) -> dict[str, Any]:
    """A copy with name, phone and email masked, for screens, logs and exports.

    Any non-empty value of those fields is masked, whatever its type. Every other string
    in the state, however deeply nested (dict keys stay as they are), is masked too: where
    it repeats the buyer's values ("Thanks, Elena!", "Ms. Marquez", "call me at (555)
    123-4567"), matched without regard to case and phones by their digits, and wherever it
    holds any email address or phone number at all (a spouse's, a colleague's), since a
    viewer must not see those either. The record may have been planted in Redis past
    :func:`prepare_state`'s caps, so the work is linear in the size of the state: a fixed
    number of passes over each string, each with a bounded pattern.
    """
    masked = dict(state)
    repeats: dict[str, _RepeatPass] = {}
    for field_name in PII_FIELDS:
        value = masked.get(field_name)
        if value in (None, "", [], {}):
            continue
        if not isinstance(value, str):
            masked[field_name] = "***"  # a dict or number here is still PII
            continue
        within_cap = len(value) <= PII_MAX_CHARS[field_name]
        # over the cap the value cannot be a real one: show nothing of it
        masked[field_name] = (mask_text(value, email=field_name == "buyer_email")
                              if within_cap else "***")
        repeat = _repeat_pass(field_name, value, within_cap=within_cap)
        if repeat is not None:
            repeats[field_name] = repeat
    # the buyer's own forms before the generic ones (they know more ways of writing them);
    # emails before phones and names: an email holds the name's parts, and digits
    passes: list[Callable[[str], str]] = []
    for field_name, generic in (("buyer_email", _mask_emails), ("buyer_phone", _mask_phones),
                                ("buyer_name", None)):
        if field_name in repeats:
            passes.append(repeats[field_name].sub)
        if generic is not None:
            passes.append(generic)

    def mask(text: str) -> str:
        for masking in passes:
            text = masking(text)
        return text

    for key, value in masked.items():
        if key not in PII_FIELDS:
            masked[key] = _map_strings(value, mask)
    return masked


#: Email-like words in any text: a local part of the characters an address may hold, "@",
#: and a dotted domain. The lookbehind lets a match start only where a run of local-part
#: characters starts, and the classes on either side of "@" and "." are disjoint, so each
#: run is read a bounded number of times: linear, even for a megabyte of "@@@@" or of
#: letters. ``dictionaries.training_sample`` uses the same pattern.
EMAIL_PATTERN = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+"
                           r"@[\w-]+(?:\.[\w-]+)*")
#: What may stand between two digits of a phone number as people write it: spaces, dots,
#: dashes, slashes and parentheses ("(555) 123-4567", "555/123/4567", "555 . 123 . 4567").
#: At most four of them, so each place in a transcript costs a bounded number of steps:
#: an unbounded run would let a planted transcript make masking slow.
_PHONE_GAP = r"[\s./()\-]{0,4}"
#: Phone numbers in any text, by the shapes they are written in: "+" and 8 to 15 digits
#: (international), a trunk "0" and 10 to 12 digits (national: "020 7946 0958"), and the
#: North American 3-4, 3-3-4 and 1-3-3-4 groups ("555-222-3333", "(555) 222-3333",
#: "5552223333"). Shapes rather than "any 7+ digits", so references, dates and prices
#: ("ref 91234567", "on 2024/05/01", "order 555/123/45678") stay readable; a match may
#: start after a letter ("call5550001234") but never inside a number, and ends before
#: neither a digit nor a ":" (a date followed by a time is no phone). Every branch reads
#: at most a few dozen characters from where it starts: linear in the text. Shared with
#: ``dictionaries.training_sample``.
PHONE_PATTERN = re.compile(
    r"(?<![\d+])(?:"
    rf"\+\d(?:{_PHONE_GAP}\d){{7,14}}"
    rf"|0\d(?:{_PHONE_GAP}\d){{8,10}}"
    rf"|(?:(?:1{_PHONE_GAP})?\(?\d{{3}}{_PHONE_GAP})?\d{{3}}{_PHONE_GAP}\d{{4}}"
    r")(?![\d:])")


def _mask_emails(text: str) -> str:
    """Every email-like word in ``text`` as :func:`mask_text` shows an email."""
    if "@" not in text:
        return text
    return EMAIL_PATTERN.sub(lambda match: mask_text(match[0], email=True), text)


def _mask_phones(text: str) -> str:
    """Every phone-like number in ``text`` as :func:`mask_text` shows a phone."""
    return PHONE_PATTERN.sub(lambda match: mask_text(match[0]), text)


def _map_strings(value: Any, mask: Callable[[str], str]) -> Any:
    """A copy of ``value`` with ``mask`` applied to every string in it but dict keys.

    Iterative, so any nesting orjson accepts is walked without Python's recursion limit;
    a list or dict met twice (a caller's shared or cyclic one) is copied once.
    """
    if isinstance(value, str):
        return mask(value)
    if not isinstance(value, dict | list | tuple):
        return value
    copies: dict[int, Any] = {}

    def copy_of(item: Any) -> Any:
        if isinstance(item, str):
            return mask(item)
        if not isinstance(item, dict | list | tuple):
            return item
        found = copies.get(id(item))
        if found is None:
            found = copies[id(item)] = {} if isinstance(item, dict) else []
            stack.append((item, found))
        return found

    stack: list[tuple[Any, Any]] = []
    root = copy_of(value)
    while stack:
        source, target = stack.pop()
        if isinstance(source, dict):
            for key, item in source.items():
                target[key] = copy_of(item)
        else:
            target.extend(copy_of(item) for item in source)
    return root


class _RepeatPass:
    """One field's repeat forms as a single compiled alternation and their replacements.

    Each form is its own group, longest first, so ``match.lastindex`` names the form that
    matched whatever its case in the transcript.
    """

    __slots__ = ("pattern", "replacements")

    def __init__(self, pattern: re.Pattern[str], replacements: list[str]) -> None:
        self.pattern = pattern
        self.replacements = replacements

    def sub(self, text: str) -> str:
        return self.pattern.sub(self._replacement, text)

    def _replacement(self, match: re.Match[str]) -> str:
        return self.replacements[(match.lastindex or 1) - 1]


def _repeat_pass(field_name: str, value: str, *, within_cap: bool) -> _RepeatPass | None:
    """How a transcript may repeat a PII value, as one pass; None when nothing to look for.

    Every form is at most the field's cap long and a name has at most
    :data:`MAX_NAME_FORMS` parts, so a pass costs a bounded amount per character of text.
    """
    email = field_name == "buyer_email"
    if field_name == "buyer_phone":
        digits = re.sub(r"\D", "", value)[-10:]
        if len(digits) >= 7:
            # the subscriber number with any separators, optionally after the area code
            number = r"\(?" + _PHONE_GAP.join(digits[-7:])
            pattern = number
            if len(digits) >= 10:  # optional country code and area code before it
                area = _PHONE_GAP.join(digits[:3])
                pattern = (rf"(?:(?:\+?\d{{1,3}}{_PHONE_GAP})?\(?{area}{_PHONE_GAP})?"
                           f"{number}")
            return _RepeatPass(re.compile(rf"(?<!\d)({pattern})(?!\d)"),
                               [mask_text(value) if within_cap else "***"])
    own = [value] if within_cap else []
    forms = name_forms(value) if field_name == "buyer_name" else own
    if not forms:
        return None
    alternation = "|".join(f"({re.escape(form)})" for form in forms)
    return _RepeatPass(re.compile(rf"\b(?:{alternation})\b", re.IGNORECASE),
                       [mask_text(form, email=email) for form in forms])


#: Hyphens that join the parts of a name ("Marquez-Lopez"): ASCII, U+2010 and U+2011.
_NAME_HYPHENS = re.compile("[-\u2010\u2011]")
#: Words of a name read at most: a name within the cap has no more (one character and a
#: space each), so a planted name of a million words costs no more than a real one.
_NAME_WORDS_READ = PII_MAX_CHARS["buyer_name"] // 2


def name_forms(value: str) -> list[str]:
    """How a text may repeat a buyer's name: the whole name and its parts, longest first.

    The whole name only within the cap (a longer one cannot be a real name); the parts
    from :func:`name_parts`. Longest first, so in an alternation the longer of two
    overlapping forms (a name and its parts, "Marquez-Lopez" and "Lopez") matches whole.
    """
    forms = [value] if value and len(value) <= PII_MAX_CHARS["buyer_name"] else []
    forms.extend(name_parts(value))
    return sorted(dict.fromkeys(forms), key=len, reverse=True)


def name_parts(value: str) -> list[str]:
    """Words of a name (split on whitespace) and the pieces between their hyphens.

    Each of 3 characters up to the name cap: shorter ones ("Al", "de") are too common to
    mask on their own. "Ana Marquez-Lopez" gives "Ana", "Marquez-Lopez", "Marquez" and
    "Lopez": a transcript may say "Ms. Marquez" or "Lopez here". At most
    :data:`MAX_NAME_FORMS` distinct words and as many pieces, from the first
    :data:`_NAME_WORDS_READ` words, which is every part of a name within the cap.
    """
    limit = PII_MAX_CHARS["buyer_name"]
    words: dict[str, None] = {}
    pieces: dict[str, None] = {}
    for count, match in enumerate(re.finditer(r"\S+", value)):
        word = match[0]
        if count == _NAME_WORDS_READ:
            break
        if not 3 <= len(word) <= limit:
            continue
        if len(words) < MAX_NAME_FORMS:
            words[word] = None
        for piece in _NAME_HYPHENS.split(word):
            if len(pieces) < MAX_NAME_FORMS and len(piece) >= 3 and piece != word:
                pieces[piece] = None
    return list(dict.fromkeys([*words, *pieces]))


def mask_text(value: str, *, email: bool = False) -> str:
    """Keep just enough to recognise a value: 'J*** D***', 'j***@example.com', '***-4567'."""
    if email and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = [c for c in value if c.isdigit()]
    if len(digits) >= 7:
        return "***-" + "".join(digits[-4:])
    return " ".join(word[:1] + "***" for word in value.split()) or "***"
