"""Who may do what in the dashboard: roles, sign-in, lockout, and the access of a session.

Two roles. A viewer sees the overview, the buyer table and masked buyers; an operator can
also reveal PII, clear, reset TTLs, erase, seed and remove QA seeds. Which one a session
has is decided here, on the server, on every script run:

- the embedded demo store needs no sign-in and acts as operator;
- a live Redis with no password and no single sign-on configured is read-only for
  everyone (a viewer that nobody has to sign in as);
- otherwise a session signs in with a password (the password that matches decides the
  role) or, where Streamlit's OIDC login is configured, with ``st.login``, the role given
  by the ``operator_emails`` / ``viewer_emails`` allow-lists.

A password sign-in is kept in session state as a token HMAC-signed with a key that only
this process knows, bound to the Streamlit session id, the role, the time and the
configured credential. Whatever a client (or a test) writes into session state, a widget
key or a query parameter, it cannot produce a valid token; a changed password or a token
older than :data:`SIGN_IN_MAX_SECONDS` signs the session out. Wrong passwords are counted
process-wide: after :data:`MAX_FAILURES` the form locks for :data:`LOCKOUT_SECONDS`, for
every session, so opening a new browser tab does not buy more guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets as token_source
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.settings import DashboardSettings, load_settings, secret
from memory_core.passwords import is_hashed, parse_hash, verify_password

logger = logging.getLogger(__name__)

Role = Literal["viewer", "operator"]
#: How a session got its role: demo store, open (nothing configured: read-only),
#: password, single sign-on, or none (not signed in).
Via = Literal["demo", "open", "password", "sso", "none"]

VIEWER_PASSWORD_ENV = "MEMORY_DASHBOARD_VIEWER_PASSWORD"
OPERATOR_PASSWORD_ENV = "MEMORY_DASHBOARD_OPERATOR_PASSWORD"
AUTH_SECTION = "auth"
HASH_COMMAND = "python -m memory_core hash-password"

MAX_FAILURES = 5
LOCKOUT_SECONDS = 5 * 60
#: Wrong passwords older than this are forgotten (so five typos a week never lock).
FAILURE_WINDOW_SECONDS = 15 * 60
SIGN_IN_MAX_SECONDS = 12 * 3600
TOKEN_KEY = "_memory_dashboard_sign_in"
_SSO_KEYS = ("client_id", "client_secret", "server_metadata_url")

#: Signs sign-in tokens; new per process, so a restart signs every session out.
_PROCESS_KEY = token_source.token_bytes(32)
_clock = time.monotonic  # replaced by tests to pass the lockout without waiting
_wall_clock = time.time


class AuthConfigError(ValueError):
    """The dashboard's sign-in settings are unusable; the message names the setting."""


@dataclass(frozen=True)
class AuthConfig:
    """Sign-in settings from the environment and the ``[auth]`` secrets section."""

    viewer_password: str | None = None  # a password or a scrypt$ hash
    operator_password: str | None = None
    sso_providers: tuple[str, ...] = ()  # "default" for a provider set at the top level
    operator_emails: frozenset[str] = frozenset()
    viewer_emails: frozenset[str] = frozenset()

    @property
    def passwords(self) -> bool:
        return bool(self.viewer_password or self.operator_password)

    @property
    def sso(self) -> bool:
        return bool(self.sso_providers)

    @property
    def sign_in_required(self) -> bool:
        return self.passwords or self.sso

    def credential(self, role: Role) -> str | None:
        return self.operator_password if role == "operator" else self.viewer_password


def _section() -> Mapping[str, Any]:
    section = secret(AUTH_SECTION)
    return section if isinstance(section, Mapping) else {}


def _emails(value: object, name: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise AuthConfigError(f"[auth] {name} must be a list of e-mail addresses")
    return frozenset(str(item).strip().lower() for item in items if str(item).strip())


def _sso_providers(section: Mapping[str, Any]) -> tuple[str, ...]:
    """Providers Streamlit's st.login can use: needs redirect_uri and cookie_secret."""
    if not section.get("redirect_uri") or not section.get("cookie_secret"):
        return ()
    found = ["default"] if all(section.get(k) for k in _SSO_KEYS) else []
    found += sorted(name for name, value in section.items()
                    if isinstance(value, Mapping) and "_" not in name
                    and all(value.get(k) for k in _SSO_KEYS))
    return tuple(found)


def _password(env_name: str, secret_name: str, section: Mapping[str, Any]) -> str | None:
    raw = os.environ.get(env_name)
    source = env_name
    if raw is None:
        raw, source = section.get(secret_name), f"[auth] {secret_name}"
    if raw is None or str(raw) == "":
        return None
    value = str(raw)
    if is_hashed(value):
        try:
            parse_hash(value)
        except ValueError as exc:
            raise AuthConfigError(f"{source} is not a usable password hash: {exc}. Make "
                                  f"one with `{HASH_COMMAND}`") from None
    return value


def load_auth_config() -> AuthConfig:
    """The sign-in settings; environment variables win over secrets. Raises AuthConfigError."""
    section = _section()
    viewer = _password(VIEWER_PASSWORD_ENV, "viewer_password", section)
    operator = _password(OPERATOR_PASSWORD_ENV, "operator_password", section)
    if viewer is not None and viewer == operator:
        raise AuthConfigError("the viewer and operator passwords are the same; set "
                              "different ones, or only the operator password")
    return AuthConfig(
        viewer_password=viewer, operator_password=operator,
        sso_providers=_sso_providers(section),
        operator_emails=_emails(section.get("operator_emails"), "operator_emails"),
        viewer_emails=_emails(section.get("viewer_emails"), "viewer_emails"))


# the access of a session --------------------------------------------------------------

@dataclass(frozen=True)
class Access:
    """What this session may do, decided on the server for this script run."""

    role: Role | None
    via: Via
    settings: DashboardSettings
    session_id: str = ""
    email: str | None = None  # the single sign-on identity (an operator's, not a buyer's)
    problem: str | None = None  # why a signed-in identity got no role

    @property
    def signed_in(self) -> bool:
        return self.role is not None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def read_only(self) -> bool:
        """No reveal and no writes: the read_only setting, or nothing configured."""
        return self.settings.read_only or self.via == "open"

    @property
    def can_reveal(self) -> bool:
        return self.is_operator and not self.read_only

    @property
    def can_write(self) -> bool:
        return self.is_operator and not self.read_only

    @property
    def can_seed(self) -> bool:
        return self.can_write and self.settings.can_seed

    @property
    def can_audit(self) -> bool:
        """The audit page: operators only (actor names and sessions are operational data)."""
        return self.is_operator

    @property
    def actor(self) -> str:
        """``dashboard:<role>:<session>`` for the audit trail and the logs."""
        return f"dashboard:{self.role or 'anonymous'}:{self.session_id[:8] or 'nosession'}"


def session_id() -> str:
    """The Streamlit session id of this script run ("" outside a run)."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def _fingerprint(credential: str) -> str:
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()


def _mac(session: str, role: str, issued: int, credential: str) -> str:
    message = "\x00".join((session, role, str(issued), _fingerprint(credential)))
    return hmac.new(_PROCESS_KEY, message.encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()


def _issue_token(role: Role, config: AuthConfig) -> str:
    credential = config.credential(role) or ""
    issued = int(_wall_clock())
    return f"{role}:{issued}:{_mac(session_id(), role, issued, credential)}"


def _verified_role(token: object, config: AuthConfig) -> Role | None:
    """The role a session token proves, or None (forged, stale, or from another session)."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    parts = token.split(":")
    if len(parts) != 3 or parts[0] not in ("viewer", "operator") or not parts[1].isdigit():
        return None
    role: Role = "operator" if parts[0] == "operator" else "viewer"
    credential = config.credential(role)
    issued = int(parts[1])
    session = session_id()
    if not credential or not session:
        return None
    if not 0 <= _wall_clock() - issued <= SIGN_IN_MAX_SECONDS:
        return None
    expected = _mac(session, role, issued, credential)
    return role if hmac.compare_digest(expected, parts[2]) else None


def _sso_access(config: AuthConfig, settings: DashboardSettings, session: str) -> Access:
    try:
        user = st.user.to_dict()
    except Exception:  # no script context or no user info: not signed in
        user = {}
    if not user.get("is_logged_in"):
        return Access(None, "none", settings, session)
    email = str(user.get("email") or "").strip().lower()
    if not email or user.get("email_verified") is False:
        return Access(None, "none", settings, session, email or None,
                      "your identity provider did not give a verified e-mail address")
    if email in config.operator_emails:
        return Access("operator", "sso", settings, session, email)
    if email in config.viewer_emails:
        return Access("viewer", "sso", settings, session, email)
    return Access(None, "none", settings, session, email,
                  f"{email} is not allowed to use this dashboard; ask an operator to add "
                  "it to operator_emails or viewer_emails in [auth]")


def current_access(settings: DashboardSettings | None = None,
                   config: AuthConfig | None = None) -> Access:
    """This session's access, worked out from scratch (never read from session state).

    Raises AuthConfigError when the sign-in settings are unusable.
    """
    settings = settings or load_settings()
    session = session_id()
    if settings.is_demo:
        return Access("operator", "demo", settings, session)
    config = config or load_auth_config()
    if not config.sign_in_required:
        return Access("viewer", "open", settings, session)
    role = _verified_role(st.session_state.get(TOKEN_KEY), config)
    if role is not None:
        return Access(role, "password", settings, session)
    if config.sso:
        return _sso_access(config, settings, session)
    return Access(None, "none", settings, session)


# password sign-in and the lockout -----------------------------------------------------

@dataclass
class _Lockout:
    """Wrong passwords of the whole process; the lock also serialises password checks."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0

    def remaining(self, now: float) -> float:
        return max(0.0, self.locked_until - now)

    def fail(self, now: float) -> int:
        """Count a wrong password; how many tries are left before the lock (0: locked)."""
        self.failures = [t for t in self.failures if now - t < FAILURE_WINDOW_SECONDS]
        self.failures.append(now)
        if len(self.failures) >= MAX_FAILURES:
            self.failures.clear()
            self.locked_until = now + LOCKOUT_SECONDS
            return 0
        return MAX_FAILURES - len(self.failures)


_LOCKOUT = _Lockout()


def reset_lockout() -> None:
    """Forget wrong passwords and lift a lock (tests; a restart does the same)."""
    with _LOCKOUT.lock:
        _LOCKOUT.failures.clear()
        _LOCKOUT.locked_until = 0.0


def _minutes(seconds: float) -> str:
    whole = max(1, int(seconds + 59) // 60)
    return f"{whole} minute{'s' if whole != 1 else ''}"


def locked_message(remaining_seconds: float) -> str:
    return (f"Sign-in is locked after {MAX_FAILURES} wrong passwords: try again in "
            f"{_minutes(remaining_seconds)} (the lock lasts {_minutes(LOCKOUT_SECONDS)}).")


def lockout_remaining() -> float:
    """Seconds the sign-in form stays locked (0 when open)."""
    return _LOCKOUT.remaining(_clock())


@dataclass(frozen=True)
class SignInResult:
    role: Role | None
    message: str


def sign_in(password: str, config: AuthConfig | None = None) -> SignInResult:
    """Check a password and, when it matches, sign this session in with its role.

    Both configured passwords are always checked (the time taken does not tell which
    exists); a locked form checks nothing.
    """
    config = config or load_auth_config()
    with _LOCKOUT.lock:  # one check at a time: no parallel guesses past the limit
        remaining = _LOCKOUT.remaining(_clock())
        if remaining:
            return SignInResult(None, locked_message(remaining))
        operator = verify_password(password, config.operator_password or "")
        viewer = verify_password(password, config.viewer_password or "")
        if operator and viewer:
            return SignInResult(None, "This password is set for both roles; set different "
                                      "viewer and operator passwords.")
        role: Role | None = "operator" if operator else "viewer" if viewer else None
        if role is None:
            left = _LOCKOUT.fail(_clock())
            logger.warning("dashboard sign-in failed (session %s); %d tries left",
                           session_id()[:8], left)
            if not left:
                return SignInResult(None, locked_message(LOCKOUT_SECONDS))
            return SignInResult(None, f"Wrong password. {left} more wrong "
                                      f"{'tries lock' if left != 1 else 'try locks'} the "
                                      f"form for {_minutes(LOCKOUT_SECONDS)}.")
        _LOCKOUT.failures.clear()
    st.session_state[TOKEN_KEY] = _issue_token(role, config)
    logger.info("dashboard sign-in as %s (session %s)", role, session_id()[:8])
    return SignInResult(role, f"Signed in as {role}.")


def sign_out() -> None:
    """Forget this session's password sign-in."""
    st.session_state.pop(TOKEN_KEY, None)
