"""Proxy checks of a rollout end to end, with no actual at all (issue #17).

A real observability service (embedded store) and a real serving server on
PostgreSQL that ships its prediction log to it; MLflow models of ``proxyroll``:
v1 a scikit-learn classifier (``@champion``), v2 a pyfunc that always predicts
7, v3 a second scikit-learn classifier. Requests go through serving; the
controller reads observability's drift between the two versions' records:

* the challenger whose predictions differ is rolled back without any actual;
* the good one advances on the proxies, then waits at its last step saying it
  needs actuals, and is never promoted.

    MODELPLANE_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/postgres \\
      uv run pytest services/serving/tests/test_serving_rollout_proxies.py -q
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
from google.protobuf.duration_pb2 import Duration

from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

pytestmark = pytest.mark.timeout(600)

MODEL = "proxyroll"


def _constant() -> Any:
    import mlflow.pyfunc

    class Sevens(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return np.full(len(model_input), 7, dtype=np.int64)

    return Sevens()


@pytest.fixture(scope="module")
def versions(registry: Any) -> dict[str, str]:
    import mlflow
    import mlflow.pyfunc

    out = {"champion": registry.log_sklearn(MODEL, C=1.0, seed=0)}
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=_constant(),
                                       registered_model_name=MODEL,
                                       pip_requirements=["mlflow", "cloudpickle", "numpy"])
    out["sevens"] = str(info.registered_model_version)
    out["good"] = registry.log_sklearn(MODEL, C=0.5, seed=2)
    registry.set_alias(MODEL, "champion", out["champion"])
    return out


@pytest.fixture(scope="module")
async def observability(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    from modelplane.kit.server import running
    from modelplane.kit.settings import ServiceSettings
    from modelplane.observability.main import build
    from modelplane.observability.runtime import ObservabilityRuntime
    from modelplane.observability.settings import ObservabilitySettings

    tmp = tmp_path_factory.mktemp("proxy-obs")
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off"}).with_listen("127.0.0.1:0")
    settings = ObservabilitySettings(svc, http_addr="", monitor_tick_seconds=0)
    rt = ObservabilityRuntime(settings)
    spec, _ = build(settings, rt)
    async with running(spec, svc) as server:
        yield server.address


def _send(address: str, deployment: str, n: int, seed: int) -> None:
    c = tgrpc.InferenceServerClient(address)
    for row in np.random.default_rng(seed).normal(size=(n, 4)):
        inp = tgrpc.InferInput("x", [1, 4], "FP64")
        inp.set_data_from_numpy(row.reshape(1, 4))
        c.infer(deployment, [inp])
    c.close()


async def _ready(stub: Any, name: str) -> None:
    for _ in range(600):
        d = await stub.GetDeployment(pb.GetDeploymentRequest(name=name))
        if d.state == pb.DEPLOYMENT_STATE_READY:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"deployment {name} not ready: {d.state_message}")


async def _until(stub: Any, name: str, done: Callable[[Any], bool], timeout: float = 60.0
                 ) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await stub.GetRollout(pb.GetRolloutRequest(name=name))
        if done(r) or asyncio.get_running_loop().time() > deadline:
            return r
        await asyncio.sleep(0.1)


def _rollout(name: str, deployment: str, version: str) -> pb.Rollout:
    return pb.Rollout(
        name=name, deployment=deployment, challenger=pb.ModelTarget(version=version),
        steps=[pb.RolloutStep(weight=20, min_duration=Duration(seconds=0), min_samples=30),
               pb.RolloutStep(weight=50, min_duration=Duration(seconds=0), min_samples=30)],
        analysis=pb.RolloutAnalysis(checks=[
            pb.RolloutCheck(quality=pb.QualityCheck(margin=0.02)),
            # 0.2: two samples of 200 from one 50/50 split exceed it about 6 sd out
            pb.RolloutCheck(proxy=pb.ProxyCheck(max_prediction_drift=0.2, min_records=200,
                                                advance_without_actuals=True))]))


async def _start_rollout(stub: Any, address: str, dep: str, version: str, seed: int) -> None:
    """Deployment ``dep`` on the champion, a rollout ``<dep>-r`` of ``version`` on it, and
    1300 requests through serving (no actual is logged)."""
    await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=pb.Deployment(
        name=dep, model=MODEL, traffic_split=pb.TrafficSplit(routes=[
            pb.Route(target=pb.ModelTarget(alias="champion"), weight=100)]))))
    await _ready(stub, dep)
    await stub.CreateRollout(pb.CreateRolloutRequest(rollout=_rollout(f"{dep}-r", dep, version)))
    await _ready(stub, dep)
    await asyncio.to_thread(_send, address, dep, 1300, seed)


@pytest.fixture
def settings(make_settings: Callable[..., Any], observability: str,
             make_postgres_database: Callable[[str], str]) -> Any:
    return make_settings(MODELPLANE_SERVING_DATABASE_URL=make_postgres_database("serving_px"),
                         MODELPLANE_SERVING_OBSERVABILITY_TARGET=observability,
                         MODELPLANE_SERVING_ROLLOUT_TICK_SECONDS="0.2",
                         MODELPLANE_SERVING_HTTP_ADDR="")


async def test_without_actuals_a_challenger_whose_predictions_differ_is_rolled_back(
        settings: Any, sv: Any, versions: dict[str, str]) -> None:
    dep = "px-sevens"
    async with sv.run_server(settings) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as ch:
        stub = serving_pb2_grpc.ServingServiceStub(ch)
        await _start_rollout(stub, server.grpc_address, dep, versions["sevens"], seed=11)
        r = await _until(stub, f"{dep}-r", lambda r: r.state != pb.ROLLOUT_STATE_RUNNING)
        assert r.state == pb.ROLLOUT_STATE_ROLLED_BACK, r.state_message
        assert r.state_message.startswith(
            "rolled back: proxy: the challenger's predictions drifted")
        assert r.evidence.challenger_labeled == 0  # no actual was ever logged
        assert r.evidence.proxy.prediction_drift > 0.9
        assert r.evidence.proxy.challenger_records >= 200
        assert r.current_step == 0


async def test_without_actuals_a_good_challenger_advances_on_proxies_and_never_promotes(
        settings: Any, sv: Any, versions: dict[str, str]) -> None:
    dep = "px-good"
    async with sv.run_server(settings) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as ch:
        stub = serving_pb2_grpc.ServingServiceStub(ch)
        await _start_rollout(stub, server.grpc_address, dep, versions["good"], seed=12)
        r = await _until(stub, f"{dep}-r", lambda r: r.current_step == 1)
        assert r.current_step == 1 and r.state == pb.ROLLOUT_STATE_RUNNING, r.state_message
        await _ready(stub, dep)
        await asyncio.to_thread(_send, server.grpc_address, dep, 300, 13)
        r = await _until(stub, f"{dep}-r", lambda r: "never promote" in r.state_message)
        # at the last step: waits for actuals, says so, still running after more looks
        assert "proxy checks never promote: promotion needs actuals" in r.state_message
        await asyncio.sleep(1.0)
        r = await stub.GetRollout(pb.GetRolloutRequest(name=f"{dep}-r"))
        assert r.state == pb.ROLLOUT_STATE_RUNNING and r.current_step == 1
        assert r.evidence.proxy.prediction_drift < 0.2
        events = (await stub.ListRolloutEvents(pb.ListRolloutEventsRequest(
            name=f"{dep}-r"))).events
        started = [e.message for e in events if e.type == pb.ROLLOUT_EVENT_TYPE_STEP_STARTED]
        assert len(started) == 1 and "without actuals" in started[0]
        assert not any(e.type in (pb.ROLLOUT_EVENT_TYPE_PROMOTING,
                                  pb.ROLLOUT_EVENT_TYPE_PROMOTED) for e in events)


async def test_bad_proxy_and_operations_checks_are_refused_with_the_field_named(
        settings: Any, sv: Any) -> None:
    from modelplane.kit.pytest_plugin import rpc_error

    async with sv.run_server(settings) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as ch:
        stub = serving_pb2_grpc.ServingServiceStub(ch)
        twice = _rollout("px-twice", "any", "3")
        twice.analysis.checks.append(pb.RolloutCheck(proxy=pb.ProxyCheck()))
        err = await rpc_error(stub.CreateRollout(pb.CreateRolloutRequest(rollout=twice)))
        assert (err.code, err.reason) == ("INVALID_ARGUMENT", "INVALID_ROLLOUT")
        assert [v.field for v in err.field_violations] == ["rollout.analysis.checks[2].proxy"]
        bad = _rollout("px-bad", "any", "3")
        bad.analysis.checks.append(pb.RolloutCheck(operations=pb.OperationsCheck(
            latency_p99_factor=0.5, error_rate_margin=1.5)))
        err = await rpc_error(stub.CreateRollout(pb.CreateRolloutRequest(rollout=bad)))
        assert (err.code, err.reason) == ("INVALID_ARGUMENT", "INVALID_ROLLOUT")
        assert sorted(v.field for v in err.field_violations) == [
            "rollout.analysis.checks[2].operations.error_rate_margin",
            "rollout.analysis.checks[2].operations.latency_p99_factor"]
