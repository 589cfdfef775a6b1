"""What the background parts of a replica are doing, on ``/metrics``.

Read at scrape time from the live objects (no bookkeeping on the hot paths):

* ``modelplane_observability_monitor_lease_held``: 1 on the replica that holds
  the monitor scheduler's lease (it evaluates monitors and sends webhooks);
  exactly one replica should read 1.
* ``modelplane_observability_monitor_lease_acquisitions_total``: times this
  replica took the lease (a rising count on several replicas = flapping).
* ``modelplane_observability_alert_listener_connected``: 1 while the replica
  listens for other replicas' alert changes (PostgreSQL LISTEN; the embedded
  store has no other replicas and reads 1 once started).
* ``modelplane_observability_alert_listener_reconnects_total``.
* ``modelplane_observability_webhook_deliveries_total{outcome}``: delivered,
  retried, failed (given up) and refused (address not allowed) by this replica.

Several runtimes in one process (tests) are summed; gauges take the maximum.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from modelplane.observability.monitors import AlertRelay, MonitorLease
    from modelplane.observability.retention import Retention
    from modelplane.observability.webhooks import WebhookDispatcher

PREFIX = "modelplane_observability_"
OUTCOMES = ("delivered", "retried", "failed", "refused")


class ReplicaParts(Protocol):
    """The background parts of a replica read here (``runtime.ObservabilityRuntime``
    registers itself; the runtime imports this module, so not the other way round)."""

    lease: MonitorLease
    relay: AlertRelay
    webhooks: WebhookDispatcher
    retention: Retention


class _RuntimeCollector(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runtimes: list[ReplicaParts] = []

    def add(self, rt: ReplicaParts) -> None:
        with self._lock:
            self._runtimes.append(rt)

    def remove(self, rt: ReplicaParts) -> None:
        with self._lock:
            if rt in self._runtimes:
                self._runtimes.remove(rt)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            runtimes = list(self._runtimes)
        if not runtimes:
            return
        yield GaugeMetricFamily(
            PREFIX + "monitor_lease_held",
            "1 when this replica holds the monitor scheduler's lease",
            value=max(1.0 if rt.lease.held() else 0.0 for rt in runtimes))
        yield CounterMetricFamily(
            PREFIX + "monitor_lease_acquisitions", "Times this replica took the lease",
            value=sum(rt.lease.acquisitions for rt in runtimes))
        yield GaugeMetricFamily(
            PREFIX + "alert_listener_connected",
            "1 while this replica listens for other replicas' alert changes",
            value=max(1.0 if rt.relay.connected else 0.0 for rt in runtimes))
        yield CounterMetricFamily(
            PREFIX + "alert_listener_reconnects", "Times the alert listener reconnected",
            value=sum(rt.relay.reconnects for rt in runtimes))
        deliveries = CounterMetricFamily(
            PREFIX + "webhook_deliveries", "Webhook deliveries by outcome, by this replica",
            labels=["outcome"])
        for outcome in OUTCOMES:
            deliveries.add_metric([outcome], sum(getattr(rt.webhooks.counts, outcome)
                                                 for rt in runtimes))
        yield deliveries
        deleted = CounterMetricFamily(
            PREFIX + "retention_deleted",
            "Rows deleted by retention on this replica (partitions: PostgreSQL months dropped)",
            labels=["kind"])
        for kind in ("records", "actuals", "profiles", "confusion", "profile_gaps",
                     "deliveries"):
            deleted.add_metric([kind], sum(getattr(rt.retention.totals, kind)
                                           for rt in runtimes))
        deleted.add_metric(["partitions"], sum(len(rt.retention.totals.partitions)
                                               for rt in runtimes))
        yield deleted


COLLECTOR = _RuntimeCollector()
REGISTRY.register(COLLECTOR)
