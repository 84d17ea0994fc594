"""The inventory's keyspace figures in the Prometheus text format, for ``inventory --prometheus``.

A cron job writes them for node_exporter's textfile collector (docs/metrics.md). Plain text
formatting with no third-party import, so the CLI can use it on an install without the
``[metrics]`` extra. Label values come from record headers, which whoever can write one key
chooses: each is made printable, cut short and escaped, and a family carries at most a
bounded number of them (the rest are summed under :data:`OTHER_LABEL`), so one hostile key
can neither break the file (node_exporter drops a whole file it cannot parse, or that
repeats a series) nor flood Prometheus with series.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from memory_core.safetext import printable

#: Characters of one label value kept; longer ones are cut and end in ``…``.
MAX_LABEL_CHARS = 64
#: Temperatures given a series of their own, the most common first; the rest are summed.
MAX_LABEL_VALUES = 20
#: The label the rest are summed under (also where the inventory's own cap puts them).
OTHER_LABEL = "(other labels)"
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
#: The fields of :func:`memory_core.inventory.summarize_inventory`'s report read here.
_REQUIRED = ("total", "buyers", "by_temperature", "stored_bytes", "corrupt", "legacy")
_REQUIRED_TTL = ("expiring_24h", "no_ttl")


def escape_label_value(value: object, limit: int = MAX_LABEL_CHARS) -> str:
    r"""A label value safe inside ``name{label="…"}``: control and bidi characters shown as
    ``\xNN`` escapes (:func:`~memory_core.safetext.printable`), at most ``limit``
    characters, then backslash, double quote and newline escaped as the format requires."""
    shown = printable(str(value), limit).encode("utf-8", "replace").decode("utf-8")
    return shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text escaped as the format requires: backslash and newline."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def check_metric_prefix(prefix: str) -> str:
    """``prefix`` if it can start a metric name; a ValueError saying why otherwise."""
    if not isinstance(prefix, str) or not _METRIC_NAME.fullmatch(prefix):
        raise ValueError(f"prefix={prefix!r} is not a Prometheus metric name (letters, "
                         "digits, _ and :, not starting with a digit)")
    return prefix


def bounded_counts(counts: Mapping[str, int], *, max_values: int = MAX_LABEL_VALUES,
                   limit: int = MAX_LABEL_CHARS) -> dict[str, int]:
    """Counts by escaped label value: the ``max_values`` largest kept, the rest summed as
    :data:`OTHER_LABEL`, and values that escape alike (cut to the same prefix) summed,
    so no series is written twice."""
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    other = escape_label_value(OTHER_LABEL, limit)
    merged: dict[str, int] = {}
    for index, (label, number) in enumerate(ranked):
        name = other if index >= max_values else escape_label_value(label or "unknown", limit)
        merged[name] = merged.get(name, 0) + int(number)
    return merged


def _family(name: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    """One gauge family: HELP, TYPE, then ``name{labels} value`` lines (labels escaped)."""
    lines = [f"# HELP {name} {escape_help(help_text)}", f"# TYPE {name} gauge"]
    lines += [f"{name}{{{labels}}} {value!r}" if labels else f"{name} {value!r}"
              for labels, value in samples]
    return lines


def keyspace_exposition(report: Mapping[str, Any], *, prefix: str = "memory_core",
                        store: str | None = None,
                        max_label_values: int = MAX_LABEL_VALUES) -> str:
    """The keyspace figures of an inventory report as Prometheus text (gauges).

    ``report`` is what :func:`memory_core.report.scan_report` (or
    :func:`~memory_core.inventory.summarize_inventory`) returns. Metric names start with
    ``prefix``; ``store`` (say the key prefix) adds a ``store`` label to every series, for
    several stores on one host. Ends with a newline, as the textfile collector wants.
    """
    check_metric_prefix(prefix)
    missing = [name for name in _REQUIRED if name not in report]
    ttl = report.get("ttl")
    missing += [f"ttl.{name}" for name in _REQUIRED_TTL
                if not isinstance(ttl, Mapping) or name not in ttl]
    if missing:
        raise ValueError("not an inventory report (scan_report's): no "
                         + ", ".join(dict.fromkeys(missing)))
    assert isinstance(ttl, Mapping)
    base = [f'store="{escape_label_value(store)}"'] if store is not None else []

    def labels(**escaped: str) -> str:
        return ",".join(base + [f'{key}="{value}"' for key, value in escaped.items()])

    name = f"{prefix}_keyspace"
    lines: list[str] = []
    for suffix, help_text, value in (
            ("keys", "Keys under the buyer prefix, readable or not.", report["total"]),
            ("buyers", "Readable buyer records.", report["buyers"]),
            ("stored_bytes", "Bytes stored by readable buyer records (header and payload).",
             report["stored_bytes"]),
            ("expiring_24h_keys", "Keys whose TTL ends within 24 hours.",
             ttl["expiring_24h"]),
            ("no_ttl_keys", "Keys that never expire.", ttl["no_ttl"]),
            ("corrupt_keys", "Keys no load can read: corrupt, another Redis type, missing "
             "dictionary or undecryptable here.", report["corrupt"]),
            ("legacy_keys", "Pickled records of the old system (run migrate-legacy).",
             report["legacy"])):
        lines += _family(f"{name}_{suffix}", help_text, [(labels(), int(value))])
    by_temperature = bounded_counts(report["by_temperature"], max_values=max_label_values)
    lines += _family(f"{name}_buyers_by_temperature",
                     "Readable buyer records by buyer temperature (labels from record "
                     f"headers: escaped, the {max_label_values} most common kept).",
                     [(labels(temperature=label), number)
                      for label, number in by_temperature.items()])
    by_dictionary = report.get("stored_bytes_by_dictionary")
    if isinstance(by_dictionary, Mapping):
        lines += _family(f"{name}_stored_bytes_by_dictionary",
                         "Bytes stored by readable buyer records, by the zstd dictionary they "
                         "were compressed with: the current one, an older one, or none.",
                         [(labels(dictionary=escape_label_value(str(label))), int(number))
                          for label, number in by_dictionary.items()
                          if isinstance(number, int)][:3])
    generated = _timestamp(report.get("generated_at"))
    if generated is not None:
        lines += _family(f"{name}_report_timestamp_seconds",
                         "When the inventory was taken (Unix time): alert when it is old.",
                         [(labels(), generated)])
    return "\n".join(lines) + "\n"


def _timestamp(text: object) -> float | None:
    """Unix seconds of the report's ISO ``generated_at``; None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None
