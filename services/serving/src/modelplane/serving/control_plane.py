"""What the ``ServingService`` answers from: the deployments, batch jobs, rollouts and
Bento export of a started service (built by :class:`.runtime.ServingRuntime`)."""

from __future__ import annotations

from dataclasses import dataclass

from modelplane.serving.batch_runner import BatchRunner
from modelplane.serving.bento_export import BentoExporter
from modelplane.serving.deployment_service import DeploymentService
from modelplane.serving.rollout_controller import Rollouts


@dataclass(frozen=True)
class ControlPlane:
    deployments: DeploymentService
    batches: BatchRunner
    rollouts: Rollouts
    exporter: BentoExporter
