"""Our hand-written parts against the library a user would reach for (issue #16, item 4).

    uv run --with pybreaker python bench/handwritten_vs_library.py breaker
    uv run --with cleanlab python bench/handwritten_vs_library.py labels [--rows 10000]
    uv run --with fairlearn python bench/handwritten_vs_library.py fairness [--rows 100000]
    uv run python bench/handwritten_vs_library.py cbpe [--rows 20000]
    uv run python bench/handwritten_vs_library.py transcoding

Each subcommand runs ours and the library on the same seeded inputs, prints whether
the results agree (numbers within 1e-9, or the same flagged rows), the CPU time per
call of each (``time.process_time``, best of ``--repeat``, so other load on the
machine moves it less than wall time) and the ratio library / ours, then the load
average. ``--with`` adds the library to a throw-away overlay of the workspace's
environment without touching the lock.

``transcoding`` has no library side that installs here (see the gateway README): it
prices the hand-written part against protobuf's ``json_format``, which both use.
``cbpe`` compares with NannyML 0.13.1, which does not co-resolve with the workspace
(see the observability README): it runs in its own virtual environment under
``~/.cache/modelplane-bench/nannyml-0.13.1`` (made with uv on first run;
``MODELPLANE_BENCH_CACHE`` moves it), fed the same arrays through an ``.npz`` file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(os.environ.get("MODELPLANE_BENCH_CACHE", Path.home() / ".cache" / "modelplane-bench"))
NANNYML_VENV = CACHE / "nannyml-0.13.1"
# nannyml 0.13.1 imports statsmodels (its plots) without declaring it.
NANNYML_PACKAGES = ["nannyml==0.13.1", "statsmodels"]


def cpu_per_call(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best CPU seconds of one call over ``repeat`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def report(name_ours: str, ours: float, name_lib: str, lib: float, agree: bool) -> None:
    print(f"  CPU per call: ours ({name_ours}) {ours * 1e3:.3f} ms, "
          f"{name_lib} {lib * 1e3:.3f} ms; ratio {name_lib} / ours = {lib / ours:.2f}x")
    print(f"  results agree: {'yes' if agree else 'NO'}")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


# --- circuit breaker ------------------------------------------------------------------------

def bench_breaker(args: argparse.Namespace) -> None:
    from importlib.metadata import version

    import pybreaker

    from modelplane.serving.circuit_breaker import CircuitBreaker
    from modelplane.serving.deployment import CircuitBreakerSettings

    settings = CircuitBreakerSettings(error_rate_threshold=0.5, window_seconds=10.0,
                                      minimum_requests=20, open_seconds=5.0)
    now = [0.0]

    def ours_run(outcomes: list[bool]) -> int:
        """Index of the first call the breaker refused (len(outcomes) if none)."""
        cb = CircuitBreaker(settings, clock=lambda: now[0])
        for i, ok in enumerate(outcomes):
            now[0] += 0.01
            if not cb.allow():
                return i
            cb.record(ok)
        return len(outcomes)

    class Failed(Exception):
        pass

    def fail() -> None:
        raise Failed

    def succeed() -> None:
        return None

    def lib_run(outcomes: list[bool]) -> int:
        """Index of the first call pybreaker refused or failed with CircuitBreakerError
        (it raises that on the call that trips it)."""
        # pybreaker counts consecutive failures: fail_max=10 is its nearest to "half of
        # the last 20 calls failed".
        cb = pybreaker.CircuitBreaker(fail_max=10, reset_timeout=5)
        for i, ok in enumerate(outcomes):
            try:
                cb.call(succeed if ok else fail)
            except Failed:
                pass
            except pybreaker.CircuitBreakerError:
                return i
        return len(outcomes)

    rng = np.random.default_rng(args.seed)
    cases = {
        "all failing": [False] * 200,
        "every other call fails (50%)": [i % 2 == 0 for i in range(200)],
        "60% failing at random": list(rng.random(200) >= 0.6),
        "healthy (2% failing at random)": list(rng.random(200) >= 0.02),
    }
    print("circuit breaker: ours (error rate over a window, minimum 20 calls, threshold 0.5) "
          f"vs pybreaker {version('pybreaker')} (fail_max=10 consecutive)")
    for name, outcomes in cases.items():
        print(f"  {name}: index of the first call refused: ours {ours_run(outcomes)}, "
              f"pybreaker {lib_run(outcomes)} ({len(outcomes)} = none of {len(outcomes)})")
    healthy = [True] * 10_000
    ours_cpu, _ = cpu_per_call(lambda: ours_run(healthy), args.repeat)
    lib_cpu, _ = cpu_per_call(lambda: lib_run(healthy), args.repeat)
    print(f"  CPU per guarded call (10000 healthy calls): ours {ours_cpu / 1e4 * 1e6:.2f} µs, "
          f"pybreaker {lib_cpu / 1e4 * 1e6:.2f} µs; ratio pybreaker / ours = "
          f"{lib_cpu / ours_cpu:.2f}x")


# --- confident learning ---------------------------------------------------------------------

def bench_labels(args: argparse.Namespace) -> None:
    import cleanlab
    from cleanlab.filter import find_label_issues
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from modelplane.validator.checks.data_quality import confident_mislabels

    x, y = make_classification(n_samples=args.rows, n_features=10, n_informative=6,
                               n_classes=args.classes, n_clusters_per_class=1,
                               random_state=args.seed)
    rng = np.random.default_rng(args.seed)
    flip = rng.random(len(y)) < 0.05
    y = np.where(flip, (y + rng.integers(1, args.classes, len(y))) % args.classes, y)
    model = HistGradientBoostingClassifier(max_iter=50, max_leaf_nodes=15, random_state=0)
    t0 = time.process_time()
    proba = cross_val_predict(model, x, y, cv=StratifiedKFold(3, shuffle=True, random_state=0),
                              method="predict_proba")
    cv_cpu = time.process_time() - t0
    print(f"confident learning: ours vs cleanlab {cleanlab.__version__} "
          f"find_label_issues(filter_by='confident_learning'); {args.rows} rows, "
          f"{args.classes} classes, 5% labels flipped; the 3-fold cross-validation "
          f"before either took {cv_cpu:.2f} s of CPU")
    # Without our margin (-1: any lead) the two are the same rule; then with the default.
    ours_cpu, (flagged, _) = cpu_per_call(lambda: confident_mislabels(proba, y, -1.0),
                                          args.repeat)
    lib_cpu, mask = cpu_per_call(
        lambda: find_label_issues(y, proba, filter_by="confident_learning", n_jobs=1),
        args.repeat)
    lib_rows = np.flatnonzero(mask)
    same = np.array_equal(np.sort(flagged), lib_rows)
    print(f"  no margin: ours flags {len(flagged)} rows, cleanlab {len(lib_rows)}; "
          f"in both {len(np.intersect1d(flagged, lib_rows))}; "
          f"true flips found: ours {int(flip[flagged].sum())}, cleanlab "
          f"{int(flip[lib_rows].sum())} of {int(flip.sum())}")
    report("numpy", ours_cpu, "cleanlab", lib_cpu, same)
    with_margin, _ = confident_mislabels(proba, y, 0.5)
    print(f"  with our default margin 0.5 (no cleanlab option for it): {len(with_margin)} rows, "
          f"{int(flip[with_margin].sum())} of them true flips")
    # Uninformative probabilities (Dirichlet noise): where the margin matters.
    noise = rng.dirichlet(np.ones(args.classes), size=args.rows)
    bare, _ = confident_mislabels(noise, y, -1.0)
    kept, _ = confident_mislabels(noise, y, 0.5)
    lib_noise = np.flatnonzero(find_label_issues(y, noise, filter_by="confident_learning",
                                                 n_jobs=1))
    print(f"  noise probabilities: no margin ours {len(bare)}, cleanlab {len(lib_noise)} "
          f"(same rows: {'yes' if np.array_equal(np.sort(bare), lib_noise) else 'NO'}); "
          f"margin 0.5 keeps {len(kept)}")


# --- fairness metrics -----------------------------------------------------------------------

class _Fixed:
    """A "model" answering stored predictions, so only the check's own work is timed."""

    def __init__(self, predictions: np.ndarray) -> None:
        self.predictions = predictions

    def predict(self, x: Any) -> np.ndarray:
        return self.predictions[: len(x)]


def bench_fairness(args: argparse.Namespace) -> None:
    import fairlearn
    import pandas as pd
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equal_opportunity_difference,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    from modelplane.validator.engine import validate
    from modelplane.validator.policy import CheckConfig, Policy

    rng = np.random.default_rng(args.seed)
    n = args.rows
    group = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    y = (rng.random(n) < 0.3).astype(int)
    # the model is a little kinder to group "b"
    pred = np.where(rng.random(n) < np.where(group == "b", 0.85, 0.75), y, 1 - y)
    data = pd.DataFrame({"x": rng.normal(size=n), "group": group, "label": y})
    policy = Policy(label_column="label", feature_columns=["x"], protected_attributes=["group"],
                    checks=[CheckConfig("bias", params={"min_group_rows": "1"})])
    model = _Fixed(pred)

    def ours() -> dict[str, float]:
        [result] = validate(model, data, policy)
        return {m.name: m.value for m in result.measurements}

    def lib() -> dict[str, float]:
        # every group counts here (min_group_rows 1 above): fairlearn has no minimum
        frame = MetricFrame(metrics={"selection_rate": selection_rate,
                                     "true_positive_rate": true_positive_rate,
                                     "accuracy": accuracy_score},
                            y_true=y, y_pred=pred, sensitive_features=group)
        # one MetricFrame for all three (fairlearn's demographic_parity_difference and
        # equal_opportunity_difference would build one each: same numbers, 3x the work)
        gaps = frame.difference(method="between_groups")
        return {"demographic_parity_difference": float(gaps["selection_rate"]),
                "equal_opportunity_difference": float(gaps["true_positive_rate"]),
                "accuracy_difference": float(gaps["accuracy"])}

    # the named fairlearn functions give the same numbers as the MetricFrame's gaps
    dpd = demographic_parity_difference(y, pred, sensitive_features=group)
    eod = equal_opportunity_difference(y, pred, sensitive_features=group)
    named = lib()
    assert abs(dpd - named["demographic_parity_difference"]) <= 1e-12
    assert abs(eod - named["equal_opportunity_difference"]) <= 1e-12

    ours_cpu, a = cpu_per_call(ours, args.repeat)
    lib_cpu, b = cpu_per_call(lib, args.repeat)
    print(f"fairness metrics: our bias check (validate(), bias only) vs fairlearn "
          f"{fairlearn.__version__} MetricFrame + *_difference; {n} rows, 4 groups")
    for k in b:
        print(f"  {k}: ours {a[k]:.12f}, fairlearn {b[k]:.12f}")
    report("bias check incl. validate()'s plan", ours_cpu, "fairlearn", lib_cpu,
           all(abs(a[k] - b[k]) <= 1e-9 for k in b))


# --- CBPE -----------------------------------------------------------------------------------

NANNYML_SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    import numpy as np, pandas as pd, nannyml as nml
    d = np.load(sys.argv[1])
    classes = [str(c) for c in range(d["ref_p"].shape[1])]
    labels = np.array(classes)
    def frame(p, pred, y=None):
        cols = {f"p{c}": p[:, int(c)] for c in classes}
        cols["y_pred"] = labels[pred]
        if y is not None:
            cols["y"] = labels[y]
        return pd.DataFrame(cols)
    ref = frame(d["ref_p"], d["ref_pred"], d["ref_y"])
    ana = frame(d["ana_p"], d["ana_pred"])
    if len(classes) == 2:  # binary: the positive class's score, labels as 0 / 1
        ref["y_pred"], ana["y_pred"] = d["ref_pred"], d["ana_pred"]
        ref["y"] = d["ref_y"]
        kw = dict(y_pred_proba="p1", problem_type="classification_binary")
    else:
        kw = dict(y_pred_proba={c: f"p{c}" for c in classes},
                  problem_type="classification_multiclass")
    metrics = ["roc_auc", "f1", "precision", "recall", "accuracy"]
    best, out = float("inf"), None
    for _ in range(int(sys.argv[2])):
        t0 = time.process_time()
        est = nml.CBPE(metrics=metrics, y_pred="y_pred", y_true="y", chunk_number=1, **kw)
        est.fit(ref)
        res = est.estimate(ana).filter(period="analysis").to_df()
        best = min(best, time.process_time() - t0)
        out = {m: float(res[(m, "value")].iloc[0]) for m in metrics}
    print(json.dumps({"cpu": best, "metrics": out, "version": nml.__version__}))
""")


def nannyml_python() -> Path:
    python = NANNYML_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["uv", "venv", "-q", "-p", "3.11", str(NANNYML_VENV)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(python),
                        *NANNYML_PACKAGES], check=True)
    return python


def bench_cbpe(args: argparse.Namespace) -> None:
    for classes in (2, args.classes):
        cbpe_case(args, classes)


def cbpe_case(args: argparse.Namespace, k: int) -> None:
    from modelplane.observability import metrics as M
    from modelplane.observability.estimation import ScoreEstimator
    from modelplane.observability.store.frames import Frame

    rng = np.random.default_rng(args.seed)
    weights = rng.normal(size=(4, k))

    def sample(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = rng.normal(size=(n, 4)) @ weights
        truth = np.exp(z - z.max(axis=1, keepdims=True))
        truth /= truth.sum(axis=1, keepdims=True)
        y = (rng.random((n, 1)) > truth.cumsum(axis=1)).sum(axis=1).clip(0, k - 1)
        p = np.exp(2 * (z - z.max(axis=1, keepdims=True)))  # over-confident scores
        p /= p.sum(axis=1, keepdims=True)
        return p, p.argmax(axis=1), y

    labels = np.array([str(c) for c in range(k)], dtype=object)

    def frame(p: np.ndarray, pred: np.ndarray, y: np.ndarray | None) -> Frame:
        n = len(p)
        nothing = np.full(n, np.nan)
        return Frame(np.arange(n).astype(str).astype(object), np.full(n, "1", dtype=object),
                     np.full(n, "production", dtype=object), np.arange(n, dtype=np.int64),
                     labels[pred], nothing,
                     labels[y] if y is not None else np.full(n, None, dtype=object), nothing,
                     {str(c): p[:, c] for c in range(k)}, {}, {}, {})

    ref_p, ref_pred, ref_y = sample(args.rows)
    ana_p, ana_pred, _ = sample(args.rows)
    reference, analysis = frame(ref_p, ref_pred, ref_y), frame(ana_p, ana_pred, None)
    positive = "1" if k == 2 else None

    names = {M.Metric.ROC_AUC: "roc_auc", M.Metric.F1: "f1", M.Metric.PRECISION: "precision",
             M.Metric.RECALL: "recall", M.Metric.ACCURACY: "accuracy"}

    def ours() -> dict[str, float | None]:
        estimate = ScoreEstimator.fit(reference, positive).estimate(analysis)
        return {name: estimate[m] for m, name in names.items()}

    ours_cpu, a = cpu_per_call(ours, args.repeat)
    python = nannyml_python()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, ref_p=ref_p, ref_pred=ref_pred, ref_y=ref_y, ana_p=ana_p,
                 ana_pred=ana_pred)
        script = Path(tmp) / "nannyml_side.py"
        script.write_text(NANNYML_SCRIPT)
        done = subprocess.run([str(python), str(script), str(path), str(args.repeat)],
                              check=True, capture_output=True, text=True)
    b = json.loads(done.stdout.strip().splitlines()[-1])
    kind = "binary" if k == 2 else f"{k} classes (macro averages)"
    print(f"CBPE: ours (estimation.ScoreEstimator) vs NannyML {b['version']} CBPE, {kind}, "
          f"{args.rows} reference rows (labeled) and {args.rows} analysis rows, "
          "over-confident scores (both calibrate with isotonic regression)")
    agree = True
    for key, v in b["metrics"].items():
        mine = a[key]
        print(f"  {key}: ours {mine:.12f}, NannyML {v:.12f}")
        agree = agree and mine is not None and abs(mine - v) <= 1e-9
    report("numpy", ours_cpu, "NannyML", b["cpu"], agree)

# --- transcoding ----------------------------------------------------------------------------

def bench_transcoding(args: argparse.Namespace) -> None:
    from google.protobuf import json_format

    from modelplane.gateway.catalog import Catalog
    from modelplane.gateway.request_builder import RequestBuilder

    bindings = {b.operation_id: b for b in Catalog.discover().bindings}
    deployment = {
        "name": "fraud", "model": "fraud-detector", "sticky_key": "user_id",
        "traffic_split": {"routes": [
            {"target": {"model": "fraud-detector", "alias": "champion"}, "weight": 90},
            {"target": {"model": "fraud-detector", "version": "7"}, "weight": 10,
             "label": "canary"}]},
        "fallback": {"chain": [{"model": "fraud-rules", "alias": "champion"}],
                     "timeout": "0.25s",
                     "circuit_breaker": {"error_rate_threshold": 0.5, "window": "10s",
                                         "minimum_requests": 20, "open_duration": "5s"}}}
    body = json.dumps(deployment).encode()
    # (binding, path values, query, body) and what protobuf's own JSON parser is given
    # for the same request when the route's mapping is known in advance.
    cases: list[tuple[str, dict[str, str], list[tuple[str, str]], bytes | None,
                      Callable[[], dict[str, Any]]]] = [
        ("ModelRegistryService_GetModel", {"name": "churn"}, [], None,
         lambda: {"name": "churn"}),
        ("ModelRegistryService_ListModelVersions", {"model_name": "churn"},
         [("page_size", "50"), ("page_token", "abc"), ("validation_status", "2")], None,
         lambda: {"model_name": "churn", "page_size": 50, "page_token": "abc",
                  "validation_status": 2}),
        ("ServingService_CreateDeployment", {}, [], body,
         lambda: {"deployment": json.loads(body)}),
    ]
    print("transcoding: the gateway's RequestBuilder (google.api.http binding: path, query "
          "and body to the request message, field-precise errors) vs protobuf's "
          "json_format.ParseDict alone on the same request, mapping known in advance")
    calls = 2000
    for op, path, query, raw, as_dict in cases:
        binding = bindings[op]
        builder = RequestBuilder(binding)
        cls = binding.method.request_class

        def ours(builder: RequestBuilder = builder, path: dict[str, str] = path,
                 query: list[tuple[str, str]] = query, raw: bytes | None = raw) -> Any:
            for _ in range(calls):
                out = builder.build(path, query, raw)
            return out

        def lib(cls: Any = cls, as_dict: Callable[[], dict[str, Any]] = as_dict) -> Any:
            for _ in range(calls):
                out = json_format.ParseDict(as_dict(), cls())
            return out

        ours_cpu, a = cpu_per_call(ours, args.repeat)
        lib_cpu, b = cpu_per_call(lib, args.repeat)
        print(f"  {op}: ours {ours_cpu / calls * 1e6:.1f} µs, json_format alone "
              f"{lib_cpu / calls * 1e6:.1f} µs per request; ratio ours / json_format = "
              f"{ours_cpu / lib_cpu:.2f}x; same message: {'yes' if a == b else 'NO'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["breaker", "labels", "fairness", "cbpe", "transcoding"])
    p.add_argument("--rows", type=int, default=0, help="rows (default per part)")
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    args.rows = args.rows or {"labels": 10_000, "fairness": 100_000, "cbpe": 20_000}.get(
        args.part, 0)
    {"breaker": bench_breaker, "labels": bench_labels, "fairness": bench_fairness,
     "cbpe": bench_cbpe, "transcoding": bench_transcoding}[args.part](args)
    print(" ", load())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
