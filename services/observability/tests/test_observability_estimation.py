"""CBPE's expected ROC AUC against scikit-learn's weighted ROC AUC.

Each record counts as a positive with weight p and as a negative with weight 1 - p;
scikit-learn's area under that weighted ROC curve, over thresholds on the model's
score, is the expected curve's area the estimator reports.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from modelplane.observability import metrics as M
from modelplane.observability.estimation import ScoreEstimator, expected_roc_auc
from modelplane.observability.store.frames import Frame


def weighted_auc(p: np.ndarray, score: np.ndarray) -> float:
    y = np.r_[np.ones(len(p)), np.zeros(len(p))]
    return float(roc_auc_score(y, np.r_[score, score], sample_weight=np.r_[p, 1 - p]))


def frame(scores: dict[str, np.ndarray], predicted: np.ndarray) -> Frame:
    n = len(predicted)
    nothing = np.full(n, np.nan)
    none = np.full(n, None, dtype=object)
    return Frame(np.arange(n).astype(str).astype(object), np.full(n, "1", dtype=object),
                 np.full(n, "production", dtype=object), np.arange(n, dtype=np.int64),
                 predicted, nothing, none, nothing, scores, {}, {}, {})


def test_expected_auc_is_the_weighted_auc_over_the_models_score_with_ties() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(500)
    score = np.round(rng.random(500), 1)  # many ties: one threshold per distinct score
    auc = expected_roc_auc(p, score)
    assert auc is not None and abs(auc - weighted_auc(p, score)) < 1e-12
    assert abs(expected_roc_auc(p) - weighted_auc(p, p)) < 1e-12  # type: ignore[operator]


def test_multiclass_auc_ranks_by_each_class_score_not_by_the_normalized_probability() -> None:
    # Scores that do not sum to 1: normalizing them (the expected labels) ranks the
    # records differently from the model's own score of a class (the thresholds).
    rng = np.random.default_rng(5)
    classes = ["a", "b", "c"]
    raw = rng.random((400, 3))
    scores = {c: raw[:, k] for k, c in enumerate(classes)}
    predicted = np.array(classes, dtype=object)[raw.argmax(axis=1)]
    current = frame(scores, predicted)
    reference = frame(scores, predicted)  # no actuals: the scores are taken as they are
    estimator = ScoreEstimator.fit(reference, None)
    assert not estimator.calibrated and estimator.classes == classes
    prob = raw / raw.sum(axis=1, keepdims=True)
    expected = np.mean([weighted_auc(prob[:, k], raw[:, k]) for k in range(3)])
    ranked_by_prob = np.mean([weighted_auc(prob[:, k], prob[:, k]) for k in range(3)])
    assert abs(expected - ranked_by_prob) > 1e-3  # the two orders do differ here
    auc = estimator.estimate(current)[M.Metric.ROC_AUC]
    assert auc is not None and abs(auc - expected) < 1e-12
