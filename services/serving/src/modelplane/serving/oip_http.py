"""Open Inference Protocol v2 over REST (with Triton's binary tensor extension) and /metrics.

A Starlette app over the same :class:`.predictor.Predictor` as the gRPC adapter, so
``tritonclient.http`` and KServe REST clients work unmodified. Keys are checked
the same way as on gRPC (``authorization: Bearer KEY``, role reader or more,
then the deployment's own rights). Health and /metrics need no key.

Each model route runs in a SERVER span continued from the caller's W3C
``traceparent`` (the gateway's span, when the request came through it), so the
feature lookup, the prediction and its log share the caller's trace.

Request bodies are bounded (``MODELPLANE_SERVING_MAX_BODY_BYTES``, by default
the gateway's 16 MiB), so the port can be reached directly, not only through
the gateway: a declared ``Content-Length`` over the limit is answered 413
before a byte of the body is read; a chunked body is counted as it arrives and
refused with 413 at the first chunk past the limit. What the client still
sends after that is discarded by the HTTP server as it arrives, never kept.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelplane.kit.auth import ANONYMOUS_ADMIN, ApiKeyStore, Principal, Role, bearer_token
from modelplane.kit.errors import (
    InvalidArgument,
    ModelplaneError,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from modelplane.kit.settings import DEFAULT_MAX_BODY_BYTES
from modelplane.serving.deployment import DeploymentState
from modelplane.serving.deployment_access import check_infer
from modelplane.serving.loaded_models import DeploymentRuntime
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
from modelplane.serving.predictor import InferenceRequest, Predictor

_HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
                "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
                "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
                "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}
_KIND_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "string": "BYTES"}


BODY_LIMIT_SETTING = "MODELPLANE_SERVING_MAX_BODY_BYTES"


class RequestTooLarge(ResourceExhausted):
    """A request body over the REST port's limit: HTTP 413, the gateway's reason."""

    default_reason = "REQUEST_TOO_LARGE"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"request body of {size} bytes or more exceeds the limit of {limit} "
                         f"bytes ({BODY_LIMIT_SETTING})",
                         metadata={"setting": BODY_LIMIT_SETTING, "limit": str(limit)})


def _error(exc: ModelplaneError) -> JSONResponse:
    status = 413 if isinstance(exc, RequestTooLarge) else _HTTP_STATUS.get(exc.code, 500)
    return JSONResponse({"error": exc.message, "reason": exc.reason}, status_code=status)


class BodyLimit:
    """ASGI middleware: no request body larger than ``max_bytes`` is read.

    A declared Content-Length over the limit gets 413 before the app runs. Otherwise
    the body is counted as the app receives it; the chunk that passes the limit
    raises :class:`RequestTooLarge` out of ``receive`` (a handler that maps
    ModelplaneError answers 413 itself; any other gets its 413 here).
    """

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1  # the HTTP server refuses such a request itself
                if declared > limit:
                    await _error(RequestTooLarge(declared, limit))(scope, receive, send)
                    return
        seen = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise RequestTooLarge(seen, limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except RequestTooLarge as exc:
            if started:
                raise
            await _error(exc)(scope, receive, send)


_Handler = Callable[[Any, Request], Awaitable[Response]]


def _traced(route: str) -> Callable[[_Handler], _Handler]:
    """Run a handler in a SERVER span that continues the caller's trace context."""
    def wrap(handler: _Handler) -> _Handler:
        @functools.wraps(handler)
        async def traced(self: Any, request: Request) -> Response:
            parent = propagate.extract(request.headers)
            tracer = trace.get_tracer("modelplane.serving.oip_http")
            with tracer.start_as_current_span(
                    f"{request.method} {route}", context=parent, kind=SpanKind.SERVER,
                    attributes={"http.request.method": request.method, "http.route": route,
                                "url.path": request.url.path},
                    record_exception=False, set_status_on_exception=True) as span:
                response = await handler(self, request)
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code >= 500:
                    span.set_status(StatusCode.ERROR)
                return response
        return traced
    return wrap


def _json_tensor(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    dt = numpy_dtype(name, datatype)
    try:
        if dt is np.object_:
            arr = np.array([str(x) for x in np.asarray(data, dtype=object).reshape(-1)],
                           dtype=object)
        else:
            arr = np.asarray(data, dtype=dt).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise bad_tensor(name, "data", f"data is not {datatype}: {exc}") from None
    return reshape(name, arr, shape)


def _parse_infer(body: bytes, header_len: str | None
                 ) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any], bool, str]:
    """An OIP REST inference body: (tensors, parameters, binary output wanted, id).
    Anything malformed is INVALID_ARGUMENT, never an exception from deep inside."""
    try:
        return _parse_infer_unchecked(body, header_len)
    except ModelplaneError:
        raise
    except (TypeError, ValueError, AttributeError, OverflowError, RecursionError,
            MemoryError) as exc:
        raise InvalidArgument(f"malformed inference request: {type(exc).__name__}: "
                              f"{str(exc)[:200]}", reason="REQUEST_MALFORMED") from None


def _parse_infer_unchecked(body: bytes, header_len: str | None
                           ) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any], bool, str]:
    if header_len is not None:
        try:
            n = int(header_len)
        except ValueError:
            n = -1
        if not 0 <= n <= len(body):
            raise InvalidArgument("Inference-Header-Content-Length must be an integer between "
                                  f"0 and the body length ({len(body)})",
                                  reason="HEADER_LENGTH_INVALID")
        head, binary = body[:n], body[n:]
    else:
        head, binary = body, b""
    try:
        payload = json.loads(head or b"{}")
    except ValueError:
        raise InvalidArgument("the request body is not JSON", reason="BODY_NOT_JSON") from None
    if not isinstance(payload, dict):
        raise InvalidArgument("the request body must be a JSON object", reason="BODY_NOT_OBJECT")
    inputs = payload.get("inputs") or []
    if not isinstance(inputs, list) or not all(isinstance(t, dict) for t in inputs):
        raise InvalidArgument("'inputs' must be a list of tensor objects",
                              reason="INPUTS_INVALID")
    tensors = []
    offset = 0
    for i, t in enumerate(inputs):
        tname = str(t.get("name", f"input-{i}"))
        datatype = str(t.get("datatype", "")).upper()
        if datatype not in DTYPES:
            raise bad_tensor(tname, "datatype", f"unknown datatype {datatype!r}")
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise bad_tensor(tname, "shape", "shape must be a list of integers")
        tparams = t.get("parameters") or {}
        if not isinstance(tparams, dict):
            raise bad_tensor(tname, "parameters", "parameters must be an object")
        size = tparams.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise bad_tensor(tname, "parameters", "binary_data_size must be a "
                                 "non-negative integer")
            chunk = binary[offset:offset + size]
            if len(chunk) != size:
                raise bad_tensor(tname, "contents", "binary data is shorter than "
                                 "binary_data_size")
            offset += size
            tensors.append((tname, from_raw(tname, datatype, shape, chunk)))
        elif "data" in t:
            tensors.append((tname, _json_tensor(tname, datatype, shape, t["data"])))
        else:
            raise bad_tensor(tname, "data", "no data and no binary_data_size")
    params = payload.get("parameters") or {}
    outputs = payload.get("outputs") or []
    if not isinstance(params, dict):
        raise InvalidArgument("'parameters' must be an object", reason="PARAMETERS_INVALID")
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise InvalidArgument("'outputs' must be a list of objects", reason="OUTPUTS_INVALID")
    params = dict(params)
    want_binary = bool(params.pop("binary_data_output", False)) or any(
        isinstance(o.get("parameters"), dict) and o["parameters"].get("binary_data")
        for o in outputs)
    return tensors, params, want_binary, str(payload.get("id", ""))


class OipHttpApp:
    def __init__(self, predictor: Predictor, *, auth_enabled: bool,
                 keys: ApiKeyStore | None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.predictor = predictor
        self.auth_enabled = auth_enabled
        self.keys = keys
        self.max_body_bytes = max_body_bytes
        self.app = Starlette(middleware=[Middleware(BodyLimit, max_bytes=max_body_bytes)],
                             routes=[
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
        if self.keys is None:
            raise Unauthenticated("unknown API key", reason="API_KEY_INVALID")
        principal = self.keys.authenticate(token)  # unknown or expired: it says which
        if principal.role < Role.READER:
            raise PermissionDenied("role too low", reason="ROLE_TOO_LOW")
        return principal

    def _inferable(self, request: Request) -> DeploymentRuntime:
        """The deployment the path names, once the caller is known and may call it (the
        model's ready and metadata routes)."""
        principal = self._principal(request)  # first: an unknown caller learns no names
        rt = self.predictor.models.runtime(request.path_params["name"])
        check_infer(rt, principal)
        return rt

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        # Beyond OIP's field: the generation each deployment is served at on this replica
        # and the retry state of the registry stream and the deployment change feed.
        return JSONResponse({"ready": True, **self.predictor.models.readiness()})

    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse({"name": "modelplane-serving", "version": "0.1.0",
                             "extensions": ["binary_tensor_data"]})

    async def metrics(self, request: Request) -> Response:
        self.predictor.metrics.logging_queue.set(self.predictor.logger.pending)
        return Response(generate_latest(self.predictor.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    @_traced("/v2/models/{name}/ready")
    async def model_ready(self, request: Request) -> Response:
        try:
            rt = self._inferable(request)
        except ModelplaneError as exc:
            return _error(exc)
        ready = rt.state is DeploymentState.READY
        body: dict[str, Any] = {"name": rt.deployment.name, "ready": ready,
                                "generation": rt.deployment.generation}
        if not ready:  # beyond OIP's two fields: why, and what it waits for
            body["state"] = rt.state.value
            body["reason"] = rt.state_message
        return JSONResponse(body, status_code=200 if ready else 400)

    @_traced("/v2/models/{name}")
    async def model_metadata(self, request: Request) -> Response:
        try:
            rt = self._inferable(request)
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

    @_traced("/v2/models/{name}/infer")
    async def infer(self, request: Request) -> Response:
        try:
            principal = self._principal(request)
            name = request.path_params["name"]
            self.predictor.models.runtime(name)
            body = await request.body()
            tensors, params, want_binary, request_id = _parse_infer(
                body, request.headers.get("inference-header-content-length"))
            resp = await self.predictor.infer(
                InferenceRequest(name, to_model_input(tensors), request_id,
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
