"""The ClickHouse evaluation store (#15 item 6): records, actuals, profiles and
confusion counts in ClickHouse tables, through :mod:`.clickhouse_client` (chDB
in-process, or a server over HTTP).

Layout (database ``<db>``; see the README's design notes for why):

- ``obs_records``: one row a record, MergeTree ordered by (model, time, id),
  partitioned by day (retention drops whole days), with a projection ordered by
  prediction id (the new-id check of ingest, :meth:`model_of`). Each feature,
  tag and score of a model's catalog has a typed column ``c_<hash>`` whose
  DEFAULT extracts it from the record's JSON: ClickHouse fills it at insert, and
  computes it for the parts written before the column was added.
- ``obs_actuals``: actuals are appended (ClickHouse has no cheap UPDATE), each
  with a write sequence; readers take the newest per prediction id (``argMax``),
  a ReplacingMergeTree folds the superseded ones in the background. Retention
  deletes the actuals of the records' days it drops (before dropping them).
- ``obs_profiles`` (ReplacingMergeTree, newest sequence per hour wins),
  ``obs_confusion`` and ``obs_profile_gaps`` (SummingMergeTree: ingest appends
  +/- deltas, readers sum), ``obs_columns`` (the catalogs), ``obs_attributions``
  (set after ingest: newest per record wins).

Alerts, webhook deliveries, the monitor lease and documents need transactions
and row locks, which an OLAP engine does not give: a companion store keeps them
(the embedded DuckDB file, or PostgreSQL when a database URL is set too).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from modelplane.observability.columnar import ColumnarBatch, record_table
from modelplane.observability.profiles import HOUR_US, Profile, ProfileKey, build_profiles
from modelplane.observability.records import ColumnKind, ColumnSource, Environment
from modelplane.observability.store import aggregation as agg
from modelplane.observability.store.base import (
    DeliveryState,
    EvaluationStore,
    ModelSummary,
    NewDelivery,
    RetentionCutoffs,
    RetentionResult,
    ScanSpec,
    WebhookDelivery,
    profile_bounds,
)
from modelplane.observability.store.clickhouse_client import ClickHouseClient
from modelplane.observability.store.encoding import (
    RECORD_ARROW_SCHEMA,
    RECORD_COLUMNS,
    SCORE_SOURCE,
    ActualRow,
    Catalog,
    ConfusionRow,
    RecordRow,
    record_rows_table,
)
from modelplane.observability.store.frames import Frame, frame_from_arrow, to_us

_TABLES = """
CREATE TABLE IF NOT EXISTS {db}.obs_records (
    prediction_id String, model LowCardinality(String), version LowCardinality(String),
    environment Int16, prediction_time DateTime64(6, 'UTC'), features String,
    prediction_label Nullable(String), prediction_number Nullable(Float64),
    scores Nullable(String), tags Nullable(String), trace_id Nullable(String),
    latency_us Nullable(Int64), attributions Nullable(String),
    PROJECTION by_id (SELECT prediction_id, model ORDER BY prediction_id)
) ENGINE = MergeTree PARTITION BY toDate(prediction_time)
ORDER BY (model, prediction_time, prediction_id);
CREATE TABLE IF NOT EXISTS {db}.obs_actuals (
    prediction_id String, label Nullable(String), number Nullable(Float64),
    actual_time DateTime64(6, 'UTC'), seq UInt64
) ENGINE = ReplacingMergeTree(seq) ORDER BY prediction_id;
CREATE TABLE IF NOT EXISTS {db}.obs_attributions (
    prediction_id String, model LowCardinality(String), attributions String, seq UInt64
) ENGINE = ReplacingMergeTree(seq) ORDER BY (model, prediction_id);
CREATE TABLE IF NOT EXISTS {db}.obs_profiles (
    model String, version String, environment Int16, bucket_start Int64,
    record_count Int64, profile String, seq UInt64
) ENGINE = ReplacingMergeTree(seq) ORDER BY (model, version, environment, bucket_start)
SETTINGS index_granularity = 32;
CREATE TABLE IF NOT EXISTS {db}.obs_profile_gaps (
    model String, version String, environment Int16, bucket_start Int64, missing Int64
) ENGINE = SummingMergeTree(missing) ORDER BY (model, version, environment, bucket_start);
CREATE TABLE IF NOT EXISTS {db}.obs_confusion (
    model String, version String, environment Int16, bucket_start Int64, source Int16,
    name String, value String, predicted String, actual String, n Int64
) ENGINE = SummingMergeTree(n)
ORDER BY (model, version, environment, bucket_start, source, name, value, predicted, actual);
CREATE TABLE IF NOT EXISTS {db}.obs_columns (
    model String, source Int16, name String, kind Int16
) ENGINE = ReplacingMergeTree ORDER BY (model, source, name)
"""

#: Per-process staging tables (Memory; named per store instance, dropped at close).
_STAGES = """
CREATE TABLE IF NOT EXISTS {db}.{ids} (prediction_id String) ENGINE = Memory;
CREATE TABLE IF NOT EXISTS {db}.{actuals} (
    prediction_id String, label Nullable(String), number Nullable(Float64),
    actual_time DateTime64(6, 'UTC')) ENGINE = Memory;
CREATE TABLE IF NOT EXISTS {db}.{delta} (
    prediction_id String, label Nullable(String), d Int64) ENGINE = Memory
"""

#: The ClickHouse type of a catalog column's typed column, by kind.
_TYPED_SQL = {ColumnKind.NUMERIC: "Nullable(Float64)",
              ColumnKind.CATEGORICAL: "LowCardinality(Nullable(String))",
              ColumnKind.BOOLEAN: "Nullable(Bool)"}
#: What JSONExtract reads a typed column's value as.
_EXTRACT_AS = {ColumnKind.NUMERIC: "Nullable(Float64)",
               ColumnKind.CATEGORICAL: "Nullable(String)", ColumnKind.BOOLEAN: "Nullable(Bool)"}
#: The JSON column of ``obs_records`` a typed column is filled from, by catalog source.
_TYPED_JSON = {int(ColumnSource.FEATURE): "features", int(ColumnSource.TAG): "tags",
               SCORE_SOURCE: "scores"}

#: Hour profiles read per query (see :meth:`ClickHouseStore.profile_rows`).
_PROFILES_A_READ = 24
#: Settings of every read: an unmatched LEFT JOIN gives NULLs (not empty strings).
_READ_SETTINGS = " SETTINGS join_use_nulls = 1"

#: The newest actual of each record in ``{ids}`` (a subquery of prediction ids).
_LATEST_ACTUALS = """(SELECT prediction_id, argMax(label, seq) AS label,
    argMax(number, seq) AS number, argMax(actual_time, seq) AS actual_time
FROM {db}.obs_actuals WHERE prediction_id IN ({ids}) GROUP BY prediction_id)"""


def _literal(text: str) -> str:
    """A string as a SQL expression that needs no escaping (hex bytes)."""
    return f"unhex('{text.encode().hex()}')" if text else "''"


def typed_column(model: str, source: int, name: str) -> str:
    """The typed column of a catalog column: named from (model, source, name), so
    replicas adding it at once agree on it without a sequence."""
    digest = hashlib.sha1(f"{model}\0{source}\0{name}".encode()).hexdigest()[:20]
    return f"c_{digest}"


def _seq() -> int:
    """A write's sequence: later writes win (nanoseconds of the wall clock)."""
    return time.time_ns()


class ClickHouseStore(EvaluationStore):
    """Analytics rows in ClickHouse; alerts, deliveries, the lease and documents in
    ``companion`` (opened and closed with this store)."""

    def __init__(self, connect: Any, companion: EvaluationStore) -> None:
        #: () -> ClickHouseClient (called at open)
        self._connect = connect
        self._companion = companion
        self._client: ClickHouseClient | None = None
        self._db = ""
        #: ingest's writes, one at a time in this process: the new-id check and the
        #: insert after it, and the staging tables
        self._write_lock = threading.Lock()
        self._catalog_lock = threading.Lock()
        #: model -> (source, name) -> kind: the stored catalogs, as this process knows them
        self._kinds: dict[str, dict[tuple[int, str], ColumnKind]] = {}
        token = uuid.uuid4().hex[:12]
        self._stage_ids = f"obs_stage_ids_{token}"
        self._stage_actuals = f"obs_stage_actuals_{token}"
        self._stage_delta = f"obs_stage_delta_{token}"

    # -- lifecycle ----------------------------------------------------------------

    @property
    def client(self) -> ClickHouseClient:
        if self._client is None:
            raise RuntimeError("the ClickHouse store is not open")
        return self._client

    def open(self) -> None:
        self._companion.open()
        try:
            self._client = self._connect()
            self._db = self.client.database
            self.client.command(f"CREATE DATABASE IF NOT EXISTS {self._db}")
            for statement in (_TABLES + ";" + _STAGES).split(";"):
                if statement.strip():
                    self.client.command(statement.format(
                        db=self._db, ids=self._stage_ids, actuals=self._stage_actuals,
                        delta=self._stage_delta))
            self._kinds = self._read_catalogs()
            self._ensure_typed(self._kinds)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        with self._write_lock:
            if self._client is not None:
                try:
                    for stage in (self._stage_ids, self._stage_actuals, self._stage_delta):
                        self._client.command(f"DROP TABLE IF EXISTS {self._db}.{stage}")
                finally:
                    self._client.close()
                    self._client = None
        self._companion.close()

    def _sql(self, text: str) -> str:
        return text.replace("{db}", self._db)

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.client.arrow(self._sql(sql), params).to_pylist()
        return rows

    # -- catalogs and typed columns -------------------------------------------------

    def _read_catalogs(self) -> dict[str, dict[tuple[int, str], ColumnKind]]:
        kinds: dict[str, dict[tuple[int, str], ColumnKind]] = {}
        for row in self._rows("SELECT model, source, name, any(kind) AS kind "
                              "FROM {db}.obs_columns GROUP BY model, source, name"):
            kinds.setdefault(row["model"], {})[(int(row["source"]), row["name"])] = \
                ColumnKind(row["kind"])
        return kinds

    def load_catalogs(self) -> dict[str, Catalog]:
        kinds = self._read_catalogs()
        with self._catalog_lock:
            self._kinds = {m: dict(k) for m, k in kinds.items()}
        return {model: Catalog(dict(k)) for model, k in kinds.items()}

    def _typed(self, model: str) -> dict[tuple[int, str], tuple[str, ColumnKind]]:
        """The typed columns of ``model``'s catalog: (source, name) -> (column, kind)."""
        with self._catalog_lock:
            kinds = self._kinds.get(model)
        if kinds is None:  # written by another replica since this one read the catalogs
            kinds = self._read_catalogs().get(model, {})
            with self._catalog_lock:
                self._kinds.setdefault(model, {}).update(kinds)
        return {(s, n): (typed_column(model, s, n), k) for (s, n), k in kinds.items()
                if s in _TYPED_JSON and k in _TYPED_SQL}

    def _ensure_typed(self, columns: dict[str, dict[tuple[int, str], ColumnKind]]) -> None:
        """Add the typed columns ``columns`` need and ``obs_records`` lacks."""
        wanted = {typed_column(m, s, n): (m, s, n, k) for m, cols in columns.items()
                  for (s, n), k in cols.items() if s in _TYPED_JSON and k in _TYPED_SQL}
        if not wanted:
            return
        have = {r["name"] for r in self._rows(
            "SELECT name FROM system.columns WHERE database = {d:String} "
            "AND table = 'obs_records'", {"d": self._db})}
        for col, (model, source, name, kind) in wanted.items():
            if col in have:
                continue
            extract = (f"JSONExtract({_TYPED_JSON[source]}, {_literal(name)}, "
                       f"'{_EXTRACT_AS[kind]}')")
            self.client.command(self._sql(
                f"ALTER TABLE {{db}}.obs_records ADD COLUMN IF NOT EXISTS {col} "
                f"{_TYPED_SQL[kind]} DEFAULT if(model = {_literal(model)}, {extract}, NULL)"))

    def _save_columns(self, new_columns: dict[str, dict[tuple[int, str], ColumnKind]]) -> None:
        """The typed columns first, then the catalog rows: a catalog column is never
        without its typed column."""
        new_columns = {m: c for m, c in new_columns.items() if c}
        if not new_columns:
            return
        self._ensure_typed(new_columns)
        rows = [(m, s, n, int(k)) for m, cols in new_columns.items()
                for (s, n), k in cols.items()]
        self.client.insert_arrow(f"{self._db}.obs_columns", pa.table({
            "model": pa.array([r[0] for r in rows], pa.string()),
            "source": pa.array([r[1] for r in rows], pa.int16()),
            "name": pa.array([r[2] for r in rows], pa.string()),
            "kind": pa.array([r[3] for r in rows], pa.int16())}))
        with self._catalog_lock:
            for model, cols in new_columns.items():
                self._kinds.setdefault(model, {}).update(cols)

    # -- ingest ---------------------------------------------------------------------

    def write_records(self, rows: list[RecordRow],
                      new_columns: dict[str, dict[tuple[int, str], ColumnKind]]) -> int:
        if not rows and not new_columns:
            return 0
        return self._write(record_rows_table(rows), new_columns)

    def write_columnar(self, batch: ColumnarBatch) -> int:
        if batch.table.num_rows == 0 and not batch.new_columns:
            return 0
        stage = record_table(batch, pa.timestamp("us", tz="UTC"))
        return self._write(stage.cast(RECORD_ARROW_SCHEMA), batch.new_columns)

    def _stage(self, stage: str, data: pa.Table) -> None:
        self.client.command(f"TRUNCATE TABLE {self._db}.{stage}")
        self.client.insert_arrow(f"{self._db}.{stage}", data)

    def _write(self, table: pa.Table,
               new_columns: dict[str, dict[tuple[int, str], ColumnKind]]) -> int:
        """Store the rows whose prediction id is new. In order, each step safe to
        be cut after: the typed columns and catalog; the profile hours marked as
        missing these records; the records; their profiles merged; the mark taken
        back; the confusion counts of actuals that came first. A kill after the
        records leaves their hours marked (profiles do not answer for them)."""
        with self._write_lock:
            self._save_columns(new_columns)
            if not table.num_rows:
                return 0
            self._stage(self._stage_ids, table.select(["prediction_id"]))
            stored = self.client.arrow(self._sql(
                f"SELECT prediction_id FROM {{db}}.obs_records WHERE prediction_id IN "
                f"(SELECT prediction_id FROM {{db}}.{self._stage_ids})")).column(0)
            fresh = table.filter(pc.invert(pc.is_in(table.column("prediction_id"),
                                                    value_set=stored.combine_chunks())))
            if not fresh.num_rows:
                return 0
            profiles = build_profiles(fresh)
            self._mark_gaps(profiles, 1)
            self.client.insert_arrow(f"{self._db}.obs_records", fresh)
            self._merge_profiles(profiles)
            self._mark_gaps(profiles, -1)
            # Actuals that came before their records count now (once: the record is new).
            self._stage(self._stage_ids, fresh.select(["prediction_id"]))
            ids = f"SELECT prediction_id FROM {{db}}.{self._stage_ids}"
            delta = self.client.arrow(self._sql(
                "SELECT prediction_id, label, toInt64(1) AS d FROM "
                + _LATEST_ACTUALS.format(db="{db}", ids=ids)))
            self._add_confusion(delta)
            return int(fresh.num_rows)

    def _mark_gaps(self, profiles: dict[ProfileKey, Profile], sign: int) -> None:
        keys = sorted(profiles)
        self.client.insert_arrow(f"{self._db}.obs_profile_gaps", pa.table({
            "model": pa.array([k[0] for k in keys], pa.string()),
            "version": pa.array([k[1] for k in keys], pa.string()),
            "environment": pa.array([k[2] for k in keys], pa.int16()),
            "bucket_start": pa.array([k[3] for k in keys], pa.int64()),
            "missing": pa.array([sign * profiles[k].records for k in keys], pa.int64())}))

    def _merge_profiles(self, profiles: dict[ProfileKey, Profile]) -> None:
        """Merge into the stored hour profiles: the touched hours read (newest of
        each), merged, written as a newer row (the old one folds away)."""
        if not profiles:
            return
        keys = sorted(profiles)
        merged = dict(profiles)
        for model in sorted({k[0] for k in keys}):
            buckets = [k[3] for k in keys if k[0] == model]
            rows = self.client.arrow(self._sql(
                "SELECT version, environment, bucket_start, argMax(profile, seq) AS p "
                "FROM {db}.obs_profiles WHERE model = {m:String} "
                "AND bucket_start BETWEEN {lo:Int64} AND {hi:Int64} "
                "GROUP BY version, environment, bucket_start"),
                {"m": model, "lo": min(buckets), "hi": max(buckets)}, binary=True).to_pylist()
            for row in rows:
                key = (model, row["version"].decode(), int(row["environment"]),
                       int(row["bucket_start"]))
                if key in merged:
                    stored = Profile.from_bytes(row["p"])
                    stored.merge(merged[key])
                    merged[key] = stored
        seq = _seq()
        self.client.insert_arrow(f"{self._db}.obs_profiles", pa.table({
            "model": pa.array([k[0] for k in keys], pa.string()),
            "version": pa.array([k[1] for k in keys], pa.string()),
            "environment": pa.array([k[2] for k in keys], pa.int16()),
            "bucket_start": pa.array([k[3] for k in keys], pa.int64()),
            "record_count": pa.array([merged[k].records for k in keys], pa.int64()),
            "profile": pa.array([merged[k].to_bytes() for k in keys], pa.binary()),
            "seq": pa.array([seq] * len(keys), pa.uint64())}))

    def _add_confusion(self, delta: pa.Table) -> None:
        """Confusion cells of the records in ``delta`` (prediction id, actual label,
        +1 / -1) added to the counts: per hour, for every record (source 0) and per
        value of each categorical or boolean feature (1) and tag (2) of its model;
        classification models only (their prediction is not numeric)."""
        delta = delta.filter(pc.is_valid(delta.column("label")))
        if not delta.num_rows:
            return
        self._stage(self._stage_delta, delta)
        models = [r["model"] for r in self._rows(
            f"SELECT DISTINCT model FROM {{db}}.obs_records WHERE prediction_id IN "
            f"(SELECT prediction_id FROM {{db}}.{self._stage_delta})")]
        for model in models:
            with self._catalog_lock:
                kinds = dict(self._kinds.get(model, {}))
            if kinds.get((int(ColumnSource.PREDICTION), ""), ColumnKind.CATEGORICAL) \
                    is ColumnKind.NUMERIC:
                continue
            slices = ["(toInt16(0), '', CAST('' AS Nullable(String)))"]
            for (source, name), (col, kind) in sorted(self._typed(model).items()):
                if source == SCORE_SOURCE or kind is ColumnKind.NUMERIC:
                    continue
                value = (f"if(isNull({col}), NULL, if(assumeNotNull({col}), 'true', 'false'))"
                         if kind is ColumnKind.BOOLEAN else f"CAST({col} AS Nullable(String))")
                slices.append(f"(toInt16({source}), {_literal(name)}, {value})")
            self.client.command(self._sql(f"""
                INSERT INTO {{db}}.obs_confusion
                SELECT r.model, r.version, r.environment,
                       intDiv(toUnixTimestamp64Micro(r.prediction_time), {HOUR_US}) * {HOUR_US}
                           AS b,
                       sl.1, sl.2, assumeNotNull(sl.3), assumeNotNull(r.prediction_label),
                       assumeNotNull(d.label), sum(d.d)
                FROM {{db}}.{self._stage_delta} AS d
                INNER JOIN {{db}}.obs_records AS r ON r.prediction_id = d.prediction_id
                ARRAY JOIN arrayFilter(x -> isNotNull(x.3), [{', '.join(slices)}]) AS sl
                WHERE r.model = {{m:String}} AND r.prediction_label IS NOT NULL
                  AND r.prediction_id IN (SELECT prediction_id FROM {{db}}.{self._stage_delta})
                GROUP BY r.model, r.version, r.environment, b, sl.1, sl.2,
                         sl.3, r.prediction_label, d.label"""), {"m": model})

    def write_actuals(self, rows: list[ActualRow]) -> tuple[int, int, int]:
        if not rows:
            return 0, 0, 0
        ids, labels, numbers, times = zip(*rows, strict=True)
        stage = pa.Table.from_arrays(
            [pa.array(ids, pa.string()), pa.array(labels, pa.string()),
             pa.array(numbers, pa.float64()), pa.array(times, pa.timestamp("us", tz="UTC"))],
            names=["prediction_id", "label", "number", "actual_time"])
        with self._write_lock:
            self._stage(self._stage_actuals, stage)
            s = f"{{db}}.{self._stage_actuals}"
            latest = _LATEST_ACTUALS.format(db="{db}", ids=f"SELECT prediction_id FROM {s}")
            counts = self._rows(
                f"SELECT countIf(a.prediction_id IS NOT NULL "
                f"AND isNotDistinctFrom(a.label, s.label) "
                f"AND isNotDistinctFrom(a.number, s.number)) AS same, "
                f"countIf(s.prediction_id NOT IN (SELECT prediction_id FROM {{db}}.obs_records "
                f"WHERE prediction_id IN (SELECT prediction_id FROM {s}))) AS unmatched "
                f"FROM {s} AS s LEFT JOIN {latest} AS a ON a.prediction_id = s.prediction_id"
                + _READ_SETTINGS)[0]
            # The confusion counts move by the change only: +1 at the new label, -1 at
            # the old one; an actual sent again with its label moves nothing.
            delta = self.client.arrow(self._sql(
                f"SELECT s.prediction_id AS prediction_id, s.label AS label, toInt64(1) AS d "
                f"FROM {s} AS s LEFT JOIN {latest} AS a ON a.prediction_id = s.prediction_id "
                f"WHERE NOT isNotDistinctFrom(a.label, s.label) "
                f"UNION ALL SELECT a.prediction_id, a.label, toInt64(-1) "
                f"FROM {s} AS s INNER JOIN {latest} AS a ON a.prediction_id = s.prediction_id "
                f"WHERE NOT isNotDistinctFrom(a.label, s.label)" + _READ_SETTINGS))
            self.client.insert_arrow(f"{self._db}.obs_actuals", stage.append_column(
                "seq", pa.array([_seq()] * stage.num_rows, pa.uint64())))
            self._add_confusion(delta)
        same, unmatched = int(counts["same"]), int(counts["unmatched"])
        return len(rows) - same, same, unmatched

    def set_attributions(self, model: str, attributions: dict[str, dict[str, float]]) -> None:
        import json

        if not attributions:
            return
        ids = list(attributions)
        self.client.insert_arrow(f"{self._db}.obs_attributions", pa.table({
            "prediction_id": pa.array(ids, pa.string()),
            "model": pa.array([model] * len(ids), pa.string()),
            "attributions": pa.array([json.dumps(attributions[i]) for i in ids], pa.string()),
            "seq": pa.array([_seq()] * len(ids), pa.uint64())}))

    # -- scans ------------------------------------------------------------------------

    @staticmethod
    def _model_where(spec: ScanSpec, row: str = "") -> tuple[list[str], dict[str, Any]]:
        """The conditions on ``spec``'s model, versions and environment (columns of
        the row alias ``row``, e.g. ``"r."``) and their bound values."""
        where = [f"{row}model = {{model:String}}"]
        params: dict[str, Any] = {"model": spec.model}
        if spec.versions:
            where.append(f"{row}version IN {{versions:Array(String)}}")
            params["versions"] = list(spec.versions)
        if spec.environment != Environment.UNSPECIFIED:
            where.append(f"{row}environment = {{env:Int16}}")
            params["env"] = int(spec.environment)
        return where, params

    @classmethod
    def _scan_where(cls, spec: ScanSpec) -> tuple[str, dict[str, Any]]:
        """The condition on ``obs_records r`` of ``spec`` (its values bound)."""
        where, params = cls._model_where(spec, "r.")
        if spec.window.start is not None:
            where.append("r.prediction_time >= fromUnixTimestamp64Micro({lo:Int64}, 'UTC')")
            params["lo"] = to_us(spec.window.start)
        if spec.window.end is not None:
            where.append("r.prediction_time < fromUnixTimestamp64Micro({hi:Int64}, 'UTC')")
            params["hi"] = to_us(spec.window.end)
        if spec.prediction_ids:
            where.append("r.prediction_id IN {ids:Array(String)}")
            params["ids"] = list(spec.prediction_ids)
        if spec.has_actual is not None:
            where.append(("" if spec.has_actual else "NOT ")
                         + "r.prediction_id IN (SELECT prediction_id FROM {db}.obs_actuals)")
        if spec.before is not None:
            where.append("(toUnixTimestamp64Micro(r.prediction_time), r.prediction_id) "
                         "< ({bt:Int64}, {bi:String})")
            params["bt"], params["bi"] = spec.before
        return " AND ".join(where), params

    def _picked(self, spec: ScanSpec, columns: str) -> tuple[str, dict[str, Any]]:
        """A subquery ``r`` of ``columns`` of ``spec``'s records, in the order and
        number :meth:`scan` gives them (a limit or sample applied here, on the
        records alone, before any join)."""
        where, params = self._scan_where(spec)
        sql = f"SELECT {columns} FROM {{db}}.obs_records AS r WHERE {where}"
        if spec.sample is not None:
            # the records of the smallest hashes of their ids (uniform and repeatable)
            sql += (" ORDER BY cityHash64(r.prediction_id), r.prediction_id "
                    f"LIMIT {int(spec.sample)}")
        elif spec.limit is not None:
            order = " DESC" if spec.newest_first else ""
            sql += (f" ORDER BY r.prediction_time{order}, r.prediction_id{order} "
                    f"LIMIT {int(spec.limit)}")
        return sql, params

    @staticmethod
    def _order(spec: ScanSpec) -> str:
        if spec.newest_first and spec.sample is None:
            return " ORDER BY r.prediction_time DESC, r.prediction_id DESC"
        return " ORDER BY r.prediction_time, r.prediction_id"

    def scan(self, spec: ScanSpec) -> bytes:
        picked, params = self._picked(spec, ", ".join(f"r.{c}" for c in RECORD_COLUMNS))
        ids = f"SELECT prediction_id FROM ({picked})"
        latest = _LATEST_ACTUALS.format(db="{db}", ids=ids)
        attributions = (f"(SELECT prediction_id, argMax(attributions, seq) AS attributions "
                        f"FROM {{db}}.obs_attributions WHERE model = {{model:String}} AND "
                        f"prediction_id IN ({ids}) GROUP BY prediction_id)")

        def js(expr: str) -> str:
            return f"ifNull(toJSONString({expr}), 'null')"

        def js_float(expr: str) -> str:  # 3.0 stays a float: "3.0", not "3"
            return (f"multiIf(isNull({expr}), 'null', {expr} = floor({expr}) "
                    f"AND abs({expr}) < 1e15, concat(toString(toInt64({expr})), '.0'), "
                    f"toJSONString({expr}))")

        doc = ", ".join([
            "'{\"i\":'", js("r.prediction_id"), "',\"v\":'", js("toString(r.version)"),
            "',\"e\":'", "toString(r.environment)",
            "',\"t\":'", "toString(toUnixTimestamp64Micro(r.prediction_time))",
            "',\"pl\":'", js("r.prediction_label"), "',\"pn\":'", js_float("r.prediction_number"),
            "',\"al\":'", js("a.label"), "',\"an\":'", js_float("a.number"),
            "',\"f\":'", "r.features", "',\"s\":'", "ifNull(r.scores, 'null')",
            "',\"g\":'", "ifNull(r.tags, 'null')",
            "',\"x\":'", "ifNull(coalesce(x.attributions, r.attributions), 'null')",
            "',\"tr\":'", js("r.trace_id"), "',\"lt\":'", js("r.latency_us"),
            "',\"at\":'", js("toUnixTimestamp64Micro(a.actual_time)"), "'}'"])
        sql = (f"SELECT concat({doc}) AS doc FROM ({picked}) AS r "
               f"LEFT JOIN {latest} AS a ON a.prediction_id = r.prediction_id "
               f"LEFT JOIN {attributions} AS x ON x.prediction_id = r.prediction_id"
               + self._order(spec) + _READ_SETTINGS)
        docs = self.client.arrow(self._sql(sql), params).column("doc").to_pylist()
        return ("\n".join(docs) + "\n").encode() if docs else b""

    def scan_frame(self, spec: ScanSpec, catalog: Catalog) -> Frame:
        """The typed columns of the catalog's features, scores and tags, read as Arrow
        arrays (no JSON)."""
        keys = [(int(ColumnSource.FEATURE), n) for n in catalog.features()]
        keys += [(SCORE_SOURCE, n) for n in catalog.score_keys()]
        keys += [(int(ColumnSource.TAG), n) for n in catalog.tags()]
        typed = self._typed(spec.model)
        keys = [k for k in keys if k in typed]
        columns = ["r.prediction_id", "r.version", "r.environment", "r.prediction_time",
                   "r.prediction_label", "r.prediction_number",
                   *(typed[k][0] for k in keys)]
        picked, params = self._picked(spec, ", ".join(columns))
        typed_select = "".join(
            f", CAST(r.{typed[k][0]} AS Nullable(String)) AS typed_{i}"
            if typed[k][1] is ColumnKind.CATEGORICAL else f", r.{typed[k][0]} AS typed_{i}"
            for i, k in enumerate(keys))
        table = self.client.arrow(self._sql(
            f"SELECT r.prediction_id AS i, toString(r.version) AS v, r.environment AS e, "
            f"toUnixTimestamp64Micro(r.prediction_time) AS t, r.prediction_label AS pl, "
            f"r.prediction_number AS pn{typed_select} FROM ({picked}) AS r"
            + self._order(spec)), params)
        # The records' newest actuals, joined here by position (the window's
        # records come out sorted; a LEFT JOIN in ClickHouse and a sort after it
        # cost 2-4x this at 150k-600k records).
        actuals = self.client.arrow(self._sql(
            "SELECT prediction_id, argMax(label, seq) AS al, argMax(number, seq) AS an "
            f"FROM {{db}}.obs_actuals WHERE prediction_id IN (SELECT prediction_id "
            f"FROM ({picked})) GROUP BY prediction_id"), params)
        at = pc.index_in(table.column("i"),
                         value_set=actuals.column("prediction_id").combine_chunks())
        table = table.append_column("al", actuals.column("al").take(at)).append_column(
            "an", actuals.column("an").take(at))
        return frame_from_arrow(table, catalog,
                                {k: table.column(f"typed_{i}") for i, k in enumerate(keys)})

    def aggregate(self, spec: ScanSpec, catalog: Catalog, query: agg.AggregateQuery
                  ) -> agg.Aggregates | None:
        """One GROUP BY (grouping sets) over the window's typed columns and newest
        actuals, in ClickHouse (``spec``'s limit is not used: nothing is read here)."""
        where, params = self._scan_where(replace(spec, limit=None, sample=None))
        typed = {k: (f"CAST(r.{c} AS Nullable(String))" if kind is ColumnKind.CATEGORICAL
                     else f"r.{c}") for k, (c, kind) in self._typed(spec.model).items()}
        slices = tuple(agg.slice_sql(ref, typed) for ref in query.slices)
        scores = tuple(typed.get((SCORE_SOURCE, k), "CAST(NULL AS Nullable(Float64))")
                       for k in query.scores)
        ids = f"SELECT prediction_id FROM {{db}}.obs_records AS r WHERE {where}"
        src = agg.AggregateSource(
            f"FROM {{db}}.obs_records AS r LEFT JOIN "
            f"{_LATEST_ACTUALS.format(db='{db}', ids=ids)} AS a "
            f"ON a.prediction_id = r.prediction_id WHERE {where}",
            "toUnixTimestamp64Micro(r.prediction_time)", slices, (), (),
            "({0} IS NOT NULL AND NOT isNaN({0}))", int_div="DIV", scores=scores, ln="log")

        def execute(sql: str, values: list[object]) -> list[tuple[object, ...]]:
            # aggregate_sql's own values are positional (?): named here, as ClickHouse binds
            pieces = sql.split("?")
            if len(pieces) - 1 != len(values):
                raise AssertionError("aggregate_sql's placeholders and values disagree")
            named = pieces[0]
            bound = dict(params)
            for i, (value, rest) in enumerate(zip(values, pieces[1:], strict=True)):
                kind = ("Float64" if isinstance(value, float) else
                        "String" if isinstance(value, str) else "Int64")
                named += f"{{agg{i}:{kind}}}{rest}"
                bound[f"agg{i}"] = value
            table = self.client.arrow(self._sql(named + _READ_SETTINGS), bound)
            return list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)),
                            strict=True))

        return agg.run_aggregate(query, src, execute)

    def count_records(self, spec: ScanSpec) -> int:
        where, params = self._scan_where(spec)
        rows = self._rows(f"SELECT count() AS n FROM {{db}}.obs_records AS r WHERE {where}",
                          params)
        return int(rows[0]["n"])

    def record_span(self, spec: ScanSpec) -> tuple[datetime | None, datetime | None]:
        """The first and the last record in the sorting key's order (read from either
        end of the model's range, not a min / max over all its rows)."""
        where, params = self._scan_where(ScanSpec(spec.model, spec.versions, spec.environment))
        ends = [self._rows(
            f"SELECT toUnixTimestamp64Micro(r.prediction_time) AS t FROM {{db}}.obs_records "
            f"AS r WHERE {where} ORDER BY r.prediction_time{order} LIMIT 1", params)
            for order in ("", " DESC")]
        if not ends[0] or not ends[1]:
            return None, None
        return _from_us(ends[0][0]["t"]), _from_us(ends[1][0]["t"])

    def model_of(self, prediction_id: str) -> str | None:
        rows = self._rows("SELECT model FROM {db}.obs_records WHERE prediction_id = {p:String} "
                          "LIMIT 1", {"p": prediction_id})
        return str(rows[0]["model"]) if rows else None

    def summaries(self) -> list[ModelSummary]:
        rows = self._rows("""
            SELECT model, arraySort(groupUniqArray(toString(version))) AS versions,
                   arraySort(groupUniqArray(environment)) AS envs, count() AS n,
                   countIf(prediction_id IN (SELECT prediction_id FROM {db}.obs_actuals)) AS na,
                   toUnixTimestamp64Micro(min(prediction_time)) AS lo,
                   toUnixTimestamp64Micro(max(prediction_time)) AS hi
            FROM {db}.obs_records GROUP BY model ORDER BY model""")
        return [ModelSummary(str(r["model"]), list(r["versions"]),
                             [Environment(e) for e in r["envs"]], int(r["n"]), int(r["na"]),
                             _from_us(r["lo"]), _from_us(r["hi"])) for r in rows]

    # -- profiles and confusion counts ----------------------------------------------

    @classmethod
    def _profile_where(cls, spec: ScanSpec) -> tuple[str, dict[str, Any]]:
        where, params = cls._model_where(spec)
        lo, hi = profile_bounds(spec.window)
        if lo is not None:
            where.append("bucket_start >= {lo:Int64}")
            params["lo"] = lo
        if hi is not None:
            where.append("bucket_start < {hi:Int64}")
            params["hi"] = hi
        return " AND ".join(where), params

    def profile_rows(self, spec: ScanSpec) -> list[tuple[int, bytes]]:
        """The newest row of each hour: their sequences read first, then their
        blobs a day at a time (read at once, a side's 62 MB of profiles at 10M
        records took 450-550 MB more RSS in chDB's buffers and copies)."""
        where, params = self._profile_where(spec)
        newest = self.client.arrow(self._sql(
            "SELECT version, environment, bucket_start, max(seq) AS seq "
            f"FROM {{db}}.obs_profiles WHERE {where} "
            "GROUP BY version, environment, bucket_start ORDER BY bucket_start"), params)
        out: list[tuple[int, bytes]] = []
        for lo in range(0, newest.num_rows, _PROFILES_A_READ):
            part = newest.slice(lo, _PROFILES_A_READ)
            buckets = part.column("bucket_start").to_pylist()
            # the day's range lets the sorting key skip the other granules of blobs
            rows = self.client.arrow(self._sql(
                f"SELECT bucket_start, profile FROM {{db}}.obs_profiles WHERE {where} "
                "AND bucket_start BETWEEN {p_lo:Int64} AND {p_hi:Int64} "
                "AND (version, environment, bucket_start, seq) "
                "IN arrayZip({pv:Array(String)}, {pe:Array(Int16)}, {pb:Array(Int64)}, "
                "{ps:Array(UInt64)}) ORDER BY bucket_start "
                "LIMIT 1 BY version, environment, bucket_start"),
                {**params, "p_lo": buckets[0], "p_hi": buckets[-1],
                 "pv": part.column("version").to_pylist(),
                 "pe": part.column("environment").to_pylist(), "pb": buckets,
                 "ps": part.column("seq").to_pylist()}, binary=True)
            out.extend(zip(rows.column(0).to_pylist(), rows.column(1).to_pylist(),
                           strict=True))
        return out

    def profile_count(self, spec: ScanSpec) -> tuple[int, int]:
        where, params = self._profile_where(spec)
        row = self._rows(
            "SELECT (SELECT sum(n) FROM (SELECT argMax(record_count, seq) AS n "
            f"FROM {{db}}.obs_profiles WHERE {where} "
            "GROUP BY model, version, environment, bucket_start)) AS counted, "
            f"(SELECT sum(missing) FROM {{db}}.obs_profile_gaps WHERE {where}) AS missing",
            params)[0]
        return int(row["counted"] or 0), int(row["missing"] or 0)

    def confusion_rows(self, spec: ScanSpec) -> list[ConfusionRow]:
        where, params = self._profile_where(spec)
        rows = self.client.arrow(self._sql(
            "SELECT bucket_start, source, name, value, predicted, actual, sum(n) AS c "
            f"FROM {{db}}.obs_confusion WHERE {where} "
            "GROUP BY bucket_start, source, name, value, predicted, actual HAVING c > 0"),
            params)
        cols = [rows.column(i).to_pylist() for i in range(7)]
        return [(int(b), int(s), n, v, p, a, int(c)) for b, s, n, v, p, a, c in zip(*cols)]

    # -- retention --------------------------------------------------------------------

    def _drop_record_days(self, before: date, out: RetentionResult) -> None:
        """Drop the days of records wholly before ``before``: first the actuals and
        attributions of their records (a kill between leaves records that the next
        pass drops), then each day's partition."""
        parts = self._rows(
            "SELECT partition_id, sum(rows) AS n FROM system.parts "
            "WHERE database = {d:String} AND table = 'obs_records' AND active "
            "GROUP BY partition_id ORDER BY partition_id", {"d": self._db})
        for part in parts:
            pid = str(part["partition_id"])  # a Date partition's id: YYYYMMDD
            day = date(int(pid[:4]), int(pid[4:6]), int(pid[6:8]))
            if day >= before:
                continue
            ids = ("SELECT prediction_id FROM {db}.obs_records "
                   "WHERE toDate(prediction_time) = {day:Date}")
            params = {"day": day.isoformat()}
            out.actuals += int(self._rows(
                f"SELECT uniqExact(prediction_id) AS n FROM {{db}}.obs_actuals "
                f"WHERE prediction_id IN ({ids})", params)[0]["n"])
            for table in ("obs_actuals", "obs_attributions"):
                self.client.command(self._sql(
                    f"DELETE FROM {{db}}.{table} WHERE prediction_id IN ({ids})"), params)
            self.client.command(f"ALTER TABLE {self._db}.obs_records DROP PARTITION ID "
                                f"'{int(pid)}'")
            out.records += int(part["n"])
            out.partitions.append(f"obs_records {day.isoformat()}")

    def _delete_before(self, table: str, bound_us: int) -> int:
        """Delete ``table``'s rows of hours before ``bound_us``; how many there were
        (after folding: what a reader counts)."""
        n = int(self._rows(f"SELECT count() AS n FROM {{db}}.{table} FINAL "
                           "WHERE bucket_start < {b:Int64}", {"b": bound_us})[0]["n"])
        if n:
            self.client.command(self._sql(f"DELETE FROM {{db}}.{table} "
                                          "WHERE bucket_start < {b:Int64}"), {"b": bound_us})
        return n

    def enforce_retention(self, cutoffs: RetentionCutoffs) -> RetentionResult:
        """Records dropped in whole days (a day once all of it is older than the
        cutoff), with their actuals and attributions; profiles, confusion counts and
        gaps deleted by hour; finished deliveries by the companion."""
        out = RetentionResult()
        if cutoffs.records is not None:
            self._drop_record_days(cutoffs.records.astimezone(UTC).date(), out)
            out.profile_gaps += self._delete_before("obs_profile_gaps", to_us(cutoffs.records))
        if cutoffs.profiles is not None:
            bound = to_us(cutoffs.profiles)
            out.profiles = self._delete_before("obs_profiles", bound)
            out.confusion = self._delete_before("obs_confusion", bound)
            out.profile_gaps += self._delete_before("obs_profile_gaps", bound)
        if cutoffs.deliveries is not None:
            out.add(self._companion.enforce_retention(
                RetentionCutoffs(deliveries=cutoffs.deliveries)))
        return out

    # -- the companion's part: documents, alerts, deliveries, the lease ---------------

    def put_document(self, kind: str, key: str, model: str, doc: dict[str, Any]) -> None:
        self._companion.put_document(kind, key, model, doc)

    def get_document(self, kind: str, key: str) -> dict[str, Any] | None:
        return self._companion.get_document(kind, key)

    def list_documents(self, kind: str, model: str | None = None) -> list[dict[str, Any]]:
        return self._companion.list_documents(kind, model)

    def delete_document(self, kind: str, key: str) -> bool:
        return self._companion.delete_document(kind, key)

    def insert_alert(self, alert: dict[str, Any], slot: datetime,
                     delivery: NewDelivery | None) -> int | None:
        return self._companion.insert_alert(alert, slot, delivery)

    def resolve_alert(self, alert: dict[str, Any], delivery: NewDelivery | None) -> int | None:
        return self._companion.resolve_alert(alert, delivery)

    def firing_alert(self, monitor_id: str) -> dict[str, Any] | None:
        return self._companion.firing_alert(monitor_id)

    def list_alerts(self, model: str | None = None, monitor_id: str | None = None,
                    state: int | None = None) -> list[dict[str, Any]]:
        return self._companion.list_alerts(model, monitor_id, state)

    def alerts_since(self, seq: int, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        return self._companion.alerts_since(seq, limit)

    def alert_by_id(self, alert_id: str) -> tuple[int, dict[str, Any]] | None:
        return self._companion.alert_by_id(alert_id)

    def last_alert_seq(self) -> int:
        return self._companion.last_alert_seq()

    def claim_deliveries(self, limit: int, claim_seconds: float) -> list[WebhookDelivery]:
        return self._companion.claim_deliveries(limit, claim_seconds)

    def finish_delivery(self, delivery_id: int, state: DeliveryState, error: str = "",
                        retry_after: float | None = None) -> None:
        self._companion.finish_delivery(delivery_id, state, error, retry_after)

    def list_deliveries(self, alert_id: str | None = None) -> list[WebhookDelivery]:
        return self._companion.list_deliveries(alert_id)

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> tuple[bool, float]:
        return self._companion.acquire_lease(name, holder, ttl_seconds)

    def release_lease(self, name: str, holder: str) -> None:
        self._companion.release_lease(name, holder)

    def listen_alerts(self) -> Any:
        return self._companion.listen_alerts()

    def insert_raised_alert(self, alert: dict[str, Any], slot: datetime) -> int | None:
        return self._companion.insert_raised_alert(alert, slot)


def _from_us(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))


__all__ = ["ClickHouseStore", "typed_column"]
