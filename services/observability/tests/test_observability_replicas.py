"""Monitors, alerts and webhooks when several replicas share one store (PostgreSQL):
one lease holder, one alert per (monitor, slot), alerts fanned out to every
replica's watchers (also across a lost listening connection), one delivery."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from obs_test_data import drift_monitor, drifted_model

from modelplane.kit.pytest_plugin import wait_for
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.main import build
from modelplane.observability.records import utcnow
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.store.base import DeliveryState
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc


@dataclass
class Replica:
    stub: pb_grpc.ObservabilityServiceStub
    runtime: ObservabilityRuntime


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def replica(tmp: Path, database_url: str | None, *, lease: float = 10.0,
                  clock: Callable[[], datetime] = utcnow) -> AsyncIterator[Replica]:
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off"}).with_listen("127.0.0.1:0")
    settings = ObservabilitySettings(svc, database_url=database_url, http_addr=None,
                                     monitor_tick_seconds=0, monitor_lease_seconds=lease,
                                     webhook_allow=("127.0.0.1",))
    rt = ObservabilityRuntime(settings, clock)
    spec, _ = build(settings, rt)
    async with running(spec, svc) as server:
        channel = grpc.aio.insecure_channel(server.address)
        try:
            yield Replica(pb_grpc.ObservabilityServiceStub(channel), rt)
        finally:
            await channel.close()


@pytest.fixture
def receiver() -> Any:
    requests: list[tuple[dict[str, str], dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            requests.append((dict(self.headers.items()), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.requests = requests  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_port}/hook"  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()



async def test_two_replicas_evaluating_at_once_store_one_alert_and_one_delivery(
        tmp_path: Path, make_postgres_database: Callable[[str], str], receiver: Any) -> None:
    db = make_postgres_database("mp_obs_rep")
    async with replica(tmp_path / "a", db) as a, replica(tmp_path / "b", db) as b:
        model = await drifted_model(a.stub, utcnow())
        mon = await a.stub.CreateMonitor(pb.CreateMonitorRequest(
            monitor=drift_monitor(model, receiver.url)))
        answers = await asyncio.gather(*[
            r.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
            for _ in range(4) for r in (a, b)])
        raised = [ans.alert.id for ans in answers if ans.HasField("alert")]
        assert all(ans.evaluated for ans in answers) and len(raised) == 1
        for r in (a, b):
            listed = await r.stub.ListAlerts(pb.ListAlertsRequest(model=model))
            assert [x.id for x in listed.alerts] == raised
        store = a.runtime.store
        assert await wait_for(lambda: [d.state for d in store.list_deliveries()]
                              == [DeliveryState.DELIVERED])
        await asyncio.sleep(1.5)  # both dispatchers have polled again
        assert [h["Idempotency-Key"] for h, _ in receiver.requests] == raised


async def test_a_re_evaluation_of_the_same_slot_raises_nothing_new(
        tmp_path: Path, make_postgres_database: Callable[[str], str]) -> None:
    clock = Clock()
    clock.now = clock.now.replace(second=5, microsecond=0)  # 5 s into a one-minute slot
    async with replica(tmp_path, make_postgres_database("mp_obs_rep"), clock=clock) as a:
        model = await drifted_model(a.stub, clock.now)
        mon = await a.stub.CreateMonitor(pb.CreateMonitorRequest(monitor=drift_monitor(
            model, interval_seconds=60)))
        first = await a.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        assert first.alert.state == pb.ALERT_STATE_FIRING

        async def set_threshold(value: float) -> None:
            await a.stub.UpdateMonitor(pb.UpdateMonitorRequest(
                monitor=pb.Monitor(id=mon.id, threshold=value),
                update_mask={"paths": ["threshold"]}))

        await set_threshold(50.0)
        clock.now += timedelta(seconds=10)
        resolved = await a.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        assert resolved.alert.state == pb.ALERT_STATE_RESOLVED
        # Crossing again within the same slot: the slot already has its alert.
        await set_threshold(0.2)
        clock.now += timedelta(seconds=10)
        again = await a.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        assert again.evaluated and not again.HasField("alert")
        # The next slot raises a new one.
        clock.now += timedelta(seconds=60)
        later = await a.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        assert later.alert.state == pb.ALERT_STATE_FIRING
        listed = await a.stub.ListAlerts(pb.ListAlertsRequest(monitor_id=mon.id))
        assert [x.id for x in listed.alerts] == [later.alert.id, first.alert.id]
        assert [x.state for x in listed.alerts] == [pb.ALERT_STATE_FIRING,
                                                    pb.ALERT_STATE_RESOLVED]


async def test_one_replica_holds_the_lease_and_a_clean_stop_hands_it_over(
        tmp_path: Path, make_postgres_database: Callable[[str], str]) -> None:
    db = make_postgres_database("mp_obs_rep")
    stacks = {name: AsyncExitStack() for name in "ab"}
    try:
        reps = {name: await stack.enter_async_context(replica(tmp_path / name, db, lease=1.0))
                for name, stack in stacks.items()}
        a, b = reps["a"].runtime.lease, reps["b"].runtime.lease
        assert await wait_for(lambda: a.held() or b.held())
        for _ in range(30):  # never both, across several renewals
            assert not (a.held() and b.held())
            await asyncio.sleep(0.1)
        holder = "a" if a.held() else "b"
        other = reps["b" if holder == "a" else "a"].runtime.lease
        assert other.acquisitions == 0
        await stacks.pop(holder).aclose()  # a clean stop releases the lease
        assert await wait_for(other.held, 1.0)
    finally:
        for stack in stacks.values():
            await stack.aclose()


async def test_watch_on_one_replica_streams_alerts_raised_on_another_across_a_lost_connection(
        tmp_path: Path, make_postgres_database: Callable[[str], str]) -> None:
    db = make_postgres_database("mp_obs_rep")
    async with replica(tmp_path / "a", db) as a, replica(tmp_path / "b", db) as b:
        now = utcnow()
        first_model = await drifted_model(a.stub, now)
        second_model = await drifted_model(a.stub, now)
        assert await wait_for(lambda: b.runtime.relay.connected)
        watch = b.stub.WatchAlerts(pb.WatchAlertsRequest())
        await asyncio.sleep(0.3)  # the watch is registered
        mon = await a.stub.CreateMonitor(pb.CreateMonitorRequest(
            monitor=drift_monitor(first_model)))
        raised = await a.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        streamed = await asyncio.wait_for(watch.read(), 10)
        assert streamed.id == raised.alert.id and streamed.state == pb.ALERT_STATE_FIRING
        # B's listening connection is cut; an alert raised meanwhile still reaches B's
        # watcher, from the catch-up after B reconnects.
        with psycopg.connect(db, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'modelplane-observability-alerts' "
                "AND datname = current_database()").fetchall()  # not other tests' stores
        assert len(killed) == 2  # A's and B's listeners
        mon2 = await a.stub.CreateMonitor(pb.CreateMonitorRequest(
            monitor=drift_monitor(second_model)))
        raised2 = await a.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon2.id))
        streamed2 = await asyncio.wait_for(watch.read(), 15)
        assert streamed2.id == raised2.alert.id
        assert b.runtime.relay.reconnects >= 1
        assert await wait_for(lambda: b.runtime.relay.connected)
        watch.cancel()


@pytest.mark.parametrize("backend", ["embedded", "postgres"])
def test_alerts_stored_as_documents_by_an_older_release_move_to_the_alert_table(
        backend: str, tmp_path: Path, make_postgres_database: Callable[[str], str]) -> None:
    from modelplane.observability.store.base import EvaluationStore
    from modelplane.observability.store.embedded import EmbeddedStore
    from modelplane.observability.store.postgres import PostgresStore

    url = make_postgres_database("mp_obs_rep") if backend == "postgres" else ""

    def store() -> EvaluationStore:
        return PostgresStore(url) if url else EmbeddedStore(tmp_path / "e.duckdb")

    doc = {"id": "a1", "monitor_id": "m1", "model": "x", "state": 1, "value": 1.0,
           "threshold": 0.5, "comparison": 1, "message": "m", "resolve_time": None,
           "window": ["2026-12-01T00:00:00+00:00", "2026-12-01T01:00:00+00:00"],
           "create_time": "2026-12-01T01:00:00+00:00"}
    old = store()
    old.open()
    old.put_document("alert", "a1", "x", doc)  # where alerts lived before obs_alerts
    old.close()
    new = store()
    new.open()
    try:
        assert new.list_alerts("x") == [doc]
        assert new.firing_alert("m1") == doc  # and it still counts as firing
        assert new.insert_alert({**doc, "id": "a2"}, utcnow(), None) is None
        assert new.list_documents("alert") == []
    finally:
        new.close()


async def test_lease_listener_and_webhook_state_are_on_metrics(service: Any) -> None:
    """An operator sees which replica holds the lease and whether it listens."""
    from prometheus_client import REGISTRY, generate_latest

    rt = service.runtime
    for _ in range(200):  # the lease is taken and the listener connected right after start
        if rt.lease.held() and rt.relay.connected:
            break
        await asyncio.sleep(0.05)
    text = generate_latest(REGISTRY).decode()
    assert "modelplane_observability_monitor_lease_held 1.0" in text
    assert "modelplane_observability_alert_listener_connected 1.0" in text
    counter = "modelplane_observability_monitor_lease_acquisitions_total "
    acquisitions = [line for line in text.splitlines() if line.startswith(counter)]
    assert acquisitions and float(acquisitions[0].split()[1]) >= 1
    assert 'modelplane_observability_webhook_deliveries_total{outcome="delivered"}' in text
