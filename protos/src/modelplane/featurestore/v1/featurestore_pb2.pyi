import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
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

class ValueType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_TYPE_UNSPECIFIED: _ClassVar[ValueType]
    VALUE_TYPE_STRING: _ClassVar[ValueType]
    VALUE_TYPE_INT32: _ClassVar[ValueType]
    VALUE_TYPE_INT64: _ClassVar[ValueType]
    VALUE_TYPE_FLOAT: _ClassVar[ValueType]
    VALUE_TYPE_DOUBLE: _ClassVar[ValueType]
    VALUE_TYPE_BOOL: _ClassVar[ValueType]
    VALUE_TYPE_BYTES: _ClassVar[ValueType]
    VALUE_TYPE_UNIX_TIMESTAMP: _ClassVar[ValueType]

class SourceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_KIND_UNSPECIFIED: _ClassVar[SourceKind]
    SOURCE_KIND_FILE: _ClassVar[SourceKind]
    SOURCE_KIND_POSTGRES: _ClassVar[SourceKind]

class MaterializeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MATERIALIZE_STATE_UNSPECIFIED: _ClassVar[MaterializeState]
    MATERIALIZE_STATE_RUNNING: _ClassVar[MaterializeState]
    MATERIALIZE_STATE_SUCCEEDED: _ClassVar[MaterializeState]
    MATERIALIZE_STATE_SKIPPED: _ClassVar[MaterializeState]

class FeatureStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEATURE_STATUS_UNSPECIFIED: _ClassVar[FeatureStatus]
    FEATURE_STATUS_PRESENT: _ClassVar[FeatureStatus]
    FEATURE_STATUS_NOT_FOUND: _ClassVar[FeatureStatus]
    FEATURE_STATUS_OUTSIDE_MAX_AGE: _ClassVar[FeatureStatus]
    FEATURE_STATUS_NULL_VALUE: _ClassVar[FeatureStatus]

class ColumnKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLUMN_KIND_UNSPECIFIED: _ClassVar[ColumnKind]
    COLUMN_KIND_NUMERIC: _ClassVar[ColumnKind]
    COLUMN_KIND_CATEGORICAL: _ClassVar[ColumnKind]
    COLUMN_KIND_TIMESTAMP: _ClassVar[ColumnKind]
    COLUMN_KIND_BOOL: _ClassVar[ColumnKind]
VALUE_TYPE_UNSPECIFIED: ValueType
VALUE_TYPE_STRING: ValueType
VALUE_TYPE_INT32: ValueType
VALUE_TYPE_INT64: ValueType
VALUE_TYPE_FLOAT: ValueType
VALUE_TYPE_DOUBLE: ValueType
VALUE_TYPE_BOOL: ValueType
VALUE_TYPE_BYTES: ValueType
VALUE_TYPE_UNIX_TIMESTAMP: ValueType
SOURCE_KIND_UNSPECIFIED: SourceKind
SOURCE_KIND_FILE: SourceKind
SOURCE_KIND_POSTGRES: SourceKind
MATERIALIZE_STATE_UNSPECIFIED: MaterializeState
MATERIALIZE_STATE_RUNNING: MaterializeState
MATERIALIZE_STATE_SUCCEEDED: MaterializeState
MATERIALIZE_STATE_SKIPPED: MaterializeState
FEATURE_STATUS_UNSPECIFIED: FeatureStatus
FEATURE_STATUS_PRESENT: FeatureStatus
FEATURE_STATUS_NOT_FOUND: FeatureStatus
FEATURE_STATUS_OUTSIDE_MAX_AGE: FeatureStatus
FEATURE_STATUS_NULL_VALUE: FeatureStatus
COLUMN_KIND_UNSPECIFIED: ColumnKind
COLUMN_KIND_NUMERIC: ColumnKind
COLUMN_KIND_CATEGORICAL: ColumnKind
COLUMN_KIND_TIMESTAMP: ColumnKind
COLUMN_KIND_BOOL: ColumnKind

class Entity(_message.Message):
    __slots__ = ("name", "join_key", "value_type", "description", "tags", "create_time", "update_time")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOIN_KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    join_key: str
    value_type: ValueType
    description: str
    tags: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., join_key: _Optional[str] = ..., value_type: _Optional[_Union[ValueType, str]] = ..., description: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Feature(_message.Message):
    __slots__ = ("name", "value_type", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    value_type: ValueType
    description: str
    def __init__(self, name: _Optional[str] = ..., value_type: _Optional[_Union[ValueType, str]] = ..., description: _Optional[str] = ...) -> None: ...

class DataSource(_message.Message):
    __slots__ = ("name", "kind", "path", "table", "timestamp_field", "created_timestamp_column")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIMESTAMP_COLUMN_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: SourceKind
    path: str
    table: str
    timestamp_field: str
    created_timestamp_column: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[SourceKind, str]] = ..., path: _Optional[str] = ..., table: _Optional[str] = ..., timestamp_field: _Optional[str] = ..., created_timestamp_column: _Optional[str] = ...) -> None: ...

class FeatureView(_message.Message):
    __slots__ = ("name", "entities", "features", "ttl", "source", "online", "description", "tags", "create_time", "update_time", "materialization_intervals")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MATERIALIZATION_INTERVALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    entities: _containers.RepeatedScalarFieldContainer[str]
    features: _containers.RepeatedCompositeFieldContainer[Feature]
    ttl: _duration_pb2.Duration
    source: DataSource
    online: bool
    description: str
    tags: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    materialization_intervals: _containers.RepeatedCompositeFieldContainer[_types_pb2.TimeWindow]
    def __init__(self, name: _Optional[str] = ..., entities: _Optional[_Iterable[str]] = ..., features: _Optional[_Iterable[_Union[Feature, _Mapping]]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., source: _Optional[_Union[DataSource, _Mapping]] = ..., online: _Optional[bool] = ..., description: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., materialization_intervals: _Optional[_Iterable[_Union[_types_pb2.TimeWindow, _Mapping]]] = ...) -> None: ...

class FeatureViewProjection(_message.Message):
    __slots__ = ("feature_view", "features")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature_view: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class FeatureService(_message.Message):
    __slots__ = ("name", "projections", "description", "tags", "create_time", "update_time")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    projections: _containers.RepeatedCompositeFieldContainer[FeatureViewProjection]
    description: str
    tags: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., projections: _Optional[_Iterable[_Union[FeatureViewProjection, _Mapping]]] = ..., description: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApplyRepoRequest(_message.Message):
    __slots__ = ("repo_path", "entities", "feature_views", "feature_services", "dry_run")
    REPO_PATH_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VIEWS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    repo_path: str
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    feature_views: _containers.RepeatedCompositeFieldContainer[FeatureView]
    feature_services: _containers.RepeatedCompositeFieldContainer[FeatureService]
    dry_run: bool
    def __init__(self, repo_path: _Optional[str] = ..., entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ..., feature_views: _Optional[_Iterable[_Union[FeatureView, _Mapping]]] = ..., feature_services: _Optional[_Iterable[_Union[FeatureService, _Mapping]]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ApplyRepoResponse(_message.Message):
    __slots__ = ("entities", "feature_views", "feature_services")
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VIEWS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICES_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    feature_views: _containers.RepeatedCompositeFieldContainer[FeatureView]
    feature_services: _containers.RepeatedCompositeFieldContainer[FeatureService]
    def __init__(self, entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ..., feature_views: _Optional[_Iterable[_Union[FeatureView, _Mapping]]] = ..., feature_services: _Optional[_Iterable[_Union[FeatureService, _Mapping]]] = ...) -> None: ...

class GetEntityRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListEntitiesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEntitiesResponse(_message.Message):
    __slots__ = ("entities", "next_page_token")
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    next_page_token: str
    def __init__(self, entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateEntityRequest(_message.Message):
    __slots__ = ("entity",)
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    entity: Entity
    def __init__(self, entity: _Optional[_Union[Entity, _Mapping]] = ...) -> None: ...

class DeleteEntityRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetFeatureViewRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListFeatureViewsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "entity")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    entity: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., entity: _Optional[str] = ...) -> None: ...

class ListFeatureViewsResponse(_message.Message):
    __slots__ = ("feature_views", "next_page_token")
    FEATURE_VIEWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    feature_views: _containers.RepeatedCompositeFieldContainer[FeatureView]
    next_page_token: str
    def __init__(self, feature_views: _Optional[_Iterable[_Union[FeatureView, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateFeatureViewRequest(_message.Message):
    __slots__ = ("feature_view",)
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    feature_view: FeatureView
    def __init__(self, feature_view: _Optional[_Union[FeatureView, _Mapping]] = ...) -> None: ...

class DeleteFeatureViewRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetFeatureServiceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListFeatureServicesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFeatureServicesResponse(_message.Message):
    __slots__ = ("feature_services", "next_page_token")
    FEATURE_SERVICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    feature_services: _containers.RepeatedCompositeFieldContainer[FeatureService]
    next_page_token: str
    def __init__(self, feature_services: _Optional[_Iterable[_Union[FeatureService, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateFeatureServiceRequest(_message.Message):
    __slots__ = ("feature_service",)
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    feature_service: FeatureService
    def __init__(self, feature_service: _Optional[_Union[FeatureService, _Mapping]] = ...) -> None: ...

class DeleteFeatureServiceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WriteOfflineRowsRequest(_message.Message):
    __slots__ = ("feature_view", "rows")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    rows: _types_pb2.TableData
    def __init__(self, feature_view: _Optional[str] = ..., rows: _Optional[_Union[_types_pb2.TableData, _Mapping]] = ...) -> None: ...

class WriteOfflineRowsResponse(_message.Message):
    __slots__ = ("row_count", "event_time_range")
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    row_count: int
    event_time_range: _types_pb2.TimeWindow
    def __init__(self, row_count: _Optional[int] = ..., event_time_range: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ...) -> None: ...

class PushOnlineRowsRequest(_message.Message):
    __slots__ = ("feature_view", "rows", "also_offline")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ALSO_OFFLINE_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    rows: _types_pb2.TableData
    also_offline: bool
    def __init__(self, feature_view: _Optional[str] = ..., rows: _Optional[_Union[_types_pb2.TableData, _Mapping]] = ..., also_offline: _Optional[bool] = ...) -> None: ...

class PushOnlineRowsResponse(_message.Message):
    __slots__ = ("row_count",)
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    row_count: int
    def __init__(self, row_count: _Optional[int] = ...) -> None: ...

class StreamOnlineRowsRequest(_message.Message):
    __slots__ = ("feature_view", "rows", "also_offline")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ALSO_OFFLINE_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    rows: _types_pb2.TableData
    also_offline: bool
    def __init__(self, feature_view: _Optional[str] = ..., rows: _Optional[_Union[_types_pb2.TableData, _Mapping]] = ..., also_offline: _Optional[bool] = ...) -> None: ...

class RejectedRow(_message.Message):
    __slots__ = ("index", "field", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    field: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StreamOnlineRowsResponse(_message.Message):
    __slots__ = ("received_count", "written_count", "superseded_count", "rejected_count", "rejected")
    RECEIVED_COUNT_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    received_count: int
    written_count: int
    superseded_count: int
    rejected_count: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedRow]
    def __init__(self, received_count: _Optional[int] = ..., written_count: _Optional[int] = ..., superseded_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedRow, _Mapping]]] = ...) -> None: ...

class MaterializeRequest(_message.Message):
    __slots__ = ("feature_views", "start_time", "end_time")
    FEATURE_VIEWS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    feature_views: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, feature_views: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MaterializeProgress(_message.Message):
    __slots__ = ("feature_view", "state", "range", "rows_written", "views_done", "views_total")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    ROWS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    VIEWS_DONE_FIELD_NUMBER: _ClassVar[int]
    VIEWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    state: MaterializeState
    range: _types_pb2.TimeWindow
    rows_written: int
    views_done: int
    views_total: int
    def __init__(self, feature_view: _Optional[str] = ..., state: _Optional[_Union[MaterializeState, str]] = ..., range: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ..., rows_written: _Optional[int] = ..., views_done: _Optional[int] = ..., views_total: _Optional[int] = ...) -> None: ...

class GetOnlineFeaturesRequest(_message.Message):
    __slots__ = ("feature_refs", "feature_service", "entities", "full_feature_names")
    class EntitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.ValueList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.ValueList, _Mapping]] = ...) -> None: ...
    FEATURE_REFS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FULL_FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    feature_refs: _containers.RepeatedScalarFieldContainer[str]
    feature_service: str
    entities: _containers.MessageMap[str, _types_pb2.ValueList]
    full_feature_names: bool
    def __init__(self, feature_refs: _Optional[_Iterable[str]] = ..., feature_service: _Optional[str] = ..., entities: _Optional[_Mapping[str, _types_pb2.ValueList]] = ..., full_feature_names: _Optional[bool] = ...) -> None: ...

class OnlineFeatureColumn(_message.Message):
    __slots__ = ("name", "values", "statuses", "event_times")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIMES_FIELD_NUMBER: _ClassVar[int]
    name: str
    values: _containers.RepeatedCompositeFieldContainer[_types_pb2.Value]
    statuses: _containers.RepeatedScalarFieldContainer[FeatureStatus]
    event_times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    def __init__(self, name: _Optional[str] = ..., values: _Optional[_Iterable[_Union[_types_pb2.Value, _Mapping]]] = ..., statuses: _Optional[_Iterable[_Union[FeatureStatus, str]]] = ..., event_times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ...) -> None: ...

class GetOnlineFeaturesResponse(_message.Message):
    __slots__ = ("columns",)
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[OnlineFeatureColumn]
    def __init__(self, columns: _Optional[_Iterable[_Union[OnlineFeatureColumn, _Mapping]]] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("id", "name", "version", "feature_refs", "feature_service", "time_range", "row_count", "content_hash", "storage_uri", "columns", "join_keys", "timestamp_column", "description", "tags", "create_time")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_REFS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    STORAGE_URI_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    JOIN_KEYS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_COLUMN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    version: int
    feature_refs: _containers.RepeatedScalarFieldContainer[str]
    feature_service: str
    time_range: _types_pb2.TimeWindow
    row_count: int
    content_hash: str
    storage_uri: str
    columns: _containers.RepeatedCompositeFieldContainer[DatasetColumn]
    join_keys: _containers.RepeatedScalarFieldContainer[str]
    timestamp_column: str
    description: str
    tags: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., feature_refs: _Optional[_Iterable[str]] = ..., feature_service: _Optional[str] = ..., time_range: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ..., row_count: _Optional[int] = ..., content_hash: _Optional[str] = ..., storage_uri: _Optional[str] = ..., columns: _Optional[_Iterable[_Union[DatasetColumn, _Mapping]]] = ..., join_keys: _Optional[_Iterable[str]] = ..., timestamp_column: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DatasetColumn(_message.Message):
    __slots__ = ("name", "arrow_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARROW_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    arrow_type: str
    def __init__(self, name: _Optional[str] = ..., arrow_type: _Optional[str] = ...) -> None: ...

class EntityRowsFromView(_message.Message):
    __slots__ = ("feature_view", "columns", "time_range")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    columns: _containers.RepeatedScalarFieldContainer[str]
    time_range: _types_pb2.TimeWindow
    def __init__(self, feature_view: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ..., time_range: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ...) -> None: ...

class CreateDatasetRequest(_message.Message):
    __slots__ = ("dataset", "entity_rows", "entity_rows_from_view", "timestamp_column")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ROWS_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ROWS_FROM_VIEW_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_COLUMN_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    entity_rows: _types_pb2.TableData
    entity_rows_from_view: EntityRowsFromView
    timestamp_column: str
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ..., entity_rows: _Optional[_Union[_types_pb2.TableData, _Mapping]] = ..., entity_rows_from_view: _Optional[_Union[EntityRowsFromView, _Mapping]] = ..., timestamp_column: _Optional[str] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "name")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    name: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ReadDatasetRequest(_message.Message):
    __slots__ = ("id", "columns", "chunk_rows")
    ID_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ROWS_FIELD_NUMBER: _ClassVar[int]
    id: str
    columns: _containers.RepeatedScalarFieldContainer[str]
    chunk_rows: int
    def __init__(self, id: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ..., chunk_rows: _Optional[int] = ...) -> None: ...

class ReadDatasetResponse(_message.Message):
    __slots__ = ("arrow_ipc", "row_count")
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    arrow_ipc: bytes
    row_count: int
    def __init__(self, arrow_ipc: _Optional[bytes] = ..., row_count: _Optional[int] = ...) -> None: ...

class ComputeDataQualityRequest(_message.Message):
    __slots__ = ("dataset", "feature_view", "rows", "label_column", "timestamp_column", "entity_columns", "time_range", "histogram_bins", "top_categories", "gap_threshold")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_COLUMN_FIELD_NUMBER: _ClassVar[int]
    ENTITY_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    TIME_RANGE_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_BINS_FIELD_NUMBER: _ClassVar[int]
    TOP_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    GAP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    feature_view: str
    rows: _types_pb2.TableData
    label_column: str
    timestamp_column: str
    entity_columns: _containers.RepeatedScalarFieldContainer[str]
    time_range: _types_pb2.TimeWindow
    histogram_bins: int
    top_categories: int
    gap_threshold: _duration_pb2.Duration
    def __init__(self, dataset: _Optional[str] = ..., feature_view: _Optional[str] = ..., rows: _Optional[_Union[_types_pb2.TableData, _Mapping]] = ..., label_column: _Optional[str] = ..., timestamp_column: _Optional[str] = ..., entity_columns: _Optional[_Iterable[str]] = ..., time_range: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ..., histogram_bins: _Optional[int] = ..., top_categories: _Optional[int] = ..., gap_threshold: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class TimeGap(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HistogramBin(_message.Message):
    __slots__ = ("lower", "upper", "count")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    lower: float
    upper: float
    count: int
    def __init__(self, lower: _Optional[float] = ..., upper: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class CategoryCount(_message.Message):
    __slots__ = ("value", "count")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    value: str
    count: int
    def __init__(self, value: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class ColumnStatistics(_message.Message):
    __slots__ = ("name", "kind", "arrow_type", "count", "missing_count", "missing_fraction", "distinct_count", "mean", "std", "min", "max", "quantile_levels", "quantiles", "histogram", "top_categories")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARROW_TYPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MISSING_COUNT_FIELD_NUMBER: _ClassVar[int]
    MISSING_FRACTION_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    QUANTILE_LEVELS_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    TOP_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ColumnKind
    arrow_type: str
    count: int
    missing_count: int
    missing_fraction: float
    distinct_count: int
    mean: float
    std: float
    min: float
    max: float
    quantile_levels: _containers.RepeatedScalarFieldContainer[float]
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    histogram: _containers.RepeatedCompositeFieldContainer[HistogramBin]
    top_categories: _containers.RepeatedCompositeFieldContainer[CategoryCount]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ColumnKind, str]] = ..., arrow_type: _Optional[str] = ..., count: _Optional[int] = ..., missing_count: _Optional[int] = ..., missing_fraction: _Optional[float] = ..., distinct_count: _Optional[int] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., quantile_levels: _Optional[_Iterable[float]] = ..., quantiles: _Optional[_Iterable[float]] = ..., histogram: _Optional[_Iterable[_Union[HistogramBin, _Mapping]]] = ..., top_categories: _Optional[_Iterable[_Union[CategoryCount, _Mapping]]] = ...) -> None: ...

class LabelQuality(_message.Message):
    __slots__ = ("label_column", "unlabeled_count", "unlabeled_fraction", "conflicting_groups", "conflicting_rows", "label_counts")
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    UNLABELED_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNLABELED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    CONFLICTING_GROUPS_FIELD_NUMBER: _ClassVar[int]
    CONFLICTING_ROWS_FIELD_NUMBER: _ClassVar[int]
    LABEL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    label_column: str
    unlabeled_count: int
    unlabeled_fraction: float
    conflicting_groups: int
    conflicting_rows: int
    label_counts: _containers.RepeatedCompositeFieldContainer[CategoryCount]
    def __init__(self, label_column: _Optional[str] = ..., unlabeled_count: _Optional[int] = ..., unlabeled_fraction: _Optional[float] = ..., conflicting_groups: _Optional[int] = ..., conflicting_rows: _Optional[int] = ..., label_counts: _Optional[_Iterable[_Union[CategoryCount, _Mapping]]] = ...) -> None: ...

class DataQualityReport(_message.Message):
    __slots__ = ("id", "dataset", "feature_view", "rows_hash", "create_time", "row_count", "timestamp_column", "entity_columns", "time_coverage", "history_length", "gaps", "duplicate_events", "entity_count", "label", "columns")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    ROWS_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_COLUMN_FIELD_NUMBER: _ClassVar[int]
    ENTITY_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    TIME_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    GAPS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_EVENTS_FIELD_NUMBER: _ClassVar[int]
    ENTITY_COUNT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    id: str
    dataset: str
    feature_view: str
    rows_hash: str
    create_time: _timestamp_pb2.Timestamp
    row_count: int
    timestamp_column: str
    entity_columns: _containers.RepeatedScalarFieldContainer[str]
    time_coverage: _types_pb2.TimeWindow
    history_length: _duration_pb2.Duration
    gaps: _containers.RepeatedCompositeFieldContainer[TimeGap]
    duplicate_events: int
    entity_count: int
    label: LabelQuality
    columns: _containers.RepeatedCompositeFieldContainer[ColumnStatistics]
    def __init__(self, id: _Optional[str] = ..., dataset: _Optional[str] = ..., feature_view: _Optional[str] = ..., rows_hash: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., row_count: _Optional[int] = ..., timestamp_column: _Optional[str] = ..., entity_columns: _Optional[_Iterable[str]] = ..., time_coverage: _Optional[_Union[_types_pb2.TimeWindow, _Mapping]] = ..., history_length: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., gaps: _Optional[_Iterable[_Union[TimeGap, _Mapping]]] = ..., duplicate_events: _Optional[int] = ..., entity_count: _Optional[int] = ..., label: _Optional[_Union[LabelQuality, _Mapping]] = ..., columns: _Optional[_Iterable[_Union[ColumnStatistics, _Mapping]]] = ...) -> None: ...

class GetDataQualityReportRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListDataQualityReportsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "dataset", "feature_view", "full_view")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    FULL_VIEW_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    dataset: str
    feature_view: str
    full_view: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., dataset: _Optional[str] = ..., feature_view: _Optional[str] = ..., full_view: _Optional[bool] = ...) -> None: ...

class ListDataQualityReportsResponse(_message.Message):
    __slots__ = ("reports", "next_page_token")
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[DataQualityReport]
    next_page_token: str
    def __init__(self, reports: _Optional[_Iterable[_Union[DataQualityReport, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
