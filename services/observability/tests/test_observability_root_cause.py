"""Root cause scores every slice from sums (confusion counts, error sums) of the
rows a slice picks; each reported value must be the metric computed on those rows
themselves, and on the rows outside the slice (the contribution), for every
count metric and class average, with unlabeled records and missing predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelplane.observability import metrics as M
from modelplane.observability.frame_analysis import metric_values
from modelplane.observability.records import ColumnKind, ColumnRef, ColumnSource
from modelplane.observability.reports import RootCauseReport
from modelplane.observability.root_cause import root_cause_of
from modelplane.observability.slices import slice_mask
from modelplane.observability.store.encoding import SCORE_SOURCE, Catalog
from modelplane.observability.store.frames import Frame

CITY = ColumnRef(ColumnSource.FEATURE, "city")
X = ColumnRef(ColumnSource.FEATURE, "x")
CITIES = np.array(["lyon", "oslo", "paris", "porto"], dtype=object)


def _frame(rng: np.random.Generator, n: int, classes: list[str], broken: str | None,
           regression: bool) -> Frame:
    city = CITIES[rng.integers(0, len(CITIES), n)]
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    nothing = np.full(n, np.nan)
    none = np.full(n, None, dtype=object)
    labels = np.array(classes, dtype=object)
    if regression:
        actual = rng.normal(10, 3, n)
        predicted = actual + rng.normal(0, 1, n) + (city == broken) * 4.0
        actual[rng.random(n) < 0.1] = np.nan         # not labeled yet
        predicted[rng.random(n) < 0.02] = np.nan
        pred_label, pred_number, act_label, act_number = none, predicted, none, actual
    else:
        truth = labels[rng.integers(0, len(labels), n)]
        wrong = rng.random(n) < np.where(city == broken, 0.6, 0.15)
        guess = labels[rng.integers(0, len(labels), n)]
        predicted_l = np.where(wrong, guess, truth).astype(object)
        truth = truth.copy()
        truth[rng.random(n) < 0.1] = None              # not labeled yet
        predicted_l[rng.random(n) < 0.02] = None
        pred_label, pred_number, act_label, act_number = predicted_l, nothing, truth, nothing
    scores = {} if regression else {c: rng.random(n) for c in classes}
    return Frame(np.arange(n).astype(str).astype(object), np.full(n, "1", dtype=object),
                 np.full(n, "production", dtype=object), np.arange(n, dtype=np.int64),
                 pred_label, pred_number, act_label, act_number, scores,
                 {"city": city, "x": x}, {}, {})


def _catalog(classes: list[str], regression: bool) -> Catalog:
    kinds = {(int(ColumnSource.FEATURE), "city"): ColumnKind.CATEGORICAL,
             (int(ColumnSource.FEATURE), "x"): ColumnKind.NUMERIC}
    if regression:
        kinds[(int(ColumnSource.PREDICTION), "")] = ColumnKind.NUMERIC
    else:
        kinds.update({(SCORE_SOURCE, c): ColumnKind.NUMERIC for c in classes})
    return Catalog(kinds)


def _on_rows(frame: Frame, mask: np.ndarray, task: M.TaskType, metric: M.Metric,
             positive: str) -> float:
    _, vals = metric_values(frame.take(np.flatnonzero(mask)), task, [metric], positive,
                            M.ClassAverage.UNSPECIFIED)
    v = vals[metric]
    return math.nan if v is None else v


def _check_against_rows(report: RootCauseReport, ref: Frame, cur: Frame, task: M.TaskType,
                        metric: M.Metric, positive: str = "") -> None:
    sign = 1.0 if metric in M.HIGHER_IS_BETTER else -1.0
    every_r, every_c = np.ones(len(ref), bool), np.ones(len(cur), bool)
    overall = sign * (_on_rows(ref, every_r, task, metric, positive)
                      - _on_rows(cur, every_c, task, metric, positive))
    assert report.reference_value == pytest.approx(
        _on_rows(ref, every_r, task, metric, positive), rel=1e-12)
    assert report.current_value == pytest.approx(
        _on_rows(cur, every_c, task, metric, positive), rel=1e-12)
    assert report.slices
    for s in report.slices:
        rm, cm = slice_mask(ref, s.slice), slice_mask(cur, s.slice)
        assert (s.reference_count, s.current_count) == (int(rm.sum()), int(cm.sum()))
        assert s.reference_value == pytest.approx(
            _on_rows(ref, rm, task, metric, positive), rel=1e-12, nan_ok=True)
        assert s.current_value == pytest.approx(
            _on_rows(cur, cm, task, metric, positive), rel=1e-12)
        rest = sign * (_on_rows(ref, ~rm, task, metric, positive)
                       - _on_rows(cur, ~cm, task, metric, positive))
        assert s.contribution == pytest.approx(overall - rest, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("classes", [["0", "1"], ["a", "b", "c"]], ids=["binary", "macro"])
@pytest.mark.parametrize("metric", [M.Metric.ACCURACY, M.Metric.PRECISION, M.Metric.RECALL,
                                    M.Metric.F1, M.Metric.LOG_LOSS])
def test_classification_slices_carry_the_metric_of_their_rows_and_of_the_rest(
        classes: list[str], metric: M.Metric) -> None:
    rng = np.random.default_rng(7)
    ref = _frame(rng, 3000, classes, None, False)
    cur = _frame(rng, 3000, classes, "oslo", False)
    report = root_cause_of(ref, cur, _catalog(classes, False), "m", metric,
                           columns=[CITY, X], max_slices=50)
    _check_against_rows(report, ref, cur, M.TaskType.CLASSIFICATION, metric)
    if metric is M.Metric.ACCURACY:
        assert report.slices[0].slice[0].values == ("oslo",)


def test_a_named_positive_class_is_the_one_counted() -> None:
    rng = np.random.default_rng(11)
    classes = ["a", "b", "c"]
    ref = _frame(rng, 3000, classes, None, False)
    cur = _frame(rng, 3000, classes, "paris", False)
    report = root_cause_of(ref, cur, _catalog(classes, False), "m", M.Metric.RECALL,
                           columns=[CITY], positive="b", max_slices=50)
    _check_against_rows(report, ref, cur, M.TaskType.CLASSIFICATION, M.Metric.RECALL, "b")


@pytest.mark.parametrize("metric", [M.Metric.MAE, M.Metric.RMSE, M.Metric.MAPE])
def test_regression_slices_carry_the_error_of_their_rows_and_of_the_rest(
        metric: M.Metric) -> None:
    rng = np.random.default_rng(5)
    ref = _frame(rng, 3000, [], None, True)
    cur = _frame(rng, 3000, [], "porto", True)
    report = root_cause_of(ref, cur, _catalog([], True), "m", metric,
                           columns=[CITY, X], max_slices=50)
    _check_against_rows(report, ref, cur, M.TaskType.REGRESSION, metric)
    assert report.slices[0].slice[0].values == ("porto",)


def test_pairs_are_scored_from_the_rows_both_predicates_pick() -> None:
    rng = np.random.default_rng(13)
    classes = ["0", "1"]
    ref = _frame(rng, 4000, classes, None, False)
    cur = _frame(rng, 4000, classes, "lyon", False)
    # the drop only where x is high as well: the pair names it better than either part
    inside = (cur.features["city"] == "lyon") & (cur.features["x"] > 0.5)
    cur.prediction_label[inside & (rng.random(len(cur)) < 0.7)] = "1"
    cur.actual_label[inside] = np.array(["0", None], dtype=object)[
        (rng.random(int(inside.sum())) >= 0.5).astype(int)]
    report = root_cause_of(ref, cur, _catalog(classes, False), "m", M.Metric.ACCURACY,
                           columns=[CITY, X], max_depth=2, max_slices=50, bins=4)
    assert any(len(s.slice) == 2 for s in report.slices)
    _check_against_rows(report, ref, cur, M.TaskType.CLASSIFICATION, M.Metric.ACCURACY)
