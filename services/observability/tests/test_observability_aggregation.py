"""Aggregation near the data (#15 item 2), on real DuckDB and PostgreSQL: the exact
path's performance by time bucket and slice counted by the store's SQL (GROUP BY)
equals what the records read into Python give, and reads no record (a row budget
of ten records does not stop it)."""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from obs_test_data import T0, store_fixture

from modelplane.kit.errors import ResourceExhausted
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.evaluations import Evaluations
from modelplane.observability.ingest import RecordIngestor
from modelplane.observability.records import (
    Actual,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    EvaluationRecord,
    SliceOperator,
    SlicePredicate,
    TimeWindow,
)
from modelplane.observability.reports import PerformanceReport
from modelplane.observability.store.aggregation import AggregateQuery, Aggregates
from modelplane.observability.store.base import EvaluationStore, ScanSpec
from modelplane.observability.store.postgres import PostgresStore

#: 25 cities (more than the 20 slices a column shows), some equally frequent
CITIES = [f"city{i:02d}" for i in range(25)]
CITY = ColumnRef(ColumnSource.FEATURE, "city")
FLAG = ColumnRef(ColumnSource.FEATURE, "flag")
CHANNEL = ColumnRef(ColumnSource.TAG, "channel")
PRED = ColumnRef(ColumnSource.PREDICTION)
ACT = ColumnRef(ColumnSource.ACTUAL)


store = store_fixture("mp_obs_agg")


def _load(store: EvaluationStore, n: int = 3_000) -> Evaluations:
    """Three models over three days, versions 1 and 2, production and training:
    ``multi`` (3 classes, no scores), ``binary`` (scores), ``reg`` (numbers, some
    actuals 0); a fifth of the records without an actual, some without a city."""
    catalogs = store.load_catalogs()
    lock = threading.Lock()
    ingestor = RecordIngestor(store, catalogs, lock)
    rng = np.random.default_rng(7)
    weights = np.array([5.0] * 4 + [3.0] * 6 + [1.0] * 15)
    for model in ("multi", "binary", "reg"):
        city = rng.choice(CITIES, n, p=weights / weights.sum())
        x = rng.normal(0, 1, n)
        t = rng.integers(0, 72 * 3600, n)
        recs, actuals = [], []
        for i in range(n):
            feats: dict[str, float | int | str | bool | None] = {
                "x": float(x[i]), "flag": bool(x[i] > 0.3)}
            if i % 17:
                feats["city"] = str(city[i])
            if model == "multi":
                pred: float | int = int(np.clip(round(x[i] + 1), 0, 2))
                scores: dict[str, float] = {}
                truth: object = pred if rng.random() < 0.7 else int(rng.integers(0, 3))
            elif model == "binary":
                pred = int(x[i] > 0)
                scores = {"1": float(1 / (1 + np.exp(-x[i])))}
                truth = pred if rng.random() < 0.8 else 1 - pred
            else:
                pred = float(3 * x[i] + 1)
                scores = {}
                truth = 0.0 if i % 23 == 0 else float(3 * x[i] + rng.normal(0, 1))
            recs.append(EvaluationRecord(
                prediction_id=f"{model}-{i}", model=model, version="2" if i % 3 else "1",
                environment=Environment.TRAINING if i % 5 == 0 else Environment.PRODUCTION,
                prediction_time=T0 + timedelta(seconds=int(t[i])), features=feats,
                prediction=pred, scores=scores, tags={"channel": ["web", "app", "pos"][i % 3]}))
            if rng.random() < 0.8:
                actuals.append((f"{model}-{i}", truth))
        ingestor.write_records(recs)
        ingestor.write_actuals([Actual(pid, v) for pid, v in actuals])  # type: ignore[arg-type]
    return Evaluations(store, catalogs, lock)


def _same(sql: PerformanceReport, rows: PerformanceReport) -> None:
    assert rows.mode is AnalysisMode.EXACT and sql.mode is AnalysisMode.EXACT
    assert sql.task is rows.task
    pairs = [(sql.overall, rows.overall), *zip(sql.windows, rows.windows, strict=True),
             *zip(sql.slices, rows.slices, strict=True)]
    for s, r in pairs:
        assert (s.window, s.slice) == (r.window, r.slice)
        assert (s.record_count, s.labeled_count) == (r.record_count, r.labeled_count)
        assert s.metrics.keys() == r.metrics.keys()
        for metric, value in r.metrics.items():
            if value is None:
                assert s.metrics[metric] is None, metric
            elif np.isnan(value):  # ROC AUC of more classes, a score missing (rankdata)
                assert np.isnan(s.metrics[metric]), metric  # type: ignore[arg-type]
            else:  # sums of float errors: the order of addition differs
                assert s.metrics[metric] == pytest.approx(value, rel=1e-9, abs=1e-12), metric


def _both(ev: Evaluations, f: EvaluationFilter, **kw: object) -> PerformanceReport:
    """The performance counted by the store (row budget: 10 records) against the one
    the records give (read whole: SAMPLE mode under the budget reads them all)."""
    ev._max_rows = 5_000_000
    rows = ev.performance(f, mode=AnalysisMode.SAMPLE, **kw)  # type: ignore[arg-type]
    ev._max_rows = 10
    try:
        sql = ev.performance(f, mode=AnalysisMode.EXACT, **kw)  # type: ignore[arg-type]
        auto = ev.performance(f, **kw)  # type: ignore[arg-type]
    finally:
        ev._max_rows = 5_000_000
    _same(sql, rows)
    _same(auto, rows)
    return sql


def test_performance_counted_by_the_store_equals_the_records_answer(
        store: EvaluationStore) -> None:
    ev = _load(store)
    by = [CITY, FLAG, CHANNEL, PRED, ACT]
    counted = [M.Metric.ACCURACY, M.Metric.PRECISION, M.Metric.RECALL, M.Metric.F1]
    unaligned = TimeWindow(T0 + timedelta(minutes=30), T0 + timedelta(hours=60))
    cases: list[tuple[EvaluationFilter, dict[str, object]]] = [
        # 3 classes without scores: every default metric (ROC AUC, log loss: None)
        (EvaluationFilter("multi"), {"bucket": timedelta(days=1), "slice_by": by}),
        (EvaluationFilter("multi", ("2",), Environment.PRODUCTION, unaligned),
         {"bucket": timedelta(hours=6), "slice_by": by, "average": M.ClassAverage.WEIGHTED}),
        # scores: the metrics the counts give
        (EvaluationFilter("binary", window=unaligned),
         {"bucket": timedelta(hours=7), "slice_by": by, "metrics": counted}),
        (EvaluationFilter("binary", environment=Environment.TRAINING),
         {"slice_by": [CITY], "metrics": counted, "positive": "0"}),
        (EvaluationFilter("reg"), {"bucket": timedelta(hours=5), "slice_by": [CITY, FLAG,
                                                                               CHANNEL]}),
        (EvaluationFilter("reg", ("1",), window=unaligned), {"slice_by": [FLAG]}),
    ]
    for f, kw in cases:
        report = _both(ev, f, **kw)
        assert report.overall.record_count > 100
        if kw.get("slice_by") and kw["slice_by"][0] == CITY:  # type: ignore[index]
            cities = [g for g in report.slices if g.slice and g.slice[0].column == CITY]
            assert len(cities) == 20  # the 20 most frequent of 25
    multi = _both(ev, EvaluationFilter("multi"), slice_by=[FLAG])
    assert multi.overall.metrics[M.Metric.F1] is not None
    assert [g.slice for g in multi.slices] == [
        (SlicePredicate(FLAG, SliceOperator.EQUAL, (v,)),) for v in (False, True)]
    # an empty window: no buckets, no slices, no metric
    empty = _both(ev, EvaluationFilter("reg", window=TimeWindow(T0 - timedelta(days=9),
                                                                T0 - timedelta(days=8))),
                  bucket=timedelta(hours=1), slice_by=[CITY])
    assert empty.overall.record_count == 0 and not empty.windows and not empty.slices


SEG = ColumnRef(ColumnSource.FEATURE, "seg")


def _load_scored(store: EvaluationStore, n: int = 1_500) -> Evaluations:
    """Classifiers with scores, and what makes ROC AUC and log loss tricky:

    * ``ties``: binary, the score "1" in steps of 0.1 (ties), some 0 and 1 (log
      loss clipped); the segment "solo" holds actual 1 only (ROC AUC undefined);
    * ``gap``: binary with scores "0" and "1"; segment "half" lacks "1" in some
      records (its positive's score is then one minus "0"'s), segment "none"
      lacks both in some of the first six hours (ROC AUC and log loss undefined
      there, overall too), scores within 1e-17 of 0 and 1;
    * ``three``: three classes, a score per class (softmax, rounded: ties);
      segment "two" never has actual 2 (one-vs-rest undefined); in the first six
      hours segment "hole" lacks class 2's score in some records (NaN, as
      rankdata gives) and segment "odd" has the actual label "9" (log loss and
      ROC AUC undefined).
    """
    catalogs = store.load_catalogs()
    lock = threading.Lock()
    ingestor = RecordIngestor(store, catalogs, lock)
    rng = np.random.default_rng(11)
    for model in ("ties", "gap", "three"):
        x = rng.normal(0, 1.5, n)
        t = rng.integers(0, 48 * 3600, n)
        seg = rng.choice(["a", "b", "solo" if model == "ties" else "half" if model == "gap"
                          else "two", "none" if model == "gap" else "hole" if model == "three"
                          else "c", "odd"], n)
        recs, actuals = [], []
        for i in range(n):
            p1 = float(1 / (1 + np.exp(-x[i])))
            scores: dict[str, float]
            if model == "ties":
                scores = {"1": round(p1, 1)}
                pred = int(p1 > 0.5)
                truth = 1 if seg[i] == "solo" else (pred if rng.random() < 0.75 else 1 - pred)
            elif model == "gap":
                p1 = [1e-18, 1 - 1e-17, p1, p1, p1][i % 5]
                scores = {"0": 1 - p1, "1": p1}
                if seg[i] == "half" and i % 3 == 0:
                    del scores["1"]
                if seg[i] == "none" and i % 4 == 0 and t[i] < 6 * 3600:
                    scores = {}
                pred = int(p1 > 0.5)
                truth = pred if rng.random() < 0.8 else 1 - pred
            else:
                z = np.array([0.0, x[i], -x[i] + rng.normal(0, 1)])
                sm = np.exp(z) / np.exp(z).sum()
                scores = {str(k): round(float(sm[k]), 2) for k in range(3)}
                if seg[i] == "hole" and i % 6 == 0 and t[i] < 6 * 3600:
                    del scores["2"]
                pred = int(np.argmax(sm))
                truth = pred if rng.random() < 0.7 else int(rng.integers(0, 3))
                if seg[i] == "two" and truth == 2:
                    truth = 0
                if seg[i] == "odd" and i % 7 == 0 and t[i] < 6 * 3600:
                    truth = 9
            recs.append(EvaluationRecord(
                prediction_id=f"{model}-{i}", model=model, version="1",
                environment=Environment.PRODUCTION,
                prediction_time=T0 + timedelta(seconds=int(t[i])),
                features={"seg": str(seg[i]), "hi": bool(x[i] > 0.5)}, prediction=pred,
                scores=scores,
                tags={"channel": ["web", "app"][i % 2]}))
            if rng.random() < 0.9:
                actuals.append((f"{model}-{i}", truth))
        ingestor.write_records(recs)
        ingestor.write_actuals([Actual(pid, v) for pid, v in actuals])  # type: ignore[arg-type]
    return Evaluations(store, catalogs, lock)


def test_roc_auc_and_log_loss_counted_by_the_store_equal_the_records_answer(
        store: EvaluationStore) -> None:
    """Every default metric of a classifier with scores, by bucket and slice, from
    the store's SQL (ten records of row budget: none read) equals the rows' answer
    (sklearn's: test_observability_metrics), ties, one-class slices, missing
    scores and clipped log losses included."""
    ev = _load_scored(store)
    by = [SEG, CHANNEL, PRED, ACT, ColumnRef(ColumnSource.FEATURE, "hi")]
    seen: dict[str, dict[M.Metric, list[float | None]]] = {}
    for model, kw in (("ties", {}), ("ties", {"positive": "0"}), ("gap", {}),
                      ("gap", {"positive": "0"}), ("three", {}),
                      ("three", {"average": M.ClassAverage.WEIGHTED})):
        report = _both(ev, EvaluationFilter(model), bucket=timedelta(hours=6), slice_by=by,
                       **kw)
        groups = [report.overall, *report.windows, *report.slices]
        for metric in (M.Metric.ROC_AUC, M.Metric.LOG_LOSS):
            seen.setdefault(model, {}).setdefault(metric, []).extend(
                g.metrics[metric] for g in groups)
        segs = {g.slice[0].values[0]: g for g in report.slices
                if g.slice and g.slice[0].column == SEG}
        if model == "ties":
            assert segs["solo"].metrics[M.Metric.ROC_AUC] is None
            assert segs["solo"].metrics[M.Metric.LOG_LOSS] is not None
        if model == "gap":
            assert segs["none"].metrics[M.Metric.ROC_AUC] is None
            assert segs["half"].metrics[M.Metric.ROC_AUC] is not None
        if model == "three":
            assert segs["two"].metrics[M.Metric.ROC_AUC] is None
            assert segs["odd"].metrics[M.Metric.LOG_LOSS] is None
            assert np.isnan(segs["hole"].metrics[M.Metric.ROC_AUC])  # type: ignore[arg-type]
    for model, metrics in seen.items():  # many groups have both
        for metric, values in metrics.items():
            assert sum(v is not None for v in values) > len(values) / 3, (model, metric)


def test_the_overall_roc_auc_and_log_loss_are_sklearns(store: EvaluationStore) -> None:
    from sklearn.metrics import log_loss, roc_auc_score

    ev = _load_scored(store, 600)
    ev._max_rows = 10  # the store's SQL: no record read
    report = ev.performance(EvaluationFilter("ties"), mode=AnalysisMode.EXACT)
    frame = store.scan_frame(ScanSpec("ties"), ev.catalog("ties"))
    ok = ~M.is_none(frame.actual_label) & ~M.is_none(frame.prediction_label)
    y = (frame.actual_label[ok] == "1").astype(int)
    p = frame.scores["1"][ok]
    assert report.overall.metrics[M.Metric.ROC_AUC] == pytest.approx(
        roc_auc_score(y, p), rel=1e-12)
    eps = np.finfo(np.float64).eps
    assert report.overall.metrics[M.Metric.LOG_LOSS] == pytest.approx(
        log_loss(y, np.clip(p, eps, 1 - eps)), rel=1e-9)


def test_what_the_counts_cannot_give_reads_the_records(store: EvaluationStore) -> None:
    ev = _load(store, 500)
    ev._max_rows = 10
    f = EvaluationFilter("binary")
    # a numeric slice needs the values' quantiles, a predicate the records: each
    # reads them, and ten records are not enough
    x = ColumnRef(ColumnSource.FEATURE, "x")
    for kw in ({"slice_by": [x], "metrics": [M.Metric.ACCURACY]},
               {"metrics": [M.Metric.ACCURACY], "f": replace(f, predicates=(
                   SlicePredicate(CITY, SliceOperator.EQUAL, ("city01",)),))}):
        g = kw.pop("f", f)
        with pytest.raises(ResourceExhausted):
            ev.performance(g, mode=AnalysisMode.EXACT, **kw)  # type: ignore[arg-type]


def _close(a: Aggregates, b: Aggregates) -> None:
    groups = [(a.overall, b.overall)]
    assert a.buckets.keys() == b.buckets.keys()
    groups += [(a.buckets[k], b.buckets[k]) for k in a.buckets]
    for sa, sb in zip(a.slices, b.slices, strict=True):
        assert sa.keys() == sb.keys()
        groups += [(sa[k], sb[k]) for k in sa]
    for ga, gb in groups:
        assert (ga.records, ga.cells, ga.labeled) == (gb.records, gb.cells, gb.labeled)
        for name in ("abs_error", "squared_error", "relative_error"):
            assert getattr(ga, name) == pytest.approx(getattr(gb, name), rel=1e-9)
        assert (ga.scored, ga.ranks) == (gb.scored, gb.ranks)
        assert ga.true_loss == pytest.approx(gb.true_loss, rel=1e-9)
        assert ga.loss.keys() == gb.loss.keys()
        for key, sums in ga.loss.items():
            assert sums.keys() == gb.loss[key].keys()
            for label, value in sums.items():
                assert value == pytest.approx(gb.loss[key][label], rel=1e-9)


def test_the_stores_sql_gives_the_default_aggregates_of_the_records(
        store: EvaluationStore) -> None:
    """What a backend without its own aggregation computes (the base class's default,
    in numpy over the records) is what the SQL gives; past the row budget the
    default gives None, and the caller reads the records its own way."""
    ev = _load(store, 800)
    for model, regression in (("multi", False), ("reg", True), ("binary", False)):
        catalog = ev.catalog(model)
        scores = tuple(catalog.score_keys())
        query = AggregateQuery(regression, 4 * 3_600_000_000, 1_800_000_000,
                               (CITY, FLAG, CHANNEL),
                               (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN,
                                ColumnKind.CATEGORICAL), scores,
                               tuple((k, flip) for k in scores for flip in (False, True)))
        spec = ScanSpec(model, (), Environment.PRODUCTION, TimeWindow(
            T0 + timedelta(minutes=30), T0 + timedelta(days=3)), limit=10_001)
        # a budget the window exceeds: every backend's SQL answers (PostgreSQL ranks
        # scores in numpy over the records when they fit in the budget, see below)
        sql = store.aggregate(replace(spec, limit=100), catalog, query)
        default = EvaluationStore.aggregate(store, spec, catalog, query)
        assert sql is not None and default is not None
        assert sql.rows_read == 0 and default.rows_read == sql.overall.records > 300
        _close(sql, default)
        within = store.aggregate(spec, catalog, query)
        assert within is not None
        read = isinstance(store, PostgresStore) and bool(scores)
        assert within.rows_read == (within.overall.records if read else 0)
        _close(within, default)
        assert EvaluationStore.aggregate(store, replace(spec, limit=11), catalog, query) is None


def test_the_model_list_counts_from_profiles_what_a_join_of_the_records_counts(
        store: EvaluationStore) -> None:
    """The model list (``/``) reads the profiles, the confusion counts and the span's
    hours, not every record joined to its actual; its figures are the join's."""
    ev = _load(store, 900)
    expected = {}
    for model in ("binary", "multi", "reg"):
        frame, _ = ev.load(EvaluationFilter(model))
        expected[model] = (sorted(set(frame.version.tolist())),
                           sorted({Environment(int(e)) for e in frame.environment.tolist()}),
                           len(frame), int(frame.has_actual.sum()),
                           int(frame.time_us.min()), int(frame.time_us.max()))
    got = {s.model: (s.versions, s.environments, s.record_count, s.actual_count,
                     round(s.first_time.timestamp() * 1e6) if s.first_time else None,
                     round(s.last_time.timestamp() * 1e6) if s.last_time else None)
           for s in store.summaries()}
    assert got == expected
    for model, (_, envs, *_rest) in expected.items():
        span = store.record_span(ScanSpec(model, ("2",), envs[-1]))
        frame, _ = ev.load(EvaluationFilter(model, ("2",), envs[-1]))
        assert [round(t.timestamp() * 1e6) for t in span if t] == [
            int(frame.time_us.min()), int(frame.time_us.max())]


def test_a_boolean_prediction_is_sliced_by_its_labels(store: EvaluationStore) -> None:
    """A model predicting true/false: its prediction and actual are labels ("true",
    "false"), so slicing by them gives both values, and a predicate on the prediction
    (operand a boolean, as the API types it) selects the records predicted so."""
    catalogs = store.load_catalogs()
    lock = threading.Lock()
    ingestor = RecordIngestor(store, catalogs, lock)
    recs = [EvaluationRecord(
        prediction_id=f"b-{i}", model="yesno", version="1", environment=Environment.PRODUCTION,
        prediction_time=T0 + timedelta(minutes=i), features={"x": float(i)},
        prediction=i % 3 == 0, scores={}, tags={}) for i in range(60)]
    ingestor.write_records(recs)
    ingestor.write_actuals([Actual(f"b-{i}", i % 2 == 0) for i in range(60)])
    ev = Evaluations(store, catalogs, lock)
    predicted_true = sum(1 for r in recs if r.prediction)
    for ref in (PRED, ACT):
        for mode in (AnalysisMode.EXACT, AnalysisMode.SAMPLE):
            report = ev.performance(EvaluationFilter("yesno"), mode=mode, slice_by=[ref],
                                    metrics=[M.Metric.ACCURACY])
            counts = {s.slice[0].values[0]: s.record_count for s in report.slices}  # type: ignore[index]
            expected_true = predicted_true if ref == PRED else 30
            assert counts == {"false": 60 - expected_true, "true": expected_true}, (ref, mode)
    only_true = EvaluationFilter(
        "yesno", predicates=(SlicePredicate(PRED, SliceOperator.EQUAL, (True,)),))
    for mode in (AnalysisMode.EXACT, AnalysisMode.SAMPLE):
        report = ev.performance(only_true, mode=mode, metrics=[M.Metric.ACCURACY])
        assert report.overall.record_count == predicted_true, mode
