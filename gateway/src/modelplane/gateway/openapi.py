"""OpenAPI 3.1 document generated from the same descriptors the gateway routes by.

Messages and enums become ``components.schemas`` named by their full proto
name; each HTTP binding becomes an operation with its path and query
parameters, request body and responses (``google.rpc.Status`` for errors,
NDJSON for server streams). Field names follow the gateway's JSON naming.
"""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from modelplane.gateway.catalog import Catalog, HttpBinding
from modelplane.gateway.path_template import openapi_parameter_name
from modelplane.gateway.status_mapping import HTTP_STATUS

log = logging.getLogger(__name__)

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/"
_T = FieldDescriptor

_SCALARS: dict[int, dict[str, Any]] = {
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    _T.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    # 64-bit integers are strings in proto3 JSON (numbers are accepted on input too).
    _T.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _T.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _T.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _T.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    _T.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
}

_WRAPPERS = {
    "google.protobuf.DoubleValue": _T.TYPE_DOUBLE, "google.protobuf.FloatValue": _T.TYPE_FLOAT,
    "google.protobuf.Int64Value": _T.TYPE_INT64, "google.protobuf.UInt64Value": _T.TYPE_UINT64,
    "google.protobuf.Int32Value": _T.TYPE_INT32, "google.protobuf.UInt32Value": _T.TYPE_UINT32,
    "google.protobuf.BoolValue": _T.TYPE_BOOL, "google.protobuf.StringValue": _T.TYPE_STRING,
    "google.protobuf.BytesValue": _T.TYPE_BYTES,
}

_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time",
                                  "description": "RFC 3339 time, e.g. 2026-11-27T08:00:00Z"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
                                 "description": "Seconds with an 's' suffix, e.g. 1.5s"},
    "google.protobuf.FieldMask": {"type": "string",
                                  "description": "Comma-separated field paths, e.g. "
                                                 "display_name,labels"},
    "google.protobuf.Empty": {"type": "object", "properties": {}},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "Any JSON value"},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {"type": "object", "required": ["@type"],
                            "properties": {"@type": {"type": "string"}},
                            "additionalProperties": True},
}


class SchemaBuilder:
    """Collects component schemas for messages and enums as they are referenced."""

    def __init__(self, proto_names: bool = True) -> None:
        self.proto_names = proto_names
        self.schemas: dict[str, Any] = {}

    def name_of(self, fd: FieldDescriptor) -> str:
        name: str = fd.name if self.proto_names else fd.json_name
        return name

    def message_ref(self, desc: Descriptor) -> dict[str, Any]:
        full = desc.full_name
        if full in _WELL_KNOWN:
            return dict(_WELL_KNOWN[full])
        if full in _WRAPPERS:
            inner = dict(_SCALARS[_WRAPPERS[full]])
            inner["type"] = [inner["type"], "null"]
            return inner
        if full not in self.schemas:
            self.schemas[full] = {}  # placeholder first: recursive messages
            self.schemas[full] = self._message_schema(desc)
        return {"$ref": _REF + full}

    def enum_ref(self, desc: EnumDescriptor) -> dict[str, Any]:
        full = desc.full_name
        if full not in self.schemas:
            self.schemas[full] = {"type": "string", "title": desc.name,
                                  "enum": [v.name for v in desc.values]}
        return {"$ref": _REF + full}

    def _single(self, fd: FieldDescriptor) -> dict[str, Any]:
        if fd.type == _T.TYPE_MESSAGE:
            return self.message_ref(fd.message_type)
        if fd.type == _T.TYPE_ENUM:
            return self.enum_ref(fd.enum_type)
        return dict(_SCALARS[fd.type])

    def field_schema(self, fd: FieldDescriptor) -> dict[str, Any]:
        mt = fd.message_type
        if mt is not None and mt.GetOptions().map_entry:
            key_fd, value_fd = mt.fields_by_name["key"], mt.fields_by_name["value"]
            schema: dict[str, Any] = {"type": "object",
                                      "additionalProperties": self._single(value_fd)}
            if key_fd.type != _T.TYPE_STRING:
                schema["propertyNames"] = {"pattern": "^(true|false)$"
                                           if key_fd.type == _T.TYPE_BOOL else "^-?[0-9]+$"}
            return schema
        if fd.is_repeated:
            return {"type": "array", "items": self._single(fd)}
        return self._single(fd)

    def _message_schema(self, desc: Descriptor) -> dict[str, Any]:
        properties = {self.name_of(fd): self.field_schema(fd) for fd in desc.fields}
        schema: dict[str, Any] = {"type": "object", "title": desc.name, "properties": properties}
        oneofs = [o for o in desc.oneofs
                  if not (len(o.fields) == 1 and o.name == "_" + o.fields[0].name)]
        if oneofs:
            notes = []
            for oneof in oneofs:
                names = [self.name_of(f) for f in oneof.fields]
                notes.append(f"at most one of {', '.join(names)} (oneof {oneof.name})")
            schema["description"] = "Set " + "; ".join(notes) + "."
            schema["x-oneof"] = {o.name: [self.name_of(f) for f in o.fields] for o in oneofs}
        return schema


def _status_schemas(builder: SchemaBuilder) -> None:
    builder.schemas["google.rpc.Status"] = {
        "type": "object", "title": "Status",
        "description": "The error body: gRPC code, message and typed details "
                       "(google.rpc.ErrorInfo, google.rpc.BadRequest, ...).",
        "properties": {
            "code": {"type": "integer", "format": "int32",
                     "description": "google.rpc.Code (e.g. 3 = INVALID_ARGUMENT, 5 = NOT_FOUND)"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {
                "type": "object", "required": ["@type"],
                "properties": {"@type": {"type": "string",
                                         "examples": ["type.googleapis.com/google.rpc.ErrorInfo"]}},
                "additionalProperties": True}},
        },
        "required": ["code", "message"],
    }


def _field_at(desc: Descriptor, dotted: str) -> FieldDescriptor:
    fd: FieldDescriptor | None = None
    current: Descriptor | None = desc
    for part in dotted.split("."):
        assert current is not None
        fd = current.fields_by_name[part]
        current = fd.message_type
    assert fd is not None
    return fd


def _query_parameters(builder: SchemaBuilder, desc: Descriptor, bound: set[str],
                      prefix: str = "", depth: int = 0,
                      seen: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for fd in desc.fields:
        name = f"{prefix}{fd.name}"
        if name in bound:
            continue
        mt = fd.message_type
        if mt is not None and mt.GetOptions().map_entry:
            continue
        if mt is not None and mt.full_name not in _WELL_KNOWN and mt.full_name not in _WRAPPERS:
            if fd.is_repeated or depth >= 3 or mt.full_name in seen:
                continue
            params.extend(_query_parameters(builder, mt, bound, name + ".", depth + 1,
                                            (*seen, desc.full_name)))
            continue
        if mt is not None and mt.full_name in ("google.protobuf.Struct", "google.protobuf.Value",
                                               "google.protobuf.ListValue",
                                               "google.protobuf.Any", "google.protobuf.Empty"):
            continue
        param: dict[str, Any] = {"name": name, "in": "query", "required": False,
                                 "schema": builder.field_schema(fd)}
        if fd.is_repeated:
            param["style"] = "form"
            param["explode"] = True
        params.append(param)
    return params


def _operation(builder: SchemaBuilder, binding: HttpBinding) -> dict[str, Any]:
    rpc = binding.method
    request = rpc.descriptor.input_type
    service = rpc.descriptor.containing_service
    params: list[dict[str, Any]] = []
    bound: set[str] = set()
    for var in binding.template.variables:
        fd = _field_at(request, var.field_path)
        schema = builder.field_schema(fd)
        param: dict[str, Any] = {"name": openapi_parameter_name(var.field_path), "in": "path",
                                 "required": True, "schema": schema,
                                 "x-proto-field": var.field_path}
        notes = []
        if "." in var.field_path:
            notes.append(f"Sets the request field `{var.field_path}`.")
        if var.pattern != "*":
            notes.append(f"Matches the pattern `{var.pattern}`.")
            if schema.get("type") == "string":
                param["schema"] = {**schema,
                                   "pattern": binding.template.value_pattern(var)}
        if notes:
            param["description"] = " ".join(notes)
        params.append(param)
        bound.add(var.field_path)
    op: dict[str, Any] = {
        "operationId": binding.operation_id,
        "tags": [service.name],
        "summary": f"{service.name}.{rpc.descriptor.name}",
        "x-grpc-method": rpc.path,
        "x-modelplane-access": rpc.access,
    }
    if binding.body:
        if binding.body == "*":
            body_schema: dict[str, Any] = builder.message_ref(request)
            top_bound = [b for b in bound if "." not in b]
            if top_bound:
                names = ", ".join(sorted(top_bound))
                body_schema = {"allOf": [body_schema],
                               "description": f"{request.name}; {names} come(s) from the path."}
        else:
            bound.add(binding.body)
            body_schema = builder.field_schema(_field_at(request, binding.body))
            params.extend(_query_parameters(builder, request, bound))
        if rpc.client_streaming:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": {"type": "array", "items": body_schema}},
                "application/x-ndjson": {"schema": body_schema}}}
        else:
            op["requestBody"] = {"required": binding.body == "*", "content": {
                "application/json": {"schema": body_schema}}}
    else:
        params.extend(_query_parameters(builder, request, bound))
    if params:
        op["parameters"] = params
    response_schema: dict[str, Any]
    if binding.response_body:
        response_schema = builder.field_schema(_field_at(rpc.descriptor.output_type,
                                                         binding.response_body))
    else:
        response_schema = builder.message_ref(rpc.descriptor.output_type)
    status_ref = {"$ref": _REF + "google.rpc.Status"}
    if rpc.server_streaming:
        ok = {"description": "A stream of newline-delimited JSON objects: "
                             '{"result": ...} per message, {"error": ...} if the stream fails.',
              "content": {"application/x-ndjson": {"schema": {
                  "type": "object",
                  "properties": {"result": response_schema, "error": status_ref}}}}}
    else:
        ok = {"description": "OK", "content": {"application/json": {"schema": response_schema}}}
    error = {"description": "Error: a google.rpc.Status. HTTP status from the gRPC code "
                            "(400 INVALID_ARGUMENT/FAILED_PRECONDITION/OUT_OF_RANGE, 401, 403, "
                            "404, 409, 429, 499, 500, 501, 503, 504).",
             "content": {"application/json": {"schema": status_ref}}}
    op["responses"] = {"200": ok, "400": {"description": "Bad request: a google.rpc.Status with "
                                                         "google.rpc.BadRequest field violations",
                                          "content": error["content"]},
                       "default": error}
    return op


def build_openapi(catalog: Catalog, *, title: str = "modelplane API", version: str = "v1",
                  proto_names: bool = True, oip: bool = True) -> dict[str, Any]:
    builder = SchemaBuilder(proto_names)
    _status_schemas(builder)
    paths: dict[str, dict[str, Any]] = {
        "/healthz": {"get": {"operationId": "Gateway_Healthz", "tags": ["Gateway"],
                             "summary": "Liveness of the gateway", "security": [],
                             "responses": {"200": {"description": "The gateway is up",
                                                   "content": {"application/json": {"schema": {
                                                       "type": "object",
                                                       "properties": {"status": {
                                                           "type": "string"}}}}}}}}},
        "/openapi.json": {"get": {"operationId": "Gateway_OpenApi", "tags": ["Gateway"],
                                  "summary": "This document", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1 document",
                                                        "content": {"application/json": {
                                                            "schema": {"type": "object"}}}}}}},
    }
    tags: dict[str, dict[str, Any]] = {"Gateway": {"name": "Gateway",
                                                   "description": "The gateway itself"}}
    for binding in catalog.bindings:
        method = binding.http_method.lower()
        if method not in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
            log.warning("custom HTTP method %s of %s is not representable in OpenAPI",
                        binding.http_method, binding.method.path)
            continue
        item = paths.setdefault(binding.template.openapi_path, {})
        if method in item:
            log.warning("OpenAPI path %s %s is bound twice; documenting %s only",
                        method.upper(), binding.template.openapi_path, item[method]["operationId"])
            continue
        item[method] = _operation(builder, binding)
        service = binding.method.descriptor.containing_service
        tags.setdefault(service.name, {"name": service.name,
                                       "description": f"{service.full_name} "
                                                      f"(service: {binding.method.backend})"})
    if oip:
        from modelplane.gateway.oip_openapi import add_oip

        add_oip(paths, builder.schemas, tags)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version,
                 "description": "HTTP/JSON API of modelplane, transcoded to the services' gRPC "
                                "contracts (google.api.http annotations). Errors are "
                                "google.rpc.Status JSON. HTTP status codes follow the "
                                "grpc-gateway mapping: "
                                + ", ".join(f"{c}->{h}" for c, h in sorted(HTTP_STATUS.items()))
                                + "."},
        "tags": list(tags.values()),
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "A modelplane API key: "
                                                              "Authorization: Bearer <key>"}},
        },
        "security": [{"bearerAuth": []}],
    }
