"""Helpers shared by the AppTest-based dashboard tests (imported, not collected)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest


def walk(node: Any) -> Iterator[Any]:
    """Every element below ``node`` (AppTest's tree), depth first."""
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from walk(child)


def chart_specs(at: AppTest) -> dict[str, tuple[dict[str, Any], list[pd.DataFrame]]]:
    """(Vega-Lite spec, datasets as DataFrames) of every chart on the page, by title."""
    found: dict[str, tuple[dict[str, Any], list[pd.DataFrame]]] = {}
    for node in walk(at.main):
        if node.type != "vega_lite_chart":
            continue
        spec = json.loads(node.proto.spec)
        frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in node.proto.datasets]
        titles = [spec.get("title")] + [layer.get("title") for layer in spec.get("layer", [])]
        title = next(str(t["text"] if isinstance(t, dict) else t) for t in titles if t)
        found[title] = (spec, frames)
    return found


def isolated_app(app: str, isolation: str, **query: str) -> AppTest:
    """``app`` in AppTest, not run yet; ``isolation`` names a secrets entry, so the
    developer's own secrets file is not read; ``query`` goes into the URL."""
    at = AppTest.from_file(app, default_timeout=60)
    at.secrets[isolation] = "isolated"
    for name, value in query.items():
        at.query_params[name] = value
    return at


def sign_in(at: AppTest, password: str) -> AppTest:
    """Type a password into the sign-in form and press Sign in."""
    from dashboard.signin import PASSWORD_KEY

    at.text_input(key=PASSWORD_KEY).input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def signed_in_page(app: str, password: str, isolation: str, page: str | None = None,
                   **query: str) -> AppTest:
    """``app`` run in AppTest (see :func:`isolated_app`), signed in with ``password``,
    then switched to ``page`` when given."""
    at = isolated_app(app, isolation, **query)
    at.run()
    sign_in(at, password)
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@contextlib.contextmanager
def dashboard_store(url: str, monkeypatch: Any, passwords: dict[str, str]
                    ) -> Iterator[Any]:
    """The dashboard pointed at ``url`` with these role passwords, and a memory on it."""
    from dashboard.auth import OPERATOR_PASSWORD_ENV, VIEWER_PASSWORD_ENV
    from memory_core.store import SyncBuyerConversationMemory

    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, passwords["operator"])
    monkeypatch.setenv(VIEWER_PASSWORD_ENV, passwords["viewer"])
    with SyncBuyerConversationMemory.from_url(url) as opened:
        yield opened


def metrics(at: AppTest) -> dict[str, str]:
    """The page's headline numbers, by label."""
    return {m.label: m.value for m in at.main.metric}


class HeldScan:
    """The dashboard's scan (``dashboard.resources.scan_overview``) held until ``release``
    is set, counting its calls: a scan of a huge store, for a test to watch the page
    meanwhile. Install it with ``monkeypatch.setattr(resources, "scan_overview", held)``."""

    def __init__(self) -> None:
        from dashboard import resources

        self.release = threading.Event()
        self.calls = 0
        self.real = resources.scan_overview

    def __call__(self, memory: Any, **kwargs: Any) -> Any:
        self.calls += 1
        assert self.release.wait(30)
        return self.real(memory, **kwargs)
