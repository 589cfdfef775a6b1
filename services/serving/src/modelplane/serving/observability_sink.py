"""Prediction records to observability's ``LogRecords`` client stream (one row = one record)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import grpc
from google.protobuf import duration_pb2, timestamp_pb2
from modelplane.api.v1 import types_pb2
from modelplane.kit.errors import Unavailable
from modelplane.observability.v1 import observability_pb2 as obs
from modelplane.observability.v1 import observability_pb2_grpc

_ENV = {"production": obs.ENVIRONMENT_PRODUCTION, "shadow": obs.ENVIRONMENT_SHADOW,
        "batch": obs.ENVIRONMENT_BATCH}


def _value(v: Any) -> types_pb2.Value:
    if v is None:
        return types_pb2.Value(null_value=True)
    if isinstance(v, bool):
        return types_pb2.Value(bool_value=v)
    if isinstance(v, int):
        return types_pb2.Value(int64_value=v)
    if isinstance(v, float):
        return types_pb2.Value(double_value=v)
    return types_pb2.Value(string_value=str(v))


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
    """One EvaluationRecord per row of a logged prediction."""
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
            latency=latency, tags=tags)
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

    def __init__(self, channel: grpc.aio.Channel, *, chunk: int = 500) -> None:
        self._channel = channel
        self._stub = observability_pb2_grpc.ObservabilityServiceStub(channel)
        self._chunk = chunk

    async def send(self, records: Sequence[dict[str, Any]]) -> None:
        rows = [r for rec in records for r in evaluation_records(rec)]

        async def requests() -> Any:
            for i in range(0, len(rows), self._chunk):
                yield obs.LogRecordsRequest(records=rows[i:i + self._chunk])

        try:
            response = await self._stub.LogRecords(requests(), timeout=10.0)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"observability did not take the records: {exc.code().name}",
                              reason="OBSERVABILITY_UNAVAILABLE") from None
        if response.rejected:
            first = response.rejected[0]
            # Rejected records will not be accepted on a retry either: report, do not spool.
            import logging

            logging.getLogger("modelplane.serving.observability_sink").error(
                "observability rejected %d record(s), e.g. %s: %s", len(response.rejected),
                first.field, first.reason)

    async def close(self) -> None:
        await self._channel.close()
