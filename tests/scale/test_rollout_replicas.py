"""Two serving replica processes run one rollout: one controller acts, a SIGKILL loses nothing.

Real processes (``python -m modelplane.serving.main``) on one PostgreSQL database,
models from a real MLflow store. A rollout with short steps runs while both
replicas compete for the controller's lease; then the lease holder gets SIGKILL
in the middle of a step. The other replica takes the lease over and continues
the rollout at the step it was in, with that step's recorded start: it advances
when the step's minimum duration, counted from its recorded start, has passed -
not earlier, not from the restart. Every transition appears exactly once.

    MODELPLANE_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/postgres \\
      uv run pytest tests/scale/test_rollout_replicas.py -q -s
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from modelplane.kit.pytest_plugin import free_port_block
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

# The replica helpers of the serving replication test (loaded by path: --import-mode=importlib).
_spec = importlib.util.spec_from_file_location(
    "modelplane_serving_replicas_helpers", Path(__file__).with_name("test_serving_replicas.py"))
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _helpers
_spec.loader.exec_module(_helpers)
Replica = _helpers.Replica
_register_model = _helpers._register_model
_start_replica = _helpers._start_replica
_wait_ready = _helpers._wait_ready

pytestmark = pytest.mark.timeout(900)
LEASE_SECONDS = 3.0
#: the step the holder is killed in, and how long it lasts
KILL_STEP = 4
KILL_STEP_SECONDS = 25


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory,
             make_postgres_database: Callable[[str], str]
             ) -> Iterator[tuple[Replica, Replica, str]]:
    tmp = tmp_path_factory.mktemp("rollout_replicas")
    dsn = make_postgres_database("serving_rollout_replicas")
    mlflow_uri = _register_model(tmp)
    base = free_port_block(4)
    extra = {"MODELPLANE_SERVING_ROLLOUT_TICK_SECONDS": "0.2",
             "MODELPLANE_SERVING_ROLLOUT_LEASE_SECONDS": str(LEASE_SECONDS)}
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)  # _start_replica passes the environment on
    try:
        a = _start_replica("a", tmp, dsn, mlflow_uri, base)
        b = _start_replica("b", tmp, dsn, mlflow_uri, base + 2)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        _wait_ready(a)
        _wait_ready(b)
        yield a, b, dsn
    finally:
        for r in (a, b):
            if r.process.poll() is None:
                r.process.send_signal(signal.SIGTERM)
        for r in (a, b):
            try:
                r.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                r.process.kill()
                r.process.wait()


def _lease_holder_pid(dsn: str) -> int | None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT holder FROM serving_leases WHERE name = 'rollout-controller' "
                           "AND expires_at > now()").fetchone()
    return int(row[0].split(":")[1]) if row else None


async def _poll(what: str, timeout: float, check: Callable[[], object]) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = await check() if asyncio.iscoroutinefunction(check) else check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.1)


async def test_a_killed_controller_is_taken_over_at_the_same_step_and_nothing_runs_twice(
        replicas: tuple[Replica, Replica, str], tmp_path: Path) -> None:
    a, b, dsn = replicas
    steps = [pb.RolloutStep(weight=w, min_duration=Duration(seconds=1)) for w in (5, 10, 15, 20)]
    steps.append(pb.RolloutStep(weight=30, min_duration=Duration(seconds=KILL_STEP_SECONDS)))
    steps.append(pb.RolloutStep(weight=50))
    async with grpc.aio.insecure_channel(a.grpc_address) as ch_a, \
            grpc.aio.insecure_channel(b.grpc_address) as ch_b:
        stubs = {a.process.pid: serving_pb2_grpc.ServingServiceStub(ch_a),
                 b.process.pid: serving_pb2_grpc.ServingServiceStub(ch_b)}
        sa = stubs[a.process.pid]
        await sa.CreateDeployment(pb.CreateDeploymentRequest(deployment=pb.Deployment(
            name="churn-ro", model="churn",
            fallback=pb.FallbackPolicy(timeout=Duration(seconds=30)),
            traffic_split=pb.TrafficSplit(routes=[
                pb.Route(target=pb.ModelTarget(alias="champion"), weight=100)]))))
        await sa.CreateRollout(pb.CreateRolloutRequest(rollout=pb.Rollout(
            name="ro", deployment="churn-ro", challenger=pb.ModelTarget(alias="challenger"),
            steps=steps)))

        async def in_kill_step() -> pb.Rollout | None:
            r = await sa.GetRollout(pb.GetRolloutRequest(name="ro"))
            return r if r.current_step == KILL_STEP else None

        before = await _poll("the rollout reaches the long step", 120, in_kill_step)
        assert isinstance(before, pb.Rollout)
        holder = _lease_holder_pid(dsn)
        assert holder in stubs, holder
        victim = a if holder == a.process.pid else b
        survivor = b if victim is a else a
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        killed_at = time.monotonic()
        stub = stubs[survivor.process.pid]

        await _poll("the survivor takes the lease", 4 * LEASE_SECONDS,
                    lambda: _lease_holder_pid(dsn) == survivor.process.pid)
        took_over = time.monotonic() - killed_at
        r = await stub.GetRollout(pb.GetRolloutRequest(name="ro"))
        # still in the step it was killed in, with the step's recorded start
        assert r.current_step == KILL_STEP and r.state == pb.ROLLOUT_STATE_RUNNING
        assert r.step_start_time == before.step_start_time
        d = await stub.GetDeployment(pb.GetDeploymentRequest(name="churn-ro"))
        assert [(x.target.alias or f"v{x.target.version}", x.weight)
                for x in d.traffic_split.routes] == [("champion", 70), ("v2", 30)]

        async def advanced() -> pb.Rollout | None:
            r = await stub.GetRollout(pb.GetRolloutRequest(name="ro"))
            return r if r.current_step == KILL_STEP + 1 else None

        after = await _poll("the survivor advances", KILL_STEP_SECONDS + 30, advanced)
        assert isinstance(after, pb.Rollout)
        waited = (after.step_start_time.ToDatetime() - before.step_start_time.ToDatetime()
                  ).total_seconds()
        # from the recorded start: not before its minimum, and not restarted by the takeover
        assert KILL_STEP_SECONDS <= waited < KILL_STEP_SECONDS + 10, waited

        async def waiting() -> bool:
            r = await stub.GetRollout(pb.GetRolloutRequest(name="ro"))
            return "waiting for actuals" in r.state_message

        await _poll("the last step waits for actuals", 30, waiting)
        events = list((await stub.ListRolloutEvents(
            pb.ListRolloutEventsRequest(name="ro", page_size=1000))).events)
        types = [pb.RolloutEventType.Name(e.type).removeprefix("ROLLOUT_EVENT_TYPE_")
                 for e in events]
        started = [e.step for e in events if e.type == pb.ROLLOUT_EVENT_TYPE_STEP_STARTED]
        assert started == list(range(1, len(steps))), types  # each step entered once
        assert [e.sequence for e in events] == sorted({e.sequence for e in events})
        assert types[0] == "CREATED" and types[-1] == "WAITING", types
        actor = events[-1].actor
        assert actor.startswith("controller:") and f":{survivor.process.pid}:" in actor
        last_step = [e for e in events if e.type == pb.ROLLOUT_EVENT_TYPE_STEP_STARTED][-1]
        assert f":{survivor.process.pid}:" in last_step.actor
        aborted = await stub.AbortRollout(pb.AbortRolloutRequest(name="ro", reason="test done"))
        assert aborted.state == pb.ROLLOUT_STATE_ABORTED
        print(f"\nlease taken over {took_over:.1f}s after SIGKILL (lease {LEASE_SECONDS}s); "
              f"step {KILL_STEP} lasted {waited:.1f}s of its {KILL_STEP_SECONDS}s minimum; "
              f"{len(events)} events, actors: {sorted({e.actor for e in events})}")
