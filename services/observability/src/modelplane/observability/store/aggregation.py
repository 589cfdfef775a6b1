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

* classification with scores (``AggregateQuery.scores``), per (predicted, actual)
  cell and score key: the records with that score, and the sums of
  ``-ln(clip(s))``, ``-ln(clip(1 - s))`` and ``-ln(clip(1 - (1 - s)))`` (clip to
  [eps, 1 - eps] as :func:`~..metrics._log_loss`), and of ``-ln(clip(score of
  the actual class, 0 if none))``: the log loss of any positive class is a sum
  of these;
* per ranking asked for (``AggregateQuery.ranked``: a score key, or one minus
  it), per actual label: twice the sum of the labeled records' average ranks
  (ties share the mean of their ranks, as ``scipy.stats.rankdata``) among the
  group's labeled records with that score: the Mann-Whitney ROC AUC of any
  positive class is that sum over its records.

From these the analyses compute accuracy, precision, recall and F1
(:func:`~..metrics.confusion_metrics`), ROC AUC and log loss
(:func:`..aggregate_analysis.score_metrics`) and MAE, RMSE and MAPE exactly as
they do on the rows.

The SQL is one statement with GROUPING SETS, the same text on DuckDB,
PostgreSQL and ClickHouse (:func:`aggregate_sql`; each backend gives its FROM /
WHERE and the expressions of its columns; the ranks are window functions over
each ranked score's order, one sort per group kind, computed in the same
statement); :func:`aggregates_from_rows` reads its rows back.
:func:`aggregate_frame` computes the same from a loaded frame: the default of
a backend that does not aggregate in its engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

from modelplane.observability.metrics import LabelPairs, error_terms, is_none
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
    #: classification: the score keys whose counts and log-loss sums are wanted
    scores: tuple[str, ...] = ()
    #: classification: the rankings whose rank sums are wanted, (score key, ranked
    #: by one minus it); each key one of ``scores``
    ranked: tuple[tuple[str, bool], ...] = ()


#: (score key, ranked by one minus the score)
Ranking = tuple[str, bool]


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
    #: classification with scores, among the labeled records (both labels present):
    #: score key -> actual label -> records with that score
    scored: dict[str, dict[str, int]] = field(default_factory=dict)
    #: score key -> actual label -> sums of -ln(clip(s)), -ln(clip(1 - s)) and
    #: -ln(clip(1 - (1 - s))) over those records
    loss: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    #: actual label -> sum of -ln(clip(the score of that label, 0 when missing))
    true_loss: dict[str, float] = field(default_factory=dict)
    #: ranking -> actual label -> twice the sum of the records' average ranks
    ranks: dict[Ranking, dict[str, int]] = field(default_factory=dict)

    def add(self, other: GroupAggregate) -> None:
        self.records += other.records
        for k, n in other.cells.items():
            self.cells[k] = self.cells.get(k, 0) + n
        for key, per in other.scored.items():
            mine = self.scored.setdefault(key, {})
            for label, n in per.items():
                mine[label] = mine.get(label, 0) + n
        for key, sums in other.loss.items():
            into = self.loss.setdefault(key, {})
            for label, (a, b, c) in sums.items():
                x, y, z = into.get(label, (0.0, 0.0, 0.0))
                into[label] = (x + a, y + b, z + c)
        for label, v in other.true_loss.items():
            self.true_loss[label] = self.true_loss.get(label, 0.0) + v
        for ranking, per in other.ranks.items():
            mine = self.ranks.setdefault(ranking, {})
            for label, n in per.items():
                mine[label] = mine.get(label, 0) + n
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
        ok, abs_error, squared_error, relative_error = error_terms(
            frame.actual_number, frame.prediction_number)
        parts = {"abs_error": abs_error, "squared_error": squared_error,
                 "relative_error": relative_error}
    else:
        ok = ~is_none(frame.actual_label) & ~is_none(frame.prediction_label)
        score = {k: frame.scores[k] for k in query.scores}
        pairs = LabelPairs([(frame.prediction_label, frame.actual_label)])

    def group(idx: np.ndarray) -> GroupAggregate:
        g = GroupAggregate(records=len(idx))
        mine = idx[ok[idx]]
        if query.regression:
            g.labeled = len(mine)
            g.abs_error = float(parts["abs_error"][mine].sum())
            g.squared_error = float(parts["squared_error"][mine].sum())
            g.relative_error = float(parts["relative_error"][mine].sum())
        else:
            g.cells = pairs.cells(0, mine)
            if query.scores:
                score_sums(g, frame.actual_label[mine], {k: v[mine] for k, v in score.items()},
                           query.ranked)
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


def _neg_log(p: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(p, EPS, 1 - EPS))


def score_sums(g: GroupAggregate, actual: np.ndarray, scores: dict[str, np.ndarray],
               ranked: tuple[Ranking, ...]) -> None:
    """A group's score counts, log-loss sums and rank sums (see :class:`GroupAggregate`)
    from its labeled records' actual labels and scores (NaN: none), in numpy."""
    labels = sorted({str(v) for v in actual.tolist()})
    by_label = {label: actual == label for label in labels}
    true = np.zeros(len(actual))
    for key, v in scores.items():
        has = ~np.isnan(v)
        x = np.where(has, v, 0.5)
        terms = (_neg_log(x), _neg_log(1.0 - x), _neg_log(1.0 - (1.0 - x)))
        g.scored[key] = {}
        g.loss[key] = {}
        for label, mask in by_label.items():
            m = mask & has
            g.scored[key][label] = int(m.sum())
            g.loss[key][label] = tuple(float(t[m].sum()) for t in terms)  # type: ignore
        true = np.where(actual == key, np.nan_to_num(v), true)
    t = _neg_log(true)
    g.true_loss = {label: float(t[mask].sum()) for label, mask in by_label.items()}
    for key, flip in ranked:
        v = scores[key]
        has = ~np.isnan(v)
        ranks = rankdata(1.0 - v[has] if flip else v[has])
        g.ranks[(key, flip)] = {label: round(2 * float(ranks[mask[has]].sum()))
                                for label, mask in by_label.items()}


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
    #: the SQL of each score of ``AggregateQuery.scores`` (same order), and the
    #: bound values of each one's placeholders (none when not given)
    scores: tuple[str, ...] = ()
    score_params: tuple[tuple[object, ...], ...] = ()
    #: the natural logarithm
    ln: str = "ln"
    #: a text key as a window partitions by it (``{}`` the key): only its equality
    #: matters, so PostgreSQL compares bytes (COLLATE "C"), not its locale's order
    text_key: str = "{}"


def _window(query: AggregateQuery, src: AggregateSource) -> tuple[list[str], str, list[object]]:
    """The grouping keys, the subquery ``w`` of the window's records (bucket, slice
    values, then the prediction and actual labels or the regression's error terms,
    then the scores ``v0``... of ``query.scores``, NULL when not a number, then per
    ranking its ranked value ``z<r>`` of a labeled record with that score and,
    per group kind (overall, then each key), ``q<r>_<g>``: the record's rank among
    its group's labeled records with that score, twice the average over ties) and
    its values. Twice an average rank is ``rank() + count(*)`` over the ranked
    value's order (the records below it plus one, and the records up to its last
    tie): one sort per group kind, no self-join."""
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
    else:
        inner += ["r.prediction_label AS p", "a.label AS l"]
    for j, expr in enumerate(src.scores):
        inner.append(f"CASE WHEN {src.is_number.format(expr)} THEN {expr} END AS v{j}")
        # the expression in the test and as the value: its values as often
        own = src.score_params[j] if src.score_params else ()
        params += [*own] * (src.is_number.count("{0}") + 1)
    sql = f"(SELECT {', '.join(inner)} {src.from_where}) w"
    if query.ranked:
        ranked = []
        for r, (key, flip) in enumerate(query.ranked):
            v = f"v{query.scores.index(key)}"
            ranked.append(f"CASE WHEN p IS NOT NULL AND l IS NOT NULL THEN "
                          f"{'1 - ' if flip else ''}{v} END AS z{r}")
        ranks = []
        text = [query.kinds[i] is not ColumnKind.BOOLEAN for i in range(len(src.slices))]
        parts = [src.text_key.format(k) if k != "b" and text[int(k[1:])] else k for k in keys]
        for r in range(len(query.ranked)):
            for g, part in enumerate(["", *(f", {k}" for k in parts)]):
                over = (f"OVER (PARTITION BY z{r} IS NULL{part} ORDER BY z{r} RANGE BETWEEN "
                        "UNBOUNDED PRECEDING AND CURRENT ROW)")
                ranks.append(f"rank() {over} + count(*) {over} AS q{r}_{g}")
        sql = (f"(SELECT *, {', '.join(ranks)} FROM (SELECT *, {', '.join(ranked)} "
               f"FROM {sql}) wz) w")
    return keys, sql, [*params, *src.where_params]


def aggregate_sql(query: AggregateQuery, src: AggregateSource) -> tuple[str, list[object]]:
    """One statement (GROUPING SETS) of every group's aggregates; its rows are
    (grouping bits, bucket?, slice values..., then for classification the predicted
    label, the actual label and the records, and with scores per score key the
    records with it and its three log-loss sums, then the actual class's log-loss
    sum, then per ranking and group kind (overall, then each key) the sum of twice
    the records' average ranks; for regression the records, labeled, and the three
    error sums)."""
    ph = src.placeholder
    keys, window, params = _window(query, src)
    outer: list[object] = []
    if query.regression:
        measures = ("count(*), count(e), coalesce(sum(abs(e)), 0), coalesce(sum(e * e), 0), "
                    "coalesce(sum(abs(e) / y), 0)")
        extra: list[str] = []
    else:
        parts = ["count(*)"]

        def neg_log(x: str) -> str:
            outer.extend([EPS, 1.0 - EPS])
            return f"coalesce(sum(-{src.ln}(least(greatest({x}, {ph}), {ph}))), 0)"

        for j in range(len(query.scores)):
            v = f"v{j}"
            parts += [f"count({v})", neg_log(v), neg_log(f"1 - {v}"),
                      neg_log(f"1 - (1 - {v})")]
        if query.scores:
            # the score of the record's actual class (0 when it has none)
            case = " ".join(f"WHEN {ph} THEN v{j}" for j in range(len(query.scores)))
            outer += list(query.scores)
            parts.append(neg_log(f"coalesce(CASE l {case} END, 0)"))
        for r in range(len(query.ranked)):
            parts += [f"coalesce(sum(CASE WHEN z{r} IS NOT NULL THEN q{r}_{g} END), 0)"
                      for g in range(1 + len(keys))]
        measures = ", ".join(parts)
        extra = ["p", "l"]
    sets = [f"({', '.join(extra)})"] + [f"({', '.join([k, *extra])})" for k in keys]
    grouping = f"grouping({', '.join(keys)})" if keys else "0"
    sql = (f"SELECT {grouping}, {', '.join([*keys, *extra, measures])} FROM {window} "
           f"GROUP BY GROUPING SETS ({', '.join(sets)})")
    return sql, [*outer, *params]


def slice_sql(ref: ColumnRef, typed: dict[tuple[int, str], str]) -> str:
    """The SQL of a slice column's value in a row of ``obs_records r`` joined to
    ``obs_actuals a``: a feature's or tag's typed column (given by ``typed``, (source,
    name) -> its SQL; NULL without one), the prediction's or actual's label."""
    if ref.source is ColumnSource.PREDICTION:
        return "r.prediction_label"
    if ref.source is ColumnSource.ACTUAL:
        return "a.label"
    return typed.get((int(ref.source), ref.name), "NULL")


def _group(out: Aggregates, query: AggregateQuery, bits: int, values: tuple[object, ...]
           ) -> tuple[GroupAggregate | None, int]:
    """The group of a row with these grouping bits and key values (None: a missing
    slice value, in no group), and its kind (0 overall, 1 + the grouped key's index)."""
    keys = len(values)
    # bit k (from the right) of grouping(): the k-th key from the end is not grouped
    grouped = [j for j in range(keys) if not bits >> (keys - 1 - j) & 1]
    if not grouped:
        return out.overall, 0
    (j,) = grouped
    value = values[j]
    if query.bucket_us is not None and j == 0:
        return out.buckets.setdefault(int(value), GroupAggregate()), 1  # type: ignore
    if value is None:  # a missing value is in no slice
        return None, 1 + j
    i = j - (1 if query.bucket_us is not None else 0)
    if query.kinds[i] is ColumnKind.BOOLEAN:
        value = bool(value)
    return out.slices[i].setdefault(value, GroupAggregate()), 1 + j  # type: ignore


def aggregates_from_rows(query: AggregateQuery, rows: list[tuple[object, ...]]) -> Aggregates:
    """The aggregates of :func:`aggregate_sql`'s rows."""
    out = Aggregates(slices=[{} for _ in query.slices])
    keys = (1 if query.bucket_us is not None else 0) + len(query.slices)
    scored = 3 + 4 * len(query.scores) + (1 if query.scores else 0)
    for row in rows:
        into, kind = _group(out, query, int(row[0]), row[1:1 + keys])  # type: ignore
        if into is None:
            continue
        rest = row[1 + keys:]
        g = GroupAggregate()
        if query.regression:
            records, labeled, sae, sse, sre = rest
            g.records, g.labeled = int(records), int(labeled)  # type: ignore[call-overload]
            g.abs_error, g.squared_error = float(sae), float(sse)  # type: ignore[arg-type]
            g.relative_error = float(sre)  # type: ignore[arg-type]
        else:
            p, a, n = rest[:3]
            g.records = int(n)  # type: ignore[call-overload]
            if p is not None and a is not None:
                g.cells[(str(p), str(a))] = g.records
                label = str(a)
                for j, key in enumerate(query.scores):
                    c, x, y, z = rest[3 + 4 * j:7 + 4 * j]
                    g.scored[key] = {label: int(c)}  # type: ignore[call-overload]
                    g.loss[key] = {label: (float(x), float(y), float(z))}  # type: ignore
                if query.scores:
                    g.true_loss[label] = float(rest[scored - 1])  # type: ignore[arg-type]
                for r, ranking in enumerate(query.ranked):
                    twice = rest[scored + r * (1 + keys) + kind]
                    g.ranks[ranking] = {label: int(twice)}  # type: ignore[call-overload]
        into.add(g)
    return out


def run_aggregate(query: AggregateQuery, src: AggregateSource,
                  execute: Callable[[str, list[object]], list[tuple[object, ...]]]
                  ) -> Aggregates:
    """The aggregates of ``query`` by a backend's ``execute`` (SQL text and values
    -> rows): :func:`aggregate_sql`'s one statement."""
    return aggregates_from_rows(query, execute(*aggregate_sql(query, src)))
