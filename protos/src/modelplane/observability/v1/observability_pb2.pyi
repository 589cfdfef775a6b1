import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from modelplane.api.v1 import annotations_pb2 as _annotations_pb2_1
from modelplane.api.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Environment(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENVIRONMENT_UNSPECIFIED: _ClassVar[Environment]
    ENVIRONMENT_TRAINING: _ClassVar[Environment]
    ENVIRONMENT_VALIDATION: _ClassVar[Environment]
    ENVIRONMENT_PRODUCTION: _ClassVar[Environment]
    ENVIRONMENT_SHADOW: _ClassVar[Environment]
    ENVIRONMENT_BATCH: _ClassVar[Environment]

class ColumnSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLUMN_SOURCE_UNSPECIFIED: _ClassVar[ColumnSource]
    COLUMN_SOURCE_FEATURE: _ClassVar[ColumnSource]
    COLUMN_SOURCE_TAG: _ClassVar[ColumnSource]
    COLUMN_SOURCE_PREDICTION: _ClassVar[ColumnSource]
    COLUMN_SOURCE_ACTUAL: _ClassVar[ColumnSource]

class SliceOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLICE_OPERATOR_UNSPECIFIED: _ClassVar[SliceOperator]
    SLICE_OPERATOR_EQUAL: _ClassVar[SliceOperator]
    SLICE_OPERATOR_NOT_EQUAL: _ClassVar[SliceOperator]
    SLICE_OPERATOR_LESS: _ClassVar[SliceOperator]
    SLICE_OPERATOR_LESS_OR_EQUAL: _ClassVar[SliceOperator]
    SLICE_OPERATOR_GREATER: _ClassVar[SliceOperator]
    SLICE_OPERATOR_GREATER_OR_EQUAL: _ClassVar[SliceOperator]
    SLICE_OPERATOR_IN: _ClassVar[SliceOperator]
    SLICE_OPERATOR_NOT_IN: _ClassVar[SliceOperator]
    SLICE_OPERATOR_BETWEEN: _ClassVar[SliceOperator]
    SLICE_OPERATOR_IS_NULL: _ClassVar[SliceOperator]
    SLICE_OPERATOR_IS_NOT_NULL: _ClassVar[SliceOperator]

class ColumnKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLUMN_KIND_UNSPECIFIED: _ClassVar[ColumnKind]
    COLUMN_KIND_NUMERIC: _ClassVar[ColumnKind]
    COLUMN_KIND_CATEGORICAL: _ClassVar[ColumnKind]
    COLUMN_KIND_BOOLEAN: _ClassVar[ColumnKind]

class TaskType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_TYPE_UNSPECIFIED: _ClassVar[TaskType]
    TASK_TYPE_CLASSIFICATION: _ClassVar[TaskType]
    TASK_TYPE_REGRESSION: _ClassVar[TaskType]

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    METRIC_ACCURACY: _ClassVar[Metric]
    METRIC_PRECISION: _ClassVar[Metric]
    METRIC_RECALL: _ClassVar[Metric]
    METRIC_F1: _ClassVar[Metric]
    METRIC_ROC_AUC: _ClassVar[Metric]
    METRIC_LOG_LOSS: _ClassVar[Metric]
    METRIC_MAE: _ClassVar[Metric]
    METRIC_RMSE: _ClassVar[Metric]
    METRIC_MAPE: _ClassVar[Metric]

class ClassAverage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLASS_AVERAGE_UNSPECIFIED: _ClassVar[ClassAverage]
    CLASS_AVERAGE_BINARY: _ClassVar[ClassAverage]
    CLASS_AVERAGE_MACRO: _ClassVar[ClassAverage]
    CLASS_AVERAGE_MICRO: _ClassVar[ClassAverage]
    CLASS_AVERAGE_WEIGHTED: _ClassVar[ClassAverage]

class DriftMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DRIFT_METHOD_UNSPECIFIED: _ClassVar[DriftMethod]
    DRIFT_METHOD_PSI: _ClassVar[DriftMethod]
    DRIFT_METHOD_KS: _ClassVar[DriftMethod]
    DRIFT_METHOD_JENSEN_SHANNON: _ClassVar[DriftMethod]
    DRIFT_METHOD_WASSERSTEIN: _ClassVar[DriftMethod]
    DRIFT_METHOD_CHI_SQUARE: _ClassVar[DriftMethod]

class AnalysisMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANALYSIS_MODE_UNSPECIFIED: _ClassVar[AnalysisMode]
    ANALYSIS_MODE_EXACT: _ClassVar[AnalysisMode]
    ANALYSIS_MODE_PROFILE: _ClassVar[AnalysisMode]
    ANALYSIS_MODE_SAMPLE: _ClassVar[AnalysisMode]

class AttributionMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTRIBUTION_METHOD_UNSPECIFIED: _ClassVar[AttributionMethod]
    ATTRIBUTION_METHOD_PERMUTATION: _ClassVar[AttributionMethod]
    ATTRIBUTION_METHOD_OCCLUSION: _ClassVar[AttributionMethod]
    ATTRIBUTION_METHOD_TREE_SHAP: _ClassVar[AttributionMethod]
    ATTRIBUTION_METHOD_PERMUTATION_SHAP: _ClassVar[AttributionMethod]
    ATTRIBUTION_METHOD_SURROGATE_TREE_SHAP: _ClassVar[AttributionMethod]

class Explainer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPLAINER_UNSPECIFIED: _ClassVar[Explainer]
    EXPLAINER_MODEL: _ClassVar[Explainer]
    EXPLAINER_SURROGATE: _ClassVar[Explainer]

class FidelityMeasure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIDELITY_MEASURE_UNSPECIFIED: _ClassVar[FidelityMeasure]
    FIDELITY_MEASURE_R2_AGAINST_MODEL: _ClassVar[FidelityMeasure]
    FIDELITY_MEASURE_ACCURACY_AGAINST_LOGGED: _ClassVar[FidelityMeasure]
    FIDELITY_MEASURE_R2_AGAINST_LOGGED: _ClassVar[FidelityMeasure]
    FIDELITY_MEASURE_ACCURACY_AGAINST_ACTUAL: _ClassVar[FidelityMeasure]
    FIDELITY_MEASURE_R2_AGAINST_ACTUAL: _ClassVar[FidelityMeasure]

class Comparison(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPARISON_UNSPECIFIED: _ClassVar[Comparison]
    COMPARISON_GREATER: _ClassVar[Comparison]
    COMPARISON_LESS: _ClassVar[Comparison]

class AlertState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_STATE_UNSPECIFIED: _ClassVar[AlertState]
    ALERT_STATE_FIRING: _ClassVar[AlertState]
    ALERT_STATE_RESOLVED: _ClassVar[AlertState]

class IntervalMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERVAL_METHOD_UNSPECIFIED: _ClassVar[IntervalMethod]
    INTERVAL_METHOD_WILSON: _ClassVar[IntervalMethod]
    INTERVAL_METHOD_BOOTSTRAP: _ClassVar[IntervalMethod]
ENVIRONMENT_UNSPECIFIED: Environment
ENVIRONMENT_TRAINING: Environment
ENVIRONMENT_VALIDATION: Environment
ENVIRONMENT_PRODUCTION: Environment
ENVIRONMENT_SHADOW: Environment
ENVIRONMENT_BATCH: Environment
COLUMN_SOURCE_UNSPECIFIED: ColumnSource
COLUMN_SOURCE_FEATURE: ColumnSource
COLUMN_SOURCE_TAG: ColumnSource
COLUMN_SOURCE_PREDICTION: ColumnSource
COLUMN_SOURCE_ACTUAL: ColumnSource
SLICE_OPERATOR_UNSPECIFIED: SliceOperator
SLICE_OPERATOR_EQUAL: SliceOperator
SLICE_OPERATOR_NOT_EQUAL: SliceOperator
SLICE_OPERATOR_LESS: SliceOperator
SLICE_OPERATOR_LESS_OR_EQUAL: SliceOperator
SLICE_OPERATOR_GREATER: SliceOperator
SLICE_OPERATOR_GREATER_OR_EQUAL: SliceOperator
SLICE_OPERATOR_IN: SliceOperator
SLICE_OPERATOR_NOT_IN: SliceOperator
SLICE_OPERATOR_BETWEEN: SliceOperator
SLICE_OPERATOR_IS_NULL: SliceOperator
SLICE_OPERATOR_IS_NOT_NULL: SliceOperator
COLUMN_KIND_UNSPECIFIED: ColumnKind
COLUMN_KIND_NUMERIC: ColumnKind
COLUMN_KIND_CATEGORICAL: ColumnKind
COLUMN_KIND_BOOLEAN: ColumnKind
TASK_TYPE_UNSPECIFIED: TaskType
TASK_TYPE_CLASSIFICATION: TaskType
TASK_TYPE_REGRESSION: TaskType
METRIC_UNSPECIFIED: Metric
METRIC_ACCURACY: Metric
METRIC_PRECISION: Metric
METRIC_RECALL: Metric
METRIC_F1: Metric
METRIC_ROC_AUC: Metric
METRIC_LOG_LOSS: Metric
METRIC_MAE: Metric
METRIC_RMSE: Metric
METRIC_MAPE: Metric
CLASS_AVERAGE_UNSPECIFIED: ClassAverage
CLASS_AVERAGE_BINARY: ClassAverage
CLASS_AVERAGE_MACRO: ClassAverage
CLASS_AVERAGE_MICRO: ClassAverage
CLASS_AVERAGE_WEIGHTED: ClassAverage
DRIFT_METHOD_UNSPECIFIED: DriftMethod
DRIFT_METHOD_PSI: DriftMethod
DRIFT_METHOD_KS: DriftMethod
DRIFT_METHOD_JENSEN_SHANNON: DriftMethod
DRIFT_METHOD_WASSERSTEIN: DriftMethod
DRIFT_METHOD_CHI_SQUARE: DriftMethod
ANALYSIS_MODE_UNSPECIFIED: AnalysisMode
ANALYSIS_MODE_EXACT: AnalysisMode
ANALYSIS_MODE_PROFILE: AnalysisMode
ANALYSIS_MODE_SAMPLE: AnalysisMode
ATTRIBUTION_METHOD_UNSPECIFIED: AttributionMethod
ATTRIBUTION_METHOD_PERMUTATION: AttributionMethod
ATTRIBUTION_METHOD_OCCLUSION: AttributionMethod
ATTRIBUTION_METHOD_TREE_SHAP: AttributionMethod
ATTRIBUTION_METHOD_PERMUTATION_SHAP: AttributionMethod
ATTRIBUTION_METHOD_SURROGATE_TREE_SHAP: AttributionMethod
EXPLAINER_UNSPECIFIED: Explainer
EXPLAINER_MODEL: Explainer
EXPLAINER_SURROGATE: Explainer
FIDELITY_MEASURE_UNSPECIFIED: FidelityMeasure
FIDELITY_MEASURE_R2_AGAINST_MODEL: FidelityMeasure
FIDELITY_MEASURE_ACCURACY_AGAINST_LOGGED: FidelityMeasure
FIDELITY_MEASURE_R2_AGAINST_LOGGED: FidelityMeasure
FIDELITY_MEASURE_ACCURACY_AGAINST_ACTUAL: FidelityMeasure
FIDELITY_MEASURE_R2_AGAINST_ACTUAL: FidelityMeasure
COMPARISON_UNSPECIFIED: Comparison
COMPARISON_GREATER: Comparison
COMPARISON_LESS: Comparison
ALERT_STATE_UNSPECIFIED: AlertState
ALERT_STATE_FIRING: AlertState
ALERT_STATE_RESOLVED: AlertState
INTERVAL_METHOD_UNSPECIFIED: IntervalMethod
INTERVAL_METHOD_WILSON: IntervalMethod
INTERVAL_METHOD_BOOTSTRAP: IntervalMethod

class EvaluationRecord(_message.Message):
    __slots__ = ("prediction_id", "model", "version", "environment", "prediction_time", "features", "prediction", "scores", "tags", "trace_id", "latency", "actual", "attributions", "span_id")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AttributionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_TIME_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    model: str
    version: str
    environment: Environment
    prediction_time: _timestamp_pb2.Timestamp
    features: _containers.MessageMap[str, _types_pb2.Value]
    prediction: _types_pb2.Value
    scores: _containers.ScalarMap[str, float]
    tags: _containers.ScalarMap[str, str]
    trace_id: str
    latency: _duration_pb2.Duration
    actual: Actual
    attributions: _containers.ScalarMap[str, float]
    span_id: str
    def __init__(self, prediction_id: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., environment: _Optional[_Union[Environment, str]] = ..., prediction_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., features: _Optional[_Mapping[str, _types_pb2.Value]] = ..., prediction: _Optional[_Union[_types_pb2.Value, _Mapping]] = ..., scores: _Optional[_Mapping[str, float]] = ..., tags: _Optional[_Mapping[str, str]] = ..., trace_id: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., actual: _Optional[_Union[Actual, _Mapping]] = ..., attributions: _Optional[_Mapping[str, float]] = ..., span_id: _Optional[str] = ...) -> None: ...

class Actual(_message.Message):
    __slots__ = ("prediction_id", "value", "actual_time")
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_TIME_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    value: _types_pb2.Value
    actual_time: _timestamp_pb2.Timestamp
    def __init__(self, prediction_id: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ..., actual_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LogRecordsRequest(_message.Message):
    __slots__ = ("records", "arrow_ipc")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[EvaluationRecord]
    arrow_ipc: bytes
    def __init__(self, records: _Optional[_Iterable[_Union[EvaluationRecord, _Mapping]]] = ..., arrow_ipc: _Optional[bytes] = ...) -> None: ...

class RejectedRecord(_message.Message):
    __slots__ = ("index", "prediction_id", "field", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    prediction_id: str
    field: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., prediction_id: _Optional[str] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class LogRecordsResponse(_message.Message):
    __slots__ = ("accepted_count", "duplicate_count", "rejected")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    duplicate_count: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedRecord]
    def __init__(self, accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedRecord, _Mapping]]] = ...) -> None: ...

class LogActualsRequest(_message.Message):
    __slots__ = ("actuals",)
    ACTUALS_FIELD_NUMBER: _ClassVar[int]
    actuals: _containers.RepeatedCompositeFieldContainer[Actual]
    def __init__(self, actuals: _Optional[_Iterable[_Union[Actual, _Mapping]]] = ...) -> None: ...

class LogActualsResponse(_message.Message):
    __slots__ = ("accepted_count", "duplicate_count", "unmatched_count", "rejected")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNMATCHED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    duplicate_count: int
    unmatched_count: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedRecord]
    def __init__(self, accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., unmatched_count: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedRecord, _Mapping]]] = ...) -> None: ...

class ImportColumns(_message.Message):
    __slots__ = ("prediction_id", "prediction_time", "prediction", "actual", "score_prefix", "tag_prefix", "features")
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_TIME_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_FIELD_NUMBER: _ClassVar[int]
    SCORE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TAG_PREFIX_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    prediction_time: str
    prediction: str
    actual: str
    score_prefix: str
    tag_prefix: str
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prediction_id: _Optional[str] = ..., prediction_time: _Optional[str] = ..., prediction: _Optional[str] = ..., actual: _Optional[str] = ..., score_prefix: _Optional[str] = ..., tag_prefix: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class ImportRecordsRequest(_message.Message):
    __slots__ = ("model", "version", "environment", "table", "columns")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    environment: Environment
    table: _types_pb2.TableData
    columns: ImportColumns
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., environment: _Optional[_Union[Environment, str]] = ..., table: _Optional[_Union[_types_pb2.TableData, _Mapping]] = ..., columns: _Optional[_Union[ImportColumns, _Mapping]] = ...) -> None: ...

class ImportRecordsResponse(_message.Message):
    __slots__ = ("accepted_count", "duplicate_count", "actual_count", "rejected")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    duplicate_count: int
    actual_count: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedRecord]
    def __init__(self, accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., actual_count: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedRecord, _Mapping]]] = ...) -> None: ...

class GetRecordRequest(_message.Message):
    __slots__ = ("prediction_id",)
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    def __init__(self, prediction_id: _Optional[str] = ...) -> None: ...

class ColumnRef(_message.Message):
    __slots__ = ("source", "name")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    source: ColumnSource
    name: str
    def __init__(self, source: _Optional[_Union[ColumnSource, str]] = ..., name: _Optional[str] = ...) -> None: ...

class SlicePredicate(_message.Message):
    __slots__ = ("column", "op", "values")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    column: ColumnRef
    op: SliceOperator
    values: _containers.RepeatedCompositeFieldContainer[_types_pb2.Value]
    def __init__(self, column: _Optional[_Union[ColumnRef, _Mapping]] = ..., op: _Optional[_Union[SliceOperator, str]] = ..., values: _Optional[_Iterable[_Union[_types_pb2.Value, _Mapping]]] = ...) -> None: ...

class Slice(_message.Message):
    __slots__ = ("predicates", "display_name")
    PREDICATES_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    predicates: _containers.RepeatedCompositeFieldContainer[SlicePredicate]
    display_name: str
    def __init__(self, predicates: _Optional[_Iterable[_Union[SlicePredicate, _Mapping]]] = ..., display_name: _Optional[str] = ...) -> None: ...

class EvaluationFilter(_message.Message):
    __slots__ = ("model", "versions", "environment", "window", "predicates")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PREDICATES_FIELD_NUMBER: _ClassVar[int]
    model: str
    versions: _containers.RepeatedScalarFieldContainer[str]
    environment: Environment
    window: _types_pb2.TimeWindow
    predicates: _containers.RepeatedCompositeFieldContainer[SlicePredicate]
    def __init__(self, model: _Optional[str] = ..., versions: _Optional[_Iterable[str]] = ..., environment: _Optional[_Union[Environment, str]] = ..., window: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ..., predicates: _Optional[_Iterable[_Union[SlicePredicate, _Mapping]]] = ...) -> None: ...

class ListRecordsRequest(_message.Message):
    __slots__ = ("filter", "has_actual", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    HAS_ACTUAL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: EvaluationFilter
    has_actual: bool
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., has_actual: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRecordsResponse(_message.Message):
    __slots__ = ("records", "next_page_token")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[EvaluationRecord]
    next_page_token: str
    def __init__(self, records: _Optional[_Iterable[_Union[EvaluationRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListObservedModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ColumnInfo(_message.Message):
    __slots__ = ("column", "kind")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    column: ColumnRef
    kind: ColumnKind
    def __init__(self, column: _Optional[_Union[ColumnRef, _Mapping]] = ..., kind: _Optional[_Union[ColumnKind, str]] = ...) -> None: ...

class ObservedModel(_message.Message):
    __slots__ = ("model", "versions", "environments", "record_count", "actual_count", "first_prediction_time", "last_prediction_time", "columns")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_PREDICTION_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_PREDICTION_TIME_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    model: str
    versions: _containers.RepeatedScalarFieldContainer[str]
    environments: _containers.RepeatedScalarFieldContainer[Environment]
    record_count: int
    actual_count: int
    first_prediction_time: _timestamp_pb2.Timestamp
    last_prediction_time: _timestamp_pb2.Timestamp
    columns: _containers.RepeatedCompositeFieldContainer[ColumnInfo]
    def __init__(self, model: _Optional[str] = ..., versions: _Optional[_Iterable[str]] = ..., environments: _Optional[_Iterable[_Union[Environment, str]]] = ..., record_count: _Optional[int] = ..., actual_count: _Optional[int] = ..., first_prediction_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_prediction_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., columns: _Optional[_Iterable[_Union[ColumnInfo, _Mapping]]] = ...) -> None: ...

class ListObservedModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ObservedModel]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[ObservedModel, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class MetricValue(_message.Message):
    __slots__ = ("metric", "value", "has_value")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    HAS_VALUE_FIELD_NUMBER: _ClassVar[int]
    metric: Metric
    value: float
    has_value: bool
    def __init__(self, metric: _Optional[_Union[Metric, str]] = ..., value: _Optional[float] = ..., has_value: _Optional[bool] = ...) -> None: ...

class PerformanceGroup(_message.Message):
    __slots__ = ("window", "slice", "record_count", "labeled_count", "metrics")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABELED_COUNT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    window: _types_pb2.TimeWindow
    slice: Slice
    record_count: int
    labeled_count: int
    metrics: _containers.RepeatedCompositeFieldContainer[MetricValue]
    def __init__(self, window: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ..., slice: _Optional[_Union[Slice, _Mapping]] = ..., record_count: _Optional[int] = ..., labeled_count: _Optional[int] = ..., metrics: _Optional[_Iterable[_Union[MetricValue, _Mapping]]] = ...) -> None: ...

class ComputePerformanceRequest(_message.Message):
    __slots__ = ("filter", "metrics", "task", "positive_class", "average", "bucket", "slice_by", "slice_bins", "mode")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_CLASS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    SLICE_BY_FIELD_NUMBER: _ClassVar[int]
    SLICE_BINS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    filter: EvaluationFilter
    metrics: _containers.RepeatedScalarFieldContainer[Metric]
    task: TaskType
    positive_class: str
    average: ClassAverage
    bucket: _duration_pb2.Duration
    slice_by: _containers.RepeatedCompositeFieldContainer[ColumnRef]
    slice_bins: int
    mode: AnalysisMode
    def __init__(self, filter: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[Metric, str]]] = ..., task: _Optional[_Union[TaskType, str]] = ..., positive_class: _Optional[str] = ..., average: _Optional[_Union[ClassAverage, str]] = ..., bucket: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., slice_by: _Optional[_Iterable[_Union[ColumnRef, _Mapping]]] = ..., slice_bins: _Optional[int] = ..., mode: _Optional[_Union[AnalysisMode, str]] = ...) -> None: ...

class ComputePerformanceResponse(_message.Message):
    __slots__ = ("task", "overall", "windows", "slices", "mode", "sample_size", "population_size")
    TASK_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    task: TaskType
    overall: PerformanceGroup
    windows: _containers.RepeatedCompositeFieldContainer[PerformanceGroup]
    slices: _containers.RepeatedCompositeFieldContainer[PerformanceGroup]
    mode: AnalysisMode
    sample_size: int
    population_size: int
    def __init__(self, task: _Optional[_Union[TaskType, str]] = ..., overall: _Optional[_Union[PerformanceGroup, _Mapping]] = ..., windows: _Optional[_Iterable[_Union[PerformanceGroup, _Mapping]]] = ..., slices: _Optional[_Iterable[_Union[PerformanceGroup, _Mapping]]] = ..., mode: _Optional[_Union[AnalysisMode, str]] = ..., sample_size: _Optional[int] = ..., population_size: _Optional[int] = ...) -> None: ...

class ReferenceData(_message.Message):
    __slots__ = ("filter", "baseline")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    filter: EvaluationFilter
    baseline: BaselineRef
    def __init__(self, filter: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., baseline: _Optional[_Union[BaselineRef, _Mapping]] = ...) -> None: ...

class BaselineRef(_message.Message):
    __slots__ = ("model", "version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class DriftThresholds(_message.Message):
    __slots__ = ("psi", "p_value", "jensen_shannon", "wasserstein")
    PSI_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    JENSEN_SHANNON_FIELD_NUMBER: _ClassVar[int]
    WASSERSTEIN_FIELD_NUMBER: _ClassVar[int]
    psi: float
    p_value: float
    jensen_shannon: float
    wasserstein: float
    def __init__(self, psi: _Optional[float] = ..., p_value: _Optional[float] = ..., jensen_shannon: _Optional[float] = ..., wasserstein: _Optional[float] = ...) -> None: ...

class DriftStatistic(_message.Message):
    __slots__ = ("method", "value", "p_value", "threshold", "drifted")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    method: DriftMethod
    value: float
    p_value: float
    threshold: float
    drifted: bool
    def __init__(self, method: _Optional[_Union[DriftMethod, str]] = ..., value: _Optional[float] = ..., p_value: _Optional[float] = ..., threshold: _Optional[float] = ..., drifted: _Optional[bool] = ...) -> None: ...

class ColumnDrift(_message.Message):
    __slots__ = ("column", "kind", "reference_count", "current_count", "statistics", "decision_method", "drifted")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    DECISION_METHOD_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    column: ColumnRef
    kind: ColumnKind
    reference_count: int
    current_count: int
    statistics: _containers.RepeatedCompositeFieldContainer[DriftStatistic]
    decision_method: DriftMethod
    drifted: bool
    def __init__(self, column: _Optional[_Union[ColumnRef, _Mapping]] = ..., kind: _Optional[_Union[ColumnKind, str]] = ..., reference_count: _Optional[int] = ..., current_count: _Optional[int] = ..., statistics: _Optional[_Iterable[_Union[DriftStatistic, _Mapping]]] = ..., decision_method: _Optional[_Union[DriftMethod, str]] = ..., drifted: _Optional[bool] = ...) -> None: ...

class ComputeDriftRequest(_message.Message):
    __slots__ = ("current", "reference", "columns", "methods", "thresholds", "bins", "mode")
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    current: EvaluationFilter
    reference: ReferenceData
    columns: _containers.RepeatedCompositeFieldContainer[ColumnRef]
    methods: _containers.RepeatedScalarFieldContainer[DriftMethod]
    thresholds: DriftThresholds
    bins: int
    mode: AnalysisMode
    def __init__(self, current: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., reference: _Optional[_Union[ReferenceData, _Mapping]] = ..., columns: _Optional[_Iterable[_Union[ColumnRef, _Mapping]]] = ..., methods: _Optional[_Iterable[_Union[DriftMethod, str]]] = ..., thresholds: _Optional[_Union[DriftThresholds, _Mapping]] = ..., bins: _Optional[int] = ..., mode: _Optional[_Union[AnalysisMode, str]] = ...) -> None: ...

class ComputeDriftResponse(_message.Message):
    __slots__ = ("columns", "reference_count", "current_count", "drifted_share", "mode", "rank_error", "profile_buckets", "sample_size", "population_size")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_SHARE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RANK_ERROR_FIELD_NUMBER: _ClassVar[int]
    PROFILE_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[ColumnDrift]
    reference_count: int
    current_count: int
    drifted_share: float
    mode: AnalysisMode
    rank_error: float
    profile_buckets: int
    sample_size: int
    population_size: int
    def __init__(self, columns: _Optional[_Iterable[_Union[ColumnDrift, _Mapping]]] = ..., reference_count: _Optional[int] = ..., current_count: _Optional[int] = ..., drifted_share: _Optional[float] = ..., mode: _Optional[_Union[AnalysisMode, str]] = ..., rank_error: _Optional[float] = ..., profile_buckets: _Optional[int] = ..., sample_size: _Optional[int] = ..., population_size: _Optional[int] = ...) -> None: ...

class ComputeProxyPerformanceRequest(_message.Message):
    __slots__ = ("current", "reference", "positive_class", "bucket", "thresholds", "mode")
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_CLASS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    current: EvaluationFilter
    reference: ReferenceData
    positive_class: str
    bucket: _duration_pb2.Duration
    thresholds: DriftThresholds
    mode: AnalysisMode
    def __init__(self, current: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., reference: _Optional[_Union[ReferenceData, _Mapping]] = ..., positive_class: _Optional[str] = ..., bucket: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., thresholds: _Optional[_Union[DriftThresholds, _Mapping]] = ..., mode: _Optional[_Union[AnalysisMode, str]] = ...) -> None: ...

class ProxyPerformanceGroup(_message.Message):
    __slots__ = ("window", "record_count", "estimated_metrics", "prediction_drift")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_METRICS_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_DRIFT_FIELD_NUMBER: _ClassVar[int]
    window: _types_pb2.TimeWindow
    record_count: int
    estimated_metrics: _containers.RepeatedCompositeFieldContainer[MetricValue]
    prediction_drift: _containers.RepeatedCompositeFieldContainer[ColumnDrift]
    def __init__(self, window: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ..., record_count: _Optional[int] = ..., estimated_metrics: _Optional[_Iterable[_Union[MetricValue, _Mapping]]] = ..., prediction_drift: _Optional[_Iterable[_Union[ColumnDrift, _Mapping]]] = ...) -> None: ...

class ComputeProxyPerformanceResponse(_message.Message):
    __slots__ = ("overall", "windows", "reference_metrics", "calibrated", "mode", "sample_size", "population_size")
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_METRICS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATED_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    overall: ProxyPerformanceGroup
    windows: _containers.RepeatedCompositeFieldContainer[ProxyPerformanceGroup]
    reference_metrics: _containers.RepeatedCompositeFieldContainer[MetricValue]
    calibrated: bool
    mode: AnalysisMode
    sample_size: int
    population_size: int
    def __init__(self, overall: _Optional[_Union[ProxyPerformanceGroup, _Mapping]] = ..., windows: _Optional[_Iterable[_Union[ProxyPerformanceGroup, _Mapping]]] = ..., reference_metrics: _Optional[_Iterable[_Union[MetricValue, _Mapping]]] = ..., calibrated: _Optional[bool] = ..., mode: _Optional[_Union[AnalysisMode, str]] = ..., sample_size: _Optional[int] = ..., population_size: _Optional[int] = ...) -> None: ...

class RootCauseObjective(_message.Message):
    __slots__ = ("metric", "drift_column")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DRIFT_COLUMN_FIELD_NUMBER: _ClassVar[int]
    metric: Metric
    drift_column: ColumnRef
    def __init__(self, metric: _Optional[_Union[Metric, str]] = ..., drift_column: _Optional[_Union[ColumnRef, _Mapping]] = ...) -> None: ...

class SliceContribution(_message.Message):
    __slots__ = ("slice", "contribution", "contribution_share", "reference_count", "current_count", "reference_value", "current_value", "lift", "score")
    SLICE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_SHARE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_VALUE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    slice: Slice
    contribution: float
    contribution_share: float
    reference_count: int
    current_count: int
    reference_value: float
    current_value: float
    lift: float
    score: float
    def __init__(self, slice: _Optional[_Union[Slice, _Mapping]] = ..., contribution: _Optional[float] = ..., contribution_share: _Optional[float] = ..., reference_count: _Optional[int] = ..., current_count: _Optional[int] = ..., reference_value: _Optional[float] = ..., current_value: _Optional[float] = ..., lift: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class ComputeRootCauseRequest(_message.Message):
    __slots__ = ("current", "reference", "objective", "columns", "max_slices", "max_depth", "min_slice_size", "bins", "positive_class", "mode")
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MAX_SLICES_FIELD_NUMBER: _ClassVar[int]
    MAX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    MIN_SLICE_SIZE_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_CLASS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    current: EvaluationFilter
    reference: ReferenceData
    objective: RootCauseObjective
    columns: _containers.RepeatedCompositeFieldContainer[ColumnRef]
    max_slices: int
    max_depth: int
    min_slice_size: int
    bins: int
    positive_class: str
    mode: AnalysisMode
    def __init__(self, current: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., reference: _Optional[_Union[ReferenceData, _Mapping]] = ..., objective: _Optional[_Union[RootCauseObjective, _Mapping]] = ..., columns: _Optional[_Iterable[_Union[ColumnRef, _Mapping]]] = ..., max_slices: _Optional[int] = ..., max_depth: _Optional[int] = ..., min_slice_size: _Optional[int] = ..., bins: _Optional[int] = ..., positive_class: _Optional[str] = ..., mode: _Optional[_Union[AnalysisMode, str]] = ...) -> None: ...

class ComputeRootCauseResponse(_message.Message):
    __slots__ = ("reference_value", "current_value", "slices", "mode", "sample_size", "population_size")
    REFERENCE_VALUE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VALUE_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    POPULATION_SIZE_FIELD_NUMBER: _ClassVar[int]
    reference_value: float
    current_value: float
    slices: _containers.RepeatedCompositeFieldContainer[SliceContribution]
    mode: AnalysisMode
    sample_size: int
    population_size: int
    def __init__(self, reference_value: _Optional[float] = ..., current_value: _Optional[float] = ..., slices: _Optional[_Iterable[_Union[SliceContribution, _Mapping]]] = ..., mode: _Optional[_Union[AnalysisMode, str]] = ..., sample_size: _Optional[int] = ..., population_size: _Optional[int] = ...) -> None: ...

class FeatureAttribution(_message.Message):
    __slots__ = ("feature", "value", "std")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: float
    std: float
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[float] = ..., std: _Optional[float] = ...) -> None: ...

class ComputeFeatureImportanceRequest(_message.Message):
    __slots__ = ("filter", "method", "against_actual", "repeats", "max_records", "seed", "explainer")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    AGAINST_ACTUAL_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EXPLAINER_FIELD_NUMBER: _ClassVar[int]
    filter: EvaluationFilter
    method: AttributionMethod
    against_actual: bool
    repeats: int
    max_records: int
    seed: int
    explainer: Explainer
    def __init__(self, filter: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., method: _Optional[_Union[AttributionMethod, str]] = ..., against_actual: _Optional[bool] = ..., repeats: _Optional[int] = ..., max_records: _Optional[int] = ..., seed: _Optional[int] = ..., explainer: _Optional[_Union[Explainer, str]] = ...) -> None: ...

class ComputeFeatureImportanceResponse(_message.Message):
    __slots__ = ("importances", "surrogate_fidelity", "record_count", "explainer", "surrogate_fidelity_measure", "fallback_reason", "scoring", "model_versions")
    IMPORTANCES_FIELD_NUMBER: _ClassVar[int]
    SURROGATE_FIDELITY_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXPLAINER_FIELD_NUMBER: _ClassVar[int]
    SURROGATE_FIDELITY_MEASURE_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    SCORING_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    importances: _containers.RepeatedCompositeFieldContainer[FeatureAttribution]
    surrogate_fidelity: float
    record_count: int
    explainer: Explainer
    surrogate_fidelity_measure: FidelityMeasure
    fallback_reason: str
    scoring: str
    model_versions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, importances: _Optional[_Iterable[_Union[FeatureAttribution, _Mapping]]] = ..., surrogate_fidelity: _Optional[float] = ..., record_count: _Optional[int] = ..., explainer: _Optional[_Union[Explainer, str]] = ..., surrogate_fidelity_measure: _Optional[_Union[FidelityMeasure, str]] = ..., fallback_reason: _Optional[str] = ..., scoring: _Optional[str] = ..., model_versions: _Optional[_Iterable[str]] = ...) -> None: ...

class ExplainPredictionsRequest(_message.Message):
    __slots__ = ("filter", "prediction_ids", "max_records", "store", "explainer", "seed")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_IDS_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    EXPLAINER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    filter: EvaluationFilter
    prediction_ids: _containers.RepeatedScalarFieldContainer[str]
    max_records: int
    store: bool
    explainer: Explainer
    seed: int
    def __init__(self, filter: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., prediction_ids: _Optional[_Iterable[str]] = ..., max_records: _Optional[int] = ..., store: _Optional[bool] = ..., explainer: _Optional[_Union[Explainer, str]] = ..., seed: _Optional[int] = ...) -> None: ...

class PredictionAttribution(_message.Message):
    __slots__ = ("prediction_id", "attributions", "model_version", "output", "expected_value")
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VALUE_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    attributions: _containers.RepeatedCompositeFieldContainer[FeatureAttribution]
    model_version: str
    output: float
    expected_value: float
    def __init__(self, prediction_id: _Optional[str] = ..., attributions: _Optional[_Iterable[_Union[FeatureAttribution, _Mapping]]] = ..., model_version: _Optional[str] = ..., output: _Optional[float] = ..., expected_value: _Optional[float] = ...) -> None: ...

class ExplainPredictionsResponse(_message.Message):
    __slots__ = ("predictions", "surrogate_fidelity", "method", "surrogate_fidelity_measure", "explained_output", "fallback_reason")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    SURROGATE_FIDELITY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SURROGATE_FIDELITY_MEASURE_FIELD_NUMBER: _ClassVar[int]
    EXPLAINED_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[PredictionAttribution]
    surrogate_fidelity: float
    method: AttributionMethod
    surrogate_fidelity_measure: FidelityMeasure
    explained_output: str
    fallback_reason: str
    def __init__(self, predictions: _Optional[_Iterable[_Union[PredictionAttribution, _Mapping]]] = ..., surrogate_fidelity: _Optional[float] = ..., method: _Optional[_Union[AttributionMethod, str]] = ..., surrogate_fidelity_measure: _Optional[_Union[FidelityMeasure, str]] = ..., explained_output: _Optional[str] = ..., fallback_reason: _Optional[str] = ...) -> None: ...

class Baseline(_message.Message):
    __slots__ = ("model", "version", "reference", "metrics", "validation_report_id", "update_time", "record_count")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    reference: EvaluationFilter
    metrics: _containers.RepeatedCompositeFieldContainer[MetricValue]
    validation_report_id: str
    update_time: _timestamp_pb2.Timestamp
    record_count: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., reference: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[MetricValue, _Mapping]]] = ..., validation_report_id: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., record_count: _Optional[int] = ...) -> None: ...

class SetBaselineRequest(_message.Message):
    __slots__ = ("baseline", "records", "columns")
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    baseline: Baseline
    records: _types_pb2.TableData
    columns: ImportColumns
    def __init__(self, baseline: _Optional[_Union[Baseline, _Mapping]] = ..., records: _Optional[_Union[_types_pb2.TableData, _Mapping]] = ..., columns: _Optional[_Union[ImportColumns, _Mapping]] = ...) -> None: ...

class GetBaselineRequest(_message.Message):
    __slots__ = ("model", "version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class DriftSignal(_message.Message):
    __slots__ = ("column", "method", "reference")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    column: ColumnRef
    method: DriftMethod
    reference: ReferenceData
    def __init__(self, column: _Optional[_Union[ColumnRef, _Mapping]] = ..., method: _Optional[_Union[DriftMethod, str]] = ..., reference: _Optional[_Union[ReferenceData, _Mapping]] = ...) -> None: ...

class MonitorSignal(_message.Message):
    __slots__ = ("performance", "estimated_performance", "drift")
    PERFORMANCE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_PERFORMANCE_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    performance: Metric
    estimated_performance: Metric
    drift: DriftSignal
    def __init__(self, performance: _Optional[_Union[Metric, str]] = ..., estimated_performance: _Optional[_Union[Metric, str]] = ..., drift: _Optional[_Union[DriftSignal, _Mapping]] = ...) -> None: ...

class Monitor(_message.Message):
    __slots__ = ("id", "display_name", "filter", "signal", "comparison", "threshold", "window", "interval", "min_records", "webhook_url", "paused", "create_time", "update_time", "last_evaluation_time", "last_value")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MIN_RECORDS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_EVALUATION_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_VALUE_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    filter: EvaluationFilter
    signal: MonitorSignal
    comparison: Comparison
    threshold: float
    window: _duration_pb2.Duration
    interval: _duration_pb2.Duration
    min_records: int
    webhook_url: str
    paused: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    last_evaluation_time: _timestamp_pb2.Timestamp
    last_value: float
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., filter: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., signal: _Optional[_Union[MonitorSignal, _Mapping]] = ..., comparison: _Optional[_Union[Comparison, str]] = ..., threshold: _Optional[float] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., min_records: _Optional[int] = ..., webhook_url: _Optional[str] = ..., paused: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_evaluation_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_value: _Optional[float] = ...) -> None: ...

class CreateMonitorRequest(_message.Message):
    __slots__ = ("monitor",)
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    monitor: Monitor
    def __init__(self, monitor: _Optional[_Union[Monitor, _Mapping]] = ...) -> None: ...

class GetMonitorRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListMonitorsRequest(_message.Message):
    __slots__ = ("model", "page_size", "page_token")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model: str
    page_size: int
    page_token: str
    def __init__(self, model: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMonitorsResponse(_message.Message):
    __slots__ = ("monitors", "next_page_token")
    MONITORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    monitors: _containers.RepeatedCompositeFieldContainer[Monitor]
    next_page_token: str
    def __init__(self, monitors: _Optional[_Iterable[_Union[Monitor, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateMonitorRequest(_message.Message):
    __slots__ = ("monitor", "update_mask")
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    monitor: Monitor
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, monitor: _Optional[_Union[Monitor, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteMonitorRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class EvaluateMonitorRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class EvaluateMonitorResponse(_message.Message):
    __slots__ = ("evaluated", "value", "record_count", "alert")
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    evaluated: bool
    value: float
    record_count: int
    alert: Alert
    def __init__(self, evaluated: _Optional[bool] = ..., value: _Optional[float] = ..., record_count: _Optional[int] = ..., alert: _Optional[_Union[Alert, _Mapping]] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("id", "monitor_id", "model", "state", "value", "threshold", "comparison", "window", "message", "create_time", "resolve_time", "source", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    MONITOR_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    monitor_id: str
    model: str
    state: AlertState
    value: float
    threshold: float
    comparison: Comparison
    window: _types_pb2.TimeWindow
    message: str
    create_time: _timestamp_pb2.Timestamp
    resolve_time: _timestamp_pb2.Timestamp
    source: str
    version: str
    def __init__(self, id: _Optional[str] = ..., monitor_id: _Optional[str] = ..., model: _Optional[str] = ..., state: _Optional[_Union[AlertState, str]] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., comparison: _Optional[_Union[Comparison, str]] = ..., window: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ..., message: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolve_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("model", "monitor_id", "state", "page_size", "page_token")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MONITOR_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model: str
    monitor_id: str
    state: AlertState
    page_size: int
    page_token: str
    def __init__(self, model: _Optional[str] = ..., monitor_id: _Optional[str] = ..., state: _Optional[_Union[AlertState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("alerts", "next_page_token")
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    next_page_token: str
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchAlertsRequest(_message.Message):
    __slots__ = ("model", "monitor_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MONITOR_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    monitor_id: str
    def __init__(self, model: _Optional[str] = ..., monitor_id: _Optional[str] = ...) -> None: ...

class ConfidenceInterval(_message.Message):
    __slots__ = ("value", "lower", "upper", "has_value")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    HAS_VALUE_FIELD_NUMBER: _ClassVar[int]
    value: float
    lower: float
    upper: float
    has_value: bool
    def __init__(self, value: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., has_value: _Optional[bool] = ...) -> None: ...

class MetricComparison(_message.Message):
    __slots__ = ("metric", "method", "champion", "challenger", "difference", "significant", "challenger_better")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_BETTER_FIELD_NUMBER: _ClassVar[int]
    metric: Metric
    method: IntervalMethod
    champion: ConfidenceInterval
    challenger: ConfidenceInterval
    difference: ConfidenceInterval
    significant: bool
    challenger_better: bool
    def __init__(self, metric: _Optional[_Union[Metric, str]] = ..., method: _Optional[_Union[IntervalMethod, str]] = ..., champion: _Optional[_Union[ConfidenceInterval, _Mapping]] = ..., challenger: _Optional[_Union[ConfidenceInterval, _Mapping]] = ..., difference: _Optional[_Union[ConfidenceInterval, _Mapping]] = ..., significant: _Optional[bool] = ..., challenger_better: _Optional[bool] = ...) -> None: ...

class CompareVersionsRequest(_message.Message):
    __slots__ = ("filter", "champion_version", "challenger_version", "metrics", "task", "positive_class", "average", "confidence_level", "bootstrap_resamples", "seed", "root_cause_metric", "root_cause_columns", "max_slices", "min_slice_size", "drift_columns")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_VERSION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_CLASS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ROOT_CAUSE_METRIC_FIELD_NUMBER: _ClassVar[int]
    ROOT_CAUSE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MAX_SLICES_FIELD_NUMBER: _ClassVar[int]
    MIN_SLICE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DRIFT_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    filter: EvaluationFilter
    champion_version: str
    challenger_version: str
    metrics: _containers.RepeatedScalarFieldContainer[Metric]
    task: TaskType
    positive_class: str
    average: ClassAverage
    confidence_level: float
    bootstrap_resamples: int
    seed: int
    root_cause_metric: Metric
    root_cause_columns: _containers.RepeatedCompositeFieldContainer[ColumnRef]
    max_slices: int
    min_slice_size: int
    drift_columns: _containers.RepeatedCompositeFieldContainer[ColumnRef]
    def __init__(self, filter: _Optional[_Union[EvaluationFilter, _Mapping]] = ..., champion_version: _Optional[str] = ..., challenger_version: _Optional[str] = ..., metrics: _Optional[_Iterable[_Union[Metric, str]]] = ..., task: _Optional[_Union[TaskType, str]] = ..., positive_class: _Optional[str] = ..., average: _Optional[_Union[ClassAverage, str]] = ..., confidence_level: _Optional[float] = ..., bootstrap_resamples: _Optional[int] = ..., seed: _Optional[int] = ..., root_cause_metric: _Optional[_Union[Metric, str]] = ..., root_cause_columns: _Optional[_Iterable[_Union[ColumnRef, _Mapping]]] = ..., max_slices: _Optional[int] = ..., min_slice_size: _Optional[int] = ..., drift_columns: _Optional[_Iterable[_Union[ColumnRef, _Mapping]]] = ...) -> None: ...

class CompareVersionsResponse(_message.Message):
    __slots__ = ("task", "confidence_level", "bootstrap_resamples", "champion_record_count", "champion_labeled_count", "challenger_record_count", "challenger_labeled_count", "metrics", "drift", "drifted_share", "root_cause_metric", "champion_value", "challenger_value", "root_cause")
    TASK_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_LABELED_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_LABELED_COUNT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_SHARE_FIELD_NUMBER: _ClassVar[int]
    ROOT_CAUSE_METRIC_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_VALUE_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_VALUE_FIELD_NUMBER: _ClassVar[int]
    ROOT_CAUSE_FIELD_NUMBER: _ClassVar[int]
    task: TaskType
    confidence_level: float
    bootstrap_resamples: int
    champion_record_count: int
    champion_labeled_count: int
    challenger_record_count: int
    challenger_labeled_count: int
    metrics: _containers.RepeatedCompositeFieldContainer[MetricComparison]
    drift: _containers.RepeatedCompositeFieldContainer[ColumnDrift]
    drifted_share: float
    root_cause_metric: Metric
    champion_value: float
    challenger_value: float
    root_cause: _containers.RepeatedCompositeFieldContainer[SliceContribution]
    def __init__(self, task: _Optional[_Union[TaskType, str]] = ..., confidence_level: _Optional[float] = ..., bootstrap_resamples: _Optional[int] = ..., champion_record_count: _Optional[int] = ..., champion_labeled_count: _Optional[int] = ..., challenger_record_count: _Optional[int] = ..., challenger_labeled_count: _Optional[int] = ..., metrics: _Optional[_Iterable[_Union[MetricComparison, _Mapping]]] = ..., drift: _Optional[_Iterable[_Union[ColumnDrift, _Mapping]]] = ..., drifted_share: _Optional[float] = ..., root_cause_metric: _Optional[_Union[Metric, str]] = ..., champion_value: _Optional[float] = ..., challenger_value: _Optional[float] = ..., root_cause: _Optional[_Iterable[_Union[SliceContribution, _Mapping]]] = ...) -> None: ...

class GetPredictionLineageRequest(_message.Message):
    __slots__ = ("prediction_id",)
    PREDICTION_ID_FIELD_NUMBER: _ClassVar[int]
    prediction_id: str
    def __init__(self, prediction_id: _Optional[str] = ...) -> None: ...

class VersionLineage(_message.Message):
    __slots__ = ("run_id", "experiment_id", "dataset_id", "feature_refs", "code_version", "source", "aliases")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURE_REFS_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    experiment_id: str
    dataset_id: str
    feature_refs: _containers.RepeatedScalarFieldContainer[str]
    code_version: str
    source: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_id: _Optional[str] = ..., experiment_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., feature_refs: _Optional[_Iterable[str]] = ..., code_version: _Optional[str] = ..., source: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class DatasetLineage(_message.Message):
    __slots__ = ("id", "name", "version", "content_hash", "row_count", "storage_uri")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    STORAGE_URI_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    version: int
    content_hash: str
    row_count: int
    storage_uri: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., content_hash: _Optional[str] = ..., row_count: _Optional[int] = ..., storage_uri: _Optional[str] = ...) -> None: ...

class ValidationLineage(_message.Message):
    __slots__ = ("report_id", "status", "summary", "report_uri", "report_fetched", "dataset", "dataset_sha256", "row_count", "baseline_version", "create_time")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    REPORT_URI_FIELD_NUMBER: _ClassVar[int]
    REPORT_FETCHED_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DATASET_SHA256_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    status: str
    summary: str
    report_uri: str
    report_fetched: bool
    dataset: str
    dataset_sha256: str
    row_count: int
    baseline_version: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, report_id: _Optional[str] = ..., status: _Optional[str] = ..., summary: _Optional[str] = ..., report_uri: _Optional[str] = ..., report_fetched: _Optional[bool] = ..., dataset: _Optional[str] = ..., dataset_sha256: _Optional[str] = ..., row_count: _Optional[int] = ..., baseline_version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RolloutLineage(_message.Message):
    __slots__ = ("rollout", "deployment", "role", "step", "challenger_weight", "state", "event_sequence", "event_time", "matched_by")
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVENT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    MATCHED_BY_FIELD_NUMBER: _ClassVar[int]
    rollout: str
    deployment: str
    role: str
    step: int
    challenger_weight: float
    state: str
    event_sequence: int
    event_time: _timestamp_pb2.Timestamp
    matched_by: str
    def __init__(self, rollout: _Optional[str] = ..., deployment: _Optional[str] = ..., role: _Optional[str] = ..., step: _Optional[int] = ..., challenger_weight: _Optional[float] = ..., state: _Optional[str] = ..., event_sequence: _Optional[int] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., matched_by: _Optional[str] = ...) -> None: ...

class MissingLineage(_message.Message):
    __slots__ = ("part", "service", "reason")
    PART_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    part: str
    service: str
    reason: str
    def __init__(self, part: _Optional[str] = ..., service: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PredictionLineage(_message.Message):
    __slots__ = ("record", "model", "version", "deployment", "route", "trace_id", "model_version", "dataset", "validation", "rollout", "rollout_note", "missing")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_NOTE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    record: EvaluationRecord
    model: str
    version: str
    deployment: str
    route: str
    trace_id: str
    model_version: VersionLineage
    dataset: DatasetLineage
    validation: ValidationLineage
    rollout: RolloutLineage
    rollout_note: str
    missing: _containers.RepeatedCompositeFieldContainer[MissingLineage]
    def __init__(self, record: _Optional[_Union[EvaluationRecord, _Mapping]] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., deployment: _Optional[str] = ..., route: _Optional[str] = ..., trace_id: _Optional[str] = ..., model_version: _Optional[_Union[VersionLineage, _Mapping]] = ..., dataset: _Optional[_Union[DatasetLineage, _Mapping]] = ..., validation: _Optional[_Union[ValidationLineage, _Mapping]] = ..., rollout: _Optional[_Union[RolloutLineage, _Mapping]] = ..., rollout_note: _Optional[str] = ..., missing: _Optional[_Iterable[_Union[MissingLineage, _Mapping]]] = ...) -> None: ...

class RaiseAlertRequest(_message.Message):
    __slots__ = ("source", "model", "version", "message", "idempotency_key")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    source: str
    model: str
    version: str
    message: str
    idempotency_key: str
    def __init__(self, source: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., message: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...
