"""Typed columns (#15): on both stores every feature, score and tag of a model's
catalog has its own typed column in ``obs_records``; analyses read those (Arrow
arrays), never the JSON; a store written before them is migrated on open. On
PostgreSQL also: columnar ingest, replicas adding a column at once, a migration
killed half-way or run by two replicas, and the cap on the table's columns."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from obs_test_data import open_store

from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.dashboard import replace_window
from modelplane.observability.evaluations import Evaluations, Reference
from modelplane.observability.ingest import RecordIngestor
from modelplane.observability.reader import shared_frames
from modelplane.observability.records import (
    Actual,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    EvaluationRecord,
    TimeWindow,
)
from modelplane.observability.store.base import EvaluationStore, ScanSpec
from modelplane.observability.store.embedded import EmbeddedStore
from modelplane.observability.store.encoding import RECORD_COLUMNS, Catalog
from modelplane.observability.store.frames import Frame, frame_from_ndjson
from modelplane.observability.store.postgres import PostgresStore

T0 = datetime(2026, 3, 2, tzinfo=UTC)
N = 600
#: with what a CSV or JSON path could get wrong: quotes, a slash and tilde (JSON
#: pointer), a comma and a newline, an empty string, "NA" (a null spelling)
CITIES = ["lisbon", "porto", 'q"uo/te~', "par,is\nx", "", "NA", "z\u00fcrich\\t\u2713"]


def _records(lo: int, hi: int, *, late_column: bool = False) -> list[EvaluationRecord]:
    """Numeric, categorical and bool features with missing values, scores and tags;
    from the second half on the drifted ``x`` and (``late_column``) a new feature."""
    rng = np.random.default_rng(lo)
    out = []
    for i in range(lo, hi):
        late = i >= N // 2
        feats: dict[str, Any] = {
            "x": float(rng.normal(0.7 if late else 0.0)), "count": int(i % 7),
            "city": CITIES[i % len(CITIES)], "flag": bool(i % 3), "a/b": 0.25 * (i % 5)}
        if i % 10 == 0:
            feats["x"] = None  # missing
        if i % 13 == 0:
            feats["city"] = None
        if late_column:
            feats["late"] = float(i) if i % 2 else None
        p = float(rng.random())
        out.append(EvaluationRecord(
            prediction_id=f"r{i}", model="fraud", version="1", environment=Environment.PRODUCTION,
            prediction_time=T0 + timedelta(minutes=7 * i), features=feats,
            prediction=int(p > 0.5), scores={"1": p} if i % 4 else {},
            tags={"region": "eu" if i % 2 else "NA"} if i % 7 else {}))
    return out


def _actuals(lo: int, hi: int) -> list[Actual]:
    return [Actual(f"r{i}", (i * 7919) % 3 == 0) for i in range(lo, hi)]


def _fill(store: EvaluationStore) -> None:
    ingestor = RecordIngestor(store, store.load_catalogs(), threading.Lock())
    ingestor.write_records(_records(0, N // 2))
    ingestor.write_records(_records(N // 2, N, late_column=True))  # a column added later
    ingestor.write_actuals(_actuals(0, N))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "evaluations.duckdb")
    s.open()
    _fill(s)
    yield s
    s.close()


@pytest.fixture(params=["embedded", "postgres"])
def either(request: pytest.FixtureRequest, tmp_path: Path,
           make_postgres_database: Callable[[str], str]) -> Iterator[EvaluationStore]:
    """Either store, filled by the per-record ingest."""
    s = open_store(request.param, tmp_path, make_postgres_database, "mp_obs_typed")
    _fill(s)
    yield s
    s.close()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return a.dtype == b.dtype and a.tolist() == b.tolist() \
        and [type(v) for v in a.tolist()] == [type(v) for v in b.tolist()]


def _assert_frames_equal(typed: Frame, parsed: Frame) -> None:
    assert len(typed) == len(parsed)
    for name in ("prediction_id", "version", "environment", "time_us", "prediction_label",
                 "prediction_number", "actual_label", "actual_number"):
        assert _same(getattr(typed, name), getattr(parsed, name)), name
    for group in ("features", "scores", "tags"):
        t, p = getattr(typed, group), getattr(parsed, group)
        assert list(t) == list(p), group
        for key in t:
            assert _same(t[key], p[key]), (group, key)
    assert typed.kinds == parsed.kinds


def _json_frame(store: EvaluationStore, spec: ScanSpec) -> Frame:
    return frame_from_ndjson(store.scan(spec), store.load_catalogs()[spec.model])


SPECS = [ScanSpec("fraud"), ScanSpec("fraud", newest_first=True, limit=50),
         ScanSpec("fraud", window=TimeWindow(T0 + timedelta(hours=20), T0 + timedelta(hours=50)),
                  has_actual=True),
         ScanSpec("fraud", sample=97)]


@pytest.mark.parametrize("spec", SPECS, ids=["all", "newest", "window", "sample"])
def test_typed_columns_round_trip_every_kind_missing_values_and_a_later_column(
        either: EvaluationStore, spec: ScanSpec) -> None:
    store = either
    catalog = store.load_catalogs()["fraud"]
    typed = store.scan_frame(spec, catalog)
    _assert_frames_equal(typed, _json_frame(store, spec))
    if spec == SPECS[0]:
        assert np.isnan(typed.features["x"][0]) and typed.features["city"][0] is None
        assert typed.features["city"][2] == 'q"uo/te~' and typed.features["flag"][1] is True
        assert list(typed.features["city"][3:7]) == ["par,is\nx", "", "NA", "z\u00fcrich\\t\u2713"]
        assert typed.features["a/b"][3] == 0.75 and typed.features["count"][6] == 6.0
        assert np.isnan(typed.features["late"][: N // 2]).all()
        assert typed.features["late"][N // 2 + 1] == N // 2 + 1
        assert np.isnan(typed.scores["1"][0]) and typed.tags["region"][0] is None
        assert list(typed.tags["region"][1:3]) == ["eu", "NA"]


def test_the_columns_are_typed_and_analyses_do_not_read_the_json(
        store: EmbeddedStore) -> None:
    conn = store._conn
    types = dict(conn.execute(
        "SELECT t.name, c.data_type FROM obs_typed_columns t JOIN information_schema.columns c "
        "ON c.table_name = 'obs_records' AND c.column_name = t.col").fetchall())
    assert types == {"x": "DOUBLE", "count": "DOUBLE", "a/b": "DOUBLE", "late": "DOUBLE",
                     "city": "VARCHAR", "flag": "BOOLEAN", "1": "DOUBLE", "region": "VARCHAR"}
    catalog = store.load_catalogs()["fraud"]
    before = store.scan_frame(ScanSpec("fraud"), catalog)
    conn.execute("UPDATE obs_records SET features = '{}', scores = NULL, tags = NULL")
    after = store.scan_frame(ScanSpec("fraud"), catalog)
    _assert_frames_equal(after, before)


def _analyses(ev: Evaluations) -> list[str]:
    cur = EvaluationFilter("fraud", ("1",), Environment.PRODUCTION,
                           TimeWindow(T0 + timedelta(minutes=7 * N // 2), None))
    ref = Reference(filter=EvaluationFilter("fraud", ("1",), Environment.PRODUCTION,
                                            TimeWindow(None, cur.window.start)))
    city = ColumnRef(ColumnSource.FEATURE, "city")
    return [repr(r) for r in (
        ev.drift(cur, ref, mode=AnalysisMode.EXACT),
        ev.performance(EvaluationFilter("fraud"), [M.Metric.ACCURACY, M.Metric.F1],
                       bucket=timedelta(hours=6), slice_by=[city], mode=AnalysisMode.EXACT),
        ev.root_cause(cur, ref, metric=M.Metric.ACCURACY, max_depth=1, min_slice_size=5,
                      mode=AnalysisMode.EXACT))]


def _evaluations(store: EvaluationStore) -> Evaluations:
    return Evaluations(store, store.load_catalogs(), threading.Lock(), max_rows=10 * N)


def test_exact_analyses_from_typed_columns_equal_their_json_answers(
        either: EvaluationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = either
    typed = _analyses(_evaluations(store))
    # the interface's default: the NDJSON scan parsed (what every analysis read before)
    monkeypatch.setattr(store, "scan_frame", lambda spec, catalog: EvaluationStore.scan_frame(
        store, spec, catalog))
    assert _analyses(_evaluations(store)) == typed


#: ``obs_records`` and ``obs_columns`` as a store before typed columns wrote them.
_OLD_SCHEMA = """
CREATE TABLE obs_records (
    prediction_id VARCHAR PRIMARY KEY, model VARCHAR NOT NULL, version VARCHAR NOT NULL,
    environment SMALLINT NOT NULL, prediction_time TIMESTAMPTZ NOT NULL,
    features JSON NOT NULL, prediction_label VARCHAR, prediction_number DOUBLE,
    scores JSON, tags JSON, trace_id VARCHAR, latency_us BIGINT, attributions JSON);
CREATE INDEX obs_records_model_time ON obs_records (model, prediction_time);
CREATE TABLE obs_actuals (prediction_id VARCHAR PRIMARY KEY, label VARCHAR, number DOUBLE,
                          actual_time TIMESTAMPTZ NOT NULL);
CREATE TABLE obs_columns (model VARCHAR, source SMALLINT, name VARCHAR, kind SMALLINT,
                          PRIMARY KEY (model, source, name));
"""


def test_a_store_with_json_features_is_migrated_once_and_answers_the_same(
        store: EmbeddedStore, tmp_path: Path) -> None:
    expected = _analyses(_evaluations(store))
    frame = store.scan_frame(ScanSpec("fraud"), store.load_catalogs()["fraud"])
    # the same rows, written by hand into the old schema (JSON only)
    old = tmp_path / "old.duckdb"
    rows = {t: store._conn.execute(f"SELECT * FROM {t}").fetchall()
            for t in ("obs_actuals", "obs_columns")}
    rows["obs_records"] = store._conn.execute(
        "SELECT prediction_id, model, version, environment, prediction_time, features, "
        "prediction_label, prediction_number, scores, tags, trace_id, latency_us, attributions "
        "FROM obs_records").fetchall()
    with duckdb.connect(str(old)) as conn:
        conn.execute(_OLD_SCHEMA)
        for table, values in rows.items():
            marks = ", ".join("?" * len(values[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    migrated = EmbeddedStore(old)
    migrated.open()
    try:
        assert migrated._conn.execute("SELECT count(*) FROM obs_typed_columns").fetchall() \
            == [(8,)]
        _assert_frames_equal(
            migrated.scan_frame(ScanSpec("fraud"), migrated.load_catalogs()["fraud"]), frame)
        assert _analyses(_evaluations(migrated)) == expected
    finally:
        migrated.close()
    # opened again: nothing to migrate, the columns stay
    again = EmbeddedStore(old)
    again.open()
    try:
        assert again._conn.execute("SELECT count(*) FROM obs_typed_columns").fetchall() == [(8,)]
        _assert_frames_equal(
            again.scan_frame(ScanSpec("fraud"), again.load_catalogs()["fraud"]), frame)
    finally:
        again.close()


# -- PostgreSQL ---------------------------------------------------------------------


def _pg(store: EvaluationStore) -> Any:
    import psycopg

    assert isinstance(store, PostgresStore)
    return psycopg.connect(store._url, autocommit=True)


def _typed_columns(store: EvaluationStore) -> dict[str, tuple[str, str, bool]]:
    """name -> (column, its SQL type on a partition of obs_records, ready)."""
    with _pg(store) as conn:
        rows = conn.execute(
            "SELECT t.name, t.col, c.data_type, t.ready FROM obs_typed_columns t "
            "JOIN information_schema.columns c ON c.table_name = 'obs_records_202603' "
            "AND c.column_name = t.col WHERE t.model = 'fraud'").fetchall()
    return {n: (col, dt, ready) for n, col, dt, ready in rows}


def _frame(store: EvaluationStore, model: str = "fraud") -> Frame:
    return store.scan_frame(ScanSpec(model), store.load_catalogs()[model])


@pytest.fixture
def pg(make_postgres_database: Callable[[str], str]) -> Iterator[PostgresStore]:
    s = PostgresStore(make_postgres_database("mp_obs_typed_pg"))
    s.open()
    _fill(s)
    yield s
    s.close()


def test_postgres_columns_are_typed_on_every_partition_and_analyses_do_not_read_the_jsonb(
        pg: PostgresStore) -> None:
    types = {n: t for n, (_, t, _) in _typed_columns(pg).items()}
    assert types == {"x": "double precision", "count": "double precision",
                     "a/b": "double precision", "late": "double precision", "city": "text",
                     "flag": "boolean", "1": "double precision", "region": "text"}
    assert all(ready for _, _, ready in _typed_columns(pg).values())
    before = _frame(pg)
    with _pg(pg) as conn:
        conn.execute("UPDATE obs_records SET features = '{}', scores = NULL, tags = NULL")
    _assert_frames_equal(_frame(pg), before)


def _columnar_table(records: list[EvaluationRecord]) -> pa.Table:
    """The records in LogRecords' columnar form; ``x`` NaN / infinite in some rows."""
    def keys(attr: str) -> list[str]:
        return sorted({k for r in records for k in getattr(r, attr)})

    cols: dict[str, Any] = {
        "prediction_id": [r.prediction_id for r in records],
        "model": [r.model for r in records], "version": [r.version for r in records],
        "environment": pa.array([int(r.environment) for r in records], pa.int32()),
        "prediction_time": pa.array([r.prediction_time for r in records],
                                    pa.timestamp("us", tz="UTC")),
        "prediction": [r.prediction for r in records]}
    for k in keys("features"):
        cols[f"feature.{k}"] = [r.features.get(k) for r in records]
    for k in keys("scores"):
        cols[f"score.{k}"] = pa.array([r.scores.get(k) for r in records], pa.float64())
    for k in keys("tags"):
        cols[f"tag.{k}"] = pa.array([r.tags.get(k) for r in records], pa.string())
    x = [float("nan") if i % 17 == 0 else float("inf") if i % 19 == 0 else v
         for i, v in enumerate(cols["feature.x"])]
    cols["feature.x"] = pa.array(x, pa.float64())
    return pa.table(cols)


def test_postgres_columnar_ingest_fills_the_typed_columns_of_each_model_of_a_batch(
        make_postgres_database: Callable[[str], str]) -> None:
    store = PostgresStore(make_postgres_database("mp_obs_typed_col"))
    store.open()
    try:
        ingestor = RecordIngestor(store, store.load_catalogs(), threading.Lock())
        first = _records(0, N // 2)
        other = [EvaluationRecord(
            prediction_id=f"o{i}", model="other", version="1",
            environment=Environment.PRODUCTION, prediction_time=T0 + timedelta(minutes=i),
            features={"x": float(i), "city": CITIES[(i + 1) % len(CITIES)]}, prediction=i % 2)
            for i in range(40)]
        # two models in one batch: each gets its own typed columns
        result = ingestor.write_columnar(_columnar_table(first[: N // 4] + other))
        assert result.accepted == N // 4 + 40, result
        # a retry with new rows (the ids' fallback claim filters the rows)
        assert ingestor.write_columnar(_columnar_table(first)).accepted == N // 2 - N // 4
        later = _records(N // 2, N, late_column=True)
        assert ingestor.write_columnar(_columnar_table(later)).accepted == N // 2
        ingestor.write_actuals(_actuals(0, N))
        for model in ("fraud", "other"):
            for spec in (ScanSpec(model), ScanSpec(model, sample=50)):
                typed = store.scan_frame(spec, store.load_catalogs()[model])
                _assert_frames_equal(typed, _json_frame(store, spec))
        frame = _frame(store)
        assert np.isnan(frame.features["x"][17]) and np.isnan(frame.features["x"][19])
        assert frame.features["city"][3] == "par,is\nx" and frame.features["city"][4] == ""
        other_x = _frame(store, "other").features["x"]  # (rows 152, 153: inf, NaN)
        assert list(other_x[:2]) == [0.0, 1.0] and np.isnan(other_x[2]) and other_x[4] == 4.0
        with _pg(store) as conn:
            models = dict(conn.execute("SELECT model, count(*) FROM obs_typed_columns "
                                       "GROUP BY 1").fetchall())
            x_cols = conn.execute("SELECT col FROM obs_typed_columns WHERE name = 'x' "
                                  "ORDER BY model").fetchall()
            # other models' rows hold NULL in a model's typed column
            other_x = conn.execute(f"SELECT count({x_cols[0][0]}) FROM obs_records "
                                   "WHERE model = 'other'").fetchone()
        assert models == {"fraud": 8, "other": 2} and len(set(x_cols)) == 2
        assert other_x == (0,)
        assert _analyses(_evaluations(store)) == _json_analyses(store)
    finally:
        store.close()


def _json_analyses(store: EvaluationStore) -> list[str]:
    """The analyses on the NDJSON scan parsed (the interface's default scan_frame)."""
    class JsonScans:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def scan_frame(self, spec: ScanSpec, catalog: Any) -> Frame:
            return EvaluationStore.scan_frame(store, spec, catalog)

    return _analyses(Evaluations(JsonScans(), store.load_catalogs(),  # type: ignore[arg-type]
                                 threading.Lock(), max_rows=10 * N))


def test_postgres_replicas_adding_the_same_columns_at_once_both_succeed_and_agree(
        make_postgres_database: Callable[[str], str]) -> None:
    url = make_postgres_database("mp_obs_typed_race")
    replicas = [PostgresStore(url, pool_size=2), PostgresStore(url, pool_size=2)]
    for r in replicas:
        r.open()
    try:
        RecordIngestor(replicas[0], {}, threading.Lock()).write_records(_records(0, 100))
        ingestors = [RecordIngestor(r, r.load_catalogs(), threading.Lock()) for r in replicas]
        errors: list[BaseException] = []
        for round_ in range(6):
            # each round both replicas bring the same new feature and tag at once;
            # from round 3 on the catalog has them already, with no typed column (as
            # a replica of the version before typed columns would leave them): only
            # the schema lock then keeps the two from adding a column each
            if round_ >= 3:
                with _pg(replicas[0]) as conn:
                    conn.execute("INSERT INTO obs_columns VALUES ('fraud', 1, %s, 1), "
                                 "('fraud', 2, %s, 2)", [f"new{round_}", f"t{round_}"])
            barrier = threading.Barrier(2)

            def write(k: int, round_: int = round_, barrier: threading.Barrier = barrier
                      ) -> None:
                lo = 100 + round_ * 100 + k * 50
                recs = _records(lo, lo + 50)
                for rec in recs:
                    rec.features[f"new{round_}"] = float(rec.prediction_id[1:])
                    rec.tags[f"t{round_}"] = f"v{k}"
                barrier.wait()
                try:
                    ingestors[k].write_records(recs)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=write, args=(k,)) for k in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert errors == []
        typed = _typed_columns(replicas[0])
        assert {f"new{i}" for i in range(6)} | {f"t{i}" for i in range(6)} <= set(typed)
        with _pg(replicas[0]) as conn:
            n_typed = conn.execute("SELECT count(*) FROM obs_typed_columns").fetchone()
            n_cols = conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = "
                                  "'obs_records'::regclass AND attnum > 0").fetchone()
        assert n_typed == (len(typed),) and n_cols == (13 + len(typed),)
        frames = [_frame(r) for r in replicas]
        for r in replicas:  # both replicas know the same slots
            assert {n: t.col for (_, n), t in r._typed["fraud"].items()} \
                == {n: col for n, (col, _, _) in typed.items()}
        _assert_frames_equal(frames[0], frames[1])
        _assert_frames_equal(frames[0], _json_frame(replicas[0], ScanSpec("fraud")))
        assert frames[0].features["new5"][-1] == 699.0
    finally:
        for r in replicas:
            r.close()


#: obs_records, its ids, actuals and catalog as PostgreSQL stores wrote them before
#: typed columns (jsonb only).
_OLD_PG_SCHEMA = """
CREATE TABLE obs_records (
    prediction_id text NOT NULL, model text NOT NULL, version text NOT NULL,
    environment smallint NOT NULL, prediction_time timestamptz NOT NULL,
    features jsonb NOT NULL, prediction_label text, prediction_number double precision,
    scores jsonb, tags jsonb, trace_id text, latency_us bigint, attributions jsonb
) PARTITION BY RANGE (prediction_time);
CREATE INDEX obs_records_model_time_id ON obs_records (model, prediction_time, prediction_id);
CREATE TABLE obs_records_202603 PARTITION OF obs_records
    FOR VALUES FROM ('2026-03-01T00:00:00+00:00') TO ('2026-04-01T00:00:00+00:00');
CREATE TABLE obs_record_ids (prediction_id text PRIMARY KEY, model text NOT NULL,
                             prediction_time timestamptz NOT NULL);
CREATE TABLE obs_actuals (prediction_id text PRIMARY KEY, label text,
                          number double precision, actual_time timestamptz NOT NULL);
CREATE TABLE obs_columns (model text, source smallint, name text, kind smallint,
                          PRIMARY KEY (model, source, name));
"""


def _old_pg_store(source: PostgresStore, url: str) -> None:
    """``source``'s records, actuals and catalog copied into a jsonb-only store."""
    import psycopg

    columns = {"obs_records": ", ".join(RECORD_COLUMNS),
               "obs_record_ids": "prediction_id, model, prediction_time",
               "obs_actuals": "prediction_id, label, number, actual_time",
               "obs_columns": "model, source, name, kind"}
    with _pg(source) as src, psycopg.connect(url, autocommit=True) as dst:
        dst.execute(_OLD_PG_SCHEMA)
        for table, cols in columns.items():
            with src.cursor().copy(f"COPY (SELECT {cols} FROM {table}) TO STDOUT") as out, \
                    dst.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as into:
                for data in out:
                    into.write(data)


def test_postgres_jsonb_store_is_migrated_in_batches_survives_a_kill_and_two_replicas(
        pg: PostgresStore, make_postgres_database: Callable[[str], str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _analyses(_evaluations(pg))
    frame = _frame(pg)
    url = make_postgres_database("mp_obs_typed_old")
    _old_pg_store(pg, url)
    # killed after three batches of 100 rows
    real_step = PostgresStore._backfill_step
    steps = 0

    def dying(self: PostgresStore, conn: Any, model: str) -> bool:
        nonlocal steps
        steps += 1
        if steps > 3:
            raise RuntimeError("killed")
        return real_step(self, conn, model)

    monkeypatch.setattr(PostgresStore, "_backfill_step", dying)
    killed = PostgresStore(url, backfill_rows=100)
    with pytest.raises(RuntimeError, match="killed"):
        killed.open()
    monkeypatch.setattr(PostgresStore, "_backfill_step", real_step)
    try:
        typed = _typed_columns(killed)
        assert len(typed) == 8 and not any(ready for _, _, ready in typed.values())
        with _pg(killed) as conn:
            filled = conn.execute(f"SELECT count({typed['count'][0]}), count(*) "
                                  "FROM obs_records").fetchone()
            cursor = conn.execute("SELECT after_id FROM obs_typed_backfill").fetchall()
        assert filled == (300, N) and len(cursor) == 1
        # a reader meanwhile: the columns not ready are read from the jsonb
        _assert_frames_equal(_frame(killed), frame)
    finally:
        killed.close()
    # two replicas open at once: both finish, taking turns on the batches
    replicas = [PostgresStore(url, backfill_rows=100), PostgresStore(url, backfill_rows=100)]
    errors: list[BaseException] = []

    def open_(store: PostgresStore) -> None:
        try:
            store.open()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        typed = _typed_columns(replicas[0])
        assert len(typed) == 8 and all(ready for _, _, ready in typed.values())
        with _pg(replicas[0]) as conn:
            filled = conn.execute(f"SELECT count({typed['count'][0]}) FROM obs_records"
                                  ).fetchone()
            left = conn.execute("SELECT count(*) FROM obs_typed_backfill").fetchone()
        assert filled == (N,) and left == (0,)
        # the typed columns alone now answer: the jsonb blanked changes nothing
        with _pg(replicas[0]) as conn:
            conn.execute("UPDATE obs_records SET features = '{}', scores = NULL, tags = NULL")
        for r in replicas:
            _assert_frames_equal(_frame(r), frame)
            assert _analyses(_evaluations(r)) == expected
    finally:
        for r in replicas:
            r.close()


def test_postgres_columns_past_the_cap_stay_jsonb_and_get_typed_when_it_is_raised(
        make_postgres_database: Callable[[str], str],
        caplog: pytest.LogCaptureFixture) -> None:
    url = make_postgres_database("mp_obs_typed_cap")
    capped = PostgresStore(url, max_record_columns=len(RECORD_COLUMNS) + 3)
    capped.open()
    try:
        with caplog.at_level("WARNING"):
            _fill(capped)
        # the first three of the first batch's columns, in (source, name) order
        assert sorted(_typed_columns(capped)) == ["a/b", "city", "count"]
        assert "get no typed column" in caplog.text
        _assert_frames_equal(_frame(capped), _json_frame(capped, ScanSpec("fraud")))
        assert _analyses(_evaluations(capped)) == _json_analyses(capped)
        frame = _frame(capped)
    finally:
        capped.close()
    raised = PostgresStore(url, backfill_rows=250)
    raised.open()
    try:
        typed = _typed_columns(raised)
        assert len(typed) == 8 and all(ready for _, _, ready in typed.values())
        with _pg(raised) as conn:
            conn.execute("UPDATE obs_records SET features = '{}', scores = NULL, tags = NULL")
        _assert_frames_equal(_frame(raised), frame)
    finally:
        raised.close()


def test_analyses_naming_columns_read_only_those_and_answer_as_with_every_column(
        either: EvaluationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root cause by named columns and the row-read performance groups scan just the
    columns they use (a store keeps dozens of features: each one read costs at 1M
    records), with the same answers as a scan of every column."""
    store = either
    city = ColumnRef(ColumnSource.FEATURE, "city")
    cur = EvaluationFilter("fraud", ("1",), Environment.PRODUCTION,
                           TimeWindow(T0 + timedelta(minutes=7 * N // 2), None))
    ref = Reference(filter=EvaluationFilter("fraud", ("1",), Environment.PRODUCTION,
                                            TimeWindow(None, cur.window.start)))

    def answers(ev: Evaluations) -> list[str]:
        return [repr(r) for r in (
            ev.root_cause(cur, ref, metric=M.Metric.ACCURACY, columns=[city], max_depth=1,
                          min_slice_size=5, mode=AnalysisMode.EXACT),
            ev.root_cause(cur, ref, metric=M.Metric.LOG_LOSS, columns=[city], max_depth=1,
                          min_slice_size=5, mode=AnalysisMode.EXACT),
            # performance with scores (ROC AUC) inside the row budget: read and ranked
            # in numpy on every store
            ev.performance(EvaluationFilter("fraud"), [M.Metric.ACCURACY, M.Metric.ROC_AUC],
                           slice_by=[city], mode=AnalysisMode.EXACT))]

    read: list[tuple[list[str], list[str]]] = []
    scan_frame = store.scan_frame

    def spy(spec: ScanSpec, catalog: Any) -> Frame:
        read.append((sorted(catalog.features()), catalog.score_keys()))
        return scan_frame(spec, catalog)

    monkeypatch.setattr(store, "scan_frame", spy)
    pruned = answers(_evaluations(store))
    # accuracy: the city alone, no scores (both sides); log loss: the scores too
    assert read[:4] == [(["city"], []), (["city"], []), (["city"], ["1"]), (["city"], ["1"])]
    # the performance groups: DuckDB ranks in its SQL, PostgreSQL inside the row
    # budget reads the window (its slice column and the scores ranked)
    assert read[4:] == ([(["city"], ["1"])] if isinstance(store, PostgresStore) else [])
    read.clear()
    monkeypatch.setattr(Catalog, "only", lambda self, columns, scores=(): self)
    assert answers(_evaluations(store)) == pruned
    assert read and all("x" in features and "late" in features for features, _ in read)


def test_loads_in_a_shared_context_read_a_window_once_and_give_what_a_read_gives(
        either: EvaluationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard page's analyses load their window and reference once
    (``shared_frames``): a load of the same filter, of a window inside a loaded one,
    or of fewer columns is served from the frame read, and equals a read of its own;
    one asking for more columns, another filter or outside the window reads."""
    store = either
    ev = _evaluations(store)
    scans: list[ScanSpec] = []
    scan_frame = store.scan_frame

    def spy(spec: ScanSpec, catalog: Any) -> Frame:
        scans.append(spec)
        return scan_frame(spec, catalog)

    monkeypatch.setattr(store, "scan_frame", spy)
    whole = EvaluationFilter("fraud", ("1",), Environment.PRODUCTION,
                             TimeWindow(T0, T0 + timedelta(minutes=7 * N)))
    inside = replace_window(whole, TimeWindow(T0 + timedelta(minutes=7 * 100 + 3),
                                              T0 + timedelta(minutes=7 * 400)))
    city = ColumnRef(ColumnSource.FEATURE, "city")
    fresh = {name: ev.load(f, columns=cols, scores=sc)[0]
             for name, f, cols, sc in (("whole", whole, None, True),
                                       ("inside", inside, None, True),
                                       ("city", inside, [city], False))}
    scans.clear()
    with shared_frames() as memo:
        assert ev.load(whole)[0] is not None and len(scans) == 1
        _assert_frames_equal(ev.load(inside)[0], fresh["inside"])
        pruned = ev.load(inside, columns=[city], scores=False)[0]
        assert len(scans) == 1  # both served from the first read
        assert len(pruned) == len(fresh["city"])
        assert pruned.features["city"].tolist() == fresh["city"].features["city"].tolist()
        ev.load(replace_window(whole, TimeWindow(T0, T0 + timedelta(minutes=7 * N + 1))))
        ev.load(whole, has_actual=True)
        assert len(scans) == 3  # a wider window, another actual condition: read
        assert sum(len(v) for v in memo.values()) == 3
    with shared_frames() as memo:
        ev.load(inside, columns=[city], scores=False)
        ev.load(inside)  # more columns and the scores than held: read again
        assert len(scans) == 5
    ev.load(whole)
    assert len(scans) == 6  # outside the context nothing is shared
    _assert_frames_equal(ev.load(whole)[0], fresh["whole"])
