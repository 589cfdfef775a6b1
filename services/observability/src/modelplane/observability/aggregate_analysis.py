"""Performance on the exact path, counted by the store (#15 item 2): the records'
counts, confusion cells and error sums per time bucket and slice value come from
one GROUP BY in the store's SQL (:meth:`~.store.base.EvaluationStore.aggregate`),
not from the records pulled into this process. The answer is the one the rows
give (the same groups, the same metric definitions; sums of floating-point errors
may differ in their last digits by the order of addition), and no record is read
into memory, so the row budget does not bound the window.

When: EXACT or automatic mode (after the profiles declined), no filter predicate,
slices by categorical or boolean columns, and for a classifier only metrics the
counts give (accuracy, precision, recall, F1), or a model without scores (ROC AUC
and log loss are undefined then). Otherwise the records are read as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode, RowBudget
from modelplane.observability.frame_analysis import check_metrics, from_us, task_of
from modelplane.observability.records import (
    PREDICTION,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    EvaluationFilter,
    SliceOperator,
    SlicePredicate,
    TimeWindow,
)
from modelplane.observability.reports import PerformanceGroup, PerformanceReport
from modelplane.observability.slices import MAX_CATEGORIES, check_column
from modelplane.observability.store.aggregation import AggregateQuery, GroupAggregate
from modelplane.observability.store.base import ScanSpec
from modelplane.observability.store.frames import to_us

if TYPE_CHECKING:
    from modelplane.observability.reader import EvaluationReader

#: metrics of a classifier the confusion counts give
COUNTED_METRICS = frozenset({M.Metric.ACCURACY, M.Metric.PRECISION, M.Metric.RECALL,
                             M.Metric.F1})


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
    if task is M.TaskType.CLASSIFICATION and scores and not COUNTED_METRICS.issuperset(ms):
        return None
    kinds = catalog.columns()
    kinds.setdefault(PREDICTION, ColumnKind.CATEGORICAL)
    slice_kinds = []
    for i, ref in enumerate(slice_by):
        kind = check_column(ref, kinds, f.model, f"slice_by[{i}]")
        # numeric slices are the data's quantile bins; the prediction's and actual's
        # values are labels (text) whatever their kind
        if kind is ColumnKind.NUMERIC or (kind is ColumnKind.BOOLEAN
                                          and ref.source is not ColumnSource.FEATURE):
            return None
        slice_kinds.append(kind)
    width = int(bucket.total_seconds() * 1_000_000) if bucket is not None else None
    origin = to_us(f.window.start) if f.window.start is not None else 0
    query = AggregateQuery(task is M.TaskType.REGRESSION, width, origin, tuple(slice_by),
                           tuple(slice_kinds))
    budget = RowBudget.current(ev._max_rows)
    agg = ev._store.aggregate(ScanSpec(f.model, f.versions, f.environment, f.window,
                                       limit=budget.scan_limit), catalog, query)
    if agg is None:  # a backend counting in Python, past the row budget
        return None
    budget.charge(agg.rows_read)

    def group(g: GroupAggregate) -> PerformanceGroup:
        if task is M.TaskType.REGRESSION:
            return PerformanceGroup(g.records, g.labeled, M.regression_sums_metrics(
                g.labeled, g.abs_error, g.squared_error, g.relative_error, ms))
        return PerformanceGroup(g.records, sum(g.cells.values()), M.confusion_metrics(
            g.cells, scores, ms, positive or None, average))

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
