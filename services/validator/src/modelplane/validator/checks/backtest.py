"""Check 11: backtesting — metrics on successive historical windows.

Given a ``feature_service`` (or ``feature_refs``) and a featurestore, each window's rows
are built point-in-time by the featurestore: the dataset's entity rows of the window
(join keys, event time, label, extra columns) go to ``CreateDataset``, which joins every
feature as of each row's own event time, and the model is scored on what comes back.
The window datasets are kept (their ids are in the findings) so the numbers can be
reproduced. Without a feature service the dataset given to the run is split by time.
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
from modelplane.validator.checks.metrics import metrics_of
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
    HIGHER_IS_BETTER,
    REGRESSION_METRICS,
    classification_metrics,
    degradation,
    regression_metrics,
)


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
              ParamSpec("min_window_rows", "50", "Windows with fewer rows are reported, not judged",
                        int),
              ParamSpec("feature_service", "", "Featurestore feature service whose features are "
                        "joined point-in-time into each window's entity rows", str),
              ParamSpec("feature_refs", "", "Or: comma-separated `<view>:<feature>` references",
                        str))
    requires = (Requirement.EVENT_TIME,)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        column = ctx.policy.event_timestamp_column
        if not column:
            raise Skip("no event_timestamp_column in the policy")
        judge = Judge(self.thresholds, cfg)
        names = (CLASSIFICATION_METRICS if ctx.task == TaskType.CLASSIFICATION
                 else REGRESSION_METRICS)
        if ctx.probabilities is not None and ctx.positive is not None:
            default_metric = "roc_auc"
        else:
            default_metric = "accuracy" if ctx.task == TaskType.CLASSIFICATION else "rmse"
        metric = cfg.param("metric") or default_metric
        if metric not in names:
            raise Skip(f"metric {metric!r} does not apply to {ctx.task.value}")
        ts = pd.to_datetime(ctx.data[column], utc=True)
        start, end = ts.min(), ts.max()
        if start == end:
            raise Skip(f"{column} holds a single time")
        count = cfg.param("windows")
        edges = pd.date_range(start, end, periods=count + 1)
        service, refs = cfg.param("feature_service"), [
            r.strip() for r in cfg.param("feature_refs").split(",") if r.strip()]
        point_in_time = bool(service or refs)
        findings = [f"metric judged: {metric}"]
        window_metrics: list[dict[str, float]] = []
        window_rows: list[int] = []
        if point_in_time:
            overall = self._point_in_time(ctx, column, edges, service, refs, window_metrics,
                                          window_rows, findings)
        else:
            overall = metrics_of(ctx, slice(None))
            findings.append("windows: the run's dataset split by event time (no feature service)")
        slices: list[SliceResult] = []
        measurements = [Measurement(metric, overall.get(metric, np.nan), "all")]
        ts_values = ts.dt.tz_localize(None).to_numpy()  # UTC, naive datetime64
        higher = HIGHER_IS_BETTER[metric]
        for i in range(count):
            lo, hi = edges[i], edges[i + 1]
            lo64, hi64 = lo.tz_localize(None).to_datetime64(), hi.tz_localize(None).to_datetime64()
            below_hi = (ts_values <= hi64) if i == count - 1 else (ts_values < hi64)
            mask = (ts_values >= lo64) & below_hi
            rows = np.flatnonzero(mask)
            label = f"[{lo.isoformat()}, {hi.isoformat()}{']' if i == count - 1 else ')'}"
            if point_in_time:
                values = window_metrics[i]
                rows = np.arange(window_rows[i])
            else:
                values = metrics_of(ctx, rows)
            sr = SliceResult(column=column, value=label, row_count=len(rows),
                             measurements=[Measurement(n, values[n]) for n in names if n in values])
            if len(rows) >= cfg.param("min_window_rows") and metric in values:
                value = values[metric]
                measurements.append(Measurement(metric, value, label))
                sub = [judge.apply("min_window_score" if higher else "max_window_error", value,
                                   label)]
                if metric in overall:
                    _, rel = degradation(metric, value, overall[metric])
                    measurements.append(Measurement("relative_degradation", rel, label))
                    sub.append(judge.apply("max_window_degradation", rel, label))
                sr.status = max(sub)
            else:
                sr.status = CheckStatus.SKIPPED
            slices.append(sr)
        result = judge.result(self.name, measurements=measurements, slices=slices,
                              findings=findings)
        worst = [s.value for s in slices if s.status.failed]
        if worst:
            result.message = f"{metric} out of limits in window(s): " + ", ".join(worst)
        return result

    def _point_in_time(self, ctx: CheckContext, column: str, edges: pd.DatetimeIndex,
                       service: str, refs: list[str], window_metrics: list[dict[str, float]],
                       window_rows: list[int], findings: list[str]) -> dict[str, float]:
        """Each window rebuilt by the featurestore as of its rows' event times; metrics per
        window appended to ``window_metrics``; the metrics over all windows returned."""
        if ctx.history is None:
            raise Skip("a feature service is named but the validator has no featurestore")
        keys = [k for k in ctx.policy.entity_columns if k in ctx.data.columns]
        if not keys:
            raise Skip("point-in-time windows need the entity columns (policy.entity_columns)")
        what = f"feature service {service!r}" if service else "features " + ", ".join(refs)
        findings.append(f"windows: built point-in-time by the featurestore from {what}, "
                        "entity rows = the dataset's rows of each window")
        ts = pd.to_datetime(ctx.data[column], utc=True)
        entity = ctx.data.copy()
        entity[column] = ts.astype("datetime64[us, UTC]")
        ys: list[np.ndarray] = []
        preds: list[np.ndarray] = []
        probas: list[np.ndarray] = []
        count = len(edges) - 1
        for i in range(count):
            lo, hi = edges[i], edges[i + 1]
            mask = (ts >= lo) & ((ts <= hi) if i == count - 1 else (ts < hi))
            rows = entity[mask.to_numpy()]
            if rows.empty:
                window_metrics.append({})
                window_rows.append(0)
                continue
            frame, dataset_id = ctx.history.historical_features(
                rows.reset_index(drop=True), column, feature_service=service, feature_refs=refs,
                name=f"{ctx.run_name}_backtest_w{i}")
            findings.append(f"window {i}: featurestore dataset {dataset_id} ({len(frame)} rows)")
            y = frame[ctx.label].to_numpy()
            x = frame[ctx.features]
            proba = ctx.model.predict_proba(x) if ctx.task == TaskType.CLASSIFICATION else None
            if proba is not None and ctx.model.sklearn_classifier and ctx.model.classes is not None:
                pred = ctx.model.classes[np.argmax(proba, axis=1)]
            else:
                pred = ctx.model.predict(x)
            window_metrics.append(self._metrics(ctx, y, pred, proba))
            window_rows.append(len(frame))
            ys.append(y)
            preds.append(pred)
            if proba is not None:
                probas.append(proba)
        if not ys:
            return {}
        return self._metrics(ctx, np.concatenate(ys), np.concatenate(preds),
                             np.concatenate(probas) if probas else None)

    @staticmethod
    def _metrics(ctx: CheckContext, y: np.ndarray, pred: np.ndarray,
                 proba: np.ndarray | None) -> dict[str, float]:
        if ctx.task == TaskType.REGRESSION:
            return regression_metrics(y, pred)
        return classification_metrics(y, pred, proba, ctx.classes, ctx.positive)
