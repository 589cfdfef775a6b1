"""gRPC servicer: requests checked and handed to the runtime's parts, answers
built by :mod:`.convert`.

Errors are raised as ``modelplane.kit.errors`` and mapped once by the kit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from google.protobuf import empty_pb2

from modelplane.kit import paging
from modelplane.kit.errors import NotFound
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import RowBudget
from modelplane.observability.baselines import Baseline
from modelplane.observability.columnar import read_ipc
from modelplane.observability.convert import (
    ATTRIBUTION_METHOD_PB,
    FIDELITY_PB,
    actual_from_pb,
    alert_to_pb,
    analysis_mode_from_pb,
    bad_argument,
    baseline_from_pb,
    baseline_to_pb,
    column_drift_to_pb,
    column_from_pb,
    column_to_pb,
    comparison_to_pb,
    duration_from_pb,
    filter_from_pb,
    group_to_pb,
    import_columns_from_pb,
    lineage_to_pb,
    metrics_to_pb,
    monitor_from_pb,
    monitor_to_pb,
    proxy_group_to_pb,
    record_from_pb,
    record_to_pb,
    reference_from_pb,
    rejected_to_pb,
    slice_to_pb,
    thresholds_from_pb,
    time_to_pb,
    wire_enum,
)
from modelplane.observability.drift import DriftMethod
from modelplane.observability.ingest import ArrowRecords, read_table
from modelplane.observability.lineage import load_record, prediction_lineage
from modelplane.observability.monitors import (
    AlertState,
    Monitor,
)
from modelplane.observability.records import (
    Actual,
    Environment,
    EvaluationRecord,
    IngestResult,
    Rejection,
)
from modelplane.observability.reports import Explainer
from modelplane.observability.store.base import ScanSpec
from modelplane.observability.store.frames import (
    decode_page_token,
    encode_page_token,
    record_from_json,
    to_us,
)
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from modelplane.observability.runtime import ObservabilityRuntime


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
                        raise bad_argument("arrow_ipc", "set records or arrow_ipc, not both",
                                   "BOTH_RECORDS_AND_ARROW_IPC")
                    yield ArrowRecords(read_ipc(req.arrow_ipc, "arrow_ipc", self._arrow_limits))
                else:
                    yield [record_from_pb(r, i) for i, r in enumerate(req.records)]

        result = await self._rt.ingestor.log_records(batches())
        return pb.LogRecordsResponse(accepted_count=result.accepted,
                                     duplicate_count=result.duplicates,
                                     rejected=rejected_to_pb(result))

    async def LogActuals(self, request_iterator: AsyncIterator[pb.LogActualsRequest],
                         context: Any) -> pb.LogActualsResponse:
        async def batches() -> AsyncIterator[list[Actual | Rejection]]:
            async for req in request_iterator:
                yield [actual_from_pb(a, i) for i, a in enumerate(req.actuals)]

        result = await self._rt.ingestor.log_actuals(batches())
        return pb.LogActualsResponse(accepted_count=result.accepted,
                                     duplicate_count=result.duplicates,
                                     unmatched_count=result.unmatched,
                                     rejected=rejected_to_pb(result))

    async def ImportRecords(self, request: pb.ImportRecordsRequest, context: Any
                            ) -> pb.ImportRecordsResponse:
        src = request.table.WhichOneof("source")
        if src is None:
            raise bad_argument("table", "one of parquet_uri or arrow_ipc is required")

        def run() -> tuple[IngestResult, int]:
            table = read_table(request.table.parquet_uri or None,
                               request.table.arrow_ipc or None, "table", self._rt.storage,
                               self._arrow_limits)
            return self._rt.ingestor.import_table(
                request.model, request.version, Environment(request.environment), table,
                import_columns_from_pb(request.columns))

        result, actuals = await asyncio.to_thread(run)
        return pb.ImportRecordsResponse(accepted_count=result.accepted,
                                        duplicate_count=result.duplicates,
                                        actual_count=actuals, rejected=rejected_to_pb(result))

    # -- records --------------------------------------------------------------

    async def GetRecord(self, request: pb.GetRecordRequest, context: Any) -> pb.EvaluationRecord:
        return record_to_pb(await self._record(request.prediction_id))

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
                environments=[wire_enum(pb.Environment, e) for e in s.environments],
                record_count=s.record_count, actual_count=s.actual_count,
                first_prediction_time=time_to_pb(s.first_time),
                last_prediction_time=time_to_pb(s.last_time),
                columns=[pb.ColumnInfo(column=column_to_pb(c), kind=wire_enum(pb.ColumnKind, k))
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
            duration_from_pb(request.bucket, request.HasField("bucket")),
            [column_from_pb(c) for c in request.slice_by], request.slice_bins or 4,
            analysis_mode_from_pb(request.mode))
        return pb.ComputePerformanceResponse(
            task=wire_enum(pb.TaskType, rep.task), overall=group_to_pb(rep.overall),
            windows=[group_to_pb(g) for g in rep.windows],
            slices=[group_to_pb(g) for g in rep.slices], mode=wire_enum(pb.AnalysisMode, rep.mode),
            sample_size=rep.sample_size, population_size=rep.population_size)

    async def ComputeProxyPerformance(self, request: pb.ComputeProxyPerformanceRequest,
                                      context: Any) -> pb.ComputeProxyPerformanceResponse:
        cur = filter_from_pb(request.current, "current")
        ref = reference_from_pb(request.reference, request.HasField("reference"), "reference")
        rep = await self._rt.analyses.run(
            self._rt.evaluations.proxy_performance, cur, ref, request.positive_class,
            duration_from_pb(request.bucket, request.HasField("bucket")),
            thresholds_from_pb(request.thresholds), analysis_mode_from_pb(request.mode))
        return pb.ComputeProxyPerformanceResponse(
            overall=proxy_group_to_pb(rep.overall),
            windows=[proxy_group_to_pb(g) for g in rep.windows],
            reference_metrics=metrics_to_pb(rep.reference_metrics), calibrated=rep.calibrated,
            mode=wire_enum(pb.AnalysisMode, rep.mode), sample_size=rep.sample_size,
            population_size=rep.population_size)

    async def ComputeDrift(self, request: pb.ComputeDriftRequest, context: Any
                           ) -> pb.ComputeDriftResponse:
        cur = filter_from_pb(request.current, "current")
        ref = reference_from_pb(request.reference, request.HasField("reference"), "reference")
        rep = await self._rt.analyses.run(
            self._rt.evaluations.drift, cur, ref, [column_from_pb(c) for c in request.columns],
            [DriftMethod(m) for m in request.methods], thresholds_from_pb(request.thresholds),
            request.bins, analysis_mode_from_pb(request.mode))
        return pb.ComputeDriftResponse(columns=[column_drift_to_pb(c) for c in rep.columns],
                                       reference_count=rep.reference_count,
                                       current_count=rep.current_count,
                                       drifted_share=rep.drifted_share,
                                       mode=wire_enum(pb.AnalysisMode, rep.mode),
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
            raise bad_argument("objective", "required: a metric or a drift column")
        metric = M.Metric(request.objective.metric) if which == "metric" else None
        col = column_from_pb(request.objective.drift_column) if which == "drift_column" else None
        if request.max_depth not in (0, 1, 2):
            raise bad_argument("max_depth", "must be 1 or 2 (0 = 2)")
        rep = await self._rt.analyses.run(
            self._rt.evaluations.root_cause, cur, ref, metric, col,
            [column_from_pb(c) for c in request.columns], request.max_slices or 10,
            request.max_depth or 2, request.min_slice_size or 30, request.bins or 4,
            request.positive_class, analysis_mode_from_pb(request.mode))
        return pb.ComputeRootCauseResponse(
            reference_value=rep.reference_value, current_value=rep.current_value,
            mode=wire_enum(pb.AnalysisMode, rep.mode), sample_size=rep.sample_size,
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
            raise bad_argument("method", "global importance is computed by PERMUTATION")
        try:
            explainer = Explainer(request.explainer)
        except ValueError:
            raise bad_argument("explainer", f"unknown explainer {request.explainer}") from None
        rep = await self._rt.analyses.run(self._rt.evaluations.feature_importance, f,
                                          request.against_actual, request.repeats or 5,
                                          request.max_records or 20000, request.seed,
                                          explainer)
        return pb.ComputeFeatureImportanceResponse(
            importances=[pb.FeatureAttribution(feature=i.feature, value=i.value, std=i.std)
                         for i in rep.importances],
            surrogate_fidelity=rep.fidelity, record_count=rep.record_count,
            explainer=pb.Explainer.ValueType(int(rep.explainer)),
            surrogate_fidelity_measure=FIDELITY_PB.get(rep.fidelity_measure,
                                                     pb.FIDELITY_MEASURE_UNSPECIFIED),
            fallback_reason=rep.fallback_reason, scoring=rep.scoring,
            model_versions=rep.versions)

    async def ExplainPredictions(self, request: pb.ExplainPredictionsRequest, context: Any
                                 ) -> pb.ExplainPredictionsResponse:
        f = filter_from_pb(request.filter, "filter")
        try:
            explainer = Explainer(request.explainer)
        except ValueError:
            raise bad_argument("explainer", f"unknown explainer {request.explainer}") from None
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
            method=ATTRIBUTION_METHOD_PB.get(rep.method, pb.ATTRIBUTION_METHOD_OCCLUSION),
            surrogate_fidelity_measure=FIDELITY_PB.get(rep.fidelity_measure,
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
        rec = await self._record(request.prediction_id)
        return lineage_to_pb(await prediction_lineage(rec, self._rt.lineage_peers))

    async def _record(self, pid: str) -> EvaluationRecord:
        """The stored record of a prediction id; INVALID_ARGUMENT without one,
        NOT_FOUND when the store has none."""
        if not pid:
            raise bad_argument("prediction_id", "required")
        rec = await asyncio.to_thread(load_record, self._rt.store, pid)
        if rec is None:
            raise NotFound(f"prediction {pid!r} is not in the evaluation store",
                           reason="RECORD_NOT_FOUND", metadata={"prediction_id": pid})
        return rec

    # -- baselines -------------------------------------------------------------

    async def SetBaseline(self, request: pb.SetBaselineRequest, context: Any) -> pb.Baseline:
        baseline = baseline_from_pb(request.baseline)

        def run() -> Baseline:
            if request.HasField("records") and request.records.WhichOneof("source"):
                if not baseline.model or not baseline.version:
                    raise bad_argument("baseline", "model and version are required")
                table = read_table(request.records.parquet_uri or None,
                                   request.records.arrow_ipc or None, "records",
                                   self._rt.storage, self._arrow_limits)
                self._rt.ingestor.import_table(baseline.model, baseline.version,
                                               Environment.VALIDATION, table,
                                               import_columns_from_pb(request.columns))
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
                raise bad_argument(f"update_mask.paths[{i}]", f"{p!r} cannot be updated (one of "
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


__all__ = ["ObservabilityServicer", "to_us"]
