"""The validator's settings: one place, read from the environment.

| variable | default |
|---|---|
| `MODELPLANE_VALIDATOR_ADDR` | `127.0.0.1:7103` (kit) |
| `MODELPLANE_VALIDATOR_DATABASE_URL` | `sqlite:///<data dir>/validator/validator.db`; `postgresql://...` in production |
| `MODELPLANE_VALIDATOR_MAX_CONCURRENT_RUNS` | `1` (a run uses a core; more wait as PENDING) |
| `MODELPLANE_VALIDATOR_MAX_BASELINE_ROWS` | `100000` predictions handed to observability per run |
| `MODELPLANE_VALIDATOR_OBSERVABILITY` | `on`; `off` = do not hand baselines to observability |
| `MODELPLANE_VALIDATOR_FEATURESTORE` | `on`; `off` = parquet datasets only |
| `MODELPLANE_VALIDATOR_STORAGE_ROOTS` / `_STORAGE_BUCKETS` | where parquet datasets may be named besides `<data dir>/validator/imports` and `/exports` (kit `locations`) |
| `MODELPLANE_VALIDATOR_SERVING` | `on`; `off` = no serving peer (stress only in-process) |
| `MODELPLANE_REGISTRY_TARGET` / `MODELPLANE_FEATURESTORE_TARGET` / `MODELPLANE_OBSERVABILITY_TARGET` / `MODELPLANE_SERVING_TARGET` | the peers' default ports (kit) |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelplane.kit.settings import ServiceSettings


def _flag(value: str | None) -> bool:
    return (value or "on").strip().lower() not in {"0", "off", "false", "no"}


@dataclass(frozen=True)
class ValidatorSettings:
    service: ServiceSettings
    database_url: str
    max_concurrent_runs: int
    max_baseline_rows: int
    observability: bool
    featurestore: bool
    serving: bool = True

    @property
    def data_dir(self) -> Path:
        return self.service.data_dir

    @classmethod
    def from_service(cls, service: ServiceSettings) -> ValidatorSettings:
        return cls(
            service=service,
            database_url=service.env("DATABASE_URL")
            or f"sqlite:///{service.data_dir / 'validator.db'}",
            max_concurrent_runs=int(service.env("MAX_CONCURRENT_RUNS", "1") or 1),
            max_baseline_rows=int(service.env("MAX_BASELINE_ROWS", "100000") or 100000),
            observability=_flag(service.env("OBSERVABILITY")),
            featurestore=_flag(service.env("FEATURESTORE")),
            serving=_flag(service.env("SERVING")),
        )

    @classmethod
    def from_env(cls) -> ValidatorSettings:
        return cls.from_service(ServiceSettings.from_env("validator"))
