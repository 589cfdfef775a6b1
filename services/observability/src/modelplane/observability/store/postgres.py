"""PostgreSQL evaluation store (production).

Schema, chosen for time-window and slice queries:

* ``obs_records`` is range-partitioned by ``prediction_time`` (one partition a
  month, created on demand), indexed on ``(model, prediction_time)``: every
  analysis reads one model's window, so a scan touches the partitions of that
  window only. Features, scores and tags are ``jsonb`` (the record's verbatim
  form) and each catalog column also has its typed column ``c<n>`` (see
  "typed columns" in :class:`PostgresStore`), which the analyses read; slice
  predicates are evaluated vectorised on the scanned window (never SQL text).
* ``obs_record_ids`` (prediction id primary key) makes ingest idempotent
  across partitions: a prediction id logged twice is stored once.
* ``obs_actuals`` (prediction id primary key) is joined at query time, so an
  actual may arrive before or after its prediction.

Ingest: the batch's ids are claimed in ``obs_record_ids`` (one plain ``COPY``;
when one id is already stored, a retry, that is rolled back to a savepoint and
``INSERT … ON CONFLICT DO NOTHING RETURNING`` claims the new ones), then
the rows whose id was new are ``COPY``-ed straight into ``obs_records`` (routed
to their partitions).

Columnar ingest (``arrow_ipc``) does no per-row Python: the ids are claimed the
same way (a CSV of the Arrow columns, by Arrow's writer); the fresh rows are then
written by Arrow's C++ CSV writer straight into ``COPY obs_records``, their
features / scores / tags / attributions JSON built by Arrow kernels so that it
parses to the jsonb the per-record path stores (an integral double keeps its
``.0``; a missing value — null, NaN, infinity — is left out of the object),
and the typed columns appended by Arrow kernels.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from modelplane.kit.pgschema import lock_schema
from modelplane.observability.columnar import (
    BOOLEAN,
    DOUBLE,
    INTEGER,
    STRING,
    ColumnarBatch,
    record_table,
)
from modelplane.observability.profiles import (
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
    prediction_id text NOT NULL,
    model text NOT NULL,
    version text NOT NULL,
    environment smallint NOT NULL,
    prediction_time timestamptz NOT NULL,
    features jsonb NOT NULL,
    prediction_label text,
    prediction_number double precision,
    scores jsonb,
    tags jsonb,
    trace_id text,
    latency_us bigint,
    attributions jsonb
) PARTITION BY RANGE (prediction_time);
-- (model, time, id): window scans use its prefix; finding one record by its id and time
-- (actuals' confusion counts) must not scan every record logged at that instant
CREATE INDEX IF NOT EXISTS obs_records_model_time_id
    ON obs_records (model, prediction_time, prediction_id);
DROP INDEX IF EXISTS obs_records_model_time;
CREATE TABLE IF NOT EXISTS obs_record_ids (
    prediction_id text PRIMARY KEY,
    model text NOT NULL,
    prediction_time timestamptz NOT NULL
);
-- retention deletes expired ids (and their actuals) in batches, oldest first
CREATE INDEX IF NOT EXISTS obs_record_ids_time ON obs_record_ids (prediction_time);
CREATE TABLE IF NOT EXISTS obs_profiles (
    model text NOT NULL,
    version text NOT NULL,
    environment smallint NOT NULL,
    bucket_start bigint NOT NULL,
    record_count bigint NOT NULL,
    profile bytea NOT NULL,
    PRIMARY KEY (model, version, environment, bucket_start)
);
-- the profile's JSON header (counts, categories) apart from its sketches: counting
-- reads it alone (NULL in rows written before it: filled at open, read from profile)
ALTER TABLE obs_profiles ADD COLUMN IF NOT EXISTS header text;
CREATE TABLE IF NOT EXISTS obs_profile_gaps (
    model text NOT NULL,
    version text NOT NULL,
    environment smallint NOT NULL,
    bucket_start bigint NOT NULL,
    missing bigint NOT NULL,
    PRIMARY KEY (model, version, environment, bucket_start)
);
CREATE TABLE IF NOT EXISTS obs_confusion (
    model text NOT NULL,
    version text NOT NULL,
    environment smallint NOT NULL,
    bucket_start bigint NOT NULL,
    source smallint NOT NULL,
    name text NOT NULL,
    value text NOT NULL,
    predicted text NOT NULL,
    actual text NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (model, version, environment, bucket_start, source, name, value, predicted,
                 actual)
);
CREATE TABLE IF NOT EXISTS obs_actuals (
    prediction_id text PRIMARY KEY,
    label text,
    number double precision,
    actual_time timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS obs_columns (
    model text, source smallint, name text, kind smallint,
    PRIMARY KEY (model, source, name)
);
-- the typed column (c<n> of obs_records) of a catalog column; ready once the rows
-- stored before it existed (a store migrated from jsonb) have it filled
CREATE TABLE IF NOT EXISTS obs_typed_columns (
    model text, source smallint, name text, col text NOT NULL UNIQUE, ready boolean NOT NULL,
    PRIMARY KEY (model, source, name)
);
CREATE SEQUENCE IF NOT EXISTS obs_typed_column_seq;
-- how far the fill of a model's not-ready typed columns got (its last row's key)
CREATE TABLE IF NOT EXISTS obs_typed_backfill (
    model text PRIMARY KEY, after_time timestamptz, after_id text
);
CREATE TABLE IF NOT EXISTS obs_documents (
    kind text, key text, model text, doc jsonb, seq bigserial,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS obs_documents_model ON obs_documents (kind, model);
CREATE SEQUENCE IF NOT EXISTS obs_alert_seq;
CREATE TABLE IF NOT EXISTS obs_alerts (
    id text PRIMARY KEY,
    seq bigint NOT NULL DEFAULT nextval('obs_alert_seq'),
    monitor_id text NOT NULL,
    model text NOT NULL,
    slot timestamptz NOT NULL,
    state smallint NOT NULL,
    doc jsonb NOT NULL,
    UNIQUE (monitor_id, slot)
);
CREATE UNIQUE INDEX IF NOT EXISTS obs_alerts_one_firing ON obs_alerts (monitor_id)
    WHERE state = 1;
CREATE INDEX IF NOT EXISTS obs_alerts_seq ON obs_alerts (seq);
CREATE INDEX IF NOT EXISTS obs_alerts_model ON obs_alerts (model, seq);
CREATE TABLE IF NOT EXISTS obs_webhook_deliveries (
    id bigserial PRIMARY KEY,
    alert_id text NOT NULL,
    event text NOT NULL,
    url text NOT NULL,
    payload jsonb NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    state smallint NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS obs_webhook_deliveries_due ON obs_webhook_deliveries (next_attempt_at)
    WHERE state = 0;
CREATE INDEX IF NOT EXISTS obs_webhook_deliveries_alert ON obs_webhook_deliveries (alert_id);
CREATE TABLE IF NOT EXISTS obs_leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
);
-- Alerts kept as documents before obs_alerts existed move there once.
INSERT INTO obs_alerts (id, monitor_id, model, slot, state, doc)
SELECT key, doc->>'monitor_id', model,
       COALESCE((doc->'window'->>1)::timestamptz, (doc->>'create_time')::timestamptz),
       (doc->>'state')::smallint, doc
FROM obs_documents WHERE kind = 'alert' ORDER BY seq
ON CONFLICT DO NOTHING;
DELETE FROM obs_documents WHERE kind = 'alert';
"""

#: NOTIFY channel of alert changes; the payload is ``<seq>:<alert id>``.
ALERT_CHANNEL = "obs_alerts"

_STAGE_ACTUALS = ("CREATE TEMP TABLE IF NOT EXISTS obs_stage_actuals "
                  "(LIKE obs_actuals) ON COMMIT DELETE ROWS")

_log = logging.getLogger(__name__)

_SCAN_SELECT = """
SELECT json_build_object(
    'i', r.prediction_id, 'v', r.version, 'e', r.environment,
    't', (extract(epoch FROM r.prediction_time) * 1000000)::bigint,
    'pl', r.prediction_label, 'pn', r.prediction_number, 'al', a.label, 'an', a.number,
    'f', r.features, 's', r.scores, 'g', r.tags, 'x', r.attributions, 'tr', r.trace_id,
    'lt', r.latency_us, 'at', (extract(epoch FROM a.actual_time) * 1000000)::bigint)
FROM obs_records r LEFT JOIN obs_actuals a ON a.prediction_id = r.prediction_id
"""


#: The record columns of a frame (the keys of :mod:`.frames`); the catalog's
#: features, scores and tags follow, each cast from its jsonb member to its type.
_FRAME_SELECT = """
SELECT r.prediction_id, r.version, r.environment,
       (extract(epoch FROM r.prediction_time) * 1000000)::bigint,
       r.prediction_label, r.prediction_number, a.label, a.number{typed}
FROM obs_records r LEFT JOIN obs_actuals a ON a.prediction_id = r.prediction_id
"""
_FRAME_TYPES = {"i": pa.string(), "v": pa.string(), "e": pa.int16(), "t": pa.int64(),
                "pl": pa.string(), "pn": pa.float64(), "al": pa.string(), "an": pa.float64()}

#: Typed columns (``c<n>`` of ``obs_records``): the SQL and Arrow type of a catalog
#: column's by its kind (tags are categorical, scores numeric), and the jsonb
#: column its values come from, by catalog source.
_TYPED_SQL = {ColumnKind.NUMERIC: "double precision", ColumnKind.CATEGORICAL: "text",
              ColumnKind.BOOLEAN: "boolean"}
_TYPED_ARROW = {ColumnKind.NUMERIC: pa.float64(), ColumnKind.CATEGORICAL: pa.string(),
                ColumnKind.BOOLEAN: pa.bool_()}
_TYPED_JSONB = {int(ColumnSource.FEATURE): "features", int(ColumnSource.TAG): "tags",
                SCORE_SOURCE: "scores"}
#: The jsonb type a member must have to give a typed value (else NULL: a value of
#: another kind, which the catalog rejects at ingest, is never cast), and the cast.
_JSONB_TYPE = {ColumnKind.NUMERIC: ("number", "::float8"), ColumnKind.CATEGORICAL: ("string", ""),
               ColumnKind.BOOLEAN: ("boolean", "::boolean")}
#: The default cap on ``obs_records``' columns (PostgreSQL's hard limit is 1,600,
#: dropped columns included); catalog columns past it stay jsonb only.
MAX_RECORD_COLUMNS = 1500
_POSTGRES_MAX_COLUMNS = 1600
#: work_mem of a frame's scan (its sort); a session setting, for that query only
_SCAN_WORK_MEM = "128MB"
#: random_page_cost of a scan of records (for that query only): the value usual for
#: SSDs. At PostgreSQL's default (4, spinning disks) the planner hashed every actual
#: of the table to join a day's window (36k of 1M records: 0.49 s), where looking
#: each up by its key takes 0.11 s; a 500k-record window went from 1.67 to 1.33 s.
_SCAN_RANDOM_PAGE_COST = "1.1"
#: work_mem of the aggregation statement: with ranks, a sort of the window's
#: labeled records per group kind (a bucket, each slice column, the whole)
_AGGREGATE_WORK_MEM = "256MB"


def _jsonb_value(row: str, source: int, kind: ColumnKind) -> str:
    """SQL of a catalog column's typed value read from its jsonb member in the row
    aliased ``row``; two placeholders, both the column's name."""
    json_type, cast = _JSONB_TYPE[kind]
    member = f"{row}.{_TYPED_JSONB[source]}"
    return (f"CASE WHEN jsonb_typeof({member} -> %s) = '{json_type}' "
            f"THEN ({member} ->> %s){cast} END")


def _typed_value(value: Any, kind: ColumnKind) -> Any:
    """A parsed JSON member as its typed column's value (None if of another kind)."""
    if kind is ColumnKind.NUMERIC:
        return float(value) if isinstance(value, (int, float)) \
            and not isinstance(value, bool) else None
    if kind is ColumnKind.BOOLEAN:
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class _Typed:
    col: str  # c<n>, generated
    kind: ColumnKind
    ready: bool  # every stored row has it filled (else readers cast the jsonb member)


#: Confusion cells of the records in the temp table ``obs_confusion_delta``
#: (prediction id, actual label, +1 / -1) added to the stored counts (see the
#: embedded store's twin): the record is found by its id in ``obs_record_ids``,
#: then by (model, time, id) in the partitioned table. Rows go in key order
#: (C collation), so concurrent upserts of the same cells wait, not deadlock.
_CONFUSION_DELTA = """
WITH base AS MATERIALIZED (
    SELECT r.model, r.version, r.environment,
           floor(extract(epoch FROM r.prediction_time) / 3600)::bigint * 3600000000 AS bucket,
           r.prediction_label AS p, d.label AS a, d.d, r.features, r.tags
    FROM obs_confusion_delta d
    -- one index lookup a delta row (OFFSET 0 keeps the planner from turning these
    -- into hash joins that read every id and every partition)
    CROSS JOIN LATERAL (SELECT i.model, i.prediction_time FROM obs_record_ids i
                        WHERE i.prediction_id = d.prediction_id OFFSET 0) i
    CROSS JOIN LATERAL (SELECT * FROM obs_records r WHERE r.model = i.model
                        AND r.prediction_time = i.prediction_time
                        AND r.prediction_id = d.prediction_id OFFSET 0) r
    WHERE d.label IS NOT NULL AND r.prediction_label IS NOT NULL
      AND EXISTS (SELECT 1 FROM obs_columns p WHERE p.model = r.model AND p.source = 3
                  AND p.name = '' AND p.kind <> 1)
), cols AS MATERIALIZED (
    SELECT model, source, name FROM obs_columns WHERE source IN (1, 2) AND kind IN (2, 3)
), cells AS (
    SELECT model, version, environment, bucket, 0::smallint AS source, ''::text AS name,
           ''::text AS value, p, a, d FROM base
    UNION ALL
    SELECT b.model, b.version, b.environment, b.bucket, c.source, c.name,
           CASE WHEN c.source = 1 THEN b.features ->> c.name ELSE b.tags ->> c.name END,
           b.p, b.a, b.d
    FROM base b JOIN cols c ON c.model = b.model
)
INSERT INTO obs_confusion
SELECT model, version, environment, bucket, source, name, value, p, a, sum(d)
FROM cells WHERE value IS NOT NULL
GROUP BY model, version, environment, bucket, source, name, value, p, a
ORDER BY model COLLATE "C", version COLLATE "C", environment, bucket, source,
         name COLLATE "C", value COLLATE "C", p COLLATE "C", a COLLATE "C"
ON CONFLICT (model, version, environment, bucket_start, source, name, value, predicted, actual)
DO UPDATE SET n = obs_confusion.n + excluded.n
"""
_CONFUSION_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS obs_confusion_delta "
                    "(prediction_id text, label text, d integer) ON COMMIT DELETE ROWS")
#: Advisory lock class of the record / actual pairing, and its slots (by id hash).
_PAIRING_LOCK = 0x0B5C
_PAIRING_SLOTS = 64


def _pairing_slots(ids: Any) -> list[int]:
    """The lock slots of these prediction ids, sorted (every writer locks in order)."""
    return sorted({zlib.crc32(i.encode()) % _PAIRING_SLOTS for i in ids})


def _add_confusion(cur: Any, delta_sql: str, params: Any = ()) -> None:
    cur.execute(_CONFUSION_STAGE)
    cur.execute("INSERT INTO obs_confusion_delta " + delta_sql, params)
    if cur.rowcount:
        cur.execute("SET LOCAL work_mem = '64MB'")  # the grouping sort, in memory
        cur.execute(_CONFUSION_DELTA)
    cur.execute("DELETE FROM obs_confusion_delta")


def _records_confusion(cur: Any, ids: list[str]) -> None:
    """Confusion of new records whose actual came first. Takes the pairing slots of
    the ids in SHARE mode (record writers do not wait for each other) after the
    records are written: an actual writer holds its slots EXCLUSIVE from before it
    looks for records until it commits, so either it saw these records (they
    committed first) or this statement, run once it has committed, sees its actuals."""
    cur.execute("SELECT pg_advisory_xact_lock_shared(%s, s) FROM unnest(%s::int[]) s",
                [_PAIRING_LOCK, _pairing_slots(ids)])
    _add_confusion(cur, "SELECT a.prediction_id, a.label, 1 FROM obs_actuals a "
                        "WHERE a.prediction_id = ANY(%s)", [ids])


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CLAIM_IDS = ("INSERT INTO obs_record_ids (prediction_id, model, prediction_time) "
              "SELECT i, m, timestamptz 'epoch' + t * interval '1 microsecond' "
              "FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS u(i, m, t)")


_COPY_IDS = "COPY obs_record_ids (prediction_id, model, prediction_time) FROM STDIN"


def _claim_all(conn: Any, cur: Any, fill: Callable[[Any], None], csv: bool = False) -> bool:
    """Claim every id of a batch with a plain COPY that ``fill`` writes (rows of id,
    model, prediction time; CSV when ``csv``): about 5 µs a record, against 8-10
    for an ``INSERT … unnest`` and 9-11 with ON CONFLICT's speculative insertion.
    False, with nothing claimed, when one of them is already stored (a retry):
    the caller then claims the new ones only."""
    from psycopg import errors

    try:
        with conn.transaction(), cur.copy(_COPY_IDS + (" (FORMAT csv)" if csv else "")) as copy:
            fill(copy)  # (the transaction is a savepoint)
        return True
    except (errors.UniqueViolation, errors.DeadlockDetected):
        # (Two batches claiming the same new ids in opposite orders can deadlock; the
        # savepoint's rollback frees the other one, and the fallback waits for it.)
        return False


def _column_rows(new_columns: dict[str, dict[tuple[int, str], ColumnKind]]
                 ) -> list[tuple[str, int, str, int]]:
    """New catalog rows in key order: two writers adding the same new columns of a
    model (its first batches, written at once) then lock them in the same order and
    one waits for the other, where in first-seen order they could deadlock."""
    return sorted((m, s, n, int(k)) for m, cols in new_columns.items()
                  for (s, n), k in cols.items())


def _columnar_keys(batch: ColumnarBatch) -> dict[str, set[tuple[int, str]]]:
    """Per model of a columnar batch, the (catalog source, name) of the features,
    scores and tags its rows carry a value of (Arrow kernels, no per-row Python)."""
    t = batch.table
    if t.num_rows == 0:
        return {}
    sources = {group: source for source, group in _TYPED_JSONB.items()}
    members = [m for m in batch.members if m.group in sources]
    models = pc.unique(t.column("model")).to_pylist()
    out: dict[str, set[tuple[int, str]]] = {}
    for model in models:
        mask = pc.equal(t.column("model"), model) if len(models) > 1 else None
        keys = out.setdefault(model, set())
        for m in members:
            valid = pc.is_valid(t.column(m.column))
            if pc.any(valid if mask is None else pc.and_(valid, mask)).as_py():
                keys.add((sources[m.group], m.key))
    return out


def _csv(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False, batch_size=8192))
    return sink.getvalue()


def _month_start(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def _next_month(t: datetime) -> datetime:
    return datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)


def _profile_where(spec: ScanSpec) -> tuple[str, list[Any]]:
    where = ["model = %s"]
    params: list[Any] = [spec.model]
    if spec.versions:
        where.append("version = ANY(%s)")
        params.append(list(spec.versions))
    if spec.environment != Environment.UNSPECIFIED:
        where.append("environment = %s")
        params.append(int(spec.environment))
    lo, hi = profile_bounds(spec.window)
    if lo is not None:
        where.append("bucket_start >= %s")
        params.append(lo)
    if hi is not None:
        where.append("bucket_start < %s")
        params.append(hi)
    return " AND ".join(where), params


def _merge_profiles(cur: Any, profiles: dict[ProfileKey, Profile]) -> None:
    """Merge a batch's profiles into the stored ones, in the transaction that stored
    the batch's new records (so they count once, and only if the records commit).

    Replicas ingesting at once: the bucket rows are created if missing (ON CONFLICT
    DO NOTHING), then locked (FOR UPDATE), read, merged here and written back; the
    lock holds until commit, so a concurrent merge into the same bucket waits and
    then reads this one's result. Every writer creates and locks rows in the same
    order (by key, C collation = Python's code point order), so two batches that
    touch the same buckets cannot deadlock on them; this is the last step of the
    write, so the lock is held for the merge and the commit only."""
    if not profiles:
        return
    keys = sorted(profiles)
    cols = [[k[i] for k in keys] for i in range(4)]
    cur.execute(
        "INSERT INTO obs_profiles SELECT m, v, e, b, 0, ''::bytea "
        "FROM unnest(%s::text[], %s::text[], %s::smallint[], %s::bigint[]) "
        "WITH ORDINALITY AS u(m, v, e, b, o) ORDER BY o ON CONFLICT DO NOTHING", cols)
    cur.execute(
        "SELECT p.model, p.version, p.environment, p.bucket_start, p.profile "
        "FROM obs_profiles p JOIN unnest(%s::text[], %s::text[], %s::smallint[], "
        "%s::bigint[]) AS u(m, v, e, b) ON p.model = u.m AND p.version = u.v "
        "AND p.environment = u.e AND p.bucket_start = u.b "
        "ORDER BY p.model COLLATE \"C\", p.version COLLATE \"C\", p.environment, "
        "p.bucket_start FOR UPDATE OF p", cols)
    merged = []
    for model, version, env, bucket, blob in cur.fetchall():
        key = (model, version, int(env), int(bucket))
        stored = Profile.from_bytes(bytes(blob))
        stored.merge(profiles[key])
        blob = stored.to_bytes()
        merged.append((stored.records, blob, header_text(blob), *key))
    cur.executemany("UPDATE obs_profiles SET record_count = %s, profile = %s, header = %s "
                    "WHERE model = %s AND version = %s AND environment = %s "
                    "AND bucket_start = %s", merged)


def _fill_headers(conn: Any, batch: int = 256) -> None:
    """The headers of profiles stored without one (by a version before them), from
    their bytes, in key order, a batch a statement; a row changed meanwhile keeps
    its own (its record count no longer matches: the update skips it)."""
    after: tuple[Any, ...] | None = None
    while True:
        rows = conn.execute(
            "SELECT model, version, environment, bucket_start, record_count, profile "
            "FROM obs_profiles WHERE header IS NULL"
            + (" AND (model COLLATE \"C\", version COLLATE \"C\", environment, bucket_start)"
               " > (%s, %s, %s, %s)" if after else "")
            + " ORDER BY model COLLATE \"C\", version COLLATE \"C\", environment, bucket_start"
            f" LIMIT {int(batch)}", list(after or ())).fetchall()
        if not rows:
            return
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE obs_profiles SET header = %s WHERE model = %s AND version = %s AND "
                "environment = %s AND bucket_start = %s AND record_count = %s "
                "AND header IS NULL",
                [(header_text(bytes(blob)), m, v, e, b, n) for m, v, e, b, n, blob in rows])
        after = tuple(rows[-1][:4])


class PostgresStore(EvaluationStore):
    def __init__(self, url: str, pool_size: int = 4, *,
                 max_record_columns: int = MAX_RECORD_COLUMNS,
                 backfill_rows: int = 20_000) -> None:
        self._url = url
        self._pool_size = pool_size
        #: at most this many columns in obs_records (dropped ones count, as in
        #: PostgreSQL's limit): a catalog column past it gets no typed column
        self._max_record_columns = min(int(max_record_columns), _POSTGRES_MAX_COLUMNS)
        #: rows a transaction of the typed columns' fill (migration) updates
        self._backfill_rows = max(int(backfill_rows), 1)
        #: model -> (catalog source, name) -> its typed column (a copy of
        #: obs_typed_columns; each model's dict is replaced whole, never mutated)
        self._typed: dict[str, dict[tuple[int, str], _Typed]] = {}
        #: catalog columns found past the column cap (looked up again on restart)
        self._untyped: dict[str, set[tuple[int, str]]] = {}
        self._typed_lock = threading.Lock()
        self._pool: Any = None
        self._partitions: set[str] = set()
        self._partition_lock = threading.Lock()
        self._lease_connection: Any = None
        self._lease_lock = threading.Lock()

    def open(self) -> None:
        from psycopg_pool import ConnectionPool

        def configure(conn: Any) -> None:
            # Columnar ingest COPYs zone-less UTC times (Arrow writes them ~50x faster
            # than zone-aware ones); times are instants either way.
            conn.execute("SET TimeZone = 'UTC'")

        self._pool = ConnectionPool(self._url, min_size=1, max_size=self._pool_size, open=True,
                                    kwargs={"autocommit": True}, configure=configure)
        with self._pool.connection() as conn, conn.transaction():
            lock_schema(conn, "observability")
            row = conn.execute("SELECT to_regclass('obs_profiles') IS NOT NULL").fetchone()
            had_profiles = bool(row and row[0])
            conn.execute(_SCHEMA)
            if not had_profiles:
                # A store written before profiles were kept (under the schema lock,
                # once): its records are in no profile; their hours are marked, so
                # profiles never answer for them.
                conn.execute(
                    "INSERT INTO obs_profile_gaps SELECT model, version, environment, "
                    "floor(extract(epoch FROM prediction_time) / 3600)::bigint * 3600000000, "
                    "count(*) FROM obs_records GROUP BY 1, 2, 3, 4")
            rows = conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'obs_records'"
            ).fetchall()
            self._partitions = {r[0] for r in rows}
            # A store written before typed columns (or with catalog columns that
            # were past the column cap): their typed columns are added here, not
            # ready until the fill below has been through the stored rows.
            missing = conn.execute(
                "SELECT c.model, c.source, c.name FROM obs_columns c WHERE c.source IN "
                "(1, 2, 5) AND c.kind IN (1, 2, 3) AND NOT EXISTS (SELECT 1 FROM "
                "obs_typed_columns t WHERE t.model = c.model AND t.source = c.source "
                "AND t.name = c.name)").fetchall()
            if missing:
                added = self._add_typed(conn, [(m, int(s), n) for m, s, n in missing],
                                        ready=False)
                # a fill under way restarts: its rows before the cursor lack these
                conn.execute("DELETE FROM obs_typed_backfill WHERE model = ANY(%s)",
                             [sorted({m for m, _, _ in added})])
        with self._pool.connection() as conn:
            _fill_headers(conn)
            self._refresh_typed(conn, None)
            pending = [r[0] for r in conn.execute(
                "SELECT DISTINCT model FROM obs_typed_columns WHERE NOT ready ORDER BY 1")]
            for model in pending:
                while not self._backfill_step(conn, model):
                    pass
            if pending:
                self._refresh_typed(conn, pending)

    # -- typed columns ------------------------------------------------------------
    # Every feature, score and tag of a model's catalog has its typed column c<n>
    # in obs_records (double precision, text, boolean; NULL in other models' rows),
    # added on the partitioned parent (PostgreSQL adds it to every partition) under
    # the schema's advisory lock, by whichever replica first stores the catalog
    # column, and filled at ingest. The analyses read these; the jsonb columns stay
    # the record's verbatim form (GetRecord, ListRecords, the confusion counts).

    def _refresh_typed(self, conn: Any, models: Iterable[str] | None) -> None:
        """Reload the typed columns of ``models`` (all if None) from the store."""
        sql = ("SELECT t.model, t.source, t.name, t.col, c.kind, t.ready "
               "FROM obs_typed_columns t JOIN obs_columns c USING (model, source, name)")
        wanted = None if models is None else sorted(set(models))
        rows = conn.execute(sql + (" WHERE t.model = ANY(%s)" if wanted is not None else ""),
                            [wanted] if wanted is not None else []).fetchall()
        typed: dict[str, dict[tuple[int, str], _Typed]] = {m: {} for m in wanted or ()}
        for model, source, name, col, kind, ready in rows:
            typed.setdefault(model, {})[(int(source), name)] = _Typed(
                col, ColumnKind(kind), bool(ready))
        with self._typed_lock:
            if wanted is None:
                self._typed = typed
            else:
                self._typed.update(typed)

    def _add_typed(self, conn: Any, keys: list[tuple[str, int, str]], *, ready: bool
                   ) -> list[tuple[str, int, str]]:
        """Add the typed columns of these catalog columns that have none (in the
        caller's transaction, which holds the schema lock): the kind is the stored
        catalog's. Past the column cap a column gets none (logged). The added ones."""
        if not keys:
            return []
        rows = conn.execute(
            "SELECT c.model, c.source, c.name, c.kind FROM obs_columns c "
            "JOIN unnest(%s::text[], %s::smallint[], %s::text[]) AS k(m, s, n) "
            "ON c.model = k.m AND c.source = k.s AND c.name = k.n "
            "WHERE c.source IN (1, 2, 5) AND c.kind IN (1, 2, 3) AND NOT EXISTS "
            "(SELECT 1 FROM obs_typed_columns t WHERE t.model = c.model "
            "AND t.source = c.source AND t.name = c.name) "
            "ORDER BY c.model COLLATE \"C\", c.source, c.name COLLATE \"C\"",
            [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]]).fetchall()
        row = conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = "
                           "'obs_records'::regclass AND attnum > 0").fetchone()
        columns = int(row[0]) if row else 0
        added: list[tuple[str, int, str]] = []
        over: list[tuple[str, int, str]] = []
        for model, source, name, kind in rows:
            if columns >= self._max_record_columns:
                over.append((model, int(source), name))
                continue
            seq = conn.execute("SELECT nextval('obs_typed_column_seq')").fetchone()
            col = f"c{int(seq[0])}"  # generated: caller text never becomes SQL
            conn.execute(f"ALTER TABLE obs_records ADD COLUMN {col} "
                         f"{_TYPED_SQL[ColumnKind(kind)]}")
            conn.execute("INSERT INTO obs_typed_columns VALUES (%s, %s, %s, %s, %s)",
                         [model, source, name, col, ready])
            columns += 1
            added.append((model, int(source), name))
        if over:
            _log.warning(
                "obs_records has %d of its %d columns: %d catalog column(s) get no typed "
                "column and are read from jsonb (slower), e.g. model %r %r; raise "
                "max_record_columns (PostgreSQL allows 1600) or move models to another "
                "database", columns, self._max_record_columns, len(over), over[0][0],
                over[0][2])
            with self._typed_lock:
                for model, source, name in over:
                    self._untyped.setdefault(model, set()).add((source, name))
        return added

    def _ensure_typed(self, conn: Any,
                      new_columns: dict[str, dict[tuple[int, str], ColumnKind]],
                      seen: dict[str, set[tuple[int, str]]]) -> None:
        """Typed columns for the catalog columns a batch brings (``new_columns``) and
        for the keys its rows carry (``seen``; another replica may have added them):
        looked up, then added in a short transaction of their own under the schema
        lock (ALTER TABLE locks obs_records until commit), before the batch's write.
        Two replicas adding the same column: the second finds the first's."""
        def missing() -> list[tuple[str, int, str]]:
            with self._typed_lock:
                out = []
                for model in sorted(set(new_columns) | set(seen)):
                    known = self._typed.get(model, {})
                    over = self._untyped.get(model, set())
                    keys = set(new_columns.get(model, {})) | seen.get(model, set())
                    out += [(model, s, n) for s, n in sorted(keys) if s in _TYPED_JSONB
                            and (s, n) not in known and (s, n) not in over]
            return out

        todo = missing()
        if not todo:
            return
        self._refresh_typed(conn, {m for m, _, _ in todo})
        todo = missing()
        if not todo:
            return
        catalog = _column_rows({m: {k: kd for k, kd in cols.items() if k[0] in _TYPED_JSONB}
                                for m, cols in new_columns.items()})
        with conn.transaction(), conn.cursor() as cur:
            lock_schema(cur, "observability")
            if catalog:  # the stored kind decides the column's type (first writer wins)
                cur.executemany("INSERT INTO obs_columns VALUES (%s, %s, %s, %s) "
                                "ON CONFLICT DO NOTHING", catalog)
            self._add_typed(conn, todo, ready=True)
        self._refresh_typed(conn, {m for m, _, _ in todo})

    def _typed_layout(self, models: Iterable[str]
                      ) -> list[tuple[str, str, int, str, ColumnKind]]:
        """(model, column, source, name, kind) of these models' typed columns."""
        with self._typed_lock:
            return [(m, t.col, s, n, t.kind) for m in sorted(set(models))
                    for (s, n), t in sorted(self._typed.get(m, {}).items())]

    def _backfill_step(self, conn: Any, model: str) -> bool:
        """Fill one batch of a model's not-ready typed columns from the jsonb, in key
        order ((time, id), the index's), and move the model's cursor past it, in one
        transaction; True once none is left (its columns marked ready). The cursor row
        is locked for the batch: replicas opening at once take turns, each going on
        from where the last committed; one killed half-way loses its batch only."""
        with conn.transaction():
            conn.execute("INSERT INTO obs_typed_backfill (model) VALUES (%s) "
                         "ON CONFLICT DO NOTHING", [model])
            cursor = conn.execute("SELECT after_time, after_id FROM obs_typed_backfill "
                                  "WHERE model = %s FOR UPDATE", [model]).fetchone()
            cols = conn.execute(
                "SELECT t.source, t.name, t.col, c.kind FROM obs_typed_columns t "
                "JOIN obs_columns c USING (model, source, name) "
                "WHERE t.model = %s AND NOT t.ready ORDER BY t.col", [model]).fetchall()
            if not cols:
                conn.execute("DELETE FROM obs_typed_backfill WHERE model = %s", [model])
                return True
            after = cursor is not None and cursor[0] is not None
            lower = " AND (r.prediction_time, r.prediction_id) > (%s, %s)" if after else ""
            lower_params = [cursor[0], cursor[1]] if after and cursor else []
            bound = conn.execute(
                "SELECT r.prediction_time, r.prediction_id FROM obs_records r "
                f"WHERE r.model = %s{lower} ORDER BY r.prediction_time, r.prediction_id "
                "OFFSET %s LIMIT 1", [model, *lower_params, self._backfill_rows - 1]
            ).fetchone()
            sets = ", ".join(f"{col} = {_jsonb_value('r', int(s), ColumnKind(k))}"
                             for s, _, col, k in cols)
            names = [n for _, n, _, _ in cols for _ in range(2)]
            upper = " AND (r.prediction_time, r.prediction_id) <= (%s, %s)" if bound else ""
            conn.execute(f"UPDATE obs_records r SET {sets} WHERE r.model = %s{lower}{upper}",
                         [*names, model, *lower_params, *(bound or ())])
            if bound is not None:
                conn.execute("UPDATE obs_typed_backfill SET after_time = %s, after_id = %s "
                             "WHERE model = %s", [bound[0], bound[1], model])
                return False
            conn.execute("UPDATE obs_typed_columns SET ready = true WHERE model = %s "
                         "AND col = ANY(%s)", [model, [c for _, _, c, _ in cols]])
            conn.execute("DELETE FROM obs_typed_backfill WHERE model = %s", [model])
            return True

    def close(self) -> None:
        with self._lease_lock:
            self._drop_lease_conn()
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def load_catalogs(self) -> dict[str, Catalog]:
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT model, source, name, kind FROM obs_columns").fetchall()
        catalogs: dict[str, Catalog] = {}
        for model, source, name, kind in rows:
            catalogs.setdefault(model, Catalog()).kinds[(int(source), name)] = ColumnKind(kind)
        return catalogs

    def _ensure_partitions(self, conn: Any, times: set[datetime]) -> None:
        months = {_month_start(t) for t in times}
        missing = {m for m in months if f"obs_records_{m:%Y%m}" not in self._partitions}
        # Past months may have been dropped by retention on another replica since
        # this one cached them: checked in the catalog (a backfill's batches only).
        past = [m for m in months - missing if _next_month(m) < datetime.now(UTC)]
        for m in past:
            row = conn.execute("SELECT to_regclass(%s) IS NULL",
                               [f"obs_records_{m:%Y%m}"]).fetchone()
            if row and row[0]:
                self._partitions.discard(f"obs_records_{m:%Y%m}")
                missing.add(m)
        if not missing:
            return
        with self._partition_lock, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('obs_records_partitions'))")
            for month in sorted(missing):
                name = f"obs_records_{month:%Y%m}"
                # Identifiers come from dates, never from callers.
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF obs_records "
                    f"FOR VALUES FROM ('{month.isoformat()}') TO "
                    f"('{_next_month(month).isoformat()}')")
                self._partitions.add(name)

    def _record_partitions(self, conn: Any) -> list[tuple[str, datetime]]:
        """(name, month start) of ``obs_records``' monthly partitions, oldest first."""
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'obs_records'"
        ).fetchall()
        out = []
        for (name,) in rows:
            digits = name.removeprefix("obs_records_")
            if len(digits) == 6 and digits.isdigit():
                out.append((name, datetime(int(digits[:4]), int(digits[4:]), 1, tzinfo=UTC)))
        return sorted(out, key=lambda p: p[1])

    def enforce_retention(self, cutoffs: RetentionCutoffs) -> RetentionResult:
        """Whole monthly partitions of ``obs_records`` that end at or before the
        records' cutoff are dropped (no row-by-row delete of records: a month stays
        until all of it is older than the cutoff); their ids in ``obs_record_ids``
        and their actuals are deleted in batches (one short transaction each).
        Profiles, confusion counts, gaps and finished deliveries: one statement each."""
        out = RetentionResult()
        batch = max(int(cutoffs.batch_rows), 1)
        if cutoffs.records is not None:
            with self._pool.connection() as conn:
                expired = [(n, m) for n, m in self._record_partitions(conn)
                           if _next_month(m) <= cutoffs.records]
            bound = _month_start(cutoffs.records)
            for name, _month in expired:
                with self._partition_lock, self._pool.connection() as conn, conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('obs_records_partitions'))")
                    conn.execute("SET LOCAL lock_timeout = '10s'")
                    conn.execute(f"DROP TABLE IF EXISTS {name}")  # a name from a date
                    self._partitions.discard(name)
                out.partitions.append(name)
            # also after a pass that died between a drop and its ids: ids < bound are gone
            while True:
                with self._pool.connection() as conn, conn.transaction():
                    row = conn.execute(
                        "WITH ids AS (DELETE FROM obs_record_ids WHERE prediction_id IN "
                        "(SELECT prediction_id FROM obs_record_ids WHERE prediction_time < %s "
                        "ORDER BY prediction_time LIMIT %s) RETURNING prediction_id), "
                        "a AS (DELETE FROM obs_actuals x USING ids "
                        "WHERE x.prediction_id = ids.prediction_id RETURNING 1) "
                        "SELECT (SELECT count(*) FROM ids), (SELECT count(*) FROM a)",
                        [bound, batch]).fetchone()
                n, actuals = (int(row[0]), int(row[1])) if row else (0, 0)
                out.records += n
                out.actuals += actuals
                if n < batch:
                    break
            with self._pool.connection() as conn:
                out.profile_gaps += conn.execute(
                    "DELETE FROM obs_profile_gaps WHERE bucket_start < %s",
                    [to_us(bound)]).rowcount
        with self._pool.connection() as conn:
            if cutoffs.profiles is not None:
                us = to_us(cutoffs.profiles)
                out.profiles = conn.execute("DELETE FROM obs_profiles WHERE bucket_start < %s",
                                            [us]).rowcount
                out.confusion = conn.execute("DELETE FROM obs_confusion WHERE bucket_start < %s",
                                             [us]).rowcount
                out.profile_gaps += conn.execute(
                    "DELETE FROM obs_profile_gaps WHERE bucket_start < %s", [us]).rowcount
            if cutoffs.deliveries is not None:
                out.deliveries = conn.execute(
                    "DELETE FROM obs_webhook_deliveries WHERE state <> 0 AND update_time < %s",
                    [cutoffs.deliveries]).rowcount
        return out

    def write_records(self, rows: list[RecordRow],
                      new_columns: dict[str, dict[tuple[int, str], ColumnKind]]) -> int:
        columns = _column_rows(new_columns)
        if not rows and not columns:
            return 0
        # each row's features, scores and tags, parsed (their typed columns' values)
        groups = [{int(ColumnSource.FEATURE): json.loads(r[5]),
                   SCORE_SOURCE: json.loads(r[8]) if r[8] else {},
                   int(ColumnSource.TAG): json.loads(r[9]) if r[9] else {}} for r in rows]
        seen: dict[str, set[tuple[int, str]]] = {}
        for r, g in zip(rows, groups, strict=True):
            keys = seen.setdefault(r[1], set())
            for source, values in g.items():
                keys.update((source, n) for n in values)
        with self._pool.connection() as conn:
            if rows:
                self._ensure_partitions(conn, {r[4] for r in rows})
            self._ensure_typed(conn, new_columns, seen)
            with conn.transaction(), conn.cursor() as cur:
                if columns:
                    cur.executemany("INSERT INTO obs_columns VALUES (%s, %s, %s, %s) "
                                    "ON CONFLICT DO NOTHING", columns)
                if not rows:
                    return 0
                # Claim the ids first (idempotency across partitions), then COPY only
                # the rows whose id was new straight into the partitioned table.
                def fill(copy: Any) -> None:
                    write = copy.write_row
                    for r in rows:
                        write((r[0], r[1], r[4]))

                if _claim_all(conn, cur, fill):
                    fresh = {r[0] for r in rows}
                else:
                    claim = ("INSERT INTO obs_record_ids (prediction_id, model, prediction_time) "
                             "SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[])")
                    params = [[r[0] for r in rows], [r[1] for r in rows], [r[4] for r in rows]]
                    cur.execute(claim + " ON CONFLICT DO NOTHING RETURNING prediction_id",
                                params)
                    fresh = {r[0] for r in cur.fetchall()}
                if not fresh:
                    return 0
                fresh_rows = [row for row in rows if row[0] in fresh]
                layout = self._typed_layout({r[1] for r in fresh_rows})
                by_model: dict[str, list[tuple[int, int, str, ColumnKind]]] = {}
                for i, (model, _, source, name, kind) in enumerate(layout):
                    by_model.setdefault(model, []).append((i, source, name, kind))
                cols = ", ".join([*RECORD_COLUMNS, *(c for _, c, _, _, _ in layout)])
                with cur.copy(f"COPY obs_records ({cols}) FROM STDIN") as copy:
                    write = copy.write_row
                    for row, g in zip(rows, groups, strict=True):
                        if row[0] not in fresh:
                            continue
                        typed: list[Any] = [None] * len(layout)
                        for i, source, name, kind in by_model.get(row[1], ()):
                            typed[i] = _typed_value(g[source].get(name), kind)
                        write((*row, *typed))
                _merge_profiles(cur, build_profiles(record_rows_table(fresh_rows)))
                _records_confusion(cur, [r[0] for r in fresh_rows])
                return len(fresh)

    def write_columnar(self, batch: ColumnarBatch) -> int:
        columns = _column_rows(batch.new_columns)
        table = batch.table
        if table.num_rows == 0 and not columns:
            return 0
        if table.num_rows:
            records = record_table(batch, pa.timestamp("us"))  # UTC, zone-less
        with self._pool.connection() as conn:
            if table.num_rows:
                self._ensure_partitions(conn, {_EPOCH + timedelta(microseconds=us)
                                               for us in batch.months()})
            self._ensure_typed(conn, batch.new_columns, _columnar_keys(batch))
            if table.num_rows:
                records = self._with_typed(batch, records)
            with conn.transaction(), conn.cursor() as cur:
                if columns:
                    cur.executemany("INSERT INTO obs_columns VALUES (%s, %s, %s, %s) "
                                    "ON CONFLICT DO NOTHING", columns)
                if not table.num_rows:
                    return 0
                # Claim the ids (idempotency across partitions and forms).
                id_csv = _csv(records.select(["prediction_id", "model", "prediction_time"]))
                if not _claim_all(conn, cur, lambda copy: copy.write(memoryview(id_csv)),
                                  csv=True):
                    ids = [table.column(c).to_pylist() for c in ("prediction_id", "model",
                                                                 "time_us")]
                    cur.execute(_CLAIM_IDS + " ON CONFLICT DO NOTHING RETURNING prediction_id",
                                ids)
                    fresh = pa.array([r[0] for r in cur.fetchall()], pa.string())
                    records = records.filter(pc.is_in(records.column("prediction_id"), fresh))
                if records.num_rows:
                    # The CSV's times are UTC wall clock (Arrow writes zone-less ones
                    # ~50x faster); the pool's sessions run in UTC.
                    with cur.copy(f"COPY obs_records ({', '.join(records.column_names)}) "
                                  f"FROM STDIN (FORMAT csv)") as copy:
                        copy.write(memoryview(_csv(records)))
                    _merge_profiles(cur, build_profiles(records))
                    _records_confusion(cur, records.column("prediction_id").to_pylist())
                return int(records.num_rows)

    def _with_typed(self, batch: ColumnarBatch, records: pa.Table) -> pa.Table:
        """``records`` with the typed columns of the batch's models appended (named
        c<n>), built from the batch's member columns by Arrow kernels: a double that
        is not finite is NULL (the JSON leaves it out), an integer becomes a double, a
        member of another kind than its column NULL; other models' rows NULL."""
        t = batch.table
        models = pc.unique(t.column("model")).to_pylist()
        members = {(m.group, m.key): m for m in batch.members}
        for model, col, source, name, kind in self._typed_layout(models):
            member = members.get((_TYPED_JSONB[source], name))
            arrow_type = _TYPED_ARROW[kind]
            values: Any = None
            if member is not None:
                v = t.column(member.column)
                if kind is ColumnKind.NUMERIC and member.value_type == DOUBLE:
                    values = pc.if_else(pc.is_finite(v), v, pa.scalar(None, pa.float64()))
                elif kind is ColumnKind.NUMERIC and member.value_type == INTEGER:
                    values = v.cast(pa.float64(), safe=False)
                elif (kind is ColumnKind.CATEGORICAL and member.value_type == STRING) or (
                        kind is ColumnKind.BOOLEAN and member.value_type == BOOLEAN):
                    values = v
            if values is None:
                values = pa.nulls(t.num_rows, arrow_type)
            elif len(models) > 1:
                values = pc.if_else(pc.equal(t.column("model"), model), values,
                                    pa.scalar(None, arrow_type))
            records = records.append_column(col, values)
        return records

    def write_actuals(self, rows: list[ActualRow]) -> tuple[int, int, int]:
        if not rows:
            return 0, 0, 0
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            # Exclusive pairing slots first (see _records_confusion): the old labels
            # read below stay the stored ones until this commits.
            cur.execute("SELECT pg_advisory_xact_lock(%s, s) FROM unnest(%s::int[]) s",
                        [_PAIRING_LOCK, _pairing_slots(r[0] for r in rows)])
            cur.execute(_STAGE_ACTUALS)
            with cur.copy("COPY obs_stage_actuals (prediction_id, label, number, actual_time) "
                          "FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            # The confusion counts move by the change only: +1 at the new label, -1
            # at the old one; an actual sent again with its label moves nothing.
            _add_confusion(cur, """
                SELECT s.prediction_id, s.label, 1 FROM obs_stage_actuals s
                LEFT JOIN obs_actuals a ON a.prediction_id = s.prediction_id
                WHERE a.label IS DISTINCT FROM s.label
                UNION ALL
                SELECT a.prediction_id, a.label, -1 FROM obs_stage_actuals s
                JOIN obs_actuals a ON a.prediction_id = s.prediction_id
                WHERE a.label IS DISTINCT FROM s.label""")
            cur.execute("SELECT count(*) FROM obs_stage_actuals s WHERE NOT EXISTS "
                        "(SELECT 1 FROM obs_record_ids r WHERE r.prediction_id = s.prediction_id)")
            unmatched = cur.fetchone()[0]  # type: ignore[index]
            cur.execute("""
                INSERT INTO obs_actuals SELECT * FROM obs_stage_actuals
                ON CONFLICT (prediction_id) DO UPDATE
                SET label = excluded.label, number = excluded.number,
                    actual_time = excluded.actual_time
                WHERE (obs_actuals.label, obs_actuals.number)
                      IS DISTINCT FROM (excluded.label, excluded.number)""")
            changed = int(cur.rowcount)
        return changed, len(rows) - changed, int(unmatched)

    @staticmethod
    def _scan_where(spec: ScanSpec) -> tuple[str, list[Any]]:
        where = ["r.model = %s"]
        params: list[Any] = [spec.model]
        if spec.versions:
            where.append("r.version = ANY(%s)")
            params.append(list(spec.versions))
        if spec.environment != Environment.UNSPECIFIED:
            where.append("r.environment = %s")
            params.append(int(spec.environment))
        if spec.window.start is not None:
            where.append("r.prediction_time >= %s")
            params.append(spec.window.start)
        if spec.window.end is not None:
            where.append("r.prediction_time < %s")
            params.append(spec.window.end)
        if spec.prediction_ids:
            where.append("r.prediction_id = ANY(%s)")
            params.append(list(spec.prediction_ids))
        if spec.has_actual is not None:
            where.append("a.prediction_id IS NOT NULL" if spec.has_actual
                         else "a.prediction_id IS NULL")
        if spec.before is not None:
            where.append("(r.prediction_time, r.prediction_id) < "
                         "(to_timestamp(%s::double precision / 1000000), %s)")
            params.extend(spec.before)
        return " AND ".join(where), params

    def count_records(self, spec: ScanSpec) -> int:
        where, params = self._scan_where(spec)
        join = ("LEFT JOIN obs_actuals a ON a.prediction_id = r.prediction_id "
                if spec.has_actual is not None else "")
        with self._pool.connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM obs_records r {join}WHERE {where}",
                               params).fetchone()
        return int(row[0]) if row else 0

    def _scan_sql(self, select: str, spec: ScanSpec) -> tuple[str, list[Any]]:
        """``select`` (a SELECT from ``obs_records r`` joined to ``obs_actuals a``, no
        placeholders after its FROM) over ``spec``'s records, in :meth:`scan`'s order
        and number; the values of the placeholders from the FROM on."""
        where_sql, params = self._scan_where(spec)
        if spec.sample is not None:
            # The records of the smallest hashes of their ids: a top-N sort of the
            # window's (time, id) keys over its index range, then only the picked
            # rows are read whole and turned into JSON. Uniform and repeatable. Not
            # TABLESAMPLE: SYSTEM picks whole blocks (rows logged together come
            # together), BERNOULLI gives no exact size.
            pick = ("SELECT r.prediction_time AS st, r.prediction_id AS si FROM obs_records r "
                    "LEFT JOIN obs_actuals a ON a.prediction_id = r.prediction_id "
                    f"WHERE {where_sql} ORDER BY hashtextextended(r.prediction_id, 0), "
                    f"r.prediction_id LIMIT {int(spec.sample)}")
            sql = select.replace(
                "FROM obs_records r", f"FROM ({pick}) p JOIN obs_records r ON r.model = %s "
                "AND r.prediction_time = p.st AND r.prediction_id = p.si", 1) \
                + " ORDER BY p.st, p.si"
            return sql, [*params, spec.model]
        sql = select + " WHERE " + where_sql
        sql += (" ORDER BY r.prediction_time DESC, r.prediction_id DESC"
                if spec.newest_first else " ORDER BY r.prediction_time, r.prediction_id")
        if spec.limit is not None:
            sql += f" LIMIT {int(spec.limit)}"
        return sql, params

    def _copy_out(self, sql: str, params: list[Any], options: str, work_mem: str = ""
                  ) -> bytes:
        chunks: list[bytes] = []
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if work_mem:  # a digit string and a unit, ours (SET takes no parameter)
                cur.execute(f"SET LOCAL work_mem = '{work_mem}'")
            cur.execute(f"SET LOCAL random_page_cost = {_SCAN_RANDOM_PAGE_COST}")
            with cur.copy(f"COPY ({sql}) TO STDOUT ({options})", params) as copy:
                for data in copy:
                    chunks.append(bytes(data))
        return b"".join(chunks)

    def scan(self, spec: ScanSpec) -> bytes:
        sql, params = self._scan_sql(_SCAN_SELECT, spec)
        # CSV with a delimiter and quote JSON never contains raw: lines come out verbatim.
        return self._copy_out(sql, params, "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'")

    def scan_frame(self, spec: ScanSpec, catalog: Catalog) -> Frame:
        """The catalog's features, scores and tags read from their typed columns (a
        column not ready yet, or past the column cap, cast from its jsonb member in
        the query), copied out as CSV and parsed by Arrow's CSV reader into typed
        columns (no JSON text leaves the server, no per-row Python)."""
        columns = [((int(ColumnSource.FEATURE), n), k)
                   for n, k in catalog.features().items() if k in _TYPED_SQL]
        columns += [((SCORE_SOURCE, n), ColumnKind.NUMERIC) for n in catalog.score_keys()]
        columns += [((int(ColumnSource.TAG), n), ColumnKind.CATEGORICAL)
                    for n in catalog.tags()]
        typed = self._typed_of(spec.model, [key for key, _ in columns])
        types = dict(_FRAME_TYPES)
        typed_sql = ""
        names: list[Any] = []
        for i, (key, kind) in enumerate(columns):
            t = typed.get(key)
            if t is not None and t.ready:
                kind = t.kind
                typed_sql += f", r.{t.col}"
            else:
                typed_sql += ", " + _jsonb_value("r", key[0], kind)
                names += [key[1], key[1]]
            types[f"typed_{i}"] = _TYPED_ARROW[kind]
        sql, params = self._scan_sql(_FRAME_SELECT.format(typed=typed_sql), spec)
        # the window's (time, id) sort in memory: at 500k rows the default 4MB
        # spilled it to disk (external merge, ~70 MB)
        data = self._copy_out(sql, [*names, *params], "FORMAT csv", _SCAN_WORK_MEM)
        if data:
            # PostgreSQL's CSV: NULL is an empty field, an empty string a quoted one
            # (""); booleans are t / f; float8 prints the shortest exact digits.
            table = pa_csv.read_csv(
                pa.py_buffer(data),
                read_options=pa_csv.ReadOptions(column_names=list(types),
                                                block_size=16 << 20),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types=types, null_values=[""], strings_can_be_null=True,
                    quoted_strings_can_be_null=False, true_values=["t"],
                    false_values=["f"]))
        else:
            table = pa.schema(list(types.items())).empty_table()
        return frame_from_arrow(table, catalog, {
            key: table.column(f"typed_{i}") for i, (key, _) in enumerate(columns)})

    def _typed_of(self, model: str, keys: list[tuple[int, str]]) -> dict[tuple[int, str], _Typed]:
        """The model's typed columns, read again from the store when one of ``keys``
        has none or is not ready (another replica may have added or filled it since)."""
        with self._typed_lock:
            typed = self._typed.get(model, {})
        if any(key not in typed or not typed[key].ready for key in keys):
            with self._pool.connection() as conn:
                self._refresh_typed(conn, [model])
            with self._typed_lock:
                typed = self._typed.get(model, {})
        return typed

    def aggregate(self, spec: ScanSpec, catalog: Catalog, query: agg.AggregateQuery
                  ) -> agg.Aggregates | None:
        """One GROUP BY (grouping sets) over the window's typed columns (a column not
        ready yet cast from its jsonb member), in PostgreSQL. With scores (ROC AUC's
        ranks) and a window inside the row budget, the records are read and ranked in
        numpy instead: PostgreSQL's rank windows (one sort per group kind) took about
        twice as long at 1M records (26-28 s against 14.8 s, load 6-8); past the
        budget only the SQL can answer exactly."""
        if query.scores and spec.limit is not None and self.count_records(spec) < spec.limit:
            return super().aggregate(spec, catalog, query)
        kinds = catalog.kinds
        keys = [(int(r.source), r.name) for r in query.slices
                if r.source in (ColumnSource.FEATURE, ColumnSource.TAG)]
        score_keys = [(SCORE_SOURCE, k) for k in query.scores]
        typed = self._typed_of(spec.model, keys + score_keys)
        scores = []
        score_names: list[tuple[object, ...]] = []
        for key in score_keys:  # a typed column, else its jsonb member (two placeholders)
            t = typed.get(key)
            if t is not None and t.ready:
                scores.append(f"r.{t.col}")
                score_names.append(())
            else:
                scores.append(_jsonb_value("r", SCORE_SOURCE, ColumnKind.NUMERIC))
                score_names.append((key[1], key[1]))
        exprs: dict[tuple[int, str], str] = {}
        names: list[object] = []
        for ref in query.slices:
            key = (int(ref.source), ref.name)
            if key not in keys:
                continue
            t = typed.get(key)
            if t is not None and t.ready:
                exprs[key] = f"r.{t.col}"
            elif key in kinds and kinds[key] in _TYPED_SQL:
                exprs[key] = _jsonb_value("r", key[0], kinds[key])
        slices = []
        for ref in query.slices:  # the placeholders' values in the select list's order
            slices.append(agg.slice_sql(ref, exprs))
            if (int(ref.source), ref.name) in exprs and "%s" in slices[-1]:
                names += [ref.name, ref.name]
        where, params = self._scan_where(spec)
        src = agg.AggregateSource(
            "FROM obs_records r LEFT JOIN obs_actuals a ON a.prediction_id = "
            "r.prediction_id WHERE " + where,
            "(extract(epoch FROM r.prediction_time) * 1000000)::bigint", tuple(slices),
            tuple(names), tuple(params), "({0} IS NOT NULL AND {0} <> 'NaN'::float8)",
            placeholder="%s", int_div="/", scores=tuple(scores),
            score_params=tuple(score_names), text_key='{} COLLATE "C"')
        with self._pool.connection() as conn, conn.transaction():
            # one statement run once: JIT compiling it cost seconds (5.8 s of 26 s at
            # 1M records); the ranks' sorts (~130 MB each at 1M) in memory, not spilled
            conn.execute("SET LOCAL jit = off")
            conn.execute(f"SET LOCAL work_mem = '{_AGGREGATE_WORK_MEM}'")
            return agg.run_aggregate(query, src, lambda sql, values: [
                tuple(int(v) if isinstance(v, Decimal) else v for v in row)
                for row in conn.execute(sql, values).fetchall()])

    def profile_rows(self, spec: ScanSpec) -> list[tuple[int, bytes]]:
        where, params = _profile_where(spec)
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT bucket_start, profile FROM obs_profiles WHERE "
                                + where + " ORDER BY bucket_start", params).fetchall()
        return [(int(b), bytes(p)) for b, p in rows]

    def confusion_rows(self, spec: ScanSpec) -> list[ConfusionRow]:
        where, params = _profile_where(spec)
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT bucket_start, source, name, value, predicted, actual, sum(n) "
                "FROM obs_confusion WHERE " + where + " GROUP BY 1, 2, 3, 4, 5, 6 "
                "HAVING sum(n) > 0", params).fetchall()
        return [(int(b), int(s), n, v, p, a, int(c)) for b, s, n, v, p, a, c in rows]

    def profile_headers(self, spec: ScanSpec) -> list[tuple[int, int, dict[tuple[int, str],
                                                                        dict[str, int]]]]:
        """The headers kept apart (no sketch detoasted)."""
        where, params = _profile_where(spec)
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT bucket_start, record_count, header FROM obs_profiles "
                                "WHERE " + where + " ORDER BY bucket_start", params).fetchall()
        headers = stored_headers(rows)
        return super().profile_headers(spec) if headers is None else headers

    def profile_count(self, spec: ScanSpec) -> tuple[int, int]:
        where, params = _profile_where(spec)
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT (SELECT coalesce(sum(record_count), 0) FROM obs_profiles WHERE "
                + where + "), (SELECT coalesce(sum(missing), 0) FROM obs_profile_gaps WHERE "
                + where + ")", params + params).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def model_of(self, prediction_id: str) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT model FROM obs_record_ids WHERE prediction_id = %s",
                               [prediction_id]).fetchone()
        return row[0] if row else None

    def summaries(self) -> list[ModelSummary]:
        """The span is two index probes a model (:meth:`record_span`)."""
        def fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
            with self._pool.connection() as conn:
                return list(conn.execute(sql, params).fetchall())

        return self._summaries(fetch, "array_agg", (
            "SELECT r.model, count(*) FROM obs_record_ids r JOIN obs_actuals a "
            "ON a.prediction_id = r.prediction_id WHERE r.model = ANY(%s) GROUP BY r.model"))

    def set_attributions(self, model: str, attributions: dict[str, dict[str, float]]) -> None:
        values = [(json.dumps(attr), pid, model) for pid, attr in attributions.items()]
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "UPDATE obs_records r SET attributions = %s::jsonb FROM obs_record_ids i "
                "WHERE i.prediction_id = %s AND i.model = %s AND r.model = i.model "
                "AND r.prediction_time = i.prediction_time AND r.prediction_id = i.prediction_id",
                values)

    def put_document(self, kind: str, key: str, model: str, doc: dict[str, Any]) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO obs_documents (kind, key, model, doc) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc, model = excluded.model",
                [kind, key, model, json.dumps(doc)])

    def get_document(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT doc FROM obs_documents WHERE kind = %s AND key = %s",
                               [kind, key]).fetchone()
        return row[0] if row else None

    def list_documents(self, kind: str, model: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT doc FROM obs_documents WHERE kind = %s"
        params: list[Any] = [kind]
        if model:
            sql += " AND model = %s"
            params.append(model)
        with self._pool.connection() as conn:
            rows = conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [r[0] for r in rows]

    def delete_document(self, kind: str, key: str) -> bool:
        with self._pool.connection() as conn, conn.transaction():
            cur = conn.execute("DELETE FROM obs_documents WHERE kind = %s AND key = %s",
                               [kind, key])
            return cur.rowcount > 0

    # -- alerts, deliveries, lease ------------------------------------------------

    def _notify(self, conn: Any, seq: int, alert_id: str) -> None:
        # Sent at commit, to every replica LISTENing (the writer's own included).
        conn.execute("SELECT pg_notify(%s, %s)", [ALERT_CHANNEL, f"{seq}:{alert_id}"])

    @staticmethod
    def _add_delivery(conn: Any, alert_id: str, d: NewDelivery | None) -> None:
        if d is None:
            return
        conn.execute(
            "INSERT INTO obs_webhook_deliveries (alert_id, event, url, payload, idempotency_key) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING",
            [alert_id, d.event, d.url, json.dumps(d.payload), d.idempotency_key])

    def insert_alert(self, alert: dict[str, Any], slot: datetime,
                     delivery: NewDelivery | None) -> int | None:
        with self._pool.connection() as conn, conn.transaction():
            # No conflict target: the primary key, (monitor, slot) and the one-FIRING
            # index all turn a second raise (another replica, a re-run) into nothing.
            row = conn.execute(
                "INSERT INTO obs_alerts (id, monitor_id, model, slot, state, doc) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING seq",
                [alert["id"], alert["monitor_id"], alert["model"], slot, alert["state"],
                 json.dumps(alert)]).fetchone()
            if row is None:
                return None
            self._add_delivery(conn, alert["id"], delivery)
            self._notify(conn, row[0], alert["id"])
            return int(row[0])

    def resolve_alert(self, alert: dict[str, Any], delivery: NewDelivery | None) -> int | None:
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE obs_alerts SET state = %s, doc = %s, seq = nextval('obs_alert_seq') "
                "WHERE id = %s AND state = 1 RETURNING seq",
                [alert["state"], json.dumps(alert), alert["id"]]).fetchone()
            if row is None:
                return None
            self._add_delivery(conn, alert["id"], delivery)
            self._notify(conn, row[0], alert["id"])
            return int(row[0])

    def firing_alert(self, monitor_id: str) -> dict[str, Any] | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT doc FROM obs_alerts WHERE monitor_id = %s AND state = 1",
                               [monitor_id]).fetchone()
        return row[0] if row else None

    def list_alerts(self, model: str | None = None, monitor_id: str | None = None,
                    state: int | None = None) -> list[dict[str, Any]]:
        where, params = alert_filter("%s", model, monitor_id, state)
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT doc FROM obs_alerts WHERE " + where
                                + " ORDER BY seq DESC", params).fetchall()
        return [r[0] for r in rows]

    def alerts_since(self, seq: int, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT seq, doc FROM obs_alerts WHERE seq > %s ORDER BY seq "
                                "LIMIT %s", [seq, limit]).fetchall()
        return [(int(s), d) for s, d in rows]

    def alert_by_id(self, alert_id: str) -> tuple[int, dict[str, Any]] | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT seq, doc FROM obs_alerts WHERE id = %s",
                               [alert_id]).fetchone()
        return (int(row[0]), row[1]) if row else None

    def last_alert_seq(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT coalesce(max(seq), 0) FROM obs_alerts").fetchone()
        return int(row[0]) if row else 0

    _DELIVERY_COLUMNS = ("id, alert_id, event, url, payload, idempotency_key, state, attempts, "
                         "next_attempt_at, last_error")

    @staticmethod
    def _delivery(row: Any) -> WebhookDelivery:
        return WebhookDelivery(int(row[0]), row[1], row[2], row[3], row[4], row[5],
                               DeliveryState(row[6]), int(row[7]), row[8], row[9] or "")

    def claim_deliveries(self, limit: int, claim_seconds: float) -> list[WebhookDelivery]:
        cols = ", ".join(f"d.{c.strip()}" for c in self._DELIVERY_COLUMNS.split(","))
        with self._pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "UPDATE obs_webhook_deliveries d SET attempts = d.attempts + 1, "
                "next_attempt_at = now() + make_interval(secs => %s), update_time = now() "
                "FROM (SELECT id FROM obs_webhook_deliveries WHERE state = 0 "
                "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT %s "
                f"FOR UPDATE SKIP LOCKED) c WHERE d.id = c.id RETURNING {cols}",
                [claim_seconds, limit]).fetchall()
        return [self._delivery(r) for r in rows]

    def finish_delivery(self, delivery_id: int, state: DeliveryState, error: str = "",
                        retry_after: float | None = None) -> None:
        with self._pool.connection() as conn:
            if retry_after is not None:
                conn.execute(
                    "UPDATE obs_webhook_deliveries SET state = 0, last_error = %s, "
                    "next_attempt_at = now() + make_interval(secs => %s), update_time = now() "
                    "WHERE id = %s", [error[:1000], retry_after, delivery_id])
            else:
                conn.execute(
                    "UPDATE obs_webhook_deliveries SET state = %s, last_error = %s, "
                    "update_time = now() WHERE id = %s",
                    [int(state), error[:1000] or None, delivery_id])

    def list_deliveries(self, alert_id: str | None = None) -> list[WebhookDelivery]:
        sql = f"SELECT {self._DELIVERY_COLUMNS} FROM obs_webhook_deliveries"
        params: list[Any] = []
        if alert_id:
            sql += " WHERE alert_id = %s"
            params.append(alert_id)
        with self._pool.connection() as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [self._delivery(r) for r in rows]

    def _lease_conn(self) -> Any:
        """The lease's own connection: renewals never wait behind ingest for the pool."""
        import psycopg

        if self._lease_connection is None or self._lease_connection.closed:
            self._lease_connection = psycopg.connect(
                self._url, autocommit=True, connect_timeout=5,
                application_name="modelplane-observability-lease", keepalives=1,
                keepalives_idle=5, keepalives_interval=2, keepalives_count=2,
                options="-c statement_timeout=5000")
        return self._lease_connection

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> tuple[bool, float]:
        # The database's clock decides expiry, so replicas' clocks need not agree.
        with self._lease_lock:
            try:
                conn = self._lease_conn()
                row = conn.execute(
                    "INSERT INTO obs_leases (name, holder, expires_at) "
                    "VALUES (%s, %s, now() + make_interval(secs => %s)) "
                    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                    "expires_at = excluded.expires_at "
                    "WHERE obs_leases.holder = excluded.holder "
                    "OR obs_leases.expires_at <= now() "
                    "RETURNING true", [name, holder, ttl_seconds]).fetchone()
                if row is not None:
                    return True, ttl_seconds
                other = conn.execute(
                    "SELECT greatest(extract(epoch FROM expires_at - now()), 0)::float8 "
                    "FROM obs_leases WHERE name = %s", [name]).fetchone()
            except Exception:
                self._drop_lease_conn()
                raise
        return False, float(other[0]) if other else 0.0

    def release_lease(self, name: str, holder: str) -> None:
        with self._lease_lock:
            try:
                self._lease_conn().execute(
                    "DELETE FROM obs_leases WHERE name = %s AND holder = %s", [name, holder])
            finally:
                self._drop_lease_conn()

    def _drop_lease_conn(self) -> None:
        conn, self._lease_connection = self._lease_connection, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def listen_alerts(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[str]]:
        return self._listen()

    @contextlib.asynccontextmanager
    async def _listen(self) -> AsyncIterator[AsyncIterator[str]]:
        import psycopg

        # Its own connection (not the pool's): LISTEN lasts as long as the session.
        # Keepalives make a silently dead connection fail within ~20 s, not hours.
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, application_name="modelplane-observability-alerts",
            keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=2)
        try:
            await conn.execute(f"LISTEN {ALERT_CHANNEL}")

            async def payloads() -> AsyncIterator[str]:
                async for note in conn.notifies():
                    yield note.payload

            yield payloads()
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    # -- alerts raised by other services (issue #17) ------------------------------

    def insert_raised_alert(self, alert: dict[str, Any], slot: datetime) -> int | None:
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO obs_alerts (id, monitor_id, model, slot, state, doc) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING seq",
                [alert["id"], f"raised/{alert['id']}", alert["model"], slot, alert["state"],
                 json.dumps(alert)]).fetchone()
            if row is None:
                return None
            self._notify(conn, row[0], alert["id"])
            return int(row[0])
