"""The evaluation store's read side: typed filters validated against what the
store holds, frames loaded for them, and every analysis over those frames
(performance, proxy performance, drift, root cause, attribution, baselines).

Blocking (numpy, SQL): the api layer calls these methods from a thread.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from modelplane.kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import (
    DEFAULT_EXACT_ROWS,
    DEFAULT_MAX_ANALYSIS_ROWS,
    AnalysisMode,
    RowBudget,
    Sampling,
    current_sampling,
    sampling,
)
from modelplane.observability.drift import (
    DriftMethod,
    DriftThresholds,
    SampleDrift,
    categorical_drift,
    drift_many,
    numeric_drift,
)
from modelplane.observability.model_explanation import (
    ExplainBudget,
    ModelLoader,
    ModelUnavailable,
)
from modelplane.observability.records import (
    PREDICTION,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    SlicePredicate,
    TimeWindow,
    describe_slice,
    utcnow,
)

if TYPE_CHECKING:
    from modelplane.observability.attribution import Surrogate
from modelplane.observability.slices import (
    candidate_slices,
    check_column,
    slice_mask,
    validate_predicates,
)
from modelplane.observability.store.base import EvaluationStore, ScanSpec
from modelplane.observability.store.encoding import Catalog
from modelplane.observability.store.frames import Frame, to_us

MetricValues = dict[M.Metric, float | None]
log = logging.getLogger(__name__)
DEFAULT_THRESHOLDS = DriftThresholds()


def _bad(field: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", reason=reason,
                           field_violations=[FieldViolation(field, description)])


@dataclass(frozen=True)
class Reference:
    """What an analysis compares against: a filter, or a version's baseline."""

    filter: EvaluationFilter | None = None
    baseline: tuple[str, str] | None = None


@dataclass
class Baseline:
    model: str
    version: str
    reference: EvaluationFilter | None = None
    metrics: dict[M.Metric, float] = field(default_factory=dict)
    validation_report_id: str = ""
    update_time: datetime | None = None
    record_count: int = 0

    def reference_filter(self) -> EvaluationFilter:
        return self.reference or EvaluationFilter(self.model, (self.version,),
                                                  Environment.VALIDATION)

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "version": self.version,
                "reference": self.reference.to_dict() if self.reference else None,
                "metrics": {int(k): v for k, v in self.metrics.items()},
                "validation_report_id": self.validation_report_id,
                "update_time": self.update_time.isoformat() if self.update_time else None}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Baseline:
        ref = d.get("reference")
        metrics = d.get("metrics") or {}
        assert isinstance(metrics, dict)
        ut = d.get("update_time")
        return cls(str(d["model"]), str(d["version"]),
                   EvaluationFilter.from_dict(ref) if isinstance(ref, dict) else None,
                   {M.Metric(int(k)): float(v) for k, v in metrics.items()},
                   str(d.get("validation_report_id") or ""),
                   datetime.fromisoformat(str(ut)) if ut else None)


@dataclass
class PerformanceGroup:
    record_count: int
    labeled_count: int
    metrics: MetricValues
    window: TimeWindow | None = None
    slice: tuple[SlicePredicate, ...] | None = None


@dataclass
class PerformanceReport:
    task: M.TaskType
    overall: PerformanceGroup
    windows: list[PerformanceGroup]
    slices: list[PerformanceGroup]
    mode: AnalysisMode = AnalysisMode.EXACT
    #: SAMPLE: records read (all sides) and records in the windows they were drawn from
    sample_size: int = 0
    population_size: int = 0


@dataclass
class ColumnDriftResult:
    column: ColumnRef
    kind: ColumnKind
    drift: SampleDrift


@dataclass
class DriftReport:
    columns: list[ColumnDriftResult]
    reference_count: int
    current_count: int
    mode: AnalysisMode = AnalysisMode.EXACT
    #: PROFILE: the sketches' normalized rank error ε
    rank_error: float = 0.0
    #: PROFILE: hourly profiles merged (both sides)
    profile_buckets: int = 0
    #: SAMPLE: records read (both sides) and records in the windows
    sample_size: int = 0
    population_size: int = 0

    @property
    def drifted_share(self) -> float:
        if not self.columns:
            return 0.0
        return sum(c.drift.drifted for c in self.columns) / len(self.columns)


@dataclass
class ProxyGroup:
    record_count: int
    estimated: MetricValues
    prediction_drift: list[ColumnDriftResult]
    window: TimeWindow | None = None


@dataclass
class ProxyReport:
    overall: ProxyGroup
    windows: list[ProxyGroup]
    reference_metrics: MetricValues
    calibrated: bool
    mode: AnalysisMode = AnalysisMode.EXACT
    sample_size: int = 0
    population_size: int = 0


@dataclass
class SliceContribution:
    slice: tuple[SlicePredicate, ...]
    contribution: float
    contribution_share: float
    reference_count: int
    current_count: int
    reference_value: float
    current_value: float
    #: share of the change / the slice's share of the records (the larger side)
    lift: float = 0.0
    #: what the slices are ranked by (see ``_contribution``)
    score: float = 0.0

    @property
    def display_name(self) -> str:
        return describe_slice(self.slice)


@dataclass
class RootCauseReport:
    reference_value: float
    current_value: float
    slices: list[SliceContribution]
    mode: AnalysisMode = AnalysisMode.EXACT
    sample_size: int = 0
    population_size: int = 0


@dataclass
class Importance:
    feature: str
    value: float
    std: float = 0.0


class Explainer(IntEnum):
    """What ExplainPredictions and ComputeFeatureImportance explain (numbers as
    in the contract)."""

    UNSPECIFIED = 0  # the model; the surrogate when it cannot be loaded
    MODEL = 1  # the model, or FAILED_PRECONDITION
    SURROGATE = 2


#: what a surrogate's fidelity was measured against
FIDELITY_R2_AGAINST_MODEL = "r2_against_model"
FIDELITY_ACCURACY_AGAINST_LOGGED = "accuracy_against_logged"
FIDELITY_R2_AGAINST_LOGGED = "r2_against_logged"
FIDELITY_ACCURACY_AGAINST_ACTUAL = "accuracy_against_actual"
FIDELITY_R2_AGAINST_ACTUAL = "r2_against_actual"
#: a surrogate's per-prediction methods, as reported
SURROGATE_TREE_SHAP = "surrogate_tree_shap"
#: versions one call explains with their own models
MAX_EXPLAINED_VERSIONS = 4


@dataclass
class ImportanceReport:
    importances: list[Importance]
    #: the surrogate's, when one answered (else 0)
    fidelity: float
    record_count: int
    #: MODEL (the records' own versions) or SURROGATE
    explainer: Explainer = Explainer.SURROGATE
    #: FIDELITY_* when a surrogate answered
    fidelity_measure: str = ""
    #: why a surrogate answered although the model was asked for
    fallback_reason: str = ""
    #: the score whose drop is the importance, in words
    scoring: str = ""
    #: the versions whose models were explained
    versions: list[str] = field(default_factory=list)


@dataclass
class ExplanationReport:
    attributions: dict[str, dict[str, float]]
    fidelity: float
    #: model_explanation.TREE_SHAP / PERMUTATION_SHAP (the model), or
    #: SURROGATE_TREE_SHAP / attribution.OCCLUSION (a surrogate).
    method: str = "occlusion"
    #: FIDELITY_* when a surrogate answered
    fidelity_measure: str = ""
    explained_output: str = ""
    #: why a surrogate answered although the model was asked for
    fallback_reason: str = ""
    #: per prediction id: the version explained, the output and its expected value
    versions: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, float] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)


def infer_task(frame: Frame, catalog: Catalog, task: M.TaskType) -> M.TaskType:
    if task is not M.TaskType.UNSPECIFIED:
        return task
    if catalog.score_keys():
        return M.TaskType.CLASSIFICATION
    kind = frame.kinds.get(PREDICTION, ColumnKind.CATEGORICAL)
    return M.TaskType.REGRESSION if kind is ColumnKind.NUMERIC else M.TaskType.CLASSIFICATION


def _buckets(frame: Frame, bucket: timedelta, window: TimeWindow
             ) -> list[tuple[TimeWindow, np.ndarray]]:
    if len(frame) == 0:
        return []
    width = int(bucket.total_seconds() * 1_000_000)
    start = to_us(window.start) if window.start else int(frame.time_us.min()) // width * width
    idx = (frame.time_us - start) // width
    out = []
    for b in np.unique(idx):
        lo = start + int(b) * width
        out.append((TimeWindow(_from_us(lo), _from_us(lo + width)), np.flatnonzero(idx == b)))
    return out


def _from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


_Report = TypeVar("_Report", PerformanceReport, DriftReport, RootCauseReport, ProxyReport)


def _stamp(report: _Report, plan: Sampling | None) -> _Report:
    """SAMPLE and the sizes when a read of the analysis was sampled, else EXACT."""
    if plan is not None and plan.sampled:
        report.mode = AnalysisMode.SAMPLE
        report.sample_size = plan.sample_size
        report.population_size = plan.population_size
    return report


class Evaluations:
    """The read side of the evaluation store and the analyses over it."""

    def __init__(self, store: EvaluationStore, catalogs: dict[str, Catalog],
                 catalog_lock: threading.Lock, executor: Executor | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 max_rows: int = DEFAULT_MAX_ANALYSIS_ROWS, *,
                 models: ModelLoader | None = None,
                 explain_budget: ExplainBudget | None = None,
                 exact_rows: int = DEFAULT_EXACT_ROWS,
                 record_retention_days: int = 0) -> None:
        self._store = store
        #: records older than this many days are deleted (0: kept forever)
        self.record_retention_days = record_retention_days
        self._max_rows = max_rows
        #: AUTO mode: windows with more records than this are answered from profiles
        self.exact_rows = exact_rows
        self._catalogs = catalogs
        self._catalog_lock = catalog_lock
        self._executor = executor
        self._clock = clock
        #: registered model versions, for explaining the model itself (None: off)
        self.models = models
        self.explain_budget = explain_budget or ExplainBudget()

    # -- filters and frames -------------------------------------------------

    def refresh_catalogs(self) -> None:
        """Merge the store's catalogs into this replica's: another replica sharing the
        store may have ingested models, versions or columns this one has not seen."""
        stored = self._store.load_catalogs()
        with self._catalog_lock:
            for model, catalog in stored.items():
                self._catalogs.setdefault(model, Catalog()).kinds.update(catalog.kinds)

    def catalog(self, model: str, path: str = "filter.model") -> Catalog:
        if not model:
            raise _bad(path, "required")
        with self._catalog_lock:
            catalog = self._catalogs.get(model)
        if catalog is None:
            self.refresh_catalogs()
            with self._catalog_lock:
                catalog = self._catalogs.get(model)
        if catalog is None:
            raise NotFound(f"model {model!r} has no records in the evaluation store",
                           reason="MODEL_NOT_FOUND", metadata={"model": model})
        with self._catalog_lock:
            return Catalog(dict(catalog.kinds))

    def validate_filter(self, f: EvaluationFilter, path: str = "filter"
                        ) -> tuple[EvaluationFilter, Catalog]:
        catalog = self.catalog(f.model, f"{path}.model")
        known = set(catalog.versions())
        if not known.issuperset(f.versions):  # logged through another replica since?
            self.refresh_catalogs()
            catalog = self.catalog(f.model, f"{path}.model")
            known = set(catalog.versions())
        for i, v in enumerate(f.versions):
            if v not in known:
                raise NotFound(f"model {f.model!r} has no version {v!r} in the evaluation store "
                               f"({path}.versions[{i}])", reason="VERSION_NOT_FOUND",
                               metadata={"model": f.model, "version": v})
        f.window.validate(f"{path}.window")
        columns = catalog.columns()
        columns.setdefault(PREDICTION, ColumnKind.CATEGORICAL)
        preds = validate_predicates(f.predicates, columns, f.model, f"{path}.predicates")
        return replace(f, predicates=tuple(preds)), catalog

    def rows_expired(self, window: TimeWindow) -> bool:
        """Whether records of ``window`` may be deleted by retention."""
        from modelplane.observability.retention import window_expired

        return window_expired(window, self.record_retention_days, self._clock())

    def load(self, f: EvaluationFilter, path: str = "filter", *,
             has_actual: bool | None = None) -> tuple[Frame, Catalog]:
        f, catalog = self.validate_filter(f, path)
        if self.rows_expired(f.window):
            from modelplane.observability.retention import records_expired

            raise records_expired(f.window, self.record_retention_days, self._clock(),
                                  f"{path}.window")
        # charged to the running analysis's row budget: never more than it and one row read
        budget = RowBudget.current(self._max_rows)
        spec = ScanSpec(f.model, f.versions, f.environment, f.window,
                        has_actual=has_actual, limit=budget.scan_limit)
        plan = current_sampling()
        population = 0
        if plan is not None:
            population = self._store.count_records(spec)
            share = plan.share(budget)
            if population > share >= 1:  # a uniform sample of the side's share
                spec = replace(spec, limit=None, sample=share)
        frame = self._store.scan_frame(spec, catalog)
        budget.charge(len(frame))
        if plan is not None:
            plan.add(len(frame), population)
        if f.predicates:
            frame = frame.take(np.flatnonzero(slice_mask(frame, f.predicates)))
        return frame, catalog

    # -- baselines ----------------------------------------------------------

    def set_baseline(self, baseline: Baseline) -> Baseline:
        if not baseline.model:
            raise _bad("baseline.model", "required")
        if not baseline.version:
            raise _bad("baseline.version", "required")
        if baseline.reference is not None:
            if baseline.reference.model != baseline.model:
                raise _bad("baseline.reference.model", "must be the baseline's model")
            self.validate_filter(baseline.reference, "baseline.reference")
        baseline.update_time = self._clock()
        self._store.put_document("baseline", f"{baseline.model}\x1f{baseline.version}",
                                 baseline.model, baseline.to_dict())
        return self.get_baseline(baseline.model, baseline.version)

    def get_baseline(self, model: str, version: str) -> Baseline:
        if not model:
            raise _bad("model", "required")
        if not version:
            raise _bad("version", "required")
        doc = self._store.get_document("baseline", f"{model}\x1f{version}")
        if doc is None:
            raise NotFound(f"model {model!r} version {version!r} has no baseline",
                           reason="BASELINE_NOT_FOUND", metadata={"model": model,
                                                                 "version": version})
        baseline = Baseline.from_dict(doc)
        try:
            frame, _ = self.load(baseline.reference_filter(), "baseline.reference")
            baseline.record_count = len(frame)
        except NotFound:
            baseline.record_count = 0
        return baseline

    def load_reference(self, reference: Reference | None, current: EvaluationFilter,
                       path: str = "reference") -> tuple[Frame, Baseline | None]:
        ref_filter, baseline, ref_path = self.reference_filter(reference, current, path)
        frame, _ = self.load(ref_filter, ref_path)
        return frame, baseline

    def reference_filter(self, reference: Reference | None, current: EvaluationFilter,
                         path: str = "reference"
                         ) -> tuple[EvaluationFilter, Baseline | None, str]:
        """The reference's filter (without reading records), its baseline if it
        came from one, and the request path its errors are reported under."""
        if reference is not None and reference.filter is not None:
            return reference.filter, None, f"{path}.filter"
        if reference is not None and reference.baseline is not None:
            model, version = reference.baseline
            baseline = self._baseline_document(model, version)
        else:
            versions = current.versions
            if len(versions) != 1:
                catalog = self.catalog(current.model)
                versions = tuple(catalog.versions()) if len(catalog.versions()) == 1 else versions
            if len(versions) != 1:
                raise FailedPrecondition(
                    f"{path}: unset, and the default (the baseline of the current version) "
                    f"needs exactly one version in the current filter",
                    reason="REFERENCE_REQUIRED", metadata={"model": current.model})
            try:
                baseline = self._baseline_document(current.model, versions[0])
            except NotFound:
                raise FailedPrecondition(
                    f"{path}: unset, and model {current.model!r} version {versions[0]!r} has "
                    f"no baseline (SetBaseline, or pass a reference filter)",
                    reason="BASELINE_NOT_FOUND",
                    metadata={"model": current.model, "version": versions[0]}) from None
        return baseline.reference_filter(), baseline, f"{path}.baseline"

    def _baseline_document(self, model: str, version: str) -> Baseline:
        """A stored baseline without its record count (get_baseline reads that)."""
        if not model:
            raise _bad("model", "required")
        if not version:
            raise _bad("version", "required")
        doc = self._store.get_document("baseline", f"{model}\x1f{version}")
        if doc is None:
            raise NotFound(f"model {model!r} version {version!r} has no baseline",
                           reason="BASELINE_NOT_FOUND", metadata={"model": model,
                                                                 "version": version})
        return Baseline.from_dict(doc)

    # -- performance --------------------------------------------------------

    def _metric_values(self, frame: Frame, task: M.TaskType, metrics: Sequence[M.Metric],
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

    def _check_metrics(self, metrics: Sequence[M.Metric], task: M.TaskType, path: str
                       ) -> list[M.Metric]:
        allowed = M.metrics_for(task)
        if not metrics:
            return list(allowed)
        for i, m in enumerate(metrics):
            if m not in allowed:
                raise _bad(f"{path}[{i}]", f"{m.name} does not apply to "
                           f"{task.name.lower()} (use one of "
                           f"{', '.join(a.name for a in allowed)})", "METRIC_NOT_APPLICABLE")
        return list(metrics)

    def performance(self, f: EvaluationFilter, metrics: Sequence[M.Metric] = (),
                    task: M.TaskType = M.TaskType.UNSPECIFIED, positive: str = "",
                    average: M.ClassAverage = M.ClassAverage.UNSPECIFIED,
                    bucket: timedelta | None = None, slice_by: Sequence[ColumnRef] = (),
                    slice_bins: int = 4, mode: AnalysisMode = AnalysisMode.UNSPECIFIED
                    ) -> PerformanceReport:
        if bucket is not None and bucket <= timedelta(0):
            raise _bad("bucket", "must be positive")
        if mode in (AnalysisMode.UNSPECIFIED, AnalysisMode.PROFILE):
            from modelplane.observability.profile_analysis import profile_performance

            report = profile_performance(self, f, metrics, task, positive, average, bucket,
                                         slice_by, mode)
            if report is not None:
                return report
        with sampling(mode, 1) as plan:
            frame, catalog = self.load(f)
        task = infer_task(frame, catalog, task)
        ms = self._check_metrics(metrics, task, "metrics")

        def group(fr: Frame) -> PerformanceGroup:
            labeled, values = self._metric_values(fr, task, ms, positive, average)
            return PerformanceGroup(len(fr), labeled, values)

        overall = group(frame)
        windows = []
        if bucket is not None:
            for win, idx in _buckets(frame, bucket, f.window):
                g = group(frame.take(idx))
                g.window = win
                windows.append(g)
        slices = []
        columns = catalog.columns()
        columns.setdefault(PREDICTION, ColumnKind.CATEGORICAL)
        for i, ref in enumerate(slice_by):
            kind = check_column(ref, columns, f.model, f"slice_by[{i}]")
            for preds in candidate_slices(ref, kind, [frame], slice_bins or 4):
                g = group(frame.take(np.flatnonzero(slice_mask(frame, preds))))
                g.slice = preds
                slices.append(g)
        return _stamp(PerformanceReport(task, overall, windows, slices), plan)

    # -- drift --------------------------------------------------------------

    def _drift_columns(self, catalog: Catalog, columns: Sequence[ColumnRef], model: str,
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

    def _drift_of(self, ref: Frame, cur: Frame, columns: Sequence[tuple[ColumnRef, ColumnKind]],
                  methods: Sequence[DriftMethod], thresholds: DriftThresholds, bins: int
                  ) -> list[ColumnDriftResult]:
        pairs = []
        for col, kind in columns:
            numeric = kind is ColumnKind.NUMERIC
            r = ref.column(col) if col in ref.kinds or col.source in (
                ColumnSource.PREDICTION, ColumnSource.ACTUAL) else None
            c = cur.column(col)
            if r is None:
                r = np.empty(0, dtype=np.float64 if numeric else object)
            pairs.append((r, c, numeric))
        drifts = drift_many(pairs, methods or None, thresholds, bins, self._executor)
        return [ColumnDriftResult(col, kind, d) for (col, kind), d in zip(columns, drifts)]

    def drift(self, current: EvaluationFilter, reference: Reference | None = None,
              columns: Sequence[ColumnRef] = (), methods: Sequence[DriftMethod] = (),
              thresholds: DriftThresholds = DEFAULT_THRESHOLDS, bins: int = 10,
              mode: AnalysisMode = AnalysisMode.UNSPECIFIED) -> DriftReport:
        if bins < 0 or bins > 1000:
            raise _bad("bins", "must be between 1 and 1000 (0 = 10)")
        if mode in (AnalysisMode.UNSPECIFIED, AnalysisMode.PROFILE):
            from modelplane.observability.profile_analysis import profile_drift

            report = profile_drift(self, current, reference, columns, methods, thresholds,
                                   bins or 10, mode)
            if report is not None:
                return report
        with sampling(mode, 2) as plan:
            cur, catalog = self.load(current, "current")
            ref, _ = self.load_reference(reference, current)
        cols = self._drift_columns(catalog, columns, current.model, "columns")
        if reference is not None and reference.filter is not None \
                and reference.filter.model != current.model:
            ref_catalog = self.catalog(reference.filter.model, "reference.filter.model")
            ref_kinds = ref_catalog.columns()
            for i, (c, _kind) in enumerate(cols):
                if c.source in (ColumnSource.FEATURE, ColumnSource.TAG) and c not in ref_kinds:
                    raise _bad(f"columns[{i}]", f"reference model "
                               f"{reference.filter.model!r} has no column {c}", "UNKNOWN_COLUMN")
        results = self._drift_of(ref, cur, cols, methods, thresholds, bins or 10)
        return _stamp(DriftReport(results, len(ref), len(cur)), plan)

    # -- proxy performance ----------------------------------------------------

    def proxy_performance(self, current: EvaluationFilter, reference: Reference | None = None,
                          positive: str = "", bucket: timedelta | None = None,
                          thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
                          mode: AnalysisMode = AnalysisMode.UNSPECIFIED) -> ProxyReport:
        from modelplane.observability.estimation import ScoreEstimator

        if mode is AnalysisMode.PROFILE:
            raise InvalidArgument("mode: profiles do not answer proxy performance; use "
                                  "EXACT, SAMPLE or automatic", reason="PROFILE_MODE_UNAVAILABLE",
                                  field_violations=[FieldViolation("mode", "PROFILE")])
        with sampling(mode, 2) as plan:
            cur, catalog = self.load(current, "current")
            ref, _ = self.load_reference(reference, current)
        if infer_task(cur, catalog, M.TaskType.UNSPECIFIED) is not M.TaskType.CLASSIFICATION \
                or not catalog.score_keys():
            raise FailedPrecondition(
                f"proxy performance estimates classifiers from their scores; model "
                f"{current.model!r} logs no scores", reason="SCORES_REQUIRED",
                metadata={"model": current.model})
        estimator = ScoreEstimator.fit(ref, positive or None)
        _, ref_metrics = self._metric_values(ref, M.TaskType.CLASSIFICATION,
                                             M.CLASSIFICATION_METRICS, estimator.positive,
                                             M.ClassAverage.UNSPECIFIED)
        kinds = catalog.columns()
        pred_cols: list[tuple[ColumnRef, ColumnKind]] = [
            (PREDICTION, kinds.get(PREDICTION, ColumnKind.CATEGORICAL))]

        def group(fr: Frame) -> ProxyGroup:
            drift = self._drift_of(ref, fr, pred_cols, (), thresholds, 10)
            if estimator.positive is not None and estimator.positive in fr.scores:
                score_drift = numeric_drift(ref.scores.get(estimator.positive, np.empty(0)),
                                            fr.scores[estimator.positive],
                                            thresholds=thresholds)
                drift.append(ColumnDriftResult(
                    ColumnRef(ColumnSource.PREDICTION, ""), ColumnKind.NUMERIC, score_drift))
            return ProxyGroup(len(fr), estimator.estimate(fr), drift)

        overall = group(cur)
        windows = []
        if bucket is not None:
            if bucket <= timedelta(0):
                raise _bad("bucket", "must be positive")
            for win, idx in _buckets(cur, bucket, current.window):
                g = group(cur.take(idx))
                g.window = win
                windows.append(g)
        return _stamp(ProxyReport(overall, windows, ref_metrics, estimator.calibrated), plan)

    # -- root cause ---------------------------------------------------------

    def root_cause(self, current: EvaluationFilter, reference: Reference | None = None,
                   metric: M.Metric | None = None, drift_column: ColumnRef | None = None,
                   columns: Sequence[ColumnRef] = (), max_slices: int = 10, max_depth: int = 2,
                   min_slice_size: int = 30, bins: int = 4, positive: str = "",
                   mode: AnalysisMode = AnalysisMode.UNSPECIFIED) -> RootCauseReport:
        if mode in (AnalysisMode.UNSPECIFIED, AnalysisMode.PROFILE):
            from modelplane.observability.profile_analysis import profile_root_cause

            report = profile_root_cause(self, current, reference, metric, drift_column,
                                        columns, max_slices, max_depth, min_slice_size,
                                        positive, mode)
            if report is not None:
                return report
        with sampling(mode, 2) as plan:
            cur, catalog = self.load(current, "current")
            ref, _ = self.load_reference(reference, current)
        return _stamp(self.root_cause_of(ref, cur, catalog, current.model, metric,
                                         drift_column, columns, max_slices, max_depth,
                                         min_slice_size, bins, positive), plan)

    def root_cause_of(self, ref: Frame, cur: Frame, catalog: Catalog, model: str,
                      metric: M.Metric | None = None, drift_column: ColumnRef | None = None,
                      columns: Sequence[ColumnRef] = (), max_slices: int = 10,
                      max_depth: int = 2, min_slice_size: int = 30, bins: int = 4,
                      positive: str = "", path: str = "columns") -> RootCauseReport:
        """:meth:`root_cause` over frames already loaded (CompareVersions' two versions)."""
        kinds = catalog.columns()
        kinds.setdefault(PREDICTION, ColumnKind.CATEGORICAL)
        if columns:
            cols = [(c, check_column(c, kinds, model, f"{path}[{i}]"))
                    for i, c in enumerate(columns)]
        else:
            cols = [(c, k) for c, k in sorted(kinds.items())
                    if c.source in (ColumnSource.FEATURE, ColumnSource.TAG)]
        objective = self._objective(cur, catalog, metric, drift_column, kinds, model,
                                    positive)
        degrade, within, is_drift, sign = objective
        overall_change = degrade(ref, cur)
        singles: list[SliceContribution] = []
        col_of: dict[int, ColumnRef] = {}
        for col, kind in cols:
            for preds in candidate_slices(col, kind, [ref, cur], bins or 4):
                c = self._contribution(ref, cur, preds, degrade, within, is_drift, sign,
                                       overall_change, min_slice_size)
                if c is not None:
                    col_of[id(c)] = col
                    singles.append(c)
        singles.sort(key=_rank)
        found = list(singles)
        if max_depth != 1:
            top = [s for s in singles if s.contribution > 0][:8]
            for a, b in itertools.combinations(top, 2):
                if col_of[id(a)] == col_of[id(b)]:
                    continue
                c = self._contribution(ref, cur, a.slice + b.slice, degrade, within,
                                       is_drift, sign, overall_change, min_slice_size)
                # the simpler slice stays first unless the pair is clearly more to blame
                if c is not None and c.score > _PAIR_MARGIN * max(a.score, b.score):
                    found.append(c)
        found.sort(key=_rank)
        ref_value, cur_value = within(ref), within(cur)
        return RootCauseReport(ref_value, cur_value, found[:max_slices or 10])

    def _objective(self, cur: Frame, catalog: Catalog, metric: M.Metric | None,
                   drift_column: ColumnRef | None, kinds: dict[ColumnRef, ColumnKind],
                   model: str, positive: str
                   ) -> tuple[Callable[[Frame, Frame], float], Callable[[Frame], float], bool,
                              float]:
        """(how much worse the current side is, the objective on one side, whether it
        is drift, and for a metric +1 when higher is better, -1 when lower is)."""
        if metric is not None and metric is not M.Metric.UNSPECIFIED:
            task = infer_task(cur, catalog, M.TaskType.UNSPECIFIED)
            self._check_metrics([metric], task, "objective.metric")
            sign = 1.0 if metric in M.HIGHER_IS_BETTER else -1.0

            def value(fr: Frame) -> float:
                _, vals = self._metric_values(fr, task, [metric], positive,
                                              M.ClassAverage.UNSPECIFIED)
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

    def _contribution(self, ref: Frame, cur: Frame, preds: tuple[SlicePredicate, ...],
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

    # -- attribution --------------------------------------------------------

    def feature_importance(self, f: EvaluationFilter, against_actual: bool = False,
                           repeats: int = 5, max_records: int = 20000, seed: int = 0,
                           explainer: Explainer = Explainer.UNSPECIFIED) -> ImportanceReport:
        """Permutation importance of the records' own model versions on (a sample
        of ``max_records`` of) the records, or of a surrogate on request or when
        the model cannot be loaded (see ExplainPredictions)."""
        frame, catalog = self.load(f, has_actual=True if against_actual else None)
        frame = _sample(frame, max_records or 20000, seed)
        fallback = ""
        if explainer is not Explainer.SURROGATE:
            try:
                return self._model_importance(f.model, frame, catalog, against_actual,
                                              repeats or 5, seed)
            except ModelUnavailable as exc:
                if explainer is Explainer.MODEL:
                    raise
                fallback = exc.message
                log.info("importance of a surrogate of %s: %s", f.model, fallback)
        from modelplane.observability.attribution import Surrogate

        surrogate = Surrogate.fit(frame, catalog, against_actual, seed)
        imp = surrogate.permutation_importance(repeats or 5, seed)
        fidelity = surrogate.fidelity
        if against_actual:
            measure = (FIDELITY_ACCURACY_AGAINST_ACTUAL if surrogate.classifier
                       else FIDELITY_R2_AGAINST_ACTUAL)
        else:
            measure = (FIDELITY_ACCURACY_AGAINST_LOGGED if surrogate.classifier
                       else FIDELITY_R2_AGAINST_LOGGED)
            if not fallback:  # asked for: measured against the model when it loads
                try:
                    fidelity = self._fidelity_against_model(f.model, surrogate, frame, catalog)
                    measure = FIDELITY_R2_AGAINST_MODEL
                except ModelUnavailable as exc:
                    log.info("surrogate fidelity of %s against the logged predictions: %s",
                             f.model, exc.message)
        scoring = (f"the surrogate's {'accuracy' if surrogate.classifier else 'R^2'} against "
                   f"{'the actuals' if against_actual else 'the logged predictions'} "
                   f"(held-out records)")
        return ImportanceReport([Importance(n, m, s) for n, m, s in imp], fidelity,
                                len(frame), Explainer.SURROGATE, measure, fallback, scoring)

    def _model_importance(self, model: str, frame: Frame, catalog: Catalog,
                          against_actual: bool, repeats: int, seed: int) -> ImportanceReport:
        """sklearn's permutation importance of each version's model on its records,
        weighted by the version's share of the records."""
        from modelplane.observability.attribution import MIN_RECORDS
        from modelplane.observability.model_explanation import (
            is_classifier,
            model_features,
            model_importance,
        )

        if len(frame) < MIN_RECORDS:
            raise FailedPrecondition(
                f"feature importance needs at least {MIN_RECORDS} records"
                f"{' with an actual' if against_actual else ''}; found {len(frame)}",
                reason="TOO_FEW_RECORDS")
        kinds = catalog.features()
        numeric_target = frame.kinds.get(PREDICTION) is ColumnKind.NUMERIC
        versions = self._versions(frame)
        totals: dict[str, np.ndarray] = {}  # feature -> weighted drop per repeat
        scorings: set[str] = set()
        for version in versions:
            obj = self._load_model(model, version)
            names = model_features(obj, list(kinds))
            rows = np.flatnonzero(frame.version == version)
            classifier = is_classifier(obj) or not numeric_target
            actual = None
            if against_actual:
                actual = (frame.actual_label if classifier and not numeric_target
                          else frame.actual_number)[rows]
            try:
                imp = model_importance(obj, {n: frame.features[n][rows] for n in names}, names,
                                       actual, classifier, repeats, seed)
            except ModelUnavailable:
                raise
            except Exception as exc:  # the model's own code failing
                log.warning("importance of %s version %s failed", model, version,
                            exc_info=True)
                raise ModelUnavailable(f"model {model!r} version {version} could not be "
                                       f"scored: {type(exc).__name__}: {exc}",
                                       model=model, version=version) from None
            weight = len(rows) / len(frame)
            for name, drops in zip(imp.names, imp.importances):
                totals[name] = totals.get(name, np.zeros(len(drops))) + weight * drops
            scorings.add(imp.scoring)
        importances = sorted((Importance(n, float(np.mean(d)), float(np.std(d)))
                              for n, d in totals.items()), key=lambda i: -i.value)
        return ImportanceReport(importances, 0.0, len(frame), Explainer.MODEL,
                                scoring="; ".join(sorted(scorings)), versions=versions)

    def explain(self, f: EvaluationFilter, prediction_ids: Sequence[str] = (),
                max_records: int = 1000, store: bool = False, seed: int = 0,
                explainer: Explainer = Explainer.UNSPECIFIED) -> ExplanationReport:
        """Attributions of the records' own model versions (see model_explanation),
        or of a surrogate on request or when the model cannot be loaded."""
        frame, catalog = self.load(f)
        if len(frame) == 0:
            raise FailedPrecondition(f"no records of model {f.model!r} match the filter",
                                     reason="NO_RECORDS", metadata={"model": f.model})
        if prediction_ids:
            wanted = set(prediction_ids)
            idx = np.flatnonzero(np.fromiter((p in wanted for p in frame.prediction_id), bool,
                                             len(frame)))
            missing = wanted - set(frame.prediction_id[idx].tolist())
            if missing:
                pid = min(missing)
                raise NotFound(f"prediction {pid!r} is not a record of model {f.model!r} "
                               f"matching the filter", reason="RECORD_NOT_FOUND",
                               metadata={"prediction_id": pid, "model": f.model})
        else:
            idx = np.argsort(-frame.time_us, kind="stable")[: max_records or 1000]
        target = frame.take(idx)
        fallback = ""
        if explainer is not Explainer.SURROGATE:
            try:
                report = self._explain_model(f.model, frame, target, catalog,
                                             bool(prediction_ids), seed)
            except ModelUnavailable as exc:
                if explainer is Explainer.MODEL:
                    raise
                fallback = exc.message
                log.info("explaining a surrogate of %s: %s", f.model, fallback)
            else:
                if store:
                    self._store.set_attributions(f.model, report.attributions)
                return report
        from modelplane.observability.attribution import SHAP, Surrogate

        fitted = _sample(frame, 20000, seed)
        surrogate = Surrogate.fit(fitted, catalog, False, seed)
        attributions, method = surrogate.explain(target)
        fidelity, measure = surrogate.fidelity, (
            FIDELITY_ACCURACY_AGAINST_LOGGED if surrogate.classifier
            else FIDELITY_R2_AGAINST_LOGGED)
        if not fallback:  # asked for: measured against the model when it loads
            try:
                fidelity = self._fidelity_against_model(f.model, surrogate, fitted, catalog)
                measure = FIDELITY_R2_AGAINST_MODEL
            except ModelUnavailable as exc:
                log.info("surrogate fidelity of %s against the logged predictions: %s",
                         f.model, exc.message)
        if store:
            self._store.set_attributions(f.model, attributions)
        output = ("the surrogate's predicted value" if not surrogate.classifier else
                  "the surrogate's raw score of the predicted class" if method == SHAP else
                  "the surrogate's probability of the predicted class")
        return ExplanationReport(
            attributions, fidelity, SURROGATE_TREE_SHAP if method == SHAP else method,
            measure, output, fallback,
            versions=dict(zip(target.prediction_id.tolist(), target.version.tolist())))

    def _load_model(self, model: str, version: str) -> Any:
        if self.models is None:
            raise ModelUnavailable("explaining registered models is off in this service "
                                   "(MODELPLANE_OBSERVABILITY_EXPLAIN_MODELS=off)")
        return self.models.load(model, version)

    def _versions(self, frame: Frame) -> list[str]:
        versions = sorted({str(v) for v in frame.version.tolist()})
        if len(versions) > MAX_EXPLAINED_VERSIONS:
            raise _bad("filter.versions", f"the records span {len(versions)} versions; "
                       f"explain at most {MAX_EXPLAINED_VERSIONS} at once")
        return versions

    def _explain_model(self, model: str, frame: Frame, target: Frame, catalog: Catalog,
                       named: bool, seed: int) -> ExplanationReport:
        from modelplane.observability.model_explanation import (
            explain_model,
            is_tree_model,
            model_features,
        )

        budget = self.explain_budget
        kinds = catalog.features()
        categorical = {n for n, k in kinds.items() if k is not ColumnKind.NUMERIC}
        report = ExplanationReport({}, 0.0)  # no surrogate, no fidelity
        spaces: list[str] = []
        for version in self._versions(target):
            obj = self._load_model(model, version)
            names = model_features(obj, list(kinds))
            rows = np.flatnonzero(target.version == version)
            if named and len(rows) > budget.max_rows and not is_tree_model(obj):
                raise _bad("prediction_ids", f"{len(rows)} predictions of version {version}: "
                           f"at most {budget.max_rows} per call are explained by permutation "
                           f"SHAP (MODELPLANE_OBSERVABILITY_EXPLAIN_MAX_ROWS)")
            background = self._background(model, version, names, frame)
            try:
                attr = explain_model(obj, {n: target.features[n][rows] for n in names}, names,
                                     background, categorical, budget, seed)
            except (ModelUnavailable, InvalidArgument):
                raise
            except Exception as exc:
                log.warning("explaining %s version %s failed", model, version, exc_info=True)
                raise ModelUnavailable(f"model {model!r} version {version} could not be "
                                       f"explained: {type(exc).__name__}: {exc}",
                                       model=model, version=version) from None
            rows = rows[: len(attr.values)]  # permutation SHAP explains the newest max_rows
            ids = target.prediction_id[rows].tolist()
            for k, pid in enumerate(ids):
                report.attributions[pid] = {n: float(v) for n, v in
                                            zip(attr.names, attr.values[k].tolist())}
                report.versions[pid] = version
                report.outputs[pid] = float(attr.output[k])
                report.expected[pid] = float(attr.expected[k])
            if not spaces:  # the first version's method names the whole answer
                report.method = attr.method
            spaces.append(attr.explained_output)
        report.explained_output = "; ".join(sorted(set(spaces)))
        return report

    def _background(self, model: str, version: str, names: list[str], loaded: Frame
                    ) -> dict[str, np.ndarray]:
        """The version's baseline records (its reference, else its validation, else its
        training records, else its records among those ``loaded`` for the request):
        the permutation explainer's background, sampled there to the budget."""
        filters = []
        doc = self._store.get_document("baseline", f"{model}\x1f{version}")
        if doc is not None:
            filters.append(Baseline.from_dict(doc).reference_filter())
        filters += [EvaluationFilter(model, (version,), env) for env in
                    (Environment.VALIDATION, Environment.TRAINING)]
        for bf in filters:
            try:
                frame, _ = self.load(bf, "baseline")
            except (NotFound, InvalidArgument, FailedPrecondition):
                continue
            if len(frame):
                break
        else:
            frame = loaded.take(np.flatnonzero(loaded.version == version))
        frame = _sample(frame, max(self.explain_budget.background_rows, 1) * 5, 0)
        return {n: frame.features[n] for n in names}

    def _fidelity_against_model(self, model: str, surrogate: Surrogate, fitted: Frame,
                                catalog: Catalog) -> float:
        from modelplane.observability.model_explanation import (
            model_features,
            model_input,
            model_outputs,
        )

        held = fitted.take(surrogate.test_rows)
        parts: list[np.ndarray] = []
        classes: list[str] | None = None
        order: list[np.ndarray] = []
        for version in self._versions(held):
            obj = self._load_model(model, version)
            rows = np.flatnonzero(held.version == version)
            names = model_features(obj, list(catalog.features()))
            try:
                out, is_proba = model_outputs(obj, model_input(
                    {n: held.features[n][rows] for n in names}, names, obj))
            except ModelUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - the model's own code failing
                raise ModelUnavailable(f"model {model!r} version {version} failed to "
                                       f"predict: {exc}", model=model, version=version) from None
            if is_proba:
                mine = [str(c) for c in getattr(obj, "classes_", range(out.shape[1]))]
                classes = classes or mine
                col = {c: j for j, c in enumerate(mine)}
                out = np.column_stack([out[:, col[c]] if c in col else np.zeros(len(out))
                                       for c in classes])
            parts.append(out)
            order.append(rows)
        outputs = np.concatenate(parts)[np.argsort(np.concatenate(order), kind="stable")]
        return surrogate.fidelity_against(outputs, classes)


#: a pair of slices is listed only when it outscores both of its single slices this much
_PAIR_MARGIN = 1.5


def _rank(s: SliceContribution) -> tuple[float, float]:
    """Highest score first; slices that score 0 (no concentration) by contribution."""
    return (-s.score, -s.contribution)


def _sample(frame: Frame, n: int, seed: int) -> Frame:
    if len(frame) <= n:
        return frame
    rng = np.random.default_rng(seed)
    return frame.take(np.sort(rng.choice(len(frame), n, replace=False)))
