"""What registering a test model costs, three ways (issue #16: the suite's work).

Against a local MLflow SQLite store, from the current directory (run it from the
repository root: MLflow then finds this uv workspace, as in the tests):

- ``log_model`` without ``pip_requirements``: MLflow infers them (``uv export`` of the
  workspace when it finds ``uv.lock`` in the current directory);
- ``log_model`` with ``pip_requirements=["scikit-learn"]``;
- ``mlflow.register_model`` of a model already logged (a new version, no new run).

Each way ``--repeat`` times after one warm-up log (imports, store migrations), a
registered model name per way; prints the median and the range of wall seconds, and
the process's own CPU seconds (the ``uv export`` child's are not in them).

    uv run python bench/model_logging.py --repeat 5
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    store = Path(tempfile.mkdtemp(prefix="bench-model-logging-"))
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    # artifacts beside the store, not in ./mlruns of the working directory
    mlflow.create_experiment("bench", artifact_location=(store / "artifacts").as_uri())
    mlflow.set_experiment("bench")
    X = np.random.default_rng(0).normal(size=(200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = LogisticRegression().fit(X, y)
    signature = infer_signature(X, model.predict(X))

    def log(name: str, **kwargs: object) -> str:
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                            signature=signature, **kwargs)
        return str(info.model_uri)

    logged = log("warm-up", pip_requirements=["scikit-learn"])
    ways: dict[str, Callable[[], object]] = {
        "log_model, requirements inferred": lambda: log("inferred"),
        "log_model, pip_requirements given": lambda: log(
            "given", pip_requirements=["scikit-learn"]),
        "register_model of a logged model": lambda: mlflow.register_model(logged, "registered"),
    }
    for label, way in ways.items():
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            way()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        print(f"{label:36s} wall median {statistics.median(walls):5.2f} s "
              f"(range {min(walls):.2f}-{max(walls):.2f}), "
              f"own CPU median {statistics.median(cpus):.2f} s")


if __name__ == "__main__":
    main()
