"""Operations checks of a rollout on a real serving server (issue #17).

Serving on PostgreSQL with real MLflow models of one registered model
``opsroll``: v1 a scikit-learn classifier (``@champion``), v2 a pyfunc that
raises on about a third of its inputs, v3 one that sleeps 40 ms per call, v4 a
second scikit-learn classifier. Requests go through serving's OIP gRPC; every
outcome is counted by the data plane into serving's shared store
(``serving_route_stats``) and the controller decides from there:

* the raising challenger is rolled back on its error rate (no fallback) and,
  with the champion as fallback, on its fallback rate;
* the sleeping one on its p99 latency;
* a good challenger is still promoted with the operations check configured
  (its quality evidence simulated as in tests/test_rollout_registry.py; the
  alias moved in the real MLflow registry), after the check held it for lack
  of requests;
* two "replicas" (two recorders, two store connections) adding at once lose no
  count.

    MODELPLANE_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/postgres \\
      uv run pytest services/serving/tests/test_serving_rollout_operations.py -q
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
from google.protobuf.duration_pb2 import Duration

from modelplane.serving.deployment_store import DeploymentStore
from modelplane.serving.rollout import Counts
from modelplane.serving.route_stats import RouteStatsRecorder, route_stats_from_counts
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

pytestmark = pytest.mark.timeout(600)

MODEL = "opsroll"


def _pyfuncs() -> dict[str, Any]:
    """Misbehaving challengers (defined in a function: cloudpickle stores them by value)."""
    import time

    import mlflow.pyfunc

    class RaisesSometimes(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            x = np.asarray(model_input, dtype=float)
            if (x[:, 0] > 0.45).any():
                raise RuntimeError("this challenger fails on large x0")
            return (x[:, 0] > 0).astype(np.int64)

    class Slow(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            time.sleep(0.04)
            x = np.asarray(model_input, dtype=float)
            return (x[:, 0] > 0).astype(np.int64)

    return {"raises": RaisesSometimes(), "slow": Slow()}


@pytest.fixture(scope="module")
def versions(registry: Any) -> dict[str, str]:
    import mlflow
    import mlflow.pyfunc

    out = {"champion": registry.log_sklearn(MODEL, C=1.0, seed=0)}
    for kind, model in _pyfuncs().items():
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=model,
                                           registered_model_name=MODEL,
                                           pip_requirements=["mlflow", "cloudpickle", "numpy"])
        out[kind] = str(info.registered_model_version)
    out["good"] = registry.log_sklearn(MODEL, C=0.5, seed=2)
    registry.set_alias(MODEL, "champion", out["champion"])
    return out


@dataclass
class SimulatedEvidence:
    """The quality evidence (observability's side is not under test here)."""

    table: dict[str, Counts] = field(default_factory=dict)

    async def counts(self, model: str, version: str, start: datetime, end: datetime,
                     metric: str = "ACCURACY", positive_class: str = "") -> Counts:
        return self.table.get(version, Counts())

    async def slice_counts(self, model: str, version: str, start: datetime, end: datetime,
                           feature: str, metric: str = "ACCURACY", positive_class: str = ""
                           ) -> dict[str, Counts]:
        return {}


@dataclass
class MlflowAliasMover:
    """Moves the alias in the real MLflow registry serving reads from (no gate here)."""

    registry: Any
    moved: list[tuple[str, str, str]] = field(default_factory=list)

    async def set_alias(self, model: str, alias: str, version: str) -> None:
        await asyncio.to_thread(self.registry.set_alias, model, alias, version)
        self.moved.append((model, alias, version))


def _deployment(name: str, fallback: bool = False) -> pb.Deployment:
    d = pb.Deployment(name=name, model=MODEL, traffic_split=pb.TrafficSplit(routes=[
        pb.Route(target=pb.ModelTarget(alias="champion"), weight=100)]))
    if fallback:
        d.fallback.chain.append(pb.ModelTarget(alias="champion"))
    return d


def _rollout(name: str, deployment: str, version: str,
             operations: pb.OperationsCheck) -> pb.Rollout:
    return pb.Rollout(
        name=name, deployment=deployment, challenger=pb.ModelTarget(version=version),
        steps=[pb.RolloutStep(weight=50, min_duration=Duration(seconds=0))],
        analysis=pb.RolloutAnalysis(checks=[
            pb.RolloutCheck(quality=pb.QualityCheck(margin=0.02)),
            pb.RolloutCheck(operations=operations)]))


def _send(address: str, deployment: str, n: int, seed: int) -> int:
    """``n`` one-row requests; how many the caller got an error for."""
    c = tgrpc.InferenceServerClient(address)
    rows = np.random.default_rng(seed).normal(size=(n, 4))
    failed = 0
    for row in rows:
        inp = tgrpc.InferInput("x", [1, 4], "FP64")
        inp.set_data_from_numpy(row.reshape(1, 4))
        try:
            c.infer(deployment, [inp])
        except Exception:  # noqa: BLE001 - an error answer is what is counted here
            failed += 1
    c.close()
    return failed


async def _wait_state(stub: Any, name: str, states: set[int], timeout: float = 60.0
                      ) -> pb.Rollout:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await stub.GetRollout(pb.GetRolloutRequest(name=name))
        if r.state in states or asyncio.get_running_loop().time() > deadline:
            return r
        await asyncio.sleep(0.1)


async def _ready(stub: Any, name: str) -> None:
    for _ in range(600):
        d = await stub.GetDeployment(pb.GetDeploymentRequest(name=name))
        if d.state == pb.DEPLOYMENT_STATE_READY:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"deployment {name} not ready: {d.state_message}")


@pytest.fixture
def pg_settings(make_settings: Callable[..., Any],
                make_postgres_database: Callable[[str], str]) -> Any:
    return make_settings(MODELPLANE_SERVING_DATABASE_URL=make_postgres_database("serving_ops"),
                         MODELPLANE_SERVING_ROLLOUT_TICK_SECONDS="0.2",
                         MODELPLANE_SERVING_ROUTE_STATS_FLUSH_SECONDS="0.2",
                         MODELPLANE_SERVING_HTTP_ADDR="")


ENDED = {pb.ROLLOUT_STATE_ROLLED_BACK, pb.ROLLOUT_STATE_PROMOTED, pb.ROLLOUT_STATE_FAILED}


@pytest.mark.parametrize("fallback", [False, True], ids=["errors", "fallbacks"])
async def test_a_challenger_that_fails_on_some_inputs_is_rolled_back_by_serving_numbers(
        pg_settings: Any, sv: Any, versions: dict[str, str], fallback: bool) -> None:
    dep = f"ops-fail-{fallback}".lower()
    async with sv.run_server(pg_settings) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as ch:
        stub = serving_pb2_grpc.ServingServiceStub(ch)
        await stub.CreateDeployment(pb.CreateDeploymentRequest(
            deployment=_deployment(dep, fallback)))
        await _ready(stub, dep)
        await stub.CreateRollout(pb.CreateRolloutRequest(rollout=_rollout(
            f"{dep}-r", dep, versions["raises"],
            pb.OperationsCheck(error_rate_margin=0.02, fallback_rate_margin=0.02,
                               min_requests=60))))
        await _ready(stub, dep)
        failed = await asyncio.to_thread(_send, server.grpc_address, dep, 300, 1)
        r = await _wait_state(stub, f"{dep}-r", ENDED)
        assert r.state == pb.ROLLOUT_STATE_ROLLED_BACK, r.state_message
        what = "fallback rate" if fallback else "error rate"
        assert r.state_message.startswith(f"rolled back: operations: challenger {what}")
        ops = r.evidence.operations
        assert ops.champion_requests >= 60 and ops.challenger_requests >= 60
        assert ops.champion_error_rate == 0 and ops.champion_fallback_rate == 0
        if fallback:  # the champion answered for it: no caller saw an error
            assert failed == 0 and ops.challenger_fallback_rate > 0.1
        else:
            assert failed > 0 and ops.challenger_error_rate > 0.1
        # the traffic is back on the champion
        d = await stub.GetDeployment(pb.GetDeploymentRequest(name=dep))
        assert [(rt.target.alias, rt.weight) for rt in d.traffic_split.routes
                if rt.weight] == [("champion", 100)]


async def test_a_slow_challenger_is_rolled_back_on_its_p99(
        pg_settings: Any, sv: Any, versions: dict[str, str]) -> None:
    dep = "ops-slow"
    async with sv.run_server(pg_settings) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as ch:
        stub = serving_pb2_grpc.ServingServiceStub(ch)
        await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=_deployment(dep)))
        await _ready(stub, dep)
        await stub.CreateRollout(pb.CreateRolloutRequest(rollout=_rollout(
            f"{dep}-r", dep, versions["slow"],
            pb.OperationsCheck(latency_p99_factor=1.5,
                               latency_p99_slack=Duration(nanos=5_000_000),
                               min_requests=60))))
        await _ready(stub, dep)
        await asyncio.to_thread(_send, server.grpc_address, dep, 300, 2)
        r = await _wait_state(stub, f"{dep}-r", ENDED)
        assert r.state == pb.ROLLOUT_STATE_ROLLED_BACK, r.state_message
        assert "challenger p99 latency" in r.state_message
        ops = r.evidence.operations
        assert ops.challenger_latency_p99.ToMilliseconds() >= 40
        assert ops.challenger_latency_p99.ToMilliseconds() > ops.latency_bound.ToMilliseconds()
        assert ops.challenger_error_rate == 0


async def test_a_good_challenger_is_promoted_with_the_operations_check_after_it_held(
        pg_settings: Any, sv: Any, versions: dict[str, str], registry: Any) -> None:
    dep = "ops-good"
    good = versions["good"]
    evidence = SimulatedEvidence({versions["champion"]: Counts(8000, 6800),
                                  good: Counts(8000, 6840)})
    mover = MlflowAliasMover(registry)
    try:
        async with sv.run_server(pg_settings, rollout_evidence=evidence,
                                 alias_mover=mover) as server, \
                grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            await stub.CreateDeployment(pb.CreateDeploymentRequest(
                deployment=_deployment(dep)))
            await _ready(stub, dep)
            await stub.CreateRollout(pb.CreateRolloutRequest(rollout=_rollout(
                f"{dep}-r", dep, good, pb.OperationsCheck(min_requests=60))))
            # quality says promote already; the operations check holds for its requests
            await asyncio.sleep(1.0)
            held = await stub.GetRollout(pb.GetRolloutRequest(name=f"{dep}-r"))
            assert held.state == pb.ROLLOUT_STATE_RUNNING
            assert "operations check holds until both sides have 60 requests" in \
                held.state_message
            await _ready(stub, dep)
            await asyncio.to_thread(_send, server.grpc_address, dep, 300, 3)
            r = await _wait_state(stub, f"{dep}-r", ENDED)
            assert r.state == pb.ROLLOUT_STATE_PROMOTED, r.state_message
            assert mover.moved == [(MODEL, "champion", good)]
            assert r.evidence.operations.challenger_requests >= 60
    finally:
        registry.set_alias(MODEL, "champion", versions["champion"])


async def test_replicas_adding_request_outcomes_at_once_lose_no_count(
        make_postgres_database: Callable[[str], str]) -> None:
    url = make_postgres_database("serving_route_stats")
    stores = [DeploymentStore(url), DeploymentStore(url)]
    recorders = [RouteStatsRecorder(clock=lambda: 1_000_000.0) for _ in stores]
    try:
        for _ in range(5):
            for rec in recorders:
                for i in range(200):
                    rec.record("d", "2", ("ok", "error", "fallback")[i % 3], 0.01)
            await asyncio.gather(*(rec.flush(s) for rec, s in zip(recorders, stores,
                                                                  strict=True)))
        stats = route_stats_from_counts(stores[0].route_stats("d", "2", 999_990.0,
                                                              1_000_100.0))
        # per recorder and round: 67 answered, 67 errors, 66 fallbacks
        assert (stats.requests, stats.errors, stats.fallbacks) == (2000, 670, 660)
        assert stats.answered == 670
        # outside the window: nothing
        assert stores[1].route_stats("d", "2", 1_000_020.0, 1_000_100.0) == {}
    finally:
        for s in stores:
            s.close()
