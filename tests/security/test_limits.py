"""Every limit has a number (issue #13, deliverable 5), probed as a caller would.

- serving's own OIP REST port: a 150 MB body with a reader key gets 413, read no
  further than the limit (serving's RSS stays flat), and serving still answers;
- Arrow IPC payloads: a small zstd stream that inflates to gigabytes, and a
  stream with too many rows, are refused before they are inflated; nothing is
  stored and the process's memory stays flat;
- observability's compute RPCs and dashboard: a row budget per analysis and a
  concurrency limit per process, both RESOURCE_EXHAUSTED naming their setting.

Each refusal is asserted together with what did not change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pyarrow as pa
import pytest

from modelplane.api.v1 import types_pb2
from modelplane.kit.auth import Role, add_key
from modelplane.kit.pytest_plugin import free_port_block, rpc_error
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.main import build
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

MiB = 1024 * 1024
T0 = datetime(2026, 11, 2, tzinfo=UTC)


def vm_rss(pid: int | None = None) -> int:
    """Resident set size of a process, in bytes (``VmRSS`` of /proc/<pid>/status)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    line = next(ln for ln in status.splitlines() if ln.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def ipc(table: pa.Table, compression: str | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema,
                           options=pa.ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write_table(table, max_chunksize=500)
    return bytes(sink.getvalue())


def zstd_bomb(batches: int = 64) -> bytes:
    """An IPC stream of a few hundred KB that inflates to ``batches`` × 64 MiB."""
    schema = pa.schema([("prediction_id", pa.large_string()), ("model", pa.string())])
    value = "a" * (16 * MiB)
    batch = pa.record_batch([pa.array([value] * 4, pa.large_string()),
                             pa.array(["bomb"] * 4, pa.string())], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema,
                           options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        for _ in range(batches):
            writer.write_batch(batch)
    return bytes(sink.getvalue())


def records_table(model: str, n: int, start: datetime = T0, offset: int = 0) -> pa.Table:
    """``n`` valid production records in the columnar form of LogRecordsRequest.arrow_ipc."""
    rng = np.random.default_rng(offset)
    times = [int((start + timedelta(minutes=i)).timestamp() * 1e6) for i in range(n)]
    return pa.table({
        "prediction_id": pa.array([f"{model}-{offset + i}" for i in range(n)], pa.string()),
        "model": pa.array([model] * n, pa.string()),
        "version": pa.array(["1"] * n, pa.string()),
        "environment": pa.array([pb.ENVIRONMENT_PRODUCTION] * n, pa.int32()),
        "prediction_time": pa.array(times, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "feature.amount": pa.array(rng.normal(size=n), pa.float64()),
        "prediction": pa.array(rng.integers(0, 2, size=n).astype(str).tolist(), pa.string()),
    })


async def log_ipc(stub: pb_grpc.ObservabilityServiceStub, *payloads: bytes
                  ) -> pb.LogRecordsResponse:
    async def gen() -> AsyncIterator[pb.LogRecordsRequest]:
        for p in payloads:
            yield pb.LogRecordsRequest(arrow_ipc=p)
    return await stub.LogRecords(gen())


# -- observability, in this process (its RSS is the service's) ------------------------------

ARROW_ROWS = 1000
ANALYSIS_ROWS = 1500


class Obs:
    def __init__(self, stub: pb_grpc.ObservabilityServiceStub, rt: ObservabilityRuntime) -> None:
        self.stub = stub
        self.rt = rt

    def models(self) -> set[str]:
        return {s.model for s in self.rt.store.summaries()}


@pytest.fixture(scope="module")
async def obs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Obs]:
    tmp = tmp_path_factory.mktemp("obs-limits")
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off",
        "MODELPLANE_MAX_ARROW_ROWS": str(ARROW_ROWS),
        "MODELPLANE_OBSERVABILITY_MAX_ANALYSIS_ROWS": str(ANALYSIS_ROWS),
        "MODELPLANE_OBSERVABILITY_MAX_CONCURRENT_ANALYSES": "1",
        "MODELPLANE_OBSERVABILITY_ANALYSIS_WAIT_SECONDS": "0.3",
        # the records are logged at a fixed date (T0), older than the default 30 days
        "MODELPLANE_OBSERVABILITY_RECORD_RETENTION_DAYS": "0",
    }).with_listen("127.0.0.1:0")
    # the limits come from the environment, as in production
    settings = dataclasses.replace(ObservabilitySettings.from_service(svc),
                                   http_addr="127.0.0.1:0", monitor_tick_seconds=0)
    rt = ObservabilityRuntime(settings)
    spec, _ = build(settings, rt)
    async with running(spec, svc) as server:
        channel = grpc.aio.insecure_channel(server.address,
                                            options=[("grpc.max_send_message_length", -1)])
        obs = Obs(pb_grpc.ObservabilityServiceStub(channel), rt)
        # 2000 records of model "wide": two windows of 1000 (each payload within the row limit)
        first = records_table("wide", 1000, T0, 0)
        second = records_table("wide", 1000, T0 + timedelta(days=1), 1000)
        resp = await log_ipc(obs.stub, ipc(first), ipc(second))
        assert resp.accepted_count == 2000, resp
        yield obs
        await channel.close()


async def test_zstd_arrow_bomb_is_refused_before_inflating_nothing_stored_memory_flat(obs):
    bomb = zstd_bomb()  # 4 GiB once inflated
    assert len(bomb) < 1 * MiB
    before_models = obs.models()
    rss = vm_rss()
    err = await rpc_error(log_ipc(obs.stub, bomb))
    assert (err.code, err.reason) == ("RESOURCE_EXHAUSTED", "ARROW_IPC_TOO_LARGE")
    assert err.metadata["setting"] == "MODELPLANE_MAX_ARROW_BYTES"
    err = await rpc_error(obs.stub.ImportRecords(pb.ImportRecordsRequest(
        model="bomb", version="1", environment=pb.ENVIRONMENT_PRODUCTION,
        table=types_pb2.TableData(arrow_ipc=bomb))))
    assert (err.code, err.reason) == ("RESOURCE_EXHAUSTED", "ARROW_IPC_TOO_LARGE")
    grown = vm_rss() - rss
    print(f"observability VmRSS {rss / MiB:.0f} MiB before, {(rss + grown) / MiB:.0f} MiB "
          f"after two {len(bomb)}-byte payloads inflating to 4 GiB each")
    assert grown < 48 * MiB, f"the process grew by {grown / MiB:.0f} MiB"
    assert obs.models() == before_models and "bomb" not in obs.models()


async def test_arrow_stream_with_too_many_rows_is_refused_and_nothing_stored(obs):
    too_many = ipc(records_table("rows", ARROW_ROWS + 1), "lz4")
    err = await rpc_error(log_ipc(obs.stub, too_many))
    assert (err.code, err.reason) == ("RESOURCE_EXHAUSTED", "ARROW_IPC_TOO_MANY_ROWS")
    assert err.metadata["setting"] == "MODELPLANE_MAX_ARROW_ROWS"
    assert err.metadata["limit"] == str(ARROW_ROWS)
    err = await rpc_error(obs.stub.ImportRecords(pb.ImportRecordsRequest(
        model="rows", version="1", environment=pb.ENVIRONMENT_PRODUCTION,
        table=types_pb2.TableData(arrow_ipc=too_many))))
    assert (err.code, err.reason) == ("RESOURCE_EXHAUSTED", "ARROW_IPC_TOO_MANY_ROWS")
    assert "rows" not in obs.models()
    # at the limit it goes in: the refusal was the row count, not the payload
    resp = await log_ipc(obs.stub, ipc(records_table("rows", ARROW_ROWS), "lz4"))
    assert resp.accepted_count == ARROW_ROWS
    assert "rows" in obs.models()


def _filter(days: int | None = None) -> pb.EvaluationFilter:
    f = pb.EvaluationFilter(model="wide")
    if days is not None:  # the first `days` day(s) only: 1000 records
        f.window.start_time.FromDatetime(T0)
        f.window.end_time.FromDatetime(T0 + timedelta(days=days))
    return f


async def test_an_exact_analysis_reading_more_rows_than_its_budget_is_refused(obs):
    exact = pb.ANALYSIS_MODE_EXACT
    # by a numeric slice: its bins are the records' quantiles, so the records are read
    amount = pb.ColumnRef(source=pb.COLUMN_SOURCE_FEATURE, name="amount")
    perf = pb.ComputePerformanceRequest(filter=_filter(), metrics=[pb.METRIC_ACCURACY],
                                        slice_by=[amount], mode=exact)
    err = await rpc_error(obs.stub.ComputePerformance(perf))
    assert (err.code, err.reason) == ("RESOURCE_EXHAUSTED", "ANALYSIS_ROW_BUDGET_EXCEEDED")
    assert err.metadata["setting"] == "MODELPLANE_OBSERVABILITY_MAX_ANALYSIS_ROWS"
    assert err.metadata["limit"] == str(ANALYSIS_ROWS)
    assert int(err.metadata["rows_read"]) == ANALYSIS_ROWS + 1  # read no further than that
    assert "MODELPLANE_OBSERVABILITY_MAX_ANALYSIS_ROWS=1500" in err.message
    # the budget is per analysis: two reads of 1000 (current and reference) exceed it too
    reference = pb.EvaluationFilter()
    reference.CopyFrom(_filter(1))
    current = pb.EvaluationFilter(model="wide")
    current.window.start_time.FromDatetime(T0 + timedelta(days=1))
    current.window.end_time.FromDatetime(T0 + timedelta(days=2))
    err = await rpc_error(obs.stub.ComputeDrift(pb.ComputeDriftRequest(
        current=current, reference=pb.ReferenceData(filter=reference), mode=exact)))
    assert (err.code, err.reason) == ("RESOURCE_EXHAUSTED", "ANALYSIS_ROW_BUDGET_EXCEEDED")
    rc = pb.ComputeRootCauseRequest(
        current=current, reference=pb.ReferenceData(filter=reference),
        objective=pb.RootCauseObjective(drift_column=pb.ColumnRef(
            source=pb.COLUMN_SOURCE_FEATURE, name="amount")), mode=exact)
    err = await rpc_error(obs.stub.ComputeRootCause(rc))
    assert (err.code, err.reason) == ("RESOURCE_EXHAUSTED", "ANALYSIS_ROW_BUDGET_EXCEEDED")
    # counts the store's SQL gives (#15 item 2) read no record: exact past the budget
    counted = await obs.stub.ComputePerformance(pb.ComputePerformanceRequest(
        filter=_filter(), metrics=[pb.METRIC_ACCURACY], mode=exact))
    assert counted.mode == exact and counted.overall.record_count == 2000
    # automatic mode (#15 item 4) answers from a uniform sample of at most the budget
    perf.mode = pb.ANALYSIS_MODE_UNSPECIFIED
    sampled = await obs.stub.ComputePerformance(perf)
    assert sampled.mode == pb.ANALYSIS_MODE_SAMPLE
    assert (sampled.sample_size, sampled.population_size) == (ANALYSIS_ROWS, 2000)
    assert sampled.overall.record_count == ANALYSIS_ROWS
    drift = await obs.stub.ComputeDrift(pb.ComputeDriftRequest(
        current=current, reference=pb.ReferenceData(filter=reference)))
    assert drift.mode == pb.ANALYSIS_MODE_SAMPLE and drift.population_size == 2000
    assert drift.reference_count + drift.current_count == drift.sample_size <= ANALYSIS_ROWS
    rc.mode = pb.ANALYSIS_MODE_UNSPECIFIED
    cause = await obs.stub.ComputeRootCause(rc)
    assert cause.mode == pb.ANALYSIS_MODE_SAMPLE and cause.sample_size <= ANALYSIS_ROWS
    # ListRecords with predicates scans (and filters) every record: under the budget too
    pred = pb.SlicePredicate(column=pb.ColumnRef(source=pb.COLUMN_SOURCE_FEATURE, name="amount"),
                             op=pb.SLICE_OPERATOR_GREATER, values=[types_pb2.Value(double_value=0)])
    sliced = pb.EvaluationFilter()
    sliced.CopyFrom(_filter())
    sliced.predicates.append(pred)
    err = await rpc_error(obs.stub.ListRecords(pb.ListRecordsRequest(filter=sliced)))
    assert (err.code, err.reason) == ("RESOURCE_EXHAUSTED", "ANALYSIS_ROW_BUDGET_EXCEEDED")
    # within the budget the same calls answer, and the records are all still there
    one_day = await obs.stub.ComputePerformance(pb.ComputePerformanceRequest(
        filter=_filter(1), metrics=[pb.METRIC_ACCURACY]))
    assert one_day.overall.record_count == 1000
    sliced.window.CopyFrom(_filter(1).window)
    page = await obs.stub.ListRecords(pb.ListRecordsRequest(filter=sliced, page_size=5))
    assert len(page.records) == 5
    plain = await obs.stub.ListRecords(pb.ListRecordsRequest(filter=_filter(), page_size=5))
    assert len(plain.records) == 5  # a plain page is a page read, not an analysis


async def test_compute_calls_past_the_concurrency_limit_are_refused_with_a_retry_hint(obs):
    release = threading.Event()
    holder = asyncio.create_task(obs.rt.analyses.run(release.wait, 30))
    try:
        await asyncio.sleep(0.1)  # the holder has the only slot
        perf = pb.ComputePerformanceRequest(filter=_filter(1), metrics=[pb.METRIC_ACCURACY])
        started = time.monotonic()
        err = await rpc_error(obs.stub.ComputePerformance(perf))
        waited = time.monotonic() - started
        assert (err.code, err.reason) == ("RESOURCE_EXHAUSTED", "TOO_MANY_ANALYSES")
        assert err.metadata["setting"] == "MODELPLANE_OBSERVABILITY_MAX_CONCURRENT_ANALYSES"
        assert err.metadata["limit"] == "1"
        assert int(err.metadata["retry_after_seconds"]) >= 1
        assert 0.25 <= waited < 5, waited  # the bounded wait, then the refusal
        # the dashboard's model page shares the same slots
        port = obs.rt.http_port
        async with httpx.AsyncClient() as http:
            page = await http.get(f"http://127.0.0.1:{port}/models/wide")
        assert page.status_code == 429
        assert page.headers["retry-after"] == err.metadata["retry_after_seconds"]
    finally:
        release.set()
        await holder
    # the slot is free again: the same call answers
    ok = await obs.stub.ComputePerformance(perf)
    assert ok.overall.record_count == 1000


# -- serving's own OIP REST port, in its own process ----------------------------------------


def _log_model(tracking_uri: str, artifacts: Path) -> None:
    """A scikit-learn model "churn" v1 in a fresh MLflow registry, logged in this process
    (a child process importing MLflow and scikit-learn again for it cost more than the
    logging). MLflow state another test module left (``MLFLOW_*`` variables such as an
    experiment id, the process's tracking and registry URIs) is set aside meanwhile and
    put back; the run names its experiment, so no active experiment is left behind."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.tracking._model_registry import utils as registry_uris
    from mlflow.tracking._tracking_service import utils as tracking_uris
    from sklearn.linear_model import LogisticRegression

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MLFLOW_")}
    # the URIs as set, None included (get_registry_uri() would resolve an unset one to the
    # tracking URI, and setting that back would pin it)
    previous = tracking_uris._tracking_uri, registry_uris._registry_uri
    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        experiment = MlflowClient(tracking_uri).create_experiment(
            "limits", artifact_location=artifacts.as_uri())
        X = np.random.default_rng(0).normal(size=(100, 4))
        y = (X[:, 0] > 0).astype(int)
        with mlflow.start_run(experiment_id=experiment):
            mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                                     registered_model_name="churn",
                                     pip_requirements=["scikit-learn"])
    finally:
        tracking_uris._tracking_uri, registry_uris._registry_uri = previous
        for name in [k for k in os.environ if k.startswith("MLFLOW_")]:
            del os.environ[name]  # the set_*_uri calls above exported theirs
        os.environ.update(saved)


def _body(total: int, chunk: int = 1 * MiB) -> Iterator[bytes]:
    """``total`` bytes, produced one chunk at a time (never held at once)."""
    piece = b"x" * chunk
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield piece if n == chunk else piece[:n]
        sent += n


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("serving-limits")
    tracking = f"sqlite:///{tmp / 'mlflow.db'}"
    _log_model(tracking, tmp / "artifacts")
    keys = tmp / "keys.json"
    admin = add_key(keys, "admin", Role.ADMIN)
    reader = add_key(keys, "app", Role.READER)
    base = free_port_block(2)
    env = {**os.environ, "MODELPLANE_DATA_DIR": str(tmp / "data"), "MODELPLANE_AUTH": "on",
           "MODELPLANE_API_KEYS_FILE": str(keys), "MODELPLANE_API_KEY": admin,
           "MODELPLANE_SERVING_ADDR": f"127.0.0.1:{base}",
           "MODELPLANE_SERVING_HTTP_ADDR": f"127.0.0.1:{base + 1}",
           "MODELPLANE_SERVING_MODEL_SOURCE": tracking,
           "MODELPLANE_SERVING_FEATURESTORE_TARGET": "none",
           "MODELPLANE_SERVING_OBSERVABILITY_TARGET": "none",
           # limits, not the gate, are under test here: the version is not validated
           "MODELPLANE_SERVING_REQUIRE_VALIDATION": "off",
           "BENTOML_HOME": str(tmp / "bentoml"), "MLFLOW_TRACKING_URI": tracking}
    log = (tmp / "serving.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "modelplane.serving.main"], env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        http = f"http://127.0.0.1:{base + 1}"
        deadline = time.monotonic() + 480  # bentoml + mlflow imports on a shared 2-core box
        while True:
            assert proc.poll() is None, (tmp / "serving.log").read_text()[-3000:]
            try:
                if httpx.get(f"{http}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serving did not start"
            time.sleep(0.3)
        from modelplane.serving.v1 import serving_pb2 as spb
        from modelplane.serving.v1 import serving_pb2_grpc

        async def deploy() -> None:
            request = spb.CreateDeploymentRequest(deployment=spb.Deployment(
                name="churn", model="churn", traffic_split=spb.TrafficSplit(routes=[spb.Route(
                    target=spb.ModelTarget(version="1"), weight=1)])))
            async with grpc.aio.insecure_channel(f"127.0.0.1:{base}") as ch:
                while True:
                    try:
                        await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                            request, metadata=(("authorization", f"Bearer {admin}"),))
                        return
                    except grpc.aio.AioRpcError as exc:
                        # REST answers before the gRPC service has finished starting
                        # ("still starting"): nothing was created, ask again
                        if exc.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        assert time.monotonic() < deadline, "serving's gRPC did not start"
                        await asyncio.sleep(0.3)

        asyncio.run(deploy())
        headers = {"authorization": f"Bearer {reader}"}
        deadline = time.monotonic() + 240
        while httpx.get(f"{http}/v2/models/churn/ready", headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "the deployment did not get ready"
            time.sleep(0.3)
        yield {"http": http, "pid": proc.pid, "reader": reader}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


INFER = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                     "data": [0.1, 0.2, 0.3, 0.4]}]}


@pytest.mark.timeout(1200)
def test_serving_rest_refuses_a_150mb_body_with_413_and_its_memory_stays_flat(serving):
    url = f"{serving['http']}/v2/models/churn/infer"
    headers = {"authorization": f"Bearer {serving['reader']}",
               "content-type": "application/json"}
    size = 150_000_000
    with httpx.Client(timeout=120) as client:
        assert client.post(url, headers=headers, json=INFER).status_code == 200
        rss = vm_rss(serving["pid"])
        # declared length: refused before a byte is read
        declared = client.post(url, headers={**headers, "content-length": str(size)},
                               content=_body(size))
        # no length (chunked): counted as it arrives, cut at the limit
        chunked = client.post(url, headers=headers, content=_body(size))
        grown = vm_rss(serving["pid"]) - rss
        print(f"serving VmRSS {rss / MiB:.0f} MiB before, {(rss + grown) / MiB:.0f} MiB after "
              f"two {size}-byte bodies")
        for answer in (declared, chunked):
            assert answer.status_code == 413, answer.text
            assert answer.json()["reason"] == "REQUEST_TOO_LARGE"
            assert "MODELPLANE_SERVING_MAX_BODY_BYTES" in answer.json()["error"]
        assert grown < 40 * MiB, f"serving grew by {grown / MiB:.0f} MiB"
        # serving still answers, on the same connection and on a new one
        again = client.post(url, headers=headers, json=INFER)
        assert again.status_code == 200 and again.json()["outputs"], again.text
    assert httpx.post(url, headers=headers, json=INFER).status_code == 200
