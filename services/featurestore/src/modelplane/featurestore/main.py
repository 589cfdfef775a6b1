"""``modelplane-featurestore``: the featurestore gRPC server (ours and Feast's contract, one
port)."""

from __future__ import annotations

import asyncio
import logging

from modelplane.featurestore.api import FeatureStoreServicer, TableReader
from modelplane.featurestore.core import FeatureStoreCore
from modelplane.featurestore.feast_serving import METHOD_ACCESS, SERVICE_NAME, FeastServingServicer
from modelplane.featurestore.settings import FeatureStoreSettings
from modelplane.featurestore.wire_handlers import with_wire_responses
from modelplane.kit.auth import Role
from modelplane.kit.server import Servicer, ServiceSpec, serve
from modelplane.kit.settings import ServiceSettings

log = logging.getLogger("modelplane.featurestore")
OUR_SERVICE = "modelplane.featurestore.v1.FeatureStoreService"


def build_spec(settings: ServiceSettings, fs_settings: FeatureStoreSettings | None = None
               ) -> tuple[ServiceSpec, FeatureStoreCore]:
    """The service spec and its core (built now: Feast's import is slow, do it once)."""
    from feast.protos.feast.serving import ServingService_pb2_grpc

    from modelplane.featurestore.v1 import featurestore_pb2_grpc

    fs = fs_settings or FeatureStoreSettings.from_service(settings)
    core = FeatureStoreCore(fs)
    tables = TableReader(fs.storage_policy, settings.arrow_limits)

    refresher: list[asyncio.Task[None]] = []

    async def on_start() -> None:
        refresher.append(asyncio.create_task(core.refresh_definitions_forever()))
        if fs.repo_path:
            applied = await asyncio.to_thread(core.repository.apply_directory, fs.repo_path,
                                              caller_named=False)
            log.info("applied feature repo %s: %d views", fs.repo_path, len(applied.feature_views))

    async def on_stop() -> None:
        for task in refresher:
            task.cancel()
        await core.close()

    access = dict(METHOD_ACCESS)
    # Our hot path: skip the per-call descriptor lookup (same rule as the contract's option).
    access[f"/{OUR_SERVICE}/GetOnlineFeatures"] = Role.READER
    spec = ServiceSpec(
        name="featurestore",
        servicers=[
            # GetOnlineFeatures answers with wire bytes on both contracts (wire_handlers.py)
            Servicer(with_wire_responses(
                         featurestore_pb2_grpc.add_FeatureStoreServiceServicer_to_server,
                         OUR_SERVICE, ["GetOnlineFeatures"]),
                     FeatureStoreServicer(core, tables), OUR_SERVICE),
            Servicer(with_wire_responses(ServingService_pb2_grpc.add_ServingServiceServicer_to_server,
                                         SERVICE_NAME, ["GetOnlineFeatures"]),
                     FeastServingServicer(core), SERVICE_NAME),
        ],
        on_start=on_start, on_stop=on_stop, method_access=access)
    return spec, core


def main() -> None:
    settings = ServiceSettings.from_env("featurestore")
    spec, _ = build_spec(settings)
    asyncio.run(serve(spec, settings))


if __name__ == "__main__":
    main()
