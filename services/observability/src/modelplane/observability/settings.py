"""The observability service's settings, read from the environment in one place.

| variable | default | meaning |
|---|---|---|
| ``MODELPLANE_OBSERVABILITY_DATABASE_URL`` | unset | PostgreSQL URL; unset = embedded DuckDB file ``<data dir>/observability/evaluations.duckdb`` |
| ``MODELPLANE_OBSERVABILITY_CLICKHOUSE_URL`` | unset | the ClickHouse store: ``chdb:///dir`` (chDB in-process; ``chdb:`` = ``<data dir>/observability/clickhouse``; ``?database=`` default ``modelplane``) or ``clickhouse://user:password@host:8123/database`` (a server over HTTP); alerts, deliveries, the lease and documents stay in the DuckDB file, or PostgreSQL when ``DATABASE_URL`` is set too; unset = no ClickHouse |
| ``MODELPLANE_OBSERVABILITY_HTTP_ADDR`` | ``127.0.0.1:7115`` | dashboard listen address; ``off`` disables it |
| ``MODELPLANE_OBSERVABILITY_DASHBOARD_CACHE_SECONDS`` | ``60`` | longest reuse of a model page's analyses for one window (new records end it at once; new actuals within this time); ``0`` = no cache |
| ``MODELPLANE_OBSERVABILITY_INGEST_QUEUE_BATCHES`` | ``4`` | batches buffered per ingest stream (backpressure) |
| ``MODELPLANE_OBSERVABILITY_INGEST_WRITERS`` | ``2`` | batches of one stream written concurrently (own transactions) |
| ``MODELPLANE_OBSERVABILITY_MONITOR_TICK_SECONDS`` | ``5`` | how often due monitors are looked for |
| ``MODELPLANE_OBSERVABILITY_ANALYSIS_THREADS`` | ``2`` | threads computing drift columns in parallel |
| ``MODELPLANE_OBSERVABILITY_DB_POOL_SIZE`` | ``4`` | PostgreSQL connections |
| ``MODELPLANE_OBSERVABILITY_MAX_RECORD_COLUMNS`` | ``1500`` | PostgreSQL: columns ``obs_records`` may reach (at most 1600); catalog columns past it get no typed column |
| ``MODELPLANE_OBSERVABILITY_DUCKDB_MEMORY_LIMIT`` | ``384MB`` | the embedded store's DuckDB buffer limit (DuckDB's ``memory_limit``); past it DuckDB writes buffers out |
| ``MODELPLANE_OBSERVABILITY_DUCKDB_THREADS`` | unset | DuckDB's worker threads in the embedded store; unset = one per core |
| ``MODELPLANE_OBSERVABILITY_MONITOR_LEASE_SECONDS`` | ``10`` | the monitor scheduler's lease: one replica evaluates; another takes over within this time after it dies |
| ``MODELPLANE_OBSERVABILITY_WEBHOOK_ALLOW`` | unset | webhook targets allowed although not public: comma-separated CIDRs, addresses, host names (``*.example.com``) |
| ``MODELPLANE_OBSERVABILITY_WEBHOOK_WORKERS`` | ``4`` | webhook calls in flight at once (a bounded pool) |
| ``MODELPLANE_OBSERVABILITY_WEBHOOK_TIMEOUT_SECONDS`` | ``5`` | connect and read timeout of one webhook call; the whole call is cut off at 3× this |
| ``MODELPLANE_OBSERVABILITY_WEBHOOK_MAX_ATTEMPTS`` | ``8`` | attempts before a delivery is marked failed |
| ``MODELPLANE_OBSERVABILITY_WEBHOOK_BACKOFF_SECONDS`` | ``1`` | first retry delay (doubles each attempt, with jitter) |
| ``MODELPLANE_OBSERVABILITY_WEBHOOK_BACKOFF_CAP_SECONDS`` | ``300`` | longest retry delay |
| ``MODELPLANE_OBSERVABILITY_MAX_CONCURRENT_ANALYSES`` | ``4`` | compute RPCs and dashboard pages computing at once in one process; past it ``RESOURCE_EXHAUSTED`` |
| ``MODELPLANE_OBSERVABILITY_ANALYSIS_WAIT_SECONDS`` | ``2`` | how long a call waits for a free slot before that refusal |
| ``MODELPLANE_OBSERVABILITY_MAX_ANALYSIS_ROWS`` | ``5000000`` | evaluation-store rows one analysis may read (current and reference together); past it ``RESOURCE_EXHAUSTED`` |
| ``MODELPLANE_OBSERVABILITY_EXACT_ROWS`` | ``200000`` | analyses in automatic mode answer from the per-hour profiles when a side holds more records than this (and no predicate narrows it); else from the records |
| ``MODELPLANE_OBSERVABILITY_RECORD_RETENTION_DAYS`` | ``30`` | days raw records and actuals are kept (``0`` = forever; PostgreSQL drops whole months) |
| ``MODELPLANE_OBSERVABILITY_PROFILE_RETENTION_DAYS`` | ``400`` | days profiles and confusion counts are kept (``0`` = forever) |
| ``MODELPLANE_OBSERVABILITY_DELIVERY_RETENTION_DAYS`` | ``14`` | days finished webhook deliveries are kept (``0`` = forever) |
| ``MODELPLANE_OBSERVABILITY_RETENTION_INTERVAL_SECONDS`` | ``3600`` | how often the lease holder enforces retention (and once when it takes the lease) |
| ``MODELPLANE_OBSERVABILITY_EXPLAIN_MODELS`` | ``registry`` | ExplainPredictions loads the version that made the predictions from the registry (``MODELPLANE_REGISTRY_TARGET``); ``off`` = surrogate only (no model code in this process) |
| ``MODELPLANE_OBSERVABILITY_EXPLAIN_BACKGROUND_ROWS`` | ``100`` | baseline records sampled as the permutation explainer's background |
| ``MODELPLANE_OBSERVABILITY_EXPLAIN_MAX_ROWS`` | ``100`` | records one call explains by permutation SHAP (TreeSHAP: the request's max_records) |
| ``MODELPLANE_OBSERVABILITY_EXPLAIN_PERMUTATIONS`` | ``2`` | permutations per record (each: 2 × features + 1 model calls on the background) |
| ``MODELPLANE_OBSERVABILITY_EXPLAIN_MODEL_CACHE`` | ``4`` | loaded model versions kept in memory |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelplane.kit.settings import ServiceSettings
from modelplane.observability.analysis_limits import (
    DEFAULT_ANALYSIS_WAIT_SECONDS,
    DEFAULT_EXACT_ROWS,
    DEFAULT_MAX_ANALYSIS_ROWS,
    DEFAULT_MAX_CONCURRENT_ANALYSES,
)
from modelplane.observability.model_explanation import ExplainBudget
from modelplane.observability.retention import (
    DEFAULT_DELIVERY_RETENTION_DAYS,
    DEFAULT_PROFILE_RETENTION_DAYS,
    DEFAULT_RECORD_RETENTION_DAYS,
    DEFAULT_RETENTION_INTERVAL_SECONDS,
    RetentionSettings,
)
from modelplane.observability.store.embedded import DEFAULT_DUCKDB_MEMORY_LIMIT

DEFAULT_HTTP_ADDR = "127.0.0.1:7115"
#: how long the dashboard reuses a model page's analyses at most (see
#: dashboard.ModelPageCache: new records end it at once)
DEFAULT_PAGE_CACHE_SECONDS = 60.0
KEEP_EVERYTHING = RetentionSettings(0, 0, 0)
WEBHOOK_ALLOW_SETTING = "MODELPLANE_OBSERVABILITY_WEBHOOK_ALLOW"


def _days(service: ServiceSettings, name: str, default: int) -> int:
    raw = service.env(name, "") or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"MODELPLANE_OBSERVABILITY_{name}={raw!r} is not an integer") from None
    if value < 0:
        raise ValueError(f"MODELPLANE_OBSERVABILITY_{name} must be 0 (keep forever) or more, "
                         f"not {value}")
    return value


def _seconds(service: ServiceSettings, name: str, default: float) -> float:
    raw = service.env(name, "") or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"MODELPLANE_OBSERVABILITY_{name}={raw!r} is not a number") from None
    if not value >= 0:
        raise ValueError(f"MODELPLANE_OBSERVABILITY_{name} must be 0 or more, not {value}")
    return value


def _at_least_one(service: ServiceSettings, name: str, default: int) -> int:
    raw = service.env(name, "") or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"MODELPLANE_OBSERVABILITY_{name}={raw!r} is not an integer") from None
    if value < 1:
        raise ValueError(f"MODELPLANE_OBSERVABILITY_{name} must be at least 1, not {value}")
    return value


@dataclass(frozen=True)
class ObservabilitySettings:
    service: ServiceSettings
    database_url: str | None = None
    #: the ClickHouse store (see store/clickhouse_client.py); None = not used
    clickhouse_url: str | None = None
    http_addr: str | None = DEFAULT_HTTP_ADDR
    dashboard_cache_seconds: float = DEFAULT_PAGE_CACHE_SECONDS
    ingest_queue_batches: int = 4
    ingest_writers: int = 2
    monitor_tick_seconds: float = 5.0
    analysis_threads: int = 2
    db_pool_size: int = 4
    max_record_columns: int = 1500
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    duckdb_threads: int | None = None
    monitor_lease_seconds: float = 10.0
    webhook_allow: tuple[str, ...] = ()
    webhook_workers: int = 4
    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = 8
    webhook_backoff_seconds: float = 1.0
    webhook_backoff_cap_seconds: float = 300.0
    max_concurrent_analyses: int = DEFAULT_MAX_CONCURRENT_ANALYSES
    analysis_wait_seconds: float = DEFAULT_ANALYSIS_WAIT_SECONDS
    max_analysis_rows: int = DEFAULT_MAX_ANALYSIS_ROWS
    exact_rows: int = DEFAULT_EXACT_ROWS
    explain_models: bool = True
    explain_background_rows: int = 100
    explain_max_rows: int = 100
    explain_permutations: int = 2
    explain_model_cache: int = 4
    #: serving's address for the dashboard's rollout pages; None = not shown
    serving_target: str | None = None
    #: retention; built directly (tests, embedding) it keeps everything: the
    #: environment's defaults (30 / 400 / 14 days) apply through from_service
    retention: RetentionSettings = KEEP_EVERYTHING

    @property
    def explain_budget(self) -> ExplainBudget:
        return ExplainBudget(background_rows=max(self.explain_background_rows, 1),
                             max_rows=max(self.explain_max_rows, 1),
                             permutations=max(self.explain_permutations, 1))

    @property
    def embedded_path(self) -> Path:
        return self.service.data_dir / "evaluations.duckdb"

    @classmethod
    def from_service(cls, service: ServiceSettings) -> ObservabilitySettings:
        http = service.env("HTTP_ADDR", DEFAULT_HTTP_ADDR)
        return cls(
            service=service,
            database_url=service.env("DATABASE_URL"),
            clickhouse_url=service.env("CLICKHOUSE_URL") or None,
            http_addr=None if (http or "").lower() in ("off", "none", "") else http,
            dashboard_cache_seconds=_seconds(service, "DASHBOARD_CACHE_SECONDS",
                                             DEFAULT_PAGE_CACHE_SECONDS),
            ingest_queue_batches=int(service.env("INGEST_QUEUE_BATCHES", "4") or 4),
            ingest_writers=int(service.env("INGEST_WRITERS", "2") or 2),
            monitor_tick_seconds=float(service.env("MONITOR_TICK_SECONDS", "5") or 5),
            analysis_threads=int(service.env("ANALYSIS_THREADS", "2") or 2),
            db_pool_size=int(service.env("DB_POOL_SIZE", "4") or 4),
            max_record_columns=int(service.env("MAX_RECORD_COLUMNS", "1500") or 1500),
            duckdb_memory_limit=service.env("DUCKDB_MEMORY_LIMIT", "")
            or DEFAULT_DUCKDB_MEMORY_LIMIT,
            duckdb_threads=(_at_least_one(service, "DUCKDB_THREADS", 1)
                            if service.env("DUCKDB_THREADS", "") else None),
            monitor_lease_seconds=float(service.env("MONITOR_LEASE_SECONDS", "10") or 10),
            webhook_allow=tuple(a.strip() for a in (service.env("WEBHOOK_ALLOW") or "").split(",")
                                if a.strip()),
            webhook_workers=int(service.env("WEBHOOK_WORKERS", "4") or 4),
            webhook_timeout_seconds=float(service.env("WEBHOOK_TIMEOUT_SECONDS", "5") or 5),
            webhook_max_attempts=int(service.env("WEBHOOK_MAX_ATTEMPTS", "8") or 8),
            webhook_backoff_seconds=float(service.env("WEBHOOK_BACKOFF_SECONDS", "1") or 1),
            webhook_backoff_cap_seconds=float(service.env("WEBHOOK_BACKOFF_CAP_SECONDS", "300")
                                              or 300),
            max_concurrent_analyses=_at_least_one(service, "MAX_CONCURRENT_ANALYSES",
                                                  DEFAULT_MAX_CONCURRENT_ANALYSES),
            analysis_wait_seconds=float(service.env("ANALYSIS_WAIT_SECONDS", "")
                                        or DEFAULT_ANALYSIS_WAIT_SECONDS),
            max_analysis_rows=_at_least_one(service, "MAX_ANALYSIS_ROWS",
                                            DEFAULT_MAX_ANALYSIS_ROWS),
            exact_rows=_at_least_one(service, "EXACT_ROWS", DEFAULT_EXACT_ROWS),
            explain_models=(service.env("EXPLAIN_MODELS", "registry") or "registry").lower()
            not in ("off", "none", "false", "0"),
            explain_background_rows=_at_least_one(service, "EXPLAIN_BACKGROUND_ROWS", 100),
            explain_max_rows=_at_least_one(service, "EXPLAIN_MAX_ROWS", 100),
            explain_permutations=_at_least_one(service, "EXPLAIN_PERMUTATIONS", 2),
            explain_model_cache=_at_least_one(service, "EXPLAIN_MODEL_CACHE", 4),
            serving_target=_serving_target(service),
            retention=RetentionSettings(
                record_days=_days(service, "RECORD_RETENTION_DAYS",
                                  DEFAULT_RECORD_RETENTION_DAYS),
                profile_days=_days(service, "PROFILE_RETENTION_DAYS",
                                   DEFAULT_PROFILE_RETENTION_DAYS),
                delivery_days=_days(service, "DELIVERY_RETENTION_DAYS",
                                    DEFAULT_DELIVERY_RETENTION_DAYS),
                interval_seconds=float(service.env("RETENTION_INTERVAL_SECONDS", "")
                                       or DEFAULT_RETENTION_INTERVAL_SECONDS)),
        )

    @classmethod
    def from_env(cls) -> ObservabilitySettings:
        return cls.from_service(ServiceSettings.from_env("observability"))


def _serving_target(service: ServiceSettings) -> str | None:
    """``MODELPLANE_OBSERVABILITY_SERVING_TARGET``, else serving's own address
    (``MODELPLANE_SERVING_TARGET`` / ``_ADDR`` / its default port); ``off`` = none."""
    value = service.env("SERVING_TARGET") or service.target("serving")
    return None if value.lower() in ("off", "none") else value
