"""Performance on the exact path, counted by the store (#15 item 2): the records'
counts, confusion cells and error sums per time bucket and slice value come from
one GROUP BY in the store's SQL (:meth:`~.store.base.EvaluationStore.aggregate`),
not from the records pulled into this process. The answer is the one the rows
give (the same groups, the same metric definitions; sums of floating-point errors
may differ in their last digits by the order of addition), and no record is read
into memory, so the row budget does not bound the window.

A classifier's ROC AUC and log loss come from the same statement's per-label
sums of the scores' log losses and from rank sums per score (one more statement
per ranking, see :mod:`.store.aggregation`): :func:`score_metrics` gives what
:func:`~.metrics.classification_metrics` gives on the rows (the same positive
class, the same fallback to one minus the other class's score, the same
clipping, one-vs-rest for more than two classes).

When: EXACT or automatic mode (after the profiles declined), no filter predicate,
slices by categorical or boolean columns. Otherwise the records are read as
before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode, RowBudget
from modelplane.observability.frame_analysis import check_metrics, from_us, task_of
from modelplane.observability.records import (
    PREDICTION,
    ColumnKind,
    ColumnRef,
    EvaluationFilter,
    SliceOperator,
    SlicePredicate,
    TimeWindow,
)
from modelplane.observability.reports import PerformanceGroup, PerformanceReport
from modelplane.observability.slices import MAX_CATEGORIES, check_column
from modelplane.observability.store.aggregation import AggregateQuery, GroupAggregate, Ranking
from modelplane.observability.store.base import ScanSpec
from modelplane.observability.store.frames import to_us

if TYPE_CHECKING:
    from modelplane.observability.reader import EvaluationReader

#: metrics of a classifier the confusion counts give
COUNTED_METRICS = frozenset({M.Metric.ACCURACY, M.Metric.PRECISION, M.Metric.RECALL,
                             M.Metric.F1})
#: metrics of a classifier the score sums and rank sums give
SCORED_METRICS = frozenset({M.Metric.ROC_AUC, M.Metric.LOG_LOSS})


def likely_rankings(scores: Sequence[str], positive: str) -> tuple[Ranking, ...]:
    """The rankings most groups need, guessed from the score keys alone (before
    any label is counted): the positive class's score when it is one (the given
    class, else "1" or "true", else the only key); every key otherwise (more
    than two classes, or two keys and the greater label positive). A group
    that needs another one (:func:`rankings_of`) has its statement run again."""
    if positive:
        if positive in scores:
            return ((positive, False),)
        return ((scores[0], True),) if len(scores) == 1 else ()
    for candidate in ("1", "true"):
        if candidate in scores:
            return ((candidate, False),)
    return tuple((k, False) for k in scores)


def _labels(g: GroupAggregate) -> tuple[int, dict[str, int], list[str]]:
    """A group's labeled records, the records per actual label and the sorted
    labels (predicted or actual) of its cells."""
    cells = {k: v for k, v in g.cells.items() if v > 0}
    actual: dict[str, int] = {}
    for (_, a), v in cells.items():
        actual[a] = actual.get(a, 0) + v
    return sum(cells.values()), actual, sorted({c for pair in cells for c in pair})


def _positive_source(g: GroupAggregate, n: int, positive: str, classes: list[str],
                     scores: Sequence[str]) -> Ranking | None:
    """:func:`~.metrics.positive_scores`: the positive class's score when every
    labeled record has it, else (two classes) one minus the other's, else None."""
    if positive in scores and sum(g.scored.get(positive, {}).values()) == n:
        return positive, False
    others = [c for c in classes if c != positive]
    if len(classes) <= 2 and len(others) == 1 and others[0] in scores \
            and sum(g.scored.get(others[0], {}).values()) == n:
        return others[0], True
    return None


def _classes(g: GroupAggregate, scores: Sequence[str], positive: str | None
             ) -> tuple[int, dict[str, int], list[str], str | None]:
    n, actual, labels = _labels(g)
    classes = sorted(set(labels) | set(scores))
    if positive is None:
        positive = M.default_positive(labels, {k: np.empty(0) for k in scores})
    return n, actual, classes, positive


def rankings_of(g: GroupAggregate, scores: Sequence[str], positive: str
                ) -> list[Ranking]:
    """The rankings a group's ROC AUC needs (see :func:`score_metrics`)."""
    n, _, classes, pos = _classes(g, scores, positive or None)
    if n == 0:
        return []
    if len(classes) <= 2:
        source = None if pos is None else _positive_source(g, n, pos, classes, scores)
        return [source] if source is not None else []
    return [(c, False) for c in classes] if all(c in scores for c in classes) else []


def score_metrics(g: GroupAggregate, scores: Sequence[str], metrics: Sequence[M.Metric],
                  positive: str | None) -> dict[M.Metric, float | None]:
    """ROC AUC and log loss of a group from its score and rank sums: what
    :func:`~.metrics.classification_metrics` gives on its records (the average
    of ``average`` is not used by either)."""
    n, actual, classes, pos = _classes(g, scores, positive)
    out: dict[M.Metric, float | None] = dict.fromkeys(metrics)
    if n == 0:
        return out
    source = None
    if len(classes) <= 2 and pos is not None:
        source = _positive_source(g, n, pos, classes, scores)
    for metric in metrics:
        if metric is M.Metric.ROC_AUC:
            out[metric] = _roc_auc(g, n, actual, classes, pos, source, scores)
        elif metric is M.Metric.LOG_LOSS:
            out[metric] = _log_loss(g, n, actual, classes, pos, source, scores)
    return out


def _binary_auc(twice_rank_sum: int, n_pos: int, n: int) -> float | None:
    """:func:`~.metrics.binary_roc_auc` from the positive records' rank sum."""
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    return float((twice_rank_sum / 2.0 - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _roc_auc(g: GroupAggregate, n: int, actual: dict[str, int], classes: list[str],
             pos: str | None, source: Ranking | None, scores: Sequence[str]
             ) -> float | None:
    if len(classes) <= 2:
        if pos is None or source is None:
            return None
        return _binary_auc(g.ranks[source].get(pos, 0), actual.get(pos, 0), n)
    if any(c not in scores for c in classes):
        return None
    aucs: list[float] = []
    for c in classes:
        if actual.get(c, 0) in (0, n):
            return None
        if sum(g.scored.get(c, {}).values()) < n:  # rankdata of a NaN: every rank NaN
            aucs.append(float("nan"))
            continue
        auc = _binary_auc(g.ranks[(c, False)].get(c, 0), actual[c], n)
        assert auc is not None  # both classes are there
        aucs.append(auc)
    return float(np.mean(aucs))


def _log_loss(g: GroupAggregate, n: int, actual: dict[str, int], classes: list[str],
              pos: str | None, source: Ranking | None, scores: Sequence[str]
              ) -> float | None:
    if len(classes) <= 2:
        if pos is None or source is None:
            return None
        key, flip = source
        total = 0.0
        for label, (own, minus, back) in g.loss.get(key, {}).items():
            if label == pos:  # p: the score, or 1 - the other's
                total += minus if flip else own
            else:  # 1 - p
                total += back if flip else minus
        return total / n
    if any(label not in scores for label, k in actual.items() if k):
        return None
    return sum(g.true_loss.values()) / n


def aggregated_performance(ev: EvaluationReader, f: EvaluationFilter,
                           metrics: Sequence[M.Metric], task: M.TaskType, positive: str,
                           average: M.ClassAverage, bucket: timedelta | None,
                           slice_by: Sequence[ColumnRef], mode: AnalysisMode
                           ) -> PerformanceReport | None:
    """The exact performance from the store's aggregates, or None when the records
    must be read (see the module docstring)."""
    if mode not in (AnalysisMode.UNSPECIFIED, AnalysisMode.EXACT):
        return None
    f, catalog = ev.validate_filter(f)
    if f.predicates or ev.rows_expired(f.window):  # the row path says why, if it must
        return None
    task = task_of(catalog, task)
    ms = check_metrics(metrics, task, "metrics")
    scores = catalog.score_keys()
    wanted = [m for m in ms if m in SCORED_METRICS] \
        if task is M.TaskType.CLASSIFICATION and scores else []
    kinds = catalog.columns()
    kinds.setdefault(PREDICTION, ColumnKind.CATEGORICAL)
    slice_kinds = []
    for i, ref in enumerate(slice_by):
        kind = check_column(ref, kinds, f.model, f"slice_by[{i}]")
        # numeric slices are the data's quantile bins (check_column gives a boolean
        # model's prediction and actual as categories: they are labels)
        if kind is ColumnKind.NUMERIC:
            return None
        slice_kinds.append(kind)
    width = int(bucket.total_seconds() * 1_000_000) if bucket is not None else None
    origin = to_us(f.window.start) if f.window.start is not None else 0
    query = AggregateQuery(task is M.TaskType.REGRESSION, width, origin, tuple(slice_by),
                           tuple(slice_kinds), tuple(scores) if wanted else (),
                           likely_rankings(scores, positive)
                           if M.Metric.ROC_AUC in wanted else ())
    budget = RowBudget.current(ev._max_rows)
    spec = ScanSpec(f.model, f.versions, f.environment, f.window, limit=budget.scan_limit)
    agg = ev._store.aggregate(spec, catalog, query)
    if agg is not None and M.Metric.ROC_AUC in wanted:
        # a group whose positive class (or its missing scores) asks for another ranking
        groups = [agg.overall, *agg.buckets.values(),
                  *(g for values in agg.slices for g in values.values())]
        needed = {r for g in groups for r in rankings_of(g, scores, positive)}
        if not needed <= set(query.ranked):
            budget.charge(agg.rows_read)
            query = replace(query, ranked=tuple(sorted(needed | set(query.ranked))))
            agg = ev._store.aggregate(spec, catalog, query)
    if agg is None:  # a backend counting in Python, past the row budget
        return None
    budget.charge(agg.rows_read)

    def group(g: GroupAggregate) -> PerformanceGroup:
        if task is M.TaskType.REGRESSION:
            return PerformanceGroup(g.records, g.labeled, M.regression_sums_metrics(
                g.labeled, g.abs_error, g.squared_error, g.relative_error, ms))
        values = M.confusion_metrics(g.cells, scores, ms, positive or None, average)
        if wanted:
            values.update(score_metrics(g, scores, wanted, positive or None))
        return PerformanceGroup(g.records, sum(g.cells.values()), values)

    windows = []
    if width is not None:
        for b in sorted(agg.buckets):
            g = group(agg.buckets[b])
            lo = origin + b * width
            g.window = TimeWindow(from_us(lo), from_us(lo + width))
            windows.append(g)
    slices = []
    for ref, kind, values in zip(slice_by, slice_kinds, agg.slices, strict=True):
        # the slices the rows give (candidate_slices): the most frequent values, ties
        # in the values' order, shown in the order of their text
        ordered = sorted(values, key=lambda v: v if kind is ColumnKind.BOOLEAN else str(v))
        top = sorted(ordered, key=lambda v: -values[v].records)[:MAX_CATEGORIES]
        for value in sorted(top, key=str):
            g = group(values[value])
            g.slice = (SlicePredicate(ref, SliceOperator.EQUAL, (value,)),)
            slices.append(g)
    return PerformanceReport(task, group(agg.overall), windows, slices)
