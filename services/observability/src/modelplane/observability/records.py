"""Domain objects of the evaluation store: records, actuals, columns, filters.

No protobuf or grpc here: the api layer translates messages into these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum

from modelplane.kit.errors import FieldViolation, InvalidArgument

#: A scalar as the store keeps it. ``None`` is a missing value.
Scalar = float | int | str | bool | None


class Environment(IntEnum):
    UNSPECIFIED = 0
    TRAINING = 1
    VALIDATION = 2
    PRODUCTION = 3
    SHADOW = 4
    BATCH = 5


class ColumnSource(IntEnum):
    FEATURE = 1
    TAG = 2
    PREDICTION = 3
    ACTUAL = 4


class ColumnKind(IntEnum):
    UNSPECIFIED = 0
    NUMERIC = 1
    CATEGORICAL = 2
    BOOLEAN = 3


@dataclass(frozen=True, order=True)
class ColumnRef:
    source: ColumnSource
    name: str = ""

    def __str__(self) -> str:
        if self.source is ColumnSource.FEATURE:
            return self.name
        if self.source is ColumnSource.TAG:
            return f"tag:{self.name}"
        return self.source.name.lower()


PREDICTION = ColumnRef(ColumnSource.PREDICTION)
ACTUAL = ColumnRef(ColumnSource.ACTUAL)


def kind_of(value: Scalar) -> ColumnKind:
    if value is None:
        return ColumnKind.UNSPECIFIED
    if isinstance(value, bool):
        return ColumnKind.BOOLEAN
    if isinstance(value, (int, float)):
        return ColumnKind.NUMERIC
    return ColumnKind.CATEGORICAL


def label_of(value: Scalar) -> str | None:
    """The class label of a prediction or actual: integral numbers lose their '.0'."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def number_of(value: Scalar) -> float | None:
    if value is None or isinstance(value, str):
        return None
    return float(value)


@dataclass(slots=True)
class EvaluationRecord:
    prediction_id: str
    model: str
    version: str
    environment: Environment
    prediction_time: datetime | None
    features: dict[str, Scalar] = field(default_factory=dict)
    prediction: Scalar = None
    scores: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""
    latency_us: int | None = None
    attributions: dict[str, float] = field(default_factory=dict)
    # Output only: the joined actual.
    actual: Actual | None = None
    #: W3C span id of the span that made the prediction (not stored; traced at ingest).
    span_id: str = ""


@dataclass(slots=True)
class Actual:
    prediction_id: str
    value: Scalar
    actual_time: datetime | None = None


@dataclass(frozen=True)
class Rejection:
    """A record or actual that was not stored: its index in the stream and why."""

    index: int
    prediction_id: str
    field: str
    reason: str


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    unmatched: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.unmatched += other.unmatched
        self.rejected.extend(other.rejected)


@dataclass(frozen=True)
class TimeWindow:
    start: datetime | None = None
    end: datetime | None = None

    def validate(self, path: str) -> None:
        if self.start and self.end and self.end <= self.start:
            raise InvalidArgument(
                f"{path}: end_time {self.end.isoformat()} is not after start_time "
                f"{self.start.isoformat()}", reason="WINDOW_END_BEFORE_START",
                field_violations=[FieldViolation(f"{path}.end_time",
                                                 "must be after start_time")])


class SliceOperator(IntEnum):
    UNSPECIFIED = 0
    EQUAL = 1
    NOT_EQUAL = 2
    LESS = 3
    LESS_OR_EQUAL = 4
    GREATER = 5
    GREATER_OR_EQUAL = 6
    IN = 7
    NOT_IN = 8
    BETWEEN = 9
    IS_NULL = 10
    IS_NOT_NULL = 11


#: How many operands each operator takes (None = one or more).
OPERAND_COUNT: dict[SliceOperator, int | None] = {
    SliceOperator.EQUAL: 1, SliceOperator.NOT_EQUAL: 1, SliceOperator.LESS: 1,
    SliceOperator.LESS_OR_EQUAL: 1, SliceOperator.GREATER: 1, SliceOperator.GREATER_OR_EQUAL: 1,
    SliceOperator.IN: None, SliceOperator.NOT_IN: None, SliceOperator.BETWEEN: 2,
    SliceOperator.IS_NULL: 0, SliceOperator.IS_NOT_NULL: 0,
}
ORDERING_OPERATORS = {SliceOperator.LESS, SliceOperator.LESS_OR_EQUAL, SliceOperator.GREATER,
                      SliceOperator.GREATER_OR_EQUAL, SliceOperator.BETWEEN}

_OP_TEXT = {SliceOperator.EQUAL: "=", SliceOperator.NOT_EQUAL: "!=", SliceOperator.LESS: "<",
            SliceOperator.LESS_OR_EQUAL: "<=", SliceOperator.GREATER: ">",
            SliceOperator.GREATER_OR_EQUAL: ">=", SliceOperator.IN: "in",
            SliceOperator.NOT_IN: "not in"}


@dataclass(frozen=True)
class SlicePredicate:
    column: ColumnRef
    op: SliceOperator
    values: tuple[Scalar, ...] = ()

    def describe(self) -> str:
        col = str(self.column)
        if self.op is SliceOperator.BETWEEN:
            return f"{col} in [{_fmt(self.values[0])}, {_fmt(self.values[1])})"
        if self.op is SliceOperator.IS_NULL:
            return f"{col} is null"
        if self.op is SliceOperator.IS_NOT_NULL:
            return f"{col} is not null"
        if self.op in (SliceOperator.IN, SliceOperator.NOT_IN):
            return f"{col} {_OP_TEXT[self.op]} ({', '.join(_fmt(v) for v in self.values)})"
        return f"{col} {_OP_TEXT[self.op]} {_fmt(self.values[0])}"


def _fmt(value: Scalar) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def describe_slice(predicates: tuple[SlicePredicate, ...] | list[SlicePredicate]) -> str:
    return " and ".join(p.describe() for p in predicates) or "all records"


@dataclass(frozen=True)
class EvaluationFilter:
    model: str
    versions: tuple[str, ...] = ()
    environment: Environment = Environment.UNSPECIFIED
    window: TimeWindow = TimeWindow()
    predicates: tuple[SlicePredicate, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model, "versions": list(self.versions),
            "environment": int(self.environment),
            "window": [_iso(self.window.start), _iso(self.window.end)],
            "predicates": [{"source": int(p.column.source), "name": p.column.name,
                            "op": int(p.op), "values": list(p.values)}
                           for p in self.predicates],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> EvaluationFilter:
        window = data.get("window") or [None, None]
        assert isinstance(window, list)
        preds = data.get("predicates") or []
        assert isinstance(preds, list)
        versions = data.get("versions") or []
        assert isinstance(versions, list)
        return cls(
            model=str(data["model"]), versions=tuple(str(v) for v in versions),
            environment=Environment(int(data.get("environment") or 0)),  # type: ignore[call-overload]
            window=TimeWindow(_parse_iso(window[0]), _parse_iso(window[1])),
            predicates=tuple(SlicePredicate(ColumnRef(ColumnSource(p["source"]), p["name"]),
                                            SliceOperator(p["op"]), tuple(p["values"]))
                             for p in preds),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_iso(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def utcnow() -> datetime:
    return datetime.now(UTC)
