"""Dashboard sign-in and roles: passwords and their hashes, the lockout, the three modes,
single sign-on, and every route by which a viewer might reach an operator action.

The dashboard runs in AppTest against the private redis-server; a real browser signs in
in test_browser.py. AppTest gives every session the same id ("test session id"), so each
test starts from a new AppTest (new session state) rather than relying on the id.
"""

from __future__ import annotations

import ast
import base64
import hmac
import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apptest_tools import isolated_app, sign_in, signed_in_page, walk
from streamlit.testing.v1 import AppTest

from dashboard import auth
from dashboard.actions import (
    ActionRefused,
    clear_buyer,
    erase_buyers,
    find_buyers,
    remove_qa_seeds,
    reset_buyer_ttl,
    reveal_pii,
    seed_buyers,
    seed_file,
)
from dashboard.auth import (
    LOCKOUT_SECONDS,
    MAX_FAILURES,
    OPERATOR_PASSWORD_ENV,
    TOKEN_KEY,
    VIEWER_PASSWORD_ENV,
    Access,
    AuthConfigError,
    load_auth_config,
)
from dashboard.settings import ALLOW_SEEDING_ENV, READ_ONLY_ENV, DashboardSettings
from dashboard.signin import PASSWORD_KEY
from memory_core import passwords
from memory_core.audit import read_events
from memory_core.passwords import hash_password, parse_hash, verify_password
from memory_core.seeding import SeedOptions
from memory_core.store import SyncBuyerConversationMemory

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
BUYER_PAGE = "app_pages/buyer.py"
QA_PAGE = "app_pages/qa.py"
AUDIT_PAGE = "app_pages/audit.py"
OPERATOR_PW = "correct horse operator"
VIEWER_PW = "correct horse viewer"
CONTACT = "contact-auth-0001"
FULL_NAME = "Philippa Quartermaine"
PHONE = "+1 555 010 7788"
EMAIL = "philippa.q@example.com"
DAY = 86_400


# fixtures and helpers -------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("isolated_dashboard")


@pytest.fixture
def live(real_redis_url: str, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[SyncBuyerConversationMemory]:
    """The private Redis with one named buyer, and no password configured (yet)."""
    monkeypatch.setenv("REDIS_URL", real_redis_url)
    with SyncBuyerConversationMemory.from_url(real_redis_url) as memory:
        state = {"buyer_temperature": "hot", "buyer_name": FULL_NAME, "buyer_phone": PHONE,
                 "buyer_email": EMAIL, "conversation_history": [
                     {"role": "user", "content": f"I am {FULL_NAME}, call {PHONE}"}]}
        assert memory.save_state(CONTACT, state)
        yield memory


@pytest.fixture
def guarded(live: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch
            ) -> SyncBuyerConversationMemory:
    """The live Redis with a viewer and an operator password configured."""
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, OPERATOR_PW)
    monkeypatch.setenv(VIEWER_PASSWORD_ENV, VIEWER_PW)
    return live


def new_app(**query: str) -> AppTest:
    return isolated_app(APP, "dashboard_tests", **query)  # no developer secrets.toml


def rendered(at: AppTest) -> str:
    """Every element's protobuf as text, main area and sidebar: what a browser could show."""
    return "\n".join(str(node.proto) for block in (at.main, at.sidebar)
                     for node in walk(block) if getattr(node, "proto", None) is not None)


def labels(elements: Any) -> list[str]:
    return [e.label for e in elements]


def signed_in(password: str, page: str | None = None, **query: str) -> AppTest:
    return signed_in_page(APP, password, "dashboard_tests", page, **query)


def page_titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def audit_actions(memory: SyncBuyerConversationMemory) -> list[tuple[str, str, str]]:
    return [(e.action, e.outcome, e.actor) for e in read_events(memory.client, memory.prefix)]


def settings(url: str, *, read_only: bool = False, is_demo: bool = False,
             allow_seeding: bool = True) -> DashboardSettings:
    return DashboardSettings(redis_url=url, is_demo=is_demo, config_path=None,
                             read_only=read_only, allow_seeding=allow_seeding)


def assert_nothing_of_the_store(at: AppTest) -> None:
    """The sign-in screen: a password field and a button, and nothing about the buyers."""
    assert not at.exception
    field = at.text_input(key=PASSWORD_KEY)
    assert field.label == "Password"
    assert field.proto.type == field.proto.PASSWORD
    assert "Sign in" in labels(at.button)
    assert not at.metric and not at.dataframe and not at.chat_message and not at.toggle
    assert not [n for n in walk(at.main) if n.type == "vega_lite_chart"]
    everything = rendered(at)
    for leak in (CONTACT, FULL_NAME, "keys in this database", "Buyers", "127.0.0.1",
                 "Signed in as"):
        assert leak not in everything, leak


# memory_core.passwords ------------------------------------------------------------------

def test_a_hash_has_the_documented_form_and_verifies_only_its_password() -> None:
    stored = hash_password("s3cret pass")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert verify_password("s3cret pass", stored)
    assert not verify_password("s3cret pas", stored)
    assert not verify_password("", stored)
    assert hash_password("s3cret pass") != stored  # a new salt every time
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_a_plain_password_setting_is_compared_in_constant_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(passwords.hmac, "compare_digest", spy)
    assert verify_password("letmein", "letmein")
    assert not verify_password("letmein", "letmein-longer")
    assert verify_password("pw", hash_password("pw"))
    assert len(calls) == 3
    # Plain passwords are compared as equal-length digests: the time says nothing of length.
    assert all(len(a) == len(b) == 32 for a, b in calls)
    assert not verify_password("", "")  # an empty setting matches nothing


@pytest.mark.parametrize("stored, problem", [
    ("scrypt$1073741824$8$1$" + "A" * 24 + "$" + "A" * 44, "cost more"),  # n = 2**30
    ("scrypt$16384$4096$1$" + "A" * 24 + "$" + "A" * 44, "between 1 and"),  # r huge
    ("scrypt$16384$8$100000$" + "A" * 24 + "$" + "A" * 44, "between 1 and"),  # p huge
    ("scrypt$262144$16$16$" + "A" * 24 + "$" + "A" * 44, "cost more"),  # work too large
    ("scrypt$16383$8$1$" + "A" * 24 + "$" + "A" * 44, "power of two"),
    ("scrypt$99999999999$8$1$" + "A" * 24 + "$" + "A" * 44, "positive integer"),
    ("scrypt$16384$8$1$not base64!$" + "A" * 44, "base64"),
    ("scrypt$16384$8$1$" + "A" * 24 + "$QQ==", "bytes"),
    ("scrypt$16384$8$1$" + "A" * 24, "form"),
    ("scrypt$" + "9" * 500, "longer"),
])
def test_a_stored_hash_with_unbounded_or_broken_parameters_is_refused_quickly(
        stored: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_hash(stored)
    started = time.perf_counter()
    assert not verify_password("anything", stored)
    assert time.perf_counter() - started < 0.5


def test_a_stronger_hash_within_bounds_is_accepted() -> None:
    salt = b"0123456789abcdef"
    digest = passwords._scrypt("pw", salt, 2**15, 8, 2, 32)
    stored = (f"scrypt$32768$8$2${base64.b64encode(salt).decode()}$"
              f"{base64.b64encode(digest).decode()}")
    assert verify_password("pw", stored)
    assert not verify_password("pw2", stored)


def test_the_passwords_module_imports_only_the_standard_library() -> None:
    tree = ast.parse((ROOT / "memory_core" / "passwords.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported - {"__future__"} <= sys.stdlib_module_names, imported


# configuration --------------------------------------------------------------------------

def test_passwords_come_from_the_environment_before_the_secrets_section(
        live: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    at = new_app()
    at.secrets["auth"] = {"operator_password": "from-secrets-op",
                          "viewer_password": hash_password("from-secrets-viewer")}
    at.run()
    assert_nothing_of_the_store(at)
    sign_in(at, "from-secrets-viewer")
    assert any("Signed in as **viewer**" in c.value for c in at.sidebar.caption)

    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, "from-env-op")
    at = new_app()
    at.secrets["auth"] = {"operator_password": "from-secrets-op"}
    at.run()
    sign_in(at, "from-secrets-op")
    assert any("Wrong password" in e.value for e in at.error)
    sign_in(at, "from-env-op")
    assert any("Signed in as **operator**" in c.value for c in at.sidebar.caption)


def test_a_broken_hash_stops_the_dashboard_naming_the_setting_not_the_value(
        live: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, "scrypt$16384$8$1$c2FsdHNhbHQ=$bm9wZQ==")
    with pytest.raises(AuthConfigError, match=OPERATOR_PASSWORD_ENV):
        load_auth_config()
    at = new_app()
    at.run()
    assert not at.exception
    assert any("sign-in settings are invalid" in e.value for e in at.error)
    assert "bm9wZQ" not in rendered(at)
    assert not at.metric and not at.text_input


def test_the_same_password_for_both_roles_is_a_configuration_error(
        live: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, "same")
    monkeypatch.setenv(VIEWER_PASSWORD_ENV, "same")
    with pytest.raises(AuthConfigError, match="the same"):
        load_auth_config()


# signing in -----------------------------------------------------------------------------

def test_before_signing_in_nothing_of_the_store_is_shown_on_any_page(
        guarded: SyncBuyerConversationMemory) -> None:
    at = new_app()
    at.run()
    assert_nothing_of_the_store(at)
    for page in (BUYER_PAGE, QA_PAGE, AUDIT_PAGE):  # a page URL before signing in
        at = new_app(contact_id=CONTACT)
        at.run()
        at.switch_page(page)
        at.run()
        assert_nothing_of_the_store(at)


def test_the_operator_password_gives_an_operator_and_the_deep_link_survives(
        guarded: SyncBuyerConversationMemory) -> None:
    at = new_app(contact_id=CONTACT)
    at.run()
    at.switch_page(BUYER_PAGE)  # /buyer?contact_id=... opened before signing in
    at.run()
    assert_nothing_of_the_store(at)
    sign_in(at, OPERATOR_PW)
    assert page_titles(at) == ["Buyer"]
    assert at.text_input[0].value == CONTACT
    assert {"Clear this buyer", "Reset TTL to default", "Sign out"} <= set(labels(at.button))
    assert labels(at.toggle) == ["Reveal name, phone and email"]
    assert any("Signed in as **operator**" in c.value for c in at.sidebar.caption)
    assert FULL_NAME not in rendered(at)  # masked until revealed
    at.switch_page(AUDIT_PAGE)
    at.run()
    assert page_titles(at) == ["Audit trail"]


def test_the_viewer_password_gives_a_masked_read_only_viewer(
        guarded: SyncBuyerConversationMemory) -> None:
    at = signed_in(VIEWER_PW)
    assert any(m.label == "Buyers" and m.value == "1" for m in at.main.metric)
    assert any("Signed in as **viewer**" in c.value for c in at.sidebar.caption)
    at.switch_page(BUYER_PAGE)
    at.query_params["contact_id"] = CONTACT
    at.run()
    assert not at.exception
    assert len(at.chat_message) == 1
    assert not at.toggle
    assert "Clear this buyer" not in labels(at.button)
    assert any("Signed in as viewer" in c.value for c in at.caption)
    for secret in (FULL_NAME, "Philippa", "010 7788", EMAIL):
        assert secret not in rendered(at), secret
    for page in (QA_PAGE, AUDIT_PAGE):  # not among a viewer's pages at all
        with pytest.raises(ValueError, match=r"not a registered page|Could not find"):
            at.switch_page(page)


def test_a_hashed_password_setting_signs_in(guarded: SyncBuyerConversationMemory,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, hash_password(OPERATOR_PW))
    at = signed_in(OPERATOR_PW)
    assert any("Signed in as **operator**" in c.value for c in at.sidebar.caption)


def test_sign_out_returns_to_the_form(guarded: SyncBuyerConversationMemory) -> None:
    at = signed_in(OPERATOR_PW)
    next(b for b in at.sidebar.button if b.label == "Sign out").click()
    at.run()
    assert_nothing_of_the_store(at)


def test_a_changed_password_signs_existing_sessions_out(
        guarded: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    at = signed_in(OPERATOR_PW)
    assert at.main.metric
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, "a new operator password")
    at.run()
    assert_nothing_of_the_store(at)


def test_five_wrong_passwords_lock_the_form_for_every_session(
        guarded: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(auth, "_clock", lambda: now[0])
    at = new_app()
    at.run()
    for attempt in range(1, MAX_FAILURES):
        sign_in(at, f"guess {attempt}")
        left = MAX_FAILURES - attempt
        assert any(f"{left} more wrong {'try locks' if left == 1 else 'tries lock'} the form"
                   in e.value for e in at.error)
    sign_in(at, "guess 5")
    assert any("locked" in e.value and "5 minutes" in e.value for e in at.error)
    assert at.text_input(key=PASSWORD_KEY).disabled
    assert auth.sign_in(OPERATOR_PW).role is None  # the right password, while locked

    other = new_app()  # a new browser session is locked too: the count is process-wide
    other.run()
    assert other.text_input(key=PASSWORD_KEY).disabled
    assert any("locked" in e.value and "try again in 5 minutes" in e.value
               for e in other.error)
    assert_nothing_of_the_store(other)

    now[0] += LOCKOUT_SECONDS + 1
    other.run()
    assert not other.text_input(key=PASSWORD_KEY).disabled
    sign_in(other, OPERATOR_PW)
    assert any("Signed in as **operator**" in c.value for c in other.sidebar.caption)


def test_the_password_is_not_kept_in_session_state(
        guarded: SyncBuyerConversationMemory) -> None:
    at = signed_in(OPERATOR_PW)
    kept = {key: value for key, value in at.session_state.items()}
    assert OPERATOR_PW not in repr(kept)


# modes ----------------------------------------------------------------------------------

def test_the_demo_store_needs_no_sign_in_and_acts_as_operator() -> None:
    at = new_app()
    at.run()
    assert not at.exception
    assert not [t for t in at.text_input if t.label == "Password"]
    assert at.main.metric
    assert any("Demo store: operator" in c.value for c in at.sidebar.caption)
    at.switch_page(AUDIT_PAGE)  # an operator page is registered and opens
    at.run()
    assert page_titles(at) == ["Audit trail"]


def test_a_live_redis_without_passwords_is_read_only_for_everyone(
        live: SyncBuyerConversationMemory) -> None:
    at = new_app(contact_id=CONTACT)
    at.run()
    banner = "\n".join(i.value for i in at.info)
    for hint in ("Read-only for everyone", OPERATOR_PASSWORD_ENV, VIEWER_PASSWORD_ENV,
                 "operator_password", "python -m memory_core hash-password"):
        assert hint in banner, hint
    assert at.main.metric  # the overview, masked buyers: a viewer's view without sign-in
    at.switch_page(BUYER_PAGE)
    at.run()
    assert len(at.chat_message) == 1 and not at.toggle
    assert "Clear this buyer" not in labels(at.button)
    assert FULL_NAME not in rendered(at)
    with pytest.raises(ValueError):
        at.switch_page(QA_PAGE)
    access = Access("viewer", "open", settings(os.environ["REDIS_URL"]), "open-session")
    with pytest.raises(ActionRefused, match="no operator password is configured"):
        reveal_pii(access, live, CONTACT, {})
    assert audit_actions(live) == []  # a read-only dashboard writes nothing, not even this


def test_read_only_keeps_an_operator_from_revealing_and_writing(
        guarded: SyncBuyerConversationMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(READ_ONLY_ENV, "1")
    at = signed_in(OPERATOR_PW, BUYER_PAGE, contact_id=CONTACT)
    assert not at.toggle
    assert "Clear this buyer" not in labels(at.button)
    assert FULL_NAME not in rendered(at)
    access = Access("operator", "password", settings(os.environ["REDIS_URL"], read_only=True),
                    "read-only-session")
    with pytest.raises(ActionRefused, match="read-only"):
        reveal_pii(access, guarded, CONTACT, {})


# single sign-on -------------------------------------------------------------------------

SSO = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
       "client_id": "dashboard", "client_secret": "s3cret",
       "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
       "operator_emails": ["Ops@Example.com"], "viewer_emails": "viewer@example.com"}


def sso_app(user: dict[str, Any]) -> AppTest:
    at = new_app()
    at.secrets["auth"] = dict(SSO)
    at.user = user
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("email, role", [("ops@example.com", "operator"),
                                         ("viewer@example.com", "viewer")])
def test_single_sign_on_roles_come_from_the_email_allow_lists(
        live: SyncBuyerConversationMemory, email: str, role: str) -> None:
    at = sso_app({"is_logged_in": True, "email": email, "email_verified": True})
    assert any(f"Signed in as **{role}**" in c.value for c in at.sidebar.caption)
    assert at.main.metric


@pytest.mark.parametrize("user", [
    {"is_logged_in": True, "email": "stranger@example.com"},
    {"is_logged_in": True, "email": "ops@example.com", "email_verified": False},
    {"is_logged_in": True},
    {"is_logged_in": False},
])
def test_single_sign_on_without_an_allowed_verified_email_gets_nothing(
        live: SyncBuyerConversationMemory, user: dict[str, Any]) -> None:
    at = sso_app(user)
    assert not at.main.metric and not at.dataframe
    assert CONTACT not in rendered(at) and "keys in this database" not in rendered(at)
    if user.get("email") == "stranger@example.com":
        assert any("not allowed" in w.value for w in at.warning)
    if importlib.util.find_spec("authlib") is None:
        assert any("Authlib" in e.value for e in at.error)
    else:
        assert "Sign in with single sign-on" in labels(at.button)


# a viewer cannot reach an operator action by any route ------------------------------------

def test_query_parameters_grant_nothing(guarded: SyncBuyerConversationMemory) -> None:
    at = signed_in(VIEWER_PW, BUYER_PAGE, contact_id=CONTACT, role="operator", reveal="1",
                   admin="true", read_only="0")
    assert len(at.chat_message) == 1
    assert not at.toggle and "Clear this buyer" not in labels(at.button)
    assert FULL_NAME not in rendered(at)
    assert audit_actions(guarded) == []


@pytest.mark.parametrize("forged", [
    "keep",  # the viewer's own valid token, with other keys crafted around it
    "operator",
    {"role": "operator"},
    f"operator:{int(time.time())}:{'0' * 64}",
    "swap",  # the viewer's own token with the role swapped
])
def test_crafted_session_state_grants_nothing(guarded: SyncBuyerConversationMemory,
                                              forged: object) -> None:
    at = signed_in(VIEWER_PW, BUYER_PAGE, contact_id=CONTACT)
    if forged == "swap":
        role, issued, mac = at.session_state[TOKEN_KEY].split(":")
        assert role == "viewer"
        forged = f"operator:{issued}:{mac}"
    if forged != "keep":
        at.session_state[TOKEN_KEY] = forged
    for key in ("role", "access", "is_operator", "dashboard_role"):
        at.session_state[key] = "operator"
    at.session_state[f"reveal:{CONTACT}"] = True
    at.run()
    assert not at.exception
    assert not at.toggle and "Clear this buyer" not in labels(at.button)
    assert FULL_NAME not in rendered(at)
    assert not any("Signed in as **operator**" in c.value for c in at.sidebar.caption)
    assert "reveal_pii" not in [action for action, _, _ in audit_actions(guarded)]
    if forged == "keep":  # still the viewer, masked
        assert len(at.chat_message) == 1
        assert any("Signed in as **viewer**" in c.value for c in at.sidebar.caption)
    else:  # a token that does not verify is no sign-in at all
        assert at.text_input(key=PASSWORD_KEY).label == "Password"


def test_a_page_run_on_its_own_or_below_its_role_shows_nothing(
        guarded: SyncBuyerConversationMemory) -> None:
    for page in (AUDIT_PAGE, QA_PAGE, BUYER_PAGE):  # opened without app.py: no sign-in
        at = AppTest.from_file(str(ROOT / page), default_timeout=60)
        at.secrets["dashboard_tests"] = "isolated"
        at.query_params["contact_id"] = CONTACT
        at.run()
        assert not at.exception
        assert any("Sign in first" in w.value for w in at.warning), page
        assert not at.dataframe and not at.chat_message and not at.button

    def viewer_opens_an_operator_page() -> None:
        import streamlit as st

        from dashboard import auth, signin

        auth.sign_in(st.secrets["password"])
        signin.require("operator")
        st.write("operator content")

    at = AppTest.from_function(viewer_opens_an_operator_page, default_timeout=60)
    at.secrets["password"] = VIEWER_PW
    at.run()
    assert not at.exception
    assert any("operators only" in w.value for w in at.warning)
    assert "operator content" not in [m.value for m in at.markdown]


def test_widget_keys_set_by_a_viewer_do_nothing(guarded: SyncBuyerConversationMemory) -> None:
    key = guarded.key_for(CONTACT)
    assert guarded.client.expire(key, DAY)
    at = signed_in(VIEWER_PW, BUYER_PAGE, contact_id=CONTACT)
    for widget_key in ("reset_ttl", "clear_buyer", "erase_open", "sign_out_everyone",
                       f"reveal:{CONTACT}", "confirm_clear_id"):
        at.session_state[widget_key] = True if widget_key != "confirm_clear_id" else CONTACT
    at.run()
    assert not at.exception
    assert guarded.client.ttl(key) <= DAY and guarded.client.exists(key)
    assert FULL_NAME not in rendered(at)


def test_a_stale_operator_button_is_refused_once_the_session_is_no_operator(
        guarded: SyncBuyerConversationMemory) -> None:
    key = guarded.key_for(CONTACT)
    assert guarded.client.expire(key, DAY)
    at = signed_in(OPERATOR_PW, BUYER_PAGE, contact_id=CONTACT)
    reset = next(b for b in at.button if b.label == "Reset TTL to default")
    at.session_state[TOKEN_KEY] = "viewer:0:forged"  # no longer a valid sign-in
    reset.click()
    at.run()
    assert not at.exception
    assert guarded.client.ttl(key) <= DAY  # the callback checked the role itself
    assert ("reset_ttl", "refused") in [(a, o) for a, o, _ in audit_actions(guarded)]
    assert at.text_input(key=PASSWORD_KEY)  # and the session is back at the sign-in form


@pytest.mark.parametrize("access_role, via", [("viewer", "password"), (None, "none"),
                                             ("viewer", "sso")])
def test_every_action_checks_the_role_itself(guarded: SyncBuyerConversationMemory,
                                             access_role: Any, via: Any) -> None:
    access = Access(access_role, via, settings(os.environ["REDIS_URL"]), "crafted-session")
    key = guarded.key_for(CONTACT)
    calls = [
        lambda: reveal_pii(access, guarded, CONTACT, {"buyer_name": FULL_NAME}),
        lambda: clear_buyer(access, guarded, CONTACT, CONTACT, None),
        lambda: reset_buyer_ttl(access, guarded, CONTACT, None),
        lambda: seed_buyers(access, guarded, SeedOptions(count=2)),
        lambda: seed_file(access, guarded, b'{"contact_id": "qa-x"}', "x.json"),
        lambda: remove_qa_seeds(access, guarded, [CONTACT], confirmed=True),
        lambda: find_buyers(access, guarded, email=EMAIL),
        lambda: erase_buyers(access, guarded, typed_confirmation="ERASE", email=EMAIL),
    ]
    for call in calls:
        with pytest.raises(ActionRefused, match=r"operator|sign in"):
            call()
    assert guarded.client.exists(key)
    refused = [(a, o) for a, o, actor in audit_actions(guarded)]
    assert all(outcome == "refused" for _, outcome in refused)
    assert {a for a, _ in refused} == {
        "reveal_pii", "clear", "reset_ttl", "seed", "clear_qa_seeds", "find_by_email", "erase"}
    assert len(refused) == len(calls)
    assert all(actor == f"dashboard:{access_role or 'anonymous'}:crafted-"
               for _, _, actor in audit_actions(guarded))


def test_an_operator_gets_every_action(guarded: SyncBuyerConversationMemory,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_SEEDING_ENV, "1")
    access = Access("operator", "password", settings(os.environ["REDIS_URL"]), "ops-session")
    state = guarded.read_record(CONTACT).state  # type: ignore[union-attr]
    assert reveal_pii(access, guarded, CONTACT, state)["buyer_name"] == FULL_NAME
    assert find_buyers(access, guarded, phone="+1 (555) 010-7788") == [CONTACT]
    assert reset_buyer_ttl(access, guarded, CONTACT, None)
    with pytest.raises(ActionRefused, match="type ERASE"):
        erase_buyers(access, guarded, typed_confirmation="erase it", email=EMAIL)
    receipt = erase_buyers(access, guarded, typed_confirmation="ERASE", email=EMAIL.upper())
    assert receipt.contact_ids == (CONTACT,) and receipt.erased == 1
    assert EMAIL not in receipt.to_json() and FULL_NAME not in receipt.to_json()
    assert not guarded.client.exists(guarded.key_for(CONTACT))
    actions = [a for a, _, actor in audit_actions(guarded)
               if actor == "dashboard:operator:ops-sess"]
    assert {"reveal_pii", "find_by_phone", "reset_ttl", "erase"} <= set(actions)
