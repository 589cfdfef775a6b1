"""What ingest writes: each model's column catalog, records validated against it
and encoded as rows (JSON columns as text), actuals encoded for their table.

Both stores (embedded DuckDB, PostgreSQL) write these rows; :mod:`.frames` reads
them back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from modelplane.observability.records import (
    Actual,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationRecord,
    Rejection,
    Scalar,
    kind_of,
    label_of,
    number_of,
)

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

    def only(self, columns: Iterable[ColumnRef], scores: Iterable[str] = ()) -> Catalog:
        """This catalog with just ``columns`` among its features and tags and ``scores``
        among its score keys (the prediction, the actual and the versions stay): the
        columns a scan reads for an analysis that needs a few of them."""
        keep = {(int(c.source), c.name) for c in columns} \
            | {(SCORE_SOURCE, k) for k in scores}
        return Catalog({key: kind for key, kind in self.kinds.items()
                        if key in keep or key[0] not in (int(ColumnSource.FEATURE),
                                                         int(ColumnSource.TAG), SCORE_SOURCE)})


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
