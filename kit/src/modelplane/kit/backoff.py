"""Exponential backoff with jitter and a cap: one rule for every retry loop.

    delay(n) = uniform(d/2, d),  d = min(cap, initial * 2 ** (n - 1))

for the n-th consecutive failure ("equal jitter": never less than half the
step, so a retry storm spreads out without hammering a dependency that just
came back at once from every replica). No grpc, no clock: callers sleep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Counts consecutive failures and says how long to wait before the next try."""

    initial: float = 1.0
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random, repr=False)
    failures: int = 0

    def step(self, failures: int | None = None) -> float:
        """The un-jittered step for the ``failures``-th failure (default: the current one)."""
        n = self.failures if failures is None else failures
        if n <= 0:
            return 0.0
        return min(self.cap, self.initial * 2.0 ** min(n - 1, 62))

    def delay(self, failures: int) -> float:
        """The jittered delay after the ``failures``-th consecutive failure (no state
        kept: for callers that count attempts themselves, e.g. in a database row)."""
        step = self.step(failures)
        return self.rng.uniform(step / 2, step)

    def failed(self) -> float:
        """Record one more failure; the jittered delay before the next attempt."""
        self.failures += 1
        return self.delay(self.failures)

    def reset(self) -> None:
        """It worked: the next failure starts again at ``initial``."""
        self.failures = 0
