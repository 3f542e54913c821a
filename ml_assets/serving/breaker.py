"""A circuit breaker around the model: stop calling a model that keeps failing, retry later.

Closed: calls go through and failures are counted. After `failures` consecutive failures
(errors or timeouts) it opens: callers answer with the rule-based fallback without touching
the model. After `reset_s` one trial call is let through (half-open); its success closes the
breaker, its failure opens it again for another `reset_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class CircuitBreaker:
    """Thread-safe; `on_change(state)` is called on every transition (for the metrics gauge)."""

    def __init__(
        self,
        failures: int,
        reset_s: float,
        on_change: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.reset_s = reset_s
        self._on_change = on_change or (lambda state: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_out = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.reset_s:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """Whether this call may use the model; in half-open only one trial at a time."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if self._clock() - self._opened_at < self.reset_s:
                    return False
                self._set(HALF_OPEN)
            if self._trial_out:
                return False
            self._trial_out = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._trial_out = False
            if self._state != CLOSED:
                self._set(CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            self._trial_out = False
            if self._state == HALF_OPEN or (
                self._state == CLOSED and self._consecutive >= self.failures
            ):
                self._opened_at = self._clock()
                self._set(OPEN)

    def release(self) -> None:
        """Give back a half-open trial that neither succeeded nor failed (no model yet)."""
        with self._lock:
            self._trial_out = False

    def reset(self) -> None:
        """Close the breaker, e.g. when a new model has been swapped in."""
        with self._lock:
            self._consecutive = 0
            self._trial_out = False
            if self._state != CLOSED:
                self._set(CLOSED)

    def _set(self, state: str) -> None:
        self._state = state
        self._on_change(state)
