"""Optional dependencies: import one, or say which ``pip install 'memory-core[...]'`` brings it.

``pip install memory-core`` installs what the bot needs and nothing more; the CLI's tables,
the dashboard, ``memory://`` demo stores and Prometheus metrics each come with an extra
(see ``[project.optional-dependencies]`` in pyproject.toml). A feature that needs one
imports it through :func:`require`, so a bare install gets one line that names the extra
instead of a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from memory_core.errors import MemoryCoreError

#: For each extra, the top-level modules it installs and the package of the extra that
#: brings each, named in the message (numpy is imported before pandas, and comes with it).
#: A missing module not listed is a broken install, not a missing extra: its
#: ModuleNotFoundError is left alone.
EXTRA_MODULES: dict[str, dict[str, str]] = {
    "cli": {"pandas": "pandas", "numpy": "pandas", "tqdm": "tqdm"},
    "dashboard": {"streamlit": "streamlit", "altair": "altair", "pandas": "pandas",
                  "numpy": "pandas", "authlib": "Authlib", "fakeredis": "fakeredis"},
    "demo": {"fakeredis": "fakeredis"},
    "metrics": {"prometheus_client": "prometheus_client"},
}


class MissingExtra(MemoryCoreError, ImportError):
    """A feature's optional dependency is not installed; the message says which extra.

    An ImportError too, so code that already falls back on ImportError keeps doing so.
    """

    def __init__(self, package: str, extra: str, purpose: str, module: str = "") -> None:
        self.package, self.extra, self.purpose = package, extra, purpose
        super().__init__(f"{purpose} needs {package}: pip install 'memory-core[{extra}]'",
                         name=module or package)


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """``module`` imported, or :class:`MissingExtra` if ``extra`` would bring what it lacks.

    ``module`` may be a memory_core module built on the extra (``memory_core.report``
    needs pandas): the message names the package of the extra that is missing, and
    ``purpose`` what needed it ("the inventory").
    """
    if extra not in EXTRA_MODULES:
        raise ValueError(f"no extra named {extra!r}; known: {', '.join(EXTRA_MODULES)}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        package = EXTRA_MODULES[extra].get(missing)
        if package is None:
            raise
        raise MissingExtra(package, extra, purpose, missing) from exc
