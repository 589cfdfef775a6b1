"""Sample mode (issue #15 item 4) on real DuckDB and PostgreSQL: past the row
budget, where profiles cannot answer, automatic mode reads a uniform sample of
at most the budget (counted on what the store returned), answers within the
stated tolerance of the exact answer, and reports SAMPLE with its sizes; EXACT
past the budget is still refused."""

from __future__ import annotations

import contextvars
import json
import math
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from obs_test_data import Service, log, log_actuals, record, rpc_error, unique_model

from modelplane.kit.errors import InvalidArgument, ResourceExhausted
from modelplane.observability import analysis_limits
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode, RowBudget
from modelplane.observability.drift import DriftMethod
from modelplane.observability.evaluations import Evaluations, Reference
from modelplane.observability.ingest import RecordIngestor
from modelplane.observability.records import (
    Actual,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    EvaluationRecord,
)
from modelplane.observability.store.base import EvaluationStore, ScanSpec
from modelplane.observability.store.embedded import EmbeddedStore
from modelplane.observability.store.encoding import Catalog
from modelplane.observability.store.frames import Frame
from modelplane.observability.store.postgres import PostgresStore
from modelplane.observability.v1 import observability_pb2 as pb

T0 = datetime(2026, 11, 2, tzinfo=UTC)
N = 3000
BUDGET = 1000
X = ColumnRef(ColumnSource.FEATURE, "x")
_T = TypeVar("_T")


@pytest.fixture(params=["embedded", "postgres"], scope="module")
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          make_postgres_database: Callable[[str], str]) -> Iterator[EvaluationStore]:
    s: EvaluationStore
    if request.param == "postgres":
        s = PostgresStore(make_postgres_database("mp_obs_sample"))
    else:
        s = EmbeddedStore(tmp_path_factory.mktemp("sample") / "evaluations.duckdb")
    s.open()
    catalogs = s.load_catalogs()
    ingestor = RecordIngestor(s, catalogs, threading.Lock())
    for env, shift, seed in ((Environment.VALIDATION, 0.0, 1), (Environment.PRODUCTION, 0.5, 2)):
        rng = np.random.default_rng(seed)
        x = rng.normal(shift, 1.0, N)
        correct = rng.random(N) < 0.8  # accuracy about 0.8
        ingestor.write_records([EvaluationRecord(
            prediction_id=f"{env.name}-{i}", model="fraud", version="1", environment=env,
            prediction_time=T0 + timedelta(seconds=int(rng.integers(0, 48 * 3600))),
            features={"x": float(x[i]), "city": ["a", "b", "c"][i % 3]},
            prediction=int(x[i] > 0.25)) for i in range(N)])
        ingestor.write_actuals([Actual(f"{env.name}-{i}", int(x[i] > 0.25) ^ int(not correct[i]))
                                for i in range(N)])
    yield s
    s.close()


class _Spy:
    """What the store's scans for analyses returned (records), per call."""

    def __init__(self, store: EvaluationStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.returned: list[int] = []
        self.specs: list[ScanSpec] = []
        scan_frame = store.scan_frame

        def spy(spec: ScanSpec, catalog: Catalog) -> Frame:
            frame = scan_frame(spec, catalog)
            self.specs.append(spec)
            self.returned.append(len(frame))
            return frame

        monkeypatch.setattr(store, "scan_frame", spy)


def _under_budget(limit: int, fn: Callable[[], _T]) -> tuple[_T, RowBudget]:
    """``fn`` as a gated analysis runs it: under one row budget of ``limit``."""
    budget = RowBudget(limit)

    def run() -> _T:
        analysis_limits._budget.set(budget)
        return fn()

    return contextvars.copy_context().run(run), budget


def _ev(store: EvaluationStore) -> Evaluations:
    return Evaluations(store, store.load_catalogs(), threading.Lock(), max_rows=10 * N)


PROD = EvaluationFilter("fraud", ("1",), Environment.PRODUCTION)
VALID = Reference(filter=EvaluationFilter("fraud", ("1",), Environment.VALIDATION))


def test_a_sampled_accuracy_is_within_three_standard_errors_and_reads_at_most_the_budget(
        store: EvaluationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ev = _ev(store)
    exact, _ = _under_budget(10 * N, lambda: ev.performance(
        PROD, [M.Metric.ACCURACY], slice_by=[X], mode=AnalysisMode.EXACT))
    assert exact.mode is AnalysisMode.EXACT and exact.overall.record_count == N
    spy = _Spy(store, monkeypatch)
    # a numeric slice: the profiles cannot answer, so automatic mode reads records
    rep, budget = _under_budget(BUDGET, lambda: ev.performance(
        PROD, [M.Metric.ACCURACY], slice_by=[X]))
    assert rep.mode is AnalysisMode.SAMPLE
    assert (rep.sample_size, rep.population_size) == (BUDGET, N)
    assert rep.overall.record_count == BUDGET and budget.read == BUDGET
    assert sum(spy.returned) == BUDGET and spy.specs[0].sample == BUDGET
    a = exact.overall.metrics[M.Metric.ACCURACY]
    s = rep.overall.metrics[M.Metric.ACCURACY]
    assert a is not None and s is not None
    # a simple random sample without replacement: standard error with the
    # finite-population correction
    se = math.sqrt(a * (1 - a) / BUDGET * (N - BUDGET) / (N - 1))
    assert abs(s - a) <= 3 * se, (s, a, se)
    # the same sample every time (hash of the prediction id)
    again, _ = _under_budget(BUDGET, lambda: ev.performance(
        PROD, [M.Metric.ACCURACY], slice_by=[X]))
    assert again.overall.metrics == rep.overall.metrics
    # EXACT past the budget: refused when the records must be read (a numeric slice),
    # having read at most the budget and one
    spy.returned.clear()
    with pytest.raises(ResourceExhausted):
        _under_budget(BUDGET, lambda: ev.performance(PROD, [M.Metric.ACCURACY],
                                                     slice_by=[X], mode=AnalysisMode.EXACT))
    assert sum(spy.returned) == BUDGET + 1
    # what the store's GROUP BY counts reads no record: exact past the budget
    spy.returned.clear()
    counted, budget = _under_budget(BUDGET, lambda: ev.performance(
        PROD, [M.Metric.ACCURACY], mode=AnalysisMode.EXACT))
    assert counted.mode is AnalysisMode.EXACT and counted.overall.record_count == N
    assert counted.overall.metrics == exact.overall.metrics
    assert spy.returned == [] and budget.read == 0
    # under the budget nothing is sampled
    small, _ = _under_budget(10 * N, lambda: ev.performance(
        PROD, [M.Metric.ACCURACY], slice_by=[X]))
    assert small.mode is AnalysisMode.EXACT and small.sample_size == 0


def test_sampled_drift_splits_the_budget_between_the_sides(
        store: EvaluationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ev = _ev(store)
    spy = _Spy(store, monkeypatch)
    # SAMPLE asked: never profiles, even where they could answer
    rep, budget = _under_budget(BUDGET, lambda: ev.drift(
        PROD, VALID, [X], [DriftMethod.KS], mode=AnalysisMode.SAMPLE))
    assert rep.mode is AnalysisMode.SAMPLE and rep.profile_buckets == 0
    assert (rep.reference_count, rep.current_count) == (BUDGET // 2, BUDGET // 2)
    assert (rep.sample_size, rep.population_size) == (BUDGET, 2 * N)
    assert sum(spy.returned) == BUDGET and budget.read <= BUDGET
    exact, _ = _under_budget(10 * N, lambda: ev.drift(
        PROD, VALID, [X], [DriftMethod.KS], mode=AnalysisMode.EXACT))
    ks_s = rep.columns[0].drift.statistic(DriftMethod.KS)
    ks_e = exact.columns[0].drift.statistic(DriftMethod.KS)
    assert ks_s is not None and ks_e is not None
    # DKW: each side's sample ECDF is within sqrt(ln(2/a) / 2n) of its window's
    # (a = 0.001 per side), so the KS statistics differ by at most twice that
    bound = 2 * math.sqrt(math.log(2 / 0.001) / (2 * (BUDGET // 2)))
    assert abs(ks_s.value - ks_e.value) <= bound, (ks_s.value, ks_e.value, bound)
    assert rep.columns[0].drift.drifted and exact.columns[0].drift.drifted
    # root cause and proxy performance sample the same way
    rc, _ = _under_budget(BUDGET, lambda: ev.root_cause(
        PROD, VALID, M.Metric.ACCURACY, None, [X], max_depth=1, min_slice_size=10))
    assert rc.mode is AnalysisMode.SAMPLE and rc.sample_size <= BUDGET
    with pytest.raises(InvalidArgument):
        ev.proxy_performance(PROD, VALID, mode=AnalysisMode.PROFILE)


def test_the_store_draws_the_sample_uniformly_and_in_time_order(
        store: EvaluationStore) -> None:
    spec = ScanSpec("fraud", ("1",), Environment.PRODUCTION, sample=600)
    docs = store.scan(spec).decode().splitlines()
    assert len(docs) == 600 and store.count_records(spec) == N
    rows: list[dict[str, Any]] = [json.loads(d) for d in docs]
    times = [r["t"] for r in rows]
    assert times == sorted(times)
    ids = {r["i"] for r in rows}
    assert len(ids) == 600
    # uniform over the window: the share of the first third of the ids (by number)
    # is within 4 standard errors of 1/3
    first = sum(int(i.rsplit("-", 1)[1]) < N // 3 for i in ids) / 600
    assert abs(first - 1 / 3) <= 4 * math.sqrt(1 / 3 * 2 / 3 / 600), first


async def test_the_contract_says_sample_and_its_sizes(service: Service) -> None:
    model = unique_model("sample")
    rng = np.random.default_rng(5)
    await log(service.stub, [record(f"{model}-{i}", model, "1", pb.ENVIRONMENT_PRODUCTION,
                                    T0 + timedelta(minutes=i), {"x": float(rng.normal())},
                                    i % 2) for i in range(600)])
    await log_actuals(service.stub, [(f"{model}-{i}", i % 3 == 0) for i in range(600)])
    f = pb.EvaluationFilter(model=model, versions=["1"],
                            environment=pb.ENVIRONMENT_PRODUCTION)
    numeric = [pb.ColumnRef(source=pb.COLUMN_SOURCE_FEATURE, name="x")]
    gate = service.runtime.analyses
    saved = gate.max_rows
    gate.max_rows = 200
    try:
        perf = await service.stub.ComputePerformance(pb.ComputePerformanceRequest(
            filter=f, slice_by=numeric))
        assert perf.mode == pb.ANALYSIS_MODE_SAMPLE
        assert (perf.sample_size, perf.population_size) == (200, 600)
        assert perf.overall.record_count == 200
        err = await rpc_error(service.stub.ComputePerformance(pb.ComputePerformanceRequest(
            filter=f, slice_by=numeric, mode=pb.ANALYSIS_MODE_EXACT)))
        assert err.code == "RESOURCE_EXHAUSTED"
        # counted by the store's SQL, not read: exact past the row budget
        counted = await service.stub.ComputePerformance(pb.ComputePerformanceRequest(
            filter=f, mode=pb.ANALYSIS_MODE_EXACT))
        assert counted.mode == pb.ANALYSIS_MODE_EXACT and counted.overall.record_count == 600
    finally:
        gate.max_rows = saved
    perf = await service.stub.ComputePerformance(pb.ComputePerformanceRequest(
        filter=f, slice_by=numeric))
    assert perf.mode == pb.ANALYSIS_MODE_EXACT and perf.sample_size == 0


def test_the_embedded_store_out_of_its_memory_limit_is_resource_exhausted_not_internal(
        tmp_path: Path) -> None:
    """A sample's sort and join can need more than DuckDB's buffer limit (at 10M
    records, automatic mode's default root cause asked for 2.5M a side under 384MB):
    the read fails with RESOURCE_EXHAUSTED naming the settings, the store stays open
    and holds every record."""
    path = tmp_path / "evaluations.duckdb"
    s = EmbeddedStore(path)
    s.open()
    ingestor = RecordIngestor(s, s.load_catalogs(), threading.Lock())
    n = 20_000
    for lo in range(0, n, 5000):
        ingestor.write_records([EvaluationRecord(
            prediction_id=f"r{i}", model="m", version="1", environment=Environment.PRODUCTION,
            prediction_time=T0 + timedelta(seconds=i),
            features={"x": float(i), "city": f"c{i % 50}", "note": "z" * 200},
            prediction=i % 2) for i in range(lo, min(n, lo + 5000))])
    s.close()
    small = EmbeddedStore(path, memory_limit="4MB")
    small.open()
    try:
        catalog = small.load_catalogs()["m"]
        with pytest.raises(ResourceExhausted) as err:
            small.scan_frame(ScanSpec("m", sample=n // 2), catalog)
        assert err.value.reason == "STORE_MEMORY_LIMIT"
        assert err.value.metadata == {
            "setting": "MODELPLANE_OBSERVABILITY_DUCKDB_MEMORY_LIMIT", "limit": "4MB"}
        assert "MODELPLANE_OBSERVABILITY_MAX_ANALYSIS_ROWS" in err.value.message
        assert small.count_records(ScanSpec("m")) == n  # still open, nothing lost
    finally:
        small.close()
    s = EmbeddedStore(path)
    s.open()
    try:
        assert len(s.scan_frame(ScanSpec("m", sample=n // 2), s.load_catalogs()["m"])) \
            == n // 2
    finally:
        s.close()
