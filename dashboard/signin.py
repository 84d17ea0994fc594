"""The sign-in screen, the account box of the sidebar, and the guard at the top of a page.

Drawing only: what a session may do is decided by :mod:`dashboard.auth`.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import streamlit as st

from dashboard import auth
from dashboard.auth import Access, AuthConfig
from dashboard.markdown import md

PASSWORD_KEY = "sign_in_password"
_MESSAGE_KEY = "sign_in_message"

ENABLE_OPERATOR_ACCESS = (
    f"To enable operator access, set `{auth.OPERATOR_PASSWORD_ENV}` (and "
    f"`{auth.VIEWER_PASSWORD_ENV}` for read-only colleagues), or `operator_password` / "
    "`viewer_password` in the `[auth]` section of `.streamlit/secrets.toml`. Store a hash "
    f"rather than the password itself: `{auth.HASH_COMMAND}` prints one.")


def _submit() -> None:
    """The Sign in button's callback: runs before the page is drawn again, so the form
    below already shows the outcome (and the lock) of this try."""
    password = str(st.session_state.get(PASSWORD_KEY) or "")
    st.session_state[PASSWORD_KEY] = ""  # the password is not kept in session state
    result = auth.sign_in(password)
    st.session_state[_MESSAGE_KEY] = result.message if result.role is None else None


def _sso_buttons(config: AuthConfig) -> None:
    if importlib.util.find_spec("authlib") is None:
        st.error("Single sign-on is configured in `[auth]`, but the Authlib package is not "
                 "installed: `pip install 'Authlib>=1.3.2'`.")
        return
    for provider in config.sso_providers:
        # the provider's name comes from the secrets file: escaped, the default one is ours
        name = "single sign-on" if provider == "default" else md(provider)
        if not st.button(f"Sign in with {name}", key=f"sso_{provider}", type="primary"):
            continue
        if provider == "default":
            st.login()
        else:
            st.login(provider)


def sign_in_screen(access: Access, config: AuthConfig) -> None:
    """The only thing a visitor sees before signing in: no buyer data, count or chart."""
    st.title("Buyer memory")
    st.write("Sign in to see the buyer memory dashboard.")
    if access.problem:
        st.warning(md(access.problem))
        if st.button("Sign out", key="sso_sign_out"):
            st.logout()
    if config.sso:
        _sso_buttons(config)
    if not config.passwords:
        return
    remaining = auth.lockout_remaining()
    with st.form("sign_in"):
        st.text_input("Password", type="password", key=PASSWORD_KEY, disabled=bool(remaining),
                      autocomplete="current-password")
        st.form_submit_button("Sign in", on_click=_submit, disabled=bool(remaining))
    message = st.session_state.pop(_MESSAGE_KEY, None)
    if remaining:
        st.error(auth.locked_message(remaining))
    elif message:
        st.error(md(message))
    st.caption("The password you enter decides your role: viewer (masked, read-only) or "
               "operator.")


def sidebar_account(access: Access) -> None:
    """Who is signed in, as what, and the way out."""
    st.subheader("Account")
    if access.via == "demo":
        st.caption(":material/science: Demo store: operator, no sign-in needed")
        return
    if access.via == "open":
        st.caption(":material/lock: Read-only for everyone: no sign-in is configured")
        return
    who = f" ({md(access.email)})" if access.email else ""
    st.caption(f":material/badge: Signed in as **{access.role}**{who}")
    if access.via == "sso":
        if st.button("Sign out", icon=":material/logout:", key="sign_out"):
            st.logout()
    else:
        st.button("Sign out", icon=":material/logout:", key="sign_out", on_click=auth.sign_out)


def require(minimum: Literal["viewer", "operator"] = "viewer") -> Access:
    """This session's access; stops the page for a session below ``minimum``.

    app.py lists only the pages a role may open; this guard holds however a page is
    reached (a URL, a page run on its own, a stale link).
    """
    try:
        access = auth.current_access()
    except auth.AuthConfigError as exc:
        st.error(f"**The dashboard's sign-in settings are invalid.** {md(str(exc))}")
        st.stop()
    if not access.signed_in:
        st.warning("Sign in first.")
        st.stop()
    if minimum == "operator" and not access.is_operator:
        st.warning("This page is for operators only.")
        st.stop()
    return access


def read_only_note(access: Access) -> str:
    """Why this session sees no write actions (for a caption where they would be)."""
    if access.settings.read_only:
        return "Read-only dashboard: clearing, TTL changes and PII reveal are disabled."
    if access.via == "open":
        return ("Read-only dashboard: no operator password is configured, so clearing, "
                "TTL changes and PII reveal are disabled.")
    return (f"Signed in as {access.role}: clearing, TTL changes and PII reveal are for "
            "operators.")
