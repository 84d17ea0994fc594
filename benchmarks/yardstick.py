"""The design this project replaces, kept only as a measuring stick for the benchmarks.

State as JSON; gzip when over 5120 bytes; the gzip bytes hex-encoded; the
``{"compressed", "data"}`` dict pickled; ``SET key value EX ttl``. Loading reverses it.
Never use this outside benchmarks: it unpickles what it reads.
"""

from __future__ import annotations

import gzip
import json
import pickle
from typing import Any

import redis

THRESHOLD_BYTES = 5120
TTL_SECONDS = 30 * 86_400
PREFIX = "buyer_conversation_memory"


def encode(state: dict[str, Any]) -> bytes:
    text = json.dumps(state)
    if len(text) > THRESHOLD_BYTES:
        envelope = {"compressed": True, "data": gzip.compress(text.encode()).hex()}
    else:
        envelope = {"compressed": False, "data": text}
    return pickle.dumps(envelope)


def decode(raw: bytes) -> dict[str, Any]:
    envelope = pickle.loads(raw)
    data = envelope["data"]
    if envelope["compressed"]:
        data = gzip.decompress(bytes.fromhex(data)).decode()
    return json.loads(data)


def save_state(client: redis.Redis, contact_id: str, state: dict[str, Any]) -> bool:
    client.set(f"{PREFIX}:{contact_id}", encode(state), ex=TTL_SECONDS)
    return True


def load_state(client: redis.Redis, contact_id: str) -> dict[str, Any] | None:
    raw = client.get(f"{PREFIX}:{contact_id}")
    return None if raw is None else decode(raw)


async def save_state_async(client: Any, contact_id: str, state: dict[str, Any]) -> bool:
    await client.set(f"{PREFIX}:{contact_id}", encode(state), ex=TTL_SECONDS)
    return True


async def load_state_async(client: Any, contact_id: str) -> dict[str, Any] | None:
    raw = await client.get(f"{PREFIX}:{contact_id}")
    return None if raw is None else decode(raw)


def overview(client: redis.Redis, batch: int = 1000) -> dict[str, int]:
    """What the old design needs for an overview: fetch and decode every record."""
    counts: dict[str, int] = {}
    for keys in _batches(client.scan_iter(match=f"{PREFIX}:*", count=batch), batch):
        for raw in client.mget(keys):
            if raw is None:
                continue
            state = decode(raw)
            temperature = str(state.get("buyer_temperature"))
            counts[temperature] = counts.get(temperature, 0) + 1
    return counts


def _batches(keys: Any, size: int) -> Any:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
