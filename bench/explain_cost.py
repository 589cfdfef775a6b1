"""What explaining the demo's model costs (observability's ExplainPredictions, in-process).

    uv run python bench/explain_cost.py

Trains the demo's challenger (``modelplane.cli.demo.training.build_model``:
StandardScaler + OneHotEncoder + LogisticRegression over 6 numeric and 3
categorical features) on ``modelplane.kit.demo_data.history`` and explains the first records
with ``model_explanation.explain_model`` — the permutation explainer the
service uses for a non-tree model — under a few budgets. Prints CPU and wall
time (compare CPU: this machine kind is shared), and the additivity error
(sum of attributions + expected value - the model's probability).
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
from demo_model import demo_model

from modelplane.kit.demo_data import CATEGORICAL_FEATURES
from modelplane.observability.model_explanation import (
    ExplainBudget,
    ModelAttribution,
    explain_model,
)


def main() -> None:
    warnings.simplefilter("ignore")
    dm = demo_model()
    model, names, cols = dm.model, dm.names, dm.columns
    background = {n: v[-2000:] for n, v in cols.items()}
    t = time.perf_counter()
    import shap  # noqa: F401

    print(f"import shap: {time.perf_counter() - t:.1f} s wall")

    def run(rows: int, budget: ExplainBudget, label: str) -> ModelAttribution:
        target = {n: v[:rows] for n, v in cols.items()}
        c0, t0 = time.process_time(), time.perf_counter()
        a = explain_model(model, target, names, background, set(CATEGORICAL_FEATURES),
                          budget, 0)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        err = np.abs(a.values.sum(1) + a.expected - a.output).max()
        print(f"{label}: {a.method} rows={len(a.values)} background={budget.background_rows} "
              f"permutations={budget.permutations}: cpu {cpu:.2f} s "
              f"({1000 * cpu / len(a.values):.0f} ms a record), wall {wall:.2f} s, "
              f"additivity error {err:.1e}")
        return a

    run(1, ExplainBudget(), "first call (numba JIT)")
    a = run(100, ExplainBudget(), "defaults")
    run(100, ExplainBudget(background_rows=50), "background 50")
    b = run(20, ExplainBudget(permutations=10), "10 permutations")
    print("mean |phi| (defaults):", {n: round(float(v), 4)
                                     for n, v in zip(names, np.abs(a.values).mean(0))})
    print(f"2 vs 10 permutations, first 20 records: max |diff| "
          f"{np.abs(a.values[:20] - b.values).max():.4f}")
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()
