"""gRPC status -> HTTP: the grpc-gateway mapping, and the JSON error body.

The body is the JSON form of ``google.rpc.Status``::

    {"code": 5, "message": "model 'fraud' not found",
     "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": ..., ...}]}

with the details the service put in the ``grpc-status-details-bin`` trailer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

from modelplane.gateway.request_builder import Violation

log = logging.getLogger(__name__)

DOMAIN = "gateway.modelplane.dev"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

HTTP_STATUS: dict[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
    code_pb2.UNAUTHENTICATED: 401,
}


def http_status(code: int) -> int:
    return HTTP_STATUS.get(code, 500)


def status_from_rpc_error(error: grpc.aio.AioRpcError, backend: str) -> status_pb2.Status:
    """The ``google.rpc.Status`` a service returned, details included.

    Errors raised by the gRPC transport itself (no status details: the backend is
    down, a connection broke) keep their code, but their text - which names
    internal addresses - is replaced by one saying which service failed.
    """
    code = error.code().value[0]
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:  # noqa: BLE001 - a garbled trailer: fall back to code + message
                log.warning("unparseable %s trailer from %s", STATUS_DETAILS_KEY, backend)
                break
            if status.code == code:
                return status
            break
    message = error.details() or ""
    if code in (code_pb2.UNAVAILABLE, code_pb2.DEADLINE_EXCEEDED, code_pb2.CANCELLED,
                code_pb2.INTERNAL, code_pb2.UNKNOWN, code_pb2.RESOURCE_EXHAUSTED) and \
            _looks_like_transport(message):
        log.warning("call to %s failed: %s", backend, message)
        reasons = {code_pb2.UNAVAILABLE: "SERVICE_UNAVAILABLE",
                   code_pb2.DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
                   code_pb2.RESOURCE_EXHAUSTED: "MESSAGE_TOO_LARGE"}
        texts = {code_pb2.UNAVAILABLE: f"service {backend!r} is unavailable",
                 code_pb2.DEADLINE_EXCEEDED: f"service {backend!r} did not answer in time",
                 code_pb2.RESOURCE_EXHAUSTED: f"a message to or from {backend!r} is too large"}
        return make_status(code, texts.get(code, f"call to service {backend!r} failed"),
                           reason=reasons.get(code, "BACKEND_ERROR"), metadata={"service": backend})
    return status_pb2.Status(code=code, message=message)


def _looks_like_transport(message: str) -> bool:
    lowered = message.lower()
    return any(s in lowered for s in (
        "failed to connect", "connection refused", "connect failed", "ipv4:", "ipv6:",
        "unix:", "socket closed", "deadline exceeded", "received message larger",
        "sent message larger", "goaway", "stream removed", "connection reset", "dns resolution",
        "channel closed", "cancelled", "unexpected error", "unknown error", "exception calling",
    )) or not message


def make_status(code: int, message: str, *, reason: str, metadata: Mapping[str, str] | None = None,
                violations: Iterable[Violation] = ()) -> status_pb2.Status:
    """A gateway-made status with ErrorInfo (and BadRequest for field violations)."""
    status = status_pb2.Status(code=code, message=message)
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata or {}))
    status.details.add().Pack(info)
    violations = list(violations)
    if violations:
        bad = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations])
        status.details.add().Pack(bad)
    return status


def _detail_json(detail: any_pb2.Any, proto_names: bool) -> dict[str, Any]:
    try:
        as_dict: dict[str, Any] = json_format.MessageToDict(
            detail, preserving_proto_field_name=proto_names)
        return as_dict
    except (TypeError, KeyError, json_format.Error):
        # A detail type this process has no descriptor for: keep it, undecoded.
        import base64

        return {"@type": detail.type_url, "value": base64.b64encode(detail.value).decode()}


def status_json(status: status_pb2.Status, proto_names: bool = True) -> dict[str, Any]:
    """JSON of a status; detail field names follow the gateway's naming (``field_violations``
    with proto names, ``fieldViolations`` with JSON names)."""
    return {
        "code": status.code,
        "message": status.message,
        "details": [_detail_json(d, proto_names) for d in status.details],
    }
