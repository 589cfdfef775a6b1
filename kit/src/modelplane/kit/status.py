"""ModelplaneError ⇄ google.rpc.Status, for servers and clients."""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from modelplane.kit.errors import ERRORS_BY_CODE, FieldViolation, ModelplaneError

DETAILS_KEY = "grpc-status-details-bin"


def grpc_code(error: ModelplaneError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN)


def to_status(error: ModelplaneError, domain: str) -> status_pb2.Status:
    """The rich status: ErrorInfo always, BadRequest when fields are named."""
    code = grpc_code(error)
    status = status_pb2.Status(code=code.value[0], message=error.message)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain,
                                       metadata=error.metadata)
    packed = any_pb2.Any()
    packed.Pack(info)
    status.details.append(packed)
    if error.field_violations:
        bad = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.field_violations])
        packed = any_pb2.Any()
        packed.Pack(bad)
        status.details.append(packed)
    return status


def status_from_metadata(code: grpc.StatusCode, message: str,
                         trailing: object) -> status_pb2.Status:
    """The google.rpc.Status a call ended with (from its trailers, else code+message)."""
    for key, value in trailing or ():  # type: ignore[attr-defined]
        if key == DETAILS_KEY:
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return status_pb2.Status(code=code.value[0], message=message or "")


def error_from_status(status: status_pb2.Status) -> ModelplaneError:
    name = code_pb2.Code.Name(status.code) if status.code in code_pb2.Code.values() else "UNKNOWN"
    cls = ERRORS_BY_CODE.get(name, ModelplaneError)
    reason, metadata, violations = None, {}, []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return cls(status.message, reason=reason, metadata=metadata, field_violations=violations)


def raise_from_rpc_error(err: grpc.aio.AioRpcError | grpc.RpcError) -> NoReturn:
    """Re-raise a peer's failure as the matching ModelplaneError (details kept)."""
    code = err.code()
    status = status_from_metadata(code, err.details() or "", err.trailing_metadata())
    raise error_from_status(status) from err
