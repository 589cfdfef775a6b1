"""A per-model circuit breaker: open on a high error rate over a sliding window."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from modelplane.serving.deployment import CircuitBreakerSettings


class CircuitBreaker:
    """Closed → open when errors / calls in the window reach the threshold (with at
    least ``minimum_requests`` calls); after ``open_seconds`` one trial call is let
    through (half-open): success closes it, failure opens it again."""

    def __init__(self, settings: CircuitBreakerSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._calls: deque[tuple[float, bool]] = deque()
        self._errors = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    def _trim(self, now: float) -> None:
        horizon = now - self.settings.window_seconds
        while self._calls and self._calls[0][0] < horizon:
            _, ok = self._calls.popleft()
            if not ok:
                self._errors -= 1

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """May a call go to the model now?"""
        if self._opened_at is None:
            return True
        if self._clock() - self._opened_at >= self.settings.open_seconds \
                and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record(self, ok: bool) -> None:
        now = self._clock()
        if self._opened_at is not None:
            if self._trial_in_flight:
                self._trial_in_flight = False
                if ok:
                    self._opened_at = None
                    self._calls.clear()
                    self._errors = 0
                else:
                    self._opened_at = now
            return
        self._calls.append((now, ok))
        if not ok:
            self._errors += 1
        self._trim(now)
        n = len(self._calls)
        if n >= self.settings.minimum_requests and \
                self._errors / n >= self.settings.error_rate_threshold:
            self._opened_at = now
