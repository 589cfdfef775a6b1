"""The validator's parts wired together, on the kit's ``ServiceRuntime``: the run store,
channels to the registry (always), the featurestore, observability and serving (when
the settings name them), and the ``ValidationService`` over them, which resumes the
runs an earlier process left unfinished before the kit reports SERVING.
"""

from __future__ import annotations

import asyncio
import logging

from modelplane.kit.locations import StoragePolicy
from modelplane.kit.runtime import ServiceRuntime
from modelplane.kit.server import Servicer, ServiceSpec
from modelplane.validator.adapters.datasets import DatasetSources
from modelplane.validator.adapters.mlflow_models import MlflowModelLoader
from modelplane.validator.adapters.observability import (
    ObservabilityBaselineReader,
    ObservabilityBaselineSink,
)
from modelplane.validator.adapters.registry import RegistryClient
from modelplane.validator.adapters.serving import ServingLoad
from modelplane.validator.api import ValidatorServicer
from modelplane.validator.service import ValidationService
from modelplane.validator.settings import ValidatorSettings
from modelplane.validator.store import RunStore
from modelplane.validator.v1 import validator_pb2_grpc

log = logging.getLogger("modelplane.validator")
SERVICE_NAME = "modelplane.validator.v1.ValidatorService"


class ValidatorRuntime(ServiceRuntime[ValidationService]):
    """The parts of a running validator, built by ``start`` (inside the server's loop)."""

    def __init__(self, settings: ValidatorSettings) -> None:
        super().__init__("validator")
        self.settings = settings
        self.store: RunStore | None = None
        self.api = ValidatorServicer(self.current)

    async def build(self) -> ValidationService:
        s = self.settings
        svc = s.service
        # Registered with the base as they open, closed newest first by stop and by a
        # start that fails later: the runs end (cancelled, awaited) before the store
        # closes, and both before the channels they use (the base closes those last).
        store = self.store = await asyncio.to_thread(RunStore, s.database_url)
        self.closing(lambda: asyncio.to_thread(store.close), "the run store")
        registry_channel = self.channel(svc.target("registry"), svc)
        fs_channel = self.channel(svc.target("featurestore"), svc) if s.featurestore else None
        sink = None
        reader = None
        if s.observability:
            obs_channel = self.channel(svc.target("observability"), svc)
            sink = ObservabilityBaselineSink(obs_channel)
            reader = ObservabilityBaselineReader(obs_channel)
        load = None
        if s.serving:
            serving_channel = self.channel(svc.target("serving"), svc)
            load = ServingLoad(serving_channel, asyncio.get_running_loop())
        service = ValidationService(
            self.store, RegistryClient(registry_channel),
            MlflowModelLoader(s.data_dir / "models", s.data_dir / "reports", api_key=svc.api_key),
            DatasetSources(StoragePolicy.for_service(svc), fs_channel,
                           arrow_limits=svc.arrow_limits), sink,
            max_concurrent_runs=s.max_concurrent_runs,
            max_baseline_rows=s.max_baseline_rows, baseline_source=reader, deployments=load)
        self.closing(service.close, "the validation runs")
        await service.recover()
        return service


def build_spec(runtime: ValidatorRuntime) -> ServiceSpec:
    return ServiceSpec(
        name="validator",
        servicers=[Servicer(validator_pb2_grpc.add_ValidatorServiceServicer_to_server, runtime.api,
                            SERVICE_NAME)],
        on_start=runtime.start, on_stop=runtime.stop)
