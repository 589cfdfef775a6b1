"""gRPC servicer: ``modelplane.featurestore.v1.FeatureStoreService`` over the runtime's
parts (``parts.FeatureStoreParts``).

Messages in (``convert.py``), domain calls (blocking ones moved to a worker thread),
messages out; nothing else. Errors are the domain's ``ModelplaneError``s, mapped to
``google.rpc.Status`` once by the kit's interceptor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from google.protobuf import empty_pb2

from modelplane.api.v1 import types_pb2
from modelplane.featurestore.convert import (
    TableReader,
    dataset_to_pb,
    dt_from_pb,
    entity_from_pb,
    entity_to_pb,
    materialize_progress_to_pb,
    report_to_pb,
    service_from_pb,
    service_to_pb,
    stream_result_to_pb,
    ts_to_pb,
    value_to_python,
    view_from_pb,
    view_to_pb,
)
from modelplane.featurestore.datasets import EntityRowsFromView
from modelplane.featurestore.feature_repository import MaterializeEvent
from modelplane.featurestore.online_stream import RowBatch
from modelplane.featurestore.v1 import featurestore_pb2 as pb
from modelplane.featurestore.v1 import featurestore_pb2_grpc
from modelplane.featurestore.wire import modelplane_response
from modelplane.kit.auth import Role, current_principal
from modelplane.kit.errors import FieldViolation, InvalidArgument, PermissionDenied
from modelplane.kit.paging import decode_offset, encode_page_token, page_of, page_size

if TYPE_CHECKING:
    from modelplane.featurestore.feature_repository import FeatureRepository
    from modelplane.featurestore.parts import FeatureStoreParts


def _require(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required", reason="FIELD_REQUIRED",
                              field_violations=[FieldViolation(field, "required")])
    return value


class FeatureStoreServicer(featurestore_pb2_grpc.FeatureStoreServiceServicer):
    def __init__(self, parts: Callable[[], FeatureStoreParts], tables: TableReader) -> None:
        #: the runtime's parts (UNAVAILABLE/STARTING until the runtime has built them)
        self.parts = parts
        self.tables = tables

    @property
    def repo(self) -> FeatureRepository:
        return self.parts().repository

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
            out.event_time_range.CopyFrom(types_pb2.TimeWindow(start_time=ts_to_pb(first),
                                                               end_time=ts_to_pb(last)))
        return out

    async def PushOnlineRows(self, request: pb.PushOnlineRowsRequest,
                             context: Any) -> pb.PushOnlineRowsResponse:
        view = _require(request.feature_view, "feature_view")
        rows = await asyncio.to_thread(self.tables.read, request.rows, "rows")
        count = await asyncio.to_thread(self.parts().writer.push, view, rows, request.also_offline)
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

        return stream_result_to_pb(await self.parts().writer.push_stream(batches()))

    async def Materialize(self, request: pb.MaterializeRequest,
                          context: Any) -> AsyncIterator[pb.MaterializeProgress]:
        events = self.repo.materialize(
            list(request.feature_views),
            dt_from_pb(request.start_time, request.HasField("start_time")),
            dt_from_pb(request.end_time, request.HasField("end_time")))
        done = object()
        while True:
            event: MaterializeEvent | object = await asyncio.to_thread(next, events, done)
            if event is done:
                return
            assert isinstance(event, MaterializeEvent)
            yield materialize_progress_to_pb(event)

    # ---------------------------------------------------------------- online

    async def GetOnlineFeatures(self, request: pb.GetOnlineFeaturesRequest,
                                context: Any) -> bytes:
        """The response as wire bytes: registered through ``wire_handlers`` (see runtime.py),
        so grpc sends them as they are."""
        online = self.parts().online
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
                start=dt_from_pb(window.start_time, window.HasField("start_time")),
                end=dt_from_pb(window.end_time, window.HasField("end_time")))
        record = await asyncio.to_thread(
            self.parts().datasets.create, name=ds.name, refs=list(ds.feature_refs),
            service=ds.feature_service, entity_rows=entity_rows, from_view=from_view,
            timestamp_column=request.timestamp_column, description=ds.description,
            tags=dict(ds.tags))
        return dataset_to_pb(record)

    async def GetDataset(self, request: pb.GetDatasetRequest, context: Any) -> pb.Dataset:
        return dataset_to_pb(await asyncio.to_thread(self.parts().datasets.get,
                                                     _require(request.id, "id")))

    async def ListDatasets(self, request: pb.ListDatasetsRequest,
                           context: Any) -> pb.ListDatasetsResponse:
        query = {"kind": "datasets", "name": request.name}
        limit = page_size(request.page_size)
        offset = decode_offset(request.page_token, query)
        items, more = await asyncio.to_thread(self.parts().datasets.list, request.name, limit,
                                              offset)
        return pb.ListDatasetsResponse(
            datasets=[dataset_to_pb(d) for d in items],
            next_page_token=encode_page_token(offset + len(items) if more else None, query))

    async def DeleteDataset(self, request: pb.DeleteDatasetRequest,
                            context: Any) -> empty_pb2.Empty:
        await asyncio.to_thread(self.parts().datasets.delete, _require(request.id, "id"))
        return empty_pb2.Empty()

    async def ReadDataset(self, request: pb.ReadDatasetRequest,
                          context: Any) -> AsyncIterator[pb.ReadDatasetResponse]:
        chunks = self.parts().datasets.read_chunks(_require(request.id, "id"),
                                                   list(request.columns), request.chunk_rows)
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
            self.parts().quality.compute, dataset=request.dataset if which == "dataset" else "",
            feature_view=request.feature_view if which == "feature_view" else "", rows=rows,
            label_column=request.label_column, timestamp_column=request.timestamp_column,
            entity_columns=list(request.entity_columns),
            start=dt_from_pb(window.start_time, window.HasField("start_time")),
            end=dt_from_pb(window.end_time, window.HasField("end_time")),
            histogram_bins=request.histogram_bins, top_categories=request.top_categories,
            gap_seconds=request.gap_threshold.ToTimedelta().total_seconds()
            if request.HasField("gap_threshold") else 0.0)
        return report_to_pb(report)

    async def GetDataQualityReport(self, request: pb.GetDataQualityReportRequest,
                                   context: Any) -> pb.DataQualityReport:
        return report_to_pb(await asyncio.to_thread(self.parts().quality.get,
                                                    _require(request.id, "id")))

    async def ListDataQualityReports(self, request: pb.ListDataQualityReportsRequest,
                                     context: Any) -> pb.ListDataQualityReportsResponse:
        query = {"kind": "quality_reports", "dataset": request.dataset,
                 "feature_view": request.feature_view}
        limit = page_size(request.page_size)
        offset = decode_offset(request.page_token, query)
        items, more = await asyncio.to_thread(self.parts().quality.list, request.dataset,
                                              request.feature_view, limit, offset)
        return pb.ListDataQualityReportsResponse(
            reports=[report_to_pb(r, request.full_view) for r in items],
            next_page_token=encode_page_token(offset + len(items) if more else None, query))
