"""Schema migrations: small functions that upgrade a loaded state one version at a time.

Records carry the version they were written with. On load, :func:`migrate` applies each
step from that version up to :data:`~memory_core.state.STATE_VERSION`. A record from a
newer version than this code knows is returned untouched (a newer bot wrote it; dropping
its fields here would lose data), and the caller logs a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memory_core.state import STATE_VERSION, is_newer_than_known

State = dict[str, Any]
#: Version assumed for a state that names none (the pickled records of the old system).
UNVERSIONED = "0.9"


def _from_0_9(state: State) -> State:
    """0.9 called the field ``urgency`` and had no objection history."""
    upgraded = dict(state)
    if "urgency" in upgraded:
        legacy_urgency = upgraded.pop("urgency")
        upgraded.setdefault("urgency_level", legacy_urgency)
    upgraded.setdefault("objection_history", [])
    upgraded["state_version"] = "1.0"
    return upgraded


#: version -> (next version, step). Add one entry per schema change.
MIGRATIONS: dict[str, tuple[str, Callable[[State], State]]] = {
    "0.9": ("1.0", _from_0_9),
}


def migrate(state: State) -> State:
    """Upgrade ``state`` to the current version; raise ``ValueError`` if no path exists."""
    version = state.get("state_version")
    if not isinstance(version, str):
        version = UNVERSIONED
    while version != STATE_VERSION:
        if is_newer_than_known(version):
            return state
        step = MIGRATIONS.get(version)
        if step is None:
            raise ValueError(f"no migration from schema version {version!r} to "
                             f"{STATE_VERSION!r}")
        version, upgrade = step
        state = upgrade(state)
    return state
