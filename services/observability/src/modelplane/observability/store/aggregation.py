"""Aggregation near the data (#15 item 2): what a window's performance needs,
counted by the store's own SQL (GROUP BY) instead of pulling its rows into Python.

Per group (the whole window, each time bucket, each value of each slice column):

* the **records** in it;
* classification: the **confusion cells**, records per (predicted label, actual
  label) among those with both;
* regression: the records with a predicted and an actual number, and the
  **sums** of the absolute error, the squared error and the absolute error
  relative to the actual (``max(|actual|, eps)``): MAE, RMSE and MAPE are these
  sums over that count.

From these the analyses compute accuracy, precision, recall and F1
(:func:`~..metrics.confusion_metrics`) and MAE, RMSE and MAPE exactly as they do
on the rows. ROC AUC and log loss need each record's scores: not aggregated.

The SQL is one statement with GROUPING SETS, the same text on DuckDB and
PostgreSQL (:func:`aggregate_sql`; each backend gives its FROM / WHERE and the
expressions of its columns); :func:`aggregates_from_rows` reads its rows back.
:func:`aggregate_frame` computes the same from a loaded frame: the default of
a backend that does not aggregate in its engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modelplane.observability.metrics import is_none
from modelplane.observability.records import ColumnKind, ColumnRef, ColumnSource
from modelplane.observability.store.frames import Frame

#: numpy's float64 epsilon: MAPE divides by max(|actual|, this), as the metrics do
EPS = float(np.finfo(np.float64).eps)
#: (predicted label, actual label) -> records
Cells = dict[tuple[str, str], int]
SliceValue = str | bool


@dataclass(frozen=True)
class AggregateQuery:
    """What :meth:`~.base.EvaluationStore.aggregate` groups a window's records by."""

    #: sums of errors of numbers (regression), else confusion cells of labels
    regression: bool = False
    #: time buckets this wide (µs), counted from ``origin_us``; None: no buckets
    bucket_us: int | None = None
    origin_us: int = 0
    #: categorical or boolean columns (features, tags, the prediction, the actual):
    #: a group per value (missing values are in no group)
    slices: tuple[ColumnRef, ...] = ()
    kinds: tuple[ColumnKind, ...] = ()


@dataclass
class GroupAggregate:
    records: int = 0
    #: classification: records per (predicted, actual) label pair, both present
    cells: Cells = field(default_factory=dict)
    #: regression: records with both numbers, and their error sums
    labeled: int = 0
    abs_error: float = 0.0
    squared_error: float = 0.0
    relative_error: float = 0.0

    def add(self, other: GroupAggregate) -> None:
        self.records += other.records
        for k, n in other.cells.items():
            self.cells[k] = self.cells.get(k, 0) + n
        self.labeled += other.labeled
        self.abs_error += other.abs_error
        self.squared_error += other.squared_error
        self.relative_error += other.relative_error


@dataclass
class Aggregates:
    overall: GroupAggregate = field(default_factory=GroupAggregate)
    #: bucket number ((time - origin) // width) -> its group
    buckets: dict[int, GroupAggregate] = field(default_factory=dict)
    #: per slice column of the query (same order): value -> its group
    slices: list[dict[SliceValue, GroupAggregate]] = field(default_factory=list)
    #: records read into this process to compute them (0: the store's SQL did)
    rows_read: int = 0


# ---------------------------------------------------------------------------
# In Python, from a frame (the default)


def aggregate_frame(frame: Frame, query: AggregateQuery) -> Aggregates:
    """The aggregates of a loaded frame's records (what the SQL gives)."""
    n = len(frame)
    out = Aggregates(slices=[{} for _ in query.slices], rows_read=n)
    if query.regression:
        y, p = frame.actual_number, frame.prediction_number
        ok = ~np.isnan(y) & ~np.isnan(p)
        err = np.where(ok, p - y, 0.0)
        parts = {"abs_error": np.abs(err), "squared_error": err * err,
                 "relative_error": np.abs(err) / np.maximum(np.abs(np.where(ok, y, 1.0)), EPS)}
    else:
        ok = ~is_none(frame.actual_label) & ~is_none(frame.prediction_label)

    def group(idx: np.ndarray) -> GroupAggregate:
        g = GroupAggregate(records=len(idx))
        mine = idx[ok[idx]]
        if query.regression:
            g.labeled = len(mine)
            g.abs_error = float(parts["abs_error"][mine].sum())
            g.squared_error = float(parts["squared_error"][mine].sum())
            g.relative_error = float(parts["relative_error"][mine].sum())
        else:
            pairs = zip(frame.prediction_label[mine].tolist(), frame.actual_label[mine].tolist())
            for pair in pairs:
                g.cells[pair] = g.cells.get(pair, 0) + 1
        return g

    out.overall = group(np.arange(n))
    if query.bucket_us is not None and n:
        number = (frame.time_us - query.origin_us) // query.bucket_us
        for b in np.unique(number).tolist():
            out.buckets[int(b)] = group(np.flatnonzero(number == b))
    for i, ref in enumerate(query.slices):
        col = frame.column(ref)
        present = ~np.isnan(col) if col.dtype == np.float64 else ~is_none(col)
        for value in {v for v in col[present].tolist()}:
            out.slices[i][value] = group(np.flatnonzero(present & (col == value)))
    return out


# ---------------------------------------------------------------------------
# In SQL (both backends)


@dataclass(frozen=True)
class AggregateSource:
    """A backend's side of :func:`aggregate_sql`: the FROM and WHERE of the window's
    records (``obs_records r`` joined to ``obs_actuals a``), the SQL of each value
    the statement reads, and the bound values of the placeholders in order of
    appearance (select list first, then the FROM and WHERE)."""

    from_where: str
    time_us: str
    slices: tuple[str, ...]
    select_params: tuple[object, ...]
    where_params: tuple[object, ...]
    #: SQL true when a number column is a number (not NULL, not NaN): ``{}`` its name
    is_number: str
    placeholder: str = "?"
    #: integer division of two bigints (DuckDB ``//``, PostgreSQL ``/``)
    int_div: str = "//"


def aggregate_sql(query: AggregateQuery, src: AggregateSource) -> tuple[str, list[object]]:
    """One statement (GROUPING SETS) of every group's aggregates; its rows are
    (grouping bits, bucket?, slice values..., then for classification the predicted
    label, the actual label and the records; for regression the records, labeled,
    and the three error sums)."""
    ph = src.placeholder
    keys: list[str] = []
    inner = []
    params: list[object] = []
    if query.bucket_us is not None:
        keys.append("b")
        inner.append(f"({src.time_us} - {ph}) {src.int_div} {ph} AS b")
        params += [query.origin_us, query.bucket_us]
    for i, expr in enumerate(src.slices):
        keys.append(f"s{i}")
        inner.append(f"{expr} AS s{i}")
    params += src.select_params
    if query.regression:
        ok = f"{src.is_number.format('r.prediction_number')} AND " \
             f"{src.is_number.format('a.number')}"
        inner.append(f"CASE WHEN {ok} THEN r.prediction_number - a.number END AS e")
        inner.append(f"CASE WHEN {ok} THEN greatest(abs(a.number), {ph}) END AS y")
        params.append(EPS)
        measures = ("count(*), count(e), coalesce(sum(abs(e)), 0), coalesce(sum(e * e), 0), "
                    "coalesce(sum(abs(e) / y), 0)")
        extra: list[str] = []
    else:
        inner += ["r.prediction_label AS p", "a.label AS l"]
        measures = "count(*)"
        extra = ["p", "l"]
    sets = [f"({', '.join(extra)})"] + [f"({', '.join([k, *extra])})" for k in keys]
    grouping = f"grouping({', '.join(keys)})" if keys else "0"
    sql = (f"SELECT {grouping}, {', '.join([*keys, *extra, measures])} FROM "
           f"(SELECT {', '.join(inner)} {src.from_where}) w "
           f"GROUP BY GROUPING SETS ({', '.join(sets)})")
    return sql, [*params, *src.where_params]


def slice_sql(ref: ColumnRef, typed: dict[tuple[int, str], str]) -> str:
    """The SQL of a slice column's value in a row of ``obs_records r`` joined to
    ``obs_actuals a``: a feature's or tag's typed column (given by ``typed``, (source,
    name) -> its SQL; NULL without one), the prediction's or actual's label."""
    if ref.source is ColumnSource.PREDICTION:
        return "r.prediction_label"
    if ref.source is ColumnSource.ACTUAL:
        return "a.label"
    return typed.get((int(ref.source), ref.name), "NULL")


def aggregates_from_rows(query: AggregateQuery, rows: list[tuple[object, ...]]) -> Aggregates:
    """The aggregates of :func:`aggregate_sql`'s rows."""
    out = Aggregates(slices=[{} for _ in query.slices])
    keys = (1 if query.bucket_us is not None else 0) + len(query.slices)
    for row in rows:
        bits = int(row[0])  # type: ignore[call-overload]
        values = row[1:1 + keys]
        rest = row[1 + keys:]
        g = GroupAggregate()
        if query.regression:
            records, labeled, sae, sse, sre = rest
            g.records, g.labeled = int(records), int(labeled)  # type: ignore[call-overload]
            g.abs_error, g.squared_error = float(sae), float(sse)  # type: ignore[arg-type]
            g.relative_error = float(sre)  # type: ignore[arg-type]
        else:
            p, a, n = rest
            g.records = int(n)  # type: ignore[call-overload]
            if p is not None and a is not None:
                g.cells[(str(p), str(a))] = g.records
        # bit k (from the right) of grouping(): the k-th key from the end is not grouped
        grouped = [j for j in range(keys) if not bits >> (keys - 1 - j) & 1]
        if not grouped:
            into = out.overall
        else:
            (j,) = grouped
            value = values[j]
            if query.bucket_us is not None and j == 0:
                into = out.buckets.setdefault(int(value), GroupAggregate())  # type: ignore
            else:
                if value is None:  # a missing value is in no slice
                    continue
                i = j - (1 if query.bucket_us is not None else 0)
                if query.kinds[i] is ColumnKind.BOOLEAN:
                    value = bool(value)
                into = out.slices[i].setdefault(value, GroupAggregate())  # type: ignore
        into.add(g)
    return out
