"""Weighted route choice: random per request, or sticky by a request key."""

from __future__ import annotations

import bisect
import hashlib
import random

from modelplane.serving.deployment import Route


class TrafficRouter:
    """Picks a route in proportion to its weight.

    With a sticky key the choice is a hash of (deployment, key) mapped onto the
    cumulative weights, so the same caller keeps the same route while the split
    stays the same, and only the callers in a moved slice change routes when it
    changes.
    """

    def __init__(self, deployment: str, routes: tuple[Route, ...],
                 rng: random.Random | None = None) -> None:
        self.routes = routes
        self._salt = deployment.encode()
        total = sum(r.weight for r in routes)
        acc = 0.0
        self._cumulative: list[float] = []
        for r in routes:
            acc += r.weight / total
            self._cumulative.append(acc)
        self._cumulative[-1] = 1.0
        self._random = (rng or random.Random()).random

    def _index(self, point: float) -> int:
        i = bisect.bisect_right(self._cumulative, point)
        while i < len(self.routes) - 1 and self.routes[i].weight <= 0:
            i += 1
        return min(i, len(self.routes) - 1)

    def choose(self, sticky_value: str | None = None) -> int:
        if len(self.routes) == 1:
            return 0
        if sticky_value:
            digest = hashlib.blake2b(sticky_value.encode(), digest_size=8, key=self._salt[:64])
            point = int.from_bytes(digest.digest(), "big") / 2**64
        else:
            point = self._random()
        return self._index(point)
