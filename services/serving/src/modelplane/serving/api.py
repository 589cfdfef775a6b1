"""The ``ServingService`` gRPC servicer: requests to the control plane's calls, answers
built by :mod:`.convert`. Errors are raised as ``modelplane.kit.errors`` and mapped once
by the kit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf import empty_pb2

from modelplane.serving.control_plane import ControlPlane
from modelplane.serving.convert import (
    batch_job_to_pb,
    deployment_from_pb,
    deployment_to_pb,
    logging_from_pb,
    rollout_event_to_pb,
    rollout_from_pb,
    rollout_to_pb,
    routes_from_pb,
    target_from_pb,
)
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc


class ServingServicer(serving_pb2_grpc.ServingServiceServicer):
    def __init__(self, control: Callable[[], ControlPlane]) -> None:
        """``control`` returns the running control plane (built when the service starts)."""
        self._control = control

    @property
    def control(self) -> ControlPlane:
        return self._control()

    async def CreateRollout(self, request: Any, context: Any) -> pb.Rollout:
        return rollout_to_pb(await self.control.rollouts.create(
            rollout_from_pb(request.rollout),
            override_reason=request.validation_override_reason))

    async def GetRollout(self, request: Any, context: Any) -> pb.Rollout:
        return rollout_to_pb(await self.control.rollouts.get(request.name))

    async def ListRollouts(self, request: Any, context: Any) -> pb.ListRolloutsResponse:
        rows, token = await self.control.rollouts.list_rollouts(
            request.page_size, request.page_token, request.deployment)
        return pb.ListRolloutsResponse(rollouts=[rollout_to_pb(r) for r in rows],
                                       next_page_token=token)

    async def PauseRollout(self, request: Any, context: Any) -> pb.Rollout:
        return rollout_to_pb(await self.control.rollouts.pause(request.name, request.reason))

    async def ResumeRollout(self, request: Any, context: Any) -> pb.Rollout:
        return rollout_to_pb(await self.control.rollouts.resume(request.name, request.reason))

    async def AbortRollout(self, request: Any, context: Any) -> pb.Rollout:
        return rollout_to_pb(await self.control.rollouts.abort(request.name, request.reason))

    async def ListRolloutEvents(self, request: Any, context: Any
                                ) -> pb.ListRolloutEventsResponse:
        rows, token = await self.control.rollouts.events(request.name, request.page_size,
                                                         request.page_token)
        return pb.ListRolloutEventsResponse(events=[rollout_event_to_pb(e) for e in rows],
                                            next_page_token=token)

    async def WatchRolloutEvents(self, request: Any, context: Any) -> AsyncIterator[Any]:
        async for e in self.control.rollouts.watch(request.name, request.after_sequence):
            yield rollout_event_to_pb(e)

    async def CreateDeployment(self, request: Any, context: Any) -> pb.Deployment:
        return deployment_to_pb(await self.control.deployments.create(
            deployment_from_pb(request.deployment),
            override_reason=request.validation_override_reason))

    async def GetDeployment(self, request: Any, context: Any) -> pb.Deployment:
        return deployment_to_pb(await self.control.deployments.get(request.name))

    async def ListDeployments(self, request: Any, context: Any) -> pb.ListDeploymentsResponse:
        views, token = await self.control.deployments.list_deployments(
            request.page_size, request.page_token, request.model)
        return pb.ListDeploymentsResponse(deployments=[deployment_to_pb(v) for v in views],
                                          next_page_token=token)

    async def UpdateDeployment(self, request: Any, context: Any) -> pb.Deployment:
        paths = list(request.update_mask.paths)
        return deployment_to_pb(await self.control.deployments.update(
            deployment_from_pb(request.deployment), paths,
            override_reason=request.validation_override_reason))

    async def DeleteDeployment(self, request: Any, context: Any) -> empty_pb2.Empty:
        await self.control.deployments.delete(request.name, request.etag)
        return empty_pb2.Empty()

    async def SetTrafficSplit(self, request: Any, context: Any) -> pb.Deployment:
        return deployment_to_pb(await self.control.deployments.set_traffic_split(
            request.name, routes_from_pb(request.traffic_split), request.etag,
            override_reason=request.validation_override_reason))

    async def CreateBatchJob(self, request: Any, context: Any) -> pb.BatchJob:
        m = request.batch_job
        job = await self.control.batches.create(
            deployment=m.deployment,
            target=target_from_pb(m.target) if m.HasField("target") else None,
            dataset=m.dataset, parquet_uri=m.parquet_uri, output_uri=m.output_uri,
            logging_enabled=logging_from_pb(m.prediction_logging))
        return batch_job_to_pb(job)

    async def GetBatchJob(self, request: Any, context: Any) -> pb.BatchJob:
        return batch_job_to_pb(await self.control.batches.get(request.id))

    async def ListBatchJobs(self, request: Any, context: Any) -> pb.ListBatchJobsResponse:
        jobs, token = await self.control.batches.list_jobs(
            request.page_size, request.page_token, request.deployment)
        return pb.ListBatchJobsResponse(batch_jobs=[batch_job_to_pb(j) for j in jobs],
                                        next_page_token=token)

    async def ExportBento(self, request: Any, context: Any) -> pb.ExportBentoResponse:
        result = await self.control.exporter.export(
            request.name,
            target_from_pb(request.target) if request.HasField("target") else None,
            request.output_path)
        return pb.ExportBentoResponse(bento_tag=result.bento_tag, path=result.path,
                                      bento_model_tag=result.bento_model_tag)
