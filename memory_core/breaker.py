"""A circuit breaker so a dead Redis costs the bot microseconds, not a timeout per call.

After ``failure_threshold`` consecutive connection failures the breaker opens and calls
skip Redis for ``cooldown_seconds``; then one call is let through as a probe, and a
success closes the breaker again. Recovery is automatic.
"""

from __future__ import annotations

import time


class CircuitBreaker:
    def __init__(self, failure_threshold: int, cooldown_seconds: float) -> None:
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """Whether a call may go to Redis now (closed, or open and due for a probe)."""
        if self._opened_at is None:
            return True
        if time.monotonic() - self._opened_at >= self._cooldown:
            self._opened_at = time.monotonic()  # one probe per cooldown period
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> bool:
        """Count a connection failure; True when this failure opened the breaker."""
        self._failures += 1
        if self._failures >= self._threshold and self._opened_at is None:
            self._opened_at = time.monotonic()
            return True
        if self._opened_at is not None:
            self._opened_at = time.monotonic()
        return False
