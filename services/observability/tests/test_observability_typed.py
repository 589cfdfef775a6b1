"""Typed columns (#15): on the embedded store every feature, score and tag of a
model's catalog has its own typed column in ``obs_records``; analyses read those
(Arrow arrays), never the JSON; a store written before them is migrated on open.
PostgreSQL keeps jsonb and casts its members to typed columns in the scan."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from obs_test_data import open_store

from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.evaluations import Evaluations, Reference
from modelplane.observability.ingest import RecordIngestor
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
from modelplane.observability.store.frames import Frame, frame_from_ndjson

T0 = datetime(2026, 3, 2, tzinfo=UTC)
N = 600
#: with what a CSV or JSON path could get wrong: quotes, a slash and tilde (JSON
#: pointer), a comma and a newline, an empty string, "NA" (a null spelling)
CITIES = ["lisbon", "porto", 'q"uo/te~', "par,is\nx", "", "NA"]


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
    """Either store: PostgreSQL reads its jsonb members cast to typed columns."""
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
        assert list(typed.features["city"][3:6]) == ["par,is\nx", "", "NA"]
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
