"""Feature definitions, ingestion and materialization over the Feast SDK.

One ``FeatureRepository`` owns one ``feast.FeatureStore`` (configured in code
from the settings) and the offline tables its views read. Every method is
blocking (Feast, pandas, SQL): the servicer calls them in a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from modelplane.featurestore.definitions import (
    EntitySpec,
    FeatureServiceSpec,
    FeatureViewSpec,
    SourceKind,
    SourceSpec,
    ValueKind,
    check_table_identifier,
    entity_from_feast,
    entity_to_feast,
    feature_service_from_feast,
    feature_service_to_feast,
    feature_view_from_feast,
    feature_view_to_feast,
    source_from_feast,
)
from modelplane.featurestore.feast_config import PostgresParams, build_repo_config
from modelplane.featurestore.offline_tables import (
    OfflineTables,
    ParquetOfflineTables,
    PostgresOfflineTables,
)
from modelplane.featurestore.online_write_lock import OnlineWriteLock
from modelplane.featurestore.row_schema import ViewColumns, conform_rows
from modelplane.featurestore.settings import FeatureStoreSettings
from modelplane.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)

log = logging.getLogger("modelplane.featurestore")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ResolvedFeature:
    ref: str
    view: str
    feature: str
    kind: ValueKind


@dataclass(frozen=True)
class MaterializeEvent:
    feature_view: str
    state: str  # RUNNING | SUCCEEDED | SKIPPED
    start: datetime
    end: datetime
    rows_written: int
    views_done: int
    views_total: int


@dataclass(frozen=True)
class AppliedRepo:
    entities: list[EntitySpec]
    feature_views: list[FeatureViewSpec]
    feature_services: list[FeatureServiceSpec]


@dataclass
class RepoObjects:
    entities: list[Any]
    feature_views: list[Any]
    feature_services: list[Any]


_IMPORT_LOCK = threading.Lock()


def load_repo_objects(root: Path) -> RepoObjects:
    """Import a Feast repo's Python files and collect its objects.

    Like ``feast.repo_operations.parse_repo``, but by file location instead of
    module paths relative to the working directory (a server has one cwd).
    """
    import importlib.util
    import sys
    import uuid as _uuid

    from feast import Entity, FeatureService, FeatureView
    from feast.repo_operations import get_repo_files

    found = RepoObjects([], [], [])
    with _IMPORT_LOCK:
        sys.path.insert(0, str(root))
        try:
            for file in get_repo_files(root):
                name = f"_mp_feature_repo_{_uuid.uuid4().hex[:8]}_{file.stem}"
                spec = importlib.util.spec_from_file_location(name, file)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                for attr in dir(module):
                    obj = getattr(module, attr)
                    for kind, bucket in ((Entity, found.entities),
                                         (FeatureView, found.feature_views),
                                         (FeatureService, found.feature_services)):
                        if type(obj) is kind and not any(o is obj for o in bucket):
                            bucket.append(obj)
        finally:
            sys.path.remove(str(root))
    return found


def utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class FeatureRepository:
    def __init__(self, settings: FeatureStoreSettings) -> None:
        from feast import FeatureStore

        self.settings = settings
        self.config = build_repo_config(settings)
        self.store = FeatureStore(config=self.config)
        self.offline: OfflineTables
        if settings.offline_store == "postgres":
            params = PostgresParams.from_url(settings.database_url)
            self.offline = PostgresOfflineTables(params.conninfo)
        else:
            self.offline = ParquetOfflineTables(settings.offline_root)
        self.project = settings.project
        #: bumped on every definition change; online plans built before are stale
        self.generation = 0
        self._write_lock = threading.RLock()
        # ... and across processes (replicas) for the newest-event rule's read-and-write
        self.online_lock = OnlineWriteLock.for_settings(settings)
        # Feast's SQL registry cache does not see its own writes reliably: read through it.
        self._cache = settings.registry == "file"

    # ---------------------------------------------------------------- registry reads

    def _registry(self) -> Any:
        return self.store.registry

    def refresh(self) -> None:
        self.store.refresh_registry()
        self.generation += 1

    def _changed(self) -> None:
        # Feast's registry cache does not always see its own writes (SQL registry): re-read it.
        self.refresh()

    def feast_entities(self) -> dict[str, Any]:
        return {e.name: e for e in self.store.list_entities(allow_cache=self._cache)
                if not e.name.startswith("__")}

    def feast_views(self) -> dict[str, Any]:
        return {v.name: v for v in self.store.list_feature_views(allow_cache=self._cache)}

    def feast_view(self, name: str, field: str = "feature_view") -> Any:
        from feast.errors import FeatureViewNotFoundException

        try:
            return self.store.get_feature_view(name, allow_registry_cache=self._cache)
        except FeatureViewNotFoundException:
            raise NotFound(f"feature view {name!r} not found", reason="FEATURE_VIEW_NOT_FOUND",
                           metadata={"feature_view": name}) from None

    def entity_specs(self) -> dict[str, EntitySpec]:
        return {name: entity_from_feast(e) for name, e in self.feast_entities().items()}

    def get_entity(self, name: str) -> EntitySpec:
        entity = self.feast_entities().get(name)
        if entity is None:
            raise NotFound(f"entity {name!r} not found", reason="ENTITY_NOT_FOUND",
                           metadata={"entity": name})
        return entity_from_feast(entity)

    def list_entities(self) -> list[EntitySpec]:
        return sorted(self.entity_specs().values(), key=lambda e: e.name)

    def get_feature_view(self, name: str) -> FeatureViewSpec:
        return feature_view_from_feast(self.feast_view(name))

    def list_feature_views(self, entity: str = "") -> list[FeatureViewSpec]:
        views = [feature_view_from_feast(v) for v in self.feast_views().values()]
        if entity:
            views = [v for v in views if entity in v.entities]
        return sorted(views, key=lambda v: v.name)

    def get_feature_service(self, name: str) -> FeatureServiceSpec:
        return feature_service_from_feast(self._feast_service(name))

    def _feast_service(self, name: str) -> Any:
        from feast.errors import FeatureServiceNotFoundException

        try:
            return self.store.get_feature_service(name, allow_cache=self._cache)
        except FeatureServiceNotFoundException:
            raise NotFound(f"feature service {name!r} not found",
                           reason="FEATURE_SERVICE_NOT_FOUND",
                           metadata={"feature_service": name}) from None

    def list_feature_services(self) -> list[FeatureServiceSpec]:
        services = [feature_service_from_feast(s)
                    for s in self.store.list_feature_services()]
        return sorted(services, key=lambda s: s.name)

    def key_kinds(self) -> dict[str, ValueKind]:
        return {e.key: e.value_kind for e in self.entity_specs().values()}

    def view_columns(self, view: FeatureViewSpec) -> ViewColumns:
        kinds = {}
        for entity in self.entity_specs().values():
            kinds[entity.key] = entity.value_kind
        return ViewColumns.of(view, kinds)

    # ---------------------------------------------------------------- feature refs

    def resolve_refs(self, refs: Sequence[str], service: str = "",
                     field: str = "feature_refs") -> list[ResolvedFeature]:
        """Validated ``view:feature`` refs (or a feature service's), in order."""
        if service:
            if refs:
                raise InvalidArgument("give feature_refs or feature_service, not both",
                                      reason="REFS_AND_SERVICE",
                                      field_violations=[FieldViolation(
                                          "feature_service", "set together with feature_refs")])
            svc = self._feast_service(service)
            refs = [f"{p.name}:{f.name}" for p in svc.feature_view_projections for f in p.features]
        if not refs:
            raise InvalidArgument("no features requested: give feature_refs or feature_service",
                                  reason="NO_FEATURES",
                                  field_violations=[FieldViolation(field, "must not be empty")])
        views = self.feast_views()
        out: list[ResolvedFeature] = []
        seen: set[str] = set()
        for i, ref in enumerate(refs):
            path = f"{field}[{i}]"
            view_name, sep, feature = ref.partition(":")
            if not sep or not view_name or not feature or ":" in feature:
                raise InvalidArgument(f"{path}: {ref!r} is not a "
                                      "`<feature_view>:<feature>` reference",
                                      reason="BAD_FEATURE_REF", metadata={"feature_ref": ref},
                                      field_violations=[FieldViolation(path,
                                                                       "expected view:feature")])
            view = views.get(view_name)
            if view is None:
                raise NotFound(f"{path}: feature view {view_name!r} of {ref!r} not found",
                               reason="FEATURE_VIEW_NOT_FOUND",
                               metadata={"feature_ref": ref, "feature_view": view_name})
            match = next((f for f in view.features if f.name == feature), None)
            if match is None:
                raise InvalidArgument(
                    f"{path}: feature view {view_name!r} has no feature {feature!r}",
                    reason="FEATURE_NOT_FOUND", metadata={"feature_ref": ref},
                    field_violations=[FieldViolation(path, f"unknown feature {ref!r}")])
            if ref in seen:
                raise InvalidArgument(f"{path}: {ref!r} is requested twice",
                                      reason="DUPLICATE_FEATURE_REF",
                                      metadata={"feature_ref": ref},
                                      field_violations=[FieldViolation(path, "duplicate")])
            seen.add(ref)
            out.append(ResolvedFeature(ref, view_name, feature,
                                       ValueKind.from_feast_dtype(match.dtype)))
        return out

    # ---------------------------------------------------------------- definitions

    def _confine_source(self, source: SourceSpec, field: str) -> None:
        """A caller-named source under the storage policy: a file path under a storage
        root (relative paths under the data dir, a wildcard only in the file name,
        rewritten to the resolved path), a PostgreSQL ``[schema.]table`` identifier."""
        if source.kind == SourceKind.POSTGRES or (source.kind is None and source.table):
            check_table_identifier(source.table, f"{field}.table")
        elif source.path:
            loc = self.settings.storage_policy.locate(
                source.path, f"{field}.path", base=self.settings.data_dir, allow_glob=True)
            source.path = loc.target

    def _prepare_view(self, spec: FeatureViewSpec, entities: dict[str, EntitySpec],
                      field: str) -> Any:
        if spec.source is None or not (spec.source.path or spec.source.table):
            default = self.offline.default_source(spec.name)
            if spec.source is not None:
                default.timestamp_field = spec.source.timestamp_field or default.timestamp_field
                default.created_timestamp_column = spec.source.created_timestamp_column
                default.name = spec.source.name or default.name
            spec.source = default
        if spec.source.kind is None:
            spec.source.kind = self.offline.kind
        if spec.source.kind != self.offline.kind:
            raise InvalidArgument(
                f"{field}.source.kind: this server's offline store reads {self.offline.kind.value} "
                f"sources, not {spec.source.kind.value}", reason="SOURCE_KIND_MISMATCH",
                metadata={"feature_view": spec.name},
                field_violations=[FieldViolation(f"{field}.source.kind",
                                                 "wrong offline store kind")])
        else:
            self._confine_source(spec.source, f"{field}.source")
        view = feature_view_to_feast(spec, entities, field)
        spec.join_keys = [entities[e].key for e in spec.entities]
        return view

    def apply(self, entities: Sequence[EntitySpec] = (), views: Sequence[FeatureViewSpec] = (),
              services: Sequence[FeatureServiceSpec] = (), *, dry_run: bool = False,
              create_only: bool = False) -> AppliedRepo:
        """Validate and apply objects (replacing same-named ones unless ``create_only``)."""
        with self._write_lock:
            known_entities = self.entity_specs()
            known_views = self.feast_views()
            known_services = {s.name for s in self.store.list_feature_services()}
            if create_only:
                for kind, names, known in (("entity", [e.name for e in entities], known_entities),
                                           ("feature view", [v.name for v in views], known_views),
                                           ("feature service", [s.name for s in services],
                                            known_services)):
                    for name in names:
                        if name in known:
                            key = kind.replace(" ", "_")
                            raise AlreadyExists(f"{kind} {name!r} already exists",
                                                reason=f"{key.upper()}_EXISTS",
                                                metadata={key: name})
            feast_objects: list[Any] = []
            all_entities = dict(known_entities)
            for i, e in enumerate(entities):
                path = f"entities[{i}]" if not create_only else "entity"
                feast_objects.append(entity_to_feast(e, path))
                all_entities[e.name] = e
            all_views = dict(known_views)
            for i, v in enumerate(views):
                fv = self._prepare_view(v, all_entities, f"feature_views[{i}]" if not create_only
                                        else "feature_view")
                feast_objects.append(fv)
                all_views[v.name] = fv
            for i, s in enumerate(services):
                feast_objects.append(feature_service_to_feast(
                    s, all_views,
                    f"feature_services[{i}]" if not create_only else "feature_service"))
            if dry_run:
                return AppliedRepo(list(entities), list(views), list(services))
            for v in views:
                assert v.source is not None
                self.offline.ensure(v.source, ViewColumns.of(v, {e.key: e.value_kind
                                                               for e in all_entities.values()}))
            self.store.apply(feast_objects)
            self._changed()
            return AppliedRepo([self.get_entity(e.name) for e in entities],
                               [self.get_feature_view(v.name) for v in views],
                               [self.get_feature_service(s.name) for s in services])

    def apply_directory(self, path: str, *, dry_run: bool = False,
                        caller_named: bool = True) -> AppliedRepo:
        """Apply every Feast object defined by the Python files under ``path``.

        A caller-named ``path`` (ApplyRepo) and its sources follow the storage policy:
        the repo's Python runs in this process. The operator's own ``REPO`` setting
        (``caller_named=False``) is trusted as configured."""
        if caller_named:
            root: Path | None = self.settings.storage_policy.locate(path, "repo_path").path
        else:
            root = Path(path).resolve()
        if root is None or not root.is_dir():
            raise InvalidArgument(f"repo_path: {path!r} is not a directory on the server",
                                  reason="REPO_NOT_FOUND", metadata={"repo_path": path},
                                  field_violations=[FieldViolation("repo_path", "not a directory")])
        try:
            contents = load_repo_objects(root)
        except Exception as exc:  # noqa: BLE001 - user code: report, don't crash
            raise InvalidArgument(f"repo_path: the feature repo failed to load: {exc}",
                                  reason="REPO_INVALID", metadata={"repo_path": path},
                                  field_violations=[FieldViolation("repo_path",
                                                                   str(exc)[:500])]) from None
        for view in contents.feature_views if caller_named else ():
            self._confine_source(source_from_feast(view.batch_source),
                                 f"repo_path: feature view {view.name!r} source")
        with self._write_lock:
            objects = [*contents.entities, *contents.feature_views, *contents.feature_services]
            applied_entities = [entity_from_feast(e) for e in contents.entities]
            if dry_run:
                return AppliedRepo(applied_entities,
                                   [feature_view_from_feast(v) for v in contents.feature_views],
                                   [feature_service_from_feast(s)
                                    for s in contents.feature_services])
            self.store.apply(objects)
            self._changed()
            return AppliedRepo([self.get_entity(e.name) for e in contents.entities],
                               [self.get_feature_view(v.name) for v in contents.feature_views],
                               [self.get_feature_service(s.name)
                                for s in contents.feature_services])

    def delete_entity(self, name: str) -> None:
        with self._write_lock:
            self.get_entity(name)
            users = [v.name for v in self.feast_views().values() if name in v.entities]
            if users:
                raise FailedPrecondition(f"entity {name!r} is used by feature view {users[0]!r}",
                                         reason="ENTITY_IN_USE",
                                         metadata={"entity": name, "feature_view": users[0]})
            self._registry().delete_entity(name, self.project, commit=True)
            self._changed()

    def delete_feature_view(self, name: str) -> None:
        with self._write_lock:
            view = self.feast_view(name)
            for svc in self.store.list_feature_services():
                if any(p.name == name for p in svc.feature_view_projections):
                    raise FailedPrecondition(
                        f"feature view {name!r} is used by feature service {svc.name!r}",
                        reason="FEATURE_VIEW_IN_USE",
                        metadata={"feature_view": name, "feature_service": svc.name})
            self.store.apply([], objects_to_delete=[view], partial=False)
            self._changed()

    def delete_feature_service(self, name: str) -> None:
        with self._write_lock:
            self._feast_service(name)
            self.store.delete_feature_service(name)
            self._changed()

    # ---------------------------------------------------------------- ingestion

    def conform(self, view_name: str, rows: pa.Table,
                field: str = "rows") -> tuple[FeatureViewSpec, pa.Table]:
        view = self.get_feature_view(view_name)
        table = conform_rows(rows, self.view_columns(view), field=field,
                             subject={"feature_view": view_name})
        return view, table

    def write_offline(self, view_name: str,
                      rows: pa.Table) -> tuple[int, datetime | None, datetime | None]:
        view, table = self.conform(view_name, rows)
        assert view.source is not None
        if table.num_rows:
            self.offline.append(view.source, table)
        return table.num_rows, *self._time_range(table, view.source.timestamp_field)

    @staticmethod
    def _time_range(table: pa.Table, column: str) -> tuple[datetime | None, datetime | None]:
        import pyarrow.compute as pc

        if not table.num_rows:
            return None, None
        bounds = pc.min_max(table.column(column)).as_py()
        return bounds["min"], bounds["max"]

    def push_online(self, view_name: str, rows: pa.Table, also_offline: bool,
                    current_event_seconds: Any) -> int:
        """Write ``rows`` to the online store (latest event per key; never older than stored).

        ``current_event_seconds(view, key_rows) -> list[float]`` reads the stored
        event times (-inf = none) for the rows' keys.
        """
        view, table = self.conform(view_name, rows)
        return self.push_conformed(view, table, also_offline, current_event_seconds)

    def push_conformed(self, view: FeatureViewSpec, table: pa.Table, also_offline: bool,
                       current_event_seconds: Any) -> int:
        """``push_online`` for rows already conformed to ``view``; returns the rows written.

        Feast's online write is an unconditional upsert on the SQLite and
        PostgreSQL stores (its Redis store skips rows not newer than the stored
        one), so the newest-event rule is enforced here, for every store alike:
        the newest row per key in ``table`` (on equal event times the first to
        arrive), written only if strictly newer than what the store holds, so an
        equal-time replay is a no-op as on Redis. The stored event times are read
        and the rows written under one lock, so two pushes in this process cannot
        interleave between the check and the write, and under
        :class:`OnlineWriteLock` (a file lock, a PostgreSQL advisory lock or a
        Redis lock, per view), so replicas sharing the online store cannot either.
        """
        assert view.source is not None
        if not table.num_rows:
            return 0
        ts_col = view.source.timestamp_field
        df = table.to_pandas()
        df = df.sort_values(ts_col, ascending=False, kind="stable").drop_duplicates(
            view.join_keys, keep="first")
        if also_offline:
            self.offline.append(view.source, table)
        with self._write_lock, self.online_lock.hold(view.name):
            stored = current_event_seconds(view, {k: df[k].tolist() for k in view.join_keys})
            newer = (df[ts_col].map(lambda t: t.timestamp()).to_numpy()
                     > pd.Series(stored).to_numpy())
            df = df[newer]
            if len(df):
                try:
                    self.store.write_to_online_store(view.name, df.reset_index(drop=True))
                except KeyError:
                    # Feast looks the view up in its cached registry, which may predate a
                    # view applied moments ago (seen on the PostgreSQL registry): refresh once.
                    self.store.refresh_registry()
                    self.store.write_to_online_store(view.name, df.reset_index(drop=True))
        return len(df)

    # ---------------------------------------------------------------- materialization

    def materialize(self, view_names: Sequence[str], start: datetime | None,
                    end: datetime | None) -> Iterator[MaterializeEvent]:
        end = utc(end) if end else datetime.now(UTC)
        if start is not None and utc(start) >= end:
            raise InvalidArgument("start_time must be before end_time", reason="BAD_TIME_RANGE",
                                  field_violations=[FieldViolation("start_time",
                                                                   "not before end_time")])
        if view_names:
            views = [self.feast_view(n, "feature_views") for n in view_names]
        else:
            views = [v for v in self.feast_views().values() if v.online]
        total = len(views)
        for done, view in enumerate(views):
            spec = feature_view_from_feast(view)
            if start is not None:
                begin = utc(start)
            elif spec.materialization_intervals:
                begin = max(b for _, b in spec.materialization_intervals)
            else:
                begin = end - spec.ttl if spec.ttl.total_seconds() > 0 else EPOCH
            if begin >= end:
                yield MaterializeEvent(view.name, "SKIPPED", begin, end, 0, done + 1, total)
                continue
            yield MaterializeEvent(view.name, "RUNNING", begin, end, 0, done, total)
            assert spec.source is not None
            moved = self._entities_in_range(spec, begin, end)
            with self._write_lock:
                self.store.materialize(begin, end, feature_views=[view.name])
            yield MaterializeEvent(view.name, "SUCCEEDED", begin, end, moved, done + 1, total)

    def _entities_in_range(self, view: FeatureViewSpec, start: datetime, end: datetime) -> int:
        assert view.source is not None
        table = self.offline.read(view.source, start, end, columns=view.join_keys)
        if not table.num_rows:
            return 0
        return table.group_by(view.join_keys).aggregate([]).num_rows

    # ---------------------------------------------------------------- training sets

    def historical_features(self, entity_rows: pa.Table, timestamp_column: str,
                            features: Sequence[ResolvedFeature]) -> pa.Table:
        """Point-in-time join of ``features`` onto ``entity_rows`` (row order kept)."""
        df = entity_rows.to_pandas()
        df["__mp_row"] = range(len(df))
        if timestamp_column != "event_timestamp":
            df = df.rename(columns={timestamp_column: "event_timestamp"})
        # Feast's offline stores keep microseconds; a nanosecond entity time cannot be cast
        # to them. Flooring moves the cut-off earlier, so no later value can leak in.
        df["event_timestamp"] = pd.to_datetime(df["event_timestamp"], utc=True).dt.floor("us")
        names = [f.feature for f in features]
        full = len(set(names)) != len(names) or any(n in df.columns for n in names)
        job = self.store.get_historical_features(entity_df=df, features=[f.ref for f in features],
                                                 full_feature_names=full)
        out = job.to_df().sort_values("__mp_row").drop(columns="__mp_row").reset_index(drop=True)
        if timestamp_column != "event_timestamp":
            out = out.rename(columns={"event_timestamp": timestamp_column})
        if full:
            out = out.rename(columns={f"{f.view}__{f.feature}": f.ref.replace(":", "__")
                                      for f in features})
        return pa.Table.from_pandas(out, preserve_index=False)

    def read_source(self, view_name: str, start: datetime | None = None,
                    end: datetime | None = None,
                    columns: Sequence[str] | None = None) -> tuple[FeatureViewSpec, pa.Table]:
        view = self.get_feature_view(view_name)
        assert view.source is not None
        return view, self.offline.read(view.source, start, end, columns)

    def close(self) -> None:
        provider = getattr(self.store, "_provider", None)
        online_store = getattr(provider, "_online_store", None) if provider else None
        conn = getattr(online_store, "_conn", None)
        if conn is not None and hasattr(conn, "close"):
            conn.close()

