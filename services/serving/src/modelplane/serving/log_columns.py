"""Prediction records as Arrow columns: observability's ``LogRecordsRequest.arrow_ipc`` form.

One Arrow record batch per group of records that share an input / output layout
(same tensor names, widths and datatypes), built from the stacked numpy arrays
the predictions were made from: no per-row or per-feature Python object. Column
names and types follow the contract (observability.proto, ``arrow_ipc``):

  prediction_id (the prediction id for one row, ``<id>.<row>`` otherwise), model,
  version, environment, prediction_time, feature.<name> (a 2-D tensor [N, k] is
  ``feature.<name>_<j>``), prediction, score.<class> (2-D numeric outputs: the
  scores per class and the arg-max as prediction), tag.deployment, tag.route,
  tag.fallback_reason, tag.parent_prediction_id, trace_id, span_id, latency_us.

Each :class:`EncodedMessage` also says which (record, row) each Arrow row came
from, so a rejection (reported by its index in the stream) finds its record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from modelplane.serving.servable_model import ModelInput

#: observability.v1.Environment numbers
ENVIRONMENTS = {"production": 3, "shadow": 4, "batch": 5}
#: Largest Arrow payload per LogRecordsRequest (gRPC's default receive limit is 4 MiB).
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass
class EncodedMessage:
    """One Arrow IPC stream (one LogRecordsRequest) and where its rows came from."""

    ipc: bytes
    #: per Arrow row: (index of the record in the encoded sequence, row in that record)
    origin: list[tuple[int, int]]

    @property
    def rows(self) -> int:
        return len(self.origin)


def _arrays(rec: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The record's feature tensors by name (inputs, then fetched features) and its output."""
    inputs = rec.inputs
    named: dict[str, np.ndarray] = {}
    if isinstance(inputs, ModelInput):
        named.update(inputs.columns)
        if inputs.matrix is not None:
            named[inputs.matrix_name or "input"] = inputs.matrix
    else:
        named.update((k, np.asarray(v)) for k, v in inputs.items())
    for k, v in rec.features.items():
        named[k] = np.asarray(v)
    return named, np.asarray(rec.outputs)


def _fit(arr: np.ndarray, n: int) -> np.ndarray:
    """``arr`` with exactly ``n`` rows: missing rows are nulls (never expected, never lost)."""
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.shape[0] == n:
        return arr
    out = np.full((n, *arr.shape[1:]), None, dtype=object)
    k = min(n, arr.shape[0])
    out[:k] = arr[:k]
    return out


def _column(values: np.ndarray) -> pa.Array:
    """A 1-D numpy column as an Arrow array of a contract type (double/int64/bool/string)."""
    kind = values.dtype.kind
    if kind == "f":
        return pa.array(values.astype(np.float64, copy=False))
    if kind in "iu":
        return pa.array(values.astype(np.int64, copy=False) if kind == "i" or
                        values.dtype.itemsize < 8 else values)
    if kind == "b":
        return pa.array(values)
    if kind == "U":
        return pa.array(values.tolist(), pa.string())
    try:
        arr = pa.array(values.tolist(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = None
    if arr is None or not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)
                           or pa.types.is_boolean(arr.type) or pa.types.is_string(arr.type)
                           or pa.types.is_null(arr.type)):
        arr = pa.array([None if v is None else v.decode() if isinstance(v, bytes) else str(v)
                        for v in values.tolist()], pa.string())
    return arr


def _layout(named: dict[str, np.ndarray], out: np.ndarray, n: int) -> tuple[Any, ...]:
    return (tuple((k, v.ndim, v.shape[1:], v.dtype.kind, v.shape[0] == n)
                  for k, v in named.items()),
            (out.ndim, out.shape[1:], out.dtype.kind))


def _per_record(values: list[Any], counts: np.ndarray, single: bool) -> list[Any]:
    if single:
        return values
    return np.repeat(np.array(values, dtype=object), counts).tolist()


def _strings(values: list[str]) -> pa.Array | None:
    """A string column, empty values as nulls; None when every value is empty."""
    if not any(values):
        return None
    return pa.array([v or None for v in values], pa.string())


def _encode_group(records: Sequence[Any], members: list[int],
                  parts: list[tuple[dict[str, np.ndarray], np.ndarray]]) -> list[EncodedMessage]:
    counts = np.array([parts[i][1].shape[0] if parts[i][1].ndim else 1 for i in members],
                      dtype=np.int64)
    single = bool(np.all(counts == 1))
    recs = [records[i] for i in members]
    if single:
        ids = [r.prediction_id for r in recs]
        origin = [(i, 0) for i in members]
    else:
        ids, origin = [], []
        for i, r, n in zip(members, recs, counts.tolist(), strict=True):
            if n == 1:
                ids.append(r.prediction_id)
            else:
                ids.extend(f"{r.prediction_id}.{j}" for j in range(n))
            origin.extend((i, j) for j in range(n))
    columns: dict[str, pa.Array] = {
        "prediction_id": pa.array(ids, pa.string()),
        "model": pa.array(_per_record([r.model for r in recs], counts, single), pa.string()),
        "version": pa.array(_per_record([r.model_version for r in recs], counts, single),
                            pa.string()),
        "environment": pa.array(np.repeat(np.array(
            [ENVIRONMENTS.get(r.environment, 3) for r in recs], dtype=np.int32), counts)),
        "prediction_time": pa.array(np.repeat(np.array(
            [r.time for r in recs], dtype=np.float64) * 1e6, counts).astype(np.int64)
        ).view(_TIMESTAMP),
    }
    first_named, _ = parts[members[0]]
    for name in first_named:
        cat = np.concatenate([_fit(parts[i][0][name], n)
                              for i, n in zip(members, counts.tolist(), strict=True)])
        if cat.ndim == 1:
            columns[f"feature.{name}"] = _column(cat)
        else:
            flat = cat.reshape(cat.shape[0], -1)
            cols = np.ascontiguousarray(flat.T)
            for j in range(cols.shape[0]):
                columns[f"feature.{name}_{j}"] = _column(cols[j])
    out = np.concatenate([_fit(parts[i][1], n)
                          for i, n in zip(members, counts.tolist(), strict=True)])
    if out.ndim == 1:
        columns["prediction"] = _column(out)
    elif out.dtype.kind in "fiub" and out.shape[1] > 0:  # scores per class
        scores = np.ascontiguousarray(out.reshape(out.shape[0], -1).T.astype(np.float64))
        columns["prediction"] = pa.array(np.argmax(out.reshape(out.shape[0], -1), axis=1)
                                         .astype(np.int64))
        for k in range(scores.shape[0]):
            columns[f"score.{k}"] = pa.array(scores[k])
    else:  # a non-numeric matrix: each row's values joined as the label
        columns["prediction"] = pa.array([" ".join(map(str, row)) for row in out.tolist()],
                                         pa.string())
    tags = {"deployment": [r.deployment for r in recs], "route": [r.route for r in recs],
            "fallback_reason": [r.fallback_reason for r in recs],
            "parent_prediction_id": [r.parent_prediction_id for r in recs]}
    for name, values in tags.items():
        arr = _strings(_per_record(values, counts, single))
        if arr is not None:
            columns[f"tag.{name}"] = arr
    for name, values in (("trace_id", [r.trace_id for r in recs]),
                         ("span_id", [r.span_id for r in recs])):
        arr = _strings(_per_record(values, counts, single))
        if arr is not None:
            columns[name] = arr
    columns["latency_us"] = pa.array(np.repeat(np.array(
        [r.latency_ms for r in recs], dtype=np.float64) * 1000.0, counts).astype(np.int64))

    batch = pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))
    total = batch.num_rows
    step = total
    size = batch.get_total_buffer_size()  # (``nbytes`` costs ~100x more)
    if size > MAX_MESSAGE_BYTES:
        step = max(1, int(total * MAX_MESSAGE_BYTES / size))
    messages = []
    for start in range(0, total, step):
        part = batch.slice(start, step)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, part.schema) as writer:
            writer.write_batch(part)
        messages.append(EncodedMessage(sink.getvalue().to_pybytes(),
                                       origin[start:start + part.num_rows]))
    return messages


def encode_columnar(records: Sequence[Any]) -> list[EncodedMessage]:
    """Arrow IPC messages holding every row of ``records`` (PredictionRecord-like objects)."""
    parts = [_arrays(r) for r in records]
    groups: dict[Any, list[int]] = {}
    for i, (named, out) in enumerate(parts):
        n = out.shape[0] if out.ndim else 1
        if n == 0:
            continue
        groups.setdefault(_layout(named, out, n), []).append(i)
    messages: list[EncodedMessage] = []
    for members in groups.values():
        messages.extend(_encode_group(records, members, parts))
    return messages
