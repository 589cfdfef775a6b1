"""Protobuf ⇄ domain objects for the observability contract: records, actuals,
filters, slices, references, analyses' results, monitors, alerts, comparisons
and lineage. No servicer logic here (that is :mod:`.api`); nothing here touches
the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from google.protobuf.timestamp_pb2 import Timestamp

from modelplane.api.v1 import types_pb2
from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.attribution import OCCLUSION
from modelplane.observability.baselines import Baseline, Reference
from modelplane.observability.drift import DriftMethod, DriftThresholds
from modelplane.observability.ingest import ImportColumns
from modelplane.observability.lineage import PredictionLineage
from modelplane.observability.model_explanation import PERMUTATION_SHAP, TREE_SHAP
from modelplane.observability.monitors import (
    Alert,
    Comparison,
    Monitor,
    SignalKind,
)
from modelplane.observability.records import (
    Actual,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    EvaluationRecord,
    IngestResult,
    Rejection,
    Scalar,
    SliceOperator,
    SlicePredicate,
    TimeWindow,
    describe_slice,
)
from modelplane.observability.reports import (
    FIDELITY_ACCURACY_AGAINST_ACTUAL,
    FIDELITY_ACCURACY_AGAINST_LOGGED,
    FIDELITY_R2_AGAINST_ACTUAL,
    FIDELITY_R2_AGAINST_LOGGED,
    FIDELITY_R2_AGAINST_MODEL,
    SURROGATE_TREE_SHAP,
    ColumnDriftResult,
    PerformanceGroup,
    ProxyGroup,
)
from modelplane.observability.v1 import observability_pb2 as pb

ATTRIBUTION_METHOD_PB = {TREE_SHAP: pb.ATTRIBUTION_METHOD_TREE_SHAP,
            PERMUTATION_SHAP: pb.ATTRIBUTION_METHOD_PERMUTATION_SHAP,
            SURROGATE_TREE_SHAP: pb.ATTRIBUTION_METHOD_SURROGATE_TREE_SHAP,
            OCCLUSION: pb.ATTRIBUTION_METHOD_OCCLUSION}
FIDELITY_PB = {FIDELITY_R2_AGAINST_MODEL: pb.FIDELITY_MEASURE_R2_AGAINST_MODEL,
             FIDELITY_ACCURACY_AGAINST_LOGGED: pb.FIDELITY_MEASURE_ACCURACY_AGAINST_LOGGED,
             FIDELITY_R2_AGAINST_LOGGED: pb.FIDELITY_MEASURE_R2_AGAINST_LOGGED,
             FIDELITY_ACCURACY_AGAINST_ACTUAL: pb.FIDELITY_MEASURE_ACCURACY_AGAINST_ACTUAL,
             FIDELITY_R2_AGAINST_ACTUAL: pb.FIDELITY_MEASURE_R2_AGAINST_ACTUAL}


class _BadValue(Exception):
    pass


def bad_argument(field: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", reason=reason,
                           field_violations=[FieldViolation(field, description)])


# -- scalars and times -------------------------------------------------------


_E = TypeVar("_E")


def wire_enum(enum: type[_E], value: int) -> _E:
    """An internal enum as its contract enum: the numbers are the same, and the
    generated stubs type enum fields by their class, not by int."""
    return cast(_E, int(value))


def scalar_from_pb(v: types_pb2.Value) -> Scalar:
    kind = v.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind in ("double_value", "int64_value", "string_value", "bool_value"):
        return getattr(v, kind)  # type: ignore[no-any-return]
    raise _BadValue(f"{kind} is not supported here (use double, int64, string or bool)")


def scalar_to_pb(value: Scalar) -> types_pb2.Value:
    if value is None:
        return types_pb2.Value(null_value=True)
    if isinstance(value, bool):
        return types_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return types_pb2.Value(int64_value=value)
    if isinstance(value, float):
        return types_pb2.Value(double_value=value)
    return types_pb2.Value(string_value=str(value))


def _time(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def time_to_pb(t: datetime | None) -> Timestamp | None:
    if t is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(t)
    return ts


def duration_from_pb(msg: Any, has: bool) -> timedelta | None:
    return msg.ToTimedelta() if has else None


def window_from_pb(w: types_pb2.TimeWindow) -> TimeWindow:
    return TimeWindow(_time(w.start_time) if w.HasField("start_time") else None,
                      _time(w.end_time) if w.HasField("end_time") else None)


def window_to_pb(w: TimeWindow | None) -> types_pb2.TimeWindow | None:
    if w is None:
        return None
    return types_pb2.TimeWindow(start_time=time_to_pb(w.start), end_time=time_to_pb(w.end))


# -- records -------------------------------------------------------------------


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SIMPLE_KINDS = frozenset({"double_value", "int64_value", "string_value", "bool_value"})


_ENVIRONMENTS = {int(e): e for e in Environment}


def record_from_pb(r: pb.EvaluationRecord, i: int) -> EvaluationRecord | Rejection:
    """The ingest hot path: kept to plain loops (no per-value function calls; a map is
    read by key, since upb's ``items()`` is a Python-level generator)."""
    feats: dict[str, Scalar] = {}
    fmap = r.features
    for k in fmap:
        v = fmap[k]
        kind = v.WhichOneof("kind")
        if kind in _SIMPLE_KINDS:
            feats[k] = getattr(v, kind)
        elif kind is None or kind == "null_value":
            feats[k] = None
        else:
            return Rejection(i, r.prediction_id, f"records[{i}].features[{k!r}]",
                             f"{kind} is not supported here (use double, int64, string or bool)")
    pred: Scalar = None
    if r.HasField("prediction"):
        kind = r.prediction.WhichOneof("kind")
        if kind in _SIMPLE_KINDS:
            pred = getattr(r.prediction, kind)
        elif kind not in (None, "null_value"):
            return Rejection(i, r.prediction_id, f"records[{i}].prediction",
                             f"{kind} is not supported here (use double, int64, string or bool)")
    env = _ENVIRONMENTS.get(r.environment)
    if env is None:  # an environment number this version does not know
        return Rejection(i, r.prediction_id, f"records[{i}].environment",
                         f"{r.environment} is not a valid Environment")
    when = None
    if r.HasField("prediction_time"):
        ts = r.prediction_time
        when = _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
    latency = None
    if r.HasField("latency"):
        lat = r.latency
        latency = lat.seconds * 1_000_000 + int(lat.nanos / 1000)
    scores, tags, attributions = r.scores, r.tags, r.attributions
    return EvaluationRecord(
        r.prediction_id, r.model, r.version, env, when, feats, pred,
        {k: scores[k] for k in scores} if scores else {},
        {k: tags[k] for k in tags} if tags else {}, r.trace_id, latency,
        {k: attributions[k] for k in attributions} if attributions else {}, span_id=r.span_id)


def record_to_pb(rec: EvaluationRecord) -> pb.EvaluationRecord:
    out = pb.EvaluationRecord(
        prediction_id=rec.prediction_id, model=rec.model, version=rec.version,
        environment=wire_enum(pb.Environment, rec.environment),
        prediction_time=time_to_pb(rec.prediction_time),
        features={k: scalar_to_pb(v) for k, v in rec.features.items()},
        scores=rec.scores, tags=rec.tags, trace_id=rec.trace_id,
        attributions=rec.attributions)
    if rec.prediction is not None:
        out.prediction.CopyFrom(scalar_to_pb(rec.prediction))
    if rec.latency_us is not None:
        out.latency.FromMicroseconds(rec.latency_us)
    if rec.actual is not None:
        out.actual.CopyFrom(pb.Actual(prediction_id=rec.prediction_id,
                                      value=scalar_to_pb(rec.actual.value),
                                      actual_time=time_to_pb(rec.actual.actual_time)))
    return out


def actual_from_pb(a: pb.Actual, i: int) -> Actual | Rejection:
    try:
        value = scalar_from_pb(a.value) if a.HasField("value") else None
    except _BadValue as exc:
        return Rejection(i, a.prediction_id, f"actuals[{i}].value", str(exc))
    return Actual(a.prediction_id, value,
                  _time(a.actual_time) if a.HasField("actual_time") else None)


def rejected_to_pb(result: IngestResult) -> list[pb.RejectedRecord]:
    return [pb.RejectedRecord(index=r.index, prediction_id=r.prediction_id, field=r.field,
                              reason=r.reason)
            for r in sorted(result.rejected, key=lambda r: r.index)]  # batches run concurrently


# -- filters, columns, slices ---------------------------------------------------


def column_from_pb(c: pb.ColumnRef) -> ColumnRef:
    source = ColumnSource(c.source or ColumnSource.FEATURE)
    return ColumnRef(source, c.name)


def column_to_pb(c: ColumnRef) -> pb.ColumnRef:
    return pb.ColumnRef(source=wire_enum(pb.ColumnSource, c.source), name=c.name)


def predicate_from_pb(p: pb.SlicePredicate, path: str) -> SlicePredicate:
    values = []
    for j, v in enumerate(p.values):
        try:
            values.append(scalar_from_pb(v))
        except _BadValue as exc:
            raise bad_argument(f"{path}.values[{j}]", str(exc)) from None
    return SlicePredicate(column_from_pb(p.column), SliceOperator(p.op), tuple(values))


def predicate_to_pb(p: SlicePredicate) -> pb.SlicePredicate:
    return pb.SlicePredicate(column=column_to_pb(p.column), op=wire_enum(pb.SliceOperator, p.op),
                             values=[scalar_to_pb(v) for v in p.values])


def slice_to_pb(preds: Sequence[SlicePredicate]) -> pb.Slice:
    return pb.Slice(predicates=[predicate_to_pb(p) for p in preds],
                    display_name=describe_slice(list(preds)))


def filter_from_pb(f: pb.EvaluationFilter, path: str) -> EvaluationFilter:
    return EvaluationFilter(
        model=f.model, versions=tuple(f.versions), environment=Environment(f.environment),
        window=window_from_pb(f.window) if f.HasField("window") else TimeWindow(),
        predicates=tuple(predicate_from_pb(p, f"{path}.predicates[{i}]")
                         for i, p in enumerate(f.predicates)))


def filter_to_pb(f: EvaluationFilter) -> pb.EvaluationFilter:
    return pb.EvaluationFilter(model=f.model, versions=list(f.versions),
                               environment=wire_enum(pb.Environment, f.environment),
                               window=window_to_pb(f.window),
                               predicates=[predicate_to_pb(p) for p in f.predicates])


def reference_from_pb(msg: Any, has: bool, path: str) -> Reference | None:
    if not has:
        return None
    which = msg.WhichOneof("source")
    if which == "filter":
        return Reference(filter=filter_from_pb(msg.filter, f"{path}.filter"))
    if which == "baseline":
        return Reference(baseline=(msg.baseline.model, msg.baseline.version))
    return None


def reference_to_pb(ref: Reference | None) -> pb.ReferenceData | None:
    if ref is None:
        return None
    if ref.filter is not None:
        return pb.ReferenceData(filter=filter_to_pb(ref.filter))
    if ref.baseline is not None:
        return pb.ReferenceData(baseline=pb.BaselineRef(model=ref.baseline[0],
                                                        version=ref.baseline[1]))
    return None


def metrics_to_pb(values: dict[M.Metric, float | None]) -> list[pb.MetricValue]:
    return [pb.MetricValue(metric=wire_enum(pb.Metric, m), value=v or 0.0, has_value=v is not None)
            for m, v in values.items()]


def thresholds_from_pb(t: pb.DriftThresholds) -> DriftThresholds:
    return DriftThresholds.with_defaults(t.psi, t.p_value, t.jensen_shannon, t.wasserstein)


def group_to_pb(g: PerformanceGroup) -> pb.PerformanceGroup:
    return pb.PerformanceGroup(window=window_to_pb(g.window),
                               slice=slice_to_pb(g.slice) if g.slice else None,
                               record_count=g.record_count, labeled_count=g.labeled_count,
                               metrics=metrics_to_pb(g.metrics))


def analysis_mode_from_pb(value: int) -> AnalysisMode:
    try:
        return AnalysisMode(value)
    except ValueError:
        raise InvalidArgument(f"mode: unknown analysis mode {value}",
                              field_violations=[FieldViolation("mode", "unknown value")]
                              ) from None


def column_drift_to_pb(c: ColumnDriftResult) -> pb.ColumnDrift:
    return pb.ColumnDrift(
        column=column_to_pb(c.column), kind=wire_enum(pb.ColumnKind, c.kind),
        reference_count=c.drift.reference_count, current_count=c.drift.current_count,
        statistics=[pb.DriftStatistic(method=wire_enum(pb.DriftMethod, s.method), value=s.value,
                                      p_value=s.p_value if s.p_value is not None else 0.0,
                                      threshold=s.threshold, drifted=s.drifted)
                    for s in c.drift.statistics],
        decision_method=wire_enum(pb.DriftMethod, c.drift.decision_method), drifted=c.drift.drifted)


def proxy_group_to_pb(g: ProxyGroup) -> pb.ProxyPerformanceGroup:
    return pb.ProxyPerformanceGroup(window=window_to_pb(g.window), record_count=g.record_count,
                                    estimated_metrics=metrics_to_pb(g.estimated),
                                    prediction_drift=[column_drift_to_pb(c)
                                                      for c in g.prediction_drift])


def baseline_from_pb(b: pb.Baseline) -> Baseline:
    return Baseline(
        model=b.model, version=b.version,
        reference=filter_from_pb(b.reference, "baseline.reference")
        if b.HasField("reference") else None,
        metrics={M.Metric(m.metric): m.value for m in b.metrics if m.has_value or m.value},
        validation_report_id=b.validation_report_id)


def baseline_to_pb(b: Baseline) -> pb.Baseline:
    return pb.Baseline(model=b.model, version=b.version,
                       reference=filter_to_pb(b.reference_filter()),
                       metrics=metrics_to_pb(dict(b.metrics)),  # type: ignore[arg-type]
                       validation_report_id=b.validation_report_id,
                       update_time=time_to_pb(b.update_time), record_count=b.record_count)


def monitor_from_pb(m: pb.Monitor) -> Monitor:
    kind = m.signal.WhichOneof("kind")
    signal = {None: SignalKind.UNSPECIFIED, "performance": SignalKind.PERFORMANCE,
              "estimated_performance": SignalKind.ESTIMATED_PERFORMANCE,
              "drift": SignalKind.DRIFT}[kind]
    metric = M.Metric.UNSPECIFIED
    if kind == "performance":
        metric = M.Metric(m.signal.performance)
    elif kind == "estimated_performance":
        metric = M.Metric(m.signal.estimated_performance)
    drift = m.signal.drift
    return Monitor(
        filter=filter_from_pb(m.filter, "monitor.filter"), signal=signal,
        comparison=Comparison(m.comparison), threshold=m.threshold, metric=metric,
        drift_column=column_from_pb(drift.column)
        if kind == "drift" and drift.HasField("column") else None,
        drift_method=DriftMethod(drift.method) if kind == "drift" else DriftMethod.UNSPECIFIED,
        drift_reference=reference_from_pb(drift.reference, drift.HasField("reference"),
                                          "monitor.signal.drift.reference")
        if kind == "drift" else None,
        id=m.id, display_name=m.display_name,
        window=m.window.ToTimedelta() if m.HasField("window") else timedelta(hours=1),
        interval=m.interval.ToTimedelta() if m.HasField("interval") else timedelta(seconds=60),
        min_records=m.min_records or 30, webhook_url=m.webhook_url, paused=m.paused)


def monitor_to_pb(m: Monitor) -> pb.Monitor:
    signal = pb.MonitorSignal()
    if m.signal is SignalKind.PERFORMANCE:
        signal.performance = wire_enum(pb.Metric, m.metric)
    elif m.signal is SignalKind.ESTIMATED_PERFORMANCE:
        signal.estimated_performance = wire_enum(pb.Metric, m.metric)
    elif m.signal is SignalKind.DRIFT:
        signal.drift.CopyFrom(pb.DriftSignal(
            column=column_to_pb(m.drift_column) if m.drift_column else None,
            method=wire_enum(pb.DriftMethod, m.drift_method),
            reference=reference_to_pb(m.drift_reference)))
    out = pb.Monitor(id=m.id, display_name=m.display_name, filter=filter_to_pb(m.filter),
                     signal=signal, comparison=wire_enum(pb.Comparison, m.comparison),
                     threshold=m.threshold,
                     min_records=m.min_records, webhook_url=m.webhook_url, paused=m.paused,
                     create_time=time_to_pb(m.create_time), update_time=time_to_pb(m.update_time),
                     last_evaluation_time=time_to_pb(m.last_evaluation_time),
                     last_value=m.last_value)
    out.window.FromTimedelta(m.window)
    out.interval.FromTimedelta(m.interval)
    return out


def alert_to_pb(a: Alert) -> pb.Alert:
    return pb.Alert(id=a.id, monitor_id=a.monitor_id, model=a.model,
                    state=wire_enum(pb.AlertState, a.state), value=a.value, threshold=a.threshold,
                    comparison=wire_enum(pb.Comparison, a.comparison),
                    window=window_to_pb(a.window), message=a.message,
                    create_time=time_to_pb(a.create_time), resolve_time=time_to_pb(a.resolve_time),
                    source=a.source, version=a.version)



def _interval_to_pb(i: Any) -> pb.ConfidenceInterval:
    if i.value is None:
        return pb.ConfidenceInterval()
    return pb.ConfidenceInterval(value=i.value, lower=i.lower, upper=i.upper, has_value=True)


def comparison_to_pb(rep: Any) -> pb.CompareVersionsResponse:
    """A :class:`~modelplane.observability.compare.VersionComparison` as its message."""
    rc = rep.root_cause
    return pb.CompareVersionsResponse(
        task=wire_enum(pb.TaskType, rep.task), confidence_level=rep.confidence_level,
        bootstrap_resamples=rep.resamples, champion_record_count=rep.champion_count,
        champion_labeled_count=rep.champion_labeled, challenger_record_count=rep.challenger_count,
        challenger_labeled_count=rep.challenger_labeled,
        metrics=[pb.MetricComparison(
            metric=wire_enum(pb.Metric, m.metric), method=wire_enum(pb.IntervalMethod, m.method),
            champion=_interval_to_pb(m.champion), challenger=_interval_to_pb(m.challenger),
            difference=_interval_to_pb(m.difference), significant=m.significant,
            challenger_better=m.challenger_better) for m in rep.metrics],
        drift=[column_drift_to_pb(c) for c in rep.drift], drifted_share=rep.drifted_share,
        root_cause_metric=wire_enum(pb.Metric, rep.root_cause_metric),
        champion_value=rc.reference_value, challenger_value=rc.current_value,
        root_cause=[pb.SliceContribution(
            slice=slice_to_pb(s.slice), contribution=s.contribution,
            contribution_share=s.contribution_share, reference_count=s.reference_count,
            current_count=s.current_count, reference_value=s.reference_value,
            current_value=s.current_value, lift=s.lift, score=s.score) for s in rc.slices])


def lineage_to_pb(lin: PredictionLineage) -> pb.PredictionLineage:
    rec = lin.record
    out = pb.PredictionLineage(record=record_to_pb(rec), model=rec.model, version=rec.version,
                               deployment=lin.deployment, route=lin.route,
                               trace_id=rec.trace_id, rollout_note=lin.rollout_note,
                               missing=[pb.MissingLineage(part=m.part, service=m.service,
                                                          reason=m.reason)
                                        for m in lin.missing])
    v = lin.version
    if v is not None:
        out.model_version.CopyFrom(pb.VersionLineage(
            run_id=v.run_id, experiment_id=v.experiment_id, dataset_id=v.dataset_id,
            feature_refs=v.feature_refs, code_version=v.code_version, source=v.source,
            aliases=v.aliases))
    d = lin.dataset
    if d is not None:
        out.dataset.CopyFrom(pb.DatasetLineage(id=d.id, name=d.name, version=d.version,
                                               content_hash=d.content_hash,
                                               row_count=d.row_count,
                                               storage_uri=d.storage_uri))
    if lin.validation is not None:
        val = lin.validation
        msg = pb.ValidationLineage(report_id=val.report_id, status=val.status,
                                   summary=val.summary, report_uri=val.report_uri)
        r = lin.report
        if r is not None:
            msg.report_fetched = True
            msg.status = r.status or val.status
            msg.dataset, msg.dataset_sha256 = r.dataset, r.dataset_sha256
            msg.row_count, msg.baseline_version = r.row_count, r.baseline_version
            if r.create_time is not None:
                msg.create_time.FromDatetime(r.create_time)
        out.validation.CopyFrom(msg)
    ro = lin.rollout
    if ro is not None:
        out.rollout.CopyFrom(pb.RolloutLineage(
            rollout=ro.rollout, deployment=ro.deployment, role=ro.role, step=ro.step,
            challenger_weight=ro.weight, state=ro.state, event_sequence=ro.event_sequence,
            event_time=time_to_pb(ro.event_time), matched_by=ro.matched_by))
    return out


def import_columns_from_pb(c: pb.ImportColumns) -> ImportColumns:
    return ImportColumns(c.prediction_id, c.prediction_time, c.prediction, c.actual,
                         c.score_prefix, c.tag_prefix, list(c.features))
