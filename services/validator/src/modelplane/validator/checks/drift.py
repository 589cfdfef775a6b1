"""Checks 2 and 3: prediction distribution vs the baseline version, feature
distributions vs the training dataset (PSI and Jensen-Shannon distance)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import Bound, CheckResult, Measurement, TaskType
from ..statistics import distribution_distance
from .base import (
    Check,
    CheckContext,
    Judge,
    ParamSpec,
    Requirement,
    ResolvedConfig,
    Skip,
    ThresholdSpec,
)

_DRIFT_LIMITS = (
    ThresholdSpec("max_psi", Bound.UPPER, "Most population stability index allowed", default=0.2),
    ThresholdSpec("max_js", Bound.UPPER, "Most Jensen-Shannon distance (base 2) allowed",
                  default=0.1),
)


def prediction_series(ctx: CheckContext, baseline: bool) -> pd.Series:
    """What is compared: the positive-class score (binary), the label (multiclass), the value."""
    proba = ctx.baseline_probabilities if baseline else ctx.probabilities
    if ctx.task == TaskType.CLASSIFICATION and proba is not None and len(ctx.classes) == 2:
        return pd.Series(proba[:, list(ctx.classes).index(ctx.positive)])
    pred = ctx.baseline_predictions if baseline else ctx.predictions
    assert pred is not None
    if ctx.task == TaskType.CLASSIFICATION:
        return pd.Series(pred.astype(str))
    return pd.Series(pred.astype(float))


class PredictionDriftCheck(Check):
    name = "prediction_drift"
    title = "Prediction distribution vs the baseline version"
    description = ("PSI and Jensen-Shannon distance between the candidate's and the baseline "
                   "version's predictions on the same rows: the positive-class score for binary "
                   "classifiers, the predicted label for multiclass, the value for regression "
                   "(10 quantile bins of the baseline's predictions).")
    thresholds = _DRIFT_LIMITS
    params = (ParamSpec("bins", "10", "Quantile bins for numeric predictions", int),)
    requires = (Requirement.BASELINE,)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        judge = Judge(self.thresholds, cfg)
        cand = prediction_series(ctx, baseline=False)
        base = prediction_series(ctx, baseline=True)
        psi, js = distribution_distance(base, cand, bins=cfg.param("bins"))
        judge.apply("max_psi", psi)
        judge.apply("max_js", js)
        measurements = [Measurement("psi", psi), Measurement("js", js)]
        if ctx.task == TaskType.CLASSIFICATION:
            pred, bpred = ctx.predictions, ctx.baseline_predictions
            measurements.append(Measurement("label_agreement", float(np.mean(pred == bpred))))
        else:
            measurements.append(Measurement("mean_prediction", float(cand.mean()),
                                            baseline_value=float(base.mean())))
        return judge.result(self.name, measurements=measurements)


class FeatureDriftCheck(Check):
    name = "feature_drift"
    title = "Feature distributions vs the training dataset"
    description = ("PSI and Jensen-Shannon distance of the most important features (permutation "
                   "importance of the candidate) between the training dataset and the dataset "
                   "(quantile bins of the training values; categories for non-numeric columns).")
    thresholds = _DRIFT_LIMITS
    params = (ParamSpec("top_k", "5", "How many of the most important features; 0 = all", int),
              ParamSpec("bins", "10", "Quantile bins for numeric features", int))
    requires = (Requirement.TRAINING,)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        if ctx.training is None:
            raise Skip("no training dataset")
        judge = Judge(self.thresholds, cfg)
        importance = ctx.importance()
        ranked = sorted(ctx.features, key=lambda f: -importance.get(f, 0.0))
        top_k = cfg.param("top_k")
        chosen = ranked[:top_k] if top_k else ranked
        measurements = []
        drifted = []
        for feature in chosen:
            psi, js = distribution_distance(ctx.training[feature], ctx.data[feature],
                                            bins=cfg.param("bins"))
            measurements += [Measurement("psi", psi, feature), Measurement("js", js, feature),
                             Measurement("importance", importance.get(feature, 0.0), feature)]
            if max(judge.apply("max_psi", psi, feature), judge.apply("max_js", js, feature)).failed:
                drifted.append(feature)
        result = judge.result(self.name, measurements=measurements)
        if drifted:
            result.message = "drifted: " + ", ".join(drifted)
        return result
