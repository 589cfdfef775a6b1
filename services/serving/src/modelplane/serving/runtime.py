"""The serving process's parts wired together: settings → peers (registry, observability,
featurestore; injectable) → prediction log → loaded models and the request path → the
control plane (deployments, batch jobs, rollouts, Bento export) → the gRPC servicers and
the REST app. Started and stopped by the kit hooks (``on_start`` / ``on_stop``).

Modules that import BentoML are imported only once :func:`configure_bentoml_home` has
pointed BentoML at its store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

from modelplane.kit.runtime import ServiceRuntime, SideServer
from modelplane.serving.settings import ServingSettings

if TYPE_CHECKING:
    from modelplane.serving.control_plane import ControlPlane

log = logging.getLogger("modelplane.serving")


def configure_bentoml_home(settings: ServingSettings) -> None:
    """BentoML's model store lives under the data dir unless BENTOML_HOME says otherwise.
    Must run before ``bentoml`` is imported."""
    home = settings.bentoml_home or (settings.data_dir / "bentoml")
    os.environ.setdefault("BENTOML_HOME", str(home))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")


class ServingRuntime(ServiceRuntime["ControlPlane"]):
    """Everything the serving process runs, wired together (sources may be injected), on
    the kit's ``ServiceRuntime``: its STARTING guard, the REST side server, and the peer
    channels (made here through the base's ``channel``, so ``stop`` closes them; make the
    runtime inside the running loop, as ``main`` does)."""

    def __init__(self, settings: ServingSettings, *, source: Any = None, sink: Any = None,
                 features: Any = None, dataset_reader: Any = None,
                 rollout_evidence: Any = None, alias_mover: Any = None,
                 rollout_alerts: Any = None) -> None:
        super().__init__("serving service")
        configure_bentoml_home(settings)
        from tritonclient.grpc import service_pb2_grpc

        from modelplane.kit.auth import ApiKeyStore
        from modelplane.kit.locations import StoragePolicy
        from modelplane.kit.server import Servicer, ServiceSpec
        from modelplane.serving.adapters.online_features import FeastServingClient
        from modelplane.serving.api import ServingServicer
        from modelplane.serving.batch_runner import BatchRunner
        from modelplane.serving.bento_export import BentoExporter
        from modelplane.serving.bento_models import BentoModelRepository
        from modelplane.serving.deployment_service import DeploymentService
        from modelplane.serving.deployment_store import DeploymentStore
        from modelplane.serving.loaded_models import LoadedModels
        from modelplane.serving.oip_grpc import METHOD_ACCESS, SERVICE_NAME, InferenceServicer
        from modelplane.serving.oip_http import OipHttpApp
        from modelplane.serving.prediction_log import DiscardingSink, PredictionLogger
        from modelplane.serving.predictor import Predictor
        from modelplane.serving.serving_metrics import ServingMetrics
        from modelplane.serving.v1 import serving_pb2_grpc
        from modelplane.serving.write_ahead_log import FsyncPolicy

        self.settings = settings
        svc = settings.service
        if alias_mover is None and settings.model_source == "registry":
            from modelplane.serving.adapters.rollout_adapters import RegistryAliasMover

            alias_mover = RegistryAliasMover(self.channel(svc.target("registry"), svc))
        if rollout_evidence is None and settings.observability_target:
            from modelplane.serving.adapters.rollout_adapters import ObservabilityEvidence

            rollout_evidence = ObservabilityEvidence(
                self.channel(settings.observability_target, svc))
        if rollout_alerts is None and settings.observability_target:
            from modelplane.serving.adapters.rollout_adapters import ObservabilityAlerts

            rollout_alerts = ObservabilityAlerts(self.channel(settings.observability_target, svc))
        self._rollout_alerts = rollout_alerts
        self._rollout_evidence = rollout_evidence
        self._alias_mover = alias_mover
        if source is None:
            if settings.model_source == "registry":
                from modelplane.serving.adapters.registry_source import RegistryModelSource

                source = RegistryModelSource(self.channel(svc.target("registry"), svc),
                                             svc.api_key)
            else:
                from modelplane.serving.model_source import MlflowModelSource

                source = MlflowModelSource(settings.model_source,
                                           poll_seconds=settings.alias_poll_seconds)
        if sink is None:
            if settings.observability_target:
                from modelplane.serving.adapters.observability_sink import ObservabilitySink

                sink = ObservabilitySink(self.channel(settings.observability_target, svc))
            else:
                sink = DiscardingSink()
        if features is None and settings.featurestore_target:
            features = FeastServingClient(self.channel(settings.featurestore_target, svc))
        if dataset_reader is None and settings.featurestore_target:
            from modelplane.serving.adapters.dataset_reader import FeaturestoreDatasetReader

            dataset_reader = FeaturestoreDatasetReader(
                self.channel(settings.featurestore_target, svc), svc.arrow_limits)
        self.metrics = ServingMetrics()
        self.logger = PredictionLogger(sink, settings.spool_dir,
                                       batch_size=settings.log_batch_size,
                                       flush_seconds=settings.log_flush_seconds,
                                       fsync=FsyncPolicy(settings.log_fsync,
                                                         settings.log_fsync_interval_ms / 1000),
                                       on_rejected=lambda deployment, n: self.metrics.log_rejected
                                       .labels(deployment).inc(n))
        self.models = LoadedModels(
            source, BentoModelRepository(workers_per_model=settings.workers_per_model),
            self.metrics, load_retry_budget=settings.load_retry_budget,
            exhausted_retry_seconds=settings.load_retry_exhausted_seconds)
        self.models.require_validation = settings.require_validation
        self.predictor = Predictor(self.models, self.logger, self.metrics, features)
        self.change_feed: Any = None
        self.store: Any = None
        self._dataset_reader = dataset_reader
        self.deployments: Any = None
        self.batches: Any = None
        self.rollouts: Any = None
        self.rollout_lease: Any = None
        self.http = OipHttpApp(self.predictor, auth_enabled=svc.auth_enabled,
                               keys=ApiKeyStore(svc.api_keys_file) if svc.auth_enabled else None,
                               max_body_bytes=settings.max_body_bytes)
        self._http: SideServer | None = None
        self._DeploymentStore = DeploymentStore
        self._DeploymentService = DeploymentService
        self._BatchRunner = BatchRunner
        #: what callers may name: batch input and output, Bento export paths
        self.storage = StoragePolicy.for_service(svc)
        self.exporter = BentoExporter(self.models, settings.data_dir / "bentos", self.storage)
        self.api = ServingServicer(self.current)
        self.spec = ServiceSpec(
            name="serving",
            servicers=[
                Servicer(serving_pb2_grpc.add_ServingServiceServicer_to_server, self.api,
                         "modelplane.serving.v1.ServingService"),
                Servicer(service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server,
                         InferenceServicer(self.predictor), SERVICE_NAME),
            ],
            on_start=self.start, on_stop=self.stop, method_access=METHOD_ACCESS)

    @property
    def http_port(self) -> int:
        return self._http.port if self._http is not None else 0

    @property
    def http_address(self) -> str:
        host = self.settings.http_addr.rsplit(":", 1)[0] or "127.0.0.1"
        return f"{host}:{self.http_port}"

    async def build(self) -> ControlPlane:
        # Each part is registered with the base as it opens; stop (after the REST server
        # and the background tasks, before the peer channels) and a start that fails
        # midway close them newest first: the change feed, the rollout lease (handed
        # over at once), batches, the predictor (flushes or spools every prediction
        # record), the loaded models, the store.
        store = self.store = await asyncio.to_thread(self._DeploymentStore,
                                                     self.settings.store_url)
        self.closing(lambda: asyncio.to_thread(store.close), "the deployment store")
        self.closing(self.models.close, "the loaded models")
        self.closing(self.predictor.close, "the predictor")
        self.deployments = self._DeploymentService(
            self.store, self.models, require_validation=self.settings.require_validation)
        self.batches = self._BatchRunner(self.store, self.models, self.logger,
                                         self.settings.data_dir / "batch-output",
                                         self.storage, self._dataset_reader)
        self.closing(self.batches.close, "the batch jobs")
        await self.deployments.start()
        from modelplane.serving.control_plane import ControlPlane
        from modelplane.serving.rollout_controller import RolloutLease, Rollouts

        self.rollout_lease = RolloutLease(self.store, self.settings.rollout_lease_seconds)
        self.closing(self._release_rollout_lease, "the rollout lease")
        self.rollouts = Rollouts(self.store, self.deployments, evidence=self._rollout_evidence,
                                 aliases=self._alias_mover, holder=self.rollout_lease.holder,
                                 alerts=self._rollout_alerts)
        control = ControlPlane(self.deployments, self.batches, self.rollouts, self.exporter)
        self.spawn(self.predictor.route_stats.run(
            self.store, self.settings.route_stats_flush_seconds), "route-stats")
        self.spawn(self.rollout_lease.run(), "rollout-lease")
        self.spawn(self.rollouts.run(self.rollout_lease, self.settings.rollout_tick_seconds),
                   "rollout-controller")
        if self.store.notifies:  # PostgreSQL: other replicas may change deployments too
            import dataclasses

            from modelplane.serving.deployment_sync import DeploymentChangeFeed

            self.change_feed = DeploymentChangeFeed(
                self.settings.store_url, self.deployments.sync, self.deployments.resync,
                metrics=self.metrics)
            self.models.change_feed_state = lambda: dataclasses.asdict(self.change_feed.state())
            self.closing(self.change_feed.close, "the deployment change feed")
            self.change_feed.start()
        self.predictor.start()
        self.models.start()
        if self.settings.http_addr:
            self._http = await self.serve_http(self.http.app, self.settings.http_addr,
                                               "serving REST (OIP v2, /metrics)")
        return control

    async def _release_rollout_lease(self) -> None:
        with contextlib.suppress(Exception):  # a clean stop hands the lease over at once
            await asyncio.to_thread(self.rollout_lease.release)
