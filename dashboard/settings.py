"""Dashboard settings from the environment, then ``.streamlit/secrets.toml``.

``st.secrets`` raises when no secrets file exists; :func:`secret` tolerates that, because
running with no configuration at all (the demo store) is a supported way to start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import streamlit as st

from memory_core.config import CONFIG_PATH_ENV
from memory_core.connection import REDIS_URL_ENV
from memory_core.demo import DEMO_URL

READ_ONLY_ENV = "MEMORY_DASHBOARD_READ_ONLY"
ALLOW_SEEDING_ENV = "MEMORY_DASHBOARD_ALLOW_SEEDING"
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
    )
