"""The embedded default: one DuckDB file under the service's data dir.

Columnar and in-process: ingest appends Arrow batches, scans run in DuckDB's
own threads. One connection, serialised by a lock (DuckDB allows one writer
process per file).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from modelplane.kit.errors import ResourceExhausted
from modelplane.observability.columnar import ColumnarBatch, record_table
from modelplane.observability.profiles import (
    HOUR_US,
    Profile,
    ProfileKey,
    build_profiles,
    header_text,
    stored_headers,
)
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
    alert_filter,
    profile_bounds,
)
from modelplane.observability.store.encoding import (
    RECORD_COLUMNS,
    SCORE_SOURCE,
    ActualRow,
    Catalog,
    ConfusionRow,
    RecordRow,
    record_rows_table,
)
from modelplane.observability.store.frames import Frame, frame_from_arrow, to_us

_SCHEMA = """
CREATE TABLE IF NOT EXISTS obs_records (
    prediction_id VARCHAR PRIMARY KEY,
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    environment SMALLINT NOT NULL,
    prediction_time TIMESTAMPTZ NOT NULL,
    features JSON NOT NULL,
    prediction_label VARCHAR,
    prediction_number DOUBLE,
    scores JSON,
    tags JSON,
    trace_id VARCHAR,
    latency_us BIGINT,
    attributions JSON
);
CREATE INDEX IF NOT EXISTS obs_records_model_time ON obs_records (model, prediction_time);
CREATE TABLE IF NOT EXISTS obs_profile_gaps (
    model VARCHAR, version VARCHAR, environment SMALLINT, bucket_start BIGINT,
    missing BIGINT NOT NULL,
    PRIMARY KEY (model, version, environment, bucket_start)
);
CREATE TABLE IF NOT EXISTS obs_confusion (
    model VARCHAR, version VARCHAR, environment SMALLINT, bucket_start BIGINT,
    source SMALLINT, name VARCHAR, value VARCHAR, predicted VARCHAR, actual VARCHAR,
    n BIGINT NOT NULL,
    PRIMARY KEY (model, version, environment, bucket_start, source, name, value, predicted,
                 actual)
);
CREATE TABLE IF NOT EXISTS obs_actuals (
    prediction_id VARCHAR PRIMARY KEY,
    label VARCHAR,
    number DOUBLE,
    actual_time TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS obs_columns (
    model VARCHAR, source SMALLINT, name VARCHAR, kind SMALLINT,
    PRIMARY KEY (model, source, name)
);
CREATE TABLE IF NOT EXISTS obs_typed_columns (
    model VARCHAR, source SMALLINT, name VARCHAR, col VARCHAR NOT NULL UNIQUE,
    PRIMARY KEY (model, source, name)
);
CREATE SEQUENCE IF NOT EXISTS obs_typed_column_seq;
CREATE TABLE IF NOT EXISTS obs_documents (
    kind VARCHAR, key VARCHAR, model VARCHAR, doc VARCHAR, seq BIGINT,
    PRIMARY KEY (kind, key)
);
CREATE SEQUENCE IF NOT EXISTS obs_document_seq;
CREATE SEQUENCE IF NOT EXISTS obs_alert_seq;
CREATE TABLE IF NOT EXISTS obs_alerts (
    id VARCHAR PRIMARY KEY, seq BIGINT NOT NULL, monitor_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL, slot TIMESTAMPTZ NOT NULL, state SMALLINT NOT NULL,
    doc VARCHAR NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS obs_delivery_seq;
CREATE TABLE IF NOT EXISTS obs_webhook_deliveries (
    id BIGINT PRIMARY KEY, alert_id VARCHAR NOT NULL, event VARCHAR NOT NULL,
    url VARCHAR NOT NULL, payload VARCHAR NOT NULL, idempotency_key VARCHAR NOT NULL,
    state SMALLINT NOT NULL, attempts INTEGER NOT NULL, next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error VARCHAR
);
"""

#: Profiles: the sketches' bytes are stored uncompressed. DuckDB compresses a large
#: BLOB column with ZSTD in one piece per row group, so reading one day's 24
#: profiles decompressed every profile of the table (124 MB at 10M records:
#: 0.3-1 s under load; uncompressed 0.01-0.04 s). Each profile's JSON header
#: (counts, categories) is kept apart: counting reads it alone.
_PROFILES = """
CREATE TABLE IF NOT EXISTS {name} (
    model VARCHAR, version VARCHAR, environment SMALLINT, bucket_start BIGINT,
    record_count BIGINT NOT NULL, profile BLOB USING COMPRESSION uncompressed NOT NULL,
    header VARCHAR,
    PRIMARY KEY (model, version, environment, bucket_start)
)
"""

_MIGRATE_ALERTS = """
INSERT INTO obs_alerts
SELECT key, nextval('obs_alert_seq'), json_extract_string(doc, '$.monitor_id'), model,
       COALESCE(json_extract_string(doc, '$.window[1]'),
                json_extract_string(doc, '$.create_time'))::TIMESTAMPTZ,
       json_extract(doc, '$.state')::SMALLINT, doc
FROM obs_documents WHERE kind = 'alert' ORDER BY seq;
DELETE FROM obs_documents WHERE kind = 'alert';
"""


#: Confusion cells of the records in ``obs_confusion_delta`` (prediction id, actual
#: label, +1 / -1) added to the stored counts: per hour, for every record (source
#: 0) and per value of each categorical feature (1) and tag (2) of the model;
#: classification models only (their prediction is not numeric).
_CONFUSION_DELTA = """
INSERT INTO obs_confusion
SELECT r.model, r.version, r.environment,
       epoch_us(r.prediction_time) // 3600000000 * 3600000000,
       sl.source, sl.name, sl.value, r.prediction_label, d.label, sum(d.d)
FROM obs_confusion_delta d
JOIN obs_records r ON r.prediction_id = d.prediction_id
JOIN obs_columns p ON p.model = r.model AND p.source = 3 AND p.name = '' AND p.kind <> 1
CROSS JOIN LATERAL (
    SELECT 0::SMALLINT AS source, '' AS name, '' AS value
    UNION ALL
    SELECT c.source, c.name, json_extract_string(
        CASE WHEN c.source = 1 THEN r.features ELSE r.tags END,
        '/' || replace(replace(c.name, '~', '~0'), '/', '~1'))
    FROM obs_columns c WHERE c.model = r.model AND c.source IN (1, 2) AND c.kind IN (2, 3)
) sl
WHERE sl.value IS NOT NULL AND r.prediction_label IS NOT NULL AND d.label IS NOT NULL
GROUP BY ALL
ON CONFLICT DO UPDATE SET n = n + excluded.n
"""

#: The SQL type of a catalog column's typed column in ``obs_records`` (features by
#: their kind; tags are strings, scores numbers).
_TYPED_SQL = {ColumnKind.NUMERIC: "DOUBLE", ColumnKind.CATEGORICAL: "VARCHAR",
              ColumnKind.BOOLEAN: "BOOLEAN"}
#: The JSON column of ``obs_records`` a typed column is filled from, by catalog source.
_TYPED_JSON = {int(ColumnSource.FEATURE): "features", int(ColumnSource.TAG): "tags",
               SCORE_SOURCE: "scores"}

#: The record columns of a frame (the keys of :mod:`.frames`); typed columns follow.
_FRAME_SELECT = """
SELECT r.prediction_id AS i, r.version AS v, r.environment AS e,
       epoch_us(r.prediction_time) AS t, r.prediction_label AS pl,
       r.prediction_number AS pn, a.label AS al, a.number AS an{typed}
FROM obs_records r LEFT JOIN obs_actuals a ON a.prediction_id = r.prediction_id
"""

_SCAN_SELECT = """
SELECT json_object(
    'i', r.prediction_id, 'v', r.version, 'e', r.environment,
    't', epoch_us(r.prediction_time), 'pl', r.prediction_label, 'pn', r.prediction_number,
    'al', a.label, 'an', a.number, 'f', r.features, 's', r.scores, 'g', r.tags,
    'x', r.attributions, 'tr', r.trace_id, 'lt', r.latency_us,
    'at', epoch_us(a.actual_time))::VARCHAR AS doc
FROM obs_records r LEFT JOIN obs_actuals a ON a.prediction_id = r.prediction_id
"""




def _key_table(keys: list[Any]) -> pa.Table:
    """Profile keys (model, version, environment, bucket start) as a table to join."""
    return pa.table({
        "model": pa.array([k[0] for k in keys], pa.string()),
        "version": pa.array([k[1] for k in keys], pa.string()),
        "environment": pa.array([k[2] for k in keys], pa.int16()),
        "bucket_start": pa.array([k[3] for k in keys], pa.int64())})


#: DuckDB's buffer-pool limit by default (``MODELPLANE_OBSERVABILITY_DUCKDB_MEMORY_LIMIT``):
#: DuckDB's own default is 80 % of the machine's memory, which a 10M-record import
#: fills with buffers (1.4 GB peak RSS); past this limit DuckDB evicts to the file
#: and its temporary directory instead. 384MB: a 10M-record import and its analyses
#: peaked at 949 MiB of RSS, against 1013 MiB (import) and 1182 MiB (analyses after
#: it) at 512MB, and the analyses were no slower (the observability README's figures)
DEFAULT_DUCKDB_MEMORY_LIMIT = "384MB"
MEMORY_LIMIT_SETTING = "MODELPLANE_OBSERVABILITY_DUCKDB_MEMORY_LIMIT"


class EmbeddedStore(EvaluationStore):
    def __init__(self, path: Path, memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
                 threads: int | None = None) -> None:
        self._path = path
        #: DuckDB's connection settings: its buffer limit and worker threads (None =
        #: one per core); insertion order is not kept (every read says its ORDER BY),
        #: which lets large inserts and scans stream instead of buffering
        self._config: dict[str, Any] = {"memory_limit": memory_limit,
                                        "preserve_insertion_order": False}
        if threads is not None:
            self._config["threads"] = threads
        self._lock = threading.Lock()
        self._conn: Any = None
        #: model -> (catalog source, name) -> (typed column of obs_records, its kind)
        self._typed: dict[str, dict[tuple[int, str], tuple[str, ColumnKind]]] = {}

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """The store's lock for a read of records. DuckDB out of its buffer limit
        (a large sample's sort and join can be) is RESOURCE_EXHAUSTED naming the
        settings to change, not an internal error."""
        import duckdb

        with self._lock:
            try:
                yield
            except duckdb.OutOfMemoryException as exc:
                limit = self._config["memory_limit"]
                raise ResourceExhausted(
                    f"the embedded store reached its memory limit ({limit}, "
                    f"{MEMORY_LIMIT_SETTING}) reading the records of this analysis: narrow "
                    "the filter (window, versions, environment), lower "
                    "MODELPLANE_OBSERVABILITY_MAX_ANALYSIS_ROWS (automatic mode samples up "
                    "to it), or raise the limit", reason="STORE_MEMORY_LIMIT",
                    metadata={"setting": MEMORY_LIMIT_SETTING, "limit": str(limit)}) from exc

    def open(self) -> None:
        import duckdb

        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = duckdb.connect(str(self._path), config=self._config)
        had_profiles, had_typed = self._conn.execute(
            "SELECT count(*) FILTER (table_name = 'obs_profiles'), "
            "count(*) FILTER (table_name = 'obs_typed_columns') "
            "FROM information_schema.tables").fetchall()[0]
        self._conn.execute(_SCHEMA)
        self._conn.execute(_PROFILES.format(name="obs_profiles"))
        self._migrate_profiles()
        self._typed = self._load_typed()
        if not had_typed:
            self._migrate_typed()
        if not had_profiles:
            # A store written before profiles were kept: its records are in no
            # profile; their hours are marked, so profiles never answer for them.
            self._conn.execute(
                "INSERT INTO obs_profile_gaps SELECT model, version, environment, "
                "epoch_us(prediction_time) // 3600000000 * 3600000000, count(*) "
                "FROM obs_records GROUP BY ALL").fetchall()
        if self._conn.execute("SELECT count(*) FROM obs_documents WHERE kind = 'alert'"
                              ).fetchall()[0][0]:
            self._conn.execute(_MIGRATE_ALERTS)

    def _migrate_profiles(self) -> None:
        """A store from before :data:`_PROFILES`: its profiles copied into that layout
        (one transaction), then the headers of rows without one filled."""
        sql = self._conn.execute("SELECT sql FROM duckdb_tables() WHERE table_name = "
                                 "'obs_profiles'").fetchall()[0][0]
        if "compression uncompressed" not in sql.lower():
            self._conn.execute("ALTER TABLE obs_profiles ADD COLUMN IF NOT EXISTS header VARCHAR")
            self._conn.execute("BEGIN")
            try:
                self._conn.execute(_PROFILES.format(name="obs_profiles_new"))
                self._conn.execute("INSERT INTO obs_profiles_new SELECT model, version, "
                                   "environment, bucket_start, record_count, profile, header "
                                   "FROM obs_profiles")
                self._conn.execute("DROP TABLE obs_profiles")
                self._conn.execute("ALTER TABLE obs_profiles_new RENAME TO obs_profiles")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self._fill_headers()

    def _fill_headers(self, batch: int = 256) -> None:
        """The headers of profiles stored without one, from their bytes."""
        keys = self._conn.execute("SELECT model, version, environment, bucket_start FROM "
                                  "obs_profiles WHERE header IS NULL").fetchall()
        for i in range(0, len(keys), batch):
            blobs = self._stored_profiles(_key_table(keys[i:i + batch]))
            filled = _key_table([tuple(b[:4]) for b in blobs]).append_column(
                "header", pa.array([header_text(bytes(b[4])) for b in blobs], pa.string()))
            self._conn.register("obs_stage_headers", filled)
            try:
                self._conn.execute(
                    "UPDATE obs_profiles p SET header = s.header FROM obs_stage_headers s "
                    "WHERE p.model = s.model AND p.version = s.version AND p.environment = "
                    "s.environment AND p.bucket_start = s.bucket_start").fetchall()
            finally:
                self._conn.unregister("obs_stage_headers")

    def close(self) -> None:
        # Under the lock: a monitor evaluation may still be running in a worker thread.
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def load_catalogs(self) -> dict[str, Catalog]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT model, source, name, kind FROM obs_columns").fetchall()
        catalogs: dict[str, Catalog] = {}
        for model, source, name, kind in rows:
            catalogs.setdefault(model, Catalog()).kinds[(int(source), name)] = ColumnKind(kind)
        return catalogs

    def _save_columns(self, new_columns: dict[str, dict[tuple[int, str], ColumnKind]]) -> None:
        values = [(m, s, n, int(k))
                  for m, cols in new_columns.items() for (s, n), k in cols.items()]
        for value in values:
            self._conn.execute("INSERT INTO obs_columns VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               list(value)).fetchall()
            self._add_typed(value[0], value[1], value[2], ColumnKind(value[3]))

    # -- typed columns ----------------------------------------------------------------
    # Each feature, tag and score of a model's catalog has its own typed column in
    # obs_records (c<n>: DOUBLE, VARCHAR or BOOLEAN, NULL for other models' rows),
    # added when the catalog gains it and filled at insert from the record's JSON;
    # analyses read these, never the JSON (kept as the record's verbatim form for
    # GetRecord / ListRecords: it tells an int feature from a double).

    def _load_typed(self) -> dict[str, dict[tuple[int, str], tuple[str, ColumnKind]]]:
        rows = self._conn.execute(
            "SELECT t.model, t.source, t.name, t.col, c.kind FROM obs_typed_columns t "
            "JOIN obs_columns c USING (model, source, name)").fetchall()
        typed: dict[str, dict[tuple[int, str], tuple[str, ColumnKind]]] = {}
        for model, source, name, col, kind in rows:
            typed.setdefault(model, {})[(int(source), name)] = (col, ColumnKind(kind))
        return typed

    def _add_typed(self, model: str, source: int, name: str, kind: ColumnKind) -> None:
        """The typed column of a catalog column, added to obs_records if it has none
        (in the caller's transaction: a rollback must reload :attr:`_typed`)."""
        if source not in _TYPED_JSON or kind not in _TYPED_SQL \
                or (source, name) in self._typed.get(model, {}):
            return
        seq = self._conn.execute("SELECT nextval('obs_typed_column_seq')").fetchall()[0][0]
        col = f"c{int(seq)}"
        self._conn.execute(f"ALTER TABLE obs_records ADD COLUMN {col} {_TYPED_SQL[kind]}")
        self._conn.execute("INSERT INTO obs_typed_columns VALUES (?, ?, ?, ?)",
                           [model, source, name, col]).fetchall()
        self._typed.setdefault(model, {})[(source, name)] = (col, kind)

    def _typed_values(self, models: list[str], row: str) -> tuple[list[str], list[str], list[Any]]:
        """The typed columns of ``models`` and the SQL expressions (and their bound
        values) giving each from the JSON columns of the row aliased ``row``."""
        cols: list[str] = []
        exprs: list[str] = []
        params: list[Any] = []
        for model in models:
            for (source, name), (col, kind) in self._typed.get(model, {}).items():
                path = "/" + name.replace("~", "~0").replace("/", "~1")  # a JSON pointer
                text = f"{row}.{_TYPED_JSON[source]}"
                value = (f"json_extract_string({text}, ?)" if kind is ColumnKind.CATEGORICAL
                         else f"TRY_CAST(json_extract({text}, ?) AS {_TYPED_SQL[kind]})")
                cols.append(col)
                if len(models) == 1:
                    exprs.append(value)
                    params.append(path)
                else:
                    exprs.append(f"CASE WHEN {row}.model = ? THEN {value} END")
                    params.extend([model, path])
        return cols, exprs, params

    def _migrate_typed(self) -> None:
        """A store written before typed columns: every catalog column gets its typed
        column, filled from the stored records' JSON (once, one transaction)."""
        rows = self._conn.execute("SELECT model, source, name, kind FROM obs_columns "
                                  "ORDER BY model, source, name").fetchall()
        self._conn.execute("BEGIN")
        try:
            for model, source, name, kind in rows:
                self._add_typed(model, int(source), name, ColumnKind(kind))
            for model in self._typed:
                cols, exprs, params = self._typed_values([model], "obs_records")
                sets = ", ".join(f"{c} = {e}" for c, e in zip(cols, exprs, strict=True))
                self._conn.execute(f"UPDATE obs_records SET {sets} WHERE model = ?",
                                   [*params, model]).fetchall()
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            self._typed = self._load_typed()
            raise

    def write_records(self, rows: list[RecordRow],
                      new_columns: dict[str, dict[tuple[int, str], ColumnKind]]) -> int:
        if not rows and not new_columns:
            return 0
        stage = record_rows_table(rows)
        with self._lock:
            self._conn.register("obs_stage", stage)
            self._conn.execute("BEGIN")
            try:
                self._save_columns(new_columns)
                stored = self._insert_fresh("obs_stage")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                self._typed = self._load_typed()
                raise
            finally:
                self._conn.unregister("obs_stage")
        return stored

    def write_columnar(self, batch: ColumnarBatch) -> int:
        if batch.table.num_rows == 0 and not batch.new_columns:
            return 0
        # The JSON text is built by Arrow kernels (parses to what json.dumps writes).
        stage = record_table(batch, pa.timestamp("us", tz="UTC"))
        with self._lock:
            self._conn.register("obs_stage_columnar", stage)
            self._conn.execute("BEGIN")
            try:
                self._save_columns(batch.new_columns)
                stored = self._insert_fresh("obs_stage_columnar") if stage.num_rows else 0
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                self._typed = self._load_typed()
                raise
            finally:
                self._conn.unregister("obs_stage_columnar")
        return int(stored)

    def _insert_fresh(self, stage: str) -> int:
        """Insert the staged rows whose prediction id is new and merge their profile
        into the buckets' profiles (in the caller's transaction, under the store lock):
        a record sent again is neither stored nor counted twice."""
        fresh = self._conn.sql(
            f"SELECT s.* FROM {stage} s ANTI JOIN obs_records r "  # fixed names
            "ON r.prediction_id = s.prediction_id").to_arrow_table()
        if not fresh.num_rows:
            return 0
        models = sorted(set(fresh.column("model").unique().to_pylist()))
        cols, exprs, params = self._typed_values(models, "s")
        self._conn.register("obs_stage_fresh", fresh)
        try:
            self._conn.execute(
                f"INSERT INTO obs_records ({', '.join([*RECORD_COLUMNS, *cols])}) "
                f"SELECT {', '.join(['s.*', *exprs])} FROM obs_stage_fresh s", params).fetchall()
        finally:
            self._conn.unregister("obs_stage_fresh")
        self._merge_profiles(build_profiles(fresh))
        # Actuals that came before their records count now (once: the record is new).
        self._add_confusion("SELECT s.prediction_id, a.label, 1 AS d FROM obs_stage_fresh s "
                            "JOIN obs_actuals a ON a.prediction_id = s.prediction_id", fresh)
        return int(fresh.num_rows)

    def _add_confusion(self, delta_sql: str, fresh: pa.Table | None = None) -> None:
        if fresh is not None:
            self._conn.register("obs_stage_fresh", fresh)
        try:
            self._conn.execute("CREATE OR REPLACE TEMP TABLE obs_confusion_delta AS "
                               + delta_sql).fetchall()
            if self._conn.execute("SELECT count(*) FROM obs_confusion_delta").fetchall()[0][0]:
                self._conn.execute(_CONFUSION_DELTA).fetchall()
            self._conn.execute("DROP TABLE obs_confusion_delta")
        finally:
            if fresh is not None:
                self._conn.unregister("obs_stage_fresh")

    def _stored_profiles(self, key_table: pa.Table) -> list[tuple[Any, ...]]:
        """(model, version, environment, bucket start, profile bytes) of the stored
        profiles of these keys (a :func:`_key_table`)."""
        self._conn.register("obs_stage_profile_keys", key_table)
        try:
            return list(self._conn.execute(
                "SELECT p.model, p.version, p.environment, p.bucket_start, p.profile "
                "FROM obs_profiles p JOIN obs_stage_profile_keys k USING "
                "(model, version, environment, bucket_start)").fetchall())
        finally:
            self._conn.unregister("obs_stage_profile_keys")

    def _merge_profiles(self, profiles: dict[ProfileKey, Profile]) -> None:
        """Merge into the stored bucket profiles: one read of the touched buckets, one
        upsert (a statement a bucket costs milliseconds when a batch spans weeks)."""
        if not profiles:
            return
        keys = sorted(profiles)
        key_table = _key_table(keys)
        for model, version, env, bucket, blob in self._stored_profiles(key_table):
            key = (model, version, int(env), int(bucket))
            merged = Profile.from_bytes(bytes(blob))
            merged.merge(profiles[key])
            profiles[key] = merged
        blobs = [profiles[k].to_bytes() for k in keys]
        upsert = key_table.append_column(
            "record_count", pa.array([profiles[k].records for k in keys], pa.int64())
        ).append_column("profile", pa.array(blobs, pa.binary())).append_column(
            "header", pa.array([header_text(b) for b in blobs], pa.string()))
        self._conn.register("obs_stage_profiles", upsert)
        try:
            self._conn.execute("INSERT OR REPLACE INTO obs_profiles SELECT * FROM "
                               "obs_stage_profiles").fetchall()
        finally:
            self._conn.unregister("obs_stage_profiles")

    def profile_rows(self, spec: ScanSpec) -> list[tuple[int, bytes]]:
        where, params = self._profile_where(spec)
        with self._lock:
            rows = self._conn.execute("SELECT bucket_start, profile FROM obs_profiles WHERE "
                                      + where + " ORDER BY bucket_start", params).fetchall()
        return [(int(b), bytes(p)) for b, p in rows]

    def profile_headers(self, spec: ScanSpec) -> list[tuple[int, int, dict[tuple[int, str],
                                                                        dict[str, int]]]]:
        """The headers kept apart (no sketch read)."""
        where, params = self._profile_where(spec)
        with self._lock:
            rows = self._conn.execute("SELECT bucket_start, record_count, header FROM "
                                      "obs_profiles WHERE " + where + " ORDER BY bucket_start",
                                      params).fetchall()
        headers = stored_headers(rows)
        return super().profile_headers(spec) if headers is None else headers

    def profile_count(self, spec: ScanSpec) -> tuple[int, int]:
        where, params = self._profile_where(spec)
        with self._lock:
            rows = self._conn.execute(
                "SELECT (SELECT coalesce(sum(record_count), 0) FROM obs_profiles WHERE "
                + where + "), (SELECT coalesce(sum(missing), 0) FROM obs_profile_gaps WHERE "
                + where + ")", params + params).fetchall()
        return int(rows[0][0]), int(rows[0][1])

    def confusion_rows(self, spec: ScanSpec) -> list[ConfusionRow]:
        where, params = self._profile_where(spec)
        with self._lock:
            rows = self._conn.execute(
                "SELECT bucket_start, source, name, value, predicted, actual, sum(n) "
                "FROM obs_confusion WHERE " + where + " GROUP BY ALL HAVING sum(n) > 0",
                params).fetchall()
        return [(int(b), int(s), n, v, p, a, int(c)) for b, s, n, v, p, a, c in rows]

    @staticmethod
    def _model_where(spec: ScanSpec, alias: str = "") -> tuple[list[str], list[Any]]:
        """The conditions on model, versions and environment, of scans and profiles
        alike (``alias``: the table's, with its dot)."""
        where = [f"{alias}model = ?"]
        params: list[Any] = [spec.model]
        if spec.versions:
            where.append(f"{alias}version IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(spec.versions))
        if spec.environment != Environment.UNSPECIFIED:
            where.append(f"{alias}environment = ?")
            params.append(int(spec.environment))
        return where, params

    @staticmethod
    def _profile_where(spec: ScanSpec) -> tuple[str, list[Any]]:
        where, params = EmbeddedStore._model_where(spec)
        lo, hi = profile_bounds(spec.window)
        if lo is not None:
            where.append("bucket_start >= ?")
            params.append(lo)
        if hi is not None:
            where.append("bucket_start < ?")
            params.append(hi)
        return " AND ".join(where), params

    def write_actuals(self, rows: list[ActualRow]) -> tuple[int, int, int]:
        if not rows:
            return 0, 0, 0
        stage = pa.table({
            "prediction_id": pa.array([r[0] for r in rows], pa.string()),
            "label": pa.array([r[1] for r in rows], pa.string()),
            "number": pa.array([r[2] for r in rows], pa.float64()),
            "actual_time": pa.array([r[3] for r in rows], pa.timestamp("us", tz="UTC")),
        })
        with self._lock:
            self._conn.register("obs_stage_actuals", stage)
            self._conn.execute("BEGIN")
            try:
                same = self._conn.execute(
                    "SELECT count(*) FROM obs_stage_actuals s JOIN obs_actuals a "
                    "ON a.prediction_id = s.prediction_id "
                    "AND a.label IS NOT DISTINCT FROM s.label "
                    "AND a.number IS NOT DISTINCT FROM s.number").fetchall()[0][0]
                unmatched = self._conn.execute(
                    "SELECT count(*) FROM obs_stage_actuals s ANTI JOIN obs_records r "
                    "ON r.prediction_id = s.prediction_id").fetchall()[0][0]
                # The confusion counts move by the change only: +1 at the new label,
                # -1 at the old one; an actual sent again with its label moves nothing.
                self._add_confusion(
                    "SELECT s.prediction_id, s.label, 1 AS d FROM obs_stage_actuals s "
                    "LEFT JOIN obs_actuals a ON a.prediction_id = s.prediction_id "
                    "WHERE a.label IS DISTINCT FROM s.label "
                    "UNION ALL SELECT a.prediction_id, a.label, -1 FROM obs_stage_actuals s "
                    "JOIN obs_actuals a ON a.prediction_id = s.prediction_id "
                    "WHERE a.label IS DISTINCT FROM s.label")
                self._conn.execute(
                    "INSERT INTO obs_actuals SELECT * FROM obs_stage_actuals "
                    "ON CONFLICT (prediction_id) DO UPDATE SET label = excluded.label, "
                    "number = excluded.number, actual_time = excluded.actual_time").fetchall()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            finally:
                self._conn.unregister("obs_stage_actuals")
        return len(rows) - int(same), int(same), int(unmatched)

    @staticmethod
    def _scan_where(spec: ScanSpec) -> tuple[str, list[Any]]:
        where, params = EmbeddedStore._model_where(spec, "r.")
        if spec.window.start is not None:
            where.append("r.prediction_time >= ?")
            params.append(spec.window.start)
        if spec.window.end is not None:
            where.append("r.prediction_time < ?")
            params.append(spec.window.end)
        if spec.prediction_ids:
            where.append("r.prediction_id IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(spec.prediction_ids))
        if spec.has_actual is not None:
            where.append("a.prediction_id IS NOT NULL" if spec.has_actual
                         else "a.prediction_id IS NULL")
        if spec.before is not None:
            where.append("(epoch_us(r.prediction_time), r.prediction_id) < (?, ?)")
            params.extend(spec.before)
        return " AND ".join(where), params

    def count_records(self, spec: ScanSpec) -> int:
        where, params = self._scan_where(spec)
        # the actuals only when the filter asks about them: joined to a unique key
        # they change no count, and the join of a 5M-record window cost 1 s
        join = ("LEFT JOIN obs_actuals a ON a.prediction_id = r.prediction_id "
                if spec.has_actual is not None else "")
        with self._reading():
            rows = self._conn.execute(
                f"SELECT count(*) FROM obs_records r {join}WHERE " + where, params).fetchall()
        return int(rows[0][0])

    def _scan_sql(self, select: str, spec: ScanSpec) -> tuple[str, list[Any]]:
        """``select`` (a SELECT from ``obs_records r`` joined to ``obs_actuals a``)
        over ``spec``'s records, in the order and number :meth:`scan` gives them."""
        where_sql, params = self._scan_where(spec)
        if spec.sample is not None:
            # the records of the smallest hashes of their ids (uniform and repeatable):
            # the window's keys sorted (top-N), then only the picked rows read whole
            # (the actuals joined only when the filter asks about them), then the
            # window's filter again on the records read whole: the picked rows pass
            # it, and it lets DuckDB skip the row groups outside the window
            join = ("LEFT JOIN obs_actuals a ON a.prediction_id = r.prediction_id "
                    if spec.has_actual is not None else "")
            pick = ("SELECT r.prediction_time AS st, r.prediction_id AS si FROM obs_records r "
                    f"{join}WHERE {where_sql} ORDER BY hash(r.prediction_id), r.prediction_id "
                    f"LIMIT {int(spec.sample)}")
            return select.replace(
                "FROM obs_records r", f"FROM ({pick}) p JOIN obs_records r "
                "ON r.prediction_id = p.si", 1) + f" WHERE {where_sql} ORDER BY p.st, p.si", \
                [*params, *params]
        sql = select + " WHERE " + where_sql
        if spec.newest_first:
            sql += " ORDER BY r.prediction_time DESC, r.prediction_id DESC"
        else:
            sql += " ORDER BY r.prediction_time, r.prediction_id"
        if spec.limit is not None:
            sql += f" LIMIT {int(spec.limit)}"
        return sql, params

    def scan(self, spec: ScanSpec) -> bytes:
        if spec.limit is not None and spec.has_actual is None and spec.sample is None \
                and not spec.prediction_ids:
            # A page of records (the dashboard's newest, ListRecords): its ids first,
            # from the records alone; joined to the actuals before the sort, every
            # actual is scanned (0.6-4.6 s at 10M records, against 0.02 s this way).
            where, params = self._scan_where(spec)
            order = " DESC" if spec.newest_first else ""
            with self._lock:
                ids = [r[0] for r in self._conn.execute(
                    f"SELECT r.prediction_id FROM obs_records r WHERE {where} ORDER BY "
                    f"r.prediction_time{order}, r.prediction_id{order} "
                    f"LIMIT {int(spec.limit)}", params).fetchall()]
            if not ids:
                return b""
            spec = replace(spec, prediction_ids=tuple(ids), limit=None)
        sql, params = self._scan_sql(_SCAN_SELECT, spec)
        with self._reading():
            table = self._conn.sql(sql, params=params).to_arrow_table()
        docs = table.column("doc").to_pylist()
        return ("\n".join(docs) + "\n").encode() if docs else b""

    def scan_frame(self, spec: ScanSpec, catalog: Catalog) -> Frame:
        """The typed columns of the catalog's features, scores and tags, read as Arrow
        arrays (no JSON)."""
        keys = [(int(ColumnSource.FEATURE), n) for n in catalog.features()]
        keys += [(SCORE_SOURCE, n) for n in catalog.score_keys()]
        keys += [(int(ColumnSource.TAG), n) for n in catalog.tags()]
        with self._reading():
            typed = dict(self._typed.get(spec.model, {}))
            keys = [k for k in keys if k in typed]
            sql, params = self._scan_sql(_FRAME_SELECT.format(typed="".join(
                f", r.{typed[k][0]} AS typed_{i}" for i, k in enumerate(keys))), spec)
            table = self._conn.sql(sql, params=params).to_arrow_table()
        return frame_from_arrow(table, catalog,
                                {k: table.column(f"typed_{i}") for i, k in enumerate(keys)})

    def aggregate(self, spec: ScanSpec, catalog: Catalog, query: agg.AggregateQuery
                  ) -> agg.Aggregates | None:
        """One GROUP BY (grouping sets) over the window's typed columns, in DuckDB."""
        where, params = self._scan_where(spec)
        with self._reading():
            typed = self._typed.get(spec.model, {})
            slices = tuple(agg.slice_sql(ref, {k: f"r.{c}" for k, (c, _) in typed.items()})
                           for ref in query.slices)
            scores = tuple(f"r.{typed[(SCORE_SOURCE, k)][0]}" if (SCORE_SOURCE, k) in typed
                           else "CAST(NULL AS DOUBLE)" for k in query.scores)
            return agg.run_aggregate(query, agg.AggregateSource(
                "FROM obs_records r LEFT JOIN obs_actuals a ON a.prediction_id = "
                "r.prediction_id WHERE " + where, "epoch_us(r.prediction_time)", slices, (),
                tuple(params), "({0} IS NOT NULL AND NOT isnan({0}))", scores=scores),
                lambda sql, values: self._conn.execute(sql, values).fetchall())

    def record_span(self, spec: ScanSpec) -> tuple[datetime | None, datetime | None]:
        """The first (last) prediction time, looked for in the first (last) hour the
        profiles and the hours marked before them hold: DuckDB's zone maps skip the
        other row groups (records are mostly stored in time order), where a min / max
        over the model reads its whole time column. The whole range when that hour
        has no record left (retention keeps profiles longer) or nothing is profiled."""
        whole = ScanSpec(spec.model, spec.versions, spec.environment)
        where, params = self._scan_where(whole)
        pwhere, pparams = self._profile_where(whole)
        with self._lock:
            lo, hi = self._conn.execute(
                f"SELECT min(bucket_start), max(bucket_start) FROM (SELECT bucket_start FROM "
                f"obs_profiles WHERE {pwhere} AND record_count > 0 UNION ALL SELECT "
                f"bucket_start FROM obs_profile_gaps WHERE {pwhere} AND missing > 0)",
                pparams + pparams).fetchall()[0]
            out: list[datetime | None] = []
            for fn, bounds in (("min", (lo, lo + HOUR_US) if lo is not None else None),
                               ("max", (hi, hi + HOUR_US) if hi is not None else None)):
                value = None
                if bounds is not None:
                    value = self._conn.execute(
                        f"SELECT {fn}(r.prediction_time) FROM obs_records r WHERE {where} "
                        "AND r.prediction_time >= ? AND r.prediction_time < ?",
                        [*params, *(datetime.fromtimestamp(b / 1e6, UTC) for b in bounds)]
                    ).fetchall()[0][0]
                if value is None:
                    value = self._conn.execute(
                        f"SELECT {fn}(r.prediction_time) FROM obs_records r WHERE {where}",
                        params).fetchall()[0][0]
                out.append(value.astimezone(UTC) if value is not None else None)
        return out[0], out[1]

    def model_of(self, prediction_id: str) -> str | None:
        with self._lock:
            rows = self._conn.execute("SELECT model FROM obs_records WHERE prediction_id = ?",
                                      [prediction_id]).fetchall()
        return rows[0][0] if rows else None

    def summaries(self) -> list[ModelSummary]:
        def fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
            with self._lock:
                return list(self._conn.execute(sql, params).fetchall())

        return self._summaries(fetch, "list", (
            "SELECT r.model, count(*) FROM obs_records r JOIN obs_actuals a ON "
            "a.prediction_id = r.prediction_id WHERE r.model IN (SELECT unnest(?::VARCHAR[])) "
            "GROUP BY r.model"))

    def set_attributions(self, model: str, attributions: dict[str, dict[str, float]]) -> None:
        values = [(json.dumps(attr), pid, model) for pid, attr in attributions.items()]
        with self._lock:
            for value in values:
                self._conn.execute("UPDATE obs_records SET attributions = ? "
                                   "WHERE prediction_id = ? AND model = ?", list(value)).fetchall()

    def put_document(self, kind: str, key: str, model: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO obs_documents VALUES (?, ?, ?, ?, nextval('obs_document_seq')) "
                "ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc, model = excluded.model",
                [kind, key, model, json.dumps(doc)]).fetchall()

    def get_document(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            rows = self._conn.execute("SELECT doc FROM obs_documents WHERE kind = ? AND key = ?",
                                      [kind, key]).fetchall()
        return json.loads(rows[0][0]) if rows else None

    def list_documents(self, kind: str, model: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT doc FROM obs_documents WHERE kind = ?"
        params: list[Any] = [kind]
        if model:
            sql += " AND model = ?"
            params.append(model)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [json.loads(r[0]) for r in rows]

    def delete_document(self, kind: str, key: str) -> bool:
        with self._lock:
            n = self._conn.execute("DELETE FROM obs_documents WHERE kind = ? AND key = ?",
                                   [kind, key]).fetchall()[0][0]
        return bool(n)

    # -- alerts, deliveries, lease ------------------------------------------------
    # One process owns the file (DuckDB allows one writer), so the store lock is the
    # whole of the coordination: the checks below run under it, and the lease is a
    # local one that this process always holds.

    def _add_delivery(self, alert_id: str, d: NewDelivery | None) -> None:
        if d is None or self._conn.execute(
                "SELECT count(*) FROM obs_webhook_deliveries WHERE idempotency_key = ?",
                [d.idempotency_key]).fetchall()[0][0]:
            return
        self._conn.execute(
            "INSERT INTO obs_webhook_deliveries VALUES (nextval('obs_delivery_seq'), ?, ?, ?, ?, "
            "?, 0, 0, ?, NULL)", [alert_id, d.event, d.url, json.dumps(d.payload),
                                  d.idempotency_key, datetime.now(UTC)]).fetchall()

    def insert_alert(self, alert: dict[str, Any], slot: datetime,
                     delivery: NewDelivery | None) -> int | None:
        with self._lock:
            taken = self._conn.execute(
                "SELECT count(*) FROM obs_alerts WHERE id = ? OR (monitor_id = ? AND "
                "(slot = ? OR state = 1))", [alert["id"], alert["monitor_id"], slot]
            ).fetchall()[0][0]
            if taken:
                return None
            self._conn.execute("BEGIN")
            try:
                seq = self._conn.execute(
                    "INSERT INTO obs_alerts VALUES (?, nextval('obs_alert_seq'), ?, ?, ?, ?, ?) "
                    "RETURNING seq", [alert["id"], alert["monitor_id"], alert["model"], slot,
                                      alert["state"], json.dumps(alert)]).fetchall()[0][0]
                self._add_delivery(alert["id"], delivery)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return int(seq)

    def resolve_alert(self, alert: dict[str, Any], delivery: NewDelivery | None) -> int | None:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                rows = self._conn.execute(
                    "UPDATE obs_alerts SET state = ?, doc = ?, seq = nextval('obs_alert_seq') "
                    "WHERE id = ? AND state = 1 RETURNING seq",
                    [alert["state"], json.dumps(alert), alert["id"]]).fetchall()
                if rows:
                    self._add_delivery(alert["id"], delivery)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return int(rows[0][0]) if rows else None

    def firing_alert(self, monitor_id: str) -> dict[str, Any] | None:
        with self._lock:
            rows = self._conn.execute("SELECT doc FROM obs_alerts WHERE monitor_id = ? "
                                      "AND state = 1", [monitor_id]).fetchall()
        return json.loads(rows[0][0]) if rows else None

    def list_alerts(self, model: str | None = None, monitor_id: str | None = None,
                    state: int | None = None) -> list[dict[str, Any]]:
        where, params = alert_filter("?", model, monitor_id, state)
        with self._lock:
            rows = self._conn.execute("SELECT doc FROM obs_alerts WHERE " + where
                                      + " ORDER BY seq DESC", params).fetchall()
        return [json.loads(r[0]) for r in rows]

    def alerts_since(self, seq: int, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._conn.execute("SELECT seq, doc FROM obs_alerts WHERE seq > ? ORDER BY seq "
                                      f"LIMIT {int(limit)}", [seq]).fetchall()
        return [(int(s), json.loads(d)) for s, d in rows]

    def alert_by_id(self, alert_id: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            rows = self._conn.execute("SELECT seq, doc FROM obs_alerts WHERE id = ?",
                                      [alert_id]).fetchall()
        return (int(rows[0][0]), json.loads(rows[0][1])) if rows else None

    def last_alert_seq(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM obs_alerts"
                                          ).fetchall()[0][0])

    @staticmethod
    def _delivery(row: Any) -> WebhookDelivery:
        return WebhookDelivery(int(row[0]), row[1], row[2], row[3], json.loads(row[4]), row[5],
                               DeliveryState(row[6]), int(row[7]), row[8], row[9] or "")

    def claim_deliveries(self, limit: int, claim_seconds: float) -> list[WebhookDelivery]:
        now = datetime.now(UTC)
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM obs_webhook_deliveries WHERE state = 0 AND next_attempt_at <= ? "
                f"ORDER BY next_attempt_at LIMIT {int(limit)}", [now]).fetchall()
            for row in rows:
                self._conn.execute(
                    "UPDATE obs_webhook_deliveries SET attempts = attempts + 1, "
                    "next_attempt_at = ? WHERE id = ?",
                    [now + timedelta(seconds=claim_seconds), row[0]]).fetchall()
        return [self._delivery((*r[:7], r[7] + 1, now + timedelta(seconds=claim_seconds), r[9]))
                for r in rows]

    def finish_delivery(self, delivery_id: int, state: DeliveryState, error: str = "",
                        retry_after: float | None = None) -> None:
        with self._lock:
            if retry_after is not None:
                self._conn.execute(
                    "UPDATE obs_webhook_deliveries SET state = 0, last_error = ?, "
                    "next_attempt_at = ? WHERE id = ?",
                    [error[:1000], datetime.now(UTC) + timedelta(seconds=retry_after),
                     delivery_id]).fetchall()
            else:
                self._conn.execute(
                    "UPDATE obs_webhook_deliveries SET state = ?, last_error = ? WHERE id = ?",
                    [int(state), error[:1000] or None, delivery_id]).fetchall()

    def list_deliveries(self, alert_id: str | None = None) -> list[WebhookDelivery]:
        sql = "SELECT * FROM obs_webhook_deliveries"
        params: list[Any] = []
        if alert_id:
            sql += " WHERE alert_id = ?"
            params.append(alert_id)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", params).fetchall()
        return [self._delivery(r) for r in rows]

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> tuple[bool, float]:
        return True, ttl_seconds  # one process per file: a local lease, always held

    def release_lease(self, name: str, holder: str) -> None:
        pass

    # -- alerts raised by other services (issue #17) ------------------------------

    def insert_raised_alert(self, alert: dict[str, Any], slot: datetime) -> int | None:
        with self._lock:
            if self._conn.execute("SELECT count(*) FROM obs_alerts WHERE id = ?",
                                  [alert["id"]]).fetchall()[0][0]:
                return None
            seq = self._conn.execute(
                "INSERT INTO obs_alerts VALUES (?, nextval('obs_alert_seq'), ?, ?, ?, ?, ?) "
                "RETURNING seq", [alert["id"], f"raised/{alert['id']}", alert["model"], slot,
                                  alert["state"], json.dumps(alert)]).fetchall()[0][0]
        return int(seq)


    # -- retention ------------------------------------------------------------------

    def enforce_retention(self, cutoffs: RetentionCutoffs) -> RetentionResult:
        """Records and their actuals deleted in batches (one transaction each, so
        ingest and analyses interleave); profiles, confusion counts, gaps and
        finished deliveries in one statement each."""
        out = RetentionResult()
        if cutoffs.records is not None:
            batch = max(int(cutoffs.batch_rows), 1)
            while True:
                with self._lock:
                    self._conn.execute("BEGIN")
                    try:
                        self._conn.execute(
                            "CREATE OR REPLACE TEMP TABLE obs_expired AS SELECT prediction_id "
                            f"FROM obs_records WHERE prediction_time < ? LIMIT {batch}",
                            [cutoffs.records])
                        n = int(self._conn.execute("SELECT count(*) FROM obs_expired")
                                .fetchall()[0][0])
                        if n:
                            out.actuals += int(self._conn.execute(
                                "DELETE FROM obs_actuals WHERE prediction_id IN "
                                "(SELECT prediction_id FROM obs_expired)").fetchall()[0][0])
                            out.records += int(self._conn.execute(
                                "DELETE FROM obs_records WHERE prediction_id IN "
                                "(SELECT prediction_id FROM obs_expired)").fetchall()[0][0])
                        self._conn.execute("DROP TABLE obs_expired")
                        self._conn.execute("COMMIT")
                    except BaseException:
                        self._conn.execute("ROLLBACK")
                        raise
                if n < batch:
                    break
            with self._lock:
                out.profile_gaps += int(self._conn.execute(
                    "DELETE FROM obs_profile_gaps WHERE bucket_start < ?",
                    [to_us(cutoffs.records)]).fetchall()[0][0])
        if cutoffs.profiles is not None:
            bound = to_us(cutoffs.profiles)
            with self._lock:
                out.profiles = int(self._conn.execute(
                    "DELETE FROM obs_profiles WHERE bucket_start < ?", [bound]).fetchall()[0][0])
                out.confusion = int(self._conn.execute(
                    "DELETE FROM obs_confusion WHERE bucket_start < ?", [bound]
                ).fetchall()[0][0])
                out.profile_gaps += int(self._conn.execute(
                    "DELETE FROM obs_profile_gaps WHERE bucket_start < ?", [bound]
                ).fetchall()[0][0])
        if cutoffs.deliveries is not None:
            # no update time here: a finished delivery's next_attempt_at is its last claim
            with self._lock:
                out.deliveries = int(self._conn.execute(
                    "DELETE FROM obs_webhook_deliveries WHERE state <> 0 "
                    "AND next_attempt_at < ?", [cutoffs.deliveries]).fetchall()[0][0])
        return out


__all__ = ["EmbeddedStore", "to_us"]
