"""Check 1: evaluation metrics overall and by slice, against limits and the baseline."""

from __future__ import annotations

import numpy as np

from modelplane.validator.checks.base import (
    Check,
    CheckContext,
    Judge,
    ParamSpec,
    ResolvedConfig,
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
from modelplane.validator.statistics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    classification_metrics,
    degradation,
    regression_metrics,
    slice_masks,
)

_ABS_LIMITS = {
    "accuracy": Bound.LOWER, "precision": Bound.LOWER, "recall": Bound.LOWER, "f1": Bound.LOWER,
    "roc_auc": Bound.LOWER, "log_loss": Bound.UPPER, "mae": Bound.UPPER, "rmse": Bound.UPPER,
    "mape": Bound.UPPER, "r2": Bound.LOWER,
}


def metric_threshold_name(metric: str) -> str:
    return f"{'min' if _ABS_LIMITS[metric] == Bound.LOWER else 'max'}_{metric}"


def metrics_of(ctx: CheckContext, rows: np.ndarray | slice,
               baseline: bool = False) -> dict[str, float]:
    """All metrics of the task on ``rows`` for the candidate (or the baseline)."""
    y = ctx.y[rows]
    pred = ctx.baseline_predictions if baseline else ctx.predictions
    assert pred is not None
    if ctx.task == TaskType.REGRESSION:
        return regression_metrics(y, pred[rows])
    proba = ctx.baseline_probabilities if baseline else ctx.probabilities
    return classification_metrics(y, pred[rows], None if proba is None else proba[rows],
                                  ctx.classes, ctx.positive)


class MetricsCheck(Check):
    name = "metrics"
    title = "Evaluation metrics overall and by slice"
    description = ("Classification: accuracy, precision, recall, F1 (binary: of the positive "
                   "class, else macro), ROC AUC, log loss; regression: MAE, RMSE, MAPE, R². "
                   "Overall and per slice column value (quantile bins for numbers), against "
                   "absolute limits and against the baseline version's value on the same rows.")
    thresholds = (
        *(ThresholdSpec(metric_threshold_name(m), b, f"{'Least' if b == Bound.LOWER else 'Most'} "
                        f"{m} allowed, overall and in every slice with enough rows")
          for m, b in _ABS_LIMITS.items()),
        ThresholdSpec("max_degradation", Bound.UPPER,
                      "Most any metric may be worse than the baseline's, absolute"),
        ThresholdSpec("max_relative_degradation", Bound.UPPER,
                      "Most any metric may be worse than the baseline's, as a fraction of it",
                      default=0.05),
    )
    params = (ParamSpec("min_slice_rows", "100", "Slices with fewer rows are reported, not judged",
                        int),
              ParamSpec("slice_bins", "4", "Quantile bins for numeric slice columns", int),
              ParamSpec("degradation_metrics", "",
                        "Metrics compared with the baseline's (comma-separated, e.g. "
                        "accuracy,roc_auc); empty = every metric. Precision of a baseline "
                        "that predicts the positive class a handful of times is noise",
                        str))

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        judge = Judge(self.thresholds, cfg)
        names = (CLASSIFICATION_METRICS if ctx.task == TaskType.CLASSIFICATION
                 else REGRESSION_METRICS)
        compared = {m.strip() for m in str(cfg.param("degradation_metrics")).split(",")
                    if m.strip()}
        unknown = sorted(compared - set(names))
        if unknown:
            raise ValueError(f"degradation_metrics: {', '.join(unknown)} not among this "
                             f"task's metrics ({', '.join(names)})")
        compared = compared or set(names)
        everything = slice(None)
        overall = metrics_of(ctx, everything)
        base = metrics_of(ctx, everything, baseline=True) if ctx.baseline is not None else {}
        measurements = self._judge(judge, overall, base, names, compared)
        slices: list[SliceResult] = []
        min_rows = cfg.param("min_slice_rows")
        for column in ctx.policy.slice_columns:
            for value, mask in slice_masks(ctx.data[column], bins=cfg.param("slice_bins")):
                rows = np.flatnonzero(mask)
                values = metrics_of(ctx, rows)
                base_values = metrics_of(ctx, rows,
                                         baseline=True) if ctx.baseline is not None else {}
                sr = SliceResult(column=column, value=value, row_count=len(rows))
                if len(rows) >= min_rows:
                    sub = Judge(self.thresholds, cfg)
                    sr.measurements = self._judge(sub, values, base_values, names, compared)
                    for outcome in sub.outcomes.values():  # slice breaches count for the check
                        judge.apply(outcome.name, outcome.measured, f"{column}={value}")
                    sr.status = sub.status
                else:
                    sr.measurements = [Measurement(n, values[n], "", base_values.get(n))
                                       for n in names if n in values]
                slices.append(sr)
        result = judge.result(self.name, measurements=measurements, slices=slices)
        bad = [s for s in slices if s.status > CheckStatus.PASS]
        result.message = (f"{len(bad)} slice(s) breach limits: "
                          + ", ".join(f"{s.column}={s.value}" for s in bad[:5])) if bad else ""
        if ctx.baseline is None:
            result.findings.append("no baseline version: baseline comparison not made")
        return result

    @staticmethod
    def _judge(judge: Judge, values: dict[str, float], base: dict[str, float],
               names: tuple[str, ...], compared: set[str]) -> list[Measurement]:
        out = []
        for name in names:
            if name not in values:
                continue
            value = values[name]
            out.append(Measurement(name, value, "", base.get(name)))
            judge.apply(metric_threshold_name(name), value, name)
            if name in base and name in compared:
                worse, rel = degradation(name, value, base[name])
                judge.apply("max_degradation", worse, name)
                judge.apply("max_relative_degradation", rel, name)
        return out
