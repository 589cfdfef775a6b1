"""The registry's parts wired together, on the kit's ``ServiceRuntime``.

Starting order: the registry's own tables, then the MLflow tracking server
(migrations of a new backend store happen here and can take a while), then the
in-process MLflow store and the event hub; only then does the kit report
SERVING (until then calls are refused ``UNAVAILABLE``/``STARTING``). Stopping
reverses it.
"""

from __future__ import annotations

import asyncio
import logging

from modelplane.kit.runtime import ServiceRuntime
from modelplane.kit.server import Servicer, ServiceSpec
from modelplane.registry.api import RegistryServicer
from modelplane.registry.events import EventHub, make_probe
from modelplane.registry.history import RegistryHistory
from modelplane.registry.mlflow_server import MlflowServer
from modelplane.registry.mlflow_store import MlflowModelStore
from modelplane.registry.registry import ModelRegistry
from modelplane.registry.settings import RegistrySettings
from modelplane.registry.v1 import registry_pb2_grpc

log = logging.getLogger("modelplane.registry")
SERVICE_NAME = "modelplane.registry.v1.ModelRegistryService"


class RegistryRuntime(ServiceRuntime[ModelRegistry]):
    """The parts of a running registry, built by ``start`` (the kit's ``on_start``)."""

    def __init__(self, settings: RegistrySettings, mlflow: MlflowServer) -> None:
        super().__init__("registry")
        self.settings = settings
        self.mlflow = mlflow
        self.api = RegistryServicer(self.current)
        self.history: RegistryHistory | None = None
        self.hub: EventHub | None = None

    async def build(self) -> ModelRegistry:
        # Each part is registered with the base as it opens: stop closes them newest
        # first (the hub, MLflow, the history), and so does a start that fails midway.
        # The MLflow watchdog is a spawned task, cancelled by the base before them.
        s = self.settings
        history = self.history = RegistryHistory(s.database_url)
        self.closing(history.close, "the registry history")
        await asyncio.to_thread(history.create_tables)
        self.closing(self.mlflow.stop, "the MLflow server")
        self.mlflow.launch()
        # Importing MLflow here takes as long as the server's own start: overlap them.
        # The store itself is opened only once the server has migrated the database.
        await asyncio.gather(asyncio.to_thread(_import_mlflow), self.mlflow.wait_ready())
        store = await asyncio.to_thread(MlflowModelStore, s.backend_store_uri,
                                        s.artifacts_destination,
                                        frozenset(s.protected_aliases))
        hub = self.hub = EventHub(history, make_probe(history), s.event_poll_seconds)
        self.closing(hub.stop, "the registry event hub")
        await hub.start()
        self.spawn(self.mlflow.supervise(), "mlflow-watchdog")
        return ModelRegistry(store, history, hub, s.promotion_gate(), s.mlflow_uri,
                             s.cache_size)


def _import_mlflow() -> None:
    import mlflow.store.model_registry.sqlalchemy_store
    import mlflow.store.tracking.sqlalchemy_store
    import mlflow.tracking  # noqa: F401


def build(settings: RegistrySettings) -> tuple[ServiceSpec, RegistryRuntime]:
    runtime = RegistryRuntime(settings, MlflowServer(settings, settings.service.environ or None))
    spec = ServiceSpec(
        name="registry",
        servicers=[Servicer(registry_pb2_grpc.add_ModelRegistryServiceServicer_to_server,
                            runtime.api, SERVICE_NAME)],
        on_start=runtime.start,
        on_stop=runtime.stop,
    )
    return spec, runtime
