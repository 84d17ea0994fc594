"""End to end: the dashboard served by ``streamlit run``, driven by headless Chromium.

The private redis-server is seeded with the CLI, the dashboard is started on a free port
against it, and Playwright opens the pages like an operator would: overview, a buyer by
deep link (then clears it through the confirmation dialog), and the QA page. Screenshots
of the three pages are saved to docs/ for review.

Chromium is the Debian package at /usr/bin/chromium (Playwright never downloads a browser
here). Without it the test is skipped, unless CI is set: there a skip would hide a broken
setup, so it fails instead (the same policy conftest applies to redis-server).
"""

from __future__ import annotations

import importlib.util
import os
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

from memory_core.store import SyncBuyerConversationMemory
from memory_core.testing import RedisServer, free_port, stop_process

if TYPE_CHECKING:  # imported lazily below, so a missing Playwright is a skip, not an error
    from playwright.sync_api import Browser, Page

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
               MEMORY_DASHBOARD_ALLOW_SEEDING="0", PYTHONUNBUFFERED="1")
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
            # Overview: the headline metric and every chart drawn.
            page.goto(dashboard.url + "/")
            wait_for_app(page)
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

            # A buyer by deep link: the transcript renders, masked.
            page.goto(f"{dashboard.url}/buyer?contact_id={CONTACT_ID}")
            wait_for_app(page)
            expect(page.get_by_role("heading", name="Buyer", exact=True)).to_be_visible()
            expect(page.get_by_label("Contact id, or the start of one")).to_have_value(
                CONTACT_ID)
            messages = page.locator("[data-testid='stChatMessage']")
            expect(messages).to_have_count(expected_messages)
            expect(messages.first).to_be_visible()
            expect(page.get_by_text(f"Conversation ({expected_messages} messages)")
                   ).to_be_visible()
            expect(page.locator("[data-testid='stException']")).to_have_count(0)
            page.screenshot(path=str(DOCS / "screenshot-buyer.png"))

            # Clear it through the confirmation dialog.
            page.get_by_role("button", name="Clear this buyer").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible()
            delete = dialog.get_by_role("button", name="Delete permanently")
            expect(delete).to_be_disabled()
            typed = dialog.get_by_label("Contact id")
            typed.fill(CONTACT_ID)
            typed.press("Enter")
            expect(delete).to_be_enabled()
            delete.click()
            expect(page.get_by_text(f"Buyer {CONTACT_ID} was cleared")).to_be_visible()
            expect(dialog).to_have_count(0)
            wait_for_app(page)
            expect(page.get_by_text("No saved state for this contact")).to_be_visible()
            client = redis.Redis.from_url(dashboard.redis_url)
            try:
                assert client.exists(f"buyer_conversation_memory:{CONTACT_ID}") == 0
                assert client.dbsize() == SEED_COUNT - 1
            finally:
                client.close()

            # The QA page: a non-demo Redis without allow_seeding, so seeding is disabled.
            page.goto(dashboard.url + "/qa")
            wait_for_app(page)
            expect(page.get_by_role("heading", name="QA seeding")).to_be_visible()
            expect(page.get_by_text("Seeding is disabled on this Redis")).to_be_visible()
            expect(page.get_by_role("button", name="Seed buyers")).to_be_disabled()
            expect(page.get_by_text(f"{SEED_COUNT - 1} QA-seeded buyers are stored now")
                   ).to_be_visible()
            page.screenshot(path=str(DOCS / "screenshot-qa.png"))
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
