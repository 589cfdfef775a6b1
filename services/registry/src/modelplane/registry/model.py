"""The registry's domain objects: what a model, a version, an alias and an event are.

Transport-neutral (no grpc, no protobuf). ``api.py`` translates them to the
``modelplane.registry.v1`` messages; ``mlflow_store.py`` builds them from MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")


class ValidationStatus(Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


class VersionStatus(Enum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class ChangeOrigin(Enum):
    GRPC = "GRPC"
    MLFLOW = "MLFLOW"


class EventType(Enum):
    WATCH_STARTED = "WATCH_STARTED"
    MODEL_CREATED = "MODEL_CREATED"
    MODEL_UPDATED = "MODEL_UPDATED"
    MODEL_DELETED = "MODEL_DELETED"
    VERSION_CREATED = "VERSION_CREATED"
    VERSION_UPDATED = "VERSION_UPDATED"
    VERSION_DELETED = "VERSION_DELETED"
    ALIAS_SET = "ALIAS_SET"
    ALIAS_DELETED = "ALIAS_DELETED"
    VALIDATION_ATTACHED = "VALIDATION_ATTACHED"


@dataclass(frozen=True)
class SignatureField:
    name: str
    type: str
    required: bool = True
    tensor_dtype: str = ""
    tensor_shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Signature:
    inputs: tuple[SignatureField, ...] = ()
    outputs: tuple[SignatureField, ...] = ()
    inputs_json: str = ""
    outputs_json: str = ""
    params_json: str = ""


@dataclass(frozen=True)
class Lineage:
    run_id: str = ""
    experiment_id: str = ""
    dataset_id: str = ""
    feature_refs: tuple[str, ...] = ()
    code_version: str = ""
    signature: Signature | None = None


@dataclass(frozen=True)
class ValidationSummary:
    report_id: str
    status: ValidationStatus
    report_uri: str = ""
    summary: str = ""
    attach_time: datetime | None = None
    attached_by: str = ""

    @property
    def passed(self) -> bool:
        return self.status is ValidationStatus.PASS


@dataclass(frozen=True)
class ModelVersion:
    model_name: str
    version: int
    description: str = ""
    source: str = ""
    status: VersionStatus = VersionStatus.READY
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    lineage: Lineage = Lineage()
    validation: ValidationSummary | None = None
    creator: str = ""
    logged_model_id: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class Alias:
    model_name: str
    alias: str
    version: int
    protected: bool = False
    update_time: datetime | None = None
    updated_by: str = ""


@dataclass(frozen=True)
class Model:
    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    aliases: tuple[Alias, ...] = ()
    latest_version: int = 0
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class AliasChange:
    model_name: str
    alias: str
    from_version: int
    to_version: int
    principal: str
    origin: ChangeOrigin
    reason: str = ""
    override: bool = False
    validation: ValidationSummary | None = None
    change_time: datetime | None = None
    id: int = 0


@dataclass(frozen=True)
class ModelEvent:
    sequence: int
    type: EventType
    model_name: str = ""
    version: int = 0
    alias: str = ""
    principal: str = ""
    origin: ChangeOrigin | None = None
    event_time: datetime | None = None
    alias_change: AliasChange | None = None
    validation: ValidationSummary | None = None


@dataclass(frozen=True)
class ResolvedModel:
    """What ``models:/name@alias`` or ``models:/name/3`` stands for right now."""

    model_version: ModelVersion
    alias: str
    version_uri: str
    download_uri: str
    tracking_uri: str


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str = ""
