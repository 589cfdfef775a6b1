"""Check 11: backtesting — metrics on successive historical windows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import Bound, CheckResult, CheckStatus, Measurement, SliceResult, TaskType
from ..statistics import CLASSIFICATION_METRICS, HIGHER_IS_BETTER, REGRESSION_METRICS, degradation
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
from .metrics import metrics_of


class BacktestCheck(Check):
    name = "backtest"
    title = "Backtesting on successive historical windows"
    description = ("Splits the dataset (a featurestore point-in-time dataset spanning history) "
                   "by its event timestamp into `windows` successive windows of equal duration "
                   "and computes the task's metrics in each. Judged on the window where the "
                   "`metric` is worst: its absolute value and its degradation relative to the "
                   "whole dataset.")
    thresholds = (
        ThresholdSpec("min_window_score", Bound.LOWER,
                      "Least value of `metric` (higher-is-better metrics) in any window"),
        ThresholdSpec("max_window_error", Bound.UPPER,
                      "Most value of `metric` (lower-is-better metrics) in any window"),
        ThresholdSpec("max_window_degradation", Bound.UPPER,
                      "Most relative degradation of `metric` in a window vs all rows", default=0.1),
    )
    params = (ParamSpec("windows", "4", "Number of successive windows", int),
              ParamSpec("metric", "", "Metric judged; default ROC AUC / accuracy or RMSE", str),
              ParamSpec("min_window_rows", "50", "Windows with fewer rows are reported, not judged", int))
    requires = (Requirement.EVENT_TIME,)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        column = ctx.policy.event_timestamp_column
        if not column:
            raise Skip("no event_timestamp_column in the policy")
        judge = Judge(self.thresholds, cfg)
        names = CLASSIFICATION_METRICS if ctx.task == TaskType.CLASSIFICATION else REGRESSION_METRICS
        metric = cfg.param("metric") or ("roc_auc" if ctx.probabilities is not None and ctx.positive is not None
                                         else "accuracy" if ctx.task == TaskType.CLASSIFICATION else "rmse")
        if metric not in names:
            raise Skip(f"metric {metric!r} does not apply to {ctx.task.value}")
        ts = pd.to_datetime(ctx.data[column], utc=True)
        start, end = ts.min(), ts.max()
        if start == end:
            raise Skip(f"{column} holds a single time")
        count = cfg.param("windows")
        edges = pd.date_range(start, end, periods=count + 1)
        overall = metrics_of(ctx, slice(None))
        slices: list[SliceResult] = []
        measurements = [Measurement(metric, overall.get(metric, np.nan), "all")]
        ts_values = ts.dt.tz_localize(None).to_numpy()  # UTC, naive datetime64
        higher = HIGHER_IS_BETTER[metric]
        for i in range(count):
            lo, hi = edges[i], edges[i + 1]
            lo64, hi64 = lo.tz_localize(None).to_datetime64(), hi.tz_localize(None).to_datetime64()
            mask = (ts_values >= lo64) & ((ts_values <= hi64) if i == count - 1 else (ts_values < hi64))
            rows = np.flatnonzero(mask)
            label = f"[{lo.isoformat()}, {hi.isoformat()}{']' if i == count - 1 else ')'}"
            values = metrics_of(ctx, rows)
            sr = SliceResult(column=column, value=label, row_count=len(rows),
                             measurements=[Measurement(n, values[n]) for n in names if n in values])
            if len(rows) >= cfg.param("min_window_rows") and metric in values:
                value = values[metric]
                measurements.append(Measurement(metric, value, label))
                sub = [judge.apply("min_window_score" if higher else "max_window_error", value, label)]
                if metric in overall:
                    _, rel = degradation(metric, value, overall[metric])
                    measurements.append(Measurement("relative_degradation", rel, label))
                    sub.append(judge.apply("max_window_degradation", rel, label))
                sr.status = max(sub)
            else:
                sr.status = CheckStatus.SKIPPED
            slices.append(sr)
        result = judge.result(self.name, measurements=measurements, slices=slices,
                              findings=[f"metric judged: {metric}"])
        worst = [s.value for s in slices if s.status.failed]
        if worst:
            result.message = f"{metric} out of limits in window(s): " + ", ".join(worst)
        return result
