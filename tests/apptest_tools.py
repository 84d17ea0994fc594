"""Helpers shared by the AppTest-based dashboard tests (imported, not collected)."""

from __future__ import annotations

import json
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


def signed_in_page(app: str, password: str, isolation: str) -> AppTest:
    """``app`` run in AppTest and signed in with ``password``; ``isolation`` names a
    secrets entry, so the developer's own secrets file is not read."""
    from dashboard.signin import PASSWORD_KEY

    at = AppTest.from_file(app, default_timeout=60)
    at.secrets[isolation] = "isolated"
    at.run()
    at.text_input(key=PASSWORD_KEY).input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    """The page's headline numbers, by label."""
    return {m.label: m.value for m in at.main.metric}
