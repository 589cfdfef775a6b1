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

from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.drift import (
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    SMALL_SAMPLE,
    DriftMethod,
    DriftThresholds,
)
from modelplane.observability.profiles import (
    ColumnProfile,
    merge_rows,
    profile_categorical_drift,
    profile_numeric_drift,
    rank_error,
)
from modelplane.observability.records import (
    ColumnKind,
    ColumnRef,
    ColumnSource,
    EvaluationFilter,
)
from modelplane.observability.store.base import ScanSpec

if TYPE_CHECKING:
    from modelplane.observability.evaluations import DriftReport, Evaluations, Reference


def _refuse(description: str) -> InvalidArgument:
    return InvalidArgument(f"mode: {description}", reason="PROFILE_MODE_UNAVAILABLE",
                           field_violations=[FieldViolation("mode", description)])


def _spec(f: EvaluationFilter) -> ScanSpec:
    return ScanSpec(f.model, f.versions, f.environment, f.window)


def profile_drift(ev: Evaluations, current: EvaluationFilter, reference: Reference | None,
                  columns: Sequence[ColumnRef], methods: Sequence[DriftMethod],
                  thresholds: DriftThresholds, bins: int, mode: AnalysisMode
                  ) -> DriftReport | None:
    """Drift from profiles, or None when the exact path should answer."""
    from modelplane.observability.evaluations import ColumnDriftResult, DriftReport

    forced = mode is AnalysisMode.PROFILE
    cur_f, catalog = ev.validate_filter(current, "current")
    ref_f, _, ref_path = ev.reference_filter(reference, current)
    ref_f, _ = ev.validate_filter(ref_f, ref_path)
    if cur_f.predicates or ref_f.predicates:
        if forced:
            raise _refuse("profiles summarise whole windows of a model, version and "
                          "environment; a filter with predicates needs EXACT mode")
        return None
    cols = ev._drift_columns(catalog, columns, current.model, "columns")
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
    if not forced and max(store.profile_count(cur_spec),
                          store.profile_count(ref_spec)) <= ev.exact_rows:
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
                       rank_error(), len(cur_rows) + len(ref_rows))
