"""The checks that measure against the platform rather than in-process copies of it:
drift against the previous version's validation data (its baseline in observability),
stress against a deployment behind serving, backtest windows built point-in-time by the
featurestore. One real platform slice (registry + MLflow, featurestore, observability,
serving, validator) for the module."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from registry_testenv import RegistryEnv
from validator_platform import Platform, platform
from validator_testdata import FEATURES, make_frame, make_model

from modelplane.api.v1 import types_pb2
from modelplane.featurestore.v1 import featurestore_pb2 as fs
from modelplane.kit.arrow_ipc import ArrowBudget
from modelplane.validator.v1 import validator_pb2 as pb

pytestmark = pytest.mark.timeout(900)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=30)
CUSTOMERS = 150


def _broken_model() -> Any:
    import mlflow.pyfunc

    class Raises(mlflow.pyfunc.PythonModel):  # defined here so cloudpickle stores it by value
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("this model is broken")

    return Raises()


def _log_models(p: Platform, name: str, broken: str, train: pd.DataFrame) -> None:
    from mlflow.models import infer_signature

    with p.mlflow() as mlflow:
        mlflow.set_experiment(f"{name}-exp")
        for c in (1.0, 0.5):
            model = make_model(c=c).fit(train[FEATURES], train["label"])
            with mlflow.start_run():
                mlflow.sklearn.log_model(
                    model, name="model", registered_model_name=name,
                    signature=infer_signature(train[FEATURES], model.predict(train[FEATURES])),
                    pip_requirements=["scikit-learn"])
        with mlflow.start_run():
            # with the same signature as the good model, so serving hands it the same named
            # columns (without one it is a matrix model and refuses a string column up front)
            mlflow.pyfunc.log_model(name="model", python_model=_broken_model(),
                                    registered_model_name=broken, pip_requirements=["mlflow"],
                                    signature=infer_signature(train[FEATURES], train["label"]))


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def x0_as_of(customer: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The customer's x0 in window w: its magnitude, sign flipping every window."""
    magnitude = 0.5 + (customer % 7) * 0.25
    sign = np.where(customer % 2 == 0, 1.0, -1.0)
    return magnitude * sign * np.where(window % 2 == 0, 1.0, -1.0)


async def _feature_history(p: Platform, suffix: str) -> tuple[str, pd.DataFrame]:
    """A feature view whose x0 changes every 30 days, a feature service over it, and the
    entity rows (with a label that follows x0 *as of the row's time*) as a parquet frame
    whose own x0 column holds the newest value (what a leaky join would give)."""
    view, service = f"cust_x_{suffix}", f"bt_{suffix}"
    fv = fs.FeatureView(name=view, entities=[f"cust_{suffix}"], online=False,
                        features=[fs.Feature(name="x0", value_type=fs.VALUE_TYPE_DOUBLE)])
    fv.ttl.FromTimedelta(timedelta(days=365))
    await p.featurestore.ApplyRepo(fs.ApplyRepoRequest(
        entities=[fs.Entity(name=f"cust_{suffix}", join_key="customer_id",
                            value_type=fs.VALUE_TYPE_INT64)],
        feature_views=[fv],
        feature_services=[fs.FeatureService(name=service, projections=[
            fs.FeatureViewProjection(feature_view=view, features=["x0"])])]))
    ids = np.arange(CUSTOMERS, dtype=np.int64)
    cust = np.repeat(ids, 4)
    window = np.tile(np.arange(4), CUSTOMERS)
    history = pa.table({
        "customer_id": pa.array(cust, pa.int64()),
        "event_timestamp": pa.array([T0 + int(w) * WINDOW for w in window],
                                    pa.timestamp("us", tz="UTC")),
        "x0": pa.array(x0_as_of(cust, window), pa.float64())})
    await p.featurestore.WriteOfflineRows(fs.WriteOfflineRowsRequest(
        feature_view=view, rows=types_pb2.TableData(arrow_ipc=_ipc(history))))
    rng = np.random.default_rng(5)
    offsets = rng.uniform(1, 29, size=len(cust))
    frame = pd.DataFrame({"customer_id": cust})
    frame["event_time"] = pd.to_datetime(
        [T0 + int(w) * WINDOW + timedelta(days=float(o))
         for w, o in zip(window, offsets, strict=True)],
        utc=True)
    for col in ("x1", "x2", "x3", "x4"):
        frame[col] = 0.0
    frame["region"] = "north"
    frame["gender"] = "f"
    frame["label"] = (x0_as_of(cust, window) > 0).astype(int)
    frame["x0"] = x0_as_of(cust, np.full(len(cust), 3))  # the newest value: not as of the row
    return service, frame[["x0", "x1", "x2", "x3", "x4", "region", "gender", "customer_id",
                           "event_time", "label"]]


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory,
              shared_registry: RegistryEnv) -> AsyncIterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("validator-real")
    train = make_frame(3000, seed=21)
    # v1 was validated on data whose x0 (the most important feature) sits 1.5 higher than
    # in training; v2's validation data has the same shift. Against v1's validation data
    # there is no drift; against training there is.
    previous = make_frame(2000, seed=22, shift=1.5, start="2026-04-01")
    current = make_frame(2000, seed=23, shift=1.5, start="2026-07-01")
    train.to_parquet(root / "train.parquet")
    previous.to_parquet(root / "previous.parquet")
    current.to_parquet(root / "current.parquet")
    async with platform(root, shared_registry, serving=True) as p:
        suffix = uuid.uuid4().hex[:6]
        model, broken = f"churn-{suffix}", f"broken-{suffix}"
        await asyncio.to_thread(_log_models, p, model, broken, train)
        service, history = await _feature_history(p, suffix)
        history.to_parquet(root / "history.parquet")
        yield {"p": p, "root": root, "model": model, "broken": broken, "service": service,
               "history": history}


async def _validate(env: dict[str, Any], version: str, dataset: str, policy: str,
                    **kw: Any) -> pb.ValidationReport:
    p: Platform = env["p"]
    root = env["root"]
    run = await p.validator.CreateValidationRun(pb.CreateValidationRunRequest(
        validation_run=pb.ValidationRun(
            model=env["model"], version=version,
            dataset=pb.DatasetRef(parquet_uri=str(root / dataset)),
            training_dataset=pb.DatasetRef(parquet_uri=str(root / "train.parquet")),
            policy_text=policy, **kw)))
    final = None
    async for update in p.validator.WatchValidationRun(pb.WatchValidationRunRequest(id=run.id),
                                                       timeout=600):
        final = update
    assert final is not None and final.state == pb.RUN_STATE_SUCCEEDED, final
    return await p.validator.GetValidationReport(pb.GetValidationReportRequest(id=final.report_id))


def _check(report: pb.ValidationReport, name: str) -> Any:
    return next(c for c in report.checks if c.check == name)


def _value(check: Any, name: str, subject: str = "") -> float:
    return next(m.value for m in check.measurements if m.name == name and m.subject == subject)


DRIFT = """
label_column: label
checks:
  - check: feature_drift
    params: {top_k: "0", reference: %s}
  - check: prediction_drift
    params: {reference: %s}
"""


async def test_feature_drift_defaults_to_the_previous_versions_validation_data(
        env: dict[str, Any]) -> None:
    # v1 is the first version: nothing before it, so it says it fell back to training
    first = await _validate(env, "1", "previous.parquet",
                            DRIFT % ("previous_version", "previous_version"),
                            skip_baseline=True)
    drift = _check(first, "feature_drift")
    assert any("fell back to the training dataset" in f and "first" in f for f in drift.findings), \
        list(drift.findings)
    assert drift.status == pb.CHECK_STATUS_FAIL  # x0 shifted by 1.5 against training
    # ... and v1's validation data is now its baseline in observability

    previous = await _validate(env, "2", "current.parquet",
                               DRIFT % ("previous_version", "previous_version"), skip_baseline=True)
    training = await _validate(env, "2", "current.parquet", DRIFT % ("training", "training"),
                               skip_baseline=True)
    against_previous, against_training = (_check(previous, "feature_drift"),
                                          _check(training, "feature_drift"))
    assert "version 1's validation data (2000 records)" in against_previous.message
    assert "training dataset" in against_training.message
    assert _value(against_previous, "psi", "x0") < 0.1
    assert _value(against_training, "psi", "x0") > 0.5
    assert against_previous.status == pb.CHECK_STATUS_PASS, against_previous.message
    assert against_training.status == pb.CHECK_STATUS_FAIL
    # prediction drift likewise: v2's scores on shifted data vs v1's scores on shifted data
    # (close) and vs v2's own scores on the unshifted training data (far)
    pred_previous, pred_training = (_check(previous, "prediction_drift"),
                                    _check(training, "prediction_drift"))
    assert "version 1's validation data" in pred_previous.message
    assert _value(pred_previous, "psi") < _value(pred_training, "psi")
    assert _value(pred_training, "psi") > 0.2


STRESS = """
label_column: label
checks:
  - check: stress
    thresholds: {max_p99_ms: 5000}
    params: {deployment: %s, concurrency: "4", load_duration_s: "1.5"}
"""


async def _deploy(p: Platform, name: str, model: str, version: str, fallback: str = "") -> None:
    from modelplane.serving.v1 import serving_pb2 as sv

    deployment = sv.Deployment(name=name, model=model, traffic_split=sv.TrafficSplit(
        routes=[sv.Route(target=sv.ModelTarget(version=version), weight=1)]),
        prediction_logging=sv.PREDICTION_LOGGING_OFF)
    if fallback:
        deployment.fallback.chain.append(sv.ModelTarget(model=fallback, version="1"))
    # serving's gate wants a PASS validation; these deployments exist to be measured
    await p.serving.CreateDeployment(sv.CreateDeploymentRequest(
        deployment=deployment, validation_override_reason="validator stress-check test"))
    for _ in range(600):
        d = await p.serving.GetDeployment(sv.GetDeploymentRequest(name=name))
        if d.state == sv.DEPLOYMENT_STATE_READY:
            return
        assert d.state != sv.DEPLOYMENT_STATE_FAILED, d.state_message
        await asyncio.sleep(0.2)
    raise AssertionError(f"deployment {name} not READY")


async def test_stress_loads_a_deployment_and_counts_errors_and_fallbacks(env: dict[str,
                                                                                   Any]) -> None:
    p: Platform = env["p"]
    await _deploy(p, "good", env["model"], "1")
    await _deploy(p, "broken", env["broken"], "1")
    await _deploy(p, "saved", env["broken"], "1", fallback=env["model"])

    good = _check(await _validate(env, "2", "current.parquet", STRESS % "good"), "stress")
    subject = "deployment=good"
    assert good.status == pb.CHECK_STATUS_PASS, good.message
    assert any("deployment 'good' through serving" in f for f in good.findings)
    requests = _value(good, "requests", subject)
    assert requests >= 4
    assert 0 < _value(good, "p50_ms", subject) <= _value(good, "p99_ms", subject)
    assert _value(good, "errors", subject) == 0 and _value(good, "fallbacks", subject) == 0
    assert any(f == f"answered by version 1: {int(requests)}" for f in good.findings)

    failing = _check(await _validate(env, "2", "current.parquet", STRESS % "broken"), "stress")
    subject = "deployment=broken"
    assert failing.status == pb.CHECK_STATUS_FAIL
    assert any(f.startswith("errors ") for f in failing.findings), list(failing.findings)
    assert _value(failing, "errors", subject) == _value(failing, "requests", subject) >= 4
    assert _value(failing, "error_rate", subject) == 1.0
    assert [t.name
            for t in failing.thresholds if t.status == pb.CHECK_STATUS_FAIL] == ["max_error_rate"]

    saved = _check(await _validate(env, "2", "current.parquet", STRESS % "saved"), "stress")
    subject = "deployment=saved"
    # answered, but by the fallback
    assert saved.status == pb.CHECK_STATUS_WARN, (saved.message, list(saved.findings))
    assert _value(saved, "errors", subject) == 0
    assert _value(saved, "fallbacks", subject) == _value(saved, "requests", subject) >= 4
    assert any(f.startswith(("fallbacks MODEL_ERROR", "fallbacks CIRCUIT_OPEN"))
               for f in saved.findings), list(saved.findings)

    in_process = _check(await _validate(
        env, "2", "current.parquet",
        "label_column: label\nchecks: [{check: stress, params: {duration_s: '0.05'}}]\n"), "stress")
    assert any("in-process predict" in f for f in in_process.findings)


BACKTEST = """
label_column: label
event_timestamp_column: event_time
entity_columns: [customer_id]
checks:
  - check: backtest
    params: {windows: "4", metric: accuracy, min_window_rows: "10"%s}
"""


async def _read(p: Platform, dataset_id: str) -> pd.DataFrame:
    budget = ArrowBudget()
    tables = [budget.read(chunk.arrow_ipc, "arrow_ipc")
              async for chunk in p.featurestore.ReadDataset(fs.ReadDatasetRequest(id=dataset_id))]
    return pa.concat_tables(tables).to_pandas()


async def test_backtest_windows_come_point_in_time_from_the_featurestore(env: dict[str,
                                                                                   Any]) -> None:
    p: Platform = env["p"]
    pit = _check(await _validate(env, "2", "history.parquet",
                                 BACKTEST % f", feature_service: {env['service']}",
                                 skip_baseline=True), "backtest")
    split = _check(await _validate(env, "2", "history.parquet", BACKTEST % "",
                                   skip_baseline=True), "backtest")
    assert any("built point-in-time by the featurestore" in f for f in pit.findings)
    assert any("split by event time" in f for f in split.findings)
    ids = [f.split("featurestore dataset ")[1].split(" ")[0] for f in pit.findings
           if "featurestore dataset" in f]
    assert len(ids) == 4
    total = 0
    for dataset_id in ids:
        window = await _read(p, dataset_id)
        total += len(window)
        ts = pd.to_datetime(window["event_time"], utc=True)
        index = ((ts - pd.Timestamp(T0)) // pd.Timedelta(WINDOW)).to_numpy().astype(int)
        expected = x0_as_of(window["customer_id"].to_numpy(), index)
        # every row holds x0 as of its own time, never the newest value the parquet has
        np.testing.assert_allclose(window["x0"].to_numpy(), expected)
    assert total == len(env["history"])
    # the label follows x0 as of the row's time: scored point-in-time the model is right;
    # on the parquet's newest x0 it is wrong in every other window
    pit_windows = [_value(pit, "accuracy", s.value) for s in pit.slices]
    split_windows = [_value(split, "accuracy", s.value) for s in split.slices]
    assert min(pit_windows) > 0.9, pit_windows
    assert min(split_windows) < 0.2, split_windows
    assert pit.status == pb.CHECK_STATUS_PASS and split.status == pb.CHECK_STATUS_FAIL
