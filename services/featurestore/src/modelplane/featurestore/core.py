"""The featurestore's domain: Feast definitions, ingestion, online lookups, datasets,
quality reports.

``FeatureStoreCore`` wires the parts together from the settings; the gRPC
servicers (ours and Feast's) are thin adapters over it.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from modelplane.featurestore.data_quality import QualityOptions, QualityReport, compute_quality
from modelplane.featurestore.datasets import DatasetStore
from modelplane.featurestore.definitions import FeatureViewSpec, ValueKind
from modelplane.featurestore.feast_config import PostgresParams
from modelplane.featurestore.feature_repository import FeatureRepository
from modelplane.featurestore.online_lookup import (
    EntityKeyCodec,
    LookupPlan,
    OnlineBackend,
    OnlineLookup,
    PostgresOnlineBackend,
    RedisOnlineBackend,
    SqliteOnlineBackend,
    ViewRead,
)
from modelplane.featurestore.online_stream import OnlineRowStream, RowBatch, StreamPushResult
from modelplane.featurestore.record_store import RecordStore
from modelplane.featurestore.settings import FeatureStoreSettings
from modelplane.kit.errors import FieldViolation, InvalidArgument, NotFound


def _backend(settings: FeatureStoreSettings) -> OnlineBackend:
    if settings.online_store == "redis":
        return RedisOnlineBackend(settings.redis_url, settings.project)
    if settings.online_store == "postgres":
        return PostgresOnlineBackend(PostgresParams.from_url(settings.database_url).conninfo)
    return SqliteOnlineBackend(str(settings.data_dir / "online_store.db"))


class FeatureStoreCore:
    def __init__(self, settings: FeatureStoreSettings) -> None:
        self.settings = settings
        self.repository = FeatureRepository(settings)
        url = settings.database_url or f"sqlite:///{settings.data_dir / 'featurestore.db'}"
        self.records = RecordStore(url)
        self.datasets = DatasetStore(self.repository, self.records, settings.dataset_root)
        self._plans: dict[tuple[tuple[str, ...], str, bool], LookupPlan] = {}
        self._plans_generation = -1
        self._plan_lock = threading.Lock()
        self.codec = EntityKeyCodec(settings.entity_key_cache_size)
        self.online = OnlineLookup(_backend(settings), self.plan_for, self.codec,
                                   cached_plan=self.cached_plan)

    async def close(self) -> None:
        await self.online.backend.close()
        self.records.close()
        self.repository.close()

    # ---------------------------------------------------------------- online plans

    def cached_plan(self, refs: tuple[str, ...], service: str,
                    full_names: bool) -> LookupPlan | None:
        """The lookup plan for these refs if one is cached for the current definitions."""
        if self._plans_generation != self.repository.generation:
            return None
        return self._plans.get((refs, service, full_names))

    def plan_for(self, refs: tuple[str, ...], service: str, full_names: bool) -> LookupPlan:
        """The lookup plan for these refs, built from the registry on a cache miss (blocking)."""
        plan = self.cached_plan(refs, service, full_names)
        if plan is not None:
            return plan
        with self._plan_lock:
            generation = self.repository.generation
            if self._plans_generation != generation:
                self._plans = {}
                self._plans_generation = generation
            plan = self._build_plan(refs, service, full_names, generation)
            self._plans[(refs, service, full_names)] = plan
            return plan

    async def refresh_definitions_forever(self) -> None:
        """Re-read the registry now and then: another replica may have changed it."""
        import asyncio

        while True:
            await asyncio.sleep(self.settings.metadata_refresh_seconds)
            try:
                await asyncio.to_thread(self.repository.refresh)
            except Exception:  # keep serving from the last good definitions
                import logging

                logging.getLogger("modelplane.featurestore").warning(
                    "registry refresh failed", exc_info=True)

    def _build_plan(self, refs: Sequence[str], service: str, full_names: bool,
                    generation: int) -> LookupPlan:
        from feast.infra.online_stores.helpers import _mmh3, compute_table_id

        features = self.repository.resolve_refs(list(refs), service)
        views = self.repository.feast_views()
        kinds = self.repository.key_kinds()
        names = [f"{f.view}__{f.feature}" if full_names else f.feature for f in features]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise InvalidArgument(
                f"feature name {dup!r} is requested from two feature views; set full_feature_names",
                reason="FEATURE_NAME_COLLISION", metadata={"feature": dup},
                field_violations=[FieldViolation("full_feature_names", "needed: names collide")])
        by_view: dict[str, list[int]] = {}
        for i, f in enumerate(features):
            by_view.setdefault(f.view, []).append(i)
        reads = []
        join_keys: dict[str, ValueKind] = {}
        for view_name, positions in by_view.items():
            view = views[view_name]
            keys = tuple(c.name for c in view.entity_columns)
            for k in keys:
                join_keys[k] = kinds.get(k, ValueKind.INT64)
            feats = tuple(features[i].feature for i in positions)
            reads.append(ViewRead(
                view_name=view_name, join_keys=keys, key_kinds=tuple(join_keys[k] for k in keys),
                features=feats, positions=tuple(positions),
                all_features=set(feats) == {f.name for f in view.features},
                ttl_seconds=view.ttl.total_seconds() if view.ttl else 0.0,
                table_id=compute_table_id(self.settings.project, view, False),
                redis_fields=(*(_mmh3(f"{view_name}:{f}") for f in feats),
                              f"_ts:{view_name}".encode())))
        return LookupPlan(names=tuple(names), refs=tuple(f.ref for f in features),
                          views=tuple(reads), join_keys=join_keys, generation=generation)

    # ---------------------------------------------------------------- writes

    def stored_event_seconds(self, view: FeatureViewSpec,
                             keys: dict[str, list[Any]]) -> list[float]:
        """Event time (epoch seconds) the online store holds for each key row; -inf when
        none, so that an event stamped at the epoch still counts as newer."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        kinds = self.repository.key_kinds()
        protos = []
        for row in zip(*(keys[k] for k in view.join_keys)):
            values = []
            for k, v in zip(view.join_keys, row):
                kind = kinds[k]
                if kind == ValueKind.STRING:
                    values.append(Value(string_val=v))
                elif kind == ValueKind.INT32:
                    values.append(Value(int32_val=int(v)))
                elif kind == ValueKind.BYTES:
                    values.append(Value(bytes_val=v))
                else:
                    values.append(Value(int64_val=int(v)))
            protos.append(EntityKey(join_keys=list(view.join_keys), entity_values=values))
        store = self.repository.store
        feast_view = self.repository.feast_view(view.name)
        provider = store._get_provider()
        found = provider.online_read(config=store.config, table=feast_view, entity_keys=protos,
                                     requested_features=[f.name for f in feast_view.features])
        return [ts.timestamp() if ts is not None else float("-inf") for ts, _ in found]

    def push_online(self, view: str, rows: pa.Table, also_offline: bool) -> int:
        return self.repository.push_online(view, rows, also_offline, self.stored_event_seconds)

    async def push_online_stream(self, batches: AsyncIterator[RowBatch]) -> StreamPushResult:
        """Batches of rows from a stream, screened row by row and written in batches."""
        return await OnlineRowStream(self.repository, self.stored_event_seconds,
                                     batch_rows=self.settings.stream_batch_rows).push(batches)

    # ---------------------------------------------------------------- quality

    def compute_quality(self, *, dataset: str = "", feature_view: str = "",
                        rows: pa.Table | None = None, label_column: str = "",
                        timestamp_column: str = "", entity_columns: Sequence[str] = (),
                        start: datetime | None = None, end: datetime | None = None,
                        histogram_bins: int = 0, top_categories: int = 0,
                        gap_seconds: float = 0.0) -> QualityReport:
        from datetime import timedelta

        rows_hash = ""
        if dataset:
            record = self.datasets.get(dataset)
            table = self.datasets.read_table(dataset)
            timestamp_column = timestamp_column or record.timestamp_column
            entity_columns = list(entity_columns) or record.join_keys
        elif feature_view:
            view, table = self.repository.read_source(feature_view, start, end)
            assert view.source is not None
            timestamp_column = timestamp_column or view.source.timestamp_field
            entity_columns = list(entity_columns) or view.join_keys
        elif rows is not None:
            from modelplane.featurestore.datasets import content_hash

            table = rows
            rows_hash = content_hash(rows)
            if not timestamp_column and "event_timestamp" in rows.column_names:
                timestamp_column = "event_timestamp"
        else:
            raise InvalidArgument("give a dataset, a feature_view or rows", reason="NO_SUBJECT",
                                  field_violations=[FieldViolation("subject", "one must be set")])
        if histogram_bins < 0 or top_categories < 0 or gap_seconds < 0:
            raise InvalidArgument("histogram_bins, top_categories and gap_threshold "
                                  "must not be negative",
                                  reason="BAD_OPTIONS",
                                  field_violations=[FieldViolation("histogram_bins",
                                                                   "negative value")])
        options = QualityOptions(
            timestamp_column=timestamp_column, entity_columns=tuple(entity_columns),
            label_column=label_column, histogram_bins=min(histogram_bins or 20, 1000),
            top_categories=min(top_categories or 20, 1000),
            gap_threshold=timedelta(seconds=gap_seconds) if gap_seconds else timedelta(hours=24))
        report = compute_quality(table, options, "dq_" + uuid.uuid4().hex[:16])
        report.dataset, report.feature_view, report.rows_hash = dataset, feature_view, rows_hash
        self.records.add_report(report.to_record())
        return report

    def get_report(self, report_id: str) -> QualityReport:
        data = self.records.get_report(report_id)
        if data is None:
            raise NotFound(f"data quality report {report_id!r} not found",
                           reason="REPORT_NOT_FOUND",
                           metadata={"report": report_id})
        return QualityReport.from_record(data)

    def list_reports(self, dataset: str, feature_view: str, limit: int,
                     offset: int) -> tuple[list[QualityReport], bool]:
        rows, more = self.records.list_reports(dataset, feature_view, limit, offset)
        return [QualityReport.from_record(r) for r in rows], more


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
