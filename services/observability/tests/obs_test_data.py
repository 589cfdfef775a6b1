"""Evaluation records for the observability tests (imported by the test modules)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelplane.api.v1 import types_pb2 as T
from modelplane.kit.pytest_plugin import rpc_error  # noqa: F401 - the tests import it from here
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.store.base import EvaluationStore
from modelplane.observability.store.embedded import EmbeddedStore
from modelplane.observability.store.postgres import PostgresStore
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


@dataclass
class Service:
    stub: pb_grpc.ObservabilityServiceStub
    runtime: ObservabilityRuntime
    backend: str


def value(v: object) -> T.Value:
    if v is None:
        return T.Value(null_value=True)
    if isinstance(v, bool):
        return T.Value(bool_value=v)
    if isinstance(v, int):
        return T.Value(int64_value=v)
    if isinstance(v, float):
        return T.Value(double_value=v)
    return T.Value(string_value=str(v))


def record(pid: str, model: str, version: str, env: int, t: datetime,
           features: dict[str, object], prediction: object,
           scores: dict[str, float] | None = None, tags: dict[str, str] | None = None
           ) -> pb.EvaluationRecord:
    r = pb.EvaluationRecord(prediction_id=pid, model=model, version=version, environment=env,
                            features={k: value(v) for k, v in features.items()},
                            prediction=value(prediction), scores=scores or {}, tags=tags or {})
    r.prediction_time.FromDatetime(t)
    return r


async def log(stub: pb_grpc.ObservabilityServiceStub, records: list[pb.EvaluationRecord],
              batch: int = 500) -> pb.LogRecordsResponse:
    async def gen() -> AsyncIterator[pb.LogRecordsRequest]:
        for i in range(0, len(records), batch):
            yield pb.LogRecordsRequest(records=records[i:i + batch])
    return await stub.LogRecords(gen())


async def log_actuals(stub: pb_grpc.ObservabilityServiceStub,
                      actuals: Iterable[tuple[str, object]]) -> pb.LogActualsResponse:
    items = [pb.Actual(prediction_id=p, value=value(v)) for p, v in actuals]

    async def gen() -> AsyncIterator[pb.LogActualsRequest]:
        for i in range(0, len(items), 1000):
            yield pb.LogActualsRequest(actuals=items[i:i + 1000])
    return await stub.LogActuals(gen())


def open_store(kind: str, tmp_path: Path, make_postgres_database: Callable[[str], str],
               prefix: str) -> EvaluationStore:
    """An opened, empty store: ``embedded`` (a DuckDB file under ``tmp_path``) or
    ``postgres`` (a new database named from ``prefix``)."""
    s: EvaluationStore
    if kind == "postgres":
        s = PostgresStore(make_postgres_database(prefix))
    else:
        s = EmbeddedStore(tmp_path / "evaluations.duckdb")
    s.open()
    return s


def store_fixture(prefix: str) -> Any:
    """A test module's ``store`` fixture: each test gets an opened, empty store of
    each kind (``open_store``), closed after it."""

    @pytest.fixture(params=["embedded", "postgres"])
    def store(request: pytest.FixtureRequest, tmp_path: Path,
              make_postgres_database: Callable[[str], str]) -> Iterator[EvaluationStore]:
        s = open_store(request.param, tmp_path, make_postgres_database, prefix)
        yield s
        s.close()

    return store


def unique_model(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def churn_records(model: str, env: int, n: int, *, version: str = "v1", shift: float = 0.0,
                  start: datetime = T0, step: timedelta = timedelta(minutes=1), seed: int = 0,
                  prefix: str | None = None) -> tuple[list[pb.EvaluationRecord], np.ndarray]:
    """A binary classifier with calibrated scores: returns the records and their true labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    tenure = rng.uniform(0, 10, n)
    cities = np.array(["paris", "lyon", "nice"], dtype=object)[rng.integers(0, 3, n)]
    p = 1 / (1 + np.exp(-(1.5 * x - 0.1 * tenure + 0.5)))
    y = (rng.uniform(size=n) < p).astype(int)
    prefix = prefix or f"{model}-{env}-{version}"
    recs = [record(f"{prefix}-{i}", model, version, env, start + i * step,
                   {"x": float(x[i]), "tenure": float(tenure[i]), "city": str(cities[i])},
                   int(p[i] > 0.5), {"1": float(p[i])}, {"region": "eu" if i % 2 else "us"})
            for i in range(n)]
    return recs, y


def _py(v: T.Value) -> object:
    kind = v.WhichOneof("kind")
    return None if kind in (None, "null_value") else getattr(v, kind)


def arrow_table(records: list[pb.EvaluationRecord]) -> Any:
    """The same records in the columnar form of ``LogRecordsRequest.arrow_ipc``."""
    import pyarrow as pa

    n = len(records)

    def keys(attr: str) -> list[str]:
        return sorted({k for r in records for k in getattr(r, attr)})

    cols: dict[str, Any] = {
        "prediction_id": pa.array([r.prediction_id for r in records], pa.string()),
        "model": pa.array([r.model for r in records], pa.string()).dictionary_encode(),
        "version": pa.array([r.version for r in records], pa.string()),
        "environment": pa.array([r.environment for r in records], pa.int32()),
        "prediction_time": pa.array(
            [r.prediction_time.ToMicroseconds() if r.HasField("prediction_time") else None
             for r in records], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    }
    for k in keys("features"):
        cols[f"feature.{k}"] = pa.array(
            [_py(r.features[k]) if k in r.features else None for r in records])
    if any(r.HasField("prediction") for r in records):
        cols["prediction"] = pa.array([_py(r.prediction) if r.HasField("prediction") else None
                                       for r in records])
    for attr, prefix in (("scores", "score."), ("attributions", "attribution.")):
        for k in keys(attr):
            cols[prefix + k] = pa.array(
                [getattr(r, attr).get(k) for r in records],
                pa.float64())
    for k in keys("tags"):
        cols[f"tag.{k}"] = pa.array([r.tags.get(k) for r in records], pa.string())
    cols["trace_id"] = pa.array([r.trace_id or None for r in records], pa.string())
    cols["span_id"] = pa.array([r.span_id or None for r in records], pa.string())
    cols["latency_us"] = pa.array(
        [r.latency.ToMicroseconds() if r.HasField("latency") else None for r in records],
        pa.int64())
    assert all(len(c) == n for c in cols.values())
    return pa.table(cols)


def ipc_bytes(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


async def log_arrow(stub: pb_grpc.ObservabilityServiceStub, records: list[pb.EvaluationRecord],
                    batch: int = 500) -> pb.LogRecordsResponse:
    async def gen() -> AsyncIterator[pb.LogRecordsRequest]:
        for i in range(0, len(records), batch):
            yield pb.LogRecordsRequest(arrow_ipc=ipc_bytes(arrow_table(records[i:i + batch])))
    return await stub.LogRecords(gen())


async def drifted_model(stub: pb_grpc.ObservabilityServiceStub, now: datetime,
                        prefix: str = "drifted", current: int = 200) -> str:
    """A model whose validation records are its baseline and whose production
    records of the last 30 minutes drifted on ``x`` (PSI well over 0.2)."""
    model = unique_model(prefix)
    ref, _ = churn_records(model, pb.ENVIRONMENT_VALIDATION, 400, seed=1)
    await log(stub, ref)
    await stub.SetBaseline(pb.SetBaselineRequest(baseline=pb.Baseline(model=model, version="v1")))
    cur, _ = churn_records(model, pb.ENVIRONMENT_PRODUCTION, current, seed=2, shift=1.5,
                           start=now - timedelta(minutes=30), step=timedelta(seconds=5))
    await log(stub, cur)
    return model


def drift_monitor(model: str, webhook_url: str = "", *, interval_seconds: int = 60,
                  paused: bool = False) -> pb.Monitor:
    """Fires on :func:`drifted_model`'s production window."""
    return pb.Monitor(
        display_name="x drift",
        filter=pb.EvaluationFilter(model=model, versions=["v1"],
                                   environment=pb.ENVIRONMENT_PRODUCTION),
        signal=pb.MonitorSignal(drift=pb.DriftSignal(column=pb.ColumnRef(name="x"),
                                                     method=pb.DRIFT_METHOD_PSI)),
        comparison=pb.COMPARISON_GREATER, threshold=0.2, window={"seconds": 3600},
        interval={"seconds": interval_seconds}, min_records=50, webhook_url=webhook_url,
        paused=paused)
