"""A circuit breaker so a dead or hung Redis costs the bot microseconds, not a timeout per call.

Two ways to fail, two rules:

- A call that *timed out* already cost a full ``socket_timeout_seconds``; a Redis that
  accepts connections and never answers would cost that on every call. One timeout opens
  the breaker at once, so a hung Redis costs the bot about one socket timeout in total.
- A refused or reset connection fails in microseconds, and one can be a blip (a failover,
  a restart); ``failure_threshold`` consecutive ones open the breaker.

While the breaker is open every call skips Redis at once. Recovery is automatic and never
costs a caller a timeout: the memory runs one probe in the background (a ``PING`` every
``failure_cooldown_seconds``), and the probe's first answer closes the breaker.
"""

from __future__ import annotations

import threading
import time


class CircuitBreaker:
    def __init__(self, failure_threshold: int) -> None:
        self._threshold = failure_threshold
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()  # the sync memory is shared by threads (dashboard)

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """Whether a call may go to Redis now: only while the breaker is closed."""
        return self._opened_at is None

    def claim_probe(self) -> bool:
        """True for the one caller that should start the background probe (none is running)."""
        with self._lock:
            if self._opened_at is None or self._probing:
                return False
            self._probing = True
            return True

    def probe_finished(self) -> None:
        with self._lock:
            self._probing = False

    def record_success(self) -> bool:
        """Redis answered; True when this closed an open breaker."""
        self._failures = 0
        if self._opened_at is None:
            return False
        with self._lock:
            was_open = self._opened_at is not None
            self._opened_at = None
        return was_open

    def record_failure(self, *, timed_out: bool) -> bool:
        """Count a connection failure; True when this failure opened the breaker."""
        self._failures += 1
        if self._opened_at is not None:
            return False
        if timed_out or self._failures >= self._threshold:
            with self._lock:
                if self._opened_at is None:
                    self._opened_at = time.monotonic()
                    return True
        return False
