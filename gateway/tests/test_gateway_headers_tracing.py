"""Headers the gateway passes on, and one trace from the HTTP call into the service."""

from __future__ import annotations

from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


async def test_authorization_request_id_and_grpc_metadata_are_forwarded(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/echo", json={"text": "x"}, headers={
        "authorization": "Bearer k-123", "x-request-id": "req-42",
        "grpc-metadata-tenant": "acme", "cookie": "session=secret"})
    assert r.status_code == 200
    md = r.json()["metadata"]
    assert md["authorization"] == "Bearer k-123"
    assert md["x-request-id"] == "req-42"
    assert md["tenant"] == "acme"
    assert "cookie" not in md and "session=secret" not in r.text
    assert r.headers["x-request-id"] == "req-42"


async def test_request_id_is_made_when_absent(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/echo", json={})
    generated = r.headers["x-request-id"]
    assert len(generated) == 32 and r.json()["metadata"]["x-request-id"] == generated


async def test_traceparent_continues_into_the_service(client: httpx.AsyncClient,
                                                      spans: InMemorySpanExporter) -> None:
    spans.clear()
    r = await client.post("/v1/echo", json={}, headers={
        "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01", "tracestate": "vendor=1"})
    assert r.status_code == 200
    body = r.json()
    # The service handled the call inside the caller's trace...
    assert body["trace_id"] == TRACE_ID
    assert body["metadata"]["traceparent"].split("-")[1] == TRACE_ID
    assert body["metadata"]["tracestate"] == "vendor=1"
    # ...and the gateway's spans and the service's span share it, parent to child.
    finished = [s for s in spans.get_finished_spans()
                if format(s.context.trace_id, "032x") == TRACE_ID]
    gateway_server = next(s for s in finished if s.kind == SpanKind.SERVER
                          and s.name == "POST /v1/echo")
    service = next(s for s in finished if s.kind == SpanKind.SERVER and s is not gateway_server)
    assert format(gateway_server.parent.span_id, "016x") == PARENT_SPAN
    assert service.parent.span_id == gateway_server.context.span_id
    assert gateway_server.attributes["http.response.status_code"] == 200
    assert gateway_server.attributes["http.route"] == "/v1/echo"


async def test_a_new_trace_is_started_without_traceparent(client: httpx.AsyncClient,
                                                          spans: InMemorySpanExporter) -> None:
    spans.clear()
    r = await client.post("/v1/echo", json={})
    trace_id = r.json()["trace_id"]
    assert trace_id and trace_id != TRACE_ID
    ids = {format(s.context.trace_id, "032x") for s in spans.get_finished_spans()}
    assert ids == {trace_id}


async def test_error_responses_mark_the_gateway_span(client: httpx.AsyncClient,
                                                     spans: InMemorySpanExporter,
                                                     stack: Any) -> None:
    spans.clear()
    await client.post("/v1/failures", json={"code": "INTERNAL"})
    server = next(s for s in spans.get_finished_spans()
                  if s.kind == SpanKind.SERVER and s.name == "POST /v1/failures")
    assert server.attributes["http.response.status_code"] == 500
    assert not server.status.is_ok


async def test_trace_context_is_carried_even_when_the_gateway_exports_no_spans(
        stack: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from modelplane.gateway.app import create_app
    from modelplane.gateway.catalog import Catalog

    from .conftest import GatewayServer, gateway_settings

    app = create_app(gateway_settings(stack.backend_address),
                     Catalog.from_files([stack.contract.pb2.DESCRIPTOR]),
                     tracer_provider=TracerProvider())  # no processor: nothing exported
    async with GatewayServer(app) as gw, httpx.AsyncClient(base_url=gw.url) as http:
        r = await http.post("/v1/echo", json={},
                            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"})
        assert r.json()["trace_id"] == TRACE_ID
        forwarded = r.json()["metadata"]["traceparent"].split("-")
        assert forwarded[2] != PARENT_SPAN  # the gateway's own span id, child of the caller
        r = await http.post("/v1/echo", json={})
        _, trace_id, _, flags = r.json()["metadata"]["traceparent"].split("-")
        assert r.json()["trace_id"] == trace_id and flags == "01"


async def test_access_log_line_names_route_status_and_request_id(
        stack: Any, caplog: Any) -> None:
    import logging

    from modelplane.gateway.app import create_app
    from modelplane.gateway.catalog import Catalog

    from .conftest import GatewayServer, gateway_settings

    app = create_app(gateway_settings(stack.backend_address,
                                      MODELPLANE_GATEWAY_ACCESS_LOG="on"),
                     Catalog.from_files([stack.contract.pb2.DESCRIPTOR]))
    with caplog.at_level(logging.INFO, logger="modelplane.gateway.rpc_handler"):
        async with GatewayServer(app) as gw, httpx.AsyncClient(base_url=gw.url) as http:
            await http.get("/v1/shelves/s/widgets/missing", headers={"x-request-id": "r-9"})
    fields = [r.fields for r in caplog.records if hasattr(r, "fields")]
    assert fields and fields[-1]["status"] == 404 and fields[-1]["request_id"] == "r-9"
    assert fields[-1]["route"] == "/v1/{name=shelves/*/widgets/*}"
    assert fields[-1]["duration_ms"] > 0
