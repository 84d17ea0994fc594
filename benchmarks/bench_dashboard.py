"""Time for the overview page to be ready in a real browser, cold and from the scan cache.

Fills a private redis-server with N buyers, starts ``streamlit run app.py`` against it, and
drives headless Chromium (Debian's, through Playwright). "Ready" is when the app has
stopped running and the headline numbers and every chart are drawn. Four cases:

- first load: a fresh dashboard process, first page ever (imports, scan, charts);
- refresh: the Refresh button, which rescans Redis in a warm process (cold scan);
- reload: a full browser reload within the cache period (new session, cached scan);
- back: returning to the overview from another page (cached scan, no page load).

The last three are repeated (``--repeats``) and reported as median and range.

    python benchmarks/bench_dashboard.py --buyers 10000 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inventory import fill
from playwright.sync_api import Page, sync_playwright

from memory_core.testing import free_port, start_private_server, stop_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
MIN_CHARTS = 8


def wait_until_ready(page: Page, timeout_ms: int = 120_000) -> None:
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        f"""() => !document.querySelector("[data-testid='stStatusWidget']")
              && document.querySelectorAll("[data-testid='stVegaLiteChart'] canvas, "
                 + "[data-testid='stVegaLiteChart'] svg").length >= {MIN_CHARTS}
              && document.querySelectorAll("[data-testid='stMetric']").length >= 9""",
        timeout=timeout_ms, polling=50)


def scan_caption(page: Page) -> str:
    caption = page.locator("[data-testid='stCaptionContainer']:has-text('Scanned ')")
    return caption.first.inner_text() if caption.count() else ""


def click_refresh(page: Page) -> None:
    """Click Refresh and wait for the caption of a new scan (the old one names its time)."""
    before = scan_caption(page)
    page.locator("button:has-text('Refresh')").first.click()
    page.wait_for_function(
        """(before) => Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
            .some(e => e.innerText.startsWith('Scanned ') && e.innerText !== before)""",
        arg=before, timeout=120_000, polling=50)


def timed(page: Page, action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    wait_until_ready(page)
    return time.perf_counter() - started


def measure(port: int, repeats: int) -> tuple[float, list[float], list[float], list[float]]:
    """Seconds until ready: first load, then ``repeats`` each of Refresh, browser reload
    and back from another page (one page on a 2-core VM varies by +-30% run to run)."""
    refreshes, reloads, backs = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 3000})
        first = timed(page, lambda: page.goto(f"http://127.0.0.1:{port}/"))
        for _ in range(repeats):
            refreshes.append(timed(page, lambda: click_refresh(page)))
            reloads.append(timed(page, lambda: page.reload()))
            page.get_by_role("link", name="QA seeding").click()
            page.wait_for_selector("text=Generate test buyers")
            backs.append(timed(page, lambda: page.get_by_role("link", name="Overview").click()))
        browser.close()
    return first, refreshes, reloads, backs


def spread(values: list[float]) -> str:
    """Median, and the range when there is more than one run."""
    median = f"{statistics.median(values):.2f}"
    return median if len(values) == 1 else f"{median} ({min(values):.2f}-{max(values):.2f})"


def start_dashboard(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": url}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as answer:
                if answer.read() == b"ok":
                    return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the dashboard did not start within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each cached case; the median is printed, with the range")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, Python "
          f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{'buyers':>9} {'first load':>11} {'refresh (rescan)':>19} {'reload (cache)':>19} "
          f"{'back (cache)':>19}   seconds until ready; median (range) of {args.repeats}")
    server = start_private_server()
    try:
        for buyers in args.buyers:
            fill(server.url, buyers, with_yardstick=False)
            port = free_port()
            dashboard = start_dashboard(server.url, port)
            try:
                first, refreshes, reloads, backs = measure(port, args.repeats)
            finally:
                stop_process(dashboard, timeout_seconds=20)
            print(f"{buyers:>9,} {first:>11.2f} {spread(refreshes):>19} {spread(reloads):>19} "
                  f"{spread(backs):>19}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
