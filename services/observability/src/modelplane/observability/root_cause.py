"""Root cause: which slices of the records explain a metric's drop or a column's
drift between a reference and a current frame.

Candidate slices are single column values (numeric columns binned by quantiles)
and, with ``max_depth`` 2, pairs of the best single slices over different
columns. Each slice is scored by how concentrated the change is in it (see
``_contribution``); a pair is listed only when it clearly outscores both of its
parts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from modelplane.observability import metrics as M
from modelplane.observability.drift import DriftMethod, categorical_drift, numeric_drift
from modelplane.observability.frame_analysis import check_metrics, infer_task, metric_values
from modelplane.observability.records import (
    PREDICTION,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    SlicePredicate,
)
from modelplane.observability.reports import RootCauseReport, SliceContribution
from modelplane.observability.slices import candidate_slices, check_column, slice_mask
from modelplane.observability.store.encoding import Catalog
from modelplane.observability.store.frames import Frame

_PAIR_MARGIN = 1.5


def rank(s: SliceContribution) -> tuple[float, float]:
    """Highest score first; slices that score 0 (no concentration) by contribution."""
    return (-s.score, -s.contribution)


def root_cause_of(ref: Frame, cur: Frame, catalog: Catalog, model: str,
                  metric: M.Metric | None = None, drift_column: ColumnRef | None = None,
                  columns: Sequence[ColumnRef] = (), max_slices: int = 10,
                  max_depth: int = 2, min_slice_size: int = 30, bins: int = 4,
                  positive: str = "", path: str = "columns") -> RootCauseReport:
    """The slices of ``cur`` that explain most of its change from ``ref`` (frames
    already loaded: Evaluations.root_cause reads them, CompareVersions passes two versions)."""
    kinds = catalog.columns()
    kinds.setdefault(PREDICTION, ColumnKind.CATEGORICAL)
    if columns:
        cols = [(c, check_column(c, kinds, model, f"{path}[{i}]"))
                for i, c in enumerate(columns)]
    else:
        cols = [(c, k) for c, k in sorted(kinds.items())
                if c.source in (ColumnSource.FEATURE, ColumnSource.TAG)]
    obj = _objective(ref, cur, catalog, metric, drift_column, kinds, model, positive)
    overall_change = obj.degrade(None, None)
    singles: list[SliceContribution] = []
    col_of: dict[int, ColumnRef] = {}
    for col, kind in cols:
        for preds in candidate_slices(col, kind, [ref, cur], bins or 4):
            c = _contribution(ref, cur, preds, obj, overall_change, min_slice_size)
            if c is not None:
                col_of[id(c)] = col
                singles.append(c)
    singles.sort(key=rank)
    found = list(singles)
    if max_depth != 1:
        top = [s for s in singles if s.contribution > 0][:8]
        for a, b in itertools.combinations(top, 2):
            if col_of[id(a)] == col_of[id(b)]:
                continue
            c = _contribution(ref, cur, a.slice + b.slice, obj, overall_change,
                              min_slice_size)
            # the simpler slice stays first unless the pair is clearly more to blame
            if c is not None and c.score > _PAIR_MARGIN * max(a.score, b.score):
                found.append(c)
    found.sort(key=rank)
    return RootCauseReport(obj.within(0, None), obj.within(1, None), found[:max_slices or 10])


Mask = np.ndarray | None  # rows of one side (None: all of them)


class _Objective:
    """What root cause explains, on the rows of either side (0 the reference, 1 the
    current frame) that a mask picks: ``within`` the objective on one side's rows,
    ``degrade`` how much worse the current rows are than the reference rows."""

    is_drift = False
    sign = 1.0

    def within(self, side: int, mask: Mask) -> float:
        raise NotImplementedError

    def degrade(self, ref_mask: Mask, cur_mask: Mask) -> float:
        return self.sign * (self.within(0, ref_mask) - self.within(1, cur_mask))


class _MetricOnRows(_Objective):
    """A metric computed on the picked rows themselves (ROC AUC and log loss need
    every score: no sums give them)."""

    def __init__(self, frames: tuple[Frame, Frame], task: M.TaskType, metric: M.Metric,
                 positive: str, sign: float) -> None:
        self.frames, self.task, self.metric = frames, task, metric
        self.positive, self.sign = positive, sign

    def within(self, side: int, mask: Mask) -> float:
        fr = self.frames[side]
        if mask is not None:
            fr = fr.take(np.flatnonzero(mask))
        _, vals = metric_values(fr, self.task, [self.metric], self.positive,
                                M.ClassAverage.UNSPECIFIED)
        v = vals[self.metric]
        return float("nan") if v is None else v


class _ConfusionCounts(_Objective):
    """A classification metric from the (predicted, actual) pair counts of the picked
    rows (:func:`metrics.confusion_metrics`, the same values as on the rows): each
    row coded once, a slice and its rest are a bincount each, not copies of the frame."""

    def __init__(self, frames: tuple[Frame, Frame], metric: M.Metric, positive: str,
                 sign: float, score_keys: list[str]) -> None:
        self.metric, self.positive, self.sign = metric, positive, sign
        self.pairs = M.LabelPairs([(fr.prediction_label, fr.actual_label) for fr in frames])
        # the catalog's, as the rows' metric sees them (the frames may be read without)
        self.score_keys = score_keys

    def within(self, side: int, mask: Mask) -> float:
        v = M.confusion_metrics(self.pairs.cells(side, mask), self.score_keys, [self.metric],
                                self.positive or None)[self.metric]
        return float("nan") if v is None else v


class _ErrorSums(_Objective):
    """A regression metric from the picked rows' sums of absolute, squared and
    relative error (:func:`metrics.regression_sums_metrics`)."""

    def __init__(self, frames: tuple[Frame, Frame], metric: M.Metric, sign: float) -> None:
        self.metric, self.sign = metric, sign
        self.rows = []
        for fr in frames:
            ok, abs_error, squared, relative = M.error_terms(fr.actual_number,
                                                             fr.prediction_number)
            self.rows.append(np.column_stack([ok.astype(np.float64), abs_error, squared,
                                              relative]))

    def within(self, side: int, mask: Mask) -> float:
        rows = self.rows[side] if mask is None else self.rows[side][mask]
        labeled, abs_error, squared, relative = rows.sum(axis=0).tolist()
        v = M.regression_sums_metrics(int(labeled), abs_error, squared, relative,
                                      [self.metric])[self.metric]
        return float("nan") if v is None else v


class _Drift(_Objective):
    """The drift of one column between the sides' picked rows; within a side, its
    number of rows."""

    is_drift = True

    def __init__(self, frames: tuple[Frame, Frame], col: ColumnRef, numeric: bool) -> None:
        self.values = (frames[0].column(col), frames[1].column(col))
        self.numeric = numeric

    def within(self, side: int, mask: Mask) -> float:
        return float(len(self.values[side]) if mask is None else int(mask.sum()))

    def degrade(self, ref_mask: Mask, cur_mask: Mask) -> float:
        r, c = self.values
        r = r if ref_mask is None else r[ref_mask]
        c = c if cur_mask is None else c[cur_mask]
        if self.numeric:
            s = numeric_drift(r, c, [DriftMethod.WASSERSTEIN]).statistic(
                DriftMethod.WASSERSTEIN)
        else:
            s = categorical_drift(r, c, [DriftMethod.JENSEN_SHANNON]).statistic(
                DriftMethod.JENSEN_SHANNON)
        return 0.0 if s is None else s.value


def _objective(ref: Frame, cur: Frame, catalog: Catalog, metric: M.Metric | None,
               drift_column: ColumnRef | None, kinds: dict[ColumnRef, ColumnKind],
               model: str, positive: str) -> _Objective:
    """The metric's drop (sign +1 when higher is better, -1 when lower is) or the
    drift of ``drift_column`` (the prediction when neither is given)."""
    frames = (ref, cur)
    if metric is not None and metric is not M.Metric.UNSPECIFIED:
        task = infer_task(cur, catalog, M.TaskType.UNSPECIFIED)
        check_metrics([metric], task, "objective.metric")
        sign = 1.0 if metric in M.HIGHER_IS_BETTER else -1.0
        if task is M.TaskType.REGRESSION:
            return _ErrorSums(frames, metric, sign)
        if metric in (M.Metric.ROC_AUC, M.Metric.LOG_LOSS):
            return _MetricOnRows(frames, task, metric, positive, sign)
        return _ConfusionCounts(frames, metric, positive, sign, catalog.score_keys())
    col = drift_column or PREDICTION
    kind = check_column(col, kinds, model, "objective.drift_column")
    return _Drift(frames, col, kind is ColumnKind.NUMERIC)


def _contribution(ref: Frame, cur: Frame, preds: tuple[SlicePredicate, ...],
                  obj: _Objective, overall: float, min_size: int
                  ) -> SliceContribution | None:
    rm = slice_mask(ref, preds)
    cm = slice_mask(cur, preds)
    n_ref, n_cur = int(rm.sum()), int(cm.sum())
    if n_cur < (min_size or 30) or n_cur == len(cur):
        return None
    rest = obj.degrade(~rm, ~cm)
    if math.isnan(rest) or math.isnan(overall):
        return None
    contribution = overall - rest
    share = contribution / overall if overall else 0.0
    # the slice's share of the records, on the side where it is larger: a slice
    # that traffic moved into must not look more concentrated than it is
    records = max(n_ref / len(ref) if len(ref) else 0.0, n_cur / len(cur))
    lift = share / records
    if obj.is_drift:  # drift objective: the slice's share of records on each side
        ref_value = n_ref / len(ref) if len(ref) else 0.0
        cur_value = n_cur / len(cur)
        # How far the slice's share of the drift exceeds its share of the
        # records: a segment with most of the records carries most of any drift
        # (score about 0); a city with a fifth of the records and most of the
        # drift comes first.
        score = max(share - records, 0.0)
    else:
        ref_value = obj.within(0, rm) if n_ref else float("nan")
        cur_value = obj.within(1, cm)
        # How much more the metric dropped inside the slice than outside it,
        # squared and weighted by w(1-w): the split criterion of a regression
        # tree on the drop, for accuracy roughly proportional to the squared
        # z-score of the difference. Leaving the slice out (the contribution)
        # cannot tell a large segment that holds most of the affected records,
        # or whose rest happened to improve, from the small slice where the
        # drop is. (The drop inside is degrade() of the values just computed.)
        gap = obj.sign * (ref_value - cur_value) - rest
        score = records * (1.0 - records) * gap * gap if gap > 0 else 0.0
    return SliceContribution(preds, contribution, share, n_ref, n_cur, ref_value,
                             cur_value, lift, score)
