"""What observability's ComputeFeatureImportance costs on the demo's model (in-process).

    uv run python bench/importance_cost.py

Trains the demo's challenger (``modelplane.cli.demo.training.build_model``:
StandardScaler + OneHotEncoder + LogisticRegression over 6 numeric and 3
categorical features) on ``demo.data.history(300 customers, 30 days)`` and
computes its permutation importance with ``model_explanation.model_importance``
— what the service runs per version once the records are read — on the
window's rows: the whole demo history, and capped at ``max_records`` (the
request's sample, default 20000), with the default 5 repeats. Prints CPU and
wall time (compare CPU: this machine kind is shared) and the ranking.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
from demo_model import demo_model

from modelplane.observability.model_explanation import ModelImportance, model_importance


def main() -> None:
    warnings.simplefilter("ignore")
    dm = demo_model()
    model, X, y, names, cols = dm.model, dm.X, dm.y, dm.names, dm.columns
    print(f"demo window: {len(X)} records, {len(names)} features")

    def run(rows: int, repeats: int, actual: np.ndarray | None, label: str) -> ModelImportance:
        target = {n: v[:rows] for n, v in cols.items()}
        c0, t0 = time.process_time(), time.perf_counter()
        imp = model_importance(model, target, names, None if actual is None else actual[:rows],
                               True, repeats, 0)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        calls = 1 + len(names) * repeats
        print(f"{label}: rows={len(target[names[0]])} repeats={repeats} ({calls} predict calls, "
              f"scored by {imp.scoring}): cpu {cpu:.2f} s, wall {wall:.2f} s")
        return imp

    run(len(X), 5, None, "the demo window, defaults")
    run(len(X), 5, y.to_numpy(), "the demo window, against actuals")
    run(1000, 5, None, "1000 records")
    many = 20000
    if len(X) < many:  # the default max_records: the demo's rows repeated up to it
        reps = -(-many // len(X))
        cols = {n: np.concatenate([v] * reps)[:many] for n, v in cols.items()}
    imp = run(many, 5, None, "20000 records (the default max_records)")
    mean = imp.importances.mean(1)
    print("importance (accuracy drop):", {n: round(float(v), 4) for n, v in
                                          sorted(zip(names, mean), key=lambda t: -t[1])})
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()
