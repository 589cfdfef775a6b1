"""The OpenAPI document: valid OpenAPI 3.1, derived from the same descriptors as the routes,
and the gateway's actual responses validate against it."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31

from modelplane.gateway.catalog import Catalog
from modelplane.gateway.openapi import build_openapi

W = "modelplane.gatewaytest.v1."


@pytest.fixture(scope="module")
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _validate_document(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(OPENAPI_31).validate(document)
    for name, schema in document["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:  # pragma: no cover - message for the failure
            raise AssertionError(f"{name}: {exc.message}") from exc


def test_document_is_valid_openapi_31(doc: dict[str, Any]) -> None:
    _validate_document(doc)
    assert doc["openapi"].startswith("3.1")


def test_every_installed_contract_yields_a_valid_document() -> None:
    catalog = Catalog.discover()
    document = build_openapi(catalog)
    _validate_document(document)
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    for binding in catalog.bindings:
        assert binding.operation_id in operations


def test_paths_and_parameters_come_from_the_http_rules(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    get = paths["/v1/{name}"]["get"]
    assert get["operationId"] == "WidgetService_GetWidget"
    assert get["parameters"][0]["in"] == "path" and get["parameters"][0]["name"] == "name"
    assert "shelves/*/widgets/*" in get["parameters"][0]["description"]
    assert get["parameters"][0]["schema"]["pattern"] == "^shelves/[^/]+/widgets/[^/]+$"
    lst = paths["/v1/shelves/{shelf}/widgets"]["get"]
    query = {p["name"]: p for p in lst["parameters"] if p["in"] == "query"}
    assert {"page_size", "page_token", "colors", "filter.prefix", "filter.min_count",
            "active_only", "since"} <= set(query)
    assert "shelf" not in query
    assert query["colors"]["schema"] == {"type": "array",
                                         "items": {"$ref": f"#/components/schemas/{W}Color"}}
    assert query["since"]["schema"]["format"] == "date-time"
    # additional bindings get their own operation ids
    assert paths["/v1/widgets"]["get"]["operationId"] == "WidgetService_ListWidgets_1"
    create = paths["/v1/shelves/{shelf}/widgets"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{W}Widget"}
    assert {p["name"] for p in create["parameters"] if p["in"] == "query"} == {"widget_id"}
    patch = paths["/v1/{widget_name}"]["patch"]
    assert patch["parameters"][0]["name"] == "widget_name"
    assert patch["parameters"][0]["x-proto-field"] == "widget.name"
    assert paths["/v1/{name}:score"]["post"]["x-modelplane-access"] == "read"
    assert paths["/v1/files/{path}"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"] == {"$ref": f"#/components/schemas/{W}FileContent"}


def test_schemas_cover_enums_maps_oneofs_and_well_known_types(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert schemas[f"{W}Color"] == {"type": "string", "title": "Color",
                                    "enum": ["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_BLUE"]}
    widget = schemas[f"{W}Widget"]["properties"]
    assert widget["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert widget["parts_by_slot"]["propertyNames"] == {"pattern": "^-?[0-9]+$"}
    assert widget["big"]["type"] == "string" and widget["big"]["format"] == "int64"
    assert widget["create_time"]["format"] == "date-time"
    assert widget["ttl"]["pattern"].endswith("s$")
    assert widget["extra"] == {"type": "object", "additionalProperties": True}
    assert widget["blob"]["format"] == "byte"
    assert widget["limit"]["type"] == ["integer", "null"]
    assert schemas[f"{W}Widget"]["x-oneof"] == {"source": ["url", "blob"]}
    patch = doc["paths"]["/v1/{widget_name}"]["patch"]
    mask = next(p for p in patch["parameters"] if p["name"] == "update_mask")
    assert mask["in"] == "query" and mask["schema"]["type"] == "string"
    assert "google.rpc.Status" in schemas


def test_streams_security_and_errors(doc: dict[str, Any]) -> None:
    watch = doc["paths"]["/v1/widgets:watch"]["get"]["responses"]["200"]["content"]
    assert set(watch["application/x-ndjson"]["schema"]["properties"]) == {"result", "error"}
    imp = doc["paths"]["/v1/widgets:import"]["post"]["requestBody"]["content"]
    assert imp["application/json"]["schema"]["type"] == "array"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"]}
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    default = doc["paths"]["/v1/{name}"]["get"]["responses"]["default"]
    assert default["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/google.rpc.Status"}


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]},
                                           format_checker=jsonschema.FormatChecker())


async def test_real_responses_validate_against_the_document(doc: dict[str, Any],
                                                            client: httpx.AsyncClient) -> None:
    # (method, url, the document's path, the response key in the document, the HTTP status):
    # a body is only checked against the schema of the status it was actually sent with
    cases = [("get", "/v1/shelves/s/widgets/w", "/v1/{name}", "200", 200),
             ("get", "/v1/shelves/s/widgets?page_size=2", "/v1/shelves/{shelf}/widgets",
              "200", 200),
             ("get", "/v1/files/a/b", "/v1/files/{path}", "200", 200),
             ("get", "/v1/shelves/s/widgets/missing", "/v1/{name}", "default", 404)]
    for method, url, path, key, status in cases:
        r = await client.request(method.upper(), url)
        assert r.status_code == status, (url, r.status_code, r.text)
        schema = doc["paths"][path][method]["responses"][key]["content"][
            "application/json"]["schema"]
        _validator(doc, schema).validate(r.json())
    r = await client.post("/v1/shelves/s/widgets", json={"count": "x"})
    assert r.status_code == 400, r.text
    schema = doc["paths"]["/v1/shelves/{shelf}/widgets"]["post"]["responses"]["400"][
        "content"]["application/json"]["schema"]
    _validator(doc, schema).validate(r.json())
