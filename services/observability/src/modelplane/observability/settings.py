"""The observability service's settings, read from the environment in one place.

| variable | default | meaning |
|---|---|---|
| ``MODELPLANE_OBSERVABILITY_DATABASE_URL`` | unset | PostgreSQL URL; unset = embedded DuckDB file ``<data dir>/observability/evaluations.duckdb`` |
| ``MODELPLANE_OBSERVABILITY_HTTP_ADDR`` | ``127.0.0.1:7115`` | dashboard listen address; ``off`` disables it |
| ``MODELPLANE_OBSERVABILITY_INGEST_QUEUE_BATCHES`` | ``4`` | batches buffered per ingest stream (backpressure) |
| ``MODELPLANE_OBSERVABILITY_INGEST_WRITERS`` | ``2`` | batches of one stream written concurrently (own transactions) |
| ``MODELPLANE_OBSERVABILITY_MONITOR_TICK_SECONDS`` | ``5`` | how often due monitors are looked for |
| ``MODELPLANE_OBSERVABILITY_ANALYSIS_THREADS`` | ``2`` | threads computing drift columns in parallel |
| ``MODELPLANE_OBSERVABILITY_DB_POOL_SIZE`` | ``4`` | PostgreSQL connections |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelplane.kit.settings import ServiceSettings

DEFAULT_HTTP_ADDR = "127.0.0.1:7115"


@dataclass(frozen=True)
class ObservabilitySettings:
    service: ServiceSettings
    database_url: str | None = None
    http_addr: str | None = DEFAULT_HTTP_ADDR
    ingest_queue_batches: int = 4
    ingest_writers: int = 2
    monitor_tick_seconds: float = 5.0
    analysis_threads: int = 2
    db_pool_size: int = 4

    @property
    def embedded_path(self) -> Path:
        return self.service.data_dir / "evaluations.duckdb"

    @classmethod
    def from_service(cls, service: ServiceSettings) -> ObservabilitySettings:
        http = service.env("HTTP_ADDR", DEFAULT_HTTP_ADDR)
        return cls(
            service=service,
            database_url=service.env("DATABASE_URL"),
            http_addr=None if (http or "").lower() in ("off", "none", "") else http,
            ingest_queue_batches=int(service.env("INGEST_QUEUE_BATCHES", "4") or 4),
            ingest_writers=int(service.env("INGEST_WRITERS", "2") or 2),
            monitor_tick_seconds=float(service.env("MONITOR_TICK_SECONDS", "5") or 5),
            analysis_threads=int(service.env("ANALYSIS_THREADS", "2") or 2),
            db_pool_size=int(service.env("DB_POOL_SIZE", "4") or 4),
        )

    @classmethod
    def from_env(cls) -> ObservabilitySettings:
        return cls.from_service(ServiceSettings.from_env("observability"))
