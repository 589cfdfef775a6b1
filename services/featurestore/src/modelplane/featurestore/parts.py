"""The featurestore's parts, what both servicers call: the Feast repository
(``feature_repository.py``), the record store, datasets, lookup plans, the
online backend and lookup, online writes and quality reports, made from the
settings by :func:`assemble`. ``runtime.py`` builds them at start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelplane.featurestore.datasets import DatasetStore
from modelplane.featurestore.feast_config import PostgresParams
from modelplane.featurestore.feature_repository import FeatureRepository
from modelplane.featurestore.lookup_plans import LookupPlans
from modelplane.featurestore.online_lookup import (
    EntityKeyCodec,
    OnlineBackend,
    OnlineLookup,
    PostgresOnlineBackend,
    RedisOnlineBackend,
    SqliteOnlineBackend,
)
from modelplane.featurestore.online_writes import OnlineWriter
from modelplane.featurestore.quality_reports import QualityReports
from modelplane.featurestore.record_store import RecordStore
from modelplane.featurestore.settings import FeatureStoreSettings


@dataclass(frozen=True)
class FeatureStoreParts:
    """What the servicers call, built once per process."""

    repository: FeatureRepository
    records: RecordStore
    datasets: DatasetStore
    plans: LookupPlans
    online: OnlineLookup
    writer: OnlineWriter
    quality: QualityReports


def online_backend(settings: FeatureStoreSettings) -> OnlineBackend:
    if settings.online_store == "redis":
        return RedisOnlineBackend(settings.redis_url, settings.project)
    if settings.online_store == "postgres":
        return PostgresOnlineBackend(PostgresParams.from_url(settings.database_url).conninfo)
    return SqliteOnlineBackend(str(settings.data_dir / "online_store.db"))


#: registers a closer for a part just opened (``ServiceRuntime.closing``)
Closing = Callable[[Callable[[], object], str], None]


def assemble(settings: FeatureStoreSettings, closing: Closing) -> FeatureStoreParts:
    """The parts, from the settings (blocking: Feast's registry and stores are opened).
    Each part that holds connections is given to ``closing`` as soon as it is open,
    so one that fails to open does not leak those made before it."""
    repository = FeatureRepository(settings)
    closing(repository.close, "the Feast repository")
    url = settings.database_url or f"sqlite:///{settings.data_dir / 'featurestore.db'}"
    records = RecordStore(url)
    closing(records.close, "the record store")
    datasets = DatasetStore(repository, records, settings.dataset_root)
    plans = LookupPlans(repository, settings.project)
    backend = online_backend(settings)
    closing(backend.close, "the online store")
    online = OnlineLookup(backend, plans.plan_for,
                          EntityKeyCodec(settings.entity_key_cache_size),
                          cached_plan=plans.cached)
    return FeatureStoreParts(
        repository=repository, records=records, datasets=datasets, plans=plans, online=online,
        writer=OnlineWriter(repository, settings.stream_batch_rows),
        quality=QualityReports(repository, datasets, records))
