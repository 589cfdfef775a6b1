"""Prediction records to observability's ``LogRecords`` client stream.

The fast path sends each batch in the contract's columnar form
(``LogRecordsRequest.arrow_ipc``, built by :mod:`log_columns` from the stacked
numpy inputs and outputs). An observability that does not know that field
(older than the contract) answers with counts that do not add up to the rows
sent; the sink then says so once, switches to one ``EvaluationRecord`` per row
and sends the batch again (records are idempotent by prediction id).

Rows observability rejects (``LogRecordsResponse.rejected``, by stream index)
are returned to the caller with their record: a retry would be rejected again,
so the logger dead-letters them instead of spooling.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from modelplane.api.v1 import types_pb2
from modelplane.kit.errors import Unavailable
from modelplane.observability.v1 import observability_pb2 as obs
from modelplane.observability.v1 import observability_pb2_grpc
from modelplane.serving.log_columns import encode_columnar

log = logging.getLogger("modelplane.serving.observability_sink")

_ENV = {"production": obs.ENVIRONMENT_PRODUCTION, "shadow": obs.ENVIRONMENT_SHADOW,
        "batch": obs.ENVIRONMENT_BATCH}


@dataclass
class RejectedRow:
    """One logged row observability refused, with the record it came from."""

    record: Any  # the PredictionRecord, None if observability named an index not sent
    row: int
    prediction_id: str
    field: str
    reason: str


def row_ids(prediction_id: str, n_rows: int) -> list[str]:
    """The id of each row's record: the prediction id itself for one row, else ``<id>.<i>``."""
    return [prediction_id] if n_rows == 1 else [f"{prediction_id}.{i}" for i in range(n_rows)]


def _set_value(target: types_pb2.Value, v: Any) -> None:
    if v is None:
        target.null_value = True
    elif isinstance(v, bool):
        target.bool_value = v
    elif isinstance(v, float):
        target.double_value = v
    elif isinstance(v, int):
        target.int64_value = v
    else:
        target.string_value = str(v)


def evaluation_records(record: dict[str, Any]) -> Iterator[obs.EvaluationRecord]:
    """One EvaluationRecord per row of a logged prediction (``PredictionRecord.to_dict()``)."""
    outputs = record["outputs"]
    n = len(outputs)
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(record["time"] * 1e9))
    latency = duration_pb2.Duration()
    latency.FromNanoseconds(int(record["latency_ms"] * 1e6))
    tags = {"deployment": record["deployment"], "route": record.get("route", "")}
    for key in ("fallback_reason", "parent_prediction_id"):
        if record.get(key):
            tags[key] = record[key]
    columns: list[tuple[str, list[Any]]] = []
    for name, values in {**record["inputs"], **record.get("features", {})}.items():
        if values and isinstance(values[0], list):  # a matrix: one column per position
            columns.extend((f"{name}_{j}", [row[j] for row in values])
                           for j in range(len(values[0])))
        else:
            columns.append((name, values))
    env = _ENV.get(record["environment"], obs.ENVIRONMENT_PRODUCTION)
    for i, pid in enumerate(row_ids(record["prediction_id"], n)):
        out = outputs[i]
        rec = obs.EvaluationRecord(
            prediction_id=pid, model=record["model"], version=record["model_version"],
            environment=env, prediction_time=ts, trace_id=record.get("trace_id", ""),
            span_id=record.get("span_id", ""), latency=latency, tags=tags)
        features = rec.features
        for name, values in columns:
            if i < len(values):
                _set_value(features[name], values[i])
        if isinstance(out, list):  # scores per class
            for k, s in enumerate(out):
                rec.scores[str(k)] = float(s)
            _set_value(rec.prediction,
                       int(max(range(len(out)), key=lambda k: out[k])) if out else None)
        else:
            _set_value(rec.prediction, out)
        yield rec


class ObservabilitySink:
    """A :class:`PredictionSink` sending each batch as one ``LogRecords`` call."""

    def __init__(self, channel: grpc.aio.Channel, *, chunk: int = 500,
                 columnar: bool = True, timeout: float = 10.0) -> None:
        self._channel = channel
        self._stub = observability_pb2_grpc.ObservabilityServiceStub(channel)
        self._chunk = chunk
        self.columnar = columnar
        self._timeout = timeout

    async def _call(self, requests: list[obs.LogRecordsRequest]) -> obs.LogRecordsResponse:
        try:
            return await self._stub.LogRecords(iter(requests), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"observability did not take the records: {exc.code().name}",
                              reason="OBSERVABILITY_UNAVAILABLE") from None

    async def send(self, records: Sequence[Any]) -> list[RejectedRow]:
        """Deliver ``records`` (PredictionRecord); the rows observability rejected."""
        if not records:
            return []
        if self.columnar:
            messages = encode_columnar(records)
            origin = [o for m in messages for o in m.origin]
            response = await self._call([obs.LogRecordsRequest(arrow_ipc=m.ipc)
                                         for m in messages])
            if _counted(response) >= len(origin):
                return self._rejected(response, records, origin)
            log.warning("observability answered %d of %d columnar rows (it does not read "
                        "LogRecordsRequest.arrow_ipc?); sending one EvaluationRecord per row "
                        "from now on", _counted(response), len(origin))
            self.columnar = False
        rows: list[obs.EvaluationRecord] = []
        origin = []
        for i, rec in enumerate(records):
            for j, row in enumerate(evaluation_records(rec.to_dict())):
                rows.append(row)
                origin.append((i, j))
        response = await self._call([obs.LogRecordsRequest(records=rows[i:i + self._chunk])
                                     for i in range(0, len(rows), self._chunk)])
        if _counted(response) < len(rows):
            log.error("observability accounted for %d of the %d records sent",
                      _counted(response), len(rows))
        return self._rejected(response, records, origin)

    @staticmethod
    def _rejected(response: obs.LogRecordsResponse, records: Sequence[Any],
                  origin: list[tuple[int, int]]) -> list[RejectedRow]:
        out = []
        for r in response.rejected:
            if 0 <= r.index < len(origin):
                i, row = origin[r.index]
                out.append(RejectedRow(records[i], row, r.prediction_id, r.field, r.reason))
            else:  # an index we did not send: keep what observability said
                out.append(RejectedRow(None, -1, r.prediction_id, r.field,
                                       f"{r.reason} (index {r.index} of {len(origin)} sent)"))
        return out

    async def close(self) -> None:
        await self._channel.close()


def _counted(response: obs.LogRecordsResponse) -> int:
    return response.accepted_count + response.duplicate_count + len(response.rejected)
