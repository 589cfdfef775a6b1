"""gRPC status -> HTTP status (grpc-gateway mapping), details kept, nothing leaked."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelplane.gateway.catalog import Catalog
from modelplane.gateway.status_mapping import HTTP_STATUS

from .conftest import GatewayServer, gateway_settings

EXPECTED = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
    "ABORTED": 409, "RESOURCE_EXHAUSTED": 429, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}


@pytest.mark.parametrize(("code", "http"), sorted(EXPECTED.items()))
async def test_service_errors_map_to_http_with_their_details(
        client: httpx.AsyncClient, code: str, http: int) -> None:
    r = await client.post("/v1/failures", json={"code": code, "message": f"it is {code}"})
    assert r.status_code == http
    body = r.json()
    import grpc

    assert body["code"] == getattr(grpc.StatusCode, code).value[0]
    assert body["message"] == f"it is {code}"
    info = body["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["reason"] == "TEST_FAILURE" and info["metadata"] == {"widget": "w1"}
    assert info["domain"] == "gatewaytest.modelplane.dev"
    if code == "INVALID_ARGUMENT":
        assert body["details"][1] == {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "field_violations": [{"field": "widget.count", "description": "must be positive"}]}
    if code == "UNAUTHENTICATED":
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_mapping_table_is_the_grpc_gateway_one() -> None:
    assert HTTP_STATUS[1] == 499 and HTTP_STATUS[2] == 500 and HTTP_STATUS[15] == 500
    assert len(HTTP_STATUS) == 17


async def test_unexpected_service_exception_is_500_without_its_text(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/failures", json={"code": "CRASH"})
    assert r.status_code == 500
    assert "passwd" not in r.text and "Traceback" not in r.text
    assert r.json()["details"][0]["metadata"]["reference"]


async def test_grpc_timeout_header_sets_the_deadline(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/failures", json={"code": "NOT_FOUND", "delay_seconds": 2},
                          headers={"grpc-timeout": "200m"})
    assert r.status_code == 504
    assert r.json()["code"] == 4


async def test_unreachable_service_is_503_naming_it_not_its_address(contract: Any) -> None:
    catalog = Catalog.from_files([contract.pb2.DESCRIPTOR])
    from modelplane.gateway.app import create_app

    app = create_app(gateway_settings("127.0.0.1:1"), catalog)
    async with GatewayServer(app) as gw, httpx.AsyncClient(base_url=gw.url) as http:
        r = await http.get("/v1/shelves/s/widgets/w")
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == 14 and "gatewaytest" in body["message"]
    assert "127.0.0.1" not in r.text
    assert body["details"][0]["reason"] == "SERVICE_UNAVAILABLE"


async def test_service_without_a_configured_address_is_503(contract: Any) -> None:
    catalog = Catalog.from_files([contract.pb2.DESCRIPTOR])
    from modelplane.gateway.app import create_app
    from modelplane.gateway.settings import GatewaySettings

    app = create_app(GatewaySettings.from_env({"MODELPLANE_AUTH": "off"}), catalog)
    async with GatewayServer(app) as gw, httpx.AsyncClient(base_url=gw.url) as http:
        r = await http.get("/v1/shelves/s/widgets/w")
    assert r.status_code == 503
    assert r.json()["details"][0]["reason"] == "SERVICE_NOT_CONFIGURED"
