"""Retention (issue #15 item 5) on real DuckDB and PostgreSQL: old records and
their actuals deleted (PostgreSQL: whole monthly partitions dropped), recent ones
kept, profiles kept longer, finished webhook deliveries deleted and pending ones
kept, only by the lease holder; analyses of windows past the record cutoff
answered from profiles or refused naming the setting."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from obs_test_data import store_fixture

from modelplane.kit.errors import FailedPrecondition
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.evaluations import Evaluations, Reference
from modelplane.observability.ingest import RecordIngestor
from modelplane.observability.monitors import MonitorLease
from modelplane.observability.records import (
    Actual,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    EvaluationRecord,
    TimeWindow,
)
from modelplane.observability.retention import (
    RECORD_RETENTION_SETTING,
    Retention,
    RetentionSettings,
)
from modelplane.observability.store.base import (
    DeliveryState,
    EvaluationStore,
    NewDelivery,
    ScanSpec,
)
from modelplane.observability.store.embedded import EmbeddedStore
from modelplane.observability.store.postgres import PostgresStore

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DAY = timedelta(days=1)


def _month(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


# Times relative to now: two whole months before the record cutoff (dropped on both
# stores), and days inside it (kept on both).
OLD = _month(_month(NOW - 30 * DAY) - DAY) - 20 * DAY  # in a month that ended > 30 days ago
OLDER = _month(OLD) - 10 * DAY                         # the month before that
RECENT = NOW - 3 * DAY


def _records(prefix: str, at: datetime, n: int, seed: int) -> list[EvaluationRecord]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    out = []
    for i in range(n):
        out.append(EvaluationRecord(
            prediction_id=f"{prefix}-{i}", model="fraud", version="1",
            environment=Environment.PRODUCTION,
            prediction_time=at + timedelta(seconds=int(rng.integers(0, 3 * 3600))),
            features={"x": float(x[i]), "city": ["a", "b", "c"][i % 3]},
            prediction=int(x[i] > 0)))
    return out


store = store_fixture("mp_obs_retention")


def _fill(store: EvaluationStore) -> Evaluations:
    catalogs = store.load_catalogs()
    lock = threading.Lock()
    ingestor = RecordIngestor(store, catalogs, lock)
    for prefix, at in (("older", OLDER), ("old", OLD), ("recent", RECENT)):
        ingestor.write_records(_records(prefix, at, 300, len(prefix)))
        ingestor.write_actuals([Actual(f"{prefix}-{i}", i % 2) for i in range(0, 300, 3)])
    return Evaluations(store, catalogs, lock, clock=lambda: NOW, record_retention_days=30)


def _ids(store: EvaluationStore, start: datetime, end: datetime) -> int:
    return store.scan(ScanSpec("fraud", window=TimeWindow(start, end))).count(b"\n")


def _profiled(store: EvaluationStore, start: datetime, end: datetime) -> int:
    return store.profile_count(ScanSpec("fraud", window=TimeWindow(start, end)))[0]


def test_old_records_go_recent_stay_profiles_stay_longer(
        store: EvaluationStore, caplog: pytest.LogCaptureFixture) -> None:
    _fill(store)
    day = timedelta(days=1)
    assert _ids(store, OLDER - day, OLDER + day) == 300
    retention = Retention(store, RetentionSettings(record_days=30,
                                                   profile_days=(NOW - OLD).days + 2),
                          clock=lambda: NOW)
    with caplog.at_level(logging.INFO, "modelplane.observability.retention"):
        result = retention.enforce_once()
    assert (result.records, result.actuals) == (600, 200)
    if isinstance(store, PostgresStore):
        # whole months dropped; the ids and actuals of their records deleted
        assert result.partitions == [f"obs_records_{OLDER:%Y%m}", f"obs_records_{OLD:%Y%m}"]
        assert store.model_of("old-0") is None and store.model_of("recent-0") == "fraud"
    else:
        assert result.partitions == []
    assert _ids(store, OLDER - day, OLD + day) == 0
    assert _ids(store, RECENT - day, NOW) == 300
    recent = store.scan(ScanSpec("fraud", window=TimeWindow(RECENT - day, NOW), has_actual=True))
    assert recent.count(b"\n") == 100  # actuals of kept records kept
    # profiles: the older month's gone (past profile retention), the old month's kept
    assert result.profiles > 0
    assert _profiled(store, OLDER - day, OLDER + day) == 0
    assert _profiled(store, OLD - day, OLD + day) == 300
    assert _profiled(store, RECENT - day, NOW) == 300
    assert "retention deleted 600 records" in caplog.text
    # a second pass finds nothing
    again = retention.enforce_once()
    assert not again and retention.totals.records == 600 and retention.passes == 2


def test_finished_deliveries_go_pending_stay(store: EvaluationStore) -> None:
    for i in range(3):  # a0 delivered, a1 failed, a2 pending
        alert = {"id": f"a{i}", "monitor_id": f"m{i}", "model": "fraud", "state": 1}
        store.insert_alert(alert, NOW, NewDelivery("https://example.com/h", "firing",
                                                   f"a{i}", alert))
    for d in store.claim_deliveries(10, 0.0):
        if d.alert_id != "a2":
            store.finish_delivery(d.id, DeliveryState.DELIVERED if d.alert_id == "a0"
                                  else DeliveryState.FAILED, "x")
    keep = Retention(store, RetentionSettings(0, 0, 14), clock=lambda: datetime.now(UTC))
    assert keep.enforce_once().deliveries == 0
    later = Retention(store, RetentionSettings(0, 0, 1),
                      clock=lambda: datetime.now(UTC) + 2 * DAY)
    assert later.enforce_once().deliveries == 2
    assert [d.alert_id for d in store.list_deliveries()] == ["a2"]  # pending: kept


def test_past_the_record_cutoff_profiles_answer_or_the_call_says_the_rows_are_gone(
        store: EvaluationStore) -> None:
    ev = _fill(store)
    Retention(store, RetentionSettings(30, 0, 0), clock=lambda: NOW).enforce_once()
    old = EvaluationFilter("fraud", ("1",), Environment.PRODUCTION,
                           window=TimeWindow(OLD - DAY, OLD + DAY))
    recent = EvaluationFilter("fraud", ("1",), Environment.PRODUCTION,
                              window=TimeWindow(RECENT - DAY, NOW))
    ref = Reference(filter=old)
    # automatic: 300 records a side (far under EXACT_ROWS), yet the profiles answer
    report = ev.drift(recent, ref)
    assert report.mode is AnalysisMode.PROFILE and report.reference_count == 300
    perf = ev.performance(old, [M.Metric.ACCURACY])
    assert perf.mode is AnalysisMode.PROFILE and perf.overall.record_count == 300
    with pytest.raises(FailedPrecondition) as err:
        ev.drift(recent, ref, mode=AnalysisMode.EXACT)
    assert err.value.reason == "RECORDS_EXPIRED"
    assert err.value.metadata["setting"] == RECORD_RETENTION_SETTING
    assert RECORD_RETENTION_SETTING in str(err.value)
    with pytest.raises(FailedPrecondition, match=RECORD_RETENTION_SETTING):
        ev.performance(old, [M.Metric.ACCURACY], mode=AnalysisMode.EXACT)
    # what profiles cannot answer (a numeric slice), automatic: refused the same way
    with pytest.raises(FailedPrecondition, match=RECORD_RETENTION_SETTING):
        ev.performance(old, [M.Metric.ACCURACY],
                       slice_by=[ColumnRef(ColumnSource.FEATURE, "x")])
    # the recent window is read exactly as before
    assert ev.performance(recent, [M.Metric.ACCURACY]).mode is AnalysisMode.EXACT


async def test_only_the_lease_holder_deletes(
        make_postgres_database: Callable[[str], str]) -> None:
    url = make_postgres_database("mp_obs_retention_lease")
    a, b = PostgresStore(url), PostgresStore(url)
    a.open()
    b.open()
    tasks: list[asyncio.Task[None]] = []
    try:
        _fill(b)  # b caches the months' partitions
        lease_a, lease_b = MonitorLease(a, 30, "replica-a"), MonitorLease(b, 30, "replica-b")
        tasks.append(asyncio.create_task(lease_a.run()))
        # Generous bounds (a 30 s lease, 30 s waits that end as soon as the thing
        # happens): a busy machine must not let a's lease lapse to b mid-test.
        for _ in range(600):
            if lease_a.held():
                break
            await asyncio.sleep(0.05)
        assert lease_a.held()
        tasks.append(asyncio.create_task(lease_b.run()))
        settings = RetentionSettings(30, 0, 0, interval_seconds=0.1)
        standby = Retention(b, settings, clock=lambda: NOW)
        tasks.append(asyncio.create_task(standby.run(lease_b)))
        await asyncio.sleep(1.0)
        assert not lease_b.held() and standby.passes == 0
        assert _ids(a, OLDER - DAY, OLD + DAY) == 600  # nothing deleted
        holder = Retention(a, settings, clock=lambda: NOW)
        tasks.append(asyncio.create_task(holder.run(lease_a)))
        for _ in range(600):
            if holder.passes:
                break
            await asyncio.sleep(0.05)
        assert holder.passes >= 1 and holder.totals.records == 600
        assert len(holder.totals.partitions) == 2 and standby.passes == 0
        assert _ids(b, OLDER - DAY, OLD + DAY) == 0
        # b still had the dropped month cached: a late record of it is stored anyway
        late = RecordIngestor(b, b.load_catalogs(), threading.Lock())
        assert late.write_records(_records("late", OLD, 5, 7)).accepted == 5
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        a.close()
        b.close()


async def test_the_runtime_enforces_retention_at_start_and_counts_it(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY, generate_latest

    from modelplane.kit.settings import ServiceSettings
    from modelplane.observability.runtime import ObservabilityRuntime
    from modelplane.observability.settings import ObservabilitySettings

    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp_path), "MODELPLANE_AUTH": "off",
        "MODELPLANE_OBSERVABILITY_RECORD_RETENTION_DAYS": "30",
        "MODELPLANE_OBSERVABILITY_PROFILE_RETENTION_DAYS": "0"})
    settings = ObservabilitySettings.from_service(svc)
    assert (settings.retention.record_days, settings.retention.profile_days,
            settings.retention.delivery_days) == (30, 0, 14)
    settings = ObservabilitySettings(svc, http_addr=None, monitor_tick_seconds=0,
                                     explain_models=False, retention=settings.retention)
    seeded = EmbeddedStore(settings.embedded_path)
    seeded.open()
    _fill(seeded)
    seeded.close()
    rt = ObservabilityRuntime(settings)
    await rt.start()
    try:
        for _ in range(100):
            if rt.retention.passes:
                break
            await asyncio.sleep(0.05)
        assert rt.retention.totals.records == 600  # OLDER and OLD; RECENT kept
        text = generate_latest(REGISTRY).decode()
        assert 'modelplane_observability_retention_deleted_total{kind="records"} 600.0' in text
    finally:
        await rt.stop()
