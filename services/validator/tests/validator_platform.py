"""A real platform slice for the validator's tests: the registry (the session's shared one,
gRPC in-process plus its real ``mlflow server`` child), the featurestore (embedded Feast
stores), observability, optionally serving (BentoML, models from the registry) and the
validator, all with API keys."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from registry_testenv import RegistryEnv

from modelplane.featurestore.runtime import build_spec as build_featurestore
from modelplane.featurestore.settings import FeatureStoreSettings
from modelplane.featurestore.v1 import featurestore_pb2_grpc
from modelplane.kit.clients import channel
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.main import build as build_observability
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.v1 import observability_pb2_grpc
from modelplane.registry.v1 import registry_pb2_grpc
from modelplane.validator.runtime import ValidatorRuntime, build_spec
from modelplane.validator.settings import ValidatorSettings
from modelplane.validator.v1 import validator_pb2_grpc


@dataclass
class Platform:
    root: Path
    environ: dict[str, str]
    admin_key: str
    reader_key: str
    mlflow_uri: str
    validator_address: str
    validator: validator_pb2_grpc.ValidatorServiceStub
    registry: registry_pb2_grpc.ModelRegistryServiceStub
    observability: observability_pb2_grpc.ObservabilityServiceStub
    featurestore: featurestore_pb2_grpc.FeatureStoreServiceStub
    channels: list[grpc.aio.Channel]
    serving: Any = None  # serving_pb2_grpc.ServingServiceStub when started with serving=True

    @contextlib.contextmanager
    def mlflow(self) -> Iterator[Any]:
        """The stock MLflow client against the registry's tracking server, with the admin key."""
        import mlflow

        old = os.environ.get("MLFLOW_TRACKING_TOKEN")
        os.environ["MLFLOW_TRACKING_TOKEN"] = self.admin_key
        mlflow.set_tracking_uri(self.mlflow_uri)
        mlflow.set_registry_uri(self.mlflow_uri)  # not one another module left set
        try:
            yield mlflow
        finally:
            if old is not None:
                os.environ["MLFLOW_TRACKING_TOKEN"] = old


@contextlib.asynccontextmanager
async def _serving(root: Path, environ: dict[str, str]) -> AsyncIterator[str]:
    """Serving (models pulled from the registry, BentoML's store under ``root``); its address."""
    environ.update({"MODELPLANE_SERVING_ADDR": "127.0.0.1:0",
                    "MODELPLANE_SERVING_HTTP_ADDR": "127.0.0.1:0",
                    "MODELPLANE_SERVING_MODEL_SOURCE": "registry",
                    "MODELPLANE_SERVING_FEATURESTORE_TARGET": "none",
                    "MODELPLANE_SERVING_OBSERVABILITY_TARGET": "none",
                    "BENTOML_HOME": str(root / "bentoml"),
                    "BENTOML_DO_NOT_TRACK": "True"})
    from modelplane.serving.runtime import ServingRuntime
    from modelplane.serving.settings import ServingSettings

    settings = ServingSettings.from_env(environ)
    server = ServingRuntime(settings)
    async with running(server.spec, settings.service) as svc:
        yield svc.address


@contextlib.asynccontextmanager
async def platform(root: Path, registry: RegistryEnv, validator_database_url: str | None = None,
                   serving: bool = False) -> AsyncIterator[Platform]:
    """The services around ``registry`` (the session's shared one: the tests' model names
    are their own), all checking that registry's API keys."""
    keys_file = registry.keys_file
    admin, reader = registry.keys["admin"], registry.keys["reader"]
    # The validator runs with its own service identity: the registry accepts validation
    # results only from it (never from a person's key, admin or not).
    validator_key = registry.service_key("validator")
    environ = {
        **os.environ,
        "MODELPLANE_DATA_DIR": str(root / "data"),
        "MODELPLANE_AUTH": "on",
        "MODELPLANE_API_KEYS_FILE": str(keys_file),
        "MODELPLANE_API_KEY": admin,
        "MODELPLANE_REGISTRY_TARGET": registry.address,
        "MODELPLANE_OBSERVABILITY_ADDR": "127.0.0.1:0",
        "MODELPLANE_OBSERVABILITY_HTTP_ADDR": "off",
        "MODELPLANE_VALIDATOR_ADDR": "127.0.0.1:0",
        "MODELPLANE_VALIDATOR_STORAGE_ROOTS": str(root),  # the tests' parquet datasets
        "MODELPLANE_FEATURESTORE_ADDR": "127.0.0.1:0",
    }
    environ.pop("MLFLOW_TRACKING_URI", None)
    if validator_database_url:
        environ["MODELPLANE_VALIDATOR_DATABASE_URL"] = validator_database_url
    obs_settings = ObservabilitySettings.from_service(ServiceSettings.from_env("observability",
                                                                               environ))
    obs_spec, _ = build_observability(obs_settings)
    fs_service = ServiceSettings.from_env("featurestore", environ)
    fs_spec, _ = build_featurestore(fs_service, FeatureStoreSettings(
        data_dir=fs_service.data_dir, project="v" + uuid.uuid4().hex[:8]))
    async with running(obs_spec, obs_settings.service) as obs, \
            running(fs_spec, fs_service) as fs:
        environ["MODELPLANE_OBSERVABILITY_TARGET"] = obs.address
        environ["MODELPLANE_FEATURESTORE_TARGET"] = fs.address
        serving_address = ""
        async with contextlib.AsyncExitStack() as stack:
            if serving:
                serving_address = await stack.enter_async_context(_serving(root, environ))
                environ["MODELPLANE_SERVING_TARGET"] = serving_address
            else:
                environ["MODELPLANE_VALIDATOR_SERVING"] = "off"
            settings = ValidatorSettings.from_service(ServiceSettings.from_env(
                "validator", {**environ, "MODELPLANE_API_KEY": validator_key}))
            val = await stack.enter_async_context(
                running(build_spec(ValidatorRuntime(settings)), settings.service))
            service = obs_settings.service  # its key is the admin's: the test talks with it
            channels = [channel(address, service, tracing=False) for address in
                        (val.address, registry.address, obs.address, fs.address, serving_address)
                        if address]
            try:
                yield Platform(
                    root=root, environ=environ, admin_key=admin, reader_key=reader,
                    mlflow_uri=registry.mlflow_uri, validator_address=val.address,
                    validator=validator_pb2_grpc.ValidatorServiceStub(channels[0]),
                    registry=registry_pb2_grpc.ModelRegistryServiceStub(channels[1]),
                    observability=observability_pb2_grpc.ObservabilityServiceStub(channels[2]),
                    featurestore=featurestore_pb2_grpc.FeatureStoreServiceStub(channels[3]),
                    channels=channels,
                    serving=_serving_stub(channels[4]) if serving_address else None)
            finally:
                for ch in channels:
                    await ch.close()


def _serving_stub(ch: grpc.aio.Channel) -> Any:
    from modelplane.serving.v1 import serving_pb2_grpc

    return serving_pb2_grpc.ServingServiceStub(ch)
