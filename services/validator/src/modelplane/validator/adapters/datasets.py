"""Datasets from parquet files and from the featurestore (modelplane.featurestore.v1),
and the featurestore's offline/online reads for the parity check."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import grpc
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelplane.api.v1 import types_pb2
from modelplane.featurestore.v1 import featurestore_pb2 as fs
from modelplane.featurestore.v1 import featurestore_pb2_grpc as fs_grpc
from modelplane.kit.arrow_ipc import ArrowBudget, ArrowLimits
from modelplane.kit.errors import FieldViolation, InvalidArgument, NotFound
from modelplane.kit.locations import StoragePolicy, read_parquet
from modelplane.kit.status import raise_from_rpc_error
from modelplane.validator.checks.base import FeatureParitySource, HistoricalFeatures
from modelplane.validator.ports import DatasetInfo
from modelplane.validator.run import DatasetRef


def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas()


class DatasetSources:
    """Parquet URIs read directly, where the storage policy lets callers name them;
    featurestore datasets through its gRPC contract."""

    def __init__(self, storage: StoragePolicy, featurestore: grpc.aio.Channel | None = None,
                 timeout_s: float = 300.0, arrow_limits: ArrowLimits | None = None) -> None:
        self._storage = storage
        self._stub = fs_grpc.FeatureStoreServiceStub(featurestore) if featurestore else None
        self._timeout = timeout_s
        self._arrow_limits = arrow_limits or ArrowLimits()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def describe(self, ref: DatasetRef, field: str = "dataset") -> DatasetInfo:
        self._loop = asyncio.get_running_loop()
        if ref.parquet_uri:
            where = f"{field}.parquet_uri"
            loc = self._storage.readable(ref.parquet_uri, where)

            def schema_of() -> list[str]:
                try:
                    return list(pq.ParquetDataset(loc.target).schema.names)
                except (pa.ArrowException, OSError, ValueError):
                    # (not the parser's message: it can quote the file or its path)
                    raise InvalidArgument(f"{where}: {ref.parquet_uri!r} is not a readable "
                                          "parquet dataset", reason="BAD_PARQUET",
                                          metadata={"field": where},
                                          field_violations=[FieldViolation(where, "unreadable")]
                                          ) from None

            names = await asyncio.to_thread(schema_of)
            return DatasetInfo(ref=ref, columns=[n for n in names if n != "__index_level_0__"])
        if self._stub is None:
            raise NotFound(f"dataset {ref.dataset!r}: no featurestore configured",
                           reason="DATASET_NOT_FOUND", metadata={"dataset": ref.dataset})
        try:
            ds = await self._stub.GetDataset(fs.GetDatasetRequest(id=ref.dataset), timeout=30)
        except grpc.aio.AioRpcError as err:
            raise_from_rpc_error(err)
        return DatasetInfo(ref=ref, columns=[c.name for c in ds.columns], row_count=ds.row_count,
                           join_keys=list(ds.join_keys), timestamp_column=ds.timestamp_column,
                           feature_refs=list(ds.feature_refs), content_hash=ds.content_hash)

    async def load(self, ref: DatasetRef, columns: Sequence[str] | None = None) -> pd.DataFrame:
        if ref.parquet_uri:
            # checked again: the run may start long after the request (a restart, a new root list)
            loc = self._storage.readable(ref.parquet_uri, "dataset.parquet_uri")
            table = await asyncio.to_thread(read_parquet, loc, "dataset.parquet_uri", columns)
            return await asyncio.to_thread(_arrow_to_pandas, table)
        assert self._stub is not None
        return await self._read(ref.dataset, columns)

    async def _read(self, dataset_id: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        assert self._stub is not None
        tables = []
        budget = ArrowBudget(self._arrow_limits)  # the chunks make one table: one budget
        try:
            async for chunk in self._stub.ReadDataset(
                    fs.ReadDatasetRequest(id=dataset_id, columns=list(columns or [])),
                    timeout=self._timeout):
                tables.append(budget.read(chunk.arrow_ipc, "ReadDatasetResponse.arrow_ipc"))
        except grpc.aio.AioRpcError as err:
            raise_from_rpc_error(err)
        if not tables:
            return pd.DataFrame(columns=list(columns or []))
        return await asyncio.to_thread(_arrow_to_pandas,
                                       pa.concat_tables(tables, promote_options="default"))

    def parity_source(self) -> FeatureParitySource | None:
        if self._stub is None or self._loop is None:
            return None
        return FeatureStoreParity(self, self._loop)

    def history_source(self) -> HistoricalFeatures | None:
        if self._stub is None or self._loop is None:
            return None
        return FeatureStoreHistory(self, self._loop)


def _value(v: object) -> types_pb2.Value:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return types_pb2.Value(null_value=True)
    if isinstance(v, bool):
        return types_pb2.Value(bool_value=v)
    if isinstance(v, int):
        return types_pb2.Value(int64_value=v)
    if isinstance(v, float):
        return types_pb2.Value(double_value=v)
    if isinstance(v, bytes):
        return types_pb2.Value(bytes_value=v)
    return types_pb2.Value(string_value=str(v))


def _python(v: types_pb2.Value) -> object:
    kind = v.WhichOneof("kind")
    if kind in (None, "null_value"):
        return None
    if kind == "timestamp_value":
        return v.timestamp_value.ToDatetime(tzinfo=UTC)
    return getattr(v, kind)


class FeatureStoreParity:
    """Online values (GetOnlineFeatures) and offline values as of now (a point-in-time
    dataset built for the sampled entities, read, then deleted). Called from a worker
    thread; the gRPC calls run on the service's event loop."""

    def __init__(self, sources: DatasetSources, loop: asyncio.AbstractEventLoop) -> None:
        self._sources = sources
        self._loop = loop

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=600)

    def online_features(self, entities: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
        return self._call(self._online(entities, features))

    def offline_features(self, entities: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
        return self._call(self._offline(entities, features))

    async def _online(self, entities: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
        stub = self._sources._stub
        assert stub is not None
        request = fs.GetOnlineFeaturesRequest(feature_refs=list(features))
        for col in entities.columns:
            request.entities[col].values.extend(_value(v) for v in entities[col].tolist())
        try:
            response = await stub.GetOnlineFeatures(request, timeout=60)
        except grpc.aio.AioRpcError as err:
            raise_from_rpc_error(err)
        out = {c.name: [_python(v) for v in c.values] for c in response.columns}
        frame = pd.DataFrame(out)
        for col in entities.columns:  # keep the key dtype of the dataset for the merge
            if col in frame:
                frame[col] = frame[col].astype(entities[col].dtype)
        return frame

    async def _offline(self, entities: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
        rows = entities.copy()
        rows["event_timestamp"] = pd.Series(pd.Timestamp(datetime.now(UTC)).floor("us"),
                                            index=rows.index).astype("datetime64[us, UTC]")
        name = f"validator_parity_{datetime.now(UTC):%Y%m%d%H%M%S%f}"
        ds = await create_point_in_time(self._sources, rows, "event_timestamp", name,
                                        feature_refs=features, description=(
                                            "validator feature-parity probe (deleted after use)"))
        try:
            frame = await self._sources._read(ds.id)
        finally:
            try:
                await self._sources._stub.DeleteDataset(  # type: ignore[union-attr]
                    fs.DeleteDatasetRequest(id=ds.id), timeout=30)
            except grpc.aio.AioRpcError:
                pass
        keep = [c for c in frame.columns if c in entities.columns or c in
                {f.split(":")[-1] for f in features}]
        return frame[keep]


async def create_point_in_time(sources: DatasetSources, rows: pd.DataFrame, timestamp_column: str,
                               name: str, *, feature_refs: Sequence[str] = (),
                               feature_service: str = "", description: str = "",
                               tags: dict[str, str] | None = None) -> fs.Dataset:
    """A featurestore dataset: ``rows`` (keys, event time, extra columns) with the features
    joined as of each row's event time (``CreateDataset``)."""
    stub = sources._stub
    assert stub is not None
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(rows, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    try:
        return await stub.CreateDataset(fs.CreateDatasetRequest(
            dataset=fs.Dataset(name=name, feature_refs=list(feature_refs),
                               feature_service=feature_service, description=description,
                               tags=tags or {}),
            entity_rows=types_pb2.TableData(arrow_ipc=sink.getvalue().to_pybytes()),
            timestamp_column=timestamp_column), timeout=300)
    except grpc.aio.AioRpcError as err:
        raise_from_rpc_error(err)


class FeatureStoreHistory:
    """Point-in-time windows for the backtest: the entity rows go to ``CreateDataset`` with
    the feature service (or refs); columns the featurestore will join are dropped from the
    entity rows first, so every feature value comes from the featurestore as of the row's
    time. The dataset is kept (named, tagged ``created_by: validator``) and read back."""

    def __init__(self, sources: DatasetSources, loop: asyncio.AbstractEventLoop) -> None:
        self._sources = sources
        self._loop = loop

    def historical_features(self, entity_rows: pd.DataFrame, timestamp_column: str, *,
                            feature_service: str, feature_refs: Sequence[str],
                            name: str) -> tuple[pd.DataFrame, str]:
        return asyncio.run_coroutine_threadsafe(
            self._historical(entity_rows, timestamp_column, feature_service, feature_refs, name),
            self._loop).result(timeout=900)

    async def _feature_names(self, feature_service: str, feature_refs: Sequence[str]) -> set[str]:
        stub = self._sources._stub
        assert stub is not None
        if not feature_service:
            return {r.split(":")[-1] for r in feature_refs}
        try:
            service = await stub.GetFeatureService(
                fs.GetFeatureServiceRequest(name=feature_service), timeout=30)
            names: set[str] = set()
            for projection in service.projections:
                if projection.features:
                    names.update(projection.features)
                else:
                    view = await stub.GetFeatureView(
                        fs.GetFeatureViewRequest(name=projection.feature_view), timeout=30)
                    names.update(f.name for f in view.features)
        except grpc.aio.AioRpcError as err:
            raise_from_rpc_error(err)
        return names

    async def _historical(self, entity_rows: pd.DataFrame, timestamp_column: str,
                          feature_service: str, feature_refs: Sequence[str],
                          name: str) -> tuple[pd.DataFrame, str]:
        joined = await self._feature_names(feature_service, feature_refs)
        rows = entity_rows.drop(columns=[c for c in entity_rows.columns
                                         if c in joined and c != timestamp_column])
        ds = await create_point_in_time(
            self._sources, rows, timestamp_column, name,
            feature_refs=[] if feature_service else feature_refs, feature_service=feature_service,
            description="validator backtest window, joined point-in-time",
            tags={"created_by": "validator"})
        return await self._sources._read(ds.id), ds.id
