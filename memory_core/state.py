"""The buyer state as the bot sees it: defaults, trimming, validation, JSON bytes.

Pure functions, no I/O. The sync and async stores, the seeder and the CLI all pass
states through :func:`prepare_state` so a record is shaped the same way whoever wrote it.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from memory_core.errors import InvalidContactId, InvalidState

STATE_VERSION = "1.0"
MAX_CONTACT_ID_LENGTH = 256
PII_FIELDS = ("buyer_name", "buyer_phone", "buyer_email")
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
    # isprintable() is False for control and non-ASCII space characters; " " is the rest.
    if not contact_id.isprintable() or " " in contact_id:
        raise InvalidContactId(
            f"contact_id {contact_id[:40]!r} contains whitespace or control characters")
    return contact_id


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
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return None


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
    history = prepared["conversation_history"]
    if history is None:
        history = []
    if not isinstance(history, list | tuple):
        raise InvalidState("conversation_history must be a list of messages, got "
                           f"{type(history).__name__}")
    prepared["conversation_history"] = list(history[-max_history_messages:])
    objections = prepared["objection_history"]
    if objections is None:
        objections = []
    if not isinstance(objections, list | tuple):
        raise InvalidState("objection_history must be a list")
    prepared["objection_history"] = list(objections)  # never share the default's list
    if check_values:
        check_finite(prepared)
    prepared["last_interaction_timestamp"] = now.astimezone(UTC).isoformat()
    if not is_newer_than_known(prepared.get("state_version")):
        prepared["state_version"] = STATE_VERSION
    return prepared


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

    Any non-empty value of those fields is masked, whatever its type. The values are also
    masked where the conversation repeats them ("Thanks, Elena!", "call me at (555)
    123-4567"), matched without regard to case, and phones by their digits.
    """
    masked = dict(state)
    patterns: list[tuple[re.Pattern[str], str]] = []
    for field_name in PII_FIELDS:
        value = masked.get(field_name)
        if value in (None, "", [], {}):
            continue
        if not isinstance(value, str):
            masked[field_name] = "***"  # a dict or number here is still PII
            continue
        replacement = mask_text(value, email=field_name == "buyer_email")
        masked[field_name] = replacement
        patterns.extend(_repeat_patterns(field_name, value, replacement))
    history = masked.get("conversation_history")
    patterns.reverse()  # email, then phone, then name: an email holds the name's parts
    if patterns and isinstance(history, list):
        masked["conversation_history"] = [_mask_message(m, patterns) for m in history]
    return masked


def _repeat_patterns(field_name: str, value: str,
                     replacement: str) -> list[tuple[re.Pattern[str], str]]:
    """How a transcript may repeat a PII value, longest forms first."""
    digits = re.sub(r"\D", "", value)
    if field_name == "buyer_phone" and len(digits) >= 7:
        # the subscriber number with any separators, optionally after the area code
        number = r"[\s.-]*".join(digits[-7:])
        pattern = number
        if len(digits) >= 10:  # optional country code and area code before it
            area = "".join(digits[-10:-7])
            pattern = rf"(?:(?:\+?\d{{1,3}}[\s.-]*)?\(?{area}\)?[\s.-]*)?{number}"
        return [(re.compile(rf"(?<!\d){pattern}(?!\d)"), replacement)]
    forms = [value] + ([part for part in value.split() if len(part) >= 3]
                       if field_name == "buyer_name" else [])
    return [(re.compile(rf"\b{re.escape(form)}\b", re.IGNORECASE),
             mask_text(form, email=field_name == "buyer_email")) for form in forms]


def _mask_message(message: Any, patterns: list[tuple[re.Pattern[str], str]]) -> Any:
    if not isinstance(message, dict) or not isinstance(message.get("content"), str):
        return message
    content = message["content"]
    for pattern, replacement in patterns:
        content = pattern.sub(replacement, content)
    return {**message, "content": content}


def mask_text(value: str, *, email: bool = False) -> str:
    """Keep just enough to recognise a value: 'J*** D***', 'j***@example.com', '***-4567'."""
    if email and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = [c for c in value if c.isdigit()]
    if len(digits) >= 7:
        return "***-" + "".join(digits[-4:])
    return " ".join(word[:1] + "***" for word in value.split()) or "***"
