"""The registry's settings: one place, read from the environment.

| variable | default |
|---|---|
| `MODELPLANE_MLFLOW_ADDR` | `127.0.0.1:7110` (MLflow tracking server + UI) |
| `MODELPLANE_REGISTRY_MLFLOW_URI` | `http://<MODELPLANE_MLFLOW_ADDR>` (what clients are told) |
| `MODELPLANE_REGISTRY_DATABASE_URL` | `sqlite:///<data dir>/registry/registry.db` (audit, events) |
| `MODELPLANE_REGISTRY_MLFLOW_BACKEND_STORE_URI` | the database URL when it is PostgreSQL, else `sqlite:///<data dir>/registry/mlflow.db` |
| `MODELPLANE_REGISTRY_MLFLOW_ARTIFACTS_DESTINATION` | `<data dir>/registry/artifacts` (or `s3://bucket/prefix`) |
| `MODELPLANE_REGISTRY_PROTECTED_ALIASES` | `champion` (comma-separated) |
| `MODELPLANE_REGISTRY_OVERRIDE_ROLE` | `admin` (least role allowed to override the gate) |
| `MODELPLANE_REGISTRY_VALIDATION_PRINCIPALS` | `validator` (service identities whose AttachValidation counts; comma-separated) |
| `MODELPLANE_REGISTRY_MLFLOW_WORKERS` | `2` |
| `MODELPLANE_REGISTRY_MLFLOW_START_TIMEOUT` | `300` seconds |
| `MODELPLANE_REGISTRY_MLFLOW_ALLOWED_HOSTS` | MLflow's default (localhost and private IPs) |
| `MODELPLANE_REGISTRY_EVENT_POLL_SECONDS` | `0.2` |
| `MODELPLANE_REGISTRY_CACHE_SIZE` | `10000` resolved URIs |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelplane.kit.auth import Role
from modelplane.kit.documents import is_postgres
from modelplane.kit.settings import ServiceSettings
from modelplane.registry.promotion import PromotionGate

DEFAULT_MLFLOW_ADDR = "127.0.0.1:7110"


@dataclass(frozen=True)
class RegistrySettings:
    service: ServiceSettings
    mlflow_addr: str
    mlflow_uri: str
    database_url: str
    backend_store_uri: str
    artifacts_destination: str
    protected_aliases: tuple[str, ...]
    override_role: Role
    validation_principals: tuple[str, ...]
    mlflow_workers: int
    mlflow_start_timeout: float
    mlflow_allowed_hosts: str | None
    event_poll_seconds: float
    cache_size: int

    @property
    def data_dir(self) -> Path:
        return self.service.data_dir

    @classmethod
    def from_service(cls, service: ServiceSettings) -> RegistrySettings:
        data_dir = service.data_dir
        mlflow_addr = service.environ.get("MODELPLANE_MLFLOW_ADDR") or DEFAULT_MLFLOW_ADDR
        database_url = service.env("DATABASE_URL") or f"sqlite:///{data_dir / 'registry.db'}"
        backend = service.env("MLFLOW_BACKEND_STORE_URI") or (
            database_url if is_postgres(database_url) else f"sqlite:///{data_dir / 'mlflow.db'}")
        artifacts = service.env("MLFLOW_ARTIFACTS_DESTINATION") or str(data_dir / "artifacts")
        protected = tuple(a.strip() for a in
                          (service.env("PROTECTED_ALIASES", "champion") or "").split(",")
                          if a.strip())
        return cls(
            service=service,
            mlflow_addr=mlflow_addr,
            mlflow_uri=service.env("MLFLOW_URI") or f"http://{mlflow_addr}",
            database_url=database_url,
            backend_store_uri=backend,
            artifacts_destination=artifacts,
            protected_aliases=protected,
            override_role=Role.parse(service.env("OVERRIDE_ROLE", "admin") or "admin"),
            validation_principals=tuple(
                p.strip() for p in (service.env("VALIDATION_PRINCIPALS", "validator")
                                    or "").split(",") if p.strip()),
            mlflow_workers=int(service.env("MLFLOW_WORKERS", "2") or 2),
            mlflow_start_timeout=float(service.env("MLFLOW_START_TIMEOUT", "300") or 300),
            mlflow_allowed_hosts=service.env("MLFLOW_ALLOWED_HOSTS"),
            event_poll_seconds=float(service.env("EVENT_POLL_SECONDS", "0.2") or 0.2),
            cache_size=int(service.env("CACHE_SIZE", "10000") or 10000),
        )

    def promotion_gate(self) -> PromotionGate:
        """The one gate both the gRPC API and the MLflow plugin decide with."""
        return PromotionGate(self.protected_aliases, self.override_role,
                             self.validation_principals, self.service.auth_enabled)

    @classmethod
    def from_env(cls) -> RegistrySettings:
        return cls.from_service(ServiceSettings.from_env("registry"))
