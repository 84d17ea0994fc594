"""The embedded demo store: a few hundred realistic buyers so the dashboard is useful at once.

Most demo buyers look like real ones (no QA tag); a tenth are QA seeds; most are
compressed with a zstd dictionary trained on the set, as in production; a few keys have no
TTL, and a handful are broken on purpose (garbage bytes, a truncated record, a hash at a
buyer key, a legacy pickle) so every panel of the dashboard has something true to show.
"""

from __future__ import annotations

import gzip
import logging
import pickle
from datetime import datetime

import orjson

from memory_core.admin import store_dictionary
from memory_core.dictionaries import train_dictionary, training_sample
from memory_core.seeding import SeedOptions, generate_buyers
from memory_core.state import QA_SEED_FIELD
from memory_core.store import SyncBuyerConversationMemory

logger = logging.getLogger(__name__)
DEMO_URL = "memory://demo"
DEMO_BUYERS = 300
_READY_MARKER = "demo.seeded"


def seed_demo_store(memory: SyncBuyerConversationMemory, count: int = DEMO_BUYERS,
                    now: datetime | None = None) -> bool:
    """Fill an empty demo store once; False when it was already seeded."""
    marker = f"{memory.prefix}.{_READY_MARKER}"
    if not memory.client.set(marker, b"1", nx=True):
        return False
    options = SeedOptions(count=count, seed=2026, id_prefix="demo-", ttl_days_range=(1, 60))
    items = []
    for index, buyer in enumerate(generate_buyers(options, now=now)):
        contact_id, state, ttl, when = buyer.as_save_item()
        if index % 10:
            state = {k: v for k, v in state.items() if k != QA_SEED_FIELD}
            contact_id = contact_id.replace("demo-", "contact-", 1)
        items.append((contact_id, state, ttl, when))
    # The first tenth is written before a dictionary exists, like records from before
    # `train-dictionary` ran; the rest is compressed with one trained on the whole set.
    memory.save_many(items[:len(items) // 10])
    pack = memory.config.packs_payloads
    store_dictionary(memory, train_dictionary([training_sample(s, pack=pack)
                                               for _, s, _, _ in items]))
    memory.save_many(items[len(items) // 10:])
    for contact_id, *_ in items[1:4]:
        memory.client.persist(memory.key_for(contact_id))
    _write_problem_keys(memory)
    logger.info("demo store seeded with %d buyers", len(items))
    return True


def _write_problem_keys(memory: SyncBuyerConversationMemory) -> None:
    legacy_state = {"buyer_temperature": "warm", "urgency": "3-6 months",
                    "conversation_history": [{"role": "user", "content": "Still looking."}]}
    legacy = pickle.dumps({"compressed": True,
                           "data": gzip.compress(orjson.dumps(legacy_state), mtime=0).hex()})
    valid = memory.encode_save("demo-truncated", {"buyer_temperature": "hot"})[2]
    memory.client.set(memory.key_for("legacy-0001"), legacy, ex=20 * 86_400)
    memory.client.set(memory.key_for("demo-garbage"), b"\x00\x01not a record", ex=86_400 * 5)
    memory.client.set(memory.key_for("demo-truncated"), valid[:20], ex=86_400 * 5)
    memory.client.hset(memory.key_for("demo-foreign-hash"), mapping={"owner": "another app"})
