"""Dashboard passwords: salted scrypt hashes, and a constant-time check of a password.

A dashboard password may be configured as the password itself or, better, as a hash made
by ``python -m memory_core hash-password``: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``.
A hash in the environment or a secrets file does not give the password away if the file
leaks. Parsing a stored hash bounds its cost parameters, so a mistyped or hostile
configuration cannot make one sign-in take seconds or gigabytes.

Only the standard library is imported here: the CLI and the dashboard both use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

logger = logging.getLogger(__name__)

SCHEME = "scrypt"
#: Cost of a new hash: about 16 MiB and 50 ms on a current CPU (OWASP's scrypt minimum
#: is n=2**17 with r=8 at p=1 for stored user passwords; a dashboard with a lockout after
#: five wrong tries can afford the cheaper default, and a stronger hash is accepted).
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32

#: Bounds accepted when reading a stored hash: memory 128 * n * r at most 64 MiB, and the
#: work n * r * p at most 16 times the default, so one check stays well under a second.
MAX_MEMORY_BYTES = 64 * 1024 * 1024
MAX_WORK = 16 * DEFAULT_N * DEFAULT_R * DEFAULT_P
MAX_R = 32
MAX_P = 16
_SALT_RANGE = (8, 64)
_HASH_RANGE = (16, 64)
_MAX_STORED_CHARS = 400


@dataclass(frozen=True, slots=True)
class ScryptHash:
    """A parsed ``scrypt$n$r$p$salt$hash`` value (parameters already checked)."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    def derive(self, password: str) -> bytes:
        return _scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # OpenSSL needs room for V (128 * r * (n + 2)) and B (128 * r * p), plus slack.
    needed = 128 * r * (n + 2) + 128 * r * p + 1024 * 1024
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r,
                          p=p, maxmem=needed, dklen=length)


def hash_password(password: str) -> str:
    """A new salted hash of ``password``, for the dashboard's configuration.

    Raises ValueError for an empty password (an empty setting means "not configured").
    """
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, DEFAULT_N, DEFAULT_R, DEFAULT_P, HASH_BYTES)
    return f"{SCHEME}${DEFAULT_N}${DEFAULT_R}${DEFAULT_P}${_b64(salt)}${_b64(digest)}"


def is_hashed(stored: str) -> bool:
    """Whether a configured value is meant as a hash (rather than the password itself)."""
    return stored.startswith(SCHEME + "$")


def _number(text: str, name: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise ValueError(f"{name} must be a positive integer, not {text[:12]!r}")
    return int(text)


def _decode(text: str, name: str, bounds: tuple[int, int]) -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"the {name} is not valid base64") from exc
    if not bounds[0] <= len(data) <= bounds[1]:
        raise ValueError(f"the {name} is {len(data)} bytes; {bounds[0]}-{bounds[1]} allowed")
    return data


def parse_hash(stored: str) -> ScryptHash:
    """The parts of a stored hash; ValueError naming what is wrong (never the hash)."""
    if len(stored) > _MAX_STORED_CHARS:
        raise ValueError(f"the hash is longer than {_MAX_STORED_CHARS} characters")
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("a hash has the form scrypt$n$r$p$<salt base64>$<hash base64>")
    n, r, p = (_number(text, name) for text, name in zip(parts[1:4], "nrp", strict=True))
    if n < 2 or n & (n - 1):
        raise ValueError(f"n={n} must be a power of two, at least 2")
    if not 1 <= r <= MAX_R or not 1 <= p <= MAX_P:
        raise ValueError(f"r={r} and p={p} must be between 1 and {MAX_R} and {MAX_P}")
    if 128 * n * r > MAX_MEMORY_BYTES or n * r * p > MAX_WORK:
        raise ValueError(f"n={n}, r={r}, p={p} cost more than this dashboard allows "
                         f"(memory 128*n*r <= {MAX_MEMORY_BYTES}, n*r*p <= {MAX_WORK})")
    return ScryptHash(n, r, p, _decode(parts[4], "salt", _SALT_RANGE),
                      _decode(parts[5], "hash", _HASH_RANGE))


def verify_password(given: str, stored: str) -> bool:
    """Whether ``given`` matches ``stored``: a hash from :func:`hash_password`, or a plain
    password. Compared in constant time; an empty or malformed setting matches nothing.

    A plain password is compared through SHA-256 digests, so the time taken does not
    reveal its length either.
    """
    if not given or not stored:
        return False
    if is_hashed(stored):
        try:
            parsed = parse_hash(stored)
        except ValueError as exc:
            logger.warning("a configured password hash is unusable: %s", exc)
            return False
        return hmac.compare_digest(parsed.derive(given), parsed.digest)
    given_digest = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    stored_digest = hashlib.sha256(stored.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(given_digest, stored_digest)
