"""Issue #14.2: two observability server processes on one PostgreSQL database act
as one. One threshold crossing gives one alert and one webhook delivery;
``WatchAlerts`` on B streams an alert raised by A's evaluation; SIGKILL of the
monitor lease holder and the other replica evaluates within the lease time (the
measured failover time is printed: run with ``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services/observability/tests"))

from obs_test_data import drift_monitor, drifted_model

from modelplane.kit.pytest_plugin import free_port_block, wait_for
from modelplane.observability.records import utcnow
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

#: Two processes start slowly on a busy two-core machine.
pytestmark = pytest.mark.timeout(900)

LEASE_SECONDS = 3.0
TICK_SECONDS = 0.25
SERVICE = "modelplane.observability.v1.ObservabilityService"


@dataclass
class Receiver:
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}/hook"


@dataclass
class Replica:
    name: str
    address: str
    process: subprocess.Popen[bytes]
    channel: grpc.aio.Channel
    stub: pb_grpc.ObservabilityServiceStub


@dataclass
class Cluster:
    database_url: str
    replicas: dict[str, Replica]
    receiver: Receiver

    def lease_holder(self) -> Replica | None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute("SELECT holder FROM obs_leases WHERE name = 'monitor-scheduler' "
                               "AND expires_at > now()").fetchone()
        if row is None:
            return None
        pid = int(row[0].split(":")[1])
        return next((r for r in self.replicas.values() if r.process.pid == pid), None)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            rec.requests.append((dict(self.headers.items()), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    rec.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=rec.server.serve_forever, daemon=True).start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def _start(name: str, port: int, database_url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPLANE_")}
    env.update({
        "MODELPLANE_DATA_DIR": str(data_dir / name),
        "MODELPLANE_AUTH": "off",
        "MODELPLANE_OBSERVABILITY_ADDR": f"127.0.0.1:{port}",
        "MODELPLANE_OBSERVABILITY_DATABASE_URL": database_url,
        "MODELPLANE_OBSERVABILITY_HTTP_ADDR": "off",
        "MODELPLANE_OBSERVABILITY_MONITOR_TICK_SECONDS": str(TICK_SECONDS),
        "MODELPLANE_OBSERVABILITY_MONITOR_LEASE_SECONDS": str(LEASE_SECONDS),
        "MODELPLANE_OBSERVABILITY_WEBHOOK_ALLOW": "127.0.0.1",  # the local receiver
    })
    log = open(data_dir / f"{name}.log", "wb")  # noqa: SIM115 - kept open by the child
    return subprocess.Popen([sys.executable, "-m", "modelplane.observability.main"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


async def _serving(address: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the replica at {address} exited"
            try:
                resp = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE),
                                          timeout=1)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"the replica at {address} did not become SERVING")


@pytest.fixture(scope="module")
async def cluster(make_postgres_database: Callable[[str], str], receiver: Receiver,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    db = make_postgres_database("mp_obs_scale")
    tmp = tmp_path_factory.mktemp("obs-replicas")
    base = free_port_block(2)
    procs = {name: _start(name, base + i, db, tmp) for i, name in enumerate("ab")}
    replicas: dict[str, Replica] = {}
    try:
        for i, (name, proc) in enumerate(procs.items()):
            address = f"127.0.0.1:{base + i}"
            await _serving(address, proc)
            channel = grpc.aio.insecure_channel(address)
            replicas[name] = Replica(name, address, proc, channel,
                                     pb_grpc.ObservabilityServiceStub(channel))
        yield Cluster(db, replicas, receiver)
    finally:
        for r in replicas.values():
            await r.channel.close()
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()



async def test_one_threshold_crossing_gives_one_alert_and_one_webhook(cluster: Cluster) -> None:
    a, b = cluster.replicas["a"], cluster.replicas["b"]
    model = await drifted_model(a.stub, utcnow())
    mon = await a.stub.CreateMonitor(pb.CreateMonitorRequest(
        monitor=drift_monitor(model, cluster.receiver.url, interval_seconds=1)))
    # The holder's scheduler evaluates every second; both replicas are asked too.
    for _ in range(3):
        await asyncio.gather(*[r.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
                               for r in (a, b) for _ in range(2)])
        await asyncio.sleep(1.0)
    alerts = {name: (await r.stub.ListAlerts(pb.ListAlertsRequest(model=model))).alerts
              for name, r in cluster.replicas.items()}
    assert len(alerts["a"]) == 1 and [x.id for x in alerts["b"]] == [alerts["a"][0].id]
    alert_id = alerts["a"][0].id
    assert await wait_for(lambda: len(cluster.receiver.requests) >= 1)
    await asyncio.sleep(2.0)  # time for a duplicate to show up, if there were one
    mine = [h for h, body in cluster.receiver.requests if body["monitor_id"] == mon.id]
    print(f"\nalerts for one crossing: {len(alerts['a'])}; webhook calls: {len(mine)}")
    assert [h["Idempotency-Key"] for h in mine] == [alert_id]
    await a.stub.DeleteMonitor(pb.DeleteMonitorRequest(id=mon.id))


async def test_watch_alerts_on_b_streams_an_alert_raised_by_a(cluster: Cluster) -> None:
    a, b = cluster.replicas["a"], cluster.replicas["b"]
    model = await drifted_model(a.stub, utcnow())
    mon = await a.stub.CreateMonitor(pb.CreateMonitorRequest(
        monitor=drift_monitor(model, paused=True)))  # evaluated only when asked, on A
    watch = b.stub.WatchAlerts(pb.WatchAlertsRequest(model=model))
    await asyncio.sleep(0.5)  # the watch is registered
    raised = await a.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
    assert raised.alert.state == pb.ALERT_STATE_FIRING
    started = time.monotonic()
    streamed = await asyncio.wait_for(watch.read(), 10)
    print(f"\nalert raised on A streamed by B after {time.monotonic() - started:.3f}s")
    assert streamed.id == raised.alert.id and streamed.monitor_id == mon.id
    watch.cancel()


async def test_sigkill_of_the_lease_holder_and_the_other_evaluates_within_the_lease_time(
        cluster: Cluster) -> None:
    any_replica = cluster.replicas["a"]
    model = await drifted_model(any_replica.stub, utcnow())
    mon = await any_replica.stub.CreateMonitor(pb.CreateMonitorRequest(
        monitor=drift_monitor(model, interval_seconds=1)))
    holder = cluster.lease_holder()
    assert holder is not None
    survivor = next(r for r in cluster.replicas.values() if r is not holder)

    async def last_evaluation() -> float:
        m = await survivor.stub.GetMonitor(pb.GetMonitorRequest(id=mon.id))
        return m.last_evaluation_time.ToDatetime().timestamp() \
            if m.HasField("last_evaluation_time") else 0.0

    # The holder evaluates it (the survivor does not: it holds no lease).
    deadline = time.monotonic() + 10
    while await last_evaluation() == 0.0:
        assert time.monotonic() < deadline, "the lease holder did not evaluate the monitor"
        await asyncio.sleep(0.1)
    os.kill(holder.process.pid, signal.SIGKILL)
    killed_at = time.time()
    holder.process.wait(10)
    while (evaluated := await last_evaluation()) <= killed_at:
        assert time.time() - killed_at < 3 * LEASE_SECONDS, "no replica took over"
        await asyncio.sleep(0.05)
    failover = evaluated - killed_at
    print(f"\nfailover after SIGKILL of the lease holder: {failover:.2f}s "
          f"(lease {LEASE_SECONDS:g}s, tick {TICK_SECONDS:g}s)")
    assert cluster.lease_holder() is survivor
    assert failover <= LEASE_SECONDS
    # Still one alert for the one crossing: the survivor's evaluations found it firing.
    await asyncio.sleep(1.5)
    alerts = await survivor.stub.ListAlerts(pb.ListAlertsRequest(monitor_id=mon.id))
    assert len(alerts.alerts) == 1
