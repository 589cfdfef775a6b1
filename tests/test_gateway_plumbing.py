"""The plumbing across processes' boundaries: gateway → a real service.

One HTTP call yields one trace shared by the gateway and the service; auth is
enforced by the service itself (gRPC) and surfaces as the right HTTP status;
bad JSON is a 400 naming the field.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelplane.gateway.app import create_app
from modelplane.gateway.settings import GatewaySettings
from modelplane.kit.auth import Role, add_key
from modelplane.kit.clients import channel
from modelplane.kit.errors import ModelplaneError
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.kit.status import raise_from_rpc_error
from modelplane.kit.telemetry import setup_tracing
from modelplane.observability.main import build
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

exporter = InMemorySpanExporter()
setup_tracing("plumbing-test", [SimpleSpanProcessor(exporter)])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    path = tmp_path_factory.mktemp("keys") / "api_keys.json"
    return {"file": str(path),
            "reader": add_key(path, "rita", Role.READER),
            "writer": add_key(path, "walt", Role.WRITER)}


@pytest.fixture()
async def stack(tmp_path: Path, keys: dict[str, str]):
    env = {"MODELPLANE_DATA_DIR": str(tmp_path), "MODELPLANE_API_KEYS_FILE": keys["file"],
           "MODELPLANE_OBSERVABILITY_ADDR": "127.0.0.1:0",
           "MODELPLANE_OBSERVABILITY_HTTP_ADDR": "off", "MODELPLANE_GRACE_SECONDS": "1"}
    settings = ObservabilitySettings.from_service(ServiceSettings.from_env("observability", env))
    spec, _ = build(settings)
    async with running(spec, settings.service) as svc:
        gw_env = {**env, "MODELPLANE_OBSERVABILITY_TARGET": svc.address}
        app = create_app(GatewaySettings.from_env(gw_env))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as http:
            yield {"http": http, "grpc": svc.address}


async def test_one_http_call_is_one_trace_across_gateway_and_service(stack, keys) -> None:
    exporter.clear()
    resp = await stack["http"].get("/v1/monitors", headers={
        "authorization": f"Bearer {keys['reader']}", "traceparent": TRACEPARENT})
    assert resp.status_code == 200, resp.text
    spans = exporter.get_finished_spans()
    service_spans = [s for s in spans if s.name.endswith("ObservabilityService/ListMonitors")
                     and s.kind.name == "SERVER"]
    gateway_spans = [s for s in spans if s.kind.name == "SERVER" and s not in service_spans]
    assert service_spans and gateway_spans, [(s.name, s.kind.name) for s in spans]
    trace_ids = {format(s.context.trace_id, "032x") for s in spans}
    assert trace_ids == {TRACE_ID}


async def test_unauthenticated_mutation_is_401_over_http_and_grpc(stack, keys) -> None:
    body = {"display_name": "acc", "threshold": 0.8}  # body: "monitor"
    resp = await stack["http"].post("/v1/monitors", json=body)
    assert resp.status_code == 401
    assert resp.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]

    async with channel(stack["grpc"], tracing=False) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await pb_grpc.ObservabilityServiceStub(ch).CreateMonitor(
                pb.CreateMonitorRequest(monitor=pb.Monitor(display_name="acc")))
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_reader_key_on_mutation_is_403_over_http_and_grpc(stack, keys) -> None:
    body = {"display_name": "acc", "threshold": 0.8}  # body: "monitor"
    resp = await stack["http"].post("/v1/monitors", json=body,
                                    headers={"authorization": f"Bearer {keys['reader']}"})
    assert resp.status_code == 403
    reasons = [d.get("reason") for d in resp.json()["details"]]
    assert "ROLE_TOO_LOW" in reasons

    async with channel(stack["grpc"], api_key=keys["reader"], tracing=False) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await pb_grpc.ObservabilityServiceStub(ch).CreateMonitor(
                pb.CreateMonitorRequest(monitor=pb.Monitor(display_name="acc")))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(ModelplaneError) as mapped:
        raise_from_rpc_error(exc.value)
    assert mapped.value.metadata["required_role"] == "writer"


@pytest.mark.parametrize("body, field", [
    (b'{"display_name": "acc", ', None),
    (b'{"threshold": "high"}', "monitor.threshold"),
    (b'{"no_such_field": 1}', "monitor.no_such_field"),
])
async def test_malformed_json_is_400_with_a_field_violation(stack, keys, body, field) -> None:
    resp = await stack["http"].post("/v1/monitors", content=body, headers={
        "authorization": f"Bearer {keys['writer']}", "content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    details = resp.json()["details"]
    violations = [v for d in details
                  for v in d.get("fieldViolations", d.get("field_violations", []))]
    assert violations, details
    if field is not None:
        assert any(field in v["field"] for v in violations), violations
