"""Serialise ``update_state`` calls on one buyer within this process.

Revisions make concurrent writers safe, but not fair: when several writers hammer one
buyer, the one that lost a conflict re-reads while the others keep winning, and it can
lose every retry. Most concurrency on one buyer comes from inside one bot process (two
messages handled by two asyncio tasks or threads), so updates of one buyer wait for
each other here and never conflict; the revision check and retries remain for writers
in other processes. Locks are per buyer key, created on demand and dropped when unused,
and re-entrant for the task or thread that holds them (an update function that updates
the same buyer again must not deadlock).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager


class ThreadKeyLocks:
    """Per-key re-entrant locks for threads."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.RLock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key) or (threading.RLock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class TaskKeyLocks:
    """Per-key locks for asyncio tasks, re-entrant for the task that holds one.

    Keyed by event loop too: an asyncio lock belongs to the loop that first waits on it.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[int, str], _TaskLock] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        slot = (id(asyncio.get_running_loop()), key)
        entry = self._locks.get(slot)
        if entry is None:
            entry = self._locks[slot] = _TaskLock()
        task = asyncio.current_task()
        if entry.owner is task and task is not None:
            yield  # the holder updates the same buyer again: already serialised
            return
        entry.users += 1
        try:
            async with entry.lock:
                entry.owner = task
                try:
                    yield
                finally:
                    entry.owner = None
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[slot]

    def __len__(self) -> int:
        return len(self._locks)


class _TaskLock:
    __slots__ = ("lock", "owner", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.owner: asyncio.Task[object] | None = None
        self.users = 0


#: One registry per process for each kind: every memory object in the process shares it.
thread_locks = ThreadKeyLocks()
task_locks = TaskKeyLocks()
