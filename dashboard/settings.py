"""Dashboard settings from the environment, then ``.streamlit/secrets.toml``.

``st.secrets`` raises when no secrets file exists; :func:`secret` tolerates that, because
running with no configuration at all (the demo store) is a supported way to start.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import streamlit as st

from memory_core.config import CONFIG_PATH_ENV
from memory_core.connection import REDIS_URL_ENV
from memory_core.demo import DEMO_URL
from memory_core.errors import ConfigError

READ_ONLY_ENV = "MEMORY_DASHBOARD_READ_ONLY"
ALLOW_SEEDING_ENV = "MEMORY_DASHBOARD_ALLOW_SEEDING"
SAMPLE_ABOVE_KEYS_ENV = "MEMORY_DASHBOARD_SAMPLE_ABOVE_KEYS"
#: Above this many keys the overview starts sampled: an exact scan of 3M buyers took
#: 114 s and 1.35 GB in the dashboard process on a 2-CPU machine (benchmarks/bench_scale.py).
DEFAULT_SAMPLE_ABOVE_KEYS = 2_000_000
TRAIN_MIN_SAVING_ENV = "MEMORY_DASHBOARD_TRAIN_MIN_SAVING"
#: The overview offers "Train a dictionary" when a fresh one would save at least this
#: percent of the bytes saves write now (or when none exists yet): below that, a new
#: dictionary is churn (every record re-compressed as it is saved) for little gain.
DEFAULT_TRAIN_MIN_SAVING = 10.0
_TRUE = ("1", "true", "yes", "on")


def secret(name: str) -> Any:
    """A value from st.secrets, or None when it (or the whole secrets file) is missing."""
    try:
        return st.secrets.get(name)
    except (FileNotFoundError, KeyError, AttributeError, st.errors.StreamlitAPIException):
        return None
    except Exception:  # a malformed secrets file must not take the dashboard down
        return None


def _flag(env_name: str, secret_name: str) -> bool:
    raw = os.environ.get(env_name)
    if raw is None:
        raw = secret(secret_name)
    return str(raw).strip().lower() in _TRUE if raw is not None else False


@dataclass(frozen=True)
class DashboardSettings:
    redis_url: str
    is_demo: bool
    config_path: str | None
    read_only: bool
    allow_seeding: bool
    sample_above_keys: int = DEFAULT_SAMPLE_ABOVE_KEYS  # 0: never start sampled
    train_min_saving: float = DEFAULT_TRAIN_MIN_SAVING  # percent, 0 to 100

    @property
    def can_seed(self) -> bool:
        """Seeding is for the demo store, or a Redis whose owner allowed it explicitly."""
        return not self.read_only and (self.is_demo or self.allow_seeding)


def load_settings() -> DashboardSettings:
    url = os.environ.get(REDIS_URL_ENV) or secret("redis_url")
    config_path = os.environ.get(CONFIG_PATH_ENV) or secret("config_path")
    return DashboardSettings(
        redis_url=str(url) if url else DEMO_URL,
        is_demo=not url or str(url).startswith("memory://"),
        config_path=str(config_path) if config_path else None,
        read_only=_flag(READ_ONLY_ENV, "read_only"),
        allow_seeding=_flag(ALLOW_SEEDING_ENV, "allow_seeding"),
        sample_above_keys=_key_count(SAMPLE_ABOVE_KEYS_ENV, "sample_above_keys"),
        train_min_saving=_percent(TRAIN_MIN_SAVING_ENV, "train_min_saving",
                                  DEFAULT_TRAIN_MIN_SAVING),
    )


def _key_count(env_name: str, secret_name: str) -> int:
    """A whole number of keys, 0 or more; ConfigError naming the setting otherwise."""
    raw = os.environ.get(env_name)
    if raw is None:
        raw = secret(secret_name)
    if raw is None or str(raw).strip() == "":
        return DEFAULT_SAMPLE_ABOVE_KEYS
    text = str(raw).strip().replace("_", "").replace(",", "")
    if isinstance(raw, bool) or not text.isascii() or not text.isdigit():
        raise ConfigError(f"{env_name} (or {secret_name} in secrets.toml) must be a whole "
                          f"number of keys, 0 to never start sampled; got {str(raw)[:40]!r}")
    return int(text)


def _percent(env_name: str, secret_name: str, default: float) -> float:
    """A percentage from 0 to 100 ("10", "12.5" or "10%"); ConfigError naming the setting."""
    raw = os.environ.get(env_name)
    if raw is None:
        raw = secret(secret_name)
    if raw is None or str(raw).strip() == "":
        return default
    text = str(raw).strip().removesuffix("%").strip()
    try:
        value = float(text) if not isinstance(raw, bool) and text.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not 0 <= value <= 100:  # NaN fails too
        raise ConfigError(f"{env_name} (or {secret_name} in secrets.toml) must be a "
                          f"percentage from 0 to 100, such as {default:g}; got "
                          f"{str(raw)[:40]!r}")
    return value
