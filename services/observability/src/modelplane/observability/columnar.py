"""The columnar form of a LogRecords batch (``LogRecordsRequest.arrow_ipc``).

An Arrow IPC stream, one row per record, columns named by the contract
(``prediction_id``, ``model``, ``version``, ``environment``,
``prediction_time``, ``feature.<name>``, ``prediction``, ``score.<label>``,
``tag.<name>``, ``attribution.<name>``, ``trace_id``, ``span_id``,
``latency_us``). :func:`prepare_columnar` validates a batch with Arrow compute
(no per-row Python) and normalises it into a :class:`ColumnarBatch`: fixed,
typed columns (``f0``, ``s0``, ``g0``, ``x0`` ... stand for the caller's
feature, score, tag and attribution names, which never become SQL text).
:func:`record_table` turns it into the stored rows with Arrow kernels, the
features / scores / tags / attributions as JSON text that parses to exactly
what the per-record path's ``json.dumps`` writes for the same record; a
backend bulk-loads that (PostgreSQL: CSV into ``COPY``; DuckDB: an Arrow scan).

Rejections mirror the per-record path, with the row's index in the stream:
a null or empty required column, an unknown environment number, a non-finite
score, a feature whose kind conflicts with the model's catalog. A column the
contract does not know, or of a type it does not allow, rejects every row of
the batch (the producer's schema is wrong, not one record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelplane.kit.arrow_ipc import ArrowLimits, read_ipc_stream
from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.observability.records import (
    ColumnKind,
    ColumnSource,
    Environment,
    Rejection,
    label_of,
)
from modelplane.observability.store.encoding import (
    MAX_ID_LENGTH,
    RECORD_COLUMNS,
    SCORE_SOURCE,
    VERSION_SOURCE,
    Catalog,
)

#: Value types of a staged JSON member.
DOUBLE, INTEGER, STRING, BOOLEAN = "double", "integer", "string", "boolean"

_KIND_OF_TYPE = {DOUBLE: ColumnKind.NUMERIC, INTEGER: ColumnKind.NUMERIC,
                 STRING: ColumnKind.CATEGORICAL, BOOLEAN: ColumnKind.BOOLEAN}
_ARROW_OF_TYPE = {DOUBLE: pa.float64(), INTEGER: pa.int64(), STRING: pa.string(),
                  BOOLEAN: pa.bool_()}
_PREFIXES = {"feature.": "features", "score.": "scores", "tag.": "tags",
             "attribution.": "attributions"}
_COLUMN_PREFIX = {g: p for p, g in _PREFIXES.items()}
_GROUP_LETTER = {"features": "f", "scores": "s", "tags": "g", "attributions": "x"}
_STRING_COLUMNS = ("prediction_id", "model", "version", "trace_id", "span_id")
_ENVIRONMENTS = [int(e) for e in Environment if e is not Environment.UNSPECIFIED]

#: The fixed columns of a normalised batch, in order, with their types.
BASE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("prediction_id", pa.string()), ("model", pa.string()), ("version", pa.string()),
    ("environment", pa.int16()), ("time_us", pa.int64()), ("prediction_label", pa.string()),
    ("prediction_number", pa.float64()), ("trace_id", pa.string()), ("latency_us", pa.int64()),
)


@dataclass(frozen=True)
class JsonMember:
    """One key of a record's features / scores / tags / attributions object."""

    group: str  # "features", "scores", "tags" or "attributions"
    key: str  # the caller's name (JSON-encoded into the data, never SQL text)
    column: str  # the staged column holding its values (f0, s3, ...)
    value_type: str  # DOUBLE, INTEGER, STRING or BOOLEAN


@dataclass
class ColumnarBatch:
    """A validated batch: the rows to store, normalised, and what was left out."""

    #: BASE_COLUMNS then one column per JSON member; valid rows only, first of each id.
    table: pa.Table
    members: list[JsonMember]
    rows: int  # rows in the message
    rejected: list[Rejection]
    in_batch_duplicates: int
    new_columns: dict[str, dict[tuple[int, str], ColumnKind]]
    #: Distinct (trace id, span id, model, records) of the valid rows that carry both ids.
    spans: list[tuple[str, str, str, int]] = field(default_factory=list)

    def group(self, name: str) -> list[JsonMember]:
        return [m for m in self.members if m.group == name]

    def months(self) -> list[int]:
        """Distinct prediction times truncated to the month start, as µs since the epoch."""
        if self.table.num_rows == 0:
            return []
        times = self.table.column("time_us").cast(pa.timestamp("us", tz="UTC"))
        months = pc.unique(pc.floor_temporal(times, unit="month"))
        return [int(v) for v in months.cast(pa.int64()).to_pylist()]


def read_ipc(data: bytes, path: str = "arrow_ipc", limits: ArrowLimits | None = None
             ) -> pa.Table:
    """The table in an Arrow IPC stream; INVALID_ARGUMENT if it is not one,
    RESOURCE_EXHAUSTED (before inflating anything) past the kit's Arrow limits."""
    table = read_ipc_stream(data, limits, path)
    try:
        table.validate(full=True)  # e.g. invalid UTF-8 in a string column
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        description = f"not a valid Arrow IPC stream: {exc}"
        raise InvalidArgument(f"{path}: {description}", reason="INVALID_ARROW_IPC",
                              field_violations=[FieldViolation(path, description)]) from None
    return table


def _value_type(t: pa.DataType) -> str | None:
    if pa.types.is_floating(t):
        return DOUBLE
    if pa.types.is_integer(t):
        return INTEGER
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return STRING
    if pa.types.is_boolean(t):
        return BOOLEAN
    if pa.types.is_dictionary(t):
        return _value_type(t.value_type)
    return None


def _as(col: pa.ChunkedArray, value_type: str) -> pa.ChunkedArray:
    target = _ARROW_OF_TYPE[value_type]
    if col.type == target:
        return col
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.cast(target)  # safe: an out-of-range uint64 raises


def _mask(arr: Any) -> np.ndarray:
    """A boolean compute result as numpy, nulls as False."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


class _Problems:
    """The first problem of each row (index into ``self.kinds``), -1 when none."""

    def __init__(self, n: int) -> None:
        self.first = np.full(n, -1, dtype=np.int32)
        self.kinds: list[tuple[str, str]] = []

    def flag(self, mask: np.ndarray | bool, column: str, reason: str) -> None:
        fresh = np.asarray(mask, dtype=bool) & (self.first < 0)
        if fresh.any():
            self.first[fresh] = len(self.kinds)
            self.kinds.append((column, reason))

    @property
    def bad(self) -> np.ndarray:
        return self.first >= 0


def prepare_columnar(table: pa.Table, first_index: int,
                     catalogs: dict[str, Catalog]) -> ColumnarBatch:
    """Validate and normalise one batch. ``catalogs`` is only read."""
    n = table.num_rows
    problems = _Problems(n)
    required = {"prediction_id", "model", "version", "environment", "prediction_time"}
    columns: dict[str, pa.ChunkedArray] = {}
    members: list[tuple[str, str, pa.ChunkedArray, str]] = []  # group, key, values, type
    seen_names: set[str] = set()
    for name, col in zip(table.column_names, table.columns):
        if name in seen_names:
            problems.flag(True, name, "the column appears twice in the batch")
            continue
        seen_names.add(name)
        vtype = _value_type(col.type)
        if pa.types.is_null(col.type):
            if name in required:
                problems.flag(True, name, "required")
            continue  # an all-null optional column: nothing to store
        group = next((g for p, g in _PREFIXES.items() if name.startswith(p)), None)
        if group is not None:
            key = name.split(".", 1)[1]
            allowed = ((DOUBLE, INTEGER, STRING, BOOLEAN) if group == "features"
                       else (STRING,) if group == "tags" else (DOUBLE, INTEGER))
            if not key:
                problems.flag(True, name, f"{group} names must not be empty")
            elif vtype is None or vtype not in allowed:
                problems.flag(True, name, f"type {col.type} is not allowed here "
                              f"(use {' or '.join(allowed)})")
            else:
                target = vtype if group == "features" else allowed[0]
                try:
                    members.append((group, key, _as(col, target), target))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    problems.flag(True, name, f"cannot be read as {target}: {exc}")
            continue
        expected: tuple[str, ...]
        if name in _STRING_COLUMNS:
            expected = (STRING,)
        elif name in ("environment", "latency_us"):
            expected = (INTEGER,)
        elif name == "prediction":
            expected = (DOUBLE, INTEGER, STRING, BOOLEAN)
        elif name == "prediction_time":
            if pa.types.is_timestamp(col.type):
                columns[name] = col.cast(pa.timestamp("us", tz=col.type.tz), safe=False)
            else:
                problems.flag(True, name, f"type {col.type} is not allowed here (use timestamp)")
            continue
        else:
            problems.flag(True, name, "not a column of the contract (prediction_id, model, "
                          "version, environment, prediction_time, feature.<name>, prediction, "
                          "score.<label>, tag.<name>, attribution.<name>, trace_id, span_id, "
                          "latency_us)")
            continue
        if vtype is None or vtype not in expected:
            problems.flag(True, name, f"type {col.type} is not allowed here "
                          f"(use {' or '.join(expected)})")
            continue
        try:
            columns[name] = _as(col, vtype if name == "prediction" else expected[0])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            problems.flag(True, name, f"cannot be read as {expected[0]}: {exc}")
    for name in ("prediction_id", "model", "version", "environment", "prediction_time"):
        if name not in columns:
            problems.flag(True, name, "required")

    empty = pa.chunked_array([pa.nulls(n, pa.string())])
    pid = columns.get("prediction_id", empty)
    model = columns.get("model", empty)
    for name in ("prediction_id", "model", "version"):
        if name in columns:
            problems.flag(~_mask(pc.greater(pc.utf8_length(columns[name]), 0)), name, "required")
    if "prediction_id" in columns:
        problems.flag(_mask(pc.greater(pc.utf8_length(pid), MAX_ID_LENGTH)), "prediction_id",
                      f"longer than {MAX_ID_LENGTH} characters")
    env = columns.get("environment")
    if env is not None:
        problems.flag(~_mask(pc.not_equal(env, 0)), "environment",
                      "required (TRAINING, VALIDATION, PRODUCTION, SHADOW or BATCH)")
        problems.flag(~_mask(pc.is_in(env, pa.array(_ENVIRONMENTS, env.type))), "environment",
                      "not an Environment number (TRAINING=1, VALIDATION=2, PRODUCTION=3, "
                      "SHADOW=4, BATCH=5)")
    if "prediction_time" in columns:
        problems.flag(_mask(pc.is_null(columns["prediction_time"])), "prediction_time", "required")
    for group, key, values, _t in members:
        if group == "scores":
            problems.flag(~_mask(pc.or_kleene(pc.is_null(values), pc.is_finite(values))),
                          f"score.{key}", "must be a finite number")
    # PostgreSQL text cannot hold NUL; reject the row rather than fail the batch.
    texts = [(c, columns[c]) for c in (*_STRING_COLUMNS, "prediction")
             if c in columns and columns[c].type == pa.string()]
    texts += [(f"{_COLUMN_PREFIX[g]}{k}", v) for g, k, v, t in members if t == STRING]
    for name, values in texts:
        problems.flag(_mask(pc.match_substring(values, "\x00")), name,
                      "must not contain a NUL character")

    # A feature keeps one kind per model: check against each model's catalog.
    features = [(key, values, _KIND_OF_TYPE[t]) for g, key, values, t in members
                if g == "features"]
    models = pc.unique(model).to_pylist() if "model" in columns else []
    for m in models:
        catalog = catalogs.get(m) if m else None
        if catalog is None:
            continue
        in_model: Any = None
        for key, values, kind in features:
            known = catalog.kinds.get((int(ColumnSource.FEATURE), key))
            if known is None or known is kind:
                continue
            if in_model is None:
                in_model = _mask(pc.equal(model, m)) if len(models) > 1 else np.ones(n, bool)
            problems.flag(in_model & ~_mask(pc.is_null(values)), f"feature.{key}",
                          f"is {kind.name.lower()} but model {m!r} has it as "
                          f"{known.name.lower()}")

    rejected: list[Rejection] = []
    bad = problems.bad
    if bad.any():
        ids = pid.to_pylist()
        for i in np.flatnonzero(bad).tolist():
            column, reason = problems.kinds[problems.first[i]]
            rejected.append(Rejection(first_index + i, ids[i] or "",
                                      f"arrow_ipc[{i}].{column}", reason))
        keep = pa.array(~bad)
        columns = {k: v.filter(keep) for k, v in columns.items()}
        members = [(g, k, v.filter(keep), t) for g, k, v, t in members]
    valid = n - len(rejected)

    # The first row of each prediction id in the batch (as the per-record path).
    duplicates = 0
    if valid and pc.count_distinct(columns["prediction_id"]).as_py() < valid:
        firsts = pa.table({"i": columns["prediction_id"], "r": pa.array(np.arange(valid))}
                          ).group_by("i", use_threads=False).aggregate([("r", "min")])
        take = pc.sort_indices(firsts.column("r_min"))
        take = pc.take(firsts.column("r_min"), take)
        duplicates = valid - len(take)
        columns = {k: v.take(take) for k, v in columns.items()}
        members = [(g, k, v.take(take), t) for g, k, v, t in members]

    rows = valid - duplicates
    out, staged = _normalise(columns, members, rows)
    return ColumnarBatch(table=out, members=staged, rows=n, rejected=rejected,
                         in_batch_duplicates=duplicates,
                         new_columns=_new_columns(columns, members, rows, catalogs),
                         spans=_spans(columns, rows))


def _normalise(columns: dict[str, pa.ChunkedArray],
               members: list[tuple[str, str, pa.ChunkedArray, str]], rows: int
               ) -> tuple[pa.Table, list[JsonMember]]:
    if rows == 0:
        return pa.schema(list(BASE_COLUMNS)).empty_table(), []

    def null(t: pa.DataType) -> pa.ChunkedArray:
        return pa.chunked_array([pa.nulls(rows, t)])

    label, number = null(pa.string()), null(pa.float64())
    pred = columns.get("prediction")
    if pred is not None:
        if pred.type == pa.string():
            label = pred
        elif pred.type == pa.bool_():
            label = pc.if_else(pred, "true", "false")
            number = pred.cast(pa.float64())
        elif pred.type == pa.int64():
            label = pred.cast(pa.string())
            number = pred.cast(pa.float64())
        else:  # double: the label exactly as the per-record path writes it
            label = pa.chunked_array([pa.array([label_of(v) for v in pred.to_pylist()],
                                               pa.string())])
            number = pc.if_else(pc.is_finite(pred), pred, None)
    trace = columns.get("trace_id", null(pa.string()))
    trace = pc.if_else(pc.equal(trace, ""), None, trace)
    base = [columns["prediction_id"], columns["model"], columns["version"],
            columns["environment"].cast(pa.int16()),
            columns["prediction_time"].cast(pa.int64()), label, number, trace,
            columns.get("latency_us", null(pa.int64()))]
    names = [name for name, _ in BASE_COLUMNS]
    staged: list[JsonMember] = []
    counters: dict[str, int] = {}
    for group, key, values, vtype in members:
        letter = _GROUP_LETTER[group]
        column = f"{letter}{counters.setdefault(letter, 0)}"
        counters[letter] += 1
        names.append(column)
        base.append(values)
        staged.append(JsonMember(group, key, column, vtype))
    return pa.Table.from_arrays(base, names=names), staged


def _new_columns(columns: dict[str, pa.ChunkedArray],
                 members: list[tuple[str, str, pa.ChunkedArray, str]], rows: int,
                 catalogs: dict[str, Catalog]) -> dict[str, dict[tuple[int, str], ColumnKind]]:
    """Catalog entries the kept rows add, per model (a column with a value in that model)."""
    if rows == 0:
        return {}
    model = columns["model"]
    models = pc.unique(model).to_pylist()
    pred = columns.get("prediction")
    out: dict[str, dict[tuple[int, str], ColumnKind]] = {}
    for m in models:
        catalog = catalogs.get(m) or Catalog()
        sel = None if len(models) == 1 else pc.equal(model, m)

        def present(values: pa.ChunkedArray, sel: Any = sel) -> bool:
            if sel is None:
                return bool(values.null_count < len(values))
            return bool(pc.any(pc.and_(sel, pc.is_valid(values))).as_py())

        adds: dict[tuple[int, str], ColumnKind] = {}
        versions = columns["version"] if sel is None else columns["version"].filter(sel)
        for v in pc.unique(versions).to_pylist():
            adds[(VERSION_SOURCE, v)] = ColumnKind.UNSPECIFIED
        for group, key, values, vtype in members:
            source = {"features": int(ColumnSource.FEATURE), "tags": int(ColumnSource.TAG),
                      "scores": SCORE_SOURCE}.get(group)
            if source is None or not present(values):
                continue
            adds[(source, key)] = (_KIND_OF_TYPE[vtype] if group == "features"
                                   else ColumnKind.CATEGORICAL if group == "tags"
                                   else ColumnKind.NUMERIC)
        if pred is not None and present(pred):
            # Integer predictions are class labels; only doubles are numeric (regression).
            adds[(int(ColumnSource.PREDICTION), "")] = (
                ColumnKind.NUMERIC if pred.type == pa.float64()
                else ColumnKind.BOOLEAN if pred.type == pa.bool_() else ColumnKind.CATEGORICAL)
        fresh = {k: v for k, v in adds.items() if k not in catalog.kinds}
        if fresh:
            out[m] = fresh
    return out


def _spans(columns: dict[str, pa.ChunkedArray], rows: int) -> list[tuple[str, str, str, int]]:
    span = columns.get("span_id")
    trace = columns.get("trace_id")
    if rows == 0 or span is None or trace is None or span.null_count == rows:
        return []
    both = pc.and_(pc.greater(pc.utf8_length(span), 0), pc.greater(pc.utf8_length(trace), 0))
    keep = pc.fill_null(both, False)
    if not pc.any(keep).as_py():
        return []
    pairs = pa.table({"t": trace.filter(keep), "s": span.filter(keep),
                      "m": columns["model"].filter(keep)}
                     ).group_by(["t", "s", "m"], use_threads=False).aggregate([([], "count_all")])
    return list(zip(pairs.column("t").to_pylist(), pairs.column("s").to_pylist(),
                    pairs.column("m").to_pylist(), pairs.column("count_all").to_pylist()))


# -- JSON text ------------------------------------------------------------------

_CONTROL = r"[\x00-\x1f]"


def _json_strings(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """JSON string literals of a string column (nulls stay null)."""
    if pc.any(pc.match_substring_regex(values, _CONTROL)).as_py():
        # Rare: control characters need \u escapes, which Arrow cannot write.
        return pa.chunked_array([pa.array(
            [None if v is None else json.dumps(v) for v in values.to_pylist()], pa.string())])
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', escaped, '"', "")


def _json_numbers(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """JSON numbers of a double column that parse to what ``json.dumps`` writes:
    shortest round-trip digits, an integral value keeps its ``.0``; NaN / inf are null."""
    finite = pc.if_else(pc.is_finite(values), values, None)
    text = finite.cast(pa.string())
    integral = pc.and_(pc.equal(finite, pc.trunc(finite)), pc.less(pc.abs(finite), 1e16))
    if not pc.any(integral).as_py():
        return text
    whole = pc.binary_join_element_wise(
        pc.if_else(integral, finite, None).cast(pa.int64()).cast(pa.string()), ".0", "")
    return pc.if_else(integral, whole, text)


def json_objects(batch: ColumnarBatch, group: str) -> pa.ChunkedArray | None:
    """Per row, the JSON object text of a group (features, scores, tags, attributions)
    with the members that have a value; ``{}`` when none has (None when the group has
    no member). Vectorised: Arrow kernels, no per-row Python."""
    members = batch.group(group)
    if not members:
        return None
    texts = []
    for m in members:
        values = batch.table.column(m.column)
        if m.value_type == DOUBLE:
            text = _json_numbers(values)
        elif m.value_type == STRING:
            text = _json_strings(values)
        elif m.value_type == BOOLEAN:
            text = pc.if_else(values, "true", "false")
        else:
            text = values.cast(pa.string())
        texts.append((json.dumps(m.key), text))
    if all(text.null_count == 0 for _, text in texts):  # every member everywhere: one join
        parts: list[Any] = []
        for i, (key, text) in enumerate(texts):
            parts += [("{" if i == 0 else ",") + key + ":", text]
        return pc.binary_join_element_wise(*parts, "}", "")
    fragments = [pc.binary_join_element_wise("," + key + ":", text, "") for key, text in texts]
    # (null_handling="skip" drops the rows where every input is null: pyarrow 25.)
    body = pc.binary_join_element_wise(*fragments, "", null_handling="replace",
                                       null_replacement="")
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(body, 1), "}", "")


def record_table(batch: ColumnarBatch, time_type: pa.DataType) -> pa.Table:
    """The batch as stored rows (the store's RECORD_COLUMNS, in order), the features /
    scores / tags / attributions as JSON text, prediction times as ``time_type``."""
    t = batch.table
    n = t.num_rows

    def json_column(group: str, empty: str | None) -> pa.ChunkedArray:
        text = json_objects(batch, group)
        if text is None:
            return pa.chunked_array([pa.array([empty] * n, pa.string()) if empty
                                     else pa.nulls(n, pa.string())])
        return text if empty else pc.if_else(pc.equal(text, "{}"), None, text)

    return pa.Table.from_arrays([
        t.column("prediction_id"), t.column("model"), t.column("version"),
        t.column("environment"), t.column("time_us").cast(time_type),
        json_column("features", "{}"), t.column("prediction_label"),
        t.column("prediction_number"), json_column("scores", None),
        json_column("tags", None), t.column("trace_id"), t.column("latency_us"),
        json_column("attributions", None)], names=list(RECORD_COLUMNS))
