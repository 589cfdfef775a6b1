"""Performance metrics match scikit-learn's to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from modelplane.observability import metrics as M

TOL = 1e-9


def _binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    p[: n // 10] = np.round(p[: n // 10], 1)  # ties in the scores
    y = (rng.uniform(0, 1, n) < p).astype(int)
    pred = (p > 0.5).astype(int)
    return y, pred, p


@pytest.mark.parametrize("n,seed", [(50, 0), (1000, 1), (20000, 2)])
def test_binary_classification_metrics_match_sklearn(n: int, seed: int) -> None:
    y, pred, p = _binary(n, seed)
    data = M.ClassificationData(y.astype(str).astype(object), pred.astype(str).astype(object),
                                {"1": p})
    got = M.classification_metrics(data, M.CLASSIFICATION_METRICS)
    assert got[M.Metric.ACCURACY] == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert got[M.Metric.PRECISION] == pytest.approx(skm.precision_score(y, pred), abs=TOL)
    assert got[M.Metric.RECALL] == pytest.approx(skm.recall_score(y, pred), abs=TOL)
    assert got[M.Metric.F1] == pytest.approx(skm.f1_score(y, pred), abs=TOL)
    assert got[M.Metric.ROC_AUC] == pytest.approx(skm.roc_auc_score(y, p), abs=TOL)
    assert got[M.Metric.LOG_LOSS] == pytest.approx(skm.log_loss(y, p), abs=TOL)


def test_binary_with_only_the_negative_class_score_uses_its_complement() -> None:
    y, pred, p = _binary(500, 3)
    labels = np.where(y == 1, "yes", "no").astype(object)
    preds = np.where(pred == 1, "yes", "no").astype(object)
    data = M.ClassificationData(labels, preds, {"no": 1 - p})
    got = M.classification_metrics(data, [M.Metric.ROC_AUC, M.Metric.LOG_LOSS, M.Metric.F1],
                                   positive="yes")
    assert got[M.Metric.ROC_AUC] == pytest.approx(skm.roc_auc_score(y, p), abs=TOL)
    assert got[M.Metric.LOG_LOSS] == pytest.approx(skm.log_loss(y, p), abs=TOL)
    assert got[M.Metric.F1] == pytest.approx(skm.f1_score(y, pred), abs=TOL)


@pytest.mark.parametrize("average", [M.ClassAverage.MACRO, M.ClassAverage.MICRO,
                                     M.ClassAverage.WEIGHTED])
def test_multiclass_metrics_match_sklearn(average: M.ClassAverage) -> None:
    rng = np.random.default_rng(7)
    n, k = 3000, 4
    logits = rng.normal(size=(n, k))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in probs])
    pred = probs.argmax(axis=1)
    classes = [f"c{i}" for i in range(k)]
    y_s = np.array([classes[i] for i in y], dtype=object)
    pred_s = np.array([classes[i] for i in pred], dtype=object)
    data = M.ClassificationData(y_s, pred_s, {c: probs[:, i] for i, c in enumerate(classes)})
    got = M.classification_metrics(data, M.CLASSIFICATION_METRICS, average=average)
    avg = average.name.lower()
    assert got[M.Metric.PRECISION] == pytest.approx(
        skm.precision_score(y_s, pred_s, average=avg, zero_division=0), abs=TOL)
    assert got[M.Metric.RECALL] == pytest.approx(
        skm.recall_score(y_s, pred_s, average=avg, zero_division=0), abs=TOL)
    assert got[M.Metric.F1] == pytest.approx(
        skm.f1_score(y_s, pred_s, average=avg, zero_division=0), abs=TOL)
    assert got[M.Metric.ACCURACY] == pytest.approx(skm.accuracy_score(y_s, pred_s), abs=TOL)
    assert got[M.Metric.ROC_AUC] == pytest.approx(
        skm.roc_auc_score(y_s, probs, multi_class="ovr", average="macro", labels=classes),
        abs=TOL)
    assert got[M.Metric.LOG_LOSS] == pytest.approx(skm.log_loss(y_s, probs, labels=classes),
                                                   abs=TOL)


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(11)
    y = rng.normal(10, 5, 5000)
    y[:5] = 0.0  # MAPE's epsilon guard
    pred = y + rng.normal(0, 2, 5000)
    got = M.regression_metrics(y, pred, M.REGRESSION_METRICS)
    assert got[M.Metric.MAE] == pytest.approx(skm.mean_absolute_error(y, pred), abs=TOL)
    assert got[M.Metric.RMSE] == pytest.approx(skm.root_mean_squared_error(y, pred), abs=TOL)
    assert got[M.Metric.MAPE] == pytest.approx(
        skm.mean_absolute_percentage_error(y, pred), rel=TOL)


def test_undefined_metrics_are_none_not_a_number() -> None:
    one_class = M.ClassificationData(np.array(["1", "1"], dtype=object),
                                     np.array(["1", "0"], dtype=object),
                                     {"1": np.array([0.9, 0.2])})
    got = M.classification_metrics(one_class, [M.Metric.ROC_AUC, M.Metric.ACCURACY])
    assert got[M.Metric.ROC_AUC] is None
    assert got[M.Metric.ACCURACY] == 0.5
    no_scores = M.ClassificationData(np.array(["a", "b"], dtype=object),
                                     np.array(["a", "a"], dtype=object), {})
    assert M.classification_metrics(no_scores, [M.Metric.LOG_LOSS])[M.Metric.LOG_LOSS] is None
    assert M.regression_metrics(np.empty(0), np.empty(0), [M.Metric.MAE])[M.Metric.MAE] is None
