"""Tracing, per-RPC metrics and JSON logs, the same way in every process.

``setup_tracing`` installs one global SDK ``TracerProvider`` for the process
(an OTLP/gRPC exporter when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set). Trace
context travels as W3C ``traceparent`` in HTTP headers and gRPC metadata.
``setup_logging`` writes one JSON object per line on stderr carrying the
current trace and span ids. ``rpc_metrics`` are the Prometheus series every
server records per RPC (the server's guard interceptor observes each call):

- ``modelplane_rpc_requests_total{service, method, code}``: calls answered, by
  gRPC status code name (``OK``, ``INVALID_ARGUMENT``, ``UNAVAILABLE``...);
  request rate is its ``rate()``, errors the series with ``code != "OK"``;
- ``modelplane_rpc_duration_seconds{service, method}``: a histogram of the time
  to answer (for streams, the stream's whole life);
- ``modelplane_rpc_in_flight{service}``: calls being answered now.

``serve_metrics(addr)`` exposes them (and the process's own collectors) on
``http://<addr>/metrics`` when ``MODELPLANE_METRICS_ADDR`` is set.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

RPC_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                       1.0, 2.5, 5.0, 10.0, 30.0)


class RpcMetrics:
    """The per-RPC series, once per process (several servers in one test process share
    them, told apart by the ``service`` label)."""

    def __init__(self) -> None:
        self.requests = Counter(
            "modelplane_rpc_requests", "gRPC calls answered, by status code",
            ["service", "method", "code"], registry=REGISTRY)
        self.duration = Histogram(
            "modelplane_rpc_duration_seconds", "Time to answer a gRPC call",
            ["service", "method"], buckets=RPC_LATENCY_BUCKETS, registry=REGISTRY)
        self.in_flight = Gauge(
            "modelplane_rpc_in_flight", "gRPC calls being answered", ["service"],
            registry=REGISTRY)

    def observe(self, service: str, method: str, code: str, seconds: float) -> None:
        self.requests.labels(service, method, code).inc()
        self.duration.labels(service, method).observe(seconds)


_rpc_metrics: RpcMetrics | None = None


def rpc_metrics() -> RpcMetrics:
    global _rpc_metrics
    if _rpc_metrics is None:
        _rpc_metrics = RpcMetrics()
    return _rpc_metrics


def serve_metrics(addr: str) -> None:
    """``/metrics`` (Prometheus text) on ``host:port``, from a daemon thread."""
    host, _, port = addr.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=REGISTRY)


def setup_tracing(service: str, processors: Iterable[SpanProcessor] = ()) -> TracerProvider:
    """The process's TracerProvider, created on first call; later calls add processors."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME") or f"modelplane-{service}"}))
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or \
                os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


class JsonLogFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(service: str, level: str | None = None) -> None:
    """JSON lines on stderr for the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonLogFormatter):
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter(service))
    root.handlers = [handler]
    root.setLevel((level or os.environ.get("MODELPLANE_LOG_LEVEL") or "INFO").upper())
