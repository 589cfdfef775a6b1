"""The featurestore's settings: defaults in one place, read from ``MODELPLANE_FEATURESTORE_*``.

Embedded default (nothing set): Feast's SQLite online store, the DuckDB
offline store over parquet files, a file registry and a SQLite catalog of
datasets and reports, all under the service's data dir. Production: set
``DATABASE_URL`` (PostgreSQL) and pick stores with ``OFFLINE_STORE``,
``ONLINE_STORE`` and ``REGISTRY``; ``REDIS_URL`` for the Redis online store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelplane.kit.errors import InvalidArgument
from modelplane.kit.locations import StoragePolicy
from modelplane.kit.settings import ServiceSettings

OFFLINE_STORES = ("duckdb", "postgres")
ONLINE_STORES = ("sqlite", "postgres", "redis")
REGISTRIES = ("file", "postgres")


@dataclass(frozen=True)
class FeatureStoreSettings:
    #: root of embedded data (online SQLite, parquet sources, registry, datasets)
    data_dir: Path
    #: Feast project name
    project: str = "modelplane"
    #: "duckdb" (parquet files under data_dir) or "postgres"
    offline_store: str = "duckdb"
    #: "sqlite", "postgres" or "redis"
    online_store: str = "sqlite"
    #: "file" (registry.db under data_dir) or "postgres" (Feast's SQL registry)
    registry: str = "file"
    #: postgresql://user:pass@host:port/db for every PostgreSQL store and the
    #: dataset/report catalog; "" = embedded
    database_url: str = ""
    #: redis://host:port/db for the Redis online store
    redis_url: str = ""
    #: a Feast feature repo directory applied at start; "" = none
    repo_path: str = ""
    #: where saved datasets are written (parquet); default data_dir/datasets
    datasets_dir: Path | None = None
    #: seconds the online path trusts its cached feature view metadata when
    #: another replica may change the registry (our own changes refresh it at once)
    metadata_refresh_seconds: float = 30.0
    #: keep parsed entity keys for this many distinct keys
    entity_key_cache_size: int = 200_000
    #: which files callers may name (parquet_uri, feature view sources, repo_path);
    #: None = the data dir's imports/ and exports/ and the offline root
    storage: StoragePolicy | None = field(default=None, repr=False, compare=False)
    #: StreamOnlineRows writes to the online store in batches of up to this many rows
    stream_batch_rows: int = 5000
    extra: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = []
        if self.offline_store not in OFFLINE_STORES:
            problems.append(f"OFFLINE_STORE must be one of {OFFLINE_STORES}, "
                            f"not {self.offline_store!r}")
        if self.online_store not in ONLINE_STORES:
            problems.append(f"ONLINE_STORE must be one of {ONLINE_STORES}, "
                            f"not {self.online_store!r}")
        if self.registry not in REGISTRIES:
            problems.append(f"REGISTRY must be one of {REGISTRIES}, not {self.registry!r}")
        needs_pg = "postgres" in (self.offline_store, self.online_store, self.registry)
        if needs_pg and not self.database_url:
            problems.append("a PostgreSQL store needs MODELPLANE_FEATURESTORE_DATABASE_URL")
        if self.online_store == "redis" and not self.redis_url:
            problems.append("the Redis online store needs MODELPLANE_FEATURESTORE_REDIS_URL")
        if self.stream_batch_rows < 1:
            problems.append("STREAM_BATCH_ROWS must be positive")
        if problems:
            raise InvalidArgument("featurestore settings: " + "; ".join(problems),
                                  reason="BAD_SETTINGS")

    @property
    def dataset_root(self) -> Path:
        return self.datasets_dir or self.data_dir / "datasets"

    @property
    def offline_root(self) -> Path:
        return self.data_dir / "offline"

    @property
    def storage_policy(self) -> StoragePolicy:
        """The storage policy; its roots always include the offline root, where the
        default file sources live (so a view read back and applied again still passes)."""
        if self.storage is not None:
            return self.storage
        roots = [self.data_dir / "imports", self.data_dir / "exports", self.offline_root]
        for r in roots:
            r.mkdir(parents=True, exist_ok=True)
        return StoragePolicy(roots, roots_setting="MODELPLANE_FEATURESTORE_STORAGE_ROOTS",
                             buckets_setting="MODELPLANE_FEATURESTORE_STORAGE_BUCKETS")

    @classmethod
    def from_service(cls, svc: ServiceSettings) -> FeatureStoreSettings:
        env = svc.env
        database_url = env("DATABASE_URL", "") or ""
        default_store = "postgres" if database_url else None
        return cls(
            data_dir=svc.data_dir,
            project=env("PROJECT", "modelplane") or "modelplane",
            offline_store=env("OFFLINE_STORE", default_store or "duckdb") or "duckdb",
            online_store=env("ONLINE_STORE",
                             "redis" if env("REDIS_URL") else default_store or "sqlite")
            or "sqlite",
            registry=env("REGISTRY", "postgres" if database_url else "file") or "file",
            database_url=database_url,
            redis_url=env("REDIS_URL", "") or "",
            repo_path=env("REPO", "") or "",
            datasets_dir=Path(d) if (d := env("DATASETS_DIR")) else None,
            metadata_refresh_seconds=float(env("METADATA_REFRESH_SECONDS", "30") or 30),
            # IMPORT_DIRS: the older name of STORAGE_ROOTS, still read
            storage=StoragePolicy.for_service(svc, extra_roots=[
                svc.data_dir / "offline",
                *(Path(p) for p in (env("IMPORT_DIRS") or "").split(":") if p)]),
            stream_batch_rows=int(env("STREAM_BATCH_ROWS", "5000") or 5000),
        )
