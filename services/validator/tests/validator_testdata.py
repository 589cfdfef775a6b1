"""Synthetic tabular data and real scikit-learn models for the validator's tests
(importable because conftest.py puts this folder on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["x0", "x1", "x2", "x3", "x4"]
FEATURES = [*NUMERIC, "region"]


def make_frame(n: int, seed: int, *, shift: float = 0.0, start: str = "2026-01-01") -> pd.DataFrame:
    """Binary label driven mostly by x0 and x1, a bit by region; x4 is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    x[:, 0] += shift
    region = rng.choice(["north", "south", "east"], size=n, p=[0.5, 0.3, 0.2])
    gender = rng.choice(["f", "m"], size=n)
    logit = 2.0 * x[:, 0] - 1.5 * x[:, 1] + 0.5 * x[:, 2] + np.where(region == "east", 0.5, 0.0)
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(x, columns=NUMERIC)
    frame["region"] = region
    frame["gender"] = gender
    frame["customer_id"] = np.arange(n) + seed * 1_000_000
    frame["event_time"] = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(
        np.sort(rng.uniform(0, 90 * 86400, size=n)), unit="s")
    frame["label"] = label
    return frame


def make_model(features: list[str] | None = None, c: float = 1.0) -> Pipeline:
    features = features or FEATURES
    numeric = [f for f in features if f != "region"]
    transformers = [("num", StandardScaler(), numeric)]
    if "region" in features:
        transformers.append(("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]))
    return Pipeline([("prep", ColumnTransformer(transformers)),
                     ("clf", LogisticRegression(C=c, max_iter=500))])


@dataclass
class Scenario:
    train: pd.DataFrame
    test: pd.DataFrame
    model: Pipeline


def make_scenario() -> Scenario:
    train = make_frame(3000, seed=1)
    test = make_frame(2000, seed=2)
    model = make_model().fit(train[FEATURES], train["label"])
    return Scenario(train, test, model)
