"""Check 10: over- and under-fitting — train vs test gap, and a simple baseline model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelplane.validator.checks.base import (
    Check,
    CheckContext,
    Judge,
    ParamSpec,
    Predictor,
    Requirement,
    ResolvedConfig,
    Skip,
    ThresholdSpec,
    primary_score,
)
from modelplane.validator.checks.data_quality import encode
from modelplane.validator.report import Bound, CheckResult, Measurement, TaskType


class FittingCheck(Check):
    name = "fitting"
    title = "Over- and under-fitting"
    description = ("Primary score (ROC AUC for binary classifiers with scores, else accuracy; R² "
                   "for regression) of the candidate on (a sample of) the training dataset and "
                   "on the dataset: a large gap is over-fitting. Under-fitting: the candidate's "
                   "score on the dataset against simple models trained on the training dataset — "
                   "a constant (most frequent class / mean) and a linear model (logistic / least "
                   "squares on standardized, category-coded inputs).")
    thresholds = (
        ThresholdSpec("max_train_test_gap", Bound.UPPER,
                      "Most score lost from the training to the dataset", default=0.1),
        ThresholdSpec("min_gain_over_constant", Bound.LOWER,
                      "Least score gained over the constant model", default=0.0),
        ThresholdSpec("min_gain_over_linear", Bound.LOWER,
                      "Least score gained over the linear model", default=-0.02),
    )
    params = (ParamSpec("rows", "20000", "Training rows sampled", int),)
    requires = (Requirement.TRAINING,)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        if ctx.training is None:
            raise Skip("no training dataset")
        judge = Judge(self.thresholds, cfg)
        train = ctx.training.iloc[ctx.sample_index(ctx.training, rows=cfg.param("rows"))]
        x_train, y_train = train[ctx.features], train[ctx.label].to_numpy()
        test_rows = ctx.sample_index()
        x_test, y_test = ctx.x.iloc[test_rows], ctx.y[test_rows]
        train_score = primary_score(ctx, ctx.model, x_train, y_train)
        test_score = primary_score(ctx, _Cached(ctx, test_rows), x_test, y_test)
        gap = train_score - test_score
        measurements = [Measurement("train_score", train_score),
                        Measurement("test_score", test_score),
                        Measurement("train_test_gap", gap)]
        judge.apply("max_train_test_gap", gap)
        enc_train = encode(x_train).fillna(0.0)
        enc_test = encode(x_test).fillna(0.0)
        if ctx.task == TaskType.CLASSIFICATION:
            constant = DummyClassifier(strategy="prior")
            linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
        else:
            constant = DummyRegressor()
            linear = make_pipeline(StandardScaler(), LinearRegression())
        for name, model in (("constant", constant), ("linear", linear)):
            model.fit(enc_train, y_train)
            score = primary_score(ctx, _Aligned(model, ctx.classes), enc_test, y_test)
            gain = test_score - score
            measurements += [Measurement(f"{name}_score", score),
                             Measurement(f"gain_over_{name}", gain)]
            judge.apply(f"min_gain_over_{name}", gain)
        result = judge.result(self.name, measurements=measurements)
        if gap > cfg.thresholds.get("max_train_test_gap", np.inf):
            result.message = (f"over-fitting: score {train_score:.3f} on training, "
                              f"{test_score:.3f} on the dataset")
        elif result.status.failed:
            result.message = "under-fitting: no better than a simple model"
        return result


class _Aligned(Predictor):
    """A simple model whose probabilities are laid out in the candidate's class order."""

    def __init__(self, model: object, classes: np.ndarray) -> None:
        super().__init__(model, "simple")
        self._classes = classes

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray | None:
        proba = super().predict_proba(x)
        if proba is None or not len(self._classes):
            return proba
        own = list(self.model.classes_)  # type: ignore[attr-defined]
        out = np.zeros((len(x), len(self._classes)))
        for j, c in enumerate(self._classes):
            if c in own:
                out[:, j] = proba[:, own.index(c)]
        return out


class _Cached(Predictor):
    """The candidate's answers on dataset rows, from the run's cached predictions."""

    def __init__(self, ctx: CheckContext, rows: np.ndarray) -> None:
        super().__init__(ctx.model.model, "candidate")
        self._ctx, self._rows = ctx, rows

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self._ctx.predictions[self._rows]

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray | None:
        proba = self._ctx.probabilities
        return None if proba is None else proba[self._rows]
