"""Retention (issue #15): raw records are kept for days, profiles for longer.

Three settings (``ObservabilitySettings``), each in days, ``0`` = kept forever:

- ``MODELPLANE_OBSERVABILITY_RECORD_RETENTION_DAYS`` (default 30): records, their
  ids and their actuals. PostgreSQL drops whole monthly partitions of
  ``obs_records`` once all of the month is older than the cutoff (so a record is
  kept between N days and N days + one month), then deletes the dropped months'
  ids and actuals in batches; DuckDB deletes records and actuals in batches.
- ``MODELPLANE_OBSERVABILITY_PROFILE_RETENTION_DAYS`` (default 400): the per-hour
  profiles and confusion counts (and profile gaps).
- ``MODELPLANE_OBSERVABILITY_DELIVERY_RETENTION_DAYS`` (default 14): webhook
  deliveries that are finished (delivered, failed, refused) — pending ones never.

Only the holder of the store's lease (the monitor scheduler's :class:`MonitorLease`)
enforces them: once when it gains the lease, then every
``MODELPLANE_OBSERVABILITY_RETENTION_INTERVAL_SECONDS`` (default 3600). What a
pass deleted is logged (INFO) and counted (``modelplane_observability_retention_deleted``).

Reading past the record cutoff: an analysis whose window starts before it answers
from the profiles in automatic mode when they can answer; an EXACT read of such a
window (or an automatic one the profiles cannot answer) is refused with
``FAILED_PRECONDITION`` (reason ``RECORDS_EXPIRED``) naming the setting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelplane.kit.errors import FailedPrecondition
from modelplane.kit.lease import Lease
from modelplane.observability.records import TimeWindow, utcnow
from modelplane.observability.store.base import (
    EvaluationStore,
    RetentionCutoffs,
    RetentionResult,
)

log = logging.getLogger("modelplane.observability.retention")

RECORD_RETENTION_SETTING = "MODELPLANE_OBSERVABILITY_RECORD_RETENTION_DAYS"
PROFILE_RETENTION_SETTING = "MODELPLANE_OBSERVABILITY_PROFILE_RETENTION_DAYS"
DELIVERY_RETENTION_SETTING = "MODELPLANE_OBSERVABILITY_DELIVERY_RETENTION_DAYS"
DEFAULT_RECORD_RETENTION_DAYS = 30
DEFAULT_PROFILE_RETENTION_DAYS = 400
DEFAULT_DELIVERY_RETENTION_DAYS = 14
DEFAULT_RETENTION_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True)
class RetentionSettings:
    record_days: int = DEFAULT_RECORD_RETENTION_DAYS
    profile_days: int = DEFAULT_PROFILE_RETENTION_DAYS
    delivery_days: int = DEFAULT_DELIVERY_RETENTION_DAYS
    interval_seconds: float = DEFAULT_RETENTION_INTERVAL_SECONDS
    batch_rows: int = 10_000

    def cutoffs(self, now: datetime) -> RetentionCutoffs:
        def cut(days: int) -> datetime | None:
            return now - timedelta(days=days) if days > 0 else None

        return RetentionCutoffs(cut(self.record_days), cut(self.profile_days),
                                cut(self.delivery_days), self.batch_rows)


def record_cutoff(days: int, now: datetime) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def window_expired(window: TimeWindow, days: int, now: datetime) -> bool:
    """Whether records of ``window`` may have been deleted (it starts before the cutoff)."""
    cutoff = record_cutoff(days, now)
    return cutoff is not None and window.start is not None and window.start < cutoff


def records_expired(window: TimeWindow, days: int, now: datetime, path: str) -> FailedPrecondition:
    cutoff = record_cutoff(days, now)
    return FailedPrecondition(
        f"{path}: the window starts at {window.start:%Y-%m-%d %H:%M} UTC, before the records "
        f"kept ({RECORD_RETENTION_SETTING}={days} days: from {cutoff:%Y-%m-%d %H:%M} UTC); "
        "the raw records of that time are deleted. Profiles answer drift, classification "
        "performance and categorical root cause of such windows (mode unset or PROFILE)",
        reason="RECORDS_EXPIRED",
        metadata={"setting": RECORD_RETENTION_SETTING, "retention_days": str(days),
                  "cutoff": f"{cutoff:%Y-%m-%dT%H:%M:%SZ}"})


@dataclass
class Retention:
    """Enforces the retention settings on the store while this replica holds ``lease``."""

    store: EvaluationStore
    settings: RetentionSettings
    clock: Callable[[], datetime] = utcnow
    #: what this replica deleted so far (the metrics' counters)
    totals: RetentionResult = field(default_factory=RetentionResult)
    passes: int = 0

    def enforce_once(self) -> RetentionResult:
        cutoffs = self.settings.cutoffs(self.clock())
        started = time.monotonic()
        result = self.store.enforce_retention(cutoffs)
        self.passes += 1
        self.totals.add(result)
        if result:
            log.info("retention deleted %d records (partitions dropped: %s), %d actuals, "
                     "%d profiles, %d confusion counts, %d profile gaps, %d webhook deliveries "
                     "in %.1f s (cutoffs: records %s, profiles %s, deliveries %s)",
                     result.records, ", ".join(result.partitions) or "none", result.actuals,
                     result.profiles, result.confusion, result.profile_gaps, result.deliveries,
                     time.monotonic() - started, cutoffs.records, cutoffs.profiles,
                     cutoffs.deliveries)
        return result

    async def run(self, lease: Lease) -> None:
        """Once when the lease is gained, then every interval while it is held."""
        last: float | None = None
        while True:
            if lease.held() and (last is None
                                 or time.monotonic() - last >= self.settings.interval_seconds):
                try:
                    await asyncio.to_thread(self.enforce_once)
                except Exception as exc:  # noqa: BLE001 - try again next interval
                    log.warning("retention pass failed: %s", exc)
                last = time.monotonic()
            elif not lease.held():
                last = None  # gained again later: a pass at once
            await lease.wait_gained(min(self.settings.interval_seconds, 60.0))


__all__ = [
    "DELIVERY_RETENTION_SETTING",
    "PROFILE_RETENTION_SETTING",
    "RECORD_RETENTION_SETTING",
    "Retention",
    "RetentionSettings",
    "records_expired",
    "window_expired",
]
