"""End to end: the dashboard served by ``streamlit run``, driven by headless Chromium.

The private redis-server is seeded with the CLI, the dashboard is started on a free port
against it with a viewer and an operator password, and Playwright opens the pages like
people would: sign in, the overview, a buyer by deep link (then clears it through the
confirmation dialog), the QA page; a viewer who finds no operator action; stored and
reflected markdown that must load nothing from an attacker's host; an erasure by email
through its dialog; and a compression dictionary trained from the overview's section.
Screenshots are saved to docs/ for review.

Every ``page.goto`` opens a new Streamlit session, which signs in again.

Chromium is the Debian package at /usr/bin/chromium (Playwright never downloads a browser
here). Without it the test is skipped, unless CI is set: there a skip would hide a broken
setup, so it fails instead (the same policy conftest applies to redis-server).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from dashboard.buyer_view import MESSAGES_PER_PAGE
from memory_core.dictionaries import current_dictionary_key
from memory_core.store import SyncBuyerConversationMemory
from memory_core.testing import RedisServer, free_port, stop_process

if TYPE_CHECKING:  # imported lazily below, so a missing Playwright is a skip, not an error
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.browser

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Screenshots go to docs/ (the README shows them) when SAVE_SCREENSHOTS=1, else to a
#: temporary folder, so a test run does not rewrite tracked files.
DOCS = (PROJECT_ROOT / "docs" if os.environ.get("SAVE_SCREENSHOTS") == "1"
        else Path(tempfile.mkdtemp(prefix="dashboard-screenshots-")))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 3000}  # Streamlit scrolls inside the page: be tall
START_TIMEOUT_SECONDS = 60
TIMEOUT_MS = 60_000
SEED_COUNT = 200
CONTACT_ID = "qa-5-000007"
OPERATOR_PASSWORD = "browser operator password"
VIEWER_PASSWORD = "browser viewer password"
ATTACKER = "attacker.invalid"
IMAGE = f"![x](http://{ATTACKER}/p.png)"
PHISH = f"[Session expired: log in again](http://{ATTACKER}/phish)"
PREFIX = "buyer_conversation_memory"


@dataclass
class Dashboard:
    url: str
    redis_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @contextmanager
    def log_on_failure(self) -> Iterator[None]:
        """Print the server's output (shown with the failure) if the block fails."""
        try:
            yield
        except BaseException:
            print(f"---- streamlit output ({self.log_path}) ----\n{self.log()[-20_000:]}")
            raise


def _chromium_or_skip() -> str:
    """Chromium's path; without it (or Playwright) skip, or fail when CI is set."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is not installed"
    elif importlib.util.find_spec("playwright") is None:
        problem = "the playwright package is not installed"
    if problem is None:
        return str(CHROMIUM)
    message = f"{problem}; the browser tests cannot run"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: browser tests must never be skipped)")
    pytest.skip(message)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                    timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


def _clean_env(redis_url: str) -> dict[str, str]:
    """This process's environment without dashboard or memory settings, then ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEMORY_CORE_", "MEMORY_DASHBOARD_", "STREAMLIT_"))
           and k != "REDIS_URL"}
    # Explicit values win over any .streamlit/secrets.toml of a developer's checkout.
    env.update(REDIS_URL=redis_url, MEMORY_DASHBOARD_READ_ONLY="0",
               MEMORY_DASHBOARD_ALLOW_SEEDING="0", PYTHONUNBUFFERED="1",
               MEMORY_DASHBOARD_OPERATOR_PASSWORD=OPERATOR_PASSWORD,
               MEMORY_DASHBOARD_VIEWER_PASSWORD=VIEWER_PASSWORD)
    return env


@pytest.fixture(scope="module")
def dashboard(redis_server: RedisServer,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    _chromium_or_skip()
    if not redis_server.running:
        redis_server.start()
    redis_server.flushall()
    env = _clean_env(redis_server.url)
    seeded = subprocess.run(
        [sys.executable, "-m", "memory_core", "--redis-url", redis_server.url, "seed",
         "--count", str(SEED_COUNT), "--seed", "5"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert seeded.returncode == 0, f"seeding failed:\n{seeded.stdout}\n{seeded.stderr}"

    port = free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py",
             "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT)
    server = Dashboard(f"http://127.0.0.1:{port}", redis_server.url, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer /_stcore/health with 'ok' "
                                   f"within {START_TIMEOUT_SECONDS}s (exit code "
                                   f"{process.poll()}); output:\n{server.log()[-5000:]}")
            time.sleep(0.2)
        yield server
    finally:
        stop_process(process, timeout_seconds=15)


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium_or_skip(),
                                              args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def wait_for_app(page: Page) -> None:
    """Until the page's script run has finished and nothing shows it is running."""
    page.wait_for_selector("[data-testid='stApp']", timeout=TIMEOUT_MS)
    page.wait_for_function(
        """() => {
            const app = document.querySelector("[data-testid='stApp']");
            return app !== null
                && app.getAttribute("data-test-script-state") === "notRunning"
                && document.querySelector("[data-testid='stStatusWidgetRunningIcon']") === null
                && document.querySelector("[data-testid='stStatusWidget']") === null;
        }""", timeout=TIMEOUT_MS)
    page.wait_for_timeout(300)  # let the last frame paint


def sign_in(page: Page, password: str) -> None:
    """Fill the sign-in form of this (new) session and wait for the page behind it."""
    from playwright.sync_api import expect

    field = page.get_by_label("Password", exact=True)
    expect(field).to_have_attribute("type", "password")
    field.fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
    wait_for_app(page)


def open_signed_in(page: Page, url: str, password: str) -> None:
    page.goto(url)
    wait_for_app(page)
    sign_in(page, password)


def buyer_keys(redis_url: str) -> int:
    """Buyer records now (dbsize() also counts the audit stream)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{PREFIX}:*", count=1000))
    finally:
        client.close()


def test_operator_walks_through_the_dashboard(dashboard: Dashboard, browser: Browser) -> None:
    from playwright.sync_api import expect

    DOCS.mkdir(exist_ok=True)
    expected_messages = _kept_messages(dashboard.redis_url, CONTACT_ID)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        with dashboard.log_on_failure():
            # Before signing in: the form and nothing else, not even a key count.
            page.goto(dashboard.url + "/")
            wait_for_app(page)
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            expect(page.locator("[data-testid='stMetric']")).to_have_count(0)
            expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(0)
            expect(page.get_by_text("keys in this database")).to_have_count(0)
            expect(page.get_by_text(CONTACT_ID)).to_have_count(0)
            page.screenshot(path=str(DOCS / "screenshot-signin.png"))
            sign_in(page, OPERATOR_PASSWORD)
            expect(page.locator("[data-testid='stSidebar']").get_by_text(
                "Signed in as operator")).to_be_visible()

            # Overview: the headline metric and every chart drawn.
            buyers = page.locator("[data-testid='stMetric']").filter(
                has=page.locator("[data-testid='stMetricLabel']", has_text="Buyers"))
            expect(buyers.locator("[data-testid='stMetricValue']")).to_have_text(
                str(SEED_COUNT))
            expect(page.get_by_text("Demo mode")).to_have_count(0)
            # Vega-Embed draws each chart as an svg.marks (or a canvas) in the element;
            # an svg with marks (bars, points, arcs, rules) is a chart with data.
            page.wait_for_function(
                """() => {
                    const charts = document.querySelectorAll("[data-testid='stVegaLiteChart']");
                    return charts.length >= 8 && Array.from(charts).every(chart =>
                        chart.querySelector(":scope > canvas") !== null
                        || chart.querySelector(":scope > svg.marks .role-mark path") !== null);
                }""")
            drawn = page.locator("[data-testid='stVegaLiteChart'] > svg.marks, "
                                 "[data-testid='stVegaLiteChart'] > canvas")
            assert drawn.count() >= 8
            assert page.locator("[data-testid='stVegaLiteChart']").count() == drawn.count()
            expect(page.locator("[data-testid='stException']")).to_have_count(0)
            wait_for_app(page)
            page.screenshot(path=str(DOCS / "screenshot-overview.png"))

            # A buyer by deep link, opened before signing in: after signing in, the page
            # and its contact id are still there; the transcript renders, masked.
            page.goto(f"{dashboard.url}/buyer?contact_id={CONTACT_ID}")
            wait_for_app(page)
            expect(page.get_by_text("Conversation (")).to_have_count(0)
            sign_in(page, OPERATOR_PASSWORD)
            expect(page.get_by_role("heading", name="Buyer", exact=True)).to_be_visible()
            expect(page.get_by_label("Contact id, or the start of one")).to_have_value(
                CONTACT_ID)
            messages = page.locator("[data-testid='stChatMessage']")
            expect(messages).to_have_count(min(expected_messages, MESSAGES_PER_PAGE))
            expect(messages.first).to_be_visible()
            expect(page.get_by_text(f"Conversation ({expected_messages} messages)")
                   ).to_be_visible()
            expect(page.locator("[data-testid='stException']")).to_have_count(0)
            page.screenshot(path=str(DOCS / "screenshot-buyer.png"))

            # Clear it through the confirmation dialog: the button enables as the id is
            # typed, key by key, without Enter.
            page.get_by_role("button", name="Clear this buyer").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible()
            delete = dialog.get_by_role("button", name="Delete permanently")
            expect(delete).to_be_disabled()
            typed = dialog.get_by_label("Contact id")
            typed.press_sequentially(CONTACT_ID, delay=40)
            expect(delete).to_be_enabled()
            delete.click()
            expect(page.get_by_text(f"Buyer {CONTACT_ID} was cleared")).to_be_visible()
            expect(dialog).to_have_count(0)
            wait_for_app(page)
            expect(page.get_by_text("No saved state for this contact")).to_be_visible()
            client = redis.Redis.from_url(dashboard.redis_url)
            try:
                assert client.exists(f"{PREFIX}:{CONTACT_ID}") == 0
                assert buyer_keys(dashboard.redis_url) == SEED_COUNT - 1
                (entry,) = client.xrevrange(f"{PREFIX}.audit", count=1)
                assert entry[1][b"contact_id"] == CONTACT_ID.encode()
                assert entry[1][b"actor"].startswith(b"dashboard:operator:")
            finally:
                client.close()

            # The QA page: a non-demo Redis without allow_seeding, so seeding is disabled.
            open_signed_in(page, dashboard.url + "/qa", OPERATOR_PASSWORD)
            expect(page.get_by_role("heading", name="QA seeding")).to_be_visible()
            expect(page.get_by_text("Seeding is disabled on this Redis")).to_be_visible()
            expect(page.get_by_role("button", name="Seed buyers")).to_be_disabled()
            expect(page.get_by_text(f"{SEED_COUNT - 1} QA-seeded buyers are stored now")
                   ).to_be_visible()
            page.screenshot(path=str(DOCS / "screenshot-qa.png"))

            # Server & health: the server's memory figures and the keys that hold no buyer.
            open_signed_in(page, dashboard.url + "/server", OPERATOR_PASSWORD)
            expect(page.get_by_role("heading", name="Server & health")).to_be_visible()
            expect(page.get_by_text("What does this cost?")).to_be_visible()
            expect(page.get_by_text("What else is under the prefix?")).to_be_visible()
            page.screenshot(path=str(DOCS / "screenshot-server.png"), full_page=True)
            assert errors == [], f"JavaScript errors in the page: {errors}"
    finally:
        context.close()


def _kept_messages(redis_url: str, contact_id: str) -> int:
    with SyncBuyerConversationMemory.from_url(redis_url) as memory:
        state = memory.load_state(contact_id)
    assert state is not None, f"{contact_id} was not seeded"
    count = len(state["conversation_history"])
    assert count > 0
    return count


@contextmanager
def browser_page(dashboard: Dashboard, browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A fresh page, and every URL it requests (images, links followed, anything)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        with dashboard.log_on_failure():
            yield page, requested
            assert errors == [], f"JavaScript errors in the page: {errors}"
    finally:
        context.close()


def test_a_viewer_finds_no_operator_action(dashboard: Dashboard, browser: Browser) -> None:
    from playwright.sync_api import expect

    contact_id = "qa-5-000011"
    with browser_page(dashboard, browser) as (page, _):
        open_signed_in(page, f"{dashboard.url}/buyer?contact_id={contact_id}",
                       VIEWER_PASSWORD)
        sidebar = page.locator("[data-testid='stSidebar']")
        expect(sidebar.get_by_text("Signed in as viewer")).to_be_visible()
        expect(page.locator("[data-testid='stChatMessage']").first).to_be_visible()
        for name in ("Clear this buyer", "Reset TTL to default"):
            expect(page.get_by_role("button", name=name)).to_have_count(0)
        expect(page.get_by_text("Reveal name, phone and email")).to_have_count(0)
        expect(sidebar.get_by_text("Overview")).to_be_visible()
        for name in ("QA seeding", "Audit"):
            expect(sidebar.get_by_text(name, exact=True)).to_have_count(0)
        page.screenshot(path=str(DOCS / "screenshot-viewer.png"))

        for path, heading in (("/audit", "Audit trail"), ("/qa", "QA seeding")):
            open_signed_in(page, dashboard.url + path, VIEWER_PASSWORD)  # a page URL
            expect(page.get_by_role("heading", name=heading)).to_have_count(0)
            expect(page.locator("[data-testid='stDataFrame'] >> text=reveal_pii")
                   ).to_have_count(0)
            expect(page.get_by_role("button", name="Seed buyers")).to_have_count(0)
    assert buyer_keys(dashboard.redis_url) >= SEED_COUNT - 1  # nothing was removed


def _plant_hostile_records(redis_url: str) -> dict[str, str]:
    """Records whose stored values are markdown that would load or link the attacker."""
    ids = {"stored": "contact-hostile-0001", "codec": "contact-hostile-codec",
           "dialog": PHISH.replace(" ", "_")}
    history = [{"role": "user", "timestamp": IMAGE,
                "content": f"mail bob@example.com, see www.{ATTACKER} or "
                           f"http://{ATTACKER}/x {IMAGE}"},
               {"role": "assistant", "content": "ok", "timestamp": PHISH}]
    with SyncBuyerConversationMemory.from_url(redis_url) as memory:
        for contact_id in ids.values():
            assert memory.save_state(contact_id, {
                "buyer_temperature": "hot", "buyer_persona": IMAGE, "urgency_level": PHISH,
                "budget_range": IMAGE, "conversation_history": history})
        key = memory.key_for(ids["codec"])
        raw = memory.client.get(key)
        assert raw is not None
        memory.client.set(key, raw.replace(b"\x1fnone\x1f", f"\x1f{IMAGE[:20]}\x1f".encode(), 1))
    return ids


def test_stored_and_reflected_markdown_loads_nothing(dashboard: Dashboard,
                                                     browser: Browser) -> None:
    from urllib.parse import quote, urlparse

    from playwright.sync_api import expect

    ids = _plant_hostile_records(dashboard.redis_url)
    with browser_page(dashboard, browser) as (page, requested):
        open_signed_in(page, f"{dashboard.url}/buyer?contact_id={quote(ids['stored'])}",
                       OPERATOR_PASSWORD)
        expect(page.locator("[data-testid='stChatMessage']")).to_have_count(2)
        expect(page.get_by_text(f"example.com, see www.{ATTACKER}")).to_be_visible()
        page.screenshot(path=str(DOCS / "screenshot-hostile-buyer.png"))
        page.get_by_role("button", name="Clear this buyer").click()  # the dialog's text
        expect(page.get_by_role("dialog")).to_be_visible()
        page.keyboard.press("Escape")

        for contact_id in (ids["codec"], ids["dialog"], IMAGE.replace(" ", ""), PHISH):
            open_signed_in(page, f"{dashboard.url}/buyer?contact_id={quote(contact_id)}",
                           OPERATOR_PASSWORD)
            expect(page.locator("[data-testid='stException']")).to_have_count(0)
        expect(page.get_by_text("That is not a valid contact id")).to_be_visible()

        open_signed_in(page, dashboard.url + "/", OPERATOR_PASSWORD)
        page.get_by_role("button", name="Refresh", exact=True).click()  # scan the planted
        wait_for_app(page)
        page.get_by_text("Persona", exact=True).first.click()  # the options list of a filter
        page.keyboard.press("Escape")
        charts = page.locator("[data-testid='stVegaLiteChart']")
        expect(charts.first).to_be_visible()
        box = charts.nth(5).bounding_box()  # hover a chart: Vega's tooltip shows labels
        if box:
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(500)

        links = page.locator("a[href]").evaluate_all("els => els.map(e => e.href)")
        images = page.locator("img[src]").evaluate_all("els => els.map(e => e.src)")
    def to_attacker(urls: list[str]) -> list[str]:
        return [u for u in urls if (urlparse(u).hostname or "").endswith(ATTACKER)]

    assert len(requested) > 20  # the pages' own requests were seen
    assert not to_attacker(requested), requested
    assert not to_attacker(links + images), (links, images)


def test_an_operator_erases_a_buyer_by_email(dashboard: Dashboard, browser: Browser) -> None:
    from urllib.parse import quote

    from playwright.sync_api import expect

    email = "Erase.Me@Example.com"
    with SyncBuyerConversationMemory.from_url(dashboard.redis_url) as memory:
        assert memory.save_state("contact-erase-me", {"buyer_temperature": "warm",
                                                      "buyer_email": email.lower()})
    with browser_page(dashboard, browser) as (page, _):
        open_signed_in(page, f"{dashboard.url}/buyer?contact_id={quote(email)}",
                       OPERATOR_PASSWORD)
        erase = page.get_by_role("button", name="Erase 1 buyer(s) with this email")
        expect(erase).to_be_visible()

        erase.click()  # Cancel first: nothing happens
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_have_count(0)
        assert buyer_keys(dashboard.redis_url) and _exists(dashboard, "contact-erase-me")

        erase.click()
        confirm = dialog.get_by_role("button", name="Erase permanently")
        expect(confirm).to_be_disabled()
        typed = dialog.get_by_label("Type ERASE to confirm")
        typed.fill("ERASE")
        typed.press("Enter")
        expect(confirm).to_be_enabled()
        confirm.click()
        expect(page.get_by_text("Erased. The receipt")).to_be_visible()
        receipt = page.locator("[data-testid='stCode']").inner_text()
        assert '"contact-erase-me"' in receipt and '"erased": 1' in receipt
        assert "erase.me" not in receipt.lower()
        page.screenshot(path=str(DOCS / "screenshot-erase.png"))
    assert not _exists(dashboard, "contact-erase-me")


def _exists(dashboard: Dashboard, contact_id: str) -> bool:
    client = redis.Redis.from_url(dashboard.redis_url)
    try:
        return bool(client.exists(f"{PREFIX}:{contact_id}"))
    finally:
        client.close()


SEARCH_BOX = "Contact id, or the start of one"


def _url_contact_id(page: Page) -> str | None:
    from urllib.parse import parse_qs, urlparse

    values = parse_qs(urlparse(page.url).query).get("contact_id")
    return values[0] if values else None


def _assert_agree(page: Page, contact_id: str | None) -> None:
    """The box, the URL and the buyer shown all name ``contact_id`` (None: empty box, no
    parameter, no buyer), now and once the page has settled (a snap back comes late)."""
    from playwright.sync_api import expect

    box = page.get_by_label(SEARCH_BOX)
    expect(box).to_have_value(contact_id or "")
    shown = page.get_by_text(f"{PREFIX}:{contact_id}", exact=True)
    if contact_id:
        expect(shown).to_be_visible()
    else:
        expect(page.get_by_text("Type a contact id")).to_be_visible()
    wait_for_app(page)
    page.wait_for_timeout(500)
    wait_for_app(page)
    assert box.input_value() == (contact_id or "")
    assert _url_contact_id(page) == contact_id, page.url
    keys = page.get_by_text(f"{PREFIX}:", exact=False).filter(
        has_text=f"{PREFIX}:qa-").all_inner_texts()
    assert keys == ([f"{PREFIX}:{contact_id}"] if contact_id else []), keys
    if not contact_id:
        expect(page.locator("[data-testid='stChatMessage']")).to_have_count(0)


def test_the_search_box_the_url_and_the_buyer_agree(dashboard: Dashboard,
                                                    browser: Browser) -> None:
    """Regression: after a deep link, every second id typed snapped back to the previous
    one (Tab too), and emptying the box left the old contact_id in the URL."""
    ids = [f"qa-5-{n:06d}" for n in range(30, 36)]
    with browser_page(dashboard, browser) as (page, _):
        open_signed_in(page, f"{dashboard.url}/buyer?contact_id={ids[0]}", OPERATOR_PASSWORD)
        _assert_agree(page, ids[0])
        box = page.get_by_label(SEARCH_BOX)
        for contact_id in ids[1:5]:  # four ids, each with Enter
            box.fill(contact_id)
            box.press("Enter")
            _assert_agree(page, contact_id)
        box.fill(ids[5])  # then one with Tab
        box.press("Tab")
        _assert_agree(page, ids[5])
        box.fill("")  # then empty
        box.press("Enter")
        _assert_agree(page, None)


def test_the_clear_dialog_cancel_deletes_nothing(dashboard: Dashboard,
                                                 browser: Browser) -> None:
    from playwright.sync_api import expect

    contact_id = "qa-5-000040"
    with browser_page(dashboard, browser) as (page, _):
        open_signed_in(page, f"{dashboard.url}/buyer?contact_id={contact_id}",
                       OPERATOR_PASSWORD)
        page.get_by_role("button", name="Clear this buyer").click()
        dialog = page.get_by_role("dialog")
        delete = dialog.get_by_role("button", name="Delete permanently")
        expect(delete).to_be_disabled()
        typed = dialog.get_by_label("Contact id")
        typed.press_sequentially(contact_id[:-1], delay=40)  # not yet the whole id
        page.wait_for_timeout(600)
        expect(delete).to_be_disabled()
        typed.press_sequentially(contact_id[-1])  # no Enter, no Tab
        expect(delete).to_be_enabled()
        page.screenshot(path=str(DOCS / "screenshot-clear-dialog.png"))
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_have_count(0)
        wait_for_app(page)
        expect(page.get_by_text(f"{PREFIX}:{contact_id}", exact=True)).to_be_visible()
        expect(page.get_by_text("was cleared")).to_have_count(0)
    assert _exists(dashboard, contact_id)


def test_reset_ttl_shows_the_new_expiry(dashboard: Dashboard, browser: Browser) -> None:
    """Regression: the toast said 30 days while the page kept the old expiry."""
    from playwright.sync_api import expect

    contact_id = "qa-5-000041"
    client = redis.Redis.from_url(dashboard.redis_url)
    try:
        assert client.expire(f"{PREFIX}:{contact_id}", 3 * 86_400)
    finally:
        client.close()
    with browser_page(dashboard, browser) as (page, _):
        open_signed_in(page, f"{dashboard.url}/buyer?contact_id={contact_id}",
                       OPERATOR_PASSWORD)
        expect(page.get_by_text("TTL: 3 days, expires")).to_be_visible()
        page.get_by_role("button", name="Reset TTL to default").click()
        expect(page.get_by_text("TTL reset to 30 days")).to_be_visible()
        expect(page.get_by_text("TTL: 30 days, expires")).to_be_visible()
        expect(page.get_by_text("TTL: 3 days, expires")).to_have_count(0)
        wait_for_app(page)
        expect(page.get_by_text("TTL: 30 days, expires")).to_be_visible()


def _current_dictionary(redis_url: str) -> bytes | None:
    client = redis.Redis.from_url(redis_url)
    try:
        value = client.get(current_dictionary_key(PREFIX))
        return value if isinstance(value, bytes) else None
    finally:
        client.close()


def test_an_operator_trains_a_dictionary_from_the_overview(dashboard: Dashboard,
                                                          browser: Browser) -> None:
    """The "Compression dictionary" section draws its numbers and, with no dictionary
    stored yet, offers an operator "Train a dictionary"; clicking it trains one (audited
    under the operator), and the page, scanned again, names the new dictionary."""
    from playwright.sync_api import expect

    assert _current_dictionary(dashboard.redis_url) is None  # the CLI's seed trains none
    with browser_page(dashboard, browser) as (page, _):
        open_signed_in(page, dashboard.url + "/", OPERATOR_PASSWORD)
        page.get_by_role("button", name="Refresh", exact=True).click()  # this store, now
        wait_for_app(page)
        section = page.locator(".st-key-dictionary_section")
        expect(section.get_by_text("Compression dictionary", exact=True)).to_be_visible()

        def metric(label: str) -> Locator:
            return section.locator("[data-testid='stMetric']").filter(
                has=page.locator("[data-testid='stMetricLabel']", has_text=label))

        expect(section.get_by_text("Compression dictionary · saves use none trained yet",
                                   exact=True)).to_be_visible()
        expect(metric("Without a dictionary").locator("[data-testid='stMetricValue']")
               ).to_have_text(re.compile(r"^[\d,.]+ (B|KiB|MiB)$"))
        expect(metric("Without a dictionary").locator("[data-testid='stMetricDelta']")
               ).to_have_text("100% of stored bytes")
        expect(metric("With the current dictionary").locator("[data-testid='stMetricValue']")
               ).to_have_text("0 B")
        expect(section.get_by_text(re.compile(
            r"A dictionary trained now would store the sampled states in \d+% fewer bytes "
            r".*estimated on [\d,]+ states"))).to_be_visible()
        section.screenshot(path=str(DOCS / "screenshot-dictionary.png"))

        section.get_by_role("button", name="Train a dictionary").click()
        expect(page.get_by_text(re.compile(r"Trained dictionary \d+ on [\d,]+ sampled states"))
               ).to_be_visible()
        wait_for_app(page)
        stored = _current_dictionary(dashboard.redis_url)
        assert stored is not None and stored.isdigit()
        expect(section.get_by_text(
            f"Compression dictionary · saves use dictionary {stored.decode()}", exact=True)
        ).to_be_visible()
        expect(section.get_by_role("button", name="Train a dictionary")).to_have_count(0)
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
        section.screenshot(path=str(DOCS / "screenshot-dictionary-trained.png"))
    client = redis.Redis.from_url(dashboard.redis_url)
    try:
        entries = [fields for _, fields in client.xrevrange(f"{PREFIX}.audit", count=20)
                   if fields[b"action"] == b"train_dictionary"]
    finally:
        client.close()
    assert len(entries) == 1
    assert entries[0][b"actor"].startswith(b"dashboard:operator:")
    assert entries[0][b"outcome"] == b"done"
