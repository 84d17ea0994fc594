"""Buyer conversation memory: one state per buyer in Redis, for the buyer bot.

The bot imports :class:`BuyerConversationMemory` (asyncio); the CLI and the dashboard use
:class:`SyncBuyerConversationMemory`. Both share all logic and never raise on runtime
faults: a missing, expired or unreadable state is simply "no saved state".
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from memory_core.config import MemoryConfig, load_config
from memory_core.errors import (
    ConfigError,
    ConnectionURLError,
    CorruptRecord,
    InvalidContactId,
    InvalidState,
    MemoryCoreError,
    MissingDictionary,
    RevisionConflict,
    StoreUnavailable,
)
from memory_core.state import STATE_VERSION
from memory_core.store import (
    REVISION_FIELD,
    BuyerConversationMemory,
    SeedWrite,
    StoredRecord,
    SyncBuyerConversationMemory,
    get_buyer_conversation_memory,
    reset_buyer_conversation_memory,
)

try:
    __version__ = version("memory-core")
except PackageNotFoundError:  # imported from a checkout that was never pip-installed
    __version__ = "0+unknown"

__all__ = [
    "REVISION_FIELD",
    "STATE_VERSION",
    "BuyerConversationMemory",
    "ConfigError",
    "ConnectionURLError",
    "CorruptRecord",
    "InvalidContactId",
    "InvalidState",
    "MemoryConfig",
    "MemoryCoreError",
    "MissingDictionary",
    "RevisionConflict",
    "SeedWrite",
    "StoreUnavailable",
    "StoredRecord",
    "SyncBuyerConversationMemory",
    "get_buyer_conversation_memory",
    "load_config",
    "reset_buyer_conversation_memory",
]
