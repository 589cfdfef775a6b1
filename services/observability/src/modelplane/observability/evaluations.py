"""The analyses over the evaluation store: performance, proxy performance,
drift, root cause and attribution, on the read side's filters and frames
(:mod:`.reader`). The report types are in :mod:`.reports`, baselines in
:mod:`.baselines`, the root-cause algorithm in :mod:`.root_cause`, the building
blocks over loaded frames in :mod:`.frame_analysis`; the profile-answered
variants in :mod:`.profile_analysis`.

Blocking (numpy, SQL): the api layer calls these methods from a thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from modelplane.kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import (
    DEFAULT_EXACT_ROWS,
    DEFAULT_MAX_ANALYSIS_ROWS,
    AnalysisMode,
    sampling,
)
from modelplane.observability.baselines import BASELINE_KIND, Baseline, Reference, baseline_key
from modelplane.observability.drift import DriftMethod, DriftThresholds, numeric_drift
from modelplane.observability.frame_analysis import (
    DEFAULT_THRESHOLDS,
    buckets,
    check_metrics,
    drift_columns,
    drift_of,
    infer_task,
    invalid,
    metric_values,
)
from modelplane.observability.model_explanation import (
    ExplainBudget,
    ModelLoader,
    ModelUnavailable,
)
from modelplane.observability.reader import EvaluationReader
from modelplane.observability.records import (
    PREDICTION,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    utcnow,
)
from modelplane.observability.reports import (
    FIDELITY_ACCURACY_AGAINST_ACTUAL,
    FIDELITY_ACCURACY_AGAINST_LOGGED,
    FIDELITY_R2_AGAINST_ACTUAL,
    FIDELITY_R2_AGAINST_LOGGED,
    FIDELITY_R2_AGAINST_MODEL,
    SURROGATE_TREE_SHAP,
    ColumnDriftResult,
    DriftReport,
    Explainer,
    ExplanationReport,
    Importance,
    ImportanceReport,
    PerformanceGroup,
    PerformanceReport,
    ProxyGroup,
    ProxyReport,
    RootCauseReport,
    SliceContribution,
    stamp,
)
from modelplane.observability.root_cause import root_cause_of
from modelplane.observability.slices import candidate_slices, check_column, slice_mask
from modelplane.observability.store.base import EvaluationStore
from modelplane.observability.store.encoding import Catalog
from modelplane.observability.store.frames import Frame

if TYPE_CHECKING:
    from modelplane.observability.attribution import Surrogate

__all__ = [  # the names callers import from here (the types live in the modules above)
    "Baseline", "Evaluations", "Reference", "RootCauseReport", "SliceContribution",
]

log = logging.getLogger(__name__)
#: versions one call explains with their own models
MAX_EXPLAINED_VERSIONS = 4


class Evaluations(EvaluationReader):
    """The analyses over the evaluation store's read side."""

    def __init__(self, store: EvaluationStore, catalogs: dict[str, Catalog],
                 catalog_lock: threading.Lock, executor: Executor | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 max_rows: int = DEFAULT_MAX_ANALYSIS_ROWS, *,
                 models: ModelLoader | None = None,
                 explain_budget: ExplainBudget | None = None,
                 exact_rows: int = DEFAULT_EXACT_ROWS,
                 record_retention_days: int = 0) -> None:
        super().__init__(store, catalogs, catalog_lock, clock, max_rows,
                         exact_rows=exact_rows, record_retention_days=record_retention_days)
        #: runs the drift of several columns at once (None: one after another)
        self.executor = executor
        #: registered model versions, for explaining the model itself (None: off)
        self.models = models
        self.explain_budget = explain_budget or ExplainBudget()

    # -- performance --------------------------------------------------------

    def performance(self, f: EvaluationFilter, metrics: Sequence[M.Metric] = (),
                    task: M.TaskType = M.TaskType.UNSPECIFIED, positive: str = "",
                    average: M.ClassAverage = M.ClassAverage.UNSPECIFIED,
                    bucket: timedelta | None = None, slice_by: Sequence[ColumnRef] = (),
                    slice_bins: int = 4, mode: AnalysisMode = AnalysisMode.UNSPECIFIED
                    ) -> PerformanceReport:
        if bucket is not None and bucket <= timedelta(0):
            raise invalid("bucket", "must be positive")
        if mode in (AnalysisMode.UNSPECIFIED, AnalysisMode.PROFILE):
            from modelplane.observability.profile_analysis import profile_performance

            report = profile_performance(self, f, metrics, task, positive, average, bucket,
                                         slice_by, mode)
            if report is not None:
                return report
        from modelplane.observability.aggregate_analysis import aggregated_performance

        report = aggregated_performance(self, f, metrics, task, positive, average, bucket,
                                        slice_by, mode)
        if report is not None:
            return report
        with sampling(mode, 1) as plan:
            frame, catalog = self.load(f)
        task = infer_task(frame, catalog, task)
        ms = check_metrics(metrics, task, "metrics")

        def group(fr: Frame) -> PerformanceGroup:
            labeled, values = metric_values(fr, task, ms, positive, average)
            return PerformanceGroup(len(fr), labeled, values)

        overall = group(frame)
        windows = []
        if bucket is not None:
            for win, idx in buckets(frame, bucket, f.window):
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
        return stamp(PerformanceReport(task, overall, windows, slices), plan)

    # -- drift --------------------------------------------------------------

    def drift(self, current: EvaluationFilter, reference: Reference | None = None,
              columns: Sequence[ColumnRef] = (), methods: Sequence[DriftMethod] = (),
              thresholds: DriftThresholds = DEFAULT_THRESHOLDS, bins: int = 10,
              mode: AnalysisMode = AnalysisMode.UNSPECIFIED) -> DriftReport:
        if bins < 0 or bins > 1000:
            raise invalid("bins", "must be between 1 and 1000 (0 = 10)")
        if mode in (AnalysisMode.UNSPECIFIED, AnalysisMode.PROFILE):
            from modelplane.observability.profile_analysis import profile_drift

            report = profile_drift(self, current, reference, columns, methods, thresholds,
                                   bins or 10, mode)
            if report is not None:
                return report
        with sampling(mode, 2) as plan:
            cur, catalog = self.load(current, "current")
            ref, _ = self.load_reference(reference, current)
        cols = drift_columns(catalog, columns, current.model, "columns")
        if reference is not None and reference.filter is not None \
                and reference.filter.model != current.model:
            ref_catalog = self.catalog(reference.filter.model, "reference.filter.model")
            ref_kinds = ref_catalog.columns()
            for i, (c, _kind) in enumerate(cols):
                if c.source in (ColumnSource.FEATURE, ColumnSource.TAG) and c not in ref_kinds:
                    raise invalid(f"columns[{i}]", f"reference model "
                               f"{reference.filter.model!r} has no column {c}", "UNKNOWN_COLUMN")
        results = drift_of(ref, cur, cols, methods, thresholds, bins or 10, self.executor)
        return stamp(DriftReport(results, len(ref), len(cur)), plan)

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
        _, ref_metrics = metric_values(ref, M.TaskType.CLASSIFICATION,
                                             M.CLASSIFICATION_METRICS, estimator.positive,
                                             M.ClassAverage.UNSPECIFIED)
        kinds = catalog.columns()
        pred_cols: list[tuple[ColumnRef, ColumnKind]] = [
            (PREDICTION, kinds.get(PREDICTION, ColumnKind.CATEGORICAL))]

        def group(fr: Frame) -> ProxyGroup:
            drift = drift_of(ref, fr, pred_cols, (), thresholds, 10, self.executor)
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
                raise invalid("bucket", "must be positive")
            for win, idx in buckets(cur, bucket, current.window):
                g = group(cur.take(idx))
                g.window = win
                windows.append(g)
        return stamp(ProxyReport(overall, windows, ref_metrics, estimator.calibrated), plan)

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
        # named columns: only they are read (and the drift's column), scores only for
        # the metrics that need them
        read = [*columns, *([drift_column] if drift_column is not None else [])] \
            if columns else None
        scores = metric in (M.Metric.ROC_AUC, M.Metric.LOG_LOSS)
        with sampling(mode, 2) as plan:
            cur, catalog = self.load(current, "current", columns=read, scores=scores)
            ref, _ = self.load_reference(reference, current, columns=read, scores=scores)
        return stamp(root_cause_of(ref, cur, catalog, current.model, metric,
                                         drift_column, columns, max_slices, max_depth,
                                         min_slice_size, bins, positive), plan)

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
            raise invalid("filter.versions", f"the records span {len(versions)} versions; "
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
                raise invalid("prediction_ids", f"{len(rows)} predictions of version {version}: "
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
        doc = self._store.get_document(BASELINE_KIND, baseline_key(model, version))
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




def _sample(frame: Frame, n: int, seed: int) -> Frame:
    if len(frame) <= n:
        return frame
    rng = np.random.default_rng(seed)
    return frame.take(np.sort(rng.choice(len(frame), n, replace=False)))
