"""Check 7: bias across the groups of each protected attribute."""

from __future__ import annotations

import numpy as np

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
from modelplane.validator.report import (
    Bound,
    CheckResult,
    CheckStatus,
    Measurement,
    SliceResult,
    TaskType,
)
from modelplane.validator.statistics import slice_masks


class BiasCheck(Check):
    name = "bias"
    title = "Bias across a protected attribute"
    description = ("For each protected attribute, per group (category, or quantile bin of a "
                   "number): classification — selection rate (predicted positive), true "
                   "positive rate and accuracy; demographic parity difference = max - min "
                   "selection rate, equal opportunity difference = max - min true positive rate "
                   "(as in fairlearn). Multiclass uses the positive class one-vs-rest. "
                   "Regression — mean prediction and MAE per group; gaps = max - min, relative "
                   "to the overall mean |target| / MAE.")
    thresholds = (
        ThresholdSpec("max_demographic_parity_difference", Bound.UPPER,
                      "Most gap in selection rate between groups", default=0.1),
        ThresholdSpec("max_equal_opportunity_difference", Bound.UPPER,
                      "Most gap in true positive rate between groups", default=0.1),
        ThresholdSpec("max_accuracy_difference", Bound.UPPER,
                      "Most gap in accuracy between groups"),
        ThresholdSpec("max_mean_prediction_gap", Bound.UPPER,
                      "Regression: most gap in mean prediction, relative to mean |target|",
                      default=0.1),
        ThresholdSpec("max_error_gap", Bound.UPPER,
                      "Regression: most gap in MAE, relative to the overall MAE", default=0.25),
    )
    params = (ParamSpec("min_group_rows", "30", "Groups with fewer rows are reported, not compared",
                        int),
              ParamSpec("bins", "4", "Quantile bins for numeric attributes", int))
    requires = (Requirement.PROTECTED,)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        if not ctx.policy.protected_attributes:
            raise Skip("no protected attributes in the policy")
        judge = Judge(self.thresholds, cfg)
        measurements: list[Measurement] = []
        slices: list[SliceResult] = []
        y, pred = ctx.y, ctx.predictions
        classification = ctx.task == TaskType.CLASSIFICATION
        if classification:
            positive = ctx.positive if ctx.positive is not None else ctx.classes[-1]
            y_pos, pred_pos = y == positive, pred == positive
        else:
            err = np.abs(pred.astype(float) - y.astype(float))
            scale_mean = float(np.mean(np.abs(y.astype(float)))) or 1.0
            scale_err = float(err.mean()) or 1.0
        for attribute in ctx.policy.protected_attributes:
            stats: dict[str, list[float]] = {}
            for value, mask in slice_masks(ctx.data[attribute], bins=cfg.param("bins")):
                count = int(mask.sum())
                sr = SliceResult(column=attribute, value=value, row_count=count)
                if classification:
                    group = {"selection_rate": float(pred_pos[mask].mean()) if count else np.nan,
                             "accuracy": float((pred[mask] == y[mask]).mean()) if count else np.nan,
                             "true_positive_rate": float(pred_pos[mask & y_pos].mean())
                             if (mask & y_pos).any() else np.nan}
                else:
                    group = {"mean_prediction": (float(pred[mask].astype(float).mean())
                                                 if count else np.nan),
                             "mae": float(err[mask].mean()) if count else np.nan}
                sr.measurements = [Measurement(k, v) for k, v in group.items()]
                slices.append(sr)
                if count >= cfg.param("min_group_rows"):
                    for k, v in group.items():
                        if not np.isnan(v):
                            stats.setdefault(k, []).append(v)
            gaps = {}
            if classification:
                gaps["demographic_parity_difference"] = self._gap(stats.get("selection_rate"))
                gaps["equal_opportunity_difference"] = self._gap(stats.get("true_positive_rate"))
                gaps["accuracy_difference"] = self._gap(stats.get("accuracy"))
            else:
                gaps["mean_prediction_gap"] = self._gap(stats.get("mean_prediction")) / scale_mean
                gaps["error_gap"] = self._gap(stats.get("mae")) / scale_err
            for k, v in gaps.items():
                measurements.append(Measurement(k, v, attribute))
                judge.apply(f"max_{k}", v, attribute)
        result = judge.result(self.name, measurements=measurements, slices=slices)
        for s in slices:
            s.status = CheckStatus.PASS
        unfair = sorted({o.subject for o in judge.outcomes.values() if o.status.failed})
        if unfair:
            result.message = "group gaps over the limit for: " + ", ".join(unfair)
        return result

    @staticmethod
    def _gap(values: list[float] | None) -> float:
        return float(max(values) - min(values)) if values and len(values) > 1 else 0.0
