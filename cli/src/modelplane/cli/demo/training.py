"""The data scientist's part of the demo: scikit-learn models trained on a featurestore
Dataset and logged with the stock ``mlflow`` client (the registry's tracking server)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelplane.kit.demo_data import (
    CATEGORICAL_FEATURES,
    LABEL,
    MODEL_FEATURES,
    NUMERIC_FEATURES,
)

EXPERIMENT = "fraud-detector-demo"
INTEGER_FEATURES = ("hour", "age", "txn_count_7d")


@dataclass
class TrainedModel:
    run_id: str
    kind: str
    train_accuracy: float
    holdout_accuracy: float
    version: int


def model_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs, typed as the featurestore and the requests deliver them."""
    out = pd.DataFrame({c: df[c].astype("int64" if c in INTEGER_FEATURES else "float64")
                        for c in NUMERIC_FEATURES})
    for c in CATEGORICAL_FEATURES:
        out[c] = df[c].astype(str)
    return out[list(MODEL_FEATURES)]


def build_model(kind: str) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if kind == "logistic_numeric":
        # The first model: a linear model of the numbers only.
        prep = ColumnTransformer([("num", StandardScaler(), list(NUMERIC_FEATURES))],
                                 remainder="drop")
        return Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000))])
    # The challenger also uses merchant, city and segment (one-hot). Linear too: MLflow
    # saves scikit-learn models with skops, which does not trust tree models' node arrays.
    prep = ColumnTransformer([
        ("num", StandardScaler(), list(NUMERIC_FEATURES)),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         list(CATEGORICAL_FEATURES))], remainder="drop")
    return Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=2000, C=1.0))])


def train_and_log(*, tracking_uri: str, api_key: str, kind: str, train: pd.DataFrame,
                  holdout: pd.DataFrame, dataset_id: str, holdout_dataset_id: str,
                  feature_refs: list[str], registered_model_name: str) -> TrainedModel:
    """Fit ``kind`` on ``train`` and log it with the stock MLflow client, naming the Dataset."""
    import mlflow
    from mlflow.models import infer_signature

    os.environ["MLFLOW_TRACKING_TOKEN"] = api_key  # the registry checks API keys
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")  # pip_requirements are given
    import warnings

    warnings.filterwarnings("ignore", message=".*Integer columns.*")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)  # the platform's registry, whatever the env says
    mlflow.set_experiment(EXPERIMENT)
    x, y = model_frame(train), train[LABEL].astype(np.int64)
    xh, yh = model_frame(holdout), holdout[LABEL].astype(np.int64)
    model = build_model(kind).fit(x, y)
    train_acc = float((model.predict(x) == y).mean())
    holdout_acc = float((model.predict(xh) == yh).mean())
    with mlflow.start_run(run_name=f"fraud-{kind}") as run:
        mlflow.set_tags({"featurestore.dataset_id": dataset_id,
                         "featurestore.holdout_dataset_id": holdout_dataset_id,
                         "demo": "modelplane lifecycle"})
        mlflow.log_params({"model_kind": kind, "dataset_id": dataset_id,
                           "feature_refs": ",".join(feature_refs),
                           "train_rows": len(train), "features": len(MODEL_FEATURES)})
        try:
            from mlflow.data.pandas_dataset import from_pandas

            mlflow.log_input(from_pandas(train, name=dataset_id, targets=LABEL),
                             context="training")
        except Exception as exc:  # noqa: BLE001 - the dataset record is a nicety of the UI
            print(f"(MLflow dataset input not logged: {exc})")
        mlflow.log_metrics({"train_accuracy": train_acc, "holdout_accuracy": holdout_acc,
                            "holdout_fraud_rate": float(yh.mean())})
        info = mlflow.sklearn.log_model(model, name="model",
                                        signature=infer_signature(x, model.predict(x)),
                                        pip_requirements=["scikit-learn"],
                                        registered_model_name=registered_model_name)
    version = int(info.registered_model_version)
    return TrainedModel(run.info.run_id, kind, train_acc, holdout_acc, version)
