"""The router's parts on their own: adaptive batching, breaker, sticky hashing, validation."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from modelplane.kit.errors import InvalidArgument
from modelplane.serving.circuit_breaker import CircuitBreaker
from modelplane.serving.deployment import (
    CircuitBreakerSettings,
    Deployment,
    ModelTarget,
    Route,
    validate,
)
from modelplane.serving.servable_model import PredictionWorkers
from modelplane.serving.traffic_router import TrafficRouter


async def test_queued_requests_are_batched_into_one_predict_and_split_back():
    gate, started = threading.Event(), threading.Event()
    calls: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:
        started.set()
        gate.wait(5)
        calls.append(len(x))
        return x.sum(axis=1)

    workers = PredictionWorkers("t", 1)
    try:
        first = workers.submit(predict, np.ones((1, 3)))
        # the worker holds the first request, the rest queue up
        assert await asyncio.to_thread(started.wait, 5)
        rest = [workers.submit(predict, np.full((2, 3), i, dtype=float)) for i in range(10)]
        gate.set()
        assert (await first).tolist() == [3.0]
        outs = await asyncio.gather(*rest)
        assert [o.tolist() for o in outs] == [[3.0 * i, 3.0 * i] for i in range(10)]
        assert calls == [1, 20]  # ten queued requests, one predict
        assert workers.batches == 1 and workers.batched_requests == 10
    finally:
        workers.close()


async def test_a_failing_batch_is_retried_per_request_so_one_bad_input_fails_alone():
    gate, started = threading.Event(), threading.Event()

    def predict(x: np.ndarray) -> np.ndarray:
        started.set()
        gate.wait(5)
        if np.isnan(x).any():
            raise ValueError("NaN in input")
        return x[:, 0]

    workers = PredictionWorkers("t", 1)
    try:
        first = workers.submit(predict, np.zeros((1, 2)))
        assert await asyncio.to_thread(started.wait, 5)  # the worker holds the first one
        good = workers.submit(predict, np.ones((1, 2)))
        bad = workers.submit(predict, np.full((1, 2), np.nan))
        gate.set()
        await first
        assert (await good).tolist() == [1.0]
        with pytest.raises(ValueError, match="NaN"):
            await bad
    finally:
        workers.close()


def test_breaker_opens_on_error_rate_and_half_opens_after_the_open_duration():
    now = [0.0]
    cb = CircuitBreaker(CircuitBreakerSettings(0.5, 10.0, 4, 5.0), clock=lambda: now[0])
    for ok in (True, False, True, False):
        assert cb.allow()
        cb.record(ok)
    assert cb.is_open and not cb.allow()
    now[0] = 5.1
    assert cb.allow()          # one trial call
    assert not cb.allow()      # and only one
    cb.record(True)
    assert not cb.is_open and cb.allow()


def test_sticky_choice_is_stable_and_follows_the_weights():
    routes = (Route(ModelTarget("m", alias="a"), 70), Route(ModelTarget("m", alias="b"), 30))
    router = TrafficRouter("dep", routes)
    picks = [router.choose(f"user-{i}") for i in range(20_000)]
    assert abs(picks.count(1) / len(picks) - 0.30) < 0.02
    assert all(router.choose(f"user-{i}") == picks[i] for i in range(100))
    # Moving weight only moves the users in the moved slice.
    moved = TrafficRouter("dep", (routes[0], Route(routes[1].target, 40)))
    changed = [i for i in range(20_000) if moved.choose(f"user-{i}") != picks[i]]
    assert all(picks[i] == 0 for i in changed)


def test_validation_names_every_bad_field():
    d = Deployment(name="x", model="m",
                   routes=(Route(ModelTarget(alias="a", version="1"), 1),
                           Route(ModelTarget(alias="b"), float("nan"))))
    with pytest.raises(InvalidArgument) as info:
        validate(d)
    fields = {v.field for v in info.value.field_violations}
    assert fields == {"deployment.traffic_split.routes[0].target",
                      "deployment.traffic_split.routes[1].weight"}


def test_load_failures_are_told_apart_transient_from_permanent():
    """A dependency that does not answer is worth retrying by itself; an unknown model
    or alias, an unreadable artifact or a refused key is not."""
    import socket

    import requests
    from mlflow.exceptions import MlflowException

    from modelplane.kit.errors import (
        DeadlineExceeded,
        FailedPrecondition,
        NotFound,
        PermissionDenied,
        Unavailable,
    )
    from modelplane.serving.model_source import is_transient

    assert is_transient(Unavailable("the registry is still starting", reason="STARTING"))
    assert is_transient(DeadlineExceeded("slow"))
    assert not is_transient(NotFound("models:/x@y does not exist"))
    assert not is_transient(FailedPrecondition("unreadable artifact"))
    assert not is_transient(PermissionDenied("no"))
    assert not is_transient(ValueError("bad flavour"))

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        try:
            requests.get(f"http://127.0.0.1:{port}/api/2.0/mlflow-artifacts/x", timeout=5)
        except Exception as e:  # wrapped as MLflow's rest_utils does
            raise MlflowException(f"API request failed with exception {e}") from e
    except MlflowException as exc:
        assert is_transient(exc)
    else:
        raise AssertionError("nothing should answer there")


def test_the_process_runs_on_uvloop_unless_the_settings_say_asyncio(tmp_path):
    import uvloop

    from modelplane.serving.main import loop_runner
    from modelplane.serving.settings import ServingSettings

    base = {"MODELPLANE_DATA_DIR": str(tmp_path)}
    default = ServingSettings.from_env(base)
    assert default.event_loop == "uvloop" and loop_runner(default) is uvloop.run
    plain = ServingSettings.from_env({**base, "MODELPLANE_SERVING_EVENT_LOOP": " AsyncIO "})
    assert plain.event_loop == "asyncio" and loop_runner(plain) is asyncio.run
    with pytest.raises(ValueError, match="MODELPLANE_SERVING_EVENT_LOOP='trio'"):
        ServingSettings.from_env({**base, "MODELPLANE_SERVING_EVENT_LOOP": "trio"})


def test_grpc_aio_serves_and_calls_on_uvloop():
    """The server and its peer channels are grpc.aio objects bound to the running loop:
    the kit's server answers, and a grpc.aio client reaches it, when that loop is uvloop."""
    import grpc
    import uvloop
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from modelplane.kit.server import ServiceSpec, running
    from modelplane.kit.settings import ServiceSettings

    async def main() -> str:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        settings = ServiceSettings.from_env("serving", {"MODELPLANE_AUTH": "off"}) \
            .with_listen("127.0.0.1:0")
        async with running(ServiceSpec("serving", []), settings) as svc, \
                grpc.aio.insecure_channel(svc.address) as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=10)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    assert uvloop.run(main()) == "SERVING"
