import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from modelplane.api.v1 import annotations_pb2 as _annotations_pb2_1
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RolloutMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_METRIC_UNSPECIFIED: _ClassVar[RolloutMetric]
    ROLLOUT_METRIC_ACCURACY: _ClassVar[RolloutMetric]
    ROLLOUT_METRIC_MAE: _ClassVar[RolloutMetric]
    ROLLOUT_METRIC_PRECISION: _ClassVar[RolloutMetric]
    ROLLOUT_METRIC_RECALL: _ClassVar[RolloutMetric]

class RolloutState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_STATE_UNSPECIFIED: _ClassVar[RolloutState]
    ROLLOUT_STATE_RUNNING: _ClassVar[RolloutState]
    ROLLOUT_STATE_PAUSED: _ClassVar[RolloutState]
    ROLLOUT_STATE_PROMOTING: _ClassVar[RolloutState]
    ROLLOUT_STATE_PROMOTED: _ClassVar[RolloutState]
    ROLLOUT_STATE_ROLLED_BACK: _ClassVar[RolloutState]
    ROLLOUT_STATE_ABORTED: _ClassVar[RolloutState]
    ROLLOUT_STATE_FAILED: _ClassVar[RolloutState]

class RolloutEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_EVENT_TYPE_UNSPECIFIED: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_CREATED: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_STEP_STARTED: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_WAITING: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_PAUSED: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_RESUMED: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_PROMOTING: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_PROMOTED: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_ROLLED_BACK: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_ABORTED: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_FAILED: _ClassVar[RolloutEventType]
    ROLLOUT_EVENT_TYPE_ALERT: _ClassVar[RolloutEventType]

class EnsembleMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENSEMBLE_METHOD_UNSPECIFIED: _ClassVar[EnsembleMethod]
    ENSEMBLE_METHOD_AVERAGE: _ClassVar[EnsembleMethod]
    ENSEMBLE_METHOD_VOTE: _ClassVar[EnsembleMethod]
    ENSEMBLE_METHOD_CHAIN: _ClassVar[EnsembleMethod]

class PredictionLogging(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREDICTION_LOGGING_UNSPECIFIED: _ClassVar[PredictionLogging]
    PREDICTION_LOGGING_ON: _ClassVar[PredictionLogging]
    PREDICTION_LOGGING_OFF: _ClassVar[PredictionLogging]

class DeploymentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOYMENT_STATE_UNSPECIFIED: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_LOADING: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_READY: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_FAILED: _ClassVar[DeploymentState]

class BatchJobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_JOB_STATE_UNSPECIFIED: _ClassVar[BatchJobState]
    BATCH_JOB_STATE_PENDING: _ClassVar[BatchJobState]
    BATCH_JOB_STATE_RUNNING: _ClassVar[BatchJobState]
    BATCH_JOB_STATE_SUCCEEDED: _ClassVar[BatchJobState]
    BATCH_JOB_STATE_FAILED: _ClassVar[BatchJobState]
ROLLOUT_METRIC_UNSPECIFIED: RolloutMetric
ROLLOUT_METRIC_ACCURACY: RolloutMetric
ROLLOUT_METRIC_MAE: RolloutMetric
ROLLOUT_METRIC_PRECISION: RolloutMetric
ROLLOUT_METRIC_RECALL: RolloutMetric
ROLLOUT_STATE_UNSPECIFIED: RolloutState
ROLLOUT_STATE_RUNNING: RolloutState
ROLLOUT_STATE_PAUSED: RolloutState
ROLLOUT_STATE_PROMOTING: RolloutState
ROLLOUT_STATE_PROMOTED: RolloutState
ROLLOUT_STATE_ROLLED_BACK: RolloutState
ROLLOUT_STATE_ABORTED: RolloutState
ROLLOUT_STATE_FAILED: RolloutState
ROLLOUT_EVENT_TYPE_UNSPECIFIED: RolloutEventType
ROLLOUT_EVENT_TYPE_CREATED: RolloutEventType
ROLLOUT_EVENT_TYPE_STEP_STARTED: RolloutEventType
ROLLOUT_EVENT_TYPE_WAITING: RolloutEventType
ROLLOUT_EVENT_TYPE_PAUSED: RolloutEventType
ROLLOUT_EVENT_TYPE_RESUMED: RolloutEventType
ROLLOUT_EVENT_TYPE_PROMOTING: RolloutEventType
ROLLOUT_EVENT_TYPE_PROMOTED: RolloutEventType
ROLLOUT_EVENT_TYPE_ROLLED_BACK: RolloutEventType
ROLLOUT_EVENT_TYPE_ABORTED: RolloutEventType
ROLLOUT_EVENT_TYPE_FAILED: RolloutEventType
ROLLOUT_EVENT_TYPE_ALERT: RolloutEventType
ENSEMBLE_METHOD_UNSPECIFIED: EnsembleMethod
ENSEMBLE_METHOD_AVERAGE: EnsembleMethod
ENSEMBLE_METHOD_VOTE: EnsembleMethod
ENSEMBLE_METHOD_CHAIN: EnsembleMethod
PREDICTION_LOGGING_UNSPECIFIED: PredictionLogging
PREDICTION_LOGGING_ON: PredictionLogging
PREDICTION_LOGGING_OFF: PredictionLogging
DEPLOYMENT_STATE_UNSPECIFIED: DeploymentState
DEPLOYMENT_STATE_LOADING: DeploymentState
DEPLOYMENT_STATE_READY: DeploymentState
DEPLOYMENT_STATE_FAILED: DeploymentState
BATCH_JOB_STATE_UNSPECIFIED: BatchJobState
BATCH_JOB_STATE_PENDING: BatchJobState
BATCH_JOB_STATE_RUNNING: BatchJobState
BATCH_JOB_STATE_SUCCEEDED: BatchJobState
BATCH_JOB_STATE_FAILED: BatchJobState

class RolloutStep(_message.Message):
    __slots__ = ("weight", "min_duration", "min_samples")
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_DURATION_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    weight: float
    min_duration: _duration_pb2.Duration
    min_samples: int
    def __init__(self, weight: _Optional[float] = ..., min_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., min_samples: _Optional[int] = ...) -> None: ...

class QualityCheck(_message.Message):
    __slots__ = ("metric", "margin", "positive_class")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_CLASS_FIELD_NUMBER: _ClassVar[int]
    metric: RolloutMetric
    margin: float
    positive_class: str
    def __init__(self, metric: _Optional[_Union[RolloutMetric, str]] = ..., margin: _Optional[float] = ..., positive_class: _Optional[str] = ...) -> None: ...

class RolloutCheck(_message.Message):
    __slots__ = ("quality", "slice", "proxy", "operations")
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    PROXY_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    quality: QualityCheck
    slice: SliceCheck
    proxy: ProxyCheck
    operations: OperationsCheck
    def __init__(self, quality: _Optional[_Union[QualityCheck, _Mapping]] = ..., slice: _Optional[_Union[SliceCheck, _Mapping]] = ..., proxy: _Optional[_Union[ProxyCheck, _Mapping]] = ..., operations: _Optional[_Union[OperationsCheck, _Mapping]] = ...) -> None: ...

class ProxyCheck(_message.Message):
    __slots__ = ("max_prediction_drift", "min_records", "estimated_accuracy", "estimated_margin", "advance_without_actuals")
    MAX_PREDICTION_DRIFT_FIELD_NUMBER: _ClassVar[int]
    MIN_RECORDS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_MARGIN_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_WITHOUT_ACTUALS_FIELD_NUMBER: _ClassVar[int]
    max_prediction_drift: float
    min_records: int
    estimated_accuracy: bool
    estimated_margin: float
    advance_without_actuals: bool
    def __init__(self, max_prediction_drift: _Optional[float] = ..., min_records: _Optional[int] = ..., estimated_accuracy: _Optional[bool] = ..., estimated_margin: _Optional[float] = ..., advance_without_actuals: _Optional[bool] = ...) -> None: ...

class OperationsCheck(_message.Message):
    __slots__ = ("error_rate_margin", "fallback_rate_margin", "latency_p99_factor", "latency_p99_slack", "min_requests")
    ERROR_RATE_MARGIN_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_RATE_MARGIN_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_FACTOR_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_SLACK_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    error_rate_margin: float
    fallback_rate_margin: float
    latency_p99_factor: float
    latency_p99_slack: _duration_pb2.Duration
    min_requests: int
    def __init__(self, error_rate_margin: _Optional[float] = ..., fallback_rate_margin: _Optional[float] = ..., latency_p99_factor: _Optional[float] = ..., latency_p99_slack: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., min_requests: _Optional[int] = ...) -> None: ...

class RolloutProxyEvidence(_message.Message):
    __slots__ = ("champion_records", "challenger_records", "prediction_drift", "drift_threshold", "estimated", "champion_estimated_accuracy", "challenger_estimated_accuracy", "likelihood_ratio", "threshold", "step_records")
    CHAMPION_RECORDS_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_RECORDS_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_DRIFT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_ESTIMATED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_ESTIMATED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    LIKELIHOOD_RATIO_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STEP_RECORDS_FIELD_NUMBER: _ClassVar[int]
    champion_records: int
    challenger_records: int
    prediction_drift: float
    drift_threshold: float
    estimated: bool
    champion_estimated_accuracy: float
    challenger_estimated_accuracy: float
    likelihood_ratio: float
    threshold: float
    step_records: int
    def __init__(self, champion_records: _Optional[int] = ..., challenger_records: _Optional[int] = ..., prediction_drift: _Optional[float] = ..., drift_threshold: _Optional[float] = ..., estimated: _Optional[bool] = ..., champion_estimated_accuracy: _Optional[float] = ..., challenger_estimated_accuracy: _Optional[float] = ..., likelihood_ratio: _Optional[float] = ..., threshold: _Optional[float] = ..., step_records: _Optional[int] = ...) -> None: ...

class RolloutOperationsEvidence(_message.Message):
    __slots__ = ("champion_requests", "challenger_requests", "champion_error_rate", "challenger_error_rate", "error_likelihood_ratio", "champion_fallback_rate", "challenger_fallback_rate", "fallback_likelihood_ratio", "champion_latency_p99", "challenger_latency_p99", "latency_bound", "challenger_over_bound", "latency_likelihood_ratio", "threshold")
    CHAMPION_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_LIKELIHOOD_RATIO_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_FALLBACK_RATE_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_FALLBACK_RATE_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_LIKELIHOOD_RATIO_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_LATENCY_P99_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_LATENCY_P99_FIELD_NUMBER: _ClassVar[int]
    LATENCY_BOUND_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_OVER_BOUND_FIELD_NUMBER: _ClassVar[int]
    LATENCY_LIKELIHOOD_RATIO_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    champion_requests: int
    challenger_requests: int
    champion_error_rate: float
    challenger_error_rate: float
    error_likelihood_ratio: float
    champion_fallback_rate: float
    challenger_fallback_rate: float
    fallback_likelihood_ratio: float
    champion_latency_p99: _duration_pb2.Duration
    challenger_latency_p99: _duration_pb2.Duration
    latency_bound: _duration_pb2.Duration
    challenger_over_bound: float
    latency_likelihood_ratio: float
    threshold: float
    def __init__(self, champion_requests: _Optional[int] = ..., challenger_requests: _Optional[int] = ..., champion_error_rate: _Optional[float] = ..., challenger_error_rate: _Optional[float] = ..., error_likelihood_ratio: _Optional[float] = ..., champion_fallback_rate: _Optional[float] = ..., challenger_fallback_rate: _Optional[float] = ..., fallback_likelihood_ratio: _Optional[float] = ..., champion_latency_p99: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., challenger_latency_p99: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., latency_bound: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., challenger_over_bound: _Optional[float] = ..., latency_likelihood_ratio: _Optional[float] = ..., threshold: _Optional[float] = ...) -> None: ...

class SliceCheck(_message.Message):
    __slots__ = ("feature", "margin", "min_labeled")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    MIN_LABELED_FIELD_NUMBER: _ClassVar[int]
    feature: str
    margin: float
    min_labeled: int
    def __init__(self, feature: _Optional[str] = ..., margin: _Optional[float] = ..., min_labeled: _Optional[int] = ...) -> None: ...

class RolloutSliceEvidence(_message.Message):
    __slots__ = ("feature", "value", "champion_labeled", "champion_value", "challenger_labeled", "challenger_value", "difference", "likelihood_ratio", "threshold")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_LABELED_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_VALUE_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_LABELED_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_VALUE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    LIKELIHOOD_RATIO_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: str
    champion_labeled: int
    champion_value: float
    challenger_labeled: int
    challenger_value: float
    difference: float
    likelihood_ratio: float
    threshold: float
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[str] = ..., champion_labeled: _Optional[int] = ..., champion_value: _Optional[float] = ..., challenger_labeled: _Optional[int] = ..., challenger_value: _Optional[float] = ..., difference: _Optional[float] = ..., likelihood_ratio: _Optional[float] = ..., threshold: _Optional[float] = ...) -> None: ...

class RolloutAnalysis(_message.Message):
    __slots__ = ("checks", "alpha", "mixture_scale", "min_labeled")
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    MIXTURE_SCALE_FIELD_NUMBER: _ClassVar[int]
    MIN_LABELED_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedCompositeFieldContainer[RolloutCheck]
    alpha: float
    mixture_scale: float
    min_labeled: int
    def __init__(self, checks: _Optional[_Iterable[_Union[RolloutCheck, _Mapping]]] = ..., alpha: _Optional[float] = ..., mixture_scale: _Optional[float] = ..., min_labeled: _Optional[int] = ...) -> None: ...

class RolloutEvidence(_message.Message):
    __slots__ = ("time", "champion_labeled", "champion_value", "challenger_labeled", "challenger_value", "difference", "likelihood_ratio", "threshold", "step_labeled", "slices", "proxy", "operations")
    TIME_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_LABELED_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_VALUE_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_LABELED_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_VALUE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    LIKELIHOOD_RATIO_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STEP_LABELED_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    PROXY_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    champion_labeled: int
    champion_value: float
    challenger_labeled: int
    challenger_value: float
    difference: float
    likelihood_ratio: float
    threshold: float
    step_labeled: int
    slices: _containers.RepeatedCompositeFieldContainer[RolloutSliceEvidence]
    proxy: RolloutProxyEvidence
    operations: RolloutOperationsEvidence
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., champion_labeled: _Optional[int] = ..., champion_value: _Optional[float] = ..., challenger_labeled: _Optional[int] = ..., challenger_value: _Optional[float] = ..., difference: _Optional[float] = ..., likelihood_ratio: _Optional[float] = ..., threshold: _Optional[float] = ..., step_labeled: _Optional[int] = ..., slices: _Optional[_Iterable[_Union[RolloutSliceEvidence, _Mapping]]] = ..., proxy: _Optional[_Union[RolloutProxyEvidence, _Mapping]] = ..., operations: _Optional[_Union[RolloutOperationsEvidence, _Mapping]] = ...) -> None: ...

class Rollout(_message.Message):
    __slots__ = ("name", "deployment", "challenger", "champion_alias", "steps", "analysis", "state", "state_message", "current_step", "step_start_time", "challenger_version", "champion_version", "evidence", "create_time", "update_time", "revision", "model")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_ALIAS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    STEP_START_TIME_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    deployment: str
    challenger: ModelTarget
    champion_alias: str
    steps: _containers.RepeatedCompositeFieldContainer[RolloutStep]
    analysis: RolloutAnalysis
    state: RolloutState
    state_message: str
    current_step: int
    step_start_time: _timestamp_pb2.Timestamp
    challenger_version: str
    champion_version: str
    evidence: RolloutEvidence
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    revision: int
    model: str
    def __init__(self, name: _Optional[str] = ..., deployment: _Optional[str] = ..., challenger: _Optional[_Union[ModelTarget, _Mapping]] = ..., champion_alias: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[RolloutStep, _Mapping]]] = ..., analysis: _Optional[_Union[RolloutAnalysis, _Mapping]] = ..., state: _Optional[_Union[RolloutState, str]] = ..., state_message: _Optional[str] = ..., current_step: _Optional[int] = ..., step_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., challenger_version: _Optional[str] = ..., champion_version: _Optional[str] = ..., evidence: _Optional[_Union[RolloutEvidence, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., model: _Optional[str] = ...) -> None: ...

class RolloutEvent(_message.Message):
    __slots__ = ("rollout", "sequence", "time", "type", "state", "step", "weight", "message", "actor", "evidence")
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    rollout: str
    sequence: int
    time: _timestamp_pb2.Timestamp
    type: RolloutEventType
    state: RolloutState
    step: int
    weight: float
    message: str
    actor: str
    evidence: RolloutEvidence
    def __init__(self, rollout: _Optional[str] = ..., sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[RolloutEventType, str]] = ..., state: _Optional[_Union[RolloutState, str]] = ..., step: _Optional[int] = ..., weight: _Optional[float] = ..., message: _Optional[str] = ..., actor: _Optional[str] = ..., evidence: _Optional[_Union[RolloutEvidence, _Mapping]] = ...) -> None: ...

class CreateRolloutRequest(_message.Message):
    __slots__ = ("rollout", "validation_override_reason")
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_OVERRIDE_REASON_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    validation_override_reason: str
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ..., validation_override_reason: _Optional[str] = ...) -> None: ...

class GetRolloutRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListRolloutsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "deployment")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    deployment: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., deployment: _Optional[str] = ...) -> None: ...

class ListRolloutsResponse(_message.Message):
    __slots__ = ("rollouts", "next_page_token")
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rollouts: _containers.RepeatedCompositeFieldContainer[Rollout]
    next_page_token: str
    def __init__(self, rollouts: _Optional[_Iterable[_Union[Rollout, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PauseRolloutRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResumeRolloutRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AbortRolloutRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListRolloutEventsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRolloutEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RolloutEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[RolloutEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchRolloutEventsRequest(_message.Message):
    __slots__ = ("name", "after_sequence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    after_sequence: int
    def __init__(self, name: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class ModelTarget(_message.Message):
    __slots__ = ("model", "alias", "version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    alias: str
    version: str
    def __init__(self, model: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("target", "weight", "label")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    target: ModelTarget
    weight: float
    label: str
    def __init__(self, target: _Optional[_Union[ModelTarget, _Mapping]] = ..., weight: _Optional[float] = ..., label: _Optional[str] = ...) -> None: ...

class TrafficSplit(_message.Message):
    __slots__ = ("routes",)
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    def __init__(self, routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ...) -> None: ...

class CircuitBreaker(_message.Message):
    __slots__ = ("error_rate_threshold", "window", "minimum_requests", "open_duration")
    ERROR_RATE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    OPEN_DURATION_FIELD_NUMBER: _ClassVar[int]
    error_rate_threshold: float
    window: _duration_pb2.Duration
    minimum_requests: int
    open_duration: _duration_pb2.Duration
    def __init__(self, error_rate_threshold: _Optional[float] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., minimum_requests: _Optional[int] = ..., open_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class FallbackPolicy(_message.Message):
    __slots__ = ("chain", "timeout", "circuit_breaker")
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_BREAKER_FIELD_NUMBER: _ClassVar[int]
    chain: _containers.RepeatedCompositeFieldContainer[ModelTarget]
    timeout: _duration_pb2.Duration
    circuit_breaker: CircuitBreaker
    def __init__(self, chain: _Optional[_Iterable[_Union[ModelTarget, _Mapping]]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., circuit_breaker: _Optional[_Union[CircuitBreaker, _Mapping]] = ...) -> None: ...

class Ensemble(_message.Message):
    __slots__ = ("method", "members", "weights")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    method: EnsembleMethod
    members: _containers.RepeatedCompositeFieldContainer[ModelTarget]
    weights: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, method: _Optional[_Union[EnsembleMethod, str]] = ..., members: _Optional[_Iterable[_Union[ModelTarget, _Mapping]]] = ..., weights: _Optional[_Iterable[float]] = ...) -> None: ...

class FeatureBinding(_message.Message):
    __slots__ = ("feature_refs", "entity_keys", "full_feature_names")
    FEATURE_REFS_FIELD_NUMBER: _ClassVar[int]
    ENTITY_KEYS_FIELD_NUMBER: _ClassVar[int]
    FULL_FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    feature_refs: _containers.RepeatedScalarFieldContainer[str]
    entity_keys: _containers.RepeatedScalarFieldContainer[str]
    full_feature_names: bool
    def __init__(self, feature_refs: _Optional[_Iterable[str]] = ..., entity_keys: _Optional[_Iterable[str]] = ..., full_feature_names: _Optional[bool] = ...) -> None: ...

class AccessPolicy(_message.Message):
    __slots__ = ("infer_principals", "infer_access", "manage_principals", "manage_access")
    INFER_PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    INFER_ACCESS_FIELD_NUMBER: _ClassVar[int]
    MANAGE_PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    MANAGE_ACCESS_FIELD_NUMBER: _ClassVar[int]
    infer_principals: _containers.RepeatedScalarFieldContainer[str]
    infer_access: _annotations_pb2_1.Access
    manage_principals: _containers.RepeatedScalarFieldContainer[str]
    manage_access: _annotations_pb2_1.Access
    def __init__(self, infer_principals: _Optional[_Iterable[str]] = ..., infer_access: _Optional[_Union[_annotations_pb2_1.Access, str]] = ..., manage_principals: _Optional[_Iterable[str]] = ..., manage_access: _Optional[_Union[_annotations_pb2_1.Access, str]] = ...) -> None: ...

class LoadedModel(_message.Message):
    __slots__ = ("target", "model", "version", "source_uri", "bento_model_tag", "load_time")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    BENTO_MODEL_TAG_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIME_FIELD_NUMBER: _ClassVar[int]
    target: ModelTarget
    model: str
    version: str
    source_uri: str
    bento_model_tag: str
    load_time: _timestamp_pb2.Timestamp
    def __init__(self, target: _Optional[_Union[ModelTarget, _Mapping]] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., source_uri: _Optional[str] = ..., bento_model_tag: _Optional[str] = ..., load_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("name", "description", "model", "traffic_split", "shadows", "fallback", "ensemble", "features", "sticky_key", "access", "prediction_logging", "state", "state_message", "loaded_models", "create_time", "update_time", "etag", "generation")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_SPLIT_FIELD_NUMBER: _ClassVar[int]
    SHADOWS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    ENSEMBLE_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    STICKY_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_LOGGING_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LOADED_MODELS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    model: str
    traffic_split: TrafficSplit
    shadows: _containers.RepeatedCompositeFieldContainer[ModelTarget]
    fallback: FallbackPolicy
    ensemble: Ensemble
    features: FeatureBinding
    sticky_key: str
    access: AccessPolicy
    prediction_logging: PredictionLogging
    state: DeploymentState
    state_message: str
    loaded_models: _containers.RepeatedCompositeFieldContainer[LoadedModel]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    generation: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., model: _Optional[str] = ..., traffic_split: _Optional[_Union[TrafficSplit, _Mapping]] = ..., shadows: _Optional[_Iterable[_Union[ModelTarget, _Mapping]]] = ..., fallback: _Optional[_Union[FallbackPolicy, _Mapping]] = ..., ensemble: _Optional[_Union[Ensemble, _Mapping]] = ..., features: _Optional[_Union[FeatureBinding, _Mapping]] = ..., sticky_key: _Optional[str] = ..., access: _Optional[_Union[AccessPolicy, _Mapping]] = ..., prediction_logging: _Optional[_Union[PredictionLogging, str]] = ..., state: _Optional[_Union[DeploymentState, str]] = ..., state_message: _Optional[str] = ..., loaded_models: _Optional[_Iterable[_Union[LoadedModel, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class CreateDeploymentRequest(_message.Message):
    __slots__ = ("deployment", "validation_override_reason")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_OVERRIDE_REASON_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    validation_override_reason: str
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ..., validation_override_reason: _Optional[str] = ...) -> None: ...

class GetDeploymentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "model")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    model: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments", "next_page_token")
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    next_page_token: str
    def __init__(self, deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateDeploymentRequest(_message.Message):
    __slots__ = ("deployment", "update_mask", "validation_override_reason")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_OVERRIDE_REASON_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    update_mask: _field_mask_pb2.FieldMask
    validation_override_reason: str
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., validation_override_reason: _Optional[str] = ...) -> None: ...

class DeleteDeploymentRequest(_message.Message):
    __slots__ = ("name", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class SetTrafficSplitRequest(_message.Message):
    __slots__ = ("name", "traffic_split", "etag", "validation_override_reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_SPLIT_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_OVERRIDE_REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    traffic_split: TrafficSplit
    etag: str
    validation_override_reason: str
    def __init__(self, name: _Optional[str] = ..., traffic_split: _Optional[_Union[TrafficSplit, _Mapping]] = ..., etag: _Optional[str] = ..., validation_override_reason: _Optional[str] = ...) -> None: ...

class BatchJob(_message.Message):
    __slots__ = ("id", "deployment", "target", "dataset", "parquet_uri", "output_uri", "prediction_logging", "state", "error_message", "rows_total", "rows_scored", "model", "model_version", "create_time", "start_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PARQUET_URI_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_LOGGING_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROWS_SCORED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    deployment: str
    target: ModelTarget
    dataset: str
    parquet_uri: str
    output_uri: str
    prediction_logging: PredictionLogging
    state: BatchJobState
    error_message: str
    rows_total: int
    rows_scored: int
    model: str
    model_version: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., deployment: _Optional[str] = ..., target: _Optional[_Union[ModelTarget, _Mapping]] = ..., dataset: _Optional[str] = ..., parquet_uri: _Optional[str] = ..., output_uri: _Optional[str] = ..., prediction_logging: _Optional[_Union[PredictionLogging, str]] = ..., state: _Optional[_Union[BatchJobState, str]] = ..., error_message: _Optional[str] = ..., rows_total: _Optional[int] = ..., rows_scored: _Optional[int] = ..., model: _Optional[str] = ..., model_version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateBatchJobRequest(_message.Message):
    __slots__ = ("batch_job",)
    BATCH_JOB_FIELD_NUMBER: _ClassVar[int]
    batch_job: BatchJob
    def __init__(self, batch_job: _Optional[_Union[BatchJob, _Mapping]] = ...) -> None: ...

class GetBatchJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListBatchJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "deployment")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    deployment: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., deployment: _Optional[str] = ...) -> None: ...

class ListBatchJobsResponse(_message.Message):
    __slots__ = ("batch_jobs", "next_page_token")
    BATCH_JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    batch_jobs: _containers.RepeatedCompositeFieldContainer[BatchJob]
    next_page_token: str
    def __init__(self, batch_jobs: _Optional[_Iterable[_Union[BatchJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExportBentoRequest(_message.Message):
    __slots__ = ("name", "target", "output_path")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PATH_FIELD_NUMBER: _ClassVar[int]
    name: str
    target: ModelTarget
    output_path: str
    def __init__(self, name: _Optional[str] = ..., target: _Optional[_Union[ModelTarget, _Mapping]] = ..., output_path: _Optional[str] = ...) -> None: ...

class ExportBentoResponse(_message.Message):
    __slots__ = ("bento_tag", "path", "bento_model_tag")
    BENTO_TAG_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    BENTO_MODEL_TAG_FIELD_NUMBER: _ClassVar[int]
    bento_tag: str
    path: str
    bento_model_tag: str
    def __init__(self, bento_tag: _Optional[str] = ..., path: _Optional[str] = ..., bento_model_tag: _Optional[str] = ...) -> None: ...
