"""The analyses' building blocks over frames already loaded: the task a model
performs, its metrics on a frame, time buckets, and the drift of columns
between two frames. No store reads: the callers load the frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta

import numpy as np

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.observability import metrics as M
from modelplane.observability.drift import DriftMethod, DriftThresholds, drift_many
from modelplane.observability.records import (
    PREDICTION,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    TimeWindow,
)
from modelplane.observability.reports import ColumnDriftResult, MetricValues
from modelplane.observability.slices import check_column
from modelplane.observability.store.encoding import Catalog
from modelplane.observability.store.frames import Frame, to_us

DEFAULT_THRESHOLDS = DriftThresholds()


def invalid(field: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    """INVALID_ARGUMENT naming the request field."""
    return InvalidArgument(f"{field}: {description}", reason=reason,
                           field_violations=[FieldViolation(field, description)])


def infer_task(frame: Frame, catalog: Catalog, task: M.TaskType) -> M.TaskType:
    return task_of(catalog, task)


def task_of(catalog: Catalog, task: M.TaskType) -> M.TaskType:
    """The task asked for, else a classifier when the model logs scores or its
    prediction is not numeric (what the catalog says: no records read)."""
    if task is not M.TaskType.UNSPECIFIED:
        return task
    if catalog.score_keys():
        return M.TaskType.CLASSIFICATION
    kind = catalog.columns().get(PREDICTION, ColumnKind.CATEGORICAL)
    return M.TaskType.REGRESSION if kind is ColumnKind.NUMERIC else M.TaskType.CLASSIFICATION


def buckets(frame: Frame, bucket: timedelta, window: TimeWindow
            ) -> list[tuple[TimeWindow, np.ndarray]]:
    if len(frame) == 0:
        return []
    width = int(bucket.total_seconds() * 1_000_000)
    start = to_us(window.start) if window.start else int(frame.time_us.min()) // width * width
    idx = (frame.time_us - start) // width
    out = []
    for b in np.unique(idx):
        lo = start + int(b) * width
        out.append((TimeWindow(from_us(lo), from_us(lo + width)), np.flatnonzero(idx == b)))
    return out


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def metric_values(frame: Frame, task: M.TaskType, metrics: Sequence[M.Metric],
                  positive: str | None, average: M.ClassAverage) -> tuple[int, MetricValues]:
    if task is M.TaskType.REGRESSION:
        ok = ~np.isnan(frame.actual_number) & ~np.isnan(frame.prediction_number)
        return int(ok.sum()), M.regression_metrics(
            frame.actual_number[ok], frame.prediction_number[ok], metrics)
    ok = ~M.is_none(frame.actual_label) & ~M.is_none(frame.prediction_label)
    idx = np.flatnonzero(ok)
    data = M.ClassificationData(frame.actual_label[idx], frame.prediction_label[idx],
                                {k: v[idx] for k, v in frame.scores.items()})
    return len(idx), M.classification_metrics(data, metrics, positive or None, average)


def check_metrics(metrics: Sequence[M.Metric], task: M.TaskType, path: str
                  ) -> list[M.Metric]:
    allowed = M.metrics_for(task)
    if not metrics:
        return list(allowed)
    for i, m in enumerate(metrics):
        if m not in allowed:
            raise invalid(f"{path}[{i}]", f"{m.name} does not apply to "
                          f"{task.name.lower()} (use one of "
                          f"{', '.join(a.name for a in allowed)})", "METRIC_NOT_APPLICABLE")
    return list(metrics)


def drift_columns(catalog: Catalog, columns: Sequence[ColumnRef], model: str,
                  path: str) -> list[tuple[ColumnRef, ColumnKind]]:
    kinds = catalog.columns()
    kinds.setdefault(PREDICTION, ColumnKind.CATEGORICAL)
    if columns:
        return [(c, check_column(c, kinds, model, f"{path}[{i}]"))
                for i, c in enumerate(columns)]
    out = [(ColumnRef(ColumnSource.FEATURE, n), k)
           for n, k in sorted(catalog.features().items())]
    out.append((PREDICTION, kinds[PREDICTION]))
    return out


def drift_of(ref: Frame, cur: Frame, columns: Sequence[tuple[ColumnRef, ColumnKind]],
             methods: Sequence[DriftMethod], thresholds: DriftThresholds, bins: int,
             executor: Executor | None = None) -> list[ColumnDriftResult]:
    pairs = []
    for col, kind in columns:
        numeric = kind is ColumnKind.NUMERIC
        r = ref.column(col) if col in ref.kinds or col.source in (
            ColumnSource.PREDICTION, ColumnSource.ACTUAL) else None
        c = cur.column(col)
        if r is None:
            r = np.empty(0, dtype=np.float64 if numeric else object)
        pairs.append((r, c, numeric))
    drifts = drift_many(pairs, methods or None, thresholds, bins, executor)
    return [ColumnDriftResult(col, kind, d) for (col, kind), d in zip(columns, drifts)]
