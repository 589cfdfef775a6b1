"""ExplainPredictions explains the registered version that made the predictions.

A real registry (gRPC service + ``mlflow server`` child) holds models logged
with the stock MLflow client; observability resolves the records' version
there, downloads it and explains it:

* a gradient-boosted tree model gets exact TreeSHAP, equal to shap's own
  TreeExplainer on the model, adding up to its log-odds to 1e-6; a random
  forest behind a one-hot encoder likewise, in probability, with the
  one-hot columns' values summed into their raw feature;
* a one-hot + logistic regression pipeline gets permutation SHAP through the
  model's own pipeline (the categorical column gets its share), adding up to
  the predicted class's probability;
* the surrogate answers only when asked (then its fidelity is R² against the
  model) or when the model cannot be loaded (then the response says why, or
  FAILED_PRECONDITION when the model was required).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "registry" / "tests"))

from obs_test_data import T0, log, record, rpc_error
from registry_testenv import RegistryEnv, in_thread, registry_env

from modelplane.kit.errors import FailedPrecondition
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.main import build
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(900)  # the first test pays for starting MLflow

TREE_TOL = 1e-6  # TreeSHAP is exact: float rounding only
PERMUTATION_TOL = 1e-9  # additive by construction (each permutation telescopes)
CITIES = np.array(["paris", "lyon", "nice"], dtype=object)


@dataclass
class Env:
    registry: RegistryEnv
    stub: pb_grpc.ObservabilityServiceStub


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    root = tmp_path_factory.mktemp("explain")
    async with registry_env("sqlite", root / "registry") as reg:
        svc = ServiceSettings.from_env("observability", {
            "MODELPLANE_DATA_DIR": str(root / "obs"), "MODELPLANE_AUTH": "off",
            "MODELPLANE_REGISTRY_TARGET": reg.address,
            "MODELPLANE_API_KEY": reg.keys["reader"]}).with_listen("127.0.0.1:0")
        settings = ObservabilitySettings(svc, http_addr=None, monitor_tick_seconds=0)
        spec, _ = build(settings)
        async with running(spec, svc) as server:
            channel = grpc.aio.insecure_channel(server.address)
            yield Env(reg, pb_grpc.ObservabilityServiceStub(channel))
            await channel.close()


def _data(n: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "tenure": rng.uniform(0, 10, n),
                         "noise": rng.normal(size=n),
                         "city": CITIES[rng.integers(0, 3, n)]})


def _labels(df: Any) -> np.ndarray:
    city = np.where(df["city"] == "nice", 1.5, np.where(df["city"] == "lyon", -1.0, 0.0))
    return (1.5 * df["x"] - 0.2 * df["tenure"] + city + 0.5 > 0).astype(int).to_numpy()


def _register(reg: RegistryEnv, name: str, model: Any, X: Any, trusted: list[str]) -> str:
    import mlflow
    from mlflow.models import infer_signature

    with reg.mlflow_as("writer"):
        mlflow.set_experiment(f"{name}-exp")
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=name,
                signature=infer_signature(X, model.predict(X)),
                pip_requirements=["scikit-learn"], skops_trusted_types=trusted or None)
    return str(info.registered_model_version)


async def _log_records(stub: pb_grpc.ObservabilityServiceStub, name: str, version: str,
                       model: Any, df: Any, env: int, prefix: str) -> list[str]:
    from datetime import timedelta

    names = list(df.columns)
    pred = model.predict(df)
    recs = [record(f"{prefix}-{i}", name, version, env, T0 + timedelta(minutes=i),
                   {n: (str(row[n]) if n == "city" else float(row[n])) for n in names},
                   int(pred[i])) for i, (_, row) in enumerate(df.iterrows())]
    await log(stub, recs)
    return [r.prediction_id for r in recs]


def _by_feature(p: pb.PredictionAttribution) -> dict[str, float]:
    return {a.feature: a.value for a in p.attributions}


async def test_tree_model_gets_exact_tree_shap_of_the_model_itself(env: Env) -> None:
    import shap
    from sklearn.ensemble import GradientBoostingClassifier

    name = f"gbt-{uuid.uuid4().hex[:6]}"
    train = _data(600, 1)[["x", "tenure", "noise"]]
    model = GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0)
    model.fit(train, _labels(_data(600, 1)))
    version = await in_thread(_register, env.registry, name, model, train,
                              ["sklearn.tree._tree.Tree"])
    live = _data(60, 2)[["x", "tenure", "noise"]]
    ids = await _log_records(env.stub, name, version, model, live, pb.ENVIRONMENT_PRODUCTION,
                             name)
    resp = await env.stub.ExplainPredictions(pb.ExplainPredictionsRequest(
        filter=pb.EvaluationFilter(model=name), max_records=60))
    assert resp.method == pb.ATTRIBUTION_METHOD_TREE_SHAP
    assert resp.explained_output == "log-odds of the predicted class"
    assert resp.fallback_reason == ""
    assert len(resp.predictions) == 60
    # shap's own TreeExplainer on the same model and rows: the same numbers.
    ref = shap.TreeExplainer(model)
    phi = np.asarray(ref.shap_values(live))  # log-odds of classes_[1]
    margin = model.decision_function(live)
    chosen = model.predict(live)
    row = {pid: i for i, pid in enumerate(ids)}
    for p in resp.predictions:
        i = row[p.prediction_id]
        sign = 1.0 if chosen[i] == 1 else -1.0
        got = _by_feature(p)
        assert p.model_version == version
        for j, feature in enumerate(["x", "tenure", "noise"]):
            assert got[feature] == pytest.approx(sign * phi[i, j], abs=TREE_TOL)
        # Additivity in log-odds of the predicted class, against the model's own margin.
        assert p.output == pytest.approx(sign * margin[i], abs=TREE_TOL)
        assert sum(got.values()) + p.expected_value == pytest.approx(p.output, abs=TREE_TOL)
        assert p.expected_value == pytest.approx(sign * float(np.ravel(ref.expected_value)[0]),
                                                 abs=TREE_TOL)
    mean_abs = {f: np.mean([abs(_by_feature(p)[f]) for p in resp.predictions])
                for f in ("x", "tenure", "noise")}
    assert mean_abs["x"] > mean_abs["tenure"] > mean_abs["noise"]


async def test_forest_behind_a_one_hot_encoder_gets_tree_shap_summed_per_raw_feature(
        env: Env) -> None:
    import shap
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    name = f"forest-{uuid.uuid4().hex[:6]}"
    train = _data(600, 7)
    model = Pipeline([
        ("prep", ColumnTransformer([
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["city"])],
            remainder="passthrough")),
        ("forest", RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0)),
    ]).fit(train, _labels(train))
    version = await in_thread(_register, env.registry, name, model, train,
                              ["sklearn.tree._tree.Tree"])
    live = _data(40, 8)
    ids = await _log_records(env.stub, name, version, model, live, pb.ENVIRONMENT_PRODUCTION,
                             name)
    resp = await env.stub.ExplainPredictions(pb.ExplainPredictionsRequest(
        filter=pb.EvaluationFilter(model=name)))
    assert resp.method == pb.ATTRIBUTION_METHOD_TREE_SHAP
    assert resp.explained_output == "probability of the predicted class"
    # shap on the forest over the encoded columns; city's three one-hot columns summed.
    encoded = model[:-1].transform(live)
    out_names = list(model[:-1].get_feature_names_out())
    phi = np.asarray(shap.TreeExplainer(model[-1]).shap_values(encoded))  # rows × cols × classes
    proba = model.predict_proba(live)
    row = {pid: i for i, pid in enumerate(ids)}
    for p in resp.predictions:
        i = row[p.prediction_id]
        k = int(np.argmax(proba[i]))
        got = _by_feature(p)
        city = sum(phi[i, c, k] for c, n in enumerate(out_names) if n.startswith("cat__city_"))
        assert got["city"] == pytest.approx(city, abs=TREE_TOL)
        assert got["x"] == pytest.approx(phi[i, out_names.index("remainder__x"), k],
                                         abs=TREE_TOL)
        assert p.output == pytest.approx(proba[i, k], abs=TREE_TOL)
        assert sum(got.values()) + p.expected_value == pytest.approx(p.output, abs=TREE_TOL)
    assert max(abs(_by_feature(p)["city"]) for p in resp.predictions) > 0.01


async def test_pipeline_with_a_categorical_column_gets_permutation_shap_through_it(
        env: Env) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    name = f"logit-{uuid.uuid4().hex[:6]}"
    train = _data(800, 3)
    model = Pipeline([
        ("prep", ColumnTransformer([
            ("num", StandardScaler(), ["x", "tenure", "noise"]),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["city"])])),
        ("clf", LogisticRegression(max_iter=1000))]).fit(train, _labels(train))
    version = await in_thread(_register, env.registry, name, model, train, [])
    # The version's validation records are the background.
    await _log_records(env.stub, name, version, model, _data(150, 4),
                       pb.ENVIRONMENT_VALIDATION, f"{name}-val")
    live = _data(30, 5)
    ids = await _log_records(env.stub, name, version, model, live, pb.ENVIRONMENT_PRODUCTION,
                             name)
    resp = await env.stub.ExplainPredictions(pb.ExplainPredictionsRequest(
        filter=pb.EvaluationFilter(model=name, environment=pb.ENVIRONMENT_PRODUCTION),
        prediction_ids=ids[:12], seed=1, store=True))
    assert resp.method == pb.ATTRIBUTION_METHOD_PERMUTATION_SHAP
    assert resp.explained_output == "probability of the predicted class"
    proba = model.predict_proba(live)
    row = {pid: i for i, pid in enumerate(ids)}
    city_share = []
    for p in resp.predictions:
        i = row[p.prediction_id]
        got = _by_feature(p)
        assert set(got) == {"x", "tenure", "noise", "city"}
        assert p.output == pytest.approx(proba[i].max(), abs=1e-12)  # the model's own output
        assert sum(got.values()) + p.expected_value == pytest.approx(p.output,
                                                                     abs=PERMUTATION_TOL)
        city_share.append(abs(got["city"]) / sum(abs(v) for v in got.values()))
    # city moves the log-odds by up to 2.5: the model's own encoder sees it.
    assert np.mean(city_share) > 0.05
    assert max(abs(_by_feature(p)["x"]) for p in resp.predictions) > \
        5 * max(abs(_by_feature(p)["noise"]) for p in resp.predictions)
    # The expected value is the mean output over the background (the validation records).
    assert len({round(p.expected_value, 12) for p in resp.predictions}) <= 2

    # The surrogate, on request: its fidelity is R² against this model's probabilities.
    sur = await env.stub.ExplainPredictions(pb.ExplainPredictionsRequest(
        filter=pb.EvaluationFilter(model=name), prediction_ids=ids[:3],
        explainer=pb.EXPLAINER_SURROGATE))
    assert sur.method in (pb.ATTRIBUTION_METHOD_OCCLUSION,
                          pb.ATTRIBUTION_METHOD_SURROGATE_TREE_SHAP)
    assert sur.surrogate_fidelity_measure == pb.FIDELITY_MEASURE_R2_AGAINST_MODEL
    assert 0.3 < sur.surrogate_fidelity <= 1.0
    assert sur.fallback_reason == ""


async def test_a_model_that_cannot_be_loaded_falls_back_to_the_surrogate_saying_why(
        env: Env) -> None:
    from sklearn.linear_model import LogisticRegression

    name = f"gone-{uuid.uuid4().hex[:6]}"  # never registered
    df = _data(200, 6)[["x", "tenure", "noise"]]
    model = LogisticRegression().fit(df, _labels(_data(200, 6)))
    ids = await _log_records(env.stub, name, "3", model, df, pb.ENVIRONMENT_PRODUCTION, name)
    resp = await env.stub.ExplainPredictions(pb.ExplainPredictionsRequest(
        filter=pb.EvaluationFilter(model=name), prediction_ids=ids[:2]))
    assert resp.method in (pb.ATTRIBUTION_METHOD_SURROGATE_TREE_SHAP,
                           pb.ATTRIBUTION_METHOD_OCCLUSION)
    assert f"models:/{name}/3" in resp.fallback_reason
    assert resp.surrogate_fidelity_measure == pb.FIDELITY_MEASURE_ACCURACY_AGAINST_LOGGED
    assert len(resp.predictions) == 2
    required = await rpc_error(env.stub.ExplainPredictions(pb.ExplainPredictionsRequest(
        filter=pb.EvaluationFilter(model=name), prediction_ids=ids[:2],
        explainer=pb.EXPLAINER_MODEL)))
    assert isinstance(required, FailedPrecondition)
    assert required.reason == "MODEL_UNAVAILABLE" and name in required.message
