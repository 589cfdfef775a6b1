"""Prometheus ops metrics, per deployment and answering version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


class ServingMetrics:
    """One registry per server (tests run several in a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelplane_serving_requests", "Inference requests answered or failed",
            ["deployment", "version", "route", "outcome"], registry=self.registry)
        self.latency = Histogram(
            "modelplane_serving_request_latency_seconds",
            "Time to answer an inference request", ["deployment", "version"],
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter(
            "modelplane_serving_model_errors", "Model calls that failed",
            ["deployment", "version", "reason"], registry=self.registry)
        self.fallbacks = Counter(
            "modelplane_serving_fallbacks", "Requests answered by a fallback model",
            ["deployment", "version", "reason"], registry=self.registry)
        self.shadow = Counter(
            "modelplane_serving_shadow_requests", "Mirrored requests to shadow models",
            ["deployment", "version", "outcome"], registry=self.registry)
        self.log_rejected = Counter(
            "modelplane_serving_prediction_log_rejected",
            "Prediction rows observability refused (written to the dead-letter file)",
            ["deployment"], registry=self.registry)
        self.logging_queue = Gauge(
            "modelplane_serving_prediction_log_pending",
            "Prediction records not yet delivered to observability", registry=self.registry)
        # --- what this replica serves, and its retry state ---------------------------
        self.deployment_generation = Gauge(
            "modelplane_serving_deployment_generation",
            "Generation of the deployment this replica serves (the store's change counter)",
            ["deployment"], registry=self.registry)
        self.deployment_ready = Gauge(
            "modelplane_serving_deployment_ready",
            "1 when the deployment answers inference here, 0 while LOADING or FAILED",
            ["deployment"], registry=self.registry)
        self.deployment_load_failures = Gauge(
            "modelplane_serving_deployment_load_failures",
            "Consecutive failed load attempts of the deployment (0 when ready)",
            ["deployment"], registry=self.registry)
        self.deployment_retry_budget_exhausted = Gauge(
            "modelplane_serving_deployment_retry_budget_exhausted",
            "1 when the deployment used its load retry budget (FAILED, slow retries)",
            ["deployment"], registry=self.registry)
        self.registry_stream_connected = Gauge(
            "modelplane_serving_registry_stream_connected",
            "1 while the registry's alias event stream (or MLflow poll) answers",
            registry=self.registry)
        self.registry_stream_failures = Gauge(
            "modelplane_serving_registry_stream_failures",
            "Consecutive failures of the registry's alias event stream", registry=self.registry)
        self.sync_connected = Gauge(
            "modelplane_serving_deployment_sync_connected",
            "1 while this replica LISTENs for deployment changes (PostgreSQL store)",
            registry=self.registry)
        self.sync_reconnects = Counter(
            "modelplane_serving_deployment_sync_reconnects",
            "Times the deployment change feed reconnected (each followed by a full resync)",
            registry=self.registry)

    def forget_deployment(self, name: str) -> None:
        """Drop the per-deployment gauges of a deployment no longer served here."""
        for gauge in (self.deployment_generation, self.deployment_ready,
                      self.deployment_load_failures, self.deployment_retry_budget_exhausted):
            try:
                gauge.remove(name)
            except KeyError:
                pass
