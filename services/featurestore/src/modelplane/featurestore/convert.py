"""Protobuf <-> the featurestore's domain: entities, feature views and services,
datasets, quality reports, materialize progress, stream results, caller tables.

Pure translation (plus the one read of a caller's ``TableData`` under the storage
policy); bad enum values are ``INVALID_ARGUMENT`` naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from google.protobuf.timestamp_pb2 import Timestamp

from modelplane.api.v1 import types_pb2
from modelplane.featurestore.data_quality import QualityReport
from modelplane.featurestore.datasets import DatasetRecord
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
from modelplane.featurestore.online_stream import StreamPushResult
from modelplane.featurestore.v1 import featurestore_pb2 as pb
from modelplane.kit.arrow_ipc import ArrowLimits, read_ipc_stream
from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.kit.locations import StoragePolicy, read_parquet

_KIND_TO_PB = {k: pb.ValueType.Value(f"VALUE_TYPE_{k.value}") for k in ValueKind}
_PB_TO_KIND = {v: k for k, v in _KIND_TO_PB.items()}
_SOURCE_TO_PB = {SourceKind.FILE: pb.SOURCE_KIND_FILE, SourceKind.POSTGRES: pb.SOURCE_KIND_POSTGRES}
_PB_TO_SOURCE = {v: k for k, v in _SOURCE_TO_PB.items()}
_MAT_STATE = {"RUNNING": pb.MATERIALIZE_STATE_RUNNING, "SUCCEEDED": pb.MATERIALIZE_STATE_SUCCEEDED,
              "SKIPPED": pb.MATERIALIZE_STATE_SKIPPED}
_COLUMN_KIND = {"NUMERIC": pb.COLUMN_KIND_NUMERIC, "CATEGORICAL": pb.COLUMN_KIND_CATEGORICAL,
                "TIMESTAMP": pb.COLUMN_KIND_TIMESTAMP, "BOOL": pb.COLUMN_KIND_BOOL}


def ts_to_pb(dt: datetime | str | None) -> Timestamp | None:
    if dt is None or dt == "":
        return None
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    out = Timestamp()
    out.FromDatetime(dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC))
    return out


def dt_from_pb(ts: Timestamp, present: bool) -> datetime | None:
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
                     create_time=ts_to_pb(spec.create_time), update_time=ts_to_pb(spec.update_time))


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
                         create_time=ts_to_pb(spec.create_time),
                         update_time=ts_to_pb(spec.update_time))
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
        msg.materialization_intervals.add(start_time=ts_to_pb(start), end_time=ts_to_pb(end))
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
        create_time=ts_to_pb(spec.create_time), update_time=ts_to_pb(spec.update_time))


def dataset_to_pb(record: DatasetRecord) -> pb.Dataset:
    return pb.Dataset(
        id=record.id, name=record.name, version=record.version, feature_refs=record.feature_refs,
        feature_service=record.feature_service,
        time_range=types_pb2.TimeWindow(start_time=ts_to_pb(record.time_start),
                                        end_time=ts_to_pb(record.time_end)),
        row_count=record.row_count, content_hash=record.content_hash,
        storage_uri=record.storage_uri,
        columns=[pb.DatasetColumn(name=n, arrow_type=t) for n, t in record.columns],
        join_keys=record.join_keys, timestamp_column=record.timestamp_column,
        description=record.description, tags=record.tags, create_time=ts_to_pb(record.create_time))


def report_to_pb(report: QualityReport, full: bool = True) -> pb.DataQualityReport:
    msg = pb.DataQualityReport(
        id=report.id, create_time=ts_to_pb(report.create_time), row_count=report.row_count,
        timestamp_column=report.timestamp_column, entity_columns=report.entity_columns,
        duplicate_events=report.duplicate_events, entity_count=report.entity_count)
    if report.dataset:
        msg.dataset = report.dataset
    elif report.feature_view:
        msg.feature_view = report.feature_view
    elif report.rows_hash:
        msg.rows_hash = report.rows_hash
    if report.first_event:
        msg.time_coverage.CopyFrom(types_pb2.TimeWindow(start_time=ts_to_pb(report.first_event),
                                                        end_time=ts_to_pb(report.last_event)))
    msg.history_length.FromTimedelta(timedelta(seconds=report.history_seconds))
    msg.gaps.extend(pb.TimeGap(start_time=ts_to_pb(a), end_time=ts_to_pb(b))
                    for a, b in report.gaps)
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


def materialize_progress_to_pb(event: MaterializeEvent) -> pb.MaterializeProgress:
    return pb.MaterializeProgress(
        feature_view=event.feature_view, state=_MAT_STATE[event.state],
        range=types_pb2.TimeWindow(start_time=ts_to_pb(event.start),
                                   end_time=ts_to_pb(event.end)),
        rows_written=event.rows_written, views_done=event.views_done,
        views_total=event.views_total)


def stream_result_to_pb(result: StreamPushResult) -> pb.StreamOnlineRowsResponse:
    return pb.StreamOnlineRowsResponse(
        received_count=result.received, written_count=result.written,
        superseded_count=result.superseded, rejected_count=result.rejected_count,
        rejected=[pb.RejectedRow(index=r.index, field=r.field, reason=r.reason)
                  for r in result.rejected])
