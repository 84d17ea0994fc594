"""The phone/email lookup: keyed hashes of a buyer's contact details to contact ids.

A "delete my data" request names a phone number or an email address, not a contact id.
So each save of a state with a phone or email also adds the contact id to a small set
at ``<prefix>.lookup:<token>``, where the token is an HMAC-SHA256 (with its own secret,
:data:`memory_core.crypto.LOOKUP_KEY_ENV`, or one derived from the first encryption key)
of the normalised value. No phone or email is stored in the clear, and without the
secret a token cannot be tested against a list of numbers.

A set's TTL is raised to the longest TTL of the states that name it, so it expires with
the last of them. A set may still name a buyer whose phone changed (a plain save does
not know the old one; ``update_state`` does and removes it), so every lookup is verified
against the decrypted state before it is believed, and stale members are removed then.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

Command = tuple[Any, ...]

#: Hex characters of a token: 128 bits of the HMAC, plenty against collisions.
TOKEN_HEX_CHARS = 32
PHONE, EMAIL = "phone", "email"
#: Longest input normalised (a phone field is capped at 64, an email at 254 characters).
_MAX_INPUT_CHARS = 320
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+")

#: Adds a member and raises (never lowers) the set's TTL, in one step on one key.
ADD_SCRIPT = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def lookup_key(prefix: str, token: str) -> str:
    return f"{prefix}.lookup:{token}"


def normalise_phone(text: object, default_country_code: str = "1") -> str | None:
    """Digits with the country code; None when it is not a phone number.

    ``+1 (555) 000-1234``, ``+15550001234`` and ``001 555 000 1234`` all give
    ``15550001234``; a ten-digit number without a ``+`` is taken as North American.
    """
    if not isinstance(text, str) or len(text) > _MAX_INPUT_CHARS:
        return None
    stripped = text.strip()
    digits = "".join(c for c in stripped if "0" <= c <= "9")  # ASCII digits only
    if stripped.startswith("00"):
        digits = digits[2:]
    elif not stripped.startswith("+") and len(digits) == 10:
        digits = default_country_code + digits
    return digits if 8 <= len(digits) <= 15 else None


def normalise_email(text: object) -> str | None:
    """The address lower-cased and trimmed; None when it does not look like one."""
    if not isinstance(text, str) or len(text) > _MAX_INPUT_CHARS:
        return None
    address = text.strip().lower()
    # a lone surrogate (a planted legacy record can hold one) cannot be hashed as UTF-8
    if not _EMAIL_SHAPE.fullmatch(address) or not _encodable(address):
        return None
    return address


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def token(secret: bytes, kind: str, normalised: str) -> str:
    """The keyed hash that stands for one normalised phone or email."""
    digest = hmac.new(secret, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()
    return digest[:TOKEN_HEX_CHARS]


def state_tokens(secret: bytes, state: dict[str, Any]) -> set[str]:
    """The tokens a state is found by: its phone's and its email's."""
    found = set()
    phone = normalise_phone(state.get("buyer_phone"))
    if phone:
        found.add(token(secret, PHONE, phone))
    email = normalise_email(state.get("buyer_email"))
    if email:
        found.add(token(secret, EMAIL, email))
    return found


def index_commands(prefix: str, secret: bytes, contact_id: str, state: dict[str, Any],
                   ttl_seconds: int) -> list[Command]:
    """Commands that make the lookup find ``contact_id`` by the state's phone and email."""
    return [("EVAL", ADD_SCRIPT, 1, lookup_key(prefix, t), contact_id, ttl_seconds)
            for t in sorted(state_tokens(secret, state))]


def run_commands(client: Any, commands: list[Command]) -> None:
    """Send lookup commands in one pipeline (each touches one key: fine on a cluster)."""
    if not commands:
        return
    with client.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        pipe.execute()


def unindex_commands(prefix: str, secret: bytes, contact_id: str, before: dict[str, Any],
                     after: dict[str, Any]) -> list[Command]:
    """Commands that forget the phone or email a state no longer has."""
    gone = state_tokens(secret, before) - state_tokens(secret, after)
    return [("SREM", lookup_key(prefix, t), contact_id) for t in sorted(gone)]


def matches(state: dict[str, Any], kind: str, normalised: str) -> bool:
    """Whether a decrypted state really has this phone or email (verifies a lookup)."""
    if kind == PHONE:
        return normalise_phone(state.get("buyer_phone")) == normalised
    return normalise_email(state.get("buyer_email")) == normalised
