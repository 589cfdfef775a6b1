"""The one exception base every modelplane service raises.

Domain code raises these; the kit's server interceptor maps them once to a
``google.rpc.Status`` (code, message, ``ErrorInfo`` and ``BadRequest``
details) and the gateway maps that status to HTTP. No grpc import here.

    ModelplaneError
     ├── InvalidArgument      400  bad request content (field violations)
     ├── FailedPrecondition   400  valid request, wrong state (e.g. gate not passed)
     ├── OutOfRange           400
     ├── Unauthenticated      401
     ├── PermissionDenied     403
     ├── NotFound             404
     ├── AlreadyExists        409
     ├── Aborted              409  concurrent modification
     ├── ResourceExhausted    429  quota, backpressure, oversized
     ├── Unimplemented        501
     ├── Internal             500
     ├── Unavailable          503  a dependency is down; retry later
     └── DeadlineExceeded     504
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its proto path (``dataset.feature_refs[2]``) and what is wrong."""

    field: str
    description: str


class ModelplaneError(Exception):
    """Base of all errors a service reports to its callers.

    ``message`` is shown to the caller as is: make it precise and free of
    secrets. ``reason`` is a stable UPPER_SNAKE identifier for machines;
    ``metadata`` names the offending resource (``{"model": "fraud"}``).
    """

    code: ClassVar[str] = "UNKNOWN"
    default_reason: ClassVar[str] = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = {k: str(v) for k, v in (metadata or {}).items()}
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r})"


class InvalidArgument(ModelplaneError):
    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"


class FailedPrecondition(ModelplaneError):
    code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class OutOfRange(ModelplaneError):
    code = "OUT_OF_RANGE"
    default_reason = "OUT_OF_RANGE"


class Unauthenticated(ModelplaneError):
    code = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(ModelplaneError):
    code = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class NotFound(ModelplaneError):
    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(ModelplaneError):
    code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class Aborted(ModelplaneError):
    code = "ABORTED"
    default_reason = "ABORTED"


class ResourceExhausted(ModelplaneError):
    code = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"


class Unimplemented(ModelplaneError):
    code = "UNIMPLEMENTED"
    default_reason = "NOT_IMPLEMENTED"


class Internal(ModelplaneError):
    code = "INTERNAL"
    default_reason = "INTERNAL"


class Unavailable(ModelplaneError):
    code = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(ModelplaneError):
    code = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"


ERRORS_BY_CODE: dict[str, type[ModelplaneError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument, FailedPrecondition, OutOfRange, Unauthenticated, PermissionDenied,
        NotFound, AlreadyExists, Aborted, ResourceExhausted, Unimplemented, Internal,
        Unavailable, DeadlineExceeded,
    )
}


def invalid(field: str, description: str, *, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    """Shorthand for the common one-field INVALID_ARGUMENT."""
    return InvalidArgument(f"{field}: {description}", reason=reason,
                           field_violations=[FieldViolation(field, description)])
