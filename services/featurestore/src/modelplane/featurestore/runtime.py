"""The featurestore's parts wired together, on the kit's ``ServiceRuntime``.

Settings -> the parts both servicers call (``parts.py``: the Feast repository,
record store, datasets, lookup plans, online lookup, writes, quality reports).
``build`` makes them in the server's loop, starts the definitions refresher
and applies the configured repo directory (``MODELPLANE_FEATURESTORE_REPO``); until then calls are
refused ``UNAVAILABLE``/``STARTING``. ``build_spec`` is the kit server's spec: our
contract and Feast's ``feast.serving.ServingService`` on one port.
"""

from __future__ import annotations

import asyncio
import logging

from modelplane.featurestore.api import FeatureStoreServicer
from modelplane.featurestore.convert import TableReader
from modelplane.featurestore.feast_serving import METHOD_ACCESS, SERVICE_NAME, FeastServingServicer
from modelplane.featurestore.feature_repository import FeatureRepository
from modelplane.featurestore.parts import FeatureStoreParts, assemble
from modelplane.featurestore.settings import FeatureStoreSettings
from modelplane.featurestore.wire_handlers import with_wire_responses
from modelplane.kit.auth import Role
from modelplane.kit.runtime import ServiceRuntime
from modelplane.kit.server import Servicer, ServiceSpec
from modelplane.kit.settings import ServiceSettings

log = logging.getLogger("modelplane.featurestore")
OUR_SERVICE = "modelplane.featurestore.v1.FeatureStoreService"


class FeatureStoreRuntime(ServiceRuntime[FeatureStoreParts]):
    def __init__(self, settings: FeatureStoreSettings) -> None:
        super().__init__("featurestore")
        self.settings = settings

    async def build(self) -> FeatureStoreParts:
        # the parts are registered with the base as they open: stop closes them (the
        # online store, the record store, the repository), and so does a failed start
        parts = assemble(self.settings, self.closing)
        self.spawn(self._refresh_definitions_forever(parts.repository), "feast-registry-refresh")
        if self.settings.repo_path:
            applied = await asyncio.to_thread(parts.repository.apply_directory,
                                              self.settings.repo_path, caller_named=False)
            log.info("applied feature repo %s: %d views", self.settings.repo_path,
                     len(applied.feature_views))
        return parts

    async def _refresh_definitions_forever(self, repository: FeatureRepository) -> None:
        """Re-read the registry now and then: another replica may have changed it."""
        while True:
            await asyncio.sleep(self.settings.metadata_refresh_seconds)
            try:
                await asyncio.to_thread(repository.refresh)
            except Exception:  # keep serving from the last good definitions
                log.warning("registry refresh failed", exc_info=True)


def build_spec(settings: ServiceSettings, fs_settings: FeatureStoreSettings | None = None
               ) -> tuple[ServiceSpec, FeatureStoreRuntime]:
    """The service spec and its runtime (the parts are built by the server's start)."""
    from feast.protos.feast.serving import ServingService_pb2_grpc

    from modelplane.featurestore.v1 import featurestore_pb2_grpc

    fs = fs_settings or FeatureStoreSettings.from_service(settings)
    runtime = FeatureStoreRuntime(fs)
    tables = TableReader(fs.storage_policy, settings.arrow_limits)
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
                     FeatureStoreServicer(runtime.current, tables), OUR_SERVICE),
            Servicer(with_wire_responses(ServingService_pb2_grpc.add_ServingServiceServicer_to_server,
                                         SERVICE_NAME, ["GetOnlineFeatures"]),
                     FeastServingServicer(runtime.current), SERVICE_NAME),
        ],
        on_start=runtime.start, on_stop=runtime.stop, method_access=access)
    return spec, runtime
