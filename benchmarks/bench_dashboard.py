"""Time for the overview page to be ready in a real browser, cold and from the scan cache.

Fills a private redis-server with N buyers, starts ``streamlit run app.py`` against it, and
drives headless Chromium (Debian's, through Playwright). "Ready" is when the app has
stopped running and the headline numbers and every chart are drawn. Four cases:

- first load: a fresh dashboard process, first page ever (imports, scan, charts);
- refresh: the Refresh button, which rescans Redis in a warm process (cold scan);
- reload: a full browser reload within the cache period (new session, cached scan);
- back: returning to the overview from another page (cached scan, no page load).

The last three are repeated (``--repeats``) and reported as median and range.

``--scale`` measures what the overview's stored snapshot (``<prefix>.snapshot``, drawn
first while a scan runs in the background) is for; "visible" is when the nine headline
numbers and the charts are drawn (the page may still be polling the background scan):

- first page of a fresh dashboard process, a snapshot present (``--first-page-buyers``),
  from the browser's request, and from the process's start;
- a new browser session on a running dashboard (``--session-buyers``), with the scan
  cache fresh (right after a scan) and expired (``SCAN_CACHE_SECONDS`` after the cached
  scan began: the page draws the snapshot and rescans in the background).

``--floor`` measures what Streamlit itself costs here: a reload of the open page (a new
session, browser caches warm) until the nine numbers show, for a bare page with nine
``st.metric``, the same with the overview's charts, and the overview on the demo store.

    python benchmarks/bench_dashboard.py --buyers 10000 100000
    python benchmarks/bench_dashboard.py --floor --repeats 10
    python benchmarks/bench_dashboard.py --scale --first-page-buyers 1000 1000000 \
        --session-buyers 100000 1000000 --json docs/bench-scale.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inventory import fill, overview_in_child
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from dashboard.resources import SCAN_CACHE_SECONDS
from memory_core.testing import free_port, start_private_server, stop_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
MIN_CHARTS = 8
_VISIBLE = f"""document.querySelectorAll("[data-testid='stVegaLiteChart'] canvas, "
                 + "[data-testid='stVegaLiteChart'] svg").length >= {MIN_CHARTS}
              && document.querySelectorAll("[data-testid='stMetric']").length >= 9"""


def wait_until_ready(page: Page, timeout_ms: int = 120_000) -> None:
    """The run is over (no status widget) and the numbers and charts are drawn."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        f"""() => !document.querySelector("[data-testid='stStatusWidget']") && {_VISIBLE}""",
        timeout=timeout_ms, polling=50)


def wait_until_visible(page: Page, timeout_ms: int = 300_000) -> None:
    """The headline numbers and the charts are drawn, whether or not the page still runs
    (a page drawn from the snapshot polls its background scan every second)."""
    page.wait_for_function(f"() => {_VISIBLE}", timeout=timeout_ms, polling=20)


def page_source(page: Page) -> str:
    """What the page drew: the stored snapshot, or a fresh scan."""
    captions = " ".join(page.locator("[data-testid='stCaptionContainer']").all_inner_texts())
    return ("snapshot" if "From the scan taken" in captions else
            "scan" if "Scanned " in captions else "?")


def wait_for_fresh_scan(page: Page, timeout_ms: int = 600_000) -> None:
    """Until the page shows a finished scan (its caption), e.g. after a background scan."""
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
            .some(e => e.innerText.startsWith('Scanned '))""", timeout=timeout_ms, polling=100)


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
            # a page every role sees (QA seeding is for operators; this runs read-only)
            page.get_by_role("link", name="Server & health").click()
            page.wait_for_selector("h1:has-text('Server & health')")
            backs.append(timed(page, lambda: page.get_by_role("link", name="Overview").click()))
        browser.close()
    return first, refreshes, reloads, backs


def spread(values: list[float]) -> str:
    """Median, and the range when there is more than one run."""
    median = f"{statistics.median(values):.2f}"
    return median if len(values) == 1 else f"{median} ({min(values):.2f}-{max(values):.2f})"


#: Longest wait for a new session's numbers and charts before it counts as not shown.
SESSION_TIMEOUT_MS = 90_000


def new_session(browser: Browser, port: int, label: str = "session",
                reload: tuple[Any, Page] | None = None) -> tuple[Any, Page, dict[str, Any]]:
    """A new Streamlit session opening the overview: a new browser context (cold: nothing
    cached), or with ``reload`` (a context and its page showing the dashboard) a reload of
    that page, as an operator reopening it would (static files and compiled code warm).
    Seconds until the page loaded (Streamlit's app shell), the nine numbers showed, and
    the charts too, and what it drew. When they do not show within
    :data:`SESSION_TIMEOUT_MS`, ``seconds`` is None and a screenshot is saved. The caller
    closes the context."""
    if reload is None:
        context = browser.new_context(viewport={"width": 1400, "height": 3000})
        page = context.new_page()
    else:
        context, page = reload
    started = time.perf_counter()
    if reload is None:
        page.goto(f"http://127.0.0.1:{port}/")
    else:
        page.reload()
    facts: dict[str, Any] = {"loaded": round(time.perf_counter() - started, 2)}
    try:
        page.wait_for_function(
            """() => document.querySelectorAll("[data-testid='stMetric']").length >= 9""",
            timeout=SESSION_TIMEOUT_MS, polling=20)
        facts["numbers"] = round(time.perf_counter() - started, 2)
        wait_until_visible(page, SESSION_TIMEOUT_MS)
        facts["seconds"] = time.perf_counter() - started
        facts["source"] = page_source(page)
    except PlaywrightTimeout:
        shot = Path(tempfile.gettempdir()) / f"bench-dashboard-{label}-{int(time.time())}.png"
        page.screenshot(path=str(shot), full_page=True)
        facts.update(seconds=None, source="not shown", screenshot=str(shot),
                     captions=page.locator("[data-testid='stCaptionContainer']")
                     .all_inner_texts()[:6])
        print(f"  {label}: numbers and charts not shown within {SESSION_TIMEOUT_MS // 1000} s"
              f" (screenshot {shot}; captions {facts['captions']})", flush=True)
    return context, page, facts


def measure_scale(url: str, buyers: int, port: int, first_page: bool, sessions: int,
                  process_started: float) -> dict[str, Any]:
    """The first page of the dashboard just started on ``port``; then ``sessions`` rounds
    of a new session with the scan cache fresh, and one after it expired."""
    result: dict[str, Any] = {"buyers": buyers}
    fresh: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context, page, facts = new_session(browser, port, f"{buyers}-first")
            if first_page:
                result.update(first_page_seconds=_rounded(facts["seconds"]),
                              first_page_numbers_seconds=facts.get("numbers"),
                              first_page_source=facts["source"],
                              process_start_to_first_page_seconds=round(
                                  time.monotonic() - process_started, 2))
            for _ in range(sessions if facts["seconds"] is not None else 0):
                try:
                    wait_for_fresh_scan(page, timeout_ms=300_000)
                except PlaywrightTimeout:
                    print(f"  {buyers}: the page did not switch to a finished scan within "
                          "300 s", flush=True)
                    result["scan_not_finished_on_page"] = True
                    break
                scan_done = time.monotonic()  # the cache's period counts from the scan's end
                context, page, facts = new_session(browser, port, f"{buyers}-fresh",
                                                   reload=(context, page))
                fresh.append(facts)
                time.sleep(max(0.0, scan_done + SCAN_CACHE_SECONDS + 3 - time.monotonic()))
                context, page, facts = new_session(browser, port, f"{buyers}-expired",
                                                   reload=(context, page))
                expired.append(facts)
                if facts["seconds"] is None:
                    break  # this page never showed: no later round can start from it
            context.close()
        finally:
            browser.close()
    if fresh or expired:
        result["new_session_how"] = "reload of the open page: a new Streamlit session, " \
            "browser caches warm (a cold browser is the first page)"
    for name, runs in (("fresh", fresh), ("expired", expired)):
        if runs:
            result[f"new_session_cache_{name}"] = [
                {**run, "seconds": _rounded(run["seconds"])} for run in runs]
    return result


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _seconds_text(runs: list[dict[str, Any]] | None) -> str:
    """Median (range) of the runs that showed, and how many did not."""
    if not runs:
        return "-"
    shown = [run["seconds"] for run in runs if run["seconds"] is not None]
    text = spread(shown) if shown else ""
    missing = len(runs) - len(shown)
    return text + (f" +{missing} not shown" if missing else "")


def scale_main(args: argparse.Namespace) -> None:
    from bench_scale import merge_json

    sizes = sorted(set(args.first_page_buyers) | set(args.session_buyers))
    print(f"{'buyers':>10} {'snapshot scan s':>16} {'first page s':>22} {'drawn from':>11} "
          f"{'process start->page s':>22} {'new session, cache fresh s':>27} "
          f"{'new session, cache expired s':>29}")
    rows = []
    server = start_private_server()
    try:
        for buyers in sizes:
            fill(server.url, buyers, with_yardstick=False)
            scan = overview_in_child(server.url, snapshot=True)
            first_page = buyers in args.first_page_buyers
            runs = []  # a fresh dashboard process each; the last also measures sessions
            for run in range(args.first_page_repeats if first_page else 1):
                last = run == (args.first_page_repeats if first_page else 1) - 1
                port = free_port()
                started = time.monotonic()
                dashboard = start_dashboard(server.url, port)
                try:
                    runs.append(measure_scale(
                        server.url, buyers, port, first_page,
                        args.repeats if last and buyers in args.session_buyers else 0,
                        started))
                finally:
                    stop_process(dashboard, timeout_seconds=20)
            row = runs[-1]
            if first_page:
                for name in ("first_page_seconds", "first_page_numbers_seconds",
                             "first_page_source", "process_start_to_first_page_seconds"):
                    row[name] = [r[name] for r in runs]
            row["snapshot_scan_seconds"] = round(scan["seconds"], 2)
            rows.append(row)
            fresh = row.get("new_session_cache_fresh")
            expired = row.get("new_session_cache_expired")
            firsts = row.get("first_page_seconds")
            starts = row.get("process_start_to_first_page_seconds")
            print(f"{buyers:>10,} {row['snapshot_scan_seconds']:>16.2f} "
                  f"{spread([v for v in firsts if v is not None]) if firsts else '-':>22} "
                  f"{','.join(sorted(set(row.get('first_page_source', ['-'])))):>11} "
                  f"{spread(starts) if starts else '-':>22} "
                  f"{_seconds_text(fresh):>27} {_seconds_text(expired):>29}", flush=True)
            if args.json:
                merge_json(args.json, "dashboard", [row])
    finally:
        server.stop()


def start_dashboard(url: str | None, port: int, script: Path = ROOT / "app.py",
                    script_args: list[str] | None = None) -> subprocess.Popen[bytes]:
    """``streamlit run`` of ``script`` on ``port``, against ``url`` (None: the demo store)."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    if url is not None:
        env["REDIS_URL"] = url
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false",
         *(script_args or [])],
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


#: A bare Streamlit page with the overview's nine headline numbers, and optionally the
#: overview's charts (built from the demo store, drawn three to a row as the page does).
_FLOOR_PAGE = """
import copy, json, sys
import streamlit as st
st.set_page_config(layout="wide")
st.title("Floor")
for column, n in zip(st.columns(4) + st.columns(5), range(9)):
    column.metric(f"figure {n}", f"{n * 1000:,}")
if "--charts" in sys.argv:
    charts = json.loads(open(sys.argv[sys.argv.index("--charts") + 1]).read())
    names = list(charts)
    for row in range(0, len(names), 3):
        for column, name in zip(st.columns(3), names[row:row + 3]):
            column.vega_lite_chart(copy.deepcopy(charts[name]), width="stretch")
"""


def overview_chart_specs() -> dict[str, Any]:
    """The overview's chart specs for the demo store, as the page draws them."""
    from dashboard.overview_model import Filters, build_overview
    from memory_core import SyncBuyerConversationMemory
    from memory_core.breakdown import scan_overview
    from memory_core.demo import seed_demo_store

    with SyncBuyerConversationMemory.from_url("memory://bench-floor") as memory:
        seed_demo_store(memory)
        return build_overview(scan_overview(memory), Filters(), memory.config).charts


def reload_seconds(port: int, charts: int, repeats: int) -> list[float]:
    """Seconds until the nine numbers (and ``charts`` charts) show after a reload of the
    open page: a new Streamlit session, browser caches warm (as ``--scale`` sessions)."""
    wanted = (f"""() => document.querySelectorAll("[data-testid='stMetric']").length >= 9
              && document.querySelectorAll("[data-testid='stVegaLiteChart'] canvas, "
                 + "[data-testid='stVegaLiteChart'] svg").length >= {charts}""")
    seconds = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 3000})
        page.goto(f"http://127.0.0.1:{port}/")  # fills the browser's caches
        page.wait_for_function(wanted, timeout=60_000, polling=20)
        for _ in range(repeats):
            started = time.perf_counter()
            page.reload()
            page.wait_for_function(wanted, timeout=60_000, polling=20)
            seconds.append(time.perf_counter() - started)
        browser.close()
    return seconds


def floor_main(repeats: int) -> None:
    """What Streamlit itself costs on this machine, beside the overview (demo store)."""
    import json

    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "floor.py"
        page.write_text(_FLOOR_PAGE)
        specs = Path(folder) / "charts.json"
        charts = overview_chart_specs()
        specs.write_text(json.dumps(charts))
        cases = [("bare page, nine numbers", page, [], 0),
                 (f"bare page, nine numbers and the {len(charts)} overview charts", page,
                  ["--", "--charts", str(specs)], MIN_CHARTS),
                 ("the overview (demo store)", ROOT / "app.py", [], MIN_CHARTS)]
        for label, script, extra, wanted_charts in cases:
            port = free_port()
            process = start_dashboard(None, port, script, extra)
            try:
                seconds = reload_seconds(port, wanted_charts, repeats)
            finally:
                stop_process(process, timeout_seconds=20)
            print(f"{label:<58} {spread(seconds):>20} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each cached case; the median is printed, with the range")
    parser.add_argument("--scale", action="store_true",
                        help="the snapshot cases: first page, new sessions (see above)")
    parser.add_argument("--first-page-buyers", type=int, nargs="+", default=[1000, 1_000_000])
    parser.add_argument("--session-buyers", type=int, nargs="+",
                        default=[100_000, 1_000_000])
    parser.add_argument("--first-page-repeats", type=int, default=3,
                        help="--scale: fresh dashboard processes per first-page size")
    parser.add_argument("--json", type=Path, help="--scale: merge results into this file")
    parser.add_argument("--floor", action="store_true",
                        help="a reload: bare Streamlit pages against the overview")
    args = parser.parse_args()
    if args.floor:
        print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; seconds until shown after a reload "
              f"(a new session, browser caches warm), median (range) of {args.repeats}")
        floor_main(args.repeats)
        return
    if args.scale:
        print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
              f"scan cache {SCAN_CACHE_SECONDS} s; seconds until numbers and charts are "
              f"visible, median (range) of {args.repeats}")
        scale_main(args)
        return
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
