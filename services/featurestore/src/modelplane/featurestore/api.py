"""gRPC servicer: ``modelplane.featurestore.v1.FeatureStoreService`` over ``FeatureStoreCore``.

Translation only: protobuf <-> domain specs, blocking domain calls moved to
a worker thread. Errors are the domain's ``ModelplaneError``s, mapped to
``google.rpc.Status`` once by the kit's interceptor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from modelplane.api.v1 import types_pb2
from modelplane.featurestore.core import FeatureStoreCore
from modelplane.featurestore.data_quality import QualityReport
from modelplane.featurestore.datasets import DatasetRecord, EntityRowsFromView
from modelplane.featurestore.definitions import (
    EntitySpec,
    FeatureServiceSpec,
    FeatureSpec,
    FeatureViewSpec,
    ProjectionSpec,
    SourceKind,
    SourceSpec,
    ValueKind,
)
from modelplane.featurestore.feature_repository import MaterializeEvent
from modelplane.featurestore.online_stream import RowBatch
from modelplane.featurestore.v1 import featurestore_pb2 as pb
from modelplane.featurestore.v1 import featurestore_pb2_grpc
from modelplane.featurestore.wire import modelplane_response
from modelplane.kit.arrow_ipc import ArrowLimits, read_ipc_stream
from modelplane.kit.auth import Role, current_principal
from modelplane.kit.errors import FieldViolation, InvalidArgument, PermissionDenied
from modelplane.kit.locations import StoragePolicy, read_parquet
from modelplane.kit.paging import decode_offset, encode_page_token, page_of, page_size

_KIND_TO_PB = {k: pb.ValueType.Value(f"VALUE_TYPE_{k.value}") for k in ValueKind}
_PB_TO_KIND = {v: k for k, v in _KIND_TO_PB.items()}
_SOURCE_TO_PB = {SourceKind.FILE: pb.SOURCE_KIND_FILE, SourceKind.POSTGRES: pb.SOURCE_KIND_POSTGRES}
_PB_TO_SOURCE = {v: k for k, v in _SOURCE_TO_PB.items()}
_MAT_STATE = {"RUNNING": pb.MATERIALIZE_STATE_RUNNING, "SUCCEEDED": pb.MATERIALIZE_STATE_SUCCEEDED,
              "SKIPPED": pb.MATERIALIZE_STATE_SKIPPED}
_COLUMN_KIND = {"NUMERIC": pb.COLUMN_KIND_NUMERIC, "CATEGORICAL": pb.COLUMN_KIND_CATEGORICAL,
                "TIMESTAMP": pb.COLUMN_KIND_TIMESTAMP, "BOOL": pb.COLUMN_KIND_BOOL}


# ------------------------------------------------------------------ conversions

def _ts(dt: datetime | str | None) -> Timestamp | None:
    if dt is None or dt == "":
        return None
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    out = Timestamp()
    out.FromDatetime(dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC))
    return out


def _dt(ts: Timestamp, present: bool) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if present else None


def _value_kind(value: int, field: str, default: ValueKind) -> ValueKind:
    if value == pb.VALUE_TYPE_UNSPECIFIED:
        return default
    kind = _PB_TO_KIND.get(value)
    if kind is None:
        raise InvalidArgument(f"{field}: unknown value type {value}", reason="BAD_VALUE_TYPE",
                              field_violations=[FieldViolation(field, "unknown value type")])
    return kind


def entity_from_pb(msg: pb.Entity, field: str = "entity") -> EntitySpec:
    return EntitySpec(name=msg.name, join_key=msg.join_key,
                      value_kind=_value_kind(msg.value_type, f"{field}.value_type",
                                             ValueKind.INT64),
                      description=msg.description, tags=dict(msg.tags))


def entity_to_pb(spec: EntitySpec) -> pb.Entity:
    return pb.Entity(name=spec.name, join_key=spec.key, value_type=_KIND_TO_PB[spec.value_kind],
                     description=spec.description, tags=spec.tags,
                     create_time=_ts(spec.create_time), update_time=_ts(spec.update_time))


def view_from_pb(msg: pb.FeatureView, field: str = "feature_view") -> FeatureViewSpec:
    source = None
    if msg.HasField("source"):
        s = msg.source
        source = SourceSpec(name=s.name, kind=_PB_TO_SOURCE.get(s.kind), path=s.path, table=s.table,
                            timestamp_field=s.timestamp_field or "event_timestamp",
                            created_timestamp_column=s.created_timestamp_column)
    return FeatureViewSpec(
        name=msg.name, entities=list(msg.entities),
        features=[FeatureSpec(f.name, _value_kind(f.value_type, f"{field}.features[{i}].value_type",
                                                  ValueKind.DOUBLE), f.description)
                  for i, f in enumerate(msg.features)],
        ttl=msg.ttl.ToTimedelta() if msg.HasField("ttl") else timedelta(0), source=source,
        online=msg.online,
        description=msg.description, tags=dict(msg.tags))


def view_to_pb(spec: FeatureViewSpec) -> pb.FeatureView:
    msg = pb.FeatureView(name=spec.name, entities=spec.entities, online=spec.online,
                         description=spec.description, tags=spec.tags,
                         create_time=_ts(spec.create_time), update_time=_ts(spec.update_time))
    msg.features.extend(pb.Feature(name=f.name, value_type=_KIND_TO_PB[f.value_kind],
                                   description=f.description) for f in spec.features)
    msg.ttl.FromTimedelta(spec.ttl)
    if spec.source is not None:
        s = spec.source
        kind = _SOURCE_TO_PB[s.kind] if s.kind else pb.SOURCE_KIND_UNSPECIFIED
        msg.source.CopyFrom(pb.DataSource(name=s.name, kind=kind,
                                          path=s.path, table=s.table,
                                          timestamp_field=s.timestamp_field,
                                          created_timestamp_column=s.created_timestamp_column))
    for start, end in spec.materialization_intervals:
        msg.materialization_intervals.add(start_time=_ts(start), end_time=_ts(end))
    return msg


def service_from_pb(msg: pb.FeatureService) -> FeatureServiceSpec:
    return FeatureServiceSpec(name=msg.name, projections=[ProjectionSpec(p.feature_view,
                                                                         list(p.features))
                                                          for p in msg.projections],
                              description=msg.description, tags=dict(msg.tags))


def service_to_pb(spec: FeatureServiceSpec) -> pb.FeatureService:
    return pb.FeatureService(
        name=spec.name, description=spec.description, tags=spec.tags,
        projections=[pb.FeatureViewProjection(feature_view=p.feature_view, features=p.features)
                     for p in spec.projections],
        create_time=_ts(spec.create_time), update_time=_ts(spec.update_time))


def dataset_to_pb(record: DatasetRecord) -> pb.Dataset:
    return pb.Dataset(
        id=record.id, name=record.name, version=record.version, feature_refs=record.feature_refs,
        feature_service=record.feature_service,
        time_range=types_pb2.TimeWindow(start_time=_ts(record.time_start),
                                        end_time=_ts(record.time_end)),
        row_count=record.row_count, content_hash=record.content_hash,
        storage_uri=record.storage_uri,
        columns=[pb.DatasetColumn(name=n, arrow_type=t) for n, t in record.columns],
        join_keys=record.join_keys, timestamp_column=record.timestamp_column,
        description=record.description, tags=record.tags, create_time=_ts(record.create_time))


def report_to_pb(report: QualityReport, full: bool = True) -> pb.DataQualityReport:
    msg = pb.DataQualityReport(
        id=report.id, create_time=_ts(report.create_time), row_count=report.row_count,
        timestamp_column=report.timestamp_column, entity_columns=report.entity_columns,
        duplicate_events=report.duplicate_events, entity_count=report.entity_count)
    if report.dataset:
        msg.dataset = report.dataset
    elif report.feature_view:
        msg.feature_view = report.feature_view
    elif report.rows_hash:
        msg.rows_hash = report.rows_hash
    if report.first_event:
        msg.time_coverage.CopyFrom(types_pb2.TimeWindow(start_time=_ts(report.first_event),
                                                        end_time=_ts(report.last_event)))
    msg.history_length.FromTimedelta(timedelta(seconds=report.history_seconds))
    msg.gaps.extend(pb.TimeGap(start_time=_ts(a), end_time=_ts(b)) for a, b in report.gaps)
    if report.label is not None:
        lab = report.label
        msg.label.CopyFrom(pb.LabelQuality(
            label_column=lab.label_column, unlabeled_count=lab.unlabeled_count,
            unlabeled_fraction=lab.unlabeled_fraction, conflicting_groups=lab.conflicting_groups,
            conflicting_rows=lab.conflicting_rows,
            label_counts=[pb.CategoryCount(value=c.value, count=c.count)
                          for c in lab.label_counts]))
    if full:
        for c in report.columns:
            msg.columns.append(pb.ColumnStatistics(
                name=c.name, kind=_COLUMN_KIND.get(c.kind, pb.COLUMN_KIND_UNSPECIFIED),
                arrow_type=c.arrow_type, count=c.count,
                missing_count=c.missing_count, missing_fraction=c.missing_fraction,
                distinct_count=c.distinct_count, mean=c.mean, std=c.std, min=c.min, max=c.max,
                quantile_levels=c.quantile_levels, quantiles=c.quantiles,
                histogram=[pb.HistogramBin(lower=b.lower, upper=b.upper, count=b.count)
                           for b in c.histogram],
                top_categories=[pb.CategoryCount(value=t.value, count=t.count)
                                for t in c.top_categories]))
    return msg


def value_to_python(value: types_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "timestamp_value":
        return value.timestamp_value.ToDatetime(tzinfo=UTC)
    return getattr(value, kind)


class TableReader:
    """``modelplane.api.v1.TableData`` -> Arrow table (inline IPC, or a parquet file the
    storage policy lets callers name)."""

    def __init__(self, storage: StoragePolicy, arrow_limits: ArrowLimits | None = None) -> None:
        self.storage = storage
        self.arrow_limits = arrow_limits or ArrowLimits()

    def read(self, data: types_pb2.TableData, field: str) -> pa.Table:
        which = data.WhichOneof("source")
        if which == "arrow_ipc":
            # size and rows checked batch by batch before anything is inflated
            return read_ipc_stream(data.arrow_ipc, self.arrow_limits, f"{field}.arrow_ipc")
        if which == "parquet_uri":
            where = f"{field}.parquet_uri"
            return read_parquet(self.storage.readable(data.parquet_uri, where), where)
        raise InvalidArgument(f"{field}: set arrow_ipc or parquet_uri", reason="TABLE_REQUIRED",
                              field_violations=[FieldViolation(field, "required")])


def _require(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required", reason="FIELD_REQUIRED",
                              field_violations=[FieldViolation(field, "required")])
    return value


class FeatureStoreServicer(featurestore_pb2_grpc.FeatureStoreServiceServicer):
    def __init__(self, core: FeatureStoreCore, tables: TableReader) -> None:
        self.core = core
        self.repo = core.repository
        self.tables = tables

    # ---------------------------------------------------------------- definitions

    async def ApplyRepo(self, request: pb.ApplyRepoRequest, context: Any) -> pb.ApplyRepoResponse:
        if request.repo_path:
            if request.entities or request.feature_views or request.feature_services:
                raise InvalidArgument("give repo_path or objects, not both",
                                      reason="REPO_AND_OBJECTS",
                                      field_violations=[FieldViolation("repo_path",
                                                                       "set with objects")])
            principal = current_principal()
            if principal.role < Role.ADMIN:
                raise PermissionDenied("applying a repo directory runs its Python code: admin only",
                                       reason="ROLE_TOO_LOW",
                                       metadata={"required_role": "admin",
                                                 "role": principal.role.name.lower()})
            applied = await asyncio.to_thread(self.repo.apply_directory, request.repo_path,
                                              dry_run=request.dry_run)
        else:
            entities = [entity_from_pb(e, f"entities[{i}]") for i, e in enumerate(request.entities)]
            views = [view_from_pb(v, f"feature_views[{i}]")
                     for i, v in enumerate(request.feature_views)]
            services = [service_from_pb(s) for s in request.feature_services]
            if not (entities or views or services):
                raise InvalidArgument("nothing to apply: give repo_path or objects",
                                      reason="EMPTY_REPO",
                                      field_violations=[FieldViolation("repo_path",
                                                                       "or objects required")])
            applied = await asyncio.to_thread(self.repo.apply, entities, views, services,
                                              dry_run=request.dry_run)
        return pb.ApplyRepoResponse(entities=[entity_to_pb(e) for e in applied.entities],
                                    feature_views=[view_to_pb(v) for v in applied.feature_views],
                                    feature_services=[service_to_pb(s)
                                                      for s in applied.feature_services])

    async def GetEntity(self, request: pb.GetEntityRequest, context: Any) -> pb.Entity:
        return entity_to_pb(await asyncio.to_thread(self.repo.get_entity,
                                                    _require(request.name, "name")))

    async def ListEntities(self, request: pb.ListEntitiesRequest,
                           context: Any) -> pb.ListEntitiesResponse:
        items, token = page_of(await asyncio.to_thread(self.repo.list_entities),
                               request.page_size, request.page_token, {"kind": "entities"})
        return pb.ListEntitiesResponse(entities=[entity_to_pb(e) for e in items],
                                       next_page_token=token)

    async def CreateEntity(self, request: pb.CreateEntityRequest, context: Any) -> pb.Entity:
        spec = entity_from_pb(request.entity)
        applied = await asyncio.to_thread(self.repo.apply, [spec], create_only=True)
        return entity_to_pb(applied.entities[0])

    async def DeleteEntity(self, request: pb.DeleteEntityRequest, context: Any) -> empty_pb2.Empty:
        await asyncio.to_thread(self.repo.delete_entity, _require(request.name, "name"))
        return empty_pb2.Empty()

    async def GetFeatureView(self, request: pb.GetFeatureViewRequest,
                             context: Any) -> pb.FeatureView:
        return view_to_pb(await asyncio.to_thread(self.repo.get_feature_view,
                                                  _require(request.name, "name")))

    async def ListFeatureViews(self, request: pb.ListFeatureViewsRequest,
                               context: Any) -> pb.ListFeatureViewsResponse:
        views = await asyncio.to_thread(self.repo.list_feature_views, request.entity)
        items, token = page_of(views, request.page_size, request.page_token,
                               {"kind": "feature_views", "entity": request.entity})
        return pb.ListFeatureViewsResponse(feature_views=[view_to_pb(v) for v in items],
                                           next_page_token=token)

    async def CreateFeatureView(self, request: pb.CreateFeatureViewRequest,
                                context: Any) -> pb.FeatureView:
        spec = view_from_pb(request.feature_view)
        applied = await asyncio.to_thread(self.repo.apply, (), [spec], create_only=True)
        return view_to_pb(applied.feature_views[0])

    async def DeleteFeatureView(self, request: pb.DeleteFeatureViewRequest,
                                context: Any) -> empty_pb2.Empty:
        await asyncio.to_thread(self.repo.delete_feature_view, _require(request.name, "name"))
        return empty_pb2.Empty()

    async def GetFeatureService(self, request: pb.GetFeatureServiceRequest,
                                context: Any) -> pb.FeatureService:
        return service_to_pb(await asyncio.to_thread(self.repo.get_feature_service,
                                                     _require(request.name, "name")))

    async def ListFeatureServices(self, request: pb.ListFeatureServicesRequest,
                                  context: Any) -> pb.ListFeatureServicesResponse:
        items, token = page_of(await asyncio.to_thread(self.repo.list_feature_services),
                               request.page_size, request.page_token, {"kind": "feature_services"})
        return pb.ListFeatureServicesResponse(feature_services=[service_to_pb(s) for s in items],
                                              next_page_token=token)

    async def CreateFeatureService(self, request: pb.CreateFeatureServiceRequest,
                                   context: Any) -> pb.FeatureService:
        spec = service_from_pb(request.feature_service)
        applied = await asyncio.to_thread(self.repo.apply, (), (), [spec], create_only=True)
        return service_to_pb(applied.feature_services[0])

    async def DeleteFeatureService(self, request: pb.DeleteFeatureServiceRequest,
                                   context: Any) -> empty_pb2.Empty:
        await asyncio.to_thread(self.repo.delete_feature_service, _require(request.name, "name"))
        return empty_pb2.Empty()

    # ---------------------------------------------------------------- ingestion

    async def WriteOfflineRows(self, request: pb.WriteOfflineRowsRequest,
                               context: Any) -> pb.WriteOfflineRowsResponse:
        view = _require(request.feature_view, "feature_view")
        rows = await asyncio.to_thread(self.tables.read, request.rows, "rows")
        count, first, last = await asyncio.to_thread(self.repo.write_offline, view, rows)
        out = pb.WriteOfflineRowsResponse(row_count=count)
        if first is not None:
            out.event_time_range.CopyFrom(types_pb2.TimeWindow(start_time=_ts(first),
                                                               end_time=_ts(last)))
        return out

    async def PushOnlineRows(self, request: pb.PushOnlineRowsRequest,
                             context: Any) -> pb.PushOnlineRowsResponse:
        view = _require(request.feature_view, "feature_view")
        rows = await asyncio.to_thread(self.tables.read, request.rows, "rows")
        count = await asyncio.to_thread(self.core.push_online, view, rows, request.also_offline)
        return pb.PushOnlineRowsResponse(row_count=count)

    async def StreamOnlineRows(self, request_iterator: AsyncIterator[pb.StreamOnlineRowsRequest],
                               context: Any) -> pb.StreamOnlineRowsResponse:
        async def batches() -> AsyncIterator[RowBatch]:
            i = 0
            async for message in request_iterator:
                rows = await asyncio.to_thread(self.tables.read, message.rows,
                                               f"messages[{i}].rows")
                yield RowBatch(message.feature_view, rows, message.also_offline)
                i += 1

        result = await self.core.push_online_stream(batches())
        return pb.StreamOnlineRowsResponse(
            received_count=result.received, written_count=result.written,
            superseded_count=result.superseded, rejected_count=result.rejected_count,
            rejected=[pb.RejectedRow(index=r.index, field=r.field, reason=r.reason)
                      for r in result.rejected])

    async def Materialize(self, request: pb.MaterializeRequest,
                          context: Any) -> AsyncIterator[pb.MaterializeProgress]:
        events = self.repo.materialize(list(request.feature_views),
                                       _dt(request.start_time, request.HasField("start_time")),
                                       _dt(request.end_time, request.HasField("end_time")))
        done = object()
        while True:
            event: MaterializeEvent | object = await asyncio.to_thread(next, events, done)
            if event is done:
                return
            assert isinstance(event, MaterializeEvent)
            yield pb.MaterializeProgress(
                feature_view=event.feature_view, state=_MAT_STATE[event.state],
                range=types_pb2.TimeWindow(start_time=_ts(event.start), end_time=_ts(event.end)),
                rows_written=event.rows_written, views_done=event.views_done,
                views_total=event.views_total)

    # ---------------------------------------------------------------- online

    async def GetOnlineFeatures(self, request: pb.GetOnlineFeaturesRequest,
                                context: Any) -> bytes:
        """The response as wire bytes: registered through ``wire_handlers`` (see main.py),
        so grpc sends them as they are."""
        online = self.core.online
        plan = await online.plan(request.feature_refs, request.feature_service,
                                 request.full_feature_names)
        entities = {k: [value_to_python(v) for v in vl.values]
                    for k, vl in request.entities.items()}
        result = await online.lookup(plan, entities)
        return modelplane_response(result)

    # ---------------------------------------------------------------- datasets

    async def CreateDataset(self, request: pb.CreateDatasetRequest, context: Any) -> pb.Dataset:
        ds = request.dataset
        entity_rows = None
        from_view = None
        if request.HasField("entity_rows"):
            entity_rows = await asyncio.to_thread(self.tables.read, request.entity_rows,
                                                  "entity_rows")
        if request.HasField("entity_rows_from_view"):
            spec = request.entity_rows_from_view
            window = spec.time_range
            from_view = EntityRowsFromView(
                feature_view=_require(spec.feature_view, "entity_rows_from_view.feature_view"),
                columns=tuple(spec.columns),
                start=_dt(window.start_time, window.HasField("start_time")),
                end=_dt(window.end_time, window.HasField("end_time")))
        record = await asyncio.to_thread(
            self.core.datasets.create, name=ds.name, refs=list(ds.feature_refs),
            service=ds.feature_service, entity_rows=entity_rows, from_view=from_view,
            timestamp_column=request.timestamp_column, description=ds.description,
            tags=dict(ds.tags))
        return dataset_to_pb(record)

    async def GetDataset(self, request: pb.GetDatasetRequest, context: Any) -> pb.Dataset:
        return dataset_to_pb(await asyncio.to_thread(self.core.datasets.get,
                                                     _require(request.id, "id")))

    async def ListDatasets(self, request: pb.ListDatasetsRequest,
                           context: Any) -> pb.ListDatasetsResponse:
        query = {"kind": "datasets", "name": request.name}
        limit = page_size(request.page_size)
        offset = decode_offset(request.page_token, query)
        items, more = await asyncio.to_thread(self.core.datasets.list, request.name, limit, offset)
        return pb.ListDatasetsResponse(
            datasets=[dataset_to_pb(d) for d in items],
            next_page_token=encode_page_token(offset + len(items) if more else None, query))

    async def DeleteDataset(self, request: pb.DeleteDatasetRequest,
                            context: Any) -> empty_pb2.Empty:
        await asyncio.to_thread(self.core.datasets.delete, _require(request.id, "id"))
        return empty_pb2.Empty()

    async def ReadDataset(self, request: pb.ReadDatasetRequest,
                          context: Any) -> AsyncIterator[pb.ReadDatasetResponse]:
        chunks = self.core.datasets.read_chunks(_require(request.id, "id"), list(request.columns),
                                                request.chunk_rows)
        done = object()
        while True:
            chunk = await asyncio.to_thread(next, chunks, done)
            if not isinstance(chunk, tuple):
                return
            payload, count = chunk
            yield pb.ReadDatasetResponse(arrow_ipc=payload, row_count=count)

    # ---------------------------------------------------------------- quality

    async def ComputeDataQuality(self, request: pb.ComputeDataQualityRequest,
                                 context: Any) -> pb.DataQualityReport:
        which = request.WhichOneof("subject")
        rows = None
        if which == "rows":
            rows = await asyncio.to_thread(self.tables.read, request.rows, "rows")
        window = request.time_range
        report = await asyncio.to_thread(
            self.core.compute_quality, dataset=request.dataset if which == "dataset" else "",
            feature_view=request.feature_view if which == "feature_view" else "", rows=rows,
            label_column=request.label_column, timestamp_column=request.timestamp_column,
            entity_columns=list(request.entity_columns),
            start=_dt(window.start_time, window.HasField("start_time")),
            end=_dt(window.end_time, window.HasField("end_time")),
            histogram_bins=request.histogram_bins, top_categories=request.top_categories,
            gap_seconds=request.gap_threshold.ToTimedelta().total_seconds()
            if request.HasField("gap_threshold") else 0.0)
        return report_to_pb(report)

    async def GetDataQualityReport(self, request: pb.GetDataQualityReportRequest,
                                   context: Any) -> pb.DataQualityReport:
        return report_to_pb(await asyncio.to_thread(self.core.get_report,
                                                    _require(request.id, "id")))

    async def ListDataQualityReports(self, request: pb.ListDataQualityReportsRequest,
                                     context: Any) -> pb.ListDataQualityReportsResponse:
        query = {"kind": "quality_reports", "dataset": request.dataset,
                 "feature_view": request.feature_view}
        limit = page_size(request.page_size)
        offset = decode_offset(request.page_token, query)
        items, more = await asyncio.to_thread(self.core.list_reports, request.dataset,
                                              request.feature_view, limit, offset)
        return pb.ListDataQualityReportsResponse(
            reports=[report_to_pb(r, request.full_view) for r in items],
            next_page_token=encode_page_token(offset + len(items) if more else None, query))
