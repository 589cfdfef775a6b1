"""Entry point: ``modelplane-registry`` / ``python -m modelplane.registry.main``.

Starting order: the registry's own tables, then the MLflow tracking server
(migrations of a new backend store happen here and can take a while), then the
in-process MLflow store and the event hub; only then does the kit report
SERVING. Stopping reverses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field

from modelplane.kit.errors import Unavailable
from modelplane.kit.server import Servicer, ServiceSpec, serve
from modelplane.kit.settings import ServiceSettings
from modelplane.registry.api import RegistryServicer
from modelplane.registry.events import EventHub, make_probe
from modelplane.registry.history import RegistryHistory
from modelplane.registry.mlflow_server import MlflowServer
from modelplane.registry.mlflow_store import MlflowModelStore
from modelplane.registry.registry import ModelRegistry
from modelplane.registry.settings import RegistrySettings
from modelplane.registry.v1 import registry_pb2_grpc

log = logging.getLogger("modelplane.registry")


@dataclass
class RegistryService:
    """The parts of a running registry, built by ``on_start``."""

    settings: RegistrySettings
    mlflow: MlflowServer
    api: RegistryServicer = field(init=False)
    registry: ModelRegistry | None = None
    history: RegistryHistory | None = None
    hub: EventHub | None = None
    watchdog: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.api = RegistryServicer(self.current)

    def current(self) -> ModelRegistry:
        if self.registry is None:
            raise Unavailable("the registry is still starting", reason="STARTING")
        return self.registry

    async def start(self) -> None:
        s = self.settings
        self.history = RegistryHistory(s.database_url)
        await asyncio.to_thread(self.history.create_tables)
        self.mlflow.launch()
        try:
            # Importing MLflow here takes as long as the server's own start: overlap them.
            # The store itself is opened only once the server has migrated the database.
            await asyncio.gather(asyncio.to_thread(_import_mlflow), self.mlflow.wait_ready())
            store = await asyncio.to_thread(MlflowModelStore, s.backend_store_uri,
                                            s.artifacts_destination,
                                            frozenset(s.protected_aliases))
            self.hub = EventHub(self.history, make_probe(self.history), s.event_poll_seconds)
            await self.hub.start()
            self.watchdog = asyncio.get_running_loop().create_task(self.mlflow.supervise())
            self.registry = ModelRegistry(store, self.history, self.hub,
                                          s.promotion_gate(),
                                          s.mlflow_uri, s.cache_size)
        except BaseException:
            await self.mlflow.stop()
            raise

    async def stop(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watchdog
        if self.hub is not None:
            await self.hub.stop()
        await self.mlflow.stop()
        if self.history is not None:
            self.history.close()


def _import_mlflow() -> None:
    import mlflow.store.model_registry.sqlalchemy_store
    import mlflow.store.tracking.sqlalchemy_store
    import mlflow.tracking  # noqa: F401


def build(settings: RegistrySettings) -> tuple[ServiceSpec, RegistryService]:
    service = RegistryService(settings, MlflowServer(settings, settings.service.environ or None))
    spec = ServiceSpec(
        name="registry",
        servicers=[Servicer(registry_pb2_grpc.add_ModelRegistryServiceServicer_to_server,
                            service.api, "modelplane.registry.v1.ModelRegistryService")],
        on_start=service.start,
        on_stop=service.stop,
    )
    return spec, service


def main() -> None:
    settings = RegistrySettings.from_service(ServiceSettings.from_env("registry"))
    # MLflow's store code opens default-URI clients here and there; in the registry's own
    # process the default is the backend store it owns.
    os.environ["MLFLOW_TRACKING_URI"] = settings.backend_store_uri
    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    spec, _ = build(settings)
    asyncio.run(serve(spec, settings.service))


if __name__ == "__main__":
    main()
