"""What scans read: a window of one model's records as newline-delimited JSON
(one object per record, keys below), parsed with Arrow's multithreaded JSON
reader into numpy columns (:class:`Frame`, the unit every analysis works on) or
into domain records; and the keyset page tokens of record listings.

    {"i": prediction id, "v": version, "e": environment, "t": time (µs since epoch),
     "pl": prediction label, "pn": prediction number, "al": actual label,
     "an": actual number, "f": {features}, "s": {scores}, "g": {tags},
     "x": {attributions}, "tr": trace id, "lt": latency µs, "at": actual time µs}
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from modelplane.kit import paging
from modelplane.observability.records import (
    Actual,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationRecord,
    Scalar,
)
from modelplane.observability.store.encoding import SCORE_SOURCE, Catalog


class _Taken(Mapping[str, np.ndarray]):
    """Columns of some of a frame's rows, each indexed when first read: an analysis
    that takes a slice of the records (root cause takes dozens) copies only the
    columns it reads."""

    def __init__(self, columns: Mapping[str, np.ndarray], index: np.ndarray) -> None:
        self._columns = columns
        self._index = index
        self._taken: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        column = self._taken.get(name)
        if column is None:
            column = self._taken[name] = self._columns[name][self._index]
        return column

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


@dataclass
class Frame:
    """Records of one model as numpy columns (the unit every analysis works on)."""

    prediction_id: np.ndarray
    version: np.ndarray
    environment: np.ndarray
    time_us: np.ndarray
    prediction_label: np.ndarray
    prediction_number: np.ndarray
    actual_label: np.ndarray
    actual_number: np.ndarray
    scores: Mapping[str, np.ndarray]
    features: Mapping[str, np.ndarray]
    tags: Mapping[str, np.ndarray]
    kinds: dict[ColumnRef, ColumnKind]

    def __len__(self) -> int:
        return len(self.prediction_id)

    def take(self, index: np.ndarray) -> Frame:
        return Frame(
            self.prediction_id[index], self.version[index], self.environment[index],
            self.time_us[index], self.prediction_label[index], self.prediction_number[index],
            self.actual_label[index], self.actual_number[index],
            _Taken(self.scores, index), _Taken(self.features, index),
            _Taken(self.tags, index), self.kinds)

    @property
    def has_actual(self) -> np.ndarray:
        # `!= None` is elementwise on the object array of labels
        return (self.actual_label != None) | ~np.isnan(self.actual_number)  # noqa: E711

    def column(self, ref: ColumnRef) -> np.ndarray:
        """Numeric columns as float64 (NaN = missing), others as object (None = missing)."""
        if ref.source is ColumnSource.FEATURE:
            return self.features[ref.name]
        if ref.source is ColumnSource.TAG:
            return self.tags[ref.name]
        numeric = self.kinds.get(ref) is ColumnKind.NUMERIC
        if ref.source is ColumnSource.PREDICTION:
            return self.prediction_number if numeric else self.prediction_label
        return self.actual_number if numeric else self.actual_label


def _object_column(arr: pa.ChunkedArray | pa.Array, few: bool = True) -> np.ndarray:
    """Python objects, None where missing. A column of few distinct values (a label,
    a category: ``few``) makes each once and is indexed into them."""
    if few and len(arr) and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                     or pa.types.is_boolean(arr.type)):
        values = pc.unique(arr)  # a missing value is one of them: None
        if len(values) * 2 <= len(arr):
            distinct = np.empty(len(values), dtype=object)
            distinct[:] = values.to_pylist()
            index = pc.index_in(arr, value_set=values, skip_nulls=False)
            return distinct[index.to_numpy(zero_copy_only=False)]
    out = np.empty(len(arr), dtype=object)
    out[:] = arr.to_pylist()
    return out


def _float_column(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


_ARROW_KIND = {ColumnKind.NUMERIC: pa.float64(), ColumnKind.CATEGORICAL: pa.string(),
               ColumnKind.BOOLEAN: pa.bool_()}


def empty_frame(catalog: Catalog) -> Frame:
    return frame_from_ndjson(b"", catalog)


def _column_kinds(catalog: Catalog) -> dict[ColumnRef, ColumnKind]:
    kinds = catalog.columns()
    pred_kind = kinds.get(ColumnRef(ColumnSource.PREDICTION), ColumnKind.CATEGORICAL)
    kinds[ColumnRef(ColumnSource.PREDICTION)] = pred_kind
    kinds[ColumnRef(ColumnSource.ACTUAL)] = pred_kind
    return kinds


def frame_from_ndjson(data: bytes, catalog: Catalog) -> Frame:
    features = catalog.features()
    tags = catalog.tags()
    scores = catalog.score_keys()
    fields: list[pa.Field] = [
        pa.field("i", pa.string()), pa.field("v", pa.string()), pa.field("e", pa.int64()),
        pa.field("t", pa.int64()), pa.field("pl", pa.string()), pa.field("pn", pa.float64()),
        pa.field("al", pa.string()), pa.field("an", pa.float64()),
    ]
    if features:
        fields.append(pa.field("f", pa.struct([pa.field(n, _ARROW_KIND[k])
                                               for n, k in sorted(features.items())])))
    if scores:
        fields.append(pa.field("s", pa.struct([pa.field(n, pa.float64()) for n in scores])))
    if tags:
        fields.append(pa.field("g", pa.struct([pa.field(n, pa.string()) for n in tags])))
    schema = pa.schema(fields)
    if data.strip():
        table = pa_json.read_json(
            io.BytesIO(data), read_options=pa_json.ReadOptions(block_size=16 << 20),
            parse_options=pa_json.ParseOptions(explicit_schema=schema,
                                               unexpected_field_behavior="ignore"))
    else:
        table = schema.empty_table()

    def struct_field(col: str, name: str) -> pa.ChunkedArray:
        chunks = [c.field(name) for c in table.column(col).chunks]
        return pa.chunked_array(chunks, type=schema.field(col).type.field(name).type)

    typed: dict[tuple[int, str], pa.ChunkedArray] = {}
    for group, source, names in (("f", int(ColumnSource.FEATURE), list(features)),
                                 ("s", SCORE_SOURCE, scores),
                                 ("g", int(ColumnSource.TAG), tags)):
        for name in names:
            typed[(source, name)] = struct_field(group, name)
    return frame_from_arrow(table, catalog, typed)


def frame_from_arrow(table: pa.Table, catalog: Catalog,
                     typed: dict[tuple[int, str], pa.ChunkedArray]) -> Frame:
    """A frame of ``table``'s record columns (``i v e t pl pn al an``, the keys of the
    module docstring) and the catalog's features, scores and tags as typed Arrow
    columns keyed (source, name); a catalog column absent from ``typed`` is missing
    in every record."""
    n = table.num_rows

    def numeric(key: tuple[int, str]) -> np.ndarray:
        arr = typed.get(key)
        return np.full(n, np.nan) if arr is None else _float_column(arr)

    def objects(key: tuple[int, str]) -> np.ndarray:
        arr = typed.get(key)
        return np.full(n, None, dtype=object) if arr is None else _object_column(arr)

    feature = int(ColumnSource.FEATURE)
    return Frame(
        prediction_id=_object_column(table.column("i"), few=False),
        version=_object_column(table.column("v")),
        environment=table.column("e").to_numpy(zero_copy_only=False).astype(np.int8),
        time_us=table.column("t").to_numpy(zero_copy_only=False).astype(np.int64),
        prediction_label=_object_column(table.column("pl")),
        prediction_number=_float_column(table.column("pn")),
        actual_label=_object_column(table.column("al")),
        actual_number=_float_column(table.column("an")),
        scores={n: numeric((SCORE_SOURCE, n)) for n in catalog.score_keys()},
        features={name: numeric((feature, name)) if kind is ColumnKind.NUMERIC
                  else objects((feature, name))
                  for name, kind in catalog.features().items()},
        tags={n: objects((int(ColumnSource.TAG), n)) for n in catalog.tags()},
        kinds=_column_kinds(catalog),
    )


def record_from_json(doc: dict[str, Any], model: str) -> EvaluationRecord:
    """One scanned record (a parsed NDJSON line) as a domain record."""
    pred: Scalar = doc.get("pn") if doc.get("pn") is not None else doc.get("pl")
    if doc.get("pl") is not None and doc.get("pn") is not None:
        label = doc["pl"]
        pred = True if label == "true" else False if label == "false" else doc["pn"]
        if isinstance(pred, float) and pred.is_integer() and label == str(int(pred)):
            pred = int(pred)
    actual = None
    if doc.get("al") is not None or doc.get("an") is not None:
        value: Scalar = doc["an"] if doc.get("an") is not None else doc["al"]
        if doc.get("al") in ("true", "false"):
            value = doc["al"] == "true"
        elif isinstance(value, float) and value.is_integer() and doc.get("al") == str(int(value)):
            value = int(value)
        actual = Actual(doc["i"], value, _from_us(doc.get("at")))
    return EvaluationRecord(
        prediction_id=doc["i"], model=model, version=doc["v"],
        environment=Environment(doc["e"]), prediction_time=_from_us(doc["t"]),
        features=doc.get("f") or {}, prediction=pred, scores=doc.get("s") or {},
        tags=doc.get("g") or {}, trace_id=doc.get("tr") or "", latency_us=doc.get("lt"),
        attributions=doc.get("x") or {}, actual=actual)


def _from_us(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def to_us(value: datetime) -> int:
    return round(value.timestamp() * 1_000_000)


def encode_page_token(time_us: int, prediction_id: str) -> str:
    return paging.encode_page_token([time_us, prediction_id])


def _record_keyset(position: object) -> tuple[int, str]:
    if not isinstance(position, list) or len(position) != 2:
        raise TypeError(position)
    return int(position[0]), str(position[1])


def decode_page_token(token: str, field_name: str = "page_token") -> tuple[int, str]:
    position = paging.decode_page_token(token, shape=_record_keyset, field=field_name)
    if position is None:
        raise paging.invalid_page_token("a page token is required", field_name)
    return position

