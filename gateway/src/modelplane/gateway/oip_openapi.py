"""The Open Inference Protocol v2 REST routes in the gateway's OpenAPI document.

Written from the OIP v2 REST specification (KServe's "Predict Protocol - Version 2")
as serving implements it; the routes are forwarded to serving (``oip_proxy``).
"""

from __future__ import annotations

from typing import Any

from modelplane.gateway.oip_proxy import ROUTE_ACCESS

_REF = "#/components/schemas/"
DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BYTES"]
_TAG = "OpenInferenceProtocol"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _schemas() -> dict[str, Any]:
    shape = {"type": "array", "items": {"type": "integer", "format": "int64"},
             "description": "Tensor shape; -1 for a variable dimension in metadata."}
    params = {"type": "object", "additionalProperties": True,
              "description": "Free-form parameters (OIP $parameters)."}
    metadata_tensor = {"type": "object", "title": "MetadataTensor",
                       "required": ["name", "datatype", "shape"],
                       "properties": {"name": {"type": "string"},
                                      "datatype": {"type": "string"}, "shape": shape}}
    return {
        "oip.Datatype": {"type": "string", "enum": DATATYPES, "title": "Datatype"},
        "oip.Parameters": params,
        "oip.Error": {"type": "object", "title": "Error", "required": ["error"],
                      "description": "An OIP error: the message, and the reason code "
                                     "(API_KEY_MISSING, DEPLOYMENT_NOT_FOUND, "
                                     "SERVICE_UNAVAILABLE, ...).",
                      "properties": {"error": {"type": "string"}, "reason": {"type": "string"},
                                     "service": {"type": "string"}}},
        "oip.LiveResponse": {"type": "object", "title": "ServerLiveResponse",
                             "required": ["live"], "properties": {"live": {"type": "boolean"}}},
        "oip.ReadyResponse": {"type": "object", "title": "ServerReadyResponse",
                              "required": ["ready"],
                              "properties": {"ready": {"type": "boolean"}}},
        "oip.ModelReadyResponse": {"type": "object", "title": "ModelReadyResponse",
                                   "required": ["name", "ready"],
                                   "properties": {"name": {"type": "string"},
                                                  "ready": {"type": "boolean"}}},
        "oip.ServerMetadataResponse": {
            "type": "object", "title": "ServerMetadataResponse",
            "required": ["name", "version", "extensions"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                           "extensions": {"type": "array", "items": {"type": "string"}}}},
        "oip.MetadataTensor": metadata_tensor,
        "oip.ModelMetadataResponse": {
            "type": "object", "title": "ModelMetadataResponse",
            "required": ["name", "platform"],
            "properties": {"name": {"type": "string"},
                           "versions": {"type": "array", "items": {"type": "string"}},
                           "platform": {"type": "string"},
                           "inputs": {"type": "array", "items": _ref("oip.MetadataTensor")},
                           "outputs": {"type": "array", "items": _ref("oip.MetadataTensor")}}},
        "oip.RequestInput": {
            "type": "object", "title": "RequestInput",
            "required": ["name", "shape", "datatype"],
            "description": "An input tensor: row-major `data` (nested or flat), or "
                           "`parameters.binary_data_size` bytes after the JSON header "
                           "(Triton's binary tensor extension, with the header "
                           "Inference-Header-Content-Length).",
            "properties": {"name": {"type": "string"}, "shape": shape,
                           "datatype": _ref("oip.Datatype"),
                           "parameters": _ref("oip.Parameters"),
                           "data": {"type": "array", "items": {}}}},
        "oip.RequestOutput": {
            "type": "object", "title": "RequestOutput", "required": ["name"],
            "properties": {"name": {"type": "string"},
                           "parameters": _ref("oip.Parameters")}},
        "oip.InferenceRequest": {
            "type": "object", "title": "InferenceRequest", "required": ["inputs"],
            "properties": {"id": {"type": "string"},
                           "parameters": _ref("oip.Parameters"),
                           "inputs": {"type": "array", "items": _ref("oip.RequestInput")},
                           "outputs": {"type": "array", "items": _ref("oip.RequestOutput")}}},
        "oip.ResponseOutput": {
            "type": "object", "title": "ResponseOutput",
            "required": ["name", "shape", "datatype"],
            "properties": {"name": {"type": "string"}, "shape": shape,
                           "datatype": _ref("oip.Datatype"),
                           "parameters": _ref("oip.Parameters"),
                           "data": {"type": "array", "items": {}}}},
        "oip.InferenceResponse": {
            "type": "object", "title": "InferenceResponse",
            "required": ["model_name", "outputs"],
            "description": "`parameters` carries modelplane's prediction_id, model_version, "
                           "registered_model, route and fallback.",
            "properties": {"model_name": {"type": "string"},
                           "model_version": {"type": "string"},
                           "id": {"type": "string"},
                           "parameters": _ref("oip.Parameters"),
                           "outputs": {"type": "array", "items": _ref("oip.ResponseOutput")}}},
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[^/]+$", "minLength": 1}}


def add_oip(paths: dict[str, Any], schemas: dict[str, Any], tags: dict[str, Any]) -> None:
    """Add the ``/v2`` routes (and their schemas) to an OpenAPI document being built."""
    schemas.update(_schemas())
    tags[_TAG] = {"name": _TAG, "description": "Open Inference Protocol v2 REST, forwarded to "
                                               "serving (service: serving)"}
    error = {"content": {"application/json": {"schema": _ref("oip.Error")}}}

    def op(method: str, template: str, op_id: str, summary: str, ok: str,
           body: bool = False) -> dict[str, Any]:
        role = ROUTE_ACCESS[(method, template)]
        names = [p.strip("{}") for p in template.split("/") if p.startswith("{")]
        result: dict[str, Any] = {
            "operationId": op_id, "tags": [_TAG], "summary": summary,
            "x-modelplane-access": role.name.lower() if role is not None else "none",
            "responses": {
                "200": {"description": "OK",
                        "content": {"application/json": {"schema": _ref(ok)}}},
                "default": {"description": "Error (OIP): 400 bad request, 401/403 API key, "
                                           "404 unknown model or route, 413 body too large, "
                                           "502/503/504 serving failed, unreachable or slow",
                            **error}}}
        if role is None:
            result["security"] = []
        if names:
            result["parameters"] = [_path_param(n) for n in names]
        if body:
            result["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": _ref("oip.InferenceRequest")}}}
        return result

    def add(method: str, template: str, *args: Any, **kwargs: Any) -> None:
        paths.setdefault(template, {})[method.lower()] = op(method, template, *args, **kwargs)

    add("GET", "/v2/health/live", "OIP_ServerLive", "Is serving live", "oip.LiveResponse")
    add("GET", "/v2/health/ready", "OIP_ServerReady", "Is serving ready", "oip.ReadyResponse")
    add("GET", "/v2", "OIP_ServerMetadata", "Server metadata", "oip.ServerMetadataResponse")
    add("GET", "/v2/models/{name}", "OIP_ModelMetadata", "A served model's metadata",
        "oip.ModelMetadataResponse")
    add("GET", "/v2/models/{name}/ready", "OIP_ModelReady",
        "Is the model ready (400 with ready=false when not)", "oip.ModelReadyResponse")
    add("GET", "/v2/models/{name}/versions/{version}", "OIP_ModelVersionMetadata",
        "A served model's metadata (version in the path)", "oip.ModelMetadataResponse")
    add("GET", "/v2/models/{name}/versions/{version}/ready", "OIP_ModelVersionReady",
        "Is the model ready (version in the path)", "oip.ModelReadyResponse")
    add("POST", "/v2/models/{name}/infer", "OIP_ModelInfer", "Inference",
        "oip.InferenceResponse", body=True)
    add("POST", "/v2/models/{name}/versions/{version}/infer", "OIP_ModelVersionInfer",
        "Inference on a given loaded version of the deployment's model",
        "oip.InferenceResponse", body=True)
