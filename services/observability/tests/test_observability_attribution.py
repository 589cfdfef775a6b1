"""Per-prediction attribution: SHAP values of the surrogate add up to its raw
output (checked against scikit-learn's own predict / decision_function, not
against shap), features the surrogate never splits on get exactly zero, and
occlusion takes over for categorical features or without shap."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from modelplane.observability.attribution import OCCLUSION, SHAP, Surrogate
from modelplane.observability.records import PREDICTION, ColumnKind, ColumnRef, ColumnSource
from modelplane.observability.store.encoding import Catalog
from modelplane.observability.store.frames import Frame

TOL = 1e-9


def _frame(features: dict[str, np.ndarray], prediction: np.ndarray) -> tuple[Frame, Catalog]:
    n = len(prediction)
    numeric_target = prediction.dtype.kind == "f"
    kinds: dict[ColumnRef, ColumnKind] = {
        PREDICTION: ColumnKind.NUMERIC if numeric_target else ColumnKind.CATEGORICAL}
    catalog = Catalog()
    for name, col in features.items():
        kind = ColumnKind.NUMERIC if col.dtype.kind == "f" else ColumnKind.CATEGORICAL
        kinds[ColumnRef(ColumnSource.FEATURE, name)] = kind
        catalog.kinds[(int(ColumnSource.FEATURE), name)] = kind
    nothing = np.full(n, None, dtype=object)
    frame = Frame(
        prediction_id=np.array([f"p{i}" for i in range(n)], dtype=object),
        version=np.full(n, "v1", dtype=object), environment=np.full(n, 1),
        time_us=np.arange(n, dtype=np.int64),
        prediction_label=nothing if numeric_target else prediction.astype(object),
        prediction_number=prediction if numeric_target else np.full(n, np.nan),
        actual_label=nothing, actual_number=np.full(n, np.nan), scores={},
        features=features, tags={}, kinds=kinds)
    return frame, catalog


def _numeric_features(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, tenure, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    x[::23] = np.nan  # missing values take the trees' learned direction
    return {"x": x, "tenure": tenure, "noise": noise, "constant": np.full(n, 3.0)}


def _encode(s: Surrogate, frame: Frame) -> np.ndarray:
    return np.column_stack([frame.features[n].astype(float) for n in s.names])


def test_shap_values_of_a_regression_surrogate_add_up_to_its_prediction() -> None:
    feats = _numeric_features(1500, 1)
    y = 3 * np.nan_to_num(feats["x"]) + feats["tenure"] ** 2
    frame, catalog = _frame(feats, y)
    s = Surrogate.fit(frame, catalog, against_actual=False, seed=0)
    target = frame.take(np.arange(200))
    X = _encode(s, target)
    phi, expected = s.shap_values(X)
    assert phi.shape == (200, 4)
    np.testing.assert_allclose(phi.sum(axis=1) + expected, s.model.predict(X), atol=TOL, rtol=0)
    # Never split on: exactly zero (TreeSHAP's missingness property).
    assert np.all(phi[:, s.names.index("constant")] == 0)
    mean_abs = dict(zip(s.names, np.abs(phi).mean(axis=0)))
    assert mean_abs["x"] > mean_abs["tenure"] > 5 * mean_abs["noise"]
    attributions, method = s.explain(target)
    assert method == SHAP
    assert attributions["p7"] == pytest.approx(dict(zip(s.names, phi[7])), abs=TOL)


def test_shap_values_of_a_binary_classifier_explain_the_predicted_class_log_odds() -> None:
    feats = _numeric_features(1500, 2)
    labels = np.where(np.nan_to_num(feats["x"]) + 0.5 * feats["tenure"] > 0, "churn", "stay")
    frame, catalog = _frame(feats, labels)
    s = Surrogate.fit(frame, catalog, against_actual=False, seed=0)
    X = _encode(s, frame.take(np.arange(300)))
    phi, expected = s.shap_values(X)
    margin = s.model.decision_function(X)  # log-odds of classes_[1]
    predicted = s.model.predict(X)
    log_odds = np.where(predicted == s.model.classes_[1], margin, -margin)
    assert {"churn", "stay"} <= set(predicted.tolist())  # both signs exercised
    np.testing.assert_allclose(phi.sum(axis=1) + expected, log_odds, atol=TOL, rtol=0)
    # The predicted class is the more likely one: its log-odds are >= 0.
    assert np.all(log_odds >= 0)


def test_shap_values_of_a_multiclass_classifier_explain_the_predicted_class_score() -> None:
    feats = _numeric_features(1500, 3)
    score = np.nan_to_num(feats["x"]) + feats["tenure"]
    labels = np.array(["low", "mid", "high"])[np.digitize(score, [-0.7, 0.7])]
    frame, catalog = _frame(feats, labels)
    s = Surrogate.fit(frame, catalog, against_actual=False, seed=0)
    X = _encode(s, frame.take(np.arange(150)))
    phi, expected = s.shap_values(X)
    raw = s.model.decision_function(X)
    chosen = np.searchsorted(s.model.classes_, s.model.predict(X))
    np.testing.assert_allclose(phi.sum(axis=1) + expected, raw[np.arange(150), chosen],
                               atol=TOL, rtol=0)
    assert len(set(chosen.tolist())) == 3


def test_categorical_features_fall_back_to_occlusion() -> None:
    rng = np.random.default_rng(4)
    n = 800
    city = rng.choice(np.array(["paris", "lyon", "nice"], dtype=object), n)
    x = rng.normal(size=n)
    y = x + (city == "lyon") * 2.0
    frame, catalog = _frame({"x": x, "city": city}, y)
    s = Surrogate.fit(frame, catalog, against_actual=False, seed=0)
    target = frame.take(np.arange(50))
    attributions, method = s.explain(target)
    assert method == OCCLUSION
    assert attributions == s.occlusion(target)
    assert set(attributions["p0"]) == {"x", "city"}


def test_without_shap_numeric_features_fall_back_to_occlusion(
        monkeypatch: pytest.MonkeyPatch) -> None:
    feats = _numeric_features(600, 5)
    frame, catalog = _frame(feats, 2 * feats["tenure"])
    s = Surrogate.fit(frame, catalog, against_actual=False, seed=0)
    monkeypatch.setitem(sys.modules, "shap", None)  # `import shap` raises ImportError
    target = frame.take(np.arange(20))
    attributions, method = s.explain(target)
    assert method == OCCLUSION
    assert attributions == s.occlusion(target)
