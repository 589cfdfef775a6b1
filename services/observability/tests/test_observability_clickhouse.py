"""The ClickHouse store (#15 item 6) on chDB, ClickHouse in-process: the same
records given to the embedded DuckDB store and to it give the same answers from
every analysis the service offers; actuals arriving late or changed, retention
dropping whole days while profiles stay, a catalog column added later, a restart
on the same directory, bad input refused as the other stores refuse it.

No ClickHouse server runs here (Debian's clickhouse-server is 18.16, older than
the types this store uses): the clickhouse-connect path is built, not tested."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from obs_test_data import Service, churn_records, log, log_actuals, record, rpc_error
from test_observability_typed import CITIES, N, _actuals, _records
from test_observability_typed import T0 as TYPED_T0  # the typed tests' records start here

from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.ingest import RecordIngestor
from modelplane.observability.main import build
from modelplane.observability.records import Actual, Environment, EvaluationRecord, TimeWindow
from modelplane.observability.runtime import ObservabilityRuntime, open_store
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.store.base import EvaluationStore, RetentionCutoffs, ScanSpec
from modelplane.observability.store.clickhouse import ClickHouseStore, typed_column
from modelplane.observability.store.clickhouse_client import ClickHouseLocation
from modelplane.observability.store.embedded import EmbeddedStore
from modelplane.observability.store.frames import Frame
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

PROD, VALID = pb.ENVIRONMENT_PRODUCTION, pb.ENVIRONMENT_VALIDATION
T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's chDB directory (one a process); each store has its own database."""
    return tmp_path_factory.mktemp("chdb")


def _clickhouse(chdb_dir: Path, database: str, companion: Path) -> ClickHouseStore:
    where = ClickHouseLocation.parse(f"chdb://{chdb_dir}?database={database}", chdb_dir)
    store = ClickHouseStore(where.connect, EmbeddedStore(companion / "companion.duckdb"))
    store.open()
    return store


def _fill(store: EvaluationStore) -> RecordIngestor:
    ingestor = RecordIngestor(store, store.load_catalogs(), threading.Lock())
    ingestor.write_records(_records(0, N // 2))
    ingestor.write_records(_records(N // 2, N, late_column=True))  # a column added later
    return ingestor


def _assert_same_frames(a: Frame, b: Frame) -> None:
    assert len(a) == len(b)
    for name in ("prediction_id", "version", "environment", "time_us", "prediction_label",
                 "actual_label"):
        assert list(getattr(a, name)) == list(getattr(b, name)), name
    for name in ("prediction_number", "actual_number"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    for group in ("features", "scores", "tags"):
        ga, gb = getattr(a, group), getattr(b, group)
        assert set(ga) == set(gb)
        for key in ga:
            if ga[key].dtype == object:
                assert list(ga[key]) == list(gb[key]), (group, key)
            else:
                assert np.array_equal(ga[key], gb[key], equal_nan=True), (group, key)


def _scanned(store: EvaluationStore, spec: ScanSpec) -> list[dict[str, Any]]:
    """The scan's records without the actual's write time (each store's clock)."""
    docs = [json.loads(line) for line in store.scan(spec).splitlines()]
    for doc in docs:
        assert (doc.pop("at") is None) == (doc["al"] is None and doc["an"] is None)
    return docs


@pytest.fixture(scope="module")
def pair(chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[EmbeddedStore, ClickHouseStore]]:
    """The typed tests' records (quotes, slashes, newlines, missing values, a
    column added halfway) and their actuals in both stores."""
    tmp = tmp_path_factory.mktemp("pair")
    embedded = EmbeddedStore(tmp / "evaluations.duckdb")
    embedded.open()
    clickhouse = _clickhouse(chdb_dir, "pair", tmp)
    for store in (embedded, clickhouse):
        ingestor = _fill(store)
        ingestor.write_actuals(_actuals(0, N))
    yield embedded, clickhouse
    clickhouse.close()
    embedded.close()


def test_the_stores_scan_the_same_records(pair: tuple[EmbeddedStore, ClickHouseStore]) -> None:
    embedded, clickhouse = pair
    catalog = embedded.load_catalogs()["fraud"]
    assert clickhouse.load_catalogs()["fraud"] == catalog
    assert {n for (_, n) in catalog.kinds} >= {"late", "a/b", "city"}
    half = TimeWindow(TYPED_T0 + timedelta(hours=7), TYPED_T0 + timedelta(hours=40))
    specs = [ScanSpec("fraud"), ScanSpec("fraud", window=half),
             ScanSpec("fraud", ("1",), Environment.PRODUCTION, has_actual=True),
             ScanSpec("fraud", limit=25, newest_first=True),
             ScanSpec("fraud", before=(int(TYPED_T0.timestamp() * 1e6) + 3600 * 10**6 * 20, "r9"),
                      newest_first=True, limit=7),
             ScanSpec("fraud", prediction_ids=("r3", "r599", "nope"))]
    for spec in specs:
        _assert_same_frames(embedded.scan_frame(spec, catalog),
                            clickhouse.scan_frame(spec, catalog))
        assert _scanned(embedded, spec) == _scanned(clickhouse, spec)
        assert embedded.count_records(spec) == clickhouse.count_records(spec)
    assert 0 < clickhouse.count_records(ScanSpec("fraud", window=half)) < N  # not vacuous
    assert embedded.count_records(ScanSpec("fraud", has_actual=False)) == 0 \
        == clickhouse.count_records(ScanSpec("fraud", has_actual=False))
    # every odd city name made it through as it was sent
    cities = set(clickhouse.scan_frame(ScanSpec("fraud"), catalog).features["city"])
    assert cities == {*CITIES, None}
    assert embedded.record_span(ScanSpec("fraud")) == clickhouse.record_span(ScanSpec("fraud"))
    assert clickhouse.model_of("r17") == "fraud" and clickhouse.model_of("r17x") is None
    (se,), (sc,) = embedded.summaries(), clickhouse.summaries()
    assert (se.model, se.versions, se.environments, se.record_count, se.actual_count) == (
        sc.model, sc.versions, sc.environments, sc.record_count, sc.actual_count)
    assert (se.first_time, se.last_time) == (sc.first_time, sc.last_time)


def test_profiles_and_confusion_counts_are_the_same(
        pair: tuple[EmbeddedStore, ClickHouseStore]) -> None:
    embedded, clickhouse = pair
    for spec in (ScanSpec("fraud"), ScanSpec("fraud", window=TimeWindow(
            TYPED_T0 + timedelta(hours=5, minutes=30), TYPED_T0 + timedelta(hours=30)))):
        assert embedded.profile_count(spec) == clickhouse.profile_count(spec)
        assert embedded.profile_rows(spec) == clickhouse.profile_rows(spec)
        assert sorted(embedded.confusion_rows(spec)) == sorted(clickhouse.confusion_rows(spec))
        assert clickhouse.profile_count(spec)[0] > 0 and clickhouse.confusion_rows(spec)
    assert clickhouse.profile_count(ScanSpec("fraud")) == (N, 0)


def test_a_sample_is_uniform_repeatable_and_in_time_order(
        pair: tuple[EmbeddedStore, ClickHouseStore]) -> None:
    _, clickhouse = pair
    catalog = clickhouse.load_catalogs()["fraud"]
    spec = ScanSpec("fraud", sample=100)
    a, b = clickhouse.scan_frame(spec, catalog), clickhouse.scan_frame(spec, catalog)
    assert len(a) == 100 and list(a.prediction_id) == list(b.prediction_id)
    assert (np.diff(a.time_us) >= 0).all()
    ids = [int(i[1:]) for i in a.prediction_id]
    assert 20 <= sum(i < N // 2 for i in ids) <= 80  # both halves, not a prefix
    assert [d["i"] for d in _scanned(clickhouse, spec)] == list(a.prediction_id)


def test_late_and_changed_actuals_move_the_counts_once(
        chdb_dir: Path, tmp_path: Path) -> None:
    embedded = EmbeddedStore(tmp_path / "evaluations.duckdb")
    embedded.open()
    clickhouse = _clickhouse(chdb_dir, "late", tmp_path)
    try:
        for store in (embedded, clickhouse):
            ingestor = RecordIngestor(store, store.load_catalogs(), threading.Lock())
            # an actual before its record, then the records, then the rest late
            early = ingestor.write_actuals(_actuals(5, 6))  # as sent again below
            assert (early.accepted, early.unmatched) == (1, 1)
            ingestor.write_records(_records(0, 60))
            frame = store.scan_frame(ScanSpec("fraud"), store.load_catalogs()["fraud"])
            assert list(frame.prediction_id[frame.has_actual]) == ["r5"]
            late = ingestor.write_actuals(_actuals(0, 60))
            assert (late.accepted, late.duplicates, late.unmatched) == (59, 1, 0)
            again = ingestor.write_actuals(_actuals(0, 60))
            assert (again.accepted, again.duplicates) == (0, 60)
            changed = ingestor.write_actuals([Actual(f"r{i}", (i * 7919) % 3 != 0)
                                              for i in range(10)])
            assert (changed.accepted, changed.duplicates) == (10, 0)
        spec = ScanSpec("fraud")
        cells = sorted(clickhouse.confusion_rows(spec))
        assert cells == sorted(embedded.confusion_rows(spec))
        # source 0 counts every record with an actual once
        assert sum(c[6] for c in cells if c[1] == 0) == 60
        catalog = embedded.load_catalogs()["fraud"]
        _assert_same_frames(embedded.scan_frame(spec, catalog),
                            clickhouse.scan_frame(spec, catalog))
    finally:
        clickhouse.close()
        embedded.close()


def test_a_restart_on_the_same_directory_keeps_everything(
        chdb_dir: Path, tmp_path: Path) -> None:
    store = _clickhouse(chdb_dir, "restart", tmp_path)
    _fill(store).write_actuals(_actuals(0, N))
    store.set_attributions("fraud", {"r1": {"x": 0.5}})
    store.put_document("baseline", "fraud/1", "fraud", {"model": "fraud"})
    catalog = store.load_catalogs()["fraud"]
    before = (store.scan_frame(ScanSpec("fraud"), catalog), _scanned(store, ScanSpec("fraud")),
              store.profile_rows(ScanSpec("fraud")), sorted(store.confusion_rows(
                  ScanSpec("fraud"))))
    store.close()
    again = _clickhouse(chdb_dir, "restart", tmp_path)
    try:
        assert again.load_catalogs()["fraud"] == catalog
        _assert_same_frames(before[0], again.scan_frame(ScanSpec("fraud"), catalog))
        scanned = _scanned(again, ScanSpec("fraud"))
        assert scanned == before[1] and scanned[1]["x"] == {"x": 0.5}
        assert again.profile_rows(ScanSpec("fraud")) == before[2]
        assert sorted(again.confusion_rows(ScanSpec("fraud"))) == before[3]
        assert again.get_document("baseline", "fraud/1") == {"model": "fraud"}
        # a record sent again after the restart is still not stored twice
        ingestor = RecordIngestor(again, again.load_catalogs(), threading.Lock())
        assert ingestor.write_records(_records(0, 5)).duplicates == 5
        assert again.count_records(ScanSpec("fraud")) == N
    finally:
        again.close()


def test_retention_drops_whole_days_of_records_and_keeps_the_profiles(
        chdb_dir: Path, tmp_path: Path) -> None:
    store = _clickhouse(chdb_dir, "retention", tmp_path)
    try:
        _fill(store).write_actuals(_actuals(0, N))  # 600 records × 7 min: 2 Mar - 4 Mar
        profiles = store.profile_count(ScanSpec("fraud"))
        confusion = sorted(store.confusion_rows(ScanSpec("fraud")))
        cutoff = TYPED_T0.replace(day=3, hour=12)  # 3 Mar is kept: not all of it is older
        result = store.enforce_retention(RetentionCutoffs(records=cutoff))
        kept = store.scan_frame(ScanSpec("fraud"), store.load_catalogs()["fraud"])
        first_kept = datetime(2026, 3, 3, tzinfo=UTC)
        assert result.records == N - len(kept) > 0
        assert kept.time_us.min() >= first_kept.timestamp() * 1e6
        assert result.actuals == result.records
        assert "obs_records 2026-03-02" in result.partitions
        assert store.count_records(ScanSpec("fraud", has_actual=True)) == len(kept)
        assert store.profile_count(ScanSpec("fraud")) == profiles  # profiles stay
        assert sorted(store.confusion_rows(ScanSpec("fraud"))) == confusion
        gone = store.enforce_retention(RetentionCutoffs(profiles=first_kept))
        assert gone.profiles == 24 and gone.confusion > 0
        assert store.profile_count(ScanSpec("fraud"))[0] == profiles[0] - result.records
    finally:
        store.close()


def test_a_column_added_later_gets_a_typed_column_null_for_older_records(
        pair: tuple[EmbeddedStore, ClickHouseStore]) -> None:
    _, clickhouse = pair
    column = typed_column("fraud", 1, "late")
    names = clickhouse.client.arrow(
        "SELECT name FROM system.columns WHERE database = 'pair' AND table = 'obs_records'"
    ).column(0).to_pylist()
    assert column in names
    frame = clickhouse.scan_frame(ScanSpec("fraud"), clickhouse.load_catalogs()["fraud"])
    late = frame.features["late"]
    assert np.isnan(late[: N // 2]).all()
    assert late[N // 2 + 1] == N // 2 + 1 and np.isnan(late[N // 2])


def test_urls_and_one_directory_a_process(chdb_dir: Path, tmp_path: Path) -> None:
    where = ClickHouseLocation.parse("clickhouse://u:p%40ss@db.example:8124/evals", tmp_path)
    assert (where.kind, where.host, where.port, where.username, where.password,
            where.database) == ("http", "db.example", 8124, "u", "p@ss", "evals")
    assert ClickHouseLocation.parse("chdb:", tmp_path).path == tmp_path / "clickhouse"
    with pytest.raises(ValueError, match="plain identifier"):
        ClickHouseLocation.parse("chdb:///x?database=a;drop", tmp_path)
    with pytest.raises(ValueError, match="scheme"):
        ClickHouseLocation.parse("mysql://x/y", tmp_path)
    holder = _clickhouse(chdb_dir, "holder", tmp_path)
    try:
        with pytest.raises(ValueError, match="one ClickHouse per process"):
            ClickHouseLocation.parse(f"chdb://{tmp_path}/other", tmp_path).connect()
    finally:
        holder.close()


# ---------------------------------------------------------------------------
# The service on both stores


@pytest.fixture(scope="module")
async def services(chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> AsyncIterator[tuple[Service, Service]]:
    """An embedded and a ClickHouse service, given the same records: a churn model
    whose predictions broke in Nice since Tuesday and whose x drifted."""
    out: list[Service] = []
    closers = []
    for backend in ("embedded", "clickhouse"):
        tmp = tmp_path_factory.mktemp(f"svc-{backend}")
        svc = ServiceSettings.from_env("observability", {
            "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off"}).with_listen("127.0.0.1:0")
        settings = ObservabilitySettings(
            svc, http_addr=None, monitor_tick_seconds=0,
            clickhouse_url=f"chdb://{chdb_dir}?database=svc" if backend == "clickhouse" else None)
        rt = ObservabilityRuntime(settings)
        spec, _ = build(settings, rt)
        ctx = running(spec, svc)
        server = await ctx.__aenter__()
        channel = grpc.aio.insecure_channel(server.address)
        closers.append((ctx, channel))
        out.append(Service(pb_grpc.ObservabilityServiceStub(channel), rt, backend))
    assert isinstance(out[1].runtime.store, ClickHouseStore)
    ref, y_ref = churn_records("churn", VALID, 1500, seed=5)
    cur, y_cur = churn_records("churn", PROD, 1500, seed=6, shift=0.4)
    tuesday = T0 + timedelta(days=1)
    for r in cur:
        if r.features["city"].string_value == "nice" and r.prediction_time.ToDatetime(
                tzinfo=UTC) >= tuesday:
            r.prediction.int64_value = 1 - r.prediction.int64_value
    for s in out:
        await log(s.stub, ref + cur)
        await log_actuals(s.stub, [(r.prediction_id, int(t)) for r, t in
                                   zip(ref + cur, np.concatenate([y_ref, y_cur]))])
        await s.stub.SetBaseline(pb.SetBaselineRequest(
            baseline=pb.Baseline(model="churn", version="v1")))
    yield out[0], out[1]
    for ctx, channel in reversed(closers):
        await channel.close()
        await ctx.__aexit__(None, None, None)


CURRENT = pb.EvaluationFilter(model="churn", versions=["v1"], environment=PROD)


async def _both(services: tuple[Service, Service], method: str, request: Any) -> Any:
    embedded, clickhouse = services
    a = await getattr(embedded.stub, method)(request)
    b = await getattr(clickhouse.stub, method)(request)
    for answer in (a, b):  # an actual's write time is each store's clock
        for rec in getattr(answer, "records", [answer] if method == "GetRecord" else []):
            assert rec.actual.HasField("actual_time")
            rec.actual.ClearField("actual_time")
    if method == "ComputePerformance":
        # exact performance is summed by each store's SQL (log loss: a sum of
        # logarithms), in its own order of addition: equal to 1e-12, not bit for bit
        for ga, gb in zip([a.overall, *a.windows, *a.slices],
                          [b.overall, *b.windows, *b.slices], strict=True):
            for ma, mb in zip(ga.metrics, gb.metrics, strict=True):
                assert ma.value == pytest.approx(mb.value, rel=1e-12), (method, ma.metric)
                mb.value = ma.value
    if method == "ComputeDrift":
        # a statistic of merged sketches can differ in its last bit from one process to
        # the next, on either store and on main alike (0.02662878794803477 against
        # 0.026628787948034766: the same numbers added in another order); equal to 1e-12
        for ca, cb in zip(a.columns, b.columns, strict=True):
            for sa, sb in zip(ca.statistics, cb.statistics, strict=True):
                assert sa.method == sb.method, (method, ca.column)
                assert sa.value == pytest.approx(sb.value, rel=1e-12), (method, sa.method)
                assert sa.p_value == pytest.approx(sb.p_value, rel=1e-9), (method, sa.method)
                sb.value, sb.p_value = sa.value, sa.p_value
    assert a == b, method
    return a


@pytest.mark.parametrize("mode", [pb.ANALYSIS_MODE_EXACT, pb.ANALYSIS_MODE_PROFILE])
async def test_the_service_answers_the_same_on_both_stores(
        services: tuple[Service, Service], mode: int) -> None:
    drift = await _both(services, "ComputeDrift", pb.ComputeDriftRequest(
        current=CURRENT, mode=mode))
    assert {c.column.name for c in drift.columns if c.drifted} >= {"x"}
    perf = await _both(services, "ComputePerformance", pb.ComputePerformanceRequest(
        filter=CURRENT, bucket={"seconds": 6 * 3600}, slice_by=[pb.ColumnRef(name="city")],
        mode=mode))
    assert perf.mode == mode and len(perf.windows) > 1 and len(perf.slices) == 3
    cause = await _both(services, "ComputeRootCause", pb.ComputeRootCauseRequest(
        current=CURRENT, objective=pb.RootCauseObjective(metric=pb.METRIC_ACCURACY),
        max_slices=5, mode=mode, **({"max_depth": 1, "columns": [pb.ColumnRef(name="city")]}
                                    if mode == pb.ANALYSIS_MODE_PROFILE else {})))
    assert 'city = "nice"' in cause.slices[0].slice.display_name


async def test_records_and_counts_are_the_same_through_the_service(
        services: tuple[Service, Service]) -> None:
    listed = await _both(services, "ListObservedModels",
                         pb.ListObservedModelsRequest(page_size=10))
    (churn,) = [m for m in listed.models if m.model == "churn"]
    assert churn.record_count == 3000
    page = await _both(services, "ListRecords", pb.ListRecordsRequest(
        filter=CURRENT, page_size=50))
    assert len(page.records) == 50
    await _both(services, "ListRecords", pb.ListRecordsRequest(
        filter=CURRENT, page_size=50, page_token=page.next_page_token))
    got = await _both(services, "GetRecord", pb.GetRecordRequest(
        prediction_id=page.records[3].prediction_id))
    assert got.actual.HasField("value")


async def test_bad_input_is_refused_alike(services: tuple[Service, Service]) -> None:
    bad = [record("bad-1", "churn", "v1", PROD, T0, {"x": "not a number"}, 1),
           record("", "churn", "v1", PROD, T0, {"x": 1.0}, 1),
           record("bad-3", "churn", "", PROD, T0, {"x": 1.0}, 1)]
    answers = [await log(s.stub, bad) for s in services]
    assert answers[0] == answers[1] and answers[0].accepted_count == 0
    assert len(answers[0].rejected) == 3
    errors = [await rpc_error(s.stub.ComputeDrift(pb.ComputeDriftRequest(
        current=CURRENT, columns=[pb.ColumnRef(name="nope")]))) for s in services]
    assert errors[0].code == errors[1].code == "INVALID_ARGUMENT"
    assert errors[0].message == errors[1].message
    assert errors[0].field_violations == errors[1].field_violations
    unknown = [await rpc_error(s.stub.GetRecord(pb.GetRecordRequest(prediction_id="nope")))
               for s in services]
    assert unknown[0].code == unknown[1].code == "NOT_FOUND"
    # an actual without a value is refused by both
    wrong = [await log_actuals(s.stub, [("churn-3-v1-1", None)])
             for s in services]
    assert wrong[0] == wrong[1] and len(wrong[0].rejected) == 1


def test_open_store_picks_clickhouse_with_its_companion(tmp_path: Path) -> None:
    svc = ServiceSettings.from_env("observability", {"MODELPLANE_DATA_DIR": str(tmp_path)})
    store = open_store(ObservabilitySettings(svc, clickhouse_url="chdb:"))
    assert isinstance(store, ClickHouseStore)
    assert isinstance(store._companion, EmbeddedStore)
    assert isinstance(open_store(ObservabilitySettings(svc)), EmbeddedStore)


def test_odd_ids_model_names_and_versions_are_bound_as_they_are(
        chdb_dir: Path, tmp_path: Path) -> None:
    clickhouse = _clickhouse(chdb_dir, "odd", tmp_path)
    odd = ["it's", "back\\slash", "new\nline", "tab\tx", "[a,'b']", "{p:String}", "\u00fc\u2713"]
    model = "m'\\odd\n"
    ingestor = RecordIngestor(clickhouse, clickhouse.load_catalogs(), threading.Lock())
    stored = ingestor.write_records([EvaluationRecord(
        prediction_id=pid, model=model, version=pid, environment=Environment.PRODUCTION,
        prediction_time=T0 + timedelta(minutes=i), features={"c'o\\l": pid}, prediction=1)
        for i, pid in enumerate(odd)])
    assert stored.accepted == len(odd)
    for pid in odd:
        assert clickhouse.model_of(pid) == model
    catalog = clickhouse.load_catalogs()[model]
    frame = clickhouse.scan_frame(ScanSpec(model, versions=tuple(odd[:3]),
                                           prediction_ids=tuple(odd)), catalog)
    assert list(frame.prediction_id) == odd[:3] and list(frame.features["c'o\\l"]) == odd[:3]
    assert [d["i"] for d in _scanned(clickhouse, ScanSpec(model))] == odd
    clickhouse.close()


def test_aggregates_are_counted_by_clickhouse_as_by_duckdb(
        pair: tuple[EmbeddedStore, ClickHouseStore]) -> None:
    from modelplane.observability.records import ColumnKind, ColumnRef, ColumnSource
    from modelplane.observability.store.aggregation import AggregateQuery

    embedded, clickhouse = pair
    catalog = embedded.load_catalogs()["fraud"]
    query = AggregateQuery(
        bucket_us=6 * 3600 * 10**6, origin_us=int(TYPED_T0.timestamp() * 1e6),
        slices=(ColumnRef(ColumnSource.FEATURE, "city"), ColumnRef(ColumnSource.FEATURE, "flag"),
                ColumnRef(ColumnSource.TAG, "region"), ColumnRef(ColumnSource.PREDICTION)),
        kinds=(ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN, ColumnKind.CATEGORICAL,
               ColumnKind.CATEGORICAL))
    spec = ScanSpec("fraud", window=TimeWindow(TYPED_T0 + timedelta(hours=3),
                                               TYPED_T0 + timedelta(hours=50)),
                    limit=10)  # a row budget: the store's SQL reads nothing, so it is not used
    a, b = embedded.aggregate(spec, catalog, query), clickhouse.aggregate(spec, catalog, query)
    assert a is not None and b is not None and b.rows_read == 0
    assert (a.overall, a.buckets, a.slices) == (b.overall, b.buckets, b.slices)
    assert b.overall.records == embedded.count_records(replace(spec, limit=None))
    assert set(b.slices[1]) == {True, False} and b.overall.records > 300


def test_roc_auc_and_log_loss_are_counted_by_clickhouse_as_the_records_give(
        chdb_dir: Path, tmp_path: Path) -> None:
    """The aggregation test's classifiers with scores (ties, one-class slices,
    missing scores, three classes) on ClickHouse: every default metric by bucket
    and slice from its SQL equals the answer of the records read into Python."""
    from test_observability_aggregation import ACT, CHANNEL, PRED, SEG, _both, _load_scored

    from modelplane.observability import metrics as M
    from modelplane.observability.records import EvaluationFilter

    clickhouse = _clickhouse(chdb_dir, "scored", tmp_path)
    try:
        ev = _load_scored(clickhouse, 600)
        for model, kw in (("ties", {}), ("gap", {}), ("gap", {"positive": "0"}),
                          ("three", {})):
            report = _both(ev, EvaluationFilter(model), bucket=timedelta(hours=6),
                           slice_by=[SEG, CHANNEL, PRED, ACT], **kw)
            aucs = [g.metrics[M.Metric.ROC_AUC] for g in report.slices]
            assert sum(a is not None for a in aucs) > 3, model
    finally:
        clickhouse.close()
