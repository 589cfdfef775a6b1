"""SIGKILL of a real serving process loses no prediction record whose response was returned.

Real processes, real PostgreSQL: serving (``python -m modelplane.serving.main``) with a
scikit-learn model from an MLflow store, observability
(``python -m modelplane.observability.main``) on its own PostgreSQL database.

1. Observability is down. Clients send inference requests; serving answers (each answered
   record is in serving's write-ahead log before its response) and is SIGKILLed mid-traffic.
2. Observability comes up; serving restarts on the same data dir, ships the backlog while
   new traffic flows, and is SIGKILLed again mid-traffic (a batch observability took may not
   have been acknowledged yet: it is sent again).
3. Serving restarts once more. Every prediction id a client got back is in observability's
   store exactly once (rows counted in its table); the resends were deduplicated by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc.aio as tgrpc_aio

from modelplane.kit.pytest_plugin import free_port_block

pytestmark = pytest.mark.timeout(900)

N_FEATURES = 4
X = np.random.default_rng(3).normal(size=(1, N_FEATURES))


def _log_model(tmp: Path) -> str:
    """A LogisticRegression registered as ``churn`` (alias champion) in an MLflow SQLite store."""
    import logging

    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("crash", artifact_location=(tmp / "artifacts").as_uri())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, N_FEATURES))
    y = (x[:, 0] > 0).astype(np.int64)
    clf = LogisticRegression().fit(x, y)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.sklearn.log_model(clf, name="model", registered_model_name="churn",
                                        signature=infer_signature(x, clf.predict(x)),
                                        pip_requirements=["scikit-learn"])
    client.set_registered_model_alias("churn", "champion", str(info.registered_model_version))
    return uri


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MODELPLANE_", "BENTOML_", "OTEL_"))}
    env.update({"MODELPLANE_AUTH": "off", "BENTOML_DO_NOT_TRACK": "True",
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **extra})
    return env


class _Process:
    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self.module, self.env, self.log = module, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        fh = open(self.log, "ab")  # noqa: SIM115 - the child writes to it until it exits
        self.proc = subprocess.Popen([sys.executable, "-m", self.module], env=self.env,
                                     stdout=fh, stderr=subprocess.STDOUT)
        fh.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


async def _until_serving(address: str, proc: _Process, timeout: float = 180.0) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            assert proc.proc is not None and proc.proc.poll() is None, \
                proc.log.read_text()[-3000:]
            try:
                r = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"{proc.module} did not start:\n{proc.log.read_text()[-3000:]}")


async def _until_model_ready(address: str, timeout: float = 120.0) -> None:
    c = tgrpc_aio.InferenceServerClient(address)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # not there yet
                if await c.is_model_ready("churn"):
                    return
            await asyncio.sleep(0.3)
        raise AssertionError("deployment churn never became ready")
    finally:
        await c.close()


async def _traffic(address: str, answered: list[str], stop: asyncio.Event,
                   clients: int = 6) -> int:
    """Requests from ``clients`` concurrent clients until ``stop``; answered ids appended as
    the responses arrive. Returns the number of failed requests (expected at the kill)."""
    failed = 0

    async def one() -> None:
        nonlocal failed
        c = tgrpc_aio.InferenceServerClient(address)
        inp = tgrpc_aio.InferInput("x", [1, N_FEATURES], "FP64")
        inp.set_data_from_numpy(X)
        try:
            while not stop.is_set():
                try:
                    r = await c.infer("churn", [inp], client_timeout=10)
                except Exception:  # noqa: BLE001 - the server was killed under us
                    failed += 1
                    await asyncio.sleep(0.05)
                    continue
                answered.append(r.get_response().parameters["prediction_id"].string_param)
        finally:
            await c.close()

    await asyncio.gather(*(one() for _ in range(clients)))
    return failed


async def _kill_mid_traffic(address: str, serving: _Process, answered: list[str],
                            after: int) -> None:
    """Traffic until ``after`` more responses arrived, then SIGKILL serving while requests
    are still in flight; the clients stop once the process is gone."""
    stop = asyncio.Event()
    start = len(answered)
    task = asyncio.create_task(_traffic(address, answered, stop))
    while len(answered) - start < after:
        assert not task.done(), task.result()
        await asyncio.sleep(0.01)
    serving.kill()
    await asyncio.sleep(0.5)
    stop.set()
    await task


def _stored(dsn: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT prediction_id, count(*) FROM obs_records "
                            "GROUP BY prediction_id").fetchall()
    return {pid: n for pid, n in rows}


async def test_every_answered_prediction_reaches_observability_once_after_sigkills(
        tmp_path, make_postgres_database):
    from modelplane.serving.v1 import serving_pb2 as pb
    from modelplane.serving.v1 import serving_pb2_grpc

    obs_dsn = make_postgres_database("mp_crash_obs")
    uri = _log_model(tmp_path)
    port = free_port_block(4)
    obs_addr, serving_addr = f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"
    data = tmp_path / "serving-data"
    serving = _Process("modelplane.serving.main", _env(
        MODELPLANE_DATA_DIR=str(data), MODELPLANE_SERVING_ADDR=serving_addr,
        MODELPLANE_SERVING_HTTP_ADDR=f"127.0.0.1:{port + 2}",
        MODELPLANE_SERVING_MODEL_SOURCE=uri,
        MODELPLANE_SERVING_FEATURESTORE_TARGET="none",
        MODELPLANE_SERVING_REQUIRE_VALIDATION="off",  # the log, not the gate, is under test
        MODELPLANE_SERVING_OBSERVABILITY_TARGET=obs_addr,
        MODELPLANE_SERVING_LOG_FLUSH_SECONDS="0.05", MODELPLANE_SERVING_LOG_BATCH_SIZE="50",
        MODELPLANE_SERVING_LOG_FSYNC="never"),  # a process kill needs write(), not fsync
        tmp_path / "serving.log")
    observability = _Process("modelplane.observability.main", _env(
        MODELPLANE_DATA_DIR=str(tmp_path / "obs-data"), MODELPLANE_OBSERVABILITY_ADDR=obs_addr,
        MODELPLANE_OBSERVABILITY_HTTP_ADDR="off",
        MODELPLANE_OBSERVABILITY_DATABASE_URL=obs_dsn,
        MODELPLANE_OBSERVABILITY_MONITOR_TICK_SECONDS="0"), tmp_path / "observability.log")
    answered: list[str] = []
    try:
        # 1. Observability down: answers are logged to disk only; SIGKILL mid-traffic.
        serving.start()
        await _until_serving(serving_addr, serving)
        async with grpc.aio.insecure_channel(serving_addr) as ch:
            await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                pb.CreateDeploymentRequest(deployment=pb.Deployment(name="churn",
                                                                    model="churn")))
        await _until_model_ready(serving_addr)
        await _kill_mid_traffic(serving_addr, serving, answered, 300)
        first = len(answered)
        assert first >= 300

        # 2. Observability up; serving restarts, ships its backlog under new traffic and is
        #    killed again mid-traffic (and mid-shipping).
        observability.start()
        await _until_serving(obs_addr, observability)
        serving.start()
        await _until_serving(serving_addr, serving)
        await _until_model_ready(serving_addr)
        await _kill_mid_traffic(serving_addr, serving, answered, 300)

        # 3. The last start delivers the rest.
        serving.start()
        await _until_serving(serving_addr, serving)
        ids = set(answered)
        assert len(ids) == len(answered)  # prediction ids are unique
        deadline = time.monotonic() + 120
        stored: dict[str, int] = {}
        while time.monotonic() < deadline:
            stored = await asyncio.to_thread(_stored, obs_dsn)
            if ids <= stored.keys():
                break
            await asyncio.sleep(0.5)
        missing = ids - stored.keys()
        assert not missing, f"{len(missing)} of {len(ids)} answered records never arrived"
        assert {pid: n for pid, n in stored.items() if n != 1} == {}  # exactly once
        print(f"\nanswered {len(ids)} ({first} before the first kill), stored {len(stored)}, "
              f"lost 0, duplicates 0")
    finally:
        serving.kill()
        observability.stop()
