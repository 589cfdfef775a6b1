"""Feature definitions as plain dataclasses, and their translation to and from Feast objects.

The servicer speaks protobuf, Feast speaks its own classes; these specs are
what the domain layer passes around, validated once on the way into Feast.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import pyarrow as pa

from modelplane.kit.errors import FieldViolation, InvalidArgument

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DEFAULT_TIMESTAMP_FIELD = "event_timestamp"


class ValueKind(str, Enum):
    """Scalar types a feature or entity key can have (Feast's, scalar subset)."""

    STRING = "STRING"
    INT32 = "INT32"
    INT64 = "INT64"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    BOOL = "BOOL"
    BYTES = "BYTES"
    UNIX_TIMESTAMP = "UNIX_TIMESTAMP"

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self]

    def feast_dtype(self) -> Any:
        from feast import types

        return {
            ValueKind.STRING: types.String, ValueKind.INT32: types.Int32,
            ValueKind.INT64: types.Int64, ValueKind.FLOAT: types.Float32,
            ValueKind.DOUBLE: types.Float64, ValueKind.BOOL: types.Bool,
            ValueKind.BYTES: types.Bytes, ValueKind.UNIX_TIMESTAMP: types.UnixTimestamp,
        }[self]

    def feast_value_type(self) -> Any:
        from feast import ValueType

        return ValueType[self.value]

    @classmethod
    def from_feast_dtype(cls, dtype: Any) -> ValueKind:
        from feast import types

        table = {types.String: cls.STRING, types.Int32: cls.INT32, types.Int64: cls.INT64,
                 types.Float32: cls.FLOAT, types.Float64: cls.DOUBLE, types.Bool: cls.BOOL,
                 types.Bytes: cls.BYTES, types.UnixTimestamp: cls.UNIX_TIMESTAMP}
        for feast_type, kind in table.items():
            if dtype == feast_type:
                return kind
        raise InvalidArgument(f"feature type {dtype} is not supported (scalar types only)",
                              reason="UNSUPPORTED_TYPE", metadata={"type": str(dtype)})

    @classmethod
    def from_feast_value_type(cls, value_type: Any) -> ValueKind:
        name = getattr(value_type, "name", str(value_type))
        if name in cls.__members__:
            return cls[name]
        if name == "UNKNOWN":
            return cls.INT64
        raise InvalidArgument(f"entity value type {name} is not supported",
                              reason="UNSUPPORTED_TYPE", metadata={"type": name})


_ARROW_TYPES: dict[ValueKind, pa.DataType] = {
    ValueKind.STRING: pa.string(), ValueKind.INT32: pa.int32(), ValueKind.INT64: pa.int64(),
    ValueKind.FLOAT: pa.float32(), ValueKind.DOUBLE: pa.float64(), ValueKind.BOOL: pa.bool_(),
    ValueKind.BYTES: pa.binary(), ValueKind.UNIX_TIMESTAMP: pa.timestamp("us", tz="UTC"),
}


class SourceKind(str, Enum):
    FILE = "FILE"
    POSTGRES = "POSTGRES"


@dataclass
class EntitySpec:
    name: str
    join_key: str = ""
    value_kind: ValueKind = ValueKind.INT64
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def key(self) -> str:
        return self.join_key or self.name


@dataclass
class FeatureSpec:
    name: str
    value_kind: ValueKind
    description: str = ""


@dataclass
class SourceSpec:
    name: str = ""
    kind: SourceKind | None = None
    path: str = ""
    table: str = ""
    timestamp_field: str = DEFAULT_TIMESTAMP_FIELD
    created_timestamp_column: str = ""


@dataclass
class FeatureViewSpec:
    name: str
    entities: list[str]
    features: list[FeatureSpec]
    ttl: timedelta = timedelta(0)
    source: SourceSpec | None = None
    online: bool = True
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    create_time: datetime | None = None
    update_time: datetime | None = None
    materialization_intervals: list[tuple[datetime, datetime]] = field(default_factory=list)
    #: join keys of the entities, in entity order (output)
    join_keys: list[str] = field(default_factory=list)


@dataclass
class ProjectionSpec:
    feature_view: str
    features: list[str] = field(default_factory=list)


@dataclass
class FeatureServiceSpec:
    name: str
    projections: list[ProjectionSpec]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    create_time: datetime | None = None
    update_time: datetime | None = None


def check_name(field_path: str, name: str, violations: list[FieldViolation]) -> None:
    if not NAME_PATTERN.match(name or ""):
        violations.append(FieldViolation(
            field_path, f"{name!r} is not a valid name (letters, digits and _, "
                        "not starting with a digit, at most 63 characters)"))


def raise_violations(what: str, violations: Sequence[FieldViolation],
                     metadata: Mapping[str, str] | None = None) -> None:
    if violations:
        detail = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise InvalidArgument(f"invalid {what}: {detail}", reason="INVALID_DEFINITION",
                              metadata=metadata, field_violations=violations)


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


# ---------------------------------------------------------------- Feast -> specs

def entity_from_feast(entity: Any) -> EntitySpec:
    return EntitySpec(
        name=entity.name, join_key=entity.join_key,
        value_kind=ValueKind.from_feast_value_type(entity.value_type),
        description=entity.description or "", tags=dict(entity.tags or {}),
        create_time=_utc(entity.created_timestamp), update_time=_utc(entity.last_updated_timestamp))


#: one PostgreSQL identifier as a source may name it (no quotes, no SQL). Lower case
#: only: Feast's PostgreSQL offline store writes the name into its SQL unquoted (folded
#: to lower case), ours quotes it, and both must mean the same table.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_table_identifier(table: str, field_path: str) -> tuple[str, ...]:
    """``table`` or ``schema.table`` as identifiers; INVALID_ARGUMENT for anything else
    (a ``(SELECT ...)`` query above all: a source names a table, it is never SQL text)."""
    parts = tuple(table.split("."))
    if not table or len(parts) > 2 or not all(_IDENTIFIER.fullmatch(p) for p in parts):
        raise InvalidArgument(
            f"{field_path}: a PostgreSQL source is a table name, [schema.]table, of lower-case "
            "letters, digits and _ (not a query)", reason="SOURCE_TABLE_INVALID",
            field_violations=[FieldViolation(field_path, "not a [schema.]table identifier")])
    return parts


def source_from_feast(source: Any) -> SourceSpec:
    from feast import FileSource

    spec = SourceSpec(name=source.name or "", timestamp_field=source.timestamp_field or "",
                      created_timestamp_column=source.created_timestamp_column or "")
    if isinstance(source, FileSource):
        spec.kind, spec.path = SourceKind.FILE, source.path
    else:
        from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
            PostgreSQLSource,
        )
        if isinstance(source, PostgreSQLSource):
            spec.kind = SourceKind.POSTGRES
            spec.table = source.get_table_query_string()
    return spec


def feature_view_from_feast(view: Any) -> FeatureViewSpec:
    join_keys = [c.name for c in view.entity_columns]
    return FeatureViewSpec(
        name=view.name, entities=list(view.entities),
        features=[FeatureSpec(f.name, ValueKind.from_feast_dtype(f.dtype), f.description or "")
                  for f in view.features],
        ttl=view.ttl or timedelta(0), source=source_from_feast(view.batch_source),
        online=bool(view.online), description=view.description or "", tags=dict(view.tags or {}),
        create_time=_utc(view.created_timestamp), update_time=_utc(view.last_updated_timestamp),
        materialization_intervals=[(_utc(a), _utc(b)) for a, b in view.materialization_intervals],  # type: ignore[misc]
        join_keys=join_keys)


def feature_service_from_feast(service: Any) -> FeatureServiceSpec:
    return FeatureServiceSpec(
        name=service.name,
        projections=[ProjectionSpec(p.name, [f.name for f in p.features])
                     for p in service.feature_view_projections],
        description=service.description or "", tags=dict(service.tags or {}),
        create_time=_utc(service.created_timestamp),
        update_time=_utc(service.last_updated_timestamp))


# ---------------------------------------------------------------- specs -> Feast

def entity_to_feast(spec: EntitySpec, field_path: str = "entity") -> Any:
    from feast import Entity

    violations: list[FieldViolation] = []
    check_name(f"{field_path}.name", spec.name, violations)
    if spec.join_key:
        check_name(f"{field_path}.join_key", spec.join_key, violations)
    if spec.value_kind not in (ValueKind.STRING, ValueKind.INT32, ValueKind.INT64, ValueKind.BYTES):
        violations.append(FieldViolation(f"{field_path}.value_type",
                                         "entity keys must be STRING, INT32, INT64 or BYTES"))
    raise_violations("entity", violations, {"entity": spec.name})
    return Entity(name=spec.name, join_keys=[spec.key],
                  value_type=spec.value_kind.feast_value_type(),
                  description=spec.description, tags=dict(spec.tags))


def source_to_feast(spec: SourceSpec) -> Any:
    if spec.kind == SourceKind.POSTGRES:
        from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
            PostgreSQLSource,
        )
        return PostgreSQLSource(name=spec.name, table=spec.table,
                                timestamp_field=spec.timestamp_field,
                                created_timestamp_column=spec.created_timestamp_column)
    from feast import FileSource
    from feast.data_format import ParquetFormat

    return FileSource(name=spec.name, path=spec.path, file_format=ParquetFormat(),
                      timestamp_field=spec.timestamp_field,
                      created_timestamp_column=spec.created_timestamp_column)


def feature_view_to_feast(spec: FeatureViewSpec, entities: Mapping[str, EntitySpec],
                          field_path: str = "feature_view") -> Any:
    """Validate ``spec`` against known ``entities`` and build the Feast FeatureView."""
    from feast import Entity, FeatureView, Field

    violations: list[FieldViolation] = []
    check_name(f"{field_path}.name", spec.name, violations)
    if not spec.entities:
        violations.append(FieldViolation(f"{field_path}.entities",
                                         "at least one entity is required"))
    unknown = [e for e in spec.entities if e not in entities]
    if not spec.features:
        violations.append(FieldViolation(f"{field_path}.features",
                                         "at least one feature is required"))
    seen: set[str] = set()
    keys = {entities[e].key for e in spec.entities if e in entities}
    for i, feature in enumerate(spec.features):
        check_name(f"{field_path}.features[{i}].name", feature.name, violations)
        if feature.name in seen:
            violations.append(FieldViolation(f"{field_path}.features[{i}].name",
                                             f"duplicate feature {feature.name!r}"))
        if feature.name in keys:
            violations.append(FieldViolation(f"{field_path}.features[{i}].name",
                                             f"{feature.name!r} is an entity join key"))
        seen.add(feature.name)
    if spec.ttl.total_seconds() < 0:
        violations.append(FieldViolation(f"{field_path}.ttl", "must not be negative"))
    raise_violations("feature view", violations, {"feature_view": spec.name})
    if unknown:
        from modelplane.kit.errors import NotFound

        raise NotFound(f"feature view {spec.name!r} names unknown entity {unknown[0]!r}",
                       reason="ENTITY_NOT_FOUND", metadata={"entity": unknown[0]})
    assert spec.source is not None, "the repository fills in a default source"
    feast_entities = [Entity(name=e, join_keys=[entities[e].key],
                             value_type=entities[e].value_kind.feast_value_type())
                      for e in spec.entities]
    schema = [Field(name=entities[e].key, dtype=entities[e].value_kind.feast_dtype())
              for e in spec.entities]
    schema += [Field(name=f.name, dtype=f.value_kind.feast_dtype(), description=f.description)
               for f in spec.features]
    return FeatureView(name=spec.name, entities=feast_entities, schema=schema,
                       source=source_to_feast(spec.source), ttl=spec.ttl, online=spec.online,
                       description=spec.description, tags=dict(spec.tags))


def feature_service_to_feast(spec: FeatureServiceSpec, views: Mapping[str, Any],
                             field_path: str = "feature_service") -> Any:
    from feast import FeatureService

    from modelplane.kit.errors import NotFound

    violations: list[FieldViolation] = []
    check_name(f"{field_path}.name", spec.name, violations)
    if not spec.projections:
        violations.append(FieldViolation(f"{field_path}.projections",
                                         "at least one feature view is required"))
    raise_violations("feature service", violations, {"feature_service": spec.name})
    parts = []
    for i, projection in enumerate(spec.projections):
        view = views.get(projection.feature_view)
        if view is None:
            raise NotFound(f"feature service {spec.name!r} names unknown feature view "
                           f"{projection.feature_view!r}", reason="FEATURE_VIEW_NOT_FOUND",
                           metadata={"feature_view": projection.feature_view})
        names = {f.name for f in view.features}
        bad = [f for f in projection.features if f not in names]
        if bad:
            raise InvalidArgument(
                f"feature view {view.name!r} has no feature {bad[0]!r}", reason="FEATURE_NOT_FOUND",
                metadata={"feature_ref": f"{view.name}:{bad[0]}"},
                field_violations=[FieldViolation(f"{field_path}.projections[{i}].features",
                                                 f"unknown feature {bad[0]!r}")])
        parts.append(view[projection.features] if projection.features else view)
    return FeatureService(name=spec.name, features=parts, description=spec.description,
                          tags=dict(spec.tags))
