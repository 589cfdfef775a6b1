"""Feature attribution from the evaluation store alone.

The store holds each model's inputs and outputs but not the model, so
attribution is computed on a *surrogate*: a gradient-boosted tree model
(scikit-learn's HistGradientBoosting, which takes missing values and
categories natively) fitted to reproduce the logged predictions (or the
actuals) from the logged features. Its fidelity on held-out records
(accuracy, or R² for regression) is reported with every result: attribution
is only as good as that number.

* Global importance: permutation importance of the surrogate on held-out
  records (``sklearn.inspection.permutation_importance``).
* Per prediction (:meth:`Surrogate.explain`): SHAP values of the surrogate
  (``shap.TreeExplainer``, exact path-dependent TreeSHAP) when every feature
  is numeric, else occlusion. SHAP explains the surrogate's raw output: the
  predicted value for regression, the log-odds of the predicted class for a
  binary classifier, the predicted class's raw (softmax) score for multiclass;
  the attributions of a prediction sum to that output minus its expected value
  over the training records. shap reads scikit-learn's categorical splits
  wrongly (its values do not add up on such a model), hence occlusion there.
* Occlusion (the fallback, also when shap does not import): the change of the
  surrogate's output (the probability of the predicted class, or the
  predicted value) when a feature is replaced by its reference value (median
  or most frequent).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelplane.kit.errors import FailedPrecondition
from modelplane.observability.metrics import is_none
from modelplane.observability.records import PREDICTION, ColumnKind
from modelplane.observability.store.encoding import Catalog
from modelplane.observability.store.frames import Frame

MIN_RECORDS = 20
SHAP = "shap"
OCCLUSION = "occlusion"

log = logging.getLogger(__name__)


@dataclass
class Surrogate:
    model: Any
    names: list[str]
    categorical: list[bool]
    categories: list[list[str]]
    X_test: np.ndarray
    y_test: np.ndarray
    classifier: bool
    fidelity: float
    fill: np.ndarray
    #: rows (of the frame it was fitted on) held out to measure fidelity
    test_rows: np.ndarray

    @classmethod
    def fit(cls, frame: Frame, catalog: Catalog, against_actual: bool, seed: int) -> Surrogate:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        features = catalog.features()
        names = sorted(features)
        if not names:
            raise FailedPrecondition("the model's records have no features to attribute to",
                                     reason="NO_FEATURES")
        numeric_target = frame.kinds.get(PREDICTION) is ColumnKind.NUMERIC
        if against_actual:
            y = frame.actual_number if numeric_target else frame.actual_label
        else:
            y = frame.prediction_number if numeric_target else frame.prediction_label
        ok = ~np.isnan(y) if numeric_target else ~is_none(y)
        idx = np.flatnonzero(ok)
        if len(idx) < MIN_RECORDS:
            raise FailedPrecondition(
                f"attribution needs at least {MIN_RECORDS} records with "
                f"{'an actual' if against_actual else 'a prediction'}; found {len(idx)}",
                reason="TOO_FEW_RECORDS")
        categorical = [features[n] is not ColumnKind.NUMERIC for n in names]
        categories: list[list[str]] = []
        columns = []
        for n, is_cat in zip(names, categorical):
            col = frame.features[n][idx]
            if is_cat:
                cats = sorted({str(v) for v in col.tolist() if v is not None})
                categories.append(cats)
                lookup = {c: float(i) for i, c in enumerate(cats)}
                columns.append(np.array([lookup.get(str(v), np.nan) if v is not None else np.nan
                                         for v in col.tolist()], dtype=np.float64))
            else:
                categories.append([])
                columns.append(col.astype(np.float64))
        X = np.column_stack(columns)
        target = y[idx] if numeric_target else y[idx].astype(str)
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(idx))
        n_test = max(len(idx) // 5, 1)
        test, train = perm[:n_test], perm[n_test:]
        cat_mask = np.array(categorical) if any(categorical) else None
        classifier = not numeric_target
        est_cls = HistGradientBoostingClassifier if classifier else HistGradientBoostingRegressor
        model = est_cls(max_iter=100, categorical_features=cat_mask, random_state=seed)
        model.fit(X[train], target[train])
        fidelity = float(model.score(X[test], target[test]))
        fill = np.array([_reference_value(X[:, j], categorical[j]) for j in range(X.shape[1])])
        return cls(model, names, categorical, categories, X[test], target[test], classifier,
                   fidelity, fill, idx[test])

    def fidelity_against(self, outputs: np.ndarray, classes: list[str] | None) -> float:
        """R² of the surrogate's output against a model's output on the held-out
        records: ``outputs`` are the model's predicted values (regression) or its
        class probabilities (records × ``classes``, compared over all classes)."""
        if not self.classifier or classes is None:
            mine = np.asarray(self.model.predict(self.X_test), dtype=np.float64)
            theirs = np.asarray(outputs, dtype=np.float64).reshape(len(mine))
        else:
            proba = self.model.predict_proba(self.X_test)
            col = {str(c): j for j, c in enumerate(self.model.classes_)}
            mine = np.column_stack([proba[:, col[c]] if c in col else np.zeros(len(proba))
                                    for c in classes])
            theirs = np.asarray(outputs, dtype=np.float64)
        total = float(((theirs - theirs.mean(axis=0)) ** 2).sum())
        residual = float(((theirs - mine) ** 2).sum())
        return 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)

    def permutation_importance(self, repeats: int, seed: int) -> list[tuple[str, float, float]]:
        from sklearn.inspection import permutation_importance

        res = permutation_importance(self.model, self.X_test, self.y_test, n_repeats=repeats,
                                     random_state=seed)
        out = [(n, float(m), float(s)) for n, m, s in
               zip(self.names, res.importances_mean, res.importances_std)]
        return sorted(out, key=lambda t: -t[1])

    def _encode(self, frame: Frame) -> np.ndarray:
        cols = []
        for n, is_cat, cats in zip(self.names, self.categorical, self.categories):
            col = frame.features[n]
            if is_cat:
                lookup = {c: float(i) for i, c in enumerate(cats)}
                cols.append(np.array([lookup.get(str(v), np.nan) if v is not None else np.nan
                                      for v in col.tolist()], dtype=np.float64))
            else:
                cols.append(col.astype(np.float64))
        return np.column_stack(cols) if cols else np.empty((len(frame), 0))

    def _output(self, X: np.ndarray, chosen: np.ndarray | None) -> np.ndarray:
        if not self.classifier:
            return np.asarray(self.model.predict(X), dtype=np.float64)
        proba = self.model.predict_proba(X)
        assert chosen is not None
        return proba[np.arange(len(X)), chosen]

    def explain(self, frame: Frame) -> tuple[dict[str, dict[str, float]], str]:
        """Per-prediction attributions and the method used (SHAP or OCCLUSION)."""
        if not any(self.categorical):
            try:
                phi, _ = self.shap_values(self._encode(frame))
            except ImportError:
                log.info("shap is not installed: attributions by occlusion")
            except Exception:  # shap's own checks (e.g. additivity) failing
                log.warning("shap failed on the surrogate: attributions by occlusion",
                            exc_info=True)
            else:
                ids = frame.prediction_id.tolist()
                return ({pid: {n: float(v) for n, v in zip(self.names, row)}
                         for pid, row in zip(ids, phi.tolist())}, SHAP)
        return self.occlusion(frame), OCCLUSION

    def chosen_class(self, X: np.ndarray) -> np.ndarray:
        """Index (into ``model.classes_``) of the class the surrogate predicts."""
        return np.argmax(self.model.predict_proba(X), axis=1)

    def raw_output(self, X: np.ndarray) -> np.ndarray:
        """What SHAP explains: the predicted value, or the predicted class's
        raw score (log-odds for two classes, softmax score for more)."""
        if not self.classifier:
            return np.asarray(self.model.predict(X), dtype=np.float64)
        raw = np.asarray(self.model.decision_function(X), dtype=np.float64)
        chosen = self.chosen_class(X)
        if raw.ndim == 1:  # log-odds of classes_[1]
            return np.where(chosen == 1, raw, -raw)
        return raw[np.arange(len(X)), chosen]

    def shap_values(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SHAP values (records × features) of :meth:`raw_output`, and each
        record's expected value: ``phi.sum(1) + expected == raw_output(X)``."""
        with warnings.catch_warnings():  # shap's plotting colormaps, at import
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap

        explainer = shap.TreeExplainer(self.model)
        values = np.asarray(explainer.shap_values(X, check_additivity=True), dtype=np.float64)
        expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
        n = len(X)
        if not self.classifier:
            return values, np.full(n, expected[0])
        chosen = self.chosen_class(X)
        if values.ndim == 3:  # one slice per class: records × features × classes
            return values[np.arange(n), :, chosen], expected[chosen]
        sign = np.where(chosen == 1, 1.0, -1.0)
        return values * sign[:, None], expected[0] * sign

    def occlusion(self, frame: Frame) -> dict[str, dict[str, float]]:
        X = self._encode(frame)
        chosen = None
        if self.classifier:
            chosen = np.argmax(self.model.predict_proba(X), axis=1)
        base = self._output(X, chosen)
        out: dict[str, dict[str, float]] = {pid: {} for pid in frame.prediction_id.tolist()}
        for j, name in enumerate(self.names):
            Xj = X.copy()
            Xj[:, j] = self.fill[j]
            delta = base - self._output(Xj, chosen)
            for pid, d in zip(frame.prediction_id.tolist(), delta.tolist()):
                out[pid][name] = float(d)
        return out


def _reference_value(column: np.ndarray, categorical: bool) -> float:
    present = column[~np.isnan(column)]
    if len(present) == 0:
        return float("nan")
    if categorical:
        return float(np.bincount(present.astype(int)).argmax())
    return float(np.median(present))
