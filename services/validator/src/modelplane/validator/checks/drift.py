"""Checks 2 and 3: prediction and feature distributions against a reference (PSI and
Jensen-Shannon distance).

The reference is, by default, the **previous version's validation data**: the records
the validator handed to observability as that version's baseline (its inputs, its
predictions and scores). Where that baseline does not exist the check says so and
falls back (feature drift: the training dataset; prediction drift: the baseline model
on the same rows, then the candidate on the training dataset), or is SKIPPED naming
every reason. The parameter ``reference`` picks another source on purpose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelplane.validator.checks.base import (
    Check,
    CheckContext,
    Judge,
    ParamSpec,
    Requirement,
    ResolvedConfig,
    Skip,
    ThresholdSpec,
)
from modelplane.validator.report import Bound, CheckResult, Measurement, TaskType
from modelplane.validator.statistics import distribution_distance

_DRIFT_LIMITS = (
    ThresholdSpec("max_psi", Bound.UPPER, "Most population stability index allowed", default=0.2),
    ThresholdSpec("max_js", Bound.UPPER, "Most Jensen-Shannon distance (base 2) allowed",
                  default=0.1),
)
PREVIOUS = "previous_version"
TRAINING = "training"
BASELINE_MODEL = "baseline_model"


def _series(ctx: CheckContext, proba: np.ndarray | None, pred: np.ndarray) -> pd.Series:
    """What is compared: the positive-class score (binary), the label (multiclass), the value."""
    if ctx.task == TaskType.CLASSIFICATION and proba is not None and len(ctx.classes) == 2:
        return pd.Series(proba[:, list(ctx.classes).index(ctx.positive)])
    if ctx.task == TaskType.CLASSIFICATION:
        return pd.Series(np.asarray(pred).astype(str))
    return pd.Series(np.asarray(pred).astype(float))


def prediction_series(ctx: CheckContext, baseline: bool) -> pd.Series:
    """The candidate's (or the baseline model's) predictions on the dataset's rows."""
    proba = ctx.baseline_probabilities if baseline else ctx.probabilities
    pred = ctx.baseline_predictions if baseline else ctx.predictions
    assert pred is not None
    return _series(ctx, proba, pred)


def _previous_prediction_series(ctx: CheckContext) -> tuple[pd.Series | None, str]:
    """The previous version's recorded predictions, comparable with the candidate's; or why not."""
    if ctx.previous is None:
        return None, ctx.previous_missing
    frame = ctx.previous.frame
    if len(frame) == 0:
        return None, f"version {ctx.previous.version}'s baseline has no records"
    binary_score = (ctx.task == TaskType.CLASSIFICATION and ctx.probabilities is not None
                    and len(ctx.classes) == 2)
    if binary_score:
        column = f"score_{ctx.positive}"
        if column not in frame:
            return None, (f"version {ctx.previous.version}'s baseline has no {column!r} scores "
                          "to compare the candidate's positive-class score with")
        return pd.Series(frame[column].astype(float).to_numpy()), ""
    if "prediction" not in frame:
        return None, f"version {ctx.previous.version}'s baseline has no predictions"
    if ctx.task == TaskType.CLASSIFICATION:
        return pd.Series(frame["prediction"].astype(str).to_numpy()), ""
    return pd.Series(pd.to_numeric(frame["prediction"], errors="coerce").to_numpy()), ""


def _training_prediction_series(ctx: CheckContext) -> pd.Series:
    assert ctx.training is not None
    x = ctx.training[ctx.features].iloc[ctx.sample_index(ctx.training)]
    proba = ctx.model.predict_proba(x) if ctx.task == TaskType.CLASSIFICATION else None
    if proba is not None and ctx.model.sklearn_classifier and ctx.model.classes is not None:
        pred = ctx.model.classes[np.argmax(proba, axis=1)]
    else:
        pred = ctx.model.predict(x)
    return _series(ctx, proba, pred)


_REFERENCE = ParamSpec(
    "reference", PREVIOUS, "What the dataset is compared against: previous_version (its "
    "validation data, the baseline in observability) or training", str,
    choices=(PREVIOUS, TRAINING))


class PredictionDriftCheck(Check):
    name = "prediction_drift"
    title = "Prediction distribution vs the previous version"
    description = ("PSI and Jensen-Shannon distance between the candidate's predictions on the "
                   "dataset and a reference: by default the previous version's predictions on "
                   "its validation data (its baseline in observability); `reference: "
                   "baseline_model` = the baseline version's predictions on the same rows; "
                   "`training` = the candidate's predictions on the training dataset. Compared: "
                   "the positive-class score for binary classifiers, the predicted label for "
                   "multiclass, the value for regression (10 quantile bins of the reference). "
                   "Without the previous version's baseline it falls back to baseline_model, then "
                   "training, and says so; SKIPPED when none is there.")
    thresholds = _DRIFT_LIMITS
    requires = (Requirement.DRIFT_REFERENCE,)
    params = (ParamSpec("bins", "10", "Quantile bins for numeric predictions", int),
              ParamSpec("reference", PREVIOUS, "previous_version, baseline_model or training",
                        str, choices=(PREVIOUS, BASELINE_MODEL, TRAINING)))

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        judge = Judge(self.thresholds, cfg)
        cand = prediction_series(ctx, baseline=False)
        wanted = cfg.param("reference")
        findings: list[str] = []
        base: pd.Series | None = None
        against = ""
        used = wanted
        if wanted == PREVIOUS:
            base, why = _previous_prediction_series(ctx)
            if base is not None:
                assert ctx.previous is not None
                against = f"version {ctx.previous.version}'s validation data ({len(base)} records)"
            elif ctx.baseline is not None:
                used = BASELINE_MODEL
                findings.append(f"fell back to the baseline model on the same rows: {why}")
            elif ctx.training is not None:
                used = TRAINING
                findings.append(f"fell back to the training dataset: {why}")
            else:
                raise Skip(f"{why}; no baseline version and no training dataset to fall back to")
        if used == BASELINE_MODEL:
            if ctx.baseline is None:
                raise Skip("reference baseline_model: no baseline version "
                           "(none given, no champion)")
            base = prediction_series(ctx, baseline=True)
            against = f"the baseline model ({ctx.baseline.name}) on the same rows"
        elif used == TRAINING:
            if ctx.training is None:
                raise Skip("reference training: no training dataset")
            base = _training_prediction_series(ctx)
            against = f"the candidate on the training dataset ({len(base)} rows)"
        assert base is not None
        psi, js = distribution_distance(base, cand, bins=cfg.param("bins"))
        judge.apply("max_psi", psi)
        judge.apply("max_js", js)
        measurements = [Measurement("psi", psi), Measurement("js", js),
                        Measurement("reference_rows", float(len(base)))]
        if used == BASELINE_MODEL and ctx.task == TaskType.CLASSIFICATION:
            pred, bpred = ctx.predictions, ctx.baseline_predictions
            measurements.append(Measurement("label_agreement", float(np.mean(pred == bpred))))
        elif cand.dtype != object:
            measurements.append(Measurement("mean_prediction", float(cand.mean()),
                                            baseline_value=float(pd.to_numeric(base).mean())))
        findings.insert(0, f"reference: {used}")
        return judge.result(self.name, measurements=measurements, findings=findings,
                            message=f"vs {against}")


class FeatureDriftCheck(Check):
    name = "feature_drift"
    title = "Feature distributions vs the previous version's validation data"
    description = ("PSI and Jensen-Shannon distance of the most important features (permutation "
                   "importance of the candidate) between a reference and the dataset (quantile "
                   "bins of the reference values; categories for non-numeric columns). The "
                   "reference is by default the previous version's validation data (its baseline "
                   "in observability); `reference: training` = the training dataset. Without the "
                   "previous version's baseline it falls back to the training dataset and says "
                   "so; SKIPPED when neither is there.")
    thresholds = _DRIFT_LIMITS
    requires = (Requirement.DRIFT_REFERENCE,)
    params = (ParamSpec("top_k", "5", "How many of the most important features; 0 = all", int),
              ParamSpec("bins", "10", "Quantile bins for numeric features", int),
              _REFERENCE)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        wanted = cfg.param("reference")
        findings: list[str] = []
        reference: pd.DataFrame | None = None
        lacking: list[str] = []
        if wanted == PREVIOUS:
            why = ctx.previous_missing
            if ctx.previous is not None:
                lacking = [f for f in ctx.features if f not in ctx.previous.frame]
                if len(ctx.previous.frame) == 0:
                    why = f"version {ctx.previous.version}'s baseline has no records"
                elif len(lacking) == len(ctx.features):
                    why = f"version {ctx.previous.version}'s baseline has none of the features"
                else:
                    reference = ctx.previous.frame
                    against = (f"version {ctx.previous.version}'s validation data "
                               f"({len(reference)} records)")
            if reference is None:
                if ctx.training is None:
                    raise Skip(f"{why}; no training dataset to fall back to")
                findings.append(f"fell back to the training dataset: {why}")
        used = PREVIOUS if reference is not None else TRAINING
        if reference is None:
            if ctx.training is None:
                raise Skip("reference training: no training dataset")
            reference = ctx.training
            against = f"the training dataset ({len(reference)} rows)"
        findings.insert(0, f"reference: {used}")
        judge = Judge(self.thresholds, cfg)
        importance = ctx.importance()
        ranked = sorted(ctx.features, key=lambda f: -importance.get(f, 0.0))
        top_k = cfg.param("top_k")
        chosen = ranked[:top_k] if top_k else ranked
        measurements = [Measurement("reference_rows", float(len(reference)))]
        drifted = []
        for feature in chosen:
            source = reference
            if feature in lacking:
                # the previous version did not take this input: its validation data has no
                # values of it; the training dataset is the only reference there is
                assert ctx.previous is not None
                if ctx.training is None or feature not in ctx.training:
                    findings.append(f"{feature}: not compared (not an input of version "
                                    f"{ctx.previous.version}, no training dataset)")
                    continue
                source = ctx.training
                findings.append(f"{feature}: compared with the training dataset (not an input "
                                f"of version {ctx.previous.version})")
            ref = source[feature]
            cur = ctx.data[feature]
            if pd.api.types.is_numeric_dtype(cur) and not pd.api.types.is_numeric_dtype(ref):
                ref = pd.to_numeric(ref, errors="coerce")
            psi, js = distribution_distance(ref, cur, bins=cfg.param("bins"))
            measurements += [Measurement("psi", psi, feature), Measurement("js", js, feature),
                             Measurement("importance", importance.get(feature, 0.0), feature)]
            if max(judge.apply("max_psi", psi, feature), judge.apply("max_js", js, feature)).failed:
                drifted.append(feature)
        result = judge.result(self.name, measurements=measurements, findings=findings)
        result.message = f"vs {against}" + ("; drifted: " + ", ".join(drifted) if drifted else "")
        return result
