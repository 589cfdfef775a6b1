"""Checking caller rows against a feature view's schema before anything is written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from modelplane.featurestore.definitions import FeatureViewSpec, ValueKind
from modelplane.kit.errors import FieldViolation, InvalidArgument

UTC_US = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class ViewColumns:
    """The columns a feature view's source holds, in storage order."""

    join_keys: dict[str, ValueKind]
    timestamp_field: str
    created_timestamp_column: str
    features: dict[str, ValueKind]

    @classmethod
    def of(cls, view: FeatureViewSpec, key_kinds: Mapping[str, ValueKind]) -> ViewColumns:
        assert view.source is not None
        return cls(join_keys={k: key_kinds[k] for k in view.join_keys},
                   timestamp_field=view.source.timestamp_field,
                   created_timestamp_column=view.source.created_timestamp_column,
                   features={f.name: f.value_kind for f in view.features})

    @property
    def names(self) -> list[str]:
        cols = [*self.join_keys, self.timestamp_field]
        if self.created_timestamp_column:
            cols.append(self.created_timestamp_column)
        return cols + list(self.features)

    def arrow_schema(self) -> pa.Schema:
        fields = [pa.field(k, kind.arrow_type) for k, kind in self.join_keys.items()]
        fields.append(pa.field(self.timestamp_field, UTC_US))
        if self.created_timestamp_column:
            fields.append(pa.field(self.created_timestamp_column, UTC_US))
        fields += [pa.field(f, kind.arrow_type) for f, kind in self.features.items()]
        return pa.schema(fields)


def _compatible(actual: pa.DataType, kind: ValueKind) -> bool:
    t = pa.types
    if kind in (ValueKind.INT32, ValueKind.INT64):
        return t.is_integer(actual)
    if kind in (ValueKind.FLOAT, ValueKind.DOUBLE):
        return t.is_integer(actual) or t.is_floating(actual)
    if kind == ValueKind.STRING:
        return t.is_string(actual) or t.is_large_string(actual)
    if kind == ValueKind.BYTES:
        return t.is_binary(actual) or t.is_large_binary(actual)
    if kind == ValueKind.BOOL:
        return t.is_boolean(actual)
    if kind == ValueKind.UNIX_TIMESTAMP:
        return t.is_timestamp(actual)
    return False


def _to_utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    typ = column.type
    if typ.tz is None:
        column = pc.assume_timezone(column, "UTC")
    return column.cast(UTC_US, safe=False)


def conform_rows(table: pa.Table, columns: ViewColumns, *, field: str = "rows",
                 subject: Mapping[str, str] | None = None) -> pa.Table:
    """``table`` cast to the view's storage schema, or InvalidArgument naming every bad column.

    Join keys and the timestamp are required and must not be null; features
    may be a subset (the others are stored as null); unknown columns and
    values that do not fit their type are rejected.
    """
    violations: list[FieldViolation] = []
    present = set(table.column_names)
    for name in table.column_names:
        if name not in columns.names:
            violations.append(FieldViolation(f"{field}.{name}", "not a column of the feature view"))
    if len(present) != len(table.column_names):
        violations.append(FieldViolation(field, "duplicate column names"))
    for key in [*columns.join_keys, columns.timestamp_field]:
        if key not in present:
            violations.append(FieldViolation(f"{field}.{key}", "required column is missing"))
        elif table.column(key).null_count:
            violations.append(FieldViolation(f"{field}.{key}", "must not contain nulls"))

    out: dict[str, pa.ChunkedArray] = {}
    n = table.num_rows
    expected = columns.arrow_schema()
    for target in expected:
        name = target.name
        if name not in present:
            if name == columns.created_timestamp_column:
                import datetime as _dt

                now = _dt.datetime.now(_dt.UTC)
                out[name] = pa.chunked_array([pa.array([now] * n, UTC_US)])
            else:
                out[name] = pa.chunked_array([pa.nulls(n, target.type)])
            continue
        col = table.column(name)
        if name in (columns.timestamp_field, columns.created_timestamp_column):
            if not pa.types.is_timestamp(col.type):
                violations.append(FieldViolation(f"{field}.{name}",
                                                 f"must be a timestamp, got {col.type}"))
                continue
            out[name] = _to_utc(col)
            continue
        kind = columns.join_keys.get(name) or columns.features[name]
        if pa.types.is_null(col.type):
            out[name] = pa.chunked_array([pa.nulls(n, target.type)])
            continue
        if not _compatible(col.type, kind):
            violations.append(FieldViolation(
                f"{field}.{name}", f"expected {kind.value} ({target.type}), got {col.type}"))
            continue
        try:
            out[name] = _to_utc(col) if kind == ValueKind.UNIX_TIMESTAMP else col.cast(target.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            violations.append(FieldViolation(f"{field}.{name}",
                                             f"values do not fit {kind.value}: {exc}"))
    if violations:
        detail = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise InvalidArgument(f"rows do not match the feature view schema: {detail}",
                              reason="ROWS_SCHEMA_MISMATCH", metadata=dict(subject or {}),
                              field_violations=violations)
    return pa.Table.from_arrays([out[f.name] for f in expected], schema=expected)
