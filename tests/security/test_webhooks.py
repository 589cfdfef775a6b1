"""Issue #13.4: monitor webhooks do not reach what only the platform can reach.

Webhook URLs to loopback, link-local, private and cloud-metadata addresses are
refused by default (after DNS resolution; the connection goes to the checked
address; redirects are not followed) at monitor creation and again at send time.
An allow-list (``MODELPLANE_OBSERVABILITY_WEBHOOK_ALLOW``) opens chosen ones; the
tests that need a local receiver set it for 127.0.0.1 explicitly. Deliveries carry
an idempotency key and are retried with backoff.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services/observability/tests"))

from obs_test_data import drift_monitor, drifted_model

from modelplane.kit.errors import PermissionDenied
from modelplane.kit.outbound import OutboundPolicy, OutboundRefused, post_json
from modelplane.kit.pytest_plugin import rpc_error, wait_for
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.convert import monitor_from_pb
from modelplane.observability.main import build
from modelplane.observability.records import utcnow
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.store.base import DeliveryState
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

SETTING = "MODELPLANE_OBSERVABILITY_WEBHOOK_ALLOW"


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request; it answers the
    first ``fail`` requests with 503, or every request with ``status``."""

    fail: int = 0
    status: int = 204
    location: str = ""
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append((dict(self.headers.items()), json.loads(body or b"{}")))
                failing = len(receiver.requests) <= receiver.fail
                self.send_response(503 if failing else receiver.status)
                if receiver.location:
                    self.send_header("location", receiver.location)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Any:
    r = Receiver().start()
    yield r
    r.stop()


@dataclass
class Obs:
    stub: pb_grpc.ObservabilityServiceStub
    runtime: ObservabilityRuntime


@asynccontextmanager
async def observability(tmp: Path, allow: tuple[str, ...] = (), max_attempts: int = 8
                        ) -> AsyncIterator[Obs]:
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off"}).with_listen("127.0.0.1:0")
    settings = ObservabilitySettings(svc, http_addr=None, monitor_tick_seconds=0,
                                     webhook_allow=allow, webhook_backoff_seconds=0.2,
                                     webhook_backoff_cap_seconds=1.0,
                                     webhook_max_attempts=max_attempts)
    rt = ObservabilityRuntime(settings)
    spec, _ = build(settings, rt)
    async with running(spec, svc) as server:
        channel = grpc.aio.insecure_channel(server.address)
        try:
            yield Obs(pb_grpc.ObservabilityServiceStub(channel), rt)
        finally:
            await channel.close()



async def test_loopback_webhook_is_refused_by_default_and_never_called(
        tmp_path: Path, receiver: Receiver) -> None:
    async with observability(tmp_path) as obs:
        model = await drifted_model(obs.stub, obs.runtime.monitors._clock())
        for url in (receiver.url, f"http://localhost:{receiver.server.server_port}/",  # type: ignore[union-attr]
                    "http://10.1.2.3/hook", "http://[::1]:9/"):
            err = await rpc_error(obs.stub.CreateMonitor(pb.CreateMonitorRequest(
                monitor=drift_monitor(model, url))))
            assert isinstance(err, PermissionDenied), url
            assert err.reason == "OUTBOUND_ADDRESS_REFUSED"
            assert err.metadata["setting"] == SETTING and SETTING in err.message
        listed = await obs.stub.ListMonitors(pb.ListMonitorsRequest(model=model))
        assert not listed.monitors  # nothing was created
        # A monitor stored before the policy existed (or under a wider allow-list) is
        # evaluated: its alert is raised, its webhook refused at send time.
        created = obs.runtime.monitors.create(monitor_from_pb(drift_monitor(model)))
        legacy = replace(created, webhook_url=receiver.url)
        obs.runtime.store.put_document("monitor", legacy.id, model, legacy.to_dict())
        ev = await obs.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=legacy.id))
        assert ev.alert.state == pb.ALERT_STATE_FIRING
        store = obs.runtime.store
        assert await wait_for(lambda: [d.state for d in store.list_deliveries(ev.alert.id)]
                              == [DeliveryState.REFUSED])
        await asyncio.sleep(0.5)
        assert receiver.requests == []  # the listener was never called


def test_metadata_and_private_addresses_are_refused_even_inside_allowed_ranges() -> None:
    policy = OutboundPolicy.parse(SETTING, "")
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
                "http://[::ffff:169.254.169.254]/", "http://100.100.100.200/",
                "http://192.168.1.10/", "http://172.16.0.1/", "http://0.0.0.0:80/",
                "http://[fe80::1]/", "http://127.1/"):
        with pytest.raises(OutboundRefused) as info:
            policy.check(url, "monitor.webhook_url")
        assert info.value.metadata["setting"] == SETTING
    # A broad allowed range does not open the metadata address; naming it does.
    broad = OutboundPolicy.parse(SETTING, "169.254.0.0/16,fd00::/8")
    broad.check("http://169.254.1.1/")
    with pytest.raises(OutboundRefused):
        broad.check("http://169.254.169.254/")
    with pytest.raises(OutboundRefused):
        broad.check("http://[fd00:ec2::254]/")
    OutboundPolicy.parse(SETTING, "169.254.169.254").check("http://169.254.169.254/")
    # Public addresses pass by default.
    assert str(policy.check("https://93.184.215.14/x").address) == "93.184.215.14"


def test_a_name_is_checked_after_resolution_and_connected_to_the_checked_address(
        receiver: Receiver) -> None:
    port = receiver.server.server_port  # type: ignore[union-attr]
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])

    def rebinding(host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address(a) for a in next(answers)]

    # DNS rebinding: public at the first lookup, loopback at the next; the second is refused.
    policy = OutboundPolicy.parse(SETTING, "", resolver=rebinding)
    policy.check(f"http://hook.example:{port}/")
    with pytest.raises(OutboundRefused):
        post_json(policy, f"http://hook.example:{port}/", b"{}")
    assert receiver.requests == []
    # A name only the policy's resolver knows: the connection goes to the address
    # that was checked (allow-listed loopback), not to a second lookup of the name.
    pinned = OutboundPolicy.parse(SETTING, "127.0.0.1",
                                  resolver=lambda h, p: [ipaddress.ip_address("127.0.0.1")])
    resp = post_json(pinned, f"http://hooks.invalid:{port}/hook", b'{"a": 1}')
    assert resp.status == 204
    headers, body = receiver.requests[0]
    assert headers["Host"] == f"hooks.invalid:{port}" and body == {"a": 1}


async def test_allow_listed_loopback_receives_the_alert_with_an_idempotency_key(
        tmp_path: Path, receiver: Receiver) -> None:
    async with observability(tmp_path, allow=("127.0.0.1",)) as obs:
        model = await drifted_model(obs.stub, obs.runtime.monitors._clock())
        mon = await obs.stub.CreateMonitor(pb.CreateMonitorRequest(
            monitor=drift_monitor(model, receiver.url)))
        ev = await obs.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
        assert ev.alert.state == pb.ALERT_STATE_FIRING
        assert await wait_for(lambda: len(receiver.requests) == 1)
        headers, body = receiver.requests[0]
        assert headers["Idempotency-Key"] == ev.alert.id
        assert headers["X-Modelplane-Event"] == "firing"
        assert body["id"] == ev.alert.id and body["monitor_id"] == mon.id
        assert await wait_for(lambda: [d.state for d in obs.runtime.store.list_deliveries(
            ev.alert.id)] == [DeliveryState.DELIVERED])


async def test_a_receiver_failing_twice_gets_the_delivery_on_the_third_attempt(
        tmp_path: Path) -> None:
    receiver = Receiver(fail=2).start()
    try:
        async with observability(tmp_path, allow=("127.0.0.1/32",)) as obs:
            model = await drifted_model(obs.stub, obs.runtime.monitors._clock())
            mon = await obs.stub.CreateMonitor(pb.CreateMonitorRequest(
                monitor=drift_monitor(model, receiver.url)))
            ev = await obs.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
            store = obs.runtime.store
            assert await wait_for(lambda: [d.state for d in store.list_deliveries(ev.alert.id)]
                                  == [DeliveryState.DELIVERED], 20)
            assert len(receiver.requests) == 3
            keys = {h["Idempotency-Key"] for h, _ in receiver.requests}
            assert keys == {ev.alert.id}
            assert [h["X-Modelplane-Delivery-Attempt"] for h, _ in receiver.requests] \
                == ["1", "2", "3"]
            assert store.list_deliveries(ev.alert.id)[0].attempts == 3
    finally:
        receiver.stop()


async def test_a_redirect_is_not_followed(tmp_path: Path, receiver: Receiver) -> None:
    redirecting = Receiver(status=307, location=receiver.url).start()
    try:
        async with observability(tmp_path, allow=("127.0.0.1",)) as obs:
            model = await drifted_model(obs.stub, obs.runtime.monitors._clock())
            mon = await obs.stub.CreateMonitor(pb.CreateMonitorRequest(
                monitor=drift_monitor(model, redirecting.url)))
            ev = await obs.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
            store = obs.runtime.store
            assert await wait_for(lambda: [d.state for d in store.list_deliveries(ev.alert.id)]
                                  == [DeliveryState.FAILED])
            assert len(redirecting.requests) == 1
            assert "redirect" in store.list_deliveries(ev.alert.id)[0].last_error
            assert receiver.requests == []  # the redirect's target was never called
    finally:
        redirecting.stop()


async def test_a_receiver_that_keeps_failing_gets_the_capped_number_of_attempts(
        tmp_path: Path) -> None:
    receiver = Receiver(fail=100).start()
    try:
        async with observability(tmp_path, allow=("127.0.0.1",), max_attempts=3) as obs:
            model = await drifted_model(obs.stub, obs.runtime.monitors._clock())
            mon = await obs.stub.CreateMonitor(pb.CreateMonitorRequest(
                monitor=drift_monitor(model, receiver.url)))
            ev = await obs.stub.EvaluateMonitor(pb.EvaluateMonitorRequest(id=mon.id))
            store = obs.runtime.store
            assert await wait_for(lambda: [d.state for d in store.list_deliveries(ev.alert.id)]
                                  == [DeliveryState.FAILED], 20)
            await asyncio.sleep(1.5)  # no attempt after the last one
            assert len(receiver.requests) == 3
            assert store.list_deliveries(ev.alert.id)[0].last_error == "HTTP 503"
    finally:
        receiver.stop()


async def test_through_the_gateway_a_writer_cannot_point_a_monitor_at_loopback(
        tmp_path: Path, receiver: Receiver) -> None:
    import httpx
    from google.protobuf import json_format

    from modelplane.gateway.app import create_app
    from modelplane.gateway.settings import GatewaySettings
    from modelplane.kit.auth import Role, add_key
    from modelplane.kit.clients import channel

    keys = tmp_path / "api_keys.json"
    writer = add_key(keys, "walt", Role.WRITER)
    env = {"MODELPLANE_DATA_DIR": str(tmp_path), "MODELPLANE_API_KEYS_FILE": str(keys),
           "MODELPLANE_OBSERVABILITY_ADDR": "127.0.0.1:0",
           "MODELPLANE_OBSERVABILITY_HTTP_ADDR": "off", "MODELPLANE_GRACE_SECONDS": "1"}
    settings = ObservabilitySettings.from_service(ServiceSettings.from_env("observability", env))
    spec, _ = build(settings)
    async with running(spec, settings.service) as svc:
        async with channel(svc.address, api_key=writer, tracing=False) as ch:
            model = await drifted_model(pb_grpc.ObservabilityServiceStub(ch), utcnow())
        app = create_app(GatewaySettings.from_env({**env,
                                                   "MODELPLANE_OBSERVABILITY_TARGET": svc.address}))
        auth = {"authorization": f"Bearer {writer}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as http:
            body = json_format.MessageToDict(drift_monitor(model, receiver.url))
            resp = await http.post("/v1/monitors", json=body, headers=auth)
            assert resp.status_code == 403, resp.text
            assert "OUTBOUND_ADDRESS_REFUSED" in [d.get("reason") for d in resp.json()["details"]]
            assert SETTING in resp.json()["message"]
            listed = await http.get("/v1/monitors", params={"model": model}, headers=auth)
            assert listed.status_code == 200 and not listed.json().get("monitors")
    assert receiver.requests == []


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_deadline() -> None:
    import socket
    import time

    from modelplane.kit.outbound import OutboundFailed

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 1000:
                if stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.1)  # each read gets a byte well within its timeout

    threading.Thread(target=drip, daemon=True).start()
    policy = OutboundPolicy.parse(SETTING, "127.0.0.1")
    started = time.monotonic()
    try:
        with pytest.raises(OutboundFailed, match="within"):
            post_json(policy, f"http://127.0.0.1:{listener.getsockname()[1]}/", b"{}",
                      timeout=0.5, total_timeout=1.5)
        assert time.monotonic() - started < 3.0
    finally:
        stop.set()
        listener.close()
