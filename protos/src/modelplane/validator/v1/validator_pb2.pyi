import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_TYPE_UNSPECIFIED: _ClassVar[TaskType]
    TASK_TYPE_CLASSIFICATION: _ClassVar[TaskType]
    TASK_TYPE_REGRESSION: _ClassVar[TaskType]

class CheckStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECK_STATUS_UNSPECIFIED: _ClassVar[CheckStatus]
    CHECK_STATUS_PASS: _ClassVar[CheckStatus]
    CHECK_STATUS_WARN: _ClassVar[CheckStatus]
    CHECK_STATUS_FAIL: _ClassVar[CheckStatus]
    CHECK_STATUS_SKIPPED: _ClassVar[CheckStatus]
    CHECK_STATUS_ERROR: _ClassVar[CheckStatus]

class ThresholdBound(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    THRESHOLD_BOUND_UNSPECIFIED: _ClassVar[ThresholdBound]
    THRESHOLD_BOUND_LOWER: _ClassVar[ThresholdBound]
    THRESHOLD_BOUND_UPPER: _ClassVar[ThresholdBound]

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_PENDING: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_SUCCEEDED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_CANCELLED: _ClassVar[RunState]
TASK_TYPE_UNSPECIFIED: TaskType
TASK_TYPE_CLASSIFICATION: TaskType
TASK_TYPE_REGRESSION: TaskType
CHECK_STATUS_UNSPECIFIED: CheckStatus
CHECK_STATUS_PASS: CheckStatus
CHECK_STATUS_WARN: CheckStatus
CHECK_STATUS_FAIL: CheckStatus
CHECK_STATUS_SKIPPED: CheckStatus
CHECK_STATUS_ERROR: CheckStatus
THRESHOLD_BOUND_UNSPECIFIED: ThresholdBound
THRESHOLD_BOUND_LOWER: ThresholdBound
THRESHOLD_BOUND_UPPER: ThresholdBound
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_PENDING: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_SUCCEEDED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_CANCELLED: RunState

class DatasetRef(_message.Message):
    __slots__ = ("dataset", "parquet_uri")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PARQUET_URI_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    parquet_uri: str
    def __init__(self, dataset: _Optional[str] = ..., parquet_uri: _Optional[str] = ...) -> None: ...

class CheckConfig(_message.Message):
    __slots__ = ("check", "thresholds", "warn_thresholds", "params")
    class ThresholdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class WarnThresholdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHECK_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    WARN_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    check: str
    thresholds: _containers.ScalarMap[str, float]
    warn_thresholds: _containers.ScalarMap[str, float]
    params: _containers.ScalarMap[str, str]
    def __init__(self, check: _Optional[str] = ..., thresholds: _Optional[_Mapping[str, float]] = ..., warn_thresholds: _Optional[_Mapping[str, float]] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ValidationPolicy(_message.Message):
    __slots__ = ("checks", "label_column", "task", "positive_class", "slice_columns", "protected_attributes", "feature_columns", "event_timestamp_column", "feature_timestamp_columns", "entity_columns", "seed", "sample_rows")
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_CLASS_FIELD_NUMBER: _ClassVar[int]
    SLICE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIMESTAMP_COLUMN_FIELD_NUMBER: _ClassVar[int]
    FEATURE_TIMESTAMP_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ENTITY_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_ROWS_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedCompositeFieldContainer[CheckConfig]
    label_column: str
    task: TaskType
    positive_class: str
    slice_columns: _containers.RepeatedScalarFieldContainer[str]
    protected_attributes: _containers.RepeatedScalarFieldContainer[str]
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    event_timestamp_column: str
    feature_timestamp_columns: _containers.RepeatedScalarFieldContainer[str]
    entity_columns: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    sample_rows: int
    def __init__(self, checks: _Optional[_Iterable[_Union[CheckConfig, _Mapping]]] = ..., label_column: _Optional[str] = ..., task: _Optional[_Union[TaskType, str]] = ..., positive_class: _Optional[str] = ..., slice_columns: _Optional[_Iterable[str]] = ..., protected_attributes: _Optional[_Iterable[str]] = ..., feature_columns: _Optional[_Iterable[str]] = ..., event_timestamp_column: _Optional[str] = ..., feature_timestamp_columns: _Optional[_Iterable[str]] = ..., entity_columns: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., sample_rows: _Optional[int] = ...) -> None: ...

class Measurement(_message.Message):
    __slots__ = ("name", "subject", "value", "baseline_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    subject: str
    value: float
    baseline_value: float
    def __init__(self, name: _Optional[str] = ..., subject: _Optional[str] = ..., value: _Optional[float] = ..., baseline_value: _Optional[float] = ...) -> None: ...

class ThresholdOutcome(_message.Message):
    __slots__ = ("name", "bound", "limit", "warn_limit", "measured", "subject", "status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WARN_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    bound: ThresholdBound
    limit: float
    warn_limit: float
    measured: float
    subject: str
    status: CheckStatus
    def __init__(self, name: _Optional[str] = ..., bound: _Optional[_Union[ThresholdBound, str]] = ..., limit: _Optional[float] = ..., warn_limit: _Optional[float] = ..., measured: _Optional[float] = ..., subject: _Optional[str] = ..., status: _Optional[_Union[CheckStatus, str]] = ...) -> None: ...

class SliceResult(_message.Message):
    __slots__ = ("column", "value", "row_count", "measurements", "status")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    column: str
    value: str
    row_count: int
    measurements: _containers.RepeatedCompositeFieldContainer[Measurement]
    status: CheckStatus
    def __init__(self, column: _Optional[str] = ..., value: _Optional[str] = ..., row_count: _Optional[int] = ..., measurements: _Optional[_Iterable[_Union[Measurement, _Mapping]]] = ..., status: _Optional[_Union[CheckStatus, str]] = ...) -> None: ...

class CheckResult(_message.Message):
    __slots__ = ("check", "status", "message", "measurements", "thresholds", "slices", "findings", "params", "duration")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHECK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    check: str
    status: CheckStatus
    message: str
    measurements: _containers.RepeatedCompositeFieldContainer[Measurement]
    thresholds: _containers.RepeatedCompositeFieldContainer[ThresholdOutcome]
    slices: _containers.RepeatedCompositeFieldContainer[SliceResult]
    findings: _containers.RepeatedScalarFieldContainer[str]
    params: _containers.ScalarMap[str, str]
    duration: _duration_pb2.Duration
    def __init__(self, check: _Optional[str] = ..., status: _Optional[_Union[CheckStatus, str]] = ..., message: _Optional[str] = ..., measurements: _Optional[_Iterable[_Union[Measurement, _Mapping]]] = ..., thresholds: _Optional[_Iterable[_Union[ThresholdOutcome, _Mapping]]] = ..., slices: _Optional[_Iterable[_Union[SliceResult, _Mapping]]] = ..., findings: _Optional[_Iterable[str]] = ..., params: _Optional[_Mapping[str, str]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ValidationReport(_message.Message):
    __slots__ = ("id", "run_id", "model", "version", "baseline_version", "dataset", "training_dataset", "policy", "status", "summary", "checks", "task", "row_count", "dataset_sha256", "model_uri", "create_time", "duration", "report_uri")
    ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATASET_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    DATASET_SHA256_FIELD_NUMBER: _ClassVar[int]
    MODEL_URI_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    REPORT_URI_FIELD_NUMBER: _ClassVar[int]
    id: str
    run_id: str
    model: str
    version: str
    baseline_version: str
    dataset: DatasetRef
    training_dataset: DatasetRef
    policy: ValidationPolicy
    status: CheckStatus
    summary: str
    checks: _containers.RepeatedCompositeFieldContainer[CheckResult]
    task: TaskType
    row_count: int
    dataset_sha256: str
    model_uri: str
    create_time: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    report_uri: str
    def __init__(self, id: _Optional[str] = ..., run_id: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., baseline_version: _Optional[str] = ..., dataset: _Optional[_Union[DatasetRef, _Mapping]] = ..., training_dataset: _Optional[_Union[DatasetRef, _Mapping]] = ..., policy: _Optional[_Union[ValidationPolicy, _Mapping]] = ..., status: _Optional[_Union[CheckStatus, str]] = ..., summary: _Optional[str] = ..., checks: _Optional[_Iterable[_Union[CheckResult, _Mapping]]] = ..., task: _Optional[_Union[TaskType, str]] = ..., row_count: _Optional[int] = ..., dataset_sha256: _Optional[str] = ..., model_uri: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., report_uri: _Optional[str] = ...) -> None: ...

class RunProgress(_message.Message):
    __slots__ = ("checks_total", "checks_done", "current_check", "fraction", "stage")
    CHECKS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CHECKS_DONE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_CHECK_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    checks_total: int
    checks_done: int
    current_check: str
    fraction: float
    stage: str
    def __init__(self, checks_total: _Optional[int] = ..., checks_done: _Optional[int] = ..., current_check: _Optional[str] = ..., fraction: _Optional[float] = ..., stage: _Optional[str] = ...) -> None: ...

class ValidationRun(_message.Message):
    __slots__ = ("id", "model", "version", "baseline_version", "skip_baseline", "dataset", "training_dataset", "policy", "policy_text", "state", "progress", "report_id", "report_status", "error", "resolved_baseline_version", "registry_attached", "observability_baseline_set", "notes", "creator", "create_time", "start_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SKIP_BASELINE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATASET_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    POLICY_TEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BASELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_ATTACHED_FIELD_NUMBER: _ClassVar[int]
    OBSERVABILITY_BASELINE_SET_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    version: str
    baseline_version: str
    skip_baseline: bool
    dataset: DatasetRef
    training_dataset: DatasetRef
    policy: ValidationPolicy
    policy_text: str
    state: RunState
    progress: RunProgress
    report_id: str
    report_status: CheckStatus
    error: _status_pb2.Status
    resolved_baseline_version: str
    registry_attached: bool
    observability_baseline_set: bool
    notes: _containers.RepeatedScalarFieldContainer[str]
    creator: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., baseline_version: _Optional[str] = ..., skip_baseline: _Optional[bool] = ..., dataset: _Optional[_Union[DatasetRef, _Mapping]] = ..., training_dataset: _Optional[_Union[DatasetRef, _Mapping]] = ..., policy: _Optional[_Union[ValidationPolicy, _Mapping]] = ..., policy_text: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., progress: _Optional[_Union[RunProgress, _Mapping]] = ..., report_id: _Optional[str] = ..., report_status: _Optional[_Union[CheckStatus, str]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., resolved_baseline_version: _Optional[str] = ..., registry_attached: _Optional[bool] = ..., observability_baseline_set: _Optional[bool] = ..., notes: _Optional[_Iterable[str]] = ..., creator: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateValidationRunRequest(_message.Message):
    __slots__ = ("validation_run",)
    VALIDATION_RUN_FIELD_NUMBER: _ClassVar[int]
    validation_run: ValidationRun
    def __init__(self, validation_run: _Optional[_Union[ValidationRun, _Mapping]] = ...) -> None: ...

class GetValidationRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListValidationRunsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "model", "version", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    model: str
    version: str
    state: RunState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ...) -> None: ...

class ListValidationRunsResponse(_message.Message):
    __slots__ = ("validation_runs", "next_page_token")
    VALIDATION_RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    validation_runs: _containers.RepeatedCompositeFieldContainer[ValidationRun]
    next_page_token: str
    def __init__(self, validation_runs: _Optional[_Iterable[_Union[ValidationRun, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchValidationRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelValidationRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetValidationReportRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListValidationReportsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "model", "version", "status", "full_view")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FULL_VIEW_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    model: str
    version: str
    status: CheckStatus
    full_view: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[_Union[CheckStatus, str]] = ..., full_view: _Optional[bool] = ...) -> None: ...

class ListValidationReportsResponse(_message.Message):
    __slots__ = ("validation_reports", "next_page_token")
    VALIDATION_REPORTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    validation_reports: _containers.RepeatedCompositeFieldContainer[ValidationReport]
    next_page_token: str
    def __init__(self, validation_reports: _Optional[_Iterable[_Union[ValidationReport, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ThresholdSpec(_message.Message):
    __slots__ = ("name", "bound", "default_limit", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    bound: ThresholdBound
    default_limit: float
    description: str
    def __init__(self, name: _Optional[str] = ..., bound: _Optional[_Union[ThresholdBound, str]] = ..., default_limit: _Optional[float] = ..., description: _Optional[str] = ...) -> None: ...

class ParameterSpec(_message.Message):
    __slots__ = ("name", "default_value", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    default_value: str
    description: str
    def __init__(self, name: _Optional[str] = ..., default_value: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class CheckDescriptor(_message.Message):
    __slots__ = ("name", "title", "description", "thresholds", "params", "requires", "tasks")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    description: str
    thresholds: _containers.RepeatedCompositeFieldContainer[ThresholdSpec]
    params: _containers.RepeatedCompositeFieldContainer[ParameterSpec]
    requires: _containers.RepeatedScalarFieldContainer[str]
    tasks: _containers.RepeatedScalarFieldContainer[TaskType]
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., thresholds: _Optional[_Iterable[_Union[ThresholdSpec, _Mapping]]] = ..., params: _Optional[_Iterable[_Union[ParameterSpec, _Mapping]]] = ..., requires: _Optional[_Iterable[str]] = ..., tasks: _Optional[_Iterable[_Union[TaskType, str]]] = ...) -> None: ...

class ListChecksRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListChecksResponse(_message.Message):
    __slots__ = ("checks", "next_page_token")
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedCompositeFieldContainer[CheckDescriptor]
    next_page_token: str
    def __init__(self, checks: _Optional[_Iterable[_Union[CheckDescriptor, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
