"""Step 10: delayed actuals into observability, then performance, drift, root cause and a
drift monitor over the live predictions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from modelplane.cli.demo.report import (
    column_name,
    metric,
    print_drift,
    print_performance,
    print_root_causes,
)
from modelplane.cli.demo.session import MODEL, Demo, DemoFailed, call, time_window
from modelplane.cli.demo.traffic import Prediction


async def send_actuals(demo: Demo, predictions: list[Prediction]) -> Any:
    from modelplane.api.v1 import types_pb2
    from modelplane.observability.v1 import observability_pb2 as ob

    async def batches() -> AsyncIterator[Any]:
        for i in range(0, len(predictions), 250):
            yield ob.LogActualsRequest(actuals=[
                ob.Actual(prediction_id=p.prediction_id, value=types_pb2.Value(int64_value=p.label))
                for p in predictions[i:i + 250]])

    return await call("LogActuals", demo.stub("observability").LogActuals(batches()))


async def observed_records(demo: Demo) -> int:
    from modelplane.observability.v1 import observability_pb2 as ob

    models = await call("ListObservedModels", demo.stub("observability").ListObservedModels(
        ob.ListObservedModelsRequest(page_size=1000)))
    m = next((m for m in models.models if m.model == MODEL), None)
    return int(m.record_count) if m else 0


async def wait_records(demo: Demo, before: int, expected: int, progress: Any, task: Any,
                       timeout: float = 120) -> int:
    """Wait until observability holds this run's predictions (serving logs them in batches);
    ``before`` is what it held from earlier runs."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await observed_records(demo) - before
        progress.update(task, completed=min(max(seen, 0), expected))
        if seen >= expected:
            return seen
        if time.monotonic() > deadline:
            raise DemoFailed(f"observability has {seen} of {expected} predictions after "
                             f"{timeout:.0f}s")
        await asyncio.sleep(0.5)


def _filter(versions: list[str] | None = None, start: datetime | None = None,
            end: datetime | None = None) -> Any:
    from modelplane.observability.v1 import observability_pb2 as ob

    f = ob.EvaluationFilter(model=MODEL, environment=ob.ENVIRONMENT_PRODUCTION,
                            versions=versions or [])
    if start or end:
        f.window.CopyFrom(time_window(start, end))
    return f


async def analyse(demo: Demo, t0: datetime, shift_time: datetime, t1: datetime,
                  versions: dict[str, str]) -> dict[str, Any]:
    from modelplane.kit.demo_data import SHIFTED_CITY
    from modelplane.observability.v1 import observability_pb2 as ob

    obs = demo.stub("observability")
    feature = ob.COLUMN_SOURCE_FEATURE
    before, after = _filter(start=t0, end=shift_time), _filter(start=shift_time, end=t1)

    perf = await call("ComputePerformance", obs.ComputePerformance(ob.ComputePerformanceRequest(
        filter=_filter(start=t0, end=t1), metrics=[ob.METRIC_ACCURACY, ob.METRIC_F1],
        positive_class="1", slice_by=[ob.ColumnRef(source=feature, name="city")])))
    print_performance(demo, perf)

    drift = await call("ComputeDrift", obs.ComputeDrift(ob.ComputeDriftRequest(
        current=after, reference=ob.ReferenceData(filter=before))))
    print_drift(demo, drift)
    drifted = [column_name(c.column) for c in drift.columns if c.drifted]

    slice_columns = [ob.ColumnRef(source=feature, name=n)
                     for n in ("city", "merchant_category", "segment", "hour")]
    drift_cause = await call("ComputeRootCause (drift)", obs.ComputeRootCause(
        ob.ComputeRootCauseRequest(
            current=after, reference=ob.ReferenceData(filter=before),
            objective=ob.RootCauseObjective(drift_column=ob.ColumnRef(source=feature,
                                                                      name="amount")),
            columns=slice_columns, max_depth=1, max_slices=5)))
    metric_cause = await call("ComputeRootCause (accuracy)", obs.ComputeRootCause(
        ob.ComputeRootCauseRequest(
            current=after, reference=ob.ReferenceData(filter=before),
            objective=ob.RootCauseObjective(metric=ob.METRIC_ACCURACY), positive_class="1",
            columns=slice_columns, max_depth=1, max_slices=5)))
    top_drift = drift_cause.slices[0].slice.display_name if drift_cause.slices else ""
    top_metric = metric_cause.slices[0].slice.display_name if metric_cause.slices else ""
    named = SHIFTED_CITY in top_drift and SHIFTED_CITY in top_metric
    print_root_causes(demo, drift_cause, metric_cause, SHIFTED_CITY, named)

    by_version = {}
    for alias, version in versions.items():
        p = await call("ComputePerformance", obs.ComputePerformance(ob.ComputePerformanceRequest(
            filter=_filter(versions=[version], start=t0, end=t1),
            metrics=[ob.METRIC_ACCURACY, ob.METRIC_F1], positive_class="1")))
        by_version[alias] = {"version": version, "predictions": int(p.overall.record_count),
                             "labeled": int(p.overall.labeled_count),
                             "accuracy": metric(p.overall, ob.METRIC_ACCURACY),
                             "f1": metric(p.overall, ob.METRIC_F1)}
    return {"overall_accuracy": metric(perf.overall, ob.METRIC_ACCURACY),
            "drifted_columns": drifted,
            "root_cause_drift": [s.slice.display_name for s in drift_cause.slices],
            "root_cause_accuracy": [s.slice.display_name for s in metric_cause.slices],
            "shifted_city": SHIFTED_CITY, "shifted_city_named": named,
            "by_version": by_version}


async def drift_monitor(demo: Demo, version: str) -> str:
    """A drift monitor on amount, evaluated now, so the alert is on the dashboard."""
    from google.protobuf.duration_pb2 import Duration

    from modelplane.observability.v1 import observability_pb2 as ob

    obs = demo.stub("observability")
    window = Duration()
    window.FromTimedelta(timedelta(minutes=2))
    monitor = await call("CreateMonitor", obs.CreateMonitor(ob.CreateMonitorRequest(
        monitor=ob.Monitor(
            display_name=f"amount drift (PSI) of v{version} vs its validation baseline",
            filter=_filter(versions=[version]), window=window, min_records=30,
            signal=ob.MonitorSignal(drift=ob.DriftSignal(
                column=ob.ColumnRef(source=ob.COLUMN_SOURCE_FEATURE, name="amount"),
                method=ob.DRIFT_METHOD_PSI)),
            comparison=ob.COMPARISON_GREATER, threshold=0.2))))
    result = await call("EvaluateMonitor", obs.EvaluateMonitor(
        ob.EvaluateMonitorRequest(id=monitor.id)))
    if result.HasField("alert"):
        demo.console.print(f"monitor alert: [red]{result.alert.message}[/]")
    else:
        demo.console.print(f"monitor {monitor.id}: amount PSI {result.value:.3f} "
                           f"(evaluated: {result.evaluated})")
    return str(monitor.id)
