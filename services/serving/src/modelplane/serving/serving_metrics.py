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
