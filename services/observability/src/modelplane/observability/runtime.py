"""The service's parts wired together: store, ingest, evaluations, monitors,
the alert hub and the dashboard's HTTP server, on the kit's ``ServiceRuntime``
(its ``start`` / ``stop`` are the kit server's hooks; ``build`` opens the store,
starts the background parts and the dashboard, and returns the opened store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

from modelplane.kit.locations import StoragePolicy
from modelplane.kit.outbound import OutboundPolicy
from modelplane.kit.runtime import ServiceRuntime
from modelplane.observability.analysis_limits import AnalysisGate
from modelplane.observability.evaluations import Evaluations
from modelplane.observability.ingest import RecordIngestor
from modelplane.observability.lineage import LineagePeers
from modelplane.observability.monitors import AlertHub, AlertRelay, MonitorLease, Monitors
from modelplane.observability.records import utcnow
from modelplane.observability.settings import WEBHOOK_ALLOW_SETTING, ObservabilitySettings
from modelplane.observability.store.base import EvaluationStore
from modelplane.observability.store.encoding import Catalog
from modelplane.observability.webhooks import WebhookDispatcher, WebhookSettings

log = logging.getLogger("modelplane.observability")


def open_store(settings: ObservabilitySettings) -> EvaluationStore:
    if settings.clickhouse_url:
        from modelplane.observability.store.clickhouse import ClickHouseStore
        from modelplane.observability.store.clickhouse_client import ClickHouseLocation

        where = ClickHouseLocation.parse(settings.clickhouse_url, settings.service.data_dir)
        # alerts, deliveries, the lease and documents: a store with transactions
        return ClickHouseStore(where.connect,
                               _open_store(replace(settings, clickhouse_url=None)))
    return _open_store(settings)


def _open_store(settings: ObservabilitySettings) -> EvaluationStore:
    if settings.database_url:
        from modelplane.observability.store.postgres import PostgresStore

        return PostgresStore(settings.database_url, settings.db_pool_size,
                             max_record_columns=settings.max_record_columns)
    from modelplane.observability.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.embedded_path, settings.duckdb_memory_limit,
                         settings.duckdb_threads)


class ObservabilityRuntime(ServiceRuntime[EvaluationStore]):
    def __init__(self, settings: ObservabilitySettings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__("observability")
        self.settings = settings
        self.store = open_store(settings)
        #: which parquet files callers may import (ImportRecords, SetBaseline)
        self.storage = StoragePolicy.for_service(settings.service)
        self.catalogs: dict[str, Catalog] = {}
        self.catalog_lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max(settings.analysis_threads, 1),
                                           thread_name_prefix="obs-analysis")
        self.ingestor = RecordIngestor(self.store, self.catalogs, self.catalog_lock,
                                       settings.ingest_queue_batches, clock,
                                       settings.ingest_writers)
        self.evaluations = Evaluations(self.store, self.catalogs, self.catalog_lock,
                                       self.executor, clock, settings.max_analysis_rows,
                                       explain_budget=settings.explain_budget,
                                       exact_rows=settings.exact_rows,
                                       record_retention_days=settings.retention.record_days)
        #: one per process: the compute RPCs and the dashboard's pages share its slots
        self.analyses = AnalysisGate(settings.max_concurrent_analyses,
                                     settings.max_analysis_rows,
                                     settings.analysis_wait_seconds)
        self.hub = AlertHub()
        self.outbound = OutboundPolicy.parse(WEBHOOK_ALLOW_SETTING, settings.webhook_allow)
        self.lease = MonitorLease(self.store, settings.monitor_lease_seconds)
        self.relay = AlertRelay(self.store, self.hub)
        self.webhooks = WebhookDispatcher(self.store, self.outbound, self.lease, WebhookSettings(
            workers=settings.webhook_workers, timeout_seconds=settings.webhook_timeout_seconds,
            max_attempts=settings.webhook_max_attempts,
            backoff_seconds=settings.webhook_backoff_seconds,
            backoff_cap_seconds=settings.webhook_backoff_cap_seconds))
        from modelplane.observability.retention import Retention

        #: deletes what is older than the retention settings (the lease holder only)
        self.retention = Retention(self.store, settings.retention, clock)
        self.monitors = Monitors(self.store, self.evaluations, self.hub, clock, self.outbound,
                                 on_delivery=self.webhooks.wake)
        self.http_port: int | None = None
        self._registry_channel: Any = None
        #: GetPredictionLineage's peers (channels made in start(), on the service's loop)
        self.lineage_peers = LineagePeers()
        from modelplane.observability.adapters.rollout_pages import RolloutPageSource

        #: serving's rollouts for the dashboard (a channel is made at start, if configured)
        self.serving = RolloutPageSource(None)

    async def build(self) -> EvaluationStore:
        # What this opens is registered with the base as it opens; stop (after the
        # dashboard and the background tasks, before the peer channels) and a start
        # that fails midway close it newest first: the metrics collector, webhooks,
        # the lease (handed over at once), the store, the analysis threads.
        self.closing(lambda: self.executor.shutdown(wait=False), "the analysis threads")
        if self.settings.explain_models:
            self._start_model_loader()
        self._start_lineage_peers()
        await asyncio.to_thread(self.store.open)
        self.closing(lambda: asyncio.to_thread(self.store.close), "the evaluation store")
        catalogs = await asyncio.to_thread(self.store.load_catalogs)
        with self.catalog_lock:
            self.catalogs.update(catalogs)
        self.closing(self._release_lease, "the monitor lease")
        self.closing(self.webhooks.close, "the webhook dispatcher")
        # The lease also decides who sends webhooks, so it runs with the scheduler off too.
        self.spawn(self.lease.run())
        self.spawn(self.relay.run())
        self.spawn(self.webhooks.run())
        self.spawn(self.retention.run(self.lease))
        if self.settings.monitor_tick_seconds > 0:
            self.spawn(self.monitors.run(self.settings.monitor_tick_seconds, self.lease))
        if self.settings.serving_target:
            self._start_serving_channel(self.settings.serving_target)
        if self.settings.http_addr:
            await self._start_http(self.settings.http_addr)
        from modelplane.observability.ops_metrics import COLLECTOR

        COLLECTOR.add(self)
        self.closing(lambda: COLLECTOR.remove(self), "the operations metrics")
        return self.store

    async def _release_lease(self) -> None:
        with contextlib.suppress(Exception):  # a clean stop hands the lease over at once
            await asyncio.to_thread(self.lease.release)

    def _start_model_loader(self) -> None:
        """Registered versions for ExplainPredictions: a channel to the registry (made
        here, on the service's loop; it connects at the first explanation)."""
        from modelplane.observability.adapters.model_loader import RegistryModelLoader

        svc = self.settings.service
        self._registry_channel = self.channel(svc.target("registry"), svc)
        self.evaluations.models = RegistryModelLoader(
            self._registry_channel, asyncio.get_running_loop(), svc.data_dir / "models",
            api_key=svc.api_key, cache_size=self.settings.explain_model_cache)

    def _start_lineage_peers(self) -> None:
        """Channels to the registry, featurestore, validator and serving for
        GetPredictionLineage (they connect at the first call; a peer that is down
        makes that part of the answer missing, not the call fail)."""
        from modelplane.observability.adapters.featurestore import FeaturestoreDatasets
        from modelplane.observability.adapters.registry import RegistryVersions
        from modelplane.observability.adapters.serving import ServingRollouts
        from modelplane.observability.adapters.validator import ValidatorReports

        svc = self.settings.service

        def peer(name: str) -> Any:
            if name == "registry" and self._registry_channel is not None:
                return self._registry_channel
            return self.channel(svc.target(name), svc)

        self.lineage_peers = LineagePeers(
            RegistryVersions(peer("registry")), FeaturestoreDatasets(peer("featurestore")),
            ValidatorReports(peer("validator")), ServingRollouts(peer("serving")))

    def _start_serving_channel(self, target: str) -> None:
        """Serving's rollouts for the dashboard's rollout pages (optional: the pages say
        when serving is not configured or not reachable)."""
        from modelplane.observability.adapters.rollout_pages import RolloutPageSource

        self.serving = RolloutPageSource(self.channel(target, self.settings.service), target)

    async def _start_http(self, addr: str) -> None:
        from modelplane.observability.dashboard import dashboard_app

        server = await self.serve_http(dashboard_app(self), addr, "observability dashboard")
        self.http_port = server.port
