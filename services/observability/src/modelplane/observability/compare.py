"""Two versions of one model over the same filter, in one analysis (CompareVersions).

Each side is the request's filter narrowed to one version, loaded once (both
reads charged to the running analysis's row budget). On those two frames the
existing analyses run unchanged: the metrics of ComputePerformance
(``frame_analysis.metric_values``), the drift of ComputeDrift (challenger against
champion) and the root cause of ComputeRootCause (champion as reference,
challenger as current, on one metric).

Confidence intervals, at ``confidence_level``:

- **accuracy**, a proportion of the labeled records: the Wilson score interval
  on each side; the difference (challenger - champion) by Newcombe's hybrid
  score interval (method 10 of Newcombe 1998), built from the two Wilson
  intervals. Both keep their coverage near the nominal level for small samples
  and proportions near 0 or 1, where the normal (Wald) interval does not.
- **every other metric** (precision, recall, F1, ROC AUC, log loss, MAE, RMSE,
  MAPE): the percentile bootstrap. Each side's labeled records are resampled
  with replacement, independently (the two versions answered different
  requests), the metric recomputed on each resample by the same code as the
  point value; the difference's interval comes from the differences of the
  paired resample values. A resample where the metric is undefined (one class
  for AUC) is left out; with fewer than half defined there is no interval.

The bootstrap's cost is resamples x labeled records per side: the resamples
are cut so that it stays under ``MAX_BOOTSTRAP_CELLS`` (never below
``MIN_BOOTSTRAP_RESAMPLES``), and the response says how many were used.

Blocking (numpy): the api layer runs it under the analysis gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.observability import metrics as M
from modelplane.observability.drift import DriftThresholds
from modelplane.observability.evaluations import Evaluations
from modelplane.observability.frame_analysis import (
    DEFAULT_THRESHOLDS,
    check_metrics,
    drift_of,
    infer_task,
    metric_values,
)
from modelplane.observability.frame_analysis import drift_columns as columns_to_drift
from modelplane.observability.records import ColumnRef, EvaluationFilter
from modelplane.observability.reports import ColumnDriftResult, RootCauseReport
from modelplane.observability.root_cause import root_cause_of
from modelplane.observability.store.frames import Frame

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 1000
MAX_RESAMPLES = 10_000
MIN_BOOTSTRAP_RESAMPLES = 200
#: resamples x labeled records of one side, at most (the bootstrap's work)
MAX_BOOTSTRAP_CELLS = 50_000_000


class IntervalMethod:
    """How an interval was computed (numbers as in the contract)."""

    WILSON = 1
    BOOTSTRAP = 2


@dataclass(frozen=True)
class Interval:
    value: float | None
    lower: float = 0.0
    upper: float = 0.0

    @property
    def defined(self) -> bool:
        return self.value is not None


NO_INTERVAL = Interval(None)


@dataclass
class MetricComparison:
    metric: M.Metric
    method: int
    champion: Interval
    challenger: Interval
    difference: Interval

    @property
    def significant(self) -> bool:
        d = self.difference
        return d.defined and (d.lower > 0 or d.upper < 0)

    @property
    def challenger_better(self) -> bool:
        d = self.difference.value
        if d is None:
            return False
        return d > 0 if self.metric in M.HIGHER_IS_BETTER else d < 0


@dataclass
class VersionComparison:
    task: M.TaskType
    confidence_level: float
    resamples: int
    champion_count: int
    champion_labeled: int
    challenger_count: int
    challenger_labeled: int
    metrics: list[MetricComparison]
    drift: list[ColumnDriftResult]
    root_cause_metric: M.Metric
    root_cause: RootCauseReport

    @property
    def drifted_share(self) -> float:
        if not self.drift:
            return 0.0
        return sum(c.drift.drifted for c in self.drift) / len(self.drift)


def _bad(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}",
                           field_violations=[FieldViolation(field, description)])


def wilson(successes: int, n: int, z: float) -> Interval:
    """The Wilson score interval of successes / n."""
    if n == 0:
        return NO_INTERVAL
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return Interval(p, max(center - half, 0.0), min(center + half, 1.0))


def newcombe_difference(champion: Interval, challenger: Interval) -> Interval:
    """Newcombe's hybrid score interval of challenger - champion from their Wilson
    intervals (method 10)."""
    if champion.value is None or challenger.value is None:
        return NO_INTERVAL
    p1, l1, u1 = champion.value, champion.lower, champion.upper
    p2, l2, u2 = challenger.value, challenger.lower, challenger.upper
    d = p2 - p1
    return Interval(d, d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
                    d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


def _percentile(values: np.ndarray, point: float | None, alpha: float) -> Interval:
    ok = values[~np.isnan(values)]
    if point is None or len(ok) < max(len(values) // 2, 1):
        return Interval(point) if point is not None else NO_INTERVAL
    lo, hi = np.quantile(ok, [alpha / 2, 1 - alpha / 2])
    return Interval(point, float(lo), float(hi))


def _slim(frame: Frame) -> Frame:
    """The columns the metrics read (no features, no tags): cheap to resample."""
    return Frame(frame.prediction_id, frame.version, frame.environment, frame.time_us,
                 frame.prediction_label, frame.prediction_number, frame.actual_label,
                 frame.actual_number, frame.scores, {}, {}, frame.kinds)


def compare_versions(evaluations: Evaluations, f: EvaluationFilter, champion: str,
                     challenger: str, metrics: Sequence[M.Metric] = (),
                     task: M.TaskType = M.TaskType.UNSPECIFIED, positive: str = "",
                     average: M.ClassAverage = M.ClassAverage.UNSPECIFIED,
                     confidence_level: float = 0.0, resamples: int = 0, seed: int = 0,
                     root_cause_metric: M.Metric = M.Metric.UNSPECIFIED,
                     root_cause_columns: Sequence[ColumnRef] = (), max_slices: int = 10,
                     min_slice_size: int = 30, drift_columns: Sequence[ColumnRef] = (),
                     thresholds: DriftThresholds = DEFAULT_THRESHOLDS) -> VersionComparison:
    if f.versions:
        raise _bad("filter.versions", "must be empty: name the versions in champion_version "
                   "and challenger_version")
    if not champion:
        raise _bad("champion_version", "required")
    if not challenger:
        raise _bad("challenger_version", "required")
    if champion == challenger:
        raise _bad("challenger_version", "must differ from champion_version")
    level = confidence_level or DEFAULT_CONFIDENCE
    if not 0.5 < level < 1.0:
        raise _bad("confidence_level", "must be strictly between 0.5 and 1 (0 = 0.95)")
    if resamples < 0 or resamples > MAX_RESAMPLES:
        raise _bad("bootstrap_resamples", f"must be between 1 and {MAX_RESAMPLES} "
                   f"(0 = {DEFAULT_RESAMPLES})")
    ref, catalog = evaluations.load(replace(f, versions=(champion,)), "champion_version")
    cur, _ = evaluations.load(replace(f, versions=(challenger,)), "challenger_version")
    task = infer_task(cur if len(cur) else ref, catalog, task)
    ms = check_metrics(metrics, task, "metrics")
    rc_metric = root_cause_metric
    if rc_metric is M.Metric.UNSPECIFIED:
        rc_metric = M.Metric.ACCURACY if task is M.TaskType.CLASSIFICATION else M.Metric.MAE
    check_metrics([rc_metric], task, "root_cause_metric")

    def values(fr: Frame) -> tuple[int, dict[M.Metric, float | None]]:
        return metric_values(fr, task, ms, positive, average)

    ref_labeled, ref_values = values(ref)
    cur_labeled, cur_values = values(cur)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    n_boot = resamples or DEFAULT_RESAMPLES
    largest = max(ref_labeled, cur_labeled, 1)
    n_boot = max(min(n_boot, MAX_BOOTSTRAP_CELLS // largest), min(n_boot,
                                                                   MIN_BOOTSTRAP_RESAMPLES))
    boot = [m for m in ms if m is not M.Metric.ACCURACY]
    rng = np.random.default_rng(seed)
    ref_boot = _bootstrap(_slim(ref), values, boot, n_boot, rng) if boot else {}
    cur_boot = _bootstrap(_slim(cur), values, boot, n_boot, rng) if boot else {}
    alpha = 1 - level
    out: list[MetricComparison] = []
    for m in ms:
        a, b = ref_values.get(m), cur_values.get(m)
        if m is M.Metric.ACCURACY:
            ia = wilson(round((a or 0.0) * ref_labeled), ref_labeled, z) if a is not None \
                else NO_INTERVAL
            ib = wilson(round((b or 0.0) * cur_labeled), cur_labeled, z) if b is not None \
                else NO_INTERVAL
            out.append(MetricComparison(m, IntervalMethod.WILSON, ia, ib,
                                        newcombe_difference(ia, ib)))
            continue
        diff = None if a is None or b is None else b - a
        out.append(MetricComparison(
            m, IntervalMethod.BOOTSTRAP, _percentile(ref_boot[m], a, alpha),
            _percentile(cur_boot[m], b, alpha),
            _percentile(cur_boot[m] - ref_boot[m], diff, alpha)))
    drift = drift_of(
        ref, cur, columns_to_drift(catalog, drift_columns, f.model, "drift_columns"),
        (), thresholds, 10, evaluations.executor)
    rc = root_cause_of(ref, cur, catalog, f.model, rc_metric, None, root_cause_columns,
                       max_slices or 10, 2, min_slice_size or 30, 4, positive,
                       "root_cause_columns")
    return VersionComparison(task, level, n_boot if boot else 0, len(ref), ref_labeled, len(cur),
                             cur_labeled, out, drift, rc_metric, rc)


def _bootstrap(frame: Frame,
               values: Callable[[Frame], tuple[int, dict[M.Metric, float | None]]],
               metrics: Sequence[M.Metric], resamples: int, rng: np.random.Generator
               ) -> dict[M.Metric, np.ndarray]:
    """Each metric on ``resamples`` resamples (with replacement) of the labeled
    records; NaN where the metric is undefined on a resample."""
    labeled = frame.take(np.flatnonzero(frame.has_actual))
    out = {m: np.full(resamples, np.nan) for m in metrics}
    n = len(labeled)
    if n == 0:
        return out
    for i in range(resamples):
        _, vals = values(labeled.take(rng.integers(0, n, n)))
        for m in metrics:
            v = vals.get(m)
            if v is not None:
                out[m][i] = v
    return out


__all__ = ["IntervalMethod", "MetricComparison", "VersionComparison", "compare_versions",
           "newcombe_difference", "wilson"]
