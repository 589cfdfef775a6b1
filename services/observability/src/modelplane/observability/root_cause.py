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
from collections.abc import Callable, Sequence

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
    objective = _objective(cur, catalog, metric, drift_column, kinds, model, positive)
    degrade, within, is_drift, sign = objective
    overall_change = degrade(ref, cur)
    singles: list[SliceContribution] = []
    col_of: dict[int, ColumnRef] = {}
    for col, kind in cols:
        for preds in candidate_slices(col, kind, [ref, cur], bins or 4):
            c = _contribution(ref, cur, preds, degrade, within, is_drift, sign,
                              overall_change, min_slice_size)
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
            c = _contribution(ref, cur, a.slice + b.slice, degrade, within,
                              is_drift, sign, overall_change, min_slice_size)
            # the simpler slice stays first unless the pair is clearly more to blame
            if c is not None and c.score > _PAIR_MARGIN * max(a.score, b.score):
                found.append(c)
    found.sort(key=rank)
    ref_value, cur_value = within(ref), within(cur)
    return RootCauseReport(ref_value, cur_value, found[:max_slices or 10])

def _objective(cur: Frame, catalog: Catalog, metric: M.Metric | None,
               drift_column: ColumnRef | None, kinds: dict[ColumnRef, ColumnKind],
               model: str, positive: str
               ) -> tuple[Callable[[Frame, Frame], float], Callable[[Frame], float], bool,
                          float]:
    """(how much worse the current side is, the objective on one side, whether it
    is drift, and for a metric +1 when higher is better, -1 when lower is)."""
    if metric is not None and metric is not M.Metric.UNSPECIFIED:
        task = infer_task(cur, catalog, M.TaskType.UNSPECIFIED)
        check_metrics([metric], task, "objective.metric")
        sign = 1.0 if metric in M.HIGHER_IS_BETTER else -1.0

        def value(fr: Frame) -> float:
            _, vals = metric_values(fr, task, [metric], positive, M.ClassAverage.UNSPECIFIED)
            v = vals[metric]
            return float("nan") if v is None else v

        def degrade(r: Frame, c: Frame) -> float:
            return sign * (value(r) - value(c))

        return degrade, value, False, sign
    col = drift_column or PREDICTION
    kind = check_column(col, kinds, model, "objective.drift_column")
    numeric = kind is ColumnKind.NUMERIC

    def statistic(r: Frame, c: Frame) -> float:
        if numeric:
            d = numeric_drift(r.column(col), c.column(col), [DriftMethod.WASSERSTEIN])
            s = d.statistic(DriftMethod.WASSERSTEIN)
        else:
            d = categorical_drift(r.column(col), c.column(col), [DriftMethod.JENSEN_SHANNON])
            s = d.statistic(DriftMethod.JENSEN_SHANNON)
        return 0.0 if s is None else s.value

    return statistic, lambda fr: float(len(fr)), True, 1.0

def _contribution(ref: Frame, cur: Frame, preds: tuple[SlicePredicate, ...],
                  degrade: Callable[[Frame, Frame], float], within: Callable[[Frame], float],
                  is_drift: bool, sign: float, overall: float, min_size: int
                  ) -> SliceContribution | None:
    rm = slice_mask(ref, preds)
    cm = slice_mask(cur, preds)
    n_ref, n_cur = int(rm.sum()), int(cm.sum())
    if n_cur < (min_size or 30) or n_cur == len(cur):
        return None
    rest = degrade(ref.take(np.flatnonzero(~rm)), cur.take(np.flatnonzero(~cm)))
    if math.isnan(rest) or math.isnan(overall):
        return None
    contribution = overall - rest
    share = contribution / overall if overall else 0.0
    # the slice's share of the records, on the side where it is larger: a slice
    # that traffic moved into must not look more concentrated than it is
    records = max(n_ref / len(ref) if len(ref) else 0.0, n_cur / len(cur))
    lift = share / records
    if is_drift:  # drift objective: the slice's share of records on each side
        ref_value = n_ref / len(ref) if len(ref) else 0.0
        cur_value = n_cur / len(cur)
        # How far the slice's share of the drift exceeds its share of the
        # records: a segment with most of the records carries most of any drift
        # (score about 0); a city with a fifth of the records and most of the
        # drift comes first.
        score = max(share - records, 0.0)
    else:
        ref_value = within(ref.take(np.flatnonzero(rm))) if n_ref else float("nan")
        cur_value = within(cur.take(np.flatnonzero(cm)))
        # How much more the metric dropped inside the slice than outside it,
        # squared and weighted by w(1-w): the split criterion of a regression
        # tree on the drop, for accuracy roughly proportional to the squared
        # z-score of the difference. Leaving the slice out (the contribution)
        # cannot tell a large segment that holds most of the affected records,
        # or whose rest happened to improve, from the small slice where the
        # drop is. (The drop inside is degrade() of the values just computed.)
        gap = sign * (ref_value - cur_value) - rest
        score = records * (1.0 - records) * gap * gap if gap > 0 else 0.0
    return SliceContribution(preds, contribution, share, n_ref, n_cur, ref_value,
                             cur_value, lift, score)
