"""What every evaluation store does the same way: validate and encode records
for ingest, and decode scanned rows into columnar frames for the analytics.

A backend (embedded DuckDB, PostgreSQL) only moves rows: it writes encoded
rows, and scans a window of one model's records as newline-delimited JSON
(one object per record, keys below), which :func:`frame_from_ndjson` parses
with Arrow's multithreaded JSON reader into numpy columns.

    {"i": prediction id, "v": version, "e": environment, "t": time (µs since epoch),
     "pl": prediction label, "pn": prediction number, "al": actual label,
     "an": actual number, "f": {features}, "s": {scores}, "g": {tags},
     "x": {attributions}, "tr": trace id, "lt": latency µs, "at": actual time µs}
"""

from __future__ import annotations

import io
import json
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

from modelplane.kit import paging
from modelplane.observability.records import (
    Actual,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationRecord,
    Rejection,
    Scalar,
    TimeWindow,
    kind_of,
    label_of,
    number_of,
)

if TYPE_CHECKING:
    from modelplane.observability.columnar import ColumnarBatch

#: Catalog source code of score keys (not a slice column; internal to the store).
SCORE_SOURCE = 5
#: Catalog source code of a model's versions.
VERSION_SOURCE = 6
MAX_ID_LENGTH = 256

RECORD_COLUMNS = ("prediction_id", "model", "version", "environment", "prediction_time",
                  "features", "prediction_label", "prediction_number", "scores", "tags",
                  "trace_id", "latency_us", "attributions")

#: One encoded record, in RECORD_COLUMNS order (JSON columns as text).
RecordRow = tuple[Any, ...]
#: Confusion cell counts of one hour: bucket start µs, slice source (0 = every record,
#: 1 feature, 2 tag), slice column, slice value, predicted label, actual label, count.
ConfusionRow = tuple[int, int, str, str, str, str, int]
#: One encoded actual: prediction_id, label, number, actual_time.
ActualRow = tuple[str, str | None, float | None, datetime]


RECORD_ARROW_SCHEMA = pa.schema([
    ("prediction_id", pa.string()), ("model", pa.string()), ("version", pa.string()),
    ("environment", pa.int16()), ("prediction_time", pa.timestamp("us", tz="UTC")),
    ("features", pa.string()), ("prediction_label", pa.string()),
    ("prediction_number", pa.float64()), ("scores", pa.string()), ("tags", pa.string()),
    ("trace_id", pa.string()), ("latency_us", pa.int64()), ("attributions", pa.string()),
])


def record_rows_table(rows: Sequence[RecordRow]) -> pa.Table:
    """Encoded rows as an Arrow table of RECORD_COLUMNS."""
    columns: list[tuple[Any, ...]] = list(zip(*rows)) if rows else [() for _ in RECORD_COLUMNS]
    return pa.Table.from_arrays(
        [pa.array(list(col), type=RECORD_ARROW_SCHEMA.field(i).type)
         for i, col in enumerate(columns)], schema=RECORD_ARROW_SCHEMA)


def _clean_number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def _json_scalar(value: Scalar) -> Scalar:
    if isinstance(value, float):
        return _clean_number(value)
    return value


@dataclass
class Catalog:
    """Column kinds of one model: a feature keeps one kind, so scans are typed."""

    kinds: dict[tuple[int, str], ColumnKind] = field(default_factory=dict)

    def columns(self) -> dict[ColumnRef, ColumnKind]:
        return {ColumnRef(ColumnSource(src), name): kind
                for (src, name), kind in self.kinds.items()
                if src not in (SCORE_SOURCE, VERSION_SOURCE)}

    def versions(self) -> list[str]:
        return sorted(name for (src, name) in self.kinds if src == VERSION_SOURCE)

    def score_keys(self) -> list[str]:
        return sorted(name for (src, name) in self.kinds if src == SCORE_SOURCE)

    def features(self) -> dict[str, ColumnKind]:
        return {name: kind for (src, name), kind in self.kinds.items()
                if src == ColumnSource.FEATURE}

    def tags(self) -> list[str]:
        return sorted(name for (src, name) in self.kinds if src == ColumnSource.TAG)


_NONE_TYPE = type(None)

#: json.dumps without its per-call setup (the ingest hot path encodes 3 objects a record).
_dumps_finite = json.JSONEncoder(allow_nan=False).encode
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:  # CPython's C encoder, built once, reused across calls
    _c_encode = _c_make_encoder(None, json.JSONEncoder().default,
                                json.encoder.encode_basestring_ascii, None, ": ", ", ",
                                False, False, True)

    def _dumps(obj: Any) -> str:
        return "".join(_c_encode(obj, 0))
else:  # pragma: no cover - other Pythons
    _dumps = json.JSONEncoder().encode  # type: ignore[assignment]


@dataclass
class _SeenColumns:
    """Columns of one model already checked by this encoder (one batch)."""

    versions: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    scores: set[str] = field(default_factory=set)
    feature_types: dict[str, type] = field(default_factory=dict)


class RecordEncoder:
    """Validates records against the catalogs and encodes them as rows.

    Bad records become :class:`Rejection` s (index, field, reason); the rest go on.
    """

    def __init__(self, catalogs: dict[str, Catalog]) -> None:
        self._catalogs = catalogs
        self._seen: dict[str, _SeenColumns] = {}
        #: (trace id, span id, model, 1) of the valid records carrying both ids.
        self.spans: list[tuple[str, str, str, int]] = []

    def encode(self, records: Sequence[EvaluationRecord | Rejection], first_index: int,
               seen: set[str] | None = None
               ) -> tuple[list[RecordRow], dict[str, dict[tuple[int, str], ColumnKind]],
                          list[Rejection], int]:
        """Rows, new catalog columns per model, rejections, in-batch duplicates."""
        rows: list[RecordRow] = []
        new_columns: dict[str, dict[tuple[int, str], ColumnKind]] = {}
        rejected: list[Rejection] = []
        seen = set() if seen is None else seen
        duplicates = 0
        dumps = _dumps
        dumps_finite = _dumps_finite
        for offset, rec in enumerate(records):
            index = first_index + offset
            if isinstance(rec, Rejection):
                rejected.append(Rejection(index, rec.prediction_id, rec.field, rec.reason))
                continue
            problem = self._check(rec, new_columns)
            if problem is not None:
                field_path = f"records[{offset}].{problem[0]}"
                rejected.append(Rejection(index, rec.prediction_id, field_path, problem[1]))
                continue
            if rec.prediction_id in seen:
                duplicates += 1
                continue
            seen.add(rec.prediction_id)
            if rec.span_id and rec.trace_id:
                self.spans.append((rec.trace_id, rec.span_id, rec.model, 1))
            pred = rec.prediction
            feats = rec.features
            if None in feats.values():  # a missing value is an absent key
                feats = {k: v for k, v in feats.items() if v is not None}
            try:
                features_json = dumps_finite(feats)
            except ValueError:  # NaN / inf: missing too
                features_json = dumps({k: v for k, v in feats.items()
                                       if _json_scalar(v) is not None})
            rows.append((
                rec.prediction_id, rec.model, rec.version, int(rec.environment),
                rec.prediction_time, features_json,
                label_of(pred), _clean_number(n) if (n := number_of(pred)) is not None else None,
                dumps(rec.scores) if rec.scores else None,
                dumps(rec.tags) if rec.tags else None,
                rec.trace_id or None, rec.latency_us,
                dumps(rec.attributions) if rec.attributions else None,
            ))
        return rows, new_columns, rejected, duplicates

    def _check(self, rec: EvaluationRecord,
               new_columns: dict[str, dict[tuple[int, str], ColumnKind]]
               ) -> tuple[str, str] | None:
        if not rec.prediction_id:
            return "prediction_id", "required"
        if len(rec.prediction_id) > MAX_ID_LENGTH:
            return "prediction_id", f"longer than {MAX_ID_LENGTH} characters"
        if not rec.model:
            return "model", "required"
        if not rec.version:
            return "version", "required"
        if rec.environment == Environment.UNSPECIFIED:
            return "environment", "required (TRAINING, VALIDATION, PRODUCTION, SHADOW or BATCH)"
        if rec.prediction_time is None:
            return "prediction_time", "required"
        for key, score in rec.scores.items():
            if not math.isfinite(score):
                return f"scores[{key!r}]", "must be a finite number"
        # Fast path: every column of this record was already checked in this batch.
        seen = self._seen.get(rec.model)
        if seen is not None and rec.version in seen.versions \
                and seen.tags.issuperset(rec.tags) and seen.scores.issuperset(rec.scores):
            types = seen.feature_types
            for name, value in rec.features.items():
                t = type(value)
                if t is not _NONE_TYPE and types.get(name) is not t:
                    break
            else:
                return None
        problem = self._check_columns(rec, new_columns)
        if problem is None:
            if seen is None:
                seen = self._seen[rec.model] = _SeenColumns()
            seen.versions.add(rec.version)
            seen.tags.update(rec.tags)
            seen.scores.update(rec.scores)
            seen.feature_types.update(
                {n: type(v) for n, v in rec.features.items() if v is not None})
        return problem

    def _check_columns(self, rec: EvaluationRecord,
                       new_columns: dict[str, dict[tuple[int, str], ColumnKind]]
                       ) -> tuple[str, str] | None:
        catalog = self._catalogs.setdefault(rec.model, Catalog())
        pending = new_columns.setdefault(rec.model, {})
        additions: dict[tuple[int, str], ColumnKind] = {}
        for name, value in rec.features.items():
            if not name:
                return "features", "feature names must not be empty"
            kind = kind_of(value)
            if kind is ColumnKind.UNSPECIFIED:
                continue
            key = (int(ColumnSource.FEATURE), name)
            known = catalog.kinds.get(key) or pending.get(key) or additions.get(key)
            if known is None:
                additions[key] = kind
            elif known is not kind:
                return (f"features[{name!r}]",
                        (f"is {kind.name.lower()} but model {rec.model!r} has it as "
                        f"{known.name.lower()}"))
        for name in rec.tags:
            key = (int(ColumnSource.TAG), name)
            if key not in catalog.kinds and key not in pending:
                additions[key] = ColumnKind.CATEGORICAL
        for name in rec.scores:
            key = (SCORE_SOURCE, name)
            if key not in catalog.kinds and key not in pending:
                additions[key] = ColumnKind.NUMERIC
        vkey = (VERSION_SOURCE, rec.version)
        if vkey not in catalog.kinds and vkey not in pending:
            additions[vkey] = ColumnKind.UNSPECIFIED
        if rec.prediction is not None:
            # Integer predictions are class labels; only doubles are numeric (regression).
            pred = rec.prediction
            kind = (ColumnKind.NUMERIC if isinstance(pred, float)
                    else ColumnKind.BOOLEAN if isinstance(pred, bool)
                    else ColumnKind.CATEGORICAL)
            key = (int(ColumnSource.PREDICTION), "")
            if key not in catalog.kinds and key not in pending:
                additions[key] = kind
        pending.update(additions)
        return None


def encode_actuals(actuals: Sequence[Actual | Rejection], first_index: int, now: datetime
                   ) -> tuple[list[ActualRow], list[Rejection], int]:
    rows: dict[str, ActualRow] = {}
    rejected: list[Rejection] = []
    duplicates = 0
    for offset, act in enumerate(actuals):
        index = first_index + offset
        if isinstance(act, Rejection):
            rejected.append(Rejection(index, act.prediction_id, act.field, act.reason))
            continue
        if not act.prediction_id:
            rejected.append(Rejection(index, "", f"actuals[{offset}].prediction_id", "required"))
            continue
        if act.value is None:
            rejected.append(Rejection(index, act.prediction_id, f"actuals[{offset}].value",
                                      "required"))
            continue
        if isinstance(act.value, float) and not math.isfinite(act.value):
            rejected.append(Rejection(index, act.prediction_id, f"actuals[{offset}].value",
                                      "must be a finite number"))
            continue
        if act.prediction_id in rows:
            duplicates += 1
        rows[act.prediction_id] = (act.prediction_id, label_of(act.value), number_of(act.value),
                                   act.actual_time or now)
    return list(rows.values()), rejected, duplicates


# ---------------------------------------------------------------------------
# Scans


@dataclass(frozen=True)
class ScanSpec:
    """Which of one model's records a backend scans (slices are applied later, vectorised)."""

    model: str
    versions: tuple[str, ...] = ()
    environment: Environment = Environment.UNSPECIFIED
    window: TimeWindow = field(default_factory=TimeWindow)
    prediction_ids: tuple[str, ...] = ()
    has_actual: bool | None = None
    limit: int | None = None
    #: Keyset pagination: records strictly older than (time µs, prediction id), newest first.
    before: tuple[int, str] | None = None
    newest_first: bool = False
    #: A uniform sample of this many of the matching records instead (``limit`` is
    #: not used): the records of the smallest 64-bit hashes of their prediction id
    #: (a simple random sample without replacement, the same one on every call),
    #: returned in time order.
    sample: int | None = None


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
    scores: dict[str, np.ndarray]
    features: dict[str, np.ndarray]
    tags: dict[str, np.ndarray]
    kinds: dict[ColumnRef, ColumnKind]

    def __len__(self) -> int:
        return len(self.prediction_id)

    def take(self, index: np.ndarray) -> Frame:
        return Frame(
            self.prediction_id[index], self.version[index], self.environment[index],
            self.time_us[index], self.prediction_label[index], self.prediction_number[index],
            self.actual_label[index], self.actual_number[index],
            {k: v[index] for k, v in self.scores.items()},
            {k: v[index] for k, v in self.features.items()},
            {k: v[index] for k, v in self.tags.items()}, self.kinds)

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


def _object_column(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    out = np.empty(len(arr), dtype=object)
    out[:] = arr.to_pylist()
    return out


def _float_column(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


_ARROW_KIND = {ColumnKind.NUMERIC: pa.float64(), ColumnKind.CATEGORICAL: pa.string(),
               ColumnKind.BOOLEAN: pa.bool_()}


def empty_frame(catalog: Catalog) -> Frame:
    return frame_from_ndjson(b"", catalog)


def frame_from_ndjson(data: bytes, catalog: Catalog) -> Frame:
    features = catalog.features()
    tags = catalog.tags()
    scores = catalog.score_keys()
    kinds = catalog.columns()
    pred_kind = kinds.get(ColumnRef(ColumnSource.PREDICTION), ColumnKind.CATEGORICAL)
    kinds[ColumnRef(ColumnSource.PREDICTION)] = pred_kind
    kinds[ColumnRef(ColumnSource.ACTUAL)] = pred_kind
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

    feature_cols: dict[str, np.ndarray] = {}
    for name, kind in features.items():
        arr = struct_field("f", name)
        feature_cols[name] = (_float_column(arr) if kind is ColumnKind.NUMERIC
                              else _object_column(arr))
    return Frame(
        prediction_id=_object_column(table.column("i")),
        version=_object_column(table.column("v")),
        environment=table.column("e").to_numpy(zero_copy_only=False).astype(np.int8),
        time_us=table.column("t").to_numpy(zero_copy_only=False).astype(np.int64),
        prediction_label=_object_column(table.column("pl")),
        prediction_number=_float_column(table.column("pn")),
        actual_label=_object_column(table.column("al")),
        actual_number=_float_column(table.column("an")),
        scores={n: _float_column(struct_field("s", n)) for n in scores},
        features=feature_cols,
        tags={n: _object_column(struct_field("g", n)) for n in tags},
        kinds=kinds,
    )


def profile_bounds(window: TimeWindow) -> tuple[int | None, int | None]:
    """The bucket starts (µs) of a window's profile rows: [lo, hi). A profile
    bucket is an hour, so the window is widened to whole hours: the bucket that
    holds the window's start is in, and every bucket that starts before its end."""
    from modelplane.observability.profiles import HOUR_US

    lo = hi = None
    if window.start is not None:
        lo = to_us(window.start) // HOUR_US * HOUR_US
    if window.end is not None:
        hi = to_us(window.end)
    return lo, hi


def alert_filter(placeholder: str, model: str | None, monitor_id: str | None,
                 state: int | None) -> tuple[str, list[Any]]:
    """The condition and bound values of an alert listing, for either store's
    placeholder (``?`` or ``%s``); column names are fixed here, values always bound."""
    where: list[str] = ["true"]
    params: list[Any] = []
    for column, value in (("model", model), ("monitor_id", monitor_id), ("state", state)):
        if value:
            where.append(f"{column} = {placeholder}")
            params.append(value)
    return " AND ".join(where), params


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


@dataclass(frozen=True)
class ModelSummary:
    model: str
    versions: list[str]
    environments: list[Environment]
    record_count: int
    actual_count: int
    first_time: datetime | None
    last_time: datetime | None


# ---------------------------------------------------------------------------
# Retention


@dataclass(frozen=True)
class RetentionCutoffs:
    """What one retention pass deletes: rows older than each instant (None = kept)."""

    #: records (and their ids and actuals) with a prediction time before this
    records: datetime | None = None
    #: profiles, confusion counts and profile gaps of hours starting before this
    profiles: datetime | None = None
    #: delivered / failed / refused webhook deliveries last changed before this
    deliveries: datetime | None = None
    #: rows deleted per statement (record ids, actuals, DuckDB records)
    batch_rows: int = 10_000


@dataclass
class RetentionResult:
    """What one retention pass deleted."""

    records: int = 0
    actuals: int = 0
    #: PostgreSQL: the monthly partitions of ``obs_records`` dropped (names)
    partitions: list[str] = field(default_factory=list)
    profiles: int = 0
    confusion: int = 0
    profile_gaps: int = 0
    deliveries: int = 0

    def add(self, other: RetentionResult) -> None:
        for name in ("records", "actuals", "profiles", "confusion", "profile_gaps",
                     "deliveries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.partitions.extend(other.partitions)

    def __bool__(self) -> bool:
        return bool(self.partitions) or any((self.records, self.actuals, self.profiles,
                                             self.confusion, self.profile_gaps,
                                             self.deliveries))


# ---------------------------------------------------------------------------
# Alerts, webhook deliveries (the outbox) and the scheduler's lease


class DeliveryState(IntEnum):
    PENDING = 0
    DELIVERED = 1
    FAILED = 2   # attempts used up, or an answer that retrying cannot change
    REFUSED = 3  # the outbound policy refused the URL at send time


@dataclass(frozen=True)
class NewDelivery:
    """A webhook call to make for an alert event, written with the alert (outbox)."""

    url: str
    event: str  # "firing" or "resolved"
    idempotency_key: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class WebhookDelivery:
    id: int
    alert_id: str
    event: str
    url: str
    payload: dict[str, Any]
    idempotency_key: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_error: str = ""


class AlertStore(ABC):
    """Alerts, keyed by (monitor, slot) and at most one FIRING per monitor; every
    change gets a new ``seq`` (increasing), so a reader can catch up from the last
    one it saw. Each write that changes an alert also writes its webhook delivery
    (one transaction) and, on PostgreSQL, notifies ``obs_alerts``."""

    @abstractmethod
    def insert_alert(self, alert: dict[str, Any], slot: datetime,
                     delivery: NewDelivery | None) -> int | None:
        """Store a FIRING alert; its seq, or None when the monitor already has a
        FIRING alert or an alert for this slot (nothing is written then)."""

    @abstractmethod
    def resolve_alert(self, alert: dict[str, Any], delivery: NewDelivery | None) -> int | None:
        """Store the RESOLVED ``alert`` if it is still FIRING; its new seq, else None."""

    @abstractmethod
    def firing_alert(self, monitor_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_alerts(self, model: str | None = None, monitor_id: str | None = None,
                    state: int | None = None) -> list[dict[str, Any]]:
        """Newest change first."""

    @abstractmethod
    def alerts_since(self, seq: int, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        """(seq, alert) of the changes after ``seq``, oldest first."""

    @abstractmethod
    def alert_by_id(self, alert_id: str) -> tuple[int, dict[str, Any]] | None: ...

    @abstractmethod
    def last_alert_seq(self) -> int: ...

    @abstractmethod
    def claim_deliveries(self, limit: int, claim_seconds: float) -> list[WebhookDelivery]:
        """Up to ``limit`` due PENDING deliveries, each counted as one more attempt and
        hidden from other claimers for ``claim_seconds`` (if the sender dies, the
        delivery comes back then: at least once)."""

    @abstractmethod
    def finish_delivery(self, delivery_id: int, state: DeliveryState, error: str = "",
                        retry_after: float | None = None) -> None:
        """DELIVERED / FAILED / REFUSED; or PENDING again in ``retry_after`` seconds."""

    @abstractmethod
    def list_deliveries(self, alert_id: str | None = None) -> list[WebhookDelivery]: ...

    @abstractmethod
    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> tuple[bool, float]:
        """Take or renew the lease ``name`` for ``ttl_seconds``: (held by ``holder``,
        seconds until the current holder's lease ends)."""

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> None: ...

    def listen_alerts(self) -> AbstractAsyncContextManager[AsyncIterator[str]] | None:
        """Notifications of alert changes from every process on this store
        (``"<seq>:<alert id>"``), or None when only this process writes it."""
        return None

    # -- alerts raised by other services (issue #17) ------------------------------

    @abstractmethod
    def insert_raised_alert(self, alert: dict[str, Any], slot: datetime) -> int | None:
        """Store a FIRING alert raised through RaiseAlert (no monitor, no webhook):
        its seq, or None when an alert with its id exists (nothing is written). Its
        ``monitor_id`` column is ``raised/<id>``, so that the per-monitor constraints
        (one FIRING, one per slot) never merge two raised alerts; the document's
        ``monitor_id`` stays empty."""


class EvaluationStore(AlertStore):
    """A backend of the evaluation store. Methods block: call them from a thread."""

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def load_catalogs(self) -> dict[str, Catalog]: ...

    @abstractmethod
    def write_records(self, rows: list[RecordRow],
                      new_columns: dict[str, dict[tuple[int, str], ColumnKind]]) -> int:
        """Store rows whose prediction id is new; return how many were stored."""

    @abstractmethod
    def write_columnar(self, batch: ColumnarBatch) -> int:
        """Store a validated columnar batch's rows whose prediction id is new (and its
        ``new_columns``); return how many were stored. Stored values are the ones
        :class:`RecordEncoder` gives the same records."""

    @abstractmethod
    def write_actuals(self, rows: list[ActualRow]) -> tuple[int, int, int]:
        """Upsert actuals; (changed, identical, without a stored prediction)."""

    @abstractmethod
    def scan(self, spec: ScanSpec) -> bytes:
        """NDJSON of the matching records (see the module docstring)."""

    @abstractmethod
    def count_records(self, spec: ScanSpec) -> int:
        """How many records :meth:`scan` of ``spec`` would return without a limit."""

    @abstractmethod
    def profile_rows(self, spec: ScanSpec) -> list[tuple[int, bytes]]:
        """(bucket start µs, profile bytes) of the profiles in ``spec``'s model,
        versions, environment and window (widened to whole hours, see
        :func:`profile_bounds`); ``spec``'s other fields are not used."""

    @abstractmethod
    def confusion_rows(self, spec: ScanSpec) -> list[ConfusionRow]:
        """Confusion counts of classification records with an actual, per hour and
        per value of each categorical feature and tag (and for every record, source
        0), in the profiles' window; kept at ingest, whichever of a record and its
        actual comes last, and moved by a changed actual (not by a re-sent one)."""

    @abstractmethod
    def profile_count(self, spec: ScanSpec) -> tuple[int, int]:
        """Records counted by the profiles :meth:`profile_rows` would return, and
        records of the same hours that no profile counts (stored before profiles
        were kept: a store opened for the first time by this version marks them)."""

    @abstractmethod
    def model_of(self, prediction_id: str) -> str | None: ...

    @abstractmethod
    def summaries(self) -> list[ModelSummary]: ...

    @abstractmethod
    def set_attributions(self, model: str, attributions: dict[str, dict[str, float]]) -> None: ...

    # Documents: baselines, monitors, alerts (JSON text).
    @abstractmethod
    def put_document(self, kind: str, key: str, model: str, doc: dict[str, Any]) -> None: ...

    @abstractmethod
    def get_document(self, kind: str, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_documents(self, kind: str, model: str | None = None) -> list[dict[str, Any]]:
        """Documents of a kind (optionally of one model), newest key last."""

    @abstractmethod
    def delete_document(self, kind: str, key: str) -> bool: ...

    @abstractmethod
    def enforce_retention(self, cutoffs: RetentionCutoffs) -> RetentionResult:
        """Delete what is older than ``cutoffs`` (see :mod:`..retention`); what was deleted.
        Records may be kept past their cutoff on a backend that drops them in whole
        partitions (PostgreSQL: a month is dropped once all of it is older)."""
