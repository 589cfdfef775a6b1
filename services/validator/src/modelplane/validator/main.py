"""Entry point: ``modelplane-validator`` / ``python -m modelplane.validator.main``."""

from __future__ import annotations

import asyncio
import logging

from modelplane.kit.clients import channel
from modelplane.kit.errors import Unavailable
from modelplane.kit.locations import StoragePolicy
from modelplane.kit.server import Servicer, ServiceSpec, serve
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


class ValidatorRuntime:
    """The parts of a running validator, built by ``start`` (inside the server's loop)."""

    def __init__(self, settings: ValidatorSettings) -> None:
        self.settings = settings
        self.service: ValidationService | None = None
        self.store: RunStore | None = None
        self._channels: list = []
        self.api = ValidatorServicer(self.current)

    def current(self) -> ValidationService:
        if self.service is None:
            raise Unavailable("the validator is still starting", reason="STARTING")
        return self.service

    async def start(self) -> None:
        s = self.settings
        svc = s.service
        self.store = await asyncio.to_thread(RunStore, s.database_url)
        registry_channel = channel(svc.target("registry"), svc)
        self._channels.append(registry_channel)
        fs_channel = channel(svc.target("featurestore"), svc) if s.featurestore else None
        if fs_channel is not None:
            self._channels.append(fs_channel)
        sink = None
        reader = None
        if s.observability:
            obs_channel = channel(svc.target("observability"), svc)
            self._channels.append(obs_channel)
            sink = ObservabilityBaselineSink(obs_channel)
            reader = ObservabilityBaselineReader(obs_channel)
        load = None
        if s.serving:
            serving_channel = channel(svc.target("serving"), svc)
            self._channels.append(serving_channel)
            load = ServingLoad(serving_channel, asyncio.get_running_loop())
        self.service = ValidationService(
            self.store, RegistryClient(registry_channel),
            MlflowModelLoader(s.data_dir / "models", s.data_dir / "reports", api_key=svc.api_key),
            DatasetSources(StoragePolicy.for_service(svc), fs_channel,
                           arrow_limits=svc.arrow_limits), sink,
            max_concurrent_runs=s.max_concurrent_runs,
            max_baseline_rows=s.max_baseline_rows, baseline_source=reader, deployments=load)
        await self.service.recover()

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.close()
        for ch in self._channels:
            await ch.close()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)


def build_spec(runtime: ValidatorRuntime) -> ServiceSpec:
    return ServiceSpec(
        name="validator",
        servicers=[Servicer(validator_pb2_grpc.add_ValidatorServiceServicer_to_server, runtime.api,
                            "modelplane.validator.v1.ValidatorService")],
        on_start=runtime.start, on_stop=runtime.stop)


def main() -> None:
    settings = ValidatorSettings.from_env()
    asyncio.run(serve(build_spec(ValidatorRuntime(settings)), settings.service))


if __name__ == "__main__":
    main()
