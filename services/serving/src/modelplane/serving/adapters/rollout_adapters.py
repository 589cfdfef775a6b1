"""The rollout controller's gRPC peers: observability's evaluation store, the registry's gate.

:class:`ObservabilityEvidence` counts a version's predictions with an actual and
the correct ones with ``ComputePerformance`` (accuracy x labeled count) over the
rollout's window, production records only (for a MAE rollout: the labeled count,
the MAE and the RMSE of one regression ``ComputePerformance``, from which the
rule takes the variance of the absolute error, RMSE^2 - MAE^2); for a proxy check, the prediction
drift between the two versions (``ComputeDrift``) and the accuracy estimated from
scores (``ComputeProxyPerformance``), with or without actuals. :class:`RegistryAliasMover` moves the
champion alias with the registry's ``SetAlias`` under serving's own identity, so
the registry's gate decides (a version without a PASS validation is refused; no
override reason is ever sent). :class:`ObservabilityAlerts` raises a roll back's
alert with observability's ``RaiseAlert`` (idempotent by its key).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import grpc

from modelplane.api.v1 import types_pb2
from modelplane.kit.errors import Unavailable
from modelplane.kit.status import raise_from_rpc_error
from modelplane.kit.timestamps import time_to_pb
from modelplane.observability.v1 import observability_pb2 as obs
from modelplane.observability.v1 import observability_pb2_grpc as obs_grpc
from modelplane.registry.v1 import registry_pb2, registry_pb2_grpc
from modelplane.serving.rollout import Counts, ProxyStats

TIMEOUT_SECONDS = 30.0


class ObservabilityEvidence:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = obs_grpc.ObservabilityServiceStub(channel)

    async def _performance(self, model: str, version: str, start: datetime, end: datetime,
                           slice_by: str = "", metric: str = "ACCURACY",
                           positive_class: str = "") -> obs.ComputePerformanceResponse | None:
        regression = metric == "MAE"
        # precision / recall of a class: accuracy on the records that predicted it /
        # whose actual is it (one predicate), so n is that subset's labeled count
        subset = {"PRECISION": obs.COLUMN_SOURCE_PREDICTION,
                  "RECALL": obs.COLUMN_SOURCE_ACTUAL}.get(metric)
        predicates = [obs.SlicePredicate(
            column=obs.ColumnRef(source=subset), op=obs.SLICE_OPERATOR_EQUAL,
            values=[types_pb2.Value(string_value=positive_class)])] if subset else []
        request = obs.ComputePerformanceRequest(
            filter=obs.EvaluationFilter(
                model=model, versions=[version], environment=obs.ENVIRONMENT_PRODUCTION,
                window=types_pb2.TimeWindow(start_time=time_to_pb(start), end_time=time_to_pb(end)),
                predicates=predicates),
            metrics=[obs.METRIC_MAE, obs.METRIC_RMSE] if regression else [obs.METRIC_ACCURACY],
            task=obs.TASK_TYPE_REGRESSION if regression else obs.TASK_TYPE_CLASSIFICATION,
            slice_by=[obs.ColumnRef(source=obs.COLUMN_SOURCE_FEATURE, name=slice_by)]
            if slice_by else [])
        try:
            r: obs.ComputePerformanceResponse = await self._stub.ComputePerformance(
                request, timeout=TIMEOUT_SECONDS)
            return r
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                # no records of the model or the version yet, or none in the window:
                # no evidence yet, which the rule waits on (not an error)
                return None
            raise_from_rpc_error(exc)

    async def counts(self, model: str, version: str, start: datetime, end: datetime,
                     metric: str = "ACCURACY", positive_class: str = "") -> Counts:
        r = await self._performance(model, version, start, end, metric=metric,
                                    positive_class=positive_class)
        return Counts() if r is None else _group_counts(r.overall, metric)

    async def slice_counts(self, model: str, version: str, start: datetime, end: datetime,
                           feature: str, metric: str = "ACCURACY", positive_class: str = ""
                           ) -> dict[str, Counts]:
        """Per value of ``feature``: one ComputePerformance sliced by it (observability
        lists at most its 20 most frequent values)."""
        r = await self._performance(model, version, start, end, slice_by=feature,
                                    metric=metric, positive_class=positive_class)
        out: dict[str, Counts] = {}
        for g in r.slices if r is not None else ():
            preds = g.slice.predicates
            if len(preds) != 1 or preds[0].op != obs.SLICE_OPERATOR_EQUAL or not preds[0].values:
                continue  # a numeric feature's bins: not a categorical slice check
            value = preds[0].values[0]
            kind = value.WhichOneof("kind")
            out[str(getattr(value, kind)) if kind else ""] = _group_counts(g, metric)
        return out


    def _filter(self, model: str, version: str, start: datetime, end: datetime
                ) -> obs.EvaluationFilter:
        return obs.EvaluationFilter(
            model=model, versions=[version], environment=obs.ENVIRONMENT_PRODUCTION,
            window=types_pb2.TimeWindow(start_time=time_to_pb(start), end_time=time_to_pb(end)))

    async def _call(self, method: str, request: object) -> object | None:
        try:
            return await getattr(self._stub, method)(request, timeout=TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                return None  # no records yet (or no scores to estimate from): nothing yet
            raise_from_rpc_error(exc)

    async def proxy_stats(self, model: str, champion: str, challenger: str, start: datetime,
                          end: datetime, estimated: bool) -> ProxyStats:
        """``ComputeDrift`` of the prediction, the challenger's records against the
        champion's (same window, production; Jensen-Shannon distance), and with
        ``estimated`` one ``ComputeProxyPerformance`` per version, each calibrated on
        its own records' actuals when it has 100 of them (else raw scores), so both
        sides are estimated the same way."""
        old = self._filter(model, champion, start, end)
        new = self._filter(model, challenger, start, end)
        drift = await self._call("ComputeDrift", obs.ComputeDriftRequest(
            current=new, reference=obs.ReferenceData(filter=old),
            columns=[obs.ColumnRef(source=obs.COLUMN_SOURCE_PREDICTION)],
            methods=[obs.DRIFT_METHOD_JENSEN_SHANNON]))
        js, n0, n1 = 0.0, 0, 0
        if isinstance(drift, obs.ComputeDriftResponse):
            n0, n1 = int(drift.reference_count), int(drift.current_count)
            js = max((st.value for col in drift.columns for st in col.statistics
                      if st.method == obs.DRIFT_METHOD_JENSEN_SHANNON), default=0.0)
        e0 = e1 = None
        if estimated:
            e0, e1 = await asyncio.gather(self._estimated(old), self._estimated(new))
        return ProxyStats(n0, n1, js, e0, e1)

    async def _estimated(self, f: obs.EvaluationFilter) -> float | None:
        r = await self._call("ComputeProxyPerformance", obs.ComputeProxyPerformanceRequest(
            current=f, reference=obs.ReferenceData(filter=f)))
        if not isinstance(r, obs.ComputeProxyPerformanceResponse):
            return None
        return next((m.value for m in r.overall.estimated_metrics
                     if m.metric == obs.METRIC_ACCURACY and m.has_value), None)


def _group_counts(g: obs.PerformanceGroup, metric: str = "ACCURACY") -> Counts:
    labeled = int(g.labeled_count)
    values = {m.metric: m.value for m in g.metrics if m.has_value}
    if metric == "MAE":
        mae, rmse = values.get(obs.METRIC_MAE), values.get(obs.METRIC_RMSE)
        if not labeled or mae is None or rmse is None:
            return Counts()
        return Counts(labeled, mae=mae, rmse=rmse)
    accuracy = values.get(obs.METRIC_ACCURACY)
    if not labeled or accuracy is None:
        return Counts()
    return Counts(labeled, round(accuracy * labeled))


class ObservabilityAlerts:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = obs_grpc.ObservabilityServiceStub(channel)

    async def raise_alert(self, source: str, model: str, version: str, message: str,
                          idempotency_key: str) -> None:
        try:
            await self._stub.RaiseAlert(obs.RaiseAlertRequest(
                source=source, model=model, version=version, message=message,
                idempotency_key=idempotency_key), timeout=TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise_from_rpc_error(exc)


class RegistryAliasMover:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = registry_pb2_grpc.ModelRegistryServiceStub(channel)

    async def set_alias(self, model: str, alias: str, version: str) -> None:
        try:
            await self._stub.SetAlias(registry_pb2.SetAliasRequest(
                model_name=model, alias=alias, version=int(version)), timeout=TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise_from_rpc_error(exc)
            raise Unavailable("the registry did not answer", reason="REGISTRY_UNAVAILABLE"
                              ) from None
