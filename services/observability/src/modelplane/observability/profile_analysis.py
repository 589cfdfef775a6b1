"""Analyses answered from the per-hour profiles (:mod:`.profiles`) instead of the
records: time and memory bounded by the number of hours in the window, not by
the records in it.

When (``AnalysisMode``): asked for PROFILE, or automatic and one side of the
analysis holds more records than the exact limit
(``MODELPLANE_OBSERVABILITY_EXACT_ROWS``, counted from the profiles). A filter
with predicates, or a column the profiles do not keep (the actual), is answered
exactly in automatic mode and refused in PROFILE mode. Profile windows are
widened to whole hours (the hour holding the window's start is in).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.drift import (
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    SMALL_SAMPLE,
    DriftMethod,
    DriftThresholds,
)
from modelplane.observability.frame_analysis import check_metrics, drift_columns
from modelplane.observability.profiles import (
    HOUR_US,
    OTHER,
    ColumnKey,
    ColumnProfile,
    merge_rows,
    profile_categorical_drift,
    profile_numeric_drift,
    rank_error,
)
from modelplane.observability.records import (
    PREDICTION,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    EvaluationFilter,
    Scalar,
    SliceOperator,
    SlicePredicate,
    TimeWindow,
)
from modelplane.observability.reports import (
    ColumnDriftResult,
    DriftReport,
    PerformanceGroup,
    PerformanceReport,
    RootCauseReport,
    SliceContribution,
)
from modelplane.observability.root_cause import rank
from modelplane.observability.slices import MAX_CATEGORIES as MAX_SLICE_CATEGORIES
from modelplane.observability.slices import check_column
from modelplane.observability.store.base import ScanSpec
from modelplane.observability.store.frames import to_us

if TYPE_CHECKING:
    from modelplane.observability.baselines import Reference
    from modelplane.observability.reader import EvaluationReader

#: (predicted, actual) label pairs and their counts
Pairs = dict[tuple[str, str], int]


def _refuse(description: str) -> InvalidArgument:
    return InvalidArgument(f"mode: {description}", reason="PROFILE_MODE_UNAVAILABLE",
                           field_violations=[FieldViolation("mode", description)])


def _from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def _profiles_answer(ev: EvaluationReader, specs: Sequence[ScanSpec], forced: bool) -> bool:
    """Whether the profiles answer: they must count every record of the windows
    (a store written before profiles were kept has hours they miss); in automatic
    mode, one side must also hold more records than the exact limit, or a window
    start before the records kept (``MODELPLANE_OBSERVABILITY_RECORD_RETENTION_DAYS``)."""
    counts = [ev._store.profile_count(s) for s in specs]
    missing = sum(m for _, m in counts)
    if missing:
        if forced:
            raise _refuse(f"{missing} records of these windows were stored before this "
                          "store kept profiles; they are answered in EXACT mode only")
        return False
    # past record retention the records are gone: the profiles answer what they can
    return forced or max(n for n, _ in counts) > ev.exact_rows \
        or any(ev.rows_expired(s.window) for s in specs)


def _spec(f: EvaluationFilter) -> ScanSpec:
    return ScanSpec(f.model, f.versions, f.environment, f.window)


def profile_drift(ev: EvaluationReader, current: EvaluationFilter, reference: Reference | None,
                  columns: Sequence[ColumnRef], methods: Sequence[DriftMethod],
                  thresholds: DriftThresholds, bins: int, mode: AnalysisMode
                  ) -> DriftReport | None:
    """Drift from profiles, or None when the exact path should answer."""
    forced = mode is AnalysisMode.PROFILE
    cur_f, catalog = ev.validate_filter(current, "current")
    ref_f, _, ref_path = ev.reference_filter(reference, current)
    ref_f, _ = ev.validate_filter(ref_f, ref_path)
    if cur_f.predicates or ref_f.predicates:
        if forced:
            raise _refuse("profiles summarise whole windows of a model, version and "
                          "environment; a filter with predicates needs EXACT mode")
        return None
    cols = drift_columns(catalog, columns, current.model, "columns")
    if any(c.source is ColumnSource.ACTUAL for c, _ in cols):
        if forced:
            raise _refuse("profiles do not keep actuals; drift of the actual needs EXACT mode")
        return None
    if ref_f.model != cur_f.model:
        ref_kinds = ev.catalog(ref_f.model, f"{ref_path}.model").columns()
        for i, (c, _) in enumerate(cols):
            if c.source in (ColumnSource.FEATURE, ColumnSource.TAG) and c not in ref_kinds:
                raise InvalidArgument(
                    f"columns[{i}]: reference model {ref_f.model!r} has no column {c}",
                    reason="UNKNOWN_COLUMN",
                    field_violations=[FieldViolation(f"columns[{i}]", "unknown column")])
    store = ev._store
    cur_spec, ref_spec = _spec(cur_f), _spec(ref_f)
    if not _profiles_answer(ev, [cur_spec, ref_spec], forced):
        return None
    cur_rows = store.profile_rows(cur_spec)
    ref_rows = store.profile_rows(ref_spec)
    cur_p, ref_p = merge_rows(cur_rows), merge_rows(ref_rows)
    empty = ColumnProfile()
    results = []
    for col, kind in cols:
        key = (int(col.source), col.name)
        ref_col = ref_p.columns.get(key, empty)
        cur_col = cur_p.columns.get(key, empty)
        if kind is ColumnKind.NUMERIC:
            ms = [m for m in (methods or NUMERIC_METHODS) if m in NUMERIC_METHODS]
            d = profile_numeric_drift(ref_col, cur_col, ms, thresholds, bins,
                                      ref_col.numbers <= SMALL_SAMPLE)
        else:
            ms = [m for m in (methods or CATEGORICAL_METHODS) if m in CATEGORICAL_METHODS]
            d = profile_categorical_drift(ref_col, cur_col, ms, thresholds,
                                          ref_col.labels <= SMALL_SAMPLE)
        results.append(ColumnDriftResult(col, kind, d))
    return DriftReport(results, ref_p.records, cur_p.records, AnalysisMode.PROFILE,
                       rank_error(ref_p, cur_p), len(cur_rows) + len(ref_rows))


def profile_performance(ev: EvaluationReader, f: EvaluationFilter, metrics: Sequence[M.Metric],
                        task: M.TaskType, positive: str, average: M.ClassAverage,
                        bucket: timedelta | None, slice_by: Sequence[ColumnRef],
                        mode: AnalysisMode) -> PerformanceReport | None:
    """Classification performance from the confusion counts kept at ingest, or None
    when the exact path should answer. Accuracy, precision, recall and F1 are the
    exact path's numbers over the window widened to whole hours; ROC AUC and log
    loss need the scores and come back without a value."""
    forced = mode is AnalysisMode.PROFILE

    def cannot(why: str) -> PerformanceReport | None:
        if forced:
            raise _refuse(why)
        return None

    f, catalog = ev.validate_filter(f)
    if f.predicates:
        return cannot("profiles summarise whole windows of a model, version and "
                      "environment; a filter with predicates needs EXACT mode")
    kinds = catalog.columns()
    if kinds.get(PREDICTION) is ColumnKind.NUMERIC or task is M.TaskType.REGRESSION:
        return cannot("profiles keep classification counts only; regression needs EXACT mode")
    hour = timedelta(hours=1)
    if bucket is not None and (bucket % hour or (
            f.window.start is not None and to_us(f.window.start) % HOUR_US)):
        return cannot("profiles are hourly: bucket must be whole hours and the window "
                      "start on the hour")
    for i, ref in enumerate(slice_by):
        check_column(ref, {**kinds, PREDICTION: ColumnKind.CATEGORICAL}, f.model,
                     f"slice_by[{i}]")
        if ref.source not in (ColumnSource.FEATURE, ColumnSource.TAG) \
                or kinds.get(ref) is ColumnKind.NUMERIC:
            return cannot(f"slice_by[{i}]: profiles count categorical feature and tag "
                          "values; a numeric or prediction slice needs EXACT mode")
    spec = _spec(f)
    store = ev._store
    if not _profiles_answer(ev, [spec], forced):
        return None
    task = M.TaskType.CLASSIFICATION
    ms = check_metrics(metrics, task, "metrics")
    scores = catalog.score_keys()
    headers = store.profile_headers(spec)
    cells = store.confusion_rows(spec)

    def metric_values(pairs: dict[tuple[str, str], int]) -> dict[M.Metric, float | None]:
        return M.confusion_metrics(pairs, scores, ms, positive or None, average)

    def group(records: int, pairs: dict[tuple[str, str], int]) -> PerformanceGroup:
        return PerformanceGroup(records, sum(pairs.values()), metric_values(pairs))

    overall_pairs: dict[tuple[str, str], int] = {}
    for _bucket, src, _, _, p, a, n in cells:
        if src == 0:
            overall_pairs[(p, a)] = overall_pairs.get((p, a), 0) + n
    overall = group(sum(h[1] for h in headers), overall_pairs)
    windows = []
    if bucket is not None:
        width = int(bucket.total_seconds() * 1_000_000)
        with_records = [h for h in headers if h[1]]
        if with_records:
            start = (to_us(f.window.start) if f.window.start
                     else min(h[0] for h in with_records) // width * width)
            counts: dict[int, int] = {}
            for b, records, _ in with_records:
                counts[(b - start) // width] = counts.get((b - start) // width, 0) + records
            pairs_by: dict[int, dict[tuple[str, str], int]] = {}
            for b, src, _, _, p, a, n in cells:
                if src == 0:
                    d = pairs_by.setdefault((b - start) // width, {})
                    d[(p, a)] = d.get((p, a), 0) + n
            for i in sorted(counts):
                g = group(counts[i], pairs_by.get(i, {}))
                lo = start + i * width
                g.window = TimeWindow(_from_us(lo), _from_us(lo + width))
                windows.append(g)
    slices = []
    for ref in slice_by:
        key = (int(ref.source), ref.name)
        values: dict[str, int] = {}
        for _, _, cats in headers:
            for v, n in cats.get(key, {}).items():
                values[v] = values.get(v, 0) + n
        values.pop(OTHER, None)
        top = sorted(values, key=lambda v: -values[v])[:MAX_SLICE_CATEGORIES]
        boolean = kinds.get(ref) is ColumnKind.BOOLEAN
        by_value: dict[str, dict[tuple[str, str], int]] = {}
        for _, src, name, value, p, a, n in cells:
            if (src, name) == key:
                d = by_value.setdefault(value, {})
                d[(p, a)] = d.get((p, a), 0) + n
        chosen: list[tuple[str, Scalar]] = [(v, v == "true" if boolean else v) for v in top]
        for text, wanted in sorted(chosen, key=lambda tv: str(tv[1])):
            g = group(values[text], by_value.get(text, {}))
            g.slice = (SlicePredicate(ref, SliceOperator.EQUAL, (wanted,)),)
            slices.append(g)
    return PerformanceReport(task, overall, windows, slices, AnalysisMode.PROFILE)


def profile_root_cause(ev: EvaluationReader, current: EvaluationFilter, reference: Reference | None,
                       metric: M.Metric | None, drift_column: ColumnRef | None,
                       columns: Sequence[ColumnRef], max_slices: int, max_depth: int,
                       min_slice_size: int, positive: str, mode: AnalysisMode
                       ) -> RootCauseReport | None:
    """Root cause of a classification metric's drop over single categorical slices,
    from the confusion counts (the exact path's contribution, share, lift and score:
    each needs the metric inside a slice and outside it, which the counts give by
    subtraction), or None when the exact path should answer."""
    forced = mode is AnalysisMode.PROFILE

    def cannot(why: str) -> RootCauseReport | None:
        if forced:
            raise _refuse(why)
        return None

    if metric is None or metric is M.Metric.UNSPECIFIED or drift_column is not None:
        return cannot("profiles answer the root cause of a metric; of drift it needs EXACT")
    if max_depth != 1:
        return cannot("profiles count single slices; pairs (max_depth 2) need EXACT mode")
    cur_f, catalog = ev.validate_filter(current, "current")
    ref_f, _, ref_path = ev.reference_filter(reference, current)
    ref_f, _ = ev.validate_filter(ref_f, ref_path)
    if cur_f.predicates or ref_f.predicates:
        return cannot("profiles summarise whole windows of a model, version and "
                      "environment; a filter with predicates needs EXACT mode")
    if ref_f.model != cur_f.model:
        return cannot("profiles compare windows of one model")
    kinds = catalog.columns()
    if kinds.get(PREDICTION) is ColumnKind.NUMERIC:
        return cannot("profiles keep classification counts only; regression needs EXACT mode")
    check_metrics([metric], M.TaskType.CLASSIFICATION, "objective.metric")
    if metric in (M.Metric.ROC_AUC, M.Metric.LOG_LOSS):
        return cannot(f"{metric.name} needs the scores; profiles keep counts")
    if columns:
        cols = [(c, check_column(c, {**kinds, PREDICTION: ColumnKind.CATEGORICAL},
                                 cur_f.model, f"columns[{i}]")) for i, c in enumerate(columns)]
    else:
        cols = [(c, k) for c, k in sorted(kinds.items())
                if c.source in (ColumnSource.FEATURE, ColumnSource.TAG)]
    for i, (c, k) in enumerate(cols):
        if c.source not in (ColumnSource.FEATURE, ColumnSource.TAG) \
                or k is ColumnKind.NUMERIC:
            return cannot(f"columns[{i}]: profiles count categorical feature and tag values; "
                          f"{c} needs EXACT mode (name categorical columns to use profiles)")
    store = ev._store
    cur_spec, ref_spec = _spec(cur_f), _spec(ref_f)
    if not _profiles_answer(ev, [cur_spec, ref_spec], forced):
        return None
    sign = 1.0 if metric in M.HIGHER_IS_BETTER else -1.0
    scores = catalog.score_keys()

    def side(spec: ScanSpec) -> tuple[int, dict[ColumnKey, dict[str, int]],
                                      dict[tuple[int, str, str], Pairs]]:
        records = 0
        values: dict[ColumnKey, dict[str, int]] = {}
        for _, n, cats in store.profile_headers(spec):
            records += n
            for key, counts in cats.items():
                into = values.setdefault(key, {})
                for v, c in counts.items():
                    into[v] = into.get(v, 0) + c
        cells: dict[tuple[int, str, str], Pairs] = {}
        for _, src, name, value, p, a, n in store.confusion_rows(spec):
            d = cells.setdefault((src, name, value), {})
            d[(p, a)] = d.get((p, a), 0) + n
        return records, values, cells

    def value(pairs: Pairs) -> float:
        v = M.confusion_metrics(pairs, scores, [metric], positive or None)[metric]
        return math.nan if v is None else v

    def minus(a: Pairs, b: Pairs) -> Pairs:
        return {k: n - b.get(k, 0) for k, n in a.items()}

    n_ref_all, ref_values, ref_cells = side(ref_spec)
    n_cur_all, cur_values, cur_cells = side(cur_spec)
    ref_total, cur_total = ref_cells.get((0, "", ""), {}), cur_cells.get((0, "", ""), {})
    overall = sign * (value(ref_total) - value(cur_total))
    found = []
    for col, kind in cols:
        key = (int(col.source), col.name)
        counts = {v: ref_values.get(key, {}).get(v, 0) + cur_values.get(key, {}).get(v, 0)
                  for v in set(ref_values.get(key, {})) | set(cur_values.get(key, {}))}
        counts.pop(OTHER, None)
        top = sorted(counts, key=lambda v: -counts[v])[:MAX_SLICE_CATEGORIES]
        boolean = kind is ColumnKind.BOOLEAN
        for text in sorted(top, key=lambda v: str(v == "true" if boolean else v)):
            n_ref = ref_values.get(key, {}).get(text, 0)
            n_cur = cur_values.get(key, {}).get(text, 0)
            if n_cur < (min_slice_size or 30) or n_cur == n_cur_all:
                continue
            r_in = ref_cells.get((*key, text), {})
            c_in = cur_cells.get((*key, text), {})
            rest = sign * (value(minus(ref_total, r_in)) - value(minus(cur_total, c_in)))
            if math.isnan(rest) or math.isnan(overall):
                continue
            contribution = overall - rest
            share = contribution / overall if overall else 0.0
            records = max(n_ref / n_ref_all if n_ref_all else 0.0, n_cur / n_cur_all)
            lift = share / records
            ref_value = value(r_in) if n_ref else math.nan
            cur_value = value(c_in)
            gap = sign * (ref_value - cur_value) - rest
            score = records * (1.0 - records) * gap * gap if gap > 0 else 0.0
            wanted: Scalar = text == "true" if boolean else text
            found.append(SliceContribution(
                (SlicePredicate(col, SliceOperator.EQUAL, (wanted,)),), contribution, share,
                n_ref, n_cur, ref_value, cur_value, lift, score))
    found.sort(key=rank)
    return RootCauseReport(value(ref_total), value(cur_total), found[:max_slices or 10],
                           AnalysisMode.PROFILE)
