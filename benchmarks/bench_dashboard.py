"""Time for the overview page to be ready in a real browser, cold and from the scan cache.

Fills a private redis-server with N buyers, starts ``streamlit run app.py`` against it, and
opens the overview in headless Chromium (Debian's, driven by Playwright): "ready" is when
the app has stopped running and the charts and headline numbers are on screen. The first
load scans Redis (cold); a reload within the cache period reuses the scan (cached).

    python benchmarks/bench_dashboard.py --buyers 10000 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inventory import fill
from playwright.sync_api import Page, sync_playwright

from memory_core.testing import free_port, start_private_server

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
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, Python "
          f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{'buyers':>9} {'cold (scan + charts) s':>23} {'from cache s':>13}")
    server = start_private_server()
    try:
        for buyers in args.buyers:
            fill(server.url, buyers, with_yardstick=False)
            port = free_port()
            dashboard = start_dashboard(server.url, port)
            try:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                         args=CHROMIUM_ARGS)
                    page = browser.new_page(viewport={"width": 1400, "height": 3000})
                    started = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{port}/")
                    wait_until_ready(page)
                    cold = time.perf_counter() - started
                    started = time.perf_counter()
                    page.reload()
                    wait_until_ready(page)
                    cached = time.perf_counter() - started
                    browser.close()
            finally:
                dashboard.terminate()
                dashboard.wait(timeout=20)
            print(f"{buyers:>9,} {cold:>23.2f} {cached:>13.2f}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
