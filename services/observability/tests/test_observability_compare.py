"""CompareVersions: two versions of a model over the same filter, in one call.

Generated records with known population values: the champion answers right
with probability 0.85 everywhere; the challenger likewise, except in Nice (a
third of the traffic) where it is right with probability 0.55, so its
accuracy is 0.75 and the true difference -0.10. The intervals must cover the
true values, the difference must be significant, and the root cause must put
Nice first. Regression: errors N(0, 1) against N(0, 1.5), so the MAE differs
by 0.5 * sqrt(2 / pi) and the RMSE by 0.5.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from obs_test_data import (  # type: ignore[import-not-found]
    T0,
    Service,
    log,
    log_actuals,
    record,
    rpc_error,
    unique_model,
)

from modelplane.kit.errors import InvalidArgument, NotFound
from modelplane.observability.compare import newcombe_difference, wilson
from modelplane.observability.v1 import observability_pb2 as pb

PROD = pb.ENVIRONMENT_PRODUCTION
CITIES = np.array(["paris", "lyon", "nice"], dtype=object)


def _classifier(model: str, version: str, n: int, p_right: dict[str, float], seed: int
                ) -> tuple[list[pb.EvaluationRecord], list[tuple[str, object]]]:
    rng = np.random.default_rng(seed)
    city = CITIES[rng.integers(0, 3, n)]
    y = rng.integers(0, 2, n)
    right = rng.uniform(size=n) < np.array([p_right.get(c, p_right["*"]) for c in city])
    pred = np.where(right, y, 1 - y)
    x = rng.normal(0, 1, n)
    recs = [record(f"{model}-{version}-{i}", model, version, PROD,
                   T0 + timedelta(seconds=i),
                   {"x": float(x[i]), "city": str(city[i])}, int(pred[i]))
            for i in range(n)]
    return recs, [(r.prediction_id, int(t)) for r, t in zip(recs, y)]


def _contains(ci: pb.ConfidenceInterval, value: float) -> bool:
    return ci.has_value and ci.lower <= value <= ci.upper


async def test_compare_versions_intervals_cover_the_known_difference_and_name_the_slice(
        service: Service) -> None:
    model = unique_model("compare")
    champ, a1 = _classifier(model, "1", 3000, {"*": 0.85}, seed=1)
    chall, a2 = _classifier(model, "2", 3000, {"*": 0.85, "nice": 0.55}, seed=2)
    await log(service.stub, champ + chall)
    await log_actuals(service.stub, a1 + a2)
    resp = await service.stub.CompareVersions(pb.CompareVersionsRequest(
        filter=pb.EvaluationFilter(model=model, environment=PROD),
        champion_version="1", challenger_version="2",
        metrics=[pb.METRIC_ACCURACY, pb.METRIC_F1], bootstrap_resamples=400, seed=3))
    assert resp.task == pb.TASK_TYPE_CLASSIFICATION
    assert resp.confidence_level == pytest.approx(0.95)
    assert (resp.champion_record_count, resp.challenger_record_count) == (3000, 3000)
    assert (resp.champion_labeled_count, resp.challenger_labeled_count) == (3000, 3000)
    by = {m.metric: m for m in resp.metrics}
    acc = by[pb.METRIC_ACCURACY]
    assert acc.method == pb.INTERVAL_METHOD_WILSON
    assert _contains(acc.champion, 0.85)
    assert _contains(acc.challenger, 0.75)
    assert _contains(acc.difference, -0.10)
    assert acc.difference.value == pytest.approx(acc.challenger.value - acc.champion.value)
    assert acc.significant and not acc.challenger_better
    assert acc.difference.upper < -0.05  # tight enough to mean something
    f1 = by[pb.METRIC_F1]
    assert f1.method == pb.INTERVAL_METHOD_BOOTSTRAP
    assert f1.champion.lower < f1.champion.value < f1.champion.upper
    assert f1.significant and f1.difference.upper < 0
    assert resp.bootstrap_resamples == 400
    # the same labels and predictions sent twice: same traffic, no drift
    assert {(d.column.source, d.column.name) for d in resp.drift} == {
        (pb.COLUMN_SOURCE_FEATURE, "x"), (pb.COLUMN_SOURCE_FEATURE, "city"),
        (pb.COLUMN_SOURCE_PREDICTION, "")}
    assert not any(d.drifted for d in resp.drift if d.column.name in ("x", "city"))
    # the root cause: Nice, where the challenger is worse
    assert resp.root_cause_metric == pb.METRIC_ACCURACY
    assert resp.challenger_value < resp.champion_value - 0.05
    top = resp.root_cause[0]
    assert top.slice.display_name == 'city = "nice"'
    assert top.contribution_share > 0.6
    assert top.current_value < top.reference_value - 0.2


async def test_compare_versions_regression_intervals_cover_mae_and_rmse(
        service: Service) -> None:
    model = unique_model("compare-reg")
    recs, actuals = [], []
    for version, sigma, seed in (("1", 1.0, 4), ("2", 1.5, 5)):
        rng = np.random.default_rng(seed)
        y = rng.normal(10, 2, 4000)
        pred = y + rng.normal(0, sigma, 4000)
        for i in range(4000):
            pid = f"{model}-{version}-{i}"
            recs.append(record(pid, model, version, PROD, T0, {"z": float(y[i])},
                               float(pred[i])))
            actuals.append((pid, float(y[i])))
    await log(service.stub, recs)
    await log_actuals(service.stub, actuals)
    resp = await service.stub.CompareVersions(pb.CompareVersionsRequest(
        filter=pb.EvaluationFilter(model=model), champion_version="1", challenger_version="2",
        metrics=[pb.METRIC_MAE, pb.METRIC_RMSE], bootstrap_resamples=300, seed=1))
    assert resp.task == pb.TASK_TYPE_REGRESSION
    by = {m.metric: m for m in resp.metrics}
    mae, rmse = by[pb.METRIC_MAE], by[pb.METRIC_RMSE]
    assert mae.method == rmse.method == pb.INTERVAL_METHOD_BOOTSTRAP
    root = math.sqrt(2 / math.pi)
    assert _contains(mae.champion, root) and _contains(mae.challenger, 1.5 * root)
    assert _contains(mae.difference, 0.5 * root)
    assert _contains(rmse.champion, 1.0) and _contains(rmse.challenger, 1.5)
    assert _contains(rmse.difference, 0.5)
    assert mae.significant and not mae.challenger_better
    assert resp.root_cause_metric == pb.METRIC_MAE
    # the same seed, the same intervals
    again = await service.stub.CompareVersions(pb.CompareVersionsRequest(
        filter=pb.EvaluationFilter(model=model), champion_version="1", challenger_version="2",
        metrics=[pb.METRIC_MAE, pb.METRIC_RMSE], bootstrap_resamples=300, seed=1))
    assert again.metrics == resp.metrics


async def test_compare_versions_refuses_what_it_cannot_compare(service: Service) -> None:
    model = unique_model("compare-bad")
    recs, _ = _classifier(model, "1", 50, {"*": 0.9}, seed=7)
    await log(service.stub, recs)
    missing = await rpc_error(service.stub.CompareVersions(pb.CompareVersionsRequest(
        filter=pb.EvaluationFilter(model=model), champion_version="1",
        challenger_version="9")))
    assert isinstance(missing, NotFound) and missing.reason == "VERSION_NOT_FOUND"
    both = await rpc_error(service.stub.CompareVersions(pb.CompareVersionsRequest(
        filter=pb.EvaluationFilter(model=model, versions=["1"]), champion_version="1",
        challenger_version="1")))
    assert isinstance(both, InvalidArgument)
    assert both.field_violations[0].field == "filter.versions"
    level = await rpc_error(service.stub.CompareVersions(pb.CompareVersionsRequest(
        filter=pb.EvaluationFilter(model=model), champion_version="1",
        challenger_version="2", confidence_level=1.5)))
    assert isinstance(level, InvalidArgument)
    assert level.field_violations[0].field == "confidence_level"


async def test_compare_versions_reads_no_more_than_the_row_budget(service: Service) -> None:
    from modelplane.kit.errors import ResourceExhausted

    model = unique_model("compare-budget")
    a, _ = _classifier(model, "1", 60, {"*": 0.9}, seed=8)
    b, _ = _classifier(model, "2", 60, {"*": 0.9}, seed=9)
    await log(service.stub, a + b)
    gate = service.runtime.analyses
    saved = gate.max_rows
    gate.max_rows = 100  # the two sides hold 120
    try:
        err = await rpc_error(service.stub.CompareVersions(pb.CompareVersionsRequest(
            filter=pb.EvaluationFilter(model=model), champion_version="1",
            challenger_version="2")))
        assert isinstance(err, ResourceExhausted)
        assert err.reason == "ANALYSIS_ROW_BUDGET_EXCEEDED"
    finally:
        gate.max_rows = saved


def test_wilson_matches_scipy_and_newcombe_the_published_example() -> None:
    from scipy import stats

    z = 1.959963984540054
    a, b = wilson(56, 70, z), wilson(48, 80, z)
    for got, (k, n) in ((a, (56, 70)), (b, (48, 80))):
        ref = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert (got.lower, got.upper) == pytest.approx((ref.low, ref.high), abs=1e-9)
    # Newcombe (1998), Statistics in Medicine 17:873-890, example (a): 56/70 vs
    # 48/80, method 10 gives 0.0524 to 0.3339 for the difference.
    d = newcombe_difference(b, a)  # a - b
    assert (d.lower, d.upper) == pytest.approx((0.0524, 0.3339), abs=1e-4)
