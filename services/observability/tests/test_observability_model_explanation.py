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

ComputeFeatureImportance likewise scores the registered model itself: its
importances are scikit-learn's ``permutation_importance`` of the loaded model
on the window's records (same rows, same seed), against the model's own
predictions or against the actuals; a feature the model's pipeline drops gets
exactly 0; records of two versions are weighted by their share; the surrogate
answers only when asked or when the model cannot be loaded (with the reason
and its fidelity).
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

from obs_test_data import T0, log, log_actuals, record, rpc_error
from registry_testenv import RegistryEnv, in_thread

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
IMPORTANCE_TOL = 1e-12  # the same computation as scikit-learn's: float rounding only
CITIES = np.array(["paris", "lyon", "nice"], dtype=object)


@dataclass
class Env:
    registry: RegistryEnv
    stub: pb_grpc.ObservabilityServiceStub


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory,
              shared_registry: RegistryEnv) -> AsyncIterator[Env]:
    root = tmp_path_factory.mktemp("explain")
    reg = shared_registry
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
    kind = int if np.issubdtype(pred.dtype, np.integer) else float
    recs = [record(f"{prefix}-{i}", name, version, env, T0 + timedelta(minutes=i),
                   {n: (str(row[n]) if n == "city" else float(row[n])) for n in names},
                   kind(pred[i])) for i, (_, row) in enumerate(df.iterrows())]
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

    # Feature importance falls back the same way: the surrogate, saying why.
    imp = await env.stub.ComputeFeatureImportance(pb.ComputeFeatureImportanceRequest(
        filter=pb.EvaluationFilter(model=name), repeats=2))
    assert imp.explainer == pb.EXPLAINER_SURROGATE
    assert f"models:/{name}/3" in imp.fallback_reason
    assert imp.surrogate_fidelity_measure == pb.FIDELITY_MEASURE_ACCURACY_AGAINST_LOGGED
    assert 0.6 < imp.surrogate_fidelity <= 1.0
    assert imp.scoring == "the surrogate's accuracy against the logged predictions " \
        "(held-out records)"
    assert list(imp.model_versions) == []
    assert {i.feature for i in imp.importances} == {"x", "tenure", "noise"}
    required = await rpc_error(env.stub.ComputeFeatureImportance(
        pb.ComputeFeatureImportanceRequest(filter=pb.EvaluationFilter(model=name),
                                           explainer=pb.EXPLAINER_MODEL)))
    assert isinstance(required, FailedPrecondition)
    assert required.reason == "MODEL_UNAVAILABLE" and f"models:/{name}/3" in required.message


def _sklearn_importances(model: Any, X: Any, y: Any, scoring: str, repeats: int,
                         seed: int) -> np.ndarray:
    """scikit-learn's own permutation importance: features × repeats."""
    from sklearn.inspection import permutation_importance

    res = permutation_importance(model, X, y, scoring=scoring, n_repeats=repeats,
                                 random_state=seed)
    return np.asarray(res.importances)


def _check_importances(resp: pb.ComputeFeatureImportanceResponse, names: list[str],
                       drops: np.ndarray) -> None:
    got = {i.feature: i for i in resp.importances}
    assert set(got) == set(names)
    for j, n in enumerate(names):
        assert got[n].value == pytest.approx(drops[j].mean(), abs=IMPORTANCE_TOL)
        assert got[n].std == pytest.approx(drops[j].std(), abs=IMPORTANCE_TOL)
    values = [i.value for i in resp.importances]
    assert values == sorted(values, reverse=True)


async def test_feature_importance_is_sklearn_permutation_importance_of_the_model_itself(
        env: Env) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    name = f"imp-{uuid.uuid4().hex[:6]}"
    train = _data(800, 11)
    # The pipeline takes x, tenure, noise and city but drops noise (remainder="drop"):
    # shuffling noise cannot change a single prediction.
    model = Pipeline([
        ("prep", ColumnTransformer([
            ("num", StandardScaler(), ["x", "tenure"]),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["city"])])),
        ("clf", LogisticRegression(max_iter=1000))]).fit(train, _labels(train))
    version = await in_thread(_register, env.registry, name, model, train, [])
    live = _data(300, 12)
    ids = await _log_records(env.stub, name, version, model, live, pb.ENVIRONMENT_PRODUCTION,
                             name)
    names = list(train.columns)  # the model's own input order (feature_names_in_)

    resp = await env.stub.ComputeFeatureImportance(pb.ComputeFeatureImportanceRequest(
        filter=pb.EvaluationFilter(model=name), repeats=4, seed=7))
    assert resp.explainer == pb.EXPLAINER_MODEL
    assert resp.fallback_reason == "" and resp.surrogate_fidelity == 0.0
    assert resp.surrogate_fidelity_measure == pb.FIDELITY_MEASURE_UNSPECIFIED
    assert resp.scoring == "accuracy against the model's own predictions"
    assert list(resp.model_versions) == [version] and resp.record_count == 300
    # scikit-learn's permutation importance of the model on the same rows (the
    # window's records in time order), seed and scoring: the same numbers.
    X = live[names]
    _check_importances(resp, names, _sklearn_importances(model, X, model.predict(X),
                                                         "accuracy", 4, 7))
    order = [i.feature for i in resp.importances]
    assert order[0] == "x" and order[-1] == "noise"
    assert resp.importances[-1].value == 0.0 and resp.importances[-1].std == 0.0
    # city goes through the model's own one-hot encoder: it matters.
    assert {i.feature: i.value for i in resp.importances}["city"] > 0.02

    # Against the actuals (a tenth of them flipped): scored by accuracy on them.
    rng = np.random.default_rng(0)
    actual = np.where(rng.random(len(live)) < 0.1, 1 - _labels(live), _labels(live))
    await log_actuals(env.stub, [(pid, int(a)) for pid, a in zip(ids, actual)])
    act = await env.stub.ComputeFeatureImportance(pb.ComputeFeatureImportanceRequest(
        filter=pb.EvaluationFilter(model=name), against_actual=True, repeats=3, seed=2))
    assert act.explainer == pb.EXPLAINER_MODEL
    assert act.scoring == "accuracy against the actuals"
    _check_importances(act, names, _sklearn_importances(model, X, actual, "accuracy", 3, 2))
    assert act.importances[-1].feature == "noise" and act.importances[-1].value == 0.0

    # The surrogate only on request: no fallback reason, fidelity R² against the model.
    sur = await env.stub.ComputeFeatureImportance(pb.ComputeFeatureImportanceRequest(
        filter=pb.EvaluationFilter(model=name), repeats=2,
        explainer=pb.EXPLAINER_SURROGATE))
    assert sur.explainer == pb.EXPLAINER_SURROGATE and sur.fallback_reason == ""
    assert sur.surrogate_fidelity_measure == pb.FIDELITY_MEASURE_R2_AGAINST_MODEL
    assert 0.3 < sur.surrogate_fidelity <= 1.0
    assert list(sur.model_versions) == []
    sur_act = await env.stub.ComputeFeatureImportance(pb.ComputeFeatureImportanceRequest(
        filter=pb.EvaluationFilter(model=name), repeats=2, against_actual=True,
        explainer=pb.EXPLAINER_SURROGATE))
    assert sur_act.surrogate_fidelity_measure == pb.FIDELITY_MEASURE_ACCURACY_AGAINST_ACTUAL
    assert 0.5 < sur_act.surrogate_fidelity <= 1.0


async def test_feature_importance_of_two_versions_weights_each_models_own(env: Env) -> None:
    from sklearn.linear_model import Ridge

    name = f"ridge-{uuid.uuid4().hex[:6]}"
    cols = ["x", "tenure", "noise"]
    train = _data(500, 13)[cols]
    first = Ridge().fit(train, 2.0 * train["x"] - 0.3 * train["tenure"])
    second = Ridge().fit(train, 0.2 * train["x"] - 1.0 * train["tenure"])
    v1 = await in_thread(_register, env.registry, name, first, train, [])
    v2 = await in_thread(_register, env.registry, name, second, train, [])
    live1, live2 = _data(120, 14)[cols], _data(80, 15)[cols]
    await _log_records(env.stub, name, v1, first, live1, pb.ENVIRONMENT_PRODUCTION, f"{name}-a")
    await _log_records(env.stub, name, v2, second, live2, pb.ENVIRONMENT_PRODUCTION,
                       f"{name}-b")
    resp = await env.stub.ComputeFeatureImportance(pb.ComputeFeatureImportanceRequest(
        filter=pb.EvaluationFilter(model=name), repeats=3, seed=5))
    assert resp.explainer == pb.EXPLAINER_MODEL
    assert resp.scoring == "R^2 against the model's own predictions"
    assert sorted(resp.model_versions) == sorted([v1, v2]) and resp.record_count == 200
    # Each version's own model on its own records, weighted by its share of them.
    drops = 0.6 * _sklearn_importances(first, live1, first.predict(live1), "r2", 3, 5) + \
        0.4 * _sklearn_importances(second, live2, second.predict(live2), "r2", 3, 5)
    _check_importances(resp, cols, drops)
    by = {i.feature: i.value for i in resp.importances}
    assert by["noise"] < 0.01 < by["tenure"] and by["x"] > 0.5


def test_feature_importance_of_a_pyfunc_model_calls_its_predict(tmp_path: Path) -> None:
    """An MLflow pyfunc model (no ``fit``, no ``predict_proba``) is scored through
    its own ``predict``: the same numbers as scikit-learn's on the model inside."""
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from modelplane.observability.model_explanation import model_features, model_importance

    train = _data(400, 21)
    model = Pipeline([
        ("prep", ColumnTransformer([
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["city"])],
            remainder="passthrough")),
        ("clf", LogisticRegression(max_iter=1000))]).fit(train, _labels(train))
    mlflow.sklearn.save_model(model, str(tmp_path / "m"),
                              signature=infer_signature(train, model.predict(train)))
    pyfunc = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    assert not hasattr(pyfunc, "fit") and not hasattr(pyfunc, "predict_proba")
    live = _data(150, 22)
    names = model_features(pyfunc, list(live.columns))
    assert names == list(train.columns)  # from the signature
    cols = {n: live[n].to_numpy(dtype=object if n == "city" else np.float64) for n in names}
    got = model_importance(pyfunc, cols, names, None, True, 3, 4)
    ref = permutation_importance(model, live[names], model.predict(live[names]),
                                 scoring="accuracy", n_repeats=3, random_state=4)
    np.testing.assert_allclose(got.importances, ref.importances, rtol=0, atol=IMPORTANCE_TOL)
    assert got.scoring == "accuracy against the model's own predictions"
    assert got.importances[names.index("city")].mean() > 0.02
