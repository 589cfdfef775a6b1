"""Issue #17: the rollout controller's evidence comes from observability's ComputePerformance.

A real observability service (embedded store) with production records of two
versions, some with actuals, some without, some outside the window, and one
validation record; ``ObservabilityEvidence`` (serving's adapter) must count
exactly the labeled production predictions of one version in the window and
the right ones among them - the counts the sequential test runs on.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "observability"
                       / "tests"))

from obs_test_data import T0, log, log_actuals, record

from modelplane.kit.errors import InvalidArgument
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.main import build
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.v1 import observability_pb2 as opb
from modelplane.observability.v1 import observability_pb2_grpc as opb_grpc
from modelplane.serving.adapters.rollout_adapters import ObservabilityAlerts, ObservabilityEvidence
from modelplane.serving.deployment import ModelTarget
from modelplane.serving.rollout import (
    Action,
    Analysis,
    Counts,
    ProxyCheck,
    ProxyStats,
    Rollout,
    RolloutStep,
    SliceCheck,
    decide,
)

PROD = opb.ENVIRONMENT_PRODUCTION


@pytest.fixture(scope="module")
async def observability(tmp_path_factory: pytest.TempPathFactory
                        ) -> AsyncIterator[grpc.aio.Channel]:
    tmp = tmp_path_factory.mktemp("rollout-obs")
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off"}).with_listen("127.0.0.1:0")
    settings = ObservabilitySettings(svc, http_addr="", monitor_tick_seconds=0)
    rt = ObservabilityRuntime(settings)
    spec, _ = build(settings, rt)
    async with running(spec, svc) as server, \
            grpc.aio.insecure_channel(server.address) as channel:
        yield channel


async def test_evidence_counts_labeled_production_predictions_of_one_version_in_the_window(
        observability: grpc.aio.Channel) -> None:
    stub = opb_grpc.ObservabilityServiceStub(observability)
    records, actuals = [], []
    # v1: 200 labeled in the window, 170 right; v2: 100 labeled, 90 right + 50 unlabeled
    for version, n, right in (("1", 200, 170), ("2", 100, 90)):
        for i in range(n):
            pid = f"ro-{version}-{i}"
            records.append(record(pid, "ro-model", version, PROD,
                                  T0 + timedelta(seconds=i), {"x": float(i)}, 1))
            actuals.append((pid, 1 if i < right else 0))
    for i in range(50):
        records.append(record(f"ro-2-unlabeled-{i}", "ro-model", "2", PROD,
                              T0 + timedelta(seconds=i), {"x": 0.0}, 1))
    # outside the window, or not production: never counted
    for i in range(30):
        for pid, env, t in ((f"ro-2-early-{i}", PROD, T0 - timedelta(hours=2)),
                            (f"ro-2-validation-{i}", opb.ENVIRONMENT_VALIDATION, T0)):
            records.append(record(pid, "ro-model", "2", env, t, {"x": 0.0}, 1))
            actuals.append((pid, 1))
    await log(stub, records)
    await log_actuals(stub, actuals)

    evidence = ObservabilityEvidence(observability)
    start, end = T0 - timedelta(minutes=1), T0 + timedelta(hours=1)
    assert await evidence.counts("ro-model", "1", start, end) == Counts(200, 170)
    assert await evidence.counts("ro-model", "2", start, end) == Counts(100, 90)
    # no records at all, and records without actuals: nothing to decide on, not an error
    assert await evidence.counts("ro-model", "9", start, end) == Counts()
    assert await evidence.counts("ro-model", "2", T0 - timedelta(days=9),
                                 T0 - timedelta(days=8)) == Counts()
    await log(stub, [record("ro-3-0", "ro-model", "3", PROD, T0, {"x": 0.0}, 1)])
    assert await evidence.counts("ro-model", "3", start, end) == Counts()


async def test_slice_evidence_counts_each_value_of_a_categorical_feature_in_one_call(
        observability: grpc.aio.Channel) -> None:
    """A rollout's slice check: per city, the labeled production predictions of one
    version in the window and the right ones (one ComputePerformance sliced by city)."""
    stub = opb_grpc.ObservabilityServiceStub(observability)
    records, actuals = [], []
    # (city, labeled, right): paris 60/54, oslo 40/20; and 10 unlabeled in oslo
    for city, n, right in (("paris", 60, 54), ("oslo", 40, 20)):
        for i in range(n):
            pid = f"sl-{city}-{i}"
            records.append(record(pid, "sl-model", "1", PROD, T0 + timedelta(seconds=i),
                                  {"city": city, "x": float(i)}, 1))
            actuals.append((pid, 1 if i < right else 0))
    for i in range(10):
        records.append(record(f"sl-oslo-unlabeled-{i}", "sl-model", "1", PROD, T0,
                              {"city": "oslo", "x": 0.0}, 1))
    await log(stub, records)
    await log_actuals(stub, actuals)
    evidence = ObservabilityEvidence(observability)
    start, end = T0 - timedelta(minutes=1), T0 + timedelta(hours=1)
    assert await evidence.slice_counts("sl-model", "1", start, end, "city") == {
        "paris": Counts(60, 54), "oslo": Counts(40, 20)}
    # a version without records: no values, not an error
    assert await evidence.slice_counts("sl-model", "9", start, end, "city") == {}


async def test_a_roll_back_alert_is_raised_once_however_often_serving_retries(
        observability: grpc.aio.Channel) -> None:
    """Serving's ObservabilityAlerts on observability's RaiseAlert: a controller that
    retries after a crash (same rollout revision) raises one alert."""
    alerts = ObservabilityAlerts(observability)
    for _ in range(3):
        await alerts.raise_alert("rollout/ro-city", "ro-alert-model", "2",
                                 "rollout ro-city rolled back v2", "ro-city@5")
    stub = opb_grpc.ObservabilityServiceStub(observability)
    listed = (await stub.ListAlerts(opb.ListAlertsRequest(model="ro-alert-model"))).alerts
    assert [(a.source, a.version, a.state) for a in listed] == [
        ("rollout/ro-city", "2", opb.ALERT_STATE_FIRING)]
    with pytest.raises(InvalidArgument):
        await alerts.raise_alert("rollout/ro-city", "", "2", "no model", "ro-city@6")


def _scored(pid: str, model: str, version: str, t: object, positive: bool,
            score: float) -> opb.EvaluationRecord:
    """A binary prediction with the positive class's score, no actual."""
    return record(pid, model, version, PROD, t, {"x": 0.0}, 1 if positive else 0,
                  scores={"1": score if positive else 1.0 - score})


async def test_proxy_evidence_without_actuals_drift_between_versions_and_cbpe(
        observability: grpc.aio.Channel) -> None:
    """A rollout's proxy check with no actual at all: v1 (the champion) predicts the
    positive class 70 % of the time, confident (0.9); v2 predicts it 40 % of the time,
    unsure (0.6); v3 like v1. The adapter reads the drift of v2's predictions from
    v1's (Jensen-Shannon, one ComputeDrift) and each version's accuracy estimated
    from its scores (ComputeProxyPerformance); fed to the rule, v2 is rolled back
    with no actual, v3 is not."""
    stub = opb_grpc.ObservabilityServiceStub(observability)
    model = "px-model"
    records = []
    for version, share, score in (("1", 0.7, 0.9), ("2", 0.4, 0.6), ("3", 0.7, 0.9)):
        for i in range(600):
            records.append(_scored(f"px-{version}-{i}", model, version,
                                   T0 + timedelta(seconds=i % 300), i % 10 < share * 10,
                                   score))
    await log(stub, records)
    evidence = ObservabilityEvidence(observability)
    start, end = T0 - timedelta(minutes=1), T0 + timedelta(hours=1)

    drifted = await evidence.proxy_stats(model, "1", "2", start, end, estimated=True)
    assert (drifted.champion_records, drifted.challenger_records) == (600, 600)
    assert drifted.prediction_drift == pytest.approx(0.258, abs=0.01)  # JS distance, base 2
    assert drifted.champion_estimated == pytest.approx(0.9, abs=1e-6)
    assert drifted.challenger_estimated == pytest.approx(0.6, abs=1e-6)
    same = await evidence.proxy_stats(model, "1", "3", start, end, estimated=False)
    assert same.prediction_drift < 0.01 and same.challenger_estimated is None
    # a version without records: nothing yet, not an error
    nothing = await evidence.proxy_stats(model, "1", "9", start, end, True)
    assert nothing.challenger_records == 0 and nothing.challenger_estimated is None

    r = Rollout("px", "d", ModelTarget(version="2"), (RolloutStep(10, 0, 50),),
                Analysis(proxy=ProxyCheck(min_records=500, estimated_accuracy=True)),
                step_start_time=T0, start_time=T0)
    d = decide(r, Counts(), Counts(), end, proxy=drifted)
    assert d.action is Action.ROLL_BACK and "drifted" in d.reason
    kept = decide(r, Counts(), Counts(), end, proxy=ProxyStats(
        same.champion_records, same.challenger_records, same.prediction_drift, 0.9, 0.9))
    assert kept.action is Action.WAIT and "proxy checks never promote" in kept.reason


async def test_mae_evidence_of_a_regressor_reads_labeled_count_mae_and_rmse(
        observability: grpc.aio.Channel) -> None:
    """A MAE rollout's evidence: regression records with numeric actuals. v1 (the
    champion) is off by 2 or 6 (MAE 4, RMSE sqrt(20)) everywhere; v2 by 1 or 3 in
    paris (MAE 2) but by 9 in oslo (overall MAE 3.75); plus unlabeled records that
    never count. The adapter's counts give the rule the MAE and the spread of |e|
    (RMSE), and the rule promotes v2 overall but rolls it back by a per-city check."""
    stub = opb_grpc.ObservabilityServiceStub(observability)
    model = "reg-model"
    records, actuals = [], []
    for version, errors in (("1", (2.0, 6.0)), ("2", (1.0, 3.0))):
        for i in range(400):
            pid = f"reg-{version}-{i}"
            city = "oslo" if i % 4 == 0 else "paris"
            truth = float(i % 50)
            off = 9.0 if version == "2" and city == "oslo" else errors[(i // 4) % 2]
            records.append(record(pid, model, version, PROD, T0 + timedelta(seconds=i),
                                  {"city": city, "x": float(i)},
                                  truth + (off if i % 3 else -off)))
            actuals.append((pid, truth))
    for i in range(40):
        records.append(record(f"reg-2-unlabeled-{i}", model, "2", PROD, T0,
                              {"city": "paris", "x": 0.0}, 100.0))
    await log(stub, records)
    await log_actuals(stub, actuals)
    evidence = ObservabilityEvidence(observability)
    start, end = T0 - timedelta(minutes=1), T0 + timedelta(hours=1)

    old = await evidence.counts(model, "1", start, end, "MAE")
    assert (old.labeled, old.mae, old.rmse) == (400, pytest.approx(4.0),
                                                pytest.approx(20.0 ** 0.5))
    new = await evidence.counts(model, "2", start, end, "MAE")
    # paris (300): off by 1 or 3, half each; oslo (100): off by 9
    assert new.labeled == 400
    assert new.mae == pytest.approx((150 * 1 + 150 * 3 + 100 * 9) / 400)
    assert new.rmse == pytest.approx(((150 * 1 + 150 * 9 + 100 * 81) / 400) ** 0.5)
    cities = await evidence.slice_counts(model, "2", start, end, "city", "MAE")
    assert sorted(cities) == ["oslo", "paris"]
    assert cities["oslo"].mae == pytest.approx(9.0)
    assert cities["paris"].mae == pytest.approx(2.0)
    assert await evidence.counts(model, "9", start, end, "MAE") == Counts()

    champion_cities = await evidence.slice_counts(model, "1", start, end, "city", "MAE")
    r = Rollout("reg", "d", ModelTarget(version="2"), (RolloutStep(50, 0, 50),),
                Analysis(metric="MAE", margin=0.5, mixture_scale=0.5, min_labeled=50),
                step_start_time=T0, start_time=T0)
    promoted = decide(r, old, new, end)
    assert promoted.action is Action.PROMOTE
    assert promoted.evidence.difference == pytest.approx(4.0 - new.mae)
    sliced = dataclasses.replace(r, analysis=dataclasses.replace(
        r.analysis, slices=(SliceCheck("city", 0.5),)))
    slices = {"city": {c: (champion_cities[c], cities[c]) for c in cities}}
    rolled = decide(sliced, old, new, end, slices)
    assert rolled.action is Action.ROLL_BACK and "city = 'oslo'" in rolled.reason


async def test_precision_and_recall_evidence_count_the_class_subsets(
        observability: grpc.aio.Channel) -> None:
    """Precision of class 1 is accuracy on the records that predicted 1, recall on
    those whose actual is 1. 300 labeled records of one version: predicted 1 and
    right 90, predicted 1 and wrong 30, predicted 0 and wrong (actual 1) 60,
    predicted 0 and right 120; plus unlabeled ones that never count."""
    stub = opb_grpc.ObservabilityServiceStub(observability)
    model = "pr-model"
    records, actuals = [], []
    cells = [(1, 1, 90), (1, 0, 30), (0, 1, 60), (0, 0, 120)]  # predicted, actual, n
    i = 0
    for predicted, actual, n in cells:
        for _ in range(n):
            pid = f"pr-{i}"
            records.append(record(pid, model, "1", PROD, T0 + timedelta(seconds=i % 600),
                                  {"x": float(i), "city": "oslo" if i % 3 else "rome"},
                                  predicted))
            actuals.append((pid, actual))
            i += 1
    for j in range(25):
        records.append(record(f"pr-unlabeled-{j}", model, "1", PROD, T0,
                              {"x": 0.0, "city": "oslo"}, 1))
    await log(stub, records)
    await log_actuals(stub, actuals)
    evidence = ObservabilityEvidence(observability)
    start, end = T0 - timedelta(minutes=1), T0 + timedelta(hours=1)
    assert await evidence.counts(model, "1", start, end, "PRECISION", "1") == Counts(120, 90)
    assert await evidence.counts(model, "1", start, end, "RECALL", "1") == Counts(150, 90)
    assert await evidence.counts(model, "1", start, end, "RECALL", "0") == Counts(150, 120)
    assert await evidence.counts(model, "1", start, end) == Counts(300, 210)
    # a class never predicted: nothing to decide on yet, not an error
    assert await evidence.counts(model, "1", start, end, "PRECISION", "7") == Counts()
    # a slice check on precision: the same subset, per city (every third record in rome)
    cities = await evidence.slice_counts(model, "1", start, end, "city", "PRECISION", "1")
    assert sorted(cities) == ["oslo", "rome"]
    assert cities["rome"] == Counts(40, 30)  # of the 120 predicted 1, i = 0..119
    assert cities["oslo"] == Counts(80, 60)
