"""The validator as deployed: gRPC API over a real registry (with its MLflow tracking server)
and real observability. Models are logged with the stock MLflow client, validated from
parquet datasets, the result gates promotion and becomes the observability baseline."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from registry_testenv import RegistryEnv
from validator_platform import Platform, platform
from validator_testdata import FEATURES, make_frame, make_model

from modelplane.kit.pytest_plugin import rpc_error
from modelplane.observability.v1 import observability_pb2 as ob
from modelplane.registry.v1 import registry_pb2 as rg
from modelplane.validator import cli
from modelplane.validator.v1 import validator_pb2 as pb

pytestmark = pytest.mark.timeout(600)  # the first test pays for starting MLflow

POLICY = """
label_column: label
slice_columns: [region]
protected_attributes: [gender]
event_timestamp_column: event_time
checks:
  - check: metrics
    thresholds: {min_accuracy: 0.7, max_relative_degradation: 0.05}
  - prediction_drift
  - feature_drift
  - feature_importance
  - sensitivity
  - check: stress            # lenient: this machine is shared while tests run
    thresholds: {max_p99_ms_batch_1: 5000}
    params: {duration_s: 0.05}
  - bias
  - check: data_quality
    thresholds: {max_mislabeled_rate: 0.2}
  - leakage
  - fitting
  - backtest
"""


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory,
              shared_registry: RegistryEnv) -> AsyncIterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("validator-platform")
    train, test = make_frame(3000, seed=11), make_frame(2000, seed=12, start="2026-04-01")
    train.to_parquet(root / "train.parquet")
    test.to_parquet(root / "test.parquet")
    test[["x0", "x1", "label"]].to_parquet(root / "narrow.parquet")
    (root / "policy.yaml").write_text(POLICY)
    async with platform(root, shared_registry) as p:
        model = f"churn-{uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(_log_model, p, model, train, 1.0)
        await asyncio.to_thread(_log_model, p, model, train, 0.5)
        await p.registry.SetAlias(rg.SetAliasRequest(
            model_name=model, alias="champion", version=1,
            override_reason="first model: nothing to compare"))
        yield {"p": p, "root": root, "model": model}


def _log_model(p: Platform, name: str, train: Any, c: float) -> None:
    from mlflow.models import infer_signature

    model = make_model(c=c).fit(train[FEATURES], train["label"])
    with p.mlflow() as mlflow:
        mlflow.set_experiment(f"{name}-exp")
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                     signature=infer_signature(train[FEATURES],
                                                               model.predict(train[FEATURES])),
                                     pip_requirements=["scikit-learn"])


def _run(env: dict[str, Any], version: str, policy: str = POLICY, dataset: str = "test.parquet",
         **kw: Any) -> pb.ValidationRun:
    root: Path = env["root"]
    return pb.ValidationRun(model=env["model"], version=version,
                            dataset=pb.DatasetRef(parquet_uri=str(root / dataset)),
                            training_dataset=pb.DatasetRef(
                                parquet_uri=(root / "train.parquet").as_uri()),
                            policy_text=policy, **kw)


async def _until_done(p: Platform, run_id: str) -> list[pb.ValidationRun]:
    seen = []
    async for update in p.validator.WatchValidationRun(pb.WatchValidationRunRequest(id=run_id),
                                                       timeout=180):
        seen.append(update)
    return seen


async def test_passing_run_is_saved_attached_and_becomes_the_baseline(env: dict[str, Any]) -> None:
    p: Platform = env["p"]
    run = await p.validator.CreateValidationRun(
        pb.CreateValidationRunRequest(validation_run=_run(env, "2")))
    assert run.state in (pb.RUN_STATE_PENDING, pb.RUN_STATE_RUNNING)
    assert run.resolved_baseline_version == "1"  # the champion
    assert run.creator == "admin-key"
    updates = await _until_done(p, run.id)
    final = updates[-1]
    assert final.state == pb.RUN_STATE_SUCCEEDED, final.error.message
    fractions = [u.progress.fraction for u in updates]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(u.progress.current_check == "bias" for u in updates)
    assert final.registry_attached and final.observability_baseline_set, list(final.notes)

    report = await p.validator.GetValidationReport(
        pb.GetValidationReportRequest(id=final.report_id))
    assert report.status == pb.CHECK_STATUS_PASS, [(c.check, c.message) for c in report.checks
                                                   if c.status != pb.CHECK_STATUS_PASS]
    assert [c.check for c in report.checks][:2] == ["metrics", "prediction_drift"]
    assert report.baseline_version == "1" and report.row_count == 2000
    assert len(report.dataset_sha256) == 64
    metrics = report.checks[0]
    accuracy = next(m for m in metrics.measurements if m.name == "accuracy")
    assert accuracy.HasField("baseline_value")
    assert {s.value for s in metrics.slices} == {"north", "south", "east"}
    assert report.report_uri.startswith("runs:/")

    version = await p.registry.GetModelVersion(rg.GetModelVersionRequest(model_name=env["model"],
                                                                         version=2))
    assert version.validation.report_id == report.id
    assert version.validation.status == rg.VALIDATION_STATUS_PASS
    # The promotion gate reads it: no override needed now.
    alias = await p.registry.SetAlias(rg.SetAliasRequest(model_name=env["model"], alias="champion",
                                                         version=2))
    assert alias.version == 2

    baseline = await p.observability.GetBaseline(ob.GetBaselineRequest(model=env["model"],
                                                                       version="2"))
    assert baseline.validation_report_id == report.id
    assert baseline.record_count == 2000
    assert {m.metric for m in baseline.metrics} >= {ob.METRIC_ACCURACY, ob.METRIC_ROC_AUC}


async def test_failing_run_blocks_promotion_and_fails_the_ci_command(env: dict[str, Any]) -> None:
    p: Platform = env["p"]
    strict = env["root"] / "strict.yaml"
    strict.write_text("label_column: label\nslice_columns: [region]\n"
                      "checks: [{check: metrics, thresholds: {min_accuracy: 0.99}}]\n")
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(
        cli.main, ["--model", env["model"], "--version", "1", "--dataset",
                   str(env["root"] / "test.parquet"),
                   "--policy", str(strict), "--target", p.validator_address, "--no-baseline"], out,
                   err,
        p.environ)
    assert code == 1, err.getvalue()
    table = out.getvalue()
    assert table.startswith("Validation FAIL")
    assert "metrics" in table and "min_accuracy" in table
    version = await p.registry.GetModelVersion(rg.GetModelVersionRequest(model_name=env["model"],
                                                                         version=1))
    assert version.validation.status == rg.VALIDATION_STATUS_FAIL
    gate = await rpc_error(p.registry.SetAlias(rg.SetAliasRequest(model_name=env["model"],
                                                               alias="champion", version=1)))
    assert gate.code == "FAILED_PRECONDITION"

    lenient = env["root"] / "lenient.yaml"
    lenient.write_text("label_column: label\nchecks: [metrics]\n")
    out = io.StringIO()
    code = await asyncio.to_thread(
        cli.main, ["--model", env["model"], "--version", "2", "--dataset",
                   str(env["root"] / "test.parquet"),
                   "--policy", str(lenient), "--target", p.validator_address, "--json",
                   "--no-baseline"],
        out, io.StringIO(), p.environ)
    assert code == 0
    doc = json.loads(out.getvalue())
    assert doc["status"] == "CHECK_STATUS_PASS" and doc["checks"][0]["check"] == "metrics"


async def test_bad_input_is_refused_before_any_work(env: dict[str, Any]) -> None:
    p: Platform = env["p"]

    def create(run: pb.ValidationRun) -> Any:
        return p.validator.CreateValidationRun(pb.CreateValidationRunRequest(validation_run=run))

    before = await p.validator.ListValidationRuns(pb.ListValidationRunsRequest(page_size=1000))
    missing_version = await rpc_error(create(_run(env, "99")))
    assert missing_version.code == "NOT_FOUND" and missing_version.metadata["version"] == "99"
    unknown_model = await rpc_error(create(pb.ValidationRun(
        model="no-such-model", version="1",
        dataset=pb.DatasetRef(parquet_uri=str(env["root"] / "test.parquet")),
        policy_text="label_column: label")))
    assert unknown_model.code == "NOT_FOUND" and "no-such-model" in unknown_model.message
    unknown_check = await rpc_error(create(_run(env, "2",
                                                "label_column: label\nchecks: [metrics, vibes]")))
    assert unknown_check.code == "INVALID_ARGUMENT"
    assert unknown_check.field_violations[0].field == "policy.checks[1].check"
    unknown_slice = await rpc_error(create(_run(env, "2",
                                                "label_column: label\nslice_columns: [planet]")))
    assert unknown_slice.field_violations[0].field == "policy.slice_columns[0]"
    narrow = await rpc_error(create(_run(env, "2", "label_column: label",
                                         dataset="narrow.parquet")))
    assert narrow.code == "INVALID_ARGUMENT" and "x2, x3, x4, region" in narrow.message
    no_file = await rpc_error(create(_run(env, "2", "label_column: label",
                                          dataset="missing.parquet")))
    assert no_file.code == "NOT_FOUND"
    bad_baseline = await rpc_error(create(_run(env, "2", "label_column: label",
                                               baseline_version="42")))
    assert bad_baseline.code == "NOT_FOUND" and bad_baseline.metadata["version"] == "42"
    after = await p.validator.ListValidationRuns(pb.ListValidationRunsRequest(page_size=1000))
    assert len(after.validation_runs) == len(before.validation_runs)  # nothing was started


async def test_cancel_stops_a_run_without_a_report(env: dict[str, Any]) -> None:
    p: Platform = env["p"]
    slow = "label_column: label\nchecks: [{check: stress, params: {duration_s: 3}}, metrics]\n"
    run = await p.validator.CreateValidationRun(pb.CreateValidationRunRequest(
        validation_run=_run(env, "2", slow, skip_baseline=True)))
    cancelled = await p.validator.CancelValidationRun(pb.CancelValidationRunRequest(id=run.id))
    assert cancelled.state == pb.RUN_STATE_CANCELLED
    updates = await _until_done(p, run.id)
    assert updates[-1].state == pb.RUN_STATE_CANCELLED and not updates[-1].report_id
    listed = await p.validator.ListValidationRuns(pb.ListValidationRunsRequest(
        model=env["model"], state=pb.RUN_STATE_CANCELLED))
    assert run.id in [r.id for r in listed.validation_runs]


async def test_catalog_lists_and_auth(env: dict[str, Any]) -> None:
    p: Platform = env["p"]
    catalog = await p.validator.ListChecks(pb.ListChecksRequest())
    assert len(catalog.checks) == 12
    bias = next(c for c in catalog.checks if c.name == "bias")
    assert "protected_attributes" in bias.requires
    limits = {t.name: t.default_limit for t in bias.thresholds}
    assert limits["max_demographic_parity_difference"] == 0.1
    first = await p.validator.ListChecks(pb.ListChecksRequest(page_size=5))
    assert len(first.checks) == 5 and first.next_page_token
    reports = await p.validator.ListValidationReports(
        pb.ListValidationReportsRequest(model=env["model"]))
    assert reports.validation_reports and not reports.validation_reports[0].checks
    missing = await rpc_error(
        p.validator.GetValidationReport(pb.GetValidationReportRequest(id="nope")))
    assert missing.code == "NOT_FOUND"

    from modelplane.kit.clients import channel
    async with channel(p.validator_address, api_key=p.reader_key, tracing=False) as ch:
        from modelplane.validator.v1 import validator_pb2_grpc
        reader = validator_pb2_grpc.ValidatorServiceStub(ch)
        assert len((await reader.ListChecks(pb.ListChecksRequest())).checks) == 12
        denied = await rpc_error(reader.CreateValidationRun(pb.CreateValidationRunRequest(
            validation_run=_run(env, "2"))))
        assert denied.code == "PERMISSION_DENIED"


def _ipc(frame: Any) -> bytes:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


async def test_featurestore_dataset_and_offline_online_parity(env: dict[str, Any]) -> None:
    """A point-in-time dataset from the real featurestore; parity passes after materialization
    and fails once the online store is fed different values than the offline store holds."""
    import pandas as pd
    from google.protobuf.timestamp_pb2 import Timestamp

    from modelplane.api.v1 import types_pb2
    from modelplane.featurestore.v1 import featurestore_pb2 as fs

    p: Platform = env["p"]
    uid = uuid.uuid4().hex[:6]
    entity, view = f"customer_{uid}", f"customer_stats_{uid}"
    await p.featurestore.CreateEntity(fs.CreateEntityRequest(entity=fs.Entity(
        name=entity, join_key="customer_id", value_type=fs.VALUE_TYPE_INT64)))
    await p.featurestore.CreateFeatureView(fs.CreateFeatureViewRequest(feature_view=fs.FeatureView(
        name=view, entities=[entity], online=True,
        features=[*(fs.Feature(name=f, value_type=fs.VALUE_TYPE_DOUBLE) for f in FEATURES[:5]),
                  fs.Feature(name="region", value_type=fs.VALUE_TYPE_STRING)])))
    frame = make_frame(400, seed=21)
    rows = frame[["customer_id", *FEATURES]].copy()
    rows["event_timestamp"] = pd.Timestamp("2025-12-31", tz="UTC")
    await p.featurestore.WriteOfflineRows(fs.WriteOfflineRowsRequest(
        feature_view=view, rows=types_pb2.TableData(arrow_ipc=_ipc(rows))))
    start = Timestamp()
    start.FromJsonString("2025-12-01T00:00:00Z")
    async for _ in p.featurestore.Materialize(fs.MaterializeRequest(feature_views=[view],
                                                                    start_time=start)):
        pass
    entity_rows = frame[["customer_id", "label", "gender"]].copy()
    # microseconds: the featurestore refuses (INTERNAL) ns timestamps it cannot cast losslessly
    entity_rows["event_timestamp"] = frame["event_time"].dt.floor("us")
    dataset = await p.featurestore.CreateDataset(fs.CreateDatasetRequest(
        dataset=fs.Dataset(name=f"churn_eval_{uid}",
                           feature_refs=[f"{view}:{f}" for f in FEATURES]),
        entity_rows=types_pb2.TableData(arrow_ipc=_ipc(entity_rows)),
        timestamp_column="event_timestamp"))

    policy = "label_column: label\nchecks: [metrics, feature_parity]\n"

    async def validate() -> pb.ValidationReport:
        run = await p.validator.CreateValidationRun(pb.CreateValidationRunRequest(
            validation_run=pb.ValidationRun(
                model=env["model"], version="2", dataset=pb.DatasetRef(dataset=dataset.id),
                policy_text=policy, skip_baseline=True)))
        final = (await _until_done(p, run.id))[-1]
        assert final.state == pb.RUN_STATE_SUCCEEDED, final.error.message
        return await p.validator.GetValidationReport(
            pb.GetValidationReportRequest(id=final.report_id))

    report = await validate()
    assert report.row_count == 400 and report.policy.entity_columns == ["customer_id"]
    metrics, parity = report.checks
    assert next(m.value for m in metrics.measurements if m.name == "accuracy") > 0.7
    assert parity.status == pb.CHECK_STATUS_PASS, (parity.message, list(parity.findings))
    assert {m.subject for m in parity.measurements if m.name == "mismatch_rate"} == {
        f"{view}:{f}" for f in FEATURES}

    changed = rows.copy()
    changed["x1"] = changed["x1"] * 1.5
    changed["event_timestamp"] = pd.Timestamp.now(tz="UTC")
    await p.featurestore.PushOnlineRows(fs.PushOnlineRowsRequest(
        feature_view=view, rows=types_pb2.TableData(arrow_ipc=_ipc(changed))))
    parity = (await validate()).checks[1]
    assert parity.status == pb.CHECK_STATUS_FAIL
    rates = {m.subject: m.value for m in parity.measurements if m.name == "mismatch_rate"}
    assert rates[f"{view}:x1"] == 1.0 and rates[f"{view}:x0"] == 0.0
