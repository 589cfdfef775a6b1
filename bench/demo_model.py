"""The demo's challenger model and its window, for the explanation benchmarks.

``demo_model()`` trains ``modelplane.cli.demo.training.build_model("logistic_categorical")``
(StandardScaler + OneHotEncoder + LogisticRegression over 6 numeric and 3
categorical features) on ``demo.data.history(300 customers, 30 days)`` and
returns it with the window as the columns observability hands the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelplane.cli.demo.training import build_model, model_frame
from modelplane.kit.demo_data import CATEGORICAL_FEATURES, LABEL, MODEL_FEATURES, history


@dataclass
class DemoModel:
    model: Any
    X: Any
    y: Any
    names: list[str]
    columns: dict[str, np.ndarray]


def demo_model() -> DemoModel:
    h = history(n_customers=300, days=30)
    tx = h.transactions.dropna(subset=[LABEL])
    prof = h.customer_profile.drop_duplicates("customer_id", keep="last")
    act = h.customer_activity.drop_duplicates("customer_id", keep="last")
    df = tx.merge(prof[["customer_id", "age", "credit_limit", "segment"]], on="customer_id") \
        .merge(act[["customer_id", "txn_count_7d", "avg_amount_7d"]], on="customer_id")
    X, y = model_frame(df), df[LABEL].astype(int)
    model = build_model("logistic_categorical").fit(X, y)
    names = list(MODEL_FEATURES)
    columns = {n: (X[n].to_numpy(dtype=object) if n in CATEGORICAL_FEATURES
                   else X[n].to_numpy(dtype=float)) for n in names}
    return DemoModel(model, X, y, names, columns)
