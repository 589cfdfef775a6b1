"""The ServingService gRPC servicer: protobuf ⇄ domain objects, nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import empty_pb2, timestamp_pb2

from modelplane.api.v1 import annotations_pb2 as access_pb2
from modelplane.serving.batch_job import BatchJob, BatchJobState
from modelplane.serving.batch_runner import BatchRunner
from modelplane.serving.bento_export import BentoExporter
from modelplane.serving.deployment import (
    Access,
    AccessPolicy,
    CircuitBreakerSettings,
    Deployment,
    DeploymentState,
    Ensemble,
    EnsembleMethod,
    FallbackPolicy,
    FeatureBinding,
    LoadedModelInfo,
    ModelTarget,
    Route,
)
from modelplane.serving.deployment_service import DeploymentService, DeploymentView
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

_ACCESS_IN = {access_pb2.ACCESS_READ: Access.READ, access_pb2.ACCESS_WRITE: Access.WRITE,
              access_pb2.ACCESS_ADMIN: Access.ADMIN}
_ACCESS_OUT = {v: k for k, v in _ACCESS_IN.items()}
_METHOD_IN = {pb.ENSEMBLE_METHOD_AVERAGE: EnsembleMethod.AVERAGE,
              pb.ENSEMBLE_METHOD_VOTE: EnsembleMethod.VOTE,
              pb.ENSEMBLE_METHOD_CHAIN: EnsembleMethod.CHAIN}
_METHOD_OUT = {v: k for k, v in _METHOD_IN.items()}
_STATE_OUT = {DeploymentState.LOADING: pb.DEPLOYMENT_STATE_LOADING,
              DeploymentState.READY: pb.DEPLOYMENT_STATE_READY,
              DeploymentState.FAILED: pb.DEPLOYMENT_STATE_FAILED}
_JOB_STATE_OUT = {BatchJobState.PENDING: pb.BATCH_JOB_STATE_PENDING,
                  BatchJobState.RUNNING: pb.BATCH_JOB_STATE_RUNNING,
                  BatchJobState.SUCCEEDED: pb.BATCH_JOB_STATE_SUCCEEDED,
                  BatchJobState.FAILED: pb.BATCH_JOB_STATE_FAILED}


def _seconds(d: Any, default: float) -> float:
    value = d.seconds + d.nanos / 1e9
    return value if value > 0 else default


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


# --- protobuf → domain ----------------------------------------------------------------------
def target_in(t: Any) -> ModelTarget:
    return ModelTarget(model=t.model, alias=t.alias, version=t.version)


def routes_in(split: Any) -> tuple[Route, ...]:
    return tuple(Route(target_in(r.target), r.weight, r.label) for r in split.routes)


def deployment_in(m: Any) -> Deployment:
    cb = m.fallback.circuit_breaker
    defaults = CircuitBreakerSettings()
    breaker = CircuitBreakerSettings(
        error_rate_threshold=cb.error_rate_threshold or defaults.error_rate_threshold,
        window_seconds=_seconds(cb.window, defaults.window_seconds),
        minimum_requests=cb.minimum_requests or defaults.minimum_requests,
        open_seconds=_seconds(cb.open_duration, defaults.open_seconds))
    ensemble = None
    if m.HasField("ensemble") and (m.ensemble.members or m.ensemble.method):
        ensemble = Ensemble(_METHOD_IN.get(m.ensemble.method, EnsembleMethod.AVERAGE),
                            tuple(target_in(t) for t in m.ensemble.members),
                            tuple(m.ensemble.weights))
    features = None
    if m.HasField("features") and (m.features.feature_refs or m.features.entity_keys):
        features = FeatureBinding(tuple(m.features.feature_refs), tuple(m.features.entity_keys),
                                  m.features.full_feature_names)
    return Deployment(
        name=m.name, model=m.model, description=m.description,
        routes=routes_in(m.traffic_split),
        shadows=tuple(target_in(t) for t in m.shadows),
        fallback=FallbackPolicy(tuple(target_in(t) for t in m.fallback.chain),
                                _seconds(m.fallback.timeout, 1.0), breaker),
        ensemble=ensemble, features=features, sticky_key=m.sticky_key,
        access=AccessPolicy(tuple(m.access.infer_principals),
                            _ACCESS_IN.get(m.access.infer_access, Access.READ),
                            tuple(m.access.manage_principals),
                            _ACCESS_IN.get(m.access.manage_access, Access.WRITE)),
        logging_enabled=m.prediction_logging != pb.PREDICTION_LOGGING_OFF,
        etag=m.etag)


# --- domain → protobuf ----------------------------------------------------------------------
def target_out(t: ModelTarget) -> pb.ModelTarget:
    if t.alias:
        return pb.ModelTarget(model=t.model, alias=t.alias)
    return pb.ModelTarget(model=t.model, version=t.version)


def _duration(seconds: float) -> Any:
    from google.protobuf import duration_pb2

    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def loaded_out(m: LoadedModelInfo) -> pb.LoadedModel:
    return pb.LoadedModel(target=target_out(m.target), model=m.model, version=m.version,
                          source_uri=m.source_uri, bento_model_tag=m.bento_model_tag,
                          load_time=_ts(m.load_time))


def deployment_out(view: DeploymentView) -> pb.Deployment:
    d = view.deployment
    cb = d.fallback.circuit_breaker
    m = pb.Deployment(
        name=d.name, description=d.description, model=d.model,
        traffic_split=pb.TrafficSplit(routes=[
            pb.Route(target=target_out(r.target), weight=r.weight, label=r.label)
            for r in d.routes]),
        shadows=[target_out(t) for t in d.shadows],
        fallback=pb.FallbackPolicy(
            chain=[target_out(t) for t in d.fallback.chain],
            timeout=_duration(d.fallback.timeout_seconds),
            circuit_breaker=pb.CircuitBreaker(
                error_rate_threshold=cb.error_rate_threshold, window=_duration(cb.window_seconds),
                minimum_requests=cb.minimum_requests, open_duration=_duration(cb.open_seconds))),
        sticky_key=d.sticky_key,
        access=pb.AccessPolicy(infer_principals=list(d.access.infer_principals),
                               infer_access=_ACCESS_OUT[d.access.infer_access],
                               manage_principals=list(d.access.manage_principals),
                               manage_access=_ACCESS_OUT[d.access.manage_access]),
        prediction_logging=(pb.PREDICTION_LOGGING_ON if d.logging_enabled
                            else pb.PREDICTION_LOGGING_OFF),
        state=_STATE_OUT[view.state], state_message=view.state_message,
        loaded_models=[loaded_out(x) for x in view.loaded_models],
        create_time=_ts(d.create_time), update_time=_ts(d.update_time), etag=d.etag,
        generation=d.generation)
    if d.ensemble is not None:
        m.ensemble.CopyFrom(pb.Ensemble(method=_METHOD_OUT[d.ensemble.method],
                                        members=[target_out(t) for t in d.ensemble.members],
                                        weights=list(d.ensemble.weights)))
    if d.features is not None:
        m.features.CopyFrom(pb.FeatureBinding(feature_refs=list(d.features.feature_refs),
                                              entity_keys=list(d.features.entity_keys),
                                              full_feature_names=d.features.full_feature_names))
    return m


def job_out(j: BatchJob) -> pb.BatchJob:
    m = pb.BatchJob(id=j.id, deployment=j.deployment, output_uri=j.output_uri,
                    prediction_logging=(pb.PREDICTION_LOGGING_ON if j.logging_enabled
                                        else pb.PREDICTION_LOGGING_OFF),
                    state=_JOB_STATE_OUT[j.state], error_message=j.error_message,
                    rows_total=j.rows_total, rows_scored=j.rows_scored, model=j.model,
                    model_version=j.model_version, create_time=_ts(j.create_time),
                    start_time=_ts(j.start_time), end_time=_ts(j.end_time))
    if j.target is not None:
        m.target.CopyFrom(target_out(j.target))
    if j.dataset:
        m.dataset = j.dataset
    elif j.parquet_uri:
        m.parquet_uri = j.parquet_uri
    return m


class ServingApi(serving_pb2_grpc.ServingServiceServicer):
    def __init__(self, deployments: DeploymentService, batches: BatchRunner,
                 exporter: BentoExporter) -> None:
        self.deployments = deployments
        self.batches = batches
        self.exporter = exporter

    async def CreateDeployment(self, request: Any, context: Any) -> pb.Deployment:
        return deployment_out(await self.deployments.create(
            deployment_in(request.deployment),
            override_reason=request.validation_override_reason))

    async def GetDeployment(self, request: Any, context: Any) -> pb.Deployment:
        return deployment_out(await self.deployments.get(request.name))

    async def ListDeployments(self, request: Any, context: Any) -> pb.ListDeploymentsResponse:
        views, token = await self.deployments.list_deployments(request.page_size,
                                                               request.page_token,
                                                   request.model)
        return pb.ListDeploymentsResponse(deployments=[deployment_out(v) for v in views],
                                          next_page_token=token)

    async def UpdateDeployment(self, request: Any, context: Any) -> pb.Deployment:
        paths = list(request.update_mask.paths)
        return deployment_out(await self.deployments.update(
            deployment_in(request.deployment), paths,
            override_reason=request.validation_override_reason))

    async def DeleteDeployment(self, request: Any, context: Any) -> empty_pb2.Empty:
        await self.deployments.delete(request.name, request.etag)
        return empty_pb2.Empty()

    async def SetTrafficSplit(self, request: Any, context: Any) -> pb.Deployment:
        return deployment_out(await self.deployments.set_traffic_split(
            request.name, routes_in(request.traffic_split), request.etag,
            override_reason=request.validation_override_reason))

    async def CreateBatchJob(self, request: Any, context: Any) -> pb.BatchJob:
        m = request.batch_job
        job = await self.batches.create(
            deployment=m.deployment,
            target=target_in(m.target) if m.HasField("target") else None,
            dataset=m.dataset, parquet_uri=m.parquet_uri, output_uri=m.output_uri,
            logging_enabled=m.prediction_logging != pb.PREDICTION_LOGGING_OFF)
        return job_out(job)

    async def GetBatchJob(self, request: Any, context: Any) -> pb.BatchJob:
        return job_out(await self.batches.get(request.id))

    async def ListBatchJobs(self, request: Any, context: Any) -> pb.ListBatchJobsResponse:
        jobs, token = await self.batches.list_jobs(request.page_size, request.page_token,
                                              request.deployment)
        return pb.ListBatchJobsResponse(batch_jobs=[job_out(j) for j in jobs],
                                        next_page_token=token)

    async def ExportBento(self, request: Any, context: Any) -> pb.ExportBentoResponse:
        result = await self.exporter.export(
            request.name, target_in(request.target) if request.HasField("target") else None,
            request.output_path)
        return pb.ExportBentoResponse(bento_tag=result.bento_tag, path=result.path,
                                      bento_model_tag=result.bento_model_tag)
