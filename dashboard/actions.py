"""Write actions of the dashboard as plain functions (so tests can call them directly).

Each checks the dashboard's permissions itself: hiding a button is not enough, a refused
action must stay refused however it is reached. Deletions go through memory_core.admin,
which logs them.
"""

from __future__ import annotations

from collections.abc import Callable

from dashboard.settings import DashboardSettings
from memory_core import admin
from memory_core.seeding import SeedOptions, generate_buyers
from memory_core.store import SeedWrite, SyncBuyerConversationMemory

ACTOR = "dashboard operator"


class ActionRefused(Exception):
    """The dashboard's settings forbid this action, or its confirmation did not match."""


def _require_writable(settings: DashboardSettings) -> None:
    if settings.read_only:
        raise ActionRefused("the dashboard is read-only (MEMORY_DASHBOARD_READ_ONLY / "
                            "read_only in secrets); write actions are disabled")


def clear_buyer(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                contact_id: str, typed_confirmation: str,
                expected_revision: int | None) -> bool:
    """Delete one buyer after the operator typed its contact id; True if it existed.

    Only the revision on screen is deleted: a save by the bot since then raises
    RevisionConflict and nothing is deleted.
    """
    _require_writable(settings)
    if typed_confirmation.strip() != contact_id:
        raise ActionRefused("the typed contact id does not match; nothing was deleted")
    return admin.delete_buyer(memory, contact_id, expected_revision=expected_revision,
                              actor=ACTOR)


def reset_buyer_ttl(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                    contact_id: str, expected_revision: int | None) -> bool:
    _require_writable(settings)
    return admin.reset_ttl(memory, contact_id, expected_revision=expected_revision)


def _require_seeding(settings: DashboardSettings) -> None:
    _require_writable(settings)
    if not settings.can_seed:
        raise ActionRefused("seeding is only allowed on the demo store, or where "
                            "allow_seeding is set (MEMORY_DASHBOARD_ALLOW_SEEDING=1), so "
                            "production is never filled with test data by accident")


def seed_buyers(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                options: SeedOptions,
                progress: Callable[[int, int], None] | None = None) -> SeedWrite:
    """Generate and write QA buyers; ids that hold real buyers are left alone."""
    _require_seeding(settings)
    options.validate()
    items = (buyer.as_save_item() for buyer in generate_buyers(options))
    return admin.seed_generated(memory, items, options.count, progress)


def seed_file(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
              content: bytes, file_name: str) -> SeedWrite:
    """Seed the states of an uploaded JSON/YAML file; a bad file writes nothing.

    A file naming a real buyer's contact id is refused whole: the dashboard offers no
    way to overwrite real buyers (the CLI's --overwrite-real does, logged).
    """
    _require_seeding(settings)
    return admin.seed_scenarios(memory, admin.parse_scenarios(content, file_name), actor=ACTOR)


def remove_qa_seeds(settings: DashboardSettings, memory: SyncBuyerConversationMemory,
                    contact_ids: list[str], confirmed: bool) -> int:
    """Delete the QA-seeded buyers listed (and only QA seeds); needs explicit confirmation."""
    _require_writable(settings)
    if not confirmed:
        raise ActionRefused("tick the confirmation first; nothing was deleted")
    return admin.clear_qa_seeds(memory, contact_ids, actor=ACTOR)
