"""Request outcomes per deployment and version, summed over every replica in serving's store.

The rollout controller's operations check compares the challenger's error rate,
fallback rate and p99 latency with the champion's. Prometheus counters are per
process, and with N replicas the controller runs in one of them: the numbers it
decides on must be every replica's. So the data plane also counts each request
in a :class:`RouteStatsRecorder` - in memory, on the event loop, no lock and no
I/O on the request path - by the version its route sent it to:

* ``requests``: every request routed to the version (bad input the model
  rejected is the caller's error and is not counted);
* ``errors``: the version failed (raised, timed out, circuit open) and no
  fallback answered: the caller got an error;
* ``fallbacks``: the version failed and a fallback answered;
* ``lat:<b>``: the version answered itself, in ``b``'s latency bucket
  (``rollout.latency_bucket``: 16 buckets per doubling, so a quantile read from
  them is within 4.4 % of the exact one). The latency is serving's whole
  request (features, routing, the model), the same for both sides.

Every ``flush_seconds`` the recorder adds its counts, per minute of the
request's time, to ``serving_route_stats`` with an upsert that adds
(``DeploymentStore.add_route_stats``): replicas add concurrently and never
overwrite one another. A flush that fails keeps its counts for the next one; a
process killed loses at most the counts of its last ``flush_seconds``. Rows
older than :data:`RETENTION_SECONDS` are deleted once an hour.

No grpc here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from typing import Any

from modelplane.serving.rollout import RouteStats, latency_bucket

log = logging.getLogger("modelplane.serving.route_stats")

#: a minute: about 35 rows (requests, errors, fallbacks, ~30 latency buckets) per version
#: and minute at steady traffic, so a week is ~350k rows per deployment version
BUCKET_SECONDS = 60
RETENTION_SECONDS = 7 * 24 * 3600
PRUNE_EVERY_SECONDS = 3600.0

OK = "ok"
ERROR = "error"
FALLBACK = "fallback"

Key = tuple[str, str, int, str]


class RouteStatsRecorder:
    def __init__(self, clock: Any = time.time) -> None:
        self._pending: defaultdict[Key, int] = defaultdict(int)
        self._clock = clock
        self._last_prune = 0.0

    def record(self, deployment: str, version: str, outcome: str,
               latency_seconds: float = 0.0) -> None:
        """Count one request routed to ``version`` of ``deployment``."""
        now = self._clock()
        start = int(now // BUCKET_SECONDS * BUCKET_SECONDS)
        p = self._pending
        p[(deployment, version, start, "requests")] += 1
        if outcome == ERROR:
            p[(deployment, version, start, "errors")] += 1
        elif outcome == FALLBACK:
            p[(deployment, version, start, "fallbacks")] += 1
        else:
            b = latency_bucket(latency_seconds * 1e6)
            p[(deployment, version, start, f"lat:{b}")] += 1

    def take(self) -> dict[Key, int]:
        pending, self._pending = dict(self._pending), defaultdict(int)
        return pending

    def give_back(self, pending: dict[Key, int]) -> None:
        for key, n in pending.items():
            self._pending[key] += n

    async def flush(self, store: Any) -> None:
        pending = self.take()
        if not pending:
            return
        try:
            await asyncio.to_thread(store.add_route_stats,
                                    [(*key, n) for key, n in pending.items()])
        except Exception:
            self.give_back(pending)
            raise
        now = self._clock()
        if now - self._last_prune >= PRUNE_EVERY_SECONDS:
            self._last_prune = now
            await asyncio.to_thread(store.prune_route_stats, now - RETENTION_SECONDS)

    async def run(self, store: Any, flush_seconds: float) -> None:
        """Flush every ``flush_seconds`` until cancelled; then once more."""
        try:
            while True:
                await asyncio.sleep(flush_seconds)
                try:
                    await self.flush(store)
                except Exception:  # kept for the next flush
                    log.warning("could not add request outcomes to the store; next flush",
                                exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                await self.flush(store)


def route_stats_from_counts(counts: dict[str, int]) -> RouteStats:
    """A version's :class:`RouteStats` from ``DeploymentStore.route_stats``."""
    latency = tuple(sorted((int(kind[4:]), n) for kind, n in counts.items()
                           if kind.startswith("lat:")))
    return RouteStats(counts.get("requests", 0), counts.get("errors", 0),
                      counts.get("fallbacks", 0), latency)
