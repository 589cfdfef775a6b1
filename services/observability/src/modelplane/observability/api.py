"""gRPC servicer: protobuf ⇄ domain objects, nothing else.

Errors are raised as ``modelplane.kit.errors`` and mapped once by the kit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from modelplane.api.v1 import types_pb2
from modelplane.kit import paging
from modelplane.kit.errors import FieldViolation, InvalidArgument, NotFound
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode, RowBudget
from modelplane.observability.attribution import OCCLUSION
from modelplane.observability.columnar import read_ipc
from modelplane.observability.drift import DriftMethod, DriftThresholds
from modelplane.observability.evaluations import (
    FIDELITY_ACCURACY_AGAINST_ACTUAL,
    FIDELITY_ACCURACY_AGAINST_LOGGED,
    FIDELITY_R2_AGAINST_ACTUAL,
    FIDELITY_R2_AGAINST_LOGGED,
    FIDELITY_R2_AGAINST_MODEL,
    SURROGATE_TREE_SHAP,
    Baseline,
    ColumnDriftResult,
    Explainer,
    PerformanceGroup,
    ProxyGroup,
    Reference,
)
from modelplane.observability.ingest import ArrowRecords, ImportColumns, read_table
from modelplane.observability.lineage import PredictionLineage, load_record, prediction_lineage
from modelplane.observability.model_explanation import PERMUTATION_SHAP, TREE_SHAP
from modelplane.observability.monitors import (
    Alert,
    AlertState,
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
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.store.base import ScanSpec
from modelplane.observability.store.frames import (
    decode_page_token,
    encode_page_token,
    record_from_json,
    to_us,
)
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

_METHODS = {TREE_SHAP: pb.ATTRIBUTION_METHOD_TREE_SHAP,
            PERMUTATION_SHAP: pb.ATTRIBUTION_METHOD_PERMUTATION_SHAP,
            SURROGATE_TREE_SHAP: pb.ATTRIBUTION_METHOD_SURROGATE_TREE_SHAP,
            OCCLUSION: pb.ATTRIBUTION_METHOD_OCCLUSION}
_FIDELITY = {FIDELITY_R2_AGAINST_MODEL: pb.FIDELITY_MEASURE_R2_AGAINST_MODEL,
             FIDELITY_ACCURACY_AGAINST_LOGGED: pb.FIDELITY_MEASURE_ACCURACY_AGAINST_LOGGED,
             FIDELITY_R2_AGAINST_LOGGED: pb.FIDELITY_MEASURE_R2_AGAINST_LOGGED,
             FIDELITY_ACCURACY_AGAINST_ACTUAL: pb.FIDELITY_MEASURE_ACCURACY_AGAINST_ACTUAL,
             FIDELITY_R2_AGAINST_ACTUAL: pb.FIDELITY_MEASURE_R2_AGAINST_ACTUAL}


class _BadValue(Exception):
    pass


def _bad(field: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", reason=reason,
                           field_violations=[FieldViolation(field, description)])


# -- scalars and times -------------------------------------------------------


_E = TypeVar("_E")


def _wire(enum: type[_E], value: int) -> _E:
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


def _ts(t: datetime | None) -> Timestamp | None:
    if t is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(t)
    return ts


def _duration(msg: Any, has: bool) -> timedelta | None:
    return msg.ToTimedelta() if has else None


def window_from_pb(w: types_pb2.TimeWindow) -> TimeWindow:
    return TimeWindow(_time(w.start_time) if w.HasField("start_time") else None,
                      _time(w.end_time) if w.HasField("end_time") else None)


def window_to_pb(w: TimeWindow | None) -> types_pb2.TimeWindow | None:
    if w is None:
        return None
    return types_pb2.TimeWindow(start_time=_ts(w.start), end_time=_ts(w.end))


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
        environment=_wire(pb.Environment, rec.environment),
        prediction_time=_ts(rec.prediction_time),
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
                                      actual_time=_ts(rec.actual.actual_time)))
    return out


def actual_from_pb(a: pb.Actual, i: int) -> Actual | Rejection:
    try:
        value = scalar_from_pb(a.value) if a.HasField("value") else None
    except _BadValue as exc:
        return Rejection(i, a.prediction_id, f"actuals[{i}].value", str(exc))
    return Actual(a.prediction_id, value,
                  _time(a.actual_time) if a.HasField("actual_time") else None)


def _rejected(result: IngestResult) -> list[pb.RejectedRecord]:
    return [pb.RejectedRecord(index=r.index, prediction_id=r.prediction_id, field=r.field,
                              reason=r.reason)
            for r in sorted(result.rejected, key=lambda r: r.index)]  # batches run concurrently


# -- filters, columns, slices ---------------------------------------------------


def column_from_pb(c: pb.ColumnRef) -> ColumnRef:
    source = ColumnSource(c.source or ColumnSource.FEATURE)
    return ColumnRef(source, c.name)


def column_to_pb(c: ColumnRef) -> pb.ColumnRef:
    return pb.ColumnRef(source=_wire(pb.ColumnSource, c.source), name=c.name)


def predicate_from_pb(p: pb.SlicePredicate, path: str) -> SlicePredicate:
    values = []
    for j, v in enumerate(p.values):
        try:
            values.append(scalar_from_pb(v))
        except _BadValue as exc:
            raise _bad(f"{path}.values[{j}]", str(exc)) from None
    return SlicePredicate(column_from_pb(p.column), SliceOperator(p.op), tuple(values))


def predicate_to_pb(p: SlicePredicate) -> pb.SlicePredicate:
    return pb.SlicePredicate(column=column_to_pb(p.column), op=_wire(pb.SliceOperator, p.op),
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
                               environment=_wire(pb.Environment, f.environment),
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
    return [pb.MetricValue(metric=_wire(pb.Metric, m), value=v or 0.0, has_value=v is not None)
            for m, v in values.items()]


def thresholds_from_pb(t: pb.DriftThresholds) -> DriftThresholds:
    return DriftThresholds.with_defaults(t.psi, t.p_value, t.jensen_shannon, t.wasserstein)


def group_to_pb(g: PerformanceGroup) -> pb.PerformanceGroup:
    return pb.PerformanceGroup(window=window_to_pb(g.window),
                               slice=slice_to_pb(g.slice) if g.slice else None,
                               record_count=g.record_count, labeled_count=g.labeled_count,
                               metrics=metrics_to_pb(g.metrics))


def _analysis_mode(value: int) -> AnalysisMode:
    try:
        return AnalysisMode(value)
    except ValueError:
        raise InvalidArgument(f"mode: unknown analysis mode {value}",
                              field_violations=[FieldViolation("mode", "unknown value")]
                              ) from None


def column_drift_to_pb(c: ColumnDriftResult) -> pb.ColumnDrift:
    return pb.ColumnDrift(
        column=column_to_pb(c.column), kind=_wire(pb.ColumnKind, c.kind),
        reference_count=c.drift.reference_count, current_count=c.drift.current_count,
        statistics=[pb.DriftStatistic(method=_wire(pb.DriftMethod, s.method), value=s.value,
                                      p_value=s.p_value if s.p_value is not None else 0.0,
                                      threshold=s.threshold, drifted=s.drifted)
                    for s in c.drift.statistics],
        decision_method=_wire(pb.DriftMethod, c.drift.decision_method), drifted=c.drift.drifted)


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
                       update_time=_ts(b.update_time), record_count=b.record_count)


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
        signal.performance = _wire(pb.Metric, m.metric)
    elif m.signal is SignalKind.ESTIMATED_PERFORMANCE:
        signal.estimated_performance = _wire(pb.Metric, m.metric)
    elif m.signal is SignalKind.DRIFT:
        signal.drift.CopyFrom(pb.DriftSignal(
            column=column_to_pb(m.drift_column) if m.drift_column else None,
            method=_wire(pb.DriftMethod, m.drift_method),
            reference=reference_to_pb(m.drift_reference)))
    out = pb.Monitor(id=m.id, display_name=m.display_name, filter=filter_to_pb(m.filter),
                     signal=signal, comparison=_wire(pb.Comparison, m.comparison),
                     threshold=m.threshold,
                     min_records=m.min_records, webhook_url=m.webhook_url, paused=m.paused,
                     create_time=_ts(m.create_time), update_time=_ts(m.update_time),
                     last_evaluation_time=_ts(m.last_evaluation_time), last_value=m.last_value)
    out.window.FromTimedelta(m.window)
    out.interval.FromTimedelta(m.interval)
    return out


def alert_to_pb(a: Alert) -> pb.Alert:
    return pb.Alert(id=a.id, monitor_id=a.monitor_id, model=a.model,
                    state=_wire(pb.AlertState, a.state), value=a.value, threshold=a.threshold,
                    comparison=_wire(pb.Comparison, a.comparison),
                    window=window_to_pb(a.window), message=a.message,
                    create_time=_ts(a.create_time), resolve_time=_ts(a.resolve_time),
                    source=a.source, version=a.version)


def _page(page_size: int, page_token: str) -> tuple[int, int]:
    return paging.page_size(page_size), paging.decode_offset(page_token)


def _next_token(offset: int, size: int, total: int) -> str:
    nxt = offset + size
    return paging.encode_page_token(nxt if nxt < total else None)


_MONITOR_MUTABLE = {"display_name", "filter", "signal", "comparison", "threshold", "window",
                    "interval", "min_records", "webhook_url", "paused"}


class ObservabilityServicer(pb_grpc.ObservabilityServiceServicer):
    def __init__(self, runtime: ObservabilityRuntime) -> None:
        self._rt = runtime
        self._arrow_limits = runtime.settings.service.arrow_limits

    # -- ingest ---------------------------------------------------------------

    async def LogRecords(self, request_iterator: AsyncIterator[pb.LogRecordsRequest],
                         context: Any) -> pb.LogRecordsResponse:
        async def batches() -> AsyncIterator[list[EvaluationRecord | Rejection] | ArrowRecords]:
            async for req in request_iterator:
                if req.arrow_ipc:
                    if len(req.records):
                        raise _bad("arrow_ipc", "set records or arrow_ipc, not both",
                                   "BOTH_RECORDS_AND_ARROW_IPC")
                    yield ArrowRecords(read_ipc(req.arrow_ipc, "arrow_ipc", self._arrow_limits))
                else:
                    yield [record_from_pb(r, i) for i, r in enumerate(req.records)]

        result = await self._rt.ingestor.log_records(batches())
        return pb.LogRecordsResponse(accepted_count=result.accepted,
                                     duplicate_count=result.duplicates,
                                     rejected=_rejected(result))

    async def LogActuals(self, request_iterator: AsyncIterator[pb.LogActualsRequest],
                         context: Any) -> pb.LogActualsResponse:
        async def batches() -> AsyncIterator[list[Actual | Rejection]]:
            async for req in request_iterator:
                yield [actual_from_pb(a, i) for i, a in enumerate(req.actuals)]

        result = await self._rt.ingestor.log_actuals(batches())
        return pb.LogActualsResponse(accepted_count=result.accepted,
                                     duplicate_count=result.duplicates,
                                     unmatched_count=result.unmatched,
                                     rejected=_rejected(result))

    async def ImportRecords(self, request: pb.ImportRecordsRequest, context: Any
                            ) -> pb.ImportRecordsResponse:
        src = request.table.WhichOneof("source")
        if src is None:
            raise _bad("table", "one of parquet_uri or arrow_ipc is required")

        def run() -> tuple[IngestResult, int]:
            table = read_table(request.table.parquet_uri or None,
                               request.table.arrow_ipc or None, "table", self._rt.storage,
                               self._arrow_limits)
            return self._rt.ingestor.import_table(
                request.model, request.version, Environment(request.environment), table,
                _columns(request.columns))

        result, actuals = await asyncio.to_thread(run)
        return pb.ImportRecordsResponse(accepted_count=result.accepted,
                                        duplicate_count=result.duplicates,
                                        actual_count=actuals, rejected=_rejected(result))

    # -- records --------------------------------------------------------------

    async def GetRecord(self, request: pb.GetRecordRequest, context: Any) -> pb.EvaluationRecord:
        pid = request.prediction_id
        if not pid:
            raise _bad("prediction_id", "required")

        rec = await asyncio.to_thread(load_record, self._rt.store, pid)
        if rec is None:
            raise NotFound(f"prediction {pid!r} is not in the evaluation store",
                           reason="RECORD_NOT_FOUND", metadata={"prediction_id": pid})
        return record_to_pb(rec)

    async def ListRecords(self, request: pb.ListRecordsRequest, context: Any
                          ) -> pb.ListRecordsResponse:
        size = paging.page_size(request.page_size)
        before = decode_page_token(request.page_token) if request.page_token else None
        has_actual = request.has_actual if request.HasField("has_actual") else None
        f = filter_from_pb(request.filter, "filter")

        def run() -> tuple[list[EvaluationRecord], str]:
            from modelplane.observability.slices import slice_mask
            from modelplane.observability.store.frames import frame_from_ndjson

            vf, catalog = self._rt.evaluations.validate_filter(f, "filter")
            # with predicates the page is filtered after the scan: the scan is an
            # analysis (gated, under the row budget), not a page read
            budget = RowBudget.current(self._rt.settings.max_analysis_rows) \
                if vf.predicates else None
            spec = ScanSpec(vf.model, vf.versions, vf.environment, vf.window,
                            has_actual=has_actual, before=before, newest_first=True,
                            limit=budget.scan_limit if budget else size + 1)
            data = self._rt.store.scan(spec)
            lines = [ln for ln in data.splitlines() if ln.strip()]
            if budget is not None:
                budget.charge(len(lines))
            if vf.predicates and lines:
                frame = frame_from_ndjson(data, catalog)
                mask = slice_mask(frame, vf.predicates)
                lines = [ln for ln, keep in zip(lines, mask.tolist()) if keep]
            docs = [json.loads(ln) for ln in lines[: size + 1]]
            token = ""
            if len(docs) > size:
                docs = docs[:size]
                token = encode_page_token(docs[-1]["t"], docs[-1]["i"])
            return [record_from_json(d, vf.model) for d in docs], token

        records, token = await (self._rt.analyses.run(run) if f.predicates
                                 else asyncio.to_thread(run))
        return pb.ListRecordsResponse(records=[record_to_pb(r) for r in records],
                                      next_page_token=token)

    async def ListObservedModels(self, request: pb.ListObservedModelsRequest, context: Any
                                 ) -> pb.ListObservedModelsResponse:
        size, offset = _page(request.page_size, request.page_token)
        summaries = await asyncio.to_thread(self._rt.store.summaries)
        page = summaries[offset:offset + size]
        out = []
        for s in page:
            try:
                cols = self._rt.evaluations.catalog(s.model).columns()
            except NotFound:
                cols = {}
            out.append(pb.ObservedModel(
                model=s.model, versions=s.versions,
                environments=[_wire(pb.Environment, e) for e in s.environments],
                record_count=s.record_count, actual_count=s.actual_count,
                first_prediction_time=_ts(s.first_time), last_prediction_time=_ts(s.last_time),
                columns=[pb.ColumnInfo(column=column_to_pb(c), kind=_wire(pb.ColumnKind, k))
                         for c, k in sorted(cols.items())]))
        return pb.ListObservedModelsResponse(models=out,
                                             next_page_token=_next_token(offset, size,
                                                                         len(summaries)))

    # -- analytics ------------------------------------------------------------

    async def ComputePerformance(self, request: pb.ComputePerformanceRequest, context: Any
                                 ) -> pb.ComputePerformanceResponse:
        f = filter_from_pb(request.filter, "filter")
        rep = await self._rt.analyses.run(
            self._rt.evaluations.performance, f, [M.Metric(m) for m in request.metrics],
            M.TaskType(request.task), request.positive_class, M.ClassAverage(request.average),
            _duration(request.bucket, request.HasField("bucket")),
            [column_from_pb(c) for c in request.slice_by], request.slice_bins or 4,
            _analysis_mode(request.mode))
        return pb.ComputePerformanceResponse(
            task=_wire(pb.TaskType, rep.task), overall=group_to_pb(rep.overall),
            windows=[group_to_pb(g) for g in rep.windows],
            slices=[group_to_pb(g) for g in rep.slices], mode=_wire(pb.AnalysisMode, rep.mode),
            sample_size=rep.sample_size, population_size=rep.population_size)

    async def ComputeProxyPerformance(self, request: pb.ComputeProxyPerformanceRequest,
                                      context: Any) -> pb.ComputeProxyPerformanceResponse:
        cur = filter_from_pb(request.current, "current")
        ref = reference_from_pb(request.reference, request.HasField("reference"), "reference")
        rep = await self._rt.analyses.run(
            self._rt.evaluations.proxy_performance, cur, ref, request.positive_class,
            _duration(request.bucket, request.HasField("bucket")),
            thresholds_from_pb(request.thresholds), _analysis_mode(request.mode))
        return pb.ComputeProxyPerformanceResponse(
            overall=proxy_group_to_pb(rep.overall),
            windows=[proxy_group_to_pb(g) for g in rep.windows],
            reference_metrics=metrics_to_pb(rep.reference_metrics), calibrated=rep.calibrated,
            mode=_wire(pb.AnalysisMode, rep.mode), sample_size=rep.sample_size,
            population_size=rep.population_size)

    async def ComputeDrift(self, request: pb.ComputeDriftRequest, context: Any
                           ) -> pb.ComputeDriftResponse:
        cur = filter_from_pb(request.current, "current")
        ref = reference_from_pb(request.reference, request.HasField("reference"), "reference")
        rep = await self._rt.analyses.run(
            self._rt.evaluations.drift, cur, ref, [column_from_pb(c) for c in request.columns],
            [DriftMethod(m) for m in request.methods], thresholds_from_pb(request.thresholds),
            request.bins, _analysis_mode(request.mode))
        return pb.ComputeDriftResponse(columns=[column_drift_to_pb(c) for c in rep.columns],
                                       reference_count=rep.reference_count,
                                       current_count=rep.current_count,
                                       drifted_share=rep.drifted_share,
                                       mode=_wire(pb.AnalysisMode, rep.mode),
                                       rank_error=rep.rank_error,
                                       profile_buckets=rep.profile_buckets,
                                       sample_size=rep.sample_size,
                                       population_size=rep.population_size)

    async def ComputeRootCause(self, request: pb.ComputeRootCauseRequest, context: Any
                               ) -> pb.ComputeRootCauseResponse:
        cur = filter_from_pb(request.current, "current")
        ref = reference_from_pb(request.reference, request.HasField("reference"), "reference")
        which = request.objective.WhichOneof("kind")
        if which is None:
            raise _bad("objective", "required: a metric or a drift column")
        metric = M.Metric(request.objective.metric) if which == "metric" else None
        col = column_from_pb(request.objective.drift_column) if which == "drift_column" else None
        if request.max_depth not in (0, 1, 2):
            raise _bad("max_depth", "must be 1 or 2 (0 = 2)")
        rep = await self._rt.analyses.run(
            self._rt.evaluations.root_cause, cur, ref, metric, col,
            [column_from_pb(c) for c in request.columns], request.max_slices or 10,
            request.max_depth or 2, request.min_slice_size or 30, request.bins or 4,
            request.positive_class, _analysis_mode(request.mode))
        return pb.ComputeRootCauseResponse(
            reference_value=rep.reference_value, current_value=rep.current_value,
            mode=_wire(pb.AnalysisMode, rep.mode), sample_size=rep.sample_size,
            population_size=rep.population_size,
            slices=[pb.SliceContribution(
                slice=slice_to_pb(s.slice), contribution=s.contribution,
                contribution_share=s.contribution_share, reference_count=s.reference_count,
                current_count=s.current_count, reference_value=s.reference_value,
                current_value=s.current_value, lift=s.lift, score=s.score)
                for s in rep.slices])

    async def ComputeFeatureImportance(self, request: pb.ComputeFeatureImportanceRequest,
                                       context: Any) -> pb.ComputeFeatureImportanceResponse:
        f = filter_from_pb(request.filter, "filter")
        if request.method not in (pb.ATTRIBUTION_METHOD_UNSPECIFIED,
                                  pb.ATTRIBUTION_METHOD_PERMUTATION):
            raise _bad("method", "global importance is computed by PERMUTATION")
        try:
            explainer = Explainer(request.explainer)
        except ValueError:
            raise _bad("explainer", f"unknown explainer {request.explainer}") from None
        rep = await self._rt.analyses.run(self._rt.evaluations.feature_importance, f,
                                          request.against_actual, request.repeats or 5,
                                          request.max_records or 20000, request.seed,
                                          explainer)
        return pb.ComputeFeatureImportanceResponse(
            importances=[pb.FeatureAttribution(feature=i.feature, value=i.value, std=i.std)
                         for i in rep.importances],
            surrogate_fidelity=rep.fidelity, record_count=rep.record_count,
            explainer=pb.Explainer.ValueType(int(rep.explainer)),
            surrogate_fidelity_measure=_FIDELITY.get(rep.fidelity_measure,
                                                     pb.FIDELITY_MEASURE_UNSPECIFIED),
            fallback_reason=rep.fallback_reason, scoring=rep.scoring,
            model_versions=rep.versions)

    async def ExplainPredictions(self, request: pb.ExplainPredictionsRequest, context: Any
                                 ) -> pb.ExplainPredictionsResponse:
        f = filter_from_pb(request.filter, "filter")
        try:
            explainer = Explainer(request.explainer)
        except ValueError:
            raise _bad("explainer", f"unknown explainer {request.explainer}") from None
        rep = await self._rt.analyses.run(self._rt.evaluations.explain, f,
                                          list(request.prediction_ids),
                                          request.max_records or 1000, request.store,
                                          request.seed, explainer)
        return pb.ExplainPredictionsResponse(
            predictions=[pb.PredictionAttribution(
                prediction_id=pid,
                attributions=[pb.FeatureAttribution(feature=k, value=v)
                              for k, v in sorted(attr.items(), key=lambda kv: -abs(kv[1]))],
                model_version=rep.versions.get(pid, ""), output=rep.outputs.get(pid, 0.0),
                expected_value=rep.expected.get(pid, 0.0))
                for pid, attr in rep.attributions.items()],
            surrogate_fidelity=rep.fidelity,
            method=_METHODS.get(rep.method, pb.ATTRIBUTION_METHOD_OCCLUSION),
            surrogate_fidelity_measure=_FIDELITY.get(rep.fidelity_measure,
                                                     pb.FIDELITY_MEASURE_UNSPECIFIED),
            explained_output=rep.explained_output, fallback_reason=rep.fallback_reason)

    async def CompareVersions(self, request: pb.CompareVersionsRequest, context: Any
                              ) -> pb.CompareVersionsResponse:
        from modelplane.observability.compare import compare_versions

        rep = await self._rt.analyses.run(
            compare_versions, self._rt.evaluations, filter_from_pb(request.filter, "filter"),
            request.champion_version, request.challenger_version,
            [M.Metric(m) for m in request.metrics], M.TaskType(request.task),
            request.positive_class, M.ClassAverage(request.average), request.confidence_level,
            request.bootstrap_resamples, request.seed, M.Metric(request.root_cause_metric),
            [column_from_pb(c) for c in request.root_cause_columns], request.max_slices or 10,
            request.min_slice_size or 30, [column_from_pb(c) for c in request.drift_columns])
        return comparison_to_pb(rep)

    async def GetPredictionLineage(self, request: pb.GetPredictionLineageRequest, context: Any
                                   ) -> pb.PredictionLineage:
        pid = request.prediction_id
        if not pid:
            raise _bad("prediction_id", "required")
        rec = await asyncio.to_thread(load_record, self._rt.store, pid)
        if rec is None:
            raise NotFound(f"prediction {pid!r} is not in the evaluation store",
                           reason="RECORD_NOT_FOUND", metadata={"prediction_id": pid})
        return lineage_to_pb(await prediction_lineage(rec, self._rt.lineage_peers))

    # -- baselines -------------------------------------------------------------

    async def SetBaseline(self, request: pb.SetBaselineRequest, context: Any) -> pb.Baseline:
        baseline = baseline_from_pb(request.baseline)

        def run() -> Baseline:
            if request.HasField("records") and request.records.WhichOneof("source"):
                if not baseline.model or not baseline.version:
                    raise _bad("baseline", "model and version are required")
                table = read_table(request.records.parquet_uri or None,
                                   request.records.arrow_ipc or None, "records",
                                   self._rt.storage, self._arrow_limits)
                self._rt.ingestor.import_table(baseline.model, baseline.version,
                                               Environment.VALIDATION, table,
                                               _columns(request.columns))
            return self._rt.evaluations.set_baseline(baseline)

        return baseline_to_pb(await asyncio.to_thread(run))

    async def GetBaseline(self, request: pb.GetBaselineRequest, context: Any) -> pb.Baseline:
        b = await asyncio.to_thread(self._rt.evaluations.get_baseline, request.model,
                                    request.version)
        return baseline_to_pb(b)

    # -- monitors and alerts -----------------------------------------------------

    async def CreateMonitor(self, request: pb.CreateMonitorRequest, context: Any) -> pb.Monitor:
        m = await asyncio.to_thread(self._rt.monitors.create, monitor_from_pb(request.monitor))
        return monitor_to_pb(m)

    async def GetMonitor(self, request: pb.GetMonitorRequest, context: Any) -> pb.Monitor:
        return monitor_to_pb(await asyncio.to_thread(self._rt.monitors.get, request.id))

    async def ListMonitors(self, request: pb.ListMonitorsRequest, context: Any
                           ) -> pb.ListMonitorsResponse:
        size, offset = _page(request.page_size, request.page_token)
        all_ = await asyncio.to_thread(self._rt.monitors.list, request.model)
        return pb.ListMonitorsResponse(
            monitors=[monitor_to_pb(m) for m in all_[offset:offset + size]],
            next_page_token=_next_token(offset, size, len(all_)))

    async def UpdateMonitor(self, request: pb.UpdateMonitorRequest, context: Any) -> pb.Monitor:
        paths = list(request.update_mask.paths)
        for i, p in enumerate(paths):
            if p not in _MONITOR_MUTABLE:
                raise _bad(f"update_mask.paths[{i}]", f"{p!r} cannot be updated (one of "
                           f"{', '.join(sorted(_MONITOR_MUTABLE))})")

        def run() -> Monitor:
            current = monitor_to_pb(self._rt.monitors.get(request.monitor.id, "monitor.id"))
            if paths:
                for p in paths:
                    if p in ("filter", "signal", "window", "interval"):
                        current.ClearField(p)  # type: ignore[arg-type]
                        if request.monitor.HasField(p):  # type: ignore[arg-type]
                            getattr(current, p).CopyFrom(getattr(request.monitor, p))
                    else:
                        setattr(current, p, getattr(request.monitor, p))
            else:
                keep_id = current.id
                current = pb.Monitor()
                current.CopyFrom(request.monitor)
                current.id = keep_id
            return self._rt.monitors.update(monitor_from_pb(current))

        return monitor_to_pb(await asyncio.to_thread(run))

    async def DeleteMonitor(self, request: pb.DeleteMonitorRequest, context: Any
                            ) -> empty_pb2.Empty:
        await asyncio.to_thread(self._rt.monitors.delete, request.id)
        return empty_pb2.Empty()

    async def EvaluateMonitor(self, request: pb.EvaluateMonitorRequest, context: Any
                              ) -> pb.EvaluateMonitorResponse:
        ev = await asyncio.to_thread(self._rt.monitors.evaluate, request.id)
        return pb.EvaluateMonitorResponse(evaluated=ev.evaluated, value=ev.value,
                                          record_count=ev.record_count,
                                          alert=alert_to_pb(ev.alert) if ev.alert else None)

    async def ListAlerts(self, request: pb.ListAlertsRequest, context: Any
                         ) -> pb.ListAlertsResponse:
        size, offset = _page(request.page_size, request.page_token)
        alerts = await asyncio.to_thread(self._rt.monitors.alerts, request.model,
                                         request.monitor_id, AlertState(request.state))
        return pb.ListAlertsResponse(alerts=[alert_to_pb(a) for a in alerts[offset:offset + size]],
                                     next_page_token=_next_token(offset, size, len(alerts)))

    async def WatchAlerts(self, request: pb.WatchAlertsRequest, context: Any
                          ) -> AsyncIterator[pb.Alert]:
        watcher = self._rt.hub.subscribe(request.model, request.monitor_id)
        try:
            while True:
                alert = await watcher.queue.get()
                yield alert_to_pb(alert)
        finally:
            self._rt.hub.unsubscribe(watcher)

    # -- alerts raised by other services (issue #17) ---------------------------

    async def RaiseAlert(self, request: pb.RaiseAlertRequest, context: Any) -> pb.Alert:
        alert = await asyncio.to_thread(
            self._rt.monitors.raise_alert, request.source, request.model, request.version,
            request.message, request.idempotency_key)
        return alert_to_pb(alert)


def _interval_to_pb(i: Any) -> pb.ConfidenceInterval:
    if i.value is None:
        return pb.ConfidenceInterval()
    return pb.ConfidenceInterval(value=i.value, lower=i.lower, upper=i.upper, has_value=True)


def comparison_to_pb(rep: Any) -> pb.CompareVersionsResponse:
    """A :class:`~modelplane.observability.compare.VersionComparison` as its message."""
    rc = rep.root_cause
    return pb.CompareVersionsResponse(
        task=_wire(pb.TaskType, rep.task), confidence_level=rep.confidence_level,
        bootstrap_resamples=rep.resamples, champion_record_count=rep.champion_count,
        champion_labeled_count=rep.champion_labeled, challenger_record_count=rep.challenger_count,
        challenger_labeled_count=rep.challenger_labeled,
        metrics=[pb.MetricComparison(
            metric=_wire(pb.Metric, m.metric), method=_wire(pb.IntervalMethod, m.method),
            champion=_interval_to_pb(m.champion), challenger=_interval_to_pb(m.challenger),
            difference=_interval_to_pb(m.difference), significant=m.significant,
            challenger_better=m.challenger_better) for m in rep.metrics],
        drift=[column_drift_to_pb(c) for c in rep.drift], drifted_share=rep.drifted_share,
        root_cause_metric=_wire(pb.Metric, rep.root_cause_metric),
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
            event_time=_ts(ro.event_time), matched_by=ro.matched_by))
    return out


def _columns(c: pb.ImportColumns) -> ImportColumns:
    return ImportColumns(c.prediction_id, c.prediction_time, c.prediction, c.actual,
                         c.score_prefix, c.tag_prefix, list(c.features))


__all__ = ["ObservabilityServicer", "to_us"]
