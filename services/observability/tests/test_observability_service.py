"""The service end to end over gRPC, on the embedded store and on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from obs_test_data import (  # type: ignore[import-not-found]
    T0,
    Service,
    churn_records,
    log,
    log_actuals,
    record,
    rpc_error,
    unique_model,
    value,
)
from scipy import stats
from sklearn import metrics as skm

from modelplane.kit.errors import InvalidArgument, NotFound
from modelplane.observability.v1 import observability_pb2 as pb

PROD = pb.ENVIRONMENT_PRODUCTION
VALID = pb.ENVIRONMENT_VALIDATION


async def test_log_records_is_idempotent_and_rejects_bad_records_by_index(service: Service
                                                                          ) -> None:
    model = unique_model("ingest")
    recs, _ = churn_records(model, PROD, 300)
    bad_env = pb.EvaluationRecord(prediction_id="x-1", model=model, version="v1")
    bad_env.prediction_time.FromDatetime(T0)
    bad_kind = record("x-2", model, "v1", PROD, T0, {"x": "not a number"}, 1)
    no_time = pb.EvaluationRecord(prediction_id="x-3", model=model, version="v1",
                                  environment=PROD)
    stream = [*recs[:150], bad_env, *recs[150:], bad_kind, no_time]
    res = await log(service.stub, stream, batch=100)
    assert res.accepted_count == 300
    assert res.duplicate_count == 0
    assert [(r.index, r.prediction_id) for r in res.rejected] == [
        (150, "x-1"), (301, "x-2"), (302, "x-3")]
    assert "environment" in res.rejected[0].field
    assert "numeric" in res.rejected[1].reason
    assert res.rejected[2].field.endswith("prediction_time")
    again = await log(service.stub, recs[:120] + recs[:10])
    assert again.accepted_count == 0 and again.duplicate_count == 130
    listed = await service.stub.ListObservedModels(pb.ListObservedModelsRequest(page_size=1000))
    mine = next(m for m in listed.models if m.model == model)
    assert mine.record_count == 300


async def test_actuals_join_whether_they_arrive_before_or_after_the_prediction(
        service: Service) -> None:
    model = unique_model("join")
    early = await log_actuals(service.stub, [("j-early", 1)])
    assert early.accepted_count == 1 and early.unmatched_count == 1
    await log(service.stub, [record("j-early", model, "v1", PROD, T0, {"x": 1.0}, 0),
                             record("j-late", model, "v1", PROD, T0, {"x": 2.0}, 1)])
    late = await log_actuals(service.stub, [("j-late", 1), ("j-late", 1)])
    assert late.accepted_count == 1 and late.unmatched_count == 0
    same = await log_actuals(service.stub, [("j-late", 1)])
    assert same.duplicate_count == 1 and same.accepted_count == 0
    a = await service.stub.GetRecord(pb.GetRecordRequest(prediction_id="j-early"))
    assert a.actual.value.int64_value == 1 and a.prediction.int64_value == 0
    perf = await service.stub.ComputePerformance(pb.ComputePerformanceRequest(
        filter=pb.EvaluationFilter(model=model), metrics=[pb.METRIC_ACCURACY]))
    assert perf.overall.labeled_count == 2
    assert perf.overall.metrics[0].value == pytest.approx(0.5)


async def test_performance_by_window_and_slice_matches_sklearn(service: Service) -> None:
    model = unique_model("perf")
    recs, y = churn_records(model, PROD, 600, seed=4, step=timedelta(minutes=10))
    await log(service.stub, recs)
    await log_actuals(service.stub, [(r.prediction_id, int(t)) for r, t in zip(recs, y)])
    pred = np.array([r.prediction.int64_value for r in recs])
    p = np.array([r.scores["1"] for r in recs])
    cities = np.array([r.features["city"].string_value for r in recs])
    times = np.array([r.prediction_time.ToSeconds() for r in recs])
    resp = await service.stub.ComputePerformance(pb.ComputePerformanceRequest(
        filter=pb.EvaluationFilter(model=model, versions=["v1"], environment=PROD),
        bucket={"seconds": 24 * 3600}, slice_by=[pb.ColumnRef(name="city")]))
    assert resp.task == pb.TASK_TYPE_CLASSIFICATION

    def check(group: pb.PerformanceGroup, mask: np.ndarray) -> None:
        got = {m.metric: m.value for m in group.metrics}
        assert group.labeled_count == mask.sum()
        assert got[pb.METRIC_ACCURACY] == pytest.approx(
            skm.accuracy_score(y[mask], pred[mask]), abs=1e-9)
        assert got[pb.METRIC_F1] == pytest.approx(skm.f1_score(y[mask], pred[mask]), abs=1e-9)
        assert got[pb.METRIC_ROC_AUC] == pytest.approx(
            skm.roc_auc_score(y[mask], p[mask]), abs=1e-9)
        assert got[pb.METRIC_LOG_LOSS] == pytest.approx(skm.log_loss(y[mask], p[mask]), abs=1e-9)

    check(resp.overall, np.ones(len(y), bool))
    assert len(resp.windows) == 5  # 600 × 10 min = 100 h
    for w in resp.windows:
        lo, hi = w.window.start_time.ToSeconds(), w.window.end_time.ToSeconds()
        check(w, (times >= lo) & (times < hi))
    assert sorted(s.slice.display_name for s in resp.slices) == [
        'city = "lyon"', 'city = "nice"', 'city = "paris"']
    for s in resp.slices:
        check(s, cities == s.slice.predicates[0].values[0].string_value)
    # A slice predicate in the filter itself.
    sliced = await service.stub.ComputePerformance(pb.ComputePerformanceRequest(
        filter=pb.EvaluationFilter(model=model, predicates=[pb.SlicePredicate(
            column=pb.ColumnRef(name="x"), op=pb.SLICE_OPERATOR_GREATER,
            values=[value(0.25)])])))
    xs = np.array([r.features["x"].double_value for r in recs])
    check(sliced.overall, xs > 0.25)


async def test_regression_metrics_through_the_store(service: Service) -> None:
    model = unique_model("price")
    rng = np.random.default_rng(8)
    y = rng.normal(100, 20, 200)
    yhat = y + rng.normal(0, 5, 200)
    recs = [record(f"{model}-{i}", model, "v1", PROD, T0 + timedelta(minutes=i),
                   {"area": float(i)}, float(yhat[i])) for i in range(200)]
    await log(service.stub, recs)
    await log_actuals(service.stub, [(r.prediction_id, float(t)) for r, t in zip(recs, y)])
    resp = await service.stub.ComputePerformance(pb.ComputePerformanceRequest(
        filter=pb.EvaluationFilter(model=model)))
    got = {m.metric: m.value for m in resp.overall.metrics}
    assert resp.task == pb.TASK_TYPE_REGRESSION
    assert got[pb.METRIC_MAE] == pytest.approx(skm.mean_absolute_error(y, yhat), abs=1e-9)
    assert got[pb.METRIC_RMSE] == pytest.approx(skm.root_mean_squared_error(y, yhat), abs=1e-9)
    assert got[pb.METRIC_MAPE] == pytest.approx(
        skm.mean_absolute_percentage_error(y, yhat), abs=1e-9)


async def test_bad_input_names_the_offending_part(service: Service) -> None:
    model = unique_model("bad")
    recs, _ = churn_records(model, PROD, 20)
    await log(service.stub, recs)
    unknown_col = await rpc_error(service.stub.ComputeDrift(pb.ComputeDriftRequest(
        current=pb.EvaluationFilter(model=model, versions=["v1"], predicates=[
            pb.SlicePredicate(column=pb.ColumnRef(name="nope"), op=pb.SLICE_OPERATOR_EQUAL,
                              values=[value("a")])]),
        reference=pb.ReferenceData(filter=pb.EvaluationFilter(model=model)))))
    assert isinstance(unknown_col, InvalidArgument)
    assert unknown_col.field_violations[0].field == "current.predicates[0].column.name"
    assert unknown_col.reason == "UNKNOWN_COLUMN" and "nope" in unknown_col.message
    window = pb.EvaluationFilter(model=model)
    window.window.start_time.FromDatetime(T0 + timedelta(days=1))
    window.window.end_time.FromDatetime(T0)
    backwards = await rpc_error(service.stub.ComputePerformance(
        pb.ComputePerformanceRequest(filter=window)))
    assert isinstance(backwards, InvalidArgument)
    assert backwards.field_violations[0].field == "filter.window.end_time"
    no_model = await rpc_error(service.stub.ComputePerformance(pb.ComputePerformanceRequest(
        filter=pb.EvaluationFilter(model="no-such-model"))))
    assert isinstance(no_model, NotFound) and no_model.metadata == {"model": "no-such-model"}
    no_version = await rpc_error(service.stub.ComputePerformance(pb.ComputePerformanceRequest(
        filter=pb.EvaluationFilter(model=model, versions=["v1", "v9"]))))
    assert isinstance(no_version, NotFound) and no_version.metadata["version"] == "v9"
    wrong_type = await rpc_error(service.stub.ListRecords(pb.ListRecordsRequest(
        filter=pb.EvaluationFilter(model=model, predicates=[pb.SlicePredicate(
            column=pb.ColumnRef(name="x"), op=pb.SLICE_OPERATOR_LESS,
            values=[value("ten")])]))))
    assert wrong_type.field_violations[0].field == "filter.predicates[0].values[0]"
    regression_metric = await rpc_error(service.stub.ComputePerformance(
        pb.ComputePerformanceRequest(filter=pb.EvaluationFilter(model=model),
                                     metrics=[pb.METRIC_MAE])))
    assert regression_metric.field_violations[0].field == "metrics[0]"
    no_baseline = await rpc_error(service.stub.ComputeDrift(pb.ComputeDriftRequest(
        current=pb.EvaluationFilter(model=model))))
    assert no_baseline.reason == "BASELINE_NOT_FOUND"


def _arrow_ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


async def test_drift_defaults_to_the_validation_baseline(service: Service) -> None:
    model = unique_model("drift")
    rng = np.random.default_rng(12)
    n = 1500
    val = pa.table({
        "prediction_id": [f"{model}-val-{i}" for i in range(n)],
        "prediction_time": pa.array([T0 - timedelta(days=1)] * n, pa.timestamp("us", "UTC")),
        "x": rng.normal(0, 1, n), "stable": rng.normal(5, 2, n),
        "city": rng.choice(["a", "b", "c"], n), "prediction": rng.integers(0, 2, n),
        "actual": rng.integers(0, 2, n)})
    base = await service.stub.SetBaseline(pb.SetBaselineRequest(
        baseline=pb.Baseline(model=model, version="v2", validation_report_id="rep-1",
                             metrics=[pb.MetricValue(metric=pb.METRIC_ACCURACY, value=0.5,
                                                     has_value=True)]),
        records={"arrow_ipc": _arrow_ipc(val)}))
    assert base.record_count == n and base.validation_report_id == "rep-1"
    got = await service.stub.GetBaseline(pb.GetBaselineRequest(model=model, version="v2"))
    assert got.metrics[0].value == 0.5
    x_cur = rng.normal(0.6, 1, n)
    stable_cur = rng.normal(5, 2, n)
    city_cur = rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1])
    recs = [record(f"{model}-p-{i}", model, "v2", PROD, T0 + timedelta(seconds=i),
                   {"x": float(x_cur[i]), "stable": float(stable_cur[i]), "city": str(city_cur[i])},
                   int(rng.integers(0, 2))) for i in range(n)]
    await log(service.stub, recs)
    resp = await service.stub.ComputeDrift(pb.ComputeDriftRequest(
        current=pb.EvaluationFilter(model=model, versions=["v2"], environment=PROD)))
    by = {c.column.name or "prediction": c for c in resp.columns}
    assert resp.reference_count == n and resp.current_count == n
    assert by["x"].drifted and by["city"].drifted and not by["stable"].drifted
    assert by["x"].decision_method == pb.DRIFT_METHOD_WASSERSTEIN
    assert by["city"].decision_method == pb.DRIFT_METHOD_JENSEN_SHANNON
    stat = {s.method: s for s in by["x"].statistics}
    ref_x = val.column("x").to_numpy()
    expected = stats.ks_2samp(ref_x, x_cur)
    assert stat[pb.DRIFT_METHOD_KS].value == pytest.approx(expected.statistic, abs=1e-9)
    assert stat[pb.DRIFT_METHOD_KS].p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert stat[pb.DRIFT_METHOD_WASSERSTEIN].value == pytest.approx(
        stats.wasserstein_distance(ref_x, x_cur) / np.std(ref_x), abs=1e-9)
    assert resp.drifted_share == pytest.approx(2 / 4)


async def test_proxy_performance_estimates_accuracy_without_actuals(service: Service) -> None:
    model = unique_model("cbpe")
    ref, y_ref = churn_records(model, VALID, 1500, seed=1)
    cur, y_cur = churn_records(model, PROD, 1500, seed=2, shift=0.8)
    await log(service.stub, ref + cur)
    await log_actuals(service.stub, [(r.prediction_id, int(t)) for r, t in zip(ref, y_ref)])
    await service.stub.SetBaseline(pb.SetBaselineRequest(
        baseline=pb.Baseline(model=model, version="v1")))
    resp = await service.stub.ComputeProxyPerformance(pb.ComputeProxyPerformanceRequest(
        current=pb.EvaluationFilter(model=model, versions=["v1"], environment=PROD),
        bucket={"seconds": 12 * 3600}))
    est = {m.metric: m.value for m in resp.overall.estimated_metrics}
    pred = np.array([r.prediction.int64_value for r in cur])
    p = np.array([r.scores["1"] for r in cur])
    assert resp.calibrated
    assert est[pb.METRIC_ACCURACY] == pytest.approx(skm.accuracy_score(y_cur, pred), abs=0.03)
    assert est[pb.METRIC_ROC_AUC] == pytest.approx(skm.roc_auc_score(y_cur, p), abs=0.03)
    assert est[pb.METRIC_F1] == pytest.approx(skm.f1_score(y_cur, pred), abs=0.04)
    assert len(resp.windows) == 3
    assert any(c.drifted for c in resp.overall.prediction_drift)  # the scores moved


async def test_root_cause_puts_the_broken_slice_first(service: Service) -> None:
    model = unique_model("rca")
    ref, y_ref = churn_records(model, VALID, 3000, seed=5)
    cur, y_cur = churn_records(model, PROD, 3000, seed=6)
    # Since Tuesday the model is wrong in Nice: flip its predictions there.
    tuesday = T0 + timedelta(days=1)
    for r in cur:
        if r.features["city"].string_value == "nice" and r.prediction_time.ToDatetime(
                tzinfo=tuesday.tzinfo) >= tuesday:
            r.prediction.int64_value = 1 - r.prediction.int64_value
    await log(service.stub, ref + cur)
    await log_actuals(service.stub, [(r.prediction_id, int(t)) for r, t in
                                     zip(ref + cur, np.concatenate([y_ref, y_cur]))])
    await service.stub.SetBaseline(pb.SetBaselineRequest(
        baseline=pb.Baseline(model=model, version="v1")))
    resp = await service.stub.ComputeRootCause(pb.ComputeRootCauseRequest(
        current=pb.EvaluationFilter(model=model, versions=["v1"], environment=PROD),
        objective=pb.RootCauseObjective(metric=pb.METRIC_ACCURACY), max_slices=5))
    assert resp.current_value < resp.reference_value - 0.05
    top = resp.slices[0]
    assert top.slice.display_name == 'city = "nice"'
    assert top.contribution_share > 0.5
    assert top.current_value < top.reference_value - 0.15
    # Drift root cause: the prediction moved because x moved in Lyon only.
    drift_model = unique_model("rca-drift")
    ref2, _ = churn_records(drift_model, VALID, 2000, seed=7)
    cur2, _ = churn_records(drift_model, PROD, 2000, seed=8)
    for r in cur2:
        if r.features["city"].string_value == "lyon":
            r.features["x"].double_value += 2.0
    await log(service.stub, ref2 + cur2)
    resp2 = await service.stub.ComputeRootCause(pb.ComputeRootCauseRequest(
        current=pb.EvaluationFilter(model=drift_model, environment=PROD),
        reference=pb.ReferenceData(filter=pb.EvaluationFilter(model=drift_model,
                                                              environment=VALID)),
        objective=pb.RootCauseObjective(drift_column=pb.ColumnRef(name="x")), max_depth=1))
    assert resp2.slices[0].slice.display_name == 'city = "lyon"'


async def test_root_cause_names_the_city_not_the_large_segment_that_holds_it(
        service: Service) -> None:
    """Every Nice record is in the "standard" segment (60 % of the records), and the
    "premium" rest improved: leaving "standard" out removes more of the drop than
    leaving Nice out, yet the drop is Nice's, and Nice must come first."""
    model = unique_model("rca-segment")
    ref, y_ref = churn_records(model, VALID, 3000, seed=11)
    cur, y_cur = churn_records(model, PROD, 3000, seed=12)
    rng = np.random.default_rng(3)
    for side, (recs, y) in enumerate(((ref, y_ref), (cur, y_cur))):
        for i, r in enumerate(recs):
            nice = r.features["city"].string_value == "nice"
            premium = not nice and i % 5 < 3
            r.features["segment"].string_value = "premium" if premium else "standard"
            if side == 1 and nice:  # the model broke in Nice
                r.prediction.int64_value = 1 - r.prediction.int64_value
            elif side == 1 and premium and rng.random() < 0.5:  # and got better elsewhere
                r.prediction.int64_value = int(y[i])
    await log(service.stub, ref + cur)
    await log_actuals(service.stub, [(r.prediction_id, int(t)) for r, t in
                                     zip(ref + cur, np.concatenate([y_ref, y_cur]))])
    resp = await service.stub.ComputeRootCause(pb.ComputeRootCauseRequest(
        current=pb.EvaluationFilter(model=model, environment=PROD),
        reference=pb.ReferenceData(filter=pb.EvaluationFilter(model=model, environment=VALID)),
        objective=pb.RootCauseObjective(metric=pb.METRIC_ACCURACY), max_slices=20))
    by_name = {s.slice.display_name: s for s in resp.slices}
    nice, standard = by_name['city = "nice"'], by_name['segment = "standard"']
    # the case the leave-one-out contribution gets wrong
    assert standard.contribution > nice.contribution > 0
    assert resp.slices[0].slice.display_name == 'city = "nice"'
    assert nice.score > standard.score > 0
    assert nice.lift > standard.lift
    assert nice.current_value < nice.reference_value - 0.3
    # no pair restating Nice outranks it
    assert all(s.score < nice.score for s in resp.slices[1:])


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


async def test_monitor_raises_an_alert_streamed_listed_and_posted(service: Service) -> None:
    model = unique_model("mon")
    ref, _ = churn_records(model, VALID, 800, seed=1)
    await log(service.stub, ref)
    await service.stub.SetBaseline(pb.SetBaselineRequest(
        baseline=pb.Baseline(model=model, version="v1")))
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        mon = await service.stub.CreateMonitor(pb.CreateMonitorRequest(monitor=pb.Monitor(
            display_name="x drift", filter=pb.EvaluationFilter(model=model, versions=["v1"],
                                                               environment=PROD),
            signal=pb.MonitorSignal(drift=pb.DriftSignal(column=pb.ColumnRef(name="x"),
                                                         method=pb.DRIFT_METHOD_PSI)),
            comparison=pb.COMPARISON_GREATER, threshold=0.2, window={"seconds": 3600},
            min_records=50, webhook_url=f"http://127.0.0.1:{hook.server_port}/alerts")))
        # Too few records in the window: not evaluated.
        first = await service.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        assert not first.evaluated
        now = service.runtime.monitors._clock()
        cur, _ = churn_records(model, PROD, 300, seed=2, shift=1.5,
                               start=now - timedelta(minutes=30), step=timedelta(seconds=5))
        await log(service.stub, cur)
        watch = service.stub.WatchAlerts(pb.WatchAlertsRequest(model=model))
        await asyncio.sleep(0.3)  # the watch is registered
        ev = await service.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        assert ev.evaluated and ev.value > 0.2 and ev.record_count == 300
        assert ev.alert.state == pb.ALERT_STATE_FIRING
        streamed = await asyncio.wait_for(watch.read(), 10)
        assert streamed.id == ev.alert.id and streamed.monitor_id == mon.id
        watch.cancel()
        again = await service.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        assert not again.HasField("alert")  # still firing: no second alert
        listed = await service.stub.ListAlerts(pb.ListAlertsRequest(model=model))
        assert [a.id for a in listed.alerts] == [ev.alert.id]
        for _ in range(50):
            if any(h["id"] == ev.alert.id for h in _Hook.received):
                break
            await asyncio.sleep(0.1)
        assert any(h["id"] == ev.alert.id and h["state"] == 1 for h in _Hook.received)
        # Raising the threshold resolves the alert at the next evaluation.
        updated = await service.stub.UpdateMonitor(pb.UpdateMonitorRequest(
            monitor=pb.Monitor(id=mon.id, threshold=50.0), update_mask={"paths": ["threshold"]}))
        assert updated.threshold == 50.0 and updated.display_name == "x drift"
        resolved = await service.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        assert resolved.alert.state == pb.ALERT_STATE_RESOLVED
        monitors = await service.stub.ListMonitors(pb.ListMonitorsRequest(model=model))
        assert [m.id for m in monitors.monitors] == [mon.id]
        await service.stub.DeleteMonitor(pb.DeleteMonitorRequest(id=mon.id))
        gone = await rpc_error(service.stub.GetMonitor(pb.GetMonitorRequest(id=mon.id)))
        assert isinstance(gone, NotFound)
    finally:
        hook.shutdown()


async def test_attribution_ranks_the_informative_feature_and_is_stored(service: Service
                                                                       ) -> None:
    model = unique_model("explain")
    recs, y = churn_records(model, PROD, 1200, seed=3)
    await log(service.stub, recs)
    await log_actuals(service.stub, [(r.prediction_id, int(t)) for r, t in zip(recs, y)])
    imp = await service.stub.ComputeFeatureImportance(pb.ComputeFeatureImportanceRequest(
        filter=pb.EvaluationFilter(model=model), repeats=3))
    assert imp.importances[0].feature == "x"
    # "v1" is no registry version: the surrogate answers, saying why and how faithful.
    assert imp.explainer == pb.EXPLAINER_SURROGATE and "v1" in imp.fallback_reason
    assert imp.surrogate_fidelity_measure == pb.FIDELITY_MEASURE_ACCURACY_AGAINST_LOGGED
    assert imp.surrogate_fidelity > 0.9
    by = {i.feature: i.value for i in imp.importances}
    assert by["x"] > 5 * max(by["city"], 1e-3)
    pid = recs[0].prediction_id
    exp = await service.stub.ExplainPredictions(pb.ExplainPredictionsRequest(
        filter=pb.EvaluationFilter(model=model), prediction_ids=[pid], store=True))
    attr = {a.feature: a.value for a in exp.predictions[0].attributions}
    assert set(attr) == {"x", "tenure", "city"}
    assert exp.method == pb.ATTRIBUTION_METHOD_OCCLUSION  # city is categorical: no TreeSHAP
    stored = await service.stub.GetRecord(pb.GetRecordRequest(prediction_id=pid))
    assert dict(stored.attributions) == pytest.approx(attr)


async def test_list_records_pages_newest_first_and_filters(service: Service) -> None:
    model = unique_model("list")
    recs, _ = churn_records(model, PROD, 25)
    await log(service.stub, recs)
    seen: list[str] = []
    token = ""
    while True:
        page = await service.stub.ListRecords(pb.ListRecordsRequest(
            filter=pb.EvaluationFilter(model=model), page_size=10, page_token=token))
        seen += [r.prediction_id for r in page.records]
        token = page.next_page_token
        if not token:
            break
    assert seen == [r.prediction_id for r in recs][::-1]
    nice = await service.stub.ListRecords(pb.ListRecordsRequest(filter=pb.EvaluationFilter(
        model=model, predicates=[pb.SlicePredicate(column=pb.ColumnRef(
            source=pb.COLUMN_SOURCE_TAG, name="region"), op=pb.SLICE_OPERATOR_IN,
            values=[value("eu")])]), page_size=100))
    assert [r.prediction_id for r in nice.records] == [
        r.prediction_id for r in recs if r.tags["region"] == "eu"][::-1]
    bad = await rpc_error(service.stub.ListRecords(pb.ListRecordsRequest(
        filter=pb.EvaluationFilter(model=model), page_token="garbage")))
    assert bad.reason == "INVALID_PAGE_TOKEN"


async def test_import_records_and_actuals_from_parquet(service: Service) -> None:
    model = unique_model("import")
    n = 100
    table = pa.table({
        "prediction_id": [f"{model}-{i}" for i in range(n)],
        "prediction_time": pa.array([T0 + timedelta(hours=i) for i in range(n)],
                                    pa.timestamp("us", "UTC")),
        "age": np.arange(n, dtype=float), "plan": ["basic", "pro"] * (n // 2),
        "prediction": [i % 2 for i in range(n)], "score_1": np.linspace(0, 1, n),
        "tag_channel": ["web"] * n, "actual": [1] * n})
    path = service.runtime.storage.imports / f"{model}.parquet"  # files only under the roots
    pq.write_table(table, path)
    resp = await service.stub.ImportRecords(pb.ImportRecordsRequest(
        model=model, version="v3", environment=pb.ENVIRONMENT_BATCH,
        table={"parquet_uri": f"file://{path}"}))
    assert resp.accepted_count == n and resp.actual_count == n
    rec = await service.stub.GetRecord(pb.GetRecordRequest(prediction_id=f"{model}-3"))
    assert rec.features["age"].double_value == 3.0 and rec.features["plan"].string_value == "pro"
    assert rec.tags["channel"] == "web" and rec.scores["1"] == pytest.approx(3 / 99)
    assert rec.actual.value.int64_value == 1
    missing = await rpc_error(service.stub.ImportRecords(pb.ImportRecordsRequest(
        model=model, version="v3", environment=pb.ENVIRONMENT_BATCH,
        table={"parquet_uri": f"{model}-nope.parquet"})))
    assert missing.reason == "LOCATION_NOT_FOUND"
