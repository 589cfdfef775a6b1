"""The serving service's settings: defaults in one place, read from ``MODELPLANE_SERVING_*``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelplane.kit.settings import DEFAULT_MAX_BODY_BYTES, ServiceSettings

DEFAULT_HTTP_ADDR = "127.0.0.1:7114"


def _peer(value: str | None) -> str:
    """A peer target; ``none`` (or ``off``) means there is no such peer."""
    return "" if (value or "").strip().lower() in ("", "none", "off") else (value or "")


EVENT_LOOPS = ("uvloop", "asyncio")


def _event_loop(value: str | None) -> str:
    loop = (value or "uvloop").strip().lower()
    if loop not in EVENT_LOOPS:
        raise ValueError(f"MODELPLANE_SERVING_EVENT_LOOP={value!r}: expected one of "
                         f"{', '.join(EVENT_LOOPS)}")
    return loop


def _positive(name: str, value: str | None) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None
    if number <= 0:
        raise ValueError(f"{name} must be positive, not {number}")
    return number


def _positive_seconds(name: str, value: str | None) -> float:
    try:
        number = float(value or "")
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number of seconds") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds, not {value}")
    return number


def _listen_or_none(value: str | None, default: str) -> str:
    """Unset: the default port. Set but empty, ``off`` or ``none``: no listener (a
    benchmark or a second replica on one host must not take the default port)."""
    if value is None:
        return default
    return "" if value.strip().lower() in ("", "off", "none") else value.strip()


@dataclass(frozen=True)
class ServingSettings:
    service: ServiceSettings
    #: REST (OIP /v2 and /metrics) listen address; "" = no REST listener
    http_addr: str = DEFAULT_HTTP_ADDR
    #: largest request body the REST port reads (the gateway's default); larger: 413
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: sqlite:///path (default under data_dir) or postgresql://...
    database_url: str = ""
    #: where models come from: "registry" (the registry service's gRPC contract) or an
    #: MLflow tracking URI (http://..., file:///..., sqlite:///...) used directly
    model_source: str = "registry"
    #: featurestore gRPC target for online features ("none" in the environment = no peer)
    featurestore_target: str = ""
    #: observability gRPC target for prediction logs; "" = spool only
    observability_target: str = ""
    #: directory of BentoML's model store
    bentoml_home: Path | None = None
    #: prediction log batching and bounds
    log_batch_size: int = 500
    log_flush_seconds: float = 0.2
    #: write-ahead log fsync policy: "always" (each group commit), "interval", "never"
    log_fsync: str = "interval"
    log_fsync_interval_ms: float = 100.0
    #: threads per loaded model
    workers_per_model: int = 2
    #: alias poll interval when models come straight from MLflow
    alias_poll_seconds: float = 2.0
    #: failed load attempts (a dependency not answering) before a deployment is FAILED ...
    load_retry_budget: int = 8
    #: ... and then retried only this often (or at once on an event)
    load_retry_exhausted_seconds: float = 300.0
    #: traffic goes only to versions with a PASS validation unless an admin overrides
    require_validation: bool = True
    #: how often the rollout controller looks at running rollouts
    rollout_tick_seconds: float = 5.0
    #: the controller's lease: one replica acts; another takes over within this after it dies
    rollout_lease_seconds: float = 10.0
    #: how often each replica adds its request outcomes per version to the shared store
    route_stats_flush_seconds: float = 2.0
    #: the process's event loop: "uvloop" (where it is installed; else asyncio's) or "asyncio"
    event_loop: str = "uvloop"

    @property
    def data_dir(self) -> Path:
        return self.service.data_dir

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "prediction-spool"

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'serving.db'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        svc = ServiceSettings.from_env("serving", environ)
        env = svc.env
        home = env("BENTOML_HOME")
        return cls(
            service=svc,
            http_addr=_listen_or_none(svc.environ.get("MODELPLANE_SERVING_HTTP_ADDR"),
                                      DEFAULT_HTTP_ADDR),
            max_body_bytes=_positive("MODELPLANE_SERVING_MAX_BODY_BYTES",
                                     env("MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES))),
            database_url=env("DATABASE_URL", "") or "",
            model_source=env("MODEL_SOURCE", "registry") or "registry",
            featurestore_target=_peer(env("FEATURESTORE_TARGET", svc.target("featurestore"))),
            observability_target=_peer(env("OBSERVABILITY_TARGET",
                                           svc.target("observability"))),
            bentoml_home=Path(home) if home else None,
            log_batch_size=int(env("LOG_BATCH_SIZE", "500") or 500),
            log_flush_seconds=float(env("LOG_FLUSH_SECONDS", "0.2") or 0.2),
            log_fsync=(env("LOG_FSYNC", "interval") or "interval").strip().lower(),
            log_fsync_interval_ms=float(env("LOG_FSYNC_INTERVAL_MS", "100") or 100),
            workers_per_model=int(env("WORKERS_PER_MODEL", "2") or 2),
            alias_poll_seconds=float(env("ALIAS_POLL_SECONDS", "2.0") or 2.0),
            load_retry_budget=int(env("LOAD_RETRY_BUDGET", "8") or 8),
            load_retry_exhausted_seconds=float(env("LOAD_RETRY_EXHAUSTED_SECONDS", "300")
                                               or 300.0),
            require_validation=(env("REQUIRE_VALIDATION", "on") or "on").strip().lower()
            not in ("off", "0", "false", "no"),
            rollout_tick_seconds=_positive_seconds("MODELPLANE_SERVING_ROLLOUT_TICK_SECONDS",
                                                   env("ROLLOUT_TICK_SECONDS", "5")),
            rollout_lease_seconds=_positive_seconds("MODELPLANE_SERVING_ROLLOUT_LEASE_SECONDS",
                                                    env("ROLLOUT_LEASE_SECONDS", "10")),
            route_stats_flush_seconds=_positive_seconds(
                "MODELPLANE_SERVING_ROUTE_STATS_FLUSH_SECONDS",
                env("ROUTE_STATS_FLUSH_SECONDS", "2")),
            event_loop=_event_loop(env("EVENT_LOOP", "uvloop")),
        )
