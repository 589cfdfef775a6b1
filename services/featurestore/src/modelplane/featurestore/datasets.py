"""Saved, versioned training datasets: point-in-time joins written as parquet with a content
hash."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import ipc

from modelplane.featurestore.feature_repository import FeatureRepository, ResolvedFeature
from modelplane.featurestore.record_store import RecordStore
from modelplane.kit.errors import FieldViolation, InvalidArgument, NotFound

UTC_US = pa.timestamp("us", tz="UTC")


@dataclass
class DatasetRecord:
    id: str
    name: str
    version: int
    feature_refs: list[str]
    feature_service: str
    time_start: str
    time_end: str
    row_count: int
    content_hash: str
    storage_uri: str
    columns: list[tuple[str, str]]
    join_keys: list[str]
    timestamp_column: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    create_time: str = ""

    @property
    def path(self) -> Path:
        return Path(self.storage_uri.removeprefix("file://"))

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> DatasetRecord:
        data = dict(data)
        data["columns"] = [tuple(c) for c in data["columns"]]
        return cls(**data)


@dataclass(frozen=True)
class EntityRowsFromView:
    feature_view: str
    columns: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


def _normalize_timestamps(table: pa.Table) -> pa.Table:
    """Timestamps as UTC microseconds, no schema metadata: one storage form per content."""
    arrays, fields = [], []
    for f, col in zip(table.schema, table.columns):
        if pa.types.is_timestamp(f.type):
            if f.type.tz is None:
                col = pc.assume_timezone(col, "UTC")
            col = col.cast(UTC_US, safe=False)
        arrays.append(col)
        fields.append(pa.field(f.name, col.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def content_hash(table: pa.Table) -> str:
    """sha256 of the rows in a canonical order and layout: equal rows, equal hash."""
    table = _normalize_timestamps(table)
    sortable = [n for n, f in zip(table.column_names, table.schema)
                if not (pa.types.is_nested(f.type) or pa.types.is_null(f.type))]
    if sortable and table.num_rows:
        table = table.take(pc.sort_indices(table, sort_keys=[(c, "ascending") for c in sortable]))
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue()).hexdigest()


class DatasetStore:
    def __init__(self, repository: FeatureRepository, records: RecordStore, root: Path) -> None:
        self.repository = repository
        self.records = records
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _entity_rows_from_view(self, spec: EntityRowsFromView,
                               keys_needed: Sequence[str]) -> tuple[pa.Table, str]:
        view = self.repository.get_feature_view(spec.feature_view)
        assert view.source is not None
        ts = view.source.timestamp_field
        available = set(view.join_keys) | {f.name for f in view.features}
        for i, c in enumerate(spec.columns):
            if c not in available:
                raise InvalidArgument(
                    f"entity_rows_from_view.columns[{i}]: feature view {view.name!r} "
                    f"has no column {c!r}",
                    reason="COLUMN_NOT_FOUND", metadata={"feature_view": view.name, "column": c},
                    field_violations=[FieldViolation(f"entity_rows_from_view.columns[{i}]",
                                                     f"unknown column {c!r}")])
        columns = list(dict.fromkeys([*view.join_keys, ts, *spec.columns]))
        _, table = self.repository.read_source(view.name, spec.start, spec.end, columns)
        return table, ts

    def create(self, *, name: str, refs: Sequence[str], service: str,
               entity_rows: pa.Table | None, from_view: EntityRowsFromView | None,
               timestamp_column: str, description: str = "",
               tags: dict[str, str] | None = None) -> DatasetRecord:
        from modelplane.featurestore.definitions import NAME_PATTERN

        if not name or not NAME_PATTERN.match(name):
            raise InvalidArgument("dataset.name: a name (letters, digits, _) is required",
                                  reason="BAD_DATASET_NAME",
                                  field_violations=[FieldViolation("dataset.name",
                                                                   "invalid or empty")])
        features = self.repository.resolve_refs(refs, service, field="dataset.feature_refs")
        views = {f.view for f in features}
        keys_needed = list(dict.fromkeys(k for v in sorted(views)
                                         for k in self.repository.get_feature_view(v).join_keys))
        if (entity_rows is None) == (from_view is None):
            raise InvalidArgument("give exactly one of entity_rows and entity_rows_from_view",
                                  reason="ENTITY_ROWS_REQUIRED",
                                  field_violations=[FieldViolation("entity_rows",
                                                                   "exactly one source")])
        if from_view is not None:
            table, ts = self._entity_rows_from_view(from_view, keys_needed)
        else:
            assert entity_rows is not None
            table, ts = entity_rows, timestamp_column or "event_timestamp"
        self._check_entity_rows(table, ts, keys_needed, features)
        if not table.num_rows:
            raise InvalidArgument("the entity rows are empty: nothing to join features onto",
                                  reason="NO_ENTITY_ROWS",
                                  field_violations=[FieldViolation("entity_rows", "no rows")])
        joined = self.repository.historical_features(table, ts, features)
        joined = _normalize_timestamps(joined)
        bounds = pc.min_max(joined.column(ts)).as_py()
        dataset_id = "ds_" + uuid.uuid4().hex[:16]
        path = self.root / f"{dataset_id}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(joined, tmp)
        os.replace(tmp, path)
        record = DatasetRecord(
            id=dataset_id, name=name, version=0, feature_refs=[f.ref for f in features],
            feature_service=service, time_start=bounds["min"].isoformat(),
            time_end=bounds["max"].isoformat(), row_count=joined.num_rows,
            content_hash=content_hash(joined), storage_uri=path.resolve().as_uri(),
            columns=[(f.name, str(f.type)) for f in joined.schema], join_keys=keys_needed,
            timestamp_column=ts, description=description, tags=dict(tags or {}),
            create_time=datetime.now(UTC).isoformat())
        try:
            stored = self.records.add_dataset(record.to_record())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        record.version = stored["version"]
        return record

    @staticmethod
    def _check_entity_rows(table: pa.Table, ts: str, keys: Sequence[str],
                           features: Sequence[ResolvedFeature]) -> None:
        violations = []
        names = set(table.column_names)
        if ts not in names:
            violations.append(FieldViolation(f"entity_rows.{ts}",
                                             "event timestamp column is missing"))
        elif not pa.types.is_timestamp(table.schema.field(ts).type):
            got = table.schema.field(ts).type
            violations.append(FieldViolation(f"entity_rows.{ts}",
                                             f"must be a timestamp, got {got}"))
        elif table.column(ts).null_count:
            violations.append(FieldViolation(f"entity_rows.{ts}", "must not contain nulls"))
        for k in keys:
            if k not in names:
                violations.append(FieldViolation(f"entity_rows.{k}", "join key column is missing"))
        clashes = names & {f.feature for f in features}
        for c in sorted(clashes):
            violations.append(FieldViolation(f"entity_rows.{c}",
                                             "has the name of a requested feature"))
        if violations:
            detail = "; ".join(f"{v.field}: {v.description}" for v in violations)
            raise InvalidArgument(f"bad entity rows: {detail}", reason="BAD_ENTITY_ROWS",
                                  field_violations=violations)

    def get(self, dataset_id: str) -> DatasetRecord:
        data = self.records.get_dataset(dataset_id)
        if data is None:
            raise NotFound(f"dataset {dataset_id!r} not found", reason="DATASET_NOT_FOUND",
                           metadata={"dataset": dataset_id})
        return DatasetRecord.from_record(data)

    def list(self, name: str, limit: int, offset: int) -> tuple[list[DatasetRecord], bool]:
        rows, more = self.records.list_datasets(name, limit, offset)
        return [DatasetRecord.from_record(r) for r in rows], more

    def delete(self, dataset_id: str) -> None:
        record = self.get(dataset_id)
        self.records.delete_dataset(dataset_id)
        record.path.unlink(missing_ok=True)

    def read_table(self, dataset_id: str, columns: Sequence[str] = ()) -> pa.Table:
        record = self.get(dataset_id)
        self._check_columns(record, columns)
        return pq.read_table(record.path, columns=list(columns) or None)

    @staticmethod
    def _check_columns(record: DatasetRecord, columns: Sequence[str]) -> None:
        known = {c for c, _ in record.columns}
        for i, c in enumerate(columns):
            if c not in known:
                raise InvalidArgument(f"columns[{i}]: dataset {record.id!r} has no column {c!r}",
                                      reason="COLUMN_NOT_FOUND",
                                      metadata={"dataset": record.id, "column": c},
                                      field_violations=[FieldViolation(f"columns[{i}]",
                                                                       "unknown column")])

    def read_chunks(self, dataset_id: str, columns: Sequence[str] = (),
                    chunk_rows: int = 65536) -> Iterator[tuple[bytes, int]]:
        """Self-contained Arrow IPC streams of at most ``chunk_rows`` rows each."""
        record = self.get(dataset_id)
        self._check_columns(record, columns)
        if chunk_rows < 0:
            raise InvalidArgument("chunk_rows must not be negative", reason="BAD_CHUNK_ROWS",
                                  field_violations=[FieldViolation("chunk_rows", "negative")])
        parquet = pq.ParquetFile(record.path)
        for batch in parquet.iter_batches(batch_size=chunk_rows or 65536,
                                          columns=list(columns) or None):
            sink = io.BytesIO()
            with ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            yield sink.getvalue(), batch.num_rows
