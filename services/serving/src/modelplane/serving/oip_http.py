"""Open Inference Protocol v2 over REST (with Triton's binary tensor extension) and /metrics.

A Starlette app over the same :class:`DataPlane` as the gRPC adapter, so
``tritonclient.http`` and KServe REST clients work unmodified. Keys are checked
the same way as on gRPC (``authorization: Bearer KEY``, role reader or more,
then the deployment's own rights). Health and /metrics need no key.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from modelplane.kit.auth import ANONYMOUS_ADMIN, ApiKeyStore, Principal, Role, bearer_token
from modelplane.kit.errors import (
    InvalidArgument,
    ModelplaneError,
    PermissionDenied,
    Unauthenticated,
)
from modelplane.serving.data_plane import DataPlane, InferenceRequest
from modelplane.serving.deployment import DeploymentState
from modelplane.serving.oip_tensors import (
    DTYPES,
    bad_tensor,
    from_raw,
    numpy_dtype,
    oip_datatype,
    output_raw,
    reshape,
    to_model_input,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
                "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
                "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
                "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}
_KIND_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "string": "BYTES"}


def _error(exc: ModelplaneError) -> JSONResponse:
    return JSONResponse({"error": exc.message, "reason": exc.reason},
                        status_code=_HTTP_STATUS.get(exc.code, 500))


def _json_tensor(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    dt = numpy_dtype(name, datatype)
    try:
        if dt is np.object_:
            arr = np.array([str(x) for x in np.asarray(data, dtype=object).reshape(-1)],
                           dtype=object)
        else:
            arr = np.asarray(data, dtype=dt).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise bad_tensor(name, "data", f"data is not {datatype}: {exc}") from None
    return reshape(name, arr, shape)


class OipHttpApp:
    def __init__(self, plane: DataPlane, *, auth_enabled: bool,
                 keys: ApiKeyStore | None) -> None:
        self.plane = plane
        self.auth_enabled = auth_enabled
        self.keys = keys
        self.app = Starlette(routes=[
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            Route("/v2", self.server_metadata, methods=["GET"]),
            Route("/v2/models/{name}", self.model_metadata, methods=["GET"]),
            Route("/v2/models/{name}/ready", self.model_ready, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}", self.model_metadata, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}/ready", self.model_ready,
                  methods=["GET"]),
            Route("/v2/models/{name}/infer", self.infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/infer", self.infer, methods=["POST"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ])

    def _principal(self, request: Request) -> Principal:
        if not self.auth_enabled:
            return ANONYMOUS_ADMIN
        token = bearer_token({"authorization": request.headers.get("authorization", "")})
        if token is None:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'",
                                  reason="API_KEY_MISSING")
        principal = self.keys.lookup(token) if self.keys else None
        if principal is None:
            raise Unauthenticated("unknown API key", reason="API_KEY_INVALID")
        if principal.role < Role.READER:
            raise PermissionDenied("role too low", reason="ROLE_TOO_LOW")
        return principal

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        return JSONResponse({"ready": True})

    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse({"name": "modelplane-serving", "version": "0.1.0",
                             "extensions": ["binary_tensor_data"]})

    async def metrics(self, request: Request) -> Response:
        self.plane.metrics.logging_queue.set(self.plane.logger.pending)
        return Response(generate_latest(self.plane.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    async def model_ready(self, request: Request) -> Response:
        try:
            principal = self._principal(request)
            rt = self.plane.runtime(request.path_params["name"])
            self.plane.check_infer(rt, principal)
        except ModelplaneError as exc:
            return _error(exc)
        ready = rt.state is DeploymentState.READY
        return JSONResponse({"name": rt.deployment.name, "ready": ready},
                            status_code=200 if ready else 400)

    async def model_metadata(self, request: Request) -> Response:
        try:
            principal = self._principal(request)
            rt = self.plane.runtime(request.path_params["name"])
            self.plane.check_infer(rt, principal)
        except ModelplaneError as exc:
            return _error(exc)
        d = rt.deployment
        key = d.ensemble_members()[0].key if d.ensemble else rt.routes[0].target.key
        model = rt.models.get(key)
        inputs: list[dict[str, Any]] = []
        if model is not None:
            sig = model.signature
            inputs = ([{"name": c.name, "datatype": _KIND_DATATYPE.get(c.kind, "FP64"),
                        "shape": [-1]} for c in sig.columns] if sig.columns
                      else [{"name": "input-0", "datatype": "FP64",
                             "shape": [-1, sig.width or -1]}])
        versions = sorted({m.version for m in rt.models.values()}, key=int)
        return JSONResponse({"name": d.name, "versions": versions, "platform": "bentoml",
                             "inputs": inputs,
                             "outputs": [{"name": "output-0", "datatype": "FP64",
                                          "shape": [-1]}]})

    async def infer(self, request: Request) -> Response:
        try:
            principal = self._principal(request)
            name = request.path_params["name"]
            self.plane.runtime(name)
            body = await request.body()
            header_len = request.headers.get("inference-header-content-length")
            if header_len is not None:
                n = int(header_len)
                head, binary = body[:n], body[n:]
            else:
                head, binary = body, b""
            try:
                payload = json.loads(head or b"{}")
            except ValueError:
                raise InvalidArgument("the request body is not JSON",
                                      reason="BODY_NOT_JSON") from None
            if not isinstance(payload, dict):
                raise InvalidArgument("the request body must be a JSON object",
                                      reason="BODY_NOT_OBJECT")
            tensors = []
            offset = 0
            for i, t in enumerate(payload.get("inputs") or []):
                tname = str(t.get("name", f"input-{i}"))
                datatype = str(t.get("datatype", "")).upper()
                if datatype not in DTYPES:
                    raise bad_tensor(tname, "datatype", f"unknown datatype {datatype!r}")
                shape = t.get("shape")
                if not isinstance(shape, list):
                    raise bad_tensor(tname, "shape", "shape must be a list of integers")
                size = (t.get("parameters") or {}).get("binary_data_size")
                if size is not None:
                    chunk = binary[offset:offset + int(size)]
                    if len(chunk) != int(size):
                        raise bad_tensor(tname, "contents", "binary data is shorter than "
                                         "binary_data_size")
                    offset += int(size)
                    tensors.append((tname, from_raw(tname, datatype, shape, chunk)))
                elif "data" in t:
                    tensors.append((tname, _json_tensor(tname, datatype, shape, t["data"])))
                else:
                    raise bad_tensor(tname, "data", "no data and no binary_data_size")
            params = dict(payload.get("parameters") or {})
            want_binary = bool(params.pop("binary_data_output", False)) or any(
                (o.get("parameters") or {}).get("binary_data")
                for o in payload.get("outputs") or [])
            resp = await self.plane.infer(
                InferenceRequest(name, to_model_input(tensors), str(payload.get("id", "")),
                                 params, {k.lower(): v for k, v in request.headers.items()},
                                 request.path_params.get("version", "")),
                principal)
        except ModelplaneError as exc:
            return _error(exc)
        outputs: list[dict[str, Any]] = []
        blobs: list[bytes] = []
        for oname, arr in resp.outputs:
            if want_binary:
                datatype, raw = output_raw(arr)
                outputs.append({"name": oname, "datatype": datatype, "shape": list(arr.shape),
                                "parameters": {"binary_data_size": len(raw)}})
                blobs.append(raw)
            else:
                data = arr.reshape(-1).tolist()
                outputs.append({"name": oname, "datatype": oip_datatype(arr),
                                "shape": list(arr.shape), "data": data})
        result: dict[str, Any] = {"model_name": resp.model_name,
                                  "model_version": resp.model_version,
                                  "parameters": resp.parameters, "outputs": outputs}
        if resp.request_id:
            result["id"] = resp.request_id
        head_bytes = json.dumps(result).encode()
        if not blobs:
            return Response(head_bytes, media_type="application/json")
        return Response(head_bytes + b"".join(blobs), media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(len(head_bytes))})
