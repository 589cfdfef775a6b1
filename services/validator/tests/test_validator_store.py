"""Runs and reports survive in SQLite (embedded) and PostgreSQL (production), paged newest first."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelplane.kit.errors import InvalidArgument, NotFound
from modelplane.validator.policy import CheckConfig, Policy
from modelplane.validator.report import (
    Bound,
    CheckResult,
    CheckStatus,
    Measurement,
    SliceResult,
    TaskType,
    ThresholdOutcome,
    ValidationReport,
)
from modelplane.validator.run import DatasetRef, RunError, RunState, ValidationRun
from modelplane.validator.store import RunStore

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres_url(make_postgres_database: Callable[[str], str]) -> str:
    return make_postgres_database("mp_validator")  # one database: creating and dropping is slow


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "postgres":
        import psycopg

        url = request.getfixturevalue("postgres_url")
        s = RunStore(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE validation_runs, validation_reports")
    else:
        s = RunStore.sqlite_in(tmp_path)
    yield s
    s.close()


def _run(i: int, model: str = "churn", state: RunState = RunState.SUCCEEDED) -> ValidationRun:
    return ValidationRun(
        id=f"run{i:03d}", model=model, version=str(1 + i % 2),
        dataset=DatasetRef(parquet_uri=f"/data/{i}.parquet"),
        policy=Policy(label_column="y",
                      checks=[CheckConfig("bias", {"max_demographic_parity_difference": 0.1})],
                      task=TaskType.CLASSIFICATION, protected_attributes=["gender"]),
        state=state, create_time=T0 + timedelta(seconds=i),
        error=RunError("NOT_FOUND", "gone", "X", {"a": "b"}) if state == RunState.FAILED else None,
        report_status=CheckStatus.WARN if state == RunState.SUCCEEDED else None)


def _report(i: int, status: CheckStatus = CheckStatus.PASS) -> ValidationReport:
    check = CheckResult(
        "metrics", status, "msg",
        [Measurement("accuracy", 0.9, "", 0.88), Measurement("psi", float("nan"))],
        [ThresholdOutcome("min_accuracy", Bound.LOWER, 0.8, 0.9, CheckStatus.PASS, "", 0.85)],
        [SliceResult("region", "north", 10, [Measurement("accuracy", 0.7)], CheckStatus.FAIL)],
        ["finding"], {"min_slice_rows": "100"}, 0.25)
    return ValidationReport(
        id=f"rep{i:03d}", run_id=f"run{i:03d}", model="churn", version="2", status=status,
        summary="s", checks=[check], task=TaskType.CLASSIFICATION, row_count=100,
        dataset={"dataset": "ds1"}, policy=Policy(label_column="y").to_dict(),
        create_time=T0 + timedelta(seconds=i))


def test_run_round_trips_and_updates(store: RunStore) -> None:
    run = _run(1, state=RunState.RUNNING)
    store.save_run(run)
    run.state, run.report_id, run.notes = RunState.FAILED, "", ["n1"]
    run.error = RunError("NOT_FOUND", "dataset gone", "DATASET_NOT_FOUND", {"dataset": "d"})
    store.save_run(run)
    back = store.get_run("run001")
    assert back == run
    assert back.policy.checks[0].thresholds == {"max_demographic_parity_difference": 0.1}


def test_missing_run_and_report_are_not_found(store: RunStore) -> None:
    with pytest.raises(NotFound) as err:
        store.get_run("nope")
    assert err.value.metadata == {"validation_run": "nope"}
    with pytest.raises(NotFound):
        store.get_report("nope")


def test_runs_page_newest_first_with_filters(store: RunStore) -> None:
    for i in range(7):
        store.save_run(_run(i, state=RunState.FAILED if i == 3 else RunState.SUCCEEDED))
    store.save_run(_run(50, model="fraud"))
    page, token = store.list_runs(model="churn", size=3)
    assert [r.id for r in page] == ["run006", "run005", "run004"]
    page2, token2 = store.list_runs(model="churn", size=3, token=token)
    assert [r.id for r in page2] == ["run003", "run002", "run001"]
    page3, token3 = store.list_runs(model="churn", size=3, token=token2)
    assert [r.id for r in page3] == ["run000"] and token3 == ""
    assert [r.id for r in store.list_runs(state=RunState.FAILED)[0]] == ["run003"]
    assert [r.id for r in store.list_runs(model="churn", version="2", size=2)[0]] == ["run005",
                                                                                      "run003"]
    with pytest.raises(InvalidArgument):
        store.list_runs(token="garbage")


def test_unfinished_runs_are_found_for_recovery(store: RunStore) -> None:
    store.save_run(_run(1, state=RunState.RUNNING))
    store.save_run(_run(2, state=RunState.PENDING))
    store.save_run(_run(3))
    assert sorted(r.id for r in store.unfinished_runs()) == ["run001", "run002"]


def test_reports_round_trip_with_nan_and_filter_by_status(store: RunStore) -> None:
    store.save_report(_report(1))
    store.save_report(_report(2, CheckStatus.FAIL))
    back = store.get_report("rep001")
    assert back.checks[0].slices[0].measurements[0].value == 0.7
    assert back.checks[0].measurement("accuracy").baseline_value == 0.88
    assert back.checks[0].thresholds[0].warn_limit == 0.85
    assert str(back.checks[0].measurement("psi").value) == "nan"
    assert [r.id for r in store.list_reports(status=CheckStatus.FAIL)[0]] == ["rep002"]
    assert [r.id for r in store.list_reports(model="churn")[0]] == ["rep002", "rep001"]


_OLD_SCHEMA = (  # what the store created before kit.documents (tables and indexes unchanged)
    """CREATE TABLE validation_runs (
        id TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL,
        create_time TEXT NOT NULL, body TEXT NOT NULL)""",
    "CREATE INDEX validation_runs_order ON validation_runs (create_time, id)",
    """CREATE TABLE validation_reports (
        id TEXT PRIMARY KEY, run_id TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
        status TEXT NOT NULL, create_time TEXT NOT NULL, body TEXT NOT NULL)""",
    "CREATE INDEX validation_reports_order ON validation_reports (create_time, id)",
)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_written_before_kit_documents_is_read_and_its_page_tokens_still_hold(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from modelplane.kit import paging
    from modelplane.kit.pytest_plugin import run_sql
    from modelplane.validator.codec import run_to_json

    runs = [_run(i) for i in range(3)]
    rows = [(r.id, r.model, r.version, r.state.value, r.create_time.isoformat(), run_to_json(r))
            for r in runs]
    url = (f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite"
           else request.getfixturevalue("make_postgres_database")("mp_validator_old"))
    run_sql(url, [*_OLD_SCHEMA,
                  *(("INSERT INTO validation_runs VALUES (?, ?, ?, ?, ?, ?)", r) for r in rows)])
    store = RunStore(url)
    try:
        assert store.get_run("run001").model == "churn"
        # a token the old store issued after run002: [create_time, id] under the same query
        old_token = paging.encode_page_token(
            [runs[2].create_time.isoformat(), "run002"],
            {"kind": "validation_runs", "model": "", "version": "", "state": ""})
        page, token = store.list_runs(size=5, token=old_token)
        assert [r.id for r in page] == ["run001", "run000"] and token == ""
        store.save_run(_run(9))
        assert [r.id for r in store.list_runs()[0]] == ["run009", "run002", "run001", "run000"]
    finally:
        store.close()
