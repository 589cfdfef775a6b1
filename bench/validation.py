"""Validation benchmark: modelplane's check suite vs Deepchecks' ``full_suite``.

    uv run python bench/validation.py                 # 100k + 100k rows, 20 numeric + 1 categorical
    uv run python bench/validation.py --rows 20000    # quick
    uv run python bench/validation.py --skip-deepchecks

Same data (written once as parquet), same kind of model (a scikit-learn pipeline:
ordinal-encoded category + HistGradientBoostingClassifier, same hyper-parameters
and seed) trained in each environment, since Deepchecks 0.19.1 needs its own
(numpy<2, pandas<2.3, scikit-learn 1.6.1, setuptools<81). That environment is
made with ``uv venv`` + ``uv pip install`` under ~/.cache/modelplane-bench on
first use. Timed on each side: the suite run only (not imports, data loading or
training), both with one native thread (OpenMP/BLAS), as a validation run
gets one core in the service. modelplane runs every catalog check whose inputs exist here (11 of
12: feature-pipeline parity needs a featurestore) with a baseline version (a
second model) for the comparison checks; Deepchecks runs ``full_suite`` with
train and test datasets and the model. Prints both sides, the check counts and
the ratio (target >= 5x).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

CACHE = Path(os.environ.get("MODELPLANE_BENCH_CACHE", Path.home() / ".cache" / "modelplane-bench"))
DEEPCHECKS_VENV = CACHE / "deepchecks-0.19.1"
DEEPCHECKS_PACKAGES = ["deepchecks==0.19.1", "numpy<2", "pandas<2.3", "scikit-learn==1.6.1",
                       "setuptools<81", "pyarrow<18"]
N_NUMERIC = 20
MODEL_PARAMS = {"max_iter": 100, "learning_rate": 0.1, "random_state": 0}

# Trains the same pipeline in either environment (kept textual so the Deepchecks side runs it too).
MODEL_CODE = textwrap.dedent('''
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    def make_model(numeric, params):
        prep = ColumnTransformer([("cat", OrdinalEncoder(handle_unknown="use_encoded_value",
                                                         unknown_value=-1), ["segment"])],
                                 remainder="passthrough")
        return Pipeline([("prep", prep), ("clf", HistGradientBoostingClassifier(**params))])
''')

DEEPCHECKS_RUNNER = MODEL_CODE + textwrap.dedent('''
    import json, sys, time, warnings
    import pandas as pd
    warnings.filterwarnings("ignore")
    from deepchecks.tabular import Dataset
    from deepchecks.tabular.suites import full_suite

    train = pd.read_parquet(sys.argv[1]); test = pd.read_parquet(sys.argv[2])
    features = [c for c in train.columns if c.startswith("f") or c == "segment"]
    numeric = [c for c in features if c != "segment"]
    params = json.loads(sys.argv[3])
    model = make_model(numeric, params).fit(train[features], train["label"])
    keep = features + ["label"]
    train_ds = Dataset(train[keep], label="label", cat_features=["segment"])
    test_ds = Dataset(test[keep], label="label", cat_features=["segment"])
    start = time.perf_counter()
    result = full_suite().run(train_dataset=train_ds, test_dataset=test_ds, model=model)
    elapsed = time.perf_counter() - start
    n_checks = len(result.results)
    failed = len(result.get_not_passed_checks())
    print(json.dumps({"seconds": elapsed, "checks": n_checks, "not_passed": failed}))
''')


def make_data(rows: int, seed: int, drift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_NUMERIC))
    x[:, 0] += drift
    segment = rng.choice(["a", "b", "c", "d"], size=rows, p=[0.4, 0.3, 0.2, 0.1])
    logit = (1.5 * x[:, 0] - 1.0 * x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + 0.5 * np.sin(x[:, 4])
             + np.where(segment == "d", 0.7, 0.0))
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(N_NUMERIC)])
    frame["segment"] = segment
    frame["group"] = rng.choice(["g1", "g2"], size=rows)   # protected attribute, not a model input
    frame["event_time"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.uniform(0, 180 * 86400, size=rows)), unit="s")
    frame["label"] = label
    return frame


def ensure_deepchecks_venv() -> Path:
    python = DEEPCHECKS_VENV / "bin" / "python"
    marker = DEEPCHECKS_VENV / ".installed"
    if marker.exists():
        return python
    print(f"creating Deepchecks environment in {DEEPCHECKS_VENV} (first run only) ...", flush=True)
    DEEPCHECKS_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["uv", "venv", "--python", "3.11", str(DEEPCHECKS_VENV)], check=True)
    subprocess.run(["uv", "pip", "install", "--python", str(python), *DEEPCHECKS_PACKAGES],
                   check=True)
    marker.touch()
    return python


def run_deepchecks(train_path: Path, test_path: Path, workdir: Path) -> dict:
    python = ensure_deepchecks_venv()
    script = workdir / "deepchecks_runner.py"
    script.write_text(DEEPCHECKS_RUNNER)
    out = subprocess.run([str(python), str(script), str(train_path), str(test_path),
                          json.dumps(MODEL_PARAMS)], capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
                              "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if out.returncode != 0:
        raise SystemExit(f"Deepchecks run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_modelplane(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    from threadpoolctl import threadpool_limits

    from modelplane.validator.engine import validate
    from modelplane.validator.policy import parse_policy_text
    from modelplane.validator.report import CheckStatus

    namespace: dict = {}
    exec(MODEL_CODE, namespace)  # noqa: S102 - our own model definition, shared with the other side
    features = [c for c in train.columns if c.startswith("f") or c == "segment"]
    numeric = [c for c in features if c != "segment"]
    with threadpool_limits(1):  # as the Deepchecks side (OMP_NUM_THREADS=1)
        model = namespace["make_model"](numeric, MODEL_PARAMS).fit(train[features], train["label"])
        baseline_params = {**MODEL_PARAMS, "max_iter": 50, "random_state": 1}
        baseline = namespace["make_model"](numeric, baseline_params).fit(train[features],
                                                                         train["label"])
    policy = parse_policy_text(textwrap.dedent(f"""
        label_column: label
        feature_columns: {json.dumps(features)}
        slice_columns: [segment]
        protected_attributes: [group]
        event_timestamp_column: event_time
        checks: [metrics, prediction_drift, feature_drift, feature_importance, sensitivity, stress,
                 bias, data_quality, leakage, fitting, backtest]
    """))
    start = time.perf_counter()
    results = validate(model, test, policy, baseline=baseline, training=train)  # one native thread
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "checks": len(results),
            "not_passed": sum(r.status not in (CheckStatus.PASS,) for r in results),
            "per_check": {r.check: (r.status.name, round(r.duration_s, 2)) for r in results}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000,
                    help="rows of the test set (and of the train set)")
    ap.add_argument("--skip-deepchecks", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mp-bench-validation-") as tmp:
        work = Path(tmp)
        train, test = make_data(args.rows, 1), make_data(args.rows, 2, drift=0.1)
        train.to_parquet(work / "train.parquet")
        test.to_parquet(work / "test.parquet")
        print(f"data: {args.rows} train + {args.rows} test rows x {N_NUMERIC} numeric "
              "+ 1 categorical feature")
        ours = run_modelplane(train, test)
        print(f"modelplane suite : {ours['seconds']:7.2f} s  {ours['checks']} checks "
              f"({ours['not_passed']} not PASS)")
        for name, (status, seconds) in ours["per_check"].items():
            print(f"    {name:<20} {status:<7} {seconds:6.2f} s")
        if args.skip_deepchecks:
            return
        theirs = run_deepchecks(work / "train.parquet", work / "test.parquet", work)
        print(f"Deepchecks full_suite: {theirs['seconds']:7.2f} s  {theirs['checks']} checks "
              f"({theirs['not_passed']} not passed)")
        ratio = theirs["seconds"] / ours["seconds"]
        print(f"ratio (Deepchecks / modelplane): {ratio:.1f}x  (target >= 5x)")


if __name__ == "__main__":
    main()
